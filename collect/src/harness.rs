//! The one start-up, run and stop every collector shares: a Tokio runtime, the ops endpoint,
//! the event sink with its spool, readiness, the events topic, and at the stop, what Kafka
//! has not taken moved to the spool within a bounded wait.
//!
//! A collector is a [`Collector`]: what it is called, how it wants to be run, and its own
//! loop over the [`EventSink`] it is given. A new collector is one file implementing it.

use std::future::Future;
use std::time::Duration;

use mcpsiem_runtime::kafka::KafkaConfig;

use crate::config::CollectConfig;
use crate::shipper::ShipError;
use crate::sink::EventSink;

/// How a collector is run.
pub struct Running {
    /// The name `/readyz` reports and `mcpsiem up` waits for.
    pub stage: &'static str,
    /// Tokio worker threads.
    pub worker_threads: usize,
    /// How long the stop waits for Kafka before leaving events in the spool.
    pub close_timeout: Duration,
    /// Take the first free `slot-N` under `collect.spool_dir` (stdio proxies, many per
    /// host) instead of the directory itself.
    pub free_spool_slot: bool,
    /// Whether the harness serves `/metrics` on `collect.metrics_addr` (a collector with
    /// its own listener serves it there instead).
    pub serve_metrics: bool,
    /// Leave blocked threads behind at the end instead of waiting for them (the stdio
    /// proxy: the client's stdin may still be open when its server exited).
    pub shutdown_background: bool,
    /// The largest record the collector ships (`decoder.max_record_bytes`): the producer's
    /// message limit follows it.
    pub max_record_bytes: usize,
}

impl Default for Running {
    fn default() -> Self {
        Self {
            stage: "collect",
            worker_threads: 2,
            close_timeout: Duration::from_secs(15),
            free_spool_slot: false,
            serve_metrics: true,
            shutdown_background: false,
            max_record_bytes: mcpsiem_event::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// What a collector runs with.
pub struct Context {
    pub sink: EventSink,
    pub runtime: tokio::runtime::Handle,
}

/// One kind of collector: a proxy, the tailer, the intake.
pub trait Collector {
    /// What it reports when it stops.
    type Summary;
    type Error: std::error::Error + Send + Sync + 'static;

    fn running(&self) -> Running;

    /// Runs until its traffic ends or a stop is requested (`mcpsiem_runtime::stop`); the
    /// harness closes the sink afterwards. Readiness is set once this is called, unless
    /// the collector sets it itself when it listens.
    fn run(self, context: Context) -> impl Future<Output = Result<Self::Summary, Self::Error>>;
}

/// Why a collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "kafka.brokers is empty: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
    )]
    NoBrokers,
    #[error("cannot start the collector's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Ops(#[from] mcpsiem_runtime::ops::OpsError),
    #[error("starting the event shipper: {0}")]
    Sink(#[source] ShipError),
    #[error(transparent)]
    Collector(Box<dyn std::error::Error + Send + Sync>),
}

/// Runs `collector` to its end.
pub fn run<C: Collector>(
    collector: C,
    kafka: &KafkaConfig,
    collect: &CollectConfig,
) -> Result<C::Summary, HarnessError> {
    if kafka.brokers.is_empty() {
        return Err(HarnessError::NoBrokers);
    }
    let running = collector.running();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(running.worker_threads.max(1))
        .enable_all()
        .build()
        .map_err(HarnessError::Runtime)?;
    let guard = runtime.enter();
    if running.serve_metrics {
        mcpsiem_runtime::ops::start_metrics(&collect.metrics_addr, "collect")?;
    }
    let sink = if running.free_spool_slot {
        EventSink::start_in_free_slot(kafka, collect, running.max_record_bytes)
    } else {
        EventSink::start(kafka, collect, running.max_record_bytes)
    }
    .map_err(HarnessError::Sink)?;
    if running.serve_metrics {
        mcpsiem_runtime::ops::set_ready(running.stage, true);
    }
    // In the background: a collector must not delay its client's start while Kafka is away.
    runtime.spawn(try_ensure_topic(kafka.clone()));
    let context = Context { sink: sink.clone(), runtime: runtime.handle().clone() };
    let result = runtime.block_on(collector.run(context));
    mcpsiem_runtime::ops::set_ready(running.stage, false);
    close(&sink, running.close_timeout);
    drop(guard);
    if running.shutdown_background {
        runtime.shutdown_background();
    }
    result.map_err(|e| HarnessError::Collector(Box::new(e)))
}

/// Creates the events topic if Kafka answers soon; a collector must start (and spool) even
/// when Kafka is down, so failure is only logged.
async fn try_ensure_topic(kafka: KafkaConfig) {
    let ensure = mcpsiem_runtime::producer::ensure_topic(&kafka, &kafka.events_topic, kafka.partitions);
    match tokio::time::timeout(Duration::from_secs(30), ensure).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot create the events topic now; events wait until Kafka takes them")
        }
        Err(_) => tracing::warn!("Kafka did not answer within 30 s; events wait until it does"),
    }
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
