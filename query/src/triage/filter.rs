//! The alert queue's filters (`GET /api/v1/alerts?state=new&level=high…`) and the SQL over
//! the `alert_status` view they stand for. Values are checked and quoted here: nothing a
//! caller sends reaches the SQL unquoted.

use mcpsiem_event::{AlertState, Level, Timestamp};
use serde::Deserialize;

use crate::QueryError;

/// The most alerts one page holds, and the default.
pub const MAX_PAGE: usize = 500;
pub const DEFAULT_PAGE: usize = 50;
/// The longest filter value accepted (an id, a name, an address).
const MAX_VALUE_BYTES: usize = 512;

/// The query string of `GET /api/v1/alerts`, as sent.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFilterParams {
    /// `new`, `acknowledged` or `closed`; several separated by commas.
    pub state: Option<String>,
    /// `informational` … `critical`; several separated by commas.
    pub level: Option<String>,
    /// A rule's id or title.
    pub rule: Option<String>,
    pub assignee: Option<String>,
    /// Any value of the alert's group (a user, a token fingerprint, a session, an address…).
    pub entity: Option<String>,
    /// RFC 3339: alerts from this time (their last matching event).
    pub from: Option<String>,
    /// RFC 3339: alerts before this time.
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    /// `json` (default) or `ocsf` (one Detection Finding per line).
    pub format: Option<String>,
}

/// The checked filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertFilter {
    pub states: Vec<AlertState>,
    pub levels: Vec<Level>,
    pub rule: Option<String>,
    pub assignee: Option<String>,
    pub entity: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: usize,
    pub offset: usize,
}

fn bad(message: String) -> QueryError {
    QueryError::Plan(message)
}

fn value(name: &str, value: Option<String>) -> Result<Option<String>, QueryError> {
    match value {
        Some(v) if v.len() > MAX_VALUE_BYTES => {
            Err(bad(format!("`{name}` is {} bytes; at most {MAX_VALUE_BYTES} are accepted", v.len())))
        }
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn list<T>(name: &str, text: Option<&str>, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<Vec<T>, QueryError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| parse(item).ok_or_else(|| bad(format!("`{name}` has `{item}`; use {allowed}"))))
        .collect()
}

fn time(name: &str, text: Option<&str>) -> Result<Option<Timestamp>, QueryError> {
    text.map(|t| {
        Timestamp::parse(t)
            .map_err(|e| bad(format!("`{name}` is not an RFC 3339 time such as 2026-11-24T00:00:00Z: {e}")))
    })
    .transpose()
}

impl AlertFilterParams {
    pub fn check(self) -> Result<AlertFilter, QueryError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(bad(format!("`limit` is {limit}; a page holds 1 to {MAX_PAGE} alerts")));
        }
        Ok(AlertFilter {
            states: list("state", self.state.as_deref(), AlertState::parse, "new, acknowledged, closed or silenced")?,
            levels: list("level", self.level.as_deref(), Level::parse, "informational, low, medium, high or critical")?,
            rule: value("rule", self.rule)?,
            assignee: value("assignee", self.assignee)?,
            entity: value("entity", self.entity)?,
            from: time("from", self.from.as_deref())?,
            to: time("to", self.to.as_deref())?,
            limit,
            offset: self.offset.unwrap_or(0).min(1_000_000),
        })
    }
}

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl AlertFilter {
    /// The `WHERE` conditions (without `from`, which the time range applies: the files of
    /// older hours are not read). `changed` are alerts whose state the lake may not show
    /// yet: they pass the state filter here and are checked once their state is known.
    fn conditions(&self, changed: &[String]) -> Vec<String> {
        let mut conditions = Vec::new();
        let any_of = |column: &str, values: Vec<&str>| {
            let quoted: Vec<String> = values.into_iter().map(quote).collect();
            format!("{column} IN ({})", quoted.join(", "))
        };
        if !self.states.is_empty() {
            let states = any_of("state", self.states.iter().map(|s| s.as_str()).collect());
            if changed.is_empty() {
                conditions.push(states);
            } else {
                conditions.push(format!(
                    "({states} OR {})",
                    any_of("alert_id", changed.iter().map(String::as_str).collect())
                ));
            }
        }
        if !self.levels.is_empty() {
            conditions.push(any_of("level", self.levels.iter().map(|l| l.as_str()).collect()));
        }
        if let Some(rule) = &self.rule {
            conditions.push(format!("(rule_id = {0} OR rule_title = {0})", quote(rule)));
        }
        if let Some(assignee) = &self.assignee {
            conditions.push(format!("assignee = {}", quote(assignee)));
        }
        if let Some(entity) = &self.entity {
            conditions.push(format!("array_has(map_values(group_values), {})", quote(entity)));
        }
        if let Some(to) = self.to {
            conditions.push(format!("alert_time < to_timestamp_micros({})", to.as_micros()));
        }
        conditions
    }

    /// The page's SQL: `columns` of the matching alerts, newest first, one more row than
    /// the page holds (to tell whether another page follows).
    pub fn sql(&self, columns: &str, changed: &[String]) -> String {
        let conditions = self.conditions(changed);
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        format!(
            "SELECT {columns} FROM alert_status{filter} ORDER BY alert_time DESC, alert_id DESC LIMIT {} OFFSET {}",
            self.limit + 1,
            self.offset
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_quoted_conditions() {
        let params = AlertFilterParams {
            state: Some("new,acknowledged".into()),
            level: Some("high".into()),
            rule: Some("it's".into()),
            entity: Some("10.0.0.1".into()),
            to: Some("2026-12-01T00:00:00Z".into()),
            limit: Some(10),
            ..AlertFilterParams::default()
        };
        let filter = params.check().unwrap();
        let sql = filter.sql("alert_id", &[]);
        assert!(sql.contains("state IN ('new', 'acknowledged') AND level IN ('high')"), "{sql}");
        assert!(sql.contains("(rule_id = 'it''s' OR rule_title = 'it''s')"), "{sql}");
        assert!(sql.contains("array_has(map_values(group_values), '10.0.0.1')"), "{sql}");
        assert!(sql.ends_with("ORDER BY alert_time DESC, alert_id DESC LIMIT 11 OFFSET 0"), "{sql}");
        let sql = filter.sql("alert_id", &["A1".into()]);
        assert!(sql.contains("(state IN ('new', 'acknowledged') OR alert_id IN ('A1'))"), "{sql}");
    }

    #[test]
    fn bad_filters_say_what_is_accepted() {
        let refused = |params: AlertFilterParams| params.check().unwrap_err().to_string();
        let e = refused(AlertFilterParams { state: Some("open".into()), ..Default::default() });
        assert!(e.contains("`state` has `open`; use new, acknowledged, closed or silenced"), "{e}");
        let e = refused(AlertFilterParams { limit: Some(MAX_PAGE + 1), ..Default::default() });
        assert!(e.contains("a page holds 1 to 500"), "{e}");
        let e = refused(AlertFilterParams { from: Some("yesterday".into()), ..Default::default() });
        assert!(e.contains("RFC 3339"), "{e}");
        let e = refused(AlertFilterParams { rule: Some("x".repeat(600)), ..Default::default() });
        assert!(e.contains("at most 512"), "{e}");
    }
}
