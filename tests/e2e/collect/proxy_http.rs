//! The HTTP proxy in front of a real Streamable HTTP MCP server (server-everything from
//! npm), driven by the real inspector CLI with a bearer JWT: the client's answers are the
//! same with and without the proxy; the events carry the client's address, user agent,
//! status, session and the token's fingerprint and claims; and the raw token is in no
//! event and no line of the proxy's (debug-level) log.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support;

const SITE_KEY: &str = "proxy-http-test-site-key";

fn inspector(url: &str, token: &str, call: &[&str]) -> Value {
    let output = Command::new("node")
        .arg(support::mcp_bin("mcp-inspector"))
        .args(["--cli", "--transport", "http", "--header", &format!("Authorization: Bearer {token}")])
        .args(call)
        .arg("--")
        .arg(url)
        .output()
        .expect("the inspector runs");
    assert!(output.status.success(), "inspector {call:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("a JSON answer")
}

#[test]
fn http_proxy_records_exchanges_with_token_claims_and_never_the_token() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("proxy-http");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!("[site]\ntoken_key = \"{SITE_KEY}\"\n[collect]\nid = \"http-test\"\nspool_dir = \"spool\"\n"),
    );

    let server_port = support::free_port();
    let mut server = support::KillOnDrop(
        Command::new("node")
            .arg(support::mcp_bin("mcp-server-everything"))
            .arg("streamableHttp")
            .env("PORT", server_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    support::wait_for_port(server_port, &mut server.0);
    let log_path = fixture.dir.path().join("proxy.log");
    // The public URI clients use, which the tokens name as their audience.
    let upstream = format!("http://127.0.0.1:{server_port}/mcp");
    let (mut command, proxy_port) =
        support::http_proxy_command(&fixture, &upstream, &["--resource-uri", "https://mcp.example/mcp"]);
    let mut proxy = support::KillOnDrop(
        command.env("RUST_LOG", "debug").stderr(std::fs::File::create(&log_path).unwrap()).spawn().unwrap(),
    );
    support::wait_for_port(proxy_port, &mut proxy.0);

    let claims = json!({"sub": "alice@example.com", "iss": "https://idp.example", "aud": "https://mcp.example/mcp",
        "client_id": "inspector", "jti": "jti-7781", "scope": "tools:call", "exp": 1_900_000_000, "iat": 1_800_000_000});
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        "S1gnatureThatMustNeverLeaveTheCollector"
    );
    let direct_url = format!("http://127.0.0.1:{server_port}/mcp");
    let proxy_url = format!("http://127.0.0.1:{proxy_port}/mcp");
    let echo = ["--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=over http"];
    for call in [&echo[..], &["--method", "tools/list"][..], &["--method", "resources/list"][..]] {
        assert_eq!(inspector(&direct_url, &token, call), inspector(&proxy_url, &token, call), "{call:?}");
    }
    // Refused before any JSON-RPC: a path the server does not serve.
    let refused = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://127.0.0.1:{proxy_port}/admin"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&refused.stdout), "404");

    support::stop_with_sigterm(&mut proxy.0, "the proxy");

    let events =
        support::read_topic_json(&kafka, &kafka.events_topic, 10, Duration::from_secs(3), Duration::from_secs(60));
    let mut log = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("proxying MCP over HTTP"), "the log was not written: {log}");
    let signature = "S1gnatureThatMustNeverLeaveTheCollector";
    for (name, text) in [("an event", serde_json::to_string(&events).unwrap()), ("the proxy log", log)] {
        assert!(!text.contains(&token) && !text.contains(signature), "the raw token is in {name}");
    }

    let fingerprint = mcpsiem_event::token::TokenFingerprinter::new(SITE_KEY).fingerprint(&token);
    let call = events
        .iter()
        .find(|e| e["mcp.method.name"] == "tools/call" && e["gen_ai.tool.name"] == "echo")
        .expect("the echo call is recorded");
    assert_eq!(call["auth.token.fingerprint"], fingerprint.as_str());
    assert_eq!(call["auth.token.sub"], "alice@example.com");
    assert_eq!(call["enduser.id"], "alice@example.com");
    assert_eq!(call["auth.token.jti"], "jti-7781");
    assert_eq!(call["auth.token.aud"], json!(["https://mcp.example/mcp"]));
    assert_eq!(call["auth.token.exp"], "2030-03-17T17:46:40.000000Z");
    assert_eq!(call["client.address"], "127.0.0.1");
    assert!(call["user_agent.original"].is_string(), "{call}");
    assert_eq!(call["http.response.status_code"], 200);
    assert_eq!(call["http.request.method"], "POST");
    assert_eq!(call["mcp.transport"], "streamable_http");
    assert_eq!(call["collector.format"], "proxy_http");
    assert!(call["mcp.session.id"].is_string(), "{call}");
    assert_eq!(call["gen_ai.tool.call.result"], "Echo: over http");
    assert!(call["event.duration_us"].as_i64().unwrap() > 0, "{call}");
    assert!(call["mcp.server.name"].is_string(), "the session's initialize taught the server name: {call}");

    assert_eq!(call["mcp.server.resource_uri"], "https://mcp.example/mcp");
    assert_eq!(call["server.address"], format!("http://127.0.0.1:{server_port}/mcp"));

    // The tokens name the public URI, not the upstream's address: the audience rule of the
    // pack stays quiet on every proxied exchange (it compared with server.address before).
    let report = mcpsiem_detect::rules::load(
        &[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/token_theft")],
        &Default::default(),
    );
    let mut engine = mcpsiem_detect::Engine::new(report.rules, Default::default());
    let mut alerts = Vec::new();
    for event in support::parse_events(&events) {
        alerts.extend(engine.process(&event));
    }
    alerts.extend(engine.finish());
    let audience = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0005";
    assert!(alerts.iter().all(|a| a.rule_id != audience), "{alerts:#?}");

    let initialize = events.iter().filter(|e| e["mcp.method.name"] == "initialize").count();
    assert_eq!(initialize, 3, "one initialize per proxied inspector run");
    let definitions = events.iter().filter(|e| e["event.kind"] == "tool_definition").count();
    assert!(definitions >= 10, "tools/list gave {definitions} tool definitions");
    let http = events.iter().find(|e| e["event.kind"] == "http").expect("the refused exchange");
    assert_eq!(http["http.response.status_code"], 404);
    assert_eq!(http["http.request.method"], "GET");
    assert_eq!(http["auth.token.fingerprint"], fingerprint.as_str());
    for e in &events {
        assert_ne!(e["event.kind"], "malformed", "{e}");
    }
}
