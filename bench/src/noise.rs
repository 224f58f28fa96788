//! `mcpsiem bench noise`: how loud and how complete the rule pack is on generated traffic.
//! Benign-only traffic gives the alerts per rule a SOC would have to triage for nothing;
//! traffic with every attack scenario injected (another seed) gives which rules caught
//! which scenario, and any scenario no rule caught.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use mcpsiem_detect::rules::{self, NamedLists};
use mcpsiem_detect::{Engine, EngineConfig};
use serde::Serialize;

use mcpsiem_gen::{GenOptions, Generator, Scenario, TrafficProfile, scenario_of};

#[derive(Debug, Serialize)]
pub struct NoiseReport {
    /// The generator's traffic profile (`real-world` unless asked otherwise).
    pub profile: String,
    pub benign_events: u64,
    pub benign_days: u32,
    /// Alerts per rule title on benign-only traffic, every rule listed.
    pub benign_alerts: BTreeMap<String, u64>,
    pub attack_events: u64,
    pub attack_seed: u64,
    /// The rules that alerted on each scenario's events.
    pub scenarios: BTreeMap<String, BTreeSet<String>>,
    pub missed_scenarios: Vec<String>,
    pub seconds: f64,
}

fn engine(paths: &[PathBuf], lists: &NamedLists) -> Result<Engine> {
    let report = rules::load(paths, lists);
    if report.skipped() > 0 {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        bail!("rules were skipped:\n{}", problems.join("\n"));
    }
    Ok(Engine::new(report.rules, EngineConfig::default()))
}

fn rule_titles(paths: &[PathBuf], lists: &NamedLists) -> Vec<String> {
    let set = rules::load(paths, lists).rules;
    let mut titles: Vec<String> = set.detections.iter().map(|r| r.meta.title.clone()).collect();
    titles.extend(set.correlations.iter().map(|r| r.meta.title.clone()));
    titles.extend(set.first_seen.iter().map(|r| r.rule.meta.title.clone()));
    titles
}

pub fn noise_bench(
    paths: &[PathBuf],
    lists: &NamedLists,
    benign_events: u64,
    attack_events: u64,
    attack_seed: u64,
    profile: TrafficProfile,
) -> Result<NoiseReport> {
    let started = Instant::now();
    let days = (benign_events / 150_000).clamp(1, 30) as u32;
    let mut benign_alerts: BTreeMap<String, u64> = rule_titles(paths, lists).into_iter().map(|t| (t, 0)).collect();
    let mut detector = engine(paths, lists)?;
    let bar = mcpsiem_runtime::progress::counter(benign_events, "benign events");
    let options =
        GenOptions { events: benign_events, seed: attack_seed ^ 0x5eed, days, profile, ..GenOptions::default() };
    for (i, event) in Generator::new(options).enumerate() {
        for alert in detector.process(&event) {
            *benign_alerts.entry(alert.rule_title).or_default() += 1;
        }
        if i % 10_000 == 0 {
            bar.set_position(i as u64);
        }
    }
    for alert in detector.finish() {
        *benign_alerts.entry(alert.rule_title).or_default() += 1;
    }
    bar.finish_and_clear();

    let mut detector = engine(paths, lists)?;
    let options = GenOptions {
        events: attack_events,
        seed: attack_seed,
        days: 2,
        attacks: Scenario::ALL.to_vec(),
        profile,
        ..GenOptions::default()
    };
    let mut scenario_by_event: HashMap<String, &'static str> = HashMap::new();
    let mut alerts = Vec::new();
    for event in Generator::new(options) {
        let scenario = scenario_of(&event);
        if scenario != "benign" {
            scenario_by_event.insert(event.id.to_string(), scenario);
        }
        alerts.extend(detector.process(&event));
    }
    alerts.extend(detector.finish());
    let mut scenarios: BTreeMap<String, BTreeSet<String>> =
        Scenario::ALL.iter().map(|s| (s.name().to_string(), BTreeSet::new())).collect();
    for alert in &alerts {
        for id in &alert.event_ids {
            if let Some(scenario) = scenario_by_event.get(id) {
                scenarios.entry(scenario.to_string()).or_default().insert(alert.rule_title.clone());
            }
        }
    }
    let missed_scenarios = scenarios.iter().filter(|(_, rules)| rules.is_empty()).map(|(s, _)| s.clone()).collect();
    Ok(NoiseReport {
        profile: format!("{profile:?}"),
        benign_events,
        benign_days: days,
        benign_alerts,
        attack_events,
        attack_seed,
        scenarios,
        missed_scenarios,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl std::fmt::Display for NoiseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "alerts per rule on {} benign-only events over {} days ({} traffic):",
            self.benign_events, self.benign_days, self.profile
        )?;
        for (rule, count) in &self.benign_alerts {
            let flag = if *count > 10 { "  (> 10: tuned or justified in falsepositives)" } else { "" };
            writeln!(f, "  {count:>7}  {rule}{flag}")?;
        }
        writeln!(f, "scenarios in {} events with every attack (seed {}):", self.attack_events, self.attack_seed)?;
        for (scenario, rules) in &self.scenarios {
            let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
            writeln!(f, "  {scenario}: {}", if rules.is_empty() { "MISSED".to_string() } else { rules.join("; ") })?;
        }
        write!(f, "{} scenarios missed; {:.1} s", self.missed_scenarios.len(), self.seconds)
    }
}
