//! `collect http`: events posted over HTTP, for producers that cannot reach Kafka.
//!
//! `POST /v1/events` takes one JSON event, a JSON array of events, or NDJSON (one per
//! line), optionally compressed (`Content-Encoding: gzip` or `deflate`). The caller
//! authenticates with `Authorization: Bearer KEY` or `X-API-Key: KEY`. Each record is checked
//! against the event schema and the answer gives the outcome of each (up to a bound).
//! Rejected records are still shipped, so the ingester keeps them in the dead letters with
//! the same reason: nothing posted is lost.
//!
//! `POST /v1/traces` and `POST /v1/logs` take OTLP/HTTP (protobuf or JSON): spans and log
//! records with MCP attributes become events (see [`crate::otlp`]), with the same keys,
//! limits and durability.
//!
//! A batch is taken whole or not at all: it is written to the spool and synced before the
//! answer, so whatever is answered 200 (or 207/422) survives a crash at any moment and a
//! Kafka outage up to the spool's size; a full spool answers 503 before taking anything.

use std::io::Read;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcpsiem_runtime::auth::ApiKey;
use serde::Serialize;

use super::capture::Capture;
use super::otlp::{self, Signal};
use super::sink::EventSink;

/// The intake as a collector: `collect http`, until a stop is requested.
pub struct IntakeCollector {
    pub listen: String,
    /// OTLP over gRPC; empty: off.
    pub otlp_grpc_listen: String,
    /// Redaction and size limits for tool arguments and results that arrive as OTLP.
    pub capture: Capture,
    pub api_keys: Vec<ApiKey>,
    pub max_body_bytes: usize,
    pub max_record_bytes: usize,
    pub max_records: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot listen on {addr}: {source}; is the port taken? set collect.intake.listen")]
    Listen { addr: String, source: std::io::Error },
    #[error("the intake stopped: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Ops(#[from] mcpsiem_runtime::ops::OpsError),
}

impl crate::harness::Collector for IntakeCollector {
    type Summary = ();
    type Error = IntakeError;

    fn running(&self) -> crate::harness::Running {
        // It serves /metrics on its own listener, and is ready once that listens.
        crate::harness::Running {
            stage: "intake",
            serve_metrics: false,
            max_record_bytes: self.max_record_bytes,
            ..Default::default()
        }
    }

    async fn run(self, context: crate::harness::Context) -> Result<(), IntakeError> {
        if self.api_keys.is_empty() {
            tracing::warn!(
                "collect.intake.api_keys is empty: every post will be refused; create a key with `mcpsiem apikey create`"
            );
        }
        let handle = mcpsiem_runtime::ops::metrics_handle()?;
        let intake = Intake {
            sink: context.sink,
            capture: self.capture,
            api_keys: self.api_keys,
            max_body_bytes: self.max_body_bytes,
            max_record_bytes: self.max_record_bytes,
            max_records: self.max_records,
            metrics: Some(Arc::new(move || handle.render())),
        };
        let intake = Arc::new(intake);
        if !self.otlp_grpc_listen.is_empty() {
            let listener = tokio::net::TcpListener::bind(&self.otlp_grpc_listen)
                .await
                .map_err(|source| IntakeError::Listen { addr: self.otlp_grpc_listen.clone(), source })?;
            tracing::info!(listen = %self.otlp_grpc_listen, "OTLP/gRPC intake listening");
            let grpc = crate::otlp_grpc::OtlpGrpc::new(intake.clone());
            tokio::spawn(async move {
                if let Err(e) = grpc.serve(listener, mcpsiem_runtime::stop::shutdown_signal()).await {
                    tracing::error!(error = %e, "the OTLP/gRPC intake stopped");
                }
            });
        }
        let app = router(intake);
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .map_err(|source| IntakeError::Listen { addr: self.listen.clone(), source })?;
        tracing::info!(listen = %self.listen, "event intake listening: POST /v1/events, OTLP/HTTP /v1/traces and /v1/logs");
        mcpsiem_runtime::ops::set_ready("intake", true);
        axum::serve(listener, app)
            .with_graceful_shutdown(mcpsiem_runtime::stop::shutdown_signal())
            .await
            .map_err(IntakeError::Serve)
    }
}

/// What the intake needs.
pub struct Intake {
    pub sink: EventSink,
    pub capture: Capture,
    pub api_keys: Vec<ApiKey>,
    pub max_body_bytes: usize,
    pub max_record_bytes: usize,
    pub max_records: usize,
    pub metrics: Option<mcpsiem_runtime::ops::MetricsRender>,
}

/// One record's outcome.
#[derive(Debug, Serialize)]
pub struct RecordResult {
    pub index: usize,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer to a post: the counts, and the outcome of each of the first
/// [`MAX_RESULTS`] records.
#[derive(Debug, Serialize)]
pub struct IntakeReply {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<RecordResult>,
    /// Records past the listed ones (counted above, not listed).
    #[serde(skip_serializing_if = "is_zero")]
    pub results_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct ErrorReply {
    error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorReply { error: message.into() })).into_response()
}

pub fn router(intake: Arc<Intake>) -> axum::Router {
    // The body limit applies to the compressed bytes; the decompressed size is checked
    // while inflating, so a small gzip bomb cannot grow past it either.
    let limit = intake.max_body_bytes;
    axum::Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/traces", post(|state, headers, body| post_otlp(state, headers, body, Signal::Traces)))
        .route("/v1/logs", post(|state, headers, body| post_otlp(state, headers, body, Signal::Logs)))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        // Ready once listening; the spool takes events while Kafka is away, so Kafka is not
        // a condition (a full spool answers 503 per request instead).
        .route("/readyz", get(|| async { "ready" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(intake)
}

async fn metrics(State(intake): State<Arc<Intake>>) -> Response {
    match &intake.metrics {
        Some(render) => render().into_response(),
        None => error(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}

fn caller_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

/// Results listed in one reply at most (the counts cover every record): a body of many
/// tiny bad lines must not make a reply larger than itself.
const MAX_RESULTS: usize = 1000;

/// Characters of an error's detail kept in a reply.
const MAX_DETAIL_CHARS: usize = 300;

/// Bytes of an oversize record kept in its dead letter.
const TOO_LARGE_PREFIX_BYTES: usize = 4096;

async fn post_events(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let (caller, body) = match authorized_body(&intake, &headers, body) {
        Ok(taken) => taken,
        Err(response) => return *response,
    };
    let records = match split_records(&body) {
        Ok(records) => records,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if records.len() > intake.max_records {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body holds {} records, more than {} (collect.intake.max_records); split the batch",
                records.len(),
                intake.max_records
            ),
        );
    }
    let reply = match take_records(&intake, &records, &caller.name) {
        Ok(reply) => reply,
        Err(message) => return unavailable(message),
    };
    metrics::counter!("mcpsiem_intake_events_total", "outcome" => "accepted").increment(reply.accepted as u64);
    metrics::counter!("mcpsiem_intake_events_total", "outcome" => "rejected").increment(reply.rejected as u64);
    let status = match (reply.accepted, reply.rejected) {
        (_, 0) => StatusCode::OK,
        (0, _) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::MULTI_STATUS,
    };
    metrics::counter!("mcpsiem_intake_requests_total", "outcome" => status.as_str().to_owned()).increment(1);
    (status, Json(reply)).into_response()
}

/// Checks each record against the event schema and spools the whole batch (rejected records
/// too, for the dead letters) before answering: acknowledged means durable. `Err`: why the
/// spool refused the batch (full or failing); nothing of it was taken.
fn take_records(intake: &Intake, records: &[&[u8]], caller: &str) -> Result<IntakeReply, String> {
    let mut reply = IntakeReply { accepted: 0, rejected: 0, results: Vec::new(), results_omitted: 0 };
    let mut shipped: Vec<(Option<String>, std::borrow::Cow<'_, [u8]>)> = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let result = match mcpsiem_event::parse_event(record, intake.max_record_bytes) {
            Ok(event) => {
                reply.accepted += 1;
                shipped.push((mcpsiem_runtime::kafka::event_key(&event).map(str::to_owned), (*record).into()));
                RecordResult {
                    index,
                    status: "accepted",
                    event_id: Some(event.id.to_string()),
                    reason: None,
                    detail: None,
                }
            }
            Err(e) => {
                reply.rejected += 1;
                // Rejected records go on too: the ingester dead-letters them with this reason.
                // One too large for Kafka travels as an envelope with its start.
                let payload = match e {
                    mcpsiem_event::DecodeError::TooLarge { size, limit } => {
                        mcpsiem_event::too_large_envelope(record, size, limit, TOO_LARGE_PREFIX_BYTES).into()
                    }
                    _ => (*record).into(),
                };
                shipped.push((None, payload));
                let mut detail = e.to_string();
                if let Some((cut, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
                    detail.truncate(cut);
                    detail.push('…');
                }
                RecordResult {
                    index,
                    status: "rejected",
                    event_id: None,
                    reason: Some(e.reason_code().to_owned()),
                    detail: Some(detail),
                }
            }
        };
        if reply.results.len() < MAX_RESULTS {
            reply.results.push(result);
        } else {
            reply.results_omitted += 1;
        }
    }
    // Acknowledged means durable: the whole batch is on disk (synced) before the answer, or
    // none of it is taken and the client is told to send it again.
    let batch: Vec<(Option<&str>, &[u8])> =
        shipped.iter().map(|(key, payload)| (key.as_deref(), &payload[..])).collect();
    if let Err(e) = intake.sink.shipper().send_durable(&batch) {
        tracing::error!(error = %e, caller = %caller, "cannot spool a posted batch; refused it");
        metrics::counter!("mcpsiem_intake_requests_total", "outcome" => "unavailable").increment(1);
        return Err(format!("{e}; none of the {} records was taken", records.len()));
    }
    Ok(reply)
}

/// 503 with `Retry-After`: the spool did not take the batch.
fn unavailable(message: String) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("30"));
    response
}

/// What an OTLP request came to, over HTTP or gRPC.
pub struct OtlpOutcome {
    /// Records that failed the event schema (dead-lettered).
    pub rejected: usize,
    /// For the partial success: what was dropped or dead-lettered; `None` when nothing was.
    pub message: Option<String>,
}

/// Why an OTLP request was not taken.
pub enum OtlpRefusal {
    /// Too many records, or events past the expansion budget: export smaller batches.
    TooLarge(String),
    /// The spool did not take it: send it again later.
    Unavailable(String),
}

impl Intake {
    /// Maps an OTLP request with `convert` (within the expansion budget and the record limit)
    /// and takes its events like posted ones.
    pub fn take_otlp(
        &self,
        signal: Signal,
        caller: &str,
        convert: impl FnOnce(&Capture, usize) -> Result<otlp::Converted, otlp::TooLarge>,
    ) -> Result<OtlpOutcome, OtlpRefusal> {
        let converted = convert(&self.capture, otlp_budget(self.max_body_bytes))
            .map_err(|e| OtlpRefusal::TooLarge(e.to_string()))?;
        if converted.events.len() > self.max_records {
            return Err(OtlpRefusal::TooLarge(format!(
                "the request holds {} MCP records, more than {} (collect.intake.max_records); export smaller batches",
                converted.events.len(),
                self.max_records
            )));
        }
        let records: Vec<&[u8]> = converted.events.iter().map(Vec::as_slice).collect();
        let reply = take_records(self, &records, caller).map_err(OtlpRefusal::Unavailable)?;
        let signal_name = signal.name();
        metrics::counter!("mcpsiem_intake_otlp_records_total", "signal" => signal_name, "outcome" => "accepted")
            .increment(reply.accepted as u64);
        metrics::counter!("mcpsiem_intake_otlp_records_total", "signal" => signal_name, "outcome" => "rejected")
            .increment(reply.rejected as u64);
        metrics::counter!("mcpsiem_intake_otlp_records_total", "signal" => signal_name, "outcome" => "not_mcp")
            .increment(converted.not_mcp as u64);
        let message = (reply.rejected > 0 || converted.not_mcp > 0).then(|| {
            format!(
                "{} records failed the event schema and were dead-lettered; {} records without mcp.method.name \
                 were dropped",
                reply.rejected, converted.not_mcp
            )
        });
        Ok(OtlpOutcome { rejected: reply.rejected, message })
    }
}

/// `POST /v1/traces` and `/v1/logs`: OTLP/HTTP export requests, protobuf or JSON, gzip or
/// not, with the intake's keys and limits. Spans and log records with MCP attributes become
/// events (`otlp`); the rest are counted and dropped. The answer is the OTLP export response
/// in the request's encoding, with a partial success naming what was dropped or
/// dead-lettered.
async fn post_otlp(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    signal: Signal,
) -> Response {
    let (caller, body) = match authorized_body(&intake, &headers, body) {
        Ok(taken) => taken,
        Err(response) => return *response,
    };
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    if !json && !content_type.starts_with("application/x-protobuf") && !content_type.starts_with("application/protobuf")
    {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type `{content_type}`: send OTLP as application/x-protobuf or application/json"),
        );
    }
    let decoded = match decode_otlp(&body, json, signal) {
        Ok(decoded) => decoded,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let outcome = match intake.take_otlp(signal, &caller.name, |capture, budget| match &decoded {
        OtlpRequest::Traces(request) => otlp::traces(request, capture, budget),
        OtlpRequest::Logs(request) => otlp::logs(request, capture, budget),
    }) {
        Ok(outcome) => outcome,
        Err(OtlpRefusal::TooLarge(message)) => return error(StatusCode::PAYLOAD_TOO_LARGE, message),
        Err(OtlpRefusal::Unavailable(message)) => return unavailable(message),
    };
    metrics::counter!("mcpsiem_intake_requests_total", "outcome" => "200").increment(1);
    otlp_response(signal, json, outcome)
}

/// Bytes of events one OTLP request may expand to: mapped events are larger than their
/// protobuf (field names, resource attributes repeated per record), within reason.
fn otlp_budget(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_mul(4)
}

/// A decoded OTLP export request.
enum OtlpRequest {
    Traces(opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest),
    Logs(opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest),
}

/// The body as an export request of `signal`; `Err`: not one, in that encoding.
fn decode_otlp(body: &[u8], json: bool, signal: Signal) -> Result<OtlpRequest, String> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let what = if json { "OTLP JSON" } else { "OTLP protobuf" };
    let fail = |e: String| format!("the body is not an {what} {} export request: {e}", signal.name());
    Ok(match (signal, json) {
        (Signal::Traces, false) => {
            OtlpRequest::Traces(ExportTraceServiceRequest::decode(body).map_err(|e| fail(e.to_string()))?)
        }
        (Signal::Traces, true) => OtlpRequest::Traces(serde_json::from_slice(body).map_err(|e| fail(e.to_string()))?),
        (Signal::Logs, false) => {
            OtlpRequest::Logs(ExportLogsServiceRequest::decode(body).map_err(|e| fail(e.to_string()))?)
        }
        (Signal::Logs, true) => OtlpRequest::Logs(serde_json::from_slice(body).map_err(|e| fail(e.to_string()))?),
    })
}

/// The OTLP export response: empty when everything was taken, else a partial success.
fn otlp_response(signal: Signal, json: bool, outcome: OtlpOutcome) -> Response {
    use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
    use prost::Message;
    let rejected = outcome.rejected as i64;
    let (bytes, text) = match signal {
        Signal::Traces => {
            let response = ExportTraceServiceResponse {
                partial_success: outcome
                    .message
                    .map(|error_message| ExportTracePartialSuccess { rejected_spans: rejected, error_message }),
            };
            (response.encode_to_vec(), serde_json::to_vec(&response))
        }
        Signal::Logs => {
            let response = ExportLogsServiceResponse {
                partial_success: outcome
                    .message
                    .map(|error_message| ExportLogsPartialSuccess { rejected_log_records: rejected, error_message }),
            };
            (response.encode_to_vec(), serde_json::to_vec(&response))
        }
    };
    if json {
        let body = text.unwrap_or_else(|_| b"{}".to_vec());
        return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
    }
    (StatusCode::OK, [("content-type", "application/x-protobuf")], bytes).into_response()
}

/// The caller and the inflated body of a request, or the answer refusing it: 401 without a
/// valid key, 413 over the body limit (compressed or inflated), 400/415 for a body that cannot
/// be read or inflated.
fn authorized_body(
    intake: &Intake,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(mcpsiem_runtime::auth::Caller, Bytes), Box<Response>> {
    let Some(caller) = caller_key(headers).and_then(|key| mcpsiem_runtime::auth::authenticate(&intake.api_keys, key))
    else {
        metrics::counter!("mcpsiem_intake_requests_total", "outcome" => "unauthorized").increment(1);
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "send a key of collect.intake.api_keys as `Authorization: Bearer KEY`",
        )));
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Box::new(too_large(intake.max_body_bytes)));
        }
        Err(rejection) => {
            return Err(Box::new(error(rejection.status(), format!("the body could not be read: {rejection}"))));
        }
    };
    Ok((caller, decode_body(headers, body, intake.max_body_bytes)?))
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is over {limit} bytes (collect.intake.max_body_bytes); send fewer events per request"),
    )
}

/// The body as sent, inflated when it says it is compressed: gzip (every member of a
/// concatenated stream), deflate (zlib, or raw as some clients send it) or none. The limit
/// holds for the inflated bytes, so a small bomb cannot grow past it.
fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, Box<Response>> {
    let encoding = headers.get("content-encoding").map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let inflate = |reader: &mut dyn Read| -> Result<Bytes, std::io::Error> {
        let mut inflated = Vec::new();
        let n = reader.take(limit as u64 + 1).read_to_end(&mut inflated)?;
        if n > limit {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "over the limit"));
        }
        Ok(Bytes::from(inflated))
    };
    let result = match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(body),
        Some("gzip") | Some("x-gzip") => inflate(&mut flate2::read::MultiGzDecoder::new(&body[..])),
        Some("deflate") => inflate(&mut flate2::read::ZlibDecoder::new(&body[..]))
            .or_else(|_| inflate(&mut flate2::read::DeflateDecoder::new(&body[..]))),
        Some(other) => {
            return Err(Box::new(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding `{other}` is not supported: send gzip, deflate or no encoding"),
            )));
        }
    };
    result.map_err(|e| {
        Box::new(if e.kind() == std::io::ErrorKind::FileTooLarge {
            too_large(limit)
        } else {
            error(StatusCode::BAD_REQUEST, format!("the body is not valid {}: {e}", encoding.unwrap_or_default()))
        })
    })
}

/// The records of a body: one JSON value (an object, also pretty-printed over several
/// lines), a JSON array's items, or the non-blank lines of NDJSON.
fn split_records(body: &[u8]) -> Result<Vec<&[u8]>, String> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Err("the body is empty: send JSON events, a JSON array of them, or NDJSON".into());
    }
    if trimmed.first() == Some(&b'[') {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(trimmed)
            .map_err(|e| format!("the body starts like a JSON array but is not one: {e}"))?;
        return Ok(items.into_iter().map(|raw| raw.get().as_bytes()).collect());
    }
    // One whole JSON value: NDJSON of several lines fails at its second line, cheaply.
    if trimmed.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok() {
        return Ok(vec![trimmed]);
    }
    Ok(trimmed.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).filter(|line| !line.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_records() {
        assert_eq!(split_records(b"{\"a\":1}").unwrap(), vec![b"{\"a\":1}" as &[u8]]);
        // Pretty-printed: one record, not a line each.
        assert_eq!(split_records(b"{\n  \"a\": 1,\n  \"b\": 2\n}\n").unwrap().len(), 1);
        assert_eq!(split_records(b"{\"a\":1}\n\n{\"b\":2}\r\n").unwrap().len(), 2);
        assert_eq!(
            split_records(b" [ {\"a\":1}, {\"b\":[2]} ] ").unwrap(),
            vec![b"{\"a\":1}" as &[u8], b"{\"b\":[2]}"]
        );
        assert!(split_records(b"[{\"a\":1}").unwrap_err().contains("array"));
        assert!(split_records(b"  ").is_err());
    }
}
