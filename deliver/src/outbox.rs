//! The durable outbox: every (alert, destination) pair is stored before its first attempt,
//! and stays until it is delivered or dead-lettered. An embedded transactional store
//! (redb) rather than files: enqueueing, rescheduling and finishing are each one
//! committed transaction, so a crash at any point leaves every delivery in exactly one
//! state. Finished keys are remembered for `remember_days`, so an alert read again from
//! Kafka after a restart is not sent again.

use std::path::Path;

use mcpsiem_event::{Alert, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");
const FINISHED: TableDefinition<&str, &[u8]> = TableDefinition::new("finished");
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead");

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
}

impl Delivery {
    /// The idempotency key: the same for every attempt, different per destination.
    pub fn key_for(alert_id: &str, destination: &str) -> String {
        format!("{alert_id}:{destination}")
    }
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub key: String,
    pub alert_id: String,
    pub rule_id: String,
    pub destination: String,
    /// `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub enqueued_us: i64,
    pub finished_us: i64,
    /// What the destination calls it (a Jira issue key), when it says.
    pub reference: Option<String>,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
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
            for update in updates {
                match update {
                    Update::Reschedule(delivery) => {
                        pending.insert(delivery.key.as_str(), encode(delivery).as_slice())?;
                    }
                    Update::Finish(record, alert) => {
                        pending.remove(record.key.as_str())?;
                        finished.insert(record.key.as_str(), encode(record).as_slice())?;
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
            for key in old {
                finished.remove(key.as_str())?;
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
