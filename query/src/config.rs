//! The `[query]` section of the configuration.

use serde::{Deserialize, Serialize};

use mcpsiem_runtime::auth::ApiKey;

/// How the query service listens, who may use it, and the limits of one query. Every
/// setting is documented in `docs/configuration.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// HTTP API and `/metrics`.
    pub listen: String,
    /// PostgreSQL wire protocol (psql, DBeaver, Grafana, Metabase); empty: off. The password
    /// is an API key, as on the HTTP API.
    pub pg_listen: String,
    /// API keys, stored as SHA-256 hashes (`mcpsiem keys hash`), each with a role.
    pub api_keys: Vec<ApiKey>,
    /// A query running longer is cancelled with a clear error.
    pub timeout_seconds: u64,
    /// Memory one query may use for sorts, joins, aggregations and its answer on the way
    /// out; past it, operators that can spill to disk do, the others fail the query with a
    /// clear error.
    pub memory_limit_bytes: usize,
    /// Memory every running query together may use (each within `memory_limit_bytes`): the
    /// bound of the service's query memory, whatever number of queries run.
    pub total_memory_bytes: usize,
    /// Rows one answer may hold; more rows end the answer with a note that it was cut.
    pub max_rows: usize,
    /// Queries running at once; more wait up to `queue_seconds`, then get 503.
    pub max_concurrent: usize,
    /// Queries one API key may run at once (at most `max_concurrent`): no single key can
    /// take every slot.
    pub max_concurrent_per_key: usize,
    pub queue_seconds: u64,
    /// Memory for the Parquet footers and page indexes of lake files, and again for their
    /// statistics, kept across queries. Too small, and every query parses every footer again.
    pub metadata_cache_bytes: usize,
    /// Deepest expression nesting a query may have, counted on its text (operators plus
    /// parenthesis depth, an upper bound of the tree's depth); deeper ones are refused
    /// before parsing, as they could exhaust a query thread's stack.
    pub max_expression_depth: usize,
    /// A rule whose closed alerts were false positives more often than this (0–1) is
    /// flagged in `GET /api/v1/rules/stats` and `mcpsiem rules stats`…
    pub rule_flag_ratio: f64,
    /// …once it has at least this many closed alerts with a verdict on its quality.
    pub rule_flag_min_verdicts: u64,
    /// The alert group fields whose shared values put alerts into one incident.
    pub incident_entities: Vec<String>,
    /// Alerts sharing an entity value this close in time (minutes) are in one incident;
    /// chains of such alerts too.
    pub incident_window_minutes: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9480".into(),
            pg_listen: "127.0.0.1:9432".into(),
            api_keys: Vec::new(),
            timeout_seconds: 60,
            memory_limit_bytes: 1 << 30,
            total_memory_bytes: 2 << 30,
            max_rows: 1_000_000,
            max_concurrent: 8,
            max_concurrent_per_key: 4,
            queue_seconds: 10,
            metadata_cache_bytes: 512 << 20,
            max_expression_depth: crate::nesting::DEFAULT_MAX_EXPRESSION_DEPTH,
            rule_flag_ratio: 0.5,
            rule_flag_min_verdicts: 5,
            incident_entities: vec![
                "enduser.id".into(),
                "auth.token.identity".into(),
                "auth.token.fingerprint".into(),
                "mcp.session.id".into(),
                "client.address".into(),
            ],
            incident_window_minutes: 60,
        }
    }
}
