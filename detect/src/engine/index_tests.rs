//! The trigger index never changes a verdict: random rules (every modifier, wildcards,
//! escapes, keywords, negations, quantifiers) on random events give the same matches with
//! and without it.

use std::path::Path;

use mcpsiem_event::{EventId, EventKind, McpEvent, OwnedEvent, Text, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::rules::{NamedLists, load_text};

const FIELDS: &[&str] = &["gen_ai.tool.name", "mcp.method.name", "client.address", "vendor.note", "event.time.hour"];
const VALUES: &[&str] = &[
    "read",
    "Read_File",
    "file",
    "x*y",
    "re?d",
    "\\*",
    "ſecret",
    "secret",
    "KEY",
    "\u{212A}ey",
    "Äpfel",
    "äpfel",
    "10",
    "1*",
    "*",
    "a\\b",
    "tools/call",
    "",
];
const MODIFIERS: &[&str] = &[
    "",
    "|contains",
    "|startswith",
    "|endswith",
    "|contains|all",
    "|re",
    "|cased",
    "|contains|cased",
    "|base64",
    "|windash|contains",
    "|exists",
    "|lt",
];
const CONDITIONS: &[&str] = &[
    "sel1",
    "sel1 and sel2",
    "sel1 or sel2",
    "sel1 and not sel2",
    "not sel1",
    "1 of sel*",
    "all of sel*",
    "1 of them",
    "all of them",
    "(sel1 or sel2) and sel3",
    "sel1 or sel2 and not sel3",
    "not (sel1 and sel2) or sel3",
];

fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// One selection: keywords, or a mapping (or a list of mappings) of field entries.
fn selection() -> impl Strategy<Value = String> {
    let entry = (0..FIELDS.len(), 0..MODIFIERS.len(), prop::collection::vec(0..VALUES.len(), 1..3)).prop_map(
        |(field, modifier, values)| {
            let modifier = MODIFIERS[modifier];
            let values: Vec<String> = match modifier {
                "|exists" => vec![if values[0] % 2 == 0 { "true".into() } else { "false".into() }],
                "|lt" => vec!["12".into()],
                _ => values.iter().map(|v| quoted(VALUES[*v])).collect(),
            };
            format!("{}{}: [{}]", FIELDS[field], modifier, values.join(", "))
        },
    );
    let mapping = prop::collection::vec(entry, 1..3).prop_map(|entries| format!("{{{}}}", entries.join(", ")));
    prop_oneof![
        3 => mapping.clone(),
        1 => prop::collection::vec(mapping, 1..3).prop_map(|maps| format!("[{}]", maps.join(", "))),
        1 => prop::collection::vec(0..VALUES.len(), 1..3)
            .prop_map(|v| format!("[{}]", v.iter().map(|i| quoted(VALUES[*i])).collect::<Vec<_>>().join(", "))),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    (prop::collection::vec(selection(), 3), 0..CONDITIONS.len()).prop_map(|(selections, condition)| {
        format!(
            "title: random\nlogsource: {{product: mcp}}\ndetection:\n  sel1: {}\n  sel2: {}\n  sel3: {}\n  condition: {}\n",
            selections[0], selections[1], selections[2], CONDITIONS[condition]
        )
    })
}

fn event() -> impl Strategy<Value = OwnedEvent> {
    let value = || {
        prop::option::of((0..VALUES.len(), 0..VALUES.len()).prop_map(|(a, b)| format!("{}{}", VALUES[a], VALUES[b])))
    };
    (value(), value(), value(), value(), 0i64..48).prop_map(|(tool, method, address, note, hour)| {
        let time = Timestamp::from_micros(1_790_000_000_000_000 + hour * 1_800_000_000);
        let mut e = McpEvent::new(EventId::new(), time, EventKind::Message);
        e.tool_name = tool.map(Text::from);
        e.method = method.map(Text::from);
        e.client_address = address.map(Text::from);
        if let Some(note) = note {
            e.attributes.insert("vendor.note", &serde_json::json!(note));
        }
        e
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_index_changes_no_verdict(rules in prop::collection::vec(rule(), 1..6), events in prop::collection::vec(event(), 1..12)) {
        let mut set = RuleSet::default();
        let mut problems = Vec::new();
        let text = rules.join("---\n");
        load_text(Path::new("random.yml"), &text, &NamedLists::new(), &mut set, &mut problems);
        let mut reference = RuleSet::default();
        load_text(Path::new("random.yml"), &text, &NamedLists::new(), &mut reference, &mut Vec::new());
        let indexed = Engine::new(set, EngineConfig::default());
        let unindexed = Engine::new(reference, EngineConfig::default()).without_index();
        for event in &events {
            prop_assert_eq!(indexed.detection_verdicts(event), unindexed.detection_verdicts(event), "rules:\n{}", text);
        }
    }
}
