//! Property tests: the decoder never panics, and a record either decodes or gets a typed error.

use mcpsiem_event::{DecodeError, EventDecoder, parse_event};
use proptest::prelude::*;

const GOOD: &str = r#"{"event.id":"01JDQ3S5W8Y0M6Q0W9Z4N3K2HB","event.time":"2026-11-24T10:00:00.000001Z","event.kind":"message","mcp.method.name":"tools/call","http.response.status_code":200,"auth.token.scopes":["a","b"],"gen_ai.tool.call.result.truncated":false,"x":{"y":1}}"#;

fn every_error_names_a_known_class(error: &DecodeError) {
    let classes = [
        "too_large",
        "not_utf8",
        "not_json",
        "not_object",
        "missing_field",
        "duplicate_field",
        "wrong_type",
        "bad_time",
        "bad_value",
    ];
    assert!(classes.contains(&error.reason_code()));
    assert!(!error.to_string().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse_event(&bytes, 1 << 20) {
            every_error_names_a_known_class(&e);
        }
    }

    #[test]
    fn mutated_good_records_decode_or_fail_cleanly(position in 0usize..GOOD.len(), byte in any::<u8>(), delete in any::<bool>()) {
        let mut record = GOOD.as_bytes().to_vec();
        if delete { record.remove(position); } else { record[position] = byte; }
        let mut decoder = EventDecoder::default();
        match decoder.push(&record) {
            Ok(()) => prop_assert_eq!(decoder.finish().num_rows(), 1),
            Err(e) => {
                every_error_names_a_known_class(&e);
                prop_assert_eq!(decoder.finish().num_rows(), 0, "a failed record appends nothing");
            }
        }
    }

    #[test]
    fn any_json_value_in_a_known_field_decodes_or_names_the_field(value in any_json(), field in prop::sample::select(vec!["event.time", "mcp.method.name", "http.response.status_code", "auth.token.scopes", "mcp.tool.result.is_error", "mcp.message.type"])) {
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
        object.insert(field.to_owned(), value);
        let record = serde_json::to_vec(&object).unwrap();
        if let Err(e) = parse_event(&record, 1 << 20) {
            every_error_names_a_known_class(&e);
            prop_assert_eq!(e.field(), Some(field), "{}", e);
        }
    }
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
