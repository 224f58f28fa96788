//! The alert queue at scale: the first page of `GET /api/v1/alerts?state=new` (what an
//! analyst's console asks for every few seconds) on a lake of 1,000,000 alerts and 100,000
//! state changes, through a running `mcpsiem serve`, against the baseline of the same page
//! without the workflow — `SELECT * FROM alerts ORDER BY alert_time DESC LIMIT 51` through
//! `POST /api/v1/query` — in the same run. The lake is generated once and kept in `dir`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use mcpsiem_event::{
    Alert, AlertChange, AlertSource, ChangeAction, Level, Timestamp, Verdict, alert_batch, alert_change_batch,
};
use mcpsiem_ingest::parquet_file::{ParquetSettings, split_by_hour};
use mcpsiem_lake::{Lake, Table};
use serde::Serialize;

const KEY: &str = "bench-triage-key";
const HOUR_MICROS: i64 = 3_600_000_000;

pub struct TriageBenchOptions {
    pub alerts: u64,
    pub changes: u64,
    pub days: u32,
    /// Timed requests per query (after three untimed ones).
    pub runs: usize,
    pub dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Timing {
    pub name: String,
    pub path: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// p50 over the baseline's p50.
    pub p50_over_baseline: f64,
    pub answer_bytes: usize,
}

#[derive(Debug, Serialize)]
pub struct TriageBenchReport {
    pub alerts: u64,
    pub changes: u64,
    pub alert_files: usize,
    pub runs: usize,
    pub baseline_p50_ms: f64,
    pub baseline_p99_ms: f64,
    pub timings: Vec<Timing>,
}

impl std::fmt::Display for TriageBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} alerts ({} files), {} changes, {} runs each; baseline (SELECT * FROM alerts ORDER BY alert_time DESC LIMIT 51): p50 {:.1} ms, p99 {:.1} ms",
            self.alerts, self.alert_files, self.changes, self.runs, self.baseline_p50_ms, self.baseline_p99_ms
        )?;
        for t in &self.timings {
            writeln!(
                f,
                "  {:<34} p50 {:>8.1} ms  p99 {:>8.1} ms  = {:>5.2}x the baseline ({} bytes)",
                t.name, t.p50_ms, t.p99_ms, t.p50_over_baseline, t.answer_bytes
            )?;
        }
        Ok(())
    }
}

/// A tiny deterministic generator: the bench needs spread, not quality.
struct Spread(u64);

impl Spread {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const LEVELS: [Level; 5] = [Level::Informational, Level::Low, Level::Medium, Level::High, Level::Critical];

/// Writes the lake once: `alerts` alerts evenly over `days` days up to an hour ago, and
/// `changes` changes of the older alerts (acknowledged, assigned, closed). Returns the
/// number of alert files.
fn generate(options: &TriageBenchOptions, lake: &Lake, runtime: &tokio::runtime::Runtime) -> Result<usize> {
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 64 * 1024 };
    let end = Timestamp::now().as_micros() / HOUR_MICROS * HOUR_MICROS - HOUR_MICROS;
    let span = i64::from(options.days) * 24 * HOUR_MICROS;
    let step = (span / options.alerts.max(1) as i64).max(1);
    let start = end - span;
    let mut spread = Spread(0x9e37_79b9_7f4a_7c15);
    let progress = mcpsiem_runtime::progress::counter(options.alerts, "alerts");
    let mut files = 0;
    let mut changes: Vec<AlertChange> = Vec::new();
    // One day at a time: each hour gets one file, and memory stays at a day's alerts.
    let per_day = (options.alerts / u64::from(options.days.max(1))).max(1);
    let mut made = 0u64;
    let mut day = 0u64;
    while made < options.alerts {
        let count = per_day.min(options.alerts - made);
        let mut alerts = Vec::with_capacity(count as usize);
        for i in made..made + count {
            let time = Timestamp::from_micros(start + i as i64 * step);
            let rule = spread.below(60);
            let alert = Alert {
                id: ulid::Ulid::from_parts((time.as_micros() / 1000) as u64, u128::from(i)).to_string(),
                rule_id: format!("bench-rule-{rule:02}"),
                rule_title: format!("Bench rule {rule:02}"),
                level: LEVELS[spread.below(5) as usize],
                tags: vec!["attack.t1528".into()],
                source: AlertSource::Detection,
                first_time: time,
                last_time: time,
                group: BTreeMap::from([
                    ("enduser.id".to_string(), format!("user{}@corp.example.com", spread.below(5000))),
                    ("auth.token.identity".to_string(), format!("fp:{:016x}", spread.below(20_000))),
                ]),
                count: 1 + spread.below(20),
                event_ids: (0..3).map(|e| format!("{i:08}-{e}")).collect(),
                sql: format!("SELECT * FROM events WHERE event_id IN ('{i:08}-0')"),
            };
            // The older alerts were worked on; the newest ones wait in the queue.
            if (changes.len() as u64) < options.changes && spread.below(options.alerts) < options.changes * 11 / 10 {
                let at = time.plus_micros(600_000_000);
                let action = match spread.below(5) {
                    0 | 1 => ChangeAction::Acknowledge,
                    2 => ChangeAction::Assign { assignee: Some(format!("analyst{}", spread.below(20))) },
                    _ => ChangeAction::Close {
                        verdict: [Verdict::TruePositive, Verdict::FalsePositive, Verdict::BenignPositive]
                            [spread.below(3) as usize],
                        comment: Some("bench".into()),
                    },
                };
                changes.push(AlertChange {
                    change_id: ulid::Ulid::from_parts((at.as_micros() / 1000) as u64, u128::from(i)).to_string(),
                    alert_id: alert.id.clone(),
                    changed_at: at,
                    actor: "bench".into(),
                    interface: "api".into(),
                    action,
                });
            }
            alerts.push(alert);
        }
        for (hour, part) in split_by_hour(Table::Alerts, &alert_batch(&alerts))? {
            let bytes = settings.encode(Table::Alerts, std::slice::from_ref(&part))?;
            let path = object_store::path::Path::from(format!("{}/bench-{day:03}.parquet", hour.path(Table::Alerts)));
            runtime.block_on(lake.put(&path, bytes))?;
            files += 1;
        }
        made += count;
        day += 1;
        progress.inc(count);
    }
    progress.finish_and_clear();
    for (hour, part) in split_by_hour(Table::AlertChanges, &alert_change_batch(&changes))? {
        let bytes = settings.encode(Table::AlertChanges, std::slice::from_ref(&part))?;
        let path = object_store::path::Path::from(format!("{}/bench.parquet", hour.path(Table::AlertChanges)));
        runtime.block_on(lake.put(&path, bytes))?;
    }
    eprintln!("{} alerts in {files} files, {} changes", options.alerts, changes.len());
    Ok(files)
}

/// One HTTP request to the service; the status and the body's length.
fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, usize)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(12)]).to_string();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).context("no HTTP status")?;
    if status != 200 {
        bail!("{method} {path}: {}", String::from_utf8_lossy(&answer));
    }
    Ok((status, answer.len()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Times `runs` requests after three untimed ones: (p50, p99, bytes) in milliseconds.
fn time(port: u16, method: &str, path: &str, body: Option<&str>, runs: usize) -> Result<(f64, f64, usize)> {
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = request(port, method, path, body)?.1;
    }
    let mut took = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        request(port, method, path, body)?;
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    Ok((percentile(&took, 0.5), percentile(&took, 0.99), bytes))
}

pub fn triage_bench(options: &TriageBenchOptions) -> Result<TriageBenchReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let lake_dir = options.dir.join(format!("lake-{}-{}-{}", options.alerts, options.changes, options.days));
    let marker = lake_dir.join("complete");
    std::fs::create_dir_all(&lake_dir)?;
    let lake = Lake::open(lake_dir.to_str().context("a UTF-8 path")?)?;
    let files = if marker.exists() {
        eprintln!("reusing the lake in {}", lake_dir.display());
        std::fs::read_to_string(&marker)?.trim().parse().unwrap_or(0)
    } else {
        let files = generate(options, &lake, &runtime)?;
        std::fs::write(&marker, files.to_string())?;
        files
    };

    let scratch = tempfile::tempdir()?;
    let port = mcpsiem_runtime::broker::free_port()?;
    let config = scratch.path().join("mcpsiem.toml");
    std::fs::write(
        &config,
        format!(
            "[lake]\nlocation = \"{}\"\n[query]\nlisten = \"127.0.0.1:{port}\"\npg_listen = \"\"\n\
             [[query.api_keys]]\nname = \"bench\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
            lake_dir.display(),
            mcpsiem_runtime::auth::hash_key(KEY)
        ),
    )?;
    let mut serve = crate::start_serve(&config, &[port])?;
    let measured = (|| -> Result<TriageBenchReport> {
        let baseline_body = serde_json::json!({
            "sql": "SELECT * FROM alerts ORDER BY alert_time DESC, alert_id DESC LIMIT 51"
        })
        .to_string();
        eprintln!("timing the baseline…");
        let (base_p50, base_p99, _) = time(port, "POST", "/api/v1/query", Some(&baseline_body), options.runs)?;
        let queries = [
            ("queue: state=new, first page", "/api/v1/alerts?state=new"),
            ("queue: no filter, first page", "/api/v1/alerts"),
            ("queue: state=closed&level=high", "/api/v1/alerts?state=closed&level=high"),
            ("queue: entity (one user)", "/api/v1/alerts?entity=user42%40corp.example.com"),
        ];
        let mut timings = Vec::new();
        for (name, path) in queries {
            eprintln!("timing {name}…");
            let (p50, p99, bytes) = time(port, "GET", path, None, options.runs)?;
            timings.push(Timing {
                name: name.into(),
                path: path.into(),
                p50_ms: p50,
                p99_ms: p99,
                p50_over_baseline: p50 / base_p50,
                answer_bytes: bytes,
            });
        }
        Ok(TriageBenchReport {
            alerts: options.alerts,
            changes: options.changes,
            alert_files: files,
            runs: options.runs,
            baseline_p50_ms: base_p50,
            baseline_p99_ms: base_p99,
            timings,
        })
    })();
    let _ = serve.kill();
    let _ = serve.wait();
    measured
}
