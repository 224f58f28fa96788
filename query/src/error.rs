//! What can go wrong with a query, in words an analyst can act on.

use std::time::Duration;

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Forbidden(String),
    #[error("SQL syntax error: {0}")]
    Syntax(String),
    #[error("{0}")]
    Plan(String),
    #[error("the query ran longer than {0:?} and was cancelled; narrow the time range (start/end) or add filters")]
    Timeout(Duration),
    #[error(
        "the query needs more memory than it may use: {0}; aggregate over a narrower time range or fewer groups, or ask for fewer columns or rows"
    )]
    Memory(String),
    #[error("too many queries are running; retry in a few seconds")]
    Busy,
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("the lake cannot be read: {0}")]
    Lake(String),
    #[error("query failed: {0}")]
    Execution(String),
    #[error("the client went away before the answer ended")]
    Cancelled,
}

impl QueryError {
    /// A short machine-readable code for the JSON error body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden(_) => "forbidden",
            Self::Syntax(_) => "syntax_error",
            Self::Plan(_) => "invalid_query",
            Self::Timeout(_) => "timeout",
            Self::Memory(_) => "memory_limit",
            Self::Busy => "busy",
            Self::Unauthorized => "unauthorized",
            Self::Lake(_) => "lake_unavailable",
            Self::Execution(_) => "execution_error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The closest names to `wanted`, best first.
pub fn closest<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .map(|n| {
            let lower = n.to_ascii_lowercase();
            let d = if lower.contains(&wanted) || wanted.contains(&lower) { 1 } else { distance(&wanted, &lower) };
            (d, n)
        })
        .filter(|(d, n)| *d <= (n.len() / 2).max(3))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

impl From<DataFusionError> for QueryError {
    fn from(error: DataFusionError) -> Self {
        match error.find_root() {
            DataFusionError::SQL(e, _) => Self::Syntax(e.to_string()),
            DataFusionError::SchemaError(schema_error, _)
                if let datafusion::common::SchemaError::FieldNotFound { field, valid_fields } =
                    schema_error.as_ref() =>
            {
                let names: Vec<&str> = valid_fields.iter().map(|c| c.name.as_str()).collect();
                let suggestions = closest(&field.name, names.iter().copied());
                let hint = if suggestions.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; did you mean {}?",
                        suggestions.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or ")
                    )
                };
                Self::Plan(format!("unknown column `{}`{hint} (see docs/schema.md for every column)", field.name))
            }
            DataFusionError::ResourcesExhausted(e) => Self::Memory(e.clone()),
            DataFusionError::Plan(e)
                if ["DDL not supported", "DML not supported", "Statement not supported"]
                    .iter()
                    .any(|p| e.starts_with(p)) =>
            {
                Self::Forbidden(format!(
                    "{e}: the query service is read-only; only SELECT, WITH and EXPLAIN run (no DDL, DML, COPY, CREATE EXTERNAL TABLE or SET)"
                ))
            }
            DataFusionError::Plan(e) if e.contains("table") && e.contains("not found") => Self::Plan(format!(
                "{e}; the tables are events, alerts, deadletters, alert_changes and audit_log (views: docs/query.md)"
            )),
            DataFusionError::Plan(e) => Self::Plan(e.clone()),
            DataFusionError::NotImplemented(e) => Self::Plan(format!("not supported: {e}")),
            other => Self::Execution(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_the_near_misses() {
        let names = ["event_time", "client_address", "mcp_method_name", "auth_token_fingerprint"];
        assert_eq!(closest("client_adress", names), ["client_address"]);
        assert_eq!(closest("fingerprint", names), ["auth_token_fingerprint"]);
        assert!(closest("zzzz", names).is_empty());
    }
}
