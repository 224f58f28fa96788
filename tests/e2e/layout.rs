//! The crates are the pipeline, and stages talk only through Kafka and the lake: no stage
//! crate depends on another. Only the contract (`mcpsiem-event`), the lake protocol
//! (`mcpsiem-lake`) and the shared runtime (`mcpsiem-runtime`) are shared.

use std::collections::BTreeMap;
use std::path::Path;

/// The crates that are stages of the pipeline.
const STAGES: &[&str] = &["mcpsiem-collect", "mcpsiem-ingest", "mcpsiem-detect", "mcpsiem-deliver", "mcpsiem-query"];

/// What a stage may depend on among the workspace's crates.
const SHARED: &[&str] = &["mcpsiem-event", "mcpsiem-lake", "mcpsiem-runtime"];

/// A stage-to-stage (or stage-to-tool) dependency: `(crate, the crate it depends on, section)`.
type Violation = (String, String, String);

/// Every dependency of a stage crate on a workspace crate that is not shared, in any
/// dependency section of its manifest.
fn violations(manifests: &BTreeMap<String, String>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (name, text) in manifests {
        if !STAGES.contains(&name.as_str()) {
            continue;
        }
        let manifest: toml::Table = text.parse().unwrap_or_else(|e| panic!("{name}'s Cargo.toml: {e}"));
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = manifest.get(section).and_then(toml::Value::as_table) else { continue };
            for dep in deps.keys() {
                let internal = dep.starts_with("mcpsiem");
                if internal && !SHARED.contains(&dep.as_str()) {
                    found.push((name.clone(), dep.clone(), section.to_string()));
                }
            }
        }
    }
    found
}

/// Every workspace member's manifest, by package name.
fn workspace_manifests() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml")).unwrap().parse().unwrap();
    let members = workspace["workspace"]["members"].as_array().expect("workspace.members");
    let mut manifests = BTreeMap::new();
    for member in members {
        let text = std::fs::read_to_string(root.join(member.as_str().unwrap()).join("Cargo.toml")).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_string();
        manifests.insert(name, text);
    }
    manifests
}

#[test]
fn no_stage_depends_on_another() {
    let manifests = workspace_manifests();
    for stage in STAGES {
        assert!(manifests.contains_key(*stage), "{stage} is not a workspace member");
    }
    let found = violations(&manifests);
    assert!(
        found.is_empty(),
        "stages may depend only on {SHARED:?} among mcpsiem's crates; move what they share into one of those: {found:?}"
    );
}

#[test]
fn the_check_catches_a_stage_depending_on_another() {
    let mut manifests = workspace_manifests();
    let detect = manifests.get_mut("mcpsiem-detect").unwrap();
    *detect = detect.replace("[dependencies]\n", "[dependencies]\nmcpsiem-query.workspace = true\n");
    let query = manifests.get_mut("mcpsiem-query").unwrap();
    query.push_str("\n[build-dependencies]\nmcpsiem-gen = { path = \"../gen\" }\n");
    let found = violations(&manifests);
    assert_eq!(
        found,
        vec![
            ("mcpsiem-detect".to_string(), "mcpsiem-query".to_string(), "dependencies".to_string()),
            ("mcpsiem-query".to_string(), "mcpsiem-gen".to_string(), "build-dependencies".to_string()),
        ]
    );
}
