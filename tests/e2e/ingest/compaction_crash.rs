//! Compaction stopped dead at each of its failpoints (a real `mcpsiem compact` process
//! aborting there), then run again: every event is in the table exactly once, the hour is
//! compacted, and the ledger verifies. Nothing a crash leaves behind is ever read.

use std::collections::HashSet;
use std::process::Command;

use mcpsiem_lake::{Snapshot, Table, verify_table};

use super::compaction::minute_files_lake;
use crate::support;

const POINTS: &[&str] = &[
    "compact::after_staging:1",
    "compact::after_replace_record:1",
    "compact::after_ledger:1",
    "compact::mid_moves:1",
    "compact::before_deletes:1",
];

fn compact(root: &std::path::Path, failpoint: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpsiem"));
    command
        .args(["--set", &format!("lake.location={}", root.display()), "--set", "log.level=warn"])
        .args(["compact", "--settle-seconds", "0"])
        .env_remove("FAILPOINTS");
    if let Some(point) = failpoint {
        command.env("FAILPOINTS", support::abort_at(point));
    }
    command.output().expect("mcpsiem runs")
}

#[test]
fn compaction_stopped_at_every_failpoint_finishes_on_the_next_pass() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for point in POINTS {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        let (lake, expected) = minute_files_lake(&root, &runtime);

        let crashed = compact(&root, Some(point));
        assert!(
            !crashed.status.success() && crashed.status.code().is_none(),
            "{point}: compact should abort there, got {:?}\n{}",
            crashed.status,
            String::from_utf8_lossy(&crashed.stderr)
        );
        assert!(String::from_utf8_lossy(&crashed.stderr).contains("reached: aborting"), "{point}");

        // What the crash left is invisible: readers see every event once.
        let ids = support::read_column(&lake, Table::Events, "event_id");
        let (doubled, missing) = support::id_differences(&expected, &ids);
        assert!(doubled.is_empty() && missing.is_empty(), "{point}, after the crash: {doubled:?} {missing:?}");
        if point.starts_with("compact::before_deletes") {
            outside_engines_read_the_snapshot_once(&root, expected.len());
        }

        // The dead compactor's lease on the hour runs out (30 minutes); until then another
        // pass leaves the hour alone, though it finishes any replace record at once.
        age_leases(&root.join("_lake/locks/compact"));
        let again = compact(&root, None);
        assert!(again.status.success(), "{point}: {}", String::from_utf8_lossy(&again.stderr));
        let ids = support::read_column(&lake, Table::Events, "event_id");
        let (doubled, missing) = support::id_differences(&expected, &ids);
        assert!(doubled.is_empty() && missing.is_empty(), "{point}, after the next pass: {doubled:?} {missing:?}");
        assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), expected);

        let snapshot = runtime.block_on(Snapshot::load(&lake, Table::Events)).unwrap();
        assert_eq!(snapshot.files.len(), 1, "{point}: the hour ends compacted");
        let verified = runtime.block_on(verify_table(&lake, Table::Events, &[], &|_| {})).unwrap();
        assert!(verified.findings.is_empty(), "{point}: {:?}", verified.findings);
    }
}

/// Between compaction's moves and its deletes both the minute files and the merged file are
/// on disk: DuckDB globbing the directory counts the hour twice, DuckDB reading the files
/// `mcpsiem lake files` lists counts it once.
fn outside_engines_read_the_snapshot_once(root: &std::path::Path, events: usize) {
    let listed = Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .args(["--set", &format!("lake.location={}", root.display()), "--set", "log.level=warn"])
        .args(["lake", "files", "--table", "events", "--json"])
        .env_remove("FAILPOINTS")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let files: Vec<String> = serde_json::from_slice(&listed.stdout).unwrap();
    let script = r#"
import duckdb, json, sys
files, root = json.loads(sys.argv[1]), sys.argv[2]
con = duckdb.connect()
listed = con.execute(f"SELECT count(*) FROM read_parquet({files!r})").fetchone()[0]
globbed = con.execute(f"SELECT count(*) FROM read_parquet('{root}/events/**/*.parquet')").fetchone()[0]
print(json.dumps({"listed": listed, "globbed": globbed}))
"#;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .args(["-c", script, &serde_json::to_string(&files).unwrap(), &root.display().to_string()])
        .env("PYTHONPATH", repo.join(".tools/python"))
        .output()
        .unwrap();
    assert!(output.status.success(), "duckdb: {}", String::from_utf8_lossy(&output.stderr));
    let counts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts["listed"], events, "{counts}");
    assert_eq!(
        counts["globbed"],
        2 * events,
        "a glob sees the hour twice here, which is why the list exists: {counts}"
    );
}

/// Makes every compaction lease under `dir` 31 minutes old.
fn age_leases(dir: &std::path::Path) {
    let Ok(tables) = std::fs::read_dir(dir) else { return };
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 60);
    for table in tables.flatten() {
        for lease in std::fs::read_dir(table.path()).unwrap().flatten() {
            std::fs::File::options().write(true).open(lease.path()).unwrap().set_modified(old).unwrap();
        }
    }
}
