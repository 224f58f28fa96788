//! Alert triage: what analysts do to an alert (acknowledge, assign, close with a verdict,
//! reopen, comment), each as one append-only [`AlertChange`] record. The query service
//! writes them to the alert-changes topic, the ingester stores them in the lake's
//! `alert_changes` table exactly once, and an alert's current state is derived from them
//! ([`AlertStatus::from_changes`], and the `alert_status` view in SQL, which must agree).
//! History is never rewritten.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::Timestamp;

/// Where an alert is in its triage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised, nobody has looked at it (also after a reopen: it is back in the queue).
    #[default]
    New,
    /// Someone is on it.
    Acknowledged,
    /// Decided, with a verdict.
    Closed,
    /// A silence held back its delivery; nobody has looked at it yet.
    Silenced,
}

impl AlertState {
    pub const ALL: [AlertState; 4] =
        [AlertState::New, AlertState::Acknowledged, AlertState::Closed, AlertState::Silenced];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::New => "new",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Closed => "closed",
            AlertState::Silenced => "silenced",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What an analyst concluded when closing an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A real attack or policy breach.
    TruePositive,
    /// The rule matched something it should not have.
    FalsePositive,
    /// The rule matched what it should, but the activity was allowed (a test, an admin).
    BenignPositive,
    /// Another alert covers it.
    Duplicate,
}

impl Verdict {
    pub const ALL: [Verdict; 4] =
        [Verdict::TruePositive, Verdict::FalsePositive, Verdict::BenignPositive, Verdict::Duplicate];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true_positive",
            Verdict::FalsePositive => "false_positive",
            Verdict::BenignPositive => "benign_positive",
            Verdict::Duplicate => "duplicate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// What one change does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ChangeAction {
    Acknowledge,
    /// Gives the alert to someone (`None` takes it away from whoever had it).
    Assign {
        assignee: Option<String>,
    },
    Close {
        verdict: Verdict,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    Reopen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    Comment {
        text: String,
    },
    /// A silence held the alert back from delivery: recorded by the delivery stage, never
    /// asked for.
    Silence {
        silence_id: String,
    },
    /// The alert's rule fired again for its group while the alert was open: the detector
    /// folds those matches into the alert instead of raising another (`detect.suppress_seconds`),
    /// and records them here, gathered over at most `detect.repeat_seconds`. Never asked for.
    Repeat {
        /// Matches folded in by this record.
        count: u64,
        first_time: Timestamp,
        last_time: Timestamp,
        /// Their event ids, capped like an alert's.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        event_ids: Vec<String>,
    },
}

impl ChangeAction {
    pub fn name(&self) -> &'static str {
        match self {
            ChangeAction::Acknowledge => "acknowledge",
            ChangeAction::Assign { .. } => "assign",
            ChangeAction::Close { .. } => "close",
            ChangeAction::Reopen { .. } => "reopen",
            ChangeAction::Comment { .. } => "comment",
            ChangeAction::Silence { .. } => "silence",
            ChangeAction::Repeat { .. } => "repeat",
        }
    }

    /// The state the alert is in after this change, for the changes that set one.
    pub fn state_after(&self) -> Option<AlertState> {
        match self {
            ChangeAction::Acknowledge => Some(AlertState::Acknowledged),
            ChangeAction::Close { .. } => Some(AlertState::Closed),
            ChangeAction::Reopen { .. } => Some(AlertState::New),
            ChangeAction::Silence { .. } => Some(AlertState::Silenced),
            ChangeAction::Assign { .. } | ChangeAction::Comment { .. } | ChangeAction::Repeat { .. } => None,
        }
    }

    fn comment(&self) -> Option<&str> {
        match self {
            ChangeAction::Close { comment, .. } | ChangeAction::Reopen { comment } => comment.as_deref(),
            ChangeAction::Comment { text } => Some(text),
            ChangeAction::Acknowledge
            | ChangeAction::Assign { .. }
            | ChangeAction::Silence { .. }
            | ChangeAction::Repeat { .. } => None,
        }
    }

    fn silence_id(&self) -> Option<&str> {
        match self {
            ChangeAction::Silence { silence_id } => Some(silence_id),
            _ => None,
        }
    }

    fn assignee(&self) -> Option<&str> {
        match self {
            ChangeAction::Assign { assignee } => assignee.as_deref(),
            _ => None,
        }
    }

    fn verdict(&self) -> Option<Verdict> {
        match self {
            ChangeAction::Close { verdict, .. } => Some(*verdict),
            _ => None,
        }
    }
}

/// One change of one alert, as the alert-changes topic carries it and the lake keeps it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertChange {
    /// A ULID, made when the change was accepted: with `changed_at` it orders the changes
    /// of one alert.
    pub change_id: String,
    pub alert_id: String,
    pub changed_at: Timestamp,
    /// The name of the API key that made it.
    pub actor: String,
    /// Through what: `api`, `cli`, `console`.
    pub interface: String,
    #[serde(flatten)]
    pub action: ChangeAction,
}

/// The actor of the changes the delivery stage records for silenced alerts.
pub const SILENCING_ACTOR: &str = "mcpsiem-delivery";
/// The actor of the repeats the detector records.
pub const DETECTING_ACTOR: &str = "mcpsiem-detect";

/// The longest comment, assignee or actor accepted, in bytes: a change is a small record.
pub const MAX_COMMENT_BYTES: usize = 8 << 10;
pub const MAX_NAME_BYTES: usize = 256;
/// The most event ids one repeat record carries (`detect.max_event_ids` is capped to it).
pub const MAX_REPEAT_EVENT_IDS: usize = 1000;

/// Why a record of the alert-changes topic, or a change asked for, is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlertChangeError {
    #[error("not an alert change: {0}")]
    Decode(String),
    #[error("{field} is {len} bytes; at most {max} are kept")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("{field} is empty")]
    Empty { field: &'static str },
}

impl AlertChange {
    /// A change made now, with a new id.
    pub fn new(alert_id: &str, actor: &str, interface: &str, action: ChangeAction) -> Self {
        Self {
            change_id: ulid::Ulid::new().to_string(),
            alert_id: alert_id.to_string(),
            changed_at: Timestamp::now(),
            actor: actor.to_string(),
            interface: interface.to_string(),
            action,
        }
    }

    /// The record that `silence_id` held `alert_id` back from delivery, made by the delivery
    /// stage. Its id derives from the alert and the silence, and its time is when the alert
    /// `arrived` on the alerts topic, so the same alert read again gives the same record.
    pub fn silenced(alert_id: &str, silence_id: &str, arrived: Timestamp) -> Self {
        Self {
            change_id: derived_id(arrived, &[alert_id, silence_id]),
            alert_id: alert_id.to_string(),
            changed_at: arrived,
            actor: SILENCING_ACTOR.to_string(),
            interface: "delivery".to_string(),
            action: ChangeAction::Silence { silence_id: silence_id.to_string() },
        }
    }

    /// The record of matches the detector folded into the open alert `alert_id`. Its id
    /// derives from the alert and the first folded event, and its time is the last folded
    /// event's, so the detector reading the same events again (after a crash) gives the same
    /// record, which counts once.
    pub fn repeated(alert_id: &str, count: u64, times: (Timestamp, Timestamp), event_ids: Vec<String>) -> Self {
        let first = event_ids.first().map(String::as_str).unwrap_or_default();
        let seed = times.0.as_micros().to_string();
        Self {
            change_id: derived_id(times.1, &[alert_id, first, &seed]),
            alert_id: alert_id.to_string(),
            changed_at: times.1,
            actor: DETECTING_ACTOR.to_string(),
            interface: "detect".to_string(),
            action: ChangeAction::Repeat { count, first_time: times.0, last_time: times.1, event_ids },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a change always serializes")
    }

    /// Decodes and checks a record of the alert-changes topic.
    pub fn from_json(bytes: &[u8]) -> Result<Self, AlertChangeError> {
        let change: Self = serde_json::from_slice(bytes).map_err(|e| AlertChangeError::Decode(e.to_string()))?;
        change.check()?;
        Ok(change)
    }

    /// The bounds every change keeps, whoever made it.
    pub fn check(&self) -> Result<(), AlertChangeError> {
        let names = [
            ("change_id", self.change_id.as_str()),
            ("alert_id", self.alert_id.as_str()),
            ("actor", self.actor.as_str()),
            ("interface", self.interface.as_str()),
        ];
        for (field, value) in names {
            if value.is_empty() {
                return Err(AlertChangeError::Empty { field });
            }
            if value.len() > MAX_NAME_BYTES {
                return Err(AlertChangeError::TooLong { field, len: value.len(), max: MAX_NAME_BYTES });
            }
        }
        if let Some(assignee) = self.action.assignee() {
            if assignee.is_empty() {
                return Err(AlertChangeError::Empty { field: "assignee" });
            }
            if assignee.len() > MAX_NAME_BYTES {
                return Err(AlertChangeError::TooLong { field: "assignee", len: assignee.len(), max: MAX_NAME_BYTES });
            }
        }
        if let Some(silence_id) = self.action.silence_id()
            && (silence_id.is_empty() || silence_id.len() > MAX_NAME_BYTES)
        {
            return Err(AlertChangeError::TooLong { field: "silence_id", len: silence_id.len(), max: MAX_NAME_BYTES });
        }
        if let ChangeAction::Repeat { event_ids, .. } = &self.action {
            if event_ids.len() > MAX_REPEAT_EVENT_IDS {
                return Err(AlertChangeError::TooLong {
                    field: "event_ids",
                    len: event_ids.len(),
                    max: MAX_REPEAT_EVENT_IDS,
                });
            }
            if let Some(long) = event_ids.iter().find(|id| id.len() > MAX_NAME_BYTES) {
                return Err(AlertChangeError::TooLong { field: "event_id", len: long.len(), max: MAX_NAME_BYTES });
            }
        }
        if let Some(comment) = self.action.comment() {
            if comment.len() > MAX_COMMENT_BYTES {
                return Err(AlertChangeError::TooLong { field: "comment", len: comment.len(), max: MAX_COMMENT_BYTES });
            }
            if matches!(self.action, ChangeAction::Comment { .. }) && comment.trim().is_empty() {
                return Err(AlertChangeError::Empty { field: "comment" });
            }
        }
        Ok(())
    }

    /// Whether an analyst did this (not a stage recording what happened to the alert).
    pub fn is_triage(&self) -> bool {
        !matches!(self.action, ChangeAction::Repeat { .. })
    }

    /// The order of an alert's changes: by time, then id (two made in one microsecond).
    fn order_key(&self) -> (Timestamp, &str) {
        (self.changed_at, &self.change_id)
    }
}

/// A ULID at `time` whose random part derives from `parts`: the same record made twice gets
/// the same id.
fn derived_id(time: Timestamp, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0]);
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let millis = u64::try_from(time.as_micros() / 1000).unwrap_or(0);
    ulid::Ulid::from_parts(millis, u128::from_be_bytes(random)).to_string()
}

/// An alert's current triage state, derived from its changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertStatus {
    pub state: AlertState,
    pub assignee: Option<String>,
    /// The verdict of the close that holds (none once reopened).
    pub verdict: Option<Verdict>,
    /// When the last triage change was made, if any.
    pub updated_at: Option<Timestamp>,
    /// Triage changes (repeats are not counted: nobody made them).
    pub changes: usize,
    /// Matches folded into the alert after it was raised (the detector's repeats).
    pub repeats: u64,
    /// The last folded match's time, if any.
    pub last_seen: Option<Timestamp>,
}

impl AlertStatus {
    /// The state after `changes` (of one alert, in any order): the last change that sets a
    /// state decides it (and the verdict), the last assignment decides the assignee.
    /// Concurrent changes therefore end in one state, the later's, and both are kept.
    pub fn from_changes<'a>(changes: impl IntoIterator<Item = &'a AlertChange>) -> Self {
        let mut sorted: Vec<&AlertChange> = changes.into_iter().collect();
        sorted.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        sorted.dedup_by(|a, b| a.change_id == b.change_id);
        let mut status = AlertStatus::default();
        for change in sorted {
            if let ChangeAction::Repeat { count, last_time, .. } = &change.action {
                status.repeats = status.repeats.saturating_add(*count);
                status.last_seen = status.last_seen.max(Some(*last_time));
                continue;
            }
            status.changes += 1;
            status.updated_at = Some(change.changed_at);
            if let Some(state) = change.action.state_after() {
                status.state = state;
                status.verdict = change.action.verdict();
            }
            if let ChangeAction::Assign { assignee } = &change.action {
                status.assignee = assignee.clone();
            }
        }
        status
    }

    /// Whether `action` may be asked for now; the message says why not and what to do.
    /// Closing a closed alert is allowed (it replaces the verdict): two analysts closing it
    /// at once both succeed, and the later close holds.
    pub fn allows(&self, action: &ChangeAction) -> Result<(), String> {
        match (action, self.state) {
            (ChangeAction::Silence { .. }, _) => {
                Err("silences are applied by the delivery stage; make a silence instead".to_string())
            }
            (ChangeAction::Repeat { .. }, _) => {
                Err("repeats are recorded by the detector when the rule fires again".to_string())
            }
            (ChangeAction::Acknowledge, AlertState::New | AlertState::Silenced) => Ok(()),
            (ChangeAction::Acknowledge, AlertState::Acknowledged) => {
                Err("the alert is acknowledged already".to_string())
            }
            (ChangeAction::Acknowledge, AlertState::Closed) => {
                Err("the alert is closed; reopen it before acknowledging it".to_string())
            }
            (ChangeAction::Reopen { .. }, AlertState::Closed) => Ok(()),
            (ChangeAction::Reopen { .. }, state) => {
                Err(format!("only a closed alert can be reopened; this one is {}", state.as_str()))
            }
            (ChangeAction::Assign { .. } | ChangeAction::Close { .. } | ChangeAction::Comment { .. }, _) => Ok(()),
        }
    }
}

/// The Arrow schema of the lake's `alert_changes` table; `changed_at` partitions it.
/// `state` is the state the change sets (empty for assignments and comments), so the
/// `alert_status` view is a plain "latest row" query any engine can run.
pub fn alert_change_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        Arc::new(Schema::new(vec![
            Field::new("changed_at", time.clone(), false),
            Field::new("change_id", DataType::Utf8, false),
            Field::new("alert_id", DataType::Utf8, false),
            Field::new("actor", DataType::Utf8, false),
            Field::new("interface", DataType::Utf8, false),
            Field::new("action", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, true),
            Field::new("assignee", DataType::Utf8, true),
            Field::new("verdict", DataType::Utf8, true),
            Field::new("comment", DataType::Utf8, true),
            Field::new("silence_id", DataType::Utf8, true),
            Field::new("repeat_count", DataType::Int64, true),
            Field::new("repeat_first_time", time.clone(), true),
            Field::new("repeat_last_time", time, true),
            Field::new("event_ids", list, true),
        ]))
    });
    SCHEMA.clone()
}

/// Changes as one record batch of [`alert_change_schema`].
pub fn alert_change_batch(changes: &[AlertChange]) -> RecordBatch {
    let mut changed_at = TimestampMicrosecondBuilder::with_capacity(changes.len()).with_timezone("UTC");
    let mut columns: [StringBuilder; 10] = std::array::from_fn(|_| StringBuilder::new());
    let mut repeat_count = Int64Builder::with_capacity(changes.len());
    let time = || TimestampMicrosecondBuilder::with_capacity(changes.len()).with_timezone("UTC");
    let (mut repeat_first, mut repeat_last) = (time(), time());
    let mut event_ids = ListBuilder::new(StringBuilder::new());
    for change in changes {
        if let ChangeAction::Repeat { count, first_time, last_time, event_ids: ids } = &change.action {
            repeat_count.append_value(i64::try_from(*count).unwrap_or(i64::MAX));
            repeat_first.append_value(first_time.as_micros());
            repeat_last.append_value(last_time.as_micros());
            for id in ids {
                event_ids.values().append_value(id);
            }
            event_ids.append(true);
        } else {
            repeat_count.append_null();
            repeat_first.append_null();
            repeat_last.append_null();
            event_ids.append(false);
        }
        changed_at.append_value(change.changed_at.as_micros());
        let action = &change.action;
        let values = [
            Some(change.change_id.as_str()),
            Some(change.alert_id.as_str()),
            Some(change.actor.as_str()),
            Some(change.interface.as_str()),
            Some(action.name()),
            action.state_after().map(AlertState::as_str),
            action.assignee(),
            action.verdict().map(Verdict::as_str),
            action.comment(),
            action.silence_id(),
        ];
        for (builder, value) in columns.iter_mut().zip(values) {
            builder.append_option(value);
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(changed_at.finish())];
    arrays.extend(columns.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    arrays.push(Arc::new(repeat_count.finish()));
    arrays.push(Arc::new(repeat_first.finish()));
    arrays.push(Arc::new(repeat_last.finish()));
    arrays.push(Arc::new(event_ids.finish()));
    RecordBatch::try_new(alert_change_schema(), arrays).expect("columns match the alert change schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(micros: i64, id: &str, action: ChangeAction) -> AlertChange {
        AlertChange {
            change_id: id.into(),
            alert_id: "A1".into(),
            changed_at: Timestamp::from_micros(micros),
            actor: "ana".into(),
            interface: "api".into(),
            action,
        }
    }

    fn close(verdict: Verdict) -> ChangeAction {
        ChangeAction::Close { verdict, comment: None }
    }

    #[test]
    fn a_change_round_trips_through_json_and_fills_a_batch() {
        let c = change(5, "C1", ChangeAction::Close { verdict: Verdict::FalsePositive, comment: Some("noise".into()) });
        let json = c.to_json();
        assert!(json.contains(r#""action":"close""#) && json.contains(r#""verdict":"false_positive""#), "{json}");
        assert_eq!(AlertChange::from_json(json.as_bytes()).unwrap(), c);
        let batch = alert_change_batch(&[c.clone(), change(6, "C2", ChangeAction::Assign { assignee: None })]);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), alert_change_schema());
    }

    #[test]
    fn records_out_of_bounds_are_refused() {
        assert!(matches!(AlertChange::from_json(b"{}"), Err(AlertChangeError::Decode(_))));
        let long = "x".repeat(MAX_COMMENT_BYTES + 1);
        let refused = change(1, "C1", ChangeAction::Comment { text: long }).check();
        assert!(matches!(refused, Err(AlertChangeError::TooLong { field: "comment", .. })), "{refused:?}");
        let empty = change(1, "C1", ChangeAction::Comment { text: "  ".into() }).check();
        assert_eq!(empty, Err(AlertChangeError::Empty { field: "comment" }));
        let mut no_actor = change(1, "C1", ChangeAction::Acknowledge);
        no_actor.actor.clear();
        assert_eq!(no_actor.check(), Err(AlertChangeError::Empty { field: "actor" }));
    }

    #[test]
    fn the_status_is_the_latest_state_and_assignment_whatever_the_arrival_order() {
        let changes = [
            change(1, "C1", ChangeAction::Acknowledge),
            change(2, "C2", ChangeAction::Assign { assignee: Some("bo".into()) }),
            change(3, "C3", close(Verdict::FalsePositive)),
            change(4, "C4", ChangeAction::Comment { text: "why".into() }),
        ];
        let status = AlertStatus::from_changes(changes.iter().rev());
        assert_eq!(status.state, AlertState::Closed);
        assert_eq!(status.verdict, Some(Verdict::FalsePositive));
        assert_eq!(status.assignee.as_deref(), Some("bo"));
        assert_eq!(status.changes, 4);
        assert_eq!(status.updated_at, Some(Timestamp::from_micros(4)));
        // A reopen clears the verdict and puts the alert back in the queue; a copy of a
        // change read twice counts once.
        let mut more = changes.to_vec();
        more.push(change(5, "C5", ChangeAction::Reopen { comment: None }));
        more.push(more[0].clone());
        let status = AlertStatus::from_changes(&more);
        assert_eq!((status.state, status.verdict, status.changes), (AlertState::New, None, 5));
    }

    #[test]
    fn two_closes_at_once_end_in_the_later_one() {
        // Same microsecond: the id orders them.
        let a = change(7, "C0000000000000000000000002", close(Verdict::TruePositive));
        let b = change(7, "C0000000000000000000000001", close(Verdict::Duplicate));
        for order in [[&a, &b], [&b, &a]] {
            let status = AlertStatus::from_changes(order);
            assert_eq!(
                (status.state, status.verdict, status.changes),
                (AlertState::Closed, Some(Verdict::TruePositive), 2)
            );
        }
    }

    #[test]
    fn transitions_say_why_they_are_refused() {
        let mut status = AlertStatus::default();
        assert!(status.allows(&ChangeAction::Acknowledge).is_ok());
        assert!(status.allows(&ChangeAction::Reopen { comment: None }).unwrap_err().contains("only a closed alert"));
        status.state = AlertState::Closed;
        assert!(status.allows(&ChangeAction::Acknowledge).unwrap_err().contains("reopen it"));
        assert!(status.allows(&close(Verdict::Duplicate)).is_ok(), "closing again replaces the verdict");
        assert!(status.allows(&ChangeAction::Reopen { comment: None }).is_ok());
    }

    #[test]
    fn a_silenced_alert_is_recorded_the_same_way_every_time_it_is_read() {
        let arrived = Timestamp::parse("2026-12-06T10:00:00Z").unwrap();
        let first = AlertChange::silenced("A1", "S1", arrived);
        assert_eq!(first, AlertChange::silenced("A1", "S1", arrived));
        assert_ne!(first.change_id, AlertChange::silenced("A1", "S2", arrived).change_id);
        assert_ne!(first.change_id, AlertChange::silenced("A2", "S1", arrived).change_id);
        assert!(first.change_id.parse::<ulid::Ulid>().is_ok());
        assert_eq!(first.check(), Ok(()));
        assert_eq!(AlertChange::from_json(first.to_json().as_bytes()).unwrap(), first);
        // Read twice, it counts once; an analyst can acknowledge a silenced alert.
        let status = AlertStatus::from_changes([&first, &first]);
        assert_eq!((status.state, status.changes), (AlertState::Silenced, 1));
        assert!(status.allows(&ChangeAction::Acknowledge).is_ok());
        assert!(
            status.allows(&ChangeAction::Silence { silence_id: "S1".into() }).unwrap_err().contains("delivery stage")
        );
        let batch = alert_change_batch(&[first]);
        let silence_ids = batch.column_by_name("silence_id").unwrap();
        assert_eq!(silence_ids.as_any().downcast_ref::<arrow_array::StringArray>().unwrap().value(0), "S1");
    }

    #[test]
    fn repeats_count_matches_without_being_triage_and_count_once_when_read_twice() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let first = AlertChange::repeated(
            "A1",
            3,
            (t("2026-12-06T10:00:00Z"), t("2026-12-06T10:00:30Z")),
            vec!["e1".into(), "e2".into(), "e3".into()],
        );
        assert_eq!(
            first,
            AlertChange::repeated(
                "A1",
                3,
                (t("2026-12-06T10:00:00Z"), t("2026-12-06T10:00:30Z")),
                vec!["e1".into(), "e2".into(), "e3".into()]
            ),
            "the same matches give the same record"
        );
        let second = AlertChange::repeated(
            "A1",
            2,
            (t("2026-12-06T10:02:00Z"), t("2026-12-06T10:02:05Z")),
            vec!["e4".into(), "e5".into()],
        );
        assert_ne!(first.change_id, second.change_id);
        assert_eq!(first.check(), Ok(()));
        assert!(!first.is_triage());
        assert_eq!(AlertChange::from_json(first.to_json().as_bytes()).unwrap(), first);
        let ack = change(t("2026-12-06T10:01:00Z").as_micros(), "C1", ChangeAction::Acknowledge);
        let status = AlertStatus::from_changes([&first, &ack, &second, &first]);
        assert_eq!((status.state, status.changes, status.repeats), (AlertState::Acknowledged, 1, 5));
        assert_eq!(status.last_seen, Some(t("2026-12-06T10:02:05Z")));
        assert_eq!(status.updated_at, Some(t("2026-12-06T10:01:00Z")), "a repeat is not a triage change");
        assert!(status.allows(&second.action).unwrap_err().contains("detector"));
        let batch = alert_change_batch(&[first.clone(), ack]);
        use arrow_array::Array;
        let counts = batch.column_by_name("repeat_count").unwrap();
        let counts = counts.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!((counts.value(0), counts.is_null(1)), (3, true));
        let mut too_many = first;
        if let ChangeAction::Repeat { event_ids, .. } = &mut too_many.action {
            *event_ids = vec!["e".into(); MAX_REPEAT_EVENT_IDS + 1];
        }
        assert!(matches!(too_many.check(), Err(AlertChangeError::TooLong { field: "event_ids", .. })));
    }
}
