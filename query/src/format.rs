//! Answers in the formats analysts and tools take: JSON (one document), NDJSON, CSV and the
//! Arrow IPC stream. NDJSON, CSV and Arrow are written batch by batch, never holding the
//! whole answer.

use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

/// An answer's format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Ndjson,
    Csv,
    Arrow,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "json" => Format::Json,
            "ndjson" => Format::Ndjson,
            "csv" => Format::Csv,
            "arrow" => Format::Arrow,
            _ => return None,
        })
    }
}

/// Turns batches into bytes of one format, piece by piece.
pub enum Encoder {
    Ndjson,
    Csv { header: bool },
    Arrow(Box<StreamWriter<Vec<u8>>>),
}

impl Encoder {
    /// An encoder for the streaming formats (JSON is written whole: see [`json_document`]).
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Self, datafusion::arrow::error::ArrowError> {
        Ok(match format {
            Format::Ndjson | Format::Json => Encoder::Ndjson,
            Format::Csv => Encoder::Csv { header: true },
            Format::Arrow => Encoder::Arrow(Box::new(StreamWriter::try_new(Vec::new(), schema)?)),
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
            Encoder::Csv { header } => {
                let mut writer = CsvWriterBuilder::new().with_header(*header).build(Vec::new());
                writer.write(batch)?;
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
