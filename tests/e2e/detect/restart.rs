//! The detector keeps its state across a restart and reloads rules while running, on a
//! real broker: a correlation window half filled before a stop completes after it, a token
//! learned before the stop is "known" after it, and a rule file added while the detector
//! runs alerts without a restart. Every alert arrives exactly once. An alert open before a
//! restart takes its rule's repeats after it (recorded on the alert-changes topic), until
//! an analyst closes it: the next firing then raises a new alert.

use crate::support;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mcpsiem_detect::Alert;
use mcpsiem_event::{EventId, EventKind, McpEvent, OwnedEvent, Text, Timestamp};
use mcpsiem_runtime::producer::EventProducer;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

pub(super) const RULES: &str = r#"
title: Unauthorised MCP request
id: 7d3c1c7e-0000-4000-8000-000000000001
logsource: {product: mcp}
detection:
  sel:
    http.response.status_code: 401
  condition: sel
---
title: Burst of unauthorised MCP requests
id: 7d3c1c7e-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [7d3c1c7e-0000-4000-8000-000000000001]
  group-by: [client.address]
  timespan: 10m
  condition: {gte: 5}
level: high
---
title: Token used from a new address
id: 7d3c1c7e-0000-4000-8000-000000000003
first_seen:
  group-by: [auth.token.fingerprint]
  fields: [client.address]
  learning: 0s
logsource: {product: mcp}
detection:
  sel:
    auth.token.fingerprint|exists: true
  condition: sel
level: high
"#;

const PROBE_RULE: &str = r#"
title: Reload probe
id: 7d3c1c7e-0000-4000-8000-000000000004
logsource: {product: mcp}
detection:
  sel:
    gen_ai.tool.name: reload_probe
  condition: sel
"#;

pub(super) fn event(seconds_ago: i64, address: &str, status: i64, tool: &str) -> OwnedEvent {
    let time = Timestamp::from_micros(Timestamp::now().as_micros() - seconds_ago * 1_000_000);
    let mut e = McpEvent::new(EventId::new(), time, EventKind::Message);
    e.method = Some(Text::from("tools/call".to_string()));
    e.client_address = Some(Text::from(address.to_string()));
    e.token_fingerprint = Some(Text::from("fp-stolen".to_string()));
    e.http_status = Some(status);
    e.tool_name = Some(Text::from(tool.to_string()));
    e
}

pub(super) fn send(producer: &EventProducer, events: &[OwnedEvent]) {
    for e in events {
        producer.send(mcpsiem_runtime::kafka::event_key(e), e.to_json().as_bytes()).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Reads the alerts topic until `until` holds or the deadline passes.
pub(super) fn read_alerts(
    consumer: &BaseConsumer,
    alerts: &mut Vec<Alert>,
    deadline: Duration,
    until: impl Fn(&[Alert]) -> bool,
) {
    let started = Instant::now();
    while started.elapsed() < deadline && !until(alerts) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            alerts.push(serde_json::from_slice(message.payload().unwrap()).expect("alerts are JSON"));
        }
    }
}

pub(super) fn snapshot_offset(path: &std::path::Path) -> Option<i64> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["offsets"]["0"].as_i64()
}

pub(super) fn terminate(mut child: Child) {
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "the detector stops cleanly on SIGTERM: {exit}");
}

/// A one-partition broker, the rules above in their own directory, and a detector
/// configuration that snapshots every second.
pub(super) struct DetectorFixture {
    pub broker: support::TestBroker,
    pub kafka: mcpsiem_runtime::kafka::KafkaConfig,
    pub rules_dir: tempfile::TempDir,
    pub fixture: support::LakeFixture,
    /// The detector's snapshot.
    pub state: std::path::PathBuf,
}

impl DetectorFixture {
    pub fn new(name: &str) -> Self {
        let broker = support::TestBroker::start();
        let mut kafka = broker.kafka_config(name);
        kafka.partitions = 1;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 1));
        runtime.block_on(support::create_topic(&kafka, &kafka.alerts_topic, 1));
        let rules_dir = tempfile::tempdir().unwrap();
        std::fs::write(rules_dir.path().join("pack.yml"), RULES).unwrap();
        let fixture = support::LakeFixture::new(
            &kafka,
            &format!(
                "[detect]\nrules = [\"{}\"]\nmetrics_addr = \"\"\nsnapshot_seconds = 1\n",
                rules_dir.path().display()
            ),
        );
        let state = fixture.dir.path().join("data/detect/state.json");
        Self { broker, kafka, rules_dir, fixture, state }
    }
}

#[test]
fn state_survives_a_restart_and_rules_reload_while_running() {
    let DetectorFixture { broker: _broker, kafka, rules_dir, fixture, state } = DetectorFixture::new("restart");
    let producer = EventProducer::new(&kafka).unwrap();
    let reader: BaseConsumer = kafka
        .client_config()
        .set("group.id", "test-alert-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&kafka.alerts_topic]).unwrap();
    let mut alerts = Vec::new();

    // Run 1: three of the five failures, and the token seen at its usual address.
    send(
        &producer,
        &[event(60, "10.0.0.1", 401, "a"), event(59, "10.0.0.1", 401, "a"), event(58, "10.0.0.1", 401, "a")],
    );
    let first = fixture.command(&["detect"]).stdout(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while snapshot_offset(&state) != Some(3) {
        assert!(started.elapsed() < Duration::from_secs(60), "the detector wrote no snapshot covering the events");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A rule added while it runs is picked up without a restart.
    std::fs::write(rules_dir.path().join("probe.yml"), PROBE_RULE).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    send(&producer, &[event(57, "10.0.0.1", 200, "reload_probe")]);
    read_alerts(&reader, &mut alerts, Duration::from_secs(30), |a| !a.is_empty());
    assert_eq!(alerts.iter().map(|a| a.rule_title.as_str()).collect::<Vec<_>>(), ["Reload probe"]);
    terminate(first);
    assert_eq!(snapshot_offset(&state), Some(4), "the stop snapshot covers every event read");

    // Run 2: two more failures complete the burst only with the restored window, and a new
    // address for the token alerts only because the token was learned before the stop. The
    // probe fires twice more: repeats of its alert, still open after the restart.
    send(
        &producer,
        &[
            event(56, "10.0.0.1", 401, "a"),
            event(55, "10.0.0.1", 401, "a"),
            event(54, "10.9.9.9", 200, "a"),
            event(53, "10.0.0.1", 200, "reload_probe"),
            event(52, "10.0.0.1", 200, "reload_probe"),
        ],
    );
    let second = fixture.command(&["detect", "--stop-when-idle", "5"]).stdout(Stdio::piped()).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["records"], 5, "run 2 resumes where the snapshot was taken");
    assert_eq!(summary["repeats"], 2, "{summary}");

    read_alerts(&reader, &mut alerts, Duration::from_secs(20), |a| a.len() >= 3);
    std::thread::sleep(Duration::from_secs(2));
    read_alerts(&reader, &mut alerts, Duration::from_secs(2), |_| false);
    let mut by_title: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
    for alert in &alerts {
        by_title.entry(alert.rule_title.as_str()).or_default().push(alert);
    }
    let titles: Vec<(&str, usize)> = by_title.iter().map(|(t, a)| (*t, a.len())).collect();
    assert_eq!(
        titles,
        [("Burst of unauthorised MCP requests", 1), ("Reload probe", 1), ("Token used from a new address", 1)],
        "each alert exactly once"
    );
    assert_eq!(by_title["Burst of unauthorised MCP requests"][0].count, 5);
    assert_eq!(by_title["Token used from a new address"][0].group["client.address"], "10.9.9.9");
    let probe = by_title["Reload probe"][0].id.clone();
    let repeats = |changes: &[mcpsiem_event::AlertChange]| -> Vec<(String, String, u64)> {
        let mut found: Vec<(String, String, u64)> = changes
            .iter()
            .filter_map(|c| match &c.action {
                mcpsiem_event::ChangeAction::Repeat { count, .. } => {
                    Some((c.change_id.clone(), c.alert_id.clone(), *count))
                }
                _ => None,
            })
            .collect();
        // A record sent again (as a later run may) is the same record.
        found.sort();
        found.dedup();
        found
    };
    let changes = read_changes(&kafka, 1);
    assert_eq!(repeats(&changes).iter().map(|(_, a, n)| (a.as_str(), *n)).collect::<Vec<_>>(), [(probe.as_str(), 2)]);

    // An analyst closes the probe's alert while no detector runs.
    let close = mcpsiem_event::AlertChange::new(
        &probe,
        "ana",
        "api",
        mcpsiem_event::ChangeAction::Close { verdict: mcpsiem_event::Verdict::BenignPositive, comment: None },
    );
    let changes_topic =
        mcpsiem_runtime::producer::AckedProducer::new(&kafka, &kafka.alert_changes_topic, Duration::from_secs(10))
            .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(changes_topic.publish(&probe, close.to_json().as_bytes()))
        .unwrap();

    // Run 3: nothing new to read. A bounded run still ends once it holds its partitions and
    // they stay idle (it used to wait for a first record forever).
    let mut third = fixture.command(&["detect", "--stop-when-idle", "3"]).stdout(Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while third.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = third.kill();
            panic!("a detector with nothing to read did not stop when idle");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let third = third.wait_with_output().unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(summary["records"], 0);
    assert_eq!(summary["closed"], 1, "the close made while it was down ends the open alert: {summary}");

    // Run 4: the probe fires again after the close: a new alert, not a repeat.
    send(&producer, &[event(10, "10.0.0.1", 200, "reload_probe")]);
    let fourth = fixture.command(&["detect", "--stop-when-idle", "3"]).stdout(Stdio::piped()).output().unwrap();
    assert!(fourth.status.success(), "{}", String::from_utf8_lossy(&fourth.stderr));
    read_alerts(&reader, &mut alerts, Duration::from_secs(20), |a| a.len() >= 4);
    let probes: Vec<&str> = alerts.iter().filter(|a| a.rule_title == "Reload probe").map(|a| a.id.as_str()).collect();
    assert_eq!(probes.len(), 2, "{probes:?}");
    assert_ne!(probes[1], probe, "a new alert after the close");
    let changes = read_changes(&kafka, 2);
    assert_eq!(repeats(&changes).len(), 1, "no repeat after the close: {changes:?}");
}

/// Every record of the alert-changes topic, once at least `expected` are there.
fn read_changes(kafka: &mcpsiem_runtime::kafka::KafkaConfig, expected: usize) -> Vec<mcpsiem_event::AlertChange> {
    support::read_topic_json(
        kafka,
        &kafka.alert_changes_topic,
        expected,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .into_iter()
    .map(|v| mcpsiem_event::AlertChange::from_json(v.to_string().as_bytes()).unwrap())
    .collect()
}
