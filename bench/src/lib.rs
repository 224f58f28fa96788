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
pub mod s3_server;
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

/// Starts `mcpsiem serve` with the configuration file `config` and waits (up to 30 s) until
/// it listens on every one of `ports`; the caller stops it.
pub fn start_serve(config: &std::path::Path, ports: &[u16]) -> anyhow::Result<std::process::Child> {
    use anyhow::Context;
    let exe = mcpsiem_exe().context("finding the mcpsiem executable")?;
    let mut serve = std::process::Command::new(&exe)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting mcpsiem serve")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ports.iter().any(|&port| std::net::TcpStream::connect(("127.0.0.1", port)).is_err()) {
        if std::time::Instant::now() > deadline || serve.try_wait()?.is_some() {
            let _ = serve.kill();
            anyhow::bail!("mcpsiem serve did not listen on {ports:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(serve)
}
