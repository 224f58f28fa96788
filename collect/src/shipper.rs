//! Shipping collected events to Kafka without loss: an idempotent, compressed producer with
//! a bounded memory queue, and the disk spool behind it. While Kafka takes records they go
//! straight to librdkafka; once its queue is full (Kafka is unreachable or slow), records go
//! to the spool, and keep going there until the spool has drained, so that one session's
//! events keep their order. Messages never time out in librdkafka: no delivery is left in
//! doubt, so a record is sent again only by the idempotent producer itself (no duplicates).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use super::spool::{Spool, SpoolError};

/// Records read from the spool per drain pass.
const DRAIN_BATCH: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot produce to Kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Where the shipper keeps what Kafka cannot take yet, and how much memory it may queue.
#[derive(Clone, Debug)]
pub struct ShipperSettings {
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// librdkafka's queue, in KiB: past it, records go to the spool.
    pub queue_max_kbytes: u64,
}

/// Where a record handed to librdkafka came from.
enum Origin {
    Direct,
    Spool(u64),
}

/// Spooled records in flight, and the counts behind the metrics.
#[derive(Default)]
struct Deliveries {
    in_flight: Mutex<BTreeSet<u64>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Records Kafka had not taken at a stop, moved to the spool.
    rescued: AtomicU64,
}

struct ShipContext {
    deliveries: Arc<Deliveries>,
    /// Where purged messages are saved when a stop finds Kafka unreachable.
    state: Arc<Mutex<SpoolState>>,
}

impl ClientContext for ShipContext {}

impl ProducerContext for ShipContext {
    type DeliveryOpaque = Box<Origin>;

    fn delivery(&self, result: &DeliveryResult<'_>, origin: Box<Origin>) {
        if let Origin::Spool(seq) = *origin {
            self.deliveries.in_flight.lock().expect("not poisoned").remove(&seq);
        }
        match result {
            // A stop purged what Kafka had not taken: direct records go to the spool for the
            // next run; spooled ones are still there (the cursor never passed them).
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight),
                message,
            )) => {
                if matches!(*origin, Origin::Direct) {
                    let mut state = self.state.lock().expect("not poisoned");
                    match state.spool.append(message.key(), message.payload().unwrap_or_default()) {
                        Ok(_) => {
                            self.deliveries.rescued.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("mcpsiem_collect_spooled_total").increment(1);
                        }
                        Err(error) => {
                            self.deliveries.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(%error, "an event Kafka did not take could not be spooled either");
                        }
                    }
                }
            }
            Ok(_) => {
                self.deliveries.delivered.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("mcpsiem_collect_shipped_total").increment(1);
            }
            // With no message timeout, only errors Kafka will never accept end up here (a
            // record too large, no permission on the topic): retrying would block the rest.
            Err((error, _)) => {
                let failed = self.deliveries.failed.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("mcpsiem_collect_failed_total").increment(1);
                if failed.is_power_of_two() {
                    tracing::error!(%error, failed, "Kafka refused an event for good");
                }
            }
        }
    }
}

/// The spool and whether records must go through it.
struct SpoolState {
    spool: Spool,
    spooling: bool,
    /// The next spooled record not yet handed to librdkafka.
    next_to_send: u64,
}

/// Ships events to the events topic; cheap to clone.
#[derive(Clone)]
pub struct Shipper {
    producer: ThreadedProducer<ShipContext>,
    topic: String,
    state: Arc<Mutex<SpoolState>>,
    deliveries: Arc<Deliveries>,
    stop: Arc<AtomicBool>,
}

impl Shipper {
    /// A shipper with its spool opened (records left by an earlier run are sent first) and
    /// its drain thread started.
    pub fn start(kafka: &KafkaConfig, settings: &ShipperSettings) -> Result<Self, ShipError> {
        let deliveries = Arc::new(Deliveries::default());
        let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes)?;
        let pending = spool.pending();
        if pending > 0 {
            tracing::info!(pending, dir = %settings.spool_dir.display(), "sending the events spooled by an earlier run first");
        }
        let next_to_send = spool.first_pending();
        let state = Arc::new(Mutex::new(SpoolState { spooling: pending > 0, spool, next_to_send }));
        let producer: ThreadedProducer<ShipContext> = kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .set("linger.ms", "20")
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.kbytes", settings.queue_max_kbytes.to_string())
            .create_with_context(ShipContext { deliveries: deliveries.clone(), state: state.clone() })?;
        let shipper = Self {
            producer,
            topic: kafka.events_topic.clone(),
            state,
            deliveries,
            stop: Arc::new(AtomicBool::new(false)),
        };
        let drain = shipper.clone();
        std::thread::Builder::new().name("spool-drain".into()).spawn(move || drain.drain_loop()).map_err(|e| {
            ShipError::Spool(SpoolError::Io { dir: settings.spool_dir.display().to_string(), source: e })
        })?;
        Ok(shipper)
    }

    /// Ships one event: to Kafka's queue, or to the spool when that is full. `Err` only
    /// when the spool is full too (the caller must refuse the event) or cannot be written.
    pub fn send(&self, key: Option<&str>, payload: &[u8]) -> Result<(), ShipError> {
        let mut state = self.state.lock().expect("not poisoned");
        if !state.spooling {
            let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new(Origin::Direct)).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tracing::warn!("Kafka is not taking events fast enough: spooling them to disk");
                    metrics::gauge!("mcpsiem_collect_spooling").set(1.0);
                    state.spooling = true;
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
        state.spool.append(key.map(str::as_bytes), payload)?;
        metrics::counter!("mcpsiem_collect_spooled_total").increment(1);
        Ok(())
    }

    /// Hands spooled records to librdkafka as its queue has room, moves the spool's cursor
    /// past what Kafka acknowledged, and goes back to direct sends once all is delivered.
    fn drain_loop(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if let Err(e) = self.drain_once() {
                tracing::error!(error = %e, "the spool cannot be drained; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    fn drain_once(&self) -> Result<(), ShipError> {
        let mut state = self.state.lock().expect("not poisoned");
        if !state.spooling {
            return Ok(());
        }
        let unsent = state.next_to_send;
        let records = state.spool.read_from(unsent, DRAIN_BATCH)?;
        for record in records {
            let mut out = BaseRecord::with_opaque_to(&self.topic, Box::new(Origin::Spool(record.seq)))
                .payload(&record.payload[..]);
            if let Some(key) = record.key.as_deref() {
                out = out.key(key);
            }
            // Marked in flight first: a delivery can be reported before `send` returns.
            self.deliveries.in_flight.lock().expect("not poisoned").insert(record.seq);
            match self.producer.send(out) {
                Ok(()) => state.next_to_send = record.seq + 1,
                Err((error, _)) => {
                    self.deliveries.in_flight.lock().expect("not poisoned").remove(&record.seq);
                    if !matches!(error, KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) {
                        tracing::warn!(%error, "cannot hand a spooled event to Kafka yet");
                    }
                    break;
                }
            }
        }
        let acknowledged = self.deliveries.in_flight.lock().expect("not poisoned").first().copied();
        let next_to_send = state.next_to_send;
        state.spool.acknowledge(acknowledged.unwrap_or(next_to_send))?;
        if state.spool.is_empty() {
            tracing::info!("the spool has drained: sending events directly again");
            metrics::gauge!("mcpsiem_collect_spooling").set(0.0);
            state.spooling = false;
        }
        Ok(())
    }

    /// Waits up to `timeout` until every event handed over so far is either acknowledged by
    /// Kafka or written to the spool; `false` when some are still only in memory.
    pub fn flush(&self, timeout: Duration) -> Result<bool, ShipError> {
        if self.producer.in_flight_count() > 0 {
            match self.producer.flush(timeout) {
                Ok(()) => {}
                Err(KafkaError::Flush(_)) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        self.state.lock().expect("not poisoned").spool.flush()?;
        Ok(true)
    }

    /// Events waiting in the spool.
    pub fn spooled(&self) -> u64 {
        self.state.lock().expect("not poisoned").spool.pending()
    }

    /// Events Kafka acknowledged, and events it refused for good.
    pub fn delivered(&self) -> (u64, u64) {
        (self.deliveries.delivered.load(Ordering::Relaxed), self.deliveries.failed.load(Ordering::Relaxed))
    }

    /// Waits up to `timeout` for the spool to drain and librdkafka's queue to empty. What
    /// Kafka has not taken by then is moved from memory to the spool, which keeps it for the
    /// next run; returns how many events the spool holds. Stops the drain thread.
    pub fn close(&self, timeout: Duration) -> Result<u64, ShipError> {
        let deadline = std::time::Instant::now() + timeout;
        while self.spooled() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop.store(true, Ordering::Relaxed);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match self.producer.flush(left.max(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(KafkaError::Flush(_)) => {
                // Purged messages come back through the delivery callback, which spools the
                // direct ones. An in-flight one Kafka did store is sent again next run, with
                // the same event id, which the ingester and detector deduplicate.
                self.producer.purge(PurgeConfig::default().queue().inflight());
                self.producer.flush(Duration::from_secs(5))?;
                let rescued = self.deliveries.rescued.load(Ordering::Relaxed);
                tracing::warn!(
                    rescued,
                    "Kafka did not take every event in time: they wait in the spool for the next run"
                );
            }
            Err(e) => return Err(e.into()),
        }
        let mut state = self.state.lock().expect("not poisoned");
        state.spool.flush()?;
        Ok(state.spool.pending())
    }
}
