//! The detector end to end on a real broker: generated traffic with every attack goes
//! through Kafka into `mcpsiem detect`, each scenario raises an alert on the alerts topic
//! (or repeats an open alert of the same rule and group, recorded on the alert-changes topic),
//! and `mcpsiem detect --replay` over the lake the ingester wrote gives the same alerts.
//! Grouped into incidents as the query service groups them, each injected token replay and
//! exfiltration chain ends as one incident.

use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mcpsiem_detect::Alert;
use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_lake::Table;
use mcpsiem_runtime::producer::EventProducer;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn alerts_on_topic(kafka: &mcpsiem_runtime::kafka::KafkaConfig) -> Vec<Alert> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "test-alert-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&kafka.alerts_topic]).unwrap();
    let mut alerts = Vec::new();
    let mut last = Instant::now();
    let started = Instant::now();
    while last.elapsed() < Duration::from_secs(5) || (alerts.is_empty() && started.elapsed() < Duration::from_secs(30))
    {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            alerts.push(serde_json::from_slice(message.payload().unwrap()).expect("alerts are JSON"));
            last = Instant::now();
        }
    }
    alerts
}

/// What must agree between the live path and the replay: which rules fired for which groups.
/// A first-seen rule decides on arrival (docs/detection.md): when the live path reads one
/// partition ahead of another, which of two new values came "first" can differ from the
/// replay's event-time order, so only its group-by values must agree, not the new value.
fn fired(
    alerts: &[Alert],
    first_seen_group_by: &HashMap<String, Vec<String>>,
) -> BTreeSet<(String, Vec<(String, String)>)> {
    alerts
        .iter()
        .map(|a| {
            let group = a
                .group
                .iter()
                .filter(|(k, _)| first_seen_group_by.get(&a.rule_title).is_none_or(|by| by.contains(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (a.rule_title.clone(), group)
        })
        .collect()
}

/// The group-by fields of every first-seen rule of the pack, by title.
fn first_seen_group_by(rules: &std::path::Path) -> HashMap<String, Vec<String>> {
    let lists = [(
        "approved_servers".to_string(),
        ["filesystem", "github", "slack", "postgres", "fetch", "email", "jira"].map(String::from).to_vec(),
    )]
    .into();
    let report = mcpsiem_detect::rules::load(&[rules.to_path_buf()], &lists);
    report.rules.first_seen.iter().map(|r| (r.rule.meta.title.clone(), r.rule.group_by.clone())).collect()
}

#[test]
fn live_detection_alerts_every_scenario_and_replay_agrees() {
    let broker = support::TestBroker::start();
    let mut kafka = broker.kafka_config("detect");
    kafka.partitions = 3;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, kafka.partitions));

    // From midnight three days ago: the same simulated days whatever the time of day the
    // test runs (a start at, say, 08:00 moved the night-time attack past the generated
    // period's end, and the run lost it), and every event in the past.
    const DAY_US: i64 = 86_400_000_000;
    let start = Timestamp::from_micros((Timestamp::now().as_micros() / DAY_US - 3) * DAY_US);
    let options = GenOptions {
        events: 20_000,
        seed: 901,
        start,
        days: 2,
        attacks: Scenario::ALL.to_vec(),
        ..GenOptions::default()
    };
    let producer = EventProducer::new(&kafka).unwrap();
    let mut scenario_of = HashMap::new();
    let mut instance_of: HashMap<String, (String, u64)> = HashMap::new();
    for event in Generator::new(options) {
        let scenario = mcpsiem_gen::scenario_of(&event).to_string();
        if let Some(instance) = event.attributes.get(mcpsiem_gen::session::SCENARIO_INSTANCE_KEY) {
            let instance = serde_json::from_str::<u64>(instance.get()).unwrap();
            instance_of.insert(event.id.to_string(), (scenario.clone(), instance));
        }
        scenario_of.insert(event.id.to_string(), scenario);
        producer.send(mcpsiem_runtime::kafka::event_key(&event), event.to_json().as_bytes()).unwrap();
    }
    assert_eq!(producer.flush(Duration::from_secs(60)).unwrap().delivered as usize, scenario_of.len());

    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!(
            r#"
[detect]
rules = ["{}"]
metrics_addr = ""

[detect.lists]
approved_servers = ["filesystem", "github", "slack", "postgres", "fetch", "email", "jira"]
"#,
            rules.display()
        ),
    );
    let records = scenario_of.len().to_string();
    let ingest = fixture.command(&["ingest", "--stop-after-records", &records]).stdout(Stdio::null()).status().unwrap();
    assert!(ingest.success());
    let detect = fixture.command(&["detect", "--stop-when-idle", "5"]).stdout(Stdio::piped()).output().unwrap();
    assert!(detect.status.success(), "{}", String::from_utf8_lossy(&detect.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&detect.stdout).unwrap();
    assert_eq!(summary["records"], scenario_of.len());

    let live = alerts_on_topic(&kafka);
    assert_eq!(summary["alerts"], live.len(), "every alert raised reached the alerts topic");
    // An attack on a server and tool some alert of its rule is open for (a benign match, or
    // another instance) is that alert's repeat: its events are in the repeat records.
    let repeats: Vec<mcpsiem_event::AlertChange> = support::read_topic_json(
        &kafka,
        &kafka.alert_changes_topic,
        summary["repeat_records"].as_u64().unwrap_or(0) as usize,
        Duration::from_secs(1),
        Duration::from_secs(30),
    )
    .into_iter()
    .map(|v| mcpsiem_event::AlertChange::from_json(v.to_string().as_bytes()).unwrap())
    .collect();
    let mut with_repeats = live.clone();
    for alert in &mut with_repeats {
        for change in repeats.iter().filter(|c| c.alert_id == alert.id) {
            if let mcpsiem_event::ChangeAction::Repeat { event_ids, .. } = &change.action {
                alert.event_ids.extend(event_ids.iter().cloned());
            }
        }
    }
    let mut detected: BTreeSet<&str> = BTreeSet::new();
    let mut benign = 0;
    for alert in &with_repeats {
        let scenarios = support::attack_scenarios(alert, &scenario_of);
        benign += usize::from(scenarios.is_empty());
        detected.extend(scenarios);
    }
    eprintln!("{} alerts, {benign} on benign events only", live.len());
    let missed: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).filter(|s| !detected.contains(s)).collect();
    assert!(missed.is_empty(), "scenarios without a live alert: {missed:?}");
    every_instance_is_one_incident(&live, &instance_of, &["token_replay", "exfiltration_chain"]);

    // The ingester stores the alerts topic in the lake's `alerts` table, each alert once.
    let ingest = fixture.command(&["ingest", "--stop-when-idle", "3"]).stdout(Stdio::null()).status().unwrap();
    assert!(ingest.success());
    let mut stored = support::read_column(&fixture.lake(), Table::Alerts, "alert_id");
    stored.sort();
    let mut sent: Vec<String> = live.iter().map(|a| a.id.clone()).collect();
    sent.sort();
    assert_eq!(stored, sent, "the alerts table holds exactly the alerts of the topic");

    let to = Timestamp::now().to_string();
    let replay = fixture
        .command(&["detect", "--replay", "--from", &start.to_string(), "--to", &to])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let replayed: Vec<Alert> = replay
        .stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).expect("replay prints alerts as NDJSON"))
        .collect();
    let first_seen = first_seen_group_by(&rules);
    assert!(!first_seen.is_empty(), "the pack has first-seen rules");
    let (live_set, replay_set) = (fired(&live, &first_seen), fired(&replayed, &first_seen));
    let only_live: Vec<_> = live_set.difference(&replay_set).collect();
    let only_replay: Vec<_> = replay_set.difference(&live_set).collect();
    assert!(only_live.is_empty() && only_replay.is_empty(), "only live: {only_live:#?}\nonly replay: {only_replay:#?}");
}

/// Groups every alert into incidents with the query service's defaults and checks that the
/// alerts of each injected instance of `scenarios` are in one incident.
fn every_instance_is_one_incident(alerts: &[Alert], instance_of: &HashMap<String, (String, u64)>, scenarios: &[&str]) {
    use mcpsiem_query::triage::incidents::{AlertFacts, cluster};
    let config = mcpsiem_query::QueryConfig::default();
    let facts: Vec<AlertFacts> = alerts
        .iter()
        .map(|a| AlertFacts {
            alert_id: a.id.clone(),
            time: a.last_time,
            group: a.group.clone(),
            event_ids: a.event_ids.clone(),
        })
        .collect();
    let window = config.incident_window_minutes as i64 * 60_000_000;
    let mut incident_of = vec![0; alerts.len()];
    for (n, members) in cluster(&facts, &config.incident_entities, window).into_iter().enumerate() {
        for m in members {
            incident_of[m] = n;
        }
    }
    let mut incidents_of_instance: HashMap<(String, u64), BTreeSet<usize>> = HashMap::new();
    for (i, alert) in alerts.iter().enumerate() {
        let instances: BTreeSet<&(String, u64)> = alert.event_ids.iter().filter_map(|id| instance_of.get(id)).collect();
        for instance in instances.into_iter().filter(|(s, _)| scenarios.contains(&s.as_str())) {
            incidents_of_instance.entry(instance.clone()).or_default().insert(incident_of[i]);
        }
    }
    for scenario in scenarios {
        assert!(incidents_of_instance.keys().any(|(s, _)| s == scenario), "no alert of {scenario}");
    }
    for (instance, incidents) in &incidents_of_instance {
        let titles: Vec<String> = alerts
            .iter()
            .filter(|a| a.event_ids.iter().any(|id| instance_of.get(id) == Some(instance)))
            .map(|a| format!("{} {:?}", a.rule_title, a.group))
            .collect();
        assert_eq!(incidents.len(), 1, "{instance:?} is in {} incidents: {titles:#?}", incidents.len());
    }
}
