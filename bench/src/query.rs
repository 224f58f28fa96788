//! `mcpsiem bench query`: forensic queries on a generated lake, each timed through the query
//! service's engine and through DuckDB on the same Parquet files, in the same run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use mcpsiem_event::{Alert, AlertSource, EventColumns, Level, OwnedEvent, Timestamp, alert_batch};
use mcpsiem_ingest::parquet_file::{ParquetSettings, split_by_hour};
use mcpsiem_lake::{Lake, Snapshot, Table};
use mcpsiem_query::{Caller, QueryConfig, QueryEngine, QueryRequest, Role};
use serde::{Deserialize, Serialize};

use mcpsiem_gen::{GenOptions, Generator, Scenario, scenario_of};

/// The DuckDB side, run by the checkout's Python with the `duckdb` package (scripts/setup).
const DUCKDB_SCRIPT: &str = include_str!("query_duckdb.py");

/// Events per Parquet encoding pass; each pass writes one file per hour it holds.
const CHUNK_EVENTS: usize = 250_000;

pub struct QueryBenchOptions {
    pub events: u64,
    pub days: u32,
    pub runs: u32,
    /// Where the generated lake lives; reused when it was generated with the same options.
    pub dir: PathBuf,
    /// Only the queries with these names (all when empty).
    pub only: Vec<String>,
}

/// What the generator saw, to aim the needle queries at real values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct LakeManifest {
    pub(crate) events: u64,
    pub(crate) days: u32,
    pub(crate) seed: u64,
    pub(crate) token_fingerprint: String,
    pub(crate) session_id: String,
    pub(crate) user: String,
    pub(crate) window_start: String,
    pub(crate) window_end: String,
    pub(crate) alerts: usize,
    pub(crate) event_files: usize,
    pub(crate) event_bytes: u64,
}

/// One query's figures.
#[derive(Debug, Serialize)]
pub struct QueryFigure {
    pub name: String,
    pub mcpsiem_seconds: f64,
    pub duckdb_seconds: f64,
    /// DuckDB's time over mcpsiem's: above 1.0 mcpsiem is faster.
    pub ratio: f64,
    pub rows: u64,
    pub rows_agree: bool,
}

#[derive(Debug, Serialize)]
pub struct QueryBenchReport {
    pub events: u64,
    pub days: u32,
    pub event_files: usize,
    pub lake_bytes: u64,
    pub runs: u32,
    pub queries: Vec<QueryFigure>,
    /// Median of mcpsiem time / DuckDB time (the ratio: at most 1.0 is the target).
    pub median_time_ratio: f64,
}

impl fmt::Display for QueryBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lake: {} events over {} days, {} event files, {:.1} MiB; best of {} runs each",
            self.events,
            self.days,
            self.event_files,
            self.lake_bytes as f64 / (1024.0 * 1024.0),
            self.runs
        )?;
        writeln!(f, "{:<28} {:>12} {:>12} {:>14} {:>10}", "query", "mcpsiem s", "duckdb s", "mcpsiem/duckdb", "rows")?;
        for q in &self.queries {
            writeln!(
                f,
                "{:<28} {:>12.3} {:>12.3} {:>14.2} {:>10}{}",
                q.name,
                q.mcpsiem_seconds,
                q.duckdb_seconds,
                q.mcpsiem_seconds / q.duckdb_seconds,
                q.rows,
                if q.rows_agree { "" } else { "  ROWS DIFFER" }
            )?;
        }
        write!(f, "median mcpsiem/duckdb time ratio: {:.2} (target <= 1.0)", self.median_time_ratio)
    }
}

struct ForensicQuery {
    name: &'static str,
    sql: String,
}

fn queries(m: &LakeManifest) -> Vec<ForensicQuery> {
    let q = |name, sql: String| ForensicQuery { name, sql };
    vec![
        q(
            "needle_token",
            format!(
                "SELECT event_time, client_address, mcp_method_name, gen_ai_tool_name FROM events \
                 WHERE auth_token_fingerprint = '{}' ORDER BY event_time",
                m.token_fingerprint
            ),
        ),
        q(
            "session_reconstruction",
            format!(
                "SELECT event_time, event_kind, mcp_method_name, gen_ai_tool_name, gen_ai_tool_call_arguments, \
                 gen_ai_tool_call_result FROM events WHERE mcp_session_id = '{}' ORDER BY event_time",
                m.session_id
            ),
        ),
        q(
            "user_activity_window",
            format!(
                "SELECT event_time, mcp_server_name, mcp_method_name, gen_ai_tool_name, client_address FROM events \
                 WHERE enduser_id = '{}' AND event_time >= '{}' AND event_time < '{}' ORDER BY event_time",
                m.user, m.window_start, m.window_end
            ),
        ),
        q(
            "top_tools_per_user",
            "SELECT enduser_id, gen_ai_tool_name, count(*) AS calls FROM events \
             WHERE mcp_method_name = 'tools/call' GROUP BY enduser_id, gen_ai_tool_name \
             ORDER BY calls DESC, enduser_id, gen_ai_tool_name LIMIT 100"
                .into(),
        ),
        q(
            "hourly_counts",
            "SELECT date_trunc('hour', event_time) AS hour, count(*) AS events FROM events GROUP BY 1 ORDER BY 1"
                .into(),
        ),
        q(
            "distinct_addresses_per_token",
            "SELECT auth_token_fingerprint, count(DISTINCT client_address) AS addresses FROM events \
             WHERE auth_token_fingerprint IS NOT NULL GROUP BY auth_token_fingerprint \
             ORDER BY addresses DESC, auth_token_fingerprint LIMIT 50"
                .into(),
        ),
        q(
            "alerts_joined_to_events",
            "SELECT a.rule_title, e.event_time, e.enduser_id, e.mcp_method_name, e.gen_ai_tool_name \
             FROM (SELECT rule_title, unnest(event_ids) AS event_id FROM alerts) a \
             JOIN events e ON e.event_id = a.event_id"
                .into(),
        ),
        q(
            "full_text_like_results",
            "SELECT event_time, enduser_id, gen_ai_tool_name FROM events \
             WHERE gen_ai_tool_call_result LIKE '%SECRET_ACCESS_KEY%'"
                .into(),
        ),
        q(
            "server_inventory",
            "SELECT mcp_server_name, min(event_time) AS first_seen, max(event_time) AS last_seen, \
             count(DISTINCT enduser_id) AS users FROM events WHERE mcp_server_name IS NOT NULL \
             GROUP BY mcp_server_name"
                .into(),
        ),
    ]
}

/// Generates the lake (or reuses one generated with the same options).
pub(crate) fn prepare_lake(
    options: &QueryBenchOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<(Lake, LakeManifest)> {
    let manifest_path = options.dir.join("bench-manifest.json");
    if let Ok(text) = std::fs::read_to_string(&manifest_path)
        && let Ok(manifest) = serde_json::from_str::<LakeManifest>(&text)
        && manifest.events == options.events
        && manifest.days == options.days
    {
        eprintln!("reusing the lake in {} ({} events)", options.dir.display(), manifest.events);
        let lake = Lake::open(options.dir.join("lake").to_str().context("a UTF-8 path")?)?;
        return Ok((lake, manifest));
    }
    if options.dir.exists() {
        std::fs::remove_dir_all(&options.dir).with_context(|| format!("clearing {}", options.dir.display()))?;
    }
    std::fs::create_dir_all(&options.dir)?;
    let lake = Lake::open(options.dir.join("lake").to_str().context("a UTF-8 path")?)?;
    let seed = 20_261_125;
    let gen_options = GenOptions {
        events: options.events,
        seed,
        days: options.days,
        users: 2000,
        attacks: Scenario::ALL.to_vec(),
        attack_repeats: 20,
        ..GenOptions::default()
    };
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 64 * 1024 };
    eprintln!("generating a lake of {} events over {} days in {}", options.events, options.days, options.dir.display());
    let progress = mcpsiem_runtime::progress::counter(options.events, "events");
    let mut columns = EventColumns::with_capacity(CHUNK_EVENTS);
    let mut chunk = 0usize;
    let mut attack_groups: BTreeMap<(String, String), (Vec<String>, Timestamp, Timestamp)> = BTreeMap::new();
    let mut picks: Option<(String, String, String, Timestamp)> = None;
    let write = |columns: &mut EventColumns, chunk: &mut usize| -> Result<()> {
        let batch = std::mem::replace(columns, EventColumns::with_capacity(CHUNK_EVENTS)).finish();
        for (hour, part) in split_by_hour(Table::Events, &batch)? {
            let bytes = settings.encode(Table::Events, std::slice::from_ref(&part))?;
            let path =
                object_store::path::Path::from(format!("{}/bench-{:05}.parquet", hour.path(Table::Events), chunk));
            runtime.block_on(lake.put(&path, bytes))?;
        }
        *chunk += 1;
        Ok(())
    };
    for (i, event) in Generator::new(gen_options).enumerate() {
        note_event(&event, i as u64, options.events, &mut attack_groups, &mut picks);
        columns.append(&event);
        if columns.len() >= CHUNK_EVENTS {
            write(&mut columns, &mut chunk)?;
        }
        progress.inc(1);
    }
    if !columns.is_empty() {
        write(&mut columns, &mut chunk)?;
    }
    progress.finish_and_clear();
    let alerts: Vec<Alert> = attack_groups
        .into_iter()
        .enumerate()
        .map(|(n, ((scenario, instance), (ids, first, last)))| Alert {
            id: format!("bench-{n:05}"),
            rule_id: format!("bench-{scenario}"),
            rule_title: format!("{scenario} (instance {instance})"),
            level: Level::High,
            tags: vec![],
            source: AlertSource::Detection,
            first_time: first,
            last_time: last,
            group: BTreeMap::new(),
            count: ids.len() as u64,
            event_ids: ids,
            sql: String::new(),
        })
        .collect();
    for (hour, part) in split_by_hour(Table::Alerts, &alert_batch(&alerts))? {
        let bytes = settings.encode(Table::Alerts, std::slice::from_ref(&part))?;
        let path = object_store::path::Path::from(format!("{}/bench.parquet", hour.path(Table::Alerts)));
        runtime.block_on(lake.put(&path, bytes))?;
    }
    let (token_fingerprint, session_id, user, at) = picks.context("the generator made no event with a token")?;
    let window_start = Timestamp::from_micros(at.as_micros() - 12 * 3600 * 1_000_000);
    let window_end = Timestamp::from_micros(at.as_micros() + 12 * 3600 * 1_000_000);
    let snapshot = runtime.block_on(Snapshot::load(&lake, Table::Events))?;
    let manifest = LakeManifest {
        events: options.events,
        days: options.days,
        seed,
        token_fingerprint,
        session_id,
        user,
        window_start: window_start.to_string(),
        window_end: window_end.to_string(),
        alerts: alerts.len(),
        event_files: snapshot.files.len(),
        event_bytes: snapshot.total_bytes(),
    };
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest)?)?;
    Ok((lake, manifest))
}

/// Groups attack events into one alert per injected instance, and picks the needles from an
/// event halfway through (a token, its session and its user).
fn note_event(
    event: &OwnedEvent,
    index: u64,
    total: u64,
    groups: &mut BTreeMap<(String, String), (Vec<String>, Timestamp, Timestamp)>,
    picks: &mut Option<(String, String, String, Timestamp)>,
) {
    let scenario = scenario_of(event);
    if scenario != mcpsiem_gen::session::BENIGN {
        let instance = event
            .attributes
            .get(mcpsiem_gen::session::SCENARIO_INSTANCE_KEY)
            .map(|raw| raw.get().to_string())
            .unwrap_or_default();
        let entry =
            groups.entry((scenario.to_string(), instance)).or_insert_with(|| (Vec::new(), event.time, event.time));
        entry.0.push(event.id.to_string());
        entry.1 = entry.1.min(event.time);
        entry.2 = entry.2.max(event.time);
    }
    if picks.is_none()
        && index >= total / 2
        && let (Some(token), Some(session), Some(user)) = (&event.token_fingerprint, &event.session_id, &event.user_id)
    {
        *picks =
            Some((token.as_str().to_string(), session.as_str().to_string(), user.as_str().to_string(), event.time));
    }
}

#[derive(Deserialize)]
struct DuckDbFigure {
    name: String,
    seconds: f64,
    rows: u64,
}

fn run_duckdb(
    lake_root: &Path,
    lake: &Lake,
    runtime: &tokio::runtime::Runtime,
    queries: &[ForensicQuery],
    runs: u32,
) -> Result<Vec<DuckDbFigure>> {
    let mut tables = BTreeMap::new();
    for table in [Table::Events, Table::Alerts] {
        let snapshot = runtime.block_on(Snapshot::load(lake, table))?;
        let files: Vec<String> =
            snapshot.files.iter().map(|f| lake_root.join(f.path.as_ref()).display().to_string()).collect();
        tables.insert(table.name(), files);
    }
    let spec = serde_json::json!({
        "tables": tables,
        "queries": queries.iter().map(|q| serde_json::json!({"name": q.name, "sql": q.sql})).collect::<Vec<_>>(),
        "runs": runs,
        "threads": 2,
    });
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(script.path(), DUCKDB_SCRIPT)?;
    // scripts/setup installs DuckDB into the workspace root's .tools/python.
    let python_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/python");
    let mut child = std::process::Command::new("python3")
        .arg(script.path())
        .env("PYTHONPATH", &python_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting python3 for DuckDB")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("python's stdin")?;
        stdin.write_all(spec.to_string().as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("the DuckDB run failed ({}); run scripts/setup to install duckdb into .tools/python", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading DuckDB's figures")
}

/// Best of `runs` through the query engine (session, planning, reading and the audit record,
/// as a query of the service pays them); the row count of the last run.
fn run_mcpsiem(
    engine: &QueryEngine,
    runtime: &tokio::runtime::Runtime,
    query: &ForensicQuery,
    runs: u32,
) -> Result<(Duration, u64)> {
    let caller = Caller { name: "bench".into(), role: Role::Admin };
    let mut best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        rows = runtime
            .block_on(async {
                let request = QueryRequest { sql: query.sql.clone(), ..QueryRequest::default() };
                let mut answer = engine.run(&caller, request).await?;
                let mut rows = 0u64;
                while let Some(batch) = answer.stream.next().await {
                    rows += batch?.num_rows() as u64;
                }
                Ok::<u64, mcpsiem_query::QueryError>(rows)
            })
            .with_context(|| format!("query {}", query.name))?;
        best = best.min(started.elapsed());
    }
    Ok((best, rows))
}

pub fn query_bench(options: &QueryBenchOptions) -> Result<QueryBenchReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (lake, manifest) = prepare_lake(options, &runtime)?;
    let mut queries = queries(&manifest);
    if !options.only.is_empty() {
        queries.retain(|q| options.only.iter().any(|name| name == q.name));
        if queries.is_empty() {
            bail!(
                "--only names no query; the queries are {}",
                self::queries(&manifest).iter().map(|q| q.name).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let config = QueryConfig {
        timeout_seconds: 3600,
        max_rows: usize::MAX,
        memory_limit_bytes: 4 << 30,
        ..QueryConfig::default()
    };
    let engine = QueryEngine::new(lake.clone(), config);
    let mut ours = Vec::new();
    for query in &queries {
        eprintln!("mcpsiem: {}", query.name);
        ours.push(run_mcpsiem(&engine, &runtime, query, options.runs)?);
    }
    runtime.block_on(engine.flush_audit());
    eprintln!("duckdb: {} queries", queries.len());
    let theirs = run_duckdb(&options.dir.join("lake"), &lake, &runtime, &queries, options.runs)?;
    let mut figures = Vec::new();
    for ((query, (time, rows)), duck) in queries.iter().zip(ours).zip(theirs) {
        debug_assert_eq!(query.name, duck.name);
        figures.push(QueryFigure {
            name: query.name.to_string(),
            mcpsiem_seconds: time.as_secs_f64(),
            duckdb_seconds: duck.seconds,
            ratio: duck.seconds / time.as_secs_f64(),
            rows,
            rows_agree: rows == duck.rows,
        });
    }
    let mut time_ratios: Vec<f64> = figures.iter().map(|f| f.mcpsiem_seconds / f.duckdb_seconds).collect();
    time_ratios.sort_by(f64::total_cmp);
    let median_time_ratio = if time_ratios.len() % 2 == 1 {
        time_ratios[time_ratios.len() / 2]
    } else {
        (time_ratios[time_ratios.len() / 2 - 1] + time_ratios[time_ratios.len() / 2]) / 2.0
    };
    Ok(QueryBenchReport {
        events: manifest.events,
        days: manifest.days,
        event_files: manifest.event_files,
        lake_bytes: manifest.event_bytes,
        runs: options.runs,
        queries: figures,
        median_time_ratio,
    })
}
