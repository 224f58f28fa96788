//! The file writer: turns a flush of one partition into staged Parquet files, commits it in
//! the lake's commit log and publishes the files. Runs on its own thread so that consuming
//! and decoding go on while a file is encoded and uploaded.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use arrow_array::RecordBatch;
use mcpsiem_lake::{CommitLog, CommitOutcome, CommitRecord, CommittedFile, Lake, Ledger, Table, sha256_hex};
use object_store::path::Path;
use tokio::runtime::Handle;

use crate::IngestError;
use crate::deadletter::{DeadLetter, deadletter_batch};
use crate::parquet_file::{ParquetSettings, split_by_hour};

/// Everything buffered for one partition over an offset range `[start, end)`.
pub struct FlushJob {
    pub partition: i32,
    /// The partition's ownership epoch when the job was cut: jobs of a fenced epoch are dropped.
    pub epoch: u64,
    pub start: i64,
    pub end: i64,
    /// Start of the flush this one follows in the commit log.
    pub previous: Option<i64>,
    /// The table the rows go to (events or alerts), and the rows.
    pub table: Table,
    pub rows: RecordBatch,
    pub dead_letters: Vec<DeadLetter>,
}

/// What the writer reports back to the consumer.
#[derive(Debug)]
pub enum FlushReport {
    Committed {
        partition: i32,
        epoch: u64,
        start: i64,
        end: i64,
        events: u64,
        dead_letters: u64,
        bytes: u64,
    },
    /// Another writer owns these offsets: the consumer must resume from the lake.
    Fenced {
        partition: i32,
        epoch: u64,
    },
    Failed {
        partition: i32,
        epoch: u64,
        error: IngestError,
    },
}

pub struct FileWriter {
    pub lake: Lake,
    pub ledger: Ledger,
    pub topic: String,
    pub writer_id: String,
    pub settings: ParquetSettings,
    pub keep_commits: usize,
    pub runtime: Handle,
}

impl FileWriter {
    /// Processes jobs in order until the sender is dropped.
    pub fn run(self, jobs: Receiver<FlushJob>, reports: Sender<FlushReport>) {
        // The newest epoch of each partition that was fenced or failed: its later jobs would
        // break the commit chain, so they are dropped; the consumer resumes from the lake.
        let mut stopped: HashMap<i32, u64> = HashMap::new();
        let mut commits_since_prune = 0usize;
        for job in jobs {
            if stopped.get(&job.partition).is_some_and(|epoch| *epoch >= job.epoch) {
                continue;
            }
            let (partition, epoch) = (job.partition, job.epoch);
            let report = match self.runtime.block_on(self.flush(job)) {
                Ok(Some(report)) => report,
                Ok(None) => {
                    stopped.insert(partition, epoch);
                    FlushReport::Fenced { partition, epoch }
                }
                Err(error) => {
                    stopped.insert(partition, epoch);
                    FlushReport::Failed { partition, epoch, error }
                }
            };
            if matches!(report, FlushReport::Committed { .. }) {
                commits_since_prune += 1;
                if commits_since_prune >= 100 {
                    commits_since_prune = 0;
                    self.prune(partition);
                }
            }
            if reports.send(report).is_err() {
                return;
            }
        }
    }

    fn prune(&self, partition: i32) {
        let log = CommitLog::new(self.lake.clone(), &self.topic, partition);
        if let Err(e) = self.runtime.block_on(log.prune(self.keep_commits)) {
            tracing::warn!(partition, error = %e, "could not prune old commit records; will retry");
        }
    }

    /// Stages, commits and publishes one job. `Ok(None)` means fenced.
    async fn flush(&self, job: FlushJob) -> Result<Option<FlushReport>, IngestError> {
        let started = Instant::now();
        let log = CommitLog::new(self.lake.clone(), &self.topic, job.partition);
        let mut record = CommitRecord::new(&self.topic, job.partition, job.start, job.end, &self.writer_id);
        record.events = job.rows.num_rows() as u64;
        record.dead_letters = job.dead_letters.len() as u64;

        let mut tables = vec![(job.table, job.rows)];
        if !job.dead_letters.is_empty() {
            tables.push((Table::DeadLetters, deadletter_batch(&job.dead_letters)));
        }
        for (table, batch) in tables {
            for (hour, part) in split_by_hour(table, &batch)? {
                let bytes = self.settings.encode(table, std::slice::from_ref(&part))?;
                let staged = log.staging_path();
                let size = bytes.len() as u64;
                let sha256 = sha256_hex(&bytes);
                self.lake.put(&staged, bytes).await?;
                // A staged file is written, the flush not committed: it stays an orphan, deleted after
                // ingest.staging_grace_seconds.
                fail::fail_point!("ingest::mid_stage", |_| mcpsiem_runtime::failpoint::crash("ingest::mid_stage"));
                record.files.push(CommittedFile {
                    table: table.name().into(),
                    staged: staged.to_string(),
                    path: log.final_path(table, hour, job.start, job.end).to_string(),
                    rows: part.num_rows() as u64,
                    bytes: size,
                    sha256,
                });
            }
        }
        // Every file staged, no commit record: the offsets are read again after a restart.
        fail::fail_point!("ingest::before_commit", |_| mcpsiem_runtime::failpoint::crash("ingest::before_commit"));
        if log.commit(&record, job.previous).await? == CommitOutcome::Fenced {
            tracing::warn!(
                partition = job.partition,
                start = job.start,
                end = job.end,
                "another ingester committed these offsets first; dropping this flush and resuming from the lake"
            );
            for file in &record.files {
                self.lake.delete(&Path::from(file.staged.as_str())).await?;
            }
            return Ok(None);
        }
        // Committed, not yet in the ledger: a restart finishes the ledger and the moves.
        fail::fail_point!("ingest::after_commit", |_| mcpsiem_runtime::failpoint::crash("ingest::after_commit"));
        log.record_in_ledger(&self.ledger, &record).await?;
        // In the ledger, files not yet moved into the table: a restart finishes the moves.
        fail::fail_point!("ingest::after_ledger", |_| mcpsiem_runtime::failpoint::crash("ingest::after_ledger"));
        log.publish(&record).await?;
        let bytes: u64 = record.files.iter().map(|f| f.bytes).sum();
        metrics::histogram!("mcpsiem_ingest_flush_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("mcpsiem_ingest_files_written_total").increment(record.files.len() as u64);
        metrics::counter!("mcpsiem_ingest_bytes_written_total").increment(bytes);
        tracing::debug!(
            partition = job.partition,
            start = job.start,
            end = job.end,
            events = record.events,
            dead_letters = record.dead_letters,
            files = record.files.len(),
            bytes,
            "committed flush"
        );
        Ok(Some(FlushReport::Committed {
            partition: job.partition,
            epoch: job.epoch,
            start: job.start,
            end: job.end,
            events: record.events,
            dead_letters: record.dead_letters,
            bytes,
        }))
    }
}
