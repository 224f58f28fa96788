//! Crash points for the fault-injection test: with `MCPSIEM_INGEST_CRASH_AT=<point>:<n>`
//! the process aborts, like a power cut, the n-th time it reaches `<point>`. Unset in
//! production; reading the variable once costs nothing afterwards.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PLAN: LazyLock<Option<(String, u64)>> = LazyLock::new(|| {
    let value = std::env::var("MCPSIEM_INGEST_CRASH_AT").ok()?;
    let (point, nth) = value.split_once(':')?;
    Some((point.to_string(), nth.parse().ok()?))
});
static HITS: AtomicU64 = AtomicU64::new(0);

/// Aborts the process if this is the planned crash.
pub fn crash_point(point: &str) {
    if let Some((planned, nth)) = PLAN.as_ref()
        && planned == point
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        eprintln!("crash point {point} reached: aborting as planned (MCPSIEM_INGEST_CRASH_AT)");
        std::process::abort();
    }
}
