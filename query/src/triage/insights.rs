//! What the verdicts and alerts add up to: each rule's false-positive ratio
//! (`GET /api/v1/rules/stats`, the `rule_stats` view) and each entity's risk
//! (`GET /api/v1/entities/risk`, weighed here from the window's `alert_status` rows), over a
//! window of days.

use std::collections::HashMap;

use mcpsiem_event::Timestamp;
use mcpsiem_runtime::auth::Caller;
use serde::Deserialize;
use serde_json::Value;

use super::Triage;
use crate::QueryError;
use crate::tables::TimeRange;

const DAY_MICROS: i64 = 86_400_000_000;
const MAX_DAYS: u32 = 3_650;
const ENTITY_TYPES: [&str; 4] = ["user", "token", "client_address", "server"];
/// The group field each entity type is read from, in `ENTITY_TYPES` order.
const ENTITY_FIELDS: [&str; 4] = ["enduser.id", "auth.token.fingerprint", "client.address", "mcp.server.name"];

/// An alert's weight in its entities' risk: by level, nothing once closed as not a threat.
pub fn risk_weight(level: &str, verdict: Option<&str>) -> u64 {
    if matches!(verdict, Some("false_positive" | "benign_positive" | "duplicate")) {
        return 0;
    }
    match level {
        "critical" => 20,
        "high" => 10,
        "medium" => 5,
        "low" => 2,
        _ => 1,
    }
}

/// One entity's risk as it is summed.
#[derive(Default)]
struct Risk {
    risk: u64,
    alerts: u64,
    open_alerts: u64,
    last_alert: Option<Timestamp>,
    /// (alert time, id), sorted newest first at the end.
    alert_ids: Vec<(Timestamp, String)>,
}

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

    /// The riskiest entities of the window, highest first, with their alerts: each alert
    /// weighs by its level (`risk_weight`) in every user, token, client address and server
    /// its group names.
    pub async fn entity_risk(&self, caller: &Caller, params: &RiskParams) -> Result<Vec<Value>, QueryError> {
        let range = window(params.days, 7)?;
        let limit = params.limit.unwrap_or(20);
        if limit == 0 || limit > 1_000 {
            return Err(QueryError::Plan(format!("`limit` is {limit}; use 1 to 1000")));
        }
        let types: Vec<usize> = match params.entity_type.as_deref() {
            None | Some("") => (0..ENTITY_TYPES.len()).collect(),
            Some(t) => match ENTITY_TYPES.iter().position(|known| *known == t) {
                Some(i) => vec![i],
                None => {
                    return Err(QueryError::Plan(format!("`type` is `{t}`; use one of {}", ENTITY_TYPES.join(", "))));
                }
            },
        };
        let sql = "SELECT alert_id, alert_time, level, state, verdict, group_values FROM alert_status".to_string();
        let mut risks: HashMap<(usize, String), Risk> = HashMap::new();
        for row in self.rows(caller, sql, range).await? {
            let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
            let weight = risk_weight(&text("level"), row.get("verdict").and_then(Value::as_str));
            let Some(group) = row.get("group_values").and_then(Value::as_object) else { continue };
            for &t in &types {
                // The token rules group by the token's identity (its fingerprint where the
                // collector saw the token, else its claims); older alerts by the fingerprint.
                let value = match ENTITY_FIELDS[t] {
                    "auth.token.fingerprint" => {
                        group.get("auth.token.identity").or_else(|| group.get(ENTITY_FIELDS[t]))
                    }
                    field => group.get(field),
                };
                let Some(entity) = value.and_then(Value::as_str) else { continue };
                let risk = risks.entry((t, entity.to_string())).or_default();
                let time = Timestamp::parse(&text("alert_time")).map_err(|e| QueryError::Execution(e.to_string()))?;
                risk.risk += weight;
                risk.alerts += 1;
                risk.open_alerts += u64::from(weight > 0 && text("state") != "closed");
                risk.last_alert = risk.last_alert.max(Some(time));
                risk.alert_ids.push((time, text("alert_id")));
            }
        }
        let mut ranked: Vec<((usize, String), Risk)> = risks.into_iter().filter(|(_, r)| r.risk > 0).collect();
        ranked.sort_by(|(ka, a), (kb, b)| b.risk.cmp(&a.risk).then_with(|| ka.cmp(kb)));
        ranked.truncate(limit);
        Ok(ranked
            .into_iter()
            .map(|((t, entity), mut risk)| {
                risk.alert_ids.sort_by(|a, b| b.cmp(a));
                serde_json::json!({
                    "entity_type": ENTITY_TYPES[t],
                    "entity": entity,
                    "risk": risk.risk,
                    "alerts": risk.alerts,
                    "open_alerts": risk.open_alerts,
                    "last_alert": risk.last_alert.map(|t| t.to_string()),
                    "alert_ids": risk.alert_ids.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
                })
            })
            .collect())
    }
}
