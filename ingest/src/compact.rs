//! Compaction: the small files of a closed hour merged into few large ones, atomically for
//! readers that list through [`Snapshot`].
//!
//! Steps for one hour: take a lease on the hour; merge the small files (each sorted by time)
//! into files of about `target_file_bytes`, streaming, so memory stays at one batch per input;
//! stage them; write a [`ReplaceRecord`]; move them in; delete the old files. A crash between
//! any two steps is finished (or undone, before the record) by the next pass.
//!
//! The offset record is untouched: commit records name the files a flush first wrote, and
//! recovery only ever moves staged files, so compaction cannot make an ingester resume at
//! the wrong offset.

// `ParquetObjectReader` is deprecated in parquet 59 in favour of a hand-written
// `AsyncFileReader`; it still works and DataFusion 55 uses the same version.
#![allow(deprecated)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use bytes::Bytes;
use futures::StreamExt;
use mcpsiem_event::Timestamp;
use mcpsiem_lake::{
    HourPartition, Lake, Ledger, LedgerFile, ReplaceRecord, Snapshot, SnapshotFile, Table, compacted_file_path,
    sha256_hex,
};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};

use crate::IngestError;
use crate::config::CompactionConfig;
use crate::parquet_file::{ParquetSettings, time_column};

const MERGE_BATCH_ROWS: usize = 8192;
const LEASE: Duration = Duration::from_secs(30 * 60);
/// At most this many files are merged in one step (open streams, one batch each in memory).
const MAX_INPUTS: usize = 256;

/// What one compaction pass did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CompactionSummary {
    pub hours_compacted: u64,
    pub files_in: u64,
    pub files_out: u64,
    pub rows: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub records_finished: u64,
}

pub struct Compactor {
    pub lake: Lake,
    pub ledger: Ledger,
    /// Which instance compacts, as the ledger records it.
    pub writer: String,
    pub settings: ParquetSettings,
    pub config: CompactionConfig,
}

impl Compactor {
    /// One pass over the tables: finishes interrupted compactions, then compacts every closed
    /// hour with more than one small file.
    pub async fn run_once(&self, now: Timestamp) -> Result<CompactionSummary, IngestError> {
        let mut summary = CompactionSummary::default();
        for table in Table::ALL {
            summary.records_finished += self.finish_records(table, now).await?;
            let snapshot = Snapshot::load(&self.lake, table).await?;
            let mut hours: BTreeMap<HourPartition, Vec<SnapshotFile>> = BTreeMap::new();
            for file in snapshot.files {
                if let Some(hour) = file.hour
                    && file.size < self.config.target_file_bytes / 2
                {
                    hours.entry(hour).or_default().push(file);
                }
            }
            let settle = (self.config.settle_seconds as i64).saturating_mul(1_000_000);
            for (hour, files) in hours {
                if files.len() < 2 || hour.end().as_micros().saturating_add(settle) > now.as_micros() {
                    continue;
                }
                for chunk in files.chunks(MAX_INPUTS).filter(|c| c.len() >= 2) {
                    self.compact_hour(table, hour, chunk, &mut summary).await?;
                }
            }
        }
        Ok(summary)
    }

    async fn compact_hour(
        &self,
        table: Table,
        hour: HourPartition,
        files: &[SnapshotFile],
        summary: &mut CompactionSummary,
    ) -> Result<(), IngestError> {
        let lock =
            Path::from(format!("_lake/locks/compact/{}/{}.json", table.name(), hour.dir_name().replace('/', "_")));
        if !self.take_lease(&lock).await? {
            tracing::info!(%table, %hour, "another compactor holds this hour; skipping");
            return Ok(());
        }
        let result = self.merge_and_swap(table, hour, files, summary).await;
        self.lake.delete(&lock).await?;
        result
    }

    async fn take_lease(&self, lock: &Path) -> Result<bool, IngestError> {
        let body = Bytes::from(
            serde_json::to_vec(&serde_json::json!({ "taken_at": Timestamp::now().to_string() })).expect("json"),
        );
        if self.lake.create(lock, body.clone()).await? {
            return Ok(true);
        }
        let stale = self.lake.store().head(lock).await.is_ok_and(|meta| {
            chrono::Utc::now().signed_duration_since(meta.last_modified)
                > chrono::Duration::from_std(LEASE).expect("small")
        });
        if stale {
            tracing::warn!(lock = %lock, "taking over a compaction lease whose holder died");
            self.lake.delete(lock).await?;
            return Ok(self.lake.create(lock, body).await?);
        }
        Ok(false)
    }

    async fn merge_and_swap(
        &self,
        table: Table,
        hour: HourPartition,
        files: &[SnapshotFile],
        summary: &mut CompactionSummary,
    ) -> Result<(), IngestError> {
        let mut inputs = Vec::with_capacity(files.len());
        for file in files {
            let reader =
                ParquetObjectReader::new(self.lake.store().clone(), file.path.clone()).with_file_size(file.size);
            let stream =
                ParquetRecordBatchStreamBuilder::new(reader).await?.with_batch_size(MERGE_BATCH_ROWS).build()?;
            inputs.push(MergeInput { stream, batch: None, row: 0 });
        }
        let outputs = merge_sorted(table, &mut inputs, &self.settings, self.config.target_file_bytes).await?;
        let staged: Vec<Path> = outputs
            .iter()
            .map(|_| Path::from(format!("_lake/staging/compaction/{}.parquet", ulid::Ulid::new())))
            .collect();
        let finals: Vec<Path> = outputs.iter().map(|_| compacted_file_path(table, hour, ulid::Ulid::new())).collect();
        let mut rows = 0;
        let mut ledger_files = Vec::with_capacity(outputs.len());
        for (((bytes, n), path), final_path) in outputs.iter().zip(&staged).zip(&finals) {
            rows += n;
            summary.bytes_out += bytes.len() as u64;
            ledger_files.push(LedgerFile {
                path: final_path.to_string(),
                sha256: sha256_hex(bytes),
                bytes: bytes.len() as u64,
                rows: *n,
                staged: Some(path.to_string()),
            });
            self.lake.put(path, bytes.clone()).await?;
        }
        // Staged, not recorded: the staged files are orphans the next pass ignores.
        fail::fail_point!("compact::after_staging", |_| mcpsiem_runtime::failpoint::crash("compact::after_staging"));
        let record = ReplaceRecord {
            table: table.name().into(),
            replaced: files.iter().map(|f| f.path.to_string()).collect(),
            replacements: finals.iter().map(ToString::to_string).collect(),
            staged: staged.iter().map(ToString::to_string).collect(),
            created_at: Timestamp::now().to_string(),
            ledger: ledger_files,
        };
        let record_path = ReplaceRecord::new_path(table);
        record.write(&self.lake, &record_path).await?;
        // Recorded, not in the ledger: the next pass adds the ledger entry and finishes.
        fail::fail_point!("compact::after_replace_record", |_| mcpsiem_runtime::failpoint::crash(
            "compact::after_replace_record"
        ));
        // Recorded before the moves, so no compacted file is ever in the table unrecorded.
        let source = ReplaceRecord::ledger_source(&record_path);
        self.ledger.append(table, &source, &self.writer, record.ledger.clone(), record.replaced.clone()).await?;
        fail::fail_point!("compact::after_ledger", |_| mcpsiem_runtime::failpoint::crash("compact::after_ledger"));
        self.finish(&record).await?;
        summary.hours_compacted += 1;
        summary.files_in += files.len() as u64;
        summary.files_out += finals.len() as u64;
        summary.rows += rows;
        summary.bytes_in += files.iter().map(|f| f.size).sum::<u64>();
        tracing::info!(%table, %hour, files_in = files.len(), files_out = finals.len(), rows, "compacted hour");
        metrics::counter!("mcpsiem_compaction_files_replaced_total").increment(files.len() as u64);
        Ok(())
    }

    /// Moves a record's replacements in and deletes what they replace. Repeatable.
    async fn finish(&self, record: &ReplaceRecord) -> Result<bool, IngestError> {
        for (staged, path) in record.staged.iter().zip(&record.replacements) {
            match self.lake.rename(&Path::from(staged.as_str()), &Path::from(path.as_str())).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            // Some replacements moved in, others not: readers take the record's side.
            fail::fail_point!("compact::mid_moves", |_| mcpsiem_runtime::failpoint::crash("compact::mid_moves"));
        }
        for path in &record.replacements {
            if !self.lake.exists(&Path::from(path.as_str())).await? {
                tracing::error!(replacement = %path, "a compacted file is missing; keeping the files it replaces");
                return Ok(false);
            }
        }
        // Every replacement in, the old files still there: readers skip them by the record.
        fail::fail_point!("compact::before_deletes", |_| mcpsiem_runtime::failpoint::crash("compact::before_deletes"));
        for path in &record.replaced {
            self.lake.delete(&Path::from(path.as_str())).await?;
        }
        Ok(true)
    }

    /// Finishes records a crash interrupted and drops records past their retention.
    async fn finish_records(&self, table: Table, now: Timestamp) -> Result<u64, IngestError> {
        let retention = (self.config.replaced_retention_seconds as i64).saturating_mul(1_000_000);
        let mut finished = 0;
        for (path, record) in ReplaceRecord::load_all(&self.lake, table).await? {
            let mut pending = false;
            for old in &record.replaced {
                pending |= self.lake.exists(&Path::from(old.as_str())).await?;
            }
            if pending {
                // The crash may have come before the ledger append.
                let since = Timestamp::parse(&record.created_at).unwrap_or_else(|_| Timestamp::now());
                let source = ReplaceRecord::ledger_source(&path);
                let added = record.ledger.clone();
                self.ledger.ensure(table, &source, since, &self.writer, added, record.replaced.clone()).await?;
                if self.finish(&record).await? {
                    finished += 1;
                }
                continue;
            }
            let created = Timestamp::parse(&record.created_at).map_or(i64::MIN, Timestamp::as_micros);
            if created.saturating_add(retention) < now.as_micros() {
                self.lake.delete(&path).await?;
            }
        }
        Ok(finished)
    }
}

struct MergeInput {
    stream: ParquetRecordBatchStream<ParquetObjectReader>,
    batch: Option<RecordBatch>,
    row: usize,
}

impl MergeInput {
    /// The time of the current row, loading the next batch when this one is used up.
    async fn head(&mut self, table: Table) -> Result<Option<i64>, IngestError> {
        loop {
            if let Some(batch) = &self.batch
                && self.row < batch.num_rows()
            {
                let times = batch.column_by_name(time_column(table)).ok_or_else(|| {
                    IngestError::Schema(format!("a {table} file has no `{}` column", time_column(table)))
                })?;
                return Ok(Some(times.as_primitive::<TimestampMicrosecondType>().value(self.row)));
            }
            match self.stream.next().await {
                Some(batch) => {
                    self.batch = Some(batch?);
                    self.row = 0;
                }
                None => return Ok(None),
            }
        }
    }
}

/// k-way merge of time-sorted inputs into sorted Parquet files of about `target_bytes`.
async fn merge_sorted(
    table: Table,
    inputs: &mut [MergeInput],
    settings: &ParquetSettings,
    target_bytes: u64,
) -> Result<Vec<(Bytes, u64)>, IngestError> {
    let mut heap = BinaryHeap::new();
    for (i, input) in inputs.iter_mut().enumerate() {
        if let Some(time) = input.head(table).await? {
            heap.push(Reverse((time, i)));
        }
    }
    let mut outputs = Vec::new();
    let mut writer: Option<(ArrowWriter<Vec<u8>>, u64)> = None;
    // Rows of the chunk being assembled: (index into `chunk_batches`, row).
    let mut chunk_batches: Vec<RecordBatch> = Vec::new();
    let mut slots: Vec<Option<usize>> = vec![None; inputs.len()];
    let mut indices: Vec<(usize, usize)> = Vec::with_capacity(MERGE_BATCH_ROWS);
    while let Some(Reverse((_, i))) = heap.pop() {
        let input = &mut inputs[i];
        let slot = *slots[i].get_or_insert_with(|| {
            chunk_batches.push(input.batch.clone().expect("a head row implies a batch"));
            chunk_batches.len() - 1
        });
        indices.push((slot, input.row));
        input.row += 1;
        if input.batch.as_ref().is_some_and(|b| input.row >= b.num_rows()) {
            slots[i] = None; // the next batch gets its own slot
        }
        if let Some(time) = input.head(table).await? {
            heap.push(Reverse((time, i)));
        }
        if indices.len() == MERGE_BATCH_ROWS || heap.is_empty() {
            let refs: Vec<&RecordBatch> = chunk_batches.iter().collect();
            let merged = arrow_select::interleave::interleave_record_batch(&refs, &indices)?;
            indices.clear();
            chunk_batches.clear();
            slots.iter_mut().for_each(|s| *s = None);
            let (out, rows) = match &mut writer {
                Some(w) => w,
                None => writer.insert((settings.writer(table, &merged, Vec::new())?, 0)),
            };
            out.write(&merged)?;
            *rows += merged.num_rows() as u64;
            if (out.bytes_written() + out.in_progress_size()) as u64 >= target_bytes {
                let (out, rows) = writer.take().expect("just used");
                outputs.push((Bytes::from(out.into_inner()?), rows));
            }
        }
    }
    if let Some((out, rows)) = writer {
        outputs.push((Bytes::from(out.into_inner()?), rows));
    }
    Ok(outputs)
}
