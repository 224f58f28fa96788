//! Every alert the demo's attack scenarios raise, as an OCSF Detection Finding, is valid
//! against the OCSF 1.3.0 schema of what we emit (tests/ocsf, written down from the spec),
//! checked by an independent validator (Python's `jsonschema`, installed with the MCP
//! Python SDK by scripts/setup).

use std::path::PathBuf;
use std::process::Command;

use mcpsiem_detect::rules::{self, NamedLists};
use mcpsiem_detect::{Engine, EngineConfig};
use mcpsiem_event::{Alert, AlertSource};
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use serde_json::Value;

const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
findings = json.load(open(sys.argv[2]))
errors = [[i, e.json_path, e.message] for i, f in enumerate(findings) for e in validator.iter_errors(f)]
print(json.dumps({"checked": len(findings), "errors": errors[:20]}))
"#;

/// The validator's verdict on `findings`: how many it checked and the first errors.
fn validate(findings: &[Value]) -> (u64, Vec<Value>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("findings.json");
    std::fs::write(&path, serde_json::to_vec(findings).unwrap()).unwrap();
    let output = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(root.join("tests/ocsf/detection_finding-1.3.0.schema.json"))
        .arg(&path)
        .env("PYTHONPATH", root.join(".tools/python-mcp"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the validator failed; run scripts/setup (it installs jsonschema with the MCP Python SDK): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap();
    (verdict["checked"].as_u64().unwrap(), verdict["errors"].as_array().unwrap().clone())
}

#[test]
fn every_demo_alert_is_a_valid_ocsf_detection_finding() {
    let lists: NamedLists = [("approved_servers".to_string(), mcpsiem_gen::approved_server_names())].into();
    let report = rules::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")], &lists);
    assert_eq!(report.skipped(), 0, "{:#?}", report.problems);
    let mut engine = Engine::new(report.rules, EngineConfig::default());
    let options =
        GenOptions { events: 20_000, days: 2, seed: 11, attacks: Scenario::ALL.to_vec(), ..GenOptions::default() };
    let mut alerts: Vec<Alert> = Vec::new();
    for event in Generator::new(options) {
        alerts.extend(engine.process(&event));
    }
    alerts.extend(engine.finish());
    for source in [AlertSource::Detection, AlertSource::Correlation, AlertSource::FirstSeen] {
        assert!(alerts.iter().any(|a| a.source == source), "no {source:?} alert among {}", alerts.len());
    }
    let version = env!("CARGO_PKG_VERSION");
    let findings: Vec<Value> = alerts.iter().map(|a| mcpsiem_event::ocsf::detection_finding(a, version)).collect();
    let (checked, errors) = validate(&findings);
    assert_eq!(checked as usize, alerts.len());
    assert!(errors.is_empty(), "{} alerts, invalid findings: {errors:#?}", alerts.len());

    // The validator does refuse what the schema forbids.
    let mut broken = findings[0].clone();
    broken["severity_id"] = 7.into();
    broken["finding_info"]["attacks"] = serde_json::json!([{"version": "v16"}]);
    broken["colour"] = "red".into();
    let (_, errors) = validate(&[broken]);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}
