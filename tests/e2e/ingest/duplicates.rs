//! Second copies of an event (a collector's resend, a client's retry) are dropped by the
//! ingester: within one run, and across a restart, when the first copy was committed by the
//! previous run (the new run reads the records before its resume point again for their ids).

use std::process::Stdio;
use std::time::Duration;

use mcpsiem_runtime::producer::EventProducer;

use crate::support;

fn event(id: &str, session: &str) -> String {
    format!(
        r#"{{"event.id":"{id}","event.time":"{}","event.kind":"message","mcp.session.id":"{session}"}}"#,
        mcpsiem_event::Timestamp::now()
    )
}

fn produce(producer: &EventProducer, ids: &[String]) {
    for id in ids {
        // The key follows the event, as a resend's does: copies land in one partition.
        let session = format!("s{}", id.bytes().map(u32::from).sum::<u32>() % 5);
        producer.send(Some(&session), event(id, &session).as_bytes()).unwrap();
    }
    let report = producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(report.failed, 0);
}

fn ingest_until_idle(fixture: &support::LakeFixture) {
    let status = fixture.command(&["ingest", "--stop-when-idle", "3"]).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
}

#[test]
fn second_copies_of_events_are_dropped_within_a_run_and_across_a_restart() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("duplicates");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 2));
    let fixture = support::LakeFixture::new(&kafka, "");
    let producer = EventProducer::new(&kafka).unwrap();
    let ids: Vec<String> = (0..300).map(|i| ulid::Ulid::from_parts(1_800_000_000_000 + i, 9).to_string()).collect();

    // The same 300 events twice (the second time in another order), in one run.
    produce(&producer, &ids);
    let mut again = ids.clone();
    again.reverse();
    produce(&producer, &again);
    ingest_until_idle(&fixture);
    let mut found = fixture.event_ids();
    found.sort();
    assert_eq!(found, ids, "each event is in the lake once");

    // A third copy of the first 100 and 50 new ones, read by a new run: the copies are known
    // from the records before its resume point.
    let new: Vec<String> = (300..350).map(|i| ulid::Ulid::from_parts(1_800_000_000_000 + i, 9).to_string()).collect();
    produce(&producer, &ids[..100]);
    produce(&producer, &new);
    ingest_until_idle(&fixture);
    let mut found = fixture.event_ids();
    found.sort();
    let mut expected: Vec<String> = ids.iter().chain(&new).cloned().collect();
    expected.sort();
    assert_eq!(found.len(), expected.len(), "copies were written again after the restart");
    assert_eq!(found, expected);

    // With the window off, copies are kept: the setting is what removes them.
    produce(&producer, &ids[..10]);
    let status = fixture
        .command(&["--set", "ingest.dedup_window_records=0", "ingest", "--stop-when-idle", "3"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(fixture.event_ids().len(), expected.len() + 10);
}
