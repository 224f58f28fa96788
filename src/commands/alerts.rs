//! `mcpsiem alerts …`: the delivery stage and its tools.

use anyhow::{Context, Result};
use mcpsiem_deliver::{DeliverySummary, Outbox, Outcome};
use mcpsiem_event::{Alert, AlertSource, Level, Timestamp};

use crate::config::Config;

/// `alerts deliver`: the alerts topic to the destinations, until SIGINT/SIGTERM.
pub fn run_deliver(config: &Config) -> Result<DeliverySummary> {
    anyhow::ensure!(
        !config.kafka.brokers.is_empty(),
        "kafka.brokers is empty: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _guard = runtime.enter();
    mcpsiem_runtime::ops::start_metrics(&config.delivery.metrics_addr, "delivery")?;
    let lake = match config.lake.open() {
        Ok(lake) => Some(lake),
        Err(e) => {
            tracing::warn!(error = %e, "the lake cannot be opened: deliveries are not recorded in alert_deliveries");
            None
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    runtime.spawn(async move {
        mcpsiem_runtime::stop::shutdown_signal().await;
        tracing::info!("stop requested; finishing the deliveries in flight");
        let _ = stop_tx.send(true);
    });
    tracing::info!(destinations = config.delivery.destinations.len(), topic = %config.kafka.alerts_topic, "delivering alerts");
    mcpsiem_runtime::ops::set_ready("delivery", true);
    let summary = runtime.block_on(mcpsiem_deliver::run(&config.delivery, &config.kafka, lake, stop_rx));
    mcpsiem_runtime::ops::set_ready("delivery", false);
    Ok(summary?)
}

/// A sample alert for `test-destination`.
pub fn sample_alert() -> Alert {
    let now = Timestamp::now();
    Alert {
        id: ulid::Ulid::new().to_string(),
        rule_id: "mcpsiem-test-destination".into(),
        rule_title: "mcpsiem test alert: the destination is configured correctly".into(),
        level: Level::Informational,
        tags: vec!["mcpsiem.test".into()],
        source: AlertSource::Detection,
        first_time: now.plus_micros(-60_000_000),
        last_time: now,
        group: [("mcp.session.id".to_string(), "test-session".to_string())].into(),
        count: 1,
        event_ids: vec![],
        sql: "SELECT * FROM events WHERE false".into(),
    }
}

/// `alerts test-destination NAME`: one sample alert, sent now, outside the outbox.
pub fn test_destination(config: &Config, name: &str) -> Result<()> {
    let destinations = mcpsiem_deliver::destinations(&config.delivery)?;
    let destination = destinations.get(name).with_context(|| {
        let known: Vec<&str> = destinations.keys().map(String::as_str).collect();
        format!("destination `{name}` is not configured (known: {})", known.join(", "))
    })?;
    let alert = sample_alert();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let key = format!("{}:{name}", alert.id);
    match runtime.block_on(destination.deliver(&alert, &key, 0)) {
        Outcome::Delivered { status, reference } => {
            println!(
                "delivered to {name} ({}){}",
                status.map(|s| s.to_string()).unwrap_or_else(|| "ok".into()),
                reference.map(|r| format!(", reference {r}")).unwrap_or_default()
            );
            Ok(())
        }
        Outcome::Retry { reason, .. } => {
            anyhow::bail!("{name} did not take the test alert (would be retried): {reason}")
        }
        Outcome::Failed { reason, .. } => anyhow::bail!("{name} refused the test alert: {reason}"),
    }
}

/// `alerts resolve --destination NAME ALERT_ID` (PagerDuty).
pub fn resolve(config: &Config, name: &str, alert_id: &str) -> Result<()> {
    let destinations = mcpsiem_deliver::destinations(&config.delivery)?;
    let destination = destinations.get(name).with_context(|| format!("destination `{name}` is not configured"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(destination.resolve(alert_id)) {
        Outcome::Delivered { .. } => {
            println!("resolved {alert_id} on {name}");
            Ok(())
        }
        Outcome::Retry { reason, .. } | Outcome::Failed { reason, .. } => anyhow::bail!("{name}: {reason}"),
    }
}

/// `alerts dead [--retry]`: the dead letters of the outbox (the stage must be stopped).
pub fn dead_letters(config: &Config, retry: bool) -> Result<()> {
    let outbox = Outbox::open(&config.delivery.outbox_path)?;
    if retry {
        let moved = outbox.retry_dead(Timestamp::now())?;
        println!("{moved} dead deliveries queued again");
        return Ok(());
    }
    for letter in outbox.dead()? {
        println!("{}", serde_json::to_string(&letter.record)?);
    }
    let counts = outbox.counts()?;
    eprintln!("pending {}, finished {}, dead {}", counts.pending, counts.finished, counts.dead);
    Ok(())
}
