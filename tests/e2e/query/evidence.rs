//! Evidence end to end on a real broker and lake: generated traffic ingested (with the
//! ledger) and detected; bundles exported by every selector, in every format, from the
//! command line and the API; `export verify` passing on untouched bundles and failing,
//! naming the cause, on each kind of tampering; `lake verify` likewise; every export in
//! the audit log.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_runtime::producer::EventProducer;

use crate::support;

fn run(fixture: &support::LakeFixture, args: &[&str]) -> Output {
    let output = fixture.command(args).stderr(Stdio::piped()).stdout(Stdio::piped()).output().unwrap();
    eprintln!(
        "$ mcpsiem {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn query_one(fixture: &support::LakeFixture, sql: &str) -> serde_json::Value {
    let output = run(fixture, &["query", sql, "--format", "ndjson"]);
    assert!(output.status.success());
    let line = stdout(&output).lines().next().unwrap_or_else(|| panic!("no row for {sql}")).to_string();
    serde_json::from_str(&line).unwrap()
}

/// Copies a bundle, letting `change` edit, drop (None) or keep each entry, then adds `extra`.
fn rewrite(src: &Path, dst: &Path, change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>, extra: Option<(&str, &[u8])>) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if let Some(bytes) = change(&name, bytes) {
            out.start_file(&name, options).unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    if let Some((name, bytes)) = extra {
        out.start_file(name, options).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap();
}

fn verify(fixture: &support::LakeFixture, bundle: &Path, key: &Path) -> (bool, String) {
    let output = run(fixture, &["export", "verify", bundle.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    (output.status.success(), stdout(&output))
}

fn manifest(bundle: &Path) -> serde_json::Value {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(bundle).unwrap()).unwrap();
    let mut text = String::new();
    archive.by_name("manifest.json").unwrap().read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn entry(bundle: &Path, name: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(bundle).unwrap()).unwrap();
    let mut bytes = Vec::new();
    archive.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

fn parquet_rows(bytes: Vec<u8>) -> usize {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    reader.map(|b| b.unwrap().num_rows()).sum()
}

fn lake_verify(fixture: &support::LakeFixture) -> (bool, serde_json::Value) {
    let output = run(fixture, &["lake", "verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["passed"].as_bool().unwrap(), output.status.success());
    (output.status.success(), report)
}

fn failures(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in report["tables"].as_array().unwrap() {
        for finding in table["findings"].as_array().unwrap() {
            let kind = finding["kind"].as_str().unwrap().to_string();
            if kind != "pending" && kind != "awaiting_delete" {
                out.push((kind, finding["path"].as_str().unwrap().to_string()));
            }
        }
    }
    out
}

#[test]
fn bundles_and_the_lake_verify_and_every_kind_of_tampering_is_named() {
    let broker = support::TestBroker::start();
    let mut kafka = broker.kafka_config("evidence");
    kafka.partitions = 2;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::create_topic(&kafka, &kafka.events_topic, kafka.partitions));
    const DAY_US: i64 = 86_400_000_000;
    let start = Timestamp::from_micros((Timestamp::now().as_micros() / DAY_US - 3) * DAY_US);
    let options = GenOptions {
        events: 5_000,
        seed: 77,
        start,
        days: 2,
        attacks: Scenario::ALL.to_vec(),
        ..GenOptions::default()
    };
    let producer = EventProducer::new(&kafka).unwrap();
    let mut produced = 0;
    for event in Generator::new(options) {
        producer.send(mcpsiem_runtime::kafka::event_key(&event), event.to_json().as_bytes()).unwrap();
        produced += 1;
    }
    assert_eq!(producer.flush(Duration::from_secs(60)).unwrap().delivered, produced);

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let (auditor_key, auditor_hash) = mcpsiem_runtime::auth::new_key();
    let (analyst_key, analyst_hash) = mcpsiem_runtime::auth::new_key();
    let scratch = tempfile::tempdir().unwrap();
    let keys = scratch.path().join("keys");
    let fixture = support::LakeFixture::new(
        &kafka,
        &format!(
            r#"
[detect]
rules = ["{rules}"]
metrics_addr = ""

[detect.lists]
approved_servers = ["filesystem", "github", "slack", "postgres", "fetch", "email", "jira"]

[evidence]
signing_key = "{key}"

[[query.api_keys]]
name = "audra"
role = "auditor"
sha256 = "{auditor_hash}"

[[query.api_keys]]
name = "ana"
role = "analyst"
sha256 = "{analyst_hash}"
"#,
            rules = rules.display(),
            key = keys.join("export.key").display()
        ),
    );

    // Keys: a pair, and a second pair for the wrong-key check. A second generate refuses to
    // overwrite.
    assert!(run(&fixture, &["keys", "generate", "--dir", keys.to_str().unwrap()]).status.success());
    assert!(run(&fixture, &["keys", "generate", "--dir", keys.to_str().unwrap(), "--name", "other"]).status.success());
    let again = run(&fixture, &["keys", "generate", "--dir", keys.to_str().unwrap()]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let public = keys.join("export.pub");
    let other = keys.join("other.pub");

    // The pipeline: ingest (writing the ledger), detect, ingest the alerts.
    let records = produced.to_string();
    assert!(run(&fixture, &["ingest", "--stop-after-records", &records]).status.success());
    assert!(run(&fixture, &["detect", "--stop-when-idle", "5"]).status.success());
    assert!(run(&fixture, &["ingest", "--stop-when-idle", "3"]).status.success());

    let (passed, report) = lake_verify(&fixture);
    assert!(passed, "{report}");
    let tables: HashMap<String, serde_json::Value> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    assert!(tables["events"]["entries"].as_u64().unwrap() >= 2, "{report}");
    assert!(tables["alerts"]["files_checked"].as_u64().unwrap() >= 1, "{report}");

    // Exports by every selector.
    let out = scratch.path().join("out");
    let session = query_one(
        &fixture,
        "SELECT mcp_session_id AS s, count(*) AS n FROM events WHERE mcp_session_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
    );
    let token = query_one(
        &fixture,
        "SELECT auth_token_fingerprint AS t, count(*) AS n FROM events WHERE auth_token_fingerprint IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
    );
    let user = query_one(&fixture, "SELECT auth_token_sub AS u FROM events WHERE auth_token_sub IS NOT NULL LIMIT 1");
    let alert = query_one(
        &fixture,
        "SELECT alert_id, event_count, cardinality(event_ids) AS ids FROM alerts ORDER BY alert_time LIMIT 1",
    );
    let total = query_one(&fixture, "SELECT count(*) AS n FROM events");
    assert_eq!(total["n"].as_u64().unwrap(), produced);

    let export = |args: &[&str], name: &str| -> PathBuf {
        let path = out.join(name);
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--out", path.to_str().unwrap()]);
        let output = run(&fixture, &all);
        assert!(output.status.success(), "export {args:?} failed");
        path
    };
    let by_session = export(&["--session", session["s"].as_str().unwrap()], "session.zip");
    let by_alert = export(&["--alert", alert["alert_id"].as_str().unwrap(), "--format", "jsonl"], "alert.zip");
    let by_sql =
        export(&["--sql", "SELECT event_id, event_time, gen_ai_tool_name FROM events", "--format", "csv"], "sql.zip");
    let by_token = export(&["--token", token["t"].as_str().unwrap()], "token.zip");
    let by_user =
        export(&["--user", user["u"].as_str().unwrap(), "--format", "csv", "--start", &start.to_string()], "user.zip");
    // A bundle is never overwritten.
    let twice = run(&fixture, &["export", "--session", "x", "--out", by_session.to_str().unwrap()]);
    assert!(!twice.status.success() && String::from_utf8_lossy(&twice.stderr).contains("exists already"));

    for bundle in [&by_session, &by_alert, &by_sql, &by_token, &by_user] {
        let (ok, text) = verify(&fixture, bundle, &public);
        assert!(
            ok && text.contains("bundle verified") && text.contains("PASS signature"),
            "{}: {text}",
            bundle.display()
        );
    }

    // Row counts and contents: what the manifest says is what the lake holds.
    let m = manifest(&by_session);
    assert_eq!(m["rows"], session["n"]);
    assert_eq!(m["query"]["kind"], "session");
    assert_eq!(m["requester"]["via"], "cli");
    assert_eq!(parquet_rows(entry(&by_session, "data/events.parquet")), session["n"].as_u64().unwrap() as usize);
    let heads = m["lake"]["ledger_heads"].as_object().unwrap();
    assert!(heads.contains_key("events") && heads.contains_key("alerts"), "{m}");
    let read = m["lake"]["files_read"].as_array().unwrap();
    assert!(
        !read.is_empty() && read.iter().all(|f| f["table"] == "events" && f["sha256"].as_str().unwrap().len() == 64)
    );
    assert_eq!(manifest(&by_token)["rows"], token["n"]);
    let m = manifest(&by_sql);
    assert_eq!(m["rows"].as_u64().unwrap(), produced);
    let csv = String::from_utf8(entry(&by_sql, "data/result.csv")).unwrap();
    assert_eq!(csv.lines().count(), produced as usize + 1, "a header and one line per event");
    assert!(csv.starts_with("event_id,event_time,gen_ai_tool_name"));
    let m = manifest(&by_alert);
    assert_eq!(m["query"]["parameters"]["matched_events"].as_str().unwrap(), alert["ids"].to_string());
    let alert_rows = String::from_utf8(entry(&by_alert, "data/alert.jsonl")).unwrap();
    assert_eq!(alert_rows.lines().count(), 1);
    assert!(alert_rows.contains(alert["alert_id"].as_str().unwrap()));
    // The same alert as an OCSF 1.3.0 Detection Finding, signed with the rest.
    let finding: serde_json::Value = serde_json::from_slice(&entry(&by_alert, "data/alert.ocsf.jsonl")).unwrap();
    assert_eq!(finding["class_uid"], 2004);
    assert_eq!(finding["finding_info"]["uid"], alert["alert_id"]);
    assert_eq!(
        finding["finding_info"]["related_events"].as_array().map(Vec::len),
        alert["ids"].as_u64().map(|n| n as usize)
    );
    let events_rows = String::from_utf8(entry(&by_alert, "data/events.jsonl")).unwrap();
    assert_eq!(events_rows.lines().count() as u64, alert["ids"].as_u64().unwrap());
    assert!(manifest(&by_user)["rows"].as_u64().unwrap() > 0);
    // The heads anchor `lake verify`.
    let anchor = format!("events={}:{}", heads["events"]["seq"], heads["events"]["sha256"].as_str().unwrap());
    assert!(run(&fixture, &["lake", "verify", "--table", "events", "--anchor", &anchor]).status.success());

    // Tampered bundles: each fails and says why.
    let tampered = scratch.path().join("tampered.zip");
    rewrite(
        &by_session,
        &tampered,
        |name, mut bytes| {
            if name == "data/events.parquet" {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 1;
            }
            Some(bytes)
        },
        None,
    );
    let (ok, text) = verify(&fixture, &tampered, &public);
    assert!(!ok && text.contains("FAIL file data/events.parquet: changed"), "{text}");
    assert!(text.contains("PASS signature"), "only the data changed: {text}");

    rewrite(&by_session, &tampered, |name, bytes| (name != "data/events.parquet").then_some(bytes), None);
    let (ok, text) = verify(&fixture, &tampered, &public);
    assert!(!ok && text.contains("FAIL file data/events.parquet: missing"), "{text}");

    rewrite(&by_session, &tampered, |_, bytes| Some(bytes), Some(("data/extra.csv", b"event_id\nforged\n")));
    let (ok, text) = verify(&fixture, &tampered, &public);
    assert!(!ok && text.contains("FAIL file data/extra.csv: added"), "{text}");

    rewrite(
        &by_session,
        &tampered,
        |name, bytes| {
            if name == "manifest.json" {
                let text = String::from_utf8(bytes).unwrap();
                return Some(text.replacen("\"rows\": ", "\"rows\": 1", 1).into_bytes());
            }
            Some(bytes)
        },
        None,
    );
    let (ok, text) = verify(&fixture, &tampered, &public);
    assert!(!ok && text.contains("FAIL signature"), "{text}");

    let (ok, text) = verify(&fixture, &by_session, &other);
    assert!(!ok && text.contains("FAIL signature") && text.contains("names signing key"), "{text}");

    std::fs::write(&tampered, b"not a zip").unwrap();
    let (ok, text) = verify(&fixture, &tampered, &public);
    assert!(!ok && text.contains("FAIL bundle"), "{text}");

    // The API: an auditor gets a bundle that verifies; an analyst is refused.
    let port = support::free_port();
    let mut serve = fixture
        .command(&["serve", "--set", &format!("query.listen=127.0.0.1:{port}"), "--set", "query.pg_listen="])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_port(port, &mut serve);
    let body = serde_json::json!({ "session": session["s"], "format": "csv" }).to_string();
    let (status, headers, bytes) = http_post(port, "/api/v1/exports", &auditor_key, &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert!(headers.contains("application/zip") && headers.contains("x-mcpsiem-manifest-sha256"), "{headers}");
    let from_api = scratch.path().join("api.zip");
    std::fs::write(&from_api, &bytes).unwrap();
    let (ok, text) = verify(&fixture, &from_api, &public);
    assert!(ok, "{text}");
    let m = manifest(&from_api);
    assert_eq!((m["requester"]["name"].as_str(), m["requester"]["via"].as_str()), (Some("audra"), Some("api")));
    assert_eq!(m["rows"], session["n"]);
    let (status, _, bytes) = http_post(port, "/api/v1/exports", &analyst_key, &body);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&bytes));
    let (status, _, bytes) = http_post(port, "/api/v1/exports", &auditor_key, r#"{"session":"a","user":"b"}"#);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&bytes).contains("exactly one of"));
    let (status, _, bytes) = http_post(port, "/api/v1/exports", &auditor_key, r#"{"alert":"no-such-alert"}"#);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&bytes));
    terminate(serve.id());
    let _ = serve.wait();

    // A client that goes away while its bundle is being built cancels the export: the work
    // stops, the partial bundle is removed, and the attempt is audited as cancelled. Each
    // batch takes 2 s here (a failpoint), so the export is surely still running.
    let work = scratch.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let port = support::free_port();
    let mut slow = fixture
        .command(&[
            "serve",
            "--set",
            &format!("query.listen=127.0.0.1:{port}"),
            "--set",
            "query.pg_listen=",
            "--set",
            &format!("evidence.work_dir={}", work.display()),
        ])
        .env("FAILPOINTS", "query::export_slow_batch=return")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_port(port, &mut slow);
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        client,
        "POST /api/v1/exports HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nAuthorization: Bearer {auditor_key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let in_work = || -> Vec<String> {
        std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
    };
    support::wait_until(Duration::from_secs(60), "the export started its bundle", || {
        in_work().iter().any(|name| name.ends_with(".zip.partial"))
    });
    drop(client);
    support::wait_until(Duration::from_secs(20), "the cancelled export removed its bundle", || in_work().is_empty());
    terminate(slow.id());
    let _ = slow.wait();

    // The attempt is in the log before the query runs: a query that takes the service down
    // (here a failpoint aborts it right after that record) is still there, `running`.
    let port = support::free_port();
    let mut doomed = fixture
        .command(&["serve", "--set", &format!("query.listen=127.0.0.1:{port}"), "--set", "query.pg_listen="])
        .env("FAILPOINTS", "query::after_running_record=return")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_port(port, &mut doomed);
    let doomed_sql = "SELECT count(*) FROM events WHERE event_id <> 'doomed'";
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let query_body = serde_json::json!({ "sql": doomed_sql }).to_string();
    let _ = write!(
        client,
        "POST /api/v1/query HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nAuthorization: Bearer {auditor_key}\r\nContent-Length: {}\r\n\r\n{query_body}",
        query_body.len()
    );
    support::wait_for_abort(&mut doomed, Duration::from_secs(60), "the service aborts at the failpoint");
    let crashed = run(
        &fixture,
        &[
            "query",
            &format!("SELECT outcome FROM audit_log WHERE sql = '{}'", doomed_sql.replace('\'', "''")),
            "--format",
            "ndjson",
        ],
    );
    assert_eq!(stdout(&crashed).trim(), r#"{"outcome":"running"}"#, "{}", String::from_utf8_lossy(&crashed.stderr));

    // Every export is in the audit log: five from the command line, the API's, and the
    // refused and failed ones with their reasons.
    let audit = run(
        &fixture,
        &[
            "query",
            "SELECT caller, outcome, detail FROM audit_log WHERE action = 'export' ORDER BY audit_time",
            "--format",
            "ndjson",
        ],
    );
    let rows: Vec<serde_json::Value> = stdout(&audit).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ok_rows: Vec<&serde_json::Value> = rows.iter().filter(|r| r["outcome"] == "ok").collect();
    assert_eq!(ok_rows.len(), 6, "{rows:?}");
    assert!(ok_rows.iter().all(|r| r["detail"].as_str().unwrap().contains("manifest_sha256")));
    assert!(rows.iter().any(|r| r["caller"] == "ana" && r["outcome"] == "forbidden"), "{rows:?}");
    assert!(rows.iter().any(|r| r["caller"] == "audra" && r["outcome"] == "not_found"), "{rows:?}");
    assert!(rows.iter().any(|r| r["caller"] == "audra" && r["outcome"] == "cancelled"), "{rows:?}");
    // Each attempt once, with its outcome: none is left `running`.
    assert!(rows.iter().all(|r| r["outcome"] != "running"), "{rows:?}");

    // Compaction keeps the lake verifiable.
    let compact = run(&fixture, &["compact", "--settle-seconds", "0"]);
    assert!(compact.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&compact.stdout).unwrap();
    assert!(summary["files_in"].as_u64().unwrap() > 0, "compaction had files to merge: {summary}");
    let (passed, report) = lake_verify(&fixture);
    assert!(passed, "{report}");

    // Tampering with the lake: each kind is caught and the file named.
    let lake_dir = fixture.lake_dir();
    let events_file = walk(&lake_dir.join("events")).into_iter().next().unwrap();
    let relative = events_file.strip_prefix(&lake_dir).unwrap().to_string_lossy().to_string();
    let original = std::fs::read(&events_file).unwrap();
    let mut changed = original.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x40;
    std::fs::write(&events_file, &changed).unwrap();
    let (passed, report) = lake_verify(&fixture);
    assert!(!passed);
    assert_eq!(failures(&report), [("changed_file".to_string(), relative.clone())]);

    std::fs::remove_file(&events_file).unwrap();
    let (passed, report) = lake_verify(&fixture);
    assert!(!passed);
    assert_eq!(failures(&report), [("missing_file".to_string(), relative.clone())]);

    std::fs::write(&events_file, &original).unwrap();
    let inserted = events_file.with_file_name("forged.parquet");
    std::fs::write(&inserted, &original).unwrap();
    let (passed, report) = lake_verify(&fixture);
    assert!(!passed);
    let inserted_relative = inserted.strip_prefix(&lake_dir).unwrap().to_string_lossy().to_string();
    assert_eq!(failures(&report), [("inserted_file".to_string(), inserted_relative)]);
    std::fs::remove_file(&inserted).unwrap();

    let entry_file = lake_dir.join("_lake/ledger/events").join(format!("{:020}.json", 0));
    let entry_original = std::fs::read_to_string(&entry_file).unwrap();
    std::fs::write(&entry_file, entry_original.replacen("\"rows\": ", "\"rows\": 9", 1)).unwrap();
    let (passed, report) = lake_verify(&fixture);
    assert!(!passed);
    assert!(failures(&report).iter().any(|(kind, _)| kind == "broken_chain"), "{report}");
    std::fs::write(&entry_file, entry_original).unwrap();
    let (passed, report) = lake_verify(&fixture);
    assert!(passed, "restored: {report}");
    drop(broker);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// SIGTERM, so the service stops cleanly.
fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

/// POST with a bearer key: status, raw headers, body (dechunked).
fn http_post(port: u16, path: &str, key: &str, body: &str) -> (u16, String, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut data = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest: &[u8] = &data;
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        data = out;
    }
    (status, head, data)
}
