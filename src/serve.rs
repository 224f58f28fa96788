//! What every long-running stage needs: a Prometheus endpoint, signal handling, and a
//! peak-memory figure for run summaries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// Serves `/metrics` on `addr` (empty: no endpoint). Must run inside a Tokio runtime.
pub fn start_metrics(addr: &str) -> Result<()> {
    if addr.is_empty() {
        return Ok(());
    }
    let addr: SocketAddr = addr.parse().with_context(|| format!("metrics address `{addr}` is not HOST:PORT"))?;
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("cannot serve metrics on {addr}; is the port taken? set *.metrics_addr"))?;
    tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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
    }
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
