//! What can be wrong with a rule file, located by file and line.

use std::fmt;
use std::path::PathBuf;

/// Whether a rule is wrong, or right but beyond what the detector evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file or rule is invalid: fix it.
    Invalid,
    /// Valid Sigma that this detector does not evaluate; the rule is skipped.
    Unsupported,
    /// Loaded, but worth a look (for example a keyword selection, which is slow).
    Warning,
}

/// One problem, as `rules check` prints it: `file:line: kind: reason`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleProblem {
    pub file: PathBuf,
    /// 1-based line of the document or of the offending key.
    pub line: usize,
    /// The rule's title or id when it was read that far.
    pub rule: Option<String>,
    pub kind: ProblemKind,
    pub reason: String,
}

impl RuleProblem {
    /// True when the rule it names was not loaded.
    pub fn skips_rule(&self) -> bool {
        self.kind != ProblemKind::Warning
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ProblemKind::Invalid => "error",
            ProblemKind::Unsupported => "unsupported",
            ProblemKind::Warning => "warning",
        };
        write!(f, "{}:{}: {kind}: ", self.file.display(), self.line)?;
        if let Some(rule) = &self.rule {
            write!(f, "rule `{rule}`: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// A problem before it is tied to a file: a line inside the document (0 when unknown) and
/// the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocProblem {
    pub kind: ProblemKind,
    pub line_in_doc: usize,
    pub reason: String,
}

impl DocProblem {
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self { kind: ProblemKind::Invalid, line_in_doc: 0, reason: reason.into() }
    }
    pub fn unsupported(reason: impl Into<String>) -> Self {
        Self { kind: ProblemKind::Unsupported, line_in_doc: 0, reason: reason.into() }
    }
    pub fn warning(reason: impl Into<String>) -> Self {
        Self { kind: ProblemKind::Warning, line_in_doc: 0, reason: reason.into() }
    }
    pub fn at(mut self, line_in_doc: usize) -> Self {
        self.line_in_doc = line_in_doc;
        self
    }
}
