//! Stopping a process's stages together: on SIGINT or SIGTERM, or when `mcpsiem up` asks
//! because one stage failed; and SIGHUP for reloads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

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
