//! Record batches to Parquet files laid out for forensics.
//!
//! Rows are sorted by time inside a file (and the file says so), so that readers prune row
//! groups and pages by time with the statistics and the page index. The identifiers analysts
//! pivot on (event id, token fingerprint, session, subject, client address) get bloom
//! filters, so a lookup of one value skips the row groups that cannot hold it.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_ord::sort::sort_to_indices;
use arrow_schema::ArrowError;
use bytes::Bytes;
use mcpsiem_event::Timestamp;
use mcpsiem_lake::{HourPartition, Table};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// The columns with bloom filters, per table.
fn bloom_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Events => {
            &["event_id", "auth_token_fingerprint", "mcp_session_id", "auth_token_sub", "client_address", "enduser_id"]
        }
        Table::DeadLetters => &[],
        Table::Alerts | Table::AlertChanges => &["alert_id"],
        Table::Silences => &[],
    }
}

/// Columns unique per row or large free text: a dictionary would only be abandoned midway.
fn plain_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Events => &[
            "event_id",
            "jsonrpc_request_id",
            "gen_ai_tool_call_arguments",
            "gen_ai_tool_call_result",
            "mcp_tool_description",
            "rpc_jsonrpc_error_message",
        ],
        Table::DeadLetters => &["raw", "error"],
        Table::Alerts => &[],
        Table::AlertChanges => &["change_id", "comment"],
        Table::Silences => &["silence_id", "reason"],
    }
}

/// The name of the column a table is partitioned and sorted by.
pub fn time_column(table: Table) -> &'static str {
    match table {
        Table::Events => "event_time",
        Table::DeadLetters => "received_time",
        Table::Alerts => "alert_time",
        Table::AlertChanges => "changed_at",
        Table::Silences => "version_at",
    }
}

/// Parquet settings shared by the ingester and the compactor.
#[derive(Clone, Debug)]
pub struct ParquetSettings {
    pub zstd_level: i32,
    pub row_group_rows: usize,
}

impl ParquetSettings {
    fn properties(&self, table: Table, batch: &RecordBatch) -> Result<WriterProperties, ParquetError> {
        let time_index =
            batch.schema().index_of(time_column(table)).map_err(|e| ParquetError::General(e.to_string()))?;
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1024)))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_dictionary_enabled(true)
            .set_sorting_columns(Some(vec![SortingColumn {
                column_idx: time_index as i32,
                descending: false,
                nulls_first: false,
            }]))
            .set_created_by(format!("mcpsiem {}", env!("CARGO_PKG_VERSION")));
        for column in bloom_columns(table) {
            if batch.schema().index_of(column).is_ok() {
                builder = builder.set_column_bloom_filter_enabled(ColumnPath::from(*column), true);
            }
        }
        for column in plain_columns(table) {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        Ok(builder.build())
    }

    /// A writer for batches shaped like `sample`, with the table's settings.
    pub fn writer<W: std::io::Write + Send>(
        &self,
        table: Table,
        sample: &RecordBatch,
        out: W,
    ) -> Result<ArrowWriter<W>, ParquetError> {
        ArrowWriter::try_new(out, sample.schema(), Some(self.properties(table, sample)?))
    }

    /// Encodes batches (already sorted by time) as one Parquet file.
    pub fn encode(&self, table: Table, batches: &[RecordBatch]) -> Result<Bytes, ParquetError> {
        let Some(first) = batches.first() else { return Err(ParquetError::General("no rows to write".into())) };
        let mut writer = self.writer(table, first, Vec::new())?;
        for batch in batches {
            writer.write(batch)?;
        }
        Ok(Bytes::from(writer.into_inner()?))
    }
}

/// Sorts a batch by its table's time column and cuts it into one batch per hour.
pub fn split_by_hour(table: Table, batch: &RecordBatch) -> Result<Vec<(HourPartition, RecordBatch)>, ArrowError> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let time = batch
        .column_by_name(time_column(table))
        .ok_or_else(|| ArrowError::SchemaError(format!("the {table} batch has no `{}` column", time_column(table))))?;
    let indices = sort_to_indices(time, None, None)?;
    let sorted = arrow_select::take::take_record_batch(batch, &indices)?;
    let times = Arc::clone(sorted.column_by_name(time_column(table)).expect("checked above"));
    let times = times.as_primitive::<TimestampMicrosecondType>();
    let mut parts = Vec::new();
    let mut begin = 0;
    while begin < sorted.num_rows() {
        let hour = HourPartition::of(Timestamp::from_micros(times.value(begin)));
        let end_micros = hour.end().as_micros();
        // Sorted, so the hour's rows are the run up to the first time past its end.
        let len = times.values()[begin..].partition_point(|t| *t < end_micros);
        parts.push((hour, sorted.slice(begin, len)));
        begin += len;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::{DeadLetter, DeadLetterReason, deadletter_batch};

    fn letter(time: &str, offset: i64) -> DeadLetter {
        DeadLetter {
            received_time: Timestamp::parse(time).unwrap(),
            topic: "t".into(),
            partition: 0,
            offset,
            key: None,
            kafka_time: None,
            reason: DeadLetterReason::EmptyMessage,
            raw: vec![],
        }
    }

    #[test]
    fn splits_into_sorted_hours() {
        let batch = deadletter_batch(&[
            letter("2026-11-23T15:00:00Z", 0),
            letter("2026-11-23T14:10:00Z", 1),
            letter("2026-11-23T14:59:59.999999Z", 2),
            letter("2026-11-23T13:00:00Z", 3),
        ]);
        let parts = split_by_hour(Table::DeadLetters, &batch).unwrap();
        let shape: Vec<(String, Vec<i64>)> = parts
            .iter()
            .map(|(hour, b)| {
                let offsets = b.column_by_name("offset").unwrap().as_primitive::<arrow_array::types::Int64Type>();
                (hour.dir_name(), offsets.values().to_vec())
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("date=2026-11-23/hour=13".to_string(), vec![3]),
                ("date=2026-11-23/hour=14".to_string(), vec![1, 2]),
                ("date=2026-11-23/hour=15".to_string(), vec![0]),
            ]
        );
        let settings = ParquetSettings { zstd_level: 3, row_group_rows: 1024 };
        let bytes = settings.encode(Table::DeadLetters, &[parts[1].1.clone()]).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        assert!(reader.metadata().row_group(0).sorting_columns().is_some());
    }
}
