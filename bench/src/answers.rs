//! Peak memory of the query service under wide answers: several analysts' queries at once,
//! each answering hundreds of megabytes, in every format of the HTTP API, against
//! `query.memory_limit_bytes`. The service runs as its own `mcpsiem serve` process, so its
//! peak RSS (Linux `VmHWM`) is its own.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub struct AnswerBenchOptions {
    /// Rows per answer.
    pub rows: u64,
    /// Bytes of text per row.
    pub width: usize,
    /// Queries at once.
    pub concurrent: usize,
    pub memory_limit_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct AnswerRun {
    pub format: String,
    pub answer_bytes_each: u64,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    /// Peak RSS over `query.memory_limit_bytes`.
    pub peak_rss_over_memory_limit: f64,
}

#[derive(Debug, Serialize)]
pub struct AnswerBenchReport {
    pub concurrent: usize,
    pub rows: u64,
    pub memory_limit_bytes: u64,
    /// The service at rest, before any query (the constant the limit adds to).
    pub idle_rss_bytes: u64,
    pub runs: Vec<AnswerRun>,
}

impl std::fmt::Display for AnswerBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        writeln!(
            f,
            "{} queries at once, {} rows each; query.memory_limit_bytes {:.0} MiB; idle RSS {:.0} MiB",
            self.concurrent,
            self.rows,
            mib(self.memory_limit_bytes),
            mib(self.idle_rss_bytes)
        )?;
        for run in &self.runs {
            writeln!(
                f,
                "  {:<7} {:>7.0} MiB per answer in {:>6.1} s: peak RSS {:>6.0} MiB = {:.2}x the memory limit",
                run.format,
                mib(run.answer_bytes_each),
                run.seconds,
                mib(run.peak_rss_bytes),
                run.peak_rss_over_memory_limit
            )?;
        }
        Ok(())
    }
}

const KEY: &str = "mcpsiem_bench_answers_key_0123456789";

/// `VmHWM` or `VmRSS` of a process, in bytes.
pub(crate) fn memory_of(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// POSTs one query and reads the answer to its end; the bytes of the body.
fn run_query(port: u16, sql: &str, format: &str) -> Result<u64> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let body = serde_json::json!({ "sql": sql, "format": format }).to_string();
    write!(
        stream,
        "POST /api/v1/query HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 64 {
            head.extend_from_slice(&buf[..n.min(64)]);
        }
        total += n as u64;
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        bail!("the query failed: {}", String::from_utf8_lossy(&head));
    }
    Ok(total)
}

pub fn answers_bench(options: &AnswerBenchOptions) -> Result<AnswerBenchReport> {
    let exe = crate::mcpsiem_exe().context("finding the mcpsiem executable")?;
    let dir = tempfile::tempdir()?;
    let sql = format!("SELECT value, repeat('x', {}) AS pad FROM generate_series(1, {})", options.width, options.rows);
    let mut runs = Vec::new();
    let mut idle = 0;
    for format in ["json", "ndjson", "csv", "arrow"] {
        let port = mcpsiem_runtime::broker::free_port()?;
        let config = dir.path().join("mcpsiem.toml");
        std::fs::write(
            &config,
            format!(
                "[lake]\nlocation = \"{}\"\n[query]\nlisten = \"127.0.0.1:{port}\"\npg_listen = \"\"\n\
                 memory_limit_bytes = {}\nmax_rows = {}\nmax_concurrent = {}\nmax_concurrent_per_key = {}\ntimeout_seconds = 600\n\
                 [[query.api_keys]]\nname = \"bench\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
                dir.path().join("lake").display(),
                options.memory_limit_bytes,
                options.rows,
                options.concurrent,
                options.concurrent,
                mcpsiem_runtime::auth::hash_key(KEY)
            ),
        )?;
        let mut serve = Command::new(&exe)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mcpsiem serve")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || serve.try_wait()?.is_some() {
                let _ = serve.kill();
                bail!("mcpsiem serve did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        idle = idle.max(memory_of(serve.id(), "VmRSS:").unwrap_or(0));
        eprintln!("{format}: {} queries of {} rows at once…", options.concurrent, options.rows);
        let started = Instant::now();
        let threads: Vec<_> = (0..options.concurrent)
            .map(|_| {
                let sql = sql.clone();
                std::thread::spawn(move || run_query(port, &sql, format))
            })
            .collect();
        let mut sizes = Vec::new();
        for thread in threads {
            sizes.push(thread.join().map_err(|_| anyhow::anyhow!("a query thread panicked"))??);
        }
        let seconds = started.elapsed().as_secs_f64();
        let peak = memory_of(serve.id(), "VmHWM:").context("no VmHWM (not Linux?)")?;
        let _ = serve.kill();
        let _ = serve.wait();
        runs.push(AnswerRun {
            format: format.into(),
            answer_bytes_each: sizes.iter().sum::<u64>() / sizes.len().max(1) as u64,
            seconds,
            peak_rss_bytes: peak,
            peak_rss_over_memory_limit: peak as f64 / options.memory_limit_bytes.max(1) as f64,
        });
    }
    Ok(AnswerBenchReport {
        concurrent: options.concurrent,
        rows: options.rows,
        memory_limit_bytes: options.memory_limit_bytes,
        idle_rss_bytes: idle,
        runs,
    })
}
