//! Alerts: what a rule raises, with everything a responder needs to start.

use std::collections::BTreeMap;

use crate::stable_hash::stable_hash;
use mcpsiem_event::Timestamp;

pub use mcpsiem_event::{Alert, AlertSource};

/// The alert a rule raises: its id derives from the rule and the events.
pub fn raise(
    rule: &crate::rules::RuleMeta,
    source: AlertSource,
    times: (Timestamp, Timestamp),
    group: BTreeMap<String, String>,
    count: u64,
    event_ids: Vec<String>,
) -> Alert {
    let key = rule.key().to_string();
    let mut seed = key.clone();
    for id in &event_ids {
        seed.push('\n');
        seed.push_str(id);
    }
    let millis = (times.1.as_micros().max(0) / 1000) as u64;
    let id = ulid::Ulid::from_parts(millis, stable_hash(seed.as_bytes())).to_string();
    let sql = matched_events_sql(times, &event_ids);
    Alert {
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
