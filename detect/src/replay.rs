//! Replay: the same rules over the lake's history, hour partition by hour partition, each
//! hour's events in event-time order, through the same engine as the live path.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use mcpsiem_event::{EventColumns, McpEvent, Timestamp};
use mcpsiem_lake::{Lake, LakeError, Snapshot, Table};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::Alert;
use crate::engine::Engine;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the lake: {0}")]
    Lake(#[from] LakeError),
    #[error("{path} is not a readable Parquet file of events: {reason}")]
    File { path: String, reason: String },
    #[error("the lake kept changing under the replay (ten snapshots in a row); retry")]
    Unstable,
}

/// Totals of one replay.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReplaySummary {
    pub hours: u64,
    pub files: u64,
    pub events: u64,
    pub alerts: u64,
    /// Firings folded into an alert already raised (the live path records them as repeats
    /// on the alert-changes topic; a replay only counts them).
    pub repeats: u64,
}

/// Reads every live file of one hour. Compaction may replace a listed file meanwhile; then
/// the snapshot is loaded again, so no row is missed and none is read twice.
async fn read_hour(
    lake: &Lake,
    epoch_hour: i64,
    mut files: Vec<mcpsiem_lake::SnapshotFile>,
) -> Result<(Vec<RecordBatch>, u64), ReplayError> {
    'attempt: for _ in 0..10 {
        let mut batches = Vec::new();
        for file in &files {
            let Some(bytes) = lake.get(&file.path).await? else {
                tracing::debug!(path = %file.path, "a listed file was replaced meanwhile; reloading the snapshot");
                let snapshot = Snapshot::load(lake, Table::Events).await?;
                files =
                    snapshot.files.into_iter().filter(|f| f.hour.is_some_and(|h| h.epoch_hour == epoch_hour)).collect();
                continue 'attempt;
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.with_batch_size(8192).build())
                .map_err(|e| ReplayError::File { path: file.path.to_string(), reason: e.to_string() })?;
            for batch in reader {
                let batch =
                    batch.map_err(|e| ReplayError::File { path: file.path.to_string(), reason: e.to_string() })?;
                EventColumns::check_schema(&batch)
                    .map_err(|reason| ReplayError::File { path: file.path.to_string(), reason })?;
                batches.push(batch);
            }
        }
        return Ok((batches, files.len() as u64));
    }
    Err(ReplayError::Unstable)
}

/// Replays events with `from <= event.time < to`; `on_alert` gets each alert as it fires.
/// `on_hour` reports progress (hours done, hours in all).
pub async fn replay(
    lake: &Lake,
    engine: &mut Engine,
    from: Timestamp,
    to: Timestamp,
    mut on_alert: impl FnMut(Alert),
    mut on_hour: impl FnMut(u64, u64),
) -> Result<ReplaySummary, ReplayError> {
    let snapshot = Snapshot::load(lake, Table::Events).await?;
    let mut hours: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for file in snapshot.files {
        let Some(hour) = file.hour else { continue };
        if hour.end() <= from || hour.start() >= to {
            continue;
        }
        hours.entry(hour.epoch_hour).or_default().push(file);
    }
    let mut summary = ReplaySummary::default();
    let total = hours.len() as u64;
    for (epoch_hour, files) in hours {
        let (batches, read) = read_hour(lake, epoch_hour, files).await?;
        summary.files += read;
        let mut rows: Vec<(Timestamp, String, usize, usize)> = Vec::new();
        let decoded: Vec<Vec<Option<McpEvent<'_>>>> = batches
            .iter()
            .map(|batch| (0..batch.num_rows()).map(|row| McpEvent::from_batch_row(batch.columns(), row).ok()).collect())
            .collect();
        for (b, events) in decoded.iter().enumerate() {
            for (r, event) in events.iter().enumerate() {
                if let Some(event) = event
                    && event.time >= from
                    && event.time < to
                {
                    rows.push((event.time, event.id.to_string(), b, r));
                }
            }
        }
        // Event time, then id: the order the live path sees when traffic is in order.
        rows.sort();
        for (_, _, b, r) in rows {
            let event = decoded[b][r].as_ref().expect("kept above");
            summary.events += 1;
            for alert in engine.process(event) {
                summary.alerts += 1;
                on_alert(alert);
            }
            // Not kept: a replay reports alerts; what repeated is in the engine's count.
            let _ = engine.take_repeats();
        }
        summary.hours += 1;
        on_hour(summary.hours, total);
    }
    for alert in engine.finish() {
        summary.alerts += 1;
        on_alert(alert);
    }
    let _ = engine.take_repeats();
    summary.repeats = engine.stats.repeats;
    Ok(summary)
}
