//! `collect tail` through both rotation styles and a restart: an agentgateway log rotated
//! by rename-and-create (twice, once while the tailer is stopped, with lines still written
//! to the renamed file), and a Docker MCP gateway log rotated by copytruncate with new lines
//! written at once. Every line written is in Kafka exactly once.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support;

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.sync_all().unwrap();
}

fn gateway_lines(range: std::ops::RangeInclusive<u32>) -> impl Iterator<Item = String> {
    range.map(|seq| {
        format!(
            r#"{{"level":"info","time":"2026-11-20T10:{:02}:{:02}.{:03}Z","scope":"request","src.addr":"10.0.0.{}:40000","http.method":"POST","http.status":200,"mcp.method.name":"tools/call","gen_ai.tool.name":"search","mcp.session.id":"s-{}","jwt.sub":"user{}","duration":"3ms","test.seq":{seq}}}"#,
            seq / 60 % 60,
            seq % 60,
            seq % 1000,
            seq % 200,
            seq % 7,
            seq % 13
        )
    })
}

fn docker_lines(range: std::ops::RangeInclusive<u32>) -> impl Iterator<Item = String> {
    range.map(|seq| {
        format!(
            r#"{{"timestamp":"2026-11-20T11:00:00.{:03}Z","actor_id":"dev{}","server_name":"github","tool_name":"list_issues","client_name":"cursor","session_id":"d-{}","result":"success","duration_ms":4,"test.seq":{seq}}}"#,
            seq % 1000,
            seq % 5,
            seq % 3
        )
    })
}

/// Waits until the tailer saved a read position at the end of `path`'s current file.
fn wait_read(state_dir: &Path, path: &Path, tailer: &mut Child) {
    let name = hex::encode(&Sha256::digest(path.as_os_str().as_encoded_bytes())[..8]);
    let state = state_dir.join(format!("{name}.json"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let len = std::fs::metadata(path).unwrap().len();
        let saved: Option<serde_json::Value> = std::fs::read(&state).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if saved.as_ref().and_then(|s| s["offset"].as_u64()) == Some(len) {
            return;
        }
        assert!(tailer.try_wait().unwrap().is_none(), "the tailer exited");
        assert!(
            Instant::now() < deadline,
            "{} not read to its end ({len} bytes) within 60 s: {saved:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the tailer with SIGTERM; returns its summary.
fn stop(tailer: Child) -> serde_json::Value {
    std::process::Command::new("kill").args(["-TERM", &tailer.id().to_string()]).status().unwrap();
    let output = tailer.wait_with_output().unwrap();
    assert!(output.status.success(), "the tailer failed: {}", output.status);
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

#[test]
fn tail_follows_both_rotation_styles_and_a_restart_without_loss_or_duplicates() {
    let broker = support::TestBroker::start();
    let kafka = broker.kafka_config("tail");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, 3));
    let fixture = support::LakeFixture::new(
        &kafka,
        "[collect]\nid = \"tail-test\"\nspool_dir = \"spool\"\n[collect.tail]\nstate_dir = \"tail-state\"\npoll_ms = 20\n",
    );
    let state_dir = fixture.dir.path().join("tail-state");
    let logs = fixture.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let gw: PathBuf = logs.join("agentgateway.log");
    let docker: PathBuf = logs.join("docker-mcp.log");
    let start = || {
        fixture
            .command(&["collect", "tail", gw.to_str().unwrap(), docker.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };

    append(&gw, gateway_lines(1..=300));
    append(&docker, docker_lines(1..=300));
    let mut tailer = start();
    wait_read(&state_dir, &gw, &mut tailer);
    wait_read(&state_dir, &docker, &mut tailer);

    // Rename and create, with the gateway still writing to the renamed file before it
    // reopens its log.
    std::fs::rename(&gw, logs.join("agentgateway.log.1")).unwrap();
    append(&logs.join("agentgateway.log.1"), gateway_lines(301..=320));
    append(&gw, gateway_lines(321..=500));
    // copytruncate, with new lines at once (the file may grow past the old position before
    // the tailer looks).
    std::fs::copy(&docker, logs.join("docker-mcp.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&docker).unwrap().set_len(0).unwrap();
    append(&docker, docker_lines(301..=500));
    wait_read(&state_dir, &gw, &mut tailer);
    wait_read(&state_dir, &docker, &mut tailer);
    let summary = stop(tailer);
    assert_eq!((summary["rotations"].as_u64(), summary["truncations"].as_u64()), (Some(1), Some(1)), "{summary}");

    // While the tailer is stopped: more lines, and another rename rotation.
    append(&gw, gateway_lines(501..=600));
    std::fs::rename(&gw, logs.join("agentgateway.log.2")).unwrap();
    append(&gw, gateway_lines(601..=700));
    append(&docker, docker_lines(501..=600));
    let mut tailer = start();
    wait_read(&state_dir, &gw, &mut tailer);
    wait_read(&state_dir, &docker, &mut tailer);
    let summary = stop(tailer);
    // Lines 501-700 of the gateway log and 501-600 of the Docker one, nothing read again.
    assert_eq!(summary["lines"], 300, "{summary}");

    let events =
        support::read_topic_json(&kafka, &kafka.events_topic, 1300, Duration::from_secs(3), Duration::from_secs(90));
    let mut seen: HashMap<(String, u64), u32> = HashMap::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    for e in &events {
        assert_eq!(e["collector.id"], "tail-test");
        let format = e["collector.format"].as_str().unwrap().to_string();
        let seq = e["test.seq"].as_u64().unwrap_or_else(|| panic!("no test.seq: {e}"));
        *seen.entry((format, seq)).or_default() += 1;
        *ids.entry(e["event.id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let missing: Vec<_> = (1..=700u64)
        .map(|s| ("agentgateway".to_string(), s))
        .chain((1..=600u64).map(|s| ("docker_mcp_gateway".to_string(), s)))
        .filter(|k| !seen.contains_key(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lines never reached Kafka, such as {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{} lines were sent more than once, such as {:?}", twice.len(), twice.first());
    assert_eq!(events.len(), 1300);
    assert_eq!(ids.len(), 1300, "event ids are not unique");

    let call = events.iter().find(|e| e["test.seq"] == 42 && e["collector.format"] == "agentgateway").unwrap();
    assert_eq!(call["mcp.method.name"], "tools/call");
    assert_eq!(call["client.address"], "10.0.0.42");
    assert_eq!(call["enduser.id"], "user3");
    assert_eq!(call["event.duration_us"], 3000);
    let docker_call =
        events.iter().find(|e| e["test.seq"] == 42 && e["collector.format"] == "docker_mcp_gateway").unwrap();
    assert_eq!(docker_call["mcp.server.name"], "github");
    assert_eq!(docker_call["enduser.id"], "dev2");
    assert_eq!(docker_call["mcp.tool.result.is_error"], false);
}
