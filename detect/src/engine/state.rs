//! Engine state that outlives a rule reload or the process: open correlation windows,
//! first-seen values, first-seen observations waiting for the watermark, and open alerts.
//! Each piece is tagged with its rule's key and digest, so it only ever returns to the very
//! same rule: a changed rule starts empty, an unchanged one keeps its windows.

use std::collections::BTreeMap;

use mcpsiem_event::Timestamp;
use serde::{Deserialize, Serialize};

use super::first_seen::FirstSeenState;
use super::window::Hit;
use super::{Engine, OpenAlert, PendingObservation};
use crate::rules::{RuleMeta, RuleSet};

/// Which rule a piece of state belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleTag {
    pub rule: String,
    pub digest: String,
}

impl RuleTag {
    fn of(meta: &RuleMeta) -> Self {
        Self { rule: meta.key().to_string(), digest: meta.digest.clone() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedWindows {
    #[serde(flatten)]
    pub tag: RuleTag,
    pub groups: Vec<(Vec<String>, Vec<Hit>)>,
}

#[derive(Serialize, Deserialize)]
pub struct SavedFirstSeen {
    #[serde(flatten)]
    pub tag: RuleTag,
    pub state: FirstSeenState,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedObservation {
    #[serde(flatten)]
    pub tag: RuleTag,
    pub time: Timestamp,
    pub event_id: String,
    pub group: Vec<String>,
    pub value: Vec<String>,
}

/// An alert repeats are folded into, by its rule and group.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedOpenAlert {
    pub rule: String,
    pub group: String,
    #[serde(flatten)]
    pub open: OpenAlert,
}

/// Everything an engine holds besides its rules and counters.
#[derive(Default, Serialize, Deserialize)]
pub struct EngineState {
    pub correlations: Vec<SavedWindows>,
    pub first_seen: Vec<SavedFirstSeen>,
    pub pending_first_seen: Vec<SavedObservation>,
    /// Snapshots before alerts folded repeats held only suppression times, without the
    /// alert they belong to: read and dropped (the next firing raises a new alert).
    #[serde(default, skip_serializing)]
    pub suppressions: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pub open_alerts: Vec<SavedOpenAlert>,
}

impl EngineState {
    /// Window entries, first-seen values and held observations.
    pub fn entries(&self) -> usize {
        self.correlations.iter().flat_map(|c| &c.groups).map(|(_, hits)| hits.len()).sum::<usize>()
            + self.first_seen.iter().map(|f| f.state.entries()).sum::<usize>()
            + self.pending_first_seen.len()
    }
}

/// What a restore kept and what it dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Restored {
    /// Rules whose state came back.
    pub rules_kept: usize,
    /// Rules whose state was dropped: they changed or are no longer loaded.
    pub rules_dropped: Vec<String>,
}

impl Engine {
    /// A copy of the state, for a snapshot or a reload.
    pub fn export_state(&self) -> EngineState {
        let correlations = self
            .correlations
            .iter()
            .map(|slot| SavedWindows { tag: RuleTag::of(&slot.state.rule.meta), groups: slot.state.export() })
            .filter(|saved| !saved.groups.is_empty())
            .collect();
        let first_seen = self
            .first_seen
            .iter()
            .map(|slot| SavedFirstSeen { tag: RuleTag::of(&slot.rule.meta), state: slot.state.clone() })
            .filter(|saved| saved.state.started.is_some())
            .collect();
        let mut pending: Vec<&PendingObservation> = self.pending_first_seen.iter().map(|p| &p.0).collect();
        pending.sort();
        let pending_first_seen = pending
            .into_iter()
            .map(|p| SavedObservation {
                tag: RuleTag::of(&self.first_seen[p.rule].rule.meta),
                time: p.time,
                event_id: p.event_id.clone(),
                group: p.group.clone(),
                value: p.value.clone(),
            })
            .collect();
        let mut open_alerts: Vec<SavedOpenAlert> = self
            .open
            .iter()
            .map(|((rule, group), open)| SavedOpenAlert {
                rule: rule.clone(),
                group: group.clone(),
                open: open.clone(),
            })
            .collect();
        open_alerts.sort_by(|a, b| (&a.rule, &a.group).cmp(&(&b.rule, &b.group)));
        EngineState { correlations, first_seen, pending_first_seen, suppressions: Vec::new(), open_alerts }
    }

    /// Puts saved state back into the rules it belongs to (same key, same digest); state of
    /// rules that changed or are gone is dropped and named in the answer.
    pub fn restore_state(&mut self, state: EngineState) -> Restored {
        let mut kept = std::collections::BTreeSet::new();
        let mut dropped = std::collections::BTreeSet::new();
        let correlation_index: BTreeMap<RuleTag, usize> =
            self.correlations.iter().enumerate().map(|(i, slot)| (RuleTag::of(&slot.state.rule.meta), i)).collect();
        let first_seen_index: BTreeMap<RuleTag, usize> =
            self.first_seen.iter().enumerate().map(|(i, slot)| (RuleTag::of(&slot.rule.meta), i)).collect();
        for saved in state.correlations {
            match correlation_index.get(&saved.tag) {
                Some(&i) => {
                    self.correlations[i].state.import(saved.groups);
                    kept.insert(saved.tag.rule);
                }
                None => {
                    dropped.insert(saved.tag.rule);
                }
            }
        }
        for saved in state.first_seen {
            match first_seen_index.get(&saved.tag) {
                Some(&i) => {
                    self.first_seen[i].state = saved.state;
                    kept.insert(saved.tag.rule);
                }
                None => {
                    dropped.insert(saved.tag.rule);
                }
            }
        }
        for saved in state.pending_first_seen {
            match first_seen_index.get(&saved.tag) {
                Some(&rule) => {
                    self.pending_first_seen.push(std::cmp::Reverse(PendingObservation {
                        time: saved.time,
                        event_id: saved.event_id,
                        rule,
                        group: saved.group,
                        value: saved.value,
                    }));
                    kept.insert(saved.tag.rule);
                }
                None => {
                    dropped.insert(saved.tag.rule);
                }
            }
        }
        // Open alerts come back whatever became of their rule: their id and repeats are
        // the alert's, which exists either way.
        for saved in state.open_alerts {
            let key = (saved.rule, saved.group);
            self.open_by_id.insert(saved.open.alert_id.clone(), key.clone());
            self.open.insert(key, saved.open);
        }
        let rules_dropped: Vec<String> = dropped.difference(&kept).cloned().collect();
        Restored { rules_kept: kept.len(), rules_dropped }
    }

    /// The same engine with new rules: unchanged rules keep their open windows and learned
    /// values; counters and the watermark's sources carry over.
    pub fn reload(self, rules: RuleSet) -> (Engine, Restored) {
        let state = self.export_state();
        let mut next = Engine::new(rules, self.config.clone());
        next.stats = self.stats;
        next.sources = self.sources;
        next.last_advance = self.last_advance;
        let restored = next.restore_state(state);
        (next, restored)
    }
}
