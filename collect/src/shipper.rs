//! Shipping collected events to Kafka without loss: every event is written to the disk spool
//! first and shipped from there by an idempotent, compressed producer; the spool's cursor
//! moves past a record only once Kafka has acknowledged it.
//!
//! One path for every event keeps one session's events in order whatever Kafka does, and
//! bounds what a crash can lose:
//! - [`Shipper::send_durable`] (the intake, which answers its client) syncs the batch to disk
//!   before it returns: what the intake acknowledges survives a crash at any moment. A full
//!   spool refuses the whole batch before taking any of it.
//! - [`Shipper::send`] (proxies and the tailer, which cannot make their source wait) appends
//!   to the spool's write buffer; the drain thread writes and syncs it every pass
//!   ([`SYNC_INTERVAL`]). A SIGKILL loses at most the events of the last pass still in the
//!   process's buffer; a power cut, at most the last pass's (docs/collect.md).
//!
//! A record whose delivery is in doubt (in flight at a stop or a crash) is sent again with
//! the same event id; the ingester removes such duplicates (docs/schema.md).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};

use super::spool::{Spool, SpoolError};

/// Records read from the spool per drain pass.
const DRAIN_BATCH: usize = 2000;

/// How often the drain thread syncs what [`Shipper::send`] appended and hands new records to
/// Kafka when nobody wakes it: the bound on what a crash of a proxy or the tailer can lose.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot produce to Kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Where the shipper keeps events, and how much of them it may queue in memory for Kafka.
#[derive(Clone, Debug)]
pub struct ShipperSettings {
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// librdkafka's queue, in KiB: spooled records are handed over as it has room.
    pub queue_max_kbytes: u64,
    /// Largest record Kafka is asked to take (the producer's `message.max.bytes`).
    pub max_message_bytes: usize,
}

/// Spooled records handed to librdkafka and not yet reported, and the first of them whose
/// delivery was purged (a stop): the drain sends again from there. One lock for both, so the
/// cursor never passes a record that was not delivered.
#[derive(Default)]
struct InFlight {
    seqs: BTreeSet<u64>,
    retry_from: Option<u64>,
}

/// Records in flight, and the counts behind the metrics.
#[derive(Default)]
struct Deliveries {
    in_flight: Mutex<InFlight>,
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct ShipContext {
    deliveries: Arc<Deliveries>,
}

impl ClientContext for ShipContext {}

impl ProducerContext for ShipContext {
    /// The record's sequence number in the spool.
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<u64>) {
        let mut in_flight = self.deliveries.in_flight.lock().expect("not poisoned");
        in_flight.seqs.remove(&seq);
        match result {
            Ok(_) => {
                self.deliveries.delivered.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("mcpsiem_collect_shipped_total").increment(1);
            }
            // A stop purged what Kafka had not taken: still in the spool (the cursor never
            // passed it), sent again by the next pass or the next run.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight), _)) => {
                in_flight.retry_from = Some(in_flight.retry_from.map_or(*seq, |r| r.min(*seq)));
            }
            // With no message timeout, only errors Kafka will never accept end up here (no
            // permission on the topic, a record over the broker's own limit): retrying would
            // block the rest, so it is counted and logged, and the cursor passes it.
            Err((error, message)) => {
                let failed = self.deliveries.failed.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("mcpsiem_collect_failed_total").increment(1);
                if failed.is_power_of_two() {
                    tracing::error!(%error, failed, bytes = message.payload_len(), "Kafka refused an event for good");
                }
            }
        }
    }
}

/// The spool, and the next record not yet handed to librdkafka.
struct SpoolState {
    spool: Spool,
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
    /// Wakes the drain thread at once (a durable batch waits to be shipped).
    wake: std::sync::mpsc::SyncSender<()>,
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
        let state = Arc::new(Mutex::new(SpoolState { spool, next_to_send }));
        let producer: ThreadedProducer<ShipContext> = kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .set("linger.ms", "20")
            // Never in doubt while the process lives: the idempotent producer retries until
            // Kafka takes each record, in order, without duplicates.
            .set("message.timeout.ms", "0")
            .set("message.max.bytes", settings.max_message_bytes.to_string())
            .set("queue.buffering.max.kbytes", settings.queue_max_kbytes.to_string())
            .create_with_context(ShipContext { deliveries: deliveries.clone() })?;
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let shipper = Self {
            producer,
            topic: kafka.events_topic.clone(),
            state,
            deliveries,
            stop: Arc::new(AtomicBool::new(false)),
            wake,
        };
        let drain = shipper.clone();
        std::thread::Builder::new().name("spool-drain".into()).spawn(move || drain.drain_loop(woken)).map_err(|e| {
            ShipError::Spool(SpoolError::Io { dir: settings.spool_dir.display().to_string(), source: e })
        })?;
        Ok(shipper)
    }

    /// Ships one event: appended to the spool, synced and handed to Kafka by the next drain
    /// pass. `Err` only when the spool is full or cannot be written (the caller must count
    /// the event as refused).
    pub fn send(&self, key: Option<&str>, payload: &[u8]) -> Result<(), ShipError> {
        let mut state = self.state.lock().expect("not poisoned");
        state.spool.append(key.map(str::as_bytes), payload)?;
        metrics::counter!("mcpsiem_collect_spooled_total").increment(1);
        Ok(())
    }

    /// Takes a batch whole or not at all: written to the spool and synced to disk before
    /// returning, then shipped from there. `Err` (the spool is full, or cannot be written)
    /// means the caller must not acknowledge any of the batch; a full spool is found before
    /// anything is written.
    pub fn send_durable(&self, records: &[(Option<&str>, &[u8])]) -> Result<(), ShipError> {
        let needed: u64 =
            records.iter().map(|(key, payload)| super::spool::record_size(key.map(str::as_bytes), payload)).sum();
        let mut state = self.state.lock().expect("not poisoned");
        state.spool.check_room(needed)?;
        for (key, payload) in records {
            state.spool.append(key.map(str::as_bytes), payload)?;
        }
        state.spool.flush()?;
        metrics::counter!("mcpsiem_collect_spooled_total").increment(records.len() as u64);
        drop(state);
        let _ = self.wake.try_send(());
        Ok(())
    }

    /// Syncs the spool, hands spooled records to librdkafka as its queue has room, and moves
    /// the spool's cursor past what Kafka acknowledged.
    fn drain_loop(&self, woken: std::sync::mpsc::Receiver<()>) {
        let mut busy = false;
        while !self.stop.load(Ordering::Relaxed) {
            if !busy {
                let _ = woken.recv_timeout(SYNC_INTERVAL);
            }
            match self.drain_once() {
                Ok(more) => busy = more,
                Err(e) => {
                    busy = false;
                    tracing::error!(error = %e, "the spool cannot be drained; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// One pass; true when it handed over a full batch and more may be waiting.
    fn drain_once(&self) -> Result<bool, ShipError> {
        let mut state = self.state.lock().expect("not poisoned");
        state.spool.flush()?;
        if let Some(retry) = self.deliveries.in_flight.lock().expect("not poisoned").retry_from.take() {
            state.next_to_send = state.next_to_send.min(retry);
        }
        let unsent = state.next_to_send;
        let records = state.spool.read_from(unsent, DRAIN_BATCH)?;
        let mut handed = 0;
        for record in records {
            let mut out = BaseRecord::with_opaque_to(&self.topic, Box::new(record.seq)).payload(&record.payload[..]);
            if let Some(key) = record.key.as_deref() {
                out = out.key(key);
            }
            // Marked in flight first: a delivery can be reported before `send` returns.
            self.deliveries.in_flight.lock().expect("not poisoned").seqs.insert(record.seq);
            match self.producer.send(out) {
                Ok(()) => {
                    state.next_to_send = record.seq + 1;
                    handed += 1;
                }
                Err((error, _)) => {
                    self.deliveries.in_flight.lock().expect("not poisoned").seqs.remove(&record.seq);
                    if !matches!(error, KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) {
                        tracing::warn!(%error, "cannot hand a spooled event to Kafka yet");
                    }
                    break;
                }
            }
        }
        let acknowledged = {
            let in_flight = self.deliveries.in_flight.lock().expect("not poisoned");
            // A purge reported since the sends above: the cursor stops before it.
            [in_flight.seqs.first().copied(), in_flight.retry_from].into_iter().flatten().min()
        };
        let next_to_send = state.next_to_send;
        state.spool.acknowledge(acknowledged.unwrap_or(next_to_send).min(next_to_send))?;
        metrics::gauge!("mcpsiem_collect_spool_pending").set(state.spool.pending() as f64);
        Ok(handed == DRAIN_BATCH)
    }

    /// Makes every event handed over so far durable (synced in the spool); the tailer
    /// saves its read position after this.
    pub fn flush(&self) -> Result<(), ShipError> {
        Ok(self.state.lock().expect("not poisoned").spool.flush()?)
    }

    /// Events in the spool that Kafka has not acknowledged yet.
    pub fn spooled(&self) -> u64 {
        self.state.lock().expect("not poisoned").spool.pending()
    }

    /// Events Kafka acknowledged, and events it refused for good.
    pub fn delivered(&self) -> (u64, u64) {
        (self.deliveries.delivered.load(Ordering::Relaxed), self.deliveries.failed.load(Ordering::Relaxed))
    }

    /// Waits up to `timeout` for the spool to drain. What Kafka has not taken by then stays
    /// in the spool for the next run; returns how many events the spool holds. Stops the
    /// drain thread.
    pub fn close(&self, timeout: Duration) -> Result<u64, ShipError> {
        let deadline = std::time::Instant::now() + timeout;
        while self.spooled() > 0 && std::time::Instant::now() < deadline {
            let _ = self.wake.try_send(());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop.store(true, Ordering::Relaxed);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match self.producer.flush(left.max(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(KafkaError::Flush(_)) => {
                // Purged records are still in the spool: the next run sends them. One Kafka
                // stored without answering is sent again, with the same event id, which the
                // ingester drops as a duplicate.
                self.producer.purge(PurgeConfig::default().queue().inflight());
                self.producer.flush(Duration::from_secs(5))?;
            }
            Err(e) => return Err(e.into()),
        }
        let mut state = self.state.lock().expect("not poisoned");
        state.spool.flush()?;
        // Record what Kafka acknowledged during the last waits.
        let acknowledged = {
            let in_flight = self.deliveries.in_flight.lock().expect("not poisoned");
            [in_flight.seqs.first().copied(), in_flight.retry_from].into_iter().flatten().min()
        };
        let next_to_send = state.next_to_send;
        state.spool.acknowledge(acknowledged.unwrap_or(next_to_send).min(next_to_send))?;
        let left = state.spool.pending();
        if left > 0 {
            tracing::warn!(left, "Kafka did not take every event in time: they wait in the spool for the next run");
        }
        Ok(left)
    }
}
