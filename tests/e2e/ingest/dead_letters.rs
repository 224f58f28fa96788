//! Bad records on the topic end in the `deadletters` table with their reason and raw bytes;
//! the good records around them end in `events`. Nothing is dropped silently.

use crate::support;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator};
use mcpsiem_lake::Table;
use mcpsiem_runtime::producer::EventProducer;

#[test]
fn bad_records_become_dead_letters_with_their_reason() {
    let broker = support::TestBroker::start();
    let mut kafka = broker.kafka_config("deadletters");
    kafka.partitions = 2;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, kafka.partitions));

    let start = Timestamp::from_micros(Timestamp::now().as_micros() - 2 * 86_400_000_000);
    let producer = EventProducer::new(&kafka).unwrap();
    let mut good = HashSet::new();
    for event in Generator::new(GenOptions { events: 2_000, start, ..GenOptions::default() }) {
        if event.time > Timestamp::now() {
            continue;
        }
        producer.send(mcpsiem_runtime::kafka::event_key(&event), event.to_json().as_bytes()).unwrap();
        good.insert(event.id.to_string());
    }
    let too_old = format!(
        r#"{{"event.id":"01JABCDEFGHJKMNPQRSTVWXYZ0","event.time":"{}","event.kind":"message"}}"#,
        Timestamp::from_micros(Timestamp::now().as_micros() - 90 * 86_400_000_000)
    );
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not_json", b"{not json".to_vec()),
        ("not_utf8", vec![b'{', 0xff, 0xfe, b'}']),
        ("missing_field", br#"{"event.kind":"message"}"#.to_vec()),
        ("wrong_type", br#"{"event.id":"01JABCDEFGHJKMNPQRSTVWXYZ1","event.time":7,"event.kind":"message"}"#.to_vec()),
        ("too_old", too_old.into_bytes()),
    ];
    for (_, payload) in &bad {
        producer.send(Some("bad"), payload).unwrap();
    }
    let report = producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(report.delivered as usize, good.len() + bad.len());

    let fixture = support::LakeFixture::new(&kafka, "");
    let output = fixture.command(&["ingest", "--stop-when-idle", "3"]).stderr(Stdio::inherit()).output().unwrap();
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON summary on stdout");
    assert_eq!(summary["dead_letters"], bad.len());
    assert_eq!(summary["events"], good.len());

    let ids = fixture.event_ids();
    let (doubled, missing) = support::id_differences(&good, &ids);
    assert!(doubled.is_empty() && missing.is_empty() && ids.len() == good.len());

    let lake = fixture.lake();
    let mut reasons = support::read_column(&lake, Table::DeadLetters, "reason");
    reasons.sort();
    let mut expected: Vec<String> = bad.iter().map(|(reason, _)| reason.to_string()).collect();
    expected.sort();
    assert_eq!(reasons, expected);
    let errors = support::read_column(&lake, Table::DeadLetters, "error");
    assert!(errors.iter().any(|e| e.contains("event.time")), "errors name the field: {errors:?}");
}
