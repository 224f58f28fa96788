//! `mcpsiem bench delivery`: latency from an alert on the alerts topic to a webhook
//! receiver, at a steady rate, and the most alerts per second the stage delivers in a
//! burst. Local Tansu broker, in-process delivery stage and receiver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use mcpsiem_deliver::{DeliveryConfig, DestinationConfig, DestinationKind};
use mcpsiem_event::{Alert, AlertSource, Level, Timestamp};
use mcpsiem_runtime::kafka::KafkaConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;

use mcpsiem_runtime::broker::TansuBroker;

#[derive(Debug, Serialize)]
pub struct DeliveryBenchReport {
    pub rate: u64,
    pub seconds: u64,
    pub alerts: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub burst_alerts: usize,
    pub burst_alerts_per_sec: f64,
}

impl std::fmt::Display for DeliveryBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "alert delivery to a local webhook, {} alerts at {}/s", self.alerts, self.rate)?;
        writeln!(
            f,
            "latency (alerts topic -> receiver): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        )?;
        writeln!(f, "burst of {} alerts: {:.0} alerts/s delivered", self.burst_alerts, self.burst_alerts_per_sec)
    }
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn alert(i: u64) -> Alert {
    let now = Timestamp::now();
    Alert {
        id: ulid::Ulid::new().to_string(),
        rule_id: format!("bench-rule-{}", i % 8),
        rule_title: "Benchmark alert".into(),
        level: Level::High,
        tags: vec!["attack.credential_access".into()],
        source: AlertSource::Detection,
        first_time: now,
        last_time: now,
        group: [("mcp.session.id".to_string(), format!("s{i}"))].into(),
        count: 1,
        event_ids: vec![format!("e{i}")],
        sql: format!("SELECT * FROM events WHERE event_id = 'e{i}'"),
    }
}

async fn wait_for(arrivals: &Arrivals, ids: &[String], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let arrived = {
            let arrivals = arrivals.lock().expect("not poisoned");
            ids.iter().filter(|id| arrivals.contains_key(*id)).count()
        };
        if arrived == ids.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {arrived} of {} alerts were delivered within {timeout:?}", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn delivery_bench(rate: u64, seconds: u64) -> Result<DeliveryBenchReport> {
    let dir = tempfile::tempdir()?;
    let broker = TansuBroker::start(&dir.path().join("broker"), None)?;
    let kafka = KafkaConfig {
        brokers: broker.bootstrap(),
        alerts_topic: "bench-delivery.alerts".into(),
        ..KafkaConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(mcpsiem_runtime::producer::ensure_topic(&kafka, &kafka.alerts_topic, 3))?;

    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(|State(arrivals): State<Arrivals>, body: Bytes| async move {
                let at = Instant::now();
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(id) = value["alert"]["id"].as_str()
                {
                    arrivals.lock().expect("not poisoned").entry(id.to_owned()).or_insert(at);
                }
                "ok"
            }),
        )
        .with_state(arrivals.clone());
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    runtime.spawn(async move { axum::serve(listener, app).await });

    let mut config = DeliveryConfig { outbox_path: dir.path().join("outbox.redb"), ..DeliveryConfig::default() };
    config.destinations.insert(
        "hook".into(),
        DestinationConfig {
            kind: DestinationKind::Webhook(mcpsiem_deliver::destinations::webhook::Webhook {
                url,
                secret: "bench".into(),
            }),
            rate_per_minute: 0,
            timeout_seconds: 10,
            title_template: None,
            body_template: None,
        },
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stage = {
        let (config, kafka) = (config.clone(), kafka.clone());
        runtime.spawn(async move { mcpsiem_deliver::run(&config, &kafka, None, stop_rx).await })
    };
    let producer: BaseProducer = kafka.client_config().set("linger.ms", "0").create()?;

    // Warm up: the consumer joins its group and the first alert goes through.
    let warm = alert(0);
    producer
        .send(BaseRecord::to(&kafka.alerts_topic).key(&warm.rule_id).payload(&warm.to_json()))
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(10))?;
    runtime.block_on(wait_for(&arrivals, std::slice::from_ref(&warm.id), Duration::from_secs(60)))?;

    eprintln!("sending {rate} alerts/s for {seconds} s…");
    let total = rate * seconds;
    let mut sent: Vec<(String, Instant)> = Vec::with_capacity(total as usize);
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let a = alert(i + 1);
        producer.send(BaseRecord::to(&kafka.alerts_topic).key(&a.rule_id).payload(&a.to_json())).map_err(|(e, _)| e)?;
        producer.poll(Duration::ZERO);
        sent.push((a.id, Instant::now()));
    }
    producer.flush(Duration::from_secs(10))?;
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    runtime.block_on(wait_for(&arrivals, &ids, Duration::from_secs(120)))?;
    let mut latencies: Vec<f64> = {
        let arrivals = arrivals.lock().expect("not poisoned");
        sent.iter().map(|(id, at)| arrivals[id].duration_since(*at).as_secs_f64() * 1000.0).collect()
    };
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];

    eprintln!("sending a burst…");
    let burst: Vec<Alert> = (0..2000).map(|i| alert(total + 1 + i)).collect();
    let burst_started = Instant::now();
    for a in &burst {
        producer.send(BaseRecord::to(&kafka.alerts_topic).key(&a.rule_id).payload(&a.to_json())).map_err(|(e, _)| e)?;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10))?;
    let burst_ids: Vec<String> = burst.iter().map(|a| a.id.clone()).collect();
    runtime.block_on(wait_for(&arrivals, &burst_ids, Duration::from_secs(300)))?;
    let burst_seconds = burst_started.elapsed().as_secs_f64();

    stop_tx.send(true)?;
    runtime.block_on(stage)??;
    Ok(DeliveryBenchReport {
        rate,
        seconds,
        alerts: latencies.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        burst_alerts: burst.len(),
        burst_alerts_per_sec: burst.len() as f64 / burst_seconds,
    })
}
