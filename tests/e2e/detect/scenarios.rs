//! The rule pack against generated traffic: every injected attack scenario raises an alert
//! whose events include the scenario's events, and the alerts on benign traffic are counted.

use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use mcpsiem_detect::rules::{self, NamedLists};
use mcpsiem_detect::{Engine, EngineConfig};
use mcpsiem_gen::{GenOptions, Generator, Scenario};

fn rule_pack() -> (mcpsiem_detect::rules::RuleSet, NamedLists) {
    let lists: NamedLists = [(
        "approved_servers".to_string(),
        ["filesystem", "github", "slack", "postgres", "fetch", "email", "jira"].map(String::from).to_vec(),
    )]
    .into();
    let report = rules::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")], &lists);
    let skipped: Vec<String> = report.problems.iter().filter(|p| p.skips_rule()).map(ToString::to_string).collect();
    assert!(skipped.is_empty(), "rules skipped: {skipped:#?}");
    (report.rules, lists)
}

#[test]
fn every_injected_scenario_raises_an_alert() {
    let (rules, _) = rule_pack();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let options =
        GenOptions { events: 40_000, seed: 77, days: 2, attacks: Scenario::ALL.to_vec(), ..GenOptions::default() };
    let mut scenario_of: HashMap<String, String> = HashMap::new();
    let mut alerts = Vec::new();
    for event in Generator::new(options) {
        let scenario = mcpsiem_gen::scenario_of(&event).to_string();
        scenario_of.insert(event.id.to_string(), scenario);
        alerts.extend(engine.process(&event));
    }
    alerts.extend(engine.finish());

    let mut detected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut benign_alerts: BTreeMap<String, usize> = BTreeMap::new();
    for alert in &alerts {
        let scenarios = support::attack_scenarios(alert, &scenario_of);
        if scenarios.is_empty() {
            *benign_alerts.entry(alert.rule_title.clone()).or_default() += 1;
        }
        for scenario in scenarios {
            detected.entry(scenario).or_default().push(alert.rule_title.clone());
        }
    }
    eprintln!("alerts on benign events per rule: {benign_alerts:#?}");
    let missed: Vec<&str> =
        Scenario::ALL.iter().map(|s| s.name()).filter(|name| !detected.contains_key(name)).collect();
    assert!(missed.is_empty(), "scenarios without an alert: {missed:?}; detected: {detected:#?}");
}
