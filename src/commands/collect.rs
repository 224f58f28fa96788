//! `mcpsiem collect …`: each collector built from the configuration and run by the
//! collectors' harness (`mcpsiem_collect::harness`).

use std::time::Duration;

use anyhow::Result;
use mcpsiem_collect::capture::Capture;
use mcpsiem_collect::harness;
use mcpsiem_collect::observer::Observer;
use mcpsiem_event::{EventId, EventKind, OwnedEvent, Timestamp};

use crate::config::Config;

/// Largest stdio message the proxy inspects (it forwards larger ones all the same).
const MAX_STDIO_MESSAGE_BYTES: usize = 16 << 20;

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

/// `collect proxy --stdio -- COMMAND…`: returns the MCP server's exit code.
pub fn run_stdio_proxy(config: &Config, command: &[String]) -> Result<i32> {
    let capture = capture(config)?;
    let mut template = template(config, "proxy_stdio");
    template.transport = Some("stdio".into());
    template.network_transport = Some("pipe".into());
    // A command line can hold secrets (`--api-key …`): scrubbed like any captured text.
    template.server_command = Some(capture.redact(&command.join(" ")).into_owned().into());
    if let Ok(user) = std::env::var("USER") {
        template.user_id = Some(user.into());
    }
    let proxy = mcpsiem_collect::stdio_proxy::StdioProxyCollector {
        command: command.to_vec(),
        observer: Observer::new(template, capture),
        max_message_bytes: MAX_STDIO_MESSAGE_BYTES,
    };
    let summary = harness::run(proxy, &config.kafka, &config.collect)?;
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
pub fn run_http_proxy(config: &Config, listen: &str, upstream: &str, resource_uri: &str) -> Result<()> {
    anyhow::ensure!(
        !config.site.token_key.is_empty(),
        "site.token_key is empty: the HTTP proxy fingerprints bearer tokens with it; set the same key on every collector"
    );
    let proxy = mcpsiem_collect::http_proxy::HttpProxyCollector {
        listen: listen.to_owned(),
        upstream: upstream.to_owned(),
        resource_uri: resource_uri.to_owned(),
        template: template(config, "proxy_http"),
        capture: capture(config)?,
        fingerprinter: mcpsiem_event::token::TokenFingerprinter::new(&config.site.token_key),
    };
    Ok(harness::run(proxy, &config.kafka, &config.collect)?)
}

/// `collect tail PATH…`, until SIGINT/SIGTERM.
pub fn run_tail(
    config: &Config,
    paths: &[std::path::PathBuf],
    format: mcpsiem_collect::tail::formats::LogFormat,
    from_end: bool,
    once: bool,
) -> Result<mcpsiem_collect::tail::TailSummary> {
    let mapper = mcpsiem_collect::tail::formats::LineMapper {
        format,
        template: template(config, "mcpsiem"),
        capture: capture(config)?,
    };
    let settings = mcpsiem_collect::tail::TailSettings {
        state_dir: config.collect.tail.state_dir.clone(),
        poll: Duration::from_millis(config.collect.tail.poll_ms.max(10)),
        max_line_bytes: config.collect.tail.max_line_bytes,
        start_at_end: from_end,
        once,
    };
    let tailer = mcpsiem_collect::tail::TailCollector { paths: paths.to_vec(), mapper, settings };
    Ok(harness::run(tailer, &config.kafka, &config.collect)?)
}

/// `collect http`: the HTTP intake, until SIGINT/SIGTERM.
pub fn run_intake(config: &Config, listen: &str) -> Result<()> {
    let intake = mcpsiem_collect::intake::IntakeCollector {
        listen: listen.to_owned(),
        otlp_grpc_listen: config.collect.intake.otlp_grpc_listen.clone(),
        capture: capture(config)?,
        api_keys: config.collect.intake.api_keys.clone(),
        max_body_bytes: config.collect.intake.max_body_bytes,
        max_record_bytes: config.decoder.max_record_bytes,
        max_records: config.collect.intake.max_records,
    };
    Ok(harness::run(intake, &config.kafka, &config.collect)?)
}
