//! Loading rules from directory trees: every YAML document becomes a detection, filter,
//! correlation or first-seen rule, or a problem with its file and line. One bad rule never
//! stops the others from loading.

pub mod correlation;
pub mod detection;
pub mod document;
pub mod filter;
pub mod first_seen;
pub mod meta;
pub mod problem;
pub mod scope;
pub mod trigger;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

pub use correlation::{Bound, Condition, CorrelationRule, CorrelationType, RuleExpr};
pub use detection::{DetectionRule, NamedLists};
pub use filter::FilterRule;
pub use first_seen::FirstSeenRule;
pub use meta::{Level, RuleMeta};
pub use problem::{ProblemKind, RuleProblem};
pub use scope::RuleScope;

use document::{YamlDocument, split_documents};
use problem::DocProblem;

/// A first-seen rule and, when it has its own detection, that detection.
pub struct FirstSeenEntry {
    pub rule: FirstSeenRule,
    pub inline: Option<DetectionRule>,
}

/// Every loaded rule.
#[derive(Default)]
pub struct RuleSet {
    pub detections: Vec<DetectionRule>,
    pub filters: Vec<FilterRule>,
    pub correlations: Vec<CorrelationRule>,
    pub first_seen: Vec<FirstSeenEntry>,
}

impl RuleSet {
    pub fn len(&self) -> usize {
        self.detections.len() + self.correlations.len() + self.first_seen.len() + self.filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn names_a_rule(&self, reference: &str) -> bool {
        self.detections.iter().any(|r| r.meta.is_named(reference))
            || self.correlations.iter().any(|r| r.meta.is_named(reference))
    }
}

/// The rules loaded and the problems found.
pub struct LoadReport {
    pub rules: RuleSet,
    pub problems: Vec<RuleProblem>,
    pub files: usize,
}

impl LoadReport {
    /// Problems that skipped a rule (errors and unsupported constructs), not warnings.
    pub fn skipped(&self) -> usize {
        self.problems.iter().filter(|p| p.skips_rule()).count()
    }
}

/// True for files that hold rules: YAML, except the rule pack's test event files.
/// The entry of `detect.rules` that stands for the rule pack built into the binary (the
/// checkout's `rules/` when it was built); its files are named `builtin:<path>`.
pub const BUILTIN: &str = "builtin:";

mod builtin_pack {
    include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
}

/// The files of the built-in pack, as paths named `builtin:<path>`.
pub fn builtin_files() -> impl Iterator<Item = PathBuf> {
    builtin_pack::FILES.iter().map(|(name, _)| PathBuf::from(format!("{BUILTIN}{name}")))
}

/// The text of a rule or test file: from the built-in pack for `builtin:` paths, else from disk.
pub fn read_rule_text(path: &Path) -> std::io::Result<std::borrow::Cow<'static, str>> {
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix(BUILTIN)) {
        return builtin_pack::FILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| std::borrow::Cow::Borrowed(*text))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not in the built-in rule pack"));
    }
    std::fs::read_to_string(path).map(std::borrow::Cow::Owned)
}

fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    (name.ends_with(".yml") || name.ends_with(".yaml")) && !name.contains(".tests.")
}

/// Every rule file under `paths` (files or directories), sorted for a stable load order.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RuleProblem> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        if path.as_os_str() == BUILTIN {
            files.extend(builtin_files().filter(|f| is_rule_file(f)));
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| RuleProblem {
            file: path.clone(),
            line: 0,
            rule: None,
            kind: ProblemKind::Invalid,
            reason: format!("cannot read the rule path: {e}"),
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|e| RuleProblem {
                file: path.clone(),
                line: 0,
                rule: None,
                kind: ProblemKind::Invalid,
                reason: format!("cannot list the rule directory: {e}"),
            })?;
            for entry in entries.flatten() {
                let child = entry.path();
                let hidden = child.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
                if !hidden {
                    if child.is_dir() {
                        pending.push(child);
                    } else if is_rule_file(&child) {
                        files.push(child);
                    }
                }
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every rule under `paths`.
pub fn load(paths: &[PathBuf], lists: &NamedLists) -> LoadReport {
    let mut rules = RuleSet::default();
    let mut problems = Vec::new();
    let files = match rule_files(paths) {
        Ok(files) => files,
        Err(problem) => {
            problems.push(problem);
            Vec::new()
        }
    };
    for file in &files {
        match read_rule_text(file) {
            Ok(text) => load_text(file, &text, lists, &mut rules, &mut problems),
            Err(e) => problems.push(RuleProblem {
                file: file.clone(),
                line: 0,
                rule: None,
                kind: ProblemKind::Invalid,
                reason: format!("cannot read the file: {e}"),
            }),
        }
    }
    resolve_references(&mut rules, &mut problems);
    LoadReport { rules, problems, files: files.len() }
}

/// Loads the rules of one file's text into `rules`.
pub fn load_text(file: &Path, text: &str, lists: &NamedLists, rules: &mut RuleSet, problems: &mut Vec<RuleProblem>) {
    for document in split_documents(text) {
        let mut title = None;
        let outcome = load_document(file, &document, lists, rules, &mut title);
        let located = |problem: DocProblem, title: &Option<String>| RuleProblem {
            file: file.to_owned(),
            line: document.first_line + problem.line_in_doc.saturating_sub(1),
            rule: title.clone(),
            kind: problem.kind,
            reason: problem.reason,
        };
        match outcome {
            Ok(warnings) => problems.extend(warnings.into_iter().map(|w| located(w, &title))),
            Err(problem) => problems.push(located(problem, &title)),
        }
    }
}

fn load_document(
    file: &Path,
    document: &YamlDocument,
    lists: &NamedLists,
    rules: &mut RuleSet,
    title: &mut Option<String>,
) -> Result<Vec<DocProblem>, DocProblem> {
    let value: Value = serde_norway::from_str(&document.text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        DocProblem::invalid(format!("not valid YAML: {e}")).at(line)
    })?;
    let Value::Mapping(doc) = value else {
        return Err(DocProblem::invalid("a rule document must be a YAML mapping"));
    };
    *title = doc.get("title").and_then(Value::as_str).map(str::to_owned);
    if doc.contains_key("action") {
        return Err(DocProblem::unsupported(
            "rule collections with `action` (global, reset, repeat; Sigma v1) are not supported; write each rule in full",
        ));
    }
    let meta = RuleMeta::read(&doc, file.to_owned(), document.first_line)?;
    check_unique(rules, &meta, document)?;
    if doc.contains_key("correlation") {
        rules.correlations.push(correlation::parse(&doc, meta).map_err(|p| locate(p, document, "correlation"))?);
        Ok(Vec::new())
    } else if doc.contains_key("filter") {
        let (filter, warnings) = filter::compile(document, &doc, meta, lists)?;
        rules.filters.push(filter);
        Ok(warnings)
    } else if doc.contains_key("first_seen") {
        let rule = first_seen::parse(&doc, meta.clone()).map_err(|p| locate(p, document, "first_seen"))?;
        let (inline, warnings) = if doc.contains_key("detection") {
            let (detection, warnings) = detection::compile(document, &doc, meta, lists)?;
            (Some(detection), warnings)
        } else {
            (None, Vec::new())
        };
        rules.first_seen.push(FirstSeenEntry { rule, inline });
        Ok(warnings)
    } else if doc.contains_key("detection") {
        let (rule, warnings) = detection::compile(document, &doc, meta, lists)?;
        rules.detections.push(rule);
        Ok(warnings)
    } else {
        Err(DocProblem::invalid("not a rule: it has no `detection`, `correlation`, `filter` or `first_seen` section"))
    }
}

fn locate(problem: DocProblem, document: &YamlDocument, key: &str) -> DocProblem {
    if problem.line_in_doc == 0 {
        let line = document.line_of_key(key).unwrap_or(0);
        problem.at(line)
    } else {
        problem
    }
}

fn check_unique(rules: &RuleSet, meta: &RuleMeta, document: &YamlDocument) -> Result<(), DocProblem> {
    let taken = |key: &str| {
        rules
            .detections
            .iter()
            .map(|r| &r.meta)
            .chain(rules.correlations.iter().map(|r| &r.meta))
            .find(|m| m.is_named(key))
    };
    for (what, key) in [("id", &meta.id), ("name", &meta.name)] {
        if let Some(key) = key
            && let Some(other) = taken(key)
        {
            return Err(DocProblem::invalid(format!(
                "{what} `{key}` is already used by `{}` ({}:{})",
                other.title,
                other.file.display(),
                other.line
            ))
            .at(document.line_of_key(what).unwrap_or(0)));
        }
    }
    Ok(())
}

/// Drops correlation and first-seen rules that name rules which do not exist (or form a
/// cycle), reporting each.
fn resolve_references(rules: &mut RuleSet, problems: &mut Vec<RuleProblem>) {
    let report = |meta: &RuleMeta, reason: String| RuleProblem {
        file: meta.file.clone(),
        line: meta.line,
        rule: Some(meta.title.clone()),
        kind: ProblemKind::Invalid,
        reason,
    };
    // Fixed point: removing a correlation can orphan one that names it.
    loop {
        let mut dropped = None;
        for (index, correlation) in rules.correlations.iter().enumerate() {
            if let Some(missing) = correlation.rules.iter().find(|r| !rules.names_a_rule(r)) {
                dropped = Some((index, format!("it names rule `{missing}`, which is not loaded (by id or name)")));
                break;
            }
            if correlation.rules.iter().any(|r| correlation.meta.is_named(r)) {
                dropped = Some((index, "it names itself".to_string()));
                break;
            }
        }
        match dropped {
            Some((index, reason)) => {
                let correlation = rules.correlations.remove(index);
                problems.push(report(&correlation.meta, reason));
            }
            None => break,
        }
    }
    let mut cyclic = HashSet::new();
    for correlation in &rules.correlations {
        if reaches_itself(rules, correlation) {
            cyclic.insert(correlation.meta.key().to_string());
            problems.push(report(&correlation.meta, "its `rules` lead back to itself (a cycle)".into()));
        }
    }
    rules.correlations.retain(|c| !cyclic.contains(c.meta.key()));
    let mut kept = Vec::new();
    for entry in std::mem::take(&mut rules.first_seen) {
        match entry.rule.rules.iter().find(|r| !rules.names_a_rule(r)) {
            Some(missing) => problems.push(report(
                &entry.rule.meta,
                format!("it names rule `{missing}`, which is not loaded (by id or name)"),
            )),
            None => kept.push(entry),
        }
    }
    rules.first_seen = kept;
    for filter in &rules.filters {
        for missing in filter.rules.iter().filter(|r| !rules.detections.iter().any(|d| d.meta.is_named(r))) {
            problems.push(RuleProblem {
                kind: ProblemKind::Warning,
                ..report(
                    &filter.detection.meta,
                    format!("it filters rule `{missing}`, which is not a loaded detection rule"),
                )
            });
        }
    }
}

fn reaches_itself(rules: &RuleSet, start: &CorrelationRule) -> bool {
    let mut pending: Vec<&str> = start.rules.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    while let Some(name) = pending.pop() {
        if start.meta.is_named(name) {
            return true;
        }
        if !seen.insert(name) {
            continue;
        }
        if let Some(next) = rules.correlations.iter().find(|c| c.meta.is_named(name)) {
            pending.extend(next.rules.iter().map(String::as_str));
        }
    }
    false
}

/// Reads a rule document's mapping (for tools that inspect rules, like the README table).
pub fn parse_mapping(text: &str) -> Option<Mapping> {
    serde_norway::from_str::<Value>(text).ok().and_then(|v| v.as_mapping().cloned())
}
#[cfg(test)]
mod constructs_tests;

#[cfg(test)]
mod builtin_tests {
    use super::*;

    #[test]
    fn the_built_in_pack_is_the_checkouts_rules_directory() {
        let lists = NamedLists::default();
        let builtin = load(&[PathBuf::from(BUILTIN)], &lists);
        let directory = load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")], &lists);
        assert!(builtin.files >= 20, "{} files", builtin.files);
        assert_eq!(builtin.files, directory.files);
        assert_eq!(builtin.rules.len(), directory.rules.len());
        assert_eq!(builtin.problems.len(), directory.problems.len(), "{:?}", builtin.problems);
        assert!(read_rule_text(Path::new("builtin:no/such.yml")).is_err());
    }
}
