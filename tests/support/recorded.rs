//! Real traffic recorded into rule-test fixtures (`rules/captured/*.tests.yml`), so the rule
//! tests run on what real clients and servers send through our collectors, not only on
//! generated events.
//!
//! A test that plays real sessions records them with `RECORD_RULE_FIXTURES=1`. Otherwise
//! it checks that the checked-in fixture still has the shape of what the collectors record
//! today (per case, the events' kinds, methods, tools, servers, revisions and field names),
//! and says to record again when it does not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

// Not `MCPSIEM_…`: that prefix is the configuration's, and the collectors under test read it.
pub const RECORD_ENV: &str = "RECORD_RULE_FIXTURES";

/// One case of a recorded fixture: a rule that must match (or `None` with `no_alert`).
pub struct RecordedCase {
    pub name: String,
    pub rule: Option<&'static str>,
    pub expect: &'static str,
    pub events: Vec<Value>,
}

/// The fixture file `name` under `rules/captured`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/captured").join(name)
}

/// What must not change between two recordings of the same sessions: ids, times, session
/// ids and durations do; which events and which fields there are does not.
fn shape(event: &Value) -> String {
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
    let mut fields: Vec<&str> = event.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    fields.sort_unstable();
    format!(
        "{} {} {} {} {} [{}]",
        text("event.kind"),
        text("mcp.method.name"),
        text("gen_ai.tool.name"),
        text("mcp.server.name"),
        text("mcp.protocol.version"),
        fields.join(",")
    )
}

fn shapes(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = events.iter().map(shape).collect();
    out.sort();
    out
}

fn render(header: &str, lists: &BTreeMap<&str, Vec<&str>>, cases: &[RecordedCase]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(&format!("# Record again: {RECORD_ENV}=1 cargo test --test e2e -- <the test that writes it>\n"));
    if !lists.is_empty() {
        out.push_str("lists:\n");
        for (name, values) in lists {
            out.push_str(&format!("  {name}: {}\n", serde_json::to_string(values).expect("strings serialize")));
        }
    }
    out.push_str("cases:\n");
    for case in cases {
        out.push_str(&format!("  - name: {}\n", serde_json::to_string(&case.name).expect("a string serializes")));
        if let Some(rule) = case.rule {
            out.push_str(&format!("    rule: {rule}\n"));
        }
        out.push_str(&format!("    expect: {}\n    events:\n", case.expect));
        for event in &case.events {
            // JSON is YAML: one event per line, exactly as the collector shipped it.
            out.push_str(&format!("      - {}\n", serde_json::to_string(event).expect("an event serializes")));
        }
    }
    out
}

/// Writes the fixture when recording; otherwise checks the checked-in one against `cases`.
pub fn record_or_check(name: &str, header: &str, lists: &BTreeMap<&str, Vec<&str>>, cases: &[RecordedCase]) {
    let path = fixture_path(name);
    if std::env::var_os(RECORD_ENV).is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent")).unwrap();
        std::fs::write(&path, render(header, lists, cases)).unwrap();
        return;
    }
    let recorded = read_cases(&path);
    let live: BTreeMap<String, Vec<String>> = cases.iter().map(|c| (c.name.clone(), shapes(&c.events))).collect();
    let checked_in: BTreeMap<String, Vec<String>> =
        recorded.iter().map(|(name, events)| (name.clone(), shapes(events))).collect();
    assert!(
        live == checked_in,
        "{} no longer has the shape of what the collectors record (events or fields changed); \
         record it again with {RECORD_ENV}=1.\nlive: {live:#?}\nchecked in: {checked_in:#?}",
        path.display()
    );
}

/// The cases of a fixture file, by name, with their events.
fn read_cases(path: &Path) -> Vec<(String, Vec<Value>)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}; record it with {RECORD_ENV}=1", path.display()));
    let file: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| {
            let name = case["name"].as_str().expect("a case name").to_owned();
            (name, case["events"].as_array().cloned().unwrap_or_default())
        })
        .collect()
}
