//! Splitting rule files into YAML documents, keeping each document's first line, since
//! sigma-rust parses one document per call and problems must point at a line.

use serde_norway::Value;

/// One YAML document of a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlDocument {
    /// 1-based line of the document's first line in its file.
    pub first_line: usize,
    pub text: String,
}

impl YamlDocument {
    /// The 1-based line in the document where `needle` first appears at the start of a
    /// key (after indentation, or after a list dash), to point problems at the right line.
    pub fn line_of_key(&self, needle: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|line| {
                let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
                trimmed.strip_prefix(needle).is_some_and(|rest| rest.starts_with(':') || rest.starts_with('|'))
            })
            .map(|i| i + 1)
    }
}

/// Splits a file into documents at `---` lines (and ends one at `...`); documents holding
/// only comments and blanks are dropped.
pub fn split_documents(text: &str) -> Vec<YamlDocument> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    let mut push = |current: &mut String, first_line: usize| {
        let meaningful = current.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if meaningful {
            documents.push(YamlDocument { first_line, text: std::mem::take(current) });
        } else {
            current.clear();
        }
    };
    for (index, line) in text.lines().enumerate() {
        let marker = line.split('#').next().unwrap_or("").trim_end();
        if marker == "---" || marker == "..." {
            push(&mut current, first_line);
            first_line = index + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    push(&mut current, first_line);
    documents
}

/// A YAML string or list of strings as a list (Sigma allows both for most list keys).
pub(crate) fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_markers_and_keeps_lines() {
        let text = "# header\n---\ntitle: a\n---\n# only a comment\n---\ntitle: b\nid: x\n...\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 3);
        assert_eq!(docs[0].text, "title: a\n");
        assert_eq!(docs[1].first_line, 7);
        assert_eq!(docs[1].line_of_key("id"), Some(2));
    }

    #[test]
    fn a_single_document_without_markers() {
        let docs = split_documents("title: a\ndetection:\n  sel:\n    a|contains: b\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[0].line_of_key("a"), Some(4));
    }
}
