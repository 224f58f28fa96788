//! One small test per Sigma construct: each detection snippet must load, match its event
//! and not match its close miss; constructs we do not evaluate must be reported as
//! unsupported (the rule skipped), never crash.

use std::path::Path;

use crate::engine::{Engine, EngineConfig};
use crate::rules::{NamedLists, ProblemKind, RuleSet, load_text};

fn engine_for(detection: &str, lists: &NamedLists) -> Result<Engine, String> {
    let yaml = format!("title: construct\nid: construct\nlogsource: {{product: mcp}}\ndetection:\n{detection}");
    let mut rules = RuleSet::default();
    let mut problems = Vec::new();
    load_text(Path::new("construct.yml"), &yaml, lists, &mut rules, &mut problems);
    if let Some(p) = problems.iter().find(|p| p.skips_rule()) {
        return Err(format!("{:?}: {}", p.kind, p.reason));
    }
    Ok(Engine::new(rules, EngineConfig::default()))
}

fn verdict(engine: &Engine, event: &str) -> bool {
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(event).unwrap();
    fields.insert("event.id".into(), "01JD0000000000000000000000".into());
    fields.entry("event.time").or_insert("2026-01-05T10:00:00Z".into());
    fields.entry("event.kind").or_insert("message".into());
    let bytes = serde_json::to_vec(&fields).unwrap();
    let event = mcpsiem_event::parse_event(&bytes, usize::MAX).unwrap();
    !engine.detection_verdicts(&event).is_empty()
}

/// (construct, detection YAML, matching event, close miss)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "plain value",
        "  s:\n    gen_ai.tool.name: read_file\n  condition: s",
        r#"{"gen_ai.tool.name":"read_file"}"#,
        r#"{"gen_ai.tool.name":"read_files"}"#,
    ),
    (
        "value list is OR",
        "  s:\n    gen_ai.tool.name: [a, b]\n  condition: s",
        r#"{"gen_ai.tool.name":"b"}"#,
        r#"{"gen_ai.tool.name":"c"}"#,
    ),
    (
        "case-insensitive by default",
        "  s:\n    gen_ai.tool.name: READ_FILE\n  condition: s",
        r#"{"gen_ai.tool.name":"read_file"}"#,
        r#"{"gen_ai.tool.name":"write_file"}"#,
    ),
    (
        "wildcards",
        "  s:\n    gen_ai.tool.name: 'read_*'\n  condition: s",
        r#"{"gen_ai.tool.name":"read_file"}"#,
        r#"{"gen_ai.tool.name":"write_file"}"#,
    ),
    (
        "contains",
        "  s:\n    gen_ai.tool.call.result|contains: secret\n  condition: s",
        r#"{"gen_ai.tool.call.result":"a SECRET b"}"#,
        r#"{"gen_ai.tool.call.result":"a b"}"#,
    ),
    (
        "contains|all",
        "  s:\n    gen_ai.tool.call.result|contains|all: [a1, b2]\n  condition: s",
        r#"{"gen_ai.tool.call.result":"a1 b2"}"#,
        r#"{"gen_ai.tool.call.result":"a1 only"}"#,
    ),
    (
        "startswith",
        "  s:\n    gen_ai.tool.name|startswith: delete_\n  condition: s",
        r#"{"gen_ai.tool.name":"delete_repo"}"#,
        r#"{"gen_ai.tool.name":"undelete_repo"}"#,
    ),
    (
        "endswith",
        "  s:\n    mcp.resource.uri|endswith: .env\n  condition: s",
        r#"{"mcp.resource.uri":"file:///app/.env"}"#,
        r#"{"mcp.resource.uri":"file:///app/.env.example"}"#,
    ),
    (
        "re",
        "  s:\n    gen_ai.tool.name|re: '^get-[a-z]+$'\n  condition: s",
        r#"{"gen_ai.tool.name":"get-env"}"#,
        r#"{"gen_ai.tool.name":"get-Env2"}"#,
    ),
    (
        "re|i",
        "  s:\n    gen_ai.tool.name|re|i: '^GET-ENV$'\n  condition: s",
        r#"{"gen_ai.tool.name":"get-env"}"#,
        r#"{"gen_ai.tool.name":"get-envs"}"#,
    ),
    (
        "re|m",
        "  s:\n    gen_ai.tool.call.result|re|m: '^token=.+$'\n  condition: s",
        r#"{"gen_ai.tool.call.result":"a\ntoken=x\nb"}"#,
        r#"{"gen_ai.tool.call.result":"a token=x"}"#,
    ),
    (
        "re|s",
        "  s:\n    gen_ai.tool.call.result|re|s: 'begin.+end'\n  condition: s",
        r#"{"gen_ai.tool.call.result":"begin\nend"}"#,
        r#"{"gen_ai.tool.call.result":"end begin"}"#,
    ),
    (
        "cased",
        "  s:\n    gen_ai.tool.name|cased: Read\n  condition: s",
        r#"{"gen_ai.tool.name":"Read"}"#,
        r#"{"gen_ai.tool.name":"read"}"#,
    ),
    (
        "exists true",
        "  s:\n    auth.token.fingerprint|exists: true\n  condition: s",
        r#"{"auth.token.fingerprint":"fp"}"#,
        r#"{"client.address":"x"}"#,
    ),
    (
        "exists false",
        "  s:\n    auth.token.fingerprint|exists: false\n  condition: s",
        r#"{"client.address":"x"}"#,
        r#"{"auth.token.fingerprint":"fp"}"#,
    ),
    (
        "null value",
        "  s:\n    mcp.session.id: null\n  condition: s",
        r#"{"client.address":"x"}"#,
        r#"{"mcp.session.id":"s1"}"#,
    ),
    (
        "empty string",
        "  s:\n    mcp.client.name: ''\n  condition: s",
        r#"{"mcp.client.name":""}"#,
        r#"{"mcp.client.name":"x"}"#,
    ),
    (
        "integer",
        "  s:\n    http.response.status_code: 401\n  condition: s",
        r#"{"http.response.status_code":401}"#,
        r#"{"http.response.status_code":200}"#,
    ),
    (
        "gt",
        "  s:\n    gen_ai.tool.call.result.size|gt: 1000\n  condition: s",
        r#"{"gen_ai.tool.call.result.size":1001}"#,
        r#"{"gen_ai.tool.call.result.size":1000}"#,
    ),
    (
        "gte",
        "  s:\n    gen_ai.tool.call.result.size|gte: 1000\n  condition: s",
        r#"{"gen_ai.tool.call.result.size":1000}"#,
        r#"{"gen_ai.tool.call.result.size":999}"#,
    ),
    (
        "lt",
        "  s:\n    gen_ai.tool.call.result.size|lt: 10\n  condition: s",
        r#"{"gen_ai.tool.call.result.size":9}"#,
        r#"{"gen_ai.tool.call.result.size":10}"#,
    ),
    (
        "lte",
        "  s:\n    gen_ai.tool.call.result.size|lte: 10\n  condition: s",
        r#"{"gen_ai.tool.call.result.size":10}"#,
        r#"{"gen_ai.tool.call.result.size":11}"#,
    ),
    (
        "boolean",
        "  s:\n    mcp.tool.result.is_error: true\n  condition: s",
        r#"{"mcp.tool.result.is_error":true}"#,
        r#"{"mcp.tool.result.is_error":false}"#,
    ),
    (
        "fieldref",
        "  s:\n    auth.token.aud|fieldref: server.address\n  condition: s",
        r#"{"auth.token.aud":["https://a"],"server.address":"https://a"}"#,
        r#"{"auth.token.aud":["https://b"],"server.address":"https://a"}"#,
    ),
    (
        "cidr",
        "  s:\n    client.address|cidr: 10.0.0.0/8\n  condition: s",
        r#"{"client.address":"10.1.2.3"}"#,
        r#"{"client.address":"11.1.2.3"}"#,
    ),
    (
        "base64",
        "  s:\n    gen_ai.tool.call.arguments|base64: secret\n  condition: s",
        r#"{"gen_ai.tool.call.arguments":"c2VjcmV0"}"#,
        r#"{"gen_ai.tool.call.arguments":"secret"}"#,
    ),
    (
        "base64offset|contains",
        "  s:\n    gen_ai.tool.call.arguments|base64offset|contains: secret\n  condition: s",
        r#"{"gen_ai.tool.call.arguments":"xx c2VjcmV0 yy"}"#,
        r#"{"gen_ai.tool.call.arguments":"secret"}"#,
    ),
    (
        "windash",
        "  s:\n    mcp.server.command|windash|contains: ' -exec'\n  condition: s",
        r#"{"mcp.server.command":"tool /exec x"}"#,
        r#"{"mcp.server.command":"tool exec x"}"#,
    ),
    (
        "and / not",
        "  a:\n    mcp.method.name: tools/call\n  b:\n    gen_ai.tool.name: read_file\n  condition: a and not b",
        r#"{"mcp.method.name":"tools/call","gen_ai.tool.name":"x"}"#,
        r#"{"mcp.method.name":"tools/call","gen_ai.tool.name":"read_file"}"#,
    ),
    (
        "or with parentheses",
        "  a:\n    mcp.method.name: initialize\n  b:\n    gen_ai.tool.name: x\n  c:\n    client.address: y\n  condition: (a or b) and c",
        r#"{"gen_ai.tool.name":"x","client.address":"y"}"#,
        r#"{"gen_ai.tool.name":"x","client.address":"z"}"#,
    ),
    (
        "1 of pattern",
        "  sel_a:\n    gen_ai.tool.name: a\n  sel_b:\n    gen_ai.tool.name: b\n  condition: 1 of sel_*",
        r#"{"gen_ai.tool.name":"b"}"#,
        r#"{"gen_ai.tool.name":"c"}"#,
    ),
    (
        "all of pattern",
        "  sel_a:\n    gen_ai.tool.name|startswith: a\n  sel_b:\n    gen_ai.tool.name|endswith: z\n  condition: all of sel_*",
        r#"{"gen_ai.tool.name":"a_z"}"#,
        r#"{"gen_ai.tool.name":"a_y"}"#,
    ),
    (
        "1 of them",
        "  x:\n    gen_ai.tool.name: a\n  y:\n    client.address: b\n  condition: 1 of them",
        r#"{"client.address":"b"}"#,
        r#"{"client.address":"c"}"#,
    ),
    (
        "all of them",
        "  x:\n    gen_ai.tool.name: a\n  y:\n    client.address: b\n  condition: all of them",
        r#"{"gen_ai.tool.name":"a","client.address":"b"}"#,
        r#"{"client.address":"b"}"#,
    ),
    (
        "list of maps is OR",
        "  s:\n    - gen_ai.tool.name: a\n    - client.address: b\n  condition: s",
        r#"{"client.address":"b"}"#,
        r#"{"client.address":"c"}"#,
    ),
    (
        "several conditions are OR",
        "  a:\n    gen_ai.tool.name: a\n  b:\n    gen_ai.tool.name: b\n  condition:\n    - a\n    - b",
        r#"{"gen_ai.tool.name":"b"}"#,
        r#"{"gen_ai.tool.name":"c"}"#,
    ),
    (
        "derived hour",
        "  s:\n    event.time.hour: 10\n  condition: s",
        r#"{"client.address":"x"}"#,
        r#"{"event.time":"2026-01-05T11:00:00Z"}"#,
    ),
];

#[test]
fn each_construct_matches_its_event_and_not_its_close_miss() {
    let lists = NamedLists::new();
    let mut failures = Vec::new();
    for (name, detection, hit, miss) in CASES {
        match engine_for(detection, &lists) {
            Err(problem) => failures.push(format!("{name}: not loaded: {problem}")),
            Ok(engine) => {
                if !verdict(&engine, hit) {
                    failures.push(format!("{name}: did not match {hit}"));
                }
                if verdict(&engine, miss) {
                    failures.push(format!("{name}: matched the close miss {miss}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn expand_fills_from_named_lists_and_an_undefined_list_is_an_error() {
    let detection = "  s:\n    mcp.server.name|expand: '%approved%'\n  condition: s";
    let lists = NamedLists::from([("approved".to_string(), vec!["github".to_string(), "slack".to_string()])]);
    let engine = engine_for(detection, &lists).unwrap();
    assert!(verdict(&engine, r#"{"mcp.server.name":"slack"}"#));
    assert!(!verdict(&engine, r#"{"mcp.server.name":"evil"}"#));
    let error = engine_for(detection, &NamedLists::new()).err().unwrap();
    assert!(error.starts_with("Invalid"), "{error}");
}

#[test]
fn unsupported_constructs_are_reported_and_skipped() {
    for (name, detection) in [
        ("neq", "  s:\n    gen_ai.tool.name|neq: a\n  condition: s"),
        ("aggregation", "  s:\n    gen_ai.tool.name: a\n  condition: s | count() by client.address > 5"),
    ] {
        let error = engine_for(detection, &NamedLists::new()).err().unwrap_or_else(|| panic!("{name} loaded"));
        assert!(error.starts_with(&format!("{:?}", ProblemKind::Unsupported)), "{name}: {error}");
    }
}
