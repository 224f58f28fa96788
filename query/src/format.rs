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
