//! What each command does: a stage's configuration wired to its crate, run until it stops.

pub mod alerts;
pub mod collect;
pub mod detect;
pub mod evidence;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod query;
pub mod triage;
pub mod up;
