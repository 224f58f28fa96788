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
/// How often the watch asks the broker for the topic's metadata, to know it answers.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long a probe waits: also how long it can hold up the stage's poll loop.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// No answer from the broker for this long: the stage is not ready.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(15);
/// Holding no partition for this long while the group has a backlog: not ready. A
/// rebalance takes less (a few seconds with librdkafka's defaults).
const UNASSIGNED_GRACE: Duration = Duration::from_secs(30);
/// After the broker answers again from an outage of [`UNREACHABLE_AFTER`] or more, a member
/// that still holds no partition this long while the group has a backlog starts over with a
/// new consumer. A rebalance after an outage takes a few seconds.
const RECOVERY_GRACE: Duration = Duration::from_secs(15);

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
    /// The stage whose `/readyz` this watch keeps true, if any.
    stage: Option<&'static str>,
    last_probe: Option<Instant>,
    reached_at: Instant,
    /// Since when this member holds no partition, for readiness (the rejoin logic above
    /// restarts its own clock at every rejoin).
    idle_since: Option<Instant>,
    /// When the broker answered again after an outage, until the member holds partitions.
    back_at: Option<Instant>,
    /// This member rejoined and has held nothing since.
    rejoined: bool,
    /// The consumer is wedged: the stage should replace it (see [`GroupWatch::wants_new_consumer`]).
    new_consumer: bool,
}

impl GroupWatch {
    /// A watch over `topic` that rejoins after `interval` of holding nothing while a backlog
    /// does not move; a zero interval disables it.
    pub fn new(topic: &str, interval: Duration) -> Self {
        Self {
            topic: topic.to_string(),
            interval,
            unassigned_since: None,
            baseline: None,
            stage: None,
            last_probe: None,
            reached_at: Instant::now(),
            idle_since: None,
            back_at: None,
            rejoined: false,
            new_consumer: false,
        }
    }

    /// True (once) when the consumer should be replaced by a new one: the broker came back
    /// from an outage and this member still holds nothing while records wait, or a rejoin
    /// did not unstick the group. librdkafka's group state can stay wedged after a broker
    /// stopped answering for longer than the session timeout (seen with Tansu 0.6 after a
    /// 60 s SIGSTOP: no partition for minutes, rejoins included), while a new member is
    /// given partitions at once. Only asked for while the member holds no partition, so
    /// nothing it buffers is lost.
    pub fn wants_new_consumer(&mut self) -> bool {
        std::mem::take(&mut self.new_consumer)
    }

    /// The stage replaced its consumer: the watch starts over for the new one.
    fn started_over(&mut self) {
        self.unassigned_since = None;
        self.baseline = None;
        self.back_at = None;
        self.rejoined = false;
        self.new_consumer = true;
    }

    /// Also keeps `stage`'s readiness true: not ready while the broker does not answer, or
    /// while this member holds no partition and its group has records waiting.
    pub fn reporting_readiness(mut self, stage: &'static str) -> Self {
        self.stage = Some(stage);
        self
    }

    /// Asks the broker for the topic's metadata when due, and sets the stage's readiness.
    fn probe<C, K>(&mut self, consumer: &K, holds_partitions: bool)
    where
        C: ConsumerContext,
        K: Consumer<C>,
    {
        if holds_partitions {
            self.idle_since = None;
            self.back_at = None;
        } else {
            self.idle_since.get_or_insert_with(Instant::now);
        }
        if self.last_probe.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
            return;
        }
        self.last_probe = Some(Instant::now());
        let reached = consumer.fetch_metadata(Some(&self.topic), PROBE_TIMEOUT).is_ok();
        if reached {
            if self.reached_at.elapsed() >= UNREACHABLE_AFTER && !holds_partitions {
                tracing::info!(topic = %self.topic, silent_seconds = self.reached_at.elapsed().as_secs(), "the Kafka brokers answer again");
                self.back_at = Some(Instant::now());
            }
            self.reached_at = Instant::now();
        }
        let idle_long = self.idle_since.is_some_and(|since| since.elapsed() >= UNASSIGNED_GRACE);
        let back_long = self.back_at.is_some_and(|at| at.elapsed() >= RECOVERY_GRACE);
        let backlog: Option<i64> = if reached && !holds_partitions && (idle_long || back_long) {
            sample(consumer, &self.topic).ok().map(|s| s.values().map(|p| (p.high - p.committed).max(0)).sum())
        } else {
            None
        };
        if back_long && backlog.is_some_and(|waiting| waiting > 0) {
            tracing::warn!(
                topic = %self.topic,
                records_waiting = backlog,
                "still no partition after the brokers came back from an outage; starting over with a new consumer"
            );
            metrics::counter!("mcpsiem_kafka_new_consumers_total", "topic" => self.topic.clone()).increment(1);
            self.started_over();
        }
        let Some(stage) = self.stage else { return };
        let now = readiness(&self.topic, self.reached_at.elapsed(), self.idle_since.map(|s| s.elapsed()), backlog);
        // Logged when it changes, not at every probe.
        match (&now, crate::ops::readiness(stage).is_ok()) {
            (Ok(()), false) => tracing::info!(stage, topic = %self.topic, "ready again"),
            (Err(reason), true) => tracing::warn!(stage, topic = %self.topic, %reason, "not ready"),
            _ => {}
        }
        match now {
            Ok(()) => crate::ops::set_ready(stage, true),
            Err(reason) => crate::ops::set_not_ready(stage, reason),
        }
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
        let holds_partitions = consumer.assignment().map(|a| a.count() > 0).unwrap_or(true);
        self.probe(consumer, holds_partitions);
        if self.interval.is_zero() {
            return None;
        }
        if holds_partitions {
            self.unassigned_since = None;
            self.baseline = None;
            self.rejoined = false;
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
        if self.rejoined {
            // A rejoin did not help: the consumer itself is wedged.
            tracing::warn!(topic = %self.topic, "the rejoin did not help; starting over with a new consumer");
            metrics::counter!("mcpsiem_kafka_new_consumers_total", "topic" => self.topic.clone()).increment(1);
            self.started_over();
            return Some(stuck);
        }
        metrics::counter!("mcpsiem_kafka_group_rejoins_total", "topic" => self.topic.clone()).increment(1);
        consumer.unsubscribe();
        if let Err(e) = consumer.subscribe(&[&self.topic]) {
            tracing::error!(topic = %self.topic, error = %e, "rejoining the consumer group failed; retrying at the next check");
        }
        self.unassigned_since = Some(Instant::now());
        self.baseline = None;
        self.rejoined = true;
        Some(stuck)
    }
}

/// A stage's readiness from what its watch saw: how long since the broker last answered,
/// how long this member has held no partition (None: it holds some), and the group's
/// backlog when it was looked at.
fn readiness(topic: &str, since_reached: Duration, idle: Option<Duration>, backlog: Option<i64>) -> Result<(), String> {
    if since_reached >= UNREACHABLE_AFTER {
        return Err(format!("the Kafka brokers have not answered for {} s", since_reached.as_secs()));
    }
    match (idle, backlog) {
        (Some(idle), Some(waiting)) if idle >= UNASSIGNED_GRACE && waiting > 0 => Err(format!(
            "holds no partition of {topic} for {} s while {waiting} records wait for its group",
            idle.as_secs()
        )),
        _ => Ok(()),
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
    fn readiness_follows_the_broker_and_the_partitions() {
        let ok = Duration::from_secs(1);
        assert_eq!(readiness("t", ok, None, None), Ok(()));
        let unreachable = readiness("t", UNREACHABLE_AFTER, None, None).unwrap_err();
        assert!(unreachable.contains("have not answered for 15 s"), "{unreachable}");
        // Idle but within a rebalance's time, or idle with nothing waiting: ready.
        assert_eq!(readiness("t", ok, Some(Duration::from_secs(5)), Some(100)), Ok(()));
        assert_eq!(readiness("t", ok, Some(UNASSIGNED_GRACE * 2), Some(0)), Ok(()));
        let idle = readiness("t", ok, Some(UNASSIGNED_GRACE), Some(1600)).unwrap_err();
        assert!(idle.contains("no partition of t for 30 s while 1600 records wait"), "{idle}");
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
