//! Engine behaviour per rule kind and correlation type: group-by, window edges, order,
//! lateness, generate, aliases, filters and expand.

use std::path::Path;

use mcpsiem_event::{EventId, EventKind, McpEvent, OwnedEvent, Text, Timestamp};

use super::*;
use crate::rules::{NamedLists, RuleProblem, load_text};

const T0: i64 = 1_790_000_000_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(T0 + seconds * 1_000_000)
}

fn event(seconds: i64, tool: &str, address: &str) -> OwnedEvent {
    let mut e = McpEvent::new(EventId::new(), at(seconds), EventKind::Message);
    e.method = Some(Text::from("tools/call".to_string()));
    e.tool_name = Some(Text::from(tool.to_string()));
    e.client_address = Some(Text::from(address.to_string()));
    e.session_id = Some(Text::from("s1".to_string()));
    e.token_fingerprint = Some(Text::from("tok1".to_string()));
    e
}

fn load(yaml: &str, lists: &NamedLists) -> (RuleSet, Vec<RuleProblem>) {
    let mut rules = RuleSet::default();
    let mut problems = Vec::new();
    load_text(Path::new("test.yml"), yaml, lists, &mut rules, &mut problems);
    (rules, problems)
}

fn engine(yaml: &str) -> Engine {
    let (rules, problems) = load(yaml, &NamedLists::new());
    assert!(problems.iter().all(|p| !p.skips_rule()), "{problems:?}");
    Engine::new(rules, EngineConfig { suppress_seconds: 0, ..EngineConfig::default() })
}

fn run(engine: &mut Engine, events: &[OwnedEvent]) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = events.iter().flat_map(|e| engine.process(e)).collect();
    alerts.extend(engine.finish());
    alerts
}

fn titles(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule_title.as_str()).collect()
}

const CALLS: &str = r#"
title: Tool call
name: call
logsource: {product: mcp, category: message}
detection:
  sel:
    mcp.method.name: tools/call
  condition: sel
"#;

fn with_calls(correlation: &str) -> String {
    format!("{CALLS}---\n{correlation}")
}

#[test]
fn detection_rule_alerts_on_its_match_only() {
    let mut e = engine(
        r#"
title: Read env
logsource: {product: mcp, category: message}
detection:
  sel:
    gen_ai.tool.name|re|i: '^READ_FILE$'
  condition: sel
"#,
    );
    let alerts = run(&mut e, &[event(0, "read_file", "a"), event(1, "write_file", "a")]);
    assert_eq!(titles(&alerts), ["Read env"]);
    assert_eq!(alerts[0].group.get("mcp.session.id").map(String::as_str), Some("s1"));
    assert!(alerts[0].sql.contains(&alerts[0].event_ids[0]));
}

#[test]
fn event_count_fires_at_the_threshold_within_the_timespan_edge_inclusive() {
    let rule = with_calls(
        "title: Burst\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 3}\n",
    );
    // Exactly 60 s between the first and third: inside.
    let alerts = run(&mut engine(&rule), &[event(0, "x", "a"), event(30, "x", "a"), event(60, "x", "a")]);
    assert_eq!(titles(&alerts), ["Burst"]);
    assert_eq!(alerts[0].count, 3);
    assert_eq!(alerts[0].group.get("client.address").map(String::as_str), Some("a"));
    // 61 s: the first has left the window.
    let alerts = run(&mut engine(&rule), &[event(0, "x", "a"), event(30, "x", "a"), event(61, "x", "a")]);
    assert!(alerts.is_empty(), "{alerts:?}");
    // Other groups do not add up.
    let alerts = run(&mut engine(&rule), &[event(0, "x", "a"), event(1, "x", "b"), event(2, "x", "a")]);
    assert!(alerts.is_empty());
}

#[test]
fn generate_controls_whether_the_base_rule_alerts_too() {
    let silent = with_calls(
        "title: Burst\ncorrelation:\n  type: event_count\n  rules: [call]\n  timespan: 1m\n  group-by: [client.address]\n  condition: {gte: 2}\n",
    );
    let alerts = run(&mut engine(&silent), &[event(0, "x", "a"), event(1, "x", "a")]);
    assert_eq!(titles(&alerts), ["Burst"]);
    let loud = format!("{silent}generate: true\n");
    let alerts = run(&mut engine(&loud), &[event(0, "x", "a"), event(1, "x", "a")]);
    assert_eq!(titles(&alerts), ["Tool call", "Tool call", "Burst"]);
}

#[test]
fn value_count_counts_distinct_values() {
    let rule = with_calls(
        "title: Many addresses\ncorrelation:\n  type: value_count\n  rules: [call]\n  group-by: [auth.token.fingerprint]\n  timespan: 10m\n  condition: {field: client.address, gte: 3}\n",
    );
    let same = [event(0, "x", "a"), event(1, "x", "a"), event(2, "x", "b"), event(3, "x", "b")];
    assert!(run(&mut engine(&rule), &same).is_empty());
    let alerts = run(&mut engine(&rule), &[event(0, "x", "a"), event(1, "x", "b"), event(2, "x", "c")]);
    assert_eq!(titles(&alerts), ["Many addresses"]);
}

const READ_THEN_SINK: &str = r#"
title: Secret read
name: secret_read
logsource: {product: mcp, category: message}
detection:
  sel:
    gen_ai.tool.name: read_file
  condition: sel
---
title: Public sink
name: public_sink
logsource: {product: mcp, category: message}
detection:
  sel:
    gen_ai.tool.name: create_issue
  condition: sel
---
title: Approved upload
name: approved
logsource: {product: mcp, category: message}
detection:
  sel:
    gen_ai.tool.name: approve
  condition: sel
"#;

#[test]
fn temporal_ordered_needs_the_order() {
    let rule = format!(
        "{READ_THEN_SINK}---\ntitle: Exfil\ncorrelation:\n  type: temporal_ordered\n  rules: [secret_read, public_sink]\n  group-by: [mcp.session.id]\n  timespan: 5m\n"
    );
    let alerts = run(&mut engine(&rule), &[event(0, "read_file", "a"), event(10, "create_issue", "a")]);
    assert_eq!(titles(&alerts), ["Exfil"]);
    let alerts = run(&mut engine(&rule), &[event(0, "create_issue", "a"), event(10, "read_file", "a")]);
    assert!(alerts.is_empty(), "{alerts:?}");
    let alerts = run(&mut engine(&rule), &[event(0, "read_file", "a"), event(301, "create_issue", "a")]);
    assert!(alerts.is_empty());
}

#[test]
fn temporal_with_a_boolean_condition() {
    let rule = format!(
        "{READ_THEN_SINK}---\ntitle: Exfil\ncorrelation:\n  type: temporal\n  rules: [secret_read, public_sink, approved]\n  group-by: [mcp.session.id]\n  timespan: 5m\n  condition: secret_read and public_sink and not approved\n"
    );
    let alerts = run(&mut engine(&rule), &[event(0, "create_issue", "a"), event(10, "read_file", "a")]);
    assert_eq!(titles(&alerts), ["Exfil"], "temporal does not need the order");
    let alerts =
        run(&mut engine(&rule), &[event(0, "approve", "a"), event(1, "read_file", "a"), event(2, "create_issue", "a")]);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn aliases_map_group_by_names_to_each_rules_field() {
    let rule = format!(
        "{READ_THEN_SINK}---\ntitle: Exfil\ncorrelation:\n  type: temporal\n  rules: [secret_read, public_sink]\n  group-by: [who]\n  timespan: 5m\n  aliases:\n    who:\n      secret_read: mcp.session.id\n      public_sink: auth.token.fingerprint\n"
    );
    let mut sink = event(5, "create_issue", "a");
    sink.session_id = Some(Text::from("other".to_string()));
    sink.token_fingerprint = Some(Text::from("s1".to_string()));
    let alerts = run(&mut engine(&rule), &[event(0, "read_file", "a"), sink]);
    assert_eq!(titles(&alerts), ["Exfil"]);
    assert_eq!(alerts[0].group.get("who").map(String::as_str), Some("s1"));
}

#[test]
fn value_sum_avg_median_and_percentile() {
    let with_size = |seconds, size| {
        let mut e = event(seconds, "x", "a");
        e.tool_result_size = Some(size);
        e
    };
    let events = [with_size(0, 100), with_size(1, 200), with_size(2, 900)];
    let rule = |kind: &str, extra: &str, bound: &str| {
        with_calls(&format!(
            "title: Volume\ncorrelation:\n  type: {kind}\n  rules: [call]\n  group-by: [mcp.session.id]\n  timespan: 1h\n  condition: {{field: gen_ai.tool.call.result.size, {bound}}}\n{extra}"
        ))
    };
    assert_eq!(run(&mut engine(&rule("value_sum", "", "gt: 1000")), &events).len(), 1);
    assert_eq!(run(&mut engine(&rule("value_sum", "", "gt: 1200")), &events).len(), 0);
    assert_eq!(run(&mut engine(&rule("value_avg", "", "gte: 400")), &events).len(), 1);
    assert_eq!(run(&mut engine(&rule("value_median", "", "gte: 200")), &events).len(), 1);
    assert_eq!(run(&mut engine(&rule("value_median", "", "gt: 200")), &events).len(), 0);
    assert_eq!(run(&mut engine(&rule("value_percentile", "  percentile: 90\n", "gte: 900")), &events).len(), 1);
}

#[test]
fn upper_bounds_wait_for_the_window_to_close() {
    let rule = with_calls(
        "title: Quiet\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 2, lt: 4}\n",
    );
    let mut e = engine(&rule);
    let early: Vec<Alert> = [event(0, "x", "a"), event(1, "x", "a")].iter().flat_map(|ev| e.process(ev)).collect();
    assert!(early.is_empty(), "a range with an upper bound must not fire before the window closes");
    // An event far later advances the watermark past the window's end.
    let later = e.process(&event(200, "x", "b"));
    assert_eq!(titles(&later), ["Quiet"]);
    // Four in the window: above the range.
    let alerts =
        run(&mut engine(&rule), &[event(0, "x", "a"), event(1, "x", "a"), event(2, "x", "a"), event(3, "x", "a")]);
    assert!(alerts.is_empty());
}

#[test]
fn late_events_join_within_the_allowed_lateness_and_are_counted_beyond() {
    let rule = with_calls(
        "title: Burst\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    // Out of order but within lateness (60 s): the late one completes the window.
    let alerts = run(&mut engine(&rule), &[event(100, "x", "b"), event(50, "x", "a"), event(20, "x", "a")]);
    assert_eq!(titles(&alerts), ["Burst"]);
    // Far behind the newest event: refused and counted.
    let mut e = engine(&rule);
    let alerts = run(&mut e, &[event(1000, "x", "b"), event(10, "x", "a"), event(11, "x", "a")]);
    assert!(alerts.is_empty());
    assert_eq!(e.stats.late, 2);
}

#[test]
fn chained_correlations() {
    let rule = with_calls(
        "title: Burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 2}\n---\ntitle: Repeated bursts\ncorrelation:\n  type: event_count\n  rules: [burst]\n  group-by: [client.address]\n  timespan: 1h\n  condition: {gte: 2}\n",
    );
    let events: Vec<OwnedEvent> = [0, 1, 600, 601].iter().map(|s| event(*s, "x", "a")).collect();
    let alerts = run(&mut engine(&rule), &events);
    assert_eq!(titles(&alerts), ["Repeated bursts"]);
    assert_eq!(alerts[0].event_ids.len(), 4);
}

#[test]
fn filters_exclude_matches() {
    let rule = format!(
        "{CALLS}---\ntitle: Not from the CI runner\nlogsource: {{product: mcp}}\nfilter:\n  rules: [call]\n  ci:\n    client.address: 10.0.0.5\n  condition: not ci\n"
    );
    let alerts = run(&mut engine(&rule), &[event(0, "x", "10.0.0.5"), event(1, "x", "10.0.0.6")]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].group.get("mcp.session.id").map(String::as_str), Some("s1"));
}

#[test]
fn expand_fills_placeholders_from_named_lists() {
    let yaml = r#"
title: Unapproved server
logsource: {product: mcp}
detection:
  approved:
    mcp.server.name|expand: '%approved_servers%'
  condition: not approved
"#;
    let lists: NamedLists =
        [("approved_servers".to_string(), vec!["github".to_string(), "filesystem".to_string()])].into();
    let (rules, problems) = load(yaml, &lists);
    assert!(problems.is_empty(), "{problems:?}");
    let mut e = Engine::new(rules, EngineConfig { suppress_seconds: 0, ..EngineConfig::default() });
    let mut known = event(0, "x", "a");
    known.server_name = Some(Text::from("github".to_string()));
    let mut shadow = event(1, "x", "a");
    shadow.server_name = Some(Text::from("totally-legit".to_string()));
    assert_eq!(run(&mut e, &[known, shadow]).len(), 1);

    let (_, problems) = load(yaml, &NamedLists::new());
    assert_eq!(problems.len(), 1);
    assert!(problems[0].reason.contains("approved_servers"), "{}", problems[0]);
    assert_eq!(problems[0].line, 6);
}

#[test]
fn first_seen_learns_then_alerts_once_per_new_value_of_a_known_group() {
    let rule = r#"
title: Token from a new address
first_seen:
  group-by: [auth.token.fingerprint]
  fields: [client.address]
  learning: 1h
logsource: {product: mcp}
detection:
  sel:
    auth.token.fingerprint|exists: true
  condition: sel
"#;
    let mut e = engine(rule);
    let mut new_token = event(4000, "x", "z");
    new_token.token_fingerprint = Some(Text::from("tok2".to_string()));
    let alerts = run(
        &mut e,
        &[
            event(0, "x", "a"),
            event(10, "x", "b"), // new address, but still learning
            event(3700, "x", "a"),
            event(3800, "x", "c"), // new address after learning: alert
            event(3900, "x", "c"), // seen now
            new_token,             // a new token is learned silently
        ],
    );
    assert_eq!(titles(&alerts), ["Token from a new address"]);
    assert_eq!(alerts[0].group.get("client.address").map(String::as_str), Some("c"));
}

fn deduplicating(suppress_seconds: u64) -> Engine {
    let (rules, _) = load(CALLS, &NamedLists::new());
    Engine::new(rules, EngineConfig { suppress_seconds, repeat_seconds: 60, ..EngineConfig::default() })
}

fn repeat_of(change: &AlertChange) -> (u64, Timestamp, Timestamp, usize) {
    match &change.action {
        mcpsiem_event::ChangeAction::Repeat { count, first_time, last_time, event_ids } => {
            (*count, *first_time, *last_time, event_ids.len())
        }
        other => panic!("not a repeat: {other:?}"),
    }
}

#[test]
fn a_rule_firing_again_while_its_alert_is_open_updates_it_instead_of_raising_another() {
    let mut e = deduplicating(600);
    // Repeats at 10 and 30 s are gathered into one record once the watermark (60 s behind
    // the newest event) passes 10 + 60 s; 200 and 500 s (each within 600 s of the last) are
    // one record each (300 s apart); 1,200 s is after a quiet gap of 700 s: a new alert.
    let events: Vec<OwnedEvent> = [0, 10, 30, 200, 500, 1200].into_iter().map(|t| event(t, "x", "a")).collect();
    let mut alerts: Vec<Alert> = events[..4].iter().flat_map(|ev| e.process(ev)).collect();
    assert_eq!(alerts.len(), 1, "one alert for four firings");
    let repeats = e.take_repeats();
    assert_eq!(repeats.len(), 1, "the first minute of repeats is recorded once the watermark passed it");
    assert_eq!(repeats[0].alert_id, alerts[0].id);
    assert_eq!(repeat_of(&repeats[0]), (2, at(10), at(30), 2));
    alerts.extend(e.process(&events[4]));
    alerts.extend(e.process(&events[5]));
    alerts.extend(e.finish());
    assert_eq!(alerts.len(), 2, "the quiet gap ends the first alert");
    let repeats = e.take_repeats();
    assert_eq!(repeats.iter().map(repeat_of).collect::<Vec<_>>(), [(1, at(200), at(200), 1), (1, at(500), at(500), 1)]);
    assert!(repeats.iter().all(|r| r.alert_id == alerts[0].id));
    assert_eq!((e.stats.alerts, e.stats.repeats, e.stats.repeat_records), (2, 4, 3));
    // The same events again give the same records (the live path after a crash).
    let mut again = deduplicating(600);
    let _ = run(&mut again, &events);
    let ids: Vec<String> = again.take_repeats().into_iter().map(|r| r.change_id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1..], [repeats[0].change_id.clone(), repeats[1].change_id.clone()]);
}

#[test]
fn closing_an_open_alert_makes_the_next_firing_a_new_alert() {
    let mut e = deduplicating(600);
    let first = e.process(&event(0, "x", "a"));
    assert!(e.process(&event(5, "x", "a")).is_empty(), "a repeat");
    assert!(e.process(&event(6, "y", "a")).len() == 1, "another tool is another group");
    assert!(e.close_alert(&first[0].id));
    assert!(!e.close_alert(&first[0].id), "closed once");
    assert!(!e.close_alert("01UNKNOWN"), "an alert not open here");
    let repeats = e.take_repeats();
    assert_eq!(repeats.iter().map(repeat_of).collect::<Vec<_>>(), [(1, at(5), at(5), 1)], "recorded at the close");
    let next = e.process(&event(7, "x", "a"));
    assert_eq!(next.len(), 1, "raised again after the close");
    assert_ne!(next[0].id, first[0].id);
    assert_eq!(e.stats.closed, 1);
}

#[test]
fn without_a_suppression_window_every_firing_is_an_alert_and_open_alerts_survive_a_snapshot() {
    let mut e = deduplicating(0);
    assert_eq!(run(&mut e, &[event(0, "x", "a"), event(1, "x", "a")]).len(), 2);
    assert!(e.take_repeats().is_empty());
    let mut e = deduplicating(600);
    let first = e.process(&event(0, "x", "a"));
    assert!(e.process(&event(5, "x", "a")).is_empty());
    let json = serde_json::to_string(&e.export_state()).unwrap();
    // A snapshot from before open alerts still loads (its suppressions are dropped).
    let old: EngineState =
        serde_json::from_str(r#"{"correlations":[],"first_seen":[],"pending_first_seen":[],"suppressions":[{"rule":"r","group":"g","last_alert":"2026-01-01T00:00:00Z"}]}"#)
            .unwrap();
    assert!(old.open_alerts.is_empty());
    let mut restored = deduplicating(600);
    restored.restore_state(serde_json::from_str(&json).unwrap());
    assert!(restored.process(&event(9, "x", "a")).is_empty(), "the restored alert is still open");
    let _ = restored.finish();
    let repeats = restored.take_repeats();
    assert_eq!(repeats.iter().map(repeat_of).collect::<Vec<_>>(), [(2, at(5), at(9), 2)]);
    assert_eq!(repeats[0].alert_id, first[0].id);
    assert!(restored.oldest_open_alert().is_none(), "finish lets every alert go");
}

#[test]
fn problems_name_file_line_and_reason_and_other_rules_still_load() {
    let yaml = "title: ok\nlogsource: {product: mcp}\ndetection:\n  s:\n    a: b\n  condition: s\n---\ntitle: bad\nlogsource: {product: mcp}\ndetection:\n  s:\n    a|neq: b\n  condition: s\n---\ntitle: broken: [\n---\ntitle: agg\nlogsource: {product: mcp}\ndetection:\n  s:\n    a: b\n  condition: s | count() > 5\n";
    let mut rules = RuleSet::default();
    let mut problems = Vec::new();
    load_text(Path::new("pack.yml"), yaml, &NamedLists::new(), &mut rules, &mut problems);
    assert_eq!(rules.detections.len(), 1);
    assert_eq!(problems.len(), 3);
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(text[0].starts_with("pack.yml:12: unsupported: rule `bad`"), "{text:?}");
    assert!(text[1].starts_with("pack.yml:15: error: not valid YAML"), "{text:?}");
    assert!(text[2].contains("unsupported") && text[2].contains("correlation rule"), "{text:?}");
}

#[test]
fn correlations_naming_missing_rules_are_dropped_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tokens")).unwrap();
    std::fs::write(dir.path().join("tokens/calls.yml"), CALLS).unwrap();
    std::fs::write(
        dir.path().join("tokens/burst.yaml"),
        "title: c\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 1m\n  condition: {gt: 1}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tokens/calls.tests.yml"), "not: [a rule").unwrap();
    let report = crate::rules::load(&[dir.path().to_owned()], &NamedLists::new());
    assert_eq!(report.files, 2, "test event files are not rule files");
    assert_eq!(report.rules.detections.len(), 1);
    assert!(report.rules.correlations.is_empty());
    assert_eq!(report.problems.len(), 1);
    let text = report.problems[0].to_string();
    assert!(text.contains("burst.yaml:1: error: rule `c`: it names rule `nope`"), "{text}");
}

#[test]
fn a_partition_behind_another_is_not_late() {
    let rule = with_calls(
        "title: Burst\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    let mut e = engine(&rule);
    e.expect_source(0);
    e.expect_source(1);
    // Partition 0 is hours ahead of partition 1, as when a backlog is read.
    let mut alerts = e.process_from(0, &event(10_000, "x", "b"));
    alerts.extend(e.process_from(1, &event(10, "x", "a")));
    alerts.extend(e.process_from(1, &event(20, "x", "a")));
    assert_eq!(titles(&alerts), ["Burst"]);
    assert_eq!(e.stats.late, 0);
    // With one source the same order is late.
    let mut e = engine(&rule);
    let mut alerts = e.process(&event(10_000, "x", "b"));
    alerts.extend(e.process(&event(10, "x", "a")));
    alerts.extend(e.process(&event(20, "x", "a")));
    assert!(alerts.is_empty());
    assert_eq!(e.stats.late, 2);
}

#[test]
fn first_seen_alerts_when_the_new_value_arrives() {
    let rule = r#"
title: New client
first_seen:
  group-by: [auth.token.fingerprint]
  fields: [client.address]
  learning: 0s
logsource: {product: mcp}
detection:
  sel:
    auth.token.fingerprint|exists: true
  condition: sel
"#;
    // Decided on arrival, not when the watermark passes (it stays behind: two sources, one
    // silent). "a" happened first, so "b" is the new one whatever the arrival order: when
    // "a" arrives late, it displaces "b" as the group's first and "b" alerts then.
    for (order, new) in [([0, 1], "b"), ([1, 0], "b")] {
        let events = [event(0, "x", "a"), event(30, "x", "b")];
        let mut e = engine(rule);
        e.expect_source(0);
        e.expect_source(1);
        assert!(e.process_from(0, &events[order[0]]).is_empty(), "{order:?}");
        let alerts = e.process_from(0, &events[order[1]]);
        assert_eq!(alerts.len(), 1, "{order:?}");
        assert_eq!(alerts[0].group.get("client.address").map(String::as_str), Some(new), "{order:?}");
        assert!(e.finish().is_empty());
    }
}

/// Partition 0's backlog is read first (a later address for the token, then hours more of
/// its traffic) before partition 1 delivers the token's earlier address; which address
/// alerts as new.
fn new_address_after_a_backlog(partition_1_caught_up: bool) -> Vec<Alert> {
    let mut e = engine(NEW_ADDRESS);
    e.expect_source(0);
    e.expect_source(1);
    if partition_1_caught_up {
        e.source_caught_up(1);
    }
    let mut alerts = e.process_from(0, &event(100, "x", "b"));
    for t in (1_000..20_000).step_by(1_000) {
        alerts.extend(e.process_from(0, &event(t, "x", "b")));
    }
    alerts.extend(e.tick());
    assert!(alerts.is_empty(), "the group is learned silently");
    alerts.extend(e.process_from(1, &event(0, "x", "a")));
    alerts
}

#[test]
fn a_partition_that_has_not_caught_up_holds_the_watermark_for_its_earlier_events() {
    // Not at its end (for up to STALLED_SOURCE without delivering): its earlier address is
    // the token's first, the backlog's is new.
    let alerts = new_address_after_a_backlog(false);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].group.get("client.address").map(String::as_str), Some("b"));
    // At its end and quiet for less than IDLE_SOURCE, it still holds: a producer writing
    // hours of event time per second may give it an older event next.
    let alerts = new_address_after_a_backlog(true);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].group.get("client.address").map(String::as_str), Some("b"));
}

const BURST: &str = "title: Burst\nid: burst\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 3}\n";

const NEW_ADDRESS: &str = r#"
title: Token from a new address
id: new-address
first_seen:
  group-by: [auth.token.fingerprint]
  fields: [client.address]
  learning: 0s
logsource: {product: mcp}
detection:
  sel:
    auth.token.fingerprint|exists: true
  condition: sel
"#;

#[test]
fn state_restored_into_a_new_engine_continues_windows_and_first_seen() {
    let rules = format!("{}---\n{BURST}---\n{NEW_ADDRESS}", CALLS);
    let mut first = engine(&rules);
    // Two of three calls, and the token learned at address a.
    assert!(first.process(&event(0, "x", "a")).is_empty());
    assert!(first.process(&event(10, "x", "a")).is_empty());
    let saved = first.export_state();
    assert_eq!(saved.correlations.len(), 1);
    assert_eq!(saved.first_seen.len(), 1);
    assert!(saved.pending_first_seen.is_empty(), "first-seen values are decided on arrival");
    // Through JSON, as the snapshot file holds it.
    let json = serde_json::to_string(&saved).unwrap();
    let mut second = engine(&rules);
    let restored = second.restore_state(serde_json::from_str(&json).unwrap());
    assert_eq!(restored, Restored { rules_kept: 2, rules_dropped: vec![] });
    let alerts = run(&mut second, &[event(20, "x", "a"), event(30, "x", "b")]);
    let mut got = titles(&alerts);
    got.sort();
    assert_eq!(got, ["Burst", "Token from a new address"]);
    // Without the state, neither fires: one call is not a burst, and a token never seen is
    // learned, not "seen from a new address".
    assert!(run(&mut engine(&rules), &[event(20, "x", "a")]).is_empty());
    assert!(run(&mut engine(&rules), &[event(30, "x", "b")]).is_empty());
}

/// Snapshots of earlier versions hold first-seen observations waiting for the watermark:
/// they are learned when it passes them, as they would have been.
#[test]
fn first_seen_observations_of_an_older_snapshot_are_released_by_the_watermark() {
    let mut e = engine(NEW_ADDRESS);
    let mut state = super::EngineState::default();
    let digest = {
        let mut probe = engine(NEW_ADDRESS);
        probe.process(&event(0, "x", "a"));
        probe.export_state().first_seen.remove(0).tag
    };
    for (time, address) in [(0, "a"), (10, "b")] {
        state.pending_first_seen.push(super::state::SavedObservation {
            tag: digest.clone(),
            time: mcpsiem_event::Timestamp::from_micros(time * 1_000_000),
            event_id: format!("old-{address}"),
            group: vec!["x".to_string()],
            value: vec![address.to_string()],
        });
    }
    assert_eq!(e.restore_state(state), Restored { rules_kept: 1, rules_dropped: vec![] });
    let alerts = e.finish();
    assert_eq!(titles(&alerts), ["Token from a new address"]);
    assert_eq!(alerts[0].event_ids, ["old-b"]);
}

#[test]
fn reload_keeps_windows_of_unchanged_rules_and_drops_changed_ones() {
    let other = "title: Other burst\nid: other\ncorrelation:\n  type: event_count\n  rules: [call]\n  group-by: [client.address]\n  timespan: 1m\n  condition: {gte: 3}\n";
    let before = format!("{CALLS}---\n{BURST}---\n{other}");
    let mut e = engine(&before);
    e.process(&event(0, "x", "a"));
    e.process(&event(10, "x", "a"));
    // `other` changes its threshold; `burst` only gets a comment, which is not a change.
    let after = format!("{CALLS}---\n# tuned\n{BURST}---\n{}", other.replace("gte: 3", "gte: 4"));
    let (rules, problems) = load(&after, &NamedLists::new());
    assert!(problems.is_empty(), "{problems:?}");
    let (mut e, restored) = e.reload(rules);
    assert_eq!(restored, Restored { rules_kept: 1, rules_dropped: vec!["other".to_string()] });
    let alerts = run(&mut e, &[event(20, "x", "a")]);
    assert_eq!(titles(&alerts), ["Burst"]);
    assert_eq!(alerts[0].count, 3);
}

/// Keywords are searched anywhere in a value, as SigmaHQ's backends and rsigma search them
/// (sigma-rust alone compares a keyword with whole values): `dir` is found in "a file or
/// directory", in any case, and an escaped `\*` still means a star.
#[test]
fn keywords_match_anywhere_in_a_value() {
    let mut engine = engine(
        r#"
title: Directory listing
name: dir
logsource: {product: mcp, category: message}
detection:
  keywords:
    - 'DIR'
    - 'select \*'
  condition: keywords
"#,
    );
    let mut described = event(1, "get_file_contents", "10.0.0.1");
    described.tool_description = Some(Text::from("Get the contents of a file or directory.".to_string()));
    let mut star = event(2, "query", "10.0.0.1");
    star.tool_description = Some(Text::from("runs select * from t".to_string()));
    let mut wildcard_only = event(3, "query", "10.0.0.1");
    wildcard_only.tool_description = Some(Text::from("runs select id from t".to_string()));
    let plain = event(4, "read_file", "10.0.0.1");
    let alerts = run(&mut engine, &[described, star, wildcard_only, plain]);
    let times: Vec<Timestamp> = alerts.iter().map(|a| a.first_time).collect();
    assert_eq!(times, [at(1), at(2)], "{alerts:?}");
}
