//! Our events as sigma-rust sees them: the fields the loaded rules read, typed as the
//! schema documents them (strings, integers, booleans; timestamps as RFC 3339 text).

use std::collections::BTreeSet;

use mcpsiem_event::{FieldRef, McpEvent};
use sigma_rust::Event;

/// Which fields to copy into the sigma-rust event.
#[derive(Clone, Debug)]
pub enum FieldSelection {
    /// Only these (the union of the fields the rules read): most events have ~40 fields and
    /// rules read a handful, so this is most of the detector's speed.
    Only(Vec<String>),
    /// Every field, when a rule has a keyword selection.
    All,
}

impl FieldSelection {
    pub fn new(fields: BTreeSet<String>, any_keywords: bool) -> Self {
        if any_keywords { Self::All } else { Self::Only(fields.into_iter().collect()) }
    }
}

/// Builds the sigma-rust event for `event`.
pub fn to_sigma_event(event: &McpEvent<'_>, selection: &FieldSelection) -> Event {
    let mut out = Event::new();
    match selection {
        FieldSelection::Only(fields) => {
            for name in fields {
                if let Some(value) = event.field(name) {
                    insert(&mut out, name, value);
                }
            }
        }
        FieldSelection::All => {
            for (name, value) in event.fields() {
                insert(&mut out, name, value);
            }
        }
    }
    out
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
