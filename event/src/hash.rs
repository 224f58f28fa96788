//! The hashes that identify a tool definition, computed the same way by every collector.

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of a tool description, exactly as offered.
pub fn description_sha256(description: &str) -> String {
    hex::encode(Sha256::digest(description.as_bytes()))
}

/// Lower-case hex SHA-256 of a JSON value in canonical form: object keys sorted by their
/// UTF-8 bytes, no insignificant white space. Two servers that send the same schema with
/// keys in another order get the same hash; any change of content changes it.
pub fn canonical_json_sha256(value: &serde_json::Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).expect("a string always serializes"));
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_spacing_do_not_change_the_hash() {
        let a: serde_json::Value = serde_json::from_str(r#"{"type":"object","properties":{"b":1,"a":[1,2]}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "properties": {"a": [1, 2], "b": 1}, "type": "object" }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"type":"object","properties":{"b":2,"a":[1,2]}}"#).unwrap();
        assert_eq!(canonical_json_sha256(&a), canonical_json_sha256(&b));
        assert_ne!(canonical_json_sha256(&a), canonical_json_sha256(&c));
        assert_eq!(description_sha256("").len(), 64);
    }
}
