//! The collectors' shipper through a broker outage of more than 20 s: events keep arriving,
//! spill to the disk spool while Kafka is away, and afterwards every event is in Kafka
//! exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mcpsiem_collect::shipper::{Shipper, ShipperSettings};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::support;
use crate::support::start_intake;

#[test]
fn events_sent_while_the_broker_is_down_arrive_exactly_once() {
    let mut broker = support::TestBroker::start();
    let kafka = broker.kafka_config("outage");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let spool = tempfile::tempdir().unwrap();
    let settings = ShipperSettings {
        spool_dir: spool.path().to_path_buf(),
        spool_max_bytes: 64 << 20,
        queue_max_kbytes: 64,
        max_message_bytes: 1 << 20,
    };
    let shipper = Shipper::start(&kafka, &settings).unwrap();

    let mut sent = 0u64;
    let mut send = |n: u64| {
        for _ in 0..n {
            let session = format!("session-{}", sent % 17);
            let payload =
                format!(r#"{{"event.id":"{sent:08}","mcp.session.id":"{session}","pad":"{}"}}"#, "x".repeat(200));
            shipper.send(Some(&session), payload.as_bytes()).unwrap();
            sent += 1;
        }
    };
    send(2_000);
    broker.broker.stop();
    // Events keep arriving for 22 s while Kafka is away.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(22) {
        send(200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let spooled = shipper.spooled();
    assert!(spooled > 0, "nothing was spooled during the outage");
    broker.broker.restart().unwrap();
    send(2_000);
    let left = shipper.close(Duration::from_secs(180)).unwrap();
    assert_eq!(left, 0, "the spool did not drain");
    let (delivered, failed) = shipper.delivered();
    assert_eq!(failed, 0);
    assert_eq!(delivered, sent, "{spooled} were spooled at the end of the outage");

    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "test-outage-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&kafka.events_topic]).unwrap();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut order: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut total = 0u64;
    while total < sent && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            let id = value["event.id"].as_str().unwrap().to_string();
            let session = value["mcp.session.id"].as_str().unwrap().to_string();
            // One session's events stay in order, across the switch to the spool and back.
            if let Some(previous) = order.insert(session.clone(), id.clone()) {
                assert!(previous < id, "{session}: {id} after {previous}");
            }
            *seen.entry(id).or_default() += 1;
            total += 1;
        }
    }
    // A little longer, to see any duplicate arrive.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            *seen.entry(value["event.id"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    let doubled = seen.values().filter(|n| **n > 1).count();
    assert_eq!(seen.len() as u64, sent, "{} of {sent} events arrived", seen.len());
    assert_eq!(doubled, 0, "{doubled} events arrived twice");
}

/// POSTs NDJSON to the intake with curl; returns the HTTP status.
fn post(port: u16, key: &str, body: &str) -> u16 {
    let output = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@-"])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .arg(format!("http://127.0.0.1:{port}/v1/events"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&output.stdout).parse().unwrap_or(0)
}

/// An intake on `port` taking `key`, with a small librdkafka queue so that an outage
/// reaches the spool soon.
fn intake_fixture(kafka: &mcpsiem_runtime::kafka::KafkaConfig, port: u16, key: &str) -> support::LakeFixture {
    support::intake_fixture(kafka, port, key, "queue_max_kbytes = 64")
}

/// A real collector process (the HTTP intake) keeps taking events through a 24 s broker
/// outage, and is itself restarted in the middle of it: what it held in memory at the stop
/// goes to the spool, the next process sends it, and every event is in Kafka exactly once.
#[test]
fn events_posted_through_an_outage_and_a_collector_restart_arrive_exactly_once() {
    let mut broker = support::TestBroker::start();
    let kafka = broker.kafka_config("outage-intake");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let key = "outage-intake-key";
    let fixture = intake_fixture(&kafka, port, key);
    let mut next = 0u64;
    let mut batch = |n: u64| -> String {
        let lines: Vec<String> = (0..n)
            .map(|_| {
                next += 1;
                let id = ulid::Ulid::from_parts(1_800_000_000_000 + next, 0).to_string();
                format!(
                    r#"{{"event.id":"{id}","event.time":"2026-11-20T10:00:00Z","event.kind":"message","mcp.session.id":"s{}","pad":"{}"}}"#,
                    next % 11,
                    "p".repeat(300)
                )
            })
            .collect();
        lines.join("\n")
    };

    let mut intake = start_intake(&fixture, port);
    assert_eq!(post(port, key, &batch(500)), 200);
    broker.broker.stop();
    let outage = Instant::now();
    let mut restarted = false;
    while outage.elapsed() < Duration::from_secs(24) {
        assert_eq!(post(port, key, &batch(100)), 200, "the intake refused events during the outage");
        if !restarted && outage.elapsed() > Duration::from_secs(10) {
            std::process::Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
            assert!(intake.wait().unwrap().success(), "the intake did not stop cleanly");
            intake = start_intake(&fixture, port);
            restarted = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.broker.restart().unwrap();
    assert_eq!(post(port, key, &batch(500)), 200);
    std::process::Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    assert!(intake.wait().unwrap().success());
    let sent = next as usize;
    assert!(restarted && sent > 5_000, "only {sent} events were posted");

    let records =
        support::read_topic_json(&kafka, &kafka.events_topic, sent, Duration::from_secs(3), Duration::from_secs(120));
    let mut seen: HashMap<String, u32> = HashMap::new();
    for r in &records {
        *seen.entry(r["event.id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    assert_eq!(seen.len(), sent, "{} of {sent} posted events reached Kafka", seen.len());
    assert_eq!(twice, 0, "{twice} events arrived twice");
}

/// The intake stopped dead after Kafka took spooled events but before the spool's cursor
/// moved past them: the next process sends them again, so nothing acknowledged is lost and
/// the repeats carry the same event ids (which the ingester's and detector's readers see
/// as the same events).
#[test]
fn a_collector_killed_before_its_spool_cursor_moves_loses_nothing() {
    let mut broker = support::TestBroker::start();
    let kafka = broker.kafka_config("spool-crash");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let key = "spool-crash-key";
    let fixture = intake_fixture(&kafka, port, key);
    let lines = |from: u64, n: u64| -> String {
        (from..from + n)
            .map(|i| {
                let id = ulid::Ulid::from_parts(1_800_000_000_000 + i, 7).to_string();
                format!(
                    r#"{{"event.id":"{id}","event.time":"2026-11-20T10:00:00Z","event.kind":"message","mcp.session.id":"s{}","pad":"{}"}}"#,
                    i % 11,
                    "p".repeat(300)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Posted while Kafka is away; the stop moves what memory held into the spool.
    broker.broker.stop();
    let mut intake = start_intake(&fixture, port);
    let mut sent = 0;
    for _ in 0..20 {
        assert_eq!(post(port, key, &lines(sent, 100)), 200);
        sent += 100;
    }
    std::process::Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    assert!(intake.wait().unwrap().success(), "the intake did not stop cleanly");

    // Kafka is back; the next intake drains the spool and dies as its cursor is to move.
    broker.broker.restart().unwrap();
    intake = fixture
        .command(&["collect", "http"])
        .env("FAILPOINTS", support::abort_at("collect::spool_before_cursor:1"))
        .spawn()
        .unwrap();
    support::wait_for_abort(&mut intake, Duration::from_secs(120), "the spool's cursor moved");

    // The next one sends the spool from the old cursor on, and stops once it drained.
    let mut intake = start_intake(&fixture, port);
    std::thread::sleep(Duration::from_secs(5));
    std::process::Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    assert!(intake.wait().unwrap().success());

    let records = support::read_topic_json(
        &kafka,
        &kafka.events_topic,
        sent as usize,
        Duration::from_secs(3),
        Duration::from_secs(120),
    );
    let mut seen: HashMap<String, u32> = HashMap::new();
    for r in &records {
        *seen.entry(r["event.id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    assert_eq!(seen.len(), sent as usize, "{} of {sent} acknowledged events reached Kafka", seen.len());
    assert!(twice > 0, "the crash came after Kafka took some spooled events, which are sent again");
    assert!(seen.values().all(|n| *n <= 2), "an event was sent more than twice");
}
