//! The `audit_log` table: every query and every evidence export: who, when, what SQL, how many
//! rows, how long, and how it ended. One small JSON object per query under
//! `audit_log/date=YYYY-MM-DD/` in the lake, so it lives with the data it describes and
//! survives the query service.
//!
//! A query or export is recorded twice: a `running` record before any work starts, and its
//! outcome after. The `audit_log` table shows each attempt once, its outcome if it has one;
//! an attempt left `running` with no outcome is one in progress, or one whose process died
//! while running it (the reason the first record is written before the work: a query that
//! crashes the service is still in the log).

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::JoinType;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::{SessionContext, col, lit};
use mcpsiem_event::Timestamp;
use mcpsiem_lake::{JsonRecords, Lake};
use object_store::path::Path;
use serde::Serialize;

use crate::QueryError;
use crate::request::QueryRequest;
use crate::tables::{FileRead, LAKE_URL};
use mcpsiem_runtime::auth::Caller;

const ROOT: &str = "audit_log";
/// The outcome of an attempt's first record.
pub const RUNNING: &str = "running";

/// One line of the audit log.
#[derive(Clone, Debug, Serialize)]
pub struct AuditRecord {
    pub audit_time: String,
    /// Shared by an attempt's `running` record and its outcome record.
    pub query_id: String,
    pub action: String,
    pub caller: String,
    pub role: String,
    pub sql: String,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub outcome: String,
    pub error: Option<String>,
    pub rows: u64,
    pub truncated: bool,
    pub duration_ms: u64,
    pub files_read: u64,
    pub bytes_read: u64,
    /// For exports: the bundle, its manifest's SHA-256, the selector and format (JSON).
    pub detail: Option<String>,
}

impl AuditRecord {
    pub fn start(caller: &Caller, request: &QueryRequest) -> Self {
        Self {
            audit_time: Timestamp::now().to_string(),
            query_id: ulid::Ulid::new().to_string(),
            action: "query".into(),
            caller: caller.name.clone(),
            role: caller.role.as_str().into(),
            sql: request.sql.clone(),
            range_start: request.range.start.map(|t| t.to_string()),
            range_end: request.range.end.map(|t| t.to_string()),
            outcome: "running".into(),
            error: None,
            rows: 0,
            truncated: false,
            duration_ms: 0,
            files_read: 0,
            bytes_read: 0,
            detail: None,
        }
    }

    pub fn finished(mut self, rows: u64, truncated: bool, files: &[FileRead], elapsed: Duration) -> Self {
        self.outcome = "ok".into();
        self.rows = rows;
        self.truncated = truncated;
        self.duration_ms = elapsed.as_millis() as u64;
        self.files_read = files.len() as u64;
        self.bytes_read = files.iter().map(|f| f.size).sum();
        self
    }

    /// The record of an attempt about to start (the one written before the work).
    pub fn running(&self) -> Self {
        Self { outcome: RUNNING.into(), ..self.clone() }
    }

    pub fn failed(mut self, error: &QueryError, elapsed: Duration) -> Self {
        self.outcome = error.code().into();
        self.error = Some(error.to_string());
        self.duration_ms = elapsed.as_millis() as u64;
        self
    }
}

/// Where audit records go and how they are read back.
#[derive(Clone)]
pub struct AuditLog {
    records: JsonRecords,
}

pub fn audit_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("audit_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        // Records from before the attempts had two records have none.
        text("query_id", true),
        text("action", false),
        text("caller", false),
        text("role", false),
        text("sql", false),
        text("range_start", true),
        text("range_end", true),
        text("outcome", false),
        text("error", true),
        Field::new("rows", DataType::UInt64, false),
        Field::new("truncated", DataType::Boolean, false),
        Field::new("duration_ms", DataType::UInt64, false),
        Field::new("files_read", DataType::UInt64, false),
        Field::new("bytes_read", DataType::UInt64, false),
        text("detail", true),
    ]))
}

impl AuditLog {
    pub fn new(lake: Lake) -> Self {
        Self { records: JsonRecords::new(lake, ROOT) }
    }

    /// Stores a record in the background (from places that cannot wait).
    pub fn write_later(&self, record: AuditRecord) {
        let caller = record.caller.clone();
        let date = record_date(&record);
        if !self.records.write_later(date, record, move |e| audit_failed(&e, &caller)) {
            tracing::error!("cannot write the audit record outside a runtime");
        }
    }

    /// Waits for every background write (a command-line query before it exits).
    pub async fn flush(&self) {
        self.records.flush().await;
    }

    /// Stores a record; a failure is logged, never fails the query it describes.
    pub async fn write(&self, record: AuditRecord) {
        if let Err(e) = self.records.write(&record_date(&record), &record).await {
            audit_failed(&e, &record.caller);
        }
    }

    /// Registers the `audit_log` table in `ctx`.
    /// Each attempt once: its outcome record, or its `running` record while it has none.
    pub async fn register(&self, ctx: &SessionContext) -> Result<(), QueryError> {
        let records = json_dir_table(self.records.lake(), ROOT, audit_schema()).await?;
        let outcomes = ctx.read_table(records.clone())?.filter(col("outcome").not_eq(lit(RUNNING)))?;
        let finished_ids = outcomes.clone().select(vec![col("query_id").alias("finished_id")])?;
        let unfinished = ctx.read_table(records)?.filter(col("outcome").eq(lit(RUNNING)))?.join(
            finished_ids,
            JoinType::LeftAnti,
            &["query_id"],
            &["finished_id"],
            None,
        )?;
        ctx.register_table("audit_log", outcomes.union(unfinished)?.into_view())?;
        Ok(())
    }
}

fn record_date(record: &AuditRecord) -> String {
    record.audit_time.get(..10).unwrap_or("unknown").to_string()
}

fn audit_failed(error: &mcpsiem_lake::LakeError, caller: &str) {
    tracing::error!(%error, caller, "cannot write the audit record");
    metrics::counter!("mcpsiem_query_audit_failures_total").increment(1);
}

/// Registers the JSON-lines files under `root` in the lake as table `name` (empty when
/// there are none yet).
pub async fn register_json_dir(
    ctx: &SessionContext,
    lake: &Lake,
    root: &str,
    name: &str,
    schema: SchemaRef,
) -> Result<(), QueryError> {
    ctx.register_table(name, json_dir_table(lake, root, schema).await?)?;
    Ok(())
}

/// The JSON-lines files under `root` in the lake as one table (empty when there are none).
async fn json_dir_table(
    lake: &Lake,
    root: &str,
    schema: SchemaRef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, QueryError> {
    let objects = lake.list(&Path::from(root)).await.map_err(|e| QueryError::Lake(e.to_string()))?;
    Ok(if objects.is_empty() {
        Arc::new(MemTable::try_new(schema, vec![vec![]])?)
    } else {
        let urls = objects
            .iter()
            .map(|o| ListingTableUrl::parse(format!("{LAKE_URL}{}", o.location)))
            .collect::<Result<Vec<_>, _>>()?;
        let options = ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".json");
        let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
        Arc::new(ListingTable::try_new(config)?)
    })
}

/// The `alert_deliveries` table the delivery stage writes: how each alert's delivery to
/// each destination ended.
pub fn deliveries_schema() -> SchemaRef {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("finished_time", time(), false),
        text("alert_id", false),
        text("rule_id", false),
        text("rule_title", false),
        text("level", false),
        text("destination", false),
        text("status", false),
        Field::new("attempts", DataType::UInt32, false),
        Field::new("enqueued_time", time(), false),
        text("reference", true),
        text("last_error", true),
        Field::new("http_status", DataType::UInt16, true),
    ]))
}
