//! One query as an analyst or a client asks it: the SQL, its dialect, the time range and
//! limits. The engine runs it; the audit log records it.

use std::time::Duration;

use datafusion::common::ParamValues;

use crate::tables::TimeRange;

/// Which SQL the query is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// DataFusion's SQL (HTTP API and CLI).
    #[default]
    DataFusion,
    /// PostgreSQL as clients such as psql, DBeaver and Grafana send it: parsed with the
    /// PostgreSQL dialect, with their catalog queries rewritten, and `pg_catalog` present.
    Postgres,
}

/// One query as asked.
#[derive(Clone, Debug, Default)]
pub struct QueryRequest {
    pub sql: String,
    pub range: TimeRange,
    /// At most this many rows (never more than `query.max_rows`).
    pub limit: Option<usize>,
    /// Values for `$1`, `$2`… (prepared statements of the PostgreSQL protocol).
    pub params: Option<ParamValues>,
    pub dialect: Dialect,
    /// An evidence export reads every row (no `max_rows`), under `evidence.timeout_seconds`,
    /// and is audited once by the exporter rather than as a query.
    pub export: Option<Duration>,
}
