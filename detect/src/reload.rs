//! Rule reload: noticing that rule files changed (or a SIGHUP), loading them again and
//! swapping them into the running engine without losing the windows of unchanged rules.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::config::DetectConfig;
use crate::engine::Engine;
use crate::rules;

/// The rule files and their modification stamps, to notice edits, additions and removals.
pub struct RuleWatch {
    paths: Vec<PathBuf>,
    stamps: Vec<(PathBuf, Option<SystemTime>, u64)>,
}

impl RuleWatch {
    pub fn new(paths: &[PathBuf]) -> Self {
        let mut watch = Self { paths: paths.to_vec(), stamps: Vec::new() };
        watch.stamps = watch.current();
        watch
    }

    fn current(&self) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
        let files = rules::rule_files(&self.paths).unwrap_or_default();
        files
            .into_iter()
            .map(|file| {
                let meta = std::fs::metadata(&file).ok();
                let modified = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (file, modified, len)
            })
            .collect()
    }

    /// True when a rule file was added, removed or changed since the last call.
    pub fn changed(&mut self) -> bool {
        let now = self.current();
        let changed = now != self.stamps;
        self.stamps = now;
        changed
    }
}

/// Loads the rules again and moves the engine onto them. A load that yields no rule at all
/// (an emptied directory, a bad mount) keeps the old rules: a detector with no rules
/// detects nothing, silently.
pub fn reload(engine: Engine, config: &DetectConfig) -> Engine {
    let report = rules::load(&config.rules, &config.lists);
    for problem in &report.problems {
        tracing::warn!(%problem, "rule problem");
    }
    if report.rules.is_empty() {
        tracing::error!(paths = ?config.rules, "rule reload found no rules; keeping the rules already loaded");
        metrics::counter!("mcpsiem_detect_reloads_total", "outcome" => "refused").increment(1);
        return engine;
    }
    let (scoped, _) = report.rules.scoped(config.scope);
    let rules = scoped.len();
    let (engine, restored) = engine.reload(scoped);
    tracing::info!(
        rules,
        skipped = report.problems.iter().filter(|p| p.skips_rule()).count(),
        state_kept_for = restored.rules_kept,
        state_dropped_for = ?restored.rules_dropped,
        "rules reloaded"
    );
    metrics::counter!("mcpsiem_detect_reloads_total", "outcome" => "done").increment(1);
    engine
}
