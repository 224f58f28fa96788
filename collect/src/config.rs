//! `[collect]`: settings shared by every collector (proxy, tailer, intake).

use std::path::PathBuf;

use mcpsiem_runtime::auth::ApiKey;
use serde::{Deserialize, Serialize};

use super::capture::CaptureConfig;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CollectConfig {
    /// `collector.id` of the events; empty: the host name.
    pub id: String,
    /// Where events wait while Kafka cannot take them. One directory per collector process.
    pub spool_dir: PathBuf,
    /// Most bytes the spool may hold; past it events are refused with an error and
    /// `mcpsiem_collect_spool_refused_total`.
    pub spool_max_bytes: u64,
    /// librdkafka's memory queue, in KiB: spooled events are handed to it as it has room.
    pub queue_max_kbytes: u64,
    /// Prometheus `/metrics` of the proxy and the tailer (`HOST:PORT`); empty: off. The
    /// intake serves `/metrics` on its own port.
    pub metrics_addr: String,
    /// The HTTP proxy's canonical resource URI: the public URL clients use for the MCP
    /// server behind it, which its tokens name as their audience. Empty: learned from the
    /// protected-resource metadata (`resource`) that passes the proxy.
    pub resource_uri: String,
    pub capture: CaptureConfig,
    pub tail: TailConfig,
    pub intake: IntakeConfig,
}

impl Default for CollectConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            spool_dir: PathBuf::from("data/spool"),
            spool_max_bytes: 1 << 30,
            queue_max_kbytes: 64 * 1024,
            metrics_addr: String::new(),
            resource_uri: String::new(),
            capture: CaptureConfig::default(),
            tail: TailConfig::default(),
            intake: IntakeConfig::default(),
        }
    }
}

impl CollectConfig {
    /// The collector id: the configured one, else the host name.
    pub fn collector_id(&self) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "collector".into())
    }
}

/// `collect tail`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TailConfig {
    /// Where read positions are kept across restarts (one small file per followed path).
    pub state_dir: PathBuf,
    /// How often a followed file is checked for new lines and rotation, in milliseconds.
    pub poll_ms: u64,
    /// Longest line accepted, in bytes; a longer one is shipped as a `malformed` event.
    pub max_line_bytes: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self { state_dir: PathBuf::from("data/tail-state"), poll_ms: 200, max_line_bytes: 1 << 20 }
    }
}

/// `collect http`: the HTTP intake.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    pub listen: String,
    /// OTLP over gRPC (the trace and logs services), for exporters that speak only gRPC;
    /// empty: off (OTLP over HTTP is always on `listen`). 4317 is the usual port.
    pub otlp_grpc_listen: String,
    /// Largest request body, in bytes, after gzip decoding; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most records in one body; more get 413 (split the batch). Bounds the work and the
    /// reply of one request.
    pub max_records: usize,
    /// Keys allowed to post events (`mcpsiem apikey create` prints entries; the role is not
    /// used here). With none, every request is refused: an open intake would let anyone
    /// write the audit trail.
    pub api_keys: Vec<ApiKey>,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9470".into(),
            otlp_grpc_listen: String::new(),
            max_body_bytes: 10 << 20,
            max_records: 10_000,
            api_keys: Vec::new(),
        }
    }
}
