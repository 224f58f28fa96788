//! The live path: events topic in, alerts topic out.
//!
//! Delivery is at least once: offsets are committed only after the alerts raised by the
//! events before them were acknowledged by the broker. After a crash some alerts may be sent
//! again; they carry the same id (derived from the rule and the events), so consumers can
//! drop repeats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcpsiem_event::kafka::KafkaConfig;
use mcpsiem_event::parse_event;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::Alert;
use crate::config::DetectConfig;
use crate::engine::{Engine, EngineStats};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("alerts were not acknowledged by the broker within {0:?}; is it reachable?")]
    FlushTimeout(Duration),
}

/// How a run ends.
#[derive(Clone, Debug, Default)]
pub struct StreamControl {
    pub stop: Arc<AtomicBool>,
    /// Stop once nothing arrived for this long (tests, benchmarks).
    pub stop_when_idle: Option<Duration>,
}

/// Totals of one run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StreamSummary {
    pub records: u64,
    /// Records that are not events (they are the ingester's dead letters; skipped here).
    pub undecodable: u64,
    #[serde(flatten)]
    pub engine: EngineStats,
}

pub struct Detector {
    consumer: BaseConsumer,
    producer: ThreadedProducer<DefaultProducerContext>,
    alerts_topic: String,
    max_record_bytes: usize,
    engine: Engine,
}

impl Detector {
    pub fn new(
        kafka: &KafkaConfig,
        config: &DetectConfig,
        engine: Engine,
        max_record_bytes: usize,
    ) -> Result<Self, StreamError> {
        let mut client = kafka.client_config();
        client
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Alerts within a second: a fetch waits at most this long for data to arrive
            // (librdkafka's default, 500 ms, is half the budget).
            .set("fetch.wait.max.ms", "100");
        for (key, value) in &kafka.properties {
            client.set(key, value);
        }
        let consumer: BaseConsumer = client.create()?;
        consumer.subscribe(&[&kafka.events_topic])?;
        let mut producer_config = kafka.client_config();
        producer_config.set("enable.idempotence", "true").set("compression.type", "zstd").set("linger.ms", "5");
        for (key, value) in &kafka.properties {
            producer_config.set(key, value);
        }
        let producer: ThreadedProducer<DefaultProducerContext> = producer_config.create()?;
        Ok(Self { consumer, producer, alerts_topic: kafka.alerts_topic.clone(), max_record_bytes, engine })
    }

    fn send(&self, alert: &Alert) -> Result<(), StreamError> {
        let payload = alert.to_json();
        let mut record = BaseRecord::<str, str>::to(&self.alerts_topic).key(&alert.rule_id).payload(&payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn checkpoint(&self) -> Result<(), StreamError> {
        let limit = Duration::from_secs(60);
        self.producer.flush(limit).map_err(|_| StreamError::FlushTimeout(limit))?;
        if let Ok(positions) = self.consumer.position()
            && positions.count() > 0
            && let Err(e) = self.consumer.commit(&positions, CommitMode::Async)
        {
            tracing::debug!(error = %e, "offset commit failed; retried at the next checkpoint");
        }
        Ok(())
    }

    /// Tells the engine which partitions this instance reads, so its watermark waits for a
    /// newly assigned partition's first event instead of finding it "too late".
    fn sync_sources(consumer: &BaseConsumer, engine: &mut Engine, known: &mut std::collections::HashSet<i32>) {
        let Ok(assignment) = consumer.assignment() else { return };
        let assigned: std::collections::HashSet<i32> = assignment.elements().iter().map(|e| e.partition()).collect();
        for partition in assigned.difference(known) {
            engine.expect_source(*partition);
        }
        for partition in known.difference(&assigned) {
            engine.forget_source(*partition);
        }
        *known = assigned;
    }

    pub fn run(mut self, control: &StreamControl) -> Result<StreamSummary, StreamError> {
        let mut summary = StreamSummary::default();
        let mut last_message = Instant::now();
        let mut last_checkpoint = Instant::now();
        let mut last_status = Instant::now();
        let mut pending_alerts = false;
        let mut known_partitions = std::collections::HashSet::new();
        while !control.stop.load(Ordering::Relaxed) {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    last_message = Instant::now();
                    if !known_partitions.contains(&message.partition()) {
                        Self::sync_sources(&self.consumer, &mut self.engine, &mut known_partitions);
                    }
                    summary.records += 1;
                    let Some(payload) = message.payload() else { continue };
                    match parse_event(payload, self.max_record_bytes) {
                        Ok(event) => {
                            for alert in self.engine.process_from(message.partition(), &event) {
                                tracing::info!(rule = %alert.rule_title, level = alert.level.as_str(), group = ?alert.group, "alert");
                                self.send(&alert)?;
                                pending_alerts = true;
                            }
                        }
                        Err(_) => {
                            summary.undecodable += 1;
                            metrics::counter!("mcpsiem_detect_undecodable_total").increment(1);
                        }
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries on its own"),
                None => {}
            }
            if last_checkpoint.elapsed() >= Duration::from_secs(1) {
                last_checkpoint = Instant::now();
                Self::sync_sources(&self.consumer, &mut self.engine, &mut known_partitions);
                for alert in self.engine.tick() {
                    self.send(&alert)?;
                }
                self.checkpoint()?;
                pending_alerts = false;
            }
            if last_status.elapsed() >= Duration::from_secs(10) {
                last_status = Instant::now();
                tracing::info!(
                    records = summary.records,
                    alerts = self.engine.stats.alerts,
                    state = self.engine.state_entries(),
                    "detect progress"
                );
            }
            if control.stop_when_idle.is_some_and(|idle| last_message.elapsed() >= idle) && summary.records > 0 {
                // A bounded run (backfill, test) ends like a replay: every window closes.
                for alert in self.engine.finish() {
                    self.send(&alert)?;
                }
                break;
            }
        }
        // Stopping on a signal is not the end of time: open windows and held first-seen
        // values are dropped, not fired. (Rebuilding them on restart is not done yet.)
        if pending_alerts || summary.records > 0 {
            self.checkpoint()?;
        }
        summary.engine = self.engine.stats.clone();
        Ok(summary)
    }
}
