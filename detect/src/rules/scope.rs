//! Which rules one detector instance runs when several share the events topic.
//!
//! Events are keyed in Kafka by who they belong to (`mcpsiem_runtime::kafka::KEY_FIELDS`: the
//! end user, else the token, else the session, else the client address), so every event of
//! one user, token, session or address lands in one partition, and so at one detector of
//! the group. A stateful rule that groups by one of those fields therefore sees all of its
//! group's events on one instance: it is *keyed*. A rule that groups by anything else (a
//! server, a tool) or by nothing needs every event: it is *global*, and runs on exactly one
//! instance (`detect.scope = "global"`, its own consumer group). Stateless detection rules
//! are keyed: each event is judged where it lands.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::RuleSet;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleScope {
    /// Every rule: one detector instance (or `mcpsiem up`).
    #[default]
    All,
    /// Detection rules and the stateful rules grouped by a partition key field: any number
    /// of instances in one consumer group.
    Keyed,
    /// Only the stateful rules grouped by other fields, and the detection rules they read:
    /// one instance, in a consumer group of its own.
    Global,
}

/// Fields that follow a partition key without being one: the token's identity is its
/// fingerprint, whose events are keyed by their user (the token's subject) or by the
/// fingerprint, or its `jti` or subject, whose events are keyed by that same subject.
const KEYED_DERIVED_FIELDS: [&str; 1] = ["auth.token.identity"];

/// True if a rule grouping by `group_by` sees each group's events on one instance.
pub fn is_keyed(group_by: &[String]) -> bool {
    group_by.iter().any(|field| {
        mcpsiem_runtime::kafka::KEY_FIELDS.contains(&field.as_str()) || KEYED_DERIVED_FIELDS.contains(&field.as_str())
    })
}

impl RuleSet {
    /// The rules of `scope`, and the titles of the stateful rules left out.
    pub fn scoped(self, scope: RuleScope) -> (RuleSet, Vec<String>) {
        if scope == RuleScope::All {
            return (self, Vec::new());
        }
        let RuleSet { detections, filters, correlations, first_seen } = self;
        let keep_stateful = |keyed: bool| if scope == RuleScope::Keyed { keyed } else { !keyed };
        let mut left_out = Vec::new();
        let mut kept_correlations = Vec::new();
        let mut dropped_references: Vec<String> = Vec::new();
        for rule in correlations {
            if keep_stateful(is_keyed(&rule.group_by)) {
                kept_correlations.push(rule);
            } else {
                dropped_references.extend(rule.rules.iter().cloned());
                left_out.push(rule.meta.title.clone());
            }
        }
        let mut kept_first_seen = Vec::new();
        for entry in first_seen {
            if keep_stateful(is_keyed(&entry.rule.group_by)) {
                kept_first_seen.push(entry);
            } else {
                dropped_references.extend(entry.rule.rules.iter().cloned());
                left_out.push(entry.rule.meta.title.clone());
            }
        }
        let kept_references: HashSet<String> = kept_correlations
            .iter()
            .flat_map(|r| r.rules.iter().cloned())
            .chain(kept_first_seen.iter().flat_map(|e| e.rule.rules.iter().cloned()))
            .collect();
        let referenced = |rule: &super::DetectionRule, names: &[String]| names.iter().any(|n| rule.meta.is_named(n));
        let kept_references: Vec<String> = kept_references.into_iter().collect();
        let detections = detections
            .into_iter()
            .filter(|rule| {
                let by_kept = referenced(rule, &kept_references);
                match scope {
                    // Standalone rules, and the ones a kept rule reads.
                    RuleScope::Keyed => by_kept || !referenced(rule, &dropped_references),
                    // Only what the global rules read: the keyed instances alert on the rest.
                    RuleScope::Global | RuleScope::All => by_kept,
                }
            })
            .collect();
        (RuleSet { detections, filters, correlations: kept_correlations, first_seen: kept_first_seen }, left_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack() -> RuleSet {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        let report = crate::rules::load(&[root], &Default::default());
        assert!(!report.rules.is_empty());
        report.rules
    }

    fn stateful_titles(rules: &RuleSet) -> Vec<String> {
        let mut titles: Vec<String> = rules
            .correlations
            .iter()
            .map(|r| r.meta.title.clone())
            .chain(rules.first_seen.iter().map(|e| e.rule.meta.title.clone()))
            .collect();
        titles.sort();
        titles
    }

    #[test]
    fn the_pack_splits_into_keyed_and_global_rules_with_nothing_lost_or_doubled() {
        let all = stateful_titles(&pack());
        let (keyed, left_out_of_keyed) = pack().scoped(RuleScope::Keyed);
        let (global, left_out_of_global) = pack().scoped(RuleScope::Global);
        let (keyed_titles, global_titles) = (stateful_titles(&keyed), stateful_titles(&global));
        let mut union: Vec<String> = keyed_titles.iter().chain(&global_titles).cloned().collect();
        union.sort();
        assert_eq!(union, all, "every stateful rule runs in exactly one scope");
        assert_eq!(left_out_of_keyed.len(), global_titles.len());
        assert_eq!(left_out_of_global.len(), keyed_titles.len());
        assert!(global_titles.contains(&"MCP tool changed after it was first seen (rug pull)".to_string()));
        assert!(global_titles.contains(&"MCP server seen for the first time".to_string()));
        assert!(keyed_titles.contains(&"MCP token used from a new client address".to_string()));
        // The global instance reads only what its rules need, and alerts on nothing else.
        assert!(global.detections.len() < keyed.detections.len());
        assert!(global.detections.iter().all(|d| {
            global.correlations.iter().flat_map(|c| c.rules.iter()).any(|n| d.meta.is_named(n))
                || global.first_seen.iter().flat_map(|e| e.rule.rules.iter()).any(|n| d.meta.is_named(n))
        }));
    }
}
