//! The alert workflow of the query service: the queue (`alert_status`), one alert with its
//! history and events, and the changes analysts make (acknowledge, assign, close, reopen,
//! comment).
//!
//! A change is accepted once the alert-changes topic has it (acknowledged by every in-sync
//! replica); the ingester then stores it in the lake's `alert_changes` table exactly once,
//! within `ingest.roll_seconds`. Until the lake shows it, this service keeps the changes it
//! accepted ([`Triage::recent`]) and answers with them, so an analyst sees their own change
//! at once. Changes of one alert are made one at a time in this service (a lock per alert):
//! each is checked against the state the one before left. Between several query services
//! the last change (by time, then id) decides, as `AlertStatus::from_changes` says.

pub mod filter;
pub mod http;
pub mod incidents;
pub mod insights;
pub mod silences;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mcpsiem_event::{AlertChange, AlertStatus, ChangeAction, Timestamp};
use mcpsiem_runtime::auth::{Caller, Role};
use serde_json::{Map, Value};

use crate::engine::{QueryEngine, QueryRequest};
use crate::tables::TimeRange;
use crate::{QueryAnswer, QueryError};
use filter::{AlertFilter, quote};

/// Where accepted changes go: the alert-changes topic.
#[async_trait::async_trait]
pub trait ChangeSink: Send + Sync {
    /// Returns once the change is stored durably; the error says what failed.
    async fn publish(&self, change: &AlertChange) -> Result<(), String>;
}

/// The alert-changes topic through an [`AckedProducer`](mcpsiem_runtime::producer::AckedProducer).
pub struct KafkaChangeSink(pub mcpsiem_runtime::producer::AckedProducer);

#[async_trait::async_trait]
impl ChangeSink for KafkaChangeSink {
    async fn publish(&self, change: &AlertChange) -> Result<(), String> {
        // Keyed by alert: one alert's changes keep their order in one partition.
        self.0.publish(&change.alert_id, change.to_json().as_bytes()).await.map_err(|e| e.to_string())
    }
}

/// Where the workflow stores what analysts do: alert changes and silences. Without them (no
/// Kafka configured) alerts and silences are read, not changed.
#[derive(Clone, Default)]
pub struct WorkflowSinks {
    pub changes: Option<Arc<dyn ChangeSink>>,
    pub silences: Option<Arc<dyn silences::SilenceSink>>,
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// What was not found, and where to look.
    #[error("{0}")]
    NotFound(String),
    /// The change does not fit the alert's state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    /// The alert-changes topic cannot take it now: nothing was changed.
    #[error("the change was not stored, try again: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl TriageError {
    pub fn code(&self) -> &'static str {
        match self {
            TriageError::NotFound(_) => "not_found",
            TriageError::Conflict(_) => "conflict",
            TriageError::Forbidden(_) => "forbidden",
            TriageError::Invalid(_) => "invalid_change",
            TriageError::Unavailable(_) => "unavailable",
            TriageError::Query(e) => e.code(),
        }
    }
}

/// How long an accepted change is kept here after the lake could have it: well past
/// `ingest.roll_seconds` (60 s by default) and a commit.
const RECENT_FOR: Duration = Duration::from_secs(600);
/// Locks changes of one alert take (by hash of the id): bounded, whatever the number of alerts.
const LOCKS: usize = 64;
/// The queue first looks back this many days: the first page of the newest alerts is almost
/// always within the last day, and reading a day of a month's lake instead of all of it is
/// what makes the page fast. A page a window cannot fill is asked again over a wider one,
/// sized from what the narrower held, and past `WIDEST_WINDOW_DAYS` over everything.
const FIRST_WINDOW_DAYS: f64 = 1.0;
const WIDEST_WINDOW_DAYS: f64 = 45.0;
const DAY_MICROS: i64 = 86_400_000_000;
/// The longest alert id accepted (ULIDs are 26 characters).
const MAX_ALERT_ID: usize = 64;

/// Changes accepted here, per alert, and when each alert's were last touched.
#[derive(Default)]
struct Recent {
    changes: HashMap<String, (Vec<AlertChange>, Instant)>,
}

impl Recent {
    fn prune(&mut self) {
        self.changes.retain(|_, (_, at)| at.elapsed() < RECENT_FOR);
    }
}

/// One page of the queue.
#[derive(Debug, serde::Serialize)]
pub struct AlertPage {
    pub alerts: Vec<Value>,
    /// The `offset` of the next page, when there is one.
    pub next_offset: Option<usize>,
}

/// One alert: the row, its state, its changes and its events.
#[derive(Debug, serde::Serialize)]
pub struct AlertDetail {
    pub alert: Value,
    pub status: AlertStatus,
    pub history: Vec<AlertChange>,
    pub events: Vec<Value>,
}

/// What a change did.
#[derive(Debug, serde::Serialize)]
pub struct ChangeOutcome {
    pub change: AlertChange,
    pub status: AlertStatus,
}

/// The alert workflow over one query engine.
#[derive(Clone)]
pub struct Triage {
    engine: QueryEngine,
    sink: Option<Arc<dyn ChangeSink>>,
    silence_sink: Option<Arc<dyn silences::SilenceSink>>,
    recent: Arc<Mutex<Recent>>,
    /// Silence versions accepted here, and when.
    recent_silences: Arc<Mutex<Vec<(mcpsiem_event::silence::Silence, Instant)>>>,
    locks: Arc<Vec<tokio::sync::Mutex<()>>>,
}

impl Triage {
    /// The workflow, storing what analysts do in `sinks`.
    pub fn new(engine: QueryEngine, sinks: WorkflowSinks) -> Self {
        Self {
            engine,
            sink: sinks.changes,
            silence_sink: sinks.silences,
            recent: Arc::default(),
            recent_silences: Arc::default(),
            locks: Arc::new((0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect()),
        }
    }

    pub fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    /// Runs service-made SQL as `caller` (audited like their own queries) into JSON rows.
    /// A file that vanished under the query (compaction replaced it after the query listed
    /// the table) makes one more try, on the table's new snapshot.
    async fn rows(
        &self,
        caller: &Caller,
        sql: String,
        range: TimeRange,
    ) -> Result<Vec<Map<String, Value>>, QueryError> {
        match self.rows_once(caller, sql.clone(), range).await {
            Err(QueryError::Execution(message)) if message.contains("not found") => {
                tracing::debug!(%message, "a lake file was replaced under the query; asking again");
                self.rows_once(caller, sql, range).await
            }
            other => other,
        }
    }

    async fn rows_once(
        &self,
        caller: &Caller,
        sql: String,
        range: TimeRange,
    ) -> Result<Vec<Map<String, Value>>, QueryError> {
        let answer = self.engine.run(caller, QueryRequest { sql, range, ..QueryRequest::default() }).await?;
        let mut stream = answer.stream;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch?);
        }
        let bytes = crate::format::json_rows(&batches).map_err(|e| QueryError::Execution(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| QueryError::Execution(e.to_string()))
    }

    /// The changes accepted here for `alert_id` that the lake may not show yet.
    fn recent_changes(&self, alert_id: &str) -> Vec<AlertChange> {
        let mut recent = self.recent.lock().expect("no panics under the lock");
        recent.prune();
        recent.changes.get(alert_id).map(|(changes, _)| changes.clone()).unwrap_or_default()
    }

    /// The alerts changed here that the lake may not show changed yet.
    fn recently_changed(&self) -> Vec<String> {
        let mut recent = self.recent.lock().expect("no panics under the lock");
        recent.prune();
        recent.changes.keys().cloned().collect()
    }

    /// One page of the queue, newest first, with the changes accepted here applied.
    pub async fn list(&self, caller: &Caller, filter: &AlertFilter) -> Result<AlertPage, QueryError> {
        let columns = "alert_id, alert_time, rule_id, rule_title, level, source, first_time, last_time, \
                       event_count, group_values, tags, state, assignee, verdict, updated_at, changes, repeats, last_seen";
        let changed = self.recently_changed();
        let sql = filter.sql(columns, &changed);
        let now = Timestamp::now();
        let wanted = filter.offset + filter.limit + 1;
        let mut days = FIRST_WINDOW_DAYS;
        let mut rows;
        loop {
            // The window's start, never before the caller's own `from`; past the widest
            // window, everything from `from` on.
            let start = if days >= WIDEST_WINDOW_DAYS {
                filter.from
            } else {
                let window = now.plus_micros(-(days * DAY_MICROS as f64) as i64);
                Some(filter.from.map_or(window, |from| from.max(window)))
            };
            rows = self.rows(caller, sql.clone(), TimeRange { start, end: None }).await?;
            // Enough rows: every alert outside the window is older than all of them.
            if rows.len() > filter.limit || start == filter.from {
                break;
            }
            // The next window from how many alerts this one held (a filter few alerts meet
            // would otherwise read the lake again at every step), at least twice as wide.
            let held = if rows.is_empty() { 0 } else { rows.len() + filter.offset };
            let grow = if held == 0 { 8.0 } else { (wanted as f64 / held as f64 * 1.5).max(2.0) };
            days *= grow;
        }
        let next_offset = (rows.len() > filter.limit).then_some(filter.offset + filter.limit);
        rows.truncate(filter.limit);
        let mut alerts = Vec::with_capacity(rows.len());
        for mut row in rows {
            let id = row.get("alert_id").and_then(Value::as_str).unwrap_or_default().to_string();
            let recent = self.recent_changes(&id);
            if !recent.is_empty() {
                // The lake's changes of this alert and the ones accepted since.
                let mut changes = self.lake_changes(caller, &id).await?;
                changes.extend(recent);
                let status = AlertStatus::from_changes(&changes);
                if !filter.states.is_empty() && !filter.states.contains(&status.state) {
                    continue;
                }
                apply_status(&mut row, &status);
            }
            alerts.push(Value::Object(row));
        }
        Ok(AlertPage { alerts, next_offset })
    }

    /// The same page as alert rows for another encoding (`ocsf`): every `alerts` column.
    pub async fn list_answer(&self, caller: &Caller, filter: &AlertFilter) -> Result<QueryAnswer, QueryError> {
        // The request's limit drops the look-ahead row the SQL asks for.
        let sql = filter.sql("*", &[]);
        let range = TimeRange { start: filter.from, end: None };
        self.engine.run(caller, QueryRequest { sql, range, limit: Some(filter.limit), ..QueryRequest::default() }).await
    }

    /// The changes of `alert_id` the lake holds, oldest first.
    async fn lake_changes(&self, caller: &Caller, alert_id: &str) -> Result<Vec<AlertChange>, QueryError> {
        let sql =
            format!("SELECT * FROM alert_changes WHERE alert_id = {} ORDER BY changed_at, change_id", quote(alert_id));
        let rows = self.rows(caller, sql, TimeRange::default()).await?;
        rows.iter().map(change_of_row).collect::<Result<_, _>>().map_err(QueryError::Execution)
    }

    /// The alert row, or `None`.
    async fn alert_row(&self, caller: &Caller, alert_id: &str) -> Result<Option<Map<String, Value>>, QueryError> {
        let sql = format!("SELECT * FROM alerts WHERE alert_id = {} LIMIT 1", quote(alert_id));
        Ok(self.rows(caller, sql, TimeRange::default()).await?.into_iter().next())
    }

    /// One alert with its state, history and matched events.
    pub async fn show(&self, caller: &Caller, alert_id: &str) -> Result<AlertDetail, TriageError> {
        check_id(alert_id)?;
        let Some(alert) = self.alert_row(caller, alert_id).await? else {
            return Err(TriageError::NotFound(format!(
                "no alert {alert_id} in the lake; check the id (GET /api/v1/alerts lists them)"
            )));
        };
        let mut history = self.lake_changes(caller, alert_id).await?;
        let known: std::collections::HashSet<String> = history.iter().map(|c| c.change_id.clone()).collect();
        history.extend(self.recent_changes(alert_id).into_iter().filter(|c| !known.contains(&c.change_id)));
        history.sort_by(|a, b| (a.changed_at, &a.change_id).cmp(&(b.changed_at, &b.change_id)));
        // A record stored twice (a stage's record read again after a crash) is one change.
        history.dedup_by(|a, b| a.change_id == b.change_id);
        let status = AlertStatus::from_changes(&history);
        let events = self.events_of(caller, &alert).await?;
        Ok(AlertDetail { alert: Value::Object(alert), status, history, events })
    }

    /// The events an alert names, read from the hours of its first to last time.
    async fn events_of(&self, caller: &Caller, alert: &Map<String, Value>) -> Result<Vec<Value>, QueryError> {
        let ids: Vec<String> = alert
            .get("event_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).map(quote).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let time = |name: &str| alert.get(name).and_then(Value::as_str).and_then(|t| Timestamp::parse(t).ok());
        let range = TimeRange {
            start: time("first_time"),
            end: time("last_time").map(|t| Timestamp::from_micros(t.as_micros().saturating_add(1))),
        };
        let sql = format!("SELECT * FROM events WHERE event_id IN ({}) ORDER BY event_time", ids.join(", "));
        Ok(self.rows(caller, sql, range).await?.into_iter().map(Value::Object).collect())
    }

    /// Makes one change of one alert for `caller`, through `interface` (`api`, `cli`,
    /// `console`): checked against the alert's state, stored, then answered.
    pub async fn change(
        &self,
        caller: &Caller,
        alert_id: &str,
        action: ChangeAction,
        interface: &str,
    ) -> Result<ChangeOutcome, TriageError> {
        self.change_of(caller, alert_id, action, interface, false).await
    }

    /// The same for an incident (`INC-…`): its changes are alert changes under its id.
    pub async fn change_incident(
        &self,
        caller: &Caller,
        incident_id: &str,
        action: ChangeAction,
        interface: &str,
    ) -> Result<ChangeOutcome, TriageError> {
        if matches!(action, ChangeAction::Silence { .. }) {
            return Err(TriageError::Invalid("incidents are not silenced; silence their alerts' rules".into()));
        }
        self.change_of(caller, incident_id, action, interface, true).await
    }

    async fn change_of(
        &self,
        caller: &Caller,
        alert_id: &str,
        action: ChangeAction,
        interface: &str,
        incident: bool,
    ) -> Result<ChangeOutcome, TriageError> {
        if caller.role == Role::Auditor {
            return Err(TriageError::Forbidden(
                "auditor keys read alerts; an analyst or admin key changes them".to_string(),
            ));
        }
        check_id(alert_id)?;
        let Some(sink) = self.sink.clone() else {
            return Err(TriageError::Unavailable(
                "this query service has no Kafka brokers (kafka.brokers) to store alert changes on".to_string(),
            ));
        };
        let change = AlertChange::new(alert_id, &caller.name, interface, action);
        change.check().map_err(|e| TriageError::Invalid(e.to_string()))?;
        let lock = &self.locks[stable_index(alert_id)];
        let _one_at_a_time = lock.lock().await;
        if incident {
            self.find_incident(caller, alert_id, None).await?;
        } else if self.alert_row(caller, alert_id).await?.is_none() {
            return Err(TriageError::NotFound(format!(
                "no alert {alert_id} in the lake; check the id (GET /api/v1/alerts lists them)"
            )));
        }
        let mut changes = self.lake_changes(caller, alert_id).await?;
        changes.extend(self.recent_changes(alert_id));
        let before = AlertStatus::from_changes(&changes);
        before.allows(&change.action).map_err(TriageError::Conflict)?;
        sink.publish(&change).await.map_err(TriageError::Unavailable)?;
        {
            let mut recent = self.recent.lock().expect("no panics under the lock");
            let entry = recent.changes.entry(alert_id.to_string()).or_insert_with(|| (Vec::new(), Instant::now()));
            entry.0.push(change.clone());
            entry.1 = Instant::now();
        }
        changes.push(change.clone());
        metrics::counter!("mcpsiem_query_alert_changes_total", "action" => change.action.name()).increment(1);
        tracing::info!(alert = alert_id, actor = %caller.name, action = change.action.name(), "alert changed");
        Ok(ChangeOutcome { status: AlertStatus::from_changes(&changes), change })
    }
}

fn check_id(alert_id: &str) -> Result<(), TriageError> {
    check_id_of(alert_id, "an alert id")
}

/// An id as this service's ids are (ULIDs): `what` names it in the message.
fn check_id_of(id: &str, what: &str) -> Result<(), TriageError> {
    let fits = !id.is_empty()
        && id.len() <= MAX_ALERT_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fits {
        Ok(())
    } else {
        Err(TriageError::Invalid(format!(
            "`{}` is not {what} (letters, digits, - and _, at most {MAX_ALERT_ID})",
            id.chars().take(80).collect::<String>()
        )))
    }
}

fn stable_index(alert_id: &str) -> usize {
    // FNV-1a: the same alert always takes the same lock.
    let hash = alert_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % LOCKS as u64) as usize
}

/// Overwrites the row's state columns with `status`.
fn apply_status(row: &mut Map<String, Value>, status: &AlertStatus) {
    row.insert("state".into(), Value::from(status.state.as_str()));
    let optional = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    row.insert("assignee".into(), optional(status.assignee.as_deref()));
    row.insert("verdict".into(), optional(status.verdict.map(|v| v.as_str())));
    row.insert("updated_at".into(), optional(status.updated_at.map(|t| t.to_string()).as_deref()));
    row.insert("changes".into(), Value::from(status.changes));
    row.insert("repeats".into(), Value::from(status.repeats));
    if let Some(seen) = status.last_seen {
        let later = row.get("last_seen").and_then(Value::as_str).and_then(|t| Timestamp::parse(t).ok()) < Some(seen);
        if later {
            row.insert("last_seen".into(), Value::from(seen.to_string()));
        }
    }
}

/// A row of `alert_changes` back as the change it records.
pub fn change_of_row(row: &Map<String, Value>) -> Result<AlertChange, String> {
    let text = |name: &str| row.get(name).and_then(Value::as_str).map(str::to_owned);
    let required = |name: &str| text(name).ok_or_else(|| format!("an alert_changes row has no {name}"));
    let action = match required("action")?.as_str() {
        "acknowledge" => ChangeAction::Acknowledge,
        "assign" => ChangeAction::Assign { assignee: text("assignee") },
        "close" => {
            let verdict = required("verdict")?;
            let verdict =
                mcpsiem_event::Verdict::parse(&verdict).ok_or_else(|| format!("unknown verdict {verdict}"))?;
            ChangeAction::Close { verdict, comment: text("comment") }
        }
        "reopen" => ChangeAction::Reopen { comment: text("comment") },
        "comment" => ChangeAction::Comment { text: text("comment").unwrap_or_default() },
        "silence" => ChangeAction::Silence { silence_id: required("silence_id")? },
        "repeat" => {
            let time = |name: &str| -> Result<Timestamp, String> {
                Timestamp::parse(&required(name)?).map_err(|e| format!("{name}: {e}"))
            };
            ChangeAction::Repeat {
                count: row.get("repeat_count").and_then(Value::as_u64).unwrap_or(0),
                first_time: time("repeat_first_time")?,
                last_time: time("repeat_last_time")?,
                event_ids: row
                    .get("event_ids")
                    .and_then(Value::as_array)
                    .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
            }
        }
        other => return Err(format!("unknown alert change action {other}")),
    };
    Ok(AlertChange {
        change_id: required("change_id")?,
        alert_id: required("alert_id")?,
        changed_at: Timestamp::parse(&required("changed_at")?).map_err(|e| e.to_string())?,
        actor: required("actor")?,
        interface: required("interface")?,
        action,
    })
}

#[cfg(test)]
mod tests;
