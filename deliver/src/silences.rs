//! The silences the delivery stage holds: the whole silences topic, read to its end before
//! the first alert is routed (so no alert slips past a silence made before the stage
//! started), then followed. A silenced alert is not delivered; the stage records it as
//! silenced on the alert-changes topic instead ([`AlertChange::silenced`]).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mcpsiem_event::silence::{Silence, SilenceSet};
use mcpsiem_event::{Alert, Timestamp};
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::DeliveryError;

/// How long one broker call at start may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Silences that ended this long ago are forgotten here (the lake keeps them).
const FORGET_AFTER_MICROS: i64 = 86_400_000_000;

/// The silences as last read, shared by the follower and the alert consumer.
#[derive(Clone, Default)]
pub struct Silences {
    set: Arc<RwLock<SilenceSet>>,
}

impl Silences {
    /// The silence that holds `alert` back now, if any.
    pub fn silencing(&self, alert: &Alert, now: Timestamp) -> Option<Silence> {
        self.set.read().expect("no panics under the lock").silencing(alert, now).cloned()
    }

    fn apply(&self, bytes: &[u8]) {
        match Silence::from_json(bytes) {
            Ok(silence) => {
                tracing::info!(silence = %silence.silence_id, action = silence.action.as_str(), ends_at = %silence.ends_at, "silence read");
                let mut set = self.set.write().expect("no panics under the lock");
                set.apply(silence);
                set.forget_ended_before(Timestamp::now().plus_micros(-FORGET_AFTER_MICROS));
                metrics::gauge!("mcpsiem_delivery_silences").set(set.len() as f64);
            }
            Err(e) => {
                metrics::counter!("mcpsiem_delivery_bad_records_total").increment(1);
                tracing::error!(error = %e, "a record of the silences topic is not a silence; skipped (only the query service should write there)");
            }
        }
    }
}

/// Reads the silences topic to its end, then follows it until `stop` turns true.
pub async fn follow(
    kafka: &KafkaConfig,
    group_id: &str,
    mut stop: watch::Receiver<bool>,
) -> Result<(Silences, tokio::task::JoinHandle<()>), DeliveryError> {
    let topic = kafka.silences_topic.clone();
    let consumer: StreamConsumer = kafka
        .client_config()
        // Assigned, never subscribed: every delivery process reads every silence. The group
        // id only names the client; nothing is committed.
        .set("group.id", format!("{group_id}.silences"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    // Where the topic ends now. The broker may be away when the stage starts: it is asked
    // again until it answers (the stage routes nothing meanwhile, as it could not anyway).
    let (partitions, mut ends) = loop {
        match topic_ends(&consumer, &topic) {
            Ok(found) => break found,
            Err(e) => {
                tracing::warn!(error = %e, topic, "cannot read where the silences topic ends; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => if *stop.borrow() { return Err(e.into()) },
                }
            }
        }
    };
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let silences = Silences::default();
    let started = Instant::now();
    // Up to each partition's end as it was at start.
    while !ends.is_empty() {
        tokio::select! {
            message = consumer.recv() => match message {
                Ok(message) => {
                    silences.apply(message.payload().unwrap_or_default());
                    let reached = (message.partition(), message.offset() + 1);
                    ends.retain(|&(partition, end)| partition != reached.0 || reached.1 < end);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the silences topic failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    let held = silences.set.read().expect("no panics under the lock").len();
    tracing::info!(silences = held, took = ?started.elapsed(), partitions = partitions.len(), "silences read; routing alerts");
    let following = silences.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                message = consumer.recv() => match message {
                    Ok(message) => following.apply(message.payload().unwrap_or_default()),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the silences topic failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = stop.changed() => if *stop.borrow() { break },
            }
        }
    });
    Ok((silences, task))
}

/// A topic's partitions, and (partition, end offset) of each that holds records.
type TopicEnds = (Vec<i32>, Vec<(i32, i64)>);

/// The topic's partitions, and the end of each that holds records.
fn topic_ends(consumer: &StreamConsumer, topic: &str) -> Result<TopicEnds, rdkafka::error::KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT)?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut ends = Vec::new();
    for &partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, BROKER_TIMEOUT)?;
        if high > low {
            ends.push((partition, high));
        }
    }
    Ok((partitions, ends))
}
