//! The live path: events topic in, alerts topic out, and the repeats folded into open
//! alerts to the alert-changes topic (whose closes end them).
//!
//! Delivery is at least once: offsets are committed only after the alerts raised by the
//! events before them were acknowledged by the broker. After a crash some alerts may be sent
//! again; they carry the same id (derived from the rule and the events), so consumers can
//! drop repeats.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcpsiem_event::parse_event;
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use crate::Alert;
use crate::closes::CloseFollower;
use crate::config::DetectConfig;
use crate::engine::{Engine, EngineStats};
use crate::reload::{RuleWatch, reload};
use crate::state_file::{Snapshot, StateFileError};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("alerts were not acknowledged by the broker within {0:?}; is it reachable?")]
    FlushTimeout(Duration),
    #[error(transparent)]
    State(#[from] StateFileError),
}

/// Resumes partitions at the snapshot's offsets (once each) and reports the consumer lag.
struct DetectContext {
    topic: String,
    resume: Mutex<BTreeMap<i32, i64>>,
}

impl ClientContext for DetectContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else { return };
        for (partition, stats) in &topic.partitions {
            if *partition >= 0 && stats.consumer_lag >= 0 {
                metrics::gauge!("mcpsiem_detect_lag_records", "partition" => partition.to_string())
                    .set(stats.consumer_lag as f64);
            }
        }
    }

    /// A partition's end is news for the watermark (`enable.partition.eof`), not an error:
    /// librdkafka reports it here too, and the default would log each one as an error.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            tracing::trace!(reason, "partition end reached");
        } else {
            tracing::error!(error = %error, reason, "librdkafka error");
        }
    }
}

impl ConsumerContext for DetectContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            let mut resume = self.resume.lock().expect("no panics while holding the lock");
            let mut assignment = TopicPartitionList::new();
            for element in tpl.elements() {
                let partition = element.partition();
                // The snapshot's offset is older than the committed one: reading from it
                // rebuilds the windows the snapshot does not hold yet.
                let offset = resume.remove(&partition).map_or(Offset::Stored, Offset::Offset);
                tracing::info!(partition, ?offset, "partition assigned");
                if let Err(e) = assignment.add_partition_offset(element.topic(), partition, offset) {
                    tracing::error!(partition, error = %e, "cannot set the resume offset");
                }
            }
            if let Err(e) = consumer.assign(&assignment) {
                tracing::error!(error = %e, "assigning partitions failed");
            }
        } else {
            if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                tracing::error!(error = ?err, "rebalance error; dropping the assignment");
            }
            if let Err(e) = consumer.unassign() {
                tracing::error!(error = %e, "unassigning partitions failed");
            }
        }
    }
}

/// How a run ends.
#[derive(Clone, Debug, Default)]
pub struct StreamControl {
    pub stop: Arc<AtomicBool>,
    /// Stop once nothing arrived for this long (tests, benchmarks).
    pub stop_when_idle: Option<Duration>,
    /// Set (by SIGHUP) to reload the rules; cleared when done.
    pub reload: Arc<AtomicBool>,
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
    consumer: BaseConsumer<DetectContext>,
    /// How the consumer was made, to make a new one when the group watch finds it wedged.
    client: rdkafka::ClientConfig,
    producer: ThreadedProducer<DefaultProducerContext>,
    events_topic: String,
    alerts_topic: String,
    alert_changes_topic: String,
    /// Closes of alerts, which end their repeats.
    closes: CloseFollower,
    max_record_bytes: usize,
    config: DetectConfig,
    engine: Engine,
    /// Rejoins the group when it left partitions without a consumer (see `group_watch`).
    group_watch: mcpsiem_runtime::group_watch::GroupWatch,
    /// Next offset per partition as of the last snapshot or the restored one.
    offsets: BTreeMap<i32, i64>,
}

impl Detector {
    /// Connects to Kafka and, when `detect.state_path` holds a snapshot of this topic,
    /// restores the engine's state from it and resumes where it was taken.
    pub fn new(
        kafka: &KafkaConfig,
        config: &DetectConfig,
        mut engine: Engine,
        max_record_bytes: usize,
    ) -> Result<Self, StreamError> {
        let mut offsets = BTreeMap::new();
        if !config.state_path.as_os_str().is_empty()
            && let Some(snapshot) = Snapshot::load(&config.state_path)?
        {
            if snapshot.topic == kafka.events_topic {
                let entries = snapshot.engine.entries();
                let restored = engine.restore_state(snapshot.engine);
                tracing::info!(
                    path = %config.state_path.display(),
                    entries,
                    state_kept_for = restored.rules_kept,
                    state_dropped_for = ?restored.rules_dropped,
                    offsets = ?snapshot.offsets,
                    "detector state restored"
                );
                offsets = snapshot.offsets;
            } else {
                tracing::warn!(
                    path = %config.state_path.display(),
                    topic = %snapshot.topic,
                    "the detector state is for another topic; starting empty"
                );
            }
        }
        let context = DetectContext { topic: kafka.events_topic.clone(), resume: Mutex::new(offsets.clone()) };
        let mut client = kafka.client_config();
        client
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // The partition end tells the watermark a partition has nothing late on its way.
            .set("enable.partition.eof", "true")
            .set("partition.assignment.strategy", "range,roundrobin")
            .set("statistics.interval.ms", "5000")
            // Alerts within a second: a fetch waits at most this long for data to arrive
            // (librdkafka's default, 500 ms, is half the budget).
            .set("fetch.wait.max.ms", "100");
        for (key, value) in &kafka.properties {
            client.set(key, value);
        }
        let consumer: BaseConsumer<DetectContext> = client.create_with_context(context)?;
        consumer.subscribe(&[&kafka.events_topic])?;
        let mut producer_config = kafka.client_config();
        producer_config.set("enable.idempotence", "true").set("compression.type", "zstd").set("linger.ms", "5");
        for (key, value) in &kafka.properties {
            producer_config.set(key, value);
        }
        let producer: ThreadedProducer<DefaultProducerContext> = producer_config.create()?;
        let closes_since = engine.oldest_open_alert().unwrap_or_else(mcpsiem_event::Timestamp::now);
        let closes = CloseFollower::new(kafka, &config.group_id, closes_since)?;
        Ok(Self {
            consumer,
            client,
            producer,
            events_topic: kafka.events_topic.clone(),
            alerts_topic: kafka.alerts_topic.clone(),
            alert_changes_topic: kafka.alert_changes_topic.clone(),
            closes,
            max_record_bytes,
            config: config.clone(),
            engine,
            offsets,
            // Offsets are committed at every checkpoint, once a second.
            group_watch: kafka.group_watch(&kafka.events_topic, Duration::from_secs(1)).reporting_readiness("detect"),
        })
    }

    /// A new consumer in place of a wedged one that holds no partition (so no state is
    /// lost); partitions resume at the offsets committed at the last checkpoint.
    fn replace_consumer(&mut self) -> Result<(), StreamError> {
        let context = DetectContext { topic: self.events_topic.clone(), resume: Mutex::new(BTreeMap::new()) };
        let consumer: BaseConsumer<DetectContext> = self.client.create_with_context(context)?;
        consumer.subscribe(&[&self.events_topic])?;
        let wedged = std::mem::replace(&mut self.consumer, consumer);
        // Closing a wedged consumer can wait on its coordinator: not on this thread.
        std::thread::spawn(move || drop(wedged));
        Ok(())
    }

    fn send(&self, alert: &Alert) -> Result<(), StreamError> {
        self.produce(&self.alerts_topic, &alert.rule_id, &alert.to_json())
    }

    /// Sends the repeats the engine folded into open alerts to the alert-changes topic,
    /// keyed by alert like the analysts' changes.
    fn send_repeats(&mut self) -> Result<(), StreamError> {
        for change in self.engine.take_repeats() {
            tracing::debug!(alert = %change.alert_id, "alert repeated");
            self.produce(&self.alert_changes_topic, &change.alert_id, &change.to_json())?;
        }
        Ok(())
    }

    /// Ends the repeats of the alerts closed since the last look (`catch_up`: of every close
    /// made while it was down, waiting a little for them).
    fn follow_closes(&mut self, catch_up: bool) {
        let closed = if catch_up { self.closes.catch_up(Duration::from_secs(10)) } else { self.closes.closed() };
        for alert_id in closed {
            if self.engine.close_alert(&alert_id) {
                tracing::info!(alert = %alert_id, "alert closed: its rule's next firing raises a new alert");
            }
        }
    }

    fn produce(&self, topic: &str, key: &str, payload: &str) -> Result<(), StreamError> {
        let mut record = BaseRecord::<str, str>::to(topic).key(key).payload(payload);
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

    fn flush(&self) -> Result<(), StreamError> {
        let limit = Duration::from_secs(60);
        self.producer.flush(limit).map_err(|_| StreamError::FlushTimeout(limit))
    }

    /// Commits the consumed offsets once the alerts raised before them are acknowledged.
    fn checkpoint(&self) -> Result<(), StreamError> {
        self.flush()?;
        if let Ok(positions) = self.consumer.position()
            && positions.elements().iter().any(|e| matches!(e.offset(), Offset::Offset(_)))
            && let Err(e) = self.consumer.commit(&positions, CommitMode::Async)
        {
            tracing::debug!(error = %e, "offset commit failed; retried at the next checkpoint");
        }
        Ok(())
    }

    /// Writes the engine state with the offsets it corresponds to, then commits them.
    fn snapshot(&mut self) -> Result<(), StreamError> {
        self.flush()?;
        let assigned: HashSet<i32> = self
            .consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        self.offsets.retain(|partition, _| assigned.contains(partition));
        if let Ok(positions) = self.consumer.position() {
            for element in positions.elements() {
                if let Offset::Offset(next) = element.offset() {
                    self.offsets.insert(element.partition(), next);
                }
            }
        }
        if !self.config.state_path.as_os_str().is_empty() {
            let started = Instant::now();
            let snapshot = Snapshot::new(&self.events_topic, self.offsets.clone(), self.engine.export_state());
            let bytes = snapshot.save(&self.config.state_path)?;
            metrics::gauge!("mcpsiem_detect_snapshot_bytes").set(bytes as f64);
            metrics::histogram!("mcpsiem_detect_snapshot_seconds").record(started.elapsed().as_secs_f64());
        }
        // The snapshot holds the offsets, Kafka does not yet: a restart resumes at the
        // snapshot's offsets, so nothing is read twice.
        fail::fail_point!("detect::after_snapshot", |_| mcpsiem_runtime::failpoint::crash("detect::after_snapshot"));
        let mut commit = TopicPartitionList::new();
        for (partition, next) in &self.offsets {
            let _ = commit.add_partition_offset(&self.events_topic, *partition, Offset::Offset(*next));
        }
        if commit.count() > 0
            && let Err(e) = self.consumer.commit(&commit, CommitMode::Async)
        {
            tracing::debug!(error = %e, "offset commit failed; retried at the next checkpoint");
        }
        Ok(())
    }

    /// Tells the engine which partitions this instance reads, so its watermark waits for a
    /// newly assigned partition's first event instead of finding it "too late".
    fn sync_sources(consumer: &BaseConsumer<DetectContext>, engine: &mut Engine, known: &mut HashSet<i32>) {
        let Ok(assignment) = consumer.assignment() else { return };
        let assigned: HashSet<i32> = assignment.elements().iter().map(|e| e.partition()).collect();
        for partition in assigned.difference(known) {
            engine.expect_source(*partition);
        }
        for partition in known.difference(&assigned) {
            engine.forget_source(*partition);
        }
        *known = assigned;
    }

    fn reload_rules(&mut self) {
        let placeholder = Engine::new(Default::default(), self.config.engine());
        let engine = std::mem::replace(&mut self.engine, placeholder);
        self.engine = reload(engine, &self.config);
    }

    pub fn run(mut self, control: &StreamControl) -> Result<StreamSummary, StreamError> {
        let mut summary = StreamSummary::default();
        let mut last_message = Instant::now();
        let mut last_checkpoint = Instant::now();
        let mut last_snapshot = Instant::now();
        let mut last_status = Instant::now();
        let mut last_watch = Instant::now();
        let mut watch = self.config.watch_rules.then(|| RuleWatch::new(&self.config.rules));
        let snapshot_every = Duration::from_secs(self.config.snapshot_seconds.max(1));
        let mut known_partitions = HashSet::new();
        if self.engine.oldest_open_alert().is_some() {
            self.follow_closes(true);
        }
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
                            }
                            self.send_repeats()?;
                        }
                        Err(_) => {
                            summary.undecodable += 1;
                            metrics::counter!("mcpsiem_detect_undecodable_total").increment(1);
                        }
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                    if !known_partitions.contains(&partition) {
                        Self::sync_sources(&self.consumer, &mut self.engine, &mut known_partitions);
                    }
                    self.engine.source_caught_up(partition);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries on its own"),
                None => {}
            }
            if last_checkpoint.elapsed() >= Duration::from_secs(1) {
                last_checkpoint = Instant::now();
                if self.group_watch.check(&self.consumer).is_some() {
                    last_message = Instant::now();
                }
                if self.group_watch.wants_new_consumer() {
                    self.replace_consumer()?;
                    last_message = Instant::now();
                }
                let held = known_partitions.len();
                Self::sync_sources(&self.consumer, &mut self.engine, &mut known_partitions);
                if known_partitions.len() > held {
                    // Joining the group is not idleness: the new partitions' first fetch
                    // comes after it.
                    last_message = Instant::now();
                }
                self.follow_closes(false);
                for alert in self.engine.tick() {
                    self.send(&alert)?;
                }
                self.send_repeats()?;
                if last_snapshot.elapsed() >= snapshot_every {
                    last_snapshot = Instant::now();
                    self.snapshot()?;
                } else {
                    self.checkpoint()?;
                }
            }
            let files_changed = watch.as_mut().is_some_and(|w| {
                last_watch.elapsed() >= Duration::from_secs(2) && {
                    last_watch = Instant::now();
                    w.changed()
                }
            });
            if files_changed || control.reload.swap(false, Ordering::SeqCst) {
                self.reload_rules();
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
            // Idle counts once the detector holds partitions (or read something): an empty
            // topic ends a bounded run too, a group still joining does not.
            let holds_work = summary.records > 0 || !known_partitions.is_empty();
            if control.stop_when_idle.is_some_and(|idle| last_message.elapsed() >= idle) && holds_work {
                // The snapshot is taken before the end: a later run continues the windows
                // rather than inheriting ones closed early.
                self.follow_closes(false);
                self.snapshot()?;
                // A bounded run (backfill, test) ends like a replay: every window closes.
                for alert in self.engine.finish() {
                    self.send(&alert)?;
                }
                self.send_repeats()?;
                self.flush()?;
                summary.engine = self.engine.stats.clone();
                return Ok(summary);
            }
        }
        // Stopping on a signal is not the end of time: open windows and held first-seen
        // values go to the snapshot, and the next run continues them.
        self.snapshot()?;
        summary.engine = self.engine.stats.clone();
        Ok(summary)
    }
}
