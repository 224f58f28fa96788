//! Incidents: alerts that share an entity (a user, a token, a session, a client address… as
//! `query.incident_entities` lists) within `query.incident_window_minutes` of each other,
//! or share a matched event (a secret read that one rule flags and a correlation chains
//! into an exfiltration), form one incident, worked as one: it has its own state, assignee, verdict
//! and history, and a timeline of its alerts and their events.
//!
//! Incidents are derived, not stored: the service groups the window's alerts each time it
//! is asked (as it weighs entity risk), so a new alert joins an open incident as soon as it
//! is in the lake. What analysts do to an incident is stored like what they do to an alert:
//! alert changes whose `alert_id` is the incident's id, `INC-` and the id of its first
//! alert. An alert raised after its incident was closed does not reopen it: it starts a
//! new incident (with the alerts that come after it).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mcpsiem_event::{AlertChange, AlertState, AlertStatus, ChangeAction, Timestamp};
use mcpsiem_runtime::auth::Caller;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::filter::quote;
use super::{Triage, TriageError};
use crate::QueryError;
use crate::tables::TimeRange;

/// What an incident's id starts with; the rest is its first alert's id.
pub const INCIDENT_PREFIX: &str = "INC-";
const DAY_MICROS: i64 = 86_400_000_000;
const MAX_DAYS: u32 = 365;
const MAX_PAGE: usize = 500;
/// Events shown in an incident's timeline, at most.
const MAX_TIMELINE_EVENTS: usize = 1_000;
/// Rounds of splitting alerts raised after their incident closed into new incidents.
const MAX_SPLITS: usize = 16;

/// What clustering needs of one alert.
#[derive(Clone, Debug)]
pub struct AlertFacts {
    pub alert_id: String,
    pub time: Timestamp,
    pub group: BTreeMap<String, String>,
    /// The alert's matched events (as capped in the alert).
    pub event_ids: Vec<String>,
}

/// Groups alerts into incidents: two alerts are in one when a chain of alerts links them,
/// each sharing a value of one of `entities` with the next within `window_micros`, or a
/// matched event with it. Each incident's alerts come oldest first (by time, then id);
/// incidents in no set order.
pub fn cluster(alerts: &[AlertFacts], entities: &[String], window_micros: i64) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..alerts.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for entity in entities {
        let mut holding: Vec<(&str, Timestamp, usize)> = alerts
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.group.get(entity).filter(|v| !v.is_empty()).map(|v| (v.as_str(), a.time, i)))
            .collect();
        holding.sort_unstable();
        for pair in holding.windows(2) {
            let ((value_a, time_a, a), (value_b, time_b, b)) = (pair[0], pair[1]);
            if value_a == value_b && time_b.as_micros().saturating_sub(time_a.as_micros()) <= window_micros {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                if ra != rb {
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
    }
    let mut first_with: HashMap<&str, usize> = HashMap::new();
    for (i, alert) in alerts.iter().enumerate() {
        for event in &alert.event_ids {
            match first_with.get(event.as_str()) {
                Some(&other) => {
                    let (ra, rb) = (root(&mut parent, other), root(&mut parent, i));
                    if ra != rb {
                        parent[ra.max(rb)] = ra.min(rb);
                    }
                }
                None => {
                    first_with.insert(event, i);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..alerts.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups
        .into_values()
        .map(|mut members| {
            members.sort_by(|&a, &b| (alerts[a].time, &alerts[a].alert_id).cmp(&(alerts[b].time, &alerts[b].alert_id)));
            members
        })
        .collect()
}

/// `GET /api/v1/incidents?state=&days=&limit=&offset=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// new, acknowledged or closed (comma separated).
    pub state: Option<String>,
    /// The window of alerts grouped, in days back from now (default 7).
    pub days: Option<u32>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// One incident as listed.
#[derive(Debug, serde::Serialize)]
pub struct Incident {
    pub incident_id: String,
    pub status: AlertStatus,
    pub first_time: Timestamp,
    pub last_time: Timestamp,
    /// The highest level of its alerts.
    pub level: String,
    pub alerts: usize,
    /// Its alerts not closed.
    pub open_alerts: usize,
    /// The titles of the rules its alerts come from.
    pub rules: BTreeSet<String>,
    /// The values of the incident entities its alerts name, by field.
    pub entities: BTreeMap<String, BTreeSet<String>>,
    /// Newest first.
    pub alert_ids: Vec<String>,
}

/// One page of incidents, newest first.
#[derive(Debug, serde::Serialize)]
pub struct IncidentPage {
    pub incidents: Vec<Incident>,
    pub next_offset: Option<usize>,
}

/// One incident with its alerts, history and a timeline of their events.
#[derive(Debug, serde::Serialize)]
pub struct IncidentDetail {
    pub incident: Incident,
    /// Its alerts (rows of `alert_status`), oldest first.
    pub alerts: Vec<Value>,
    pub history: Vec<AlertChange>,
    /// The alerts' matched events, oldest first (at most 1,000).
    pub events: Vec<Value>,
}

fn level_rank(level: &str) -> u8 {
    match level {
        "critical" => 5,
        "high" => 4,
        "medium" => 3,
        "low" => 2,
        _ => 1,
    }
}

/// The window of `days` days back from now, checked.
fn window(days: Option<u32>) -> Result<TimeRange, QueryError> {
    let days = days.unwrap_or(7);
    if days == 0 || days > MAX_DAYS {
        return Err(QueryError::Plan(format!("`days` is {days}; use 1 to {MAX_DAYS}")));
    }
    let start = Timestamp::now().as_micros().saturating_sub(i64::from(days) * DAY_MICROS);
    Ok(TimeRange { start: Some(Timestamp::from_micros(start)), end: None })
}

/// When the close that holds was made, for a closed incident.
fn closed_at(changes: &[AlertChange], status: &AlertStatus) -> Option<Timestamp> {
    (status.state == AlertState::Closed).then(|| {
        changes
            .iter()
            .filter(|c| matches!(c.action, ChangeAction::Close { .. }))
            .map(|c| c.changed_at)
            .max()
            .unwrap_or(Timestamp::from_micros(i64::MAX))
    })
}

/// Incidents, and the alert rows they were made of by alert id.
type IncidentsAndRows = (Vec<Incident>, HashMap<String, Map<String, Value>>);

/// What incidents are made of: the window's alerts as `alert_status` has them.
pub(crate) const ALERT_FACTS_SQL: &str =
    "SELECT alert_id, alert_time, level, rule_title, state, group_values, event_ids FROM alert_status";

/// Groups alert rows (of [`ALERT_FACTS_SQL`]) into incidents, newest first, given every
/// incident's changes by id; also returns the rows by alert id.
pub(crate) fn build_incidents(
    rows: Vec<Map<String, Value>>,
    changes: &HashMap<String, Vec<AlertChange>>,
    config: &crate::QueryConfig,
) -> Result<IncidentsAndRows, QueryError> {
    let mut facts = Vec::with_capacity(rows.len());
    let mut by_id = HashMap::with_capacity(rows.len());
    for row in rows {
        let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let time = Timestamp::parse(&text("alert_time")).map_err(|e| QueryError::Execution(e.to_string()))?;
        let group = row
            .get("group_values")
            .and_then(Value::as_object)
            .map(|g| g.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
            .unwrap_or_default();
        let event_ids = row
            .get("event_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(|id| id.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        facts.push(AlertFacts { alert_id: text("alert_id"), time, group, event_ids });
        by_id.insert(text("alert_id"), row);
    }
    let window = i64::try_from(config.incident_window_minutes).unwrap_or(i64::MAX).saturating_mul(60_000_000);
    let mut incidents = Vec::new();
    let mut pending: Vec<usize> = (0..facts.len()).collect();
    for _ in 0..MAX_SPLITS {
        if pending.is_empty() {
            break;
        }
        let subset: Vec<AlertFacts> = pending.iter().map(|&i| facts[i].clone()).collect();
        let mut late = Vec::new();
        for members in cluster(&subset, &config.incident_entities, window) {
            let members: Vec<usize> = members.into_iter().map(|m| pending[m]).collect();
            // Named after its oldest alert, unless it was worked on under another of its
            // alerts' names: an older alert arriving late, or a link to another incident,
            // must not rename an incident an analyst is working.
            let id_of = |m: usize| format!("{INCIDENT_PREFIX}{}", facts[m].alert_id);
            let named = members.iter().copied().find(|&m| changes.contains_key(&id_of(m))).unwrap_or(members[0]);
            let incident_id = id_of(named);
            let history = changes.get(&incident_id).cloned().unwrap_or_default();
            let status = AlertStatus::from_changes(&history);
            let closed = closed_at(&history, &status);
            let mut kept = Vec::with_capacity(members.len());
            for &m in &members {
                // The alert that names it stays, whatever its time.
                match closed {
                    Some(closed) if m != named && facts[m].time > closed => late.push(m),
                    _ => kept.push(m),
                }
            }
            incidents.push(incident_of(incident_id, status, &kept, &facts, &by_id, &config.incident_entities));
        }
        pending = late;
    }
    incidents.sort_by(|a, b| (b.last_time, &b.incident_id).cmp(&(a.last_time, &a.incident_id)));
    Ok((incidents, by_id))
}

fn incident_of(
    incident_id: String,
    status: AlertStatus,
    members: &[usize],
    facts: &[AlertFacts],
    rows: &HashMap<String, Map<String, Value>>,
    entities_wanted: &[String],
) -> Incident {
    let mut incident = Incident {
        incident_id,
        status,
        first_time: facts[members[0]].time,
        last_time: facts[members[0]].time,
        level: String::new(),
        alerts: members.len(),
        open_alerts: 0,
        rules: BTreeSet::new(),
        entities: BTreeMap::new(),
        alert_ids: Vec::with_capacity(members.len()),
    };
    for &m in members.iter().rev() {
        let alert = &facts[m];
        incident.last_time = incident.last_time.max(alert.time);
        incident.first_time = incident.first_time.min(alert.time);
        incident.alert_ids.push(alert.alert_id.clone());
        let row = rows.get(&alert.alert_id);
        let text = |name: &str| row.and_then(|r| r.get(name)).and_then(Value::as_str).unwrap_or_default();
        if level_rank(text("level")) > level_rank(&incident.level) || incident.level.is_empty() {
            incident.level = text("level").to_string();
        }
        incident.open_alerts += usize::from(text("state") != "closed");
        incident.rules.insert(text("rule_title").to_string());
        for entity in entities_wanted {
            if let Some(value) = alert.group.get(entity) {
                incident.entities.entry(entity.clone()).or_default().insert(value.clone());
            }
        }
    }
    incident
}

impl Triage {
    /// Every incident change the lake holds plus those accepted here, by incident id.
    async fn incident_changes(&self, caller: &Caller) -> Result<HashMap<String, Vec<AlertChange>>, QueryError> {
        let sql = format!(
            "SELECT * FROM alert_changes WHERE starts_with(alert_id, {}) ORDER BY changed_at, change_id",
            quote(INCIDENT_PREFIX)
        );
        let mut by_id: HashMap<String, Vec<AlertChange>> = HashMap::new();
        for row in self.rows(caller, sql, TimeRange::default()).await? {
            let change = super::change_of_row(&row).map_err(QueryError::Execution)?;
            by_id.entry(change.alert_id.clone()).or_default().push(change);
        }
        for id in self.recently_changed().into_iter().filter(|id| id.starts_with(INCIDENT_PREFIX)) {
            let known = by_id.entry(id.clone()).or_default();
            for change in self.recent_changes(&id) {
                if !known.iter().any(|c| c.change_id == change.change_id) {
                    known.push(change);
                }
            }
        }
        Ok(by_id)
    }

    /// The incidents of the window's alerts, newest first, with the rows they were made of.
    async fn all_incidents(&self, caller: &Caller, range: TimeRange) -> Result<IncidentsAndRows, QueryError> {
        let rows = self.rows(caller, ALERT_FACTS_SQL.to_string(), range).await?;
        let changes = self.incident_changes(caller).await?;
        build_incidents(rows, &changes, self.engine().config())
    }

    /// One page of the window's incidents, newest first.
    pub async fn incidents(&self, caller: &Caller, params: &IncidentParams) -> Result<IncidentPage, QueryError> {
        let range = window(params.days)?;
        let states = match params.state.as_deref() {
            None | Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|s| {
                    AlertState::parse(s.trim()).filter(|s| *s != AlertState::Silenced).ok_or_else(|| {
                        QueryError::Plan(format!("`{s}` is not an incident state; use new, acknowledged or closed"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let limit = params.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_PAGE {
            return Err(QueryError::Plan(format!("`limit` is {limit}; use 1 to {MAX_PAGE}")));
        }
        let offset = params.offset.unwrap_or(0);
        let (incidents, _) = self.all_incidents(caller, range).await?;
        let mut chosen: Vec<Incident> =
            incidents.into_iter().filter(|i| states.is_empty() || states.contains(&i.status.state)).collect();
        let next_offset = (chosen.len() > offset.saturating_add(limit)).then_some(offset + limit);
        let incidents = chosen.drain(offset.min(chosen.len())..).take(limit).collect();
        Ok(IncidentPage { incidents, next_offset })
    }

    /// The incident `incident_id` among the last `days` days' alerts (default 30).
    pub(super) async fn find_incident(
        &self,
        caller: &Caller,
        incident_id: &str,
        days: Option<u32>,
    ) -> Result<(Incident, HashMap<String, Map<String, Value>>), TriageError> {
        super::check_id_of(incident_id, "an incident id")?;
        if !incident_id.starts_with(INCIDENT_PREFIX) {
            return Err(TriageError::Invalid(format!(
                "`{incident_id}` is not an incident id; incident ids start with {INCIDENT_PREFIX} (GET /api/v1/incidents lists them)"
            )));
        }
        let (incidents, rows) = self.all_incidents(caller, window(Some(days.unwrap_or(30)))?).await?;
        match incidents.into_iter().find(|i| i.incident_id == incident_id) {
            Some(incident) => Ok((incident, rows)),
            None => Err(TriageError::NotFound(format!(
                "no incident {incident_id} among the last {} days' alerts; GET /api/v1/incidents lists them",
                days.unwrap_or(30)
            ))),
        }
    }

    /// One incident: its alerts, its history, and the timeline of its alerts' events.
    pub async fn incident(&self, caller: &Caller, incident_id: &str) -> Result<IncidentDetail, TriageError> {
        let (incident, _) = self.find_incident(caller, incident_id, None).await?;
        let ids: Vec<String> = incident.alert_ids.iter().map(|id| quote(id)).collect();
        let sql =
            format!("SELECT * FROM alert_status WHERE alert_id IN ({}) ORDER BY alert_time, alert_id", ids.join(", "));
        let range = TimeRange { start: Some(incident.first_time), end: Some(incident.last_time.plus_micros(1)) };
        let alerts = self.rows(caller, sql, range).await?;
        let mut event_ids: Vec<String> = Vec::new();
        for alert in &alerts {
            for id in alert.get("event_ids").and_then(Value::as_array).into_iter().flatten() {
                if let Some(id) = id.as_str()
                    && event_ids.len() < MAX_TIMELINE_EVENTS
                {
                    event_ids.push(quote(id));
                }
            }
        }
        let events = if event_ids.is_empty() {
            Vec::new()
        } else {
            let first = alerts
                .iter()
                .filter_map(|a| a.get("first_time").and_then(Value::as_str))
                .filter_map(|t| Timestamp::parse(t).ok())
                .min();
            let range = TimeRange { start: first, end: Some(incident.last_time.plus_micros(1)) };
            let sql = format!("SELECT * FROM events WHERE event_id IN ({}) ORDER BY event_time", event_ids.join(", "));
            self.rows(caller, sql, range).await?.into_iter().map(Value::Object).collect()
        };
        let mut history = self.lake_changes(caller, incident_id).await?;
        let known: std::collections::HashSet<String> = history.iter().map(|c| c.change_id.clone()).collect();
        history.extend(self.recent_changes(incident_id).into_iter().filter(|c| !known.contains(&c.change_id)));
        history.sort_by(|a, b| (a.changed_at, &a.change_id).cmp(&(b.changed_at, &b.change_id)));
        Ok(IncidentDetail { incident, alerts: alerts.into_iter().map(Value::Object).collect(), history, events })
    }
}

/// How far back the SQL table `incidents` groups alerts.
pub const INCIDENT_TABLE_DAYS: i64 = 30;

/// The columns of the SQL table `incidents`.
fn incident_table_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let list = || DataType::List(std::sync::Arc::new(Field::new("item", DataType::Utf8, true)));
    std::sync::Arc::new(Schema::new(vec![
        Field::new("incident_id", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("assignee", DataType::Utf8, true),
        Field::new("verdict", DataType::Utf8, true),
        Field::new("updated_at", time(), true),
        Field::new("first_time", time(), false),
        Field::new("last_time", time(), false),
        Field::new("level", DataType::Utf8, false),
        Field::new("alerts", DataType::Int64, false),
        Field::new("open_alerts", DataType::Int64, false),
        Field::new("rules", list(), true),
        Field::new("alert_ids", list(), true),
        Field::new("entities", DataType::Utf8, false),
    ]))
}

/// Runs `sql` in `ctx` and answers its rows as JSON objects (within the session's memory
/// pool, with no concurrency slot of its own: it is part of the query that asked).
async fn session_rows(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> Result<Vec<Map<String, Value>>, QueryError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let bytes = crate::format::json_rows(&batches).map_err(|e| QueryError::Execution(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| QueryError::Execution(e.to_string()))
}

/// Registers the SQL table `incidents` in `ctx`, which holds the lake's tables and the
/// `alert_status` view: the incidents of the last [`INCIDENT_TABLE_DAYS`] days' alerts as the
/// lake holds them, grouped as the API groups them. Empty unless `compute` (a client's
/// catalog query only needs its columns).
pub(crate) async fn register_table(
    ctx: &datafusion::prelude::SessionContext,
    config: &crate::QueryConfig,
    compute: bool,
) -> Result<(), QueryError> {
    use datafusion::arrow::array::builder::{Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
    use datafusion::arrow::array::{ArrayRef, RecordBatch};
    let incidents = if compute {
        let since =
            Timestamp::from_micros(Timestamp::now().as_micros().saturating_sub(INCIDENT_TABLE_DAYS * DAY_MICROS));
        let rows = session_rows(ctx, &format!("{ALERT_FACTS_SQL} WHERE alert_time >= TIMESTAMP '{since}'")).await?;
        let sql = format!("SELECT * FROM alert_changes WHERE starts_with(alert_id, {})", quote(INCIDENT_PREFIX));
        let mut changes: HashMap<String, Vec<AlertChange>> = HashMap::new();
        for row in session_rows(ctx, &sql).await? {
            let change = super::change_of_row(&row).map_err(QueryError::Execution)?;
            changes.entry(change.alert_id.clone()).or_default().push(change);
        }
        build_incidents(rows, &changes, config)?.0
    } else {
        Vec::new()
    };
    let time = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let (mut updated, mut first, mut last) = (time(), time(), time());
    let mut text: [StringBuilder; 6] = std::array::from_fn(|_| StringBuilder::new());
    let (mut alerts, mut open) = (Int64Builder::new(), Int64Builder::new());
    let (mut rules, mut ids) = (ListBuilder::new(StringBuilder::new()), ListBuilder::new(StringBuilder::new()));
    for incident in &incidents {
        let status = &incident.status;
        let entities = serde_json::to_string(&incident.entities).expect("entities serialize");
        let values = [
            Some(incident.incident_id.as_str()),
            Some(status.state.as_str()),
            status.assignee.as_deref(),
            status.verdict.map(|v| v.as_str()),
            Some(incident.level.as_str()),
            Some(entities.as_str()),
        ];
        for (builder, value) in text.iter_mut().zip(values) {
            builder.append_option(value);
        }
        updated.append_option(status.updated_at.map(Timestamp::as_micros));
        first.append_value(incident.first_time.as_micros());
        last.append_value(incident.last_time.as_micros());
        alerts.append_value(incident.alerts as i64);
        open.append_value(incident.open_alerts as i64);
        for rule in &incident.rules {
            rules.values().append_value(rule);
        }
        rules.append(true);
        for id in &incident.alert_ids {
            ids.values().append_value(id);
        }
        ids.append(true);
    }
    let [mut id, mut state, mut assignee, mut verdict, mut level, mut entities] = text;
    let columns: Vec<ArrayRef> = vec![
        std::sync::Arc::new(id.finish()),
        std::sync::Arc::new(state.finish()),
        std::sync::Arc::new(assignee.finish()),
        std::sync::Arc::new(verdict.finish()),
        std::sync::Arc::new(updated.finish()),
        std::sync::Arc::new(first.finish()),
        std::sync::Arc::new(last.finish()),
        std::sync::Arc::new(level.finish()),
        std::sync::Arc::new(alerts.finish()),
        std::sync::Arc::new(open.finish()),
        std::sync::Arc::new(rules.finish()),
        std::sync::Arc::new(ids.finish()),
        std::sync::Arc::new(entities.finish()),
    ];
    let batch = RecordBatch::try_new(incident_table_schema(), columns).expect("columns match the incidents schema");
    let table = datafusion::datasource::MemTable::try_new(incident_table_schema(), vec![vec![batch]])?;
    ctx.register_table("incidents", std::sync::Arc::new(table))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, minute: i64, group: &[(&str, &str)]) -> AlertFacts {
        AlertFacts {
            alert_id: id.into(),
            time: Timestamp::from_micros(1_790_000_000_000_000 + minute * 60_000_000),
            group: group.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            event_ids: vec![format!("own-{id}")],
        }
    }

    fn ids(alerts: &[AlertFacts], clusters: Vec<Vec<usize>>) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> =
            clusters.into_iter().map(|c| c.into_iter().map(|i| alerts[i].alert_id.clone()).collect()).collect();
        out.sort();
        out
    }

    #[test]
    fn alerts_sharing_an_entity_within_the_window_form_one_incident() {
        let entities = vec!["enduser.id".to_string(), "auth.token.fingerprint".to_string()];
        let alerts = [
            // A replayed token: the same fingerprint from two addresses, then the user's exfiltration.
            facts("A1", 0, &[("auth.token.fingerprint", "tok1"), ("client.address", "10.0.0.1")]),
            facts("A2", 5, &[("auth.token.fingerprint", "tok1"), ("enduser.id", "ana")]),
            facts("A3", 50, &[("enduser.id", "ana")]),
            // Chained: within the window of A3, not of A1.
            facts("A4", 100, &[("enduser.id", "ana")]),
            // Another user; the same address, which is not an incident entity here.
            facts("B1", 1, &[("enduser.id", "bo"), ("client.address", "10.0.0.1")]),
            // Ana again, but after a gap longer than the window.
            facts("C1", 400, &[("enduser.id", "ana")]),
            // No entity at all: alone.
            facts("D1", 2, &[("mcp.server.name", "files")]),
            facts("E1", 3, &[("enduser.id", "")]),
        ];
        let clusters = cluster(&alerts, &entities, 60 * 60_000_000);
        assert_eq!(
            ids(&alerts, clusters),
            vec![vec!["A1", "A2", "A3", "A4"], vec!["B1"], vec!["C1"], vec!["D1"], vec!["E1"]]
        );
        // With the client address as an entity too, B1 joins through A1.
        let wider = [entities.clone(), vec!["client.address".to_string()]].concat();
        let clusters = cluster(&alerts, &wider, 60 * 60_000_000);
        assert!(ids(&alerts, clusters).contains(&vec![
            "A1".into(),
            "B1".into(),
            "A2".into(),
            "A3".into(),
            "A4".into()
        ]));
        // A session's secret read and the user's exfiltration chain over it share the read.
        let mut read = facts("R1", 0, &[("mcp.session.id", "s1")]);
        read.event_ids = vec!["e-read".into()];
        let mut chain = facts("X1", 500, &[("enduser.id", "zoe")]);
        chain.event_ids = vec!["e-read".into(), "e-post".into()];
        let alerts = [read, chain, facts("Z1", 0, &[("mcp.session.id", "s2")])];
        assert_eq!(ids(&alerts, cluster(&alerts, &entities, 60_000_000)), vec![vec!["R1", "X1"], vec!["Z1"]]);
    }

    #[test]
    fn clustering_does_not_depend_on_the_order_alerts_come_in() {
        let entities = vec!["enduser.id".to_string(), "mcp.session.id".to_string()];
        let mut alerts: Vec<AlertFacts> = (0..40)
            .map(|i| {
                let user = format!("u{}", i % 5);
                let session = format!("s{}", i % 7);
                facts(&format!("A{i:02}"), i * 7, &[("enduser.id", &user), ("mcp.session.id", &session)])
            })
            .collect();
        let forward = ids(&alerts, cluster(&alerts, &entities, 30 * 60_000_000));
        alerts.reverse();
        let backward = ids(&alerts, cluster(&alerts, &entities, 30 * 60_000_000));
        assert_eq!(forward, backward);
        assert_eq!(forward.iter().map(Vec::len).sum::<usize>(), 40);
    }
}
