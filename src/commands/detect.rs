//! `mcpsiem rules check` and `mcpsiem detect`: wiring the detector library to the
//! configuration, the runtime, metrics and signals.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mcpsiem_detect::replay::ReplaySummary;
use mcpsiem_detect::rules::{self, LoadReport, ProblemKind};
use mcpsiem_detect::{Detector, Engine, StreamControl, StreamSummary};
use mcpsiem_event::Timestamp;

use crate::config::Config;

/// Loads the configured rule paths (or `paths` when given).
pub fn load_rules(config: &Config, paths: &[PathBuf]) -> LoadReport {
    let paths = if paths.is_empty() { config.detect.rules.clone() } else { paths.to_vec() };
    if let Some(warning) = config.detect.inventory_warning() {
        tracing::warn!("{warning}");
    }
    rules::load(&paths, &config.detect.lists)
}

/// A one-line account of what loaded.
pub fn describe(report: &LoadReport) -> String {
    let count = |kind| report.problems.iter().filter(|p| p.kind == kind).count();
    format!(
        "{} files: {} detection, {} correlation, {} first-seen and {} filter rules loaded; {} errors, {} unsupported, {} warnings",
        report.files,
        report.rules.detections.len(),
        report.rules.correlations.len(),
        report.rules.first_seen.len(),
        report.rules.filters.len(),
        count(ProblemKind::Invalid),
        count(ProblemKind::Unsupported),
        count(ProblemKind::Warning),
    )
}

/// `rules check`: prints each problem as `file:line: kind: reason`; fails when a rule was
/// skipped.
pub fn check(config: &Config, paths: &[PathBuf], json: bool) -> Result<()> {
    let report = load_rules(config, paths);
    if json {
        println!("{}", serde_json::to_string_pretty(&report.problems)?);
    } else {
        for problem in &report.problems {
            println!("{problem}");
        }
        println!("{}", describe(&report));
    }
    if report.skipped() > 0 {
        bail!("{} rules were skipped; see above", report.skipped());
    }
    Ok(())
}

/// `rules test`: every rule against its test events; one line per rule, failures in detail.
pub fn test(config: &Config, paths: &[PathBuf], json: bool) -> Result<()> {
    let paths = if paths.is_empty() { config.detect.rules.clone() } else { paths.to_vec() };
    let report = mcpsiem_detect::rule_tests::run(&paths, &config.detect.lists);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for problem in &report.problems {
            println!("{problem}");
        }
        for rule in &report.rules {
            let cases = rule.cases.len();
            if rule.passed() {
                println!("ok    {} ({cases} cases)", rule.title);
                continue;
            }
            println!("FAIL  {} ({}:{})", rule.title, rule.file.display(), rule.rule);
            if let Some(missing) = &rule.missing {
                println!("      {missing}");
            }
            for case in rule.cases.iter().filter(|c| !c.passed) {
                println!(
                    "      case `{}` ({}): {}",
                    case.case,
                    case.file.display(),
                    case.detail.as_deref().unwrap_or("failed")
                );
            }
        }
        for case in &report.quiet_cases {
            match &case.detail {
                None => println!("ok    no alert on `{}` ({})", case.case, case.file.display()),
                Some(detail) => println!("FAIL  no alert on `{}` ({}): {detail}", case.case, case.file.display()),
            }
        }
        let failed = report.rules.iter().filter(|r| !r.passed()).count();
        let cases: usize = report.rules.iter().map(|r| r.cases.len()).sum();
        let quiet_failed = report.quiet_cases.iter().filter(|c| !c.passed).count();
        println!(
            "{} rules, {cases} cases: {} passed, {failed} failed; {} no-alert cases, {quiet_failed} failed",
            report.rules.len(),
            report.rules.len() - failed,
            report.quiet_cases.len()
        );
    }
    if !report.passed() {
        bail!("rule tests failed; see above");
    }
    Ok(())
}

/// Loads the rules, failing when none loaded.
fn engine(config: &Config) -> Result<Engine> {
    let report = load_rules(config, &[]);
    for problem in &report.problems {
        tracing::warn!(%problem, "rule problem");
    }
    tracing::info!("{}", describe(&report));
    if report.rules.is_empty() {
        bail!("no rules loaded from {:?}: set detect.rules to your rule directories", config.detect.rules);
    }
    Ok(Engine::new(report.rules, config.detect.engine()))
}

/// The engine of a live detector: the rules of `detect.scope` only.
fn scoped_engine(config: &Config) -> Result<Engine> {
    let report = load_rules(config, &[]);
    for problem in &report.problems {
        tracing::warn!(%problem, "rule problem");
    }
    tracing::info!("{}", describe(&report));
    let (rules, left_out) = report.rules.scoped(config.detect.scope);
    if !left_out.is_empty() {
        tracing::info!(scope = ?config.detect.scope, left_out = ?left_out, "rules another detector instance runs");
    }
    if rules.is_empty() {
        bail!(
            "no rules of scope {:?} loaded from {:?}: set detect.rules to your rule directories",
            config.detect.scope,
            config.detect.rules
        );
    }
    Ok(Engine::new(rules, config.detect.engine()))
}

/// `detect --replay`: the rules over the lake between `from` and `to`, alerts as NDJSON on
/// stdout.
pub fn run_replay(config: &Config, from: Timestamp, to: Timestamp) -> Result<ReplaySummary> {
    anyhow::ensure!(from < to, "--from must be before --to");
    let mut engine = engine(config)?;
    let lake = config.lake.open()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bar = mcpsiem_runtime::progress::counter(0, "hours");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write_error = None;
    let summary = runtime.block_on(mcpsiem_detect::replay::replay(
        &lake,
        &mut engine,
        from,
        to,
        |alert| {
            if write_error.is_none()
                && let Err(e) = writeln!(out, "{}", alert.to_json())
            {
                write_error = Some(e);
            }
        },
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    ))?;
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e).context("writing alerts to stdout");
    }
    out.flush()?;
    Ok(summary)
}

/// Runs the detector on the events topic until a signal (or until idle).
pub fn run_detect(config: &Config, stop_when_idle: Option<Duration>) -> Result<StreamSummary> {
    anyhow::ensure!(
        !config.kafka.brokers.is_empty(),
        "kafka.brokers is empty: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    {
        let _guard = runtime.enter();
        mcpsiem_runtime::ops::start_metrics(&config.detect.metrics_addr, "detect")?;
    }
    // After the metrics recorder: the engine registers its per-rule counters when built.
    let engine = scoped_engine(config)?;
    for topic in [&config.kafka.events_topic, &config.kafka.alerts_topic, &config.kafka.alert_changes_topic] {
        runtime
            .block_on(mcpsiem_runtime::producer::ensure_topic(&config.kafka, topic, config.kafka.partitions))
            .with_context(|| format!("creating topic {topic} on {}", config.kafka.brokers))?;
    }
    let stop = mcpsiem_runtime::stop::stop_on_signal(runtime.handle());
    let reload = mcpsiem_runtime::stop::flag_on_hangup(runtime.handle());
    let detector = Detector::new(&config.kafka, &config.detect, engine, config.decoder.max_record_bytes)?;
    tracing::info!(topic = %config.kafka.events_topic, alerts = %config.kafka.alerts_topic, group = %config.detect.group_id, "detecting");
    mcpsiem_runtime::ops::set_ready("detect", true);
    let summary = detector.run(&StreamControl { stop, stop_when_idle, reload });
    mcpsiem_runtime::ops::set_ready("detect", false);
    let summary = summary?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(summary)
}
