use std::collections::BTreeMap;
use std::sync::Mutex;

use mcpsiem_event::{Alert, AlertSource, AlertState, Level, Verdict, alert_batch, alert_change_batch};
use mcpsiem_lake::{HourPartition, Lake, Table};

use super::filter::AlertFilterParams;
use super::*;
use crate::QueryConfig;

/// Records what it is given; fails while `down` is set.
#[derive(Default)]
struct MemorySink {
    published: Mutex<Vec<AlertChange>>,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ChangeSink for MemorySink {
    async fn publish(&self, change: &AlertChange) -> Result<(), String> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("broker unreachable".into());
        }
        self.published.lock().unwrap().push(change.clone());
        Ok(())
    }
}

fn alert(id: &str, hour: i64, level: Level, user: &str) -> Alert {
    let time = Timestamp::from_micros(1_790_000_000_000_000 + hour * 3_600_000_000);
    Alert {
        id: id.into(),
        rule_id: format!("rule-{}", level.as_str()),
        rule_title: format!("A {} rule", level.as_str()),
        level,
        tags: vec!["attack.t1550".into()],
        source: AlertSource::Detection,
        first_time: time,
        last_time: time,
        group: BTreeMap::from([("enduser.id".to_string(), user.to_string())]),
        count: 1,
        event_ids: vec![],
        sql: "SELECT 1".into(),
    }
}

fn change(alert_id: &str, micros: i64, id: &str, action: ChangeAction) -> AlertChange {
    AlertChange {
        change_id: id.into(),
        alert_id: alert_id.into(),
        changed_at: Timestamp::from_micros(1_790_000_000_000_000 + micros),
        actor: "ana".into(),
        interface: "api".into(),
        action,
    }
}

async fn put(
    lake: &Lake,
    table: Table,
    time: Timestamp,
    name: &str,
    batch: datafusion::arrow::record_batch::RecordBatch,
) {
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let path = object_store::path::Path::from(format!("{}/{name}.parquet", HourPartition::of(time).path(table)));
    lake.put(&path, bytes.into()).await.unwrap();
}

const ANA: fn() -> Caller = || Caller { name: "ana".into(), role: Role::Analyst };

async fn lake_with(alerts: &[Alert], changes: &[AlertChange]) -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    for (i, a) in alerts.iter().enumerate() {
        put(&lake, Table::Alerts, a.last_time, &format!("a{i}"), alert_batch(std::slice::from_ref(a))).await;
    }
    for (i, c) in changes.iter().enumerate() {
        put(&lake, Table::AlertChanges, c.changed_at, &format!("c{i}"), alert_change_batch(std::slice::from_ref(c)))
            .await;
    }
    (dir, lake)
}

fn triage(lake: Lake, sink: Option<Arc<dyn ChangeSink>>) -> Triage {
    Triage::new(QueryEngine::new(lake, QueryConfig::default()), WorkflowSinks { changes: sink, silences: None })
}

fn field<'a>(row: &'a Value, name: &str) -> Option<&'a str> {
    row.get(name).and_then(Value::as_str)
}

#[tokio::test]
async fn the_alert_status_view_agrees_with_the_changes_fold() {
    let alerts =
        [alert("A1", 0, Level::High, "u1"), alert("A2", 1, Level::Low, "u2"), alert("A3", 2, Level::Medium, "u3")];
    let a1 = [
        change("A1", 10, "C01", ChangeAction::Acknowledge),
        change("A1", 20, "C02", ChangeAction::Assign { assignee: Some("bo".into()) }),
        change("A1", 30, "C03", ChangeAction::Close { verdict: Verdict::FalsePositive, comment: None }),
        change("A1", 40, "C04", ChangeAction::Comment { text: "ok".into() }),
        // Same microsecond as a close: the id decides.
        change("A1", 30, "C05", ChangeAction::Close { verdict: Verdict::Duplicate, comment: None }),
    ];
    let a2 = [
        change("A2", 10, "C11", ChangeAction::Assign { assignee: Some("bo".into()) }),
        change("A2", 20, "C12", ChangeAction::Close { verdict: Verdict::TruePositive, comment: None }),
        change("A2", 30, "C13", ChangeAction::Reopen { comment: None }),
        change("A2", 40, "C14", ChangeAction::Assign { assignee: None }),
    ];
    // The delivery stage's record of a silenced alert, stored twice (read again after a
    // crash): one change.
    let silenced = AlertChange::silenced("A3", "S1", Timestamp::from_micros(1_790_000_000_000_000 + 50));
    // The detector's repeats: one sent twice (after a crash) counts once, and neither is
    // triage (changes and updated_at stay the silence's).
    let base = 1_790_000_000_000_000;
    let repeat = |n: u64, from: i64, to: i64, ids: &[&str]| {
        AlertChange::repeated(
            "A3",
            n,
            (Timestamp::from_micros(base + from), Timestamp::from_micros(base + to)),
            ids.iter().map(|s| s.to_string()).collect(),
        )
    };
    let (r1, r2) = (repeat(3, 100, 200, &["e1", "e2", "e3"]), repeat(2, 7_200_000_000, 7_260_000_000, &["e4", "e5"]));
    let a3 = [silenced.clone(), silenced, r1.clone(), r1, r2];
    let all: Vec<AlertChange> = a1.iter().chain(&a2).chain(&a3).cloned().collect();
    let (_dir, lake) = lake_with(&alerts, &all).await;
    let t = triage(lake, None);
    let page = t.list(&ANA(), &AlertFilterParams::default().check().unwrap()).await.unwrap();
    let rows: HashMap<&str, &Value> = page.alerts.iter().map(|r| (field(r, "alert_id").unwrap(), r)).collect();
    assert_eq!(AlertStatus::from_changes(&a3).state, AlertState::Silenced);
    for (id, changes) in [("A1", &a1[..]), ("A2", &a2[..]), ("A3", &a3[..])] {
        let expected = AlertStatus::from_changes(changes);
        let row = rows[id];
        assert_eq!(field(row, "state"), Some(expected.state.as_str()), "{id}: {row}");
        assert_eq!(field(row, "assignee"), expected.assignee.as_deref(), "{id}: {row}");
        assert_eq!(field(row, "verdict"), expected.verdict.map(|v| v.as_str()), "{id}: {row}");
        assert_eq!(row.get("changes").and_then(Value::as_u64), Some(expected.changes as u64), "{id}: {row}");
        assert_eq!(row.get("repeats").and_then(Value::as_u64), Some(expected.repeats), "{id}: {row}");
    }
    let a3_status = AlertStatus::from_changes(&a3);
    assert_eq!((a3_status.repeats, a3_status.changes), (5, 1));
    let seen = field(rows["A3"], "last_seen").and_then(|t| Timestamp::parse(t).ok());
    assert_eq!(seen, a3_status.last_seen, "the last repeat is after the alert's own last match");
    assert_eq!(field(rows["A3"], "updated_at"), a3_status.updated_at.map(|t| t.to_string()).as_deref());
    // The alert's history lists the repeats with their events.
    let detail = t.show(&ANA(), "A3").await.unwrap();
    let repeats: Vec<&AlertChange> = detail.history.iter().filter(|c| !c.is_triage()).collect();
    assert_eq!(repeats.len(), 2, "{:?}", detail.history);
    assert!(
        matches!(&repeats[1].action, ChangeAction::Repeat { count: 2, event_ids, .. } if event_ids == &["e4", "e5"])
    );
    assert_eq!(detail.status.repeats, 5);
    assert_eq!(AlertStatus::from_changes(&a1).verdict, Some(Verdict::Duplicate));
    // Newest first.
    let order: Vec<&str> = page.alerts.iter().map(|r| field(r, "alert_id").unwrap()).collect();
    assert_eq!(order, ["A3", "A2", "A1"]);
}

#[tokio::test]
async fn the_queue_filters_and_pages() {
    let alerts: Vec<Alert> =
        (0..7).map(|i| alert(&format!("A{i}"), i, if i % 2 == 0 { Level::High } else { Level::Low }, "u")).collect();
    let closed =
        [change("A6", 10 * 3_600_000_000, "C1", ChangeAction::Close { verdict: Verdict::TruePositive, comment: None })];
    let (_dir, lake) = lake_with(&alerts, &closed).await;
    let t = triage(lake, None);
    let ids =
        |page: &AlertPage| page.alerts.iter().map(|r| field(r, "alert_id").unwrap().to_string()).collect::<Vec<_>>();
    let filter = |params: AlertFilterParams| params.check().unwrap();
    let high_new = filter(AlertFilterParams {
        state: Some("new".into()),
        level: Some("high".into()),
        limit: Some(2),
        ..Default::default()
    });
    let page = t.list(&ANA(), &high_new).await.unwrap();
    assert_eq!(ids(&page), ["A4", "A2"]);
    assert_eq!(page.next_offset, Some(2));
    let rest = t.list(&ANA(), &AlertFilter { offset: 2, ..high_new }).await.unwrap();
    assert_eq!((ids(&rest), rest.next_offset), (vec!["A0".to_string()], None));
    let closed =
        t.list(&ANA(), &filter(AlertFilterParams { state: Some("closed".into()), ..Default::default() })).await;
    assert_eq!(ids(&closed.unwrap()), ["A6"]);
    let by_entity = filter(AlertFilterParams { entity: Some("nobody".into()), ..Default::default() });
    assert!(t.list(&ANA(), &by_entity).await.unwrap().alerts.is_empty());
    let by_time = filter(AlertFilterParams {
        from: Some(Timestamp::from_micros(1_790_000_000_000_000 + 3_600_000_000).to_string()),
        to: Some(Timestamp::from_micros(1_790_000_000_000_000 + 3 * 3_600_000_000).to_string()),
        ..Default::default()
    });
    assert_eq!(ids(&t.list(&ANA(), &by_time).await.unwrap()), ["A2", "A1"]);
}

#[tokio::test]
async fn changes_are_checked_stored_and_seen_at_once() {
    let (_dir, lake) = lake_with(&[alert("A1", 0, Level::High, "u1")], &[]).await;
    let sink = Arc::new(MemorySink::default());
    let t = triage(lake, Some(sink.clone()));
    let ana = ANA();
    let acked = t.change(&ana, "A1", ChangeAction::Acknowledge, "api").await.unwrap();
    assert_eq!(acked.status.state, AlertState::Acknowledged);
    let again = t.change(&ana, "A1", ChangeAction::Acknowledge, "api").await.unwrap_err();
    assert!(matches!(again, TriageError::Conflict(_)), "{again}");
    // Two closes at once: both stored, the later holds.
    let close = |v| ChangeAction::Close { verdict: v, comment: Some("seen".into()) };
    let (a, b) = tokio::join!(
        t.change(&ana, "A1", close(Verdict::FalsePositive), "api"),
        t.change(&ana, "A1", close(Verdict::Duplicate), "cli")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let later =
        if (a.change.changed_at, &a.change.change_id) > (b.change.changed_at, &b.change.change_id) { a } else { b };
    let detail = t.show(&ana, "A1").await.unwrap();
    assert_eq!(detail.history.len(), 3);
    assert_eq!(detail.status.state, AlertState::Closed);
    assert_eq!(detail.status.verdict, later.status.verdict);
    assert_eq!(sink.published.lock().unwrap().len(), 3);
    // The queue shows the change before the lake does.
    let closed = AlertFilterParams { state: Some("new,acknowledged".into()), ..Default::default() }.check().unwrap();
    assert!(t.list(&ana, &closed).await.unwrap().alerts.is_empty());
    let closed = AlertFilterParams { state: Some("closed".into()), ..Default::default() }.check().unwrap();
    let listed = t.list(&ana, &closed).await.unwrap().alerts;
    assert_eq!(listed.len(), 1, "the lake still says new, this service knows it is closed");
    assert_eq!(field(&listed[0], "state"), Some("closed"));

    let auditor = Caller { name: "aud".into(), role: Role::Auditor };
    assert!(matches!(t.change(&auditor, "A1", ChangeAction::Acknowledge, "api").await, Err(TriageError::Forbidden(_))));
    assert!(matches!(t.change(&ana, "A9", ChangeAction::Acknowledge, "api").await, Err(TriageError::NotFound(_))));
    assert!(matches!(t.change(&ana, "A1'--", ChangeAction::Acknowledge, "api").await, Err(TriageError::Invalid(_))));
    sink.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let down = t.change(&ana, "A1", ChangeAction::Reopen { comment: None }, "api").await.unwrap_err();
    assert!(matches!(down, TriageError::Unavailable(_)), "{down}");
    assert_eq!(t.show(&ana, "A1").await.unwrap().history.len(), 3, "a change not stored is not shown");
    let read_only = triage(t.engine().lake().clone(), None);
    assert!(matches!(
        read_only.change(&ana, "A1", ChangeAction::Acknowledge, "api").await,
        Err(TriageError::Unavailable(_))
    ));
}

#[tokio::test]
async fn rule_stats_flag_noisy_rules_and_entity_risk_ranks_by_open_alert_levels() {
    let now = Timestamp::now().as_micros();
    let recent = |id: &str, level: Level, user: &str, hours_ago: i64| {
        let mut a = alert(id, 0, level, user);
        a.first_time = Timestamp::from_micros(now - hours_ago * 3_600_000_000);
        a.last_time = a.first_time;
        a
    };
    // Rule "high": five closed with a verdict on its quality (four false), one open.
    let mut alerts: Vec<Alert> = (0..6).map(|i| recent(&format!("H{i}"), Level::High, "u1", 2 + i)).collect();
    alerts.push(recent("L0", Level::Low, "u1", 1));
    alerts.push(recent("C0", Level::Critical, "u2", 1));
    let close = |id: &str, n: i64, verdict| AlertChange {
        changed_at: Timestamp::from_micros(now - 60_000_000 + n),
        ..change(id, 0, &format!("K{n}"), ChangeAction::Close { verdict, comment: None })
    };
    let changes = [
        close("H0", 0, Verdict::FalsePositive),
        close("H1", 1, Verdict::FalsePositive),
        close("H2", 2, Verdict::FalsePositive),
        close("H3", 3, Verdict::FalsePositive),
        close("H4", 4, Verdict::TruePositive),
        close("C0", 5, Verdict::BenignPositive),
    ];
    let (_dir, lake) = lake_with(&alerts, &changes).await;
    let t = triage(lake, None);
    let stats = t.rule_stats(&ANA(), &insights::RuleStatsParams::default()).await.unwrap();
    let high = stats.iter().find(|r| field(r, "rule_id") == Some("rule-high")).unwrap();
    assert_eq!(high["alerts"], 6, "{high}");
    assert_eq!((&high["false_positives"], &high["true_positives"], &high["new"]), (&json(4), &json(1), &json(1)));
    assert_eq!(high["false_positive_ratio"].as_f64(), Some(0.8));
    assert_eq!(high["flagged"], true);
    let critical = stats.iter().find(|r| field(r, "rule_id") == Some("rule-critical")).unwrap();
    assert_eq!((critical["false_positive_ratio"].as_f64(), &critical["flagged"]), (Some(0.0), &Value::Bool(false)));
    let low = stats.iter().find(|r| field(r, "rule_id") == Some("rule-low")).unwrap();
    assert!(low["false_positive_ratio"].is_null() && low["flagged"] == false, "{low}");

    let risk = t.entity_risk(&ANA(), &insights::RiskParams::default()).await.unwrap();
    // u1: two open highs' weight... every high not closed as false/benign/duplicate counts.
    let u1 = risk.iter().find(|r| field(r, "entity") == Some("u1")).unwrap();
    assert_eq!(u1["entity_type"], "user");
    // H4 (true positive) and H5 (new) are high: 10 each; L0 low: 2.
    assert_eq!(u1["risk"], 22, "{u1}");
    assert_eq!(u1["open_alerts"], 2, "H5 and L0: {u1}");
    assert_eq!(u1["alert_ids"].as_array().unwrap()[0], "L0", "newest first: {u1}");
    assert!(risk.iter().all(|r| field(r, "entity") != Some("u2")), "an alert closed as benign adds no risk: {risk:?}");
    let host = insights::RiskParams { entity_type: Some("host".into()), ..Default::default() };
    let wrong = t.entity_risk(&ANA(), &host).await.unwrap_err().to_string();
    assert!(wrong.contains("use one of user, token"), "{wrong}");
}

fn json(n: u64) -> Value {
    Value::from(n)
}

/// Records the silence versions it is given.
#[derive(Default)]
struct MemorySilenceSink {
    published: Mutex<Vec<mcpsiem_event::silence::Silence>>,
}

#[async_trait::async_trait]
impl silences::SilenceSink for MemorySilenceSink {
    async fn publish(&self, silence: &mcpsiem_event::silence::Silence) -> Result<(), String> {
        self.published.lock().unwrap().push(silence.clone());
        Ok(())
    }
}

fn asked(matchers: &[&str], minutes: Option<u64>) -> silences::NewSilence {
    silences::NewSilence {
        matchers: matchers.iter().map(|m| m.to_string()).collect(),
        duration_minutes: minutes,
        reason: "maintenance".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn silences_are_made_listed_and_expired_and_refused_with_why() {
    use mcpsiem_event::silence::{SilenceAction, SilenceState};
    let (_dir, lake) = lake_with(&[], &[]).await;
    let sink = Arc::new(MemorySilenceSink::default());
    let t = Triage::new(
        QueryEngine::new(lake.clone(), QueryConfig::default()),
        WorkflowSinks { changes: None, silences: Some(sink.clone()) },
    );
    let ana = ANA();
    let made =
        t.add_silence(&ana, asked(&["rule_id=rule-high", "group.enduser.id=u1"], Some(60)), "cli").await.unwrap();
    assert_eq!((made.actor.as_str(), made.interface.as_str()), ("ana", "cli"));
    let minutes = (made.ends_at.as_micros() - made.starts_at.as_micros()) / 60_000_000;
    assert_eq!(minutes, 60);
    let listed = t.silences(&ana, Some(SilenceState::Active)).await.unwrap();
    assert_eq!(listed.len(), 1, "seen here before the lake has it");
    assert!(t.silences(&ana, Some(SilenceState::Expired)).await.unwrap().is_empty());

    let ended = t.expire_silence(&ana, &made.silence_id, "api").await.unwrap();
    assert_eq!(ended.action, SilenceAction::Expire);
    assert_eq!(t.silences(&ana, Some(SilenceState::Expired)).await.unwrap().len(), 1);
    let again = t.expire_silence(&ana, &made.silence_id, "api").await.unwrap_err();
    assert!(matches!(again, TriageError::Conflict(_)), "{again}");
    let unknown = t.expire_silence(&ana, "01KBS0000000000000000000", "api").await.unwrap_err();
    assert!(matches!(unknown, TriageError::NotFound(_)), "{unknown}");
    assert_eq!(sink.published.lock().unwrap().len(), 2);

    let refused = |e: TriageError| e.to_string();
    let auditor = Caller { name: "aud".into(), role: Role::Auditor };
    assert!(matches!(
        t.add_silence(&auditor, asked(&["level=high"], Some(5)), "api").await,
        Err(TriageError::Forbidden(_))
    ));
    assert!(
        refused(t.add_silence(&ana, asked(&["host=x"], Some(5)), "api").await.unwrap_err()).contains("unknown field")
    );
    assert!(
        refused(t.add_silence(&ana, asked(&[], Some(5)), "api").await.unwrap_err()).contains("at least one matcher")
    );
    assert!(
        refused(t.add_silence(&ana, asked(&["level=high"], None), "api").await.unwrap_err())
            .contains("`ends_at` or `duration_minutes`")
    );
    let past = silences::NewSilence { ends_at: Some("2020-01-01T00:00:00Z".into()), ..asked(&["level=high"], None) };
    assert!(refused(t.add_silence(&ana, past, "api").await.unwrap_err()).contains("in the past"));
    let forever = asked(&["level=high"], Some(u64::MAX));
    let capped = t.add_silence(&ana, forever, "api").await.unwrap();
    assert_eq!(
        (capped.ends_at.as_micros() - capped.starts_at.as_micros()) / 86_400_000_000,
        silences::MAX_SILENCE_DAYS
    );
    let read_only = triage(lake, None);
    assert!(matches!(
        read_only.add_silence(&ana, asked(&["level=high"], Some(5)), "api").await,
        Err(TriageError::Unavailable(_))
    ));
}

#[tokio::test]
async fn silences_in_the_lake_are_listed_as_the_silence_status_view_says() {
    use mcpsiem_event::silence::{Matcher, Silence, silence_batch};
    let now = Timestamp::now();
    let hour = 3_600_000_000;
    let make = |from: i64, to: i64| {
        Silence::new(
            "ana",
            "api",
            vec![Matcher::parse("level=high").unwrap()],
            now.plus_micros(from),
            now.plus_micros(to),
            "r",
        )
        .unwrap()
    };
    let (active, pending, ended) = (make(-hour, hour), make(hour, 2 * hour), make(-hour, 5 * hour));
    let expired = ended.expired("bo", "cli", now.plus_micros(-60_000_000));
    let (_dir, lake) = lake_with(&[], &[]).await;
    for (i, version) in [&active, &pending, &ended, &expired].into_iter().enumerate() {
        put(&lake, Table::Silences, version.version_at, &format!("s{i}"), silence_batch(std::slice::from_ref(version)))
            .await;
    }
    let t = triage(lake, None);
    let listed: HashMap<String, String> = t
        .silences(&ANA(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.silence.silence_id.clone(), v.state.as_str().to_string()))
        .collect();
    let expected: HashMap<String, String> = [
        (active.silence_id.clone(), "active".to_string()),
        (pending.silence_id.clone(), "pending".to_string()),
        (ended.silence_id.clone(), "expired".to_string()),
    ]
    .into();
    assert_eq!(listed, expected);
    let sql = "SELECT silence_id, state FROM silence_status".to_string();
    let viewed: HashMap<String, String> = t
        .rows(&ANA(), sql, TimeRange::default())
        .await
        .unwrap()
        .iter()
        .map(|r| (r["silence_id"].as_str().unwrap().to_string(), r["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(viewed, expected, "the view and the service agree");
}

#[tokio::test]
async fn alerts_sharing_an_entity_are_worked_as_one_incident() {
    use super::incidents::IncidentParams;
    let minute = 60_000_000;
    let start = Timestamp::now().plus_micros(-600 * minute);
    let at = |minutes: i64, id: &str, user: &str| Alert {
        first_time: start.plus_micros(minutes * minute),
        last_time: start.plus_micros(minutes * minute),
        ..alert(id, 0, Level::Medium, user)
    };
    // Ana's alerts within the hour of each other; Bo's apart; Ana again hours later.
    let alerts =
        [at(0, "A1", "ana"), at(30, "A2", "ana"), at(85, "A3", "ana"), at(10, "B1", "bo"), at(400, "C1", "ana")];
    // A4 comes after the first incident was closed (at minute 100): a new incident.
    let closed = AlertChange {
        changed_at: start.plus_micros(100 * minute),
        ..change("INC-A1", 0, "C0", ChangeAction::Close { verdict: Verdict::TruePositive, comment: None })
    };
    let mut all_alerts = alerts.to_vec();
    all_alerts.push(at(120, "A4", "ana"));
    let (_dir, lake) = lake_with(&all_alerts, std::slice::from_ref(&closed)).await;
    let sink = Arc::new(MemorySink::default());
    let t = triage(lake, Some(sink.clone()));
    let ana = ANA();
    let page = t.incidents(&ana, &IncidentParams::default()).await.unwrap();
    let found: Vec<(String, Vec<String>, AlertState)> =
        page.incidents.iter().map(|i| (i.incident_id.clone(), i.alert_ids.clone(), i.status.state)).collect();
    let expected =
        |id: &str, alerts: &[&str], state| (id.to_string(), alerts.iter().map(|a| a.to_string()).collect(), state);
    assert_eq!(
        found,
        vec![
            expected("INC-C1", &["C1"], AlertState::New),
            expected("INC-A4", &["A4"], AlertState::New),
            expected("INC-A1", &["A3", "A2", "A1"], AlertState::Closed),
            expected("INC-B1", &["B1"], AlertState::New),
        ],
        "newest first, each with its alerts newest first"
    );
    assert_eq!(page.incidents[2].entities["enduser.id"], ["ana".to_string()].into());
    // The same incidents as the SQL table `incidents` (for psql and Grafana).
    let sql = "SELECT incident_id, state, alerts, alert_ids, entities FROM incidents ORDER BY last_time DESC, incident_id DESC";
    let rows = t.rows(&ana, sql.to_string(), TimeRange::default()).await.unwrap();
    let from_sql: Vec<(String, Vec<String>, AlertState)> = rows
        .iter()
        .map(|r| {
            let ids = r["alert_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            (
                r["incident_id"].as_str().unwrap().to_string(),
                ids,
                AlertState::parse(r["state"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(from_sql, found, "the SQL table groups as the API does");
    assert_eq!(rows[2]["alerts"], 3);
    assert!(rows[2]["entities"].as_str().unwrap().contains("\"ana\""), "{:?}", rows[2]);

    // Worked as one: acknowledged and assigned, seen at once; refused where it does not fit.
    let acked = t.change_incident(&ana, "INC-A4", ChangeAction::Acknowledge, "api").await.unwrap();
    assert_eq!(acked.status.state, AlertState::Acknowledged);
    assert_eq!(sink.published.lock().unwrap()[0].alert_id, "INC-A4");
    let again = t.change_incident(&ana, "INC-A4", ChangeAction::Acknowledge, "api").await.unwrap_err();
    assert!(matches!(again, TriageError::Conflict(_)), "{again}");
    let acknowledged = IncidentParams { state: Some("acknowledged".into()), ..Default::default() };
    let listed = t.incidents(&ana, &acknowledged).await.unwrap().incidents;
    assert_eq!(listed.iter().map(|i| i.incident_id.as_str()).collect::<Vec<_>>(), ["INC-A4"]);
    let missing = t.change_incident(&ana, "INC-NOPE", ChangeAction::Acknowledge, "api").await.unwrap_err();
    assert!(matches!(missing, TriageError::NotFound(_)), "{missing}");
    let not_incident = t.change_incident(&ana, "A1", ChangeAction::Acknowledge, "api").await.unwrap_err();
    assert!(not_incident.to_string().contains("start with INC-"), "{not_incident}");

    // The detail: its alerts oldest first, its history.
    let detail = t.incident(&ana, "INC-A1").await.unwrap();
    let ids: Vec<&str> = detail.alerts.iter().map(|a| field(a, "alert_id").unwrap()).collect();
    assert_eq!(ids, ["A1", "A2", "A3"]);
    assert_eq!(detail.history.len(), 1);
    let paged = IncidentParams { limit: Some(3), offset: Some(2), ..Default::default() };
    let page = t.incidents(&ana, &paged).await.unwrap();
    assert_eq!((page.incidents.len(), page.next_offset), (2, None));
    let bad = IncidentParams { state: Some("silenced".into()), ..Default::default() };
    assert!(t.incidents(&ana, &bad).await.unwrap_err().to_string().contains("not an incident state"));
}

#[tokio::test]
async fn the_queue_reads_the_newest_day_first_and_widens_until_the_page_is_full() {
    let hour = 3_600_000_000;
    let now = Timestamp::now();
    let at = |hours_ago: i64, id: &str, level: Level| Alert {
        first_time: now.plus_micros(-hours_ago * hour),
        last_time: now.plus_micros(-hours_ago * hour),
        ..alert(id, 0, level, "u")
    };
    let alerts =
        [at(1, "A", Level::High), at(2, "B", Level::High), at(72, "C", Level::High), at(24 * 60, "D", Level::Low)];
    let (_dir, lake) = lake_with(&alerts, &[]).await;
    let t = triage(lake, None);
    let ids =
        |page: &AlertPage| page.alerts.iter().map(|r| field(r, "alert_id").unwrap().to_string()).collect::<Vec<_>>();
    let page = |params: AlertFilterParams| {
        let t = t.clone();
        async move { t.list(&ANA(), &params.check().unwrap()).await.unwrap() }
    };
    // Within the last day.
    let first = page(AlertFilterParams { limit: Some(2), ..Default::default() }).await;
    assert_eq!((ids(&first), first.next_offset), (vec!["A".to_string(), "B".to_string()], Some(2)));
    // The next page needs the week, then everything.
    let next = page(AlertFilterParams { limit: Some(2), offset: Some(2), ..Default::default() }).await;
    assert_eq!((ids(&next), next.next_offset), (vec!["C".to_string(), "D".to_string()], None));
    let all = page(AlertFilterParams::default()).await;
    assert_eq!(ids(&all), ["A", "B", "C", "D"]);
    // A filter only old alerts meet widens to the end.
    let low = page(AlertFilterParams { level: Some("low".into()), ..Default::default() }).await;
    assert_eq!(ids(&low), ["D"]);
    // The caller's own `from` bounds every window.
    let from = now.plus_micros(-3 * 24 * hour - hour).to_string();
    let recent = page(AlertFilterParams { from: Some(from), ..Default::default() }).await;
    assert_eq!(ids(&recent), ["A", "B", "C"]);
}

#[tokio::test]
async fn an_incident_worked_on_keeps_its_name_when_an_older_alert_joins_it() {
    let minute = 60_000_000;
    let start = Timestamp::now().plus_micros(-600 * minute);
    let at = |minutes: i64, id: &str| Alert {
        first_time: start.plus_micros(minutes * minute),
        last_time: start.plus_micros(minutes * minute),
        ..alert(id, 0, Level::High, "ana")
    };
    let acked = AlertChange {
        changed_at: start.plus_micros(200 * minute),
        ..change("INC-A2", 0, "C0", ChangeAction::Acknowledge)
    };
    // A1 arrived late: older than A2, which names the incident an analyst acknowledged.
    let (_dir, lake) = lake_with(&[at(30, "A2"), at(40, "A3"), at(10, "A1")], &[acked]).await;
    let t = triage(lake, None);
    let page = t.incidents(&ANA(), &super::incidents::IncidentParams::default()).await.unwrap();
    let found: Vec<(&str, usize, AlertState)> =
        page.incidents.iter().map(|i| (i.incident_id.as_str(), i.alerts, i.status.state)).collect();
    assert_eq!(found, [("INC-A2", 3, AlertState::Acknowledged)]);
}
