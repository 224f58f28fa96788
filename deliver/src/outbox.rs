//! The durable outbox: every (alert, destination) pair is stored before its first attempt,
//! and stays until it is delivered or dead-lettered. An embedded transactional store
//! (redb) rather than files: enqueueing, rescheduling and finishing are each one
//! committed transaction, so a crash at any point leaves every delivery in exactly one
//! state. Finished keys are remembered for `remember_days`, so an alert read again from
//! Kafka after a restart is not sent again. Alerts delivered to a destination that can
//! follow them up (PagerDuty resolves and updates, Jira comments) are kept until resolved or
//! pruned, so that closing the alert queues a resolve ([`Outbox::enqueue_resolves`]) and its
//! repeats queue updates ([`Outbox::enqueue_updates`]).

use std::path::Path;

use mcpsiem_event::{Alert, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");
const FINISHED: TableDefinition<&str, &[u8]> = TableDefinition::new("finished");
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead");
/// Delivered to a destination that can follow it up (resolve or update), not resolved yet:
/// delivery key → alert. (Named for its first use; the name is on disk.)
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
    /// Tells the destination the alert repeated (a PagerDuty trigger under the same dedup
    /// key, a Jira comment) instead of sending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<AlertUpdate>,
}

/// What an update tells a destination: the repeats one record of the detector folded into
/// the alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertUpdate {
    /// The alert change that recorded them.
    pub change_id: String,
    pub count: u64,
    pub first_time: Timestamp,
    pub last_time: Timestamp,
    pub event_ids: Vec<String>,
    /// What the destination called the alert when it was delivered (a Jira issue key).
    pub reference: Option<String>,
}

impl Delivery {
    /// A delivery due `now`, never attempted: send `alert` to `destination` under `key`.
    pub fn due_now(key: String, destination: &str, alert: Alert, now: Timestamp) -> Self {
        Self {
            key,
            destination: destination.to_owned(),
            alert,
            attempts: 0,
            enqueued_us: now.as_micros(),
            next_attempt_us: now.as_micros(),
            last_error: None,
            last_status: None,
            resolve: false,
            update: None,
        }
    }

    /// A resolve or an update, which follows a delivery: never batched.
    pub fn is_follow_up(&self) -> bool {
        self.resolve || self.update.is_some()
    }

    /// The key of the update that tells the delivery `key` about the change `change_id`.
    pub fn update_key(key: &str, change_id: &str) -> String {
        format!("{key}:update:{change_id}")
    }

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
    /// Delivered to a destination that can follow it up later: its alert is kept for that.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolvable: bool,
    /// For an update: what it told, so a dead one is retried as the same update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<AlertUpdate>,
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
                    let delivery = Delivery::due_now(key.clone(), destination, alert.clone(), now);
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
    pub fn enqueue_resolves(
        &self,
        alert_id: &str,
        now: Timestamp,
        can_resolve: impl Fn(&str) -> bool,
    ) -> Result<usize, OutboxError> {
        self.enqueue_follow_ups(alert_id, can_resolve, |key, destination, alert| Delivery {
            resolve: true,
            ..Delivery::due_now(Delivery::resolve_key(key), destination, alert, now)
        })
    }

    /// Queues an update of every delivery of `alert_id` to a destination that `can_update`
    /// (not resolved yet), telling it of `update`'s repeats; returns how many. Durable when
    /// it returns; asking again (the same change read twice) adds nothing.
    pub fn enqueue_updates(
        &self,
        alert_id: &str,
        update: &AlertUpdate,
        now: Timestamp,
        can_update: impl Fn(&str) -> bool,
    ) -> Result<usize, OutboxError> {
        let references = self.references(alert_id)?;
        self.enqueue_follow_ups(alert_id, can_update, |key, destination, alert| Delivery {
            update: Some(AlertUpdate { reference: references.get(key).cloned().flatten(), ..update.clone() }),
            ..Delivery::due_now(Delivery::update_key(key, &update.change_id), destination, alert, now)
        })
    }

    /// A closed alert takes no more updates: forgets its deliveries kept for follow-ups,
    /// except where `keep` (the destinations that still resolve it). Returns how many.
    pub fn end_updates(&self, alert_id: &str, keep: impl Fn(&str) -> bool) -> Result<usize, OutboxError> {
        let prefix = format!("{alert_id}:");
        let ended: Vec<String> = {
            let tx = self.db.begin_read()?;
            let resolvable = tx.open_table(RESOLVABLE)?;
            let mut ended = Vec::new();
            for item in resolvable.range(prefix.as_str()..)? {
                let (key, _) = item?;
                let key = key.value();
                let Some(destination) = key.strip_prefix(&prefix) else { break };
                if !keep(destination) {
                    ended.push(key.to_owned());
                }
            }
            ended
        };
        if ended.is_empty() {
            return Ok(0);
        }
        let tx = self.db.begin_write()?;
        {
            let mut resolvable = tx.open_table(RESOLVABLE)?;
            for key in &ended {
                resolvable.remove(key.as_str())?;
            }
        }
        tx.commit()?;
        Ok(ended.len())
    }

    /// What each destination called the alert's deliveries (Jira issue keys), by key.
    fn references(&self, alert_id: &str) -> Result<std::collections::HashMap<String, Option<String>>, OutboxError> {
        let prefix = format!("{alert_id}:");
        let tx = self.db.begin_read()?;
        let resolvable = tx.open_table(RESOLVABLE)?;
        let finished = tx.open_table(FINISHED)?;
        let mut references = std::collections::HashMap::new();
        for item in resolvable.range(prefix.as_str()..)? {
            let (key, _) = item?;
            let key = key.value();
            if !key.starts_with(&prefix) {
                break;
            }
            if let Some(record) = finished.get(key)? {
                let record: Finished = decode(record.value())?;
                references.insert(key.to_owned(), record.reference);
            }
        }
        Ok(references)
    }

    /// Queues, for every delivery of `alert_id` kept for follow-ups whose destination
    /// `wanted`, the follow-up `make` builds (from the delivery key, the destination and the
    /// alert) unless its key is known already.
    fn enqueue_follow_ups(
        &self,
        alert_id: &str,
        wanted: impl Fn(&str) -> bool,
        make: impl Fn(&str, &str, Alert) -> Delivery,
    ) -> Result<usize, OutboxError> {
        let prefix = format!("{alert_id}:");
        {
            // Most alerts have nothing to follow up: no write transaction (and its disk
            // sync) for them.
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
                let Some(destination) = key.strip_prefix(&prefix).filter(|d| wanted(d)) else { continue };
                let follow_up = make(&key, destination, alert);
                let known = pending.get(follow_up.key.as_str())?.is_some()
                    || finished.get(follow_up.key.as_str())?.is_some()
                    || dead.get(follow_up.key.as_str())?.is_some();
                if known {
                    continue;
                }
                pending.insert(follow_up.key.as_str(), encode(&follow_up).as_slice())?;
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
                    last_error: letter.record.last_error,
                    last_status: letter.record.last_status,
                    resolve: key.ends_with(":resolve"),
                    update: letter.record.update,
                    ..Delivery::due_now(key.clone(), &letter.record.destination, letter.alert, now)
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
            update: delivery.update.clone(),
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
        let pd = |d: &str| d == "pd";
        assert_eq!(outbox.enqueue_resolves("A2", now, pd).unwrap(), 0, "nothing was delivered for A2");
        assert_eq!(outbox.enqueue_resolves("A1", now, |_| false).unwrap(), 0, "no destination resolves");
        assert_eq!(outbox.enqueue_resolves("A1", now, pd).unwrap(), 1);
        assert_eq!(outbox.enqueue_resolves("A1", now, pd).unwrap(), 0, "queued once");
        let due = outbox.due(now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].resolve && due[0].key == "A1:pd:resolve" && due[0].alert.id == "A1", "{:?}", due[0]);
        finish(&outbox, &due[0], "resolved", false);
        assert_eq!(outbox.enqueue_resolves("A1", now, pd).unwrap(), 0, "resolved once");
        // A reopened alert closed again has nothing left to resolve; A10 still has.
        assert_eq!(outbox.enqueue_resolves("A10", now, pd).unwrap(), 1);
        // Pruned with its delivery.
        assert_eq!(outbox.prune(Timestamp::from_micros(100)).unwrap(), 4);
        let due = outbox.due(now, 10).unwrap();
        finish(&outbox, &due[0], "dead", false);
        assert_eq!(outbox.retry_dead(now).unwrap(), 1);
        assert!(outbox.due(now, 10).unwrap()[0].resolve, "a dead resolve is retried as a resolve");
    }

    #[test]
    fn a_repeat_queues_one_update_per_delivery_that_can_be_updated_with_its_reference() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.redb")).unwrap();
        let now = Timestamp::from_micros(5);
        outbox.enqueue(&alert("A1"), &["jira".into(), "hook".into(), "pd".into()], now).unwrap();
        for delivery in outbox.due(now, 10).unwrap() {
            let followed = delivery.destination != "hook";
            let record = Finished {
                key: delivery.key.clone(),
                alert_id: "A1".into(),
                rule_id: "r".into(),
                destination: delivery.destination.clone(),
                status: "delivered".into(),
                attempts: 1,
                enqueued_us: 0,
                finished_us: 10,
                reference: (delivery.destination == "jira").then(|| "SEC-7".to_string()),
                last_error: None,
                last_status: None,
                resolvable: followed,
                update: None,
            };
            outbox.apply(&[Update::Finish(record, delivery.alert.clone())]).unwrap();
        }
        let update = AlertUpdate {
            change_id: "C9".into(),
            count: 4,
            first_time: Timestamp::from_micros(1),
            last_time: Timestamp::from_micros(2),
            event_ids: vec!["e1".into()],
            reference: None,
        };
        let can_update = |d: &str| d == "jira" || d == "pd";
        assert_eq!(outbox.enqueue_updates("A2", &update, now, can_update).unwrap(), 0);
        assert_eq!(outbox.enqueue_updates("A1", &update, now, can_update).unwrap(), 2);
        assert_eq!(outbox.enqueue_updates("A1", &update, now, can_update).unwrap(), 0, "the same change once");
        let mut due = outbox.due(now, 10).unwrap();
        due.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&str> = due.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["A1:jira:update:C9", "A1:pd:update:C9"]);
        assert!(due.iter().all(|d| d.is_follow_up() && !d.resolve));
        assert_eq!(due[0].update.as_ref().unwrap().reference.as_deref(), Some("SEC-7"));
        assert_eq!(due[1].update.as_ref().unwrap().reference, None);
        // A dead update is retried as the same update.
        finish(&outbox, &due[0], "dead", false);
        assert_eq!(outbox.retry_dead(now).unwrap(), 1);
        let again = outbox.due(now, 10).unwrap();
        let retried = again.iter().find(|d| d.key == "A1:jira:update:C9").unwrap();
        assert_eq!(retried.update.as_ref().map(|u| u.count), Some(4));
        // Closed: Jira takes no more updates, PagerDuty is kept for its resolve.
        assert_eq!(outbox.end_updates("A1", |d| d == "pd").unwrap(), 1);
        let later = AlertUpdate { change_id: "C10".into(), ..update };
        assert_eq!(outbox.enqueue_updates("A1", &later, now, can_update).unwrap(), 1, "only pd's");
    }
}
