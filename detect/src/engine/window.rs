//! Correlation windows: per rule and group, the matches of the referenced rules within the
//! timespan, on event time.
//!
//! Windows slide: a condition is checked over the matches in `[t - timespan, t]` for the
//! match time `t` (a match exactly `timespan` before still counts). Conditions that can only
//! become true as matches arrive (`gt`, `gte`, temporal) fire at once; conditions with an
//! upper bound or an equality (`lt`, `lte`, `eq`, `neq`) are checked when the window that
//! starts at a group's first match has closed, that is when the watermark (the newest event
//! time less the allowed lateness) has passed its end. After firing, the matches used are
//! dropped so the next alert needs new matches.
//!
//! Invariant: each group's hits stay sorted by time; no hit is older than the watermark
//! less the timespan once `expire` ran.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use mcpsiem_event::Timestamp;

use crate::rules::{Bound, Condition, CorrelationRule, CorrelationType};

/// One match fed to a correlation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// Position of the matching rule in the correlation's `rules`.
    pub rule: usize,
    pub time: Timestamp,
    /// The correlation's `field` in the matching event, for the value types.
    pub value: Option<String>,
    pub event_ids: Vec<String>,
}

/// A correlation that fired for one group.
#[derive(Clone, Debug, PartialEq)]
pub struct Fired {
    pub group: Vec<String>,
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: u64,
    pub event_ids: Vec<String>,
}

/// What happened to a hit.
#[derive(Debug, PartialEq)]
pub enum Added {
    Kept(Option<Fired>),
    /// Older than the watermark less the timespan: it can join no open window.
    TooLate,
    /// The state is at its cap.
    Full,
}

pub struct WindowState {
    pub rule: CorrelationRule,
    span: i64,
    immediate: bool,
    groups: HashMap<Vec<String>, Vec<Hit>>,
    /// Each group by the time of its first hit: `advance` visits only the groups with hits
    /// about to leave every window, not all of them (a backlog moves the watermark on
    /// almost every event).
    by_first: BTreeSet<(i64, Vec<String>)>,
    entries: usize,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl WindowState {
    pub fn new(rule: CorrelationRule) -> Self {
        let immediate = match &rule.condition {
            Condition::Bounds(bounds) => bounds.iter().all(|b| b.is_lower()),
            Condition::Expr(_) | Condition::AllRules => true,
        };
        Self {
            span: micros(rule.timespan),
            rule,
            immediate,
            groups: HashMap::new(),
            by_first: BTreeSet::new(),
            entries: 0,
        }
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    fn first_time(&self, group: &[String]) -> Option<i64> {
        self.groups.get(group).and_then(|hits| hits.first()).map(|h| h.time.as_micros())
    }

    /// Keeps `by_first` in step after `group`'s hits changed (its first was `old_first`).
    fn reindex(&mut self, group: Vec<String>, old_first: Option<i64>) {
        let new_first = self.first_time(&group);
        if new_first == old_first {
            return;
        }
        if let Some(old) = old_first {
            self.by_first.remove(&(old, group.clone()));
        }
        match new_first {
            Some(new) => {
                self.by_first.insert((new, group));
            }
            None => {
                self.groups.remove(&group);
            }
        }
    }

    /// Adds a hit for `group`; returns what fired, if anything.
    pub fn add(&mut self, group: Vec<String>, hit: Hit, watermark: Timestamp, cap: usize) -> Added {
        if hit.time.as_micros() < watermark.as_micros().saturating_sub(self.span) {
            return Added::TooLate;
        }
        if self.entries >= cap {
            return Added::Full;
        }
        let old_first = self.first_time(&group);
        let t = hit.time;
        let hits = self.groups.entry(group.clone()).or_default();
        let at = hits.partition_point(|h| h.time <= t);
        hits.insert(at, hit);
        self.entries += 1;
        let mut outcome = Added::Kept(None);
        if self.immediate {
            // Windows that hold the new hit end at it or at a later hit within the timespan.
            let mut end = at;
            while end < hits.len() && hits[end].time.as_micros() <= t.as_micros().saturating_add(self.span) {
                let end_time = hits[end].time.as_micros();
                let start = hits.partition_point(|h| h.time.as_micros() < end_time.saturating_sub(self.span));
                if evaluate(&self.rule, &hits[start..=end]) {
                    let used: Vec<Hit> = hits.drain(start..=end).collect();
                    self.entries -= used.len();
                    outcome = Added::Kept(Some(fired(group.clone(), &used)));
                    break;
                }
                end += 1;
            }
        }
        self.reindex(group, old_first);
        outcome
    }

    /// Checks the deferred windows that closed before `watermark`, and forgets hits that can
    /// no longer be in any window.
    pub fn advance(&mut self, watermark: Timestamp) -> Vec<Fired> {
        let mut out = Vec::new();
        let horizon = watermark.as_micros().saturating_sub(self.span);
        // Both kinds of work concern exactly the groups whose first hit is before the
        // horizon: for immediate rules those hits expire, for deferred ones the window that
        // starts at the first hit has closed.
        while self.by_first.first().is_some_and(|(first, _)| *first < horizon) {
            let (first, group) = self.by_first.pop_first().expect("checked");
            let Some(hits) = self.groups.get_mut(&group) else { continue };
            if self.immediate {
                let keep_from = hits.partition_point(|h| h.time.as_micros() < horizon);
                self.entries -= keep_from;
                hits.drain(..keep_from);
            } else {
                while let Some(first) = hits.first() {
                    let window_end = first.time.as_micros().saturating_add(self.span);
                    if window_end >= watermark.as_micros() {
                        break;
                    }
                    let end = hits.partition_point(|h| h.time.as_micros() <= window_end);
                    let window: Vec<Hit> = hits.drain(..end).collect();
                    self.entries -= window.len();
                    if evaluate(&self.rule, &window) {
                        out.push(fired(group.clone(), &window));
                    }
                }
            }
            // Popped already: `reindex` puts the group back under its new first hit.
            self.by_first.insert((first, group.clone()));
            self.reindex(group, Some(first));
        }
        out
    }

    /// The open windows, for a snapshot or a rule reload.
    pub fn export(&self) -> Vec<(Vec<String>, Vec<Hit>)> {
        let mut groups: Vec<(Vec<String>, Vec<Hit>)> =
            self.groups.iter().map(|(group, hits)| (group.clone(), hits.clone())).collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups
    }

    /// Restores windows from [`WindowState::export`], keeping each group's hits in time order.
    pub fn import(&mut self, groups: Vec<(Vec<String>, Vec<Hit>)>) {
        for (group, mut hits) in groups {
            hits.sort_by_key(|h| h.time);
            let old_first = self.first_time(&group);
            self.entries += hits.len();
            let held = self.groups.entry(group.clone()).or_default();
            self.entries -= held.len();
            *held = hits;
            self.reindex(group, old_first);
        }
    }

    /// Checks every open window as if time ran out (the end of a replay).
    pub fn finish(&mut self) -> Vec<Fired> {
        self.advance(Timestamp::from_micros(i64::MAX))
    }
}

fn fired(group: Vec<String>, window: &[Hit]) -> Fired {
    let mut ids = Vec::new();
    for hit in window {
        ids.extend(hit.event_ids.iter().cloned());
    }
    Fired {
        group,
        first: window.first().map(|h| h.time).unwrap_or(Timestamp::from_micros(0)),
        last: window.last().map(|h| h.time).unwrap_or(Timestamp::from_micros(0)),
        count: window.len() as u64,
        event_ids: ids,
    }
}

fn numbers(window: &[Hit]) -> Vec<f64> {
    window.iter().filter_map(|h| h.value.as_deref().and_then(|v| v.trim().parse::<f64>().ok())).collect()
}

/// Nearest-rank percentile of `values` (0 to 100).
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    Some(values[rank.min(values.len()) - 1])
}

fn bounds_hold(bounds: &[Bound], value: f64) -> bool {
    bounds.iter().all(|b| b.holds(value))
}

/// Whether the correlation's condition holds over the hits of one window.
pub fn evaluate(rule: &CorrelationRule, window: &[Hit]) -> bool {
    if window.is_empty() {
        return false;
    }
    let present = |position: usize| window.iter().any(|h| h.rule == position);
    match rule.kind {
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            let ordered_ok = rule.kind == CorrelationType::Temporal || in_order(window, rule.rules.len());
            let condition_ok = match &rule.condition {
                Condition::AllRules => (0..rule.rules.len()).all(present),
                Condition::Expr(expr) => {
                    expr.eval(&|name: &str| rule.rules.iter().position(|r| r == name).is_some_and(present))
                }
                Condition::Bounds(bounds) => {
                    let distinct = (0..rule.rules.len()).filter(|p| present(*p)).count();
                    bounds_hold(bounds, distinct as f64)
                }
            };
            ordered_ok && condition_ok
        }
        _ => {
            let Condition::Bounds(bounds) = &rule.condition else { return false };
            let value = match rule.kind {
                CorrelationType::EventCount => window.len() as f64,
                CorrelationType::ValueCount => {
                    window.iter().filter_map(|h| h.value.as_deref()).collect::<BTreeSet<_>>().len() as f64
                }
                CorrelationType::ValueSum => numbers(window).iter().sum(),
                CorrelationType::ValueAvg => {
                    let values = numbers(window);
                    if values.is_empty() {
                        return false;
                    }
                    values.iter().sum::<f64>() / values.len() as f64
                }
                CorrelationType::ValuePercentile | CorrelationType::ValueMedian => {
                    match percentile(&mut numbers(window), rule.percentile.unwrap_or(50.0)) {
                        Some(v) => v,
                        None => return false,
                    }
                }
                CorrelationType::Temporal | CorrelationType::TemporalOrdered => unreachable!("handled above"),
            };
            bounds_hold(bounds, value)
        }
    }
}

/// True when the window holds rule 0, then rule 1 at or after it, … up to rule `n - 1`.
fn in_order(window: &[Hit], n: usize) -> bool {
    let mut next = 0;
    for hit in window {
        if next < n && hit.rule == next {
            next += 1;
        }
    }
    next == n
}
