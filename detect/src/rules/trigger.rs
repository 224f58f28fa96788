//! What an event must hold for a detection rule to have a chance to match: its trigger.
//!
//! A trigger is a necessary condition, never a sufficient one: the rule can match an event
//! only if one of the trigger's atoms holds for it (a field is present, or a field's text
//! holds a literal the rule needs). The engine indexes rules by their atoms and evaluates a
//! rule only when an atom of it holds, so thousands of rules about fields our events never
//! carry cost nothing. A construct this module cannot bound gives [`Trigger::Always`]: the
//! rule is evaluated on every event of its kinds, as without the index.
//!
//! The conditions follow sigma-rust's evaluation (and our rewrites of it into regular
//! expressions): a field selection on a missing field is false unless it is `|exists: false`;
//! string values match through wildcard patterns whose literal runs, lowercased char by char
//! (or case-folded by the regex), must each appear in the value's text. So the longest
//! literal run of a value, in ASCII lowercase, must appear in the text of the field as
//! [`normalise`] folds it.

use serde_norway::Value;

/// One thing an event can show.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Atom {
    /// The field has a value, whatever it is.
    Present(String),
    /// The field's text, folded by [`normalise`], holds `text` (ASCII, lowercase, not empty).
    Contains { field: String, text: String },
    /// Some field's text holds `text`: a keyword selection.
    AnyFieldContains(String),
}

impl Atom {
    /// A rough share of events the atom holds for, to choose among the alternatives of an
    /// `and`: a present field says little, a long literal much.
    fn weight(&self) -> f64 {
        match self {
            Self::Present(_) => 1.0,
            Self::Contains { text, .. } | Self::AnyFieldContains(text) => 1.0 / (1.0 + text.len() as f64),
        }
    }
}

/// A necessary condition of a rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// No condition is known: the rule is evaluated on every event of its kinds.
    Always,
    /// One of the atoms must hold; none means the rule never matches.
    AnyOf(Vec<Atom>),
}

impl Trigger {
    fn weight(&self) -> f64 {
        match self {
            Self::Always => f64::INFINITY,
            Self::AnyOf(atoms) => atoms.iter().map(Atom::weight).sum(),
        }
    }

    /// All of `parts` must hold: any one part's trigger is necessary, so keep the most
    /// selective.
    pub fn all(parts: impl IntoIterator<Item = Trigger>) -> Trigger {
        parts.into_iter().min_by(|a, b| a.weight().total_cmp(&b.weight())).unwrap_or(Trigger::Always)
    }

    /// One of `parts` must hold: the union of their atoms, unknown if one is unknown.
    pub fn any(parts: impl IntoIterator<Item = Trigger>) -> Trigger {
        let mut atoms = Vec::new();
        for part in parts {
            match part {
                Trigger::Always => return Trigger::Always,
                Trigger::AnyOf(more) => atoms.extend(more),
            }
        }
        atoms.sort();
        atoms.dedup();
        Trigger::AnyOf(atoms)
    }
}

/// Folds a field's text the way the index compares it: ASCII letters lowercased, other
/// characters lowercased char by char (as sigma-rust does), and the long s, which the
/// regex's case folding equates with `s`, as `s`. Every match of sigma-rust or of a
/// case-insensitive regex on ASCII literals is then a substring match on the folded text.
/// `None` when the text is ASCII: the index then compares ASCII case-insensitively as is.
pub fn normalise(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            '\u{017F}' => out.push('s'),
            c => out.extend(c.to_lowercase()),
        }
    }
    Some(out)
}

/// The longest literal run of a Sigma string value, as sigma-rust's wildcard tokenizer reads
/// it (`*` and `?` split runs, a backslash escapes them), lowercased; `None` when no run is
/// usable (the value is only wildcards, or the run is not ASCII).
fn longest_literal(value: &str) -> Option<String> {
    let mut runs: Vec<String> = vec![String::new()];
    let mut escape = false;
    for c in value.chars() {
        match c {
            '*' | '?' if !escape => runs.push(String::new()),
            '\\' if !escape => escape = true,
            _ => {
                let run = runs.last_mut().expect("never empty");
                if escape && c != '*' && c != '?' && c != '\\' {
                    // A backslash before anything else is itself.
                    run.push('\\');
                }
                escape = false;
                run.push(c);
            }
        }
    }
    if escape {
        runs.last_mut().expect("never empty").push('\\');
    }
    let longest = runs.into_iter().max_by_key(String::len)?;
    (!longest.is_empty() && longest.is_ascii()).then(|| longest.to_ascii_lowercase())
}

/// The trigger of one `field|modifiers: value` entry of a selection, with the modifiers as
/// the rule wrote them (lowercase) after our `expand` and `null` rewrites.
pub fn of_field(field: &str, modifiers: &[String], value: &Value) -> Trigger {
    if field.is_empty() {
        return Trigger::Always;
    }
    let present = || Trigger::AnyOf(vec![Atom::Present(field.to_string())]);
    if modifiers.iter().any(|m| m == "exists") {
        return match value {
            Value::Bool(true) => present(),
            _ => Trigger::Always,
        };
    }
    let mut all = false;
    for modifier in modifiers {
        match modifier.as_str() {
            "contains" | "startswith" | "endswith" | "cased" => {}
            "all" => all = true,
            // Transformations (base64, windash, utf16), regular expressions, comparisons,
            // CIDR and field references: the field must be there, nothing more is cheap.
            _ => return present(),
        }
    }
    let values: Vec<&Value> = match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    let per_value = values.into_iter().map(|value| match value {
        Value::String(text) => match longest_literal(text) {
            Some(text) => Trigger::AnyOf(vec![Atom::Contains { field: field.to_string(), text }]),
            None => present(),
        },
        // Numbers, booleans and nulls compare whole values: the field must be there.
        _ => present(),
    });
    if all { Trigger::all(per_value) } else { Trigger::any(per_value) }
}

/// The longest literal run of one keyword (`None`: the keyword can match without one).
fn keyword_literal(keyword: &Value) -> Option<String> {
    let text = match keyword {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    longest_literal(&text)
}

fn keywords_of(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// The trigger of a keyword selection: one of its keywords in some field's text.
pub fn of_keywords(value: &Value) -> Trigger {
    Trigger::any(keywords_of(value).into_iter().map(|keyword| match keyword_literal(keyword) {
        Some(text) => Trigger::AnyOf(vec![Atom::AnyFieldContains(text)]),
        None => Trigger::Always,
    }))
}

/// The fields a keyword selection can match, read as its keywords' literals: a field whose
/// text holds none of them matches none of the keywords, whether the condition asks for
/// them or negates them, so the evaluated event need not carry it.
pub fn keyword_reach(value: &Value) -> KeywordReach {
    let literals: Option<Vec<String>> = keywords_of(value).into_iter().map(keyword_literal).collect();
    match literals {
        Some(literals) => KeywordReach::FieldsHolding(literals),
        None => KeywordReach::AnyField,
    }
}

/// Which fields of an event a rule's keyword selections can match.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum KeywordReach {
    /// The rule has no keyword selection.
    #[default]
    NoKeywords,
    /// Only fields whose text, folded by [`normalise`], holds one of these literals.
    FieldsHolding(Vec<String>),
    /// Any field: a keyword has no literal (it is only wildcards, or not ASCII).
    AnyField,
}

impl KeywordReach {
    /// The reach of a rule with both parts' keyword selections.
    pub fn join(self, other: &KeywordReach) -> KeywordReach {
        match (self, other) {
            (Self::AnyField, _) | (_, Self::AnyField) => Self::AnyField,
            (Self::NoKeywords, other) => other.clone(),
            (Self::FieldsHolding(mut mine), Self::FieldsHolding(theirs)) => {
                mine.extend(theirs.iter().cloned());
                mine.sort();
                mine.dedup();
                Self::FieldsHolding(mine)
            }
            (mine, Self::NoKeywords) => mine,
        }
    }

    pub fn has_keywords(&self) -> bool {
        !matches!(self, Self::NoKeywords)
    }
}

/// A condition of the `detection` section, parsed as sigma-rust parses it: `not` binds
/// tighter than `and`, `and` tighter than `or`; `1 of` and `all of` take a selection name
/// pattern (`*` wildcards) or `them`.
#[derive(Debug, PartialEq)]
enum Condition {
    Selection(String),
    OneOf(String),
    AllOf(String),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

#[derive(Debug, PartialEq, Clone)]
enum Token {
    Open,
    Close,
    Not,
    And,
    Or,
    OneOf(String),
    AllOf(String),
    Name(String),
}

fn tokens(condition: &str) -> Option<Vec<Token>> {
    let spaced = condition.replace('(', " ( ").replace(')', " ) ");
    let words: Vec<&str> = spaced.split_ascii_whitespace().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let word = words[at];
        let lower = word.to_ascii_lowercase();
        let next_is_of = words.get(at + 1).is_some_and(|w| w.eq_ignore_ascii_case("of"));
        let token = match lower.as_str() {
            "(" => Token::Open,
            ")" => Token::Close,
            "not" => Token::Not,
            "and" => Token::And,
            "or" => Token::Or,
            "1" | "all" if next_is_of => {
                let target = words.get(at + 2)?;
                if *target == "(" || *target == ")" {
                    return None;
                }
                at += 2;
                if lower == "1" { Token::OneOf(target.to_string()) } else { Token::AllOf(target.to_string()) }
            }
            _ => Token::Name(word.to_string()),
        };
        out.push(token);
        at += 1;
    }
    Some(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn expression(&mut self, min_power: u8, depth: usize) -> Option<Condition> {
        // Conditions are short; a deep one is not worth indexing and must not blow the stack.
        if depth > 64 {
            return None;
        }
        let mut left = match self.next()? {
            Token::Name(name) => Condition::Selection(name),
            Token::OneOf(pattern) => Condition::OneOf(pattern),
            Token::AllOf(pattern) => Condition::AllOf(pattern),
            Token::Open => {
                let inner = self.expression(0, depth + 1)?;
                if self.next()? != Token::Close {
                    return None;
                }
                inner
            }
            Token::Not => Condition::Not(Box::new(self.expression(3, depth + 1)?)),
            Token::Close | Token::And | Token::Or => return None,
        };
        loop {
            let power = match self.peek() {
                None | Some(Token::Close) => break,
                Some(Token::And) => 2,
                Some(Token::Or) => 1,
                Some(_) => return None,
            };
            if power < min_power {
                break;
            }
            let operator = self.next()?;
            let right = self.expression(power, depth + 1)?;
            left = if operator == Token::And {
                Condition::And(Box::new(left), Box::new(right))
            } else {
                Condition::Or(Box::new(left), Box::new(right))
            };
        }
        Some(left)
    }
}

fn parse(condition: &str) -> Option<Condition> {
    let mut parser = Parser { tokens: tokens(condition)?, at: 0 };
    let parsed = parser.expression(0, 0)?;
    (parser.at == parser.tokens.len()).then_some(parsed)
}

/// sigma-rust's selection name patterns: `*` for any run, everything else literal.
fn name_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The trigger of a rule: its condition over its selections' triggers. A condition this
/// parser does not read the way sigma-rust would gives [`Trigger::Always`].
pub fn of_condition(condition: &str, selections: &[(String, Trigger)]) -> Trigger {
    let Some(parsed) = parse(condition) else { return Trigger::Always };
    fn walk(condition: &Condition, selections: &[(String, Trigger)]) -> Trigger {
        let matching = |pattern: &str| -> Vec<Trigger> {
            let pattern = if pattern.eq_ignore_ascii_case("them") { "*" } else { pattern };
            selections.iter().filter(|(name, _)| name_matches(pattern, name)).map(|(_, t)| t.clone()).collect()
        };
        match condition {
            Condition::Selection(name) => {
                selections.iter().find(|(n, _)| n == name).map_or(Trigger::Always, |(_, trigger)| trigger.clone())
            }
            // `1 of` nothing is false: an empty union says so.
            Condition::OneOf(pattern) => Trigger::any(matching(pattern)),
            // `all of` nothing is true, which `all` of no parts (Always) says.
            Condition::AllOf(pattern) => Trigger::all(matching(pattern)),
            // A negation holds when its operand fails, which no atom of the operand shows.
            Condition::Not(_) => Trigger::Always,
            Condition::And(left, right) => Trigger::all([walk(left, selections), walk(right, selections)]),
            Condition::Or(left, right) => Trigger::any([walk(left, selections), walk(right, selections)]),
        }
    }
    walk(&parsed, selections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(field: &str, text: &str) -> Atom {
        Atom::Contains { field: field.into(), text: text.into() }
    }

    fn present(field: &str) -> Atom {
        Atom::Present(field.into())
    }

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn literal_runs_follow_sigma_rust_wildcards_and_escapes() {
        assert_eq!(longest_literal("Ignore*Previous"), Some("previous".into()));
        assert_eq!(longest_literal("a\\*b?cd"), Some("a*b".into()));
        assert_eq!(longest_literal("C:\\Windows\\x"), Some("c:\\windows\\x".into()));
        assert_eq!(longest_literal("*"), None);
        assert_eq!(longest_literal(""), None);
        assert_eq!(longest_literal("Größe"), None);
    }

    #[test]
    fn field_values_give_literals_or_presence() {
        let t = of_field("mcp.method", &[], &yaml("[tools/call, tools/list]"));
        assert_eq!(t, Trigger::AnyOf(vec![contains("mcp.method", "tools/call"), contains("mcp.method", "tools/list")]));
        let t = of_field("x", &["contains".into(), "all".into()], &yaml("[ab, abcdef]"));
        assert_eq!(t, Trigger::AnyOf(vec![contains("x", "abcdef")]));
        assert_eq!(of_field("x", &["re".into()], &yaml("'a.*b'")), Trigger::AnyOf(vec![present("x")]));
        assert_eq!(of_field("x", &[], &yaml("5")), Trigger::AnyOf(vec![present("x")]));
        assert_eq!(of_field("x", &["exists".into()], &yaml("true")), Trigger::AnyOf(vec![present("x")]));
        assert_eq!(of_field("x", &["exists".into()], &yaml("false")), Trigger::Always);
        assert_eq!(
            of_field("x", &["base64offset".into(), "contains".into()], &yaml("a")),
            Trigger::AnyOf(vec![present("x")])
        );
    }

    #[test]
    fn conditions_combine_selections_as_sigma_rust_parses_them() {
        let a = Trigger::AnyOf(vec![contains("a", "x")]);
        let b = Trigger::AnyOf(vec![contains("b", "longer")]);
        let f = Trigger::AnyOf(vec![present("f")]);
        let s = vec![("sel_a".to_string(), a.clone()), ("sel_b".to_string(), b.clone()), ("filter".to_string(), f)];
        assert_eq!(of_condition("sel_a and not filter", &s), a);
        assert_eq!(of_condition("sel_a and sel_b", &s), b);
        assert_eq!(of_condition("sel_a or sel_b", &s), Trigger::any([a.clone(), b.clone()]));
        assert_eq!(of_condition("1 of sel_*", &s), Trigger::any([a.clone(), b.clone()]));
        assert_eq!(of_condition("all of sel_*", &s), b);
        assert_eq!(of_condition("not filter", &s), Trigger::Always);
        assert_eq!(of_condition("1 of nothing*", &s), Trigger::AnyOf(vec![]));
        assert_eq!(of_condition("all of nothing*", &s), Trigger::Always);
        // `or` binds looser than `and`: a or (b and not f).
        assert_eq!(of_condition("sel_a or sel_b and not filter", &s), Trigger::any([a.clone(), b.clone()]));
        assert_eq!(of_condition("(sel_a or sel_b) and filter", &s), Trigger::any([a.clone(), b.clone()]));
        assert_eq!(of_condition("sel_a and (", &s), Trigger::Always);
        assert_eq!(of_condition("unknown", &s), Trigger::Always);
        assert_eq!(of_condition(&"(".repeat(500), &s), Trigger::Always);
    }

    #[test]
    fn keywords_search_every_field() {
        assert_eq!(
            of_keywords(&yaml("[evil, '*']")),
            Trigger::Always,
            "a keyword that is only a wildcard matches anything"
        );
        assert_eq!(of_keywords(&yaml("[Evil]")), Trigger::AnyOf(vec![Atom::AnyFieldContains("evil".into())]));
        assert_eq!(
            keyword_reach(&yaml("[Evil, '*x*', 42]")),
            KeywordReach::FieldsHolding(vec!["evil".into(), "x".into(), "42".into()])
        );
        assert_eq!(keyword_reach(&yaml("[evil, '*']")), KeywordReach::AnyField);
        let some = KeywordReach::FieldsHolding(vec!["b".into()]);
        assert_eq!(KeywordReach::NoKeywords.join(&some), some);
        assert_eq!(
            KeywordReach::FieldsHolding(vec!["c".into(), "b".into()]).join(&some),
            KeywordReach::FieldsHolding(vec!["b".into(), "c".into()])
        );
        assert_eq!(some.clone().join(&KeywordReach::AnyField), KeywordReach::AnyField);
    }

    #[test]
    fn folding_keeps_what_case_insensitive_matchers_equate() {
        assert_eq!(normalise("plain"), None);
        assert_eq!(normalise("I\u{017F}\u{212A}Ä").as_deref(), Some("iskä"));
        assert_eq!(normalise("\u{0130}x").as_deref(), Some("i\u{307}x"));
    }
}
