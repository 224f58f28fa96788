//! The Kafka side of the contract: where events and alerts travel, and how clients connect.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Kafka connection and topics, shared by every stage.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated (`host:port,host:port`). Empty means: `mcpsiem up`
    /// starts its embedded broker.
    pub brokers: String,
    /// The topic collectors write audit events to and the ingester and detector read.
    pub events_topic: String,
    /// The topic the detector writes alerts to.
    pub alerts_topic: String,
    /// The topic the query service writes analysts' alert changes to (acknowledge, assign,
    /// close…), stored by the ingester in the lake's `alert_changes` table.
    pub alert_changes_topic: String,
    /// The topic the query service writes silences to; the delivery stage follows it and
    /// the ingester stores it in the lake's `silences` table.
    pub silences_topic: String,
    /// Partitions of the topics mcpsiem creates when they are missing: the most consumers
    /// one group (ingesters, detectors) can spread over.
    pub partitions: i32,
    /// Replication factor of the topics mcpsiem creates.
    pub replication_factor: i32,
    /// Extra librdkafka properties (for example `security.protocol`, `sasl.mechanism`),
    /// passed through unchanged.
    pub properties: BTreeMap<String, String>,
    /// A consumer that holds no partition while some partition's backlog has not been
    /// consumed for this many seconds leaves its group and joins again (0: never). This
    /// unsticks a group whose coordinator settled on a member that is gone; see
    /// [`crate::group_watch`].
    pub stuck_group_seconds: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            events_topic: "mcpsiem.events".into(),
            alerts_topic: "mcpsiem.alerts".into(),
            alert_changes_topic: "mcpsiem.alert-changes".into(),
            silences_topic: "mcpsiem.silences".into(),
            partitions: 6,
            replication_factor: 1,
            properties: BTreeMap::new(),
            stuck_group_seconds: 60,
        }
    }
}

impl KafkaConfig {
    /// The watch every consumer of `topic` runs over its group. `commit_every` is the longest
    /// a healthy member of that group goes without committing a partition it is consuming:
    /// the watch waits at least twice that, so a healthy group never looks stuck.
    pub fn group_watch(&self, topic: &str, commit_every: std::time::Duration) -> crate::group_watch::GroupWatch {
        let interval = match self.stuck_group_seconds {
            0 => std::time::Duration::ZERO,
            seconds => std::time::Duration::from_secs(seconds).max(commit_every * 2),
        };
        crate::group_watch::GroupWatch::new(topic, interval)
    }

    /// A librdkafka client configuration with the brokers and the extra properties set.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// The fields events are keyed by in Kafka, in order: the first one an event has is its
/// key. Every event of one user, token, session or client address (for events without a
/// user, token or session) lands in one partition, so a detector instance that owns the
/// partition sees all of them: the rules that group by these fields stay correct when
/// detectors scale out (docs/scaling.md).
pub const KEY_FIELDS: [&str; 4] = ["enduser.id", "auth.token.fingerprint", "mcp.session.id", "client.address"];

/// The message key for an event: the first of [`KEY_FIELDS`] it has.
pub fn event_key<'e>(event: &'e mcpsiem_event::McpEvent<'_>) -> Option<&'e str> {
    event
        .user_id
        .as_deref()
        .or(event.token_fingerprint.as_deref())
        .or(event.session_id.as_deref())
        .or(event.client_address.as_deref())
}
