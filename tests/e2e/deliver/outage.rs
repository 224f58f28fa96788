//! Alert delivery through a 30 s destination outage with the delivery process restarted in
//! the middle of it: afterwards every alert reached the receiver exactly once, the
//! deliveries are in the query service's `alert_deliveries` table, and
//! `alerts test-destination` checks a configuration.

use std::collections::HashMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use mcpsiem_event::{Alert, AlertSource, Level, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::support;

pub(super) const SECRET: &str = "outage-test-secret";

pub(super) type Received = Arc<Mutex<Vec<(String, String)>>>;

/// The webhook receiver: checks the signature, keeps (delivery id, alert id).
pub(super) fn start_receiver(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    received: Received,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route(
            "/hook",
            post(|State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
                let timestamp: i64 = headers["x-mcpsiem-timestamp"].to_str().unwrap().parse().unwrap();
                let signature = headers["x-mcpsiem-signature"].to_str().unwrap();
                assert_eq!(
                    signature,
                    mcpsiem_deliver::destinations::webhook::webhook_signature(SECRET, timestamp, &body)
                );
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let delivery = headers["x-mcpsiem-delivery"].to_str().unwrap().to_string();
                received.lock().unwrap().push((delivery, value["alert"]["id"].as_str().unwrap().to_string()));
                "ok"
            }),
        )
        .with_state(received);
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    })
}

pub(super) fn alert(i: u64) -> Alert {
    let at = Timestamp::parse("2026-11-24T10:00:00Z").unwrap().plus_micros(i as i64 * 1_000_000);
    Alert {
        id: ulid::Ulid::from_parts((at.as_micros() / 1000) as u64, u128::from(i)).to_string(),
        rule_id: format!("rule-{}", i % 4),
        rule_title: format!("Test rule {}", i % 4),
        level: Level::High,
        tags: vec![],
        source: AlertSource::Detection,
        first_time: at,
        last_time: at,
        group: [("mcp.session.id".to_string(), format!("s{i}"))].into(),
        count: 1,
        event_ids: vec![format!("e{i}")],
        sql: format!("SELECT * FROM events WHERE event_id = 'e{i}'"),
    }
}

/// Kills the process if the test fails before stopping it (it would outlive the test).
pub(super) struct Running(pub(super) Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(super) fn stop(mut running: Running) {
    let mut child = running.0.take().expect("running");
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "alerts deliver failed: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "alerts deliver did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn alerts_survive_a_destination_outage_and_a_restart_and_arrive_exactly_once() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("delivery");
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
[delivery.retry]
initial_backoff_ms = 300
max_backoff_ms = 2000
max_attempts = 1000
[delivery.destinations.hook]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "{SECRET}"
timeout_seconds = 2
[delivery.destinations.nowhere]
type = "slack"
url = "http://127.0.0.1:1/nothing-listens-here"
[[delivery.routes]]
destinations = ["hook"]
"#
        ),
    );

    let producer: BaseProducer = kafka.client_config().create().unwrap();
    let alerts: Vec<Alert> = (0..40).map(alert).collect();
    for a in &alerts {
        producer.send(BaseRecord::to(&kafka.alerts_topic).key(&a.rule_id).payload(&a.to_json())).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    // The destination is down from the start; the process is restarted 12 s in.
    let outage = Instant::now();
    let deliver = Running(Some(fixture.command(&["alerts", "deliver"]).spawn().unwrap()));
    std::thread::sleep(Duration::from_secs(12));
    stop(deliver);
    let deliver = Running(Some(fixture.command(&["alerts", "deliver"]).spawn().unwrap()));
    // More alerts arrive while the destination is still down.
    let late: Vec<Alert> = (40..50).map(alert).collect();
    for a in &late {
        producer.send(BaseRecord::to(&kafka.alerts_topic).key(&a.rule_id).payload(&a.to_json())).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed()));

    let received: Received = Arc::default();
    let _receiver = start_receiver(&runtime, port, received.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().len() < 50 {
        assert!(Instant::now() < deadline, "only {} of 50 alerts arrived", received.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Anything sent twice would arrive now.
    std::thread::sleep(Duration::from_secs(3));
    stop(deliver);

    let received = received.lock().unwrap().clone();
    let mut per_alert: HashMap<String, u32> = HashMap::new();
    for (delivery, alert_id) in &received {
        assert_eq!(delivery, &format!("{alert_id}:hook"));
        *per_alert.entry(alert_id.clone()).or_default() += 1;
    }
    assert_eq!(received.len(), 50, "{} requests for {} alerts", received.len(), per_alert.len());
    for a in alerts.iter().chain(&late) {
        assert_eq!(per_alert.get(&a.id), Some(&1), "alert {} arrived {:?} times", a.id, per_alert.get(&a.id));
    }

    // The query service shows how each delivery ended.
    let output = fixture
        .command(&[
            "query",
            "--format",
            "json",
            "SELECT status, count(*) AS n, min(attempts) AS min_attempts FROM alert_deliveries GROUP BY status",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "only delivered deliveries: {rows}");
    assert_eq!((rows[0]["status"].as_str(), rows[0]["n"].as_u64()), (Some("delivered"), Some(50)), "{rows}");
    assert!(rows[0]["min_attempts"].as_u64().unwrap() >= 2, "the outage must have forced retries: {rows}");

    // test-destination: a working one and a broken one.
    let ok = fixture.command(&["alerts", "test-destination", "hook"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("delivered to hook"));
    let broken = fixture.command(&["alerts", "test-destination", "nowhere"]).output().unwrap();
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("nowhere"), "{}", String::from_utf8_lossy(&broken.stderr));
}
