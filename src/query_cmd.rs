//! `mcpsiem serve` (the query service), `mcpsiem query` (SQL from a terminal) and
//! `mcpsiem apikey create`: wiring the query library to the configuration and the runtime.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use mcpsiem_event::Timestamp;
use mcpsiem_event::lake::Lake;
use mcpsiem_query::{Caller, Format, QueryEngine, QueryRequest, Role, TimeRange};

use crate::config::Config;

/// Serves the HTTP API until SIGINT or SIGTERM.
pub fn run_serve(config: &Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .context("installing the metrics recorder")?;
        let lake = Lake::open(&config.lake.location)?;
        if config.query.api_keys.is_empty() {
            tracing::warn!(
                "query.api_keys is empty: every request will be refused; create one with `mcpsiem apikey create`"
            );
        }
        let engine = QueryEngine::new(lake, config.query.clone());
        let render: mcpsiem_query::http::MetricsRender = Arc::new(move || handle.render());
        let app = mcpsiem_query::http::router(engine, Some(render));
        let listener = tokio::net::TcpListener::bind(&config.query.listen).await.with_context(|| {
            format!("cannot listen on {}; is the port taken? set query.listen", config.query.listen)
        })?;
        tracing::info!(addr = %config.query.listen, lake = %config.lake.location, "query service listening");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                crate::serve::shutdown_signal().await;
                tracing::info!("stop requested; finishing running queries");
            })
            .await
            .context("serving")?;
        Ok(())
    })
}

/// How `mcpsiem query` prints rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Ndjson,
    Csv,
}

/// Runs one query straight against the lake (the caller is the local operator, who can
/// read the lake's files anyway) and prints the answer.
pub fn run_query(
    config: &Config,
    sql: &str,
    start: Option<&str>,
    end: Option<&str>,
    limit: Option<usize>,
    output: OutputFormat,
) -> Result<()> {
    let parse = |text: Option<&str>, name: &str| -> Result<Option<Timestamp>> {
        text.map(|t| Timestamp::parse(t).with_context(|| format!("--{name} {t} is not RFC 3339"))).transpose()
    };
    let request = QueryRequest {
        sql: sql.to_string(),
        range: TimeRange { start: parse(start, "start")?, end: parse(end, "end")? },
        limit,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let lake = Lake::open(&config.lake.location)?;
        let engine = QueryEngine::new(lake, config.query.clone());
        let caller = Caller { name: format!("cli:{}", whoami()), role: Role::Admin };
        let answer = match engine.run(&caller, request).await {
            Ok(answer) => answer,
            Err(e) => bail!("{e}"),
        };
        let schema = answer.schema.clone();
        let mut stream = answer.stream;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match output {
            OutputFormat::Table | OutputFormat::Json => {
                let mut batches = Vec::new();
                while let Some(next) = stream.next().await {
                    batches.push(next.map_err(|e| anyhow::anyhow!("{e}"))?);
                }
                if output == OutputFormat::Table {
                    let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?;
                    writeln!(out, "{table}")?;
                    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                    writeln!(out, "{rows} rows{}", if stream.truncated() { " (cut at the row limit)" } else { "" })?;
                } else {
                    out.write_all(&mcpsiem_query::format::json_rows(&batches)?)?;
                    writeln!(out)?;
                }
            }
            OutputFormat::Ndjson | OutputFormat::Csv => {
                let format = if output == OutputFormat::Csv { Format::Csv } else { Format::Ndjson };
                let mut encoder = mcpsiem_query::format::Encoder::new(format, &schema)?;
                while let Some(next) = stream.next().await {
                    let batch = next.map_err(|e| anyhow::anyhow!("{e}"))?;
                    out.write_all(&encoder.batch(&batch)?)?;
                }
                out.write_all(&encoder.finish()?)?;
            }
        }
        out.flush()?;
        engine.flush_audit().await;
        Ok(())
    })
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// Prints a new API key and the configuration entry that admits it.
pub fn create_api_key(name: &str, role: Role) {
    let (key, hash) = mcpsiem_query::auth::new_key();
    println!("# give this key to {name}; it is shown once and not stored anywhere:");
    println!("# {key}");
    println!("[[query.api_keys]]");
    println!("name = {}", toml::Value::String(name.to_string()));
    println!("sha256 = \"{hash}\"");
    println!("role = \"{}\"", role.as_str());
}
