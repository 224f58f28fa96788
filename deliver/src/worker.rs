//! The delivery loop: takes due deliveries from the outbox, sends them with bounded
//! concurrency and per-destination rate limits, and records each outcome in the outbox
//! (retry later, delivered, or dead) and in the lake's `alert_deliveries` table.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpsiem_event::Timestamp;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::config::{DeliveryConfig, RetryConfig};
use super::destination::{ConfiguredDestination, Outcome};
use super::outbox::{Delivery, Finished, Outbox, OutboxError, Update};
use super::record::DeliveryLog;

/// A token bucket: `per_minute` messages a minute, bursts of up to ten seconds' worth.
struct RateLimit {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    fn new(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| {
            let per_second = f64::from(per_minute) / 60.0;
            let capacity = (per_second * 10.0).max(1.0);
            Self { per_second, capacity, tokens: capacity, refilled: Instant::now() }
        })
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * self.per_second).min(self.capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// When to try again: exponential backoff with full jitter, or the destination's wish.
pub fn next_attempt(retry: &RetryConfig, attempts: u32, wish: Option<Duration>, rng: &mut impl Rng) -> Duration {
    if let Some(wish) = wish {
        return wish.min(Duration::from_millis(retry.max_backoff_ms.max(1)));
    }
    let ceiling = retry.initial_backoff_ms.saturating_mul(1u64 << attempts.min(30)).min(retry.max_backoff_ms).max(1);
    // Full jitter, but never less than a tenth of the step: a flapping destination must not
    // be hit again at once.
    Duration::from_millis(rng.random_range(ceiling / 10..=ceiling))
}

/// Runs deliveries until `stop` resolves; what is in flight then finishes first.
pub struct Worker {
    pub outbox: Arc<Outbox>,
    pub destinations: BTreeMap<String, Arc<ConfiguredDestination>>,
    pub config: DeliveryConfig,
    pub wake: Arc<Notify>,
    pub log: Option<DeliveryLog>,
}

/// The deliveries one request carried (one, or a batch), how it ended and how long it took.
type Attempt = (Vec<Delivery>, Outcome, Duration);

impl Worker {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<(), OutboxError> {
        let mut limits: BTreeMap<String, RateLimit> = self
            .destinations
            .iter()
            .filter_map(|(name, d)| RateLimit::new(d.config.rate_per_minute).map(|l| (name.clone(), l)))
            .collect();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<Attempt> = JoinSet::new();
        let mut last_prune = Instant::now() - Duration::from_secs(3600);
        loop {
            let stopping = *stop.borrow();
            if !stopping {
                let slots = self.config.concurrency.max(1).saturating_sub(tasks.len());
                if slots > 0 {
                    self.start_attempts(slots, &mut limits, &mut in_flight, &mut tasks)?;
                }
            } else if tasks.is_empty() {
                break;
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                let before = Timestamp::now().plus_micros(-(self.config.remember_days as i64) * 86_400_000_000);
                self.outbox.prune(before)?;
                last_prune = Instant::now();
            }
            let counts = self.outbox.counts()?;
            metrics::gauge!("mcpsiem_delivery_pending").set(counts.pending as f64);
            metrics::gauge!("mcpsiem_delivery_dead_letters").set(counts.dead as f64);

            let idle = Duration::from_millis(if in_flight.is_empty() { 200 } else { 50 });
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    // Every attempt finished by now is saved in one transaction.
                    let mut updates = Vec::new();
                    let mut next = Some(done);
                    while let Some(done) = next {
                        match done {
                            Ok((batch, outcome, took)) => {
                                let outcome = self.one_wait_for(&batch, outcome);
                                for delivery in batch {
                                    in_flight.remove(&delivery.key);
                                    updates.push(self.record(delivery, outcome.clone(), took));
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "a delivery task failed"),
                        }
                        next = tasks.try_join_next();
                    }
                    // The rows first: should the process stop before the outbox marks these,
                    // they are sent and their rows written again under the same names.
                    if let Some(log) = &self.log {
                        for update in &updates {
                            if let Update::Finish(record, alert) = update {
                                log.write(record, alert).await;
                            }
                        }
                    }
                    // Sent, not yet marked: after a restart these are sent again, with the
                    // same delivery key (receivers deduplicate by it; docs/delivery.md).
                    fail::fail_point!("deliver::after_send", |_| mcpsiem_runtime::failpoint::crash("deliver::after_send"));
                    self.outbox.apply(&updates)?;
                }
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(idle) => {}
            }
        }
        if let Some(log) = &self.log {
            log.flush().await;
        }
        Ok(())
    }

    /// Starts up to `slots` attempts from what is due. Deliveries to a destination that
    /// batches join its attempt started in this round while it has room, taking neither a
    /// slot nor a rate-limit token of their own: a burst of alerts to an OCSF collector is
    /// one request, not one each.
    fn start_attempts(
        &self,
        slots: usize,
        limits: &mut BTreeMap<String, RateLimit>,
        in_flight: &mut HashSet<String>,
        tasks: &mut JoinSet<Attempt>,
    ) -> Result<(), OutboxError> {
        let widest = self.destinations.values().map(|d| d.batch_limit()).max().unwrap_or(1).max(1);
        let due = self.outbox.due(Timestamp::now(), (slots + in_flight.len()).saturating_mul(widest))?;
        let mut batches: Vec<(Arc<ConfiguredDestination>, Vec<Delivery>)> = Vec::new();
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        for delivery in due {
            if in_flight.contains(&delivery.key) {
                continue;
            }
            let Some(destination) = self.destinations.get(&delivery.destination).cloned() else {
                // The destination was removed from the configuration.
                let outcome = Outcome::Failed {
                    reason: format!("destination `{}` is no longer configured", delivery.destination),
                    status: None,
                };
                self.outbox.apply(&[self.record(delivery, outcome, Duration::ZERO)])?;
                continue;
            };
            if let Some(&at) = open.get(&delivery.destination).filter(|_| !delivery.is_follow_up()) {
                let batch = &mut batches[at].1;
                in_flight.insert(delivery.key.clone());
                batch.push(delivery);
                if batch.len() >= destination.batch_limit() {
                    open.remove(&destination.name);
                }
                continue;
            }
            if batches.len() >= slots {
                // No slot for a new attempt; later deliveries may still join an open batch.
                continue;
            }
            if let Some(limit) = limits.get_mut(&delivery.destination)
                && !limit.try_take()
            {
                metrics::counter!("mcpsiem_delivery_rate_limited_total", "destination" => delivery.destination.clone())
                    .increment(1);
                continue;
            }
            in_flight.insert(delivery.key.clone());
            if destination.batch_limit() > 1 && !delivery.is_follow_up() {
                open.insert(delivery.destination.clone(), batches.len());
            }
            batches.push((destination, vec![delivery]));
        }
        for (destination, batch) in batches {
            if batch.len() > 1 {
                metrics::histogram!("mcpsiem_delivery_batch_size", "destination" => destination.name.clone())
                    .record(batch.len() as f64);
            }
            tasks.spawn(async move {
                let started = Instant::now();
                let outcome = match batch.as_slice() {
                    [one] if one.resolve => destination.resolve(&one.alert.id).await,
                    [one] if let Some(update) = &one.update => destination.update(&one.alert, update).await,
                    _ => {
                        let deliveries: Vec<(&mcpsiem_event::Alert, &str, u32)> =
                            batch.iter().map(|d| (&d.alert, d.key.as_str(), d.attempts)).collect();
                        destination.deliver_batch(&deliveries).await
                    }
                };
                (batch, outcome, started.elapsed())
            });
        }
        Ok(())
    }

    /// A batch that is to be retried waits as one (the same jittered backoff for all its
    /// deliveries), so that it is sent again as one request, not as scattered pieces.
    fn one_wait_for(&self, batch: &[Delivery], outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Retry { reason, status, after } if batch.len() > 1 => {
                let attempts = batch.iter().map(|d| d.attempts).max().unwrap_or(0);
                let wait = next_attempt(&self.config.retry, attempts, after, &mut rand::rng());
                Outcome::Retry { reason, status, after: Some(wait) }
            }
            outcome => outcome,
        }
    }

    /// What an attempt came to, to be saved.
    fn record(&self, mut delivery: Delivery, outcome: Outcome, took: Duration) -> Update {
        let now = Timestamp::now();
        let destination = delivery.destination.clone();
        let configured = self.destinations.get(&destination);
        let kind = configured.map(|d| d.config.kind.type_name()).unwrap_or("unknown");
        // Kept for follow-ups (a resolve when closed, updates when it repeats).
        let resolvable = !delivery.is_follow_up() && configured.is_some_and(|d| d.can_resolve() || d.can_update());
        metrics::histogram!("mcpsiem_delivery_attempt_seconds", "destination" => destination.clone())
            .record(took.as_secs_f64());
        delivery.attempts += 1;
        let finish =
            |status: &str, reference: Option<String>, error: Option<String>, http: Option<u16>, d: &Delivery| {
                Finished {
                    key: d.key.clone(),
                    alert_id: d.alert.id.clone(),
                    rule_id: d.alert.rule_id.clone(),
                    destination: d.destination.clone(),
                    status: status.to_owned(),
                    attempts: d.attempts,
                    enqueued_us: d.enqueued_us,
                    finished_us: now.as_micros(),
                    reference,
                    last_error: error,
                    last_status: http,
                    resolvable: resolvable && status == "delivered",
                    update: d.update.clone(),
                }
            };
        let record = match outcome {
            Outcome::Delivered { status, reference } => {
                let latency = (now.as_micros() - delivery.enqueued_us).max(0) as f64 / 1e6;
                metrics::histogram!("mcpsiem_delivery_latency_seconds", "destination" => destination.clone())
                    .record(latency);
                metrics::counter!("mcpsiem_delivery_sent_total", "destination" => destination.clone(), "type" => kind, "outcome" => "delivered").increment(1);
                let done = match (&delivery.update, delivery.resolve) {
                    (Some(_), _) => "updated",
                    (None, true) => "resolved",
                    (None, false) => "delivered",
                };
                tracing::info!(destination, alert = %delivery.alert.id, attempts = delivery.attempts, "alert {done}");
                Some(finish(done, reference, delivery.last_error.clone(), status, &delivery))
            }
            Outcome::Failed { reason, status } => {
                metrics::counter!("mcpsiem_delivery_sent_total", "destination" => destination.clone(), "type" => kind, "outcome" => "dead").increment(1);
                tracing::error!(destination, alert = %delivery.alert.id, %reason, "delivery failed for good: dead-lettered");
                Some(finish("dead", None, Some(reason), status, &delivery))
            }
            Outcome::Retry { reason, status, after } => {
                metrics::counter!("mcpsiem_delivery_sent_total", "destination" => destination.clone(), "type" => kind, "outcome" => "retry").increment(1);
                let age = Duration::from_micros((now.as_micros() - delivery.enqueued_us).max(0) as u64);
                let retry = &self.config.retry;
                if delivery.attempts >= retry.max_attempts || age.as_secs() >= retry.give_up_after_seconds {
                    metrics::counter!("mcpsiem_delivery_sent_total", "destination" => destination.clone(), "type" => kind, "outcome" => "dead").increment(1);
                    tracing::error!(destination, alert = %delivery.alert.id, attempts = delivery.attempts, %reason, "delivery gave up: dead-lettered");
                    Some(finish("dead", None, Some(reason), status, &delivery))
                } else {
                    let wait = next_attempt(retry, delivery.attempts - 1, after, &mut rand::rng());
                    tracing::warn!(destination, alert = %delivery.alert.id, attempts = delivery.attempts, retry_in = ?wait, %reason, "delivery failed; will retry");
                    delivery.next_attempt_us = now.as_micros() + wait.as_micros() as i64;
                    delivery.last_error = Some(reason);
                    delivery.last_status = status;
                    None
                }
            }
        };
        match record {
            Some(record) => Update::Finish(record, delivery.alert),
            None => Update::Reschedule(delivery),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_is_jittered_capped_and_yields_to_retry_after() {
        let retry = RetryConfig { initial_backoff_ms: 1000, max_backoff_ms: 60_000, ..Default::default() };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for attempts in 0..12 {
            let ceiling = (1000u64 << attempts).min(60_000);
            let wait = next_attempt(&retry, attempts, None, &mut rng).as_millis() as u64;
            assert!(wait >= ceiling / 10 && wait <= ceiling, "attempt {attempts}: {wait} ms");
        }
        let waits: HashSet<u128> = (0..20).map(|_| next_attempt(&retry, 5, None, &mut rng).as_millis()).collect();
        assert!(waits.len() > 10, "no jitter: {waits:?}");
        assert_eq!(next_attempt(&retry, 3, Some(Duration::from_secs(7)), &mut rng), Duration::from_secs(7));
        assert_eq!(next_attempt(&retry, 3, Some(Duration::from_secs(7200)), &mut rng), Duration::from_secs(60));
    }

    #[test]
    fn rate_limit_allows_a_burst_then_paces() {
        let mut limit = RateLimit::new(60).unwrap();
        let burst = (0..20).filter(|_| limit.try_take()).count();
        assert_eq!(burst, 10);
        assert!(RateLimit::new(0).is_none());
    }
}
