//! Silences in the query service: made, listed and expired through the API and the CLI.
//! A version is accepted once the silences topic has it (acknowledged by every in-sync
//! replica); the delivery stage follows the topic and the ingester stores every version in
//! the lake's `silences` table. As with alert changes, the versions accepted here are kept
//! for a while so that listings show them before the lake does.

use std::sync::Arc;
use std::time::Instant;

use mcpsiem_event::Timestamp;
use mcpsiem_event::silence::{Matcher, Silence, SilenceSet, SilenceState};
use mcpsiem_runtime::auth::{Caller, Role};
use serde_json::{Map, Value};

use super::{RECENT_FOR, Triage, TriageError};
use crate::QueryError;
use crate::tables::TimeRange;

/// The longest a silence may last: a year (one meant to last longer is a rule change).
pub const MAX_SILENCE_DAYS: i64 = 366;

/// Where accepted silence versions go: the silences topic.
#[async_trait::async_trait]
pub trait SilenceSink: Send + Sync {
    /// Returns once the version is stored durably; the error says what failed.
    async fn publish(&self, silence: &Silence) -> Result<(), String>;
}

/// The silences topic through an [`AckedProducer`](mcpsiem_runtime::producer::AckedProducer).
pub struct KafkaSilenceSink(pub mcpsiem_runtime::producer::AckedProducer);

#[async_trait::async_trait]
impl SilenceSink for KafkaSilenceSink {
    async fn publish(&self, silence: &Silence) -> Result<(), String> {
        // Keyed by silence: its versions keep their order in one partition.
        self.0.publish(&silence.silence_id, silence.to_json().as_bytes()).await.map_err(|e| e.to_string())
    }
}

/// A silence asked for.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// `field=value`, `field!=value`, `field=~regex`, `field!~regex`; every one must hold.
    pub matchers: Vec<String>,
    /// RFC 3339; absent: now.
    pub starts_at: Option<String>,
    /// RFC 3339; or give `duration_minutes`.
    pub ends_at: Option<String>,
    pub duration_minutes: Option<u64>,
    pub reason: String,
}

/// A silence as listed: its latest version and where it is in its span.
#[derive(Debug, serde::Serialize)]
pub struct SilenceView {
    pub state: SilenceState,
    #[serde(flatten)]
    pub silence: Silence,
}

impl Triage {
    /// The latest version of every silence: the lake's and the ones accepted here.
    async fn silence_set(&self, caller: &Caller) -> Result<SilenceSet, QueryError> {
        let rows = self.rows(caller, "SELECT * FROM silences".to_string(), TimeRange::default()).await?;
        let mut set = SilenceSet::default();
        for row in &rows {
            set.apply(silence_of_row(row).map_err(QueryError::Execution)?);
        }
        let mut recent = self.recent_silences.lock().expect("no panics under the lock");
        recent.retain(|(_, at)| at.elapsed() < RECENT_FOR);
        for (silence, _) in recent.iter() {
            set.apply(silence.clone());
        }
        Ok(set)
    }

    /// Silences, newest first; only those in `state` when given.
    pub async fn silences(&self, caller: &Caller, state: Option<SilenceState>) -> Result<Vec<SilenceView>, QueryError> {
        let now = Timestamp::now();
        let mut views: Vec<SilenceView> = self
            .silence_set(caller)
            .await?
            .iter()
            .map(|silence| SilenceView { state: silence.state(now), silence: silence.clone() })
            .filter(|view| state.is_none_or(|s| s == view.state))
            .collect();
        views.sort_by(|a, b| b.silence.silence_id.cmp(&a.silence.silence_id));
        Ok(views)
    }

    /// Makes a silence for `caller`.
    pub async fn add_silence(
        &self,
        caller: &Caller,
        asked: NewSilence,
        interface: &str,
    ) -> Result<Silence, TriageError> {
        let sink = self.silence_sink(caller)?;
        let matchers = asked
            .matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TriageError::Invalid(e.to_string()))?;
        let time = |text: &str, name: &str| {
            Timestamp::parse(text).map_err(|e| {
                TriageError::Invalid(format!("`{name}` is not an RFC 3339 time such as 2026-11-24T00:00:00Z: {e}"))
            })
        };
        let now = Timestamp::now();
        let starts_at = asked.starts_at.as_deref().map(|t| time(t, "starts_at")).transpose()?.unwrap_or(now);
        let ends_at = match (asked.ends_at.as_deref(), asked.duration_minutes) {
            (Some(end), None) => time(end, "ends_at")?,
            (None, Some(minutes)) => {
                let minutes = i64::try_from(minutes).unwrap_or(i64::MAX).min(MAX_SILENCE_DAYS * 24 * 60);
                starts_at.plus_micros(minutes * 60_000_000)
            }
            _ => {
                return Err(TriageError::Invalid(
                    "give the silence's end: `ends_at` or `duration_minutes`, one of them".into(),
                ));
            }
        };
        if ends_at <= now {
            return Err(TriageError::Invalid("the silence would end in the past; give a later `ends_at`".into()));
        }
        if ends_at.as_micros().saturating_sub(starts_at.as_micros()) > MAX_SILENCE_DAYS * 86_400_000_000 {
            return Err(TriageError::Invalid(format!(
                "a silence lasts at most {MAX_SILENCE_DAYS} days; for longer, change the rule or its filters"
            )));
        }
        let silence = Silence::new(&caller.name, interface, matchers, starts_at, ends_at, &asked.reason)
            .map_err(|e| TriageError::Invalid(e.to_string()))?;
        sink.publish(&silence).await.map_err(TriageError::Unavailable)?;
        self.remember_silence(&silence);
        metrics::counter!("mcpsiem_query_silences_total", "action" => "create").increment(1);
        tracing::info!(silence = %silence.silence_id, actor = %caller.name, matchers = ?silence.matchers.iter().map(ToString::to_string).collect::<Vec<_>>(), "silence made");
        Ok(silence)
    }

    /// Ends a silence now.
    pub async fn expire_silence(
        &self,
        caller: &Caller,
        silence_id: &str,
        interface: &str,
    ) -> Result<Silence, TriageError> {
        let sink = self.silence_sink(caller)?;
        super::check_id_of(silence_id, "a silence id")?;
        let _one_at_a_time = self.locks[super::stable_index(silence_id)].lock().await;
        let set = self.silence_set(caller).await?;
        let Some(held) = set.get(silence_id) else {
            return Err(TriageError::NotFound(format!("no silence {silence_id}; GET /api/v1/silences lists them")));
        };
        let now = Timestamp::now();
        if held.state(now) == SilenceState::Expired {
            return Err(TriageError::Conflict(format!("silence {silence_id} has ended already")));
        }
        let ended = held.expired(&caller.name, interface, now);
        sink.publish(&ended).await.map_err(TriageError::Unavailable)?;
        self.remember_silence(&ended);
        metrics::counter!("mcpsiem_query_silences_total", "action" => "expire").increment(1);
        tracing::info!(silence = silence_id, actor = %caller.name, "silence expired");
        Ok(ended)
    }

    fn silence_sink(&self, caller: &Caller) -> Result<Arc<dyn SilenceSink>, TriageError> {
        if caller.role == Role::Auditor {
            return Err(TriageError::Forbidden(
                "auditor keys read silences; an analyst or admin key makes them".into(),
            ));
        }
        self.silence_sink.clone().ok_or_else(|| {
            TriageError::Unavailable(
                "this query service has no Kafka brokers (kafka.brokers) to store silences on".into(),
            )
        })
    }

    fn remember_silence(&self, silence: &Silence) {
        self.recent_silences.lock().expect("no panics under the lock").push((silence.clone(), Instant::now()));
    }
}

/// A row of `silences` back as the version it records.
pub fn silence_of_row(row: &Map<String, Value>) -> Result<Silence, String> {
    let text = |name: &str| {
        row.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("a silences row has no {name}"))
    };
    let time = |name: &str| Timestamp::parse(&text(name)?).map_err(|e| e.to_string());
    let matchers = row
        .get("matchers")
        .and_then(Value::as_array)
        .ok_or("a silences row has no matchers")?
        .iter()
        .map(|m| Matcher::parse(m.as_str().unwrap_or_default()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let action = serde_json::from_value(Value::from(text("action")?)).map_err(|e| e.to_string())?;
    Ok(Silence {
        silence_id: text("silence_id")?,
        version_at: time("version_at")?,
        actor: text("actor")?,
        interface: text("interface")?,
        action,
        starts_at: time("starts_at")?,
        ends_at: time("ends_at")?,
        reason: text("reason")?,
        matchers,
    })
}
