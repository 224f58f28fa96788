//! Sigma filters: a `filter:` document names rules and a detection; a match of those rules
//! stands only when the filter's condition holds for the event (usually `not selection`,
//! to exclude known-good activity without editing the rule).

use serde_norway::{Mapping, Value};

use super::detection::{self, DetectionRule, NamedLists};
use super::document::YamlDocument;
use super::meta::RuleMeta;
use super::problem::DocProblem;

pub struct FilterRule {
    /// The rules it applies to, by id or name.
    pub rules: Vec<String>,
    /// Its selections and condition, evaluated like a detection rule.
    pub detection: DetectionRule,
}

pub fn compile(
    document: &YamlDocument,
    doc: &Mapping,
    meta: RuleMeta,
    lists: &NamedLists,
) -> Result<(FilterRule, Vec<DocProblem>), DocProblem> {
    let section = doc
        .get("filter")
        .and_then(Value::as_mapping)
        .ok_or_else(|| DocProblem::invalid("`filter` must be a mapping"))?;
    let rules = super::document::strings(section.get("rules"));
    if rules.is_empty() {
        return Err(DocProblem::invalid("a filter needs `rules`: the ids or names of the rules it filters"));
    }
    let mut selections = section.clone();
    selections.remove("rules");
    let mut as_rule = doc.clone();
    as_rule.remove("filter");
    as_rule.insert(Value::from("detection"), Value::Mapping(selections));
    if !as_rule.contains_key("logsource") {
        as_rule.insert(Value::from("logsource"), serde_norway::from_str("product: mcp").expect("valid YAML"));
    }
    let (detection, warnings) = detection::compile(document, &as_rule, meta, lists)?;
    Ok((FilterRule { rules, detection }, warnings))
}
