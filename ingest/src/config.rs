//! The `[ingest]` section of the configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the ingester consumes, rolls files and compacts. Every setting is documented in
/// `docs/configuration.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Kafka consumer group: ingesters in one group split the topic's partitions.
    pub group_id: String,
    /// Roll when the records buffered across all partitions reach this many bytes (the
    /// largest partition's buffer is written). This also bounds the ingester's memory.
    pub roll_bytes: u64,
    /// Roll a partition's buffer this many seconds after its first record, so that fresh
    /// events are queryable within about this long.
    pub roll_seconds: u64,
    /// Events whose time is older than this many hours before their arrival go to the dead
    /// letters (`too_old`): they would land in long-closed partitions.
    pub max_event_age_hours: u64,
    /// Events whose time is further than this many seconds after their arrival go to the
    /// dead letters (`in_future`): a collector with a wrong clock.
    pub max_event_future_seconds: u64,
    /// Rows per Parquet row group: the unit readers skip with statistics and bloom filters.
    pub row_group_rows: usize,
    /// zstd level of the Parquet files (1 fastest … 22 smallest).
    pub zstd_level: i32,
    /// Staged files of no commit are deleted once older than this many seconds. Long enough
    /// for another ingester to finish a commit during a rebalance.
    pub staging_grace_seconds: u64,
    /// Commit records kept per partition (older ones are deleted; only the latest matters).
    pub keep_commits: usize,
    /// Event ids remembered per partition to drop a second copy of an event (a collector's
    /// resend, a client's retry) arriving within this many records of the first; 0 turns
    /// it off. After an assignment this many records before the resume point are read
    /// again for their ids.
    pub dedup_window_records: usize,
    /// Address of the Prometheus `/metrics` endpoint; empty disables it.
    pub metrics_addr: String,
    /// Also store the alerts topic in the lake's `alerts` table, the alert-changes topic in
    /// `alert_changes` and the silences topic in `silences`, with the same exactly-once
    /// commit log, in the consumer groups `<group_id>.alerts`, `<group_id>.alert-changes`
    /// and `<group_id>.silences`.
    pub alerts: bool,
    pub compaction: CompactionConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            group_id: "mcpsiem-ingest".into(),
            roll_bytes: 128 * 1024 * 1024,
            roll_seconds: 60,
            max_event_age_hours: 24 * 30,
            max_event_future_seconds: 300,
            row_group_rows: 64 * 1024,
            zstd_level: 3,
            staging_grace_seconds: 120,
            keep_commits: 1000,
            dedup_window_records: 20_000,
            metrics_addr: "127.0.0.1:9461".into(),
            alerts: true,
            compaction: CompactionConfig::default(),
        }
    }
}

impl IngestConfig {
    pub fn roll_age(&self) -> Duration {
        Duration::from_secs(self.roll_seconds)
    }

    pub fn staging_grace(&self) -> Duration {
        Duration::from_secs(self.staging_grace_seconds)
    }
}

/// When and how the small files of closed hours are merged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    /// Run compaction inside `mcpsiem ingest` (`mcpsiem compact` runs it by hand either way).
    pub enabled: bool,
    /// Seconds between compaction passes inside `ingest`.
    pub interval_seconds: u64,
    /// An hour is closed, and compacted, this many seconds after it ends: late events
    /// arriving afterwards land in a new small file that the next pass merges.
    pub settle_seconds: u64,
    /// Target size of a compacted file, in bytes of Parquet.
    pub target_file_bytes: u64,
    /// Seconds a replace record is kept after its old files are deleted, so that a reader
    /// that listed the table just before sees it. Longer than any query runs.
    pub replaced_retention_seconds: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 300,
            settle_seconds: 600,
            target_file_bytes: 512 * 1024 * 1024,
            replaced_retention_seconds: 3600,
        }
    }
}
