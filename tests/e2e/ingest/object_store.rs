//! The lake on an object store, proven on a real S3-protocol server (moto, started here):
//! generated events go through a real broker into `s3://…` while ingesters abort at each
//! step of the commit, then a second ingester joins the group mid-run, the first stops and
//! a third joins (rebalances); compaction aborts between its moves and its deletes and runs again;
//! `lake verify`, SQL, a signed evidence export and a replay of the rules run on the same
//! lake. Every event is in the lake exactly once and the ledger verifies.

use crate::support;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mcpsiem_bench::s3_server::S3Server;
use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_runtime::producer::EventProducer;

/// Produces up to `events` generated events from `start` (a day of traffic, every attack),
/// leaving out those in the future;
/// returns their ids.
fn produce(kafka: &mcpsiem_runtime::kafka::KafkaConfig, events: u64, seed: u64, start: Timestamp) -> HashSet<String> {
    let options = GenOptions { events, seed, start, days: 1, attacks: Scenario::ALL.to_vec(), ..GenOptions::default() };
    let producer = EventProducer::new(kafka).unwrap();
    let mut ids = HashSet::new();
    for event in Generator::new(options) {
        if event.time > Timestamp::now() {
            continue; // the generator's sessions run past its period; the ingester refuses the future
        }
        ids.insert(event.id.to_string());
        producer.send(mcpsiem_runtime::kafka::event_key(&event), event.to_json().as_bytes()).unwrap();
    }
    assert_eq!(producer.flush(Duration::from_secs(60)).unwrap().delivered as usize, ids.len());
    ids
}

fn assert_exactly_once(fixture: &support::LakeFixture, expected: &HashSet<String>, when: &str) {
    let found = fixture.event_ids();
    let (doubled, missing) = support::id_differences(expected, &found);
    assert!(
        doubled.is_empty() && missing.is_empty() && found.len() == expected.len(),
        "{when}: {} events in the lake, {} expected; twice: {:?}; missing: {:?}",
        found.len(),
        expected.len(),
        &doubled[..doubled.len().min(5)],
        &missing[..missing.len().min(5)]
    );
}

/// Waits until the lake holds `events` events; names the ingesters' last log lines if not.
fn wait_for_events(fixture: &support::LakeFixture, events: usize, log: &std::path::Path) {
    let started = Instant::now();
    while fixture.event_ids().len() < events {
        if started.elapsed() > Duration::from_secs(180) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let mut reasons = support::read_column(&fixture.lake(), mcpsiem_lake::Table::DeadLetters, "reason");
            reasons.sort();
            reasons.dedup();
            panic!(
                "the ingesters did not catch up ({} of {events} events; dead letters: {reasons:?}); their log ends:\n{}",
                fixture.event_ids().len(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Stops an ingester as a service manager does (SIGTERM), and checks it stopped cleanly.
fn stop(child: std::process::Child) {
    let sent = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let exit = child.wait_with_output().unwrap();
    assert!(exit.status.success(), "the ingester stops cleanly: {}", exit.status);
}

#[test]
fn the_lake_on_s3_keeps_every_event_once_through_crashes_a_rebalance_and_compaction() {
    let broker = support::TestBroker::start();
    let s3 = S3Server::start("mcpsiem-lake").unwrap_or_else(|e| panic!("{e:#}"));
    let mut kafka = broker.kafka_config("s3");
    kafka.partitions = 2;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, kafka.partitions));
    const DAY_US: i64 = 86_400_000_000;
    // Two days ago, whole hours: the hours are closed, so compaction has work.
    let start = Timestamp::from_micros((Timestamp::now().as_micros() / DAY_US - 2) * DAY_US);
    let mut expected = HashSet::new();
    let keys = tempfile::tempdir().unwrap();
    let evidence = format!("[evidence]\nsigning_key = \"{}\"\n", keys.path().join("export.key").display());
    let fixture = support::LakeFixture::on_s3(&kafka, &s3, "lake", &evidence);

    // An ingester aborts at each step of a commit, each with new events to write; the next
    // one finds the lake as it was.
    let points = ["ingest::mid_stage:1", "ingest::before_commit:1", "ingest::after_commit:1", "ingest::after_ledger:1"];
    for (seed, point) in points.into_iter().enumerate() {
        expected.extend(produce(&kafka, 1_000, 11 + seed as u64, start));
        let mut child = fixture
            .command(&["ingest"])
            .env("FAILPOINTS", support::abort_at(point))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        support::wait_for_abort(&mut child, Duration::from_secs(120), &format!("an abort at {point}"));
    }
    // Until everything is in: the aborted members' sessions linger in Tansu, and the group
    // watch rejoins (ten seconds) to take their partitions back; an idle stop could come first.
    let log = fixture.dir.path().join("ingesters.log");
    let spawn = || {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        fixture.command(&["ingest"]).stdout(Stdio::null()).stderr(log).spawn().unwrap()
    };
    let clean = spawn();
    wait_for_events(&fixture, expected.len(), &log);
    stop(clean);
    assert_exactly_once(&fixture, &expected, "after the aborted commits");

    // Two ingesters in one group: the second joins while the first writes (a rebalance in
    // the middle of the run), then the first stops and a third joins (more rebalances). A
    // stop, not a kill: Tansu does not expire a killed member's session, so its partitions
    // would wait for the next member to join (the aborts above cover kills).
    expected.extend(produce(&kafka, 4_000, 21, start));
    let seen_before = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
    // Assignments of the events topic (each ingester also consumes the alert topics).
    let assigned = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .skip(seen_before)
            .filter(|l| l.contains("partition assigned") && l.contains(&kafka.events_topic))
            .count()
    };
    let first = spawn();
    let started = Instant::now();
    while assigned() < 2 {
        assert!(started.elapsed() < Duration::from_secs(90), "the first ingester never got its partitions");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = spawn();
    while assigned() < 4 {
        assert!(started.elapsed() < Duration::from_secs(90), "the second ingester never got a partition");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop(first);
    // Tansu does not always hand a leaver's partitions to the members that stay until the
    // next join (seen under load): a third ingester joins, as a replacement would.
    let third = spawn();
    expected.extend(produce(&kafka, 2_000, 22, start));
    wait_for_events(&fixture, expected.len(), &log);
    for mut child in [second, third] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_exactly_once(&fixture, &expected, "after two ingesters and a rebalance");

    // Compaction aborted between its moves and its deletes, then run again.
    let mut child = fixture
        .command(&["compact", "--settle-seconds", "0"])
        .env("FAILPOINTS", support::abort_at("compact::before_deletes:1"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_abort(&mut child, Duration::from_secs(120), "an abort before compaction's deletes");
    assert_exactly_once(&fixture, &expected, "with a compaction stopped before its deletes");
    let compact = fixture.command(&["compact", "--settle-seconds", "0"]).output().unwrap();
    assert!(compact.status.success(), "{}", String::from_utf8_lossy(&compact.stderr));
    assert_exactly_once(&fixture, &expected, "after compaction");
    let files = runtime.block_on(mcpsiem_lake::Snapshot::load(&fixture.lake(), mcpsiem_lake::Table::Events)).unwrap();
    // Closed hours are merged (the current one may still be written to).
    let now = Timestamp::now();
    let closed: Vec<i64> =
        files.files.iter().filter_map(|f| f.hour).filter(|h| h.end() <= now).map(|h| h.epoch_hour).collect();
    let hours: HashSet<i64> = closed.iter().copied().collect();
    assert!(closed.len() <= hours.len() * 2, "{} files for {} closed hours", closed.len(), hours.len());

    // The ledger verifies; SQL and a replay of the rules read the same lake.
    let verify = fixture.command(&["lake", "verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let sql = "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events";
    let query = fixture.command(&["query", sql, "--format", "json"]).output().unwrap();
    assert!(query.status.success(), "{}", String::from_utf8_lossy(&query.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&query.stdout).unwrap();
    let n = expected.len() as u64;
    assert_eq!((rows[0]["n"].as_u64(), rows[0]["d"].as_u64()), (Some(n), Some(n)), "{rows}");
    // An evidence bundle exported from the S3 lake verifies, ledger proofs included.
    let generated = fixture.command(&["keys", "generate", "--dir", keys.path().to_str().unwrap()]).output().unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let bundle = keys.path().join("bundle.zip");
    let sql = "SELECT * FROM events WHERE gen_ai_tool_name IS NOT NULL LIMIT 200";
    let exported = fixture.command(&["export", "--sql", sql, "--out", bundle.to_str().unwrap()]).output().unwrap();
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let public = keys.path().join("export.pub");
    let verified = fixture
        .command(&["export", "verify", bundle.to_str().unwrap(), "--key", public.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success() && text.contains("bundle verified"), "{text}");

    let to = Timestamp::now().to_string();
    let replay = fixture.command(&["detect", "--replay", "--from", &start.to_string(), "--to", &to]).output().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let alerts = String::from_utf8_lossy(&replay.stdout).lines().count();
    assert!(alerts > 0, "the replay over the S3 lake raised no alert");
}
