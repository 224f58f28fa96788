//! The delivery stage stopped dead at its failpoints: once after alerts entered the outbox
//! but before their offsets were stored, once after attempts were sent but before they were
//! marked. After a restart every alert reached the receiver, each under its one delivery
//! key; only attempts the second crash cut off arrived again (with the same key, which
//! receivers deduplicate by), and the outbox records each delivery once.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::outage::{Received, Running, SECRET, alert, start_receiver, stop};
use crate::support;

const ALERTS: u64 = 30;

/// Runs `alerts deliver` until it aborts at `point`; panics if it exits any other way.
fn run_until_abort(fixture: &support::LakeFixture, point: &str) {
    let mut child = fixture
        .command(&["alerts", "deliver"])
        .env("FAILPOINTS", support::abort_at(point))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.code().is_none(), "{point}: alerts deliver should abort there, exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{point} was not reached within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn deliveries_cut_off_by_a_crash_are_finished_once_under_the_same_key() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("delivery-crash");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.alerts_topic, 3));
    let port = support::free_port();
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!(
            r#"
[delivery]
outbox_path = "outbox.redb"
# Tests run side by side in one process: no fixed ports.
metrics_addr = ""
[delivery.destinations.hook]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "{SECRET}"
timeout_seconds = 2
"#
        ),
    );
    let received: Received = Arc::default();
    let _receiver = start_receiver(&runtime, port, received.clone());

    let producer: BaseProducer = kafka.client_config().create().unwrap();
    let alerts: Vec<_> = (0..ALERTS).map(alert).collect();
    for a in &alerts {
        producer.send(BaseRecord::to(&kafka.alerts_topic).key(&a.rule_id).payload(&a.to_json())).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    run_until_abort(&fixture, "deliver::after_enqueue:1");
    run_until_abort(&fixture, "deliver::after_send:1");
    let before_restart = received.lock().unwrap().len();
    assert!(before_restart > 0, "the crash after a send came after something was sent");

    let deliver = Running(Some(fixture.command(&["alerts", "deliver"]).stdout(Stdio::null()).spawn().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let unique =
        || received.lock().unwrap().iter().map(|(key, _)| key.clone()).collect::<std::collections::HashSet<_>>();
    while unique().len() < ALERTS as usize {
        assert!(Instant::now() < deadline, "only {} of {ALERTS} alerts arrived", unique().len());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    stop(deliver);

    let received = received.lock().unwrap().clone();
    let mut per_alert: HashMap<String, usize> = HashMap::new();
    for (key, alert_id) in &received {
        assert_eq!(key, &format!("{alert_id}:hook"), "one delivery key per alert and destination, on every attempt");
        *per_alert.entry(alert_id.clone()).or_default() += 1;
    }
    for a in &alerts {
        assert!(per_alert.contains_key(&a.id), "alert {} never arrived", a.id);
    }
    let again = received.len() - ALERTS as usize;
    assert!(
        again <= before_restart,
        "only attempts sent before the crash may arrive again: {again} repeats, {before_restart} sent before it"
    );

    // The outbox marked each delivery once.
    let output = fixture
        .command(&["query", "--format", "json", "SELECT status, count(*) AS n FROM alert_deliveries GROUP BY status"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!((rows[0]["status"].as_str(), rows[0]["n"].as_u64()), (Some("delivered"), Some(ALERTS)), "{rows}");
}
