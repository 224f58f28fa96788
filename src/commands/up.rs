//! `mcpsiem up`: every stage in one process on one machine, sharing one data directory.
//!
//! Intake, ingester, detector, alert delivery and query service each run on their own
//! thread with their own runtime, exactly as their own commands run them: they still talk
//! only through Kafka and the lake. With no `kafka.brokers` configured, a Tansu broker is
//! started with its storage in the data directory and stopped last, after every stage has
//! flushed what it holds. `--demo` also produces generated traffic with every injected
//! attack and prints the alerts as they fire.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mcpsiem_query::{ApiKey, Role};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::Config;
use mcpsiem_runtime::broker::TansuBroker;

pub struct UpOptions {
    pub data_dir: PathBuf,
    /// The embedded broker's port (when `kafka.brokers` is empty).
    pub broker_port: u16,
    pub demo: bool,
    /// Demo events to produce, and their rate per second.
    pub demo_events: u64,
    pub demo_rate: u64,
}

/// Moves a default path under `data/` to the data directory; other paths stay as set.
fn relocate(path: &Path, data_dir: &Path) -> PathBuf {
    match path.strip_prefix("data") {
        Ok(rest) if path.is_relative() => data_dir.join(rest),
        _ => path.to_path_buf(),
    }
}

/// The configuration `up` runs with, and the API key it made (if it made one).
fn prepare(config: &Config, options: &UpOptions) -> Result<(Config, Option<String>)> {
    let data = &options.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating the data directory {}", data.display()))?;
    let mut config = config.clone();
    if !config.lake.location.contains("://") {
        config.lake.location = relocate(Path::new(&config.lake.location), data).display().to_string();
    }
    config.detect.state_path = relocate(&config.detect.state_path, data);
    config.delivery.outbox_path = relocate(&config.delivery.outbox_path, data);
    config.collect.spool_dir = relocate(&config.collect.spool_dir, data);
    config.collect.tail.state_dir = relocate(&config.collect.tail.state_dir, data);
    if config.evidence.signing_key.is_empty() {
        let keys = data.join("keys");
        if !keys.join("export.key").exists() {
            mcpsiem_query::export::ExportKey::generate().write_pair(&keys, "export")?;
        }
        config.evidence.signing_key = keys.join("export.key").display().to_string();
    }
    if config.evidence.work_dir.is_empty() {
        config.evidence.work_dir = data.join("exports").display().to_string();
        std::fs::create_dir_all(&config.evidence.work_dir)?;
    }
    // Without any key the API and the intake refuse everything: make one admin key, kept in
    // the data directory (readable by its owner only) so it survives restarts.
    let mut made_key = None;
    if config.query.api_keys.is_empty() || config.collect.intake.api_keys.is_empty() {
        let path = data.join("api-key");
        let key = match std::fs::read_to_string(&path) {
            Ok(key) => key.trim().to_string(),
            Err(_) => {
                let (key, _) = mcpsiem_runtime::auth::new_key();
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
                writeln!(file, "{key}")?;
                key
            }
        };
        let entry = ApiKey { name: "up".into(), sha256: mcpsiem_runtime::auth::hash_key(&key), role: Role::Admin };
        if config.query.api_keys.is_empty() {
            config.query.api_keys.push(entry.clone());
        }
        if config.collect.intake.api_keys.is_empty() {
            config.collect.intake.api_keys.push(entry);
        }
        made_key = Some(key);
    }
    if options.demo && config.detect.lists.get("approved_servers").is_none_or(Vec::is_empty) {
        // The demo's benign servers: its shadow server is the one that is not approved.
        let approved = mcpsiem_gen::world::approved_servers().iter().map(|s| s.name.to_string()).collect();
        config.detect.lists.insert("approved_servers".into(), approved);
    }
    if options.demo && config.ingest.roll_seconds > 5 {
        // Alerts reach the lake (and the query API) within a roll: keep the demo brisk.
        config.ingest.roll_seconds = 5;
    }
    Ok((config, made_key))
}

/// One stage on its own thread; a stage that fails stops the others.
fn spawn_stage(name: &'static str, run: impl FnOnce() -> Result<()> + Send + 'static) -> Result<JoinHandle<bool>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || match run() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(stage = name, error = format!("{e:#}"), "stage failed; stopping everything");
                mcpsiem_runtime::stop::request_stop();
                false
            }
        })
        .with_context(|| format!("starting the {name} stage"))
}

pub fn run_up(config: &Config, options: &UpOptions) -> Result<()> {
    let (mut config, made_key) = prepare(config, options)?;
    let mut broker = None;
    if config.kafka.brokers.is_empty() {
        let dir = options.data_dir.join("broker");
        eprintln!("starting the embedded Kafka broker (Tansu) on 127.0.0.1:{} …", options.broker_port);
        let started = TansuBroker::start(&dir, Some(options.broker_port)).with_context(|| {
            format!(
                "starting the embedded broker on port {}; if the port is taken pass --broker-port, or set kafka.brokers to use your cluster",
                options.broker_port
            )
        })?;
        config.kafka.brokers = started.bootstrap();
        broker = Some(started);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let topics = [
        &config.kafka.events_topic,
        &config.kafka.alerts_topic,
        &config.kafka.alert_changes_topic,
        &config.kafka.silences_topic,
    ];
    for topic in topics {
        runtime
            .block_on(mcpsiem_runtime::producer::ensure_topic(&config.kafka, topic, config.kafka.partitions))
            .with_context(|| format!("creating topic {topic} on {}", config.kafka.brokers))?;
    }
    let config = Arc::new(config);
    let broker_done = Arc::new(AtomicBool::new(false));
    let supervisor = broker.map(|broker| spawn_broker_supervisor(broker, broker_done.clone())).transpose()?;
    let mut stages: Vec<(&'static str, JoinHandle<bool>)> = Vec::new();
    {
        let c = config.clone();
        stages.push((
            "ingest",
            spawn_stage("ingest", move || crate::commands::ingest::run_ingest(&c, None, None).map(drop))?,
        ));
    }
    {
        let c = config.clone();
        stages
            .push(("detect", spawn_stage("detect", move || crate::commands::detect::run_detect(&c, None).map(drop))?));
    }
    let mut waiting_for = vec!["ingest", "detect", "query", "intake"];
    if config.delivery.destinations.is_empty() {
        tracing::info!(
            "no [delivery.destinations]: alerts go to the alerts topic and the lake only (docs/delivery.md to add Slack, Teams, Jira, PagerDuty…)"
        );
    } else {
        let c = config.clone();
        stages.push(("delivery", spawn_stage("delivery", move || crate::commands::alerts::run_deliver(&c).map(drop))?));
        waiting_for.push("delivery");
    }
    {
        let c = config.clone();
        stages.push(("query", spawn_stage("query", move || crate::commands::query::run_serve(&c))?));
    }
    {
        let c = config.clone();
        let listen = c.collect.intake.listen.clone();
        stages.push(("intake", spawn_stage("intake", move || crate::commands::collect::run_intake(&c, &listen))?));
    }
    let ready = wait_ready(&waiting_for, Duration::from_secs(60));
    print_banner(&config, options, made_key.as_deref(), ready);

    let demo_done = Arc::new(AtomicBool::new(false));
    let mut demo_threads = Vec::new();
    if options.demo {
        demo_threads.push(spawn_alert_printer(&config, demo_done.clone())?);
        demo_threads.push(spawn_demo_traffic(&config, options)?);
    }
    runtime.block_on(mcpsiem_runtime::stop::shutdown_signal());
    eprintln!("stopping: flushing the lake, the detector's state and the outbox …");
    demo_done.store(true, Ordering::SeqCst);
    let mut failed = Vec::new();
    for (name, handle) in stages {
        if !handle.join().unwrap_or(false) {
            failed.push(name);
        }
    }
    for handle in demo_threads {
        let _ = handle.join();
    }
    broker_done.store(true, Ordering::SeqCst);
    if let Some(supervisor) = supervisor {
        let _ = supervisor.join();
    }
    anyhow::ensure!(failed.is_empty(), "stages failed: {} (see the log above)", failed.join(", "));
    eprintln!("stopped cleanly; data in {}", options.data_dir.display());
    Ok(())
}

/// Restarts of the embedded broker `up` makes in a row before it gives up and stops.
const BROKER_RESTARTS: u32 = 5;

/// Watches the embedded broker from the start (stages may still be starting when it dies),
/// restarting it when it dies; after [`BROKER_RESTARTS`] failed restarts in a row, stops
/// everything. When `done` is set (the stages have stopped), it stops the broker and ends.
/// The thread owns the broker: a restarted broker dies with the thread that started it.
fn spawn_broker_supervisor(mut broker: TansuBroker, done: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("broker-supervisor".into())
        .spawn(move || {
            let mut failures = 0;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                if failures >= BROKER_RESTARTS || !broker.has_exited() {
                    continue;
                }
                tracing::error!(port = broker.port(), "the embedded broker died; restarting it");
                metrics::counter!("mcpsiem_up_broker_restarts_total").increment(1);
                match broker.restart() {
                    Ok(()) => {
                        failures = 0;
                        tracing::info!(port = broker.port(), "the embedded broker is back");
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::error!(%error, failures, "the embedded broker could not be restarted");
                        if failures >= BROKER_RESTARTS {
                            tracing::error!("giving up on the embedded broker: stopping every stage");
                            mcpsiem_runtime::stop::request_stop();
                        }
                    }
                }
            }
            broker.stop();
        })
        .context("starting the broker supervisor")
}

fn wait_ready(stages: &[&str], limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if stages.iter().all(|s| mcpsiem_runtime::ops::is_ready(s)) {
            return true;
        }
        if mcpsiem_runtime::stop::stop_requested() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn print_banner(config: &Config, options: &UpOptions, key: Option<&str>, ready: bool) {
    let key_line = match key {
        Some(_) => format!("{} (admin; also accepted by the intake)", options.data_dir.join("api-key").display()),
        None => "your configured query.api_keys".to_string(),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nmcpsiem is {}\n\
         \x20 query API     http://{query}/api/v1/query   (SQL; docs/query.md)\n\
         \x20 PostgreSQL    {pg}\n\
         \x20 event intake  http://{intake}/v1/events\n\
         \x20 metrics       http://{query}/metrics, ingest http://{im}, detect http://{dm}, delivery http://{lm}\n\
         \x20 health        /healthz and /readyz on each of those\n\
         \x20 Kafka         {brokers}\n\
         \x20 lake          {lake}\n\
         \x20 API key       {key_line}\n\n\
         Try:\n\
         \x20 KEY=$(cat {keyfile})\n\
         \x20 curl -s -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' http://{query}/api/v1/query \\\n\
         \x20   -d '{{\"sql\":\"SELECT rule_title, level, count(*) AS alerts FROM alerts GROUP BY 1, 2 ORDER BY 3 DESC\"}}'\n\n\
         Ctrl-C stops everything.\n",
        if ready { "up" } else { "starting (some stages are not ready yet; see the log)" },
        query = config.query.listen,
        pg = if config.query.pg_listen.is_empty() { "off".to_string() } else { config.query.pg_listen.clone() },
        intake = config.collect.intake.listen,
        im = config.ingest.metrics_addr,
        dm = config.detect.metrics_addr,
        lm = config.delivery.metrics_addr,
        brokers = config.kafka.brokers,
        lake = config.lake.location,
        keyfile = options.data_dir.join("api-key").display(),
    );
    let _ = out.flush();
}

/// Prints each alert from the alerts topic as it fires (from the moment `up` started).
fn spawn_alert_printer(config: &Arc<Config>, done: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    let consumer: BaseConsumer = config
        .kafka
        .client_config()
        .set("group.id", format!("mcpsiem-up-console-{}", ulid::Ulid::new()))
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the alert console's consumer")?;
    consumer.subscribe(&[&config.kafka.alerts_topic]).context("subscribing to the alerts topic")?;
    Ok(std::thread::Builder::new().name("alert-console".into()).spawn(move || {
        let mut shown = 0u64;
        while !done.load(Ordering::SeqCst) {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else { continue };
            let Some(Ok(alert)) = message.payload().map(mcpsiem_event::Alert::from_json) else { continue };
            shown += 1;
            let group: Vec<String> = alert.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "ALERT {:<8} {} [{}] {}",
                alert.level.as_str(),
                alert.rule_title,
                alert.last_time,
                group.join(" ")
            );
        }
        tracing::info!(alerts = shown, "alert console stopped");
    })?)
}

/// Generated traffic with every injected attack, over the day ending two hours ago, at
/// `demo_rate` per second.
fn spawn_demo_traffic(config: &Arc<Config>, options: &UpOptions) -> Result<JoinHandle<()>> {
    use mcpsiem_gen::{GenOptions, Generator, Scenario};
    const DAY_US: i64 = 86_400_000_000;
    let now = mcpsiem_event::Timestamp::now();
    let generator_options = GenOptions {
        events: options.demo_events,
        seed: now.as_micros() as u64,
        // The day ending two hours ago: the simulation may run past its period, never past now.
        start: mcpsiem_event::Timestamp::from_micros(now.as_micros() - DAY_US - mcpsiem_gen::OVERRUN_MARGIN_MICROS),
        days: 1,
        attacks: Scenario::ALL.to_vec(),
        token_key: if config.site.token_key.is_empty() {
            GenOptions::default().token_key
        } else {
            config.site.token_key.clone()
        },
        ..GenOptions::default()
    };
    let producer =
        mcpsiem_runtime::producer::EventProducer::new(&config.kafka).context("creating the demo producer")?;
    let rate = options.demo_rate.max(1);
    Ok(std::thread::Builder::new().name("demo-traffic".into()).spawn(move || {
        let started = Instant::now();
        let mut sent = 0u64;
        let mut payload = Vec::with_capacity(2048);
        for event in Generator::new(generator_options) {
            if mcpsiem_runtime::stop::stop_requested() {
                break;
            }
            payload.clear();
            event.write_json(&mut payload);
            if let Err(e) = producer.send(mcpsiem_runtime::kafka::event_key(&event), &payload) {
                tracing::error!(error = %e, "demo traffic: producing failed");
                break;
            }
            sent += 1;
            if sent.is_multiple_of(50) {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let _ = producer.flush(Duration::from_secs(30));
        eprintln!("demo traffic: {sent} events with every injected attack produced");
    })?)
}
