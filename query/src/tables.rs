//! The lake's tables as DataFusion sees them: the files each table's snapshot lists (never a
//! directory listing, which would show staged or replaced files), pruned to the hours of
//! the requested time range, with the range also applied to the rows.

use std::sync::Arc;

use std::borrow::Cow;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use mcpsiem_event::Timestamp;
use mcpsiem_lake::{Lake, Snapshot, Table};

use crate::QueryError;

/// The URL the lake's object store is registered under in DataFusion.
pub const LAKE_URL: &str = "mcpsiem://lake/";

/// The rows a query may see, by each table's time column; open ends are unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

impl TimeRange {
    fn holds_hour(&self, hour: mcpsiem_lake::HourPartition) -> bool {
        self.start.is_none_or(|s| hour.end() > s) && self.end.is_none_or(|e| hour.start() < e)
    }
}

/// A table's schema and its time column.
pub fn table_schema(table: Table) -> (SchemaRef, &'static str) {
    match table {
        Table::Events => (mcpsiem_event::schema::arrow_schema(), "event_time"),
        Table::Alerts => (mcpsiem_event::alert_schema(), "alert_time"),
        Table::DeadLetters => (mcpsiem_event::schema::deadletter_schema(), "received_time"),
        Table::AlertChanges => (mcpsiem_event::alert_change_schema(), "changed_at"),
        Table::Silences => (mcpsiem_event::silence::silence_schema(), "version_at"),
    }
}

/// A lake file a query read, for the audit log and evidence manifests.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FileRead {
    pub table: String,
    pub path: String,
    pub size: u64,
}

fn micros(t: Timestamp) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.as_micros()), Some("UTC".into()))
}

/// Registers `events`, `alerts` and `deadletters` in `ctx` for `range`; returns the files.
pub async fn register_lake_tables(
    ctx: &SessionContext,
    lake: &Lake,
    range: TimeRange,
) -> Result<Vec<FileRead>, QueryError> {
    let mut read = Vec::new();
    for table in Table::ALL {
        let (schema, time_column) = table_schema(table);
        let snapshot = Snapshot::load(lake, table).await.map_err(|e| QueryError::Lake(e.to_string()))?;
        let files: Vec<_> =
            snapshot.files.into_iter().filter(|f| f.hour.is_none_or(|hour| range.holds_hour(hour))).collect();
        let provider: Arc<dyn TableProvider> = if files.is_empty() {
            Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?)
        } else {
            let urls = files
                .iter()
                .map(|f| ListingTableUrl::parse(format!("{LAKE_URL}{}", f.path)))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(schema.clone());
            Arc::new(ListingTable::try_new(config)?)
        };
        read.extend(files.iter().map(|f| FileRead {
            table: table.name().to_string(),
            path: f.path.to_string(),
            size: f.size,
        }));
        let mut frame = ctx.read_table(provider)?;
        if let Some(start) = range.start {
            frame = frame.filter(col(time_column).gt_eq(lit(micros(start))))?;
        }
        if let Some(end) = range.end {
            frame = frame.filter(col(time_column).lt(lit(micros(end))))?;
        }
        ctx.register_table(table.name(), Arc::new(LakeTable(frame.into_view())))?;
    }
    Ok(read)
}

/// A lake table as clients see it: the time-filtered view of its files, reported as a base
/// table so that catalog browsers (psql's `\dt`, DBeaver, Grafana) list it as one.
#[derive(Debug)]
pub struct LakeTable(pub Arc<dyn TableProvider>);

#[async_trait::async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }
}
