//! Peak memory of the query service under wide answers: several analysts' queries at once,
//! each answering hundreds of megabytes, in every format of the HTTP API and over the
//! PostgreSQL protocol, against `query.total_memory_bytes` (the bound of every running
//! query together). The service runs as its own `mcpsiem serve` process, so its peak RSS
//! (Linux `VmHWM`) is its own.

use std::io::{Read, Write};

use std::time::Instant;

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
    pub total_memory_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct AnswerRun {
    /// An HTTP answer format, or `postgres`.
    pub format: String,
    pub answer_bytes_each: u64,
    /// Answers that ended in an error (a memory limit, a broken body) instead of whole.
    pub answers_failed: usize,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    /// Peak RSS over `query.total_memory_bytes`.
    pub peak_rss_over_total_memory: f64,
    /// Peak RSS less the idle service's, over `query.total_memory_bytes`: what the answers
    /// cost beyond the constant the service holds at rest.
    pub answer_rss_over_total_memory: f64,
}

#[derive(Debug, Serialize)]
pub struct AnswerBenchReport {
    pub concurrent: usize,
    pub rows: u64,
    pub memory_limit_bytes: u64,
    pub total_memory_bytes: u64,
    /// The service at rest, before any query (the constant the limit adds to).
    pub idle_rss_bytes: u64,
    pub runs: Vec<AnswerRun>,
}

impl std::fmt::Display for AnswerBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        writeln!(
            f,
            "{} queries at once, {} rows each; query.memory_limit_bytes {:.0} MiB, query.total_memory_bytes {:.0} MiB; idle RSS {:.0} MiB",
            self.concurrent,
            self.rows,
            mib(self.memory_limit_bytes),
            mib(self.total_memory_bytes),
            mib(self.idle_rss_bytes)
        )?;
        for run in &self.runs {
            writeln!(
                f,
                "  {:<8} {:>7.0} MiB per answer ({} failed) in {:>6.1} s: peak RSS {:>6.0} MiB = {:.2}x the total memory limit ({:.2}x above idle)",
                run.format,
                mib(run.answer_bytes_each),
                run.answers_failed,
                run.seconds,
                mib(run.peak_rss_bytes),
                run.peak_rss_over_total_memory,
                run.answer_rss_over_total_memory
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
    let mut end = Vec::new();
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
        end.extend_from_slice(&buf[..n]);
        end.drain(..end.len().saturating_sub(512));
        total += n as u64;
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        bail!("the query failed: {}", String::from_utf8_lossy(&head));
    }
    // A failure after the status: a body broken off (no last chunk) or ending with an error.
    let tail = String::from_utf8_lossy(&end);
    if !tail.ends_with("0\r\n\r\n") || tail.contains("{\"error\":") {
        bail!(
            "the answer ended in an error: …{}",
            tail.chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect::<String>()
        );
    }
    Ok(total)
}

/// Runs one query over the PostgreSQL protocol, reading the rows as they come; the bytes
/// of their values.
fn run_pg_query(port: u16, sql: &str) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        use futures::StreamExt;
        let config = format!("host=127.0.0.1 port={port} user=bench password={KEY} dbname=mcpsiem");
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let stream = client.simple_query_raw(sql).await?;
        futures::pin_mut!(stream);
        let mut total = 0u64;
        while let Some(message) = stream.next().await {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message? {
                total += (0..row.len()).map(|i| row.get(i).map_or(0, str::len) as u64).sum::<u64>();
            }
        }
        Ok(total)
    })
}

pub fn answers_bench(options: &AnswerBenchOptions) -> Result<AnswerBenchReport> {
    let dir = tempfile::tempdir()?;
    let sql = format!("SELECT value, repeat('x', {}) AS pad FROM generate_series(1, {})", options.width, options.rows);
    let mut runs = Vec::new();
    let mut idle = 0;
    for format in ["json", "ndjson", "csv", "arrow", "postgres"] {
        let port = mcpsiem_runtime::broker::free_port()?;
        let pg_port = mcpsiem_runtime::broker::free_port()?;
        let config = dir.path().join("mcpsiem.toml");
        std::fs::write(
            &config,
            format!(
                "[lake]\nlocation = \"{}\"\n[query]\nlisten = \"127.0.0.1:{port}\"\npg_listen = \"127.0.0.1:{pg_port}\"\n\
                 memory_limit_bytes = {}\ntotal_memory_bytes = {}\nmax_rows = {}\nmax_concurrent = {}\nmax_concurrent_per_key = {}\ntimeout_seconds = 600\n\
                 [[query.api_keys]]\nname = \"bench\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
                dir.path().join("lake").display(),
                options.memory_limit_bytes,
                options.total_memory_bytes,
                options.rows,
                options.concurrent,
                options.concurrent,
                mcpsiem_runtime::auth::hash_key(KEY)
            ),
        )?;
        let mut serve = crate::start_serve(&config, &[port, pg_port])?;
        let idle_now = memory_of(serve.id(), "VmRSS:").unwrap_or(0);
        idle = idle.max(idle_now);
        eprintln!("{format}: {} queries of {} rows at once…", options.concurrent, options.rows);
        let started = Instant::now();
        let threads: Vec<_> = (0..options.concurrent)
            .map(|_| {
                let sql = sql.clone();
                std::thread::spawn(move || match format {
                    "postgres" => run_pg_query(pg_port, &sql),
                    _ => run_query(port, &sql, format),
                })
            })
            .collect();
        let mut sizes = Vec::new();
        let mut failed = 0;
        for thread in threads {
            match thread.join().map_err(|_| anyhow::anyhow!("a query thread panicked"))? {
                Ok(size) => sizes.push(size),
                Err(e) => {
                    eprintln!("{format}: an answer failed: {e:#}");
                    failed += 1;
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let peak = memory_of(serve.id(), "VmHWM:").context("no VmHWM (not Linux?)")?;
        let _ = serve.kill();
        let _ = serve.wait();
        runs.push(AnswerRun {
            format: format.into(),
            answer_bytes_each: sizes.iter().sum::<u64>() / sizes.len().max(1) as u64,
            answers_failed: failed,
            seconds,
            peak_rss_bytes: peak,
            peak_rss_over_total_memory: peak as f64 / options.total_memory_bytes.max(1) as f64,
            answer_rss_over_total_memory: peak.saturating_sub(idle_now) as f64
                / options.total_memory_bytes.max(1) as f64,
        });
    }
    Ok(AnswerBenchReport {
        concurrent: options.concurrent,
        rows: options.rows,
        memory_limit_bytes: options.memory_limit_bytes,
        total_memory_bytes: options.total_memory_bytes,
        idle_rss_bytes: idle,
        runs,
    })
}
