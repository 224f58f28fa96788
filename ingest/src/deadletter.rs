//! Dead letters: records that could not be ingested, kept with the reason.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};

use mcpsiem_event::{DecodeError, Timestamp};

/// Why a record was not ingested.
#[derive(Clone, Debug, PartialEq)]
pub enum DeadLetterReason {
    /// The record is not a valid event.
    Decode(DecodeError),
    /// The event's time is too far before its arrival.
    TooOld { event_time: Timestamp },
    /// The event's time is too far after its arrival.
    InFuture { event_time: Timestamp },
    /// The Kafka message has no value.
    EmptyMessage,
    /// A record of the alerts topic that is not an alert.
    NotAnAlert(String),
    /// A record of the alert-changes topic that is not an alert change.
    NotAnAlertChange(String),
    /// A record of the silences topic that is not a silence.
    NotASilence(String),
}

impl DeadLetterReason {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.reason_code(),
            Self::TooOld { .. } => "too_old",
            Self::InFuture { .. } => "in_future",
            Self::EmptyMessage => "empty_message",
            Self::NotAnAlert(_) => "not_an_alert",
            Self::NotAnAlertChange(_) => "not_an_alert_change",
            Self::NotASilence(_) => "not_a_silence",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Decode(e) => e.to_string(),
            Self::TooOld { event_time } => format!(
                "event time {event_time} is older than ingest.max_event_age_hours before its arrival; fix the collector's clock or raise the bound"
            ),
            Self::InFuture { event_time } => format!(
                "event time {event_time} is later than ingest.max_event_future_seconds after its arrival; fix the collector's clock"
            ),
            Self::EmptyMessage => "the Kafka message has no value".into(),
            Self::NotAnAlert(reason) => format!("{reason}; only the detector should write to the alerts topic"),
            Self::NotAnAlertChange(reason) => {
                format!(
                    "{reason}; only the query service and the delivery stage should write to the alert-changes topic"
                )
            }
            Self::NotASilence(reason) => format!("{reason}; only the query service should write to the silences topic"),
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Decode(e) => e.field(),
            Self::TooOld { .. } | Self::InFuture { .. } => Some("event.time"),
            Self::EmptyMessage | Self::NotAnAlert(_) | Self::NotAnAlertChange(_) | Self::NotASilence(_) => None,
        }
    }
}

/// One record that was not ingested, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub received_time: Timestamp,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub kafka_time: Option<Timestamp>,
    pub reason: DeadLetterReason,
    pub raw: Vec<u8>,
}

impl DeadLetter {
    /// Bytes it holds in memory, for the roll budget.
    pub fn size(&self) -> usize {
        self.raw.len() + self.key.as_ref().map_or(0, Vec::len) + 128
    }
}

pub use mcpsiem_event::schema::deadletter_schema;

/// Dead letters as one batch of the `deadletters` schema.
pub fn deadletter_batch(letters: &[DeadLetter]) -> RecordBatch {
    let n = letters.len();
    let mut received = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut topic = StringBuilder::new();
    let mut partition = Int32Builder::with_capacity(n);
    let mut offset = Int64Builder::with_capacity(n);
    let mut key = BinaryBuilder::new();
    let mut kafka_time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut reason = StringBuilder::new();
    let mut error = StringBuilder::new();
    let mut field = StringBuilder::new();
    let mut raw = BinaryBuilder::new();
    for letter in letters {
        received.append_value(letter.received_time.as_micros());
        topic.append_value(&letter.topic);
        partition.append_value(letter.partition);
        offset.append_value(letter.offset);
        key.append_option(letter.key.as_deref());
        kafka_time.append_option(letter.kafka_time.map(Timestamp::as_micros));
        reason.append_value(letter.reason.code());
        error.append_value(letter.reason.message());
        field.append_option(letter.reason.field());
        raw.append_value(&letter.raw);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(received.finish()),
        Arc::new(topic.finish()),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(key.finish()),
        Arc::new(kafka_time.finish()),
        Arc::new(reason.finish()),
        Arc::new(error.finish()),
        Arc::new(field.finish()),
        Arc::new(raw.finish()),
    ];
    RecordBatch::try_new(deadletter_schema(), columns).expect("columns match the dead-letter schema")
}
