//! The commit log: the lake's own record of which Kafka offsets it holds.
//!
//! Every flush of one Kafka partition covers an offset range `[start, end)` and writes one
//! record, `_lake/commits/<topic>/<partition>/<start>.json`, created with put-if-absent.
//! That create is the commit point:
//!
//! 1. the flush's files are written to staging and made durable;
//! 2. the record is created, but only if the record of the previous flush ends at `start`
//!    (so the records form one chain per partition) and no record for `start` exists (so two
//!    writers racing after a rebalance cannot both commit the same offsets);
//! 3. the staged files are renamed to their final paths.
//!
//! A crash before 2 leaves only staged files, which nobody reads and [`CommitLog::sweep_staging`]
//! removes. A crash after 2 is rolled forward by [`CommitLog::recover`]. Kafka's committed
//! offsets are only advisory: an ingester resumes from the end of the latest record.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::layout::{HourPartition, Table, flush_file_path};
use crate::ledger::{Ledger, LedgerFile};
use crate::store::{Lake, LakeError};
use mcpsiem_event::Timestamp;

/// One file of a committed flush.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommittedFile {
    pub table: String,
    /// Where the file was written before the commit.
    pub staged: String,
    /// Where it lives once committed (compaction may later replace it).
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the file (hex), as the ledger records it. Empty in records written before
    /// the ledger existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

/// The record of one committed flush.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub topic: String,
    pub partition: i32,
    /// First offset the flush covers.
    pub start: i64,
    /// One past the last offset it covers: where the next flush starts.
    pub end: i64,
    pub events: u64,
    pub dead_letters: u64,
    /// RFC 3339 time of the commit.
    pub committed_at: String,
    /// Which ingester instance committed it (host and process), for operators.
    pub writer: String,
    pub files: Vec<CommittedFile>,
}

/// What became of an attempt to commit.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// Another writer committed these offsets first, or the chain moved on: drop the flush and
    /// resume from [`CommitLog::latest`].
    Fenced,
}

/// The commit log of one topic partition.
#[derive(Clone, Debug)]
pub struct CommitLog {
    lake: Lake,
    topic: String,
    partition: i32,
}

impl CommitLog {
    pub fn new(lake: Lake, topic: &str, partition: i32) -> Self {
        Self { lake, topic: topic.to_string(), partition }
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    fn dir(&self) -> Path {
        Path::from(format!("_lake/commits/{}/{:05}", self.topic, self.partition))
    }

    fn record_path(&self, start: i64) -> Path {
        Path::from(format!("{}/{start:020}.json", self.dir()))
    }

    /// Where a flush's files wait for their commit.
    pub fn staging_dir(&self) -> Path {
        Path::from(format!("_lake/staging/{}/{:05}", self.topic, self.partition))
    }

    /// A fresh staging path for one file.
    pub fn staging_path(&self) -> Path {
        Path::from(format!("{}/{}.parquet", self.staging_dir(), ulid::Ulid::new()))
    }

    /// The final path of a flush's file for one table and hour.
    pub fn final_path(&self, table: Table, hour: HourPartition, start: i64, end: i64) -> Path {
        flush_file_path(table, hour, &self.topic, self.partition, start, end)
    }

    /// Start offsets of the records present, ascending.
    async fn starts(&self) -> Result<Vec<i64>, LakeError> {
        let mut starts: Vec<i64> = self
            .lake
            .list(&self.dir())
            .await?
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        starts.sort_unstable();
        Ok(starts)
    }

    pub async fn get(&self, start: i64) -> Result<Option<CommitRecord>, LakeError> {
        let path = self.record_path(start);
        let Some(bytes) = self.lake.get(&path).await? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LakeError::CorruptRecord { path: path.to_string(), reason: e.to_string() })
    }

    /// The latest committed flush, if any.
    pub async fn latest(&self) -> Result<Option<CommitRecord>, LakeError> {
        match self.starts().await?.last() {
            Some(&start) => self.get(start).await,
            None => Ok(None),
        }
    }

    /// Commits a flush whose files are already staged and durable. `previous` is the start
    /// of the flush this one follows, `None` for the first flush of the partition.
    pub async fn commit(&self, record: &CommitRecord, previous: Option<i64>) -> Result<CommitOutcome, LakeError> {
        let chained = match previous {
            Some(previous) => self.get(previous).await?.is_some_and(|p| p.end == record.start),
            None => self.starts().await?.is_empty(),
        };
        if !chained {
            return Ok(CommitOutcome::Fenced);
        }
        let body = serde_json::to_vec_pretty(record).expect("a commit record serializes");
        if self.lake.create(&self.record_path(record.start), Bytes::from(body)).await? {
            Ok(CommitOutcome::Committed)
        } else {
            Ok(CommitOutcome::Fenced)
        }
    }

    /// Moves a committed flush's staged files to their final paths. Safe to repeat: a file
    /// already moved (or since compacted) is skipped.
    pub async fn publish(&self, record: &CommitRecord) -> Result<(), LakeError> {
        for file in &record.files {
            let staged = Path::from(file.staged.as_str());
            match self.lake.rename(&staged, &Path::from(file.path.as_str())).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends a committed flush's files to the ledger of each table they go to. Runs
    /// between the commit and [`CommitLog::publish`], so no file enters a table unrecorded.
    pub async fn record_in_ledger(&self, ledger: &Ledger, record: &CommitRecord) -> Result<(), LakeError> {
        for (table, files) in record.ledger_files() {
            ledger.append(table, &record.ledger_source(), &record.writer, files, Vec::new()).await?;
        }
        Ok(())
    }

    /// Rolls the latest flush forward (a crash may have stopped it between its commit and
    /// the last rename) and returns it: its `end` is where consuming resumes.
    pub async fn recover(&self, ledger: &Ledger) -> Result<Option<CommitRecord>, LakeError> {
        let latest = self.latest().await?;
        if let Some(record) = &latest {
            // Files still staged mean the crash came before the moves, and maybe before the
            // ledger append that precedes them: append it unless it is there.
            let mut staged = false;
            for file in &record.files {
                staged |= self.lake.exists(&Path::from(file.staged.as_str())).await?;
            }
            if staged {
                let since = Timestamp::parse(&record.committed_at).unwrap_or_else(|_| Timestamp::now());
                for (table, files) in record.ledger_files() {
                    ledger.ensure(table, &record.ledger_source(), since, &record.writer, files, Vec::new()).await?;
                }
            }
            self.publish(record).await?;
        }
        Ok(latest)
    }

    /// Deletes staged files that no recent commit references and that are older than
    /// `grace`: leftovers of crashed or fenced flushes. The grace keeps the files of a flush
    /// another instance is committing right now (during a rebalance) out of reach.
    pub async fn sweep_staging(&self, grace: Duration) -> Result<usize, LakeError> {
        let mut referenced = HashSet::new();
        for start in self.starts().await?.iter().rev().take(2) {
            if let Some(record) = self.get(*start).await? {
                referenced.extend(record.files.into_iter().map(|f| f.staged));
            }
        }
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut removed = 0;
        for object in self.lake.list(&self.staging_dir()).await? {
            if object.last_modified < cutoff && !referenced.contains(object.location.as_ref()) {
                self.lake.delete(&object.location).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes all but the latest `keep` records. Only the latest record matters for resuming
    /// and fencing; the rest are kept a while as an audit trail of what each file holds.
    pub async fn prune(&self, keep: usize) -> Result<usize, LakeError> {
        let starts = self.starts().await?;
        let excess = starts.len().saturating_sub(keep.max(2));
        for start in &starts[..excess] {
            self.lake.delete(&self.record_path(*start)).await?;
        }
        Ok(excess)
    }
}

impl CommitRecord {
    /// How the ledger names this flush.
    pub fn ledger_source(&self) -> String {
        format!("commit {}/{}/{}", self.topic, self.partition, self.start)
    }

    /// The flush's files grouped by table, as ledger entries list them.
    pub fn ledger_files(&self) -> Vec<(Table, Vec<LedgerFile>)> {
        let mut by_table: Vec<(Table, Vec<LedgerFile>)> = Vec::new();
        for file in &self.files {
            let Some(table) = Table::from_name(&file.table) else { continue };
            let entry = LedgerFile {
                path: file.path.clone(),
                sha256: file.sha256.clone(),
                bytes: file.bytes,
                rows: file.rows,
                staged: Some(file.staged.clone()),
            };
            match by_table.iter_mut().find(|(t, _)| *t == table) {
                Some((_, files)) => files.push(entry),
                None => by_table.push((table, vec![entry])),
            }
        }
        by_table
    }

    pub fn new(topic: &str, partition: i32, start: i64, end: i64, writer: &str) -> Self {
        Self {
            topic: topic.to_string(),
            partition,
            start,
            end,
            events: 0,
            dead_letters: 0,
            committed_at: Timestamp::now().to_string(),
            writer: writer.to_string(),
            files: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(log: &CommitLog, start: i64, end: i64) -> CommitRecord {
        let mut record = CommitRecord::new("t", log.partition(), start, end, "test");
        record.files.push(CommittedFile {
            table: "events".into(),
            staged: log.staging_path().to_string(),
            path: log.final_path(Table::Events, HourPartition { epoch_hour: 1 }, start, end).to_string(),
            rows: 1,
            bytes: 1,
            sha256: String::new(),
        });
        record
    }

    #[tokio::test]
    async fn commits_chain_and_fence_out_a_second_writer() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let log = CommitLog::new(lake.clone(), "t", 2);
        assert_eq!(log.latest().await.unwrap(), None);

        let first = record(&log, 0, 10);
        lake.put(&Path::from(first.files[0].staged.as_str()), Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(log.commit(&first, None).await.unwrap(), CommitOutcome::Committed);
        // A zombie that also thinks it is first, and one racing for the same start, lose.
        assert_eq!(log.commit(&record(&log, 0, 7), None).await.unwrap(), CommitOutcome::Fenced);
        assert_eq!(log.commit(&record(&log, 5, 20), Some(0)).await.unwrap(), CommitOutcome::Fenced);
        let second = record(&log, 10, 20);
        assert_eq!(log.commit(&second, Some(0)).await.unwrap(), CommitOutcome::Committed);
        assert_eq!(log.commit(&record(&log, 10, 30), Some(0)).await.unwrap(), CommitOutcome::Fenced);

        // The crash happened before publishing the first flush: recovery publishes the latest
        // only, so publish the first by hand as the writer would have.
        log.publish(&first).await.unwrap();
        assert!(lake.exists(&Path::from(first.files[0].path.as_str())).await.unwrap());
        assert_eq!(log.recover(&Ledger::new(lake.clone())).await.unwrap().unwrap().end, 20);
        assert_eq!(log.prune(2).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn sweeping_keeps_referenced_and_young_staged_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let log = CommitLog::new(lake.clone(), "t", 0);
        let committed = record(&log, 0, 1);
        let orphan = log.staging_path();
        for path in [&Path::from(committed.files[0].staged.as_str()), &orphan] {
            lake.put(path, Bytes::from_static(b"x")).await.unwrap();
        }
        log.commit(&committed, None).await.unwrap();
        assert_eq!(log.sweep_staging(Duration::from_secs(3600)).await.unwrap(), 0);
        assert_eq!(log.sweep_staging(Duration::ZERO).await.unwrap(), 1);
        assert!(!lake.exists(&orphan).await.unwrap());
        assert!(lake.exists(&Path::from(committed.files[0].staged.as_str())).await.unwrap());
    }
}
