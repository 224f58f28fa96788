//! `collect http` as an OTLP/HTTP receiver: protobuf (gzip) traces and JSON logs as the OTLP
//! encodings define them, with the intake's keys; MCP spans and log records reach Kafka as
//! events, the others are dropped and said so in the OTLP partial success.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

use crate::support;

const KEY: &str = "mcpsiem_otlp_test_key_0123456789";

/// POSTs `body` with curl; returns the status and the raw answer.
fn post(url: &str, body: &[u8], headers: &[&str]) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (body_path, out_path) = (dir.path().join("body"), dir.path().join("out"));
    std::fs::write(&body_path, body).unwrap();
    let mut command = Command::new("curl");
    command.args(["-s", "-o"]).arg(&out_path).args(["-w", "%{http_code}", "-X", "POST", "--data-binary"]);
    command.arg(format!("@{}", body_path.display()));
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().unwrap();
    let status = String::from_utf8(output.stdout).unwrap().trim().parse().unwrap();
    (status, std::fs::read(&out_path).unwrap_or_default())
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }) }
}

fn span(name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![0x5b; 16],
        span_id: vec![0x05; 8],
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_795_514_400_000_000_000,
        end_time_unix_nano: 1_795_514_400_120_000_000,
        attributes,
        ..Span::default()
    }
}

/// A lake fixture whose intake listens on `port` with the test's key, plus `intake_extra`
/// settings of `[collect.intake]`.
fn intake_fixture(kafka: &mcpsiem_runtime::kafka::KafkaConfig, port: u16, intake_extra: &str) -> support::LakeFixture {
    support::LakeFixture::new(
        kafka,
        &format!(
            "[collect]\nspool_dir = \"spool\"\n[collect.intake]\nlisten = \"127.0.0.1:{port}\"\n{intake_extra}\
             [[collect.intake.api_keys]]\nname = \"otel-collector\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
            mcpsiem_runtime::auth::hash_key(KEY)
        ),
    )
}

#[test]
fn otlp_traces_and_logs_become_events_and_other_telemetry_is_dropped() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("otlp");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let fixture = intake_fixture(&kafka, port, "");
    let mut intake = support::KillOnDrop(fixture.command(&["collect", "http"]).spawn().unwrap());
    support::wait_for_port(port, &mut intake.0);
    let auth = format!("Authorization: Bearer {KEY}");

    // Traces, protobuf, gzip: an MCP tool call (with a bearer header the instrumentation
    // captured) and a plain HTTP span.
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "weather-mcp"), text("service.version", "0.9.1")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(
                        "tools/call get_forecast",
                        vec![
                            text("mcp.method.name", "tools/call"),
                            text("gen_ai.tool.name", "get_forecast"),
                            text("mcp.session.id", "8f1c"),
                            text("mcp.protocol.version", "2025-11-25"),
                            text("client.address", "198.51.100.23"),
                            text("gen_ai.tool.call.arguments", r#"{"city":"Lyon"}"#),
                            text("http.request.header.authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
                        ],
                    ),
                    span("GET /healthz", vec![text("http.route", "/healthz")]),
                ],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&request.encode_to_vec()).unwrap();
    let traces_url = format!("http://127.0.0.1:{port}/v1/traces");
    let protobuf = "Content-Type: application/x-protobuf";
    let (status, _) = post(&traces_url, &request.encode_to_vec(), &[protobuf]);
    assert_eq!(status, 401, "a key is required");
    let (status, body) = post(&traces_url, &gz.finish().unwrap(), &[&auth, protobuf, "Content-Encoding: gzip"]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let response = ExportTraceServiceResponse::decode(&body[..]).unwrap();
    let partial = response.partial_success.expect("the dropped span is reported");
    assert_eq!(partial.rejected_spans, 0);
    assert!(partial.error_message.contains("1 records without mcp.method.name"), "{}", partial.error_message);

    // Logs, OTLP JSON as the specification encodes it (hex ids, 64-bit integers as strings).
    let logs = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"agentgateway"}}]},
      "scopeLogs":[{"logRecords":[
        {"timeUnixNano":"1795514401000000000","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
         "attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/list"}},
                       {"key":"jsonrpc.request.id","value":{"intValue":"3"}},
                       {"key":"mcp.session.id","value":{"stringValue":"8f1c"}}]},
        {"timeUnixNano":"1795514402000000000","body":{"stringValue":"connection pool resized"}}]}]}]}"#;
    let (status, body) =
        post(&format!("http://127.0.0.1:{port}/v1/logs"), logs.as_bytes(), &[&auth, "Content-Type: application/json"]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert!(reply["partialSuccess"]["errorMessage"].as_str().unwrap().contains("1 records without"), "{reply}");

    let (status, _) = post(&traces_url, b"{}", &[&auth, "Content-Type: text/plain"]);
    assert_eq!(status, 415);
    let (status, _) = post(&traces_url, b"not protobuf at all \xff\xff\xff", &[&auth, protobuf]);
    assert_eq!(status, 400);

    let records =
        support::read_topic_json(&kafka, &kafka.events_topic, 2, Duration::from_secs(3), Duration::from_secs(60));
    assert_eq!(records.len(), 2, "{records:#?}");
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains("eyJhbGci"), "a bearer token reached Kafka: {text}");
    let call = records.iter().find(|r| r["mcp.method.name"] == "tools/call").expect("the tool call");
    assert_eq!(call["mcp.server.name"], "weather-mcp");
    assert_eq!(call["mcp.server.version"], "0.9.1");
    assert_eq!(call["gen_ai.tool.name"], "get_forecast");
    assert_eq!(call["event.time"], "2026-11-24T10:00:00.000000Z");
    assert_eq!(call["event.duration_us"], 120_000);
    assert_eq!(call["collector.format"], "otlp");
    assert_eq!(call["trace_id"], "5b".repeat(16));
    let listed = records.iter().find(|r| r["mcp.method.name"] == "tools/list").expect("the log record");
    assert_eq!(listed["jsonrpc.request.id"], "3");
    assert_eq!(listed["span_id"], "eee19b7ec3c1b174");
    assert_eq!(listed["event.time"], "2026-11-24T10:00:01.000000Z");
}

/// The official MCP Python SDK (2.3) traces itself with the MCP semantic conventions; its
/// server, given the OpenTelemetry SDK and the standard `OTEL_EXPORTER_OTLP_*` variables,
/// exports its spans to the intake, over OTLP/HTTP and over OTLP/gRPC. The session's requests
/// arrive as events naming the server, method, tool, revision and duration, and the detector
/// raises the unapproved-server alert from them. A gRPC client without a key is refused.
#[test]
fn the_python_sdk_exports_its_mcp_spans_over_http_and_grpc_and_they_raise_alerts() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("otlp-python");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let (port, grpc_port) = (support::free_port(), support::free_port());
    let fixture = intake_fixture(&kafka, port, &format!("otlp_grpc_listen = \"127.0.0.1:{grpc_port}\"\n"));
    let mut intake = support::KillOnDrop(fixture.command(&["collect", "http"]).spawn().unwrap());
    support::wait_for_port(port, &mut intake.0);
    support::wait_for_port(grpc_port, &mut intake.0);

    // Without a key, the gRPC services refuse as gRPC does (unauthenticated).
    let refused = runtime.block_on(async {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc_port}")).await.unwrap();
        client.export(ExportTraceServiceRequest::default()).await.unwrap_err()
    });
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/mcp/python");
    let actions = r#"[{"list":true},{"call":"fetch_config","arguments":{"service":"billing"}},{"call":"lookup_docs","arguments":{"topic":"deploys"}}]"#;
    for (protocol, endpoint, server) in [("http/protobuf", port, "py-otel-http"), ("grpc", grpc_port, "py-otel-grpc")] {
        let output = Command::new("python3")
            .arg(python.join("scenario_client.py"))
            .args(["legacy", actions, "--", "python3"])
            .arg(python.join("scenario_server.py"))
            .env("PYTHONPATH", root.join(".tools/python-mcp"))
            .env("MCP_SERVER_NAME", server)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{endpoint}"))
            .env("OTEL_EXPORTER_OTLP_HEADERS", format!("authorization=Bearer%20{KEY}"))
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the Python SDK session over {protocol} failed; run scripts/setup: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // Per protocol: initialize, tools/list and two tools/call, the server's spans.
    let records =
        support::read_topic_json(&kafka, &kafka.events_topic, 8, Duration::from_secs(5), Duration::from_secs(60));
    let lists: mcpsiem_detect::rules::NamedLists =
        [("approved_servers".to_string(), vec!["github".to_string()])].into();
    let loaded = mcpsiem_detect::rules::load(&[root.join("rules")], &lists);
    assert_eq!(loaded.skipped(), 0);
    let mut engine = mcpsiem_detect::Engine::new(loaded.rules, mcpsiem_detect::EngineConfig::default());
    let mut alerts = Vec::new();
    for event in support::parse_events(&records) {
        alerts.extend(engine.process(&event));
    }
    alerts.extend(engine.finish());
    for server in ["py-otel-http", "py-otel-grpc"] {
        let of_server: Vec<&Value> = records.iter().filter(|r| r["mcp.server.name"] == server).collect();
        let calls: Vec<&&Value> = of_server.iter().filter(|r| r["mcp.method.name"] == "tools/call").collect();
        let mut tools: Vec<&str> = calls.iter().filter_map(|r| r["gen_ai.tool.name"].as_str()).collect();
        tools.sort_unstable();
        assert_eq!(tools, ["fetch_config", "lookup_docs"], "{server}: {records:#?}");
        assert!(of_server.iter().any(|r| r["mcp.method.name"] == "tools/list"), "{server}: {records:#?}");
        for record in &of_server {
            assert_eq!(record["mcp.server.version"], "0.3.1", "{record}");
            assert_eq!(record["collector.format"], "otlp");
            assert!(record["event.duration_us"].as_i64().is_some(), "{record}");
            assert!(record["trace_id"].as_str().is_some_and(|t| t.len() == 32), "{record}");
        }
        assert!(calls.iter().all(|r| r["mcp.protocol.version"] == "2025-11-25"), "{calls:#?}");
        assert!(
            alerts.iter().any(|a| a.rule_title == "Unapproved MCP server in use"
                && a.group.get("mcp.server.name").map(String::as_str) == Some(server)),
            "{server}: {alerts:#?}"
        );
    }
}
