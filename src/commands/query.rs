//! `mcpsiem serve` (the query service), `mcpsiem query` (SQL from a terminal) and
//! `mcpsiem apikey create`: wiring the query library to the configuration and the runtime.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use mcpsiem_event::Timestamp;
use mcpsiem_query::{Format, QueryEngine, QueryRequest, Role, TimeRange};

use crate::config::Config;

/// Serves the HTTP API until SIGINT or SIGTERM.
pub fn run_serve(config: &Config) -> Result<()> {
    let runtime = mcpsiem_runtime::lake_runtime::build(mcpsiem_runtime::lake_runtime::SERVICE_READ_THREADS)?;
    runtime.block_on(async {
        let handle = mcpsiem_runtime::ops::metrics_handle()?;
        let lake = config.lake.open()?;
        if config.query.api_keys.is_empty() {
            tracing::warn!(
                "query.api_keys is empty: every request will be refused; create one with `mcpsiem apikey create`"
            );
        }
        let engine = QueryEngine::new(lake, config.query.clone()).with_approved_servers(approved_servers(config));
        let render: mcpsiem_runtime::ops::MetricsRender = Arc::new(move || handle.render());
        let exporter = if config.evidence.signing_key.is_empty() {
            tracing::warn!("evidence.signing_key is not set: POST /api/v1/exports is refused until it is");
            None
        } else {
            let key = crate::commands::evidence::signing_key(config)?;
            Some(mcpsiem_query::export::Exporter::new(engine.clone(), key, &config.evidence))
        };
        let work_dir = if config.evidence.work_dir.is_empty() {
            std::env::temp_dir()
        } else {
            std::path::PathBuf::from(&config.evidence.work_dir)
        };
        let sinks = workflow_sinks(config)?;
        let app = mcpsiem_query::http::router_with_exports(engine.clone(), Some(render), exporter, work_dir, sinks);
        let listener = tokio::net::TcpListener::bind(&config.query.listen).await.with_context(|| {
            format!("cannot listen on {}; is the port taken? set query.listen", config.query.listen)
        })?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let pg = if config.query.pg_listen.is_empty() {
            None
        } else {
            let pg_listener = tokio::net::TcpListener::bind(&config.query.pg_listen).await.with_context(|| {
                format!(
                    "cannot listen on {}; is the port taken? set query.pg_listen (empty: off)",
                    config.query.pg_listen
                )
            })?;
            tracing::info!(addr = %config.query.pg_listen, "PostgreSQL protocol listening");
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(mcpsiem_query::pg::serve(engine.clone(), pg_listener, async move {
                let _ = stop.wait_for(|s| *s).await;
            })))
        };
        tracing::info!(addr = %config.query.listen, lake = %config.lake.location, "query service listening");
        mcpsiem_runtime::ops::set_ready("query", true);
        axum::serve(listener, app.into_make_service_with_connect_info::<mcpsiem_query::client_socket::ClientSocket>())
            .with_graceful_shutdown(async move {
                mcpsiem_runtime::stop::shutdown_signal().await;
                tracing::info!("stop requested; finishing running queries");
                let _ = stop_tx.send(true);
            })
            .await
            .context("serving")?;
        if let Some(pg) = pg {
            let _ = pg.await;
        }
        engine.flush_audit().await;
        Ok(())
    })
}

/// Where the alert workflow stores analysts' changes and silences: the alert-changes and
/// silences topics, when Kafka is configured (without it, alerts and silences are read-only
/// and changes are refused with why).
fn workflow_sinks(config: &Config) -> Result<mcpsiem_query::triage::WorkflowSinks> {
    use mcpsiem_query::triage::{KafkaChangeSink, WorkflowSinks, silences::KafkaSilenceSink};
    if config.kafka.brokers.is_empty() {
        tracing::warn!("kafka.brokers is empty: the alert workflow is read-only (changes and silences are refused)");
        return Ok(WorkflowSinks::default());
    }
    let producer = |topic: &str| {
        mcpsiem_runtime::producer::AckedProducer::new(&config.kafka, topic, std::time::Duration::from_secs(10))
            .with_context(|| format!("creating the producer of topic {topic}"))
    };
    Ok(WorkflowSinks {
        changes: Some(Arc::new(KafkaChangeSink(producer(&config.kafka.alert_changes_topic)?))),
        silences: Some(Arc::new(KafkaSilenceSink(producer(&config.kafka.silences_topic)?))),
    })
}

/// The approved MCP servers of `[detect.lists]`, which the inventory views compare with.
fn approved_servers(config: &Config) -> Vec<String> {
    config.detect.lists.get("approved_servers").cloned().unwrap_or_default()
}

/// One query as the command line gives it, for either the lake or a server.
pub struct QueryArgs<'a> {
    pub sql: &'a str,
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    pub limit: Option<usize>,
    pub output: Format,
}

/// Runs one query straight against the lake (the caller is the local operator, who can
/// read the lake's files anyway) and prints the answer.
pub fn run_query(config: &Config, args: &QueryArgs<'_>) -> Result<()> {
    let &QueryArgs { sql, start, end, limit, output } = args;
    let parse = |text: Option<&str>, name: &str| -> Result<Option<Timestamp>> {
        text.map(|t| Timestamp::parse(t).with_context(|| format!("--{name} {t} is not RFC 3339"))).transpose()
    };
    let request = QueryRequest {
        sql: sql.to_string(),
        range: TimeRange { start: parse(start, "start")?, end: parse(end, "end")? },
        limit,
        ..QueryRequest::default()
    };
    let runtime = mcpsiem_runtime::lake_runtime::build(mcpsiem_runtime::lake_runtime::COMMAND_READ_THREADS)?;
    runtime.block_on(async {
        let lake = config.lake.open()?;
        let engine = QueryEngine::new(lake, config.query.clone()).with_approved_servers(approved_servers(config));
        let caller = mcpsiem_runtime::auth::local_operator();
        let answer = match engine.run(&caller, request).await {
            Ok(answer) => answer,
            Err(e) => bail!("{e}"),
        };
        let schema = answer.schema.clone();
        let mut stream = answer.stream;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match output {
            Format::Table | Format::Json => {
                let mut batches = Vec::new();
                while let Some(next) = stream.next().await {
                    batches.push(next.map_err(|e| anyhow::anyhow!("{e}"))?);
                }
                if output == Format::Table {
                    let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?;
                    writeln!(out, "{table}")?;
                    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                    writeln!(out, "{rows} rows{}", if stream.truncated() { " (cut at the row limit)" } else { "" })?;
                } else {
                    out.write_all(&mcpsiem_query::format::json_rows(&batches)?)?;
                    writeln!(out)?;
                }
            }
            // The terminal's other formats (CSV, NDJSON) stream batch by batch.
            format => {
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

/// Prints a new API key and the configuration entry that admits it.
pub fn create_api_key(name: &str, role: Role) {
    let (key, hash) = mcpsiem_runtime::auth::new_key();
    println!("# give this key to {name}; it is shown once and not stored anywhere:");
    println!("# {key}");
    println!("[[query.api_keys]]");
    println!("name = {}", toml::Value::String(name.to_string()));
    println!("sha256 = \"{hash}\"");
    println!("role = \"{}\"", role.as_str());
}

/// Runs one query on a running query service (`--server http://host:9480`) and prints
/// the answer: CSV and NDJSON stream through as they arrive; the table is rendered from the
/// Arrow stream, so types print as the server has them.
pub fn run_remote_query(server: &str, key: &str, args: &QueryArgs<'_>) -> Result<()> {
    let &QueryArgs { sql, start, end, limit, output } = args;
    use http_body_util::BodyExt;

    let url: url::Url = server.parse().with_context(|| format!("--server {server} is not a URL"))?;
    if url.scheme() != "http" {
        bail!(
            "--server {server}: only http:// is supported; put TLS in front of the service with a proxy and reach it through a tunnel"
        );
    }
    let host = url.host_str().context("--server needs a host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    // The table is drawn from the Arrow stream; the other formats pass through as sent.
    let wire = if output == Format::Table { Format::Arrow } else { output };
    let body =
        serde_json::json!({ "sql": sql, "start": start, "end": end, "limit": limit, "format": wire }).to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("cannot reach the query service at {server}; is `mcpsiem serve` running?"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::post(format!("{}/api/v1/query", server.trim_end_matches('/')))
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {key}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        let response = sender.send_request(request).await.context("sending the query")?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            bail!("{message} (HTTP {status})");
        }
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if output == Format::Table {
            let bytes = body.collect().await?.to_bytes();
            let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
            let batches = reader.collect::<Result<Vec<_>, _>>()?;
            writeln!(out, "{}", datafusion::arrow::util::pretty::pretty_format_batches(&batches)?)?;
            writeln!(out, "{} rows", batches.iter().map(|b| b.num_rows()).sum::<usize>())?;
        } else {
            while let Some(frame) = body.frame().await {
                let frame = frame?;
                if let Some(data) = frame.data_ref() {
                    out.write_all(data)?;
                }
            }
        }
        out.flush()?;
        Ok(())
    })
}
