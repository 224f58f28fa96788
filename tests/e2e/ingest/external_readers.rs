//! The lake opens in the analysts' own tools: DuckDB and pyarrow (installed by `scripts/setup`
//! into `.tools/python`) read the same events, ids and dead letters that mcpsiem wrote.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_runtime::producer::EventProducer;

#[derive(serde::Deserialize)]
struct DuckDbView {
    ids: Vec<String>,
    event_time_type: String,
    per_date: BTreeMap<String, u64>,
    first_date_pruned_count: u64,
    dead_letters: BTreeMap<String, u64>,
}

#[derive(serde::Deserialize)]
struct PyArrowView {
    ids: Vec<String>,
    event_time_type: String,
    files: usize,
    files_not_sorted_by_time: Vec<String>,
    dead_letters: u64,
}

#[derive(serde::Deserialize)]
struct ReaderViews {
    duckdb: DuckDbView,
    pyarrow: PyArrowView,
}

fn read_with_external_readers(lake: &Path) -> ReaderViews {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("tests/readers/read_lake.py"))
        .arg(lake)
        .env("PYTHONPATH", root.join(".tools/python"))
        .stderr(Stdio::inherit())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the external readers failed ({}); run scripts/setup to install duckdb and pyarrow",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("the readers print JSON")
}

#[test]
fn duckdb_and_pyarrow_read_the_same_events_as_mcpsiem() {
    let broker = support::TestBroker::start();
    let mut kafka = broker.kafka_config("external");
    kafka.partitions = 3;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, kafka.partitions));

    // Two days of traffic, so the lake has several date and hour partitions, ending two days
    // ago: the generator may run past its period (never into the future, or the ingester
    // would dead-letter those events as `in_future`).
    let start = Timestamp::from_micros(Timestamp::now().as_micros() - 4 * 86_400_000_000);
    let options =
        GenOptions { events: 6_000, start, days: 2, attacks: Scenario::ALL.to_vec(), ..GenOptions::default() };
    let producer = EventProducer::new(&kafka).unwrap();
    let mut produced = HashSet::new();
    for event in Generator::new(options) {
        producer.send(mcpsiem_runtime::kafka::event_key(&event), event.to_json().as_bytes()).unwrap();
        produced.insert(event.id.to_string());
    }
    producer.send(Some("bad"), b"{not json").unwrap();
    producer.send(Some("bad"), br#"{"event.kind":"message"}"#).unwrap();
    let delivered = producer.flush(Duration::from_secs(60)).unwrap().delivered;
    assert_eq!(delivered as usize, produced.len() + 2);

    let fixture = support::LakeFixture::new(&kafka, "");
    let records = (produced.len() + 2).to_string();
    let status = fixture
        .command(&["ingest", "--stop-after-records", &records])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(status.success());

    let ours = {
        let mut ids = fixture.event_ids();
        ids.sort();
        ids
    };
    let (doubled, missing) = support::id_differences(&produced, &ours);
    assert!(doubled.is_empty() && missing.is_empty(), "mcpsiem's own read: {doubled:?} doubled, {missing:?} missing");

    let views = read_with_external_readers(&fixture.lake_dir());
    assert_eq!(views.duckdb.ids, ours, "DuckDB sees other events than mcpsiem wrote");
    assert_eq!(views.pyarrow.ids, ours, "pyarrow sees other events than mcpsiem wrote");

    // Times are real timestamps in UTC, not strings, in both engines.
    assert_eq!(views.duckdb.event_time_type, "TIMESTAMP WITH TIME ZONE");
    assert_eq!(views.pyarrow.event_time_type, "timestamp[us, tz=UTC]");

    // The Hive partition columns work as columns and as filters.
    assert!(views.duckdb.per_date.len() >= 2, "expected several dates: {:?}", views.duckdb.per_date);
    assert_eq!(views.duckdb.per_date.values().sum::<u64>() as usize, ours.len());
    let first = views.duckdb.per_date.values().next().copied().unwrap();
    assert_eq!(views.duckdb.first_date_pruned_count, first);

    assert!(views.pyarrow.files > 3, "expected files in several partitions, got {}", views.pyarrow.files);
    assert!(views.pyarrow.files_not_sorted_by_time.is_empty(), "{:?}", views.pyarrow.files_not_sorted_by_time);

    assert_eq!(views.pyarrow.dead_letters, 2);
    assert_eq!(views.duckdb.dead_letters.values().sum::<u64>(), 2, "{:?}", views.duckdb.dead_letters);
}
