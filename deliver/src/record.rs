//! The lake's `alert_deliveries` table: how each (alert, destination) delivery ended,
//! delivered or dead, so responders and auditors see it with SQL in the query service.
//! One small JSON object per finished delivery under `alert_deliveries/date=YYYY-MM-DD/`
//! (alerts are few; the query service reads them like the audit log).

use mcpsiem_event::{Alert, Timestamp};
use mcpsiem_lake::{JsonRecords, Lake};
use serde::Serialize;

use super::outbox::Finished;

pub const ROOT: &str = "alert_deliveries";

/// One row of `alert_deliveries`.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub finished_time: String,
    pub alert_id: String,
    pub rule_id: String,
    pub rule_title: String,
    pub level: String,
    pub destination: String,
    pub status: String,
    pub attempts: u32,
    pub enqueued_time: String,
    pub reference: Option<String>,
    pub last_error: Option<String>,
    pub http_status: Option<u16>,
}

impl DeliveryRow {
    pub fn new(record: &Finished, alert: &Alert) -> Self {
        Self {
            finished_time: Timestamp::from_micros(record.finished_us).to_string(),
            alert_id: record.alert_id.clone(),
            rule_id: record.rule_id.clone(),
            rule_title: alert.rule_title.clone(),
            level: alert.level.as_str().into(),
            destination: record.destination.clone(),
            status: record.status.clone(),
            attempts: record.attempts,
            enqueued_time: Timestamp::from_micros(record.enqueued_us).to_string(),
            reference: record.reference.clone(),
            last_error: record.last_error.clone(),
            http_status: record.last_status,
        }
    }
}

/// Writes the rows, one object per (alert, destination).
#[derive(Clone)]
pub struct DeliveryLog {
    records: JsonRecords,
}

impl DeliveryLog {
    pub fn new(lake: Lake) -> Self {
        Self { records: JsonRecords::new(lake, ROOT) }
    }

    /// Stores the row of a finished delivery before the outbox marks it. A crash between
    /// the two sends the alert again after the restart, and its row is written again under
    /// the same name and date (the delivery's key and the day it was enqueued): one row per
    /// delivery whatever the crash. A failure is logged and counted, not retried.
    pub async fn write(&self, record: &Finished, alert: &Alert) {
        let row = DeliveryRow::new(record, alert);
        let date = row.enqueued_time.get(..10).unwrap_or("unknown").to_string();
        let name: String = record
            .key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
            .collect();
        if let Err(e) = self.records.write_named(&date, &name, &row).await {
            tracing::error!(error = %e, alert = %row.alert_id, "cannot record the delivery in the lake");
            metrics::counter!("mcpsiem_delivery_log_failures_total").increment(1);
        }
    }

    pub async fn flush(&self) {
        self.records.flush().await;
    }
}
