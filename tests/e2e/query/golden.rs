//! SQL behaviour as golden files, as DataFusion keeps it: every `tests/sql/*.slt`
//! (sqllogictest format) runs against the query engine on the small generated lake of
//! `tests/support`, with the generator's servers as the approved inventory. With
//! `MCPSIEM_SLT_COMPLETE=1` the files are rewritten with the engine's answers (review the
//! diff before committing it).

use std::path::{Path, PathBuf};

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use mcpsiem_query::{QueryEngine, QueryRequest};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::support::query_lake::{config, lake};

/// The query engine as sqllogictest's database, asking as the local operator.
struct Engine(QueryEngine);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct EngineError(String);

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Engine {
    type Error = EngineError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, EngineError> {
        let caller = mcpsiem_runtime::auth::local_operator();
        let request = QueryRequest { sql: sql.to_string(), ..QueryRequest::default() };
        let answer = self.0.run(&caller, request).await.map_err(|e| EngineError(e.to_string()))?;
        let types = answer.schema.fields().iter().map(|f| column_type(f.data_type())).collect();
        let mut rows = Vec::new();
        let mut stream = answer.stream;
        let options = FormatOptions::default().with_null("NULL");
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| EngineError(e.to_string()))?;
            let formatters: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<_, _>>()
                .map_err(|e| EngineError(e.to_string()))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .zip(batch.columns())
                        .map(|(f, column)| match f.value(row).to_string() {
                            // sqllogictest cannot hold an empty value: say so, as DataFusion does.
                            text if text.is_empty() && !column.is_null(row) => "(empty)".to_string(),
                            text => text,
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "mcpsiem"
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_sql_files_give_their_recorded_answers() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let engine = QueryEngine::new(lake, config()).with_approved_servers(mcpsiem_gen::approved_server_names());
    let complete = std::env::var_os("MCPSIEM_SLT_COMPLETE").is_some();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let files = golden_files();
    assert!(files.len() >= 2, "the golden SQL files are missing: {files:?}");
    for file in files {
        let make = {
            let engine = engine.clone();
            move || {
                let engine = engine.clone();
                async move { Ok::<_, EngineError>(Engine(engine)) }
            }
        };
        let mut runner = sqllogictest::Runner::new(make);
        runtime.block_on(async {
            if complete {
                runner
                    .update_test_file(
                        &file,
                        " ",
                        sqllogictest::default_validator,
                        sqllogictest::default_normalizer,
                        sqllogictest::strict_column_validator,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("completing {}: {e}", file.display()));
            } else {
                runner.run_file_async(&file).await.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
        });
    }
}
