//! `collect http`: API-key auth, JSON, arrays, NDJSON and gzip, per-record results for a
//! partly bad post, 413 for an oversize body (also one that only inflates past the limit),
//! and every posted record in Kafka, the rejected one too (for the dead letters).

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support;

const KEY: &str = "mcpsiem_intake_test_key_0123456789";

fn event(id: &str, session: &str) -> String {
    json!({"event.id": id, "event.time": "2026-11-20T10:00:00Z", "event.kind": "message",
        "mcp.method.name": "tools/call", "mcp.session.id": session, "gen_ai.tool.name": "search"})
    .to_string()
}

/// POSTs `body` with curl; returns the status and the JSON answer.
fn post(url: &str, body: &[u8], headers: &[&str]) -> (u16, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body");
    std::fs::write(&path, body).unwrap();
    let mut command = Command::new("curl");
    command.args(["-s", "-w", "\n%{http_code}", "-X", "POST", "--data-binary"]).arg(format!("@{}", path.display()));
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (answer, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(answer).unwrap_or(Value::String(answer.to_string())))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn intake_checks_keys_and_records_and_ships_every_record() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("intake");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!(
            "[collect]\nspool_dir = \"spool\"\n[collect.intake]\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = 4096\n\
             [[collect.intake.api_keys]]\nname = \"gateway-1\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
            mcpsiem_runtime::auth::hash_key(KEY)
        ),
    );
    let mut intake = fixture.command(&["collect", "http"]).spawn().unwrap();
    support::wait_for_port(port, &mut intake);
    let url = format!("http://127.0.0.1:{port}/v1/events");
    let auth = format!("Authorization: Bearer {KEY}");

    let one = event("01JD0000000000000000000001", "a");
    let (status, _) = post(&url, one.as_bytes(), &[]);
    assert_eq!(status, 401);
    let (status, _) = post(&url, one.as_bytes(), &["Authorization: Bearer wrong"]);
    assert_eq!(status, 401);

    // NDJSON, gzip, one record without its kind.
    let bad = r#"{"event.id":"01JD0000000000000000000004","event.time":"2026-11-20T10:00:00Z"}"#;
    let ndjson = [
        one.clone(),
        event("01JD0000000000000000000002", "a"),
        bad.to_string(),
        event("01JD0000000000000000000003", "b"),
    ]
    .join("\n");
    let (status, reply) = post(&url, &gzip(ndjson.as_bytes()), &[&auth, "Content-Encoding: gzip"]);
    assert_eq!(status, 207, "{reply}");
    assert_eq!((reply["accepted"].as_u64(), reply["rejected"].as_u64()), (Some(3), Some(1)), "{reply}");
    assert_eq!(reply["results"][2]["status"], "rejected");
    assert_eq!(reply["results"][2]["reason"], "missing_field");
    assert!(reply["results"][2]["detail"].as_str().unwrap().contains("event.kind"), "{reply}");
    assert_eq!(reply["results"][3]["event_id"], "01JD0000000000000000000003");

    let array = format!("[{},{}]", event("01JD0000000000000000000005", "c"), event("01JD0000000000000000000006", "c"));
    let (status, reply) = post(&url, array.as_bytes(), &["X-API-Key: mcpsiem_intake_test_key_0123456789"]);
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(2)), "{reply}");

    let (status, _) = post(&url, "x".repeat(5000).as_bytes(), &[&auth]);
    assert_eq!(status, 413);
    // Small on the wire, over the limit once inflated.
    let bomb = gzip(" ".repeat(100_000).as_bytes());
    assert!(bomb.len() < 4096);
    let (status, reply) = post(&url, &bomb, &[&auth, "Content-Encoding: gzip"]);
    assert_eq!(status, 413, "{reply}");
    let (status, reply) = post(&url, b"[{\"a\":1}", &[&auth]);
    assert_eq!(status, 400, "{reply}");

    let metrics = Command::new("curl").arg("-s").arg(format!("http://127.0.0.1:{port}/metrics")).output().unwrap();
    let metrics = String::from_utf8(metrics.stdout).unwrap();
    assert!(metrics.contains("mcpsiem_intake_events_total"), "{metrics}");

    Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    assert!(intake.wait().unwrap().success());

    let records =
        support::read_topic_json(&kafka, &kafka.events_topic, 6, Duration::from_secs(3), Duration::from_secs(60));
    let mut ids: Vec<&str> = records.iter().map(|r| r["event.id"].as_str().unwrap()).collect();
    ids.sort();
    let expected: Vec<String> = (1..=6).map(|i| format!("01JD000000000000000000000{i}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    // The rejected record is shipped as posted, for the ingester's dead letters.
    let shipped_bad = records.iter().find(|r| r["event.id"] == "01JD0000000000000000000004").unwrap();
    assert_eq!(shipped_bad, &serde_json::from_str::<Value>(bad).unwrap());
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// What shippers send beyond the plain cases: concatenated gzip members, deflate, one
/// pretty-printed JSON object, an unknown encoding, an oversize record among good ones, an
/// id that overflows a ULID, a body of many tiny bad lines; and 413 answers in JSON.
#[test]
fn intake_reads_every_body_shippers_send_and_bounds_its_reply() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("intake-bodies");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let port = support::free_port();
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!(
            "[decoder]\nmax_record_bytes = 2000\n[collect]\nspool_dir = \"spool\"\n[collect.intake]\nlisten = \"127.0.0.1:{port}\"\n\
             max_body_bytes = 200000\nmax_records = 5000\n\
             [[collect.intake.api_keys]]\nname = \"gateway-1\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
            mcpsiem_runtime::auth::hash_key(KEY)
        ),
    );
    let mut intake = fixture.command(&["collect", "http"]).spawn().unwrap();
    support::wait_for_port(port, &mut intake);
    let url = format!("http://127.0.0.1:{port}/v1/events");
    let auth = format!("Authorization: Bearer {KEY}");

    // Two gzip members, one after the other: both are read.
    let mut members = gzip(event("01JD0000000000000000000011", "a").as_bytes());
    members.extend(gzip(format!("\n{}", event("01JD0000000000000000000012", "a")).as_bytes()));
    let (status, reply) = post(&url, &members, &[&auth, "Content-Encoding: gzip"]);
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(2)), "{reply}");

    let (status, reply) = post(
        &url,
        &deflate(event("01JD0000000000000000000013", "b").as_bytes()),
        &[&auth, "Content-Encoding: deflate"],
    );
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(1)), "{reply}");

    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<Value>(&event("01JD0000000000000000000014", "c")).unwrap(),
    )
    .unwrap();
    assert!(pretty.lines().count() > 3);
    let (status, reply) = post(&url, pretty.as_bytes(), &[&auth, "Content-Type: application/json"]);
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(1)), "{reply}");

    let (status, reply) = post(&url, b"{}", &[&auth, "Content-Encoding: br"]);
    assert_eq!(status, 415, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("gzip"), "{reply}");

    // An oversize record is refused on its own, as too_large; the records around it are taken.
    let big = json!({"event.id": "01JD0000000000000000000016", "event.time": "2026-11-20T10:00:00Z",
        "event.kind": "message", "pad": "x".repeat(5000)})
    .to_string();
    let overflow = event("81JD0000000000000000000017", "d");
    let body = [event("01JD0000000000000000000015", "d"), big, overflow].join("\n");
    let (status, reply) = post(&url, body.as_bytes(), &[&auth]);
    assert_eq!(status, 207, "{reply}");
    assert_eq!(reply["results"][1]["reason"], "too_large", "{reply}");
    assert_eq!(reply["results"][2]["reason"], "bad_value", "{reply}");
    assert_eq!(reply["results"][0]["status"], "accepted", "{reply}");

    // Many tiny bad lines: the reply lists the first thousand and counts the rest.
    let lines = vec!["x"; 4000].join("\n");
    let (status, reply) = post(&url, lines.as_bytes(), &[&auth]);
    assert_eq!(status, 422);
    assert_eq!(reply["rejected"].as_u64(), Some(4000));
    assert_eq!(reply["results"].as_array().unwrap().len(), 1000);
    assert_eq!(reply["results_omitted"].as_u64(), Some(3000));
    assert!(reply.to_string().len() < lines.len() * 60, "the reply grows with the records");
    // More records than collect.intake.max_records: 413, in JSON.
    let (status, reply) = post(&url, vec!["x"; 6000].join("\n").as_bytes(), &[&auth]);
    assert_eq!(status, 413);
    assert!(reply["error"].as_str().unwrap().contains("max_records"), "{reply}");
    // Over the body limit: 413 in JSON too.
    let (status, reply) = post(&url, "y".repeat(300_000).as_bytes(), &[&auth]);
    assert_eq!(status, 413);
    assert!(reply["error"].as_str().unwrap().contains("max_body_bytes"), "{reply}");

    Command::new("kill").args(["-TERM", &intake.id().to_string()]).status().unwrap();
    assert!(intake.wait().unwrap().success());
    let expected = 2 + 1 + 1 + 3 + 4000;
    let records = support::read_topic_json(
        &kafka,
        &kafka.events_topic,
        expected,
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), expected);
    // The oversize record travelled as its envelope: size, limit and its first bytes.
    let envelope = records.iter().find_map(|r| r.get("mcpsiem.too_large")).expect("the oversize record was shipped");
    assert!(envelope["size"].as_u64().unwrap() > 5000, "{envelope}");
    assert!(envelope["prefix"].as_str().unwrap().starts_with("{\"event.id\":\"01JD0000000000000000000016\""));
}
