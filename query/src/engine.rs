//! Running one query: read-only SQL over the lake's tables, within the configured time,
//! memory, row and concurrency limits, recorded in the audit log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::{MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Stream, StreamExt};
use mcpsiem_lake::Lake;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::QueryError;
use crate::audit::{AuditLog, AuditRecord};
use crate::config::QueryConfig;
use crate::memory::{AnswerMemory, QueryPool, SharedPool};
pub use crate::request::{Dialect, QueryRequest};
use crate::tables::{FileRead, LAKE_URL, register_lake_tables};
use mcpsiem_runtime::auth::Caller;

/// What a statement returns and the parameters it takes, known without running it.
#[derive(Clone, Debug)]
pub struct Described {
    pub schema: SchemaRef,
    /// The type of `$1`, `$2`… in order, where the planner could infer it.
    pub params: Vec<Option<DataType>>,
}

/// Everything needed to run queries over one lake.
#[derive(Clone)]
pub struct QueryEngine {
    lake: Lake,
    config: QueryConfig,
    slots: Arc<Semaphore>,
    /// Each API key's own slots (`query.max_concurrent_per_key`), taken before the shared
    /// ones: one key's long queries cannot take every slot.
    key_slots: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>>,
    audit: AuditLog,
    /// File statistics and Parquet footers/page indexes, shared by every query (each query
    /// has its own runtime for its own memory pool, so the caches are handed to each).
    caches: CacheManagerConfig,
    /// Parses PostgreSQL clients' SQL (built once: it tokenizes its rewrite patterns).
    pg_parser: Arc<PostgresCompatibilityParser>,
    /// The approved MCP servers (`[detect.lists] approved_servers`), for the inventory views.
    approved_servers: Arc<Vec<String>>,
    /// `query.total_memory_bytes`: every running query's pool draws from it.
    memory: Arc<SharedPool>,
}

/// A running query's answer: the schema now, the rows as they come.
pub struct QueryAnswer {
    pub schema: SchemaRef,
    pub stream: LimitedStream,
    pub files: Vec<FileRead>,
}

impl QueryEngine {
    pub fn new(lake: Lake, config: QueryConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        let audit = AuditLog::new(lake.clone());
        // Lake files never change once published (compaction writes new ones), so their
        // statistics and footers can be cached for the life of the service.
        // Every runtime built from `caches` resets the shared caches' limits to its own, so
        // the limits go into `caches` as well.
        let limits = CacheManagerConfig::default()
            .with_metadata_cache_limit(config.metadata_cache_bytes)
            .with_file_statistics_cache_limit(config.metadata_cache_bytes);
        let shared =
            RuntimeEnvBuilder::new().with_cache_manager(limits.clone()).build().expect("a default runtime builds");
        let caches = limits
            .with_file_statistics_cache(shared.cache_manager.get_file_statistic_cache())
            .with_file_metadata_cache(Some(shared.cache_manager.get_file_metadata_cache()));
        let memory = SharedPool::new(config.total_memory_bytes.max(1));
        Self {
            lake,
            config,
            slots,
            key_slots: Arc::default(),
            audit,
            caches,
            pg_parser: Arc::new(PostgresCompatibilityParser::new()),
            approved_servers: Arc::default(),
            memory,
        }
    }

    /// Bytes reserved now by every running query, their answers included.
    pub fn memory_reserved(&self) -> usize {
        self.memory.reserved()
    }

    /// Sets the approved MCP servers the inventory views compare against.
    pub fn with_approved_servers(mut self, servers: Vec<String>) -> Self {
        self.approved_servers = Arc::new(servers);
        self
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    /// Stores an audit record (the exporter's record of one export).
    pub async fn audit(&self, record: AuditRecord) {
        self.audit.write(record).await;
    }

    /// Stores an audit record in the background (from a `Drop`, which cannot wait).
    pub fn audit_later(&self, record: AuditRecord) {
        self.audit.write_later(record);
    }

    /// Waits until the audit records of finished answers are stored.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// A session for one query: its own memory pool within the shared one (so one query
    /// cannot starve the others, nor all of them the process), the lake's object store, and
    /// the tables for `range`.
    async fn session(
        &self,
        request: &QueryRequest,
        include_audit: bool,
    ) -> Result<(SessionContext, Vec<FileRead>), QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(QueryPool::new(self.config.memory_limit_bytes.max(1), self.memory.clone())))
            .with_cache_manager(self.caches.clone())
            .build_arc()?;
        let mut config = session_config()?;
        if request.export.is_some() {
            // One stream, in file order: with several, the partitions' decoders run ahead of
            // the single bundle writer and the batches between them pile up (bench export).
            config.options_mut().execution.target_partitions = 1;
        }
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = url::Url::parse(LAKE_URL).expect("a valid URL");
        ctx.register_object_store(&url, self.lake.store().clone());
        let files = register_lake_tables(&ctx, &self.lake, request.range).await?;
        if include_audit {
            self.audit.register(&ctx).await?;
        }
        // A client's catalog query may name a table by OID only (psql's `\d`): it sees them all.
        let catalog_query = request.dialect == Dialect::Postgres && crate::pg::catalog::reads_catalog(&request.sql);
        // Listed only for the queries that name it: most queries never read it.
        if catalog_query || request.sql.to_ascii_lowercase().contains("alert_deliveries") {
            let schema = crate::audit::deliveries_schema();
            crate::audit::register_json_dir(&ctx, &self.lake, "alert_deliveries", "alert_deliveries", schema).await?;
        }
        let views = if catalog_query { "" } else { request.sql.as_str() };
        crate::views::register_views(&ctx, views, catalog_query, &self.approved_servers).await?;
        // Incidents are derived (grouped like the API groups them), only for the queries
        // that name them; a catalog query sees the table's columns.
        if catalog_query || request.sql.to_ascii_lowercase().contains("incidents") {
            if !ctx.table_exist("alert_status")? {
                crate::views::register_views(&ctx, "alert_status", false, &self.approved_servers).await?;
            }
            crate::triage::incidents::register_table(&ctx, &self.config, !catalog_query).await?;
        }
        if request.dialect == Dialect::Postgres {
            datafusion_pg_catalog::setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
                .map_err(|e| QueryError::from(*e))?;
            if catalog_query {
                crate::pg::catalog::use_stable_oids(&ctx, "datafusion").await?;
            }
        }
        Ok((ctx, files))
    }

    /// Records in the audit log a request refused before it reached the engine (a table the
    /// role may not read, a bad time, a refused `SET`, a failed login): every attempt is in
    /// the log, not only the ones that ran.
    pub async fn audit_refusal(&self, caller: &Caller, sql: &str, error: &QueryError) {
        let request = QueryRequest { sql: sql.to_owned(), ..QueryRequest::default() };
        metrics::counter!("mcpsiem_query_errors_total", "code" => error.code()).increment(1);
        self.audit.write(AuditRecord::start(caller, &request).failed(error, Duration::ZERO)).await;
    }

    /// The slots of one API key, made on its first query.
    fn key_slots(&self, key: &str) -> Arc<Semaphore> {
        let per_key = self.config.max_concurrent_per_key.clamp(1, self.config.max_concurrent.max(1));
        let mut slots = self.key_slots.lock().expect("no panics under the lock");
        slots.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(per_key))).clone()
    }

    /// A query refused for want of a slot: audited, counted, `Busy`.
    async fn refuse_busy(&self, caller: &Caller, request: &QueryRequest) -> QueryError {
        let e = QueryError::Busy;
        if request.export.is_none() {
            self.audit.write(AuditRecord::start(caller, request).failed(&e, Duration::ZERO)).await;
        }
        metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
        e
    }

    /// The nesting bound queries are checked against (`query.max_expression_depth`).
    pub fn max_expression_depth(&self) -> usize {
        self.config.max_expression_depth
    }

    /// Plans and starts `request` for `caller`; rows stream from the answer. The audit log
    /// records the query when the answer is finished (or fails).
    pub async fn run(&self, caller: &Caller, request: QueryRequest) -> Result<QueryAnswer, QueryError> {
        // Before anything parses the text: a tree too deep to plan is refused from its tokens.
        if let Err(e) = crate::nesting::check_nesting(&request.sql, self.config.max_expression_depth) {
            if request.export.is_none() {
                self.audit.write(AuditRecord::start(caller, &request).failed(&e, Duration::ZERO)).await;
            }
            metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
            return Err(e);
        }
        let queue = Duration::from_secs(self.config.queue_seconds);
        let waited = Instant::now();
        let key_permit = match tokio::time::timeout(queue, self.key_slots(&caller.name).acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.refuse_busy(caller, &request).await),
        };
        let permit = match tokio::time::timeout(
            queue.saturating_sub(waited.elapsed()),
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => (permit, key_permit),
            _ => return Err(self.refuse_busy(caller, &request).await),
        };
        // The time limit counts from when the query may run, not from when it queued.
        let started = Instant::now();
        let timeout = request.export.unwrap_or(Duration::from_secs(self.config.timeout_seconds.max(1)));
        let record = AuditRecord::start(caller, &request);
        if request.export.is_none() {
            // Before any work: a query that takes the process down is still in the log.
            self.audit.write(record.running()).await;
        }
        fail::fail_point!("query::after_running_record", |_| mcpsiem_runtime::failpoint::crash(
            "query::after_running_record"
        ));
        let planned = tokio::time::timeout(timeout, self.plan(caller, &request)).await;
        let (schema, stream, files, pool) = match planned {
            Ok(Ok(planned)) => planned,
            Ok(Err(e)) => {
                if request.export.is_none() {
                    self.audit.write(record.failed(&e, started.elapsed())).await;
                }
                metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
                return Err(e);
            }
            Err(_) => {
                let e = QueryError::Timeout(timeout);
                if request.export.is_none() {
                    self.audit.write(record.failed(&e, started.elapsed())).await;
                }
                metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
                return Err(e);
            }
        };
        let max_rows = match request.export {
            Some(_) => usize::MAX,
            None => request.limit.unwrap_or(self.config.max_rows).min(self.config.max_rows),
        };
        let audit = request.export.is_none().then(|| self.audit.clone());
        let stream = LimitedStream {
            inner: stream,
            deadline: Box::pin(tokio::time::sleep(timeout.saturating_sub(started.elapsed()))),
            timeout,
            rows_left: max_rows,
            rows: 0,
            truncated: false,
            done: false,
            memory: AnswerMemory::new(&pool),
            finish: Some(Finish { audit, record, started, files: files.clone(), _permit: permit }),
        };
        Ok(QueryAnswer { schema, stream, files })
    }

    /// The result schema and parameter types of `request`, without running it (the
    /// PostgreSQL protocol's Describe). Not audited: it reads no rows.
    pub async fn describe(&self, caller: &Caller, request: &QueryRequest) -> Result<Described, QueryError> {
        crate::nesting::check_nesting(&request.sql, self.config.max_expression_depth)?;
        let (ctx, _) = self.session(request, caller.role >= mcpsiem_runtime::auth::Role::Admin).await?;
        let plan = self.logical_plan(&ctx, request).await?;
        let casts = placeholder_casts(&plan)?;
        let mut params: Vec<(usize, Option<DataType>)> = plan
            .get_parameter_types()?
            .into_iter()
            .filter_map(|(id, ty)| {
                let ty = ty.or_else(|| casts.get(&id).cloned());
                Some((id.strip_prefix('$')?.parse().ok()?, ty))
            })
            .collect();
        params.sort_by_key(|(n, _)| *n);
        Ok(Described {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            params: params.into_iter().map(|(_, ty)| ty).collect(),
        })
    }

    /// The checked (read-only) logical plan of `request` in `ctx`.
    async fn logical_plan(&self, ctx: &SessionContext, request: &QueryRequest) -> Result<LogicalPlan, QueryError> {
        let state = ctx.state();
        let plan = match request.dialect {
            Dialect::DataFusion => state.create_logical_plan(&request.sql).await?,
            Dialect::Postgres => {
                let mut statements =
                    self.pg_parser.parse(&request.sql).map_err(|e| QueryError::Syntax(e.to_string()))?;
                if statements.len() != 1 {
                    return Err(QueryError::Plan(format!(
                        "expected exactly one statement, found {}; send them one at a time",
                        statements.len()
                    )));
                }
                state.statement_to_plan(Statement::Statement(Box::new(statements.remove(0)))).await?
            }
        };
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)?;
        Ok(plan)
    }

    async fn plan(
        &self,
        caller: &Caller,
        request: &QueryRequest,
    ) -> Result<(SchemaRef, SendableRecordBatchStream, Vec<FileRead>, Arc<dyn MemoryPool>), QueryError> {
        let include_audit = caller.role >= mcpsiem_runtime::auth::Role::Admin;
        let (ctx, files) = self.session(request, include_audit).await?;
        let plan = self.logical_plan(&ctx, request).await?;
        let mut frame = ctx.execute_logical_plan(plan).await?;
        if let Some(params) = &request.params {
            frame = frame.with_param_values(params.clone())?;
        }
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let stream = frame.execute_stream().await?;
        Ok((schema, stream, files, ctx.runtime_env().memory_pool.clone()))
    }
}

/// DataFusion's settings for every query: filters evaluated while decoding Parquet (a needle
/// decodes the other columns only for the rows that match), no plan-time statistics, then any `DATAFUSION_*`
/// environment variables an operator sets to tune the engine (clients cannot `SET` them).
fn session_config() -> Result<SessionConfig, QueryError> {
    let mut config = SessionConfig::new().with_information_schema(true);
    // Plan-time file statistics cost more than they give on an hour-partitioned lake: every
    // query would convert every file's footer again, and the scan prunes by row group anyway
    // (measured: median forensic query 1.67x DuckDB's time without, 2.02x with).
    config.options_mut().execution.collect_statistics = false;
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    let from_env = datafusion::config::ConfigOptions::from_env()?;
    for entry in from_env.entries() {
        let variable = entry.key.replace('.', "_").to_uppercase();
        if std::env::var_os(&variable).is_some()
            && let Some(value) = entry.value
        {
            config.options_mut().set(&entry.key, &value)?;
        }
    }
    Ok(config)
}

/// The types placeholders are cast to (`$1::BIGINT`), which the planner does not count as
/// their type; drivers need one to send the value.
fn placeholder_casts(plan: &LogicalPlan) -> Result<std::collections::HashMap<String, DataType>, QueryError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;
    let mut casts = std::collections::HashMap::new();
    plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                if let Expr::Cast(cast) = e
                    && let Expr::Placeholder(placeholder) = cast.expr.as_ref()
                {
                    casts.entry(placeholder.id.clone()).or_insert_with(|| cast.field.data_type().clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(casts)
}

/// What happens when an answer ends: the audit record and the metrics.
struct Finish {
    /// None for exports, which the exporter audits itself.
    audit: Option<AuditLog>,
    record: AuditRecord,
    started: Instant,
    files: Vec<FileRead>,
    /// The shared slot and the key's own, given back when the answer ends.
    _permit: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// The rows of an answer, cut at the row limit and the deadline.
pub struct LimitedStream {
    inner: SendableRecordBatchStream,
    /// Fires at the time limit; polled with the plan so a plan that never yields is cut too.
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    rows_left: usize,
    rows: u64,
    truncated: bool,
    done: bool,
    /// The batch handed out last and the answer's encoded pieces, in the query's pool.
    memory: AnswerMemory,
    finish: Option<Finish>,
}

impl LimitedStream {
    /// True once the answer was cut at the row limit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Reserves `bytes` of an encoded piece of the answer against the query's limits,
    /// until the returned reservation is dropped (when the piece was written out).
    pub fn hold_piece(&self, bytes: usize) -> Result<MemoryReservation, QueryError> {
        self.memory.hold_piece(bytes).map_err(QueryError::from)
    }

    /// What the answer's encoded pieces are reserved from, sendable across tasks.
    pub fn piece_holder(&self) -> MemoryReservation {
        self.memory.holder()
    }

    fn end(&mut self, error: Option<&QueryError>) {
        self.done = true;
        self.memory.release();
        if let Some(finish) = self.finish.take() {
            let elapsed = finish.started.elapsed();
            let record = match error {
                None => finish.record.finished(self.rows, self.truncated, &finish.files, elapsed),
                Some(e) => finish.record.failed(e, elapsed),
            };
            metrics::counter!("mcpsiem_query_queries_total").increment(1);
            metrics::counter!("mcpsiem_query_rows_total").increment(self.rows);
            metrics::counter!("mcpsiem_query_bytes_scanned_total")
                .increment(finish.files.iter().map(|f| f.size).sum::<u64>());
            metrics::histogram!("mcpsiem_query_seconds").record(elapsed.as_secs_f64());
            if let Some(e) = error {
                metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
            }
            if let Some(audit) = finish.audit {
                audit.write_later(record);
            }
        }
    }
}

impl Drop for LimitedStream {
    /// An answer dropped before its end (the client went away) is still audited.
    fn drop(&mut self) {
        if self.finish.is_some() {
            self.end(Some(&QueryError::Cancelled));
        }
    }
}

impl Stream for LimitedStream {
    type Item = Result<RecordBatch, QueryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let e = QueryError::Timeout(self.timeout);
            self.end(Some(&e));
            return Poll::Ready(Some(Err(e)));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.end(None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                let e = QueryError::from(e);
                self.end(Some(&e));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(batch))) => {
                // The plan's batches are not in its pool: counted while the answer holds them.
                if let Err(e) = self.memory.hold_batch(batch.get_array_memory_size()) {
                    let e = QueryError::from(e);
                    self.end(Some(&e));
                    return Poll::Ready(Some(Err(e)));
                }
                let rows = batch.num_rows();
                if rows >= self.rows_left {
                    let cut = batch.slice(0, self.rows_left);
                    self.truncated = rows > self.rows_left;
                    self.rows += cut.num_rows() as u64;
                    self.rows_left = 0;
                    // The limit reached: stop reading (the plan is dropped with the stream).
                    if self.truncated || cut.num_rows() == 0 {
                        self.end(None);
                    }
                    if cut.num_rows() == 0 {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(cut)));
                }
                self.rows_left -= rows;
                self.rows += rows as u64;
                Poll::Ready(Some(Ok(batch)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpsiem_runtime::auth::Role;

    async fn audit_outcomes(engine: &QueryEngine, admin: &Caller) -> Vec<String> {
        engine.flush_audit().await;
        let request = QueryRequest {
            sql: "SELECT outcome FROM audit_log WHERE caller = 'ana' ORDER BY audit_time".into(),
            ..QueryRequest::default()
        };
        let mut answer = engine.run(admin, request).await.unwrap();
        let mut outcomes = Vec::new();
        while let Some(batch) = answer.stream.next().await {
            let batch = batch.unwrap();
            let column = datafusion::arrow::array::AsArray::as_string::<i32>(batch.column(0));
            outcomes.extend(column.iter().map(|v| v.unwrap_or_default().to_string()));
        }
        outcomes
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_end_is_audited_as_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let engine = QueryEngine::new(lake, QueryConfig::default());
        let analyst = Caller { name: "ana".into(), role: Role::Analyst };
        let admin = Caller { name: "root".into(), role: Role::Admin };

        let request =
            QueryRequest { sql: "SELECT value FROM generate_series(1, 100000000)".into(), ..QueryRequest::default() };
        let mut answer = engine.run(&analyst, request).await.unwrap();
        assert!(answer.stream.next().await.unwrap().unwrap().num_rows() > 0);
        drop(answer);

        let request = QueryRequest { sql: "SELECT 1".into(), ..QueryRequest::default() };
        let mut answer = engine.run(&analyst, request).await.unwrap();
        while answer.stream.next().await.is_some() {}
        drop(answer);

        assert_eq!(audit_outcomes(&engine, &admin).await, ["cancelled", "ok"]);
    }

    /// The batches an answer hands out count in its query's pool and in the shared one: a
    /// wide answer past its own limit fails naming it; two answers each within their own
    /// limit but not within the total fail the second naming the total; once the first
    /// answer ends, the memory is free for the next.
    #[tokio::test]
    async fn answers_count_against_their_own_limit_and_the_shared_total() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        // 8,192 rows of 1,000 bytes: 8 MiB a batch.
        let wide = "SELECT value, repeat('x', 1000) AS pad FROM generate_series(1, 100000)";
        let config =
            QueryConfig { memory_limit_bytes: 4 << 20, total_memory_bytes: 64 << 20, ..QueryConfig::default() };
        let engine = QueryEngine::new(lake.clone(), config);
        let e = outcome(&engine, wide.into()).await.unwrap_err();
        assert_eq!(e, "memory_limit");
        let caller = Caller { name: "ana".into(), role: Role::Analyst };
        let mut answer =
            engine.run(&caller, QueryRequest { sql: wide.into(), ..QueryRequest::default() }).await.unwrap();
        let message = answer.stream.next().await.unwrap().unwrap_err().to_string();
        assert!(message.contains("query.memory_limit_bytes (4194304 bytes)"), "{message}");
        drop(answer);
        assert_eq!(engine.memory_reserved(), 0);

        let config =
            QueryConfig { memory_limit_bytes: 12 << 20, total_memory_bytes: 14 << 20, ..QueryConfig::default() };
        let engine = QueryEngine::new(lake, config);
        let mut first =
            engine.run(&caller, QueryRequest { sql: wide.into(), ..QueryRequest::default() }).await.unwrap();
        first.stream.next().await.unwrap().unwrap();
        assert!(engine.memory_reserved() >= 8_000_000, "{}", engine.memory_reserved());
        let mut second =
            engine.run(&caller, QueryRequest { sql: wide.into(), ..QueryRequest::default() }).await.unwrap();
        let message = second.stream.next().await.unwrap().unwrap_err().to_string();
        assert!(message.contains("query.total_memory_bytes (14680064 bytes"), "{message}");
        while let Some(batch) = first.stream.next().await {
            batch.unwrap();
        }
        drop((first, second));
        assert_eq!(engine.memory_reserved(), 0);
        assert_eq!(outcome(&engine, wide.into()).await, Ok(()));
    }

    /// One expression nested `depth` deep in the way `kind` nests.
    fn nested(kind: usize, depth: usize) -> String {
        match kind {
            0 => vec!["1"; depth + 1].join(" + "),
            1 => format!("{}1{}", "(".repeat(depth), ")".repeat(depth)),
            2 => format!("{}true", "NOT ".repeat(depth)),
            3 => format!("{}1{}", "abs(".repeat(depth), ")".repeat(depth)),
            4 => format!("{}1{}", "CASE WHEN true THEN ".repeat(depth), " END".repeat(depth)),
            5 => vec!["true"; depth + 1].join(" AND "),
            6 => format!("{}1", "- ".repeat(depth)),
            7 => vec!["'a'"; depth + 1].join(" || "),
            8 => format!("{}1{}", "(SELECT ".repeat(depth), ")".repeat(depth)),
            _ => format!("{}1{}", "CAST(".repeat(depth), " AS BIGINT)".repeat(depth)),
        }
    }

    /// Runs `sql` to its end; the error code, if any.
    async fn outcome(engine: &QueryEngine, sql: String) -> Result<(), &'static str> {
        let caller = Caller { name: "ana".into(), role: Role::Analyst };
        let mut answer =
            engine.run(&caller, QueryRequest { sql, ..QueryRequest::default() }).await.map_err(|e| e.code())?;
        while let Some(batch) = answer.stream.next().await {
            batch.map_err(|e| e.code())?;
        }
        Ok(())
    }

    /// Deep nesting of every expression kind, on the service's own runtime: refused with
    /// `invalid_query` past the bound (the default one, and far past it), answered or refused
    /// with a message below it, and never a crash (a stack overflow aborts this test binary).
    /// Below the bound it runs with a bound of 60: DataFusion's simplifier takes time that
    /// grows steeply with a chain's length, minutes for 300 terms in a debug build.
    #[test]
    fn deep_expressions_of_every_kind_are_refused_or_answered_never_a_crash() {
        use proptest::strategy::Strategy;
        let runtime = mcpsiem_runtime::lake_runtime::build(1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let default = std::sync::Arc::new(QueryEngine::new(lake.clone(), QueryConfig::default()));
        let max = 60;
        let small = std::sync::Arc::new(QueryEngine::new(
            lake,
            QueryConfig { max_expression_depth: max, ..QueryConfig::default() },
        ));
        // Queries run on the runtime's workers, as the service's do.
        let run = |engine: &std::sync::Arc<QueryEngine>, sql: String| {
            let engine = engine.clone();
            runtime.block_on(async move { tokio::spawn(async move { outcome(&engine, sql).await }).await.unwrap() })
        };
        let bound = crate::nesting::DEFAULT_MAX_EXPRESSION_DEPTH;
        for kind in 0..10 {
            for depth in [bound + 1, 2_500, 200_000] {
                let sql = format!("SELECT {}", nested(kind, depth));
                assert_eq!(run(&default, sql), Err("invalid_query"), "kind {kind}, depth {depth}");
            }
        }
        // Flat chains are what the parser's own recursion limit lets through: at the bound,
        // they must plan and run.
        for kind in [0, 5, 7] {
            assert_eq!(run(&small, format!("SELECT {}", nested(kind, max - 2))), Ok(()), "kind {kind}");
        }
        // Nested scalar subqueries (kind 8) are left out below the bound: decorrelating them
        // takes time exponential in the depth, which the query's time limit cuts.
        proptest::proptest!(proptest::prelude::ProptestConfig::with_cases(16), |(kind in (0usize..10).prop_filter("not subqueries", |k| *k != 8), depth in 1usize..(max / 2 - 1))| {
            let result = run(&small, format!("SELECT {}", nested(kind, depth)));
            proptest::prop_assert!(
                matches!(result, Ok(()) | Err("syntax_error" | "invalid_query")),
                "kind {} depth {}: {:?}", kind, depth, result
            );
        });
    }
}
