//! The `[detect]` section of the configuration.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;

/// How the detector finds rules, consumes and keeps state. Every setting is documented in
/// `docs/configuration.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Rule files or directories (searched recursively for `.yml`/`.yaml`); `builtin:` is the
    /// rule pack built into the binary.
    pub rules: Vec<PathBuf>,
    /// Named lists for `|expand` placeholders: `approved_servers = ["github", "filesystem"]`
    /// fills `%approved_servers%`.
    pub lists: HashMap<String, Vec<String>>,
    /// Kafka consumer group: detectors in one group split the topic's partitions. Events a
    /// correlation groups together must be in one partition: see `scope`.
    pub group_id: String,
    /// Which rules this instance runs: `all` (one detector), `keyed` (any number in one
    /// group: detection rules and rules grouped by user, token, session or address) or
    /// `global` (one instance in its own group: rules grouped by server or tool). See
    /// docs/scaling.md.
    pub scope: crate::rules::RuleScope,
    /// Address of the Prometheus `/metrics` endpoint; empty disables it.
    pub metrics_addr: String,
    /// How late (event time, behind the newest event seen) an event may arrive and still
    /// join correlation windows. Later events still match detection rules.
    pub allowed_lateness_seconds: u64,
    /// Cap on correlation window entries plus first-seen values over all rules; at the cap
    /// new state is refused and counted in `mcpsiem_detect_state_refused_total`.
    pub max_state_entries: usize,
    /// A rule firing again for a group within this many seconds (event time) of its open
    /// alert's last match updates that alert (a repeat: count, last time, event ids) instead
    /// of raising another, until the alert is closed; 0 raises an alert for every firing.
    pub suppress_seconds: u64,
    /// An open alert's repeats are gathered for this many seconds (event time) into one
    /// record of the alert-changes topic (and one update to the destinations that take them).
    pub repeat_seconds: u64,
    /// Event ids kept in one alert.
    pub max_event_ids: usize,
    /// Where the detector keeps its snapshot (open windows, first-seen values, offsets);
    /// empty keeps state in memory only, so a restart forgets it.
    pub state_path: PathBuf,
    /// Seconds between snapshots (and at every clean stop).
    pub snapshot_seconds: u64,
    /// Reload the rules when a rule file changes (checked every two seconds). SIGHUP
    /// reloads them either way.
    pub watch_rules: bool,
}

/// The list of approved MCP servers the pack's shadow-server rule expands.
pub const APPROVED_SERVERS: &str = "approved_servers";

impl DetectConfig {
    /// A warning for an empty approved-server inventory, which makes every server unapproved.
    pub fn inventory_warning(&self) -> Option<String> {
        self.lists.get(APPROVED_SERVERS).is_none_or(Vec::is_empty).then(|| {
            "detect.lists.approved_servers is empty: every MCP server counts as unapproved and raises the \
             unapproved-server alert; list your approved servers under [detect.lists]"
                .to_string()
        })
    }

    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            allowed_lateness_seconds: self.allowed_lateness_seconds,
            max_state_entries: self.max_state_entries,
            suppress_seconds: self.suppress_seconds,
            repeat_seconds: self.repeat_seconds,
            max_event_ids: self.max_event_ids,
        }
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            rules: vec![PathBuf::from(crate::rules::BUILTIN)],
            // Present and empty: the pack's shadow-server rule loads out of the box, and with
            // no inventory every server is unapproved (said once as a warning at load).
            lists: HashMap::from([(APPROVED_SERVERS.to_string(), Vec::new())]),
            group_id: "mcpsiem-detect".into(),
            scope: crate::rules::RuleScope::All,
            metrics_addr: "127.0.0.1:9462".into(),
            allowed_lateness_seconds: engine.allowed_lateness_seconds,
            max_state_entries: engine.max_state_entries,
            suppress_seconds: engine.suppress_seconds,
            repeat_seconds: engine.repeat_seconds,
            max_event_ids: engine.max_event_ids,
            state_path: PathBuf::from("data/detect/state.json"),
            snapshot_seconds: 30,
            watch_rules: true,
        }
    }
}
