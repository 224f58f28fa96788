//! The peer engine: `rsigma-eval` (Timescale's Sigma engine with correlations) on the same
//! rule pack and events, for `mcpsiem bench detect`. It measures rsigma's throughput and
//! compares its detection verdicts with ours, event by event and rule by rule.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use mcpsiem_detect::Engine;
use mcpsiem_detect::rules;
use rsigma_eval::{CorrelationConfig, CorrelationEngine, JsonEvent, TimestampFallback};
use rsigma_parser::SigmaCollection;
use serde::Serialize;

/// The rule pack as rsigma sees it, and what it could not take.
pub struct PeerRules {
    pub collection: SigmaCollection,
    /// `file:line: title: why` for each document left out.
    pub left_out: Vec<String>,
}

impl PeerRules {
    pub fn rules(&self) -> usize {
        self.collection.rules.len() + self.collection.correlations.len() + self.collection.filters.len()
    }
}

/// Every rule document rsigma can evaluate as it stands. Our first-seen rules are not Sigma;
/// `|expand` needs an rsigma pipeline holding the lists, which is left out to keep both
/// engines on rules with the same text.
pub fn peer_rules(paths: &[PathBuf]) -> Result<PeerRules> {
    let mut collection = SigmaCollection::new();
    let mut left_out = Vec::new();
    let files = rules::rule_files(paths).map_err(|p| anyhow::anyhow!("{p}"))?;
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for document in rules::document::split_documents(&text) {
            let Some(doc) = rules::parse_mapping(&document.text) else { continue };
            let title = doc.get("title").and_then(|t| t.as_str()).unwrap_or("?").to_string();
            let place = format!("{}:{}: {title}", file.display(), document.first_line);
            if doc.contains_key("first_seen") {
                left_out.push(format!("{place}: a first-seen rule (not Sigma)"));
                continue;
            }
            if document.text.contains("|expand") {
                left_out.push(format!("{place}: |expand needs an rsigma pipeline"));
                continue;
            }
            match rsigma_parser::parse_sigma_yaml(&document.text) {
                Ok(parsed) if parsed.errors.is_empty() => {
                    // rsigma refuses a whole collection for one rule it cannot compile.
                    let mut alone = SigmaCollection::new();
                    alone.rules.extend(parsed.rules.iter().cloned());
                    if let Err(e) = rsigma_eval::Engine::new().add_collection(&alone) {
                        left_out.push(format!("{place}: rsigma: {e}"));
                        continue;
                    }
                    collection.rules.extend(parsed.rules);
                    collection.correlations.extend(parsed.correlations);
                    collection.filters.extend(parsed.filters);
                }
                Ok(parsed) => left_out.push(format!("{place}: rsigma: {}", parsed.errors.join("; "))),
                Err(e) => left_out.push(format!("{place}: rsigma: {e}")),
            }
        }
    }
    // A correlation naming a rule left out cannot load in rsigma either.
    let known: Vec<String> = collection
        .rules
        .iter()
        .flat_map(|r| r.id.clone().into_iter().chain(r.name.clone()))
        .chain(collection.correlations.iter().flat_map(|c| c.id.clone().into_iter().chain(c.name.clone())))
        .collect();
    collection.correlations.retain(|c| {
        let missing = c.rules.iter().find(|r| !known.contains(r));
        if let Some(missing) = missing {
            left_out.push(format!("{}: names `{missing}`, which rsigma did not load", c.title));
        }
        missing.is_none()
    });
    Ok(PeerRules { collection, left_out })
}

pub fn correlation_engine(rules: &PeerRules) -> Result<CorrelationEngine> {
    let config = CorrelationConfig {
        timestamp_fields: vec!["event.time".to_string()],
        timestamp_fallback: TimestampFallback::Skip,
        max_state_entries: 2_000_000,
        ..CorrelationConfig::default()
    };
    let mut engine = CorrelationEngine::new(config);
    engine.add_collection(&rules.collection).map_err(|e| anyhow::anyhow!("rsigma refused the rule pack: {e}"))?;
    Ok(engine)
}

/// What rsigma raised over a corpus.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct PeerCounts {
    pub detections: u64,
    pub correlations: u64,
}

/// Runs rsigma over NDJSON lines as its own users would: parse, evaluate, correlate.
pub fn run(engine: &mut CorrelationEngine, lines: impl Iterator<Item = impl AsRef<[u8]>>) -> PeerCounts {
    let mut counts = PeerCounts::default();
    for line in lines {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(line.as_ref()) else { continue };
        for result in engine.process_event(&JsonEvent::borrow(&value)) {
            if result.is_correlation() {
                counts.correlations += 1;
            } else {
                counts.detections += 1;
            }
        }
    }
    counts
}

/// Where the two engines disagree on one rule.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Disagreement {
    pub rule: String,
    /// Events only mcpsiem matched, and only rsigma matched.
    pub only_mcpsiem: u64,
    pub only_rsigma: u64,
    /// One event of each side, for looking into it.
    pub example_only_mcpsiem: Option<String>,
    pub example_only_rsigma: Option<String>,
}

/// Detection verdicts of both engines on every event, per rule both loaded; rsigma's
/// matches count only on the event kinds the rule's logsource selects, as ours do.
pub fn compare_verdicts(
    ours: &Engine,
    peer: &PeerRules,
    lines: impl Iterator<Item = impl AsRef<[u8]>>,
) -> Result<(u64, Vec<Disagreement>)> {
    let mut detector = rsigma_eval::Engine::new();
    detector.add_collection(&peer.collection).map_err(|e| anyhow::anyhow!("rsigma refused the rule pack: {e}"))?;
    let shared: Vec<String> = peer.collection.rules.iter().filter_map(|r| r.id.clone()).collect();
    let mut by_rule: BTreeMap<String, Disagreement> = BTreeMap::new();
    let mut compared = 0u64;
    for line in lines {
        let line = line.as_ref();
        let Ok(event) = mcpsiem_event::parse_event(line, usize::MAX) else { continue };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        compared += 1;
        let mine = ours.detection_verdicts(&event);
        let theirs: Vec<String> = detector
            .evaluate(&JsonEvent::borrow(&value))
            .into_iter()
            .filter_map(|r| r.header.rule_id)
            .filter(|id| ours.evaluates(id, event.kind))
            .collect();
        for rule in &shared {
            let (a, b) = (mine.contains(rule), theirs.contains(rule));
            if a == b {
                continue;
            }
            let entry = by_rule
                .entry(rule.clone())
                .or_insert_with(|| Disagreement { rule: rule.clone(), ..Default::default() });
            let text = String::from_utf8_lossy(line).into_owned();
            if a {
                entry.only_mcpsiem += 1;
                entry.example_only_mcpsiem.get_or_insert(text);
            } else {
                entry.only_rsigma += 1;
                entry.example_only_rsigma.get_or_insert(text);
            }
        }
    }
    Ok((compared, by_rule.into_values().collect()))
}
