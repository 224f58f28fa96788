//! The statements PostgreSQL clients send about their session rather than the data: `SET`
//! of client settings, `SHOW`, transactions and `DISCARD`. Drivers (JDBC, Npgsql, pgx) send
//! them on their own, so they are answered here; none of them changes what a query sees.

use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};

use crate::QueryError;

/// Client settings a `SET` may change. They only shape how a client talks; engine options
/// (`datafusion.*`) and anything else are refused, as the service is read-only.
const CLIENT_SETTINGS: &[&str] = &[
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "idle_in_transaction_session_timeout",
    "intervalstyle",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "lock_timeout",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "timezone",
];

/// A session statement and what to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionCommand {
    /// A client setting, remembered for `SHOW`.
    Set {
        name: String,
        value: String,
    },
    Show {
        name: String,
    },
    /// Transactions are accepted and mean nothing: every query only reads.
    Begin,
    Commit,
    Rollback,
    /// `DISCARD ALL`, `DEALLOCATE`: connection pools reset sessions with them.
    Discard {
        tag: &'static str,
    },
}

/// The session command `statement` is, if it is one; `Err` for a `SET` the service refuses.
pub fn classify(statement: &Statement) -> Result<Option<SessionCommand>, QueryError> {
    Ok(Some(match statement {
        Statement::StartTransaction { .. } => SessionCommand::Begin,
        Statement::Commit { .. } => SessionCommand::Commit,
        Statement::Rollback { .. } => SessionCommand::Rollback,
        Statement::Discard { .. } => SessionCommand::Discard { tag: "DISCARD ALL" },
        Statement::Deallocate { .. } => SessionCommand::Discard { tag: "DEALLOCATE" },
        Statement::ShowVariable { variable } => {
            SessionCommand::Show { name: variable.iter().map(|i| i.value.to_lowercase()).collect::<Vec<_>>().join(" ") }
        }
        Statement::Set(set) => classify_set(set)?,
        _ => return Ok(None),
    }))
}

fn classify_set(set: &Set) -> Result<SessionCommand, QueryError> {
    let (name, value) = match set {
        Set::SingleAssignment { variable, values, .. } => {
            (variable.to_string().to_lowercase(), values.iter().map(setting_text).collect::<Vec<_>>().join(", "))
        }
        Set::SetTimeZone { value, .. } => ("timezone".to_string(), setting_text(value)),
        Set::SetNames { charset_name, .. } => ("client_encoding".to_string(), charset_name.value.clone()),
        // `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY` and the like: always true here.
        Set::SetTransaction { .. } => return Ok(SessionCommand::Discard { tag: "SET" }),
        other => return Err(refused(&other.to_string())),
    };
    if CLIENT_SETTINGS.contains(&name.as_str()) { Ok(SessionCommand::Set { name, value }) } else { Err(refused(&name)) }
}

fn refused(name: &str) -> QueryError {
    QueryError::Forbidden(format!(
        "SET {name} is not allowed: the query service is read-only and its engine options are fixed by the \
         server's configuration; only client settings ({}) can be set",
        CLIENT_SETTINGS.join(", ")
    ))
}

/// `'ISO, MDY'` → `ISO, MDY`; identifiers and numbers as written.
fn setting_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// What `SHOW name` answers when the client did not set it.
pub fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "transaction isolation level" | "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "is_superuser" => "off",
        "timezone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "client_encoding" | "server_encoding" => "UTF8",
        "search_path" => "public",
        "max_identifier_length" => "63",
        "extra_float_digits" => "1",
        "bytea_output" => "hex",
        "application_name" => "",
        "statement_timeout" | "lock_timeout" => "0",
        "server_version" => "16.6",
        "server_version_num" => "160006",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0)
    }

    #[test]
    fn driver_statements_are_session_commands() {
        assert_eq!(
            classify(&parse("SET extra_float_digits = 3")).unwrap(),
            Some(SessionCommand::Set { name: "extra_float_digits".into(), value: "3".into() })
        );
        assert_eq!(
            classify(&parse("SET DateStyle TO 'ISO, MDY'")).unwrap(),
            Some(SessionCommand::Set { name: "datestyle".into(), value: "ISO, MDY".into() })
        );
        assert_eq!(
            classify(&parse("SET TIME ZONE 'UTC'")).unwrap(),
            Some(SessionCommand::Set { name: "timezone".into(), value: "UTC".into() })
        );
        assert_eq!(
            classify(&parse("SHOW TRANSACTION ISOLATION LEVEL")).unwrap(),
            Some(SessionCommand::Show { name: "transaction isolation level".into() })
        );
        assert_eq!(classify(&parse("BEGIN")).unwrap(), Some(SessionCommand::Begin));
        assert_eq!(classify(&parse("ROLLBACK")).unwrap(), Some(SessionCommand::Rollback));
        assert_eq!(classify(&parse("SELECT 1")).unwrap(), None);
    }

    #[test]
    fn engine_options_cannot_be_set() {
        let e = classify(&parse("SET datafusion.execution.batch_size = 1")).unwrap_err();
        assert!(matches!(e, QueryError::Forbidden(_)), "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
        assert!(classify(&parse("SET ROLE admin")).is_err());
        assert_eq!(default_setting("transaction isolation level"), Some("read committed"));
    }
}
