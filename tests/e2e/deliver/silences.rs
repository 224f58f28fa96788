//! Silences against the real broker: a silence made before the delivery stage starts holds
//! back a matching alert from a local webhook receiver while other alerts go through; the
//! silenced alert is recorded on the alert-changes topic (once, with the silence's id); once
//! the silence is expired, matching alerts are delivered again. Closing a delivered alert
//! resolves the PagerDuty incident it triggered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpsiem_deliver::config::{DeliveryConfig, DestinationConfig, DestinationKind, RetryConfig};
use mcpsiem_deliver::destinations::pagerduty::Pagerduty;
use mcpsiem_deliver::destinations::slack::Slack;
use mcpsiem_deliver::destinations::webhook::Webhook;
use mcpsiem_event::silence::{Matcher, Silence};
use mcpsiem_event::{AlertChange, ChangeAction, Timestamp, Verdict};
use mcpsiem_runtime::producer::AckedProducer;

use super::outage::{Received, SECRET, alert, start_receiver};
use crate::support;

#[test]
fn a_silence_holds_back_matching_alerts_until_it_is_expired() {
    let broker = support::TestBroker::start();
    let mut kafka = broker.kafka_config("silences");
    kafka.alert_changes_topic = "silences.alert-changes".into();
    kafka.silences_topic = "silences.silences".into();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for topic in [&kafka.alerts_topic, &kafka.alert_changes_topic, &kafka.silences_topic] {
        runtime.block_on(support::create_topic(&kafka, topic, 2));
    }
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let port = support::free_port();
    let _receiver = start_receiver(&runtime, port, received.clone());
    // A PagerDuty Events API: keeps each event's action and dedup key. And Slack's Web API:
    // keeps each message (its thread, the ts it was given, its JSON) and answers like Slack.
    let paged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let posted: Arc<Mutex<Vec<(String, String, serde_json::Value)>>> = Arc::default();
    let pd_port = support::free_port();
    {
        let paged = paged.clone();
        let posted = posted.clone();
        let app = axum::Router::new()
            .route(
                "/v2/enqueue",
                axum::routing::post(move |body: axum::body::Bytes| async move {
                    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let text = |name: &str| event[name].as_str().unwrap_or_default().to_string();
                    paged.lock().unwrap().push((text("event_action"), text("dedup_key")));
                    (axum::http::StatusCode::ACCEPTED, r#"{"status":"success"}"#)
                }),
            )
            .route(
                "/api/chat.postMessage",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer xoxb-test") {
                        return r#"{"ok":false,"error":"invalid_auth"}"#.to_string();
                    }
                    let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let mut posted = posted.lock().unwrap();
                    let ts = format!("1765000000.{:06}", posted.len() + 1);
                    let thread = message["thread_ts"].as_str().unwrap_or_default().to_string();
                    posted.push((thread, ts.clone(), message));
                    format!(r#"{{"ok":true,"channel":"C0SEC","ts":"{ts}"}}"#)
                }),
            );
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", pd_port)).await.unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    }

    // Made before the stage starts: it reads the topic to its end before the first alert.
    let matchers = vec![Matcher::parse("rule_id=rule-1").unwrap(), Matcher::parse("level=~high|critical").unwrap()];
    let now = Timestamp::now();
    let silence =
        Silence::new("ana", "api", matchers, now, now.plus_micros(3_600_000_000), "maintenance of server s1").unwrap();
    let silences = AckedProducer::new(&kafka, &kafka.silences_topic, Duration::from_secs(10)).unwrap();
    runtime.block_on(silences.publish(&silence.silence_id, silence.to_json().as_bytes())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let destination = |kind| DestinationConfig {
        kind,
        rate_per_minute: 0,
        timeout_seconds: 5,
        title_template: None,
        body_template: None,
    };
    let hook = Webhook { url: format!("http://127.0.0.1:{port}/hook"), secret: SECRET.into() };
    let pager = Pagerduty { routing_key: "R0UT1NG".into(), url: format!("http://127.0.0.1:{pd_port}/v2/enqueue") };
    let chat = Slack {
        token: "xoxb-test".into(),
        channel: "#security".into(),
        api_url: format!("http://127.0.0.1:{pd_port}/api"),
        ..Slack::webhook("")
    };
    let config = DeliveryConfig {
        outbox_path: dir.path().join("outbox.redb"),
        group_id: "silences-delivery".into(),
        destinations: [
            ("hook".to_string(), destination(DestinationKind::Webhook(hook))),
            ("pager".to_string(), destination(DestinationKind::Pagerduty(pager))),
            ("chat".to_string(), destination(DestinationKind::Slack(chat))),
        ]
        .into(),
        retry: RetryConfig { initial_backoff_ms: 200, max_backoff_ms: 1000, ..RetryConfig::default() },
        ..DeliveryConfig::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stage = {
        let (config, kafka) = (config.clone(), kafka.clone());
        runtime.spawn(async move { mcpsiem_deliver::run(&config, &kafka, None, stop_rx).await })
    };
    let alerts = AckedProducer::new(&kafka, &kafka.alerts_topic, Duration::from_secs(10)).unwrap();
    let send = |a: &mcpsiem_event::Alert| runtime.block_on(alerts.publish(&a.id, a.to_json().as_bytes())).unwrap();
    // alert(1) is rule-1, high: silenced; alert(2) is rule-2: delivered.
    let (silenced, other) = (alert(1), alert(2));
    send(&silenced);
    send(&other);
    let delivered = |id: &str| received.lock().unwrap().iter().any(|(_, alert)| alert == id);
    support::wait_until(Duration::from_secs(60), "the unsilenced alert delivered", || delivered(&other.id));

    // The silenced alert is recorded as such, once, and not delivered.
    let changes: Vec<AlertChange> = support::read_topic_json(
        &kafka,
        &kafka.alert_changes_topic,
        1,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .into_iter()
    .map(|v| AlertChange::from_json(v.to_string().as_bytes()).unwrap())
    .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].alert_id, silenced.id);
    assert_eq!(changes[0].action, ChangeAction::Silence { silence_id: silence.silence_id.clone() });
    assert!(!delivered(&silenced.id), "a silenced alert was delivered");

    // Expired: matching alerts go through again; the one silenced before stays so. The stage
    // applies the expiry within a fetch of the silences topic, and alerts it reads before
    // that are still silenced: matching alerts are sent until one is delivered.
    let ended = silence.expired("bob", "cli", Timestamp::now());
    runtime.block_on(silences.publish(&ended.silence_id, ended.to_json().as_bytes())).unwrap();
    let mut sent_after: Vec<mcpsiem_event::Alert> = Vec::new();
    let mut next_send = std::time::Instant::now();
    support::wait_until(Duration::from_secs(60), "a matching alert delivered after the expiry", || {
        if sent_after.iter().any(|a| delivered(&a.id)) {
            return true;
        }
        if std::time::Instant::now() >= next_send {
            let again = alert(5 + 4 * sent_after.len() as u64);
            assert_eq!(again.rule_id, silenced.rule_id);
            send(&again);
            sent_after.push(again);
            next_send = std::time::Instant::now() + Duration::from_millis(500);
        }
        false
    });
    let after = sent_after.iter().find(|a| delivered(&a.id)).unwrap().clone();

    // The detector records that `other` repeated (the record sent twice, as after a crash):
    // its incident gets one more trigger under the same dedup key.
    let changes_topic = AckedProducer::new(&kafka, &kafka.alert_changes_topic, Duration::from_secs(10)).unwrap();
    let publish_change =
        |c: &AlertChange| runtime.block_on(changes_topic.publish(&c.alert_id, c.to_json().as_bytes())).unwrap();
    let repeat = AlertChange::repeated(&other.id, 3, (other.first_time, other.last_time), vec!["e-repeat".into()]);
    publish_change(&repeat);
    publish_change(&repeat);
    let triggers = |id: &str| paged.lock().unwrap().iter().filter(|(a, d)| a == "trigger" && d == id).count();
    support::wait_until(Duration::from_secs(60), "the repeat's update paged", || triggers(&other.id) == 2);
    // In Slack, through the Web API: one reply in the thread of the alert's message.
    let message_ts = |id: &str| {
        posted
            .lock()
            .unwrap()
            .iter()
            .find(|(thread, _, m)| thread.is_empty() && m.to_string().contains(id))
            .map(|p| p.1.clone())
    };
    let thread_of_other = message_ts(&other.id).expect("the alert was posted to Slack");
    let replies = |ts: &str| posted.lock().unwrap().iter().filter(|(thread, _, _)| thread == ts).count();
    support::wait_until(Duration::from_secs(60), "the repeat replied in the Slack thread", || {
        replies(&thread_of_other) == 1
    });
    let reply = posted.lock().unwrap().iter().find(|(t, _, _)| *t == thread_of_other).unwrap().2.clone();
    assert_eq!(reply["channel"], "#security");
    assert!(reply["text"].as_str().unwrap().contains("3 more matches"), "{reply}");

    // An analyst closes a delivered alert: the PagerDuty incident it triggered is resolved, once.
    let close = AlertChange::new(
        &other.id,
        "ana",
        "api",
        ChangeAction::Close { verdict: Verdict::TruePositive, comment: None },
    );
    publish_change(&close);
    let resolved = |id: &str| paged.lock().unwrap().iter().filter(|(a, d)| a == "resolve" && d == id).count();
    support::wait_until(Duration::from_secs(60), "the closed alert's incident resolved", || resolved(&other.id) == 1);
    // A repeat recorded after the close (the detector had not read it yet) updates nothing.
    let late = AlertChange::repeated(&other.id, 1, (other.last_time, other.last_time), vec!["e-late".into()]);
    publish_change(&late);
    // Read by the stage once its alert-changes group committed the topic's end (offsets are
    // stored after follow-ups are queued): an update it wrongly queued is then sent or pending.
    support::wait_until(Duration::from_secs(60), "the stage read the late repeat", || {
        support::group_caught_up(&kafka, "silences-delivery.alert-changes", &kafka.alert_changes_topic, 2)
    });
    let triggered = |id: &str| paged.lock().unwrap().iter().any(|(a, d)| a == "trigger" && d == id);
    assert!(triggered(&other.id) && triggered(&after.id) && !triggered(&silenced.id), "{:?}", paged.lock().unwrap());
    stop_tx.send(true).unwrap();
    let summary = runtime.block_on(stage).unwrap().unwrap();
    assert_eq!(summary.alerts_read, 2 + sent_after.len() as u64);
    assert_eq!(summary.pending, 0, "nothing left queued: no update for the late repeat");
    assert!(!delivered(&silenced.id));
    // Beside the silenced records: the close and the three repeat records.
    let expected = summary.silenced as usize + 4;
    let changes: Vec<AlertChange> = support::read_topic_json(
        &kafka,
        &kafka.alert_changes_topic,
        expected,
        Duration::from_secs(1),
        Duration::from_secs(10),
    )
    .into_iter()
    .map(|v| AlertChange::from_json(v.to_string().as_bytes()).unwrap())
    .collect();
    assert_eq!(changes.len(), expected, "one record per silenced alert, beside the others: {changes:?}");
    let silenced_ids: Vec<&str> = changes
        .iter()
        .filter(|c| matches!(c.action, ChangeAction::Silence { .. }))
        .map(|c| c.alert_id.as_str())
        .collect();
    assert_eq!(silenced_ids.iter().filter(|id| **id == silenced.id).count(), 1, "{changes:?}");
    assert!(!silenced_ids.contains(&after.id.as_str()));
    let resolves = paged.lock().unwrap().iter().filter(|(a, _)| a == "resolve").count();
    assert_eq!(resolves, 1, "only the closed alert is resolved, once");
    assert_eq!(triggers(&other.id), 2, "one update for the repeat read twice, none after the close");
    assert_eq!(replies(&thread_of_other), 1, "the late repeat replied nowhere");
}
