//! Taking fields out of a gateway's JSON line: what is not taken is kept as attributes.

use mcpsiem_event::{OwnedEvent, Timestamp};
use serde_json::{Map, Value};

pub fn take_str(m: &mut Map<String, Value>, key: &str) -> Option<String> {
    match m.remove(key)? {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

pub fn take_i64(m: &mut Map<String, Value>, key: &str) -> Option<i64> {
    match m.remove(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A time as RFC 3339 text, or as seconds or milliseconds since the epoch.
pub fn take_time(m: &mut Map<String, Value>, keys: &[&str]) -> Option<Timestamp> {
    for key in keys {
        let Some(value) = m.remove(*key) else { continue };
        let parsed = match &value {
            Value::String(s) => Timestamp::parse(s).ok(),
            Value::Number(n) => n.as_f64().map(|x| {
                let seconds = if x > 1e12 { x / 1000.0 } else { x };
                Timestamp::from_micros((seconds * 1e6) as i64)
            }),
            _ => None,
        };
        if parsed.is_some() {
            return parsed;
        }
        m.insert((*key).to_owned(), value);
    }
    None
}

/// `12ms`, `1.5s`, `350µs`, `2m`, or a bare number of milliseconds, in microseconds.
pub fn duration_micros(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Number(n) => return n.as_f64().map(|ms| (ms * 1000.0) as i64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let micros_per_unit = match unit.trim() {
        "ns" => 0.001,
        "µs" | "us" => 1.0,
        "ms" | "" => 1000.0,
        "s" => 1e6,
        "m" => 6e7,
        _ => return None,
    };
    Some((number * micros_per_unit) as i64)
}

/// The host of `host:port` or `[v6]:port`.
pub fn host_of(address: &str) -> String {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => host.to_owned(),
        _ => address.to_owned(),
    }
}

pub fn keep_rest(e: &mut OwnedEvent, rest: Map<String, Value>) {
    for (key, value) in rest {
        e.attributes.insert(key, &value);
    }
}
