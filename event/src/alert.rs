//! Alerts: what the detector raises, as the alerts topic carries them and the lake's
//! `alerts` table stores them. Part of the contract between stages: the detector writes
//! them, the ingester stores them, alert delivery and the query service read them.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int64Builder, ListBuilder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::Timestamp;

/// The Sigma rule levels, lowest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Informational,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// What kind of rule raised the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    Detection,
    Correlation,
    FirstSeen,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Detection => "detection",
            AlertSource::Correlation => "correlation",
            AlertSource::FirstSeen => "first_seen",
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// A ULID whose time is the last matching event's and whose rest is derived from the
    /// rule and the events, so the live path and a replay give the same id.
    pub id: String,
    pub rule_id: String,
    pub rule_title: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub source: AlertSource,
    pub first_time: Timestamp,
    pub last_time: Timestamp,
    /// Group-by field values (for detection rules: the session, token or address key).
    pub group: BTreeMap<String, String>,
    /// Matching events (for correlations, all events in the window, even past the cap).
    pub count: u64,
    /// Matching event ids, capped.
    pub event_ids: Vec<String>,
    /// Ready to run in the query service: the matched events.
    pub sql: String,
}

/// Why a record of the alerts topic is not an alert.
#[derive(Debug, thiserror::Error)]
#[error("not an alert: {0}")]
pub struct AlertDecodeError(String);

impl Alert {
    /// The compact JSON form for the alerts topic.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an alert always serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, AlertDecodeError> {
        serde_json::from_slice(bytes).map_err(|e| AlertDecodeError(e.to_string()))
    }
}

/// The Arrow schema of the lake's `alerts` table. `alert_time` (the last matching event's
/// time) partitions and sorts it.
pub fn alert_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        Arc::new(Schema::new(vec![
            Field::new("alert_time", time(), false),
            Field::new("alert_id", DataType::Utf8, false),
            Field::new("rule_id", DataType::Utf8, false),
            Field::new("rule_title", DataType::Utf8, false),
            Field::new("level", DataType::Utf8, false),
            Field::new("tags", list(), true),
            Field::new("source", DataType::Utf8, false),
            Field::new("first_time", time(), false),
            Field::new("last_time", time(), false),
            Field::new("group_values", crate::schema::attributes_data_type(), true),
            Field::new("event_count", DataType::Int64, false),
            Field::new("event_ids", list(), true),
            Field::new("sql", DataType::Utf8, false),
        ]))
    });
    SCHEMA.clone()
}

/// Alerts as one record batch of [`alert_schema`].
pub fn alert_batch(alerts: &[Alert]) -> RecordBatch {
    let n = alerts.len();
    let time = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut alert_time, mut first_time, mut last_time) = (time(), time(), time());
    let mut id = StringBuilder::new();
    let mut rule_id = StringBuilder::new();
    let mut rule_title = StringBuilder::new();
    let mut level = StringBuilder::new();
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut source = StringBuilder::new();
    let mut group = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut count = Int64Builder::with_capacity(n);
    let mut event_ids = ListBuilder::new(StringBuilder::new());
    let mut sql = StringBuilder::new();
    for alert in alerts {
        alert_time.append_value(alert.last_time.as_micros());
        id.append_value(&alert.id);
        rule_id.append_value(&alert.rule_id);
        rule_title.append_value(&alert.rule_title);
        level.append_value(alert.level.as_str());
        for tag in &alert.tags {
            tags.values().append_value(tag);
        }
        tags.append(true);
        source.append_value(alert.source.as_str());
        first_time.append_value(alert.first_time.as_micros());
        last_time.append_value(alert.last_time.as_micros());
        for (key, value) in &alert.group {
            group.keys().append_value(key);
            group.values().append_value(value);
        }
        group.append(true).expect("keys and values were appended in pairs");
        count.append_value(i64::try_from(alert.count).unwrap_or(i64::MAX));
        for event_id in &alert.event_ids {
            event_ids.values().append_value(event_id);
        }
        event_ids.append(true);
        sql.append_value(&alert.sql);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(alert_time.finish()),
        Arc::new(id.finish()),
        Arc::new(rule_id.finish()),
        Arc::new(rule_title.finish()),
        Arc::new(level.finish()),
        Arc::new(tags.finish()),
        Arc::new(source.finish()),
        Arc::new(first_time.finish()),
        Arc::new(last_time.finish()),
        Arc::new(group.finish()),
        Arc::new(count.finish()),
        Arc::new(event_ids.finish()),
        Arc::new(sql.finish()),
    ];
    RecordBatch::try_new(alert_schema(), columns).expect("columns match the alert schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            id: "01JABCDEF0000000000000000".into(),
            rule_id: "r1".into(),
            rule_title: "Rule one".into(),
            level: Level::High,
            tags: vec!["attack.t1550".into()],
            source: AlertSource::Correlation,
            first_time: Timestamp::from_micros(1_000_000),
            last_time: Timestamp::from_micros(2_000_000),
            group: BTreeMap::from([("mcp.session.id".to_string(), "s1".to_string())]),
            count: 3,
            event_ids: vec!["e1".into(), "e2".into(), "e3".into()],
            sql: "SELECT 1".into(),
        }
    }

    #[test]
    fn an_alert_round_trips_through_json_and_fills_a_batch() {
        let a = alert();
        let back = Alert::from_json(a.to_json().as_bytes()).unwrap();
        assert_eq!(back, a);
        let batch = alert_batch(&[a.clone(), a]);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), alert_schema());
    }

    #[test]
    fn a_record_that_is_not_an_alert_says_so() {
        let error = Alert::from_json(b"{\"id\": 1}").unwrap_err().to_string();
        assert!(error.starts_with("not an alert"), "{error}");
    }
}
