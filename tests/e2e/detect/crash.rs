//! The detector stopped dead at its failpoints while a correlation completes: with the new
//! snapshot written but not yet renamed over the old one, and with the snapshot saved but
//! the offsets not committed. After a restart every alert is on the alerts topic under one
//! id; where the crash came before the snapshot, the events after the old snapshot are read
//! again and the same alerts (the same ids) arrive a second time, which consumers (the
//! ingester's alerts table, delivery's outbox) take once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mcpsiem_detect::Alert;
use mcpsiem_runtime::producer::EventProducer;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::restart::{DetectorFixture, event, read_alerts, send, snapshot_offset, terminate};
use crate::support;

/// Runs one scenario: events, a clean first run, more events, a run that aborts at
/// `point`, and a run to the end. Returns the alerts topic's alerts and the final snapshot
/// offset.
fn crash_at(point: &str) -> (Vec<Alert>, Option<i64>) {
    let DetectorFixture { broker: _broker, kafka, rules_dir: _rules, fixture, state } =
        DetectorFixture::new("detect-crash");
    let producer = EventProducer::new(&kafka).unwrap();

    // Run 1, clean: three failures and the token at its usual address.
    send(
        &producer,
        &[event(60, "10.0.0.1", 401, "a"), event(59, "10.0.0.1", 401, "a"), event(58, "10.0.0.1", 401, "a")],
    );
    let first = fixture.command(&["detect"]).stdout(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while snapshot_offset(&state) != Some(3) {
        assert!(started.elapsed() < Duration::from_secs(60), "{point}: no snapshot covering the first events");
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate(first);

    // Run 2 completes the burst and sees the token at a new address, then dies at `point`.
    send(
        &producer,
        &[event(56, "10.0.0.1", 401, "a"), event(55, "10.0.0.1", 401, "a"), event(54, "10.9.9.9", 200, "a")],
    );
    // Its only snapshot is the one at the end, after every event was read.
    let crashed = fixture
        .command(&["--set", "detect.snapshot_seconds=3600", "detect", "--stop-when-idle", "5"])
        .env("FAILPOINTS", support::abort_at(point))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(crashed.status.code().is_none(), "{point}: the detector should abort there: {}", crashed.status);

    // Run 3 to the end, after one more event (no alert) so that it has something to read
    // and stops once idle even where nothing is read again.
    send(&producer, &[event(53, "10.0.0.1", 200, "a")]);
    let last = fixture.command(&["detect", "--stop-when-idle", "5"]).stdout(Stdio::null()).output().unwrap();
    assert!(last.status.success(), "{point}: {}", String::from_utf8_lossy(&last.stderr));

    let reader: BaseConsumer = kafka
        .client_config()
        .set("group.id", "test-alert-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&kafka.alerts_topic]).unwrap();
    let mut alerts = Vec::new();
    read_alerts(&reader, &mut alerts, Duration::from_secs(20), |a| a.len() >= 2);
    read_alerts(&reader, &mut alerts, Duration::from_secs(3), |_| false);
    (alerts, snapshot_offset(&state))
}

/// Alert titles with their distinct ids.
fn ids_by_title(alerts: &[Alert]) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for alert in alerts {
        out.entry(alert.rule_title.as_str()).or_default().insert(alert.id.as_str());
    }
    out
}

#[test]
fn a_detector_killed_around_its_snapshot_raises_each_alert_under_one_id() {
    for (point, read_again) in [("detect::snapshot_before_rename:1", true), ("detect::after_snapshot:1", false)] {
        let (alerts, offset) = crash_at(point);
        let by_title = ids_by_title(&alerts);
        let counts: Vec<(&str, usize)> = by_title.iter().map(|(t, ids)| (*t, ids.len())).collect();
        assert_eq!(
            counts,
            [("Burst of unauthorised MCP requests", 1), ("Token used from a new address", 1)],
            "{point}: each alert under one id: {alerts:?}"
        );
        if read_again {
            // The token's alert was raised (and flushed) before the crash, and again after it;
            // the burst's is raised by the window's tick, which may come before or after.
            assert!(alerts.len() >= 3, "{point}: the events after the old snapshot were read again: {alerts:?}");
        } else {
            assert_eq!(alerts.len(), 2, "{point}: nothing was read twice: {alerts:?}");
        }
        assert_eq!(offset, Some(7), "{point}: the last snapshot covers every event");
        let burst = alerts.iter().find(|a| a.rule_title.starts_with("Burst")).unwrap();
        assert_eq!(burst.count, 5, "{point}: the window restored from the old snapshot held the first three");
    }
}
