//! The detection rules of one event kind, indexed by their triggers
//! ([`crate::rules::trigger`]): per event, the rules worth evaluating.
//!
//! Rules whose trigger needs a field are listed under that field; the literals all rules
//! need in one field form one Aho-Corasick automaton, run once over the field's text for
//! every rule at once; keyword literals form one automaton run over every field. Rules
//! without a trigger are evaluated on every event. The candidates come out in rule order,
//! so alerts keep the order they have without the index.

use std::borrow::Cow;
use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use mcpsiem_event::{FieldAccessor, FieldRef, McpEvent};

use super::sigma_event::{DERIVED_FIELDS, Derived};
use crate::rules::trigger::{Atom, KeywordReach, Trigger, normalise};

/// Literals of one field (or of every field, for keywords) and the rules each one triggers.
struct Literals {
    matcher: AhoCorasick,
    rules: Vec<Vec<u32>>,
    /// Per literal: a keyword literal of some rule, which puts the field holding it into the
    /// evaluated event ([`crate::rules::trigger::KeywordReach`]).
    reach: Vec<bool>,
}

/// What a literal does: trigger rules, mark its field as reached by keywords, or both.
#[derive(Default)]
struct LiteralUse {
    rules: Vec<u32>,
    reach: bool,
}

impl Literals {
    fn build(by_literal: HashMap<String, LiteralUse>) -> Option<Self> {
        if by_literal.is_empty() {
            return None;
        }
        let mut entries: Vec<(String, LiteralUse)> = by_literal.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(entries.iter().map(|(literal, _)| literal.as_bytes()))
            .expect("literals are short ASCII strings, within the automaton's limits");
        let reach = entries.iter().map(|(_, used)| used.reach).collect();
        Some(Self { matcher, rules: entries.into_iter().map(|(_, used)| used.rules).collect(), reach })
    }

    /// Marks the rules `text` triggers; true when it holds a keyword literal.
    fn mark(&self, text: &str, marks: &mut Marks) -> bool {
        let folded = normalise(text);
        let haystack = folded.as_deref().unwrap_or(text);
        let mut reached = false;
        for found in self.matcher.find_overlapping_iter(haystack) {
            let literal = found.pattern().as_usize();
            reached |= self.reach[literal];
            for &rule in &self.rules[literal] {
                marks.set(rule);
            }
        }
        reached
    }
}

/// What the rules need of one field.
#[derive(Default)]
struct FieldNeeds {
    present: Vec<u32>,
    literals: HashMap<String, LiteralUse>,
}

struct FieldIndex {
    present: Vec<u32>,
    literals: Option<Literals>,
}

impl FieldIndex {
    fn from(needs: FieldNeeds) -> Self {
        Self { present: needs.present, literals: Literals::build(needs.literals) }
    }

    fn mark(&self, value: FieldRef<'_>, marks: &mut Marks) {
        for &rule in &self.present {
            marks.set(rule);
        }
        if let Some(literals) = &self.literals {
            literals.mark(&text_of(&value), marks);
        }
    }
}

/// A set of rule positions, read back in order.
struct Marks(Vec<u64>);

impl Marks {
    fn set(&mut self, rule: u32) {
        self.0[(rule / 64) as usize] |= 1 << (rule % 64);
    }

    fn get(&self, rule: u32) -> bool {
        self.0[(rule / 64) as usize] & (1 << (rule % 64)) != 0
    }

    fn positions(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (word_at, word) in self.0.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                out.push(word_at as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        out
    }
}

/// The text sigma-rust compares a value as: what [`super::sigma_event`] inserts, written as
/// sigma-rust writes non-string values.
fn text_of<'a>(value: &'a FieldRef<'_>) -> Cow<'a, str> {
    match value {
        FieldRef::Text(text) => Cow::Borrowed(text.as_ref()),
        FieldRef::Int(i) => Cow::Owned(i.to_string()),
        FieldRef::Bool(b) => Cow::Owned(b.to_string()),
        FieldRef::Time(t) => Cow::Owned(t.to_string()),
        FieldRef::List(items) => Cow::Owned(items.join(",")),
        FieldRef::Json(raw) => match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(serde_json::Value::String(s)) => Cow::Owned(s),
            Ok(serde_json::Value::Bool(b)) => Cow::Owned(b.to_string()),
            Ok(serde_json::Value::Number(n)) => Cow::Owned(match n.as_i64() {
                Some(i) => i.to_string(),
                None => n.as_f64().unwrap_or_default().to_string(),
            }),
            Ok(serde_json::Value::Null) => Cow::Borrowed(""),
            _ => Cow::Borrowed(raw.get()),
        },
    }
}

/// The index of one kind's rules.
pub struct RuleIndex {
    words: usize,
    always: Vec<u32>,
    model: Vec<(FieldAccessor, FieldIndex)>,
    derived: Vec<(&'static str, FieldIndex)>,
    attributes: HashMap<String, FieldIndex>,
    /// Keyword trigger literals, with the rules' keyword literals when there are any: one
    /// pass over every field gives both.
    keywords: Option<Literals>,
    /// The rules' keyword literals alone, when no trigger needs a keyword pass: run only
    /// when a rule that needs them is a candidate.
    reach_only: Option<Literals>,
    /// The rules whose keyword selections read only the fields holding their literals.
    needs_reach: Vec<u32>,
}

impl RuleIndex {
    /// Indexes rules by their triggers, in the order the candidates are to come out; the
    /// fields holding the literals of their keyword reach are listed in
    /// [`Candidates::keyword_fields`].
    pub fn new<'t>(rules: impl IntoIterator<Item = (&'t Trigger, &'t KeywordReach)>) -> Self {
        let mut always = Vec::new();
        let mut fields: HashMap<String, FieldNeeds> = HashMap::new();
        let mut keywords: HashMap<String, LiteralUse> = HashMap::new();
        let mut reach: HashMap<String, LiteralUse> = HashMap::new();
        let mut needs_reach = Vec::new();
        let mut count = 0u32;
        for (position, (trigger, keyword_reach)) in rules.into_iter().enumerate() {
            let position = position as u32;
            count = position + 1;
            if let KeywordReach::FieldsHolding(literals) = keyword_reach {
                needs_reach.push(position);
                for literal in literals {
                    reach.entry(literal.clone()).or_default().reach = true;
                }
            }
            let Trigger::AnyOf(atoms) = trigger else {
                always.push(position);
                continue;
            };
            for atom in atoms {
                match atom {
                    Atom::Present(field) => fields.entry(field.clone()).or_default().present.push(position),
                    Atom::Contains { field, text } => fields
                        .entry(field.clone())
                        .or_default()
                        .literals
                        .entry(text.clone())
                        .or_default()
                        .rules
                        .push(position),
                    Atom::AnyFieldContains(text) => keywords.entry(text.clone()).or_default().rules.push(position),
                }
            }
        }
        let reach_only = if keywords.is_empty() {
            Literals::build(reach)
        } else {
            for literal in reach.into_keys() {
                keywords.entry(literal).or_default().reach = true;
            }
            None
        };
        let mut index = Self {
            words: (count as usize).div_ceil(64),
            always,
            model: Vec::new(),
            derived: Vec::new(),
            attributes: HashMap::new(),
            keywords: Literals::build(keywords),
            reach_only,
            needs_reach,
        };
        let mut names: Vec<(String, FieldNeeds)> = fields.into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, needs) in names {
            if let Some(getter) = McpEvent::accessor(&name) {
                index.model.push((getter, FieldIndex::from(needs)));
            } else if let Some(derived) = DERIVED_FIELDS.iter().find(|d| **d == name) {
                index.derived.push((derived, FieldIndex::from(needs)));
            } else {
                index.attributes.insert(name, FieldIndex::from(needs));
            }
        }
        index
    }

    /// The positions of the rules whose trigger holds for `event`, in order, and the fields
    /// holding a keyword literal.
    #[cfg(test)]
    pub fn candidates<'e>(&self, event: &'e McpEvent<'_>) -> Candidates<'e> {
        self.candidates_with(event, &Derived::new(event))
    }

    /// Like `candidates`, reading derived fields from `computed` (shared with the sigma-rust
    /// event built next).
    pub fn candidates_with<'e>(&self, event: &'e McpEvent<'_>, computed: &Derived<'e, '_>) -> Candidates<'e> {
        if self.words == 0 {
            return Candidates::default();
        }
        let mut marks = Marks(vec![0; self.words]);
        for &rule in &self.always {
            marks.set(rule);
        }
        for (get, field) in &self.model {
            if let Some(value) = get(event) {
                field.mark(value, &mut marks);
            }
        }
        for (name, field) in &self.derived {
            if let Some(value) = computed.get(name) {
                field.mark(value, &mut marks);
            }
        }
        if !self.attributes.is_empty() {
            for (key, value) in &event.attributes.0 {
                if let Some(field) = self.attributes.get(key.as_str()) {
                    field.mark(FieldRef::Json(value.as_ref()), &mut marks);
                }
            }
        }
        let mut keyword_fields = Vec::new();
        let pass = match (&self.keywords, &self.reach_only) {
            (Some(keywords), _) => Some(keywords),
            (None, Some(reach)) if self.needs_reach.iter().any(|rule| marks.get(*rule)) => Some(reach),
            _ => None,
        };
        if let Some(keywords) = pass {
            for (name, value) in event.fields() {
                if keywords.mark(&text_of(&value), &mut marks) {
                    keyword_fields.push((name, value));
                }
            }
            for name in DERIVED_FIELDS {
                if let Some(value) = computed.get(name)
                    && keywords.mark(&text_of(&value), &mut marks)
                {
                    keyword_fields.push((*name, value));
                }
            }
        }
        Candidates { rules: marks.positions(), keyword_fields }
    }
}

/// What the index found for one event.
#[derive(Default)]
pub struct Candidates<'e> {
    /// The positions of the rules worth evaluating, in order.
    pub rules: Vec<u32>,
    /// The fields whose text holds a keyword literal of some rule: the only fields keyword
    /// selections with literals can match.
    pub keyword_fields: Vec<(&'e str, FieldRef<'e>)>,
}

#[cfg(test)]
mod tests {
    use mcpsiem_event::{EventId, EventKind, OwnedEvent, Text, Timestamp};

    use super::*;

    fn event() -> OwnedEvent {
        let mut event = McpEvent::new(EventId::new(), Timestamp::from_micros(0), EventKind::Message);
        event.method = Some(Text::from("tools/call".to_string()));
        event.tool_name = Some(Text::from("Read_File".to_string()));
        event.attributes.insert("vendor.note", &serde_json::json!("\u{212A}ey \u{017F}ecret"));
        event
    }

    fn contains(field: &str, text: &str) -> Atom {
        Atom::Contains { field: field.into(), text: text.into() }
    }

    #[test]
    fn only_rules_whose_trigger_holds_are_candidates() {
        let triggers = vec![
            Trigger::AnyOf(vec![contains("gen_ai.tool.name", "read_file")]),
            Trigger::AnyOf(vec![contains("gen_ai.tool.name", "write")]),
            Trigger::Always,
            Trigger::AnyOf(vec![Atom::Present("CommandLine".into())]),
            Trigger::AnyOf(vec![Atom::Present("mcp.method.name".into())]),
            Trigger::AnyOf(vec![]),
            // Folded text: the Kelvin sign reads as k, the long s as s.
            Trigger::AnyOf(vec![contains("vendor.note", "key secret")]),
            Trigger::AnyOf(vec![Atom::AnyFieldContains("ecret".into())]),
            Trigger::AnyOf(vec![Atom::AnyFieldContains("absent".into())]),
        ];
        let reach = KeywordReach::FieldsHolding(vec!["tools/".into(), "nowhere".into()]);
        let mut reaches = vec![KeywordReach::NoKeywords; triggers.len()];
        reaches[2] = reach;
        let index = RuleIndex::new(triggers.iter().zip(&reaches));
        let event = event();
        let found = index.candidates(&event);
        assert_eq!(found.rules, vec![0, 2, 4, 6, 7]);
        let reached: Vec<&str> = found.keyword_fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(reached, vec!["mcp.method.name"]);
    }

    #[test]
    fn many_rules_span_several_words() {
        let triggers: Vec<Trigger> = (0..200)
            .map(|i| if i % 70 == 0 { Trigger::Always } else { Trigger::AnyOf(vec![Atom::Present(format!("f{i}"))]) })
            .collect();
        let event = event();
        let none = vec![KeywordReach::NoKeywords; triggers.len()];
        let found = RuleIndex::new(triggers.iter().zip(&none)).candidates(&event);
        assert_eq!(found.rules, vec![0, 70, 140]);
        assert!(found.keyword_fields.is_empty());
        assert!(RuleIndex::new([]).candidates(&event).rules.is_empty());
    }

    #[test]
    fn keyword_fields_are_looked_for_only_when_a_rule_needs_them() {
        let triggers = [
            Trigger::AnyOf(vec![contains("gen_ai.tool.name", "read")]),
            Trigger::AnyOf(vec![Atom::Present("absent".into())]),
        ];
        let reaches = [KeywordReach::NoKeywords, KeywordReach::FieldsHolding(vec!["tools".into()])];
        let index = RuleIndex::new(triggers.iter().zip(&reaches));
        let event = event();
        let found = index.candidates(&event);
        assert_eq!(found.rules, vec![0]);
        assert!(found.keyword_fields.is_empty(), "the rule needing them is no candidate");
        let reaches = [KeywordReach::FieldsHolding(vec!["tools".into()]), KeywordReach::NoKeywords];
        let index = RuleIndex::new(triggers.iter().zip(&reaches));
        let found = index.candidates(&event);
        let reached: Vec<&str> = found.keyword_fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(reached, vec!["mcp.method.name"]);
    }
}
