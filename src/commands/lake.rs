//! `mcpsiem lake verify`: the lake checked against its ledger, with a plain verdict; and
//! `mcpsiem lake files`: a table's consistent snapshot for outside engines.

use anyhow::{Context, Result};
use mcpsiem_lake::{Anchor, Table, TableVerification, verify_table};

use crate::config::Config;

/// Verifies `tables` (all when empty); prints a report and returns whether all passed.
pub fn verify(config: &Config, tables: &[String], anchors: &[String], json: bool) -> Result<bool> {
    let anchors: Vec<Anchor> =
        anchors.iter().map(|a| a.parse::<Anchor>().map_err(anyhow::Error::msg)).collect::<Result<_>>()?;
    let tables: Vec<Table> = if tables.is_empty() {
        Table::ALL.to_vec()
    } else {
        tables
            .iter()
            .map(|t| {
                Table::from_name(t).with_context(|| format!("unknown table `{t}`; use events, deadletters or alerts"))
            })
            .collect::<Result<_>>()?
    };
    let runtime = mcpsiem_runtime::lake_runtime::build(mcpsiem_runtime::lake_runtime::COMMAND_READ_THREADS)?;
    let lake = config.lake.open()?;
    let bar = mcpsiem_runtime::progress::bytes("hashing lake files");
    let mut reports: Vec<TableVerification> = Vec::new();
    for table in tables {
        let progress = |n: u64| bar.inc(n);
        let report = runtime
            .block_on(verify_table(&lake, table, &anchors, &progress))
            .with_context(|| format!("verifying the {table} table of {}", config.lake.location))?;
        reports.push(report);
    }
    bar.finish_and_clear();
    let passed = reports.iter().all(TableVerification::passed);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "passed": passed, "tables": reports }))?);
        return Ok(passed);
    }
    for report in &reports {
        let verdict = if report.passed() { "PASS" } else { "FAIL" };
        let head =
            report.head.as_ref().map_or("none (no ledger entries)".to_string(), |h| format!("{}={h}", report.table));
        println!(
            "{verdict} {}: {} ledger entries, {} files ({} bytes) hashed; head {head}",
            report.table, report.entries, report.files_checked, report.bytes_hashed
        );
        for finding in &report.findings {
            let mark = if finding.kind.is_failure() { "  FAIL" } else { "  note" };
            let kind = serde_json::to_value(finding.kind)?.as_str().unwrap_or_default().to_string();
            println!("{mark} {kind} {}: {}", finding.path, finding.detail);
        }
    }
    println!(
        "{}",
        if passed {
            "lake verified: every file matches the ledger and every ledger entry links to the one before"
        } else {
            "lake verification FAILED: see the lines marked FAIL"
        }
    );
    Ok(passed)
}

/// Prints the files of `table`'s current snapshot: absolute paths for a local lake, URLs
/// (`s3://bucket/prefix/…`) on an object store.
pub fn files(config: &Config, table: &str, json: bool) -> Result<()> {
    let table = Table::from_name(table).with_context(|| {
        format!("unknown table `{table}`; use events, deadletters, alerts, alert_changes or silences")
    })?;
    let runtime = mcpsiem_runtime::lake_runtime::build(mcpsiem_runtime::lake_runtime::COMMAND_READ_THREADS)?;
    let lake = config.lake.open()?;
    let snapshot = runtime.block_on(mcpsiem_lake::Snapshot::load(&lake, table))?;
    let names: Vec<String> = snapshot
        .files
        .iter()
        .map(|file| match lake.local_root() {
            Some(root) => root.join(file.path.as_ref()).display().to_string(),
            None => format!("{}/{}", lake.location().trim_end_matches('/'), file.path),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string(&names)?);
    } else {
        for name in names {
            println!("{name}");
        }
    }
    Ok(())
}
