//! The quickstart path: `mcpsiem up --demo` on a clean data directory starts every stage
//! and an embedded broker, an alert for an injected attack is in the query API within 60 s,
//! every stage answers /readyz, and Ctrl-C stops everything with no process left behind.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, raw)
}

fn query(port: u16, key: &str, sql: &str) -> Option<serde_json::Value> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = serde_json::json!({ "sql": sql }).to_string();
    write!(
        stream,
        "POST /api/v1/query HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Processes whose command line mentions `needle` (other than this test).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}

#[test]
fn up_demo_alerts_within_a_minute_and_ctrl_c_stops_everything() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let ports: Vec<u16> = (0..6).map(|_| support::free_port()).collect();
    let (broker, query_port, intake, ingest_m, detect_m) = (ports[0], ports[1], ports[2], ports[3], ports[4]);
    let started = Instant::now();
    let mut up = Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MCPSIEM_CONFIG")
        .args(["--set", &format!("query.listen=127.0.0.1:{query_port}"), "--set", "query.pg_listen="])
        .args(["--set", &format!("collect.intake.listen=127.0.0.1:{intake}")])
        .args(["--set", &format!("ingest.metrics_addr=127.0.0.1:{ingest_m}")])
        .args(["--set", &format!("detect.metrics_addr=127.0.0.1:{detect_m}")])
        .args(["up", "--demo", "--data-dir", data.to_str().unwrap(), "--broker-port", &broker.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = up.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stdout).read_to_string(&mut text);
        text
    });
    let stderr = up.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });

    // An alert in the query API within 60 s of the command starting.
    let key_file = data.join("api-key");
    let mut first_alert = None;
    while started.elapsed() < Duration::from_secs(60) {
        assert!(up.try_wait().unwrap().is_none(), "mcpsiem up exited early: {}", logged.join().unwrap());
        if let Ok(key) = std::fs::read_to_string(&key_file)
            && let Some(answer) = query(
                query_port,
                key.trim(),
                "SELECT rule_id, rule_title, event_count FROM alerts ORDER BY alert_time LIMIT 1",
            )
            && let Some(row) = answer["rows"].as_array().and_then(|rows| rows.first())
        {
            first_alert = Some((row.clone(), started.elapsed()));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (alert, after) = first_alert.expect("an alert reached the query API within 60 s");
    eprintln!("first alert after {after:?}: {alert}");
    let key = std::fs::read_to_string(&key_file).unwrap();

    // Every stage is ready, and the query service's /metrics shows every stage's metrics.
    for port in [query_port, intake, ingest_m, detect_m] {
        let (status, body) = get(port, "/readyz");
        assert_eq!(status, 200, "port {port}: {body}");
        assert_eq!(get(port, "/healthz").0, 200);
    }
    let (_, metrics) = get(query_port, "/metrics");
    for name in ["mcpsiem_ingest_", "mcpsiem_detect_events_total", "mcpsiem_query_"] {
        assert!(metrics.contains(name), "{name} is missing from /metrics");
    }
    // The injected attacks alert: several distinct rules within the demo's first minute.
    let deadline = Instant::now() + Duration::from_secs(40);
    let rules = loop {
        let answer = query(query_port, key.trim(), "SELECT count(DISTINCT rule_id) AS n FROM alerts").unwrap();
        let n = answer["rows"][0]["n"].as_u64().unwrap();
        if n >= 5 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(rules >= 5, "only {rules} rules fired on the demo's attacks");

    // Ctrl-C: everything stops, the broker too.
    let pid = up.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let stop_deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < stop_deadline, "mcpsiem up did not stop within 45 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, log) = (printed.join().unwrap(), logged.join().unwrap());
    assert!(status.success(), "exit {status}: {log}");
    assert!(out.contains("mcpsiem is up") && out.contains("ALERT"), "{out}");
    assert!(log.contains("stopped cleanly"), "{log}");
    let left = processes_with(&format!("127.0.0.1:{broker}"));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(processes_with(data.to_str().unwrap()).is_empty());

    // What `up` wrote verifies against its ledger.
    let lake = data.join("lake");
    let verify = Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .args(["--set", &format!("lake.location={}", lake.display()), "lake", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(Path::new(&data.join("keys/export.key")).exists());
}
