//! `mcpsiem bench detect`: the detector with the full rule pack against (a) the naive loop
//! (parse each event into a sigma-rust `Event` from its JSON and call `is_match` for every
//! detection rule) and (b) rsigma, the strongest Rust peer, with its correlation engine, on
//! the same events, one core, same run. Then both engines' detection verdicts are compared.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use mcpsiem_detect::rules::{self, NamedLists, RuleSet};
use mcpsiem_detect::{Engine, EngineConfig};
use serde::Serialize;

use crate::decode::NdjsonCorpus;

#[derive(Debug, Serialize)]
pub struct DetectBenchReport {
    pub events: usize,
    pub rounds: u32,
    pub detection_rules: usize,
    pub correlation_rules: usize,
    pub first_seen_rules: usize,
    /// Detection rules sigma-rust parses as they are (the naive loop's rules).
    pub naive_rules: usize,
    pub baseline_events_per_sec: f64,
    pub detector_events_per_sec: f64,
    /// Detector throughput over the naive loop's; the target is at least 2.
    pub ratio: f64,
    pub baseline_matches: u64,
    pub detector_alerts: u64,
    /// rsigma-eval's rules (detection, correlation and filter) and what it could not take.
    pub rsigma_rules: usize,
    pub rsigma_left_out: Vec<String>,
    pub rsigma_events_per_sec: f64,
    /// Detector throughput over rsigma's; the target is at least 1.
    pub ratio_vs_rsigma: f64,
    pub rsigma_results: crate::rsigma::PeerCounts,
    /// Events whose detection verdicts were compared, and the rules where they differ.
    pub verdicts_compared: u64,
    pub disagreements: Vec<crate::rsigma::Disagreement>,
}

fn load(paths: &[PathBuf], lists: &NamedLists) -> Result<RuleSet> {
    let report = rules::load(paths, lists);
    if report.skipped() > 0 {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        bail!("rules were skipped:\n{}", problems.join("\n"));
    }
    Ok(report.rules)
}

/// The naive loop's rules: every detection document parsed by sigma-rust itself, as a user
/// of the crate would, without our rewrites. Documents it cannot parse (our `|expand`) are
/// left out, which only makes the baseline's work smaller.
pub(crate) fn naive_rules(paths: &[PathBuf]) -> Result<Vec<sigma_rust::Rule>> {
    let mut out = Vec::new();
    let files = rules::rule_files(paths).map_err(|p| anyhow::anyhow!("{p}"))?;
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for document in rules::document::split_documents(&text) {
            let Some(doc) = rules::parse_mapping(&document.text) else { continue };
            let plain_detection = doc.contains_key("detection")
                && !["correlation", "first_seen", "filter"].iter().any(|k| doc.contains_key(*k));
            if plain_detection && let Ok(rule) = sigma_rust::rule_from_yaml(&document.text) {
                out.push(rule);
            }
        }
    }
    Ok(out)
}

pub fn detect_bench(
    corpus: &NdjsonCorpus,
    paths: &[PathBuf],
    lists: &NamedLists,
    rounds: u32,
) -> Result<DetectBenchReport> {
    let counts = load(paths, lists)?;
    let naive_count = naive_rules(paths)?.len();
    let peer = crate::rsigma::peer_rules(paths)?;
    let mut best_baseline = Duration::MAX;
    let mut best_detector = Duration::MAX;
    let mut best_rsigma = Duration::MAX;
    let mut rsigma_results = crate::rsigma::PeerCounts::default();
    let mut baseline_matches = 0;
    let mut detector_alerts = 0;
    for _ in 0..rounds.max(1) {
        let naive = naive_rules(paths)?;
        let started = Instant::now();
        let mut matches = 0u64;
        for range in &corpus.lines {
            let text = std::str::from_utf8(&corpus.bytes[range.clone()]).expect("generated events are UTF-8");
            let event = sigma_rust::event_from_json(text).expect("generated events are JSON objects");
            for rule in &naive {
                matches += u64::from(black_box(rule.is_match(&event)));
            }
        }
        best_baseline = best_baseline.min(started.elapsed());
        baseline_matches = matches;

        let mut engine = Engine::new(load(paths, lists)?, EngineConfig::default());
        let started = Instant::now();
        let mut alerts = 0u64;
        for range in &corpus.lines {
            let event =
                mcpsiem_event::parse_event(&corpus.bytes[range.clone()], usize::MAX).expect("generated events decode");
            alerts += engine.process(&event).len() as u64;
        }
        alerts += engine.finish().len() as u64;
        best_detector = best_detector.min(started.elapsed());
        detector_alerts = alerts;

        let mut rsigma = crate::rsigma::correlation_engine(&peer)?;
        let started = Instant::now();
        rsigma_results = crate::rsigma::run(&mut rsigma, corpus.lines.iter().map(|r| &corpus.bytes[r.clone()]));
        best_rsigma = best_rsigma.min(started.elapsed());
    }
    let engine = Engine::new(load(paths, lists)?, EngineConfig::default());
    let (verdicts_compared, disagreements) =
        crate::rsigma::compare_verdicts(&engine, &peer, corpus.lines.iter().map(|r| &corpus.bytes[r.clone()]))?;
    let events = corpus.lines.len();
    let per_sec = |d: Duration| events as f64 / d.as_secs_f64();
    Ok(DetectBenchReport {
        events,
        rounds: rounds.max(1),
        detection_rules: counts.detections.len(),
        correlation_rules: counts.correlations.len(),
        first_seen_rules: counts.first_seen.len(),
        naive_rules: naive_count,
        baseline_events_per_sec: per_sec(best_baseline),
        detector_events_per_sec: per_sec(best_detector),
        ratio: best_baseline.as_secs_f64() / best_detector.as_secs_f64(),
        baseline_matches,
        detector_alerts,
        rsigma_rules: peer.rules(),
        rsigma_left_out: peer.left_out,
        rsigma_events_per_sec: per_sec(best_rsigma),
        ratio_vs_rsigma: best_rsigma.as_secs_f64() / best_detector.as_secs_f64(),
        rsigma_results,
        verdicts_compared,
        disagreements,
    })
}

impl std::fmt::Display for DetectBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "detect: {} events, {} detection + {} correlation + {} first-seen rules, best of {} alternating rounds, one core",
            self.events, self.detection_rules, self.correlation_rules, self.first_seen_rules, self.rounds
        )?;
        writeln!(
            f,
            "  baseline: JSON -> sigma_rust::Event, is_match for each of {} rules  : {:>10.0} events/s ({} matches)",
            self.naive_rules, self.baseline_events_per_sec, self.baseline_matches
        )?;
        writeln!(
            f,
            "  mcpsiem engine (all rules, correlations, first-seen)             : {:>10.0} events/s ({} alerts)",
            self.detector_events_per_sec, self.detector_alerts
        )?;
        writeln!(
            f,
            "  rsigma-eval 0.23 (JSON -> JsonEvent, CorrelationEngine, {} rules) : {:>10.0} events/s ({} detections, {} correlations)",
            self.rsigma_rules,
            self.rsigma_events_per_sec,
            self.rsigma_results.detections,
            self.rsigma_results.correlations
        )?;
        writeln!(f, "  ratio (engine / naive loop) : {:.2}x (target >= 2)", self.ratio)?;
        writeln!(f, "  ratio (engine / rsigma)     : {:.2}x (target >= 1)", self.ratio_vs_rsigma)?;
        for left in &self.rsigma_left_out {
            writeln!(f, "  left out of rsigma: {left}")?;
        }
        write!(f, "  verdicts compared on {} events: ", self.verdicts_compared)?;
        if self.disagreements.is_empty() {
            write!(f, "the engines agree on every rule")?;
        }
        for d in &self.disagreements {
            write!(f, "\n    {}: only mcpsiem {}, only rsigma {}", d.rule, d.only_mcpsiem, d.only_rsigma)?;
            if let Some(e) = &d.example_only_mcpsiem {
                write!(f, "\n      only mcpsiem, e.g. {e}")?;
            }
            if let Some(e) = &d.example_only_rsigma {
                write!(f, "\n      only rsigma, e.g. {e}")?;
            }
        }
        Ok(())
    }
}
