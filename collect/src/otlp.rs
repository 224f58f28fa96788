//! OTLP in: spans and log records that follow the MCP semantic conventions (OpenTelemetry's
//! semantic-conventions for GenAI/MCP, status Development) as audit events.
//!
//! Gateways (agentgateway) and instrumented SDKs (`opentelemetry-instrumentation-mcp`) name
//! what they see with the attributes our events already use: `mcp.method.name`,
//! `mcp.session.id`, `mcp.protocol.version`, `mcp.resource.uri`, `jsonrpc.request.id`,
//! `gen_ai.tool.name`, `gen_ai.tool.call.arguments` / `.result`, `error.type`,
//! `client.address`, `server.address`, `network.transport`. So a record becomes one event
//! whose fields are its attributes (resource, then scope, then its own, the later winning),
//! plus what the record itself says:
//!
//! - the time: a span's start, a log record's time (else when it was observed); a span's
//!   duration from its start and end;
//! - `service.name` / `service.version` of the resource: the server's name and version for a
//!   server span, the client's for a client span (unless the attributes name them);
//! - a span with status Error: `error.type` (`_OTHER` unless given) and its message;
//! - `rpc.response.status_code` (a JSON-RPC error code as text): `rpc.jsonrpc.error_code`;
//! - the trace and span ids, as `trace_id` and `span_id` attributes.
//!
//! Attributes we do not map are kept in the event's `attributes`. Tool arguments and
//! results go through the collector's redaction and size limits like every captured text,
//! and header attributes that carry credentials (`authorization`, `cookie`, API keys) are
//! dropped: raw bearer tokens never leave the collector. A record without `mcp.method.name`
//! is not MCP telemetry: it is counted and dropped, not dead-lettered (an exporter sends
//! every span of its service, and those are not errors of ours).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Map, Value};

use crate::capture::Capture;
use crate::observer::{SECRETS_IN_ARGUMENTS, SECRETS_IN_RESULT};

/// Which OTLP signal a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }
}

/// The records of one OTLP request as event JSON, and how many were not MCP telemetry.
#[derive(Debug, Default)]
pub struct Converted {
    pub events: Vec<Vec<u8>>,
    pub not_mcp: usize,
    bytes: usize,
}

/// A request whose events would outgrow the budget: resource attributes are copied into
/// every record, so a small body with large resource attributes and many spans could
/// otherwise expand without bound.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request's {records} MCP records expand to more than {budget} bytes of events (resource attributes \
     are repeated in every record); export smaller batches"
)]
pub struct TooLarge {
    pub records: usize,
    pub budget: usize,
}

impl Converted {
    fn push(&mut self, event: Vec<u8>, budget: usize) -> Result<(), TooLarge> {
        self.bytes += event.len();
        self.events.push(event);
        if self.bytes > budget {
            return Err(TooLarge { records: self.events.len(), budget });
        }
        Ok(())
    }
}

const SPAN_KIND_SERVER: i32 = 2;
const SPAN_KIND_CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

/// The events of a trace export request, refused once they pass `budget` bytes.
pub fn traces(request: &ExportTraceServiceRequest, capture: &Capture, budget: usize) -> Result<Converted, TooLarge> {
    let mut out = Converted::default();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().map(|s| s.attributes.as_slice()).unwrap_or_default();
            for span in &scope_spans.spans {
                let mut fields = merged(&[resource, scope, &span.attributes]);
                if !fields.contains_key("mcp.method.name") {
                    out.not_mcp += 1;
                    continue;
                }
                let (name_key, version_key) = match span.kind {
                    SPAN_KIND_SERVER => ("mcp.server.name", "mcp.server.version"),
                    SPAN_KIND_CLIENT => ("mcp.client.name", "mcp.client.version"),
                    _ => ("", ""),
                };
                if !name_key.is_empty() {
                    copy_if_absent(&mut fields, resource, "service.name", name_key);
                    copy_if_absent(&mut fields, resource, "service.version", version_key);
                }
                if span.end_time_unix_nano >= span.start_time_unix_nano && span.end_time_unix_nano > 0 {
                    let micros = (span.end_time_unix_nano - span.start_time_unix_nano) / 1000;
                    fields.insert("event.duration_us".into(), Value::from(i64::try_from(micros).unwrap_or(i64::MAX)));
                }
                if let Some(status) = span.status.as_ref().filter(|s| s.code == STATUS_ERROR) {
                    fields.entry("error.type").or_insert_with(|| "_OTHER".into());
                    if !status.message.is_empty() {
                        fields.entry("rpc.jsonrpc.error_message").or_insert_with(|| status.message.clone().into());
                    }
                }
                ids(&mut fields, &span.trace_id, &span.span_id);
                out.push(finish(fields, span.start_time_unix_nano, capture), budget)?;
            }
        }
    }
    Ok(out)
}

/// The events of a logs export request, refused once they pass `budget` bytes.
pub fn logs(request: &ExportLogsServiceRequest, capture: &Capture, budget: usize) -> Result<Converted, TooLarge> {
    let mut out = Converted::default();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_logs.scope.as_ref().map(|s| s.attributes.as_slice()).unwrap_or_default();
            for record in &scope_logs.log_records {
                let mut fields = merged(&[resource, scope, &record.attributes]);
                // A body that is a map of attributes (as some gateways log) counts as attributes.
                if let Some(Value::Object(body)) = record.body.as_ref().map(json_of) {
                    for (key, value) in body {
                        fields.entry(key).or_insert(value);
                    }
                }
                if !fields.contains_key("mcp.method.name") {
                    out.not_mcp += 1;
                    continue;
                }
                ids(&mut fields, &record.trace_id, &record.span_id);
                let time =
                    if record.time_unix_nano > 0 { record.time_unix_nano } else { record.observed_time_unix_nano };
                out.push(finish(fields, time, capture), budget)?;
            }
        }
    }
    Ok(out)
}

/// Attribute lists merged in order, later lists winning; credentials dropped.
fn merged(lists: &[&[KeyValue]]) -> Map<String, Value> {
    let mut fields = Map::new();
    for list in lists {
        for kv in *list {
            if carries_credentials(&kv.key) {
                continue;
            }
            if let Some(value) = &kv.value {
                fields.insert(kv.key.clone(), json_of(value));
            }
        }
    }
    fields
}

/// Attribute names whose values are credentials (`http.request.header.authorization`,
/// `…cookie`, `…x-api-key`).
fn carries_credentials(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["authorization", "cookie", "api-key", "api_key", "apikey", "password", "secret"].iter().any(|w| key.contains(w))
}

fn copy_if_absent(fields: &mut Map<String, Value>, resource: &[KeyValue], from: &str, to: &str) {
    if fields.contains_key(to) {
        return;
    }
    if let Some(value) = resource.iter().find(|kv| kv.key == from).and_then(|kv| kv.value.as_ref()) {
        fields.insert(to.into(), json_of(value));
    }
}

fn ids(fields: &mut Map<String, Value>, trace_id: &[u8], span_id: &[u8]) {
    if !trace_id.is_empty() {
        fields.insert("trace_id".into(), hex::encode(trace_id).into());
    }
    if !span_id.is_empty() {
        fields.insert("span_id".into(), hex::encode(span_id).into());
    }
}

/// The event's own fields, the typed conversions, redaction, and its JSON.
fn finish(mut fields: Map<String, Value>, time_nanos: u64, capture: &Capture) -> Vec<u8> {
    let micros = i64::try_from(time_nanos / 1000).unwrap_or(i64::MAX);
    let time = mcpsiem_event::Timestamp::from_micros(micros);
    fields.insert("event.id".into(), mcpsiem_event::EventId::new().to_string().into());
    fields.insert("event.time".into(), time.to_string().into());
    fields.insert("event.kind".into(), "message".into());
    fields.entry("mcp.message.type").or_insert_with(|| "request".into());
    fields.entry("mcp.direction").or_insert_with(|| "client_to_server".into());
    fields.insert("collector.format".into(), "otlp".into());
    // Text fields that instrumentations send as other types.
    for key in ["jsonrpc.request.id", "mcp.session.id"] {
        if let Some(value) = fields.get_mut(key)
            && !value.is_string()
        {
            *value = value.to_string().into();
        }
    }
    if let Some(code) = fields.remove("rpc.response.status_code") {
        match code.as_str().and_then(|c| c.parse::<i64>().ok()).or_else(|| code.as_i64()) {
            Some(code) => {
                fields.entry("rpc.jsonrpc.error_code").or_insert_with(|| code.into());
            }
            None => {
                fields.insert("rpc.response.status_code".into(), code);
            }
        }
    }
    for (key, truncated_key, secrets_key, is_result) in [
        ("gen_ai.tool.call.arguments", "gen_ai.tool.call.arguments.truncated", SECRETS_IN_ARGUMENTS, false),
        ("gen_ai.tool.call.result", "gen_ai.tool.call.result.truncated", SECRETS_IN_RESULT, true),
    ] {
        let Some(value) = fields.remove(key) else { continue };
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let captured = if is_result { capture.result(&text) } else { capture.arguments(&text) };
        if is_result {
            fields.entry("gen_ai.tool.call.result.size").or_insert_with(|| Value::from(text.len() as i64));
        }
        fields.insert(key.into(), captured.text.into());
        fields.insert(truncated_key.into(), captured.truncated.into());
        if !captured.secrets.is_empty() {
            fields.insert(secrets_key.into(), Value::from(captured.secrets));
        }
    }
    serde_json::to_vec(&fields).expect("a JSON map serializes")
}

/// An OTLP value as JSON: bytes as hex, key-value lists as objects.
fn json_of(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => s.clone().into(),
        Some(any_value::Value::BoolValue(b)) => (*b).into(),
        Some(any_value::Value::IntValue(i)) => (*i).into(),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        Some(any_value::Value::BytesValue(b)) => hex::encode(b).into(),
        Some(any_value::Value::ArrayValue(array)) => array.values.iter().map(json_of).collect(),
        Some(any_value::Value::KvlistValue(list)) => Value::Object(
            list.values.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, json_of))).collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    use super::*;
    use crate::capture::CaptureConfig;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }) }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.into()))
    }

    fn capture() -> Capture {
        Capture::new(&CaptureConfig::default()).unwrap()
    }

    const BUDGET: usize = 1 << 20;

    #[test]
    fn resource_attributes_repeated_in_many_spans_cannot_expand_past_the_budget() {
        let mut request = trace_request((0..1000).map(|_| span(vec![text("mcp.method.name", "ping")])).collect());
        let big = "x".repeat(10_000);
        request.resource_spans[0].resource.as_mut().unwrap().attributes.push(text("team.notes", &big));
        // About 10 MB of events from a request of about 10 KB of attributes.
        let error = traces(&request, &capture(), BUDGET).unwrap_err();
        assert_eq!(error.budget, BUDGET);
        assert!(error.records < 200, "it stopped at the budget, not at the end: {}", error.records);
        assert_eq!(traces(&request, &capture(), 64 << 20).unwrap().events.len(), 1000);
    }

    fn span(attributes: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            name: "tools/call get_weather".into(),
            kind: SPAN_KIND_SERVER,
            start_time_unix_nano: 1_795_514_400_000_000_000,
            end_time_unix_nano: 1_795_514_400_250_000_000,
            attributes,
            ..Span::default()
        }
    }

    fn trace_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", "weather-server"), text("service.version", "1.2.0")],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn event(bytes: &[u8]) -> mcpsiem_event::OwnedEvent {
        mcpsiem_event::parse_event(bytes, 1 << 20).expect("a valid event").into_owned()
    }

    #[test]
    fn an_mcp_server_span_becomes_an_event_named_by_its_attributes_and_its_resource() {
        let mut failed = span(vec![
            text("mcp.method.name", "tools/call"),
            text("gen_ai.tool.name", "get_weather"),
            text("mcp.session.id", "s-1"),
            kv("jsonrpc.request.id", any_value::Value::IntValue(7)),
            text("gen_ai.tool.call.arguments", r#"{"city":"Paris","api_key":"sk-live-0123456789abcdefghij"}"#),
            text("client.address", "203.0.113.9"),
            text("rpc.response.status_code", "-32603"),
            text("http.request.header.authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.secret.sig"),
            text("deployment.region", "eu-west-1"),
        ]);
        failed.status = Some(Status { code: STATUS_ERROR, message: "upstream timeout".into() });
        let converted =
            traces(&trace_request(vec![failed, span(vec![text("http.route", "/health")])]), &capture(), BUDGET)
                .unwrap();
        assert_eq!((converted.events.len(), converted.not_mcp), (1, 1));
        let text = String::from_utf8(converted.events[0].clone()).unwrap();
        assert!(!text.contains("eyJhbGci") && !text.contains("sk-live-0123456789"), "credentials left: {text}");
        let e = event(&converted.events[0]);
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.tool_name.as_deref(), Some("get_weather"));
        assert_eq!(e.server_name.as_deref(), Some("weather-server"));
        assert_eq!(e.server_version.as_deref(), Some("1.2.0"));
        assert_eq!(e.request_id.as_deref(), Some("7"));
        assert_eq!(e.duration_us, Some(250_000));
        assert_eq!(e.time.to_string(), "2026-11-24T10:00:00.000000Z");
        assert_eq!(e.error_code, Some(-32603));
        assert_eq!(e.error_type.as_deref(), Some("_OTHER"));
        assert_eq!(e.error_message.as_deref(), Some("upstream timeout"));
        assert_eq!(e.collector_format.as_deref(), Some("otlp"));
        assert_eq!(e.attributes.get("trace_id").map(|v| v.get().to_owned()), Some(format!("\"{}\"", "ab".repeat(16))));
        assert_eq!(e.attributes.get("deployment.region").map(|v| v.get().to_owned()), Some("\"eu-west-1\"".into()));
        assert!(e.attributes.get(SECRETS_IN_ARGUMENTS).is_some(), "the redacted kind is recorded");
    }

    #[test]
    fn a_client_span_names_the_client_and_structured_arguments_become_text() {
        let mut client = span(vec![
            text("mcp.method.name", "tools/call"),
            kv(
                "gen_ai.tool.call.arguments",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue { value: Some(any_value::Value::StringValue("a".into())) }],
                }),
            ),
        ]);
        client.kind = SPAN_KIND_CLIENT;
        let converted = traces(&trace_request(vec![client]), &capture(), BUDGET).unwrap();
        let e = event(&converted.events[0]);
        assert_eq!(e.client_name.as_deref(), Some("weather-server"));
        assert_eq!(e.server_name, None);
        assert_eq!(e.tool_arguments.as_deref(), Some(r#"["a"]"#));
    }

    #[test]
    fn log_records_with_mcp_attributes_in_attributes_or_body_become_events() {
        let record = |attributes: Vec<KeyValue>, body: Option<AnyValue>| LogRecord {
            time_unix_nano: 0,
            observed_time_unix_nano: 1_795_514_400_000_000_000,
            attributes,
            body,
            ..LogRecord::default()
        };
        let body = AnyValue {
            value: Some(any_value::Value::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
                values: vec![text("mcp.method.name", "tools/list"), text("mcp.session.id", "s-9")],
            })),
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(vec![text("mcp.method.name", "initialize")], None),
                        record(vec![], Some(body)),
                        record(vec![text("message", "GET /healthz 200")], None),
                    ],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let converted = logs(&request, &capture(), BUDGET).unwrap();
        assert_eq!((converted.events.len(), converted.not_mcp), (2, 1));
        let methods: Vec<_> = converted.events.iter().map(|b| event(b).method.map(|m| m.to_string())).collect();
        assert_eq!(methods, [Some("initialize".to_string()), Some("tools/list".to_string())]);
        assert_eq!(event(&converted.events[1]).session_id.as_deref(), Some("s-9"));
    }

    #[test]
    fn odd_values_never_panic() {
        let weird = span(vec![
            text("mcp.method.name", "x"),
            kv("client.address", any_value::Value::DoubleValue(f64::NAN)),
            kv("mcp.session.id", any_value::Value::BytesValue(vec![0, 159, 255])),
            kv("rpc.response.status_code", any_value::Value::BoolValue(true)),
        ]);
        let mut backwards = weird.clone();
        backwards.end_time_unix_nano = 1;
        backwards.start_time_unix_nano = u64::MAX;
        let converted = traces(&trace_request(vec![weird, backwards]), &capture(), BUDGET).unwrap();
        assert_eq!(converted.events.len(), 2);
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = any_value::Value> {
        use proptest::prelude::*;
        prop_oneof![
            ".{0,40}".prop_map(any_value::Value::StringValue),
            any::<i64>().prop_map(any_value::Value::IntValue),
            any::<f64>().prop_map(any_value::Value::DoubleValue),
            any::<bool>().prop_map(any_value::Value::BoolValue),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(any_value::Value::BytesValue),
        ]
    }

    proptest::proptest! {
        /// Whatever an exporter sends, mapping never panics, and every event it makes either
        /// decodes or is refused by the decoder with a reason (then dead-lettered).
        #[test]
        fn any_attributes_map_without_panicking(
            attributes in proptest::collection::vec(
                (proptest::sample::select(vec![
                    "mcp.method.name", "mcp.session.id", "jsonrpc.request.id", "gen_ai.tool.name",
                    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "client.address",
                    "rpc.response.status_code", "event.time", "event.duration_us", "mcp.server.name", "other.key",
                ]), any_value()),
                0..12,
            ),
            start in proptest::prelude::any::<u64>(),
            end in proptest::prelude::any::<u64>(),
            kind in 0i32..6,
            status in 0i32..4,
        ) {
            let mut one = span(attributes.into_iter().map(|(k, v)| kv(k, v)).collect());
            one.attributes.push(text("mcp.method.name", "tools/call"));
            (one.start_time_unix_nano, one.end_time_unix_nano, one.kind) = (start, end, kind);
            one.status = Some(Status { code: status, message: "m".into() });
            let converted = traces(&trace_request(vec![one]), &capture(), BUDGET).unwrap();
            for bytes in &converted.events {
                let _ = mcpsiem_event::parse_event(bytes, 1 << 20);
            }
        }
    }
}
