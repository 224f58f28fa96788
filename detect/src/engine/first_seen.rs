//! First-seen state: the groups and values a first-seen rule has learned.
//!
//! Invariant: a value alerts at most once, the first time it is seen for its group, and
//! never before the learning period (counted from the earliest event the rule saw) is over.
//! Values are decided when their event arrives. A group is learned silently with its
//! earliest value; when a late event turns out to precede the value a group was learned
//! with (partitions read in parallel deliver out of order), the roles swap: the late value
//! is the group's first and the one learned before is the new one, as a replay in event-time
//! order would have it. Swaps are possible while the learned value is newer than the
//! watermark.

use std::collections::{HashMap, HashSet};

use mcpsiem_event::Timestamp;

use crate::rules::FirstSeenRule;

/// One observation of a value: when, by which event, and the value itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    pub time: Timestamp,
    pub event_id: String,
    pub value: Vec<String>,
}

/// The answer for one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Known, still learning, or a new group (learned silently).
    Quiet,
    /// A new value for a known group after the learning period: alert on this observation
    /// (the event's own, or the one it displaced as its group's first).
    New(Observation),
    /// The state is at its cap: nothing was learned.
    Full,
}

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FirstSeenState {
    pub started: Option<Timestamp>,
    groups: HashSet<String>,
    values: HashSet<String>,
    /// The observation each group was learned with, while an earlier event may still come.
    #[serde(default)]
    recent_groups: HashMap<String, Observation>,
}

const SEPARATOR: char = '\u{1f}';

impl FirstSeenState {
    pub fn entries(&self) -> usize {
        self.groups.len() + self.values.len()
    }

    pub fn observe(&mut self, rule: &FirstSeenRule, group: &[String], observation: Observation, cap: usize) -> Seen {
        let time = observation.time;
        // The learning period counts from the earliest event time seen: an event that
        // arrives late can be older than the first one.
        let started = *self.started.get_or_insert(time);
        let started = if time < started {
            self.started = Some(time);
            time
        } else {
            started
        };
        let group_key = group.join(&SEPARATOR.to_string());
        let mut value_key = group_key.clone();
        for v in &observation.value {
            value_key.push(SEPARATOR);
            value_key.push_str(v);
        }
        if self.values.contains(&value_key) {
            return Seen::Quiet;
        }
        if self.entries() + 2 > cap {
            return Seen::Full;
        }
        self.values.insert(value_key);
        let candidate = if rule.group_by.is_empty() {
            observation
        } else if self.groups.insert(group_key.clone()) {
            self.recent_groups.insert(group_key, observation);
            return Seen::Quiet;
        } else {
            match self.recent_groups.get_mut(&group_key) {
                Some(first) if time < first.time => std::mem::replace(first, observation),
                _ => observation,
            }
        };
        let learning_over =
            candidate.time.as_micros() >= started.as_micros().saturating_add(rule.learning.as_micros() as i64);
        if learning_over { Seen::New(candidate) } else { Seen::Quiet }
    }

    /// Forgets the learned-with observations the watermark passed: no event can precede
    /// them any more.
    pub fn settle(&mut self, watermark: Timestamp) {
        self.recent_groups.retain(|_, first| first.time > watermark);
    }
}
