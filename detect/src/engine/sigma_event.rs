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
pub fn to_sigma_event(event: &McpEvent<'_>, selection: &FieldSelection) -> Event {
    let mut out = Event::new();
    match selection {
        FieldSelection::Only { model, derived: derived_names, attributes } => {
            for (name, get) in model {
                if let Some(value) = get(event) {
                    insert(&mut out, name, value);
                }
            }
            for name in derived_names {
                if let Some(value) = derived(event, name) {
                    out.insert(*name, value);
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
                if let Some(value) = derived(event, name) {
                    out.insert(*name, value);
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
/// the ISO weekday (1 Monday to 7 Sunday, UTC) of the event time, for working-hours rules.
pub const DERIVED_FIELDS: &[&str] = &["event.time.hour", "event.time.weekday"];

pub(super) fn derived(event: &McpEvent<'_>, name: &str) -> Option<i64> {
    use chrono::{Datelike, Timelike};
    let at = event.time.to_datetime();
    match name {
        "event.time.hour" => Some(i64::from(at.hour())),
        "event.time.weekday" => Some(i64::from(at.weekday().number_from_monday())),
        _ => None,
    }
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
