//! Our events as sigma-rust sees them: the fields the loaded rules read, typed as the
//! schema documents them (strings, integers, booleans; timestamps as RFC 3339 text).

use std::collections::{BTreeSet, HashSet};

use mcpsiem_event::{FieldAccessor, FieldRef, McpEvent};
use sigma_rust::Event;

/// Which fields to copy into the sigma-rust event.
#[derive(Clone, Debug)]
pub enum FieldSelection {
    /// Only these (the union of the fields the rules read): most events have ~40 fields and
    /// rules read a handful, so this is much of the detector's speed. Model fields have their
    /// getters resolved; other names are looked for among the event's attributes, which are
    /// few, so thousands of names of rules about other products cost nothing per event.
    Only { model: Vec<(String, FieldAccessor)>, derived: Vec<&'static str>, attributes: HashSet<String> },
    /// Every field, when a rule has a keyword selection.
    All,
}

impl FieldSelection {
    pub fn only(fields: BTreeSet<String>) -> Self {
        let mut model = Vec::new();
        let mut derived = Vec::new();
        let mut attributes = HashSet::new();
        for name in fields {
            if let Some(getter) = McpEvent::accessor(&name) {
                model.push((name, getter));
            } else {
                if let Some(d) = DERIVED_FIELDS.iter().find(|d| **d == name) {
                    derived.push(*d);
                }
                attributes.insert(name);
            }
        }
        Self::Only { model, derived, attributes }
    }
}

/// Builds the sigma-rust event for `event`.
pub fn to_sigma_event(event: &McpEvent<'_>, selection: &FieldSelection, computed: &Derived<'_, '_>) -> Event {
    let mut out = Event::new();
    match selection {
        FieldSelection::Only { model, derived: derived_names, attributes } => {
            for (name, get) in model {
                if let Some(value) = get(event) {
                    insert(&mut out, name, value);
                }
            }
            for name in derived_names {
                if let Some(value) = computed.get(name) {
                    insert(&mut out, name, value);
                }
            }
            // After the derived fields: an attribute of the same name is what the event says.
            if !attributes.is_empty() {
                for (key, value) in &event.attributes.0 {
                    if attributes.contains(key.as_str()) {
                        insert(&mut out, key.as_str(), FieldRef::Json(value.as_ref()));
                    }
                }
            }
        }
        FieldSelection::All => {
            for (name, value) in event.fields() {
                insert(&mut out, name, value);
            }
            for name in DERIVED_FIELDS {
                if let Some(value) = computed.get(name) {
                    insert(&mut out, name, value);
                }
            }
        }
    }
    out
}

/// Adds `fields` (the fields keyword selections can match) to `out`.
pub fn insert_fields(out: &mut Event, fields: Vec<(&str, FieldRef<'_>)>) {
    for (name, value) in fields {
        insert(out, name, value);
    }
}

/// Fields computed from others, which Sigma cannot express: the hour (0 to 23, UTC) and
/// the ISO weekday (1 Monday to 7 Sunday, UTC) of the event time, for working-hours rules;
/// the token's identity (`mcpsiem_event::token::token_identity`: the fingerprint, else the
/// `jti`, else subject and client), for token rules that must also see gateway logs; the
/// token's lifetime (`exp` less `iat`, in seconds), for long-lived token rules; and
/// tool descriptions and results as a model reads them (`crate::normalize`), for injection
/// and poisoning rules.
pub const DERIVED_FIELDS: &[&str] = &[
    "event.time.hour",
    "event.time.weekday",
    "auth.token.identity",
    "auth.token.lifetime_seconds",
    "mcp.tool.description.normalized",
    "gen_ai.tool.call.result.normalized",
];

pub(crate) fn derived<'e>(event: &'e McpEvent<'_>, name: &str) -> Option<FieldRef<'e>> {
    use chrono::{Datelike, Timelike};
    match name {
        "event.time.hour" => Some(FieldRef::Int(i64::from(event.time.to_datetime().hour()))),
        "event.time.weekday" => Some(FieldRef::Int(i64::from(event.time.to_datetime().weekday().number_from_monday()))),
        "auth.token.identity" => mcpsiem_event::token::token_identity(event).map(|id| FieldRef::Text(id.into())),
        "auth.token.lifetime_seconds" => match (event.token_issued, event.token_expires) {
            (Some(issued), Some(expires)) => {
                Some(FieldRef::Int(expires.as_micros().saturating_sub(issued.as_micros()) / 1_000_000))
            }
            _ => None,
        },
        "mcp.tool.description.normalized" => {
            event.tool_description.as_deref().map(|text| FieldRef::Text(crate::normalize::normalize(text).into()))
        }
        "gen_ai.tool.call.result.normalized" => {
            event.tool_result.as_deref().map(|text| FieldRef::Text(crate::normalize::normalize(text).into()))
        }
        _ => None,
    }
}

/// The derived fields of one event, each computed at most once: the trigger index and the
/// sigma-rust event both read them, and normalising a tool result is not free.
pub struct Derived<'e, 'a> {
    event: &'e McpEvent<'a>,
    values: [std::cell::OnceCell<Option<FieldRef<'e>>>; DERIVED_FIELDS.len()],
}

impl<'e, 'a> Derived<'e, 'a> {
    pub fn new(event: &'e McpEvent<'a>) -> Self {
        Self { event, values: Default::default() }
    }

    /// The derived field `name`, or `None` when it is not one or the event lacks its inputs.
    pub fn get(&self, name: &str) -> Option<FieldRef<'e>> {
        let index = DERIVED_FIELDS.iter().position(|d| *d == name)?;
        self.values[index].get_or_init(|| derived(self.event, name)).clone()
    }
}

/// The value of `name` for `event`: a field of the event (an attribute of that name wins,
/// as in the sigma-rust event), else a derived field.
pub fn field_value<'e>(event: &'e McpEvent<'_>, name: &str) -> Option<FieldRef<'e>> {
    event.field(name).or_else(|| derived(event, name))
}

fn insert(out: &mut Event, name: &str, value: FieldRef<'_>) {
    match value {
        FieldRef::Text(text) => out.insert(name, text.into_owned()),
        FieldRef::Int(i) => out.insert(name, i),
        FieldRef::Bool(b) => out.insert(name, b),
        FieldRef::Time(t) => out.insert(name, t.to_string()),
        // sigma-rust does not match inside lists; the comma-joined text works with
        // `|contains` and with exact matches of one-element lists (the usual `aud`).
        FieldRef::List(items) => out.insert(name, items.join(",")),
        FieldRef::Json(raw) => match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(serde_json::Value::String(s)) => out.insert(name, s),
            Ok(serde_json::Value::Bool(b)) => out.insert(name, b),
            Ok(serde_json::Value::Number(n)) => match n.as_i64() {
                Some(i) => out.insert(name, i),
                None => out.insert(name, n.as_f64().unwrap_or_default()),
            },
            Ok(serde_json::Value::Null) => out.insert(name, None::<i32>),
            _ => out.insert(name, raw.get().to_string()),
        },
    }
}
