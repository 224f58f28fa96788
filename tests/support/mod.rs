//! Helpers shared by the end-to-end tests: a real Tansu broker per test and topic set-up.
#![allow(dead_code)]

pub mod query_lake;
pub mod recorded;

use mcpsiem_runtime::broker::TansuBroker;
use mcpsiem_runtime::kafka::KafkaConfig;

/// A broker in a fresh directory, with the directory kept alive as long as the broker.
pub struct TestBroker {
    pub broker: TansuBroker,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let broker = TansuBroker::start(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        Self { broker, dir }
    }

    /// A Kafka configuration for this broker with topics unique to `name`.
    pub fn kafka_config(&self, name: &str) -> KafkaConfig {
        KafkaConfig {
            brokers: self.broker.bootstrap(),
            events_topic: format!("{name}.events"),
            alerts_topic: format!("{name}.alerts"),
            ..KafkaConfig::default()
        }
    }
}

pub async fn create_topic(kafka: &KafkaConfig, topic: &str, partitions: i32) {
    mcpsiem_runtime::producer::ensure_topic(kafka, topic, partitions)
        .await
        .unwrap_or_else(|e| panic!("creating topic {topic}: {e}"));
}

/// A lake in a temporary directory plus the configuration file that points an `mcpsiem`
/// process at it and at a broker, tuned for tests (small, frequent files; fast rejoin).
pub struct LakeFixture {
    pub dir: tempfile::TempDir,
    pub config_path: std::path::PathBuf,
    /// The object-store lake (location, options) when the lake is not the local directory.
    pub remote: Option<(String, std::collections::BTreeMap<String, String>)>,
}

impl LakeFixture {
    pub fn new(kafka: &KafkaConfig, extra_toml: &str) -> Self {
        Self::build(kafka, None, extra_toml)
    }

    /// The same with the lake at `prefix` on a local S3-protocol server.
    pub fn on_s3(kafka: &KafkaConfig, s3: &mcpsiem_bench::s3_server::S3Server, prefix: &str, extra_toml: &str) -> Self {
        Self::build(kafka, Some((s3.location(prefix), s3.options())), extra_toml)
    }

    fn build(
        kafka: &KafkaConfig,
        remote: Option<(String, std::collections::BTreeMap<String, String>)>,
        extra_toml: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config_path = dir.path().join("mcpsiem.toml");
        let toml = format!(
            r#"
[kafka]
brokers = "{brokers}"
events_topic = "{topic}"
alerts_topic = "{alerts}"
partitions = {partitions}
# Tansu can settle a rebalance on a killed member as leader and leave every partition
# unassigned; the tests kill members, so the group watch rejoins soon (docs/scaling.md).
stuck_group_seconds = 10

[kafka.properties]
# A killed ingester's partitions move to its successor after this long.
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
# Bounds how long a rebalance waits for members that are gone.
"max.poll.interval.ms" = "20000"

{lake}

[ingest]
metrics_addr = ""
roll_seconds = 1
roll_bytes = 4000000
staging_grace_seconds = 0

[ingest.compaction]
enabled = false

[log]
level = "info,rdkafka=warn"
{extra_toml}
"#,
            brokers = kafka.brokers,
            topic = kafka.events_topic,
            alerts = kafka.alerts_topic,
            partitions = kafka.partitions,
            lake = match &remote {
                None => format!("[lake]\nlocation = \"{}\"\n", dir.path().join("lake").display()),
                Some((location, options)) => {
                    let options: String = options.iter().map(|(k, v)| format!("{k} = \"{v}\"\n")).collect();
                    format!("[lake]\nlocation = \"{location}\"\n\n[lake.options]\n{options}")
                }
            },
        );
        std::fs::write(&config_path, toml).expect("config written");
        Self { dir, config_path, remote }
    }

    pub fn lake_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("lake")
    }

    pub fn lake(&self) -> mcpsiem_lake::Lake {
        match &self.remote {
            None => mcpsiem_lake::Lake::open(self.lake_dir().to_str().unwrap()).expect("lake opens"),
            Some((location, options)) => mcpsiem_lake::Lake::open_with(location, options).expect("lake opens"),
        }
    }

    /// An `mcpsiem` command using this fixture's configuration.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mcpsiem"));
        // In the fixture's directory, so relative defaults (the detector's state file) stay there.
        command.current_dir(self.dir.path()).arg("--config").arg(&self.config_path).args(args);
        command
    }

    /// Every event id in the table's live files, read the way readers must (through the
    /// snapshot, retrying when compaction removed a listed file).
    pub fn event_ids(&self) -> Vec<String> {
        read_column(&self.lake(), mcpsiem_lake::Table::Events, "event_id")
    }
}

/// Reads one string column of every live file of a table.
pub fn read_column(lake: &mcpsiem_lake::Lake, table: mcpsiem_lake::Table, column: &str) -> Vec<String> {
    use arrow::array::AsArray;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    'snapshot: for _attempt in 0..20 {
        let snapshot = runtime.block_on(mcpsiem_lake::Snapshot::load(lake, table)).expect("snapshot loads");
        let mut values = Vec::new();
        for file in &snapshot.files {
            // Through the lake, so an object-store lake reads the same way as a directory.
            let handle = match runtime.block_on(lake.get(&file.path)) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue 'snapshot,
                Err(e) => panic!("reading {}: {e}", file.path),
            };
            let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(handle)
                .unwrap_or_else(|e| panic!("{} is not a readable Parquet file: {e}", file.path));
            let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), [column]);
            for batch in builder.with_projection(mask).build().unwrap() {
                let batch = batch.unwrap_or_else(|e| panic!("reading {}: {e}", file.path));
                values.extend(batch.column(0).as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_string()));
            }
        }
        return values;
    }
    panic!("the table kept changing under 20 snapshots in a row");
}

/// Ids that appear more than once, and ids expected but missing, for assertion messages.
pub fn id_differences(expected: &std::collections::HashSet<String>, found: &[String]) -> (Vec<String>, Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    let doubled: Vec<String> = found.iter().filter(|id| !seen.insert(id.as_str())).cloned().collect();
    let missing: Vec<String> = expected.iter().filter(|id| !seen.contains(id.as_str())).cloned().collect();
    (doubled, missing)
}

/// The attack scenarios among an alert's events (`benign` left out), given each generated
/// event's scenario by id.
pub fn attack_scenarios<'a>(
    alert: &mcpsiem_detect::Alert,
    scenario_of: &'a std::collections::HashMap<String, String>,
) -> Vec<&'a str> {
    alert.event_ids.iter().filter_map(|id| scenario_of.get(id).map(String::as_str)).filter(|s| *s != "benign").collect()
}

/// Whether consumer group `group` has committed the end of every partition of `topic`:
/// it has processed everything produced so far (the detectors commit what they processed).
pub fn group_caught_up(kafka: &KafkaConfig, group: &str, topic: &str, partitions: i32) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    // Never subscribes: asking for a group's committed offsets does not join it.
    let Ok(consumer) = kafka.client_config().set("group.id", group).create::<BaseConsumer>() else { return false };
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let timeout = std::time::Duration::from_secs(10);
    let Ok(committed) = consumer.committed_offsets(list, timeout) else { return false };
    (0..partitions).all(|p| {
        let Ok((_, high)) = consumer.fetch_watermarks(topic, p, timeout) else { return false };
        let done = committed.find_partition(topic, p).map(|e| e.offset());
        high == 0 || matches!(done, Some(Offset::Offset(next)) if next >= high)
    })
}

/// Every message of `topic` from the start, as JSON, read until `expected` arrived and
/// nothing more came for `settle` (or `timeout` passed).
pub fn read_topic_json(
    kafka: &KafkaConfig,
    topic: &str,
    expected: usize,
    settle: std::time::Duration,
    timeout: std::time::Duration,
) -> Vec<serde_json::Value> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("test-reader-{}", ulid::Ulid::new()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribed");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut last = std::time::Instant::now();
    while std::time::Instant::now() < deadline && (out.len() < expected || last.elapsed() < settle) {
        if let Some(Ok(message)) = consumer.poll(std::time::Duration::from_millis(200)) {
            let payload = message.payload().unwrap_or_default();
            // A record that is not JSON (shipped for the dead letters) comes back as its text.
            out.push(
                serde_json::from_slice(payload)
                    .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into_owned())),
            );
            last = std::time::Instant::now();
        }
    }
    out
}

/// The npm-installed MCP test programs (scripts/setup puts them in tests/mcp).
pub fn mcp_bin(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/node_modules/.bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/setup (npm ci in tests/mcp)", path.display());
    path
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something listens on `port`; fails if `child` exits first or after 30 s.
pub fn wait_for_port(port: u16, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the process on port {port} exited");
        assert!(std::time::Instant::now() < deadline, "nothing listens on {port} after 30 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits up to `limit` for `done` to hold; `what` names what never happened.
pub fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The `FAILPOINTS` value that aborts a child process the `n`-th time it reaches a
/// failpoint, from `name:n` (the process must be built with the `failpoints` feature, as
/// `scripts/test` builds it).
pub fn abort_at(point: &str) -> String {
    let (name, nth) = point.rsplit_once(':').expect("a failpoint as name:n");
    let nth: u32 = nth.parse().expect("n is a number");
    assert!(nth >= 1, "failpoints count from 1");
    if nth == 1 { format!("{name}=return") } else { format!("{name}={}*off->return", nth - 1) }
}

/// Waits up to `limit` for `child`, started with [`abort_at`], to abort at its failpoint
/// (killed by a signal, not exiting); `what` names the step that never came.
pub fn wait_for_abort(child: &mut std::process::Child, limit: std::time::Duration, what: &str) {
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.code().is_none(), "the process should abort at the failpoint: {status}");
}

/// The HTTP intake on `port` taking `key` (spool in the fixture's `spool/`), with
/// `extra_collect` lines added to its `[collect]` section.
pub fn intake_fixture(kafka: &KafkaConfig, port: u16, key: &str, extra_collect: &str) -> LakeFixture {
    LakeFixture::new(
        kafka,
        &format!(
            "[collect]\nspool_dir = \"spool\"\n{extra_collect}\n[collect.intake]\nlisten = \"127.0.0.1:{port}\"\n\
             [[collect.intake.api_keys]]\nname = \"t\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
            mcpsiem_runtime::auth::hash_key(key)
        ),
    )
}

/// `collect http` of `fixture`, once it listens on `port`.
pub fn start_intake(fixture: &LakeFixture, port: u16) -> std::process::Child {
    let mut intake = fixture.command(&["collect", "http"]).spawn().unwrap();
    wait_for_port(port, &mut intake);
    intake
}

/// A child process killed when the test ends, passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Events read back from a topic as JSON ([`read_topic_json`]), decoded as the ingester and
/// the detector decode them.
pub fn parse_events(records: &[serde_json::Value]) -> Vec<mcpsiem_event::OwnedEvent> {
    records
        .iter()
        .map(|record| {
            let bytes = record.to_string();
            mcpsiem_event::parse_event(bytes.as_bytes(), 1 << 20).expect("a valid event").into_owned()
        })
        .collect()
}

/// `collect proxy --http` in front of `upstream`, on a free port, with `extra` arguments; the
/// caller redirects its output and spawns it.
pub fn http_proxy_command(fixture: &LakeFixture, upstream: &str, extra: &[&str]) -> (std::process::Command, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["collect", "proxy", "--http", "--listen", &listen, "--upstream", upstream];
    args.extend_from_slice(extra);
    (fixture.command(&args), port)
}

/// Sends SIGTERM and waits up to 30 s for the process to end.
pub fn stop_with_sigterm(child: &mut std::process::Child, what: &str) {
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    wait_until(std::time::Duration::from_secs(30), &format!("{what} stops on SIGTERM"), || {
        child.try_wait().unwrap().is_some()
    });
}
