//! Scaling out on a real broker: two ingesters in one consumer group, two detectors in one
//! consumer group (`detect.scope = "keyed"`) and the one detector for the global rules. The
//! lake holds every event exactly once; the alerts are those one detector replaying the lake
//! raises, each once; every injected scenario alerts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mcpsiem_detect::Alert;
use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_runtime::producer::EventProducer;

use crate::support;

type Fired = (String, Vec<(String, String)>);

fn fired(alert: &Alert) -> Fired {
    (alert.rule_title.clone(), alert.group.clone().into_iter().collect())
}

fn spawn(fixture: &support::LakeFixture, args: &[&str], log: &str) -> Child {
    let log = std::fs::File::create(fixture.dir.path().join(log)).unwrap();
    fixture.command(args).stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

fn terminate(child: &mut Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "a stage did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_ingesters_and_two_detectors_keep_every_event_and_alert_exactly_once() {
    let broker = support::TestBroker::start();
    let mut kafka = broker.kafka_config("scale");
    kafka.partitions = 4;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for topic in [&kafka.events_topic, &kafka.alerts_topic] {
        runtime.block_on(support::create_topic(&kafka, topic, kafka.partitions));
    }
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
    let mut stages = vec![
        spawn(&fixture, &["ingest"], "ingest-1.log"),
        spawn(&fixture, &["ingest"], "ingest-2.log"),
        spawn(
            &fixture,
            &["--set", "detect.scope=keyed", "--set", "detect.state_path=keyed-1.json", "detect"],
            "detect-1.log",
        ),
        spawn(
            &fixture,
            &["--set", "detect.scope=keyed", "--set", "detect.state_path=keyed-2.json", "detect"],
            "detect-2.log",
        ),
        spawn(
            &fixture,
            &[
                "--set",
                "detect.scope=global",
                "--set",
                "detect.group_id=mcpsiem-detect-global",
                "--set",
                "detect.state_path=global.json",
                "detect",
            ],
            "detect-global.log",
        ),
    ];
    // Both members of each group have joined before any event: the groups are settled, as
    // they are in a running deployment.
    let settle = Instant::now();
    for log in ["detect-1.log", "detect-2.log", "ingest-1.log", "ingest-2.log"] {
        let path = fixture.dir.path().join(log);
        while !std::fs::read_to_string(&path).unwrap_or_default().contains("assigned") {
            assert!(settle.elapsed() < Duration::from_secs(60), "{log} shows no partition assignment");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    std::thread::sleep(Duration::from_secs(8));

    const DAY_US: i64 = 86_400_000_000;
    let start = Timestamp::from_micros((Timestamp::now().as_micros() / DAY_US - 3) * DAY_US);
    let options = GenOptions {
        events: 20_000,
        seed: 4242,
        start,
        days: 2,
        attacks: Scenario::ALL.to_vec(),
        ..GenOptions::default()
    };
    let producer = EventProducer::new(&kafka).unwrap();
    let mut scenario_of = HashMap::new();
    for event in Generator::new(options) {
        scenario_of.insert(event.id.to_string(), mcpsiem_gen::scenario_of(&event).to_string());
        producer.send(mcpsiem_runtime::kafka::event_key(&event), event.to_json().as_bytes()).unwrap();
    }
    assert_eq!(producer.flush(Duration::from_secs(60)).unwrap().delivered as usize, scenario_of.len());

    // The lake fills; then the alerts stop coming.
    let deadline = Instant::now() + Duration::from_secs(180);
    while fixture.event_ids().len() < scenario_of.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} events reached the lake",
            fixture.event_ids().len(),
            scenario_of.len()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // Every detector has processed every event (on a loaded machine the global one lags the
    // lake by more than the alerts' idle time, and its last alerts were not read).
    // Its own budget: a debug build under the whole suite's load is several times slower.
    let caught_up_by = Instant::now() + Duration::from_secs(300);
    for (group, log) in [("mcpsiem-detect", "detect-1.log"), ("mcpsiem-detect-global", "detect-global.log")] {
        while !support::group_caught_up(&kafka, group, &kafka.events_topic, kafka.partitions) {
            if Instant::now() > caught_up_by {
                let text = std::fs::read_to_string(fixture.dir.path().join(log)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" alert ")).collect();
                panic!(
                    "the detector group {group} did not process every event within 300 s; {log} ends:\n{}",
                    lines[lines.len().saturating_sub(25)..].join("\n")
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let live: Vec<Alert> =
        support::read_topic_json(&kafka, &kafka.alerts_topic, 1, Duration::from_secs(8), Duration::from_secs(60))
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
    for stage in &mut stages {
        terminate(stage);
    }

    // Both ingesters and both keyed detectors did work.
    let logs: BTreeMap<&str, String> = ["ingest-1.log", "ingest-2.log", "detect-1.log", "detect-2.log"]
        .into_iter()
        .map(|l| (l, std::fs::read_to_string(fixture.dir.path().join(l)).unwrap()))
        .collect();
    for (name, log) in &logs {
        assert!(log.contains("assigned"), "{name} owned no partition");
    }

    // Every event exactly once.
    let expected: HashSet<String> = scenario_of.keys().cloned().collect();
    let (doubled, missing) = support::id_differences(&expected, &fixture.event_ids());
    assert!(doubled.is_empty() && missing.is_empty(), "{} doubled, {} missing", doubled.len(), missing.len());

    // Every alert once: no two instances raised the same alert.
    let mut seen: HashMap<(Fired, Timestamp, Timestamp), usize> = HashMap::new();
    for alert in &live {
        *seen.entry((fired(alert), alert.first_time, alert.last_time)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k.0.clone()).collect();
    assert!(twice.is_empty(), "alerts raised more than once: {twice:#?}");

    // The same alerts as one detector replaying the lake with every rule.
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
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let live_set: BTreeSet<Fired> = live.iter().map(fired).collect();
    let replay_set: BTreeSet<Fired> = replayed.iter().map(fired).collect();
    let only_live: Vec<_> = live_set.difference(&replay_set).collect();
    let only_replay: Vec<_> = replay_set.difference(&live_set).collect();
    assert!(only_live.is_empty() && only_replay.is_empty(), "only live: {only_live:#?}\nonly replay: {only_replay:#?}");

    // Every injected scenario alerted.
    let mut detected: BTreeSet<&str> = BTreeSet::new();
    for alert in &live {
        detected.extend(support::attack_scenarios(alert, &scenario_of));
    }
    let missed: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).filter(|s| !detected.contains(s)).collect();
    assert!(missed.is_empty(), "scenarios without an alert: {missed:?}");
    eprintln!("{} events, {} alerts, {} scenarios detected", scenario_of.len(), live.len(), detected.len());
    drop(broker);
}
