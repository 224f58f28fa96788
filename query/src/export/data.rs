//! Writing an answer's batches into a bundle entry as they arrive, hashing the bytes on the
//! way: nothing of the answer is held beyond one batch (and one Parquet row group).

use std::io::Write;

use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::ExportError;
use crate::format::{Format, Sink};

/// Counts and hashes what passes through to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// The SHA-256 (hex) and size of everything written.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An open data file of one format.
pub enum BatchWriter<W: Write + Send> {
    Parquet(ArrowWriter<HashingWriter<W>>),
    Csv(datafusion::arrow::csv::Writer<HashingWriter<W>>),
    Jsonl(LineDelimitedWriter<HashingWriter<W>>),
    /// Rows of the alerts table as OCSF Detection Findings, one per line.
    Ocsf(HashingWriter<W>),
}

/// Rows per Parquet row group: bounds the writer's memory (one group is buffered).
const ROW_GROUP_ROWS: usize = 65_536;

impl<W: Write + Send> BatchWriter<W> {
    pub fn new(format: Format, schema: &SchemaRef, out: W) -> Result<Self, ExportError> {
        let out = HashingWriter::new(out);
        Ok(match format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("a valid level")))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                Self::Parquet(ArrowWriter::try_new(out, schema.clone(), Some(props))?)
            }
            Format::Csv => Self::Csv(CsvWriterBuilder::new().with_header(true).build(out)),
            Format::Ndjson => Self::Jsonl(LineDelimitedWriter::new(out)),
            Format::Ocsf => {
                crate::ocsf::check_columns(schema).map_err(ExportError::Request)?;
                Self::Ocsf(out)
            }
            other => {
                debug_assert!(!other.accepted_by(Sink::Export));
                return Err(ExportError::Request(Format::for_sink(other.name(), Sink::Export).unwrap_err()));
            }
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ExportError> {
        match self {
            Self::Parquet(w) => w.write(batch)?,
            Self::Csv(w) => w.write(&crate::format::csv_ready(batch)?)?,
            Self::Jsonl(w) => w.write(batch)?,
            Self::Ocsf(w) => {
                w.write_all(&crate::ocsf::findings(batch)?).map_err(|e| ExportError::Encode(e.to_string()))?
            }
        }
        Ok(())
    }

    /// Ends the file; returns its SHA-256 and size.
    pub fn finish(self) -> Result<(String, u64), ExportError> {
        let out = match self {
            Self::Parquet(w) => w.into_inner()?,
            Self::Csv(w) => w.into_inner(),
            Self::Jsonl(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Self::Ocsf(w) => w,
        };
        Ok(out.finish())
    }
}
