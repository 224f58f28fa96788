//! First-seen state: the groups and values a first-seen rule has learned.
//!
//! Invariant: a value alerts at most once, the first time it is seen for its group, and
//! never before the learning period (counted from the first event the rule saw) is over.

use std::collections::HashSet;

use mcpsiem_event::Timestamp;

use crate::rules::FirstSeenRule;

/// The answer for one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Known, still learning, or a new group (learned silently).
    Quiet,
    /// A new value for a known group after the learning period: alert.
    New,
    /// The state is at its cap: nothing was learned.
    Full,
}

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FirstSeenState {
    pub started: Option<Timestamp>,
    groups: HashSet<String>,
    values: HashSet<String>,
}

const SEPARATOR: char = '\u{1f}';

impl FirstSeenState {
    pub fn entries(&self) -> usize {
        self.groups.len() + self.values.len()
    }

    pub fn observe(
        &mut self,
        rule: &FirstSeenRule,
        time: Timestamp,
        group: &[String],
        value: &[String],
        cap: usize,
    ) -> Seen {
        let started = *self.started.get_or_insert(time);
        let group_key = group.join(&SEPARATOR.to_string());
        let mut value_key = group_key.clone();
        for v in value {
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
        let group_known = rule.group_by.is_empty() || !self.groups.insert(group_key);
        let learning_over = time.as_micros() >= started.as_micros().saturating_add(rule.learning.as_micros() as i64);
        if group_known && learning_over { Seen::New } else { Seen::Quiet }
    }
}
