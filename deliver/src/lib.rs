//! Alert delivery: the alerts topic into chat, ticketing, paging and e-mail, once each.
//!
//! Alerts are read from the alerts topic by their own consumer group, routed
//! ([`routing`]), and stored in the durable [`outbox`] before any attempt; the Kafka offset
//! is stored only after that, so a crash re-reads at most what the outbox already holds
//! (and skips it by key). The [`worker`] sends due deliveries ([`destination`]) with
//! retries, backoff, `Retry-After` and rate limits, and records how each ended in the
//! outbox and the lake ([`record`]). Alerts a silence holds back ([`silences`]) are not
//! delivered but recorded as silenced on the alert-changes topic.

pub mod config;
pub mod destination;
pub mod destinations;
pub mod message;
pub mod outbox;
pub mod outcome;
pub mod record;
pub mod routing;
pub mod silences;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use mcpsiem_event::{Alert, AlertChange, ChangeAction, Timestamp};
use mcpsiem_lake::Lake;
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use serde::Serialize;
use tokio::sync::{Notify, watch};

pub use config::{DeliveryConfig, DestinationConfig, DestinationKind, RetryConfig, RouteConfig};
pub use destination::{ConfiguredDestination, Outcome};
pub use destinations::Destination;
pub use outbox::{Outbox, OutboxError};

/// Alerts read at once into one outbox transaction.
const ENQUEUE_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Route(#[from] routing::RouteError),
    #[error(transparent)]
    Template(#[from] message::TemplateError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("no destination is configured: add one under [delivery.destinations.NAME] (see docs/delivery.md)")]
    NoDestinations,
    #[error("destination `{0}` is not configured (known: {1})")]
    UnknownDestination(String, String),
    #[error("destination `{name}` ({kind}): {problem} (docs/delivery.md#destinations)")]
    Destination { name: String, kind: &'static str, problem: String },
}

/// Every configured destination, with its templates compiled.
pub fn destinations(config: &DeliveryConfig) -> Result<BTreeMap<String, Arc<ConfiguredDestination>>, DeliveryError> {
    config
        .destinations
        .iter()
        .map(|(name, d)| {
            if let Some(problem) = d.kind.destination().problem() {
                return Err(DeliveryError::Destination { name: name.clone(), kind: d.kind.type_name(), problem });
            }
            Ok((name.clone(), Arc::new(ConfiguredDestination::new(name, d, &config.query_url)?)))
        })
        .collect()
}

/// What `alerts deliver` did.
#[derive(Debug, Default, Serialize)]
pub struct DeliverySummary {
    pub alerts_read: u64,
    pub bad_records: u64,
    pub deliveries_queued: u64,
    /// Alerts a silence held back.
    pub silenced: u64,
    pub pending: u64,
    pub dead: u64,
}

/// Runs the delivery stage until `stop` turns true: the consumer and the worker.
pub async fn run(
    config: &DeliveryConfig,
    kafka: &KafkaConfig,
    lake: Option<Lake>,
    mut stop: watch::Receiver<bool>,
) -> Result<DeliverySummary, DeliveryError> {
    if config.destinations.is_empty() {
        return Err(DeliveryError::NoDestinations);
    }
    let router = routing::Router::new(config)?;
    let destinations = destinations(config)?;
    // Closing an alert resolves what it triggered only where a destination can resolve, and
    // its repeats update it only where one can be updated.
    let follow_ups = FollowUps {
        resolving: destinations.values().filter(|d| d.can_resolve()).map(|d| d.name.clone()).collect(),
        updating: destinations.values().filter(|d| d.can_update()).map(|d| d.name.clone()).collect(),
    };
    let outbox = Arc::new(Outbox::open(&config.outbox_path)?);
    let wake = Arc::new(Notify::new());
    let worker = worker::Worker {
        outbox: outbox.clone(),
        destinations,
        config: config.clone(),
        wake: wake.clone(),
        log: lake.map(record::DeliveryLog::new),
    };
    let worker = tokio::spawn(worker.run(stop.clone()));
    for topic in [&kafka.silences_topic, &kafka.alert_changes_topic] {
        mcpsiem_runtime::producer::ensure_topic(kafka, topic, kafka.partitions).await?;
    }
    // Every silence made so far, before the first alert is routed.
    let (silences, follower) = silences::follow(kafka, &config.group_id, stop.clone()).await?;
    let silenced_changes = mcpsiem_runtime::producer::AckedProducer::new(
        kafka,
        &kafka.alert_changes_topic,
        std::time::Duration::from_secs(10),
    )?;
    let closes = if follow_ups.any() {
        Some(tokio::spawn(follow_changes(
            config.clone(),
            kafka.clone(),
            outbox.clone(),
            follow_ups,
            wake.clone(),
            stop.clone(),
        )))
    } else {
        None
    };

    let make_consumer = || -> Result<StreamConsumer, DeliveryError> {
        let consumer: StreamConsumer = kafka
            .client_config()
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A fetch waits at most this long for an alert: the responder is waiting too.
            .set("fetch.wait.max.ms", "10")
            .create()?;
        consumer.subscribe(&[&kafka.alerts_topic])?;
        Ok(consumer)
    };
    let mut consumer = make_consumer()?;
    let mut summary = DeliverySummary::default();
    // librdkafka's auto commit runs every 5 s (auto.commit.interval.ms).
    let mut group_watch =
        kafka.group_watch(&kafka.alerts_topic, std::time::Duration::from_secs(5)).reporting_readiness("delivery");
    let mut watch_tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            // Blocks this task for a few broker round trips, and only while it holds no
            // partition: nothing to deliver is waiting on it then.
            _ = watch_tick.tick() => {
                group_watch.check(&consumer);
                if group_watch.wants_new_consumer() {
                    // It holds no partition, so no stored offset is lost; closing the wedged
                    // one can wait on its coordinator, so not on this task.
                    let wedged = std::mem::replace(&mut consumer, make_consumer()?);
                    std::thread::spawn(move || drop(wedged));
                }
            }
            message = consumer.recv() => {
                let first = match message {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the alerts topic failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // What else has arrived goes into the same outbox transaction.
                let mut messages = vec![first];
                while messages.len() < ENQUEUE_BATCH {
                    match consumer.recv().now_or_never() {
                        Some(Ok(m)) => messages.push(m),
                        _ => break,
                    }
                }
                let now = Timestamp::now();
                let mut batch = Vec::with_capacity(messages.len());
                let mut silenced = Vec::new();
                for message in &messages {
                    match Alert::from_json(message.payload().unwrap_or_default()) {
                        Ok(alert) => {
                            summary.alerts_read += 1;
                            metrics::counter!("mcpsiem_delivery_alerts_total").increment(1);
                            if let Some(silence) = silences.silencing(&alert, now) {
                                // Its arrival time, not now: read again, it gives the same record.
                                let arrived = message
                                    .timestamp()
                                    .to_millis()
                                    .map(|ms| Timestamp::from_micros(ms.saturating_mul(1000)))
                                    .unwrap_or(alert.last_time);
                                tracing::info!(alert = %alert.id, rule = %alert.rule_id, silence = %silence.silence_id, "alert silenced: not delivered");
                                silenced.push(AlertChange::silenced(&alert.id, &silence.silence_id, arrived));
                                continue;
                            }
                            let targets = router.destinations(&alert, now);
                            if targets.is_empty() {
                                tracing::debug!(alert = %alert.id, rule = %alert.rule_id, "no route matches this alert");
                            }
                            batch.push((alert, targets));
                        }
                        Err(e) => {
                            summary.bad_records += 1;
                            metrics::counter!("mcpsiem_delivery_bad_records_total").increment(1);
                            tracing::error!(error = %e, partition = message.partition(), offset = message.offset(), "a record of the alerts topic is not an alert; skipped");
                        }
                    }
                }
                // Recorded before the offsets are stored: a crash in between reads the alerts
                // again and records the same changes (same ids), which count once.
                if !publish_silenced(&silenced_changes, &silenced, &mut stop).await {
                    break;
                }
                summary.silenced += silenced.len() as u64;
                metrics::counter!("mcpsiem_delivery_silenced_total").increment(silenced.len() as u64);
                let added = outbox.enqueue_many(&batch, now)?;
                // In the outbox, offsets not stored: the alerts are read again and skipped by key.
                fail::fail_point!("deliver::after_enqueue", |_| mcpsiem_runtime::failpoint::crash("deliver::after_enqueue"));
                summary.deliveries_queued += added as u64;
                if added > 0 {
                    wake.notify_one();
                }
                // Only now: the alerts are in the outbox (or were not alerts).
                for message in &messages {
                    consumer.store_offset_from_message(message)?;
                }
            }
            _ = stop.changed() => break,
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::warn!(error = %e, "committing the alerts topic's offsets at stop failed; alerts will be read again (and skipped by the outbox)");
    }
    let _ = follower.await;
    if let Some(closes) = closes {
        match closes.await {
            Ok(Err(e)) => tracing::error!(error = %e, "following closed alerts failed"),
            Err(e) => tracing::error!(error = %e, "following closed alerts failed"),
            Ok(Ok(())) => {}
        }
    }
    match worker.await {
        Ok(result) => result?,
        Err(e) => tracing::error!(error = %e, "the delivery worker failed"),
    }
    let counts = outbox.counts()?;
    summary.pending = counts.pending;
    summary.dead = counts.dead;
    Ok(summary)
}

/// Records silenced alerts on the alert-changes topic, trying again while the broker cannot
/// take them; false when asked to stop first (nothing of the batch counts as done then).
async fn publish_silenced(
    producer: &mcpsiem_runtime::producer::AckedProducer,
    changes: &[AlertChange],
    stop: &mut watch::Receiver<bool>,
) -> bool {
    for change in changes {
        loop {
            match producer.publish(&change.alert_id, change.to_json().as_bytes()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, alert = %change.alert_id, "recording a silenced alert failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        _ = stop.changed() => return false,
                    }
                }
            }
        }
    }
    true
}

/// The destinations that follow an alert up after its delivery, by name.
struct FollowUps {
    resolving: std::collections::HashSet<String>,
    updating: std::collections::HashSet<String>,
}

impl FollowUps {
    fn any(&self) -> bool {
        !self.resolving.is_empty() || !self.updating.is_empty()
    }
}

/// Follows the alert-changes topic (its own consumer group, `<group_id>.alert-changes`):
/// an alert closed there has the PagerDuty incidents it triggered resolved, and an alert the
/// detector recorded repeats of has what it started updated (PagerDuty, Jira), through the
/// outbox, so a follow-up survives crashes and outages like a delivery. Offsets are stored
/// once the follow-ups are queued.
async fn follow_changes(
    config: DeliveryConfig,
    kafka: KafkaConfig,
    outbox: Arc<Outbox>,
    follow_ups: FollowUps,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), DeliveryError> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", format!("{}.alert-changes", config.group_id))
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&kafka.alert_changes_topic])?;
    loop {
        tokio::select! {
            message = consumer.recv() => {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the alert-changes topic failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                match AlertChange::from_json(message.payload().unwrap_or_default()) {
                    Ok(AlertChange { alert_id, action: ChangeAction::Close { .. }, .. }) => {
                        let queued = outbox.enqueue_resolves(&alert_id, Timestamp::now(), |d| follow_ups.resolving.contains(d))?;
                        outbox.end_updates(&alert_id, |d| follow_ups.resolving.contains(d))?;
                        if queued > 0 {
                            tracing::info!(alert = %alert_id, resolves = queued, "alert closed: resolving what it triggered");
                            metrics::counter!("mcpsiem_delivery_resolves_queued_total").increment(queued as u64);
                            wake.notify_one();
                        }
                    }
                    Ok(AlertChange { alert_id, change_id, action: ChangeAction::Repeat { count, first_time, last_time, event_ids }, .. }) => {
                        let update = outbox::AlertUpdate { change_id, count, first_time, last_time, event_ids, reference: None };
                        let queued = outbox.enqueue_updates(&alert_id, &update, Timestamp::now(), |d| follow_ups.updating.contains(d))?;
                        if queued > 0 {
                            tracing::info!(alert = %alert_id, updates = queued, repeats = update.count, "alert repeated: updating what it started");
                            metrics::counter!("mcpsiem_delivery_updates_queued_total").increment(queued as u64);
                            wake.notify_one();
                        }
                    }
                    _ => {}
                }
                consumer.store_offset_from_message(&message)?;
            }
            _ = stop.changed() => if *stop.borrow() { break },
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::warn!(error = %e, "committing the alert-changes topic's offsets at stop failed; closes will be read again (and skipped by the outbox)");
    }
    Ok(())
}
