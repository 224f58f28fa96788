//! The consume loop: Kafka messages to partition buffers to flush jobs, and the rebalance
//! handling that makes the lake, not Kafka, decide where each partition resumes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcpsiem_event::silence::Silence;
use mcpsiem_event::{Alert, AlertChange, Timestamp, parse_event};
use mcpsiem_lake::{CommitLog, CommitRecord, Lake, Ledger, Table};
use mcpsiem_runtime::group_watch::GroupWatch;
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use crate::IngestError;
use crate::buffer::PartitionBuffer;
use crate::config::IngestConfig;
use crate::deadletter::{DeadLetter, DeadLetterReason};
use crate::parquet_file::ParquetSettings;
use crate::writer::{FileWriter, FlushJob, FlushReport};

/// How a run of the ingester ends.
#[derive(Clone, Debug, Default)]
pub struct IngestControl {
    /// Set to stop: buffers are flushed and committed first.
    pub stop: Arc<AtomicBool>,
    /// Stop once nothing arrived for this long and everything buffered is committed (for
    /// benchmarks, tests and one-shot backfills).
    pub stop_when_idle: Option<Duration>,
    /// Stop once this run committed this many records to the lake (for benchmarks, which
    /// must not count an idle wait, and tests).
    pub stop_after_records: Option<u64>,
}

/// Totals of one run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct IngestSummary {
    /// Distinct records taken: one read again after a rebalance or a failed flush (its
    /// buffer was dropped uncommitted) counts once.
    pub records: u64,
    /// Records whose offsets this run's commits cover (events, dead letters and dropped
    /// second copies): what `stop_after_records` waits for.
    pub records_committed: u64,
    /// Records taken a second time after their uncommitted buffer was dropped.
    pub records_read_again: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub commits: u64,
    pub bytes_written: u64,
    pub fenced: u64,
    pub redelivered_skipped: u64,
    /// Second copies of events dropped (the same `event.id` within the dedup window).
    pub duplicates: u64,
    /// From the start of the run until everything taken was committed.
    pub run_seconds: f64,
}

/// A change of partition ownership seen in a rebalance callback.
enum OwnershipChange {
    Assigned { partition: i32, resume: Option<CommitRecord> },
    Revoked { partition: i32 },
    Failed { partition: i32, error: IngestError },
}

struct IngestContext {
    lake: Lake,
    topic: String,
    runtime: Handle,
    staging_grace: Duration,
    /// Records read again before each resume point, for their ids.
    dedup_window: usize,
    changes: Mutex<Vec<OwnershipChange>>,
}

impl IngestContext {
    /// Rolls the partition's latest flush forward, removes leftovers, and says where to resume.
    fn recover(&self, partition: i32) -> Result<Option<CommitRecord>, IngestError> {
        let log = CommitLog::new(self.lake.clone(), &self.topic, partition);
        let mut attempt = 0;
        loop {
            let result = self.runtime.block_on(async {
                let latest = log.recover(&Ledger::new(self.lake.clone())).await?;
                log.sweep_staging(self.staging_grace).await?;
                Ok::<_, IngestError>(latest)
            });
            match result {
                Ok(latest) => return Ok(latest),
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(partition, error = %e, attempt, "cannot read the lake's commit log; retrying");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn note(&self, change: OwnershipChange) {
        self.changes.lock().expect("no panics while holding the lock").push(change);
    }
}

impl ClientContext for IngestContext {
    /// The lag comes from librdkafka's statistics, which it computes from the high
    /// watermarks that fetch responses carry: asking the broker for watermarks costs a
    /// round trip per partition, and on a busy broker those requests delay the fetches.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else { return };
        for (partition, stats) in &topic.partitions {
            if *partition >= 0 && stats.consumer_lag >= 0 {
                metrics::gauge!("mcpsiem_ingest_lag_records", "partition" => partition.to_string())
                    .set(stats.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut assignment = TopicPartitionList::new();
                for element in tpl.elements() {
                    let partition = element.partition();
                    let offset = match self.recover(partition) {
                        Ok(resume) => {
                            let offset = resume_offset(resume.as_ref(), self.dedup_window);
                            tracing::info!(
                                topic = element.topic(),
                                partition,
                                ?offset,
                                "partition assigned; resuming from the lake's commit log"
                            );
                            self.note(OwnershipChange::Assigned { partition, resume });
                            offset
                        }
                        Err(error) => {
                            self.note(OwnershipChange::Failed { partition, error });
                            continue;
                        }
                    };
                    if let Err(e) = assignment.add_partition_offset(element.topic(), partition, offset) {
                        tracing::error!(partition, error = %e, "cannot set the resume offset");
                    }
                }
                if let Err(e) = consumer.assign(&assignment) {
                    tracing::error!(error = %e, "assigning partitions failed");
                }
            }
            other => {
                if other != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::error!(error = ?other, "rebalance error; dropping the assignment");
                }
                for element in tpl.elements() {
                    self.note(OwnershipChange::Revoked { partition: element.partition() });
                }
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassigning partitions failed");
                }
            }
        }
    }
}

/// The bounds an event's time must fall in, relative to its arrival.
struct TimeBounds {
    max_age_micros: i64,
    max_future_micros: i64,
}

/// The ingester of one process.
pub struct Ingester {
    consumer: BaseConsumer<IngestContext>,
    state: IngestState,
    factory: ConsumerFactory,
}

/// How the ingester makes its consumer, kept to make a new one when the group watch finds
/// the old one wedged.
struct ConsumerFactory {
    client: ClientConfig,
    lake: Lake,
    topic: String,
    runtime: Handle,
    staging_grace: Duration,
    dedup_window: usize,
}

impl ConsumerFactory {
    fn create(&self) -> Result<BaseConsumer<IngestContext>, IngestError> {
        let context = IngestContext {
            lake: self.lake.clone(),
            topic: self.topic.clone(),
            runtime: self.runtime.clone(),
            staging_grace: self.staging_grace,
            dedup_window: self.dedup_window,
            changes: Mutex::new(Vec::new()),
        };
        let consumer: BaseConsumer<IngestContext> =
            self.client.create_with_context(context).map_err(IngestError::Kafka)?;
        consumer.subscribe(&[&self.topic]).map_err(IngestError::Kafka)?;
        Ok(consumer)
    }
}

/// Everything but the consumer, so that a message borrowed from the consumer can be taken
/// while the state changes.
struct IngestState {
    config: IngestConfig,
    /// The table this ingester fills: events from the events topic, or alerts from the
    /// alerts topic.
    table: Table,
    topic: String,
    max_record_bytes: usize,
    bounds: TimeBounds,
    buffers: HashMap<i32, PartitionBuffer>,
    next_epoch: u64,
    jobs: Option<SyncSender<FlushJob>>,
    reports: Receiver<FlushReport>,
    writer: Option<std::thread::JoinHandle<()>>,
    in_flight: usize,
    summary: IngestSummary,
    group_watch: GroupWatch,
    /// Per partition, one past the highest offset taken this run.
    taken_up_to: HashMap<i32, i64>,
}

impl Ingester {
    /// An ingester of the events topic into the `events` table.
    pub fn new(
        kafka: &KafkaConfig,
        config: &IngestConfig,
        max_record_bytes: usize,
        lake: Lake,
        runtime: Handle,
    ) -> Result<Self, IngestError> {
        Self::for_table(Table::Events, kafka, config, max_record_bytes, lake, runtime)
    }

    /// An ingester of `table`: `events` from the events topic, `alerts` from the alerts
    /// topic (in its own consumer group, `<group_id>.alerts`), or `alert_changes` from the
    /// alert-changes topic (group `<group_id>.alert-changes`).
    pub fn for_table(
        table: Table,
        kafka: &KafkaConfig,
        config: &IngestConfig,
        max_record_bytes: usize,
        lake: Lake,
        runtime: Handle,
    ) -> Result<Self, IngestError> {
        let (topic, group_id) = match table {
            Table::Alerts => (kafka.alerts_topic.clone(), format!("{}.alerts", config.group_id)),
            Table::AlertChanges => (kafka.alert_changes_topic.clone(), format!("{}.alert-changes", config.group_id)),
            Table::Silences => (kafka.silences_topic.clone(), format!("{}.silences", config.group_id)),
            _ => (kafka.events_topic.clone(), config.group_id.clone()),
        };
        let mut config = config.clone();
        if matches!(table, Table::Alerts | Table::AlertChanges | Table::Silences) {
            // An alert's id is its own (the detector's), a change's the query service's;
            // events are what collectors resend.
            config.dedup_window_records = 0;
        }
        let config = &config;
        let mut client = kafka.client_config();
        client
            .set("group.id", &group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Eager assignment: the rebalance callback recovers each partition from the lake
            // before its first fetch, which the cooperative protocol does not allow.
            .set("partition.assignment.strategy", "range,roundrobin")
            .set("enable.partition.eof", "false")
            // Lag (records not yet committed to the lake) for the metrics; see `stats`.
            .set("statistics.interval.ms", "15000");
        for (key, value) in &kafka.properties {
            client.set(key, value);
        }
        let factory = ConsumerFactory {
            client,
            lake: lake.clone(),
            topic: topic.clone(),
            runtime: runtime.clone(),
            staging_grace: config.staging_grace(),
            dedup_window: config.dedup_window_records,
        };
        let consumer = factory.create()?;

        // One job in the queue and one being written: enough to overlap decoding with
        // encoding, and a bound on memory.
        let (jobs, job_rx) = mpsc::sync_channel(1);
        let (report_tx, reports) = mpsc::channel();
        let writer = FileWriter {
            ledger: Ledger::new(lake.clone()),
            lake,
            topic: topic.clone(),
            writer_id: writer_id(),
            settings: ParquetSettings { zstd_level: config.zstd_level, row_group_rows: config.row_group_rows },
            keep_commits: config.keep_commits,
            runtime,
        };
        let writer = std::thread::Builder::new()
            .name("lake-writer".into())
            .spawn(move || writer.run(job_rx, report_tx))
            .map_err(|e| IngestError::Thread(e.to_string()))?;

        // A partition is committed when its buffer rolls: by age at the latest.
        let mut group_watch = kafka.group_watch(&topic, config.roll_age());
        // The stage's readiness follows its events consumer (the alerts topic is quiet).
        if table == Table::Events {
            group_watch = group_watch.reporting_readiness("ingest");
        }
        let state = IngestState {
            table,
            topic,
            config: config.clone(),
            max_record_bytes,
            bounds: TimeBounds {
                max_age_micros: (config.max_event_age_hours as i64).saturating_mul(3_600_000_000),
                max_future_micros: (config.max_event_future_seconds as i64).saturating_mul(1_000_000),
            },
            buffers: HashMap::new(),
            next_epoch: 0,
            jobs: Some(jobs),
            reports,
            writer: Some(writer),
            in_flight: 0,
            summary: IngestSummary::default(),
            group_watch,
            taken_up_to: HashMap::new(),
        };
        Ok(Self { consumer, state, factory })
    }

    /// Consumes until stopped, then flushes and commits everything buffered.
    pub fn run(self, control: &IngestControl) -> Result<IngestSummary, IngestError> {
        let Self { consumer, mut state, factory } = self;
        let mut owned = consumer;
        let started = Instant::now();
        let mut last_message = Instant::now();
        let mut last_tick = Instant::now();
        let mut last_status = Instant::now();
        loop {
            if control.stop.load(Ordering::Relaxed) {
                break;
            }
            if state.buffers.is_empty() && state.group_watch.wants_new_consumer() {
                let wedged = std::mem::replace(&mut owned, factory.create()?);
                // Closing a wedged consumer can wait on its coordinator: not on this thread.
                std::thread::spawn(move || drop(wedged));
                last_message = Instant::now();
            }
            let consumer = &owned;
            let polled = consumer.poll(Duration::from_millis(100));
            if state.apply_ownership_changes(consumer)? {
                // Joining the group and the first fetch are not idleness: a backfill must
                // not stop before its partitions delivered anything.
                last_message = Instant::now();
            }
            match polled {
                Some(Ok(message)) => {
                    last_message = Instant::now();
                    state.take(&message);
                    // Borrowed messages pin librdkafka buffers: let go before possibly blocking.
                    drop(message);
                    state.roll_if_over_budget()?;
                }
                Some(Err(e)) => {
                    metrics::counter!("mcpsiem_ingest_kafka_errors_total").increment(1);
                    tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries on its own");
                }
                None => {}
            }
            if last_tick.elapsed() >= Duration::from_millis(250) {
                last_tick = Instant::now();
                state.roll_aged()?;
                state.handle_reports(consumer)?;
                state.export_gauges();
                if state.group_watch.check(consumer).is_some() {
                    // The rejoin is a new membership: a backfill must not stop before it.
                    last_message = Instant::now();
                }
            }
            if last_status.elapsed() >= Duration::from_secs(10) {
                last_status = Instant::now();
                tracing::info!(
                    records = state.summary.records,
                    events = state.summary.events,
                    dead_letters = state.summary.dead_letters,
                    commits = state.summary.commits,
                    partitions = state.buffers.len(),
                    "ingest progress"
                );
            }
            if let Some(n) = control.stop_after_records
                && state.summary.records >= n
            {
                // Everything taken goes to the lake now; the run ends once N records are
                // committed. A flush fenced by a rebalance is read again and committed by a
                // later one, so stopping as soon as N were taken could leave them unwritten.
                state.flush_all()?;
                state.handle_reports(consumer)?;
                if state.summary.records_committed >= n && state.in_flight == 0 {
                    break;
                }
            }
            if let Some(idle) = control.stop_when_idle
                && last_message.elapsed() >= idle
                && !state.buffers.is_empty()
            {
                state.flush_all()?;
                state.handle_reports(consumer)?;
                if state.in_flight == 0 && state.buffers.values().all(PartitionBuffer::is_empty) {
                    break;
                }
            }
        }
        let mut summary = state.shutdown(&owned)?;
        summary.run_seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }
}

impl IngestState {
    /// Applies the rebalance callback's changes; true when any happened.
    fn apply_ownership_changes(&mut self, consumer: &BaseConsumer<IngestContext>) -> Result<bool, IngestError> {
        let changes = std::mem::take(&mut *consumer.context().changes.lock().expect("no panics under the lock"));
        let changed = !changes.is_empty();
        for change in changes {
            match change {
                OwnershipChange::Assigned { partition, resume } => {
                    self.next_epoch += 1;
                    self.buffers.insert(
                        partition,
                        PartitionBuffer::new(
                            self.table,
                            partition,
                            self.next_epoch,
                            resume.as_ref(),
                            self.config.dedup_window_records,
                        ),
                    );
                }
                OwnershipChange::Revoked { partition } => {
                    // Uncommitted records are dropped, not flushed: the next owner reads them
                    // again from the lake's resume point, so nothing is lost or doubled.
                    self.buffers.remove(&partition);
                }
                OwnershipChange::Failed { partition, error } => {
                    tracing::error!(partition, error = %error, "cannot recover the partition from the lake; stopping");
                    return Err(error);
                }
            }
        }
        Ok(changed)
    }

    fn take(&mut self, message: &BorrowedMessage<'_>) {
        let partition = message.partition();
        let offset = message.offset();
        let Some(buffer) = self.buffers.get_mut(&partition) else { return };
        if !buffer.wants(offset) {
            if buffer.is_priming(offset) {
                // Committed before this assignment: only its id matters, to know a copy.
                if let Some(id) = message.payload().and_then(crate::recent_ids::event_id_of) {
                    buffer.recent.insert(id);
                }
                return;
            }
            self.summary.redelivered_skipped += 1;
            metrics::counter!("mcpsiem_ingest_redelivered_skipped_total").increment(1);
            return;
        }
        let taken_up_to = self.taken_up_to.entry(partition).or_insert(0);
        if offset >= *taken_up_to {
            *taken_up_to = offset + 1;
            self.summary.records += 1;
        } else {
            self.summary.records_read_again += 1;
        }
        metrics::counter!("mcpsiem_ingest_records_consumed_total").increment(1);
        let received = Timestamp::now();
        let payload = message.payload();
        let reason = match payload {
            None => DeadLetterReason::EmptyMessage,
            // Alerts keep their own times: a replay of last month raises last month's alerts.
            Some(bytes) if self.table == Table::Alerts => match Alert::from_json(bytes) {
                Ok(alert) => {
                    buffer.add_alert(offset, bytes.len(), alert);
                    self.summary.events += 1;
                    return;
                }
                Err(e) => DeadLetterReason::NotAnAlert(e.to_string()),
            },
            Some(bytes) if self.table == Table::AlertChanges => match AlertChange::from_json(bytes) {
                Ok(change) => {
                    buffer.add_alert_change(offset, bytes.len(), change);
                    self.summary.events += 1;
                    return;
                }
                Err(e) => DeadLetterReason::NotAnAlertChange(e.to_string()),
            },
            Some(bytes) if self.table == Table::Silences => match Silence::from_json(bytes) {
                Ok(silence) => {
                    buffer.add_silence(offset, bytes.len(), silence);
                    self.summary.events += 1;
                    return;
                }
                Err(e) => DeadLetterReason::NotASilence(e.to_string()),
            },
            Some(bytes) => match parse_event(bytes, self.max_record_bytes) {
                Ok(mut event) => {
                    let age = received.as_micros().saturating_sub(event.time.as_micros());
                    if age > self.bounds.max_age_micros {
                        DeadLetterReason::TooOld { event_time: event.time }
                    } else if -age > self.bounds.max_future_micros {
                        DeadLetterReason::InFuture { event_time: event.time }
                    } else if !buffer.recent.insert(event.id.0.0) {
                        buffer.add_duplicate(offset, bytes.len());
                        self.summary.duplicates += 1;
                        metrics::counter!("mcpsiem_ingest_duplicates_dropped_total").increment(1);
                        return;
                    } else {
                        event.ingest_time = Some(received);
                        buffer.add_event(offset, bytes.len(), &event);
                        self.summary.events += 1;
                        return;
                    }
                }
                Err(e) => DeadLetterReason::Decode(e),
            },
        };
        metrics::counter!("mcpsiem_ingest_dead_letters_total", "reason" => reason.code()).increment(1);
        self.summary.dead_letters += 1;
        buffer.add_dead_letter(DeadLetter {
            received_time: received,
            topic: message.topic().to_string(),
            partition,
            offset,
            key: message.key().map(<[u8]>::to_vec),
            kafka_time: message.timestamp().to_millis().and_then(|ms| ms.checked_mul(1000)).map(Timestamp::from_micros),
            reason,
            raw: payload.map(<[u8]>::to_vec).unwrap_or_default(),
        });
    }

    fn buffered_bytes(&self) -> usize {
        self.buffers.values().map(PartitionBuffer::bytes).sum()
    }

    /// Over the memory budget: write the largest buffer.
    fn roll_if_over_budget(&mut self) -> Result<(), IngestError> {
        while self.buffered_bytes() as u64 >= self.config.roll_bytes {
            let largest = self.buffers.values().max_by_key(|b| b.bytes()).map(|b| b.partition);
            match largest {
                Some(partition) => self.flush(partition)?,
                None => break,
            }
        }
        Ok(())
    }

    fn roll_aged(&mut self) -> Result<(), IngestError> {
        let age = self.config.roll_age();
        let due: Vec<i32> = self
            .buffers
            .values()
            .filter(|b| b.opened().is_some_and(|t| t.elapsed() >= age))
            .map(|b| b.partition)
            .collect();
        for partition in due {
            self.flush(partition)?;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), IngestError> {
        let partitions: Vec<i32> = self.buffers.keys().copied().collect();
        for partition in partitions {
            self.flush(partition)?;
        }
        Ok(())
    }

    fn flush(&mut self, partition: i32) -> Result<(), IngestError> {
        let Some(job) = self.buffers.get_mut(&partition).and_then(PartitionBuffer::cut) else { return Ok(()) };
        let jobs = self.jobs.as_ref().expect("the job queue lives until shutdown");
        // Blocks while the writer is busy: the backpressure that bounds memory.
        jobs.send(job).map_err(|_| IngestError::WriterGone)?;
        self.in_flight += 1;
        Ok(())
    }

    fn handle_reports(&mut self, consumer: &BaseConsumer<IngestContext>) -> Result<(), IngestError> {
        loop {
            let report = match self.reports.try_recv() {
                Ok(report) => report,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Err(IngestError::WriterGone),
            };
            self.in_flight = self.in_flight.saturating_sub(1);
            self.on_report(consumer, report)?;
        }
    }

    fn on_report(&mut self, consumer: &BaseConsumer<IngestContext>, report: FlushReport) -> Result<(), IngestError> {
        match report {
            FlushReport::Committed { partition, start, end, events, dead_letters, bytes, .. } => {
                self.summary.commits += 1;
                // The commit chain never covers an offset twice.
                self.summary.records_committed += end.saturating_sub(start).max(0) as u64;
                self.summary.bytes_written += bytes;
                metrics::counter!("mcpsiem_ingest_events_written_total").increment(events);
                metrics::counter!("mcpsiem_ingest_dead_letters_written_total").increment(dead_letters);
                // Advisory only: the lake decides where to resume. This keeps Kafka's lag
                // tooling (kafka-consumer-groups, Burrow) meaningful.
                let mut offsets = TopicPartitionList::new();
                if offsets.add_partition_offset(&self.topic, partition, Offset::Offset(end)).is_ok()
                    && let Err(e) = consumer.commit(&offsets, CommitMode::Async)
                {
                    tracing::debug!(partition, error = %e, "advisory Kafka offset commit failed");
                }
            }
            FlushReport::Fenced { partition, epoch } => {
                self.summary.fenced += 1;
                metrics::counter!("mcpsiem_ingest_fenced_total").increment(1);
                self.resume_from_lake(consumer, partition, epoch)?;
            }
            FlushReport::Failed { partition, epoch, error } => {
                metrics::counter!("mcpsiem_ingest_flush_failures_total").increment(1);
                tracing::error!(partition, error = %error, "writing a flush failed; re-reading its records from Kafka");
                std::thread::sleep(Duration::from_secs(1));
                self.resume_from_lake(consumer, partition, epoch)?;
            }
        }
        Ok(())
    }

    /// Drops what is buffered for a partition and seeks back to the lake's latest commit.
    fn resume_from_lake(
        &mut self,
        consumer: &BaseConsumer<IngestContext>,
        partition: i32,
        epoch: u64,
    ) -> Result<(), IngestError> {
        if self.buffers.get(&partition).is_none_or(|b| b.epoch > epoch) {
            return Ok(()); // revoked, or already resumed since
        }
        let resume = consumer.context().recover(partition)?;
        let offset = resume_offset(resume.as_ref(), self.config.dedup_window_records);
        self.next_epoch += 1;
        let window = self.config.dedup_window_records;
        self.buffers
            .insert(partition, PartitionBuffer::new(self.table, partition, self.next_epoch, resume.as_ref(), window));
        if let Err(e) = consumer.seek(&self.topic, partition, offset, Duration::from_secs(10)) {
            // The buffer refuses offsets below the resume point anyway; a failed seek only
            // means records after it are skipped until the next rebalance, so stop instead.
            return Err(IngestError::Kafka(e));
        }
        tracing::info!(partition, ?offset, "resumed the partition from the lake's commit log");
        Ok(())
    }

    fn export_gauges(&mut self) {
        metrics::gauge!("mcpsiem_ingest_buffered_bytes").set(self.buffered_bytes() as f64);
        let oldest = self.buffers.values().filter_map(PartitionBuffer::opened).map(|t| t.elapsed()).max();
        metrics::gauge!("mcpsiem_ingest_open_buffer_age_seconds").set(oldest.unwrap_or_default().as_secs_f64());
    }

    fn shutdown(mut self, consumer: &BaseConsumer<IngestContext>) -> Result<IngestSummary, IngestError> {
        self.flush_all()?;
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            writer.join().map_err(|_| IngestError::WriterGone)?;
        }
        while let Ok(report) = self.reports.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            // A fenced or failed flush at shutdown is re-read by whoever owns the partition next.
            if let FlushReport::Committed { .. } = report {
                self.on_report(consumer, report)?;
            }
        }
        Ok(self.summary)
    }
}

/// Where a partition's reading resumes: `dedup_window` records before the end of the
/// lake's last commit (those are read for their ids only, see [`crate::recent_ids`]), else at
/// offset 0. Not the logical `Beginning`: librdkafka resolves that with a ListOffsets request
/// first, and a busy broker (Tansu under load in the fault test) can leave the partition
/// waiting on it for minutes while the others are fetched. When the offset is gone to
/// retention, the fetch is out of range and `auto.offset.reset=earliest` applies, as before.
fn resume_offset(resume: Option<&CommitRecord>, dedup_window: usize) -> Offset {
    Offset::Offset(resume.map_or(0, |r| r.end.saturating_sub(dedup_window as i64).max(0)))
}

/// How this instance names itself in commit records and ledger entries: host and process.
pub fn writer_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
    format!("{host}/{}", std::process::id())
}
