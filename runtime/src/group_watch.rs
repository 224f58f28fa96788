//! A watch for a consumer group that left partitions without a consumer while this member
//! holds none, and the rejoin that unsticks it.
//!
//! Why it exists: a group coordinator can settle a rebalance with a member that is gone as
//! the group's leader. Tansu 0.6, the embedded broker of `mcpsiem up` and of the tests, does
//! this when a member joins while a killed member's session is still open: the dead leader
//! never sends the assignment, the coordinator answers every other member's SyncGroup with
//! an empty one after a pause, and heartbeats keep succeeding, so the whole group sits idle
//! until some member joins or leaves. A member with no partitions cannot tell this from being
//! a spare member of a healthy group by its own state, so it looks at the partitions
//! instead: a backlog whose committed offset did not move for a whole interval has no
//! consumer. Then it leaves the group and joins again, which starts a fresh rebalance. In a
//! healthy group a spare member sees the committed offsets move (or no backlog) and never
//! rejoins.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// One look at the topic: per partition, the group's committed offset and the high watermark.
type Sample = BTreeMap<i32, PartitionProgress>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PartitionProgress {
    committed: i64,
    high: i64,
}

impl PartitionProgress {
    fn has_backlog(&self) -> bool {
        self.high > self.committed
    }
}

/// Watches one subscription of one consumer (call [`GroupWatch::check`] from its poll loop).
#[derive(Debug)]
pub struct GroupWatch {
    topic: String,
    interval: Duration,
    unassigned_since: Option<Instant>,
    baseline: Option<(Instant, Sample)>,
}

impl GroupWatch {
    /// A watch over `topic` that rejoins after `interval` of holding nothing while a backlog
    /// does not move; a zero interval disables it.
    pub fn new(topic: &str, interval: Duration) -> Self {
        Self { topic: topic.to_string(), interval, unassigned_since: None, baseline: None }
    }

    /// How long this member holds nothing before it looks, and how far apart its looks are.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Looks at the group when due and rejoins it when it is stuck. Returns the partitions
    /// that had no consumer when it rejoined. Cheap when this member holds partitions.
    pub fn check<C, K>(&mut self, consumer: &K) -> Option<Vec<i32>>
    where
        C: ConsumerContext,
        K: Consumer<C>,
    {
        if self.interval.is_zero() {
            return None;
        }
        let holds_partitions = consumer.assignment().map(|a| a.count() > 0).unwrap_or(true);
        if holds_partitions {
            self.unassigned_since = None;
            self.baseline = None;
            return None;
        }
        let since = *self.unassigned_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.interval || self.baseline.as_ref().is_some_and(|(at, _)| at.elapsed() < self.interval)
        {
            return None;
        }
        let sample = match sample(consumer, &self.topic) {
            Ok(sample) => sample,
            Err(e) => {
                tracing::debug!(topic = %self.topic, error = %e, "cannot look at the consumer group's progress");
                return None;
            }
        };
        let stuck = match &self.baseline {
            Some((_, before)) => stuck_partitions(before, &sample),
            None => Vec::new(),
        };
        if stuck.is_empty() {
            self.baseline = Some((Instant::now(), sample));
            return None;
        }
        tracing::warn!(
            topic = %self.topic,
            partitions = ?stuck,
            idle_seconds = since.elapsed().as_secs(),
            "these partitions have a backlog that no member of the group consumed for a whole interval, \
             and this member holds no partition: the group is stuck (a coordinator that settled on a \
             member that is gone); rejoining the group"
        );
        metrics::counter!("mcpsiem_kafka_group_rejoins_total", "topic" => self.topic.clone()).increment(1);
        consumer.unsubscribe();
        if let Err(e) = consumer.subscribe(&[&self.topic]) {
            tracing::error!(topic = %self.topic, error = %e, "rejoining the consumer group failed; retrying at the next check");
        }
        self.unassigned_since = Some(Instant::now());
        self.baseline = None;
        Some(stuck)
    }
}

/// Partitions with a backlog in both samples whose committed offset did not move.
fn stuck_partitions(before: &Sample, now: &Sample) -> Vec<i32> {
    now.iter()
        .filter(|(partition, progress)| {
            progress.has_backlog()
                && before
                    .get(partition)
                    .is_some_and(|earlier| earlier.has_backlog() && earlier.committed == progress.committed)
        })
        .map(|(partition, _)| *partition)
        .collect()
}

fn sample<C, K>(consumer: &K, topic: &str) -> Result<Sample, rdkafka::error::KafkaError>
where
    C: ConsumerContext,
    K: Consumer<C>,
{
    let metadata = consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, BROKER_TIMEOUT)?;
    let mut sample = Sample::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, BROKER_TIMEOUT)?;
        // Nothing committed yet: the backlog starts at the oldest record kept.
        let committed = match committed.find_partition(topic, partition).map(|e| e.offset()) {
            Some(Offset::Offset(offset)) => offset,
            _ => low,
        };
        sample.insert(partition, PartitionProgress { committed, high });
    }
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(entries: &[(i32, i64, i64)]) -> Sample {
        entries.iter().map(|&(p, committed, high)| (p, PartitionProgress { committed, high })).collect()
    }

    #[test]
    fn a_backlog_that_did_not_move_is_stuck() {
        let before = sample(&[(0, 10, 50), (1, 20, 20), (2, 5, 9)]);
        let now = sample(&[(0, 10, 80), (1, 20, 30), (2, 9, 12)]);
        // 0: backlog both times, no progress. 1: caught up before, so new records may simply
        // not be due yet. 2: progressed.
        assert_eq!(stuck_partitions(&before, &now), vec![0]);
    }

    #[test]
    fn a_healthy_group_is_never_stuck() {
        let before = sample(&[(0, 10, 50), (1, 0, 0)]);
        let now = sample(&[(0, 40, 90), (1, 0, 0)]);
        assert!(stuck_partitions(&before, &now).is_empty());
        // A partition that appeared since the first look has no history to judge.
        let grown = sample(&[(0, 90, 95), (1, 0, 0), (2, 0, 100)]);
        assert!(stuck_partitions(&now, &grown).is_empty());
    }

    #[test]
    fn the_interval_outlasts_the_groups_commit_cadence() {
        let kafka = crate::kafka::KafkaConfig::default();
        assert_eq!(kafka.group_watch("t", Duration::from_secs(1)).interval(), Duration::from_secs(60));
        // Ingesters commit a partition when its buffer rolls (60 s by default).
        assert_eq!(kafka.group_watch("t", Duration::from_secs(60)).interval(), Duration::from_secs(120));
        let off = crate::kafka::KafkaConfig { stuck_group_seconds: 0, ..kafka };
        assert_eq!(off.group_watch("t", Duration::from_secs(60)).interval(), Duration::ZERO);
    }

    #[test]
    fn a_disabled_watch_never_looks() {
        let consumer: rdkafka::consumer::BaseConsumer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:1").set("group.id", "g").create().unwrap();
        let mut watch = GroupWatch::new("t", Duration::ZERO);
        assert_eq!(watch.check(&consumer), None);
        assert!(watch.unassigned_since.is_none());
    }
}
