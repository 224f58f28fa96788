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

/// `up` on `data`, the broker on `broker`; the query API on `query_port`, the intake on
/// `intake`. Run from `cwd`.
fn spawn_up(data: &Path, cwd: &Path, broker: u16, query_port: u16, intake: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .current_dir(cwd)
        .env_remove("MCPSIEM_CONFIG")
        .args(["--set", &format!("query.listen=127.0.0.1:{query_port}"), "--set", "query.pg_listen="])
        .args(["--set", &format!("collect.intake.listen=127.0.0.1:{intake}")])
        .args(["--set", "ingest.metrics_addr=", "--set", "detect.metrics_addr=", "--set", "ingest.roll_seconds=1"])
        .args(["up", "--data-dir", data.to_str().unwrap(), "--broker-port", &broker.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(cwd.join("up.log")).unwrap())
        .spawn()
        .unwrap()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}; up's log ends: {}", up_log_tail());
        std::thread::sleep(Duration::from_millis(250));
    }
}

thread_local! {
    static UP_LOG: std::cell::RefCell<Option<std::path::PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// The last lines `up` logged (the test's scratch directory keeps them).
fn up_log_tail() -> String {
    UP_LOG.with(|log| {
        let text = log.borrow().as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    })
}

fn broker_pid(data: &Path) -> Option<i32> {
    std::fs::read_to_string(data.join("broker/tansu.pid")).ok()?.trim().parse().ok()
}

/// POSTs one event to the intake; the status.
fn post_event(port: u16, key: &str, id: &str) -> u16 {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = serde_json::json!({"event.id": id, "event.time": mcpsiem_event::Timestamp::now().to_string(),
        "event.kind": "message", "mcp.session.id": "supervised"})
    .to_string();
    let _ = write!(
        stream,
        "POST /v1/events HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The embedded broker is supervised: killed under `up`, it is started again and events
/// flow on; a SIGKILLed `up` takes its broker with it (nothing holds the port), and the next
/// `up` on the same data starts cleanly — from a directory other than the checkout.
#[test]
fn up_restarts_a_dead_broker_and_a_killed_up_leaves_no_broker_behind() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let elsewhere = scratch.path();
    let ports: Vec<u16> = (0..3).map(|_| support::free_port()).collect();
    let (broker, query_port, intake) = (ports[0], ports[1], ports[2]);
    UP_LOG.with(|log| *log.borrow_mut() = Some(elsewhere.join("up.log")));
    let mut up = spawn_up(&data, elsewhere, broker, query_port, intake);
    wait_until(Duration::from_secs(90), "up is ready", || get(query_port, "/readyz").0 == 200);
    let key = std::fs::read_to_string(data.join("api-key")).unwrap().trim().to_string();
    let first = broker_pid(&data).expect("up records its broker's pid");

    // The broker dies under a running `up`: a new one serves the same port and data.
    Command::new("kill").args(["-KILL", &first.to_string()]).status().unwrap();
    wait_until(Duration::from_secs(60), "the broker was restarted", || {
        broker_pid(&data).is_some_and(|pid| pid != first) && std::net::TcpStream::connect(("127.0.0.1", broker)).is_ok()
    });
    assert!(up.try_wait().unwrap().is_none(), "up stopped when its broker died");
    let id = ulid::Ulid::new().to_string();
    wait_until(Duration::from_secs(60), "the intake takes an event", || post_event(intake, &key, &id) == 200);
    wait_until(Duration::from_secs(120), "the event is queryable after the restart", || {
        query(query_port, &key, &format!("SELECT count(*) AS n FROM events WHERE event_id = '{id}'"))
            .is_some_and(|a| a["rows"][0]["n"].as_u64() == Some(1))
    });

    // SIGKILL of `up`: the broker goes with it.
    let second = broker_pid(&data).unwrap();
    Command::new("kill").args(["-KILL", &up.id().to_string()]).status().unwrap();
    up.wait().unwrap();
    wait_until(Duration::from_secs(10), "the broker died with up", || {
        !Path::new(&format!("/proc/{second}")).exists()
            || std::fs::read_to_string(format!("/proc/{second}/stat")).is_ok_and(|s| s.contains(") Z "))
    });

    // The next `up` on the same data starts its own broker and stops cleanly.
    let mut up = spawn_up(&data, elsewhere, broker, query_port, intake);
    wait_until(Duration::from_secs(90), "the second up is ready", || get(query_port, "/readyz").0 == 200);
    let third = broker_pid(&data).unwrap();
    assert_ne!(third, second);
    Command::new("kill").args(["-INT", &up.id().to_string()]).status().unwrap();
    let status = up.wait().unwrap();
    assert!(status.success(), "the second up did not stop cleanly: {status}");
    assert!(processes_with(&format!("127.0.0.1:{broker}")).is_empty(), "a broker was left behind");
}
