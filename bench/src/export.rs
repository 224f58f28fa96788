//! `mcpsiem bench export`: signed bundles of a generated lake built by the `mcpsiem export`
//! command in a child process, to measure its peak memory (Linux `VmHWM`) against the size
//! of the data it exports. One day of the lake and then all of it: if memory is bounded,
//! the peak barely moves while the rows grow tenfold.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::query::{QueryBenchOptions, prepare_lake};

pub struct ExportBenchOptions {
    pub events: u64,
    pub days: u32,
    pub dir: PathBuf,
    /// Formats of the whole-lake export (the one-day export is Parquet).
    pub formats: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ExportRun {
    pub name: String,
    pub format: String,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub bundle_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Peak RSS over the lake's event bytes (Parquet, zstd): below 1.0 the exporter holds
    /// less than the data it reads.
    pub rss_over_lake_bytes: f64,
    /// Peak RSS over the bundle's bytes.
    pub rss_over_bundle_bytes: f64,
}

#[derive(Debug, Serialize)]
pub struct ExportBenchReport {
    pub events: u64,
    pub lake_event_files: usize,
    pub lake_event_bytes: u64,
    pub runs: Vec<ExportRun>,
}

impl std::fmt::Display for ExportBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        writeln!(
            f,
            "lake: {} events in {} files, {:.1} MiB of Parquet",
            self.events,
            self.lake_event_files,
            mib(self.lake_event_bytes)
        )?;
        writeln!(
            f,
            "{:<22} {:>9} {:>9} {:>10} {:>11} {:>10} {:>9}",
            "export", "rows", "seconds", "rows/s", "bundle MiB", "peak RSS", "RSS/lake"
        )?;
        for run in &self.runs {
            writeln!(
                f,
                "{:<22} {:>9} {:>9.1} {:>10.0} {:>11.1} {:>6.0} MiB {:>9.3}",
                run.name,
                run.rows,
                run.seconds,
                run.rows_per_second,
                mib(run.bundle_bytes),
                mib(run.peak_rss_bytes),
                run.rss_over_lake_bytes
            )?;
        }
        Ok(())
    }
}

pub fn export_bench(options: &ExportBenchOptions) -> Result<ExportBenchReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let query_options = QueryBenchOptions {
        events: options.events,
        days: options.days,
        runs: 1,
        dir: options.dir.clone(),
        only: vec![],
    };
    let (_lake, manifest) = prepare_lake(&query_options, &runtime)?;
    drop(runtime);
    let keys = options.dir.join("keys");
    if !keys.join("bench.key").exists() {
        mcpsiem_query::export::ExportKey::generate().write_pair(&keys, "bench")?;
    }
    let config = options.dir.join("bench-export.toml");
    std::fs::write(
        &config,
        format!(
            "[lake]\nlocation = \"{}\"\n\n[evidence]\nsigning_key = \"{}\"\n\n[log]\nlevel = \"warn\"\n",
            options.dir.join("lake").display(),
            keys.join("bench.key").display()
        ),
    )?;
    let out_dir = options.dir.join("bundles");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir)?;
    let exe = crate::mcpsiem_exe().context("finding the mcpsiem executable")?;
    let mut runs = Vec::new();
    let mut plans: Vec<(String, String, Vec<String>)> = vec![(
        "one day (parquet)".into(),
        "parquet".into(),
        vec!["--start".into(), manifest.window_start.clone(), "--end".into(), manifest.window_end.clone()],
    )];
    for format in &options.formats {
        plans.push((format!("all rows ({format})"), format.clone(), vec![]));
    }
    for (i, (name, format, extra)) in plans.into_iter().enumerate() {
        let out = out_dir.join(format!("bundle-{i}.zip"));
        eprintln!("exporting {name}");
        let started = Instant::now();
        let output = Command::new(&exe)
            .arg("--config")
            .arg(&config)
            .args(["export", "--sql", "SELECT * FROM events", "--format", &format, "--json", "--out"])
            .arg(&out)
            .args(&extra)
            .output()
            .context("running mcpsiem export")?;
        let seconds = started.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!("the export `{name}` failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("reading the export's summary: {}", String::from_utf8_lossy(&output.stdout)))?;
        let rows = summary["rows"].as_u64().unwrap_or(0);
        let bundle_bytes = summary["bytes"].as_u64().unwrap_or(0);
        let peak = summary["peak_rss_bytes"].as_u64().context("the export reported no peak RSS (not Linux?)")?;
        runs.push(ExportRun {
            name,
            format,
            rows,
            seconds,
            rows_per_second: rows as f64 / seconds.max(1e-9),
            bundle_bytes,
            peak_rss_bytes: peak,
            rss_over_lake_bytes: peak as f64 / manifest.event_bytes.max(1) as f64,
            rss_over_bundle_bytes: peak as f64 / bundle_bytes.max(1) as f64,
        });
        let _ = std::fs::remove_file(&out);
    }
    Ok(ExportBenchReport {
        events: manifest.events,
        lake_event_files: manifest.event_files,
        lake_event_bytes: manifest.event_bytes,
        runs,
    })
}
