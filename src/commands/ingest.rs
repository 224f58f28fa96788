//! `mcpsiem ingest` and `mcpsiem compact`: wiring the ingester library to the configuration,
//! the runtime, metrics and signals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use mcpsiem_event::Timestamp;
use mcpsiem_ingest::parquet_file::ParquetSettings;
use mcpsiem_ingest::{CompactionSummary, Compactor, IngestControl, IngestSummary, Ingester};
use mcpsiem_lake::{Lake, Table};

use crate::config::Config;

/// What `ingest` prints when it stops.
#[derive(Debug, serde::Serialize)]
pub struct IngestReport {
    #[serde(flatten)]
    pub summary: IngestSummary,
    /// The alerts topic's ingester, when `ingest.alerts` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<IngestSummary>,
    /// The alert-changes topic's ingester, when `ingest.alerts` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_changes: Option<IngestSummary>,
    /// The silences topic's ingester, when `ingest.alerts` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silences: Option<IngestSummary>,
    pub peak_rss_bytes: Option<u64>,
    pub seconds: f64,
}

fn compactor(config: &Config, lake: Lake) -> Compactor {
    Compactor {
        ledger: mcpsiem_lake::Ledger::new(lake.clone()),
        writer: mcpsiem_ingest::consumer::writer_id(),
        lake,
        settings: ParquetSettings {
            zstd_level: config.ingest.zstd_level,
            row_group_rows: config.ingest.row_group_rows,
        },
        config: config.ingest.compaction.clone(),
    }
}

fn require_brokers(config: &Config) -> Result<()> {
    anyhow::ensure!(
        !config.kafka.brokers.is_empty(),
        "kafka.brokers is empty: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
    );
    Ok(())
}

/// Runs the ingester until a signal (or, with `stop_when_idle`, until the topic is drained).
pub fn run_ingest(
    config: &Config,
    stop_when_idle: Option<Duration>,
    stop_after_records: Option<u64>,
) -> Result<IngestReport> {
    require_brokers(config)?;
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let lake = config.lake.open()?;
    {
        let _guard = runtime.enter();
        mcpsiem_runtime::ops::start_metrics(&config.ingest.metrics_addr, "ingest")?;
    }
    let mut topics = vec![&config.kafka.events_topic];
    if config.ingest.alerts {
        topics.push(&config.kafka.alerts_topic);
        topics.push(&config.kafka.alert_changes_topic);
        topics.push(&config.kafka.silences_topic);
    }
    for topic in topics {
        runtime
            .block_on(mcpsiem_runtime::producer::ensure_topic(&config.kafka, topic, config.kafka.partitions))
            .with_context(|| format!("creating topic {topic} on {}", config.kafka.brokers))?;
    }
    let stop = mcpsiem_runtime::stop::stop_on_signal(runtime.handle());
    let compaction_stop = Arc::new(AtomicBool::new(false));
    if config.ingest.compaction.enabled {
        let compactor = compactor(config, lake.clone());
        let every = Duration::from_secs(config.ingest.compaction.interval_seconds.max(1));
        let compaction_stop = compaction_stop.clone();
        runtime.spawn(async move {
            while !compaction_stop.load(Ordering::Relaxed) {
                match compactor.run_once(Timestamp::now()).await {
                    Ok(summary) if summary.files_in > 0 => tracing::info!(?summary, "compaction pass"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "compaction pass failed; retrying next interval"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
    tracing::info!(lake = %lake.location(), topic = %config.kafka.events_topic, group = %config.ingest.group_id, "ingesting");
    // The alerts and alert-changes ingesters run beside the events one and stop after it.
    let alerts_stop = Arc::new(AtomicBool::new(false));
    let mut side = Vec::new();
    if config.ingest.alerts {
        for table in [Table::Alerts, Table::AlertChanges, Table::Silences] {
            let ingester = Ingester::for_table(
                table,
                &config.kafka,
                &config.ingest,
                config.decoder.max_record_bytes,
                lake.clone(),
                runtime.handle().clone(),
            )?;
            let control = IngestControl { stop: alerts_stop.clone(), stop_when_idle, stop_after_records: None };
            let handle = std::thread::Builder::new()
                .name(format!("{table}-ingester"))
                .spawn(move || ingester.run(&control))
                .with_context(|| format!("starting the {table} ingester"))?;
            side.push((table, handle));
        }
    }
    let ingester =
        Ingester::new(&config.kafka, &config.ingest, config.decoder.max_record_bytes, lake, runtime.handle().clone())?;
    let control = IngestControl { stop, stop_when_idle, stop_after_records };
    mcpsiem_runtime::ops::set_ready("ingest", true);
    let summary = ingester.run(&control);
    mcpsiem_runtime::ops::set_ready("ingest", false);
    alerts_stop.store(true, Ordering::SeqCst);
    let (mut alerts, mut alert_changes, mut silences) = (None, None, None);
    for (table, handle) in side {
        let summary = handle
            .join()
            .map_err(|_| anyhow::anyhow!("the {table} ingester panicked"))?
            .with_context(|| format!("{table} ingester"))?;
        let slot = match table {
            Table::Alerts => &mut alerts,
            Table::AlertChanges => &mut alert_changes,
            _ => &mut silences,
        };
        *slot = Some(summary);
    }
    compaction_stop.store(true, Ordering::Relaxed);
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(IngestReport {
        summary: summary?,
        alerts,
        alert_changes,
        silences,
        peak_rss_bytes: mcpsiem_runtime::ops::peak_rss_bytes(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One compaction pass. `settle_seconds` overrides the configured settle time (0 compacts
/// every hour that has ended).
pub fn run_compact(config: &Config, settle_seconds: Option<u64>) -> Result<CompactionSummary> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let lake = config.lake.open()?;
    let mut compactor = compactor(config, lake);
    if let Some(settle) = settle_seconds {
        compactor.config.settle_seconds = settle;
    }
    Ok(runtime.block_on(compactor.run_once(Timestamp::now()))?)
}
