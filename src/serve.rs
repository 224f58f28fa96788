//! What every long-running stage needs: a Prometheus endpoint, signal handling, and a
//! peak-memory figure for run summaries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusHandle;

/// The process's one metrics recorder, installed on first use: every stage of a process
/// (all of them under `mcpsiem up`) records into it, and each ops endpoint renders it.
pub fn metrics_handle() -> Result<PrometheusHandle> {
    // A lock, not a OnceLock: stages of `mcpsiem up` start together and must not race to
    // install two recorders.
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE.lock().expect("not poisoned");
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
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
        .context("starting the metrics upkeep thread")?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Which stages of this process are ready (set by each stage once it serves).
static READY: LazyLock<Mutex<BTreeMap<&'static str, bool>>> = LazyLock::new(Mutex::default);

/// Marks `stage` ready (or not) for its `/readyz`.
pub fn set_ready(stage: &'static str, ready: bool) {
    READY.lock().expect("not poisoned").insert(stage, ready);
}

/// Whether `stage` said it is ready.
pub fn is_ready(stage: &str) -> bool {
    READY.lock().expect("not poisoned").get(stage).copied().unwrap_or(false)
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz` (`stage` is ready) on
/// `addr`; empty: none. Must run inside a Tokio runtime.
pub fn start_metrics(addr: &str, stage: &'static str) -> Result<()> {
    if addr.is_empty() {
        return Ok(());
    }
    let handle = metrics_handle()?;
    let socket: SocketAddr = addr.parse().with_context(|| format!("metrics address `{addr}` is not HOST:PORT"))?;
    let listener = std::net::TcpListener::bind(socket)
        .with_context(|| format!("cannot serve metrics on {addr}; is the port taken? set {stage}.metrics_addr"))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(move || std::future::ready(handle.render())))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || async move {
                if is_ready(stage) {
                    (axum::http::StatusCode::OK, format!("{stage} ready"))
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("{stage} not ready"))
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

/// Set to stop every stage of the process: by a signal, or by `mcpsiem up` when one stage
/// fails.
static STOP: LazyLock<tokio::sync::watch::Sender<bool>> = LazyLock::new(|| tokio::sync::watch::channel(false).0);

/// Asks every stage of this process to stop, as SIGTERM would.
pub fn request_stop() {
    STOP.send_replace(true);
}

/// True once a stop was requested (by a signal or by [`request_stop`]).
pub fn stop_requested() -> bool {
    *STOP.borrow()
}

/// Resolves on the first SIGINT or SIGTERM, or when [`request_stop`] is called.
pub async fn shutdown_signal() {
    let mut stop = STOP.subscribe();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = stop.wait_for(|stop| *stop) => {}
    }
    request_stop();
}

/// A flag set on SIGINT or SIGTERM, so that a stage stops cleanly (flushing what it holds).
pub fn stop_on_signal(runtime: &tokio::runtime::Handle) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    runtime.spawn(async move {
        shutdown_signal().await;
        tracing::info!("stop requested; finishing what is buffered");
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

/// A flag set on each SIGHUP (the stage clears it once it acted, such as reloading rules).
pub fn flag_on_hangup(runtime: &tokio::runtime::Handle) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    runtime.spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            set.store(true, Ordering::SeqCst);
        }
    });
    flag
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
