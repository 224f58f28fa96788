//! The query service over a real lake: roles, read-only SQL, limits, helpful errors,
//! streaming formats, the audit log, and 50 concurrent queries.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::support::query_lake::{ADMIN, ANALYST, EVENTS, config, lake, serve};
use mcpsiem_query::QueryConfig;

/// A minimal HTTP/1.1 exchange: status and body.
fn request(addr: SocketAddr, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

fn query(addr: SocketAddr, key: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let (status, bytes) = request(addr, "POST", "/api/v1/query", Some(key), &body.to_string());
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

#[test]
fn roles_read_only_sql_limits_errors_formats_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(lake(dir.path()), config());

    // Authentication.
    let (status, _) = request(addr, "POST", "/api/v1/query", None, r#"{"sql":"SELECT 1"}"#);
    assert_eq!(status, 401);
    let (status, body) = query(addr, "not-a-key", serde_json::json!({"sql": "SELECT 1"}));
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));

    // An analyst queries events; the time range prunes and filters.
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT count(*) AS n FROM events"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"], EVENTS);
    let (status, body) = query(
        addr,
        ANALYST,
        serde_json::json!({"sql": "SELECT count(*) AS n, min(event_time) AS first FROM events", "start": "2026-11-02T06:00:00Z", "end": "2026-11-02T07:00:00Z"}),
    );
    assert_eq!(status, 200, "{body}");
    let in_hour = body["rows"][0]["n"].as_u64().unwrap();
    assert!(in_hour > 0 && in_hour < EVENTS, "{body}");
    assert!(body["rows"][0]["first"].as_str().unwrap().starts_with("2026-11-02T06"), "{body}");

    // Read-only: every kind of write or setting is refused, saying why.
    for sql in [
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO events SELECT * FROM events",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE events",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let (status, body) = query(addr, ADMIN, serde_json::json!({"sql": sql}));
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{sql}: {body}");
        assert!(body["message"].as_str().unwrap().contains("read-only"), "{sql}: {body}");
    }

    // Helpful errors.
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELEC * FROM events"}));
    assert_eq!((status, body["error"].as_str()), (400, Some("syntax_error")), "{body}");
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT client_adress FROM events"}));
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_query")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("did you mean `client_address`"), "{body}");
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT * FROM evnts"}));
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("events, alerts, deadletters"), "{body}");

    // Row limits: the request's, and the server's cap.
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT event_id FROM events", "limit": 10}));
    assert_eq!(status, 200);
    assert_eq!((body["row_count"].as_u64(), body["truncated"].as_bool()), (Some(10), Some(true)));
    let (_, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT event_id FROM events"}));
    assert_eq!((body["row_count"].as_u64(), body["truncated"].as_bool()), (Some(500), Some(true)));

    // Timeout.
    let (status, body) = query(
        addr,
        ANALYST,
        serde_json::json!({"sql": "SELECT count(*) FROM events a, events b, events c WHERE a.event_id < b.event_id AND b.event_id < c.event_id"}),
    );
    assert_eq!((status, body["error"].as_str()), (408, Some("timeout")), "{body}");

    // Streaming formats hold the same rows.
    let sql = "SELECT event_id, mcp_method_name FROM events ORDER BY event_id LIMIT 100";
    let (status, ndjson) = request(
        addr,
        "POST",
        "/api/v1/query",
        Some(ANALYST),
        &serde_json::json!({"sql": sql, "format": "ndjson"}).to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 100);
    let (_, csv) = request(
        addr,
        "POST",
        "/api/v1/query",
        Some(ANALYST),
        &serde_json::json!({"sql": sql, "format": "csv"}).to_string(),
    );
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("event_id,mcp_method_name\n"), "{csv}");
    assert_eq!(csv.lines().count(), 101);
    let (_, arrow) = request(
        addr,
        "POST",
        "/api/v1/query",
        Some(ANALYST),
        &serde_json::json!({"sql": sql, "format": "arrow"}).to_string(),
    );
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 100);

    // The audit log: admins only, and it names who ran what.
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT * FROM audit_log"}));
    assert_eq!(status, 403, "{body}");
    // Records are stored as each answer ends; give the last one a moment.
    let audit_sql = "SELECT caller, outcome, rows FROM audit_log WHERE sql LIKE '%LIMIT 100%' AND caller = 'ana'";
    let mut body = serde_json::Value::Null;
    for _ in 0..50 {
        let (status, answer) = query(addr, ADMIN, serde_json::json!({"sql": audit_sql}));
        assert_eq!(status, 200, "{answer}");
        body = answer;
        if body["row_count"] == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(body["row_count"], 3, "one record per format: {body}");
    assert_eq!(body["rows"][0]["rows"], 100);
    let (_, body) = query(
        addr,
        ADMIN,
        serde_json::json!({"sql": "SELECT count(*) AS n FROM audit_log WHERE outcome = 'forbidden'"}),
    );
    assert!(body["rows"][0]["n"].as_u64().unwrap() >= 7, "{body}");
}

#[test]
fn memory_limit_fails_the_query_not_the_server_and_fifty_concurrent_queries_finish_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let addr = serve(lake, QueryConfig { memory_limit_bytes: 64 << 10, ..config() });
    let (status, body) =
        query(addr, ANALYST, serde_json::json!({"sql": "SELECT array_agg(gen_ai_tool_call_result) FROM events"}));
    assert_eq!((status, body["error"].as_str()), (422, Some("memory_limit")), "{body}");

    let handles: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let sql = format!(
                    "SELECT mcp_method_name, count(*) AS n FROM events WHERE length(event_id) > {} GROUP BY 1",
                    i % 3
                );
                query(addr, ANALYST, serde_json::json!({"sql": sql})).0
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 200).count() >= 4, "{statuses:?}");
    let (status, body) = request(addr, "GET", "/healthz", None, "");
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
}

/// An answer's own bytes count against `query.memory_limit_bytes`: rows too wide for it fail
/// with `memory_limit` naming the limit (a status while nothing was sent, an NDJSON error
/// line once streaming), while an answer twice the limit in narrower rows streams whole in
/// every format, its bytes freed as they are written.
#[test]
fn an_answer_counts_against_the_memory_limit_and_streams_past_it_when_its_rows_fit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let config = QueryConfig { memory_limit_bytes: 8 << 20, max_rows: 1_000_000, timeout_seconds: 120, ..config() };
    let addr = serve(lake, config);
    // 8,192 rows of 1,100 bytes a batch: 9 MB, more than the limit.
    let wide = "SELECT value, repeat('x', 1100) AS pad FROM generate_series(1, 50000)";
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": wide}));
    assert_eq!((status, body["error"].as_str()), (422, Some("memory_limit")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("query.memory_limit_bytes (8388608 bytes)"), "{body}");
    let (status, bytes) = request(
        addr,
        "POST",
        "/api/v1/query",
        Some(ANALYST),
        &serde_json::json!({"sql": wide, "format": "ndjson"}).to_string(),
    );
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 200);
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or_else(|| panic!("no lines: {text}"))).unwrap();
    assert!(last["error"].as_str().unwrap().contains("query.memory_limit_bytes"), "{last}");

    // 2.4 MiB batches, 18 MB in all: twice the limit.
    let narrower = "SELECT value, repeat('y', 300) AS pad FROM generate_series(1, 60000)";
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": narrower}));
    assert_eq!((status, body["row_count"].as_u64()), (200, Some(60000)), "{}", body["error"]);
    assert_eq!(body["rows"][59999]["value"], 60000);
    for (format, lines) in [("ndjson", 60000), ("csv", 60001)] {
        let body = serde_json::json!({"sql": narrower, "format": format}).to_string();
        let (status, bytes) = request(addr, "POST", "/api/v1/query", Some(ANALYST), &body);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!((status, text.lines().count()), (200, lines), "{format}: {}", text.lines().last().unwrap());
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("60000") || last.starts_with("{\"value\":60000"), "{format} ends with the last row");
    }
    let body = serde_json::json!({"sql": narrower, "format": "arrow"}).to_string();
    let (status, bytes) = request(addr, "POST", "/api/v1/query", Some(ANALYST), &body);
    assert_eq!(status, 200);
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let rows: usize = reader.map(|batch| batch.unwrap().num_rows()).sum();
    assert_eq!(rows, 60000);
}

#[test]
fn the_cli_queries_the_lake_directly_and_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    lake(dir.path());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
            .args(["--set", &format!("lake.location={}", dir.path().display())])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["query", "SELECT count(*) AS n FROM events", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["n"], EVENTS);
    let out = run(&["query", "SELECT mcp_method_name, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| tools/call") && table.contains("rows"), "{table}");
    let out = run(&["query", "SELECT enduser FROM events"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean `enduser_id`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_cli_asks_a_running_server_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(lake(dir.path()), config());
    let server = format!("http://{addr}");
    let run = |key: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
            .env("MCPSIEM_API_KEY", key)
            .args(["query", "--server", &server])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(ANALYST, &["SELECT count(*) AS n FROM events", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["rows"][0]["n"], EVENTS);
    let out = run(ANALYST, &["SELECT mcp_method_name, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("| tools/call"), "{table}");
    let out = run(ANALYST, &["SELECT event_id FROM events ORDER BY event_id LIMIT 5", "--format", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    let out = run("wrong", &["SELECT 1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Hostile and heavy queries meet limits, never a crash: a 2,500-term chain and a 1 MB
/// nesting are refused with `invalid_query` (and the service answers on); one key's long
/// queries cannot take every slot; a JSON answer larger than the service's hold streams
/// whole; refusals before the engine are in the audit log; analysts read alert_deliveries.
#[test]
fn hostile_queries_are_refused_and_audited_and_one_key_cannot_take_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let config = QueryConfig {
        max_concurrent: 4,
        max_concurrent_per_key: 2,
        queue_seconds: 1,
        timeout_seconds: 10,
        max_rows: 2_000_000,
        ..config()
    };
    let addr = serve(lake(dir.path()), config);

    let chain = format!("SELECT {}", vec!["1"; 2500].join(" + "));
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": chain}));
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_query")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("max_expression_depth"), "{body}");
    let deep = format!("SELECT {}1{}", "(".repeat(400_000), ")".repeat(400_000));
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": deep}));
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_query")), "{body}");
    let (status, _) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT 1"}));
    assert_eq!(status, 200, "the service answers after the hostile queries");

    // A bad time and a format the API does not write: refused before the engine, audited.
    let (status, _) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT 2", "start": "yesterday"}));
    assert_eq!(status, 400);
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT 3", "format": "parquet"}));
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("json, ndjson, csv, arrow"), "{body}");

    // A JSON answer of ~40 MB streams through the held prefix and parses whole.
    let (status, bytes) = request(
        addr,
        "POST",
        "/api/v1/query",
        Some(ANALYST),
        &serde_json::json!({"sql": "SELECT value, repeat('x', 200) AS pad FROM generate_series(1, 180000)"})
            .to_string(),
    );
    assert_eq!(status, 200);
    assert!(bytes.len() > 30 << 20, "{} bytes", bytes.len());
    let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("one JSON document");
    assert_eq!(answer["row_count"], 180_000);
    assert_eq!(answer["rows"].as_array().unwrap().len(), 180_000);
    assert_eq!(answer["rows"][179_999]["value"], 180_000);

    // Two long queries of the analyst take the key's slots: its third is refused, the
    // admin's query runs in the slots left.
    let long = serde_json::json!({"sql": "SELECT count(*) FROM generate_series(1, 3000000000)"}).to_string();
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let long = long.clone();
            std::thread::spawn(move || request(addr, "POST", "/api/v1/query", Some(ANALYST), &long).0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT 4"}));
    assert_eq!((status, body["error"].as_str()), (503, Some("busy")), "{body}");
    let (status, body) = query(addr, ADMIN, serde_json::json!({"sql": "SELECT 5 AS five"}));
    assert_eq!((status, body["rows"][0]["five"].as_u64()), (200, Some(5)), "{body}");
    for runner in runners {
        let _ = runner.join();
    }

    // Analysts read alert_deliveries (names and links only; docs/query.md).
    let (status, body) = query(addr, ANALYST, serde_json::json!({"sql": "SELECT count(*) AS n FROM alert_deliveries"}));
    assert_eq!(status, 200, "{body}");

    let mut outcomes = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, answer) = query(
            addr,
            ADMIN,
            serde_json::json!({"sql": "SELECT outcome, count(*) AS n FROM audit_log WHERE caller = 'ana' GROUP BY outcome ORDER BY outcome"}),
        );
        outcomes = answer["rows"].clone();
        let text = outcomes.to_string();
        if text.contains("busy") && text.contains("invalid_query") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let count = |outcome: &str| {
        outcomes.as_array().unwrap().iter().find(|r| r["outcome"] == outcome).and_then(|r| r["n"].as_u64()).unwrap_or(0)
    };
    assert!(count("invalid_query") >= 4, "the deep queries, the bad time and the bad format: {outcomes}");
    assert!(count("busy") >= 1, "{outcomes}");
}

/// `format: ocsf` answers rows of the alerts table as OCSF Detection Findings, and refuses
/// an answer without an alert's columns with what to select.
#[test]
fn alerts_are_answered_as_ocsf_detection_findings() {
    use mcpsiem_event::{Alert, AlertSource, Level, Timestamp, alert_batch};
    use mcpsiem_ingest::parquet_file::{ParquetSettings, split_by_hour};
    use mcpsiem_lake::Table;

    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let alerts: Vec<Alert> = (0..3)
        .map(|i| Alert {
            id: format!("01JTESTALERT000000000000{i}"),
            rule_id: "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0002".into(),
            rule_title: "MCP token used from a new client address".into(),
            level: Level::High,
            tags: vec!["attack.credential_access".into(), "attack.t1550.001".into()],
            source: AlertSource::FirstSeen,
            first_time: Timestamp::parse("2026-11-02T10:00:00Z").unwrap(),
            last_time: Timestamp::parse(&format!("2026-11-02T10:0{i}:00Z")).unwrap(),
            group: [("client.address".to_string(), "203.0.113.7".to_string())].into(),
            count: 1,
            event_ids: vec![format!("event-{i}")],
            sql: String::new(),
        })
        .collect();
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 1000 };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (hour, part) in split_by_hour(Table::Alerts, &alert_batch(&alerts)).unwrap() {
        let bytes = settings.encode(Table::Alerts, std::slice::from_ref(&part)).unwrap();
        let path = object_store::path::Path::from(format!("{}/test.parquet", hour.path(Table::Alerts)));
        runtime.block_on(lake.put(&path, bytes)).unwrap();
    }
    let addr = serve(lake, config());

    let body = serde_json::json!({"sql": "SELECT * FROM alerts ORDER BY alert_id", "format": "ocsf"});
    let (status, bytes) = request(addr, "POST", "/api/v1/query", Some(ANALYST), &body.to_string());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let findings: Vec<serde_json::Value> =
        bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert_eq!(findings.len(), 3);
    for (finding, alert) in findings.iter().zip(&alerts) {
        assert_eq!(finding, &mcpsiem_event::ocsf::detection_finding(alert, env!("CARGO_PKG_VERSION")));
    }
    assert_eq!(findings[0]["finding_info"]["attacks"][0]["sub_technique"]["uid"], "T1550.001");

    let (status, error) =
        query(addr, ANALYST, serde_json::json!({"sql": "SELECT alert_id FROM alerts", "format": "ocsf"}));
    assert_eq!(status, 400, "{error}");
    assert!(error["message"].as_str().unwrap().contains("SELECT * FROM alerts"), "{error}");
}
