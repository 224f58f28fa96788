//! Answers in the formats analysts and tools take: a table, JSON (one document), NDJSON, CSV,
//! the Arrow IPC stream and Parquet. NDJSON, CSV and Arrow are written batch by batch, never holding the
//! whole answer.

use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

/// Every format an answer or an export is written in. One type for all of them, so that a
/// format's name, content type and file extension are said once; each interface takes the
/// subset it can write (see [`Format::accepted_by`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table, for a terminal.
    Table,
    /// One JSON document (`columns`, `rows`, `row_count`, `truncated` over HTTP; an array of
    /// rows on a terminal).
    #[default]
    Json,
    /// One JSON object per line (also called JSON Lines; `jsonl` is accepted).
    Ndjson,
    /// Comma-separated, with a header; nested columns as JSON text.
    Csv,
    /// The Arrow IPC stream.
    Arrow,
    /// Parquet (ZSTD), for evidence bundles.
    Parquet,
    /// Rows of the `alerts` table as OCSF Detection Findings, one JSON object per line.
    Ocsf,
}

/// Where a format is asked for: each writes only some formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// An answer of the HTTP API (`format` of `/api/v1/query`).
    Answer,
    /// The data files of an evidence bundle.
    Export,
    /// `mcpsiem query` printing to a terminal.
    Terminal,
}

impl Format {
    pub const ALL: [Format; 7] =
        [Format::Table, Format::Json, Format::Ndjson, Format::Csv, Format::Arrow, Format::Parquet, Format::Ocsf];

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
            Format::Ocsf => "ocsf",
        }
    }

    /// A format by name, any case; `jsonl` is the line-delimited JSON too.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.to_ascii_lowercase();
        if text == "jsonl" {
            return Some(Format::Ndjson);
        }
        Format::ALL.into_iter().find(|f| f.name() == text)
    }

    pub fn accepted_by(self, sink: Sink) -> bool {
        match sink {
            Sink::Answer => matches!(self, Format::Json | Format::Ndjson | Format::Csv | Format::Arrow | Format::Ocsf),
            Sink::Export => matches!(self, Format::Parquet | Format::Csv | Format::Ndjson),
            Sink::Terminal => matches!(self, Format::Table | Format::Json | Format::Ndjson | Format::Csv),
        }
    }

    /// The format named `text` if `sink` writes it, else a message that lists what it writes.
    pub fn for_sink(text: &str, sink: Sink) -> Result<Self, String> {
        match Format::parse(text) {
            Some(format) if format.accepted_by(sink) => Ok(format),
            _ => {
                let names: Vec<&str> =
                    Format::ALL.into_iter().filter(|f| f.accepted_by(sink)).map(Format::name).collect();
                Err(format!("format `{text}`: use {}", names.join(", ")))
            }
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Ocsf => "application/x-ndjson",
        }
    }

    /// The extension of a file in this format (line-delimited JSON files are `.jsonl`, as
    /// bundles have always named them).
    pub fn file_extension(self) -> &'static str {
        match self {
            Format::Ndjson => "jsonl",
            Format::Ocsf => "ocsf.jsonl",
            Format::Table => "txt",
            other => other.name(),
        }
    }

    /// Parquet and Arrow are compact already; text formats shrink a lot under deflate.
    pub fn compress_in_zip(self) -> bool {
        !matches!(self, Format::Parquet | Format::Arrow)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Format::parse(&text).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.into_iter().map(Format::name).collect();
            serde::de::Error::custom(format!("format `{text}`: use one of {}", names.join(", ")))
        })
    }
}

/// Turns batches into bytes of one format, piece by piece.
pub enum Encoder {
    Ndjson,
    Ocsf,
    Csv { header: bool },
    Arrow(Box<StreamWriter<Vec<u8>>>),
}

impl Encoder {
    /// An encoder for the streaming formats (JSON is written whole: see [`json_document`]).
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Self, datafusion::arrow::error::ArrowError> {
        Ok(match format {
            Format::Csv => Encoder::Csv { header: true },
            Format::Ocsf => Encoder::Ocsf,
            Format::Arrow => Encoder::Arrow(Box::new(StreamWriter::try_new(Vec::new(), schema)?)),
            // Table, Parquet and JSON are written whole by their callers; streamed, the rows
            // are lines.
            Format::Ndjson | Format::Json | Format::Table | Format::Parquet => Encoder::Ndjson,
        })
    }

    /// The bytes for one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
        match self {
            Encoder::Ndjson => {
                let mut writer = LineDelimitedWriter::new(Vec::new());
                writer.write(batch)?;
                writer.finish()?;
                Ok(writer.into_inner())
            }
            Encoder::Ocsf => crate::ocsf::findings(batch),
            Encoder::Csv { header } => {
                let mut writer = CsvWriterBuilder::new().with_header(*header).build(Vec::new());
                writer.write(&csv_ready(batch)?)?;
                *header = false;
                Ok(writer.into_inner())
            }
            Encoder::Arrow(writer) => {
                writer.write(batch)?;
                Ok(std::mem::take(writer.get_mut()))
            }
        }
    }

    /// The bytes that close the answer.
    pub fn finish(&mut self) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
        match self {
            Encoder::Arrow(writer) => {
                writer.finish()?;
                Ok(std::mem::take(writer.get_mut()))
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// The rows as one JSON array of objects.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut writer = ArrayWriter::new(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    Ok(if bytes.is_empty() { b"[]".to_vec() } else { bytes })
}

/// The batch with each nested column (lists, maps, structs: attributes, tags, event ids)
/// turned into a column of JSON text, which is how CSV carries them.
pub fn csv_ready(batch: &RecordBatch) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let one = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("v", field.data_type().clone(), true)])),
            vec![column.clone()],
        )?;
        let mut writer = LineDelimitedWriter::new(Vec::new());
        writer.write(&one)?;
        writer.finish()?;
        let text = writer.into_inner();
        let mut values = Vec::with_capacity(batch.num_rows());
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let object: serde_json::Value = serde_json::from_slice(line)
                .map_err(|e| datafusion::arrow::error::ArrowError::JsonError(e.to_string()))?;
            values.push(object.get("v").map(|v| v.to_string()));
        }
        // Null rows are written as `{}` by the JSON writer and come back as None above.
        values.resize(batch.num_rows(), None);
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(values)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_parses_back_from_its_name_in_any_case() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()), Some(format));
            assert_eq!(Format::parse(&format.name().to_uppercase()), Some(format));
        }
        assert_eq!(Format::parse("jsonl"), Some(Format::Ndjson));
        assert_eq!(Format::parse("xml"), None);
    }

    #[test]
    fn each_sink_takes_only_what_it_writes_and_names_the_rest() {
        assert_eq!(Format::for_sink("arrow", Sink::Answer), Ok(Format::Arrow));
        assert_eq!(Format::for_sink("jsonl", Sink::Export), Ok(Format::Ndjson));
        assert_eq!(Format::for_sink("table", Sink::Terminal), Ok(Format::Table));
        assert_eq!(
            Format::for_sink("parquet", Sink::Answer),
            Err("format `parquet`: use json, ndjson, csv, arrow, ocsf".into())
        );
        assert_eq!(Format::for_sink("arrow", Sink::Export), Err("format `arrow`: use ndjson, csv, parquet".into()));
        assert!(Format::for_sink("table", Sink::Export).is_err());
    }

    #[test]
    fn serde_uses_the_names_and_rejects_unknown_ones() {
        assert_eq!(serde_json::to_string(&Format::Ndjson).unwrap(), "\"ndjson\"");
        assert_eq!(serde_json::from_str::<Format>("\"CSV\"").unwrap(), Format::Csv);
        let error = serde_json::from_str::<Format>("\"xml\"").unwrap_err().to_string();
        assert!(error.contains("format `xml`"), "{error}");
    }
}
