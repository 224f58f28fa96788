//! The durable outbox: every (alert, destination) pair is stored before its first attempt,
//! and stays until it is delivered or dead-lettered. An embedded transactional store
//! (redb) rather than files: enqueueing, rescheduling and finishing are each one
//! committed transaction, so a crash at any point leaves every delivery in exactly one
//! state. Finished keys are remembered for `remember_days`, so an alert read again from
//! Kafka after a restart is not sent again. Alerts delivered to a destination that can end
//! what they started (PagerDuty) are kept until then, so that closing the alert queues a
//! resolve ([`Outbox::enqueue_resolves`]).

use std::path::Path;

use mcpsiem_event::{Alert, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");
const FINISHED: TableDefinition<&str, &[u8]> = TableDefinition::new("finished");
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead");
/// Delivered to a destination that can resolve, not resolved yet: delivery key → alert.
const RESOLVABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("resolvable");

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "the outbox {path} cannot be opened: {source} (another `alerts deliver` may be running on it; give each its own delivery.outbox_path)"
    )]
    Open { path: String, source: redb::DatabaseError },
    #[error("the outbox failed: {0}")]
    Store(String),
    #[error("an outbox record is damaged: {0}")]
    Damaged(String),
}

macro_rules! store_error {
    ($($t:ty),+) => {$(
        impl From<$t> for OutboxError {
            fn from(e: $t) -> Self {
                OutboxError::Store(e.to_string())
            }
        }
    )+};
}
store_error!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// One alert on its way to one destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub key: String,
    pub destination: String,
    pub alert: Alert,
    pub attempts: u32,
    /// When the alert entered the outbox (µs since the epoch).
    pub enqueued_us: i64,
    pub next_attempt_us: i64,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// Ends what the alert's delivery started (resolves its PagerDuty incident) instead of
    /// sending it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolve: bool,
}

impl Delivery {
    /// The idempotency key: the same for every attempt, different per destination.
    pub fn key_for(alert_id: &str, destination: &str) -> String {
        format!("{alert_id}:{destination}")
    }

    /// The key of the resolve that follows the delivery `key`.
    pub fn resolve_key(key: &str) -> String {
        format!("{key}:resolve")
    }
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub key: String,
    pub alert_id: String,
    pub rule_id: String,
    pub destination: String,
    /// `delivered`, `resolved` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub enqueued_us: i64,
    pub finished_us: i64,
    /// What the destination calls it (a Jira issue key), when it says.
    pub reference: Option<String>,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// Delivered to a destination that can resolve it later: its alert is kept for that.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolvable: bool,
}

/// The outcome of one attempt, as stored.
#[derive(Clone, Debug)]
pub enum Update {
    Reschedule(Delivery),
    Finish(Finished, Alert),
}

/// Counts for metrics and `alerts status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub finished: u64,
    pub dead: u64,
}

pub struct Outbox {
    db: Database,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("outbox records serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, OutboxError> {
    serde_json::from_slice(bytes).map_err(|e| OutboxError::Damaged(e.to_string()))
}

impl Outbox {
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| OutboxError::Store(format!("{}: {e}", dir.display())))?;
        }
        let db =
            Database::create(path).map_err(|source| OutboxError::Open { path: path.display().to_string(), source })?;
        let tx = db.begin_write()?;
        tx.open_table(PENDING)?;
        tx.open_table(FINISHED)?;
        tx.open_table(DEAD)?;
        tx.open_table(RESOLVABLE)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Stores `alert` for each destination not already holding it (pending, finished or
    /// dead); returns how many deliveries were added. Durable when it returns.
    pub fn enqueue(&self, alert: &Alert, destinations: &[String], now: Timestamp) -> Result<usize, OutboxError> {
        self.enqueue_many(&[(alert.clone(), destinations.to_vec())], now)
    }

    /// [`Outbox::enqueue`] for several alerts in one transaction (one disk sync).
    pub fn enqueue_many(&self, alerts: &[(Alert, Vec<String>)], now: Timestamp) -> Result<usize, OutboxError> {
        let tx = self.db.begin_write()?;
        let mut added = 0;
        {
            let mut pending = tx.open_table(PENDING)?;
            let finished = tx.open_table(FINISHED)?;
            let dead = tx.open_table(DEAD)?;
            for (alert, destinations) in alerts {
                for destination in destinations {
                    let key = Delivery::key_for(&alert.id, destination);
                    if pending.get(key.as_str())?.is_some()
                        || finished.get(key.as_str())?.is_some()
                        || dead.get(key.as_str())?.is_some()
                    {
                        continue;
                    }
                    let delivery = Delivery {
                        key: key.clone(),
                        destination: destination.clone(),
                        alert: alert.clone(),
                        attempts: 0,
                        enqueued_us: now.as_micros(),
                        next_attempt_us: now.as_micros(),
                        last_error: None,
                        last_status: None,
                        resolve: false,
                    };
                    pending.insert(key.as_str(), encode(&delivery).as_slice())?;
                    added += 1;
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Pending deliveries due at `now`, soonest first, at most `limit`.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, OutboxError> {
        let tx = self.db.begin_read()?;
        let pending = tx.open_table(PENDING)?;
        let mut due = Vec::new();
        for item in pending.iter()? {
            let (_, value) = item?;
            let delivery: Delivery = decode(value.value())?;
            if delivery.next_attempt_us <= now.as_micros() {
                due.push(delivery);
            }
        }
        due.sort_by_key(|d| (d.next_attempt_us, d.enqueued_us));
        due.truncate(limit);
        Ok(due)
    }

    /// Saves the outcomes of several attempts in one transaction.
    pub fn apply(&self, updates: &[Update]) -> Result<(), OutboxError> {
        if updates.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut pending = tx.open_table(PENDING)?;
            let mut finished = tx.open_table(FINISHED)?;
            let mut dead = tx.open_table(DEAD)?;
            let mut resolvable = tx.open_table(RESOLVABLE)?;
            for update in updates {
                match update {
                    Update::Reschedule(delivery) => {
                        pending.insert(delivery.key.as_str(), encode(delivery).as_slice())?;
                    }
                    Update::Finish(record, alert) => {
                        pending.remove(record.key.as_str())?;
                        finished.insert(record.key.as_str(), encode(record).as_slice())?;
                        if record.resolvable && record.status == "delivered" {
                            resolvable.insert(record.key.as_str(), encode(alert).as_slice())?;
                        }
                        if record.status == "resolved" {
                            let delivered = Delivery::key_for(&record.alert_id, &record.destination);
                            resolvable.remove(delivered.as_str())?;
                        }
                        if record.status == "dead" {
                            let letter = DeadLetter { record: record.clone(), alert: alert.clone() };
                            dead.insert(record.key.as_str(), encode(&letter).as_slice())?;
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn counts(&self) -> Result<OutboxCounts, OutboxError> {
        let tx = self.db.begin_read()?;
        Ok(OutboxCounts {
            pending: tx.open_table(PENDING)?.len()?,
            finished: tx.open_table(FINISHED)?.len()?,
            dead: tx.open_table(DEAD)?.len()?,
        })
    }

    /// Every dead-lettered delivery.
    pub fn dead(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        let tx = self.db.begin_read()?;
        let dead = tx.open_table(DEAD)?;
        let mut out = Vec::new();
        for item in dead.iter()? {
            let (_, value) = item?;
            out.push(decode(value.value())?);
        }
        Ok(out)
    }

    /// Queues the resolve of every delivery of `alert_id` that can be resolved and has not
    /// been (PagerDuty incidents it triggered); returns how many. Durable when it returns;
    /// asking again adds nothing.
    pub fn enqueue_resolves(&self, alert_id: &str, now: Timestamp) -> Result<usize, OutboxError> {
        let prefix = format!("{alert_id}:");
        {
            // Most closed alerts triggered nothing to resolve: no write transaction (and its
            // disk sync) for them.
            let tx = self.db.begin_read()?;
            let resolvable = tx.open_table(RESOLVABLE)?;
            let first = resolvable.range(prefix.as_str()..)?.next().transpose()?;
            if !first.is_some_and(|(key, _)| key.value().starts_with(&prefix)) {
                return Ok(0);
            }
        }
        let tx = self.db.begin_write()?;
        let mut added = 0;
        {
            let mut pending = tx.open_table(PENDING)?;
            let finished = tx.open_table(FINISHED)?;
            let dead = tx.open_table(DEAD)?;
            let resolvable = tx.open_table(RESOLVABLE)?;
            let mut open = Vec::new();
            for item in resolvable.range(prefix.as_str()..)? {
                let (key, alert) = item?;
                if !key.value().starts_with(&prefix) {
                    break;
                }
                open.push((key.value().to_owned(), decode::<Alert>(alert.value())?));
            }
            for (key, alert) in open {
                let resolve_key = Delivery::resolve_key(&key);
                let known = pending.get(resolve_key.as_str())?.is_some()
                    || finished.get(resolve_key.as_str())?.is_some()
                    || dead.get(resolve_key.as_str())?.is_some();
                let Some(destination) = key.strip_prefix(&prefix).filter(|_| !known) else { continue };
                let delivery = Delivery {
                    key: resolve_key.clone(),
                    destination: destination.to_owned(),
                    alert,
                    attempts: 0,
                    enqueued_us: now.as_micros(),
                    next_attempt_us: now.as_micros(),
                    last_error: None,
                    last_status: None,
                    resolve: true,
                };
                pending.insert(resolve_key.as_str(), encode(&delivery).as_slice())?;
                added += 1;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Forgets finished deliveries older than `before` (dead letters are kept until
    /// retried or removed by hand).
    pub fn prune(&self, before: Timestamp) -> Result<u64, OutboxError> {
        let tx = self.db.begin_write()?;
        let mut removed = 0;
        {
            let mut finished = tx.open_table(FINISHED)?;
            let old: Vec<String> = finished
                .iter()?
                .filter_map(Result::ok)
                .filter_map(|(k, v)| {
                    let record: Finished = serde_json::from_slice(v.value()).ok()?;
                    (record.finished_us < before.as_micros()).then(|| k.value().to_owned())
                })
                .collect();
            let mut resolvable = tx.open_table(RESOLVABLE)?;
            for key in old {
                finished.remove(key.as_str())?;
                resolvable.remove(key.as_str())?;
                removed += 1;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Puts dead deliveries back in the queue (after a destination was fixed).
    pub fn retry_dead(&self, now: Timestamp) -> Result<u64, OutboxError> {
        let tx = self.db.begin_write()?;
        let mut moved = 0;
        {
            let mut dead = tx.open_table(DEAD)?;
            let mut finished = tx.open_table(FINISHED)?;
            let mut pending = tx.open_table(PENDING)?;
            let records: Vec<Vec<u8>> = dead.iter()?.filter_map(Result::ok).map(|(_, v)| v.value().to_vec()).collect();
            for bytes in records {
                let letter: DeadLetter = decode(&bytes)?;
                let key = letter.record.key.clone();
                let delivery = Delivery {
                    key: key.clone(),
                    destination: letter.record.destination.clone(),
                    alert: letter.alert,
                    attempts: 0,
                    enqueued_us: now.as_micros(),
                    next_attempt_us: now.as_micros(),
                    last_error: letter.record.last_error,
                    last_status: letter.record.last_status,
                    resolve: key.ends_with(":resolve"),
                };
                pending.insert(key.as_str(), encode(&delivery).as_slice())?;
                dead.remove(key.as_str())?;
                finished.remove(key.as_str())?;
                moved += 1;
            }
        }
        tx.commit()?;
        Ok(moved)
    }
}

/// A dead-lettered delivery with its alert, so it can be retried.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    #[serde(flatten)]
    pub record: Finished,
    pub alert: Alert,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpsiem_event::{AlertSource, Level};

    fn alert(id: &str) -> Alert {
        Alert {
            id: id.into(),
            rule_id: "r".into(),
            rule_title: "A rule".into(),
            level: Level::High,
            tags: vec![],
            source: AlertSource::Detection,
            first_time: Timestamp::from_micros(1),
            last_time: Timestamp::from_micros(2),
            group: Default::default(),
            count: 1,
            event_ids: vec![],
            sql: String::new(),
        }
    }

    fn finish(outbox: &Outbox, delivery: &Delivery, status: &str, resolvable: bool) {
        let record = Finished {
            key: delivery.key.clone(),
            alert_id: delivery.alert.id.clone(),
            rule_id: delivery.alert.rule_id.clone(),
            destination: delivery.destination.clone(),
            status: status.into(),
            attempts: 1,
            enqueued_us: 0,
            finished_us: 10,
            reference: None,
            last_error: None,
            last_status: None,
            resolvable,
        };
        outbox.apply(&[Update::Finish(record, delivery.alert.clone())]).unwrap();
    }

    #[test]
    fn a_closed_alert_queues_one_resolve_per_delivery_that_can_be_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.redb")).unwrap();
        let now = Timestamp::from_micros(5);
        outbox.enqueue(&alert("A1"), &["pd".into(), "hook".into()], now).unwrap();
        // A1:pd and an alert whose id starts like it: only the exact id's deliveries count.
        outbox.enqueue(&alert("A10"), &["pd".into()], now).unwrap();
        for delivery in outbox.due(now, 10).unwrap() {
            let resolvable = delivery.destination == "pd";
            finish(&outbox, &delivery, "delivered", resolvable);
        }
        assert_eq!(outbox.enqueue_resolves("A2", now).unwrap(), 0, "nothing was delivered for A2");
        assert_eq!(outbox.enqueue_resolves("A1", now).unwrap(), 1);
        assert_eq!(outbox.enqueue_resolves("A1", now).unwrap(), 0, "queued once");
        let due = outbox.due(now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].resolve && due[0].key == "A1:pd:resolve" && due[0].alert.id == "A1", "{:?}", due[0]);
        finish(&outbox, &due[0], "resolved", false);
        assert_eq!(outbox.enqueue_resolves("A1", now).unwrap(), 0, "resolved once");
        // A reopened alert closed again has nothing left to resolve; A10 still has.
        assert_eq!(outbox.enqueue_resolves("A10", now).unwrap(), 1);
        // Pruned with its delivery.
        assert_eq!(outbox.prune(Timestamp::from_micros(100)).unwrap(), 4);
        let due = outbox.due(now, 10).unwrap();
        finish(&outbox, &due[0], "dead", false);
        assert_eq!(outbox.retry_dead(now).unwrap(), 1);
        assert!(outbox.due(now, 10).unwrap()[0].resolve, "a dead resolve is retried as a resolve");
    }
}
