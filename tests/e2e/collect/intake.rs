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
