//! Every destination type against a local receiver that answers like its API: the request
//! each gets, signatures that verify, retries on 429 (after its Retry-After), 500 and
//! timeouts, a 400 dead-lettered at once, and SMTP e-mail to a local server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mcpsiem_deliver::config::{DeliveryConfig, DestinationConfig, DestinationKind, RetryConfig};
use mcpsiem_deliver::destinations::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_signature};
use mcpsiem_deliver::destinations::{
    email::Email, jira::Jira, ocsf::Ocsf, pagerduty::Pagerduty, slack::Slack, teams::Teams, webhook::Webhook,
};
use mcpsiem_deliver::outbox::Outbox;
use mcpsiem_deliver::worker::Worker;
use mcpsiem_event::{Alert, AlertSource, Level, Timestamp};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SECRET: &str = "webhook-signing-secret";

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn count(&self, path: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).count()
    }
    fn of(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
    }
    fn record(&self, path: &str, headers: HeaderMap, body: Bytes) -> usize {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen { path: path.into(), at: Instant::now(), headers, body });
        seen.iter().filter(|s| s.path == path).count()
    }
}

async fn serve_receiver(receiver: Receiver) -> String {
    let app = axum::Router::new()
        .route(
            "/slack",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                r.record("/slack", h, b);
                "ok"
            }),
        )
        .route(
            "/teams",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                r.record("/teams", h, b);
                StatusCode::ACCEPTED
            }),
        )
        .route(
            "/ocsf",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                r.record("/ocsf", h, b);
                "ok"
            }),
        )
        .route(
            "/ocsf-batch",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                // The first batch is refused as by an overloaded collector.
                if r.record("/ocsf-batch", h, b) == 1 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
                } else {
                    (StatusCode::OK, "").into_response()
                }
            }),
        )
        .route(
            "/hook",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                // First a 429 with Retry-After: 1, then success.
                if r.record("/hook", h, b) == 1 {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response()
                } else {
                    (StatusCode::OK, "").into_response()
                }
            }),
        )
        .route(
            "/pd",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                if r.record("/pd", h, b) == 1 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()
                } else {
                    (StatusCode::ACCEPTED, r#"{"status":"success","message":"Event processed"}"#).into_response()
                }
            }),
        )
        .route(
            "/rest/api/2/issue",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                r.record("/jira/issue", h, b);
                (StatusCode::CREATED, r#"{"id":"10001","key":"SEC-1","self":"x"}"#)
            }),
        )
        .route(
            "/rest/api/2/search",
            get(|State(r): State<Receiver>, h: HeaderMap| async move {
                r.record("/jira/search", h, Bytes::new());
                r#"{"issues":[]}"#
            }),
        )
        .route(
            "/slow",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                if r.record("/slow", h, b) == 1 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                "ok"
            }),
        )
        .route(
            "/bad",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                r.record("/bad", h, b);
                (StatusCode::BAD_REQUEST, "invalid_payload")
            }),
        )
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A minimal SMTP server: accepts one session after another, keeps each message's DATA.
async fn serve_smtp(messages: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let messages = messages.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            messages.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-test\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    port
}

fn alert() -> Alert {
    Alert {
        id: "01JD3K7W9Z8Y7X6V5T4S3R2Q1P".into(),
        rule_id: "token-replay".into(),
        rule_title: "Token replayed from a new address".into(),
        level: Level::High,
        tags: vec!["attack.credential_access".into()],
        source: AlertSource::Correlation,
        first_time: Timestamp::parse("2026-11-24T10:00:00Z").unwrap(),
        last_time: Timestamp::parse("2026-11-24T10:04:00Z").unwrap(),
        group: [("auth.token.fingerprint".to_string(), "ab12".to_string())].into(),
        count: 3,
        event_ids: vec!["e1".into()],
        sql: "SELECT * FROM events WHERE event_id IN ('e1')".into(),
    }
}

fn destination(kind: DestinationKind, timeout_seconds: u64) -> DestinationConfig {
    DestinationConfig { kind, rate_per_minute: 0, timeout_seconds, title_template: None, body_template: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_destination_gets_its_request_and_retries_follow_the_answers() {
    let receiver = Receiver::default();
    let base = serve_receiver(receiver.clone()).await;
    let mails = Arc::new(Mutex::new(Vec::new()));
    let smtp_port = serve_smtp(mails.clone()).await;

    let mut destinations = BTreeMap::new();
    destinations
        .insert("slack".into(), destination(DestinationKind::Slack(Slack::webhook(&format!("{base}/slack"))), 5));
    destinations.insert("teams".into(), destination(DestinationKind::Teams(Teams { url: format!("{base}/teams") }), 5));
    destinations.insert(
        "lake".into(),
        destination(DestinationKind::Ocsf(Ocsf::new(format!("{base}/ocsf"), "Bearer hec-token")), 5),
    );
    destinations.insert(
        "hook".into(),
        destination(DestinationKind::Webhook(Webhook { url: format!("{base}/hook"), secret: SECRET.into() }), 5),
    );
    destinations.insert(
        "pager".into(),
        destination(
            DestinationKind::Pagerduty(Pagerduty { routing_key: "R0UT1NG".into(), url: format!("{base}/pd") }),
            5,
        ),
    );
    destinations.insert(
        "jira".into(),
        destination(
            DestinationKind::Jira(Jira {
                url: base.clone(),
                project: "SEC".into(),
                issue_type: "Bug".into(),
                labels: vec!["mcp".into()],
                user: "bot@example.com".into(),
                token: "jira-token".into(),
            }),
            5,
        ),
    );
    destinations.insert("slow".into(), destination(DestinationKind::Slack(Slack::webhook(&format!("{base}/slow"))), 1));
    destinations.insert("bad".into(), destination(DestinationKind::Slack(Slack::webhook(&format!("{base}/bad"))), 5));
    destinations.insert(
        "mail".into(),
        destination(
            DestinationKind::Email(Email {
                smtp_host: "127.0.0.1".into(),
                smtp_port,
                security: "none".into(),
                username: String::new(),
                password: String::new(),
                from: "mcpsiem@example.com".into(),
                to: vec!["soc@example.com".into()],
            }),
            5,
        ),
    );
    let config = DeliveryConfig {
        destinations,
        query_url: "http://siem.example:9480".into(),
        retry: RetryConfig {
            max_attempts: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 2000,
            give_up_after_seconds: 600,
        },
        ..DeliveryConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(&dir.path().join("outbox.redb")).unwrap());
    let names: Vec<String> = config.destinations.keys().cloned().collect();
    assert_eq!(outbox.enqueue(&alert(), &names, Timestamp::now()).unwrap(), 9);
    // The same alert read again (a consumer restart) adds nothing.
    assert_eq!(outbox.enqueue(&alert(), &names, Timestamp::now()).unwrap(), 0);

    let worker = Worker {
        outbox: outbox.clone(),
        destinations: mcpsiem_deliver::destinations(&config).unwrap(),
        config: config.clone(),
        wake: Arc::default(),
        log: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(stop_rx));
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox.counts().unwrap().pending > 0 {
        assert!(Instant::now() < deadline, "deliveries still pending: {:?}", outbox.counts().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    running.await.unwrap().unwrap();
    let counts = outbox.counts().unwrap();
    assert_eq!((counts.finished, counts.dead), (9, 1), "{counts:?}");

    // Slack: Block Kit with the title, the body and a button to the matched events.
    let slack: Value = serde_json::from_slice(&receiver.of("/slack")[0].body).unwrap();
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(slack["blocks"][0]["text"]["text"], "[HIGH] Token replayed from a new address");
    assert!(slack["blocks"][1]["text"]["text"].as_str().unwrap().contains("auth.token.fingerprint: ab12"));
    let link = slack["blocks"][3]["elements"][0]["url"].as_str().unwrap();
    assert!(link.starts_with("http://siem.example:9480/api/v1/query?sql=SELECT"), "{link}");

    // Teams: an Adaptive Card with the facts.
    let teams: Value = serde_json::from_slice(&receiver.of("/teams")[0].body).unwrap();
    let card = &teams["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert!(card["content"]["body"][2]["facts"].as_array().unwrap().iter().any(|f| f["value"] == "ab12"));

    // OCSF: one Detection Finding in an array, with the configured Authorization header.
    let ocsf = &receiver.of("/ocsf")[0];
    assert_eq!(ocsf.headers.get("authorization").unwrap(), "Bearer hec-token");
    let findings: Value = serde_json::from_slice(&ocsf.body).unwrap();
    assert_eq!(findings.as_array().map(Vec::len), Some(1));
    assert_eq!(findings[0]["class_uid"], 2004);
    assert_eq!(findings[0]["severity_id"], 4);
    assert_eq!(findings[0]["finding_info"]["uid"], alert().id.as_str());
    assert_eq!(findings[0]["metadata"]["version"], "1.3.0");

    // Webhook: a 429 with Retry-After: 1, then delivered; both attempts signed and carrying
    // the same delivery id; the signature verifies over timestamp and body.
    let hooks = receiver.of("/hook");
    assert_eq!(hooks.len(), 2);
    assert!(hooks[1].at.duration_since(hooks[0].at) >= Duration::from_millis(950), "Retry-After not honoured");
    for hook in &hooks {
        let timestamp: i64 = hook.headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
        assert!((Timestamp::now().as_micros() / 1_000_000 - timestamp).abs() < 60);
        assert_eq!(hook.headers[SIGNATURE_HEADER].to_str().unwrap(), webhook_signature(SECRET, timestamp, &hook.body));
        assert_eq!(hook.headers["idempotency-key"].to_str().unwrap(), "01JD3K7W9Z8Y7X6V5T4S3R2Q1P:hook");
        assert_ne!(
            webhook_signature("wrong-secret", timestamp, &hook.body),
            hook.headers[SIGNATURE_HEADER].to_str().unwrap()
        );
    }
    let hook: Value = serde_json::from_slice(&hooks[1].body).unwrap();
    assert_eq!(hook["alert"]["id"], "01JD3K7W9Z8Y7X6V5T4S3R2Q1P");

    // PagerDuty: a 500, then the trigger again with the same dedup key.
    let pages = receiver.of("/pd");
    assert_eq!(pages.len(), 2);
    let page: Value = serde_json::from_slice(&pages[1].body).unwrap();
    assert_eq!(page["event_action"], "trigger");
    assert_eq!(page["routing_key"], "R0UT1NG");
    assert_eq!(page["dedup_key"], "01JD3K7W9Z8Y7X6V5T4S3R2Q1P");
    assert_eq!(page["payload"]["severity"], "error");
    assert_eq!(page["payload"]["source"], "mcpsiem");

    // Jira: one issue, basic auth, the project, type and labels from the configuration.
    let issues = receiver.of("/jira/issue");
    assert_eq!(issues.len(), 1);
    assert_eq!(receiver.count("/jira/search"), 0, "a first attempt does not search");
    let auth = issues[0].headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Basic "), "{auth}");
    let issue: Value = serde_json::from_slice(&issues[0].body).unwrap();
    assert_eq!(issue["fields"]["project"]["key"], "SEC");
    assert_eq!(issue["fields"]["issuetype"]["name"], "Bug");
    let labels: Vec<&str> = issue["fields"]["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(labels, vec!["mcp", "mcpsiem", "mcpsiem-01jd3k7w9z8y7x6v5t4s3r2q1p"]);

    // A timeout is retried; a 400 is dead-lettered at once with the reason.
    assert_eq!(receiver.count("/slow"), 2);
    assert_eq!(receiver.count("/bad"), 1);
    let dead = outbox.dead().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record.destination, "bad");
    assert!(dead[0].record.last_error.as_deref().unwrap().contains("invalid_payload"));
    assert_eq!(dead[0].record.last_status, Some(400));

    // E-mail: one message with the title as its subject.
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: [HIGH] Token replayed from a new address"), "{}", mails[0]);
    assert!(mails[0].contains("To: soc@example.com"), "{}", mails[0]);

    // Dead letters can be queued again once the destination is fixed.
    assert_eq!(outbox.retry_dead(Timestamp::now()).unwrap(), 1);
    assert_eq!(outbox.counts().unwrap().pending, 1);
}

#[tokio::test]
async fn a_jira_retry_finds_the_issue_an_earlier_attempt_created() {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route(
            "/rest/api/2/search",
            get(|State(r): State<Receiver>, h: HeaderMap| async move {
                r.record("/jira/search", h, Bytes::new());
                r#"{"issues":[{"key":"SEC-42"}]}"#
            }),
        )
        .route(
            "/rest/api/2/issue",
            post(|State(r): State<Receiver>, h: HeaderMap, b: Bytes| async move {
                r.record("/jira/issue", h, b);
                (StatusCode::CREATED, r#"{"key":"SEC-43"}"#)
            }),
        )
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = destination(
        DestinationKind::Jira(Jira {
            url: base,
            project: "SEC".into(),
            issue_type: "Task".into(),
            labels: vec![],
            user: "u".into(),
            token: "t".into(),
        }),
        5,
    );
    let jira = mcpsiem_deliver::ConfiguredDestination::new("jira", &config, "http://q").unwrap();
    let outcome = jira.deliver(&alert(), "k", 1).await;
    assert_eq!(outcome, mcpsiem_deliver::Outcome::Delivered { status: None, reference: Some("SEC-42".into()) });
    assert_eq!(receiver.count("/jira/issue"), 0, "no second issue for the same alert");
}

/// Alerts due at the same moment reach an OCSF collector as batches of at most `max_batch`
/// findings; a refused batch is retried whole, under the same idempotency key, and every
/// alert ends delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsf_findings_go_in_batches_and_a_refused_batch_is_retried_whole() {
    let receiver = Receiver::default();
    let base = serve_receiver(receiver.clone()).await;
    let lake = Ocsf { max_batch: 100, ..Ocsf::new(format!("{base}/ocsf-batch"), "") };
    let config = DeliveryConfig {
        destinations: [("lake".to_string(), destination(DestinationKind::Ocsf(lake), 5))].into(),
        // One request at a time, so that the first is a full batch of the oldest alerts.
        concurrency: 1,
        retry: RetryConfig {
            max_attempts: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 1000,
            give_up_after_seconds: 600,
        },
        ..DeliveryConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(&dir.path().join("outbox.redb")).unwrap());
    let names = vec!["lake".to_string()];
    let ids: Vec<String> = (0..250).map(|i| format!("01JD3K7W9Z8Y7X6V5T4S3R{i:04}")).collect();
    for id in &ids {
        let alert = Alert { id: id.clone(), ..alert() };
        assert_eq!(outbox.enqueue(&alert, &names, Timestamp::now()).unwrap(), 1);
    }
    let worker = Worker {
        outbox: outbox.clone(),
        destinations: mcpsiem_deliver::destinations(&config).unwrap(),
        config: config.clone(),
        wake: Arc::default(),
        log: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(stop_rx));
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox.counts().unwrap().pending > 0 {
        assert!(Instant::now() < deadline, "deliveries still pending: {:?}", outbox.counts().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    running.await.unwrap().unwrap();
    let counts = outbox.counts().unwrap();
    assert_eq!((counts.finished, counts.dead), (250, 0), "{counts:?}");

    let uids = |seen: &Seen| -> Vec<String> {
        let findings: Value = serde_json::from_slice(&seen.body).unwrap();
        findings.as_array().unwrap().iter().map(|f| f["finding_info"]["uid"].as_str().unwrap().to_owned()).collect()
    };
    let requests = receiver.of("/ocsf-batch");
    let refused = uids(&requests[0]);
    assert_eq!(refused.len(), 100, "the first request is a full batch");
    let mut delivered: Vec<String> = Vec::new();
    for request in &requests[1..] {
        let batch = uids(request);
        assert!(!batch.is_empty() && batch.len() <= 100, "a batch of {}", batch.len());
        if batch.len() > 1 {
            assert!(request.headers["idempotency-key"].to_str().unwrap().starts_with("batch-"));
        }
        // The refused batch comes back whole, under the key it had.
        if batch == refused {
            assert_eq!(request.headers["idempotency-key"], requests[0].headers["idempotency-key"]);
        }
        delivered.extend(batch);
    }
    // 250 alerts in at most four accepted requests (three full ones would do; the retried
    // batch may be joined by, or join, the last alerts).
    assert!(requests.len() - 1 <= 4, "{} accepted requests", requests.len() - 1);
    delivered.sort();
    assert_eq!(delivered, ids, "every alert delivered exactly once");
    assert!(refused.iter().all(|uid| delivered.binary_search(uid).is_ok()));
}
