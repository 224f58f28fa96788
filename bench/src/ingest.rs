//! `mcpsiem bench ingest`: the ingester against a bare rdkafka consumer that only counts
//! messages, on the same broker and the same topic in the same run, plus the lake's size on
//! disk against the raw NDJSON and the ingester's peak memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mcpsiem_event::Timestamp;
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_runtime::broker::TansuBroker;
use mcpsiem_runtime::producer::{EventProducer, ensure_topic};

/// What to measure.
#[derive(Clone, Debug)]
pub struct IngestBenchOptions {
    pub events: u64,
    pub partitions: i32,
    pub rounds: u32,
    /// Where the broker and the lakes live; a temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// Also ingest into a lake on a local S3-protocol server (moto), in the same rounds.
    pub s3: bool,
}

/// The figures of one run.
#[derive(Debug, Serialize)]
pub struct IngestBenchReport {
    pub events: u64,
    pub partitions: i32,
    pub rounds: u32,
    pub ndjson_bytes: u64,
    pub baseline_best_seconds: f64,
    pub baseline_events_per_sec: f64,
    pub ingest_best_seconds: f64,
    pub ingest_events_per_sec: f64,
    /// Ingest throughput over the bare consumer's; the target is at least 0.7.
    pub throughput_ratio: f64,
    pub lake_files: u64,
    pub lake_bytes: u64,
    pub lake_bytes_per_event: f64,
    pub ndjson_bytes_per_event: f64,
    /// Lake bytes over NDJSON bytes; the target is at most 1/8 (0.125).
    pub size_ratio: f64,
    /// Highest peak RSS of the ingest process over the rounds.
    pub ingest_peak_rss_bytes: Option<u64>,
    /// The same ingest into a lake on a local S3-protocol server (with `--s3`).
    pub s3_ingest_best_seconds: Option<f64>,
    pub s3_ingest_events_per_sec: Option<f64>,
    /// Events per second into the S3 lake over events per second into the local directory.
    pub s3_over_local_throughput: Option<f64>,
}

/// What `mcpsiem ingest` prints, as far as the benchmark reads it.
#[derive(serde::Deserialize)]
struct IngestOutput {
    events: u64,
    dead_letters: u64,
    run_seconds: f64,
    peak_rss_bytes: Option<u64>,
}

pub fn ingest_bench(options: &IngestBenchOptions) -> Result<IngestBenchReport> {
    let scratch;
    let dir = match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir().context("creating a temporary directory")?;
            scratch.path().to_owned()
        }
    };
    eprintln!("bench ingest: starting Tansu in {}", dir.display());
    let broker = TansuBroker::start(&dir.join("broker"), None)?;
    let kafka = KafkaConfig {
        brokers: broker.bootstrap(),
        events_topic: format!("bench-{}.events", ulid::Ulid::new().to_string().to_lowercase()),
        partitions: options.partitions,
        ..KafkaConfig::default()
    };
    let ndjson_bytes = produce(&kafka, options.events)?;

    let mut baseline_best = f64::MAX;
    let mut ingest_best = f64::MAX;
    let mut peak_rss = None;
    let mut lake = (0, 0);
    let s3 = if options.s3 { Some(crate::s3_server::S3Server::start("bench-ingest")?) } else { None };
    let mut s3_best = f64::MAX;
    // Alternate the two so that neither always runs on a warmer page cache or broker.
    for round in 1..=options.rounds.max(1) {
        let seconds = count_messages(&kafka, options.events, &format!("bench-count-{round}"))?;
        eprintln!("round {round}: bare consumer {seconds:.2} s");
        baseline_best = baseline_best.min(seconds);

        let lake_dir = dir.join(format!("lake-{round}"));
        let local = LakeTarget { location: lake_dir.display().to_string(), options: Default::default() };
        let output = run_ingester(&kafka, &local, options.events, &format!("bench-ingest-{round}"))?;
        ensure!(
            output.events == options.events && output.dead_letters == 0,
            "the ingester wrote {} events and {} dead letters, expected {} events",
            output.events,
            output.dead_letters,
            options.events
        );
        eprintln!("round {round}: ingest        {:.2} s", output.run_seconds);
        ingest_best = ingest_best.min(output.run_seconds);
        peak_rss = peak_rss.max(output.peak_rss_bytes);
        lake = directory_size(&lake_dir.join("events"))?;
        if let Some(s3) = &s3 {
            let target = LakeTarget { location: s3.location(&format!("lake-{round}")), options: s3.options() };
            let output = run_ingester(&kafka, &target, options.events, &format!("bench-ingest-s3-{round}"))?;
            ensure!(output.events == options.events, "the S3 ingest wrote {} events", output.events);
            eprintln!("round {round}: ingest to S3  {:.2} s", output.run_seconds);
            s3_best = s3_best.min(output.run_seconds);
        }
    }
    drop(broker);
    let s3_best = s3.is_some().then_some(s3_best);

    let events = options.events as f64;
    let (lake_files, lake_bytes) = lake;
    Ok(IngestBenchReport {
        events: options.events,
        partitions: options.partitions,
        rounds: options.rounds.max(1),
        ndjson_bytes,
        baseline_best_seconds: baseline_best,
        baseline_events_per_sec: events / baseline_best,
        ingest_best_seconds: ingest_best,
        ingest_events_per_sec: events / ingest_best,
        throughput_ratio: baseline_best / ingest_best,
        lake_files,
        lake_bytes,
        lake_bytes_per_event: lake_bytes as f64 / events,
        ndjson_bytes_per_event: ndjson_bytes as f64 / events,
        size_ratio: lake_bytes as f64 / ndjson_bytes as f64,
        ingest_peak_rss_bytes: peak_rss,
        s3_ingest_best_seconds: s3_best,
        s3_ingest_events_per_sec: s3_best.map(|s| events / s),
        s3_over_local_throughput: s3_best.map(|s| ingest_best / s),
    })
}

/// Where an ingest round writes: a directory, or an object-store URL with its options.
struct LakeTarget {
    location: String,
    options: std::collections::BTreeMap<String, String>,
}

/// Produces generated events (all attacks, recent enough for the ingester's age bounds) and
/// returns their size as NDJSON.
fn produce(kafka: &KafkaConfig, events: u64) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(ensure_topic(kafka, &kafka.events_topic, kafka.partitions))?;
    let start = Timestamp::from_micros(Timestamp::now().as_micros() - 30 * 3_600_000_000);
    let generator = Generator::new(GenOptions {
        events,
        seed: 7,
        start,
        days: 1,
        attacks: Scenario::ALL.to_vec(),
        ..GenOptions::default()
    });
    let producer = EventProducer::new(kafka)?;
    let bar = mcpsiem_runtime::progress::counter(events, "events produced");
    let mut ndjson_bytes = 0u64;
    let mut payload = Vec::with_capacity(2048);
    for event in generator {
        payload.clear();
        event.write_json(&mut payload);
        ndjson_bytes += payload.len() as u64 + 1;
        producer.send(mcpsiem_runtime::kafka::event_key(&event), &payload)?;
        bar.inc(1);
    }
    let report = producer.flush(Duration::from_secs(300))?;
    bar.finish_and_clear();
    if report.delivered != events {
        bail!("only {} of {events} events reached the broker", report.delivered);
    }
    eprintln!("produced {events} events ({:.1} MiB of NDJSON)", ndjson_bytes as f64 / 1048576.0);
    Ok(ndjson_bytes)
}

/// The baseline: a consumer in its own group that reads the topic from the start and only
/// counts, timed from its subscription until it has seen every message.
fn count_messages(kafka: &KafkaConfig, expected: u64, group: &str) -> Result<f64> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()?;
    consumer.subscribe(&[&kafka.events_topic])?;
    let started = Instant::now();
    let mut count = 0u64;
    while count < expected {
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the bare consumer saw {count} of {expected} in 10 minutes"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                count += 1;
                std::hint::black_box(message.payload_len());
            }
            Some(Err(e)) => tracing::warn!(error = %e, "bare consumer error"),
            None => {}
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Runs `mcpsiem ingest` as its own process, so that its peak memory is its own.
fn run_ingester(kafka: &KafkaConfig, lake: &LakeTarget, events: u64, group: &str) -> Result<IngestOutput> {
    let exe = crate::mcpsiem_exe().context("finding the mcpsiem binary")?;
    let set = |key: &str, value: &str| ["--set".to_string(), format!("{key}={value}")];
    let mut command = Command::new(exe);
    command
        .args(set("kafka.brokers", &kafka.brokers))
        .args(set("kafka.events_topic", &kafka.events_topic))
        .args(set("kafka.partitions", &kafka.partitions.to_string()))
        .args(set("lake.location", &lake.location))
        .args(lake.options.iter().flat_map(|(key, value)| set(&format!("lake.options.{key}"), value)))
        .args(set("ingest.group_id", group))
        .args(set("ingest.metrics_addr", ""))
        .args(set("ingest.compaction.enabled", "false"))
        // The baseline consumes the events topic only.
        .args(set("ingest.alerts", "false"))
        .args(["ingest", "--stop-after-records", &events.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let output = command.output().context("running mcpsiem ingest")?;
    ensure!(output.status.success(), "mcpsiem ingest failed with {}", output.status);
    serde_json::from_slice(&output.stdout).context("reading the summary mcpsiem ingest printed")
}

/// Parquet files under `dir` and their total size.
fn directory_size(dir: &Path) -> Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "parquet") {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

impl std::fmt::Display for IngestBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / 1048576.0;
        writeln!(
            f,
            "ingest: {} events, {} partitions, one Tansu broker, best of {} alternating rounds",
            self.events, self.partitions, self.rounds
        )?;
        writeln!(
            f,
            "  baseline bare rdkafka consumer (count only): {:>8.2} s {:>10.0} events/s",
            self.baseline_best_seconds, self.baseline_events_per_sec
        )?;
        writeln!(
            f,
            "  mcpsiem ingest to a committed lake          : {:>8.2} s {:>10.0} events/s",
            self.ingest_best_seconds, self.ingest_events_per_sec
        )?;
        writeln!(f, "  throughput ratio (ingest / baseline)        : {:.2}x (target >= 0.70)", self.throughput_ratio)?;
        writeln!(
            f,
            "  NDJSON {:.1} MiB ({:.0} B/event) -> lake {:.1} MiB in {} files ({:.0} B/event)",
            mib(self.ndjson_bytes),
            self.ndjson_bytes_per_event,
            mib(self.lake_bytes),
            self.lake_files,
            self.lake_bytes_per_event
        )?;
        writeln!(f, "  size ratio (lake / NDJSON)                  : {:.3} (target <= 0.125)", self.size_ratio)?;
        match self.ingest_peak_rss_bytes {
            Some(rss) => write!(f, "  ingest peak RSS                             : {:.0} MiB", mib(rss))?,
            None => write!(f, "  ingest peak RSS                             : not available on this platform")?,
        }
        if let (Some(seconds), Some(rate), Some(ratio)) =
            (self.s3_ingest_best_seconds, self.s3_ingest_events_per_sec, self.s3_over_local_throughput)
        {
            write!(
                f,
                "\n  ingest to a lake on a local S3 server (moto): {seconds:>8.2} s {rate:>10.0} events/s\n  throughput ratio (S3 / local directory)      : {ratio:.2}x"
            )?;
        }
        Ok(())
    }
}
