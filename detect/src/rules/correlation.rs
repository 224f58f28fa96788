//! Correlation rules (Sigma specification v2, plus the value aggregate types): parsing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::document::strings;
use super::meta::RuleMeta;
use super::problem::DocProblem;

/// The correlation types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
    ValueMedian,
}

impl CorrelationType {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "event_count" => Self::EventCount,
            "value_count" => Self::ValueCount,
            "temporal" => Self::Temporal,
            "temporal_ordered" => Self::TemporalOrdered,
            "value_sum" => Self::ValueSum,
            "value_avg" => Self::ValueAvg,
            "value_percentile" => Self::ValuePercentile,
            "value_median" => Self::ValueMedian,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventCount => "event_count",
            Self::ValueCount => "value_count",
            Self::Temporal => "temporal",
            Self::TemporalOrdered => "temporal_ordered",
            Self::ValueSum => "value_sum",
            Self::ValueAvg => "value_avg",
            Self::ValuePercentile => "value_percentile",
            Self::ValueMedian => "value_median",
        }
    }

    /// Types whose condition reads a field's values.
    pub fn needs_field(self) -> bool {
        matches!(self, Self::ValueCount | Self::ValueSum | Self::ValueAvg | Self::ValuePercentile | Self::ValueMedian)
    }

    pub fn is_temporal(self) -> bool {
        matches!(self, Self::Temporal | Self::TemporalOrdered)
    }
}

/// A comparison bound of a condition.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Bound {
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Eq(f64),
    Neq(f64),
}

impl Bound {
    pub fn holds(self, value: f64) -> bool {
        match self {
            Bound::Gt(b) => value > b,
            Bound::Gte(b) => value >= b,
            Bound::Lt(b) => value < b,
            Bound::Lte(b) => value <= b,
            Bound::Eq(b) => value == b,
            Bound::Neq(b) => value != b,
        }
    }

    /// Once true, does adding events keep it true? Counts only grow inside a window, so
    /// lower bounds can fire at once; upper bounds and equality wait for the window to close.
    pub fn is_lower(self) -> bool {
        matches!(self, Bound::Gt(_) | Bound::Gte(_))
    }
}

/// A boolean expression over rule names, the draft condition of temporal correlations
/// (`secret_read and public_sink and not approved_upload`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum RuleExpr {
    Rule(String),
    Not(Box<RuleExpr>),
    And(Vec<RuleExpr>),
    Or(Vec<RuleExpr>),
}

impl RuleExpr {
    pub fn eval(&self, present: &dyn Fn(&str) -> bool) -> bool {
        match self {
            RuleExpr::Rule(name) => present(name),
            RuleExpr::Not(inner) => !inner.eval(present),
            RuleExpr::And(items) => items.iter().all(|e| e.eval(present)),
            RuleExpr::Or(items) => items.iter().any(|e| e.eval(present)),
        }
    }

    pub fn names(&self, out: &mut Vec<String>) {
        match self {
            RuleExpr::Rule(name) => out.push(name.clone()),
            RuleExpr::Not(inner) => inner.names(out),
            RuleExpr::And(items) | RuleExpr::Or(items) => items.iter().for_each(|e| e.names(out)),
        }
    }

    /// Parses `a and not (b or c)`: `not` binds tighter than `and`, `and` than `or`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let spaced = text.replace('(', " ( ").replace(')', " ) ");
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut position = 0;
        let expr = parse_or(&tokens, &mut position)?;
        if position != tokens.len() {
            return Err(format!("unexpected `{}` in the condition `{text}`", tokens[position]));
        }
        Ok(expr)
    }
}

fn parse_or(tokens: &[&str], at: &mut usize) -> Result<RuleExpr, String> {
    let mut items = vec![parse_and(tokens, at)?];
    while tokens.get(*at).is_some_and(|t| t.eq_ignore_ascii_case("or")) {
        *at += 1;
        items.push(parse_and(tokens, at)?);
    }
    Ok(if items.len() == 1 { items.pop().expect("one") } else { RuleExpr::Or(items) })
}

fn parse_and(tokens: &[&str], at: &mut usize) -> Result<RuleExpr, String> {
    let mut items = vec![parse_not(tokens, at)?];
    while tokens.get(*at).is_some_and(|t| t.eq_ignore_ascii_case("and")) {
        *at += 1;
        items.push(parse_not(tokens, at)?);
    }
    Ok(if items.len() == 1 { items.pop().expect("one") } else { RuleExpr::And(items) })
}

fn parse_not(tokens: &[&str], at: &mut usize) -> Result<RuleExpr, String> {
    match tokens.get(*at) {
        Some(t) if t.eq_ignore_ascii_case("not") => {
            *at += 1;
            Ok(RuleExpr::Not(Box::new(parse_not(tokens, at)?)))
        }
        Some(&"(") => {
            *at += 1;
            let inner = parse_or(tokens, at)?;
            if tokens.get(*at) != Some(&")") {
                return Err("missing `)` in the condition".into());
            }
            *at += 1;
            Ok(inner)
        }
        Some(name) if !matches!(name.to_ascii_lowercase().as_str(), "and" | "or" | ")") => {
            *at += 1;
            Ok(RuleExpr::Rule((*name).to_string()))
        }
        Some(other) => Err(format!("expected a rule name, found `{other}`")),
        None => Err("the condition ends early".into()),
    }
}

/// What a correlation's condition asks.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Condition {
    /// Comparisons on the count or aggregate; all must hold (a range is two bounds).
    Bounds(Vec<Bound>),
    /// Temporal types: an expression over the referenced rules.
    Expr(RuleExpr),
    /// Temporal types without a condition: every referenced rule.
    AllRules,
}

/// A correlation rule.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CorrelationRule {
    pub meta: RuleMeta,
    pub kind: CorrelationType,
    /// The referenced rules, by id or name, in order (the order matters for temporal_ordered).
    pub rules: Vec<String>,
    /// Group-by names: fields, or aliases.
    pub group_by: Vec<String>,
    pub timespan: Duration,
    pub condition: Condition,
    /// The field the value types read.
    pub field: Option<String>,
    /// For value_percentile: which percentile (0 to 100).
    pub percentile: Option<f64>,
    /// alias name -> referenced rule -> the field of that rule's events.
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether the referenced rules alert on their own too.
    pub generate: bool,
}

impl CorrelationRule {
    /// The field of `rule`'s events that stands for group-by name `name`.
    pub fn field_for<'a>(&'a self, name: &'a str, rule: &str) -> &'a str {
        self.aliases.get(name).and_then(|by_rule| by_rule.get(rule)).map(String::as_str).unwrap_or(name)
    }
}

/// Parses `30s`, `5m`, `1h`, `2d` (and `1w`).
pub fn parse_timespan(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        "w" => number * 7 * 86_400,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Parses the `correlation` section of `doc`.
pub fn parse(doc: &Mapping, meta: RuleMeta) -> Result<CorrelationRule, DocProblem> {
    let section = doc
        .get("correlation")
        .and_then(Value::as_mapping)
        .ok_or_else(|| DocProblem::invalid("`correlation` must be a mapping"))?;
    let type_text = section
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| DocProblem::invalid("the correlation has no `type`"))?;
    let kind = CorrelationType::parse(type_text).ok_or_else(|| {
        DocProblem::unsupported(format!(
            "correlation type `{type_text}`; supported: event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile, value_median"
        ))
    })?;
    let rules = strings(section.get("rules"));
    if rules.is_empty() {
        return Err(DocProblem::invalid("the correlation has no `rules`"));
    }
    let group_by = strings(section.get("group-by"));
    let timespan_text = section
        .get("timespan")
        .or_else(|| section.get("timeframe"))
        .and_then(Value::as_str)
        .ok_or_else(|| DocProblem::invalid("the correlation has no `timespan` (such as `5m`)"))?;
    let timespan = parse_timespan(timespan_text).ok_or_else(|| {
        DocProblem::invalid(format!("timespan `{timespan_text}`: write a number and s, m, h or d, such as `5m`"))
    })?;

    let mut field = None;
    let mut percentile = section.get("percentile").and_then(number);
    let condition = match section.get("condition") {
        None if kind.is_temporal() => Condition::AllRules,
        None => return Err(DocProblem::invalid("the correlation has no `condition`")),
        Some(Value::String(text)) if kind.is_temporal() => {
            let expr = RuleExpr::parse(text).map_err(DocProblem::invalid)?;
            let mut names = Vec::new();
            expr.names(&mut names);
            if let Some(unknown) = names.iter().find(|n| !rules.contains(n)) {
                return Err(DocProblem::invalid(format!(
                    "the condition names `{unknown}`, which is not in the correlation's `rules`"
                )));
            }
            Condition::Expr(expr)
        }
        Some(Value::Mapping(map)) => {
            let mut bounds = Vec::new();
            for (key, value) in map {
                let key = key.as_str().unwrap_or_default();
                if key == "field" {
                    field = value.as_str().map(str::to_owned);
                    continue;
                }
                if key == "percentile" {
                    percentile = number(value);
                    continue;
                }
                let n = number(value)
                    .ok_or_else(|| DocProblem::invalid(format!("condition `{key}` needs a number, found {value:?}")))?;
                bounds.push(match key {
                    "gt" => Bound::Gt(n),
                    "gte" => Bound::Gte(n),
                    "lt" => Bound::Lt(n),
                    "lte" => Bound::Lte(n),
                    "eq" => Bound::Eq(n),
                    "neq" => Bound::Neq(n),
                    other => {
                        return Err(DocProblem::invalid(format!(
                            "unknown condition operator `{other}`; use gt, gte, lt, lte, eq, neq and field"
                        )));
                    }
                });
            }
            if bounds.is_empty() && !kind.is_temporal() {
                return Err(DocProblem::invalid("the condition has no comparison (gt, gte, lt, lte, eq or neq)"));
            }
            if bounds.is_empty() { Condition::AllRules } else { Condition::Bounds(bounds) }
        }
        Some(other) => return Err(DocProblem::invalid(format!("`condition` must be a mapping, found {other:?}"))),
    };
    if kind.needs_field() && field.is_none() {
        field = section.get("field").and_then(Value::as_str).map(str::to_owned);
        if field.is_none() {
            return Err(DocProblem::invalid(format!("a {type_text} correlation needs `field` in its condition")));
        }
    }
    if kind == CorrelationType::ValueMedian {
        percentile = Some(50.0);
    }
    if kind == CorrelationType::ValuePercentile {
        match percentile {
            Some(p) if (0.0..=100.0).contains(&p) => {}
            Some(p) => return Err(DocProblem::invalid(format!("percentile {p} is outside 0 to 100"))),
            None => return Err(DocProblem::invalid("a value_percentile correlation needs `percentile` (0 to 100)")),
        }
    }

    let mut aliases = BTreeMap::new();
    if let Some(map) = section.get("aliases").and_then(Value::as_mapping) {
        for (alias, by_rule) in map {
            let alias = alias.as_str().unwrap_or_default().to_string();
            let by_rule = by_rule
                .as_mapping()
                .ok_or_else(|| DocProblem::invalid(format!("alias `{alias}` must map rule names to fields")))?;
            let mut fields = BTreeMap::new();
            for (rule, field) in by_rule {
                let (Some(rule), Some(field)) = (rule.as_str(), field.as_str()) else {
                    return Err(DocProblem::invalid(format!("alias `{alias}` must map rule names to field names")));
                };
                fields.insert(rule.to_string(), field.to_string());
            }
            aliases.insert(alias, fields);
        }
    }
    // Tools disagree on where `generate` goes: accept both, the section winning.
    let generate = section
        .get("generate")
        .or_else(|| doc.get("generate"))
        .map(|v| v.as_bool().ok_or_else(|| DocProblem::invalid("`generate` must be true or false")))
        .transpose()?
        .unwrap_or(false);
    Ok(CorrelationRule { meta, kind, rules, group_by, timespan, condition, field, percentile, aliases, generate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timespan("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_timespan("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_timespan("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_timespan("5x"), None);
        assert_eq!(parse_timespan("m"), None);
        assert_eq!(parse_timespan("0s"), None);
    }

    #[test]
    fn rule_expressions() {
        let expr = RuleExpr::parse("a and not (b or c)").unwrap();
        let present = |set: &'static [&'static str]| move |name: &str| set.contains(&name);
        assert!(expr.eval(&present(&["a"])));
        assert!(!expr.eval(&present(&["a", "c"])));
        assert!(!expr.eval(&present(&["b"])));
        assert!(RuleExpr::parse("a and").is_err());
        assert!(RuleExpr::parse("(a or b").is_err());
        assert!(RuleExpr::parse("a b").is_err());
    }
}
