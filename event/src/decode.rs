//! JSON and NDJSON bytes to Arrow record batches, one typed error per bad record.
//!
//! Each record is deserialized straight into a borrowed [`McpEvent`] (no map, no copy of
//! strings that need no unescaping) and appended to columnar builders. A bad record never
//! fails the batch: it gets a [`DecodeError`] naming the field and the reason, and the
//! caller keeps the raw bytes (the ingester sends them to the dead letters).

use arrow_array::RecordBatch;
use serde::Deserializer as _;

use crate::event::{EventColumns, EventSeed, FieldProblem, McpEvent};
use crate::value::ValueKind;

/// The default largest record accepted, in bytes.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Why one record could not be decoded. The variant is the class a dead letter is filed
/// under ([`DecodeError::reason_code`]); the message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {size} bytes, over the {limit}-byte limit (decoder.max_record_bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("record is not UTF-8: invalid byte at offset {offset}")]
    NotUtf8 { offset: usize },
    #[error("record is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("record is JSON but not an object: {reason}")]
    NotObject { reason: String },
    #[error("required field `{field}` is missing")]
    MissingField { field: &'static str },
    #[error("field `{field}` appears twice")]
    DuplicateField { field: &'static str },
    #[error("field `{field}` has the wrong type, expected {expected}: {reason}")]
    WrongType { field: &'static str, expected: &'static str, reason: String },
    #[error("field `{field}` is not a valid time: {reason}")]
    BadTime { field: &'static str, reason: String },
    #[error("field `{field}` has an invalid value: {reason}")]
    BadValue { field: &'static str, reason: String },
}

impl DecodeError {
    /// A stable short code for the class, stored with dead letters and used in metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::NotJson { .. } => "not_json",
            Self::NotObject { .. } => "not_object",
            Self::MissingField { .. } => "missing_field",
            Self::DuplicateField { .. } => "duplicate_field",
            Self::WrongType { .. } => "wrong_type",
            Self::BadTime { .. } => "bad_time",
            Self::BadValue { .. } => "bad_value",
        }
    }

    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field }
            | Self::DuplicateField { field }
            | Self::WrongType { field, .. }
            | Self::BadTime { field, .. }
            | Self::BadValue { field, .. } => Some(field),
            _ => None,
        }
    }

    fn from_problem(problem: FieldProblem) -> Self {
        match problem {
            FieldProblem::Missing(field) => Self::MissingField { field },
            FieldProblem::Duplicate(field) => Self::DuplicateField { field },
            FieldProblem::Invalid { field, kind, detail } => {
                // serde words a type mismatch "invalid type: …" and a well-typed but
                // unacceptable value "invalid value: …"; that split is our class.
                if detail.starts_with("invalid type") {
                    Self::WrongType { field, expected: kind.json_name(), reason: detail }
                } else if kind == ValueKind::Timestamp {
                    Self::BadTime { field, reason: detail }
                } else {
                    Self::BadValue { field, reason: detail }
                }
            }
        }
    }
}

/// How a record too large for Kafka travels from a collector to the dead letters: this
/// key, then its size, the limit it broke and its first bytes.
const TOO_LARGE_ENVELOPE_KEY: &str = "mcpsiem.too_large";

#[derive(serde::Serialize, serde::Deserialize)]
struct TooLargeEnvelope {
    size: usize,
    limit: usize,
    prefix: String,
}

/// The envelope that stands for an oversize `record` on its way to the dead letters: its
/// size, the limit and its first `keep` bytes (as text). [`parse_event`] reads it back as
/// [`DecodeError::TooLarge`], so the ingester files it under `too_large` like the docs say.
pub fn too_large_envelope(record: &[u8], size: usize, limit: usize, keep: usize) -> Vec<u8> {
    let prefix = String::from_utf8_lossy(&record[..record.len().min(keep)]).into_owned();
    let mut out = Vec::with_capacity(prefix.len() + 96);
    let envelope =
        std::collections::BTreeMap::from([(TOO_LARGE_ENVELOPE_KEY, TooLargeEnvelope { size, limit, prefix })]);
    serde_json::to_writer(&mut out, &envelope).expect("writing to a Vec cannot fail");
    out
}

/// The size and limit of an envelope made by [`too_large_envelope`].
fn read_too_large_envelope(record: &[u8]) -> Option<DecodeError> {
    let mut envelope: std::collections::BTreeMap<String, TooLargeEnvelope> = serde_json::from_slice(record).ok()?;
    let envelope = envelope.remove(TOO_LARGE_ENVELOPE_KEY)?;
    Some(DecodeError::TooLarge { size: envelope.size, limit: envelope.limit })
}

/// Parses one JSON record into a borrowed event, checking size and encoding first.
pub fn parse_event(record: &[u8], max_record_bytes: usize) -> Result<McpEvent<'_>, DecodeError> {
    if record.len() > max_record_bytes {
        return Err(DecodeError::TooLarge { size: record.len(), limit: max_record_bytes });
    }
    if record.starts_with(b"{\"mcpsiem.too_large\":")
        && let Some(error) = read_too_large_envelope(record)
    {
        return Err(error);
    }
    let text = std::str::from_utf8(record).map_err(|e| DecodeError::NotUtf8 { offset: e.valid_up_to() })?;
    let mut problem = None;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = deserializer
        .deserialize_map(EventSeed { problem: &mut problem })
        .and_then(|event| deserializer.end().map(|()| event));
    match parsed {
        Ok(event) => Ok(event),
        Err(e) if e.is_syntax() || e.is_eof() => Err(DecodeError::NotJson { reason: e.to_string() }),
        Err(e) => Err(match problem {
            Some(problem) => DecodeError::from_problem(problem),
            None => DecodeError::NotObject { reason: e.to_string() },
        }),
    }
}

/// One record that failed, by its position in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRecord {
    /// 0-based index of the record among the non-blank records of the input.
    pub index: usize,
    /// Byte range of the record in the input, so the caller can keep the raw bytes.
    pub range: std::ops::Range<usize>,
    pub error: DecodeError,
}

/// Accumulates decoded events into Arrow columns.
pub struct EventDecoder {
    columns: EventColumns,
    max_record_bytes: usize,
}

impl EventDecoder {
    pub fn new(max_record_bytes: usize) -> Self {
        Self { columns: EventColumns::with_capacity(1024), max_record_bytes }
    }

    /// Decodes one JSON record and appends it; on error nothing is appended.
    pub fn push(&mut self, record: &[u8]) -> Result<(), DecodeError> {
        let event = parse_event(record, self.max_record_bytes)?;
        self.columns.append(&event);
        Ok(())
    }

    /// Decodes newline-delimited JSON, skipping blank lines, and returns the records that
    /// failed. The good ones are appended.
    pub fn push_ndjson(&mut self, input: &[u8]) -> Vec<RejectedRecord> {
        let mut rejected = Vec::new();
        let mut start = 0usize;
        let mut index = 0usize;
        while start < input.len() {
            let end = input[start..].iter().position(|&b| b == b'\n').map_or(input.len(), |n| start + n);
            let line = input[start..end].trim_ascii();
            if !line.is_empty() {
                if let Err(error) = self.push(line) {
                    rejected.push(RejectedRecord { index, range: start..end, error });
                }
                index += 1;
            }
            start = end + 1;
        }
        rejected
    }

    /// Events appended since the last [`Self::finish`].
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The batch of events appended so far; the decoder starts a new one.
    pub fn finish(&mut self) -> RecordBatch {
        self.columns.finish()
    }
}

impl Default for EventDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event.id":"01JDQ3S5W8Y0M6Q0W9Z4N3K2HB","event.time":"2026-11-24T10:00:00.000001Z","event.kind":"message","mcp.method.name":"tools/call","http.response.status_code":200}"#;

    fn decode(record: &str) -> Result<McpEvent<'_>, DecodeError> {
        parse_event(record.as_bytes(), DEFAULT_MAX_RECORD_BYTES)
    }

    #[test]
    fn a_good_record_decodes() {
        let event = decode(GOOD).unwrap();
        assert_eq!(event.method.as_deref(), Some("tools/call"));
        assert_eq!(event.http_status, Some(200));
    }

    #[test]
    fn oversize_records_are_refused_before_parsing() {
        let err = parse_event(GOOD.as_bytes(), 10).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { size: GOOD.len(), limit: 10 });
        assert_eq!(err.reason_code(), "too_large");
        // The envelope a collector ships in its place reads back as the same error.
        let envelope = too_large_envelope(GOOD.as_bytes(), GOOD.len(), 10, 8);
        assert!(envelope.len() < 200, "{}", String::from_utf8_lossy(&envelope));
        assert_eq!(parse_event(&envelope, 1 << 20).unwrap_err(), err);
    }

    #[test]
    fn non_utf8_is_refused_with_the_offset() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes[60] = 0xff;
        assert_eq!(parse_event(&bytes, 1 << 20).unwrap_err(), DecodeError::NotUtf8 { offset: 60 });
    }

    #[test]
    fn non_json_is_refused() {
        for bad in ["{\"event.id\": ", "hello", &format!("{GOOD} trailing"), ""] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.reason_code(), "not_json", "{bad:?} gave {err}");
        }
    }

    #[test]
    fn json_that_is_not_an_object_is_refused() {
        for bad in ["[1,2]", "42", "\"text\"", "null"] {
            assert_eq!(decode(bad).unwrap_err().reason_code(), "not_object", "{bad}");
        }
    }

    #[test]
    fn each_required_field_is_named_when_missing() {
        for field in ["event.id", "event.time", "event.kind"] {
            let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
            value.remove(field);
            let record = serde_json::to_string(&value).unwrap();
            assert_eq!(decode(&record).unwrap_err(), DecodeError::MissingField { field });
        }
    }

    #[test]
    fn a_null_required_field_counts_as_missing() {
        let record = GOOD.replace(r#""event.kind":"message""#, r#""event.kind":null"#);
        assert_eq!(decode(&record).unwrap_err(), DecodeError::MissingField { field: "event.kind" });
    }

    #[test]
    fn wrong_types_name_the_field_and_the_expected_type() {
        let cases = [
            (
                r#""http.response.status_code":200"#,
                r#""http.response.status_code":"200""#,
                "http.response.status_code",
                "integer",
            ),
            (r#""mcp.method.name":"tools/call""#, r#""mcp.method.name":7"#, "mcp.method.name", "string"),
            (
                r#""event.time":"2026-11-24T10:00:00.000001Z""#,
                r#""event.time":1732442400"#,
                "event.time",
                "RFC 3339 timestamp string",
            ),
        ];
        for (from, to, field, expected) in cases {
            let err = decode(&GOOD.replace(from, to)).unwrap_err();
            match err {
                DecodeError::WrongType { field: f, expected: e, .. } => {
                    assert_eq!((f, e), (field, expected));
                }
                other => panic!("{to}: expected WrongType, got {other:?}"),
            }
        }
        let err = decode(&GOOD.replace("}", r#","auth.token.scopes":"read write"}"#)).unwrap_err();
        assert_eq!(err.field(), Some("auth.token.scopes"));
        assert_eq!(err.reason_code(), "wrong_type");
    }

    #[test]
    fn unparseable_times_are_their_own_class() {
        let err = decode(&GOOD.replace("2026-11-24T10:00:00.000001Z", "24/11/2026 10:00")).unwrap_err();
        assert!(matches!(err, DecodeError::BadTime { field: "event.time", .. }), "{err:?}");
        assert!(err.to_string().contains("24/11/2026 10:00"), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = decode(&GOOD.replace("01JDQ3S5W8Y0M6Q0W9Z4N3K2HB", "not-a-ulid")).unwrap_err();
        assert!(matches!(err, DecodeError::BadValue { field: "event.id", .. }), "{err:?}");
        // 26 digits that overflow 128 bits: refused, not wrapped into another id.
        let err = decode(&GOOD.replace("01JDQ3S5W8Y0M6Q0W9Z4N3K2HB", "81JDQ3S5W8Y0M6Q0W9Z4N3K2HB")).unwrap_err();
        assert!(matches!(err, DecodeError::BadValue { field: "event.id", .. }), "{err:?}");
        assert!(decode(&GOOD.replace("01JDQ3S5W8Y0M6Q0W9Z4N3K2HB", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")).is_ok());
        let err = decode(&GOOD.replace(r#""message""#, r#""telepathy""#)).unwrap_err();
        assert!(matches!(err, DecodeError::BadValue { field: "event.kind", .. }), "{err:?}");
    }

    #[test]
    fn duplicate_known_fields_are_refused() {
        let err = decode(&GOOD.replace("}", r#","mcp.method.name":"initialize"}"#)).unwrap_err();
        assert_eq!(err, DecodeError::DuplicateField { field: "mcp.method.name" });
    }

    #[test]
    fn unknown_fields_are_kept_verbatim() {
        let record = GOOD.replace("}", r#","vendor.extra":{"a": [1, 2]}}"#);
        let event = decode(&record).unwrap();
        assert_eq!(event.attributes.get("vendor.extra").unwrap().get(), r#"{"a": [1, 2]}"#);
    }

    #[test]
    fn ndjson_keeps_good_records_and_reports_bad_ones_with_their_bytes() {
        let input = format!("{GOOD}\n\nnot json\n{GOOD}\r\n");
        let mut decoder = EventDecoder::default();
        let rejected = decoder.push_ndjson(input.as_bytes());
        assert_eq!(decoder.len(), 2);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].index, 1);
        assert_eq!(&input[rejected[0].range.clone()], "not json");
        assert_eq!(decoder.finish().num_rows(), 2);
        assert!(decoder.is_empty());
    }
}
