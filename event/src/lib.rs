//! The MCP audit event model: the one contract between mcpsiem's stages.
//!
//! Collectors build [`McpEvent`]s and ship them as JSON to Kafka; the ingester decodes them
//! with [`EventDecoder`] into Arrow batches for the Parquet lake; the detector and the query
//! service read the same fields. The field list lives in one place ([`event`]), and the JSON
//! form, the Arrow schema and `docs/schema.md` are derived from it.

pub mod alert;
pub mod alert_change;
pub mod decode;
pub mod event;
pub mod hash;
pub mod ocsf;
pub mod schema;
pub mod silence;
pub mod time;
pub mod token;
pub mod value;

pub use alert::{Alert, AlertSource, Level, alert_batch, alert_schema};
pub use alert_change::{
    AlertChange, AlertChangeError, AlertState, AlertStatus, ChangeAction, Verdict, alert_change_batch,
    alert_change_schema,
};
pub use decode::{
    DEFAULT_MAX_RECORD_BYTES, DecodeError, EventDecoder, RejectedRecord, parse_event, too_large_envelope,
};
pub use event::{
    Attributes, Direction, EventColumns, EventId, EventKind, FieldAccessor, FieldProblem, McpEvent, MessageType,
    OwnedEvent,
};
pub use time::Timestamp;
pub use value::{FieldRef, Text, TextList, ValueKind};

impl McpEvent<'_> {
    /// The compact JSON form shipped to Kafka: one object, dotted keys, no newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes to JSON")
    }

    /// Appends the JSON form to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("writing to a Vec cannot fail");
    }
}
