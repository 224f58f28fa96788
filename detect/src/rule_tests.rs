//! `mcpsiem rules test`: every rule against the test events shipped beside it.
//!
//! A rule file `x.yml` has its tests in `x.tests.yml`:
//!
//! ```yaml
//! rule: 3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0002   # id or name; a case may name another
//! lists: {approved_servers: [github]}          # optional, for |expand
//! cases:
//!   - name: the token from a second address
//!     expect: match                            # or no_match
//!     events:
//!       - {auth.token.fingerprint: fp1, client.address: 10.0.0.1}
//!       - {auth.token.fingerprint: fp1, client.address: 10.0.0.2, at: 30s}
//!       - {http.response.status_code: 401, repeat: 10, every: 2s}
//! ```
//!
//! A case may instead say `expect: no_alert` and name no rule: then no rule of the whole set
//! may alert on its events (recorded benign sessions of real clients and servers).
//!
//! Events are written in the event schema's JSON names. `event.id`, `event.time` and
//! `event.kind` may be left out: ids are made up, `event.kind` is `message`, and times start
//! at Monday 2026-01-05 10:00 UTC (working hours), one second apart, or at `at` (a timespan
//! such as `90s` or `13h` after the start). `repeat: n` sends an event n times, `every`
//! apart (default 1s).
//!
//! Each case runs on a fresh engine holding the whole rule set (building blocks,
//! correlations and filters as in production), and the events are processed to the end of
//! time. A detection rule "matches" when it matched one of the events (even when it does
//! not alert alone, as a building block); a correlation or first-seen rule matches when it
//! alerted. Every rule needs at least one `match` case and one `no_match` case.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mcpsiem_event::Timestamp;
use serde::Deserialize;

use crate::engine::{Engine, EngineConfig};
use crate::rules::correlation::parse_timespan;
use crate::rules::{self, NamedLists, ProblemKind, RuleMeta, RuleProblem, RuleSet};

/// Monday 2026-01-05 10:00:00 UTC.
const BASE_TIME_MICROS: i64 = 1_767_607_200_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule: Option<String>,
    #[serde(default)]
    lists: HashMap<String, Vec<String>>,
    cases: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    rule: Option<String>,
    expect: Expect,
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Match,
    NoMatch,
    /// No rule of the set alerts (the case names no rule).
    NoAlert,
}

/// The outcome of one case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub file: PathBuf,
    pub case: String,
    pub rule: String,
    pub expect: Expect,
    pub passed: bool,
    /// Why it failed, when it did.
    pub detail: Option<String>,
}

/// Per rule: its cases and whether it has both kinds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RuleResult {
    pub rule: String,
    pub title: String,
    pub file: PathBuf,
    pub cases: Vec<CaseResult>,
    /// Present when the rule lacks a `match` or a `no_match` case.
    pub missing: Option<String>,
}

impl RuleResult {
    pub fn passed(&self) -> bool {
        self.missing.is_none() && self.cases.iter().all(|c| c.passed)
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TestReport {
    pub rules: Vec<RuleResult>,
    /// Cases of `expect: no_alert`, about the whole rule set.
    pub quiet_cases: Vec<CaseResult>,
    /// Test files that could not be read, and cases naming no loaded rule.
    pub problems: Vec<RuleProblem>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
            && self.rules.iter().all(RuleResult::passed)
            && self.quiet_cases.iter().all(|c| c.passed)
    }
}

/// Every test file under `paths` (the same trees the rules come from).
fn test_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        if path.as_os_str() == rules::BUILTIN {
            pending.extend(rules::builtin_files());
        } else if path.is_dir() {
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                pending.push(entry.path());
            }
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".tests.yml")) {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn problem(file: &Path, line: usize, reason: String) -> RuleProblem {
    RuleProblem { file: file.to_owned(), line, rule: None, kind: ProblemKind::Invalid, reason }
}

/// Every rule of `rules`, by key, with its kind: detection rules match by verdict.
fn rule_index(rules: &RuleSet) -> Vec<(RuleMeta, bool)> {
    let mut out: Vec<(RuleMeta, bool)> = rules.detections.iter().map(|r| (r.meta.clone(), true)).collect();
    out.extend(rules.correlations.iter().map(|r| (r.meta.clone(), false)));
    out.extend(rules.first_seen.iter().map(|r| (r.rule.meta.clone(), false)));
    out
}

fn find<'a>(index: &'a [(RuleMeta, bool)], reference: &str) -> Option<&'a (RuleMeta, bool)> {
    index.iter().find(|(meta, _)| meta.is_named(reference) || meta.key() == reference)
}

/// Builds a case's events as the collectors would ship them.
fn case_events(case: &TestCase, file: &Path) -> Result<Vec<mcpsiem_event::OwnedEvent>, String> {
    let mut out = Vec::new();
    let mut next = BASE_TIME_MICROS;
    for (i, spec) in case.events.iter().enumerate() {
        let mut fields = spec.clone();
        let seconds =
            |key: &str, fields: &mut serde_json::Map<String, serde_json::Value>| -> Result<Option<i64>, String> {
                match fields.remove(key) {
                    None => Ok(None),
                    Some(serde_json::Value::Number(n)) => Ok(n.as_i64()),
                    Some(serde_json::Value::String(text)) => parse_timespan(&text)
                        .map(|d| Some(d.as_secs() as i64))
                        .ok_or_else(|| format!("event {}: `{key}: {text}` is not a timespan such as 30s or 2h", i + 1)),
                    Some(other) => Err(format!("event {}: `{key}` must be a timespan, found {other}", i + 1)),
                }
            };
        let at = seconds("at", &mut fields)?;
        let every = seconds("every", &mut fields)?.unwrap_or(1);
        let repeat = match fields.remove("repeat") {
            None => 1,
            Some(v) => v.as_u64().ok_or_else(|| format!("event {}: `repeat` must be a count", i + 1))?,
        };
        if let Some(at) = at {
            next = BASE_TIME_MICROS + at * 1_000_000;
        }
        for r in 0..repeat {
            let mut event = fields.clone();
            event.entry("event.kind").or_insert_with(|| "message".into());
            if !event.contains_key("event.time") {
                event.insert("event.time".into(), Timestamp::from_micros(next).to_string().into());
            }
            // Ids made up from the place, so a failing case names the same ids every run.
            let seed =
                crate::stable_hash::stable_hash(format!("{}\n{}\n{i}\n{r}", file.display(), case.name).as_bytes());
            let id = ulid::Ulid::from_parts((next / 1000).max(0) as u64, seed).to_string();
            event.entry("event.id").or_insert_with(|| id.into());
            let bytes = serde_json::to_vec(&event).expect("a JSON map serializes");
            let parsed = mcpsiem_event::parse_event(&bytes, usize::MAX)
                .map_err(|e| format!("event {} is not a valid event: {e}", i + 1))?;
            out.push(parsed.into_owned());
            next += every * 1_000_000;
        }
    }
    Ok(out)
}

/// Whether `rule` matched the case's events.
fn matched(engine: &mut Engine, key: &str, detection: bool, events: &[mcpsiem_event::OwnedEvent]) -> bool {
    let mut hit = false;
    for event in events {
        if detection && engine.detection_verdicts(event).iter().any(|k| k == key) {
            hit = true;
        }
        hit |= engine.process(event).iter().any(|a| a.rule_id == key);
    }
    hit | engine.finish().iter().any(|a| a.rule_id == key)
}

/// A case no rule may alert on: every alert raised is named in the failure.
fn quiet_case(paths: &[PathBuf], lists: &NamedLists, case: &TestCase, file: &Path) -> CaseResult {
    let outcome = case_events(case, file).map(|events| {
        let loaded = rules::load(paths, lists);
        let mut engine = Engine::new(loaded.rules, EngineConfig { suppress_seconds: 0, ..EngineConfig::default() });
        let mut alerts: Vec<String> = Vec::new();
        for event in &events {
            alerts.extend(engine.process(event).into_iter().map(|a| a.rule_title));
        }
        alerts.extend(engine.finish().into_iter().map(|a| a.rule_title));
        alerts
    });
    let (passed, detail) = match outcome {
        Ok(alerts) if alerts.is_empty() => (true, None),
        Ok(alerts) => (false, Some(format!("expected no alert, got: {}", alerts.join("; ")))),
        Err(e) => (false, Some(e)),
    };
    CaseResult {
        file: file.to_owned(),
        case: case.name.clone(),
        rule: "*".into(),
        expect: Expect::NoAlert,
        passed,
        detail,
    }
}

/// Runs every test file under `paths` against the rules under `paths`.
pub fn run(paths: &[PathBuf], lists: &NamedLists) -> TestReport {
    let mut report = TestReport::default();
    let base = rules::load(paths, lists);
    let mut results: BTreeMap<String, RuleResult> = rule_index(&base.rules)
        .into_iter()
        .map(|(meta, _)| {
            let key = meta.key().to_string();
            (
                key.clone(),
                RuleResult {
                    rule: key,
                    title: meta.title.clone(),
                    file: meta.file.clone(),
                    cases: Vec::new(),
                    missing: None,
                },
            )
        })
        .collect();
    for file in test_files(paths) {
        let parsed: Result<TestFile, String> = rules::read_rule_text(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_norway::from_str(&text).map_err(|e| e.to_string()));
        let tests = match parsed {
            Ok(tests) => tests,
            Err(e) => {
                report.problems.push(problem(&file, 0, format!("not a valid test file: {e}")));
                continue;
            }
        };
        let mut case_lists = lists.clone();
        case_lists.extend(tests.lists.clone());
        for case in &tests.cases {
            if case.expect == Expect::NoAlert {
                report.quiet_cases.push(quiet_case(paths, &case_lists, case, &file));
                continue;
            }
            let Some(reference) = case.rule.as_ref().or(tests.rule.as_ref()) else {
                report.problems.push(problem(&file, 0, format!("case `{}` names no rule (set `rule`)", case.name)));
                continue;
            };
            let loaded = rules::load(paths, &case_lists);
            let index = rule_index(&loaded.rules);
            let Some((meta, detection)) = find(&index, reference).cloned() else {
                report.problems.push(problem(
                    &file,
                    0,
                    format!("case `{}` names rule `{reference}`, which is not loaded", case.name),
                ));
                continue;
            };
            let key = meta.key().to_string();
            let outcome = case_events(case, &file).map(|events| {
                let mut engine =
                    Engine::new(loaded.rules, EngineConfig { suppress_seconds: 0, ..EngineConfig::default() });
                matched(&mut engine, &key, detection, &events)
            });
            let (passed, detail) = match outcome {
                Ok(hit) => {
                    let passed = hit == (case.expect == Expect::Match);
                    let detail = (!passed).then(|| {
                        if hit {
                            "the rule matched, but the case expects no match".to_string()
                        } else {
                            "the rule did not match".to_string()
                        }
                    });
                    (passed, detail)
                }
                Err(e) => (false, Some(e)),
            };
            let result = CaseResult {
                file: file.clone(),
                case: case.name.clone(),
                rule: key.clone(),
                expect: case.expect,
                passed,
                detail,
            };
            results
                .entry(key.clone())
                .or_insert_with(|| RuleResult {
                    rule: key,
                    title: meta.title.clone(),
                    file: meta.file.clone(),
                    cases: Vec::new(),
                    missing: None,
                })
                .cases
                .push(result);
        }
    }
    for result in results.values_mut() {
        let has = |e: Expect| result.cases.iter().any(|c| c.expect == e);
        result.missing = match (has(Expect::Match), has(Expect::NoMatch)) {
            (true, true) => None,
            (false, false) => Some("no test cases: add a `.tests.yml` beside the rule".into()),
            (false, true) => Some("no `match` case".into()),
            (true, false) => Some("no `no_match` case (a close miss)".into()),
        };
    }
    report.rules = results.into_values().collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: Init\nid: r-init\nlogsource: {product: mcp}\ndetection:\n  s:\n    mcp.method.name: initialize\n  condition: s\n";

    fn run_with(tests: &str) -> TestReport {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("init.yml"), RULE).unwrap();
        std::fs::write(dir.path().join("init.tests.yml"), tests).unwrap();
        run(&[dir.path().to_owned()], &NamedLists::new())
    }

    #[test]
    fn a_no_alert_case_passes_when_nothing_alerts_and_names_what_did() {
        let report = run_with(
            "cases:\n  - name: quiet\n    expect: no_alert\n    events:\n      - {mcp.method.name: tools/list}\n  - name: loud\n    expect: no_alert\n    events:\n      - {mcp.method.name: tools/list}\n      - {mcp.method.name: initialize}\n",
        );
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let outcome: Vec<(&str, bool)> = report.quiet_cases.iter().map(|c| (c.case.as_str(), c.passed)).collect();
        assert_eq!(outcome, [("quiet", true), ("loud", false)]);
        assert_eq!(report.quiet_cases[1].detail.as_deref(), Some("expected no alert, got: Init"));
        assert!(!report.passed());
    }
}
