//! Compaction of a closed hour: 60 one-minute files end as at most 2, with the same event
//! ids, while a reader polls the table throughout and always sees every event exactly once.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mcpsiem_event::{EventColumns, EventId, EventKind, McpEvent, Timestamp};
use mcpsiem_ingest::parquet_file::ParquetSettings;
use mcpsiem_ingest::{CompactionConfig, Compactor};
use mcpsiem_lake::{
    HourPartition, Lake, Ledger, LedgerFile, Snapshot, Table, flush_file_path, sha256_hex, verify_table,
};

/// The hour every test here compacts.
pub fn hour() -> HourPartition {
    HourPartition::of(Timestamp::parse("2026-11-20T14:00:00Z").unwrap())
}

/// A lake at `root` holding an hour of 60 one-minute files of 500 events each, in the
/// ledger as the ingester records them; returns it and the event ids written.
pub fn minute_files_lake(root: &std::path::Path, runtime: &tokio::runtime::Runtime) -> (Lake, HashSet<String>) {
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 8192 };
    let hour = hour();
    let mut expected = HashSet::new();
    for minute in 0..60i64 {
        let mut columns = EventColumns::with_capacity(500);
        for i in 0..500i64 {
            // Times interleave across files, so the merge really has to merge.
            let time = hour.start().plus_micros(minute * 60_000_000 + (i * 7_919 % 500) * 100_000);
            let mut event = McpEvent::new(EventId::new(), time, EventKind::Message);
            event.tool_name = Some(format!("tool-{}", i % 13).into());
            expected.insert(event.id.to_string());
            columns.append(&event);
        }
        let batch = columns.finish();
        let parts = mcpsiem_ingest::parquet_file::split_by_hour(Table::Events, &batch).unwrap();
        assert_eq!(parts.len(), 1);
        let bytes: Bytes = settings.encode(Table::Events, &[parts[0].1.clone()]).unwrap();
        let path = flush_file_path(Table::Events, hour, "t", 0, minute * 500, (minute + 1) * 500);
        let file = LedgerFile {
            path: path.to_string(),
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
            rows: 500,
            staged: None,
        };
        runtime.block_on(lake.put(&path, bytes)).unwrap();
        let ledger = Ledger::new(lake.clone());
        runtime
            .block_on(ledger.append(Table::Events, &format!("commit t/0/{minute}"), "test", vec![file], vec![]))
            .unwrap();
    }
    (lake, expected)
}

#[test]
fn an_hour_of_minute_files_compacts_to_two_files_under_a_polling_reader() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 8192 };
    let hour = hour();
    let (lake, expected) = minute_files_lake(&root, &runtime);
    assert_eq!(runtime.block_on(Snapshot::load(&lake, Table::Events)).unwrap().files.len(), 60);

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (lake, done, expected) = (lake.clone(), done.clone(), expected.clone());
        std::thread::spawn(move || {
            let mut polls = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let ids = support::read_column(&lake, Table::Events, "event_id");
                let (doubled, missing) = support::id_differences(&expected, &ids);
                assert!(
                    doubled.is_empty() && missing.is_empty() && ids.len() == expected.len(),
                    "poll {polls}: {} doubled, {} missing",
                    doubled.len(),
                    missing.len()
                );
                polls += 1;
                if finished {
                    return polls;
                }
            }
        })
    };

    let compactor = Compactor {
        lake: lake.clone(),
        ledger: Ledger::new(lake.clone()),
        writer: "test".into(),
        settings,
        config: CompactionConfig { target_file_bytes: 64 * 1024 * 1024, ..CompactionConfig::default() },
    };
    let summary = runtime.block_on(compactor.run_once(Timestamp::now())).unwrap();
    done.store(true, Ordering::SeqCst);
    let polls = reader.join().expect("the reader saw every event exactly once on every poll");
    assert!(polls >= 2, "the reader polled during compaction ({polls} polls)");

    assert_eq!(summary.files_in, 60);
    assert_eq!(summary.rows, 30_000);
    let snapshot = runtime.block_on(Snapshot::load(&lake, Table::Events)).unwrap();
    assert!(snapshot.files.len() <= 2, "{} files after compaction", snapshot.files.len());
    assert_eq!(std::fs::read_dir(root.join(hour.path(Table::Events).as_ref())).unwrap().count(), snapshot.files.len());
    let ids = support::read_column(&lake, Table::Events, "event_id");
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(ids.len(), expected.len());

    // The compacted file is sorted by time, like the files it replaced.
    let file = std::fs::File::open(root.join(snapshot.files[0].path.as_ref())).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut last = i64::MIN;
    for batch in reader {
        let batch = batch.unwrap();
        let times = batch.column_by_name("event_time").unwrap();
        let times = arrow::array::AsArray::as_primitive::<arrow::datatypes::TimestampMicrosecondType>(times.as_ref());
        for t in times.values() {
            assert!(*t >= last, "rows out of time order");
            last = *t;
        }
    }

    // The ledger follows the compaction: the lake verifies, with the merged files recorded.
    let verified = runtime.block_on(verify_table(&lake, Table::Events, &[], &|_| {})).unwrap();
    assert!(verified.findings.is_empty(), "{:?}", verified.findings);
    assert_eq!(verified.entries, 61);
    assert_eq!(verified.files_checked, snapshot.files.len() as u64);

    // A second pass has nothing left to do.
    let again = runtime.block_on(compactor.run_once(Timestamp::now())).unwrap();
    assert_eq!(again.files_in, 0);
}
