//! Follows the alert-changes topic for closes: an alert somebody closed stops taking its
//! rule's repeats, so the rule's next firing for its group raises a new alert.
//!
//! Closes are not part of the detector's snapshot: after a restart the topic is read again
//! from shortly before the oldest open alert was raised, which covers every close that can
//! concern an open alert. A close reaches the engine within about a second (it is read at
//! each checkpoint); a repeat recorded in that second belongs to the closed alert and does
//! not reopen it.

use std::time::{Duration, Instant};

use mcpsiem_event::{AlertChange, ChangeAction, Timestamp};
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// How far before the oldest open alert's raising closes are read again: the clocks of the
/// query service (which stamps closes) and of the detector may disagree a little.
const CLOCK_MARGIN: Duration = Duration::from_secs(300);

pub struct CloseFollower {
    consumer: BaseConsumer,
    topic: String,
    since: Timestamp,
    assigned: bool,
    last_try: Option<Instant>,
}

impl CloseFollower {
    /// Reads closes made from `since` on (the oldest open alert's raising, or now).
    pub fn new(kafka: &KafkaConfig, group_id: &str, since: Timestamp) -> Result<Self, rdkafka::error::KafkaError> {
        let mut client = kafka.client_config();
        // Assigned, never subscribed: the group id only names the client; nothing is
        // committed.
        client
            .set("group.id", format!("{group_id}.closes"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        for (key, value) in &kafka.properties {
            client.set(key, value);
        }
        let margin = i64::try_from(CLOCK_MARGIN.as_micros()).unwrap_or(i64::MAX);
        Ok(Self {
            consumer: client.create()?,
            topic: kafka.alert_changes_topic.clone(),
            since: Timestamp::from_micros(since.as_micros().saturating_sub(margin)),
            assigned: false,
            last_try: None,
        })
    }

    /// Assigns every partition of the topic at its first record made at or after `since`;
    /// false while the broker or the topic is not there (tried again ten seconds later).
    fn assign(&mut self) -> bool {
        if self.assigned {
            return true;
        }
        if self.last_try.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            return false;
        }
        self.last_try = Some(Instant::now());
        let timeout = Duration::from_secs(5);
        let partitions = match self.consumer.fetch_metadata(Some(&self.topic), timeout) {
            Ok(metadata) => metadata
                .topics()
                .iter()
                .filter(|t| t.name() == self.topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect::<Vec<i32>>(),
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot read the alert-changes topic's partitions; closes are followed once it is reachable");
                return false;
            }
        };
        if partitions.is_empty() {
            tracing::warn!(topic = %self.topic, "the alert-changes topic does not exist yet; closes are followed once it does");
            return false;
        }
        let millis = (self.since.as_micros() / 1000).max(0);
        let mut wanted = TopicPartitionList::new();
        for &partition in &partitions {
            let _ = wanted.add_partition_offset(&self.topic, partition, Offset::Offset(millis));
        }
        let positions = match self.consumer.offsets_for_times(wanted, timeout) {
            Ok(positions) => positions,
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "cannot find where to read closes from; retrying");
                return false;
            }
        };
        let mut assignment = TopicPartitionList::new();
        for element in positions.elements() {
            // No record at or after `since`: only closes made from now on matter.
            let offset = match element.offset() {
                Offset::Offset(offset) => Offset::Offset(offset),
                _ => Offset::End,
            };
            let _ = assignment.add_partition_offset(&self.topic, element.partition(), offset);
        }
        if let Err(e) = self.consumer.assign(&assignment) {
            tracing::warn!(topic = %self.topic, error = %e, "cannot read the alert-changes topic; retrying");
            return false;
        }
        tracing::info!(topic = %self.topic, since = %self.since, partitions = partitions.len(), "following alert closes");
        self.assigned = true;
        true
    }

    /// Every close made so far (from `since`), waiting up to `limit` for them: called once
    /// at start, so that an alert closed while the detector was down takes no repeats from
    /// the first events read.
    pub fn catch_up(&mut self, limit: Duration) -> Vec<String> {
        let started = Instant::now();
        if !self.assign() {
            return Vec::new();
        }
        let mut ends = Vec::new();
        if let Ok(assignment) = self.consumer.assignment() {
            for element in assignment.elements() {
                match self.consumer.fetch_watermarks(&self.topic, element.partition(), Duration::from_secs(5)) {
                    Ok((_, high)) => ends.push((element.partition(), high)),
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, error = %e, "cannot find the alert-changes topic's end; closes are read as they come");
                        return self.closed();
                    }
                }
            }
        }
        let mut closed = Vec::new();
        while started.elapsed() < limit {
            let done = self.consumer.position().is_ok_and(|positions| {
                ends.iter().all(|(partition, high)| {
                    *high == 0
                        || positions.elements().iter().any(|e| {
                            e.partition() == *partition && matches!(e.offset(), Offset::Offset(at) if at >= *high)
                        })
                })
            });
            if done {
                break;
            }
            if let Some(Ok(message)) = self.consumer.poll(Duration::from_millis(100)) {
                closed.extend(close_of(message.payload().unwrap_or_default()));
            }
        }
        closed.extend(self.closed());
        closed
    }

    /// The alerts closed since the last call, without waiting.
    pub fn closed(&mut self) -> Vec<String> {
        if !self.assigned && !self.assign() {
            return Vec::new();
        }
        let mut closed = Vec::new();
        // Bounded: a burst of changes is read over several checkpoints, not in one.
        for _ in 0..10_000 {
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(message)) => closed.extend(close_of(message.payload().unwrap_or_default())),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "reading the alert-changes topic; librdkafka retries on its own");
                    break;
                }
                None => break,
            }
        }
        closed
    }
}

/// The alert a record of the alert-changes topic closes, if it is a close.
fn close_of(payload: &[u8]) -> Option<String> {
    let change = AlertChange::from_json(payload).ok()?;
    matches!(change.action, ChangeAction::Close { .. }).then_some(change.alert_id)
}
