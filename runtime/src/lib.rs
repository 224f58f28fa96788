//! What every mcpsiem stage shares, and nothing stage-specific: how to reach Kafka and
//! produce to it, the watch that unsticks a consumer group, the ops endpoint and the stop
//! signal, API-key authentication (the intake and the query service), the local Tansu
//! broker, and progress bars for long jobs.

pub mod auth;
pub mod broker;
pub mod failpoint;
pub mod group_watch;
pub mod kafka;
pub mod lake_runtime;
pub mod ops;
pub mod producer;
pub mod progress;
pub mod report;
pub mod stop;

pub use auth::{ApiKey, Caller, Role};
pub use kafka::KafkaConfig;
