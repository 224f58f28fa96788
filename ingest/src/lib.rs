//! The ingester: consumes the events topic and writes the Parquet lake, exactly once.
//!
//! - [`consumer`]: the Kafka consume loop and the rebalance handling;
//! - [`buffer`]: one partition's records between flushes;
//! - [`writer`]: flushes to staged Parquet files, commit, publish;
//! - [`parquet_file`]: the Parquet layout (sorting, statistics, bloom filters);
//! - [`deadletter`]: records that could not be ingested, and why;
//! - [`recent_ids`]: the ids a partition took last, to drop second copies of events;
//! - [`compact`]: merging the small files of closed hours.
//!
//! The exactly-once protocol itself (commit log, fencing, recovery) is in
//! `mcpsiem_lake`, shared with the readers.

pub mod buffer;
pub mod compact;
pub mod config;
pub mod consumer;
pub mod deadletter;
pub mod parquet_file;
pub mod recent_ids;
pub mod writer;

pub use compact::{CompactionSummary, Compactor};
pub use config::{CompactionConfig, IngestConfig};
pub use consumer::{IngestControl, IngestSummary, Ingester};

use mcpsiem_lake::LakeError;

/// Why ingesting stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("Kafka: {0}; check kafka.brokers and that the broker is up")]
    Kafka(#[source] rdkafka::error::KafkaError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("lake file does not have the expected schema: {0}")]
    Schema(String),
    #[error("cannot start the writer thread: {0}")]
    Thread(String),
    #[error("the lake writer thread stopped unexpectedly; see the log above")]
    WriterGone,
}
