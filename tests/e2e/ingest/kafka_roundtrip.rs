//! Generated events produced to a real Tansu broker with rdkafka come back byte for byte.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_runtime::producer::EventProducer;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread")]
async fn generated_events_round_trip_through_a_real_broker_byte_for_byte() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("roundtrip");
    let partitions = 3;
    support::create_topic(&kafka, &kafka.events_topic, partitions).await;

    let options = GenOptions { events: 5_000, attacks: Scenario::ALL.to_vec(), days: 2, ..GenOptions::default() };
    let mut sent: HashMap<String, (Option<String>, Vec<u8>)> = HashMap::new();
    let producer = EventProducer::new(&kafka).expect("a producer");
    for event in Generator::new(options) {
        let payload = event.to_json().into_bytes();
        let key = mcpsiem_runtime::kafka::event_key(&event).map(str::to_owned);
        producer.send(key.as_deref(), &payload).expect("queued");
        sent.insert(event.id.to_string(), (key, payload));
    }
    let report = producer.flush(Duration::from_secs(60)).expect("flushed");
    assert_eq!(report.delivered as usize, sent.len());
    assert_eq!(report.failed, 0);

    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "roundtrip-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(&kafka.events_topic, partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).expect("assigned");

    let mut received: HashMap<String, (Option<String>, Vec<u8>)> = HashMap::new();
    let mut partitions_seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.len() < sent.len() && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = message.expect("no consumer error");
        let payload = message.payload().expect("a payload").to_vec();
        let key = message.key().map(|k| String::from_utf8(k.to_vec()).unwrap());
        let id = mcpsiem_event::parse_event(&payload, usize::MAX).expect("what we sent decodes").id.to_string();
        partitions_seen.insert(message.partition());
        let previous = received.insert(id.clone(), (key, payload));
        assert!(previous.is_none(), "event {id} arrived twice");
    }
    assert_eq!(received.len(), sent.len(), "every event came back");
    assert_eq!(received, sent, "payloads and keys are byte for byte what was produced");
    assert_eq!(partitions_seen.len(), partitions as usize, "keys spread events over the partitions");
}
