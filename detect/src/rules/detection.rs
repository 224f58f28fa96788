//! Detection rules: the Sigma `detection` section, prepared for sigma-rust.
//!
//! sigma-rust evaluates the rule; this module first rewrites what it lacks: `|expand`
//! placeholders become the named lists of the configuration, regular expression flags
//! (`re|i`, `re|m`, `re|s`) become inline flags, and constructs it cannot evaluate (`neq`,
//! aggregations in the condition) are reported as unsupported instead of failing later.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;

use mcpsiem_event::EventKind;
use serde_norway::{Mapping, Value};

use super::document::YamlDocument;
use super::meta::RuleMeta;
use super::problem::DocProblem;
use super::trigger::{self, KeywordReach, Trigger};

/// Named value lists for `|expand` placeholders (`%approved_servers%`), from the
/// configuration's `[detect.lists]`.
pub type NamedLists = HashMap<String, Vec<String>>;

/// A detection rule ready to evaluate.
pub struct DetectionRule {
    pub meta: RuleMeta,
    pub sigma: sigma_rust::Rule,
    /// The event kinds its `logsource.category` selects; `None` for every kind.
    pub kinds: Option<Vec<EventKind>>,
    /// The fields its selections read, without modifiers.
    pub fields: BTreeSet<String>,
    /// The fields its keyword selections can match: keywords search every field's value, so
    /// those fields must be in the evaluated event too.
    pub keywords: KeywordReach,
    /// What an event must hold for the rule to have a chance: the engine's index.
    pub trigger: Trigger,
}

impl std::fmt::Debug for DetectionRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectionRule").field("meta", &self.meta).field("fields", &self.fields).finish()
    }
}

/// Reads `logsource`: product `mcp` (other products are not ours) and a category per kind.
pub fn read_logsource(doc: &Mapping) -> Result<Option<Vec<EventKind>>, DocProblem> {
    let Some(logsource) = doc.get("logsource") else {
        return Err(DocProblem::invalid("the rule has no `logsource`; use `logsource: {product: mcp}`"));
    };
    let Some(logsource) = logsource.as_mapping() else {
        return Err(DocProblem::invalid("`logsource` must be a mapping"));
    };
    match logsource.get("product").and_then(Value::as_str) {
        Some("mcp") | None => {}
        Some(other) => {
            return Err(DocProblem::unsupported(format!(
                "logsource product `{other}`: this detector sees MCP audit events only (product `mcp`)"
            )));
        }
    }
    match logsource.get("category").and_then(Value::as_str) {
        None => Ok(None),
        // The categories are the event kinds.
        Some(category) => match EventKind::parse(category) {
            Some(kind) => Ok(Some(vec![kind])),
            None => {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                Err(DocProblem::invalid(format!(
                    "unknown logsource category `{category}`; the categories are the event kinds: {}",
                    known.join(", ")
                )))
            }
        },
    }
}

/// Prepares and compiles the `detection` section of `doc`.
pub fn compile(
    document: &YamlDocument,
    doc: &Mapping,
    meta: RuleMeta,
    lists: &NamedLists,
) -> Result<(DetectionRule, Vec<DocProblem>), DocProblem> {
    let kinds = read_logsource(doc)?;
    let detection = doc
        .get("detection")
        .and_then(Value::as_mapping)
        .ok_or_else(|| DocProblem::invalid("`detection` must be a mapping of selections and a `condition`"))?;
    let mut prepared = Prepared {
        lists,
        document,
        fields: BTreeSet::new(),
        keywords: KeywordReach::NoKeywords,
        selection_triggers: Vec::new(),
    };
    let detection = prepared.detection(detection)?;
    let trigger = match detection.get("condition").and_then(Value::as_str) {
        Some(condition) => trigger::of_condition(condition, &prepared.selection_triggers),
        None => Trigger::Always,
    };
    let mut warnings = Vec::new();
    if prepared.keywords.has_keywords() {
        warnings.push(DocProblem::warning(
            "keyword selections search every field of every event and are slow; prefer field selections",
        ));
    }
    let mut doc = doc.clone();
    doc.insert(Value::from("detection"), Value::Mapping(detection));
    let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        serde_norway::from_value::<sigma_rust::Rule>(Value::Mapping(doc))
    }));
    let sigma = match parsed {
        Ok(Ok(rule)) => rule,
        Ok(Err(e)) => {
            let reason = e.to_string();
            let line = quoted_names(&reason).find_map(|name| document.line_of_key(&name)).unwrap_or(0);
            return Err(DocProblem::invalid(reason).at(line));
        }
        Err(_) => return Err(DocProblem::invalid("sigma-rust could not parse this rule (it panicked)")),
    };
    let rule = DetectionRule { meta, sigma, kinds, fields: prepared.fields, keywords: prepared.keywords, trigger };
    Ok((rule, warnings))
}

/// Names in single quotes in an error message, to find the line they are on.
fn quoted_names(message: &str) -> impl Iterator<Item = String> + '_ {
    message.split('\'').skip(1).step_by(2).map(|s| s.split('|').next().unwrap_or(s).to_string())
}

struct Prepared<'a> {
    lists: &'a NamedLists,
    document: &'a YamlDocument,
    fields: BTreeSet<String>,
    keywords: KeywordReach,
    /// Each selection's trigger, by selection name.
    selection_triggers: Vec<(String, Trigger)>,
}

impl Prepared<'_> {
    fn detection(&mut self, detection: &Mapping) -> Result<Mapping, DocProblem> {
        let mut out = Mapping::new();
        for (name, value) in detection {
            let name_text = name.as_str().unwrap_or_default();
            match name_text {
                "condition" => {
                    let conditions: Vec<&str> = match value {
                        Value::String(c) => vec![c.as_str()],
                        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
                        _ => return Err(DocProblem::invalid("`condition` must be a string or a list of strings")),
                    };
                    if conditions.iter().any(|c| c.contains('|')) {
                        return Err(DocProblem::unsupported(
                            "aggregations in the condition (`| count() …`, Sigma v1) are not supported; write a correlation rule",
                        )
                        .at(self.document.line_of_key("condition").unwrap_or(0)));
                    }
                    if conditions.len() > 1 {
                        // Several conditions mean "any of them" (Sigma v1); sigma-rust takes one.
                        let joined = conditions.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(" or ");
                        out.insert(name.clone(), Value::from(joined));
                    } else {
                        out.insert(name.clone(), value.clone());
                    }
                }
                "timeframe" => {
                    return Err(DocProblem::unsupported(
                        "`timeframe` belongs to Sigma v1 aggregations; write a correlation rule with `timespan`",
                    )
                    .at(self.document.line_of_key("timeframe").unwrap_or(0)));
                }
                _ => {
                    let selection = self.selection(name_text, value)?;
                    out.insert(name.clone(), selection);
                }
            }
        }
        Ok(out)
    }

    fn selection(&mut self, name: &str, value: &Value) -> Result<Value, DocProblem> {
        match value {
            Value::Mapping(map) => {
                let (map, trigger) = self.field_map(map)?;
                self.selection_triggers.push((name.to_string(), trigger));
                Ok(Value::Mapping(map))
            }
            Value::Sequence(items) if items.iter().all(Value::is_mapping) && !items.is_empty() => {
                let mut out = Vec::with_capacity(items.len());
                let mut triggers = Vec::with_capacity(items.len());
                for item in items {
                    let (map, trigger) = self.field_map(item.as_mapping().expect("checked"))?;
                    out.push(Value::Mapping(map));
                    triggers.push(trigger);
                }
                // A list of mappings matches when one of them does.
                self.selection_triggers.push((name.to_string(), Trigger::any(triggers)));
                Ok(Value::Sequence(out))
            }
            Value::Sequence(_) | Value::String(_) | Value::Number(_) => {
                self.keywords = std::mem::take(&mut self.keywords).join(&trigger::keyword_reach(value));
                self.selection_triggers.push((name.to_string(), trigger::of_keywords(value)));
                Ok(map_strings(value, &keyword_anywhere))
            }
            _ => Err(DocProblem::invalid(format!(
                "selection `{name}` must be a mapping, a list of mappings or keywords"
            ))
            .at(self.document.line_of_key(name).unwrap_or(0))),
        }
    }

    /// The rewritten mapping and its trigger (all of its fields must match).
    fn field_map(&mut self, map: &Mapping) -> Result<(Mapping, Trigger), DocProblem> {
        let mut out = Mapping::new();
        let mut triggers = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(key_text) = key.as_str() else {
                return Err(DocProblem::invalid(format!("field names must be strings, found {key:?}")));
            };
            let line = self.document.line_of_key(key_text.split('|').next().unwrap_or(key_text)).unwrap_or(0);
            let mut parts = key_text.split('|');
            let field = parts.next().unwrap_or_default().to_string();
            let mut modifiers: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
            let mut value = value.clone();
            if modifiers.iter().any(|m| m == "neq") {
                return Err(DocProblem::unsupported(format!(
                    "`{key_text}`: the `neq` modifier is not supported by sigma-rust; put the value in its own selection and use `and not` in the condition"
                ))
                .at(line));
            }
            if let Some(at) = modifiers.iter().position(|m| m == "expand") {
                modifiers.remove(at);
                value = self.expand(key_text, &value).map_err(|p| p.at(line))?;
            }
            if modifiers.iter().any(|m| m == "re") {
                let flags: String =
                    ["i", "m", "s"].iter().filter(|flag| modifiers.iter().any(|m| m == *flag)).copied().collect();
                modifiers.retain(|m| !matches!(m.as_str(), "i" | "m" | "s"));
                if !flags.is_empty() {
                    value = map_strings(&value, &|pattern| format!("(?{flags}){pattern}"));
                }
            }
            if modifiers.is_empty() && value.is_null() {
                // Sigma's `field: null` means "absent or null"; the decoder drops nulls, so
                // that is sigma-rust's `exists: false`.
                modifiers = vec!["exists".to_string()];
                value = Value::Bool(false);
            }
            if modifiers.iter().any(|m| m == "fieldref") {
                // The referenced fields must be copied into the evaluated event too.
                let referenced = match &value {
                    Value::Sequence(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                    other => other.as_str().map(str::to_owned).into_iter().collect::<Vec<_>>(),
                };
                self.fields.extend(referenced);
            }
            // Before the rewrite into a regex: the trigger reads the values' literals.
            triggers.push(trigger::of_field(&field, &modifiers, &value));
            // Two entries of one field (`f|startswith` and `f|contains`) would both become
            // `f|re`, one key: the second would replace the first. Such fields keep their own.
            let field_is_alone =
                map.keys().filter_map(Value::as_str).filter(|k| k.split('|').next() == Some(field.as_str())).count()
                    == 1;
            if field_is_alone && let Some(regex) = substring_as_regex(&modifiers, &value) {
                modifiers = vec!["re".to_string()];
                value = Value::from(regex);
            }
            if !field.is_empty() {
                self.fields.insert(field.clone());
            }
            let key = std::iter::once(field).chain(modifiers).collect::<Vec<_>>().join("|");
            out.insert(Value::from(key), value);
        }
        Ok((out, Trigger::all(triggers)))
    }

    /// Replaces `%name%` placeholders with the values of the named list.
    fn expand(&self, key: &str, value: &Value) -> Result<Value, DocProblem> {
        let items: Vec<&Value> = match value {
            Value::Sequence(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            let Some(text) = item.as_str() else {
                out.push(item.clone());
                continue;
            };
            match text.strip_prefix('%').and_then(|t| t.strip_suffix('%')) {
                Some(name) => {
                    let list = self.lists.get(name).ok_or_else(|| {
                        DocProblem::invalid(format!(
                            "`{key}` expands `%{name}%`, which is not a list of the configuration; define it under [detect.lists]"
                        ))
                    })?;
                    out.extend(list.iter().map(|v| Value::from(v.as_str())));
                }
                None => out.push(item.clone()),
            }
        }
        if out.is_empty() {
            // An empty list matches nothing; sigma-rust rejects empty value lists, so use a
            // value no field holds.
            out.push(Value::from("\u{0}mcpsiem-empty-list\u{0}"));
        }
        Ok(Value::Sequence(out))
    }
}

/// sigma-rust matches `contains`, `startswith` and `endswith` with a wildcard matcher that
/// lowercases the field char by char and shifts a buffer for every char, once per value:
/// on kilobytes of tool results that is most of the detector's time. The same test as one
/// case-insensitive regular expression (an alternation of the escaped values) runs on the
/// `regex` crate's literal search instead. Plain values (equality) go the same way. Only plain values are rewritten: wildcards,
/// escapes, `all`, `cased` and value transformations keep sigma-rust's own handling.
fn substring_as_regex(modifiers: &[String], value: &Value) -> Option<String> {
    let modifier = match modifiers {
        // A plain value is a case-insensitive equality: the same matcher, the same cost.
        [] => "equals",
        [modifier] => modifier.as_str(),
        _ => return None,
    };
    let values: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Sequence(items) => items.iter().map(Value::as_str).collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    if values.is_empty() || values.iter().any(|v| v.is_empty() || v.contains(['*', '?', '\\'])) {
        return None;
    }
    let alternation = values.iter().map(|v| regex::escape(v)).collect::<Vec<_>>().join("|");
    match modifier {
        "equals" => Some(format!("(?i)^(?:{alternation})$")),
        "contains" => Some(format!("(?i)(?:{alternation})")),
        "startswith" => Some(format!("(?i)^(?:{alternation})")),
        "endswith" => Some(format!("(?i)(?:{alternation})$")),
        _ => None,
    }
}

/// A keyword as a search anywhere in a value (`*keyword*`): how the Sigma specification's
/// keyword search is run by SigmaHQ's backends and by rsigma. sigma-rust alone matches a
/// keyword against whole values only, so `dir` missed "a file or directory".
fn keyword_anywhere(keyword: &str) -> String {
    // A wildcard more than needed changes nothing (`**` is `*`), so only the plain cases are
    // left alone: a leading `*`, and a trailing one not escaped as `\*`.
    let prefix = if keyword.starts_with('*') { "" } else { "*" };
    let suffix = if keyword.ends_with('*') && !keyword.ends_with("\\*") { "" } else { "*" };
    format!("{prefix}{keyword}{suffix}")
}

fn map_strings(value: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::from(f(s)),
        Value::Sequence(items) => Value::Sequence(items.iter().map(|v| map_strings(v, f)).collect()),
        other => other.clone(),
    }
}
