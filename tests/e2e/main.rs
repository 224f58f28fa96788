//! mcpsiem's end-to-end tests: one binary (one link of DataFusion and librdkafka instead
//! of one per test file), one module per stage. Tests run the `mcpsiem` binary as child
//! processes against a real Tansu broker wherever a stage keeps process-wide state (the
//! metrics recorder, the stop signal), so they can share this process.

#[path = "../support/mod.rs"]
mod support;

mod collect;
mod deliver;
mod deploy;
mod detect;
mod event;
mod ingest;
mod layout;
mod query;
