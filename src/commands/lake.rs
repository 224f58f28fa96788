//! `mcpsiem lake verify`: the lake checked against its ledger, with a plain verdict.

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
