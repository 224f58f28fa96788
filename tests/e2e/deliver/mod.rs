//! Alert delivery: each destination against a local receiver, exactly once through an
//! outage, and crashes at its failpoints.

mod crash;
mod destinations;
mod ocsf_schema;
mod outage;
mod silences;
