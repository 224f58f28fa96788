//! Alerts: what a rule raises, with everything a responder needs to start.

use std::collections::BTreeMap;

use mcpsiem_event::Timestamp;
use sha2_free::stable_hash;

use crate::rules::Level;

/// What kind of rule raised the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    Detection,
    Correlation,
    FirstSeen,
}

/// One alert, as written to the alerts topic and the lake's `alerts` table.
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

impl Alert {
    pub fn new(
        rule: &crate::rules::RuleMeta,
        source: AlertSource,
        times: (Timestamp, Timestamp),
        group: BTreeMap<String, String>,
        count: u64,
        event_ids: Vec<String>,
    ) -> Self {
        let key = rule.key().to_string();
        let mut seed = key.clone();
        for id in &event_ids {
            seed.push('\n');
            seed.push_str(id);
        }
        let millis = (times.1.as_micros().max(0) / 1000) as u64;
        let id = ulid::Ulid::from_parts(millis, stable_hash(seed.as_bytes())).to_string();
        let sql = matched_events_sql(times, &event_ids);
        Self {
            id,
            rule_id: key,
            rule_title: rule.title.clone(),
            level: rule.level,
            tags: rule.tags.clone(),
            source,
            first_time: times.0,
            last_time: times.1,
            group,
            count,
            event_ids,
            sql,
        }
    }

    /// The compact JSON form for the alerts topic.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an alert always serializes")
    }
}

/// SQL that shows the matched events: bounded by time so the lake prunes partitions, and
/// by id so it is exact.
pub fn matched_events_sql(times: (Timestamp, Timestamp), event_ids: &[String]) -> String {
    let ids: Vec<String> = event_ids.iter().map(|id| format!("'{}'", id.replace('\'', "''"))).collect();
    format!(
        "SELECT * FROM events WHERE event_time BETWEEN TIMESTAMP '{}' AND TIMESTAMP '{}' AND event_id IN ({}) ORDER BY event_time",
        times.0,
        times.1,
        if ids.is_empty() { "NULL".to_string() } else { ids.join(", ") }
    )
}

/// A 128-bit hash that is the same in every process and version (unlike `DefaultHasher`).
mod sha2_free {
    /// FNV-1a over 128 bits.
    pub fn stable_hash(bytes: &[u8]) -> u128 {
        const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
        const PRIME: u128 = 0x0000000001000000000000000000013B;
        bytes.iter().fold(OFFSET, |hash, byte| (hash ^ u128::from(*byte)).wrapping_mul(PRIME))
    }
}
