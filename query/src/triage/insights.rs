//! What the verdicts and alerts add up to: each rule's false-positive ratio
//! (`GET /api/v1/rules/stats`) and each entity's risk (`GET /api/v1/entities/risk`), read
//! from the `rule_stats` and `entity_risk` views over a window of days.

use mcpsiem_event::Timestamp;
use mcpsiem_runtime::auth::Caller;
use serde::Deserialize;
use serde_json::Value;

use super::Triage;
use super::filter::quote;
use crate::QueryError;
use crate::tables::TimeRange;

const DAY_MICROS: i64 = 86_400_000_000;
const MAX_DAYS: u32 = 3_650;
const ENTITY_TYPES: [&str; 4] = ["user", "token", "client_address", "server"];

/// `?days=` of the rule statistics (default 30).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleStatsParams {
    pub days: Option<u32>,
}

/// `?days=&type=&limit=` of the entity risk (default 7 days, every type, 20 entities).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskParams {
    pub days: Option<u32>,
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    pub limit: Option<usize>,
}

/// The window of the last `days` days, checked.
fn window(days: Option<u32>, default: u32) -> Result<TimeRange, QueryError> {
    let days = days.unwrap_or(default);
    if days == 0 || days > MAX_DAYS {
        return Err(QueryError::Plan(format!("`days` is {days}; use 1 to {MAX_DAYS}")));
    }
    let start = Timestamp::now().as_micros().saturating_sub(i64::from(days) * DAY_MICROS);
    Ok(TimeRange { start: Some(Timestamp::from_micros(start)), end: None })
}

impl Triage {
    /// Every rule that raised alerts in the window, most alerts first, each `flagged` when
    /// its false-positive ratio is over `query.rule_flag_ratio` with at least
    /// `query.rule_flag_min_verdicts` verdicts.
    pub async fn rule_stats(&self, caller: &Caller, params: &RuleStatsParams) -> Result<Vec<Value>, QueryError> {
        let range = window(params.days, 30)?;
        let sql = "SELECT * FROM rule_stats ORDER BY alerts DESC, rule_id".to_string();
        let config = self.engine().config();
        let (ratio, min) = (config.rule_flag_ratio, config.rule_flag_min_verdicts);
        let rows = self.rows(caller, sql, range).await?;
        Ok(rows
            .into_iter()
            .map(|mut row| {
                let count = |name: &str| row.get(name).and_then(Value::as_u64).unwrap_or(0);
                let verdicts = count("true_positives") + count("false_positives") + count("benign_positives");
                let over = row.get("false_positive_ratio").and_then(Value::as_f64).is_some_and(|r| r > ratio);
                row.insert("flagged".into(), Value::Bool(over && verdicts >= min));
                Value::Object(row)
            })
            .collect())
    }

    /// The riskiest entities of the window, highest first, with their alerts.
    pub async fn entity_risk(&self, caller: &Caller, params: &RiskParams) -> Result<Vec<Value>, QueryError> {
        let range = window(params.days, 7)?;
        let limit = params.limit.unwrap_or(20);
        if limit == 0 || limit > 1_000 {
            return Err(QueryError::Plan(format!("`limit` is {limit}; use 1 to 1000")));
        }
        let of_type = match params.entity_type.as_deref() {
            None | Some("") => String::new(),
            Some(t) if ENTITY_TYPES.contains(&t) => format!(" AND entity_type = {}", quote(t)),
            Some(t) => {
                return Err(QueryError::Plan(format!("`type` is `{t}`; use one of {}", ENTITY_TYPES.join(", "))));
            }
        };
        let sql = format!(
            "SELECT entity_type, entity, risk, alerts, open_alerts, last_alert, alert_ids FROM entity_risk \
             WHERE risk > 0{of_type} ORDER BY risk DESC, entity_type, entity LIMIT {limit}"
        );
        Ok(self.rows(caller, sql, range).await?.into_iter().map(Value::Object).collect())
    }
}
