//! The event model round-trips losslessly through JSON and through Arrow.

use mcpsiem_event::{EventColumns, EventDecoder, McpEvent, OwnedEvent, parse_event};
use mcpsiem_gen::{GenOptions, Generator, Scenario};

fn generated(events: u64) -> Vec<OwnedEvent> {
    Generator::new(GenOptions { events, attacks: Scenario::ALL.to_vec(), days: 3, seed: 7, ..GenOptions::default() })
        .collect()
}

#[test]
fn ten_thousand_generated_events_round_trip_through_json_losslessly() {
    let events = generated(10_000);
    assert_eq!(events.len(), 10_000);
    for event in &events {
        let json = event.to_json();
        let back = parse_event(json.as_bytes(), usize::MAX).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(&back, event);
        assert_eq!(back.to_json(), json, "the JSON text is stable");
    }
}

#[test]
fn json_to_arrow_to_json_is_lossless() {
    let events = generated(10_000);
    let mut decoder = EventDecoder::default();
    let mut input = Vec::new();
    for event in &events {
        event.write_json(&mut input);
        input.push(b'\n');
    }
    assert!(decoder.push_ndjson(&input).is_empty());
    let batch = decoder.finish();
    assert_eq!(batch.num_rows(), events.len());
    EventColumns::check_schema(&batch).expect("the decoder's batch has the model's schema");
    for (row, event) in events.iter().enumerate() {
        let back = McpEvent::from_batch_row(batch.columns(), row).expect("a row reads back");
        assert_eq!(&back, event, "row {row}");
    }
}
