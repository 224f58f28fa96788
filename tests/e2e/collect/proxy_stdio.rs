//! The stdio proxy between a real MCP client (`@modelcontextprotocol/inspector --cli`) and a
//! real MCP server (`@modelcontextprotocol/server-everything`), both from npm: the client's
//! answers are byte-identical with and without the proxy, and every call is in Kafka with
//! its method, tool, arguments and result, secrets redacted.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support;

/// A secret the server's environment holds; `get-env` returns it to the client, and the
/// audit events must not carry it.
const SECRET: &str = "hunter2-b7f3c1d9e2";

fn inspector(server: &[String], call: &[&str]) -> String {
    let output = Command::new("node")
        .arg(support::mcp_bin("mcp-inspector"))
        .arg("--cli")
        .args(["-e", &format!("DB_PASSWORD={SECRET}")])
        .args(call)
        .arg("--")
        .args(server)
        .output()
        .expect("the inspector runs");
    assert!(output.status.success(), "inspector {call:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn events_of<'a>(events: &'a [Value], method: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["mcp.method.name"] == method && e["event.kind"] == "message").collect()
}

#[test]
fn calls_through_the_stdio_proxy_are_unchanged_and_recorded() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("proxy-stdio");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let fixture = support::LakeFixture::new(&kafka, "[collect]\nid = \"proxy-test\"\nspool_dir = \"spool\"\n");

    let node = "node".to_string();
    let server = vec![node.clone(), support::mcp_bin("mcp-server-everything").display().to_string()];
    let mut proxied = vec![
        env!("CARGO_BIN_EXE_mcpsiem").to_string(),
        "--config".into(),
        fixture.config_path.display().to_string(),
        "collect".into(),
        "proxy".into(),
        "--stdio".into(),
        "--".into(),
    ];
    proxied.extend(server.iter().cloned());

    let uri = "demo://resource/static/document/architecture.md";
    let calls: Vec<Vec<&str>> = vec![
        vec!["--method", "tools/list"],
        vec!["--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hello through the proxy"],
        vec!["--method", "tools/call", "--tool-name", "get-sum", "--tool-arg", "a=2", "b=3"],
        vec!["--method", "resources/read", "--uri", uri],
        vec!["--method", "prompts/list"],
    ];
    let mut answers = Vec::new();
    for call in &calls {
        let direct = inspector(&server, call);
        let through = inspector(&proxied, call);
        assert_eq!(direct, through, "{call:?}: the client saw another answer through the proxy");
        answers.push(direct);
    }
    // get-env answers with the server's environment, which differs between the two runs
    // (the proxy's own variables): only its capture is checked.
    let env_answer = inspector(&proxied, &["--method", "tools/call", "--tool-name", "get-env"]);
    assert!(env_answer.contains(SECRET), "the client must still get the real answer");

    // Each of the 6 proxied runs: initialize, initialized, the call; at least 18 events.
    let events =
        support::read_topic_json(&kafka, &kafka.events_topic, 18, Duration::from_secs(3), Duration::from_secs(60));
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(SECRET), "the secret reached Kafka");

    for e in &events {
        assert_eq!(e["collector.id"], "proxy-test");
        assert_eq!(e["collector.format"], "proxy_stdio");
        assert_eq!(e["mcp.transport"], "stdio");
        assert!(e["mcp.server.command"].as_str().unwrap().contains("mcp-server-everything"));
        assert_ne!(e["event.kind"], "malformed", "{e}");
        // The server asks the client for its roots, and the CLI client exits without
        // answering: only the client's requests must all be answered.
        if e["mcp.message.type"] == "request" && e["mcp.direction"] == "client_to_server" {
            assert!(e["event.duration_us"].is_i64(), "a request without its response: {e}");
            assert!(e.get("error.type").is_none(), "{e}");
        }
    }
    let inits = events_of(&events, "initialize");
    assert_eq!(inits.len(), 6, "one initialize per proxied run");
    for init in &inits {
        assert!(!init["mcp.client.name"].as_str().unwrap_or("").is_empty(), "{init}");
        assert!(!init["mcp.server.name"].as_str().unwrap_or("").is_empty(), "{init}");
        assert!(init["mcp.protocol.version"].is_string(), "{init}");
    }
    assert_eq!(events_of(&events, "notifications/initialized").len(), 6);

    // tools/list: one definition event per tool the client saw, with the hashes.
    let listed: Value = serde_json::from_str(&answers[0]).unwrap();
    let tools = listed["tools"].as_array().unwrap();
    let definitions: Vec<&Value> = events.iter().filter(|e| e["event.kind"] == "tool_definition").collect();
    let mut defined: Vec<&str> = definitions.iter().map(|e| e["gen_ai.tool.name"].as_str().unwrap()).collect();
    defined.sort();
    defined.dedup();
    let mut offered: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    offered.sort();
    assert_eq!(defined, offered);
    let echo_definition = definitions.iter().find(|e| e["gen_ai.tool.name"] == "echo").unwrap();
    let echo_tool = tools.iter().find(|t| t["name"] == "echo").unwrap();
    assert_eq!(echo_definition["mcp.tool.description"], echo_tool["description"]);
    assert_eq!(
        echo_definition["mcp.tool.description.sha256"],
        mcpsiem_event::hash::description_sha256(echo_tool["description"].as_str().unwrap()).as_str()
    );
    assert_eq!(
        echo_definition["mcp.tool.input_schema.sha256"],
        mcpsiem_event::hash::canonical_json_sha256(&echo_tool["inputSchema"]).as_str()
    );

    // tools/call: tool, arguments and result as the client sent and saw them.
    let calls = events_of(&events, "tools/call");
    let echo = calls.iter().find(|e| e["gen_ai.tool.name"] == "echo").expect("the echo call");
    let arguments: Value = serde_json::from_str(echo["gen_ai.tool.call.arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, serde_json::json!({"message": "hello through the proxy"}));
    let echo_answer: Value = serde_json::from_str(&answers[1]).unwrap();
    assert_eq!(echo["gen_ai.tool.call.result"], echo_answer["content"][0]["text"]);
    assert_eq!(echo["mcp.tool.result.is_error"], false);
    assert_eq!(echo["mcp.message.type"], "request");
    assert_eq!(echo["mcp.direction"], "client_to_server");

    let sum = calls.iter().find(|e| e["gen_ai.tool.name"] == "get-sum").expect("the get-sum call");
    let arguments: Value = serde_json::from_str(sum["gen_ai.tool.call.arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["a"].to_string().trim_matches('"'), "2");
    assert_eq!(arguments["b"].to_string().trim_matches('"'), "3");
    let sum_answer: Value = serde_json::from_str(&answers[2]).unwrap();
    assert_eq!(sum["gen_ai.tool.call.result"], sum_answer["content"][0]["text"]);

    let env = calls.iter().find(|e| e["gen_ai.tool.name"] == "get-env").expect("the get-env call");
    assert!(env["gen_ai.tool.call.result"].as_str().unwrap().contains("[REDACTED]"), "{env}");

    let read = events_of(&events, "resources/read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["mcp.resource.uri"], uri);
    let read_answer: Value = serde_json::from_str(&answers[3]).unwrap();
    let text = read_answer["contents"][0]["text"].as_str().unwrap();
    let captured = read[0]["gen_ai.tool.call.result"].as_str().unwrap();
    assert!(text.starts_with(captured.trim_end()) || captured == text, "the resource text was not captured");

    assert_eq!(events_of(&events, "prompts/list").len(), 1);
}

#[test]
fn the_proxy_exits_with_the_servers_code_when_the_server_exits_first() {
    let dir = tempfile::tempdir().unwrap();
    // Kafka is unreachable here: the proxy must still run and exit (events go to the spool).
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .current_dir(dir.path())
        .args(["--set", "kafka.brokers=127.0.0.1:1", "--set", "log.level=error"])
        .args(["collect", "proxy", "--stdio", "--", "sh", "-c", "read line; echo \"$line\"; exit 3"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = proxy.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n").unwrap();
    // stdin stays open: the client has not gone away, the server has.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = proxy.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the proxy outlived its server");
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    assert_eq!(status.code(), Some(3));
    let mut echoed = String::new();
    std::io::Read::read_to_string(&mut proxy.stdout.take().unwrap(), &mut echoed).unwrap();
    assert_eq!(echoed, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
    // Kafka never answered: at the stop, the unanswered ping's event moved from memory to
    // the spool, for the next proxy that takes this slot.
    let spooled: u64 = std::fs::read_dir(dir.path().join("data/spool/slot-0"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "spool"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(spooled > 0, "the event was not kept");
}
