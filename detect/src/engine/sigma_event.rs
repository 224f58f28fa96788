//! Our events as sigma-rust sees them: the fields the loaded rules read, typed as the
//! schema documents them (strings, integers, booleans; timestamps as RFC 3339 text).

use std::collections::BTreeSet;

use mcpsiem_event::{FieldAccessor, FieldRef, McpEvent};
use sigma_rust::Event;

/// Which fields to copy into the sigma-rust event.
#[derive(Clone, Debug)]
pub enum FieldSelection {
    /// Only these (the union of the fields the rules read), with their getters resolved:
    /// most events have ~40 fields and rules read a handful, so this is most of the
    /// detector's speed.
    Only(Vec<(String, Option<FieldAccessor>)>),
    /// Every field, when a rule has a keyword selection.
    All,
}

impl FieldSelection {
    pub fn new(fields: BTreeSet<String>, any_keywords: bool) -> Self {
        if any_keywords {
            Self::All
        } else {
            Self::Only(
                fields
                    .into_iter()
                    .map(|name| {
                        let getter = McpEvent::accessor(&name);
                        (name, getter)
                    })
                    .collect(),
            )
        }
    }
}

/// Builds the sigma-rust event for `event`.
pub fn to_sigma_event(event: &McpEvent<'_>, selection: &FieldSelection) -> Event {
    let mut out = Event::new();
    match selection {
        FieldSelection::Only(fields) => {
            for (name, getter) in fields {
                let value = match getter {
                    Some(get) => get(event),
                    None => event.field(name),
                };
                if let Some(value) = value {
                    insert(&mut out, name, value);
                } else if let Some(value) = derived(event, name) {
                    out.insert(name.as_str(), value);
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

/// Fields computed from others, which Sigma cannot express: the hour (0 to 23, UTC) and
/// the ISO weekday (1 Monday to 7 Sunday, UTC) of the event time, for working-hours rules.
pub const DERIVED_FIELDS: &[&str] = &["event.time.hour", "event.time.weekday"];

fn derived(event: &McpEvent<'_>, name: &str) -> Option<i64> {
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
