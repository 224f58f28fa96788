//! Running one query: read-only SQL over the lake's tables, within the configured time,
//! memory, row and concurrency limits, recorded in the audit log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::{Stream, StreamExt};
use mcpsiem_event::lake::Lake;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::QueryError;
use crate::audit::{AuditLog, AuditRecord};
use crate::auth::Caller;
use crate::config::QueryConfig;
use crate::tables::{FileRead, LAKE_URL, TimeRange, register_lake_tables};

/// One query as asked.
#[derive(Clone, Debug, Default)]
pub struct QueryRequest {
    pub sql: String,
    pub range: TimeRange,
    /// At most this many rows (never more than `query.max_rows`).
    pub limit: Option<usize>,
}

/// Everything needed to run queries over one lake.
#[derive(Clone)]
pub struct QueryEngine {
    lake: Lake,
    config: QueryConfig,
    slots: Arc<Semaphore>,
    audit: AuditLog,
    /// File statistics and Parquet footers/page indexes, shared by every query (each query
    /// has its own runtime for its own memory pool, so the caches are handed to each).
    caches: CacheManagerConfig,
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
        let shared = RuntimeEnvBuilder::new().build().expect("a default runtime builds");
        let caches = CacheManagerConfig::default()
            .with_file_statistics_cache(shared.cache_manager.get_file_statistic_cache())
            .with_file_metadata_cache(Some(shared.cache_manager.get_file_metadata_cache()));
        Self { lake, config, slots, audit, caches }
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    /// Waits until the audit records of finished answers are stored.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// A session for one query: its own memory pool (so one query cannot starve the
    /// others), the lake's object store, and the tables for `range`.
    async fn session(
        &self,
        range: TimeRange,
        include_audit: bool,
    ) -> Result<(SessionContext, Vec<FileRead>), QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(self.config.memory_limit_bytes)))
            .with_cache_manager(self.caches.clone())
            .build_arc()?;
        let config = SessionConfig::new().with_information_schema(true).with_target_partitions(2);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = url::Url::parse(LAKE_URL).expect("a valid URL");
        ctx.register_object_store(&url, self.lake.store().clone());
        let files = register_lake_tables(&ctx, &self.lake, range).await?;
        if include_audit {
            self.audit.register(&ctx).await?;
        }
        Ok((ctx, files))
    }

    /// Plans and starts `request` for `caller`; rows stream from the answer. The audit log
    /// records the query when the answer is finished (or fails).
    pub async fn run(&self, caller: &Caller, request: QueryRequest) -> Result<QueryAnswer, QueryError> {
        let permit =
            tokio::time::timeout(Duration::from_secs(self.config.queue_seconds), self.slots.clone().acquire_owned())
                .await
                .map_err(|_| QueryError::Busy)?
                .map_err(|_| QueryError::Busy)?;
        // The time limit counts from when the query may run, not from when it queued.
        let started = Instant::now();
        let timeout = Duration::from_secs(self.config.timeout_seconds.max(1));
        let record = AuditRecord::start(caller, &request);
        let planned = tokio::time::timeout(timeout, self.plan(caller, &request)).await;
        let (schema, stream, files) = match planned {
            Ok(Ok(planned)) => planned,
            Ok(Err(e)) => {
                self.audit.write(record.failed(&e, started.elapsed())).await;
                metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
                return Err(e);
            }
            Err(_) => {
                let e = QueryError::Timeout(timeout);
                self.audit.write(record.failed(&e, started.elapsed())).await;
                metrics::counter!("mcpsiem_query_errors_total", "code" => e.code()).increment(1);
                return Err(e);
            }
        };
        let max_rows = request.limit.unwrap_or(self.config.max_rows).min(self.config.max_rows);
        let stream = LimitedStream {
            inner: stream,
            deadline: Box::pin(tokio::time::sleep(timeout.saturating_sub(started.elapsed()))),
            timeout,
            rows_left: max_rows,
            rows: 0,
            truncated: false,
            done: false,
            finish: Some(Finish { audit: self.audit.clone(), record, started, files: files.clone(), _permit: permit }),
        };
        Ok(QueryAnswer { schema, stream, files })
    }

    async fn plan(
        &self,
        caller: &Caller,
        request: &QueryRequest,
    ) -> Result<(SchemaRef, SendableRecordBatchStream, Vec<FileRead>), QueryError> {
        let include_audit = caller.role >= crate::auth::Role::Admin;
        let (ctx, files) = self.session(request.range, include_audit).await?;
        let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let frame = ctx.sql_with_options(&request.sql, read_only).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let stream = frame.execute_stream().await?;
        Ok((schema, stream, files))
    }
}

/// What happens when an answer ends: the audit record and the metrics.
struct Finish {
    audit: AuditLog,
    record: AuditRecord,
    started: Instant,
    files: Vec<FileRead>,
    _permit: OwnedSemaphorePermit,
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
    finish: Option<Finish>,
}

impl LimitedStream {
    /// True once the answer was cut at the row limit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn end(&mut self, error: Option<&QueryError>) {
        self.done = true;
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
            finish.audit.write_later(record);
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
