//! The ops endpoint every long-running stage serves (`/metrics`, `/healthz`, `/readyz`)
//! and the peak-memory figure of run summaries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

/// Why the ops endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("installing the metrics recorder: {0}")]
    Recorder(#[source] metrics_exporter_prometheus::BuildError),
    #[error("starting the metrics upkeep thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("metrics address `{addr}` is not HOST:PORT; set {stage}.metrics_addr")]
    Address { addr: String, stage: &'static str },
    #[error("cannot serve metrics on {addr} (is the port taken? set {stage}.metrics_addr)")]
    Bind { addr: String, stage: &'static str, source: std::io::Error },
}

/// Renders the process's metrics in the Prometheus text format, for servers that serve
/// `/metrics` on their own listener (the query service, the intake).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The process's one metrics recorder, installed on first use: every stage of a process
/// (all of them under `mcpsiem up`) records into it, and each ops endpoint renders it.
pub fn metrics_handle() -> Result<PrometheusHandle, OpsError> {
    // A lock, not a OnceLock: stages of `mcpsiem up` start together and must not race to
    // install two recorders.
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE.lock().expect("not poisoned");
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle =
        metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().map_err(OpsError::Recorder)?;
    let upkeep = handle.clone();
    // Histograms are drained into their summaries by upkeep; the HTTP listener the
    // exporter can run itself would do it, but one listener per stage cannot share it.
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })
        .map_err(OpsError::Thread)?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Which stages of this process are ready, and why the others are not (set by each stage
/// once it serves, and by its consumer's [`crate::group_watch::GroupWatch`] while it runs).
static READY: LazyLock<Mutex<BTreeMap<&'static str, Result<(), String>>>> = LazyLock::new(Mutex::default);

/// Marks `stage` ready (or not, while starting or once stopped) for its `/readyz`.
pub fn set_ready(stage: &'static str, ready: bool) {
    let state = if ready { Ok(()) } else { Err("not serving (starting or stopped)".to_string()) };
    READY.lock().expect("not poisoned").insert(stage, state);
}

/// Marks a serving `stage` not ready for `reason` (what `/readyz` answers).
pub fn set_not_ready(stage: &'static str, reason: String) {
    READY.lock().expect("not poisoned").insert(stage, Err(reason));
}

/// Whether `stage` is ready, or why not.
pub fn readiness(stage: &str) -> Result<(), String> {
    READY.lock().expect("not poisoned").get(stage).cloned().unwrap_or_else(|| Err("not started".to_string()))
}

/// Whether `stage` said it is ready.
pub fn is_ready(stage: &str) -> bool {
    readiness(stage).is_ok()
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz` (`stage` is ready) on
/// `addr`; empty: none. Must run inside a Tokio runtime.
pub fn start_metrics(addr: &str, stage: &'static str) -> Result<(), OpsError> {
    if addr.is_empty() {
        return Ok(());
    }
    let handle = metrics_handle()?;
    let socket: SocketAddr = addr.parse().map_err(|_| OpsError::Address { addr: addr.to_string(), stage })?;
    let bind = |source| OpsError::Bind { addr: addr.to_string(), stage, source };
    let listener = std::net::TcpListener::bind(socket).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(move || std::future::ready(handle.render())))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || async move {
                match readiness(stage) {
                    Ok(()) => (axum::http::StatusCode::OK, format!("{stage} ready")),
                    Err(why) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("{stage} not ready: {why}")),
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%addr, stage, "serving /metrics, /healthz and /readyz");
    Ok(())
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
