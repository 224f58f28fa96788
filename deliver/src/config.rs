//! `[delivery]`: where alerts go, which ones, and how hard to try.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mcpsiem_event::Level;
use serde::{Deserialize, Serialize};

pub use crate::destinations::DestinationKind;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The durable outbox: alerts are stored here before any delivery is tried.
    pub outbox_path: PathBuf,
    /// Kafka consumer group of the delivery stage on the alerts topic.
    pub group_id: String,
    /// Base URL of the query service, for the link each message carries.
    pub query_url: String,
    /// Prometheus `/metrics` (`HOST:PORT`); empty: off.
    pub metrics_addr: String,
    /// Deliveries tried at once, over all destinations.
    pub concurrency: usize,
    /// Finished deliveries remembered (so a re-read alert is not sent again), in days.
    pub remember_days: u64,
    pub retry: RetryConfig,
    /// Destinations by name.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Which alerts go where; the first matching route wins unless it says `continue`.
    /// With no routes, every alert goes to every destination.
    pub routes: Vec<RouteConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            outbox_path: PathBuf::from("data/outbox.redb"),
            group_id: "mcpsiem-delivery".into(),
            query_url: "http://127.0.0.1:9480".into(),
            metrics_addr: "127.0.0.1:9463".into(),
            concurrency: 16,
            remember_days: 30,
            retry: RetryConfig::default(),
            destinations: BTreeMap::new(),
            routes: Vec::new(),
        }
    }
}

/// Retries: exponential backoff with full jitter, capped; a 429's `Retry-After` wins.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A delivery still failing this long after its alert arrived is dead-lettered.
    pub give_up_after_seconds: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_attempts: 20, initial_backoff_ms: 1000, max_backoff_ms: 300_000, give_up_after_seconds: 86_400 }
    }
}

/// One destination. (Unknown keys are refused by the type's own settings: `serde(flatten)`
/// hands them there.)
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DestinationConfig {
    #[serde(flatten)]
    pub kind: DestinationKind,
    /// Most messages per minute to this destination; more wait (0: no limit).
    #[serde(default)]
    pub rate_per_minute: u32,
    /// Seconds one attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// A minijinja template replacing the default title (Slack, Teams, Jira, PagerDuty, email).
    #[serde(default)]
    pub title_template: Option<String>,
    /// A minijinja template replacing the default body text.
    #[serde(default)]
    pub body_template: Option<String>,
}

fn default_timeout() -> u64 {
    10
}

/// Which alerts a route takes, and where it sends them. Every condition given must hold.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub destinations: Vec<String>,
    /// The alert's level is at least this.
    pub min_level: Option<Level>,
    /// The rule has at least one of these tags (such as `attack.credential_access`).
    pub tags: Vec<String>,
    /// The rule is one of these ids.
    pub rule_ids: Vec<String>,
    /// The alert arrives within these UTC hours, `"08-18"` (from 08:00 to 17:59) or
    /// `"22-06"` (over midnight).
    pub hours: Option<String>,
    /// Days of the week (`mon`…`sun`), UTC.
    pub days: Vec<String>,
    /// Keep evaluating later routes after this one matched.
    #[serde(rename = "continue")]
    pub continue_matching: bool,
}
