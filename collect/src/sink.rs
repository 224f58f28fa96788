//! Where every collector hands its events: JSON, keyed by session, into the shipper.

use std::time::Duration;

use mcpsiem_event::OwnedEvent;
use mcpsiem_runtime::kafka::{KafkaConfig, event_key};

use super::config::CollectConfig;
use super::shipper::{ShipError, Shipper, ShipperSettings};
use super::spool::SpoolError;

/// Spool slots tried by [`EventSink::start_in_free_slot`].
const MAX_SLOTS: usize = 256;

/// Room in a Kafka message beyond the record: its key, headers and the batch framing.
const MESSAGE_OVERHEAD_BYTES: usize = 64 << 10;

fn settings(collect: &CollectConfig, spool_dir: std::path::PathBuf, max_record_bytes: usize) -> ShipperSettings {
    ShipperSettings {
        spool_dir,
        spool_max_bytes: collect.spool_max_bytes,
        queue_max_kbytes: collect.queue_max_kbytes,
        // Every record the decoder would take must fit, or a valid event would be refused
        // by the producer and retried forever.
        max_message_bytes: max_record_bytes.saturating_add(MESSAGE_OVERHEAD_BYTES),
    }
}

/// Ships events; cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    shipper: Shipper,
    /// The key of events that have no session, token or address (a stdio connection):
    /// one per connection, so its events stay in one partition and in order.
    fallback_key: Option<String>,
}

impl EventSink {
    /// A sink spooling into `collect.spool_dir`, which must not be in use, for records of
    /// up to `max_record_bytes` (`decoder.max_record_bytes`).
    pub fn start(kafka: &KafkaConfig, collect: &CollectConfig, max_record_bytes: usize) -> Result<Self, ShipError> {
        let settings = settings(collect, collect.spool_dir.clone(), max_record_bytes);
        Ok(Self { shipper: Shipper::start(kafka, &settings)?, fallback_key: None })
    }

    /// A sink spooling into the first free `slot-N` under `collect.spool_dir`. Stdio proxies
    /// run one per MCP client session, many at once on one host: each takes a free slot,
    /// and a new proxy that takes the slot of one that died sends what it left first.
    pub fn start_in_free_slot(
        kafka: &KafkaConfig,
        collect: &CollectConfig,
        max_record_bytes: usize,
    ) -> Result<Self, ShipError> {
        let mut last = None;
        for slot in 0..MAX_SLOTS {
            let dir = collect.spool_dir.join(format!("slot-{slot}"));
            match Shipper::start(kafka, &settings(collect, dir, max_record_bytes)) {
                Ok(shipper) => return Ok(Self { shipper, fallback_key: None }),
                Err(ShipError::Spool(SpoolError::Busy { dir })) => last = Some(dir),
                Err(e) => return Err(e),
            }
        }
        Err(ShipError::Spool(SpoolError::Busy { dir: last.unwrap_or_default() }))
    }

    /// Keys events that have no key of their own with `key`.
    pub fn with_fallback_key(mut self, key: String) -> Self {
        self.fallback_key = Some(key);
        self
    }

    /// Ships one event; `Err` only when it could be neither queued nor spooled.
    pub fn send(&self, event: &OwnedEvent) -> Result<(), ShipError> {
        let mut payload = Vec::with_capacity(1024);
        event.write_json(&mut payload);
        let format = event.collector_format.as_deref().unwrap_or("unknown").to_owned();
        let key = event_key(event).or(self.fallback_key.as_deref());
        let result = self.shipper.send(key, &payload);
        match &result {
            Ok(()) => metrics::counter!("mcpsiem_collect_events_total", "format" => format).increment(1),
            Err(error) => {
                metrics::counter!("mcpsiem_collect_refused_total", "format" => format).increment(1);
                tracing::error!(%error, event_id = %event.id, "an event could not be shipped or spooled");
            }
        }
        result
    }

    /// Ships every event, logging (not returning) the ones refused: a proxy must keep
    /// forwarding traffic even when its audit trail cannot be written.
    pub fn send_all(&self, events: &[OwnedEvent]) -> usize {
        events.iter().filter(|e| self.send(e).is_err()).count()
    }

    pub fn shipper(&self) -> &Shipper {
        &self.shipper
    }

    /// Waits up to `timeout` for everything to reach Kafka; returns what stays spooled.
    pub fn close(&self, timeout: Duration) -> Result<u64, ShipError> {
        self.shipper.close(timeout)
    }
}
