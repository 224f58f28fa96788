//! `mcpsiem bench detect --rules-dir …`: the detector's throughput as the rule set grows
//! from our pack to thousands of third-party rules, against rsigma and the naive
//! sigma-rust loop on the same rules and events, one core, same run.
//!
//! The extra rules (for example SigmaHQ's) are written about other products; with
//! `--rewrite-logsource` each one's `logsource` becomes `{product: mcp}` so that every
//! engine evaluates it on every event, the worst case. Only documents that both our loader
//! and rsigma accept are used, so all engines run the same rules.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mcpsiem_detect::rules::{self, NamedLists, RuleSet};
use mcpsiem_detect::{Engine, EngineConfig};
use serde::Serialize;

use crate::decode::NdjsonCorpus;

/// One rule document of the extra directories, as the engines will read it.
struct ExtraRule {
    order: u64,
    text: String,
}

/// The extra documents both engines accept, in a fixed order that mixes the directories
/// (a hash of the path), and how many were left out.
fn extra_rules(dirs: &[PathBuf], rewrite: bool, lists: &NamedLists) -> Result<(Vec<ExtraRule>, usize)> {
    let files = rules::rule_files(dirs).map_err(|p| anyhow::anyhow!("{p}"))?;
    let mut accepted = Vec::new();
    let mut left_out = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for (at, document) in rules::document::split_documents(&text).into_iter().enumerate() {
            let Some(mut doc) = rules::parse_mapping(&document.text) else {
                left_out += 1;
                continue;
            };
            if rewrite {
                let mut logsource = serde_norway::Mapping::new();
                logsource.insert("product".into(), "mcp".into());
                doc.insert("logsource".into(), serde_norway::Value::Mapping(logsource));
            }
            let text = if rewrite { serde_norway::to_string(&doc)? } else { document.text.clone() };
            if !accepted_by_both(&file, &text, lists) {
                left_out += 1;
                continue;
            }
            let mut hasher = DefaultHasher::new();
            (file.to_string_lossy(), at).hash(&mut hasher);
            accepted.push(ExtraRule { order: hasher.finish(), text });
        }
    }
    accepted.sort_by_key(|r| r.order);
    Ok((accepted, left_out))
}

fn accepted_by_both(file: &Path, text: &str, lists: &NamedLists) -> bool {
    let mut set = RuleSet::default();
    let mut problems = Vec::new();
    rules::load_text(file, text, lists, &mut set, &mut problems);
    // Only plain detection rules: correlations would name rules of other subsets.
    if problems.iter().any(|p| p.skips_rule()) || set.detections.len() != 1 || set.len() != 1 {
        return false;
    }
    let Ok(parsed) = rsigma_parser::parse_sigma_yaml(text) else { return false };
    if !parsed.errors.is_empty() || parsed.rules.len() != 1 {
        return false;
    }
    let mut alone = rsigma_parser::SigmaCollection::new();
    alone.rules.extend(parsed.rules);
    rsigma_eval::Engine::new().add_collection(&alone).is_ok() && sigma_rust::rule_from_yaml(text).is_ok()
}

/// Figures at one size of the rule set.
#[derive(Debug, Serialize)]
pub struct ScalePoint {
    /// Detection rules loaded (our pack's and the extra ones), plus the pack's others.
    pub detection_rules: usize,
    pub extra_rules: usize,
    pub load_seconds: f64,
    /// The bench process's resident memory growth while loading and indexing the rules.
    pub load_rss_bytes: u64,
    pub mcpsiem_events_per_sec: f64,
    pub rsigma_events_per_sec: f64,
    /// mcpsiem's throughput over rsigma's (target >= 2).
    pub mcpsiem_over_rsigma: f64,
    /// The same engine evaluating every rule on every event (no index), and the naive loop,
    /// measured on the first `baseline_events` events.
    pub unindexed_events_per_sec: f64,
    pub naive_events_per_sec: f64,
    pub baseline_events: usize,
    /// Events where the index changed a verdict (must be 0), of `baseline_events`.
    pub index_verdict_changes: u64,
    /// Rules whose verdicts differ from rsigma's on `baseline_events` events.
    pub rules_disagreeing_with_rsigma: usize,
    /// Detection rules the index let through per event, on average (of `detection_rules`).
    pub candidates_per_event: f64,
    /// Share of events copied whole for sigma-rust (a candidate had keyword selections).
    pub whole_copy_share: f64,
    /// The rules counted in `rules_disagreeing_with_rsigma`, each with an example event
    /// (in `--json`), for explaining them.
    pub disagreements: Vec<crate::rsigma::Disagreement>,
}

#[derive(Debug, Serialize)]
pub struct ScalingReport {
    pub events: usize,
    pub extra_rules_available: usize,
    pub extra_rules_left_out: usize,
    pub points: Vec<ScalePoint>,
}

impl std::fmt::Display for ScalingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "detect scaling: {} events, one core; extra rules usable {} (left out {}: not accepted by both engines)",
            self.events, self.extra_rules_available, self.extra_rules_left_out
        )?;
        writeln!(
            f,
            "  {:>6} {:>8} {:>8} {:>11} {:>11} {:>8} {:>11} {:>9} {:>8} {:>9} {:>10} {:>7}",
            "rules",
            "load s",
            "RSS MiB",
            "mcpsiem/s",
            "rsigma/s",
            "ratio",
            "no index/s",
            "naive/s",
            "changed",
            "vs rsigma",
            "cand/event",
            "whole %"
        )?;
        for p in &self.points {
            writeln!(
                f,
                "  {:>6} {:>8.2} {:>8.1} {:>11.0} {:>11.0} {:>7.2}x {:>11.0} {:>9.0} {:>8} {:>9} {:>10.1} {:>6.1}%",
                p.detection_rules,
                p.load_seconds,
                p.load_rss_bytes as f64 / (1 << 20) as f64,
                p.mcpsiem_events_per_sec,
                p.rsigma_events_per_sec,
                p.mcpsiem_over_rsigma,
                p.unindexed_events_per_sec,
                p.naive_events_per_sec,
                p.index_verdict_changes,
                p.rules_disagreeing_with_rsigma,
                p.candidates_per_event,
                p.whole_copy_share * 100.0
            )?;
        }
        write!(
            f,
            "  ratio = mcpsiem / rsigma events/s; no index and naive on the first {} events; changed = events whose verdicts the index changed; vs rsigma = rules whose verdicts differ from rsigma's; cand/event = rules evaluated per event; whole % = events copied whole for keyword rules",
            self.points.first().map_or(0, |p| p.baseline_events)
        )
    }
}

fn resident_bytes() -> u64 {
    crate::answers::memory_of(std::process::id(), "VmRSS:").unwrap_or(0)
}

pub struct ScalingOptions<'a> {
    pub pack: &'a [PathBuf],
    pub extra_dirs: &'a [PathBuf],
    pub rewrite_logsource: bool,
    /// Total rule counts to measure at (the pack's rules plus extra ones).
    pub sizes: &'a [usize],
    pub baseline_events: usize,
    pub work_dir: &'a Path,
}

pub fn detect_scaling(
    corpus: &NdjsonCorpus,
    lists: &NamedLists,
    options: &ScalingOptions<'_>,
) -> Result<ScalingReport> {
    let (extra, left_out) = extra_rules(options.extra_dirs, options.rewrite_logsource, lists)?;
    let pack_rules = rules::load(options.pack, lists).rules.detections.len();
    let lines: Vec<&[u8]> = corpus.lines.iter().map(|r| &corpus.bytes[r.clone()]).collect();
    let baseline = &lines[..options.baseline_events.min(lines.len())];
    let mut points = Vec::new();
    for &size in options.sizes {
        let extra_count = size.saturating_sub(pack_rules).min(extra.len());
        let dir = options.work_dir.join(format!("extra-{extra_count}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        for (i, rule) in extra[..extra_count].iter().enumerate() {
            std::fs::write(dir.join(format!("{i:05}.yml")), &rule.text)?;
        }
        let mut paths = options.pack.to_vec();
        paths.push(dir.clone());
        eprintln!("detect scaling: {} rules…", pack_rules + extra_count);

        let rss_before = resident_bytes();
        let started = Instant::now();
        let report = rules::load(&paths, lists);
        let mut engine = Engine::new(report.rules, EngineConfig::default());
        let load_seconds = started.elapsed().as_secs_f64();
        let load_rss_bytes = resident_bytes().saturating_sub(rss_before);
        let detection_rules = pack_rules + extra_count;

        let started = Instant::now();
        for line in &lines {
            let event = mcpsiem_event::parse_event(line, usize::MAX).expect("generated events decode");
            black_box(engine.process(&event));
        }
        black_box(engine.finish());
        let mcpsiem = started.elapsed();
        let events = engine.stats.events.max(1) as f64;
        let candidates_per_event = engine.stats.candidates as f64 / events;
        let whole_copy_share = engine.stats.whole_copies as f64 / events;
        let indexed = engine;

        let peer = crate::rsigma::peer_rules(&paths)?;
        let mut rsigma = crate::rsigma::correlation_engine(&peer)?;
        let started = Instant::now();
        black_box(crate::rsigma::run(&mut rsigma, lines.iter()));
        let rsigma_time = started.elapsed();

        let mut unindexed = Engine::new(rules::load(&paths, lists).rules, EngineConfig::default()).without_index();
        let started = Instant::now();
        for line in baseline {
            let event = mcpsiem_event::parse_event(line, usize::MAX).expect("generated events decode");
            black_box(unindexed.process(&event));
        }
        let unindexed_time = started.elapsed();

        let naive = naive_rules(&paths)?;
        let started = Instant::now();
        for line in baseline {
            let text = std::str::from_utf8(line).expect("generated events are UTF-8");
            let event = sigma_rust::event_from_json(text).expect("generated events are JSON objects");
            for rule in &naive {
                black_box(rule.is_match(&event));
            }
        }
        let naive_time = started.elapsed();

        let mut index_verdict_changes = 0;
        for line in baseline {
            let event = mcpsiem_event::parse_event(line, usize::MAX).expect("generated events decode");
            if indexed.detection_verdicts(&event) != unindexed.detection_verdicts(&event) {
                index_verdict_changes += 1;
            }
        }
        let (_, disagreements) = crate::rsigma::compare_verdicts(&indexed, &peer, baseline.iter())?;

        let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
        points.push(ScalePoint {
            detection_rules,
            extra_rules: extra_count,
            load_seconds,
            load_rss_bytes,
            mcpsiem_events_per_sec: per_sec(lines.len(), mcpsiem),
            rsigma_events_per_sec: per_sec(lines.len(), rsigma_time),
            mcpsiem_over_rsigma: rsigma_time.as_secs_f64() / mcpsiem.as_secs_f64().max(1e-9),
            unindexed_events_per_sec: per_sec(baseline.len(), unindexed_time),
            naive_events_per_sec: per_sec(baseline.len(), naive_time),
            baseline_events: baseline.len(),
            index_verdict_changes,
            rules_disagreeing_with_rsigma: disagreements.len(),
            disagreements,
            candidates_per_event,
            whole_copy_share,
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ScalingReport {
        events: lines.len(),
        extra_rules_available: extra.len(),
        extra_rules_left_out: left_out,
        points,
    })
}

fn naive_rules(paths: &[PathBuf]) -> Result<Vec<sigma_rust::Rule>> {
    crate::detect::naive_rules(paths)
}
