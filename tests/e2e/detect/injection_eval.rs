//! Injection and tool-poisoning text against the rule pack, through the collector's own
//! observer (capture and redaction included): every attack string of tests/injection/eval.yml
//! once as a tool description and once as a tool result, each in its own session, and the
//! benign side — the set's descriptions and documents, the real tool descriptions of
//! `@modelcontextprotocol/server-everything`, and the README files of the npm packages in
//! tests/mcp as documents a tool returns. Recall must reach 90% on each surface, with no
//! alert on the benign side.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mcpsiem_collect::capture::{Capture, CaptureConfig};
use mcpsiem_collect::observer::Observer;
use mcpsiem_detect::rules::{self, NamedLists};
use mcpsiem_detect::{Engine, EngineConfig};
use mcpsiem_event::{Direction, EventId, EventKind, OwnedEvent, Timestamp};
use serde::Deserialize;
use serde_json::json;

/// The rules about text addressed to the model: hidden tags, instruction phrases, invisible
/// Unicode and base64 in descriptions, and instructions in results.
const TEXT_RULES: [&str; 5] = [
    "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0101",
    "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0102",
    "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0103",
    "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0104",
    "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0201",
];

#[derive(Deserialize)]
struct EvalSet {
    attacks: Vec<Attack>,
    benign: Vec<Benign>,
}

#[derive(Deserialize)]
struct Attack {
    class: String,
    source: String,
    text: String,
}

#[derive(Deserialize)]
struct Benign {
    kind: String,
    text: String,
}

/// Replaces `{tags:TEXT}` with TEXT spelled in Unicode tag characters (invisible).
fn expand_tags(text: &str) -> String {
    let Some(start) = text.find("{tags:") else { return text.to_string() };
    let end = start + text[start..].find('}').expect("a closed {tags:…}");
    let hidden: String =
        text[start + 6..end].chars().map(|c| char::from_u32(0xE0000 + c as u32).expect("ASCII")).collect();
    format!("{}{hidden}{}", &text[..start], expand_tags(&text[end + 1..]))
}

/// What the collector records when a server lists one tool with `description`, or answers a
/// call with `result`, in session `session`.
fn observed(session: &str, description: Option<&str>, result: Option<&str>) -> Vec<OwnedEvent> {
    let mut template = OwnedEvent::new(EventId::new(), Timestamp::now(), EventKind::Message);
    template.session_id = Some(session.to_string().into());
    template.server_name = Some("eval-server".into());
    template.transport = Some("stdio".into());
    let mut observer = Observer::new(template, Capture::new(&CaptureConfig::default()).unwrap());
    let mut out = Vec::new();
    let mut send = |direction, message: serde_json::Value| {
        observer.observe(direction, message.to_string().as_bytes(), &mut out);
    };
    if let Some(description) = description {
        send(Direction::ClientToServer, json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        send(
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"helper","description":description,"inputSchema":{"type":"object"}}]}}),
        );
    }
    if let Some(result) = result {
        send(
            Direction::ClientToServer,
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"doc-1"}}}),
        );
        send(
            Direction::ServerToClient,
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":result}]}}),
        );
    }
    out
}

/// The sessions in which a text rule alerted.
fn alerted_sessions(events: &[OwnedEvent]) -> HashMap<String, Vec<String>> {
    let report = rules::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")], &NamedLists::new());
    let mut engine = Engine::new(report.rules, EngineConfig::default());
    let mut alerts: Vec<_> = events.iter().flat_map(|e| engine.process(e)).collect();
    alerts.extend(engine.finish());
    let mut by_session: HashMap<String, Vec<String>> = HashMap::new();
    for alert in alerts.iter().filter(|a| TEXT_RULES.contains(&a.rule_id.as_str())) {
        let session = alert.group.get("mcp.session.id").cloned().expect("every eval event has a session");
        by_session.entry(session).or_default().push(alert.rule_title.clone());
    }
    by_session
}

/// The README files of the npm packages installed in tests/mcp (real documents).
fn package_readmes(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && dir == root && name.starts_with('@') {
                dirs.push(path);
            } else if path.is_dir() && !name.starts_with('.') {
                for readme in ["README.md", "readme.md", "Readme.md"] {
                    if let Ok(text) = std::fs::read_to_string(path.join(readme)) {
                        out.push((path.display().to_string(), text));
                        break;
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The tool descriptions of the real server-everything, as its `tools/list` gives them.
fn everything_descriptions() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
    let output = std::process::Command::new("node")
        .arg(root.join("scenario-client.mjs"))
        .args(["legacy", r#"[{"list":true}]"#, "--", "node"])
        .arg(crate::support::mcp_bin("mcp-server-everything"))
        .output()
        .expect("node runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the tool list as JSON");
    listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["description"].as_str().map(String::from))
        .collect()
}

#[test]
fn injection_and_poisoning_text_is_caught_in_every_form_and_benign_text_is_not() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/injection/eval.yml");
    let set: EvalSet = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).expect("the evaluation set");
    assert!(set.attacks.len() >= 40 && set.attacks.iter().all(|a| !a.source.is_empty()));

    let mut events = Vec::new();
    for (i, attack) in set.attacks.iter().enumerate() {
        let text = expand_tags(&attack.text);
        events.extend(observed(&format!("attack-{i}-description"), Some(&text), None));
        events.extend(observed(&format!("attack-{i}-result"), None, Some(&text)));
    }
    let mut benign_texts: Vec<(String, &str, String)> = Vec::new();
    for (i, benign) in set.benign.iter().enumerate() {
        benign_texts.push((
            format!("benign-{i}"),
            if benign.kind == "description" { "description" } else { "result" },
            benign.text.clone(),
        ));
    }
    let real_descriptions = everything_descriptions();
    assert!(real_descriptions.len() >= 10, "server-everything lists its tools");
    let everything_count = real_descriptions.len();
    for (i, description) in real_descriptions.into_iter().enumerate() {
        benign_texts.push((format!("everything-{i}"), "description", description));
    }
    let readmes = package_readmes(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/node_modules"));
    assert!(readmes.len() >= 50, "the npm packages of tests/mcp have README files: run scripts/setup");
    let mut readme_of = HashMap::new();
    for (i, (path, text)) in readmes.into_iter().enumerate() {
        readme_of.insert(format!("readme-{i}"), path);
        benign_texts.push((format!("readme-{i}"), "result", text));
    }
    for (session, surface, text) in &benign_texts {
        let (description, result) =
            if *surface == "description" { (Some(text.as_str()), None) } else { (None, Some(text.as_str())) };
        events.extend(observed(session, description, result));
    }

    let alerted = alerted_sessions(&events);
    let mut per_class: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let mut missed = Vec::new();
    for (i, attack) in set.attacks.iter().enumerate() {
        let counts = per_class.entry(attack.class.as_str()).or_default();
        counts[0] += 1;
        for (surface, slot) in [("description", 1), ("result", 2)] {
            if alerted.contains_key(&format!("attack-{i}-{surface}")) {
                counts[slot] += 1;
            } else {
                missed.push(format!("{surface}: {}", attack.text));
            }
        }
    }
    let total = set.attacks.len() as f64;
    let recall = |slot: usize| per_class.values().map(|c| c[slot]).sum::<usize>() as f64 / total;
    let false_positives: Vec<String> = benign_texts
        .iter()
        .filter_map(|(session, _, text)| {
            alerted.get(session).map(|rules| {
                let what = readme_of.get(session).cloned().unwrap_or_else(|| text.chars().take(120).collect());
                format!("{rules:?} on {what}")
            })
        })
        .collect();
    eprintln!(
        "injection evaluation: {} attack strings, recall as description {:.1}%, as result {:.1}%; {} benign texts ({} of the set, {} server-everything descriptions, {} package READMEs), {} alerted",
        set.attacks.len(),
        recall(1) * 100.0,
        recall(2) * 100.0,
        benign_texts.len(),
        set.benign.len(),
        everything_count,
        readme_of.len(),
        false_positives.len()
    );
    for (class, [n, d, r]) in &per_class {
        eprintln!("  {class:<15} {n:>2} strings: {d:>2} as description, {r:>2} as result");
    }
    assert!(false_positives.is_empty(), "alerts on benign text: {false_positives:#?}");
    assert!(recall(1) >= 0.9 && recall(2) >= 0.9, "recall under 90%; missed: {missed:#?}");
}
