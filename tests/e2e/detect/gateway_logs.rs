//! The pack on gateway logs read by `collect tail --once`: an agentgateway access log keeps
//! the token's claims (`jwt.sub`) but never the token, and a Docker MCP gateway audit log
//! keeps neither. The token rules see the agentgateway subject used from a second address
//! (they grouped by the raw token's fingerprint and were blind to it), and every format
//! raises the detection rules its fields allow, grouped by user and server.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use mcpsiem_detect::rules::{self, NamedLists};
use mcpsiem_detect::{Engine, EngineConfig};

use crate::support;

const TOKEN_NEW_ADDRESS: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0002";
const UNAPPROVED_SERVER: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0401";
const PATH_TRAVERSAL: &str = "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0902";

fn write_lines(path: &std::path::Path, lines: &[String]) {
    let mut file = std::fs::File::create(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.sync_all().unwrap();
}

#[test]
fn gateway_logs_without_tokens_raise_the_token_and_detection_rules() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("gateway-logs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let fixture = support::LakeFixture::new(
        &kafka,
        "[collect]\nid = \"gateway-test\"\nspool_dir = \"spool\"\n[collect.tail]\nstate_dir = \"tail-state\"\n",
    );
    let logs = fixture.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    // alice's token, known only by its claims, from her laptop and then from elsewhere.
    let gateway = |minute: u32, address: &str, tool: &str, arguments: &str| {
        format!(
            r#"{{"level":"info","time":"2026-11-20T10:{minute:02}:00.000Z","scope":"request","src.addr":"{address}:40000","http.method":"POST","http.status":200,"mcp.method.name":"tools/call","gen_ai.tool.name":"{tool}","gen_ai.tool.call.arguments":{arguments},"mcp.target":"github","jwt.sub":"alice@example.com","jwt.iss":"https://idp.example","duration":"3ms"}}"#
        )
    };
    let agentgateway = logs.join("agentgateway.log");
    write_lines(
        &agentgateway,
        &[
            gateway(0, "10.0.0.5", "list_issues", r#""{\"repo\":\"app\"}""#),
            gateway(20, "10.0.0.5", "list_issues", r#""{\"repo\":\"app\"}""#),
            gateway(40, "203.0.113.50", "get_file_contents", r#""{\"path\":\"../../../etc/passwd\"}""#),
        ],
    );
    // The Docker MCP gateway: the actor and the server, no token at all.
    let docker = logs.join("docker-mcp.log");
    write_lines(
        &docker,
        &[
            r#"{"timestamp":"2026-11-20T11:00:00.000Z","actor_id":"bob","server_name":"github","tool_name":"list_issues","client_name":"cursor","session_id":"d-1","result":"success","duration_ms":4}"#.to_string(),
            r#"{"timestamp":"2026-11-20T11:01:00.000Z","actor_id":"bob","server_name":"pastebin-helper","tool_name":"create_paste","client_name":"cursor","session_id":"d-1","result":"success","duration_ms":9}"#.to_string(),
        ],
    );

    let tail = fixture
        .command(&["collect", "tail", "--once", agentgateway.to_str().unwrap(), docker.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(tail.status.success(), "{}", String::from_utf8_lossy(&tail.stderr));

    let records =
        support::read_topic_json(&kafka, &kafka.events_topic, 5, Duration::from_secs(2), Duration::from_secs(60));
    assert_eq!(records.len(), 5, "{records:#?}");
    let mut events = support::parse_events(&records);
    events.sort_by_key(|e| (e.time, e.id));
    assert!(events.iter().all(|e| e.token_fingerprint.is_none()), "gateway logs carry no token");

    let lists: NamedLists = [("approved_servers".to_string(), vec!["github".to_string()])].into();
    let report = rules::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")], &lists);
    assert_eq!(report.skipped(), 0);
    let mut engine = Engine::new(report.rules, EngineConfig::default());
    let mut alerts: Vec<_> = events.iter().flat_map(|e| engine.process(e)).collect();
    alerts.extend(engine.finish());
    let fired: BTreeSet<(&str, String)> =
        alerts.iter().map(|a| (a.rule_id.as_str(), a.group.values().cloned().collect::<Vec<_>>().join(" "))).collect();

    // The same subject from a second address: the token rules follow auth.token.identity.
    assert!(
        fired.contains(&(TOKEN_NEW_ADDRESS, "sub:https://idp.example|alice@example.com| 203.0.113.50".to_string())),
        "{fired:#?}"
    );
    // Detection rules on the agentgateway format, grouped by the token's identity and server.
    let traversal: Vec<_> = alerts.iter().filter(|a| a.rule_id == PATH_TRAVERSAL).collect();
    assert_eq!(traversal.len(), 1, "{fired:#?}");
    assert_eq!(traversal[0].group.get("mcp.server.name").map(String::as_str), Some("github"));
    assert!(
        traversal[0].group.contains_key("auth.token.identity") || traversal[0].group.contains_key("mcp.session.id")
    );
    // ... and on the Docker format: the unapproved server, grouped by its session and server.
    let unapproved: Vec<_> = alerts.iter().filter(|a| a.rule_id == UNAPPROVED_SERVER).collect();
    assert_eq!(unapproved.len(), 1, "{fired:#?}");
    assert_eq!(unapproved[0].group.get("mcp.server.name").map(String::as_str), Some("pastebin-helper"));
}
