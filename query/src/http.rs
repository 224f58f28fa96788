//! The HTTP API: `POST /api/v1/query`, exports, the alert workflow (`triage::http`), health
//! and readiness, and Prometheus metrics.

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use mcpsiem_event::Timestamp;
use serde::Deserialize;

use crate::QueryError;
use crate::client_socket::ClientSocket;
use crate::engine::{QueryEngine, QueryRequest};
use crate::export::{ExportError, ExportRequest, Exporter, Selector};
use crate::format::{Encoder, Format, Sink};
use crate::memory::HeldPiece;
use crate::tables::TimeRange;
use datafusion::arrow::record_batch::RecordBatch;
use mcpsiem_runtime::auth::{Caller, Role, authenticate};

pub use mcpsiem_runtime::ops::MetricsRender;

#[derive(Clone)]
struct AppState {
    engine: QueryEngine,
    metrics: Option<MetricsRender>,
    /// None when no signing key is configured: exports are refused with how to fix it.
    exporter: Option<Exporter>,
    work_dir: std::path::PathBuf,
}

/// The body of `POST /api/v1/query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    pub sql: String,
    /// RFC 3339; rows of each table from this time (its time column).
    pub start: Option<String>,
    /// RFC 3339; rows before this time.
    pub end: Option<String>,
    pub limit: Option<usize>,
    #[serde(default)]
    pub format: Format,
}

pub fn router(engine: QueryEngine, metrics: Option<MetricsRender>) -> Router {
    router_with_exports(engine, metrics, None, std::env::temp_dir(), Default::default())
}

/// The API with `POST /api/v1/exports`, building bundles under `work_dir`, and the alert
/// workflow, which stores changes and silences in `sinks` (without them, read-only).
pub fn router_with_exports(
    engine: QueryEngine,
    metrics: Option<MetricsRender>,
    exporter: Option<Exporter>,
    work_dir: std::path::PathBuf,
    sinks: crate::triage::WorkflowSinks,
) -> Router {
    let triage = crate::triage::Triage::new(engine.clone(), sinks);
    Router::new()
        .route("/api/v1/query", post(query).get(query_get))
        .route("/api/v1/exports", post(export))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { engine, metrics, exporter, work_dir })
        .merge(crate::triage::http::routes(triage))
}

fn status(error: &QueryError) -> StatusCode {
    match error {
        QueryError::Forbidden(_) => StatusCode::FORBIDDEN,
        QueryError::Syntax(_) | QueryError::Plan(_) => StatusCode::BAD_REQUEST,
        QueryError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        QueryError::Memory(_) => StatusCode::UNPROCESSABLE_ENTITY,
        QueryError::Busy | QueryError::Lake(_) => StatusCode::SERVICE_UNAVAILABLE,
        QueryError::Unauthorized => StatusCode::UNAUTHORIZED,
        QueryError::Execution(_) | QueryError::Cancelled => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON error body every failure gets.
pub fn error_response(error: &QueryError) -> Response {
    let body = serde_json::json!({ "error": error.code(), "message": error.to_string() });
    let mut response = (status(error), Json(body)).into_response();
    if matches!(error, QueryError::Busy) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    response
}

pub(crate) fn caller(engine: &QueryEngine, headers: &HeaderMap) -> Result<Caller, QueryError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let key = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    key.and_then(|k| authenticate(&engine.config().api_keys, k.trim())).ok_or(QueryError::Unauthorized)
}

fn time(text: Option<&str>, name: &str) -> Result<Option<Timestamp>, QueryError> {
    text.map(|t| {
        Timestamp::parse(t).map_err(|e| {
            QueryError::Plan(format!("`{name}` is not an RFC 3339 time such as 2026-11-24T00:00:00Z: {e}"))
        })
    })
    .transpose()
}

/// Builds the request, refusing what the caller's role may not read.
pub fn request_for(caller: &Caller, body: &QueryBody) -> Result<QueryRequest, QueryError> {
    if caller.role < Role::Admin && body.sql.to_ascii_lowercase().contains("audit_log") {
        return Err(QueryError::Forbidden("the audit_log table is readable by the admin role only".into()));
    }
    let range = TimeRange { start: time(body.start.as_deref(), "start")?, end: time(body.end.as_deref(), "end")? };
    Ok(QueryRequest { sql: body.sql.clone(), range, limit: body.limit, ..QueryRequest::default() })
}

async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<QueryBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(body)) => answer(state, headers, body).await,
        Err(e) => error_response(&QueryError::Plan(format!(
            "the body must be JSON with `sql` (and optional start, end, limit, format): {e}"
        ))),
    }
}

/// `GET /api/v1/query?sql=…`: the same as the POST, for links (alert messages carry one
/// to their matched events); the API key still goes in a header.
async fn query_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<axum::extract::Query<QueryBody>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match params {
        Ok(axum::extract::Query(body)) => answer(state, headers, body).await,
        Err(e) => error_response(&QueryError::Plan(format!(
            "the query string must have `sql` (and optional start, end, limit, format): {e}"
        ))),
    }
}

async fn answer(state: AppState, headers: HeaderMap, body: QueryBody) -> Response {
    let caller = match caller(&state.engine, &headers) {
        Ok(caller) => caller,
        Err(e) => return error_response(&e),
    };
    let checked = request_for(&caller, &body).and_then(|request| {
        Format::for_sink(body.format.name(), Sink::Answer).map(|_| request).map_err(QueryError::Plan)
    });
    let request = match checked {
        Ok(request) => request,
        Err(e) => {
            state.engine.audit_refusal(&caller, &body.sql, &e).await;
            return error_response(&e);
        }
    };
    let answer = match state.engine.run(&caller, request).await {
        Ok(answer) => answer,
        Err(e) => return error_response(&e),
    };
    let format = body.format;
    if format == Format::Ocsf
        && let Err(message) = crate::ocsf::check_columns(&answer.schema)
    {
        return error_response(&QueryError::Plan(message));
    }
    if format == Format::Json {
        // The held prefix counts against the query's memory: a quarter of it at most, so a
        // long answer still streams under a small limit.
        let hold = JSON_HELD_BYTES.min(state.engine.config().memory_limit_bytes / 4);
        return json_answer(answer, hold).await;
    }
    let mut encoder = match Encoder::new(format, &answer.schema) {
        Ok(encoder) => encoder,
        Err(e) => return error_response(&QueryError::Execution(e.to_string())),
    };
    let mut stream = answer.stream;
    let holder = stream.piece_holder();
    let body = async_stream_body(move |tx| async move {
        while let Some(next) = stream.next().await {
            let batch = match next {
                Ok(batch) => batch,
                Err(e) => return end_with_error(&tx, format, e.to_string()).await,
            };
            let encode = |piece: &RecordBatch| encoder.batch(piece).map_err(|e| e.to_string());
            match send_pieces(&tx, &holder, &batch, encode, |e| e.to_string()).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(message) => return end_with_error(&tx, format, message).await,
            }
        }
        if let Ok(tail) = encoder.finish()
            && !tail.is_empty()
        {
            let _ = tx.send(Ok(HeldPiece { bytes: tail, _held: None })).await;
        }
    });
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// Ends a streamed answer whose status is sent already, saying what happened in the body's
/// own terms where the format has them (an NDJSON line), else by breaking the body off.
async fn end_with_error(tx: &PieceSender, format: Format, message: String) {
    if matches!(format, Format::Ndjson | Format::Ocsf) {
        // The line is the signal; breaking the body off as well would lose it (the server
        // drops what it had not written yet).
        let line = serde_json::json!({"error": message}).to_string() + "\n";
        let _ = tx.send(Ok(HeldPiece { bytes: line.into_bytes(), _held: None })).await;
        return;
    }
    let _ = tx.send(Err(std::io::Error::other(message))).await;
}

/// Array memory of the slices an answer batch is encoded in: a batch of wide rows (8,192
/// rows of 2 KB make 16 MiB) is not encoded whole into one buffer as large, and the four
/// pieces queued for a slow client hold about 1 MiB.
const PIECE_BYTES: usize = 256 << 10;

/// `batch` cut into slices of about `PIECE_BYTES` (at least one row each).
fn pieces(batch: &RecordBatch) -> impl Iterator<Item = RecordBatch> + '_ {
    let rows = batch.num_rows();
    let bytes = batch.get_array_memory_size().max(1);
    let per_piece = (rows.saturating_mul(PIECE_BYTES) / bytes).clamp(1, rows.max(1));
    (0..rows).step_by(per_piece).map(move |start| batch.slice(start, per_piece.min(rows - start)))
}

/// Sends `batch` in pieces of about `PIECE_BYTES`, each encoded by `encode` and counted
/// against the query's memory until the server has written it. `Ok(false)`: the client
/// went away; `Err`: encoding failed, or the memory limit (as `held_error` says it).
async fn send_pieces<E>(
    tx: &PieceSender,
    holder: &datafusion::execution::memory_pool::MemoryReservation,
    batch: &RecordBatch,
    mut encode: impl FnMut(&RecordBatch) -> Result<Vec<u8>, E>,
    held_error: impl Fn(QueryError) -> E,
) -> Result<bool, E> {
    for piece in pieces(batch) {
        let bytes = encode(&piece)?;
        if bytes.is_empty() {
            continue;
        }
        let held = holder.new_empty();
        held.try_grow(bytes.len()).map_err(|e| held_error(QueryError::from(e)))?;
        if tx.send(Ok(HeldPiece { bytes, _held: Some(held) })).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Bytes of a JSON answer held before its status is sent: an answer that ends within them
/// gets its error as a status (400, 413, 504…) like any other; a longer one streams on with
/// 200 and, should it fail later, ends with an `error` member (docs/query.md). The held bytes
/// count against the query's memory, and a quarter of `query.memory_limit_bytes` bounds them too.
const JSON_HELD_BYTES: usize = 2 << 20;

/// The `rows` array of a JSON answer, written piece by piece: each call gives the bytes
/// for the rows given (the first ones open the array), `close` the bytes that end it.
struct JsonRows(datafusion::arrow::json::ArrayWriter<Vec<u8>>);

impl JsonRows {
    fn new() -> Self {
        Self(datafusion::arrow::json::ArrayWriter::new(Vec::new()))
    }

    fn rows(&mut self, piece: &RecordBatch) -> Result<Vec<u8>, QueryError> {
        self.0.write(piece).map_err(|e| QueryError::Execution(e.to_string()))?;
        Ok(std::mem::take(self.0.get_mut()))
    }

    fn close(&mut self) -> Vec<u8> {
        // Only an I/O error of the Vec could fail it; the bytes are the array's end either way.
        let _ = self.0.finish();
        let end = std::mem::take(self.0.get_mut());
        if end.is_empty() { b"]".to_vec() } else { end }
    }
}

/// The JSON document answer: `columns`, `rows`, `row_count`, `truncated`.
async fn json_answer(answer: crate::engine::QueryAnswer, hold: usize) -> Response {
    let columns: Vec<serde_json::Value> = answer
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"{\"columns\":");
    head.extend_from_slice(&serde_json::to_vec(&columns).expect("columns serialize"));
    head.extend_from_slice(b",\"rows\":");
    let mut stream = answer.stream;
    let holder = stream.piece_holder();
    let mut writer = JsonRows::new();
    let mut rows: Vec<u8> = Vec::new();
    // The held rows count against the query's memory like the pieces streamed later.
    let mut rows_held: Option<datafusion::execution::memory_pool::MemoryReservation> = None;
    let mut row_count = 0usize;
    let tail = |row_count: usize, truncated: bool| format!(",\"row_count\":{row_count},\"truncated\":{truncated}}}");
    let failed = |row_count: usize, e: &QueryError| {
        let error = serde_json::json!({ "error": e.code(), "message": e.to_string() });
        format!(",\"row_count\":{row_count},\"truncated\":true,\"error\":{error}}}")
    };
    // Held until the answer ends or outgrows the hold.
    loop {
        match stream.next().await {
            None => {
                let mut out = head;
                out.extend_from_slice(&rows);
                out.extend_from_slice(&writer.close());
                out.extend_from_slice(tail(row_count, stream.truncated()).as_bytes());
                return ([(header::CONTENT_TYPE, Format::Json.content_type())], out).into_response();
            }
            Some(Err(e)) => return error_response(&e),
            Some(Ok(batch)) => {
                row_count += batch.num_rows();
                for piece in pieces(&batch) {
                    match writer.rows(&piece) {
                        Ok(bytes) => rows.extend_from_slice(&bytes),
                        Err(e) => return error_response(&e),
                    }
                }
                // By capacity: what the buffer takes, not only what it holds.
                let grown = match &rows_held {
                    Some(held) => held.try_resize(rows.capacity()).map_err(QueryError::from),
                    None => stream.hold_piece(rows.capacity()).map(|held| rows_held = Some(held)),
                };
                if let Err(e) = grown {
                    return error_response(&e);
                }
                if rows.len() > hold {
                    break;
                }
            }
        }
    }
    let body = async_stream_body(move |tx| async move {
        // Two pieces: copying the held rows behind the head would hold them twice.
        if tx.send(Ok(HeldPiece { bytes: head, _held: None })).await.is_err()
            || tx.send(Ok(HeldPiece { bytes: rows, _held: rows_held })).await.is_err()
        {
            return;
        }
        let end = loop {
            match stream.next().await {
                None => break tail(row_count, stream.truncated()),
                // The status is sent already: the document ends saying what happened.
                Some(Err(e)) => break failed(row_count, &e),
                Some(Ok(batch)) => {
                    row_count += batch.num_rows();
                    match send_pieces(&tx, &holder, &batch, |piece| writer.rows(piece), |e| e).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            let mut end = writer.close();
                            end.extend_from_slice(failed(row_count, &e).as_bytes());
                            let _ = tx.send(Ok(HeldPiece { bytes: end, _held: None })).await;
                            return;
                        }
                    }
                }
            }
        };
        let mut bytes = writer.close();
        bytes.extend_from_slice(end.as_bytes());
        let _ = tx.send(Ok(HeldPiece { bytes, _held: None })).await;
    });
    ([(header::CONTENT_TYPE, Format::Json.content_type())], body).into_response()
}

/// The sending end of a streamed answer.
type PieceSender = tokio::sync::mpsc::Sender<Result<HeldPiece, std::io::Error>>;

/// A streaming body fed by a task through a small channel: back-pressure keeps at most a
/// few pieces in memory, each counted against the query's memory until written.
fn async_stream_body<F, Fut>(produce: F) -> Body
where
    F: FnOnce(PieceSender) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(produce(tx));
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// The body of `POST /api/v1/exports`: exactly one selector, an optional range and format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub sql: Option<String>,
    pub alert: Option<String>,
    pub session: Option<String>,
    pub token: Option<String>,
    pub user: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub format: Option<String>,
}

impl ExportBody {
    pub fn request(self) -> Result<ExportRequest, QueryError> {
        let mut selectors = Vec::new();
        if let Some(v) = self.sql {
            selectors.push(Selector::Sql(v));
        }
        if let Some(v) = self.alert {
            selectors.push(Selector::Alert(v));
        }
        if let Some(v) = self.session {
            selectors.push(Selector::Session(v));
        }
        if let Some(v) = self.token {
            selectors.push(Selector::Token(v));
        }
        if let Some(v) = self.user {
            selectors.push(Selector::User(v));
        }
        if selectors.len() != 1 {
            return Err(QueryError::Plan(format!(
                "give exactly one of sql, alert, session, token or user (got {})",
                selectors.len()
            )));
        }
        let format = match self.format.as_deref() {
            None => Format::Parquet,
            Some(f) => Format::for_sink(f, Sink::Export).map_err(QueryError::Plan)?,
        };
        let range = TimeRange { start: time(self.start.as_deref(), "start")?, end: time(self.end.as_deref(), "end")? };
        Ok(ExportRequest { selector: selectors.remove(0), range, format, via: "api".into() })
    }
}

fn export_error_response(error: &ExportError) -> Response {
    match error {
        ExportError::Query(e) => error_response(e),
        other => {
            let status = match other {
                ExportError::Request(_) => StatusCode::BAD_REQUEST,
                ExportError::AlertNotFound(_) => StatusCode::NOT_FOUND,
                ExportError::Lake(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = serde_json::json!({ "error": other.code(), "message": other.to_string() });
            (status, Json(body)).into_response()
        }
    }
}

/// `POST /api/v1/exports` (auditor role): builds the bundle on disk, then streams it back
/// and removes it. The manifest's SHA-256 and the bundle id come back as headers too.
async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Result<Json<ExportBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let caller = match caller(&state.engine, &headers) {
        Ok(caller) => caller,
        Err(e) => return error_response(&e),
    };
    // The role is checked by the exporter, which audits refused attempts too.
    let Some(exporter) = state.exporter.clone() else {
        return export_error_response(&ExportError::Key {
            path: "evidence.signing_key".into(),
            reason: "is not set; create a key pair with `mcpsiem keys generate` and set it".into(),
        });
    };
    let request = match body {
        Ok(Json(body)) => match body.request() {
            Ok(request) => request,
            Err(e) => return error_response(&e),
        },
        Err(e) => {
            return error_response(&QueryError::Plan(format!(
                "the body must be JSON with one of sql, alert, session, token or user (and optional start, end, format): {e}"
            )));
        }
    };
    let path = state.work_dir.join(format!("mcpsiem-export-{}.zip", ulid::Ulid::new()));
    let work = exporter.export(&caller, &request, &path, &|_| {});
    let client = extensions.get::<ConnectInfo<ClientSocket>>().map(|info| info.0);
    let built = match client {
        // A client that went away cancels its export: the work stops, the partial bundle is
        // removed and the attempt is audited as cancelled (all by dropping `work`).
        Some(client) => tokio::select! {
            built = work => built,
            () = client.closed() => {
                tracing::info!(caller = %caller.name, "the client closed its connection; export cancelled");
                return error_response(&QueryError::Cancelled);
            }
        },
        None => work.await,
    };
    let outcome = match built {
        Ok(outcome) => outcome,
        Err(e) => return export_error_response(&e),
    };
    let file = match tokio::fs::File::open(&outcome.path).await {
        Ok(file) => file,
        Err(e) => return error_response(&QueryError::Execution(format!("cannot read the bundle back: {e}"))),
    };
    // Unlinked now, read through the open handle: nothing is left behind whatever the client does.
    let _ = tokio::fs::remove_file(&outcome.path).await;
    let name = format!("mcpsiem-export-{}.zip", outcome.bundle_id);
    let body = Body::from_stream(file_chunks(file));
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::HeaderName::from_static("x-mcpsiem-manifest-sha256"), outcome.manifest_sha256.clone()),
            (header::HeaderName::from_static("x-mcpsiem-bundle-id"), outcome.bundle_id.clone()),
            (header::HeaderName::from_static("x-mcpsiem-rows"), outcome.rows.to_string()),
        ],
        body,
    )
        .into_response()
}

/// A file as a stream of chunks.
fn file_chunks(file: tokio::fs::File) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 1 << 16];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.engine.lake().list(&object_store::path::Path::from("events")).await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("the lake cannot be listed: {e}")).into_response(),
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(render) => render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}
