//! What every rule kind shares: identity, title, level, tags, and where it came from.

use std::path::PathBuf;

use serde_norway::{Mapping, Value};

use super::problem::DocProblem;

pub use mcpsiem_event::Level;

/// A rule's identity and description, as alerts and `rules/README.md` show them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleMeta {
    /// The Sigma `id` (a UUID); the rule's key when present.
    pub id: Option<String>,
    /// The Sigma `name`, which correlation rules may use instead of the id.
    pub name: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub level: Level,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub references: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
    /// A hash of the rule's meaning (its parsed YAML, so comments and layout do not count):
    /// on a reload, state is carried over only for rules whose digest is unchanged.
    #[serde(skip)]
    pub digest: String,
}

impl RuleMeta {
    /// The stable key of the rule: its id, else its name, else its title.
    pub fn key(&self) -> &str {
        self.id.as_deref().or(self.name.as_deref()).unwrap_or(&self.title)
    }

    /// True when `reference` (from a correlation's `rules`) names this rule.
    pub fn is_named(&self, reference: &str) -> bool {
        self.id.as_deref() == Some(reference) || self.name.as_deref() == Some(reference)
    }

    /// Reads the shared keys of a rule document.
    pub fn read(doc: &Mapping, file: PathBuf, line: usize) -> Result<Self, DocProblem> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let list = |key: &str| super::document::strings(doc.get(key));
        let title = text("title").ok_or_else(|| DocProblem::invalid("the rule has no `title`"))?;
        let level = match doc.get("level") {
            None => Level::default(),
            Some(Value::String(level)) => Level::parse(level).ok_or_else(|| {
                DocProblem::invalid(format!(
                    "unknown level `{level}`; use informational, low, medium, high or critical"
                ))
            })?,
            Some(other) => return Err(DocProblem::invalid(format!("`level` must be a string, found {other:?}"))),
        };
        Ok(Self {
            id: text("id"),
            name: text("name"),
            title,
            description: text("description"),
            level,
            tags: list("tags"),
            falsepositives: list("falsepositives"),
            references: list("references"),
            file,
            line,
            digest: digest(doc),
        })
    }
}

/// The digest of a rule document: its parsed form, serialized again, hashed.
fn digest(doc: &Mapping) -> String {
    let canonical = serde_norway::to_string(doc).unwrap_or_default();
    format!("{:032x}", crate::stable_hash::stable_hash(canonical.as_bytes()))
}
