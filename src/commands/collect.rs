//! `mcpsiem collect …`: wiring the collectors to the configuration, the runtime, metrics
//! and signals.

use std::time::Duration;

use anyhow::{Context, Result};
use mcpsiem_event::{EventId, EventKind, OwnedEvent, Timestamp};

use crate::config::Config;
use mcpsiem_collect::capture::Capture;
use mcpsiem_collect::observer::Observer;
use mcpsiem_collect::sink::EventSink;

/// How long a stopping collector waits for Kafka before leaving events in the spool.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// The same for a stdio proxy: its client waits for it to exit, so it keeps less time.
const STDIO_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest stdio message the proxy inspects (it forwards larger ones all the same).
const MAX_STDIO_MESSAGE_BYTES: usize = 16 << 20;

fn require_brokers(config: &Config) -> Result<()> {
    anyhow::ensure!(
        !config.kafka.brokers.is_empty(),
        "kafka.brokers is empty: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
    );
    Ok(())
}

/// Creates the events topic if Kafka answers soon; a collector must start (and spool) even
/// when Kafka is down, so failure is only logged.
async fn try_ensure_topic(kafka: mcpsiem_runtime::kafka::KafkaConfig) {
    let ensure = mcpsiem_runtime::producer::ensure_topic(&kafka, &kafka.events_topic, kafka.partitions);
    match tokio::time::timeout(Duration::from_secs(30), ensure).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot create the events topic now; events wait until Kafka takes them")
        }
        Err(_) => tracing::warn!("Kafka did not answer within 30 s; events wait until it does"),
    }
}

/// The fields every event of this collector shares.
pub fn template(config: &Config, format: &str) -> OwnedEvent {
    let mut e = OwnedEvent::new(EventId::new(), Timestamp::now(), EventKind::Message);
    e.collector_id = Some(config.collect.collector_id().into());
    e.collector_format = Some(format.to_owned().into());
    e
}

pub fn capture(config: &Config) -> Result<Capture> {
    Ok(Capture::new(&config.collect.capture)?)
}

fn close(sink: &EventSink, timeout: Duration) {
    match sink.close(timeout) {
        Ok(0) => {}
        Ok(left) => {
            tracing::warn!(left, "Kafka did not take every event in time: they stay in the spool for the next run")
        }
        Err(error) => tracing::error!(%error, "closing the spool failed"),
    }
}

/// `collect proxy --stdio -- COMMAND…`: returns the MCP server's exit code.
pub fn run_stdio_proxy(config: &Config, command: &[String]) -> Result<i32> {
    require_brokers(config)?;
    let capture = capture(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _guard = runtime.enter();
    mcpsiem_runtime::ops::start_metrics(&config.collect.metrics_addr, "collect")?;
    let sink = EventSink::start_in_free_slot(&config.kafka, &config.collect)
        .context("starting the event shipper")?
        .with_fallback_key(format!("stdio-{}", ulid::Ulid::new()));
    mcpsiem_runtime::ops::set_ready("collect", true);
    // In the background: a proxy must not delay its client's start while Kafka is away.
    runtime.spawn(try_ensure_topic(config.kafka.clone()));

    let mut template = template(config, "proxy_stdio");
    template.transport = Some("stdio".into());
    template.network_transport = Some("pipe".into());
    // A command line can hold secrets (`--api-key …`): scrubbed like any captured text.
    template.server_command = Some(capture.redact(&command.join(" ")).into_owned().into());
    if let Ok(user) = std::env::var("USER") {
        template.user_id = Some(user.into());
    }
    let observer = Observer::new(template, capture);
    let summary = runtime.block_on(mcpsiem_collect::stdio_proxy::run(
        command,
        observer,
        sink.clone(),
        MAX_STDIO_MESSAGE_BYTES,
    ))?;
    close(&sink, STDIO_CLOSE_TIMEOUT);
    drop(_guard);
    // The client's stdin may still be open (the server exited first): its blocking read
    // must not keep the process alive.
    runtime.shutdown_background();
    tracing::info!(
        exit_code = summary.exit_code,
        messages = summary.messages,
        events = summary.events,
        refused = summary.refused,
        "the MCP server exited"
    );
    Ok(summary.exit_code)
}

/// `collect proxy --http --listen ADDR --upstream URL`, until SIGINT/SIGTERM.
pub fn run_http_proxy(config: &Config, listen: &str, upstream: &str) -> Result<()> {
    require_brokers(config)?;
    anyhow::ensure!(
        !config.site.token_key.is_empty(),
        "site.token_key is empty: the HTTP proxy fingerprints bearer tokens with it; set the same key on every collector"
    );
    let capture = capture(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _guard = runtime.enter();
    mcpsiem_runtime::ops::start_metrics(&config.collect.metrics_addr, "collect")?;
    let sink = EventSink::start(&config.kafka, &config.collect).context("starting the event shipper")?;
    mcpsiem_runtime::ops::set_ready("collect", true);
    // In the background: a proxy must not delay its client's start while Kafka is away.
    runtime.spawn(try_ensure_topic(config.kafka.clone()));
    let fingerprinter = mcpsiem_event::token::TokenFingerprinter::new(&config.site.token_key);
    let proxy = mcpsiem_collect::http_proxy::HttpProxy::new(
        upstream,
        template(config, "proxy_http"),
        capture,
        fingerprinter,
        sink.clone(),
    )?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; is the port taken?"))?;
        tracing::info!(listen, upstream, "proxying MCP over HTTP");
        std::sync::Arc::new(proxy).serve(listener, mcpsiem_runtime::stop::shutdown_signal()).await?;
        anyhow::Ok(())
    });
    close(&sink, CLOSE_TIMEOUT);
    result
}

/// `collect tail PATH…`, until SIGINT/SIGTERM.
pub fn run_tail(
    config: &Config,
    paths: &[std::path::PathBuf],
    format: mcpsiem_collect::tail::formats::LogFormat,
    from_end: bool,
    once: bool,
) -> Result<mcpsiem_collect::tail::TailSummary> {
    require_brokers(config)?;
    let capture = capture(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let _guard = runtime.enter();
    mcpsiem_runtime::ops::start_metrics(&config.collect.metrics_addr, "collect")?;
    let sink = EventSink::start(&config.kafka, &config.collect).context("starting the event shipper")?;
    mcpsiem_runtime::ops::set_ready("collect", true);
    // In the background: a proxy must not delay its client's start while Kafka is away.
    runtime.spawn(try_ensure_topic(config.kafka.clone()));
    let stop = mcpsiem_runtime::stop::stop_on_signal(runtime.handle());
    let mapper = mcpsiem_collect::tail::formats::LineMapper { format, template: template(config, "mcpsiem"), capture };
    let settings = mcpsiem_collect::tail::TailSettings {
        state_dir: config.collect.tail.state_dir.clone(),
        poll: Duration::from_millis(config.collect.tail.poll_ms.max(10)),
        max_line_bytes: config.collect.tail.max_line_bytes,
        start_at_end: from_end,
        once,
    };
    tracing::info!(files = paths.len(), ?format, "following");
    Ok(mcpsiem_collect::tail::run(paths, &mapper, &sink, &settings, stop)?)
}

/// `collect http`: the HTTP intake, until SIGINT/SIGTERM.
pub fn run_intake(config: &Config, listen: &str) -> Result<()> {
    require_brokers(config)?;
    if config.collect.intake.api_keys.is_empty() {
        tracing::warn!(
            "collect.intake.api_keys is empty: every post will be refused; create a key with `mcpsiem apikey create`"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _guard = runtime.enter();
    let handle = mcpsiem_runtime::ops::metrics_handle()?;
    let sink = EventSink::start(&config.kafka, &config.collect).context("starting the event shipper")?;
    // In the background: a proxy must not delay its client's start while Kafka is away.
    runtime.spawn(try_ensure_topic(config.kafka.clone()));
    let intake = mcpsiem_collect::intake::Intake {
        sink: sink.clone(),
        api_keys: config.collect.intake.api_keys.clone(),
        max_body_bytes: config.collect.intake.max_body_bytes,
        max_record_bytes: config.decoder.max_record_bytes,
        metrics: Some(std::sync::Arc::new(move || handle.render())),
    };
    let app = mcpsiem_collect::intake::router(std::sync::Arc::new(intake));
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; is the port taken? set collect.intake.listen"))?;
        tracing::info!(listen, "event intake listening: POST /v1/events");
        mcpsiem_runtime::ops::set_ready("intake", true);
        axum::serve(listener, app).with_graceful_shutdown(mcpsiem_runtime::stop::shutdown_signal()).await?;
        anyhow::Ok(())
    });
    close(&sink, CLOSE_TIMEOUT);
    result
}
