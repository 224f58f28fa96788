//! First-seen rules, our own rule type for what Sigma cannot say: alert when a value (or a
//! combination of values) appears for the first time, after a learning period.
//!
//! ```yaml
//! title: Token used from a new client address
//! id: 6c0d…
//! first_seen:
//!   rules: [mcp-token-use]          # or an inline `detection:` in the same document
//!   group-by: [auth.token.fingerprint]
//!   fields: [client.address]
//!   learning: 1d
//! level: high
//! ```
//!
//! With `group-by`, a value is new for its group, and a group seen for the first time is
//! learned silently (a brand-new token is not "a token from a new address").

use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::correlation::parse_timespan;
use super::document::strings;
use super::meta::RuleMeta;
use super::problem::DocProblem;

#[derive(Clone, Debug, serde::Serialize)]
pub struct FirstSeenRule {
    pub meta: RuleMeta,
    /// Referenced detection rules; empty when the document has its own detection.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub fields: Vec<String>,
    /// No alerts until this long after the first event the rule saw.
    pub learning: Duration,
}

pub fn parse(doc: &Mapping, meta: RuleMeta) -> Result<FirstSeenRule, DocProblem> {
    let section = doc
        .get("first_seen")
        .and_then(Value::as_mapping)
        .ok_or_else(|| DocProblem::invalid("`first_seen` must be a mapping"))?;
    let rules = strings(section.get("rules"));
    if rules.is_empty() && !doc.contains_key("detection") {
        return Err(DocProblem::invalid("a first_seen rule needs `rules` or its own `detection`"));
    }
    let fields = strings(section.get("fields"));
    if fields.is_empty() {
        return Err(DocProblem::invalid("a first_seen rule needs `fields`: the values whose first appearance alerts"));
    }
    let learning = match section.get("learning").and_then(Value::as_str) {
        None => Duration::from_secs(86_400),
        Some("0" | "0s") => Duration::ZERO,
        Some(text) => parse_timespan(text)
            .ok_or_else(|| DocProblem::invalid(format!("learning `{text}`: write a number and s, m, h or d")))?,
    };
    Ok(FirstSeenRule { meta, rules, group_by: strings(section.get("group-by")), fields, learning })
}
