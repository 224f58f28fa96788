//! The `ocsf` answer format: rows of the `alerts` table as OCSF Detection Findings, one JSON
//! object per line (the mapping is the event contract's, `mcpsiem_event::ocsf`, the same the
//! `ocsf` delivery destination sends).

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::record_batch::RecordBatch;
use mcpsiem_event::{Alert, AlertSource, Level, Timestamp};
use serde_json::{Map, Value};

/// The `alerts` columns a finding cannot do without.
const REQUIRED: [&str; 7] = ["alert_id", "rule_id", "rule_title", "level", "source", "first_time", "last_time"];

/// `Err` with what to select when the answer lacks an alert's columns.
pub fn check_columns(schema: &Schema) -> Result<(), String> {
    let missing: Vec<&str> = REQUIRED.into_iter().filter(|c| schema.field_with_name(c).is_err()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "format `ocsf` turns rows of the alerts table into findings: select its columns \
         (SELECT * FROM alerts …); missing: {}",
        missing.join(", ")
    ))
}

/// The findings of `batch`'s rows, one JSON line each.
pub fn findings(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut writer = LineDelimitedWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    let rows = writer.into_inner();
    let mut out = Vec::with_capacity(rows.len() * 2);
    for line in rows.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let row: Map<String, Value> = serde_json::from_slice(line).map_err(|e| ArrowError::JsonError(e.to_string()))?;
        let alert = alert_of(&row).map_err(ArrowError::InvalidArgumentError)?;
        serde_json::to_writer(&mut out, &mcpsiem_event::ocsf::detection_finding(&alert, env!("CARGO_PKG_VERSION")))
            .map_err(|e| ArrowError::JsonError(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

fn alert_of(row: &Map<String, Value>) -> Result<Alert, String> {
    let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let time =
        |name: &str| Timestamp::parse(&text(name)).map_err(|e| format!("`{name}` of alert {}: {e}", text("alert_id")));
    let strings = |name: &str| -> Vec<String> {
        row.get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let group: BTreeMap<String, String> = row
        .get("group_values")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
        .unwrap_or_default();
    let source: AlertSource = serde_json::from_value(Value::String(text("source")))
        .map_err(|_| format!("`source` of alert {} is not a rule kind: {}", text("alert_id"), text("source")))?;
    Ok(Alert {
        id: text("alert_id"),
        rule_id: text("rule_id"),
        rule_title: text("rule_title"),
        level: Level::parse(&text("level")).unwrap_or_default(),
        tags: strings("tags"),
        source,
        first_time: time("first_time")?,
        last_time: time("last_time")?,
        group,
        count: row.get("event_count").and_then(Value::as_u64).unwrap_or_default(),
        event_ids: strings("event_ids"),
        sql: text("sql"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            id: "01JD0000000000000000000000".into(),
            rule_id: "r-1".into(),
            rule_title: "Token replayed".into(),
            level: Level::Critical,
            tags: vec!["attack.credential_access".into(), "attack.t1550.001".into()],
            source: AlertSource::Correlation,
            first_time: Timestamp::parse("2026-11-24T10:00:00Z").unwrap(),
            last_time: Timestamp::parse("2026-11-24T10:05:00.5Z").unwrap(),
            group: BTreeMap::from([("client.address".to_string(), "203.0.113.7".to_string())]),
            count: 3,
            event_ids: vec!["e1".into(), "e2".into()],
            sql: "SELECT 1".into(),
        }
    }

    #[test]
    fn rows_of_the_alerts_table_become_the_same_findings_as_the_alerts() {
        let original = alert();
        let batch = mcpsiem_event::alert_batch(std::slice::from_ref(&original));
        let bytes = findings(&batch).unwrap();
        let line: Value = serde_json::from_slice(bytes.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(line, mcpsiem_event::ocsf::detection_finding(&original, env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn an_answer_without_the_alert_columns_is_refused_with_what_to_select() {
        let batch = mcpsiem_event::alert_batch(&[alert()]);
        assert!(check_columns(&batch.schema()).is_ok());
        let projected = batch.project(&[1, 2]).unwrap();
        let message = check_columns(&projected.schema()).unwrap_err();
        assert!(message.contains("SELECT * FROM alerts") && message.contains("missing: rule_title"), "{message}");
    }
}
