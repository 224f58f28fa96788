//! Acknowledged means durable: every event the intake answered 200 for is in the lake
//! exactly once, although the broker was down while it was posted and the intake was
//! SIGKILLed after answering (before anything reached Kafka), in the middle of posting, and
//! just after Kafka took spooled records (before the spool's cursor moved: they are sent
//! again, and the ingester drops the second copies). A full spool refuses with 503 and
//! Retry-After before taking anything.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;

const KEY: &str = "durable-intake-key";

/// A batch of `n` NDJSON events with ids from `first` on; their ids.
fn batch(first: u64, n: u64) -> (String, Vec<String>) {
    let ids: Vec<String> =
        (first..first + n).map(|i| ulid::Ulid::from_parts(1_800_000_000_000 + i, 3).to_string()).collect();
    let body = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"event.id":"{id}","event.time":"{}","event.kind":"message","mcp.session.id":"s{}","pad":"{}"}}"#,
                mcpsiem_event::Timestamp::now(),
                i % 7,
                "p".repeat(200)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    (body, ids)
}

/// POSTs `body`; the status (0 when the connection failed) and the Retry-After header.
fn post(port: u16, body: &str) -> (u16, Option<String>) {
    let output = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@-"])
        .args(["--max-time", "20", "-H", &format!("Authorization: Bearer {KEY}")])
        .arg(format!("http://127.0.0.1:{port}/v1/events"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let status = text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    let retry_after =
        text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after:").map(|v| v.trim().to_string()));
    (status, retry_after)
}

fn sigkill(child: &mut Child) {
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "the intake should die of the signal: {status}");
}

#[test]
fn every_event_answered_200_is_in_the_lake_once_across_sigkills_and_an_outage() {
    let mut broker = support::TestBroker::start();
    let kafka = broker.kafka_config("durable-intake");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let fixture = support::intake_fixture(&kafka, port, KEY, "");
    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut next = 0u64;
    let mut post_batch = |n: u64| -> u16 {
        let (body, ids) = batch(next, n);
        next += n;
        let (status, _) = post(port, &body);
        if status == 200 {
            acknowledged.lock().unwrap().extend(ids);
        }
        status
    };

    // 1. Kafka is away: answered, then killed before anything could reach Kafka.
    broker.broker.stop();
    let mut intake = support::start_intake(&fixture, port);
    for _ in 0..10 {
        assert_eq!(post_batch(100), 200, "the intake must take events while Kafka is away");
    }
    sigkill(&mut intake);

    // 2. Killed in the middle of posting, from another thread.
    let mut intake = support::start_intake(&fixture, port);
    let posting = Arc::new(AtomicBool::new(true));
    let poster = {
        let posting = posting.clone();
        let acknowledged = acknowledged.clone();
        let mut first = 1_000_000u64;
        std::thread::spawn(move || {
            let mut refused = 0;
            while posting.load(Ordering::Relaxed) {
                let (body, ids) = batch(first, 50);
                first += 50;
                match post(port, &body).0 {
                    200 => acknowledged.lock().unwrap().extend(ids),
                    _ => refused += 1,
                }
            }
            refused
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    sigkill(&mut intake);
    posting.store(false, Ordering::Relaxed);
    poster.join().unwrap();

    // 3. Kafka is back: the next intake ships the spool; killed just after Kafka took some
    //    of it, before the cursor moved past them.
    broker.broker.restart().unwrap();
    let mut intake = fixture
        .command(&["collect", "http"])
        .env("FAILPOINTS", support::abort_at("collect::spool_before_cursor:1"))
        .spawn()
        .unwrap();
    support::wait_for_abort(&mut intake, Duration::from_secs(120), "the spool's cursor moved");

    // 4. A last intake drains what is left and takes more; the ingester writes the lake.
    let mut intake = support::start_intake(&fixture, port);
    for _ in 0..5 {
        assert_eq!(post_batch(100), 200);
    }
    let mut ingest = fixture.command(&["ingest"]).spawn().unwrap();
    let expected = acknowledged.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    let ids = loop {
        let ids = fixture.event_ids();
        let found: HashSet<&String> = ids.iter().collect();
        if expected.iter().all(|id| found.contains(id)) || Instant::now() > deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // Long enough for a second copy to be written, were it not dropped.
    std::thread::sleep(Duration::from_secs(4));
    let ids = if ids.len() == fixture.event_ids().len() { ids } else { fixture.event_ids() };
    Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    Command::new("kill").args(["-TERM", &ingest.id().to_string()]).status().unwrap();
    intake.wait().unwrap();
    ingest.wait().unwrap();

    let mut counts: HashMap<&String, u32> = HashMap::new();
    for id in &ids {
        *counts.entry(id).or_default() += 1;
    }
    let missing = expected.iter().filter(|id| !counts.contains_key(id)).count();
    let twice = counts.values().filter(|n| **n > 1).count();
    eprintln!("acknowledged {}, in the lake {} ({} distinct)", expected.len(), ids.len(), counts.len());
    assert!(expected.len() >= 1_500, "only {} events were acknowledged", expected.len());
    assert_eq!(missing, 0, "{missing} of {} acknowledged events are not in the lake", expected.len());
    assert_eq!(twice, 0, "{twice} events are in the lake twice");
}

#[test]
fn a_full_spool_refuses_the_whole_batch_with_503_before_taking_any() {
    let mut broker = support::TestBroker::start();
    let kafka = broker.kafka_config("full-spool");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let fixture = support::intake_fixture(&kafka, port, KEY, "spool_max_bytes = 200000");
    broker.broker.stop();
    let mut intake = support::start_intake(&fixture, port);
    let mut next = 0;
    let mut taken = HashSet::new();
    let mut refusal = None;
    for _ in 0..40 {
        let (body, ids) = batch(next, 100);
        next += 100;
        match post(port, &body) {
            (200, _) => taken.extend(ids),
            (503, retry_after) => {
                refusal = Some(retry_after);
                break;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(refusal, Some(Some("30".to_string())), "a full spool answers 503 with Retry-After");
    assert!(!taken.is_empty());
    // The refused batch left nothing behind: with Kafka back, exactly the taken events arrive.
    broker.broker.restart().unwrap();
    let records = support::read_topic_json(
        &kafka,
        &kafka.events_topic,
        taken.len(),
        Duration::from_secs(5),
        Duration::from_secs(120),
    );
    Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    intake.wait().unwrap();
    let arrived: HashSet<String> = records.iter().map(|r| r["event.id"].as_str().unwrap().to_string()).collect();
    assert_eq!(arrived, taken, "exactly the acknowledged events reach Kafka");
}
