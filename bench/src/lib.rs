//! mcpsiem's benchmarks, each against a named baseline measured in the same run (see the
//! README's Benchmarks section). The `mcpsiem-bench` binary is the entry point.

pub mod answers;
pub mod collect;
pub mod decode;
pub mod delivery;
pub mod detect;
pub mod detect_scaling;
pub mod export;
pub mod ingest;
pub mod latency;
pub mod noise;
pub mod query;
pub mod rsigma;
pub mod triage;

use std::path::PathBuf;

/// The `mcpsiem` binary beside this one, for benchmarks that run a stage as its own
/// process; `MCPSIEM_BIN` overrides it.
pub fn mcpsiem_exe() -> std::io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("MCPSIEM_BIN") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe()?;
    let beside = me.with_file_name("mcpsiem");
    if beside.exists() {
        return Ok(beside);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no mcpsiem binary beside {}: build it (`cargo build --release`) or set MCPSIEM_BIN", me.display()),
    ))
}
