//! `mcpsiem bench proxy` and `mcpsiem bench tail`: what collecting costs.
//!
//! - proxy: round-trip time of one request through `collect proxy --stdio` against the
//!   same server connected directly, per message, shipping to a local Tansu broker.
//! - tail: lines per second `collect tail --once` reads, maps and ships (until Kafka has
//!   acknowledged every event) against reading and JSON-parsing the same file.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use mcpsiem_runtime::broker::TansuBroker;

/// Latency percentiles of one way of connecting.
#[derive(Debug, Serialize)]
pub struct LatencyFigures {
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

#[derive(Debug, Serialize)]
pub struct ProxyBenchReport {
    pub server: String,
    pub messages: usize,
    pub direct: LatencyFigures,
    pub proxied: LatencyFigures,
    pub added_p50_us: f64,
    pub added_p99_us: f64,
    pub p50_ratio: f64,
    pub p99_ratio: f64,
    pub events_shipped: u64,
}

impl std::fmt::Display for ProxyBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "proxy latency, {} tools/call round trips to {}", self.messages, self.server)?;
        writeln!(f, "{:<10} {:>10} {:>10} {:>10}", "", "p50 µs", "p99 µs", "mean µs")?;
        for (name, l) in [("direct", &self.direct), ("proxied", &self.proxied)] {
            writeln!(f, "{name:<10} {:>10.1} {:>10.1} {:>10.1}", l.p50_us, l.p99_us, l.mean_us)?;
        }
        writeln!(
            f,
            "added by the proxy: p50 {:+.1} µs ({:.2}x), p99 {:+.1} µs ({:.2}x); {} events shipped",
            self.added_p50_us, self.p50_ratio, self.added_p99_us, self.p99_ratio, self.events_shipped
        )
    }
}

/// A stdio MCP client that times each request's round trip.
struct StdioClient {
    child: Child,
    input: BufWriter<std::process::ChildStdin>,
    output: BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl StdioClient {
    fn start(mut command: Command) -> Result<Self> {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().context("starting the server")?;
        let input = BufWriter::new(child.stdin.take().expect("piped"));
        let output = BufReader::new(child.stdout.take().expect("piped"));
        let mut client = Self { child, input, output, next_id: 0 };
        client.request(
            "initialize",
            serde_json::json!({"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "mcpsiem-bench", "version": env!("CARGO_PKG_VERSION")}}),
        )?;
        client.notify("notifications/initialized")?;
        client.request("tools/list", serde_json::json!({}))?;
        Ok(client)
    }

    fn notify(&mut self, method: &str) -> Result<()> {
        writeln!(self.input, "{}", serde_json::json!({"jsonrpc": "2.0", "method": method}))?;
        self.input.flush()?;
        Ok(())
    }

    /// Sends a request and waits for the answer with its id; returns the round trip.
    fn request(&mut self, method: &str, params: serde_json::Value) -> Result<Duration> {
        self.next_id += 1;
        let id = self.next_id;
        let message = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let started = Instant::now();
        writeln!(self.input, "{message}")?;
        self.input.flush()?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.output.read_line(&mut line)? == 0 {
                bail!("the server closed its output");
            }
            let answer: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if answer.get("id").and_then(serde_json::Value::as_u64) == Some(id) {
                return Ok(started.elapsed());
            }
        }
    }

    fn close(mut self) -> Result<()> {
        drop(self.input);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("the server did not exit after its input closed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

fn figures(mut samples: Vec<Duration>) -> LatencyFigures {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1e6;
    LatencyFigures { p50_us: at(0.5), p99_us: at(0.99), mean_us: mean }
}

fn time_calls(client: &mut StdioClient, messages: usize) -> Result<Vec<Duration>> {
    let text = "x".repeat(200);
    let mut samples = Vec::with_capacity(messages);
    for i in 0..messages + messages / 10 {
        let took = client.request(
            "tools/call",
            serde_json::json!({"name": "echo", "arguments": {"message": format!("{i} {text}")}}),
        )?;
        // The first tenth warms caches and connections and is not counted.
        if i >= messages / 10 {
            samples.push(took);
        }
    }
    Ok(samples)
}

/// Runs the proxy benchmark; `server` is the MCP server's command line (default: the
/// built-in echo server).
pub fn proxy_bench(server: Option<&str>, messages: usize) -> Result<ProxyBenchReport> {
    let exe = crate::mcpsiem_exe()?;
    let server_command: Vec<String> = match server {
        Some(command) => command.split_whitespace().map(str::to_owned).collect(),
        None => vec![exe.display().to_string(), "collect".into(), "echo-server".into()],
    };
    let dir = tempfile::tempdir()?;
    let broker = TansuBroker::start(&dir.path().join("broker"), None)?;
    let topic = "bench-proxy.events";

    let mut direct = Command::new(&server_command[0]);
    direct.args(&server_command[1..]);
    let mut client = StdioClient::start(direct)?;
    eprintln!("timing {messages} calls directly…");
    let direct_samples = time_calls(&mut client, messages)?;
    client.close()?;

    let mut proxied = Command::new(&exe);
    proxied
        .args(["--set", &format!("kafka.brokers={}", broker.bootstrap())])
        .args(["--set", &format!("kafka.events_topic={topic}")])
        .args(["--set", &format!("collect.spool_dir={}", dir.path().join("spool").display())])
        .args(["--set", "log.level=warn"])
        .args(["collect", "proxy", "--stdio", "--"])
        .args(&server_command);
    let mut client = StdioClient::start(proxied)?;
    eprintln!("timing {messages} calls through the proxy…");
    let proxied_samples = time_calls(&mut client, messages)?;
    client.close()?;
    let kafka = mcpsiem_runtime::kafka::KafkaConfig {
        brokers: broker.bootstrap(),
        events_topic: topic.into(),
        ..Default::default()
    };
    let events_shipped = count_messages(&kafka, topic)?;

    let (direct, proxied) = (figures(direct_samples), figures(proxied_samples));
    Ok(ProxyBenchReport {
        server: server_command.join(" "),
        messages,
        added_p50_us: proxied.p50_us - direct.p50_us,
        added_p99_us: proxied.p99_us - direct.p99_us,
        p50_ratio: proxied.p50_us / direct.p50_us,
        p99_ratio: proxied.p99_us / direct.p99_us,
        direct,
        proxied,
        events_shipped,
    })
}

/// Messages on `topic`, by the partitions' high watermarks.
fn count_messages(kafka: &mcpsiem_runtime::kafka::KafkaConfig, topic: &str) -> Result<u64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka.client_config().set("group.id", "bench-count").create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut total = 0u64;
    for t in metadata.topics() {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            total += (high - low).max(0) as u64;
        }
    }
    Ok(total)
}

#[derive(Debug, Serialize)]
pub struct TailBenchReport {
    pub lines: u64,
    pub file_bytes: u64,
    pub parse_only_lines_per_sec: f64,
    pub tail_lines_per_sec: f64,
    /// The tailer's rate over the parse-only rate (1.0: shipping costs nothing).
    pub ratio: f64,
    pub delivered: u64,
}

impl std::fmt::Display for TailBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "tail throughput, {} agentgateway lines ({:.1} MiB)",
            self.lines,
            self.file_bytes as f64 / 1048576.0
        )?;
        writeln!(f, "read + JSON parse only: {:>12.0} lines/s", self.parse_only_lines_per_sec)?;
        writeln!(
            f,
            "collect tail --once:    {:>12.0} lines/s (mapped, shipped, acknowledged)",
            self.tail_lines_per_sec
        )?;
        writeln!(f, "ratio: {:.2}x of the parse-only rate; {} events in Kafka", self.ratio, self.delivered)
    }
}

fn write_gateway_log(path: &Path, lines: u64) -> Result<u64> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for seq in 0..lines {
        writeln!(
            out,
            r#"{{"level":"info","time":"2026-11-20T{:02}:{:02}:{:02}.{:03}Z","scope":"request","gateway":"bind/3000","route":"mcp","src.addr":"10.0.{}.{}:4{:04}","http.method":"POST","http.path":"/mcp","http.status":200,"protocol":"mcp","mcp.method.name":"tools/call","gen_ai.tool.name":"tool_{}","mcp.session.id":"{:016x}","mcp.target":"server-{}","jwt.sub":"user{}@example.com","duration":"{}ms"}}"#,
            seq / 3_600_000 % 24,
            seq / 60_000 % 60,
            seq / 1000 % 60,
            seq % 1000,
            seq % 7,
            seq % 250,
            seq % 10_000,
            seq % 40,
            seq / 50,
            seq % 12,
            seq % 300,
            seq % 90 + 1
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

pub fn tail_bench(lines: u64) -> Result<TailBenchReport> {
    let dir = tempfile::tempdir()?;
    let log: PathBuf = dir.path().join("agentgateway.log");
    eprintln!("writing {lines} agentgateway lines…");
    let file_bytes = write_gateway_log(&log, lines)?;

    // The baseline: read each line and parse it as JSON, nothing more.
    let started = Instant::now();
    let mut parsed = 0u64;
    for line in BufReader::with_capacity(256 * 1024, std::fs::File::open(&log)?).split(b'\n') {
        let value: serde_json::Value = serde_json::from_slice(&line?)?;
        parsed += u64::from(value.is_object());
    }
    let parse_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(parsed == lines, "parsed {parsed} of {lines} lines");

    let broker = TansuBroker::start(&dir.path().join("broker"), None)?;
    let kafka = mcpsiem_runtime::kafka::KafkaConfig {
        brokers: broker.bootstrap(),
        events_topic: "bench-tail.events".into(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(mcpsiem_runtime::producer::ensure_topic(&kafka, &kafka.events_topic, 3))?;
    let collect = mcpsiem_collect::config::CollectConfig { spool_dir: dir.path().join("spool"), ..Default::default() };
    let sink = mcpsiem_collect::sink::EventSink::start(&kafka, &collect, mcpsiem_event::DEFAULT_MAX_RECORD_BYTES)?;
    let mapper = mcpsiem_collect::tail::formats::LineMapper {
        format: mcpsiem_collect::tail::formats::LogFormat::Gateway(
            &mcpsiem_collect::tail::formats::agentgateway::Agentgateway,
        ),
        template: mcpsiem_event::OwnedEvent::new(
            mcpsiem_event::EventId::new(),
            mcpsiem_event::Timestamp::now(),
            mcpsiem_event::EventKind::Message,
        ),
        capture: mcpsiem_collect::capture::Capture::new(&collect.capture)?,
    };
    let settings = mcpsiem_collect::tail::TailSettings {
        state_dir: dir.path().join("state"),
        poll: Duration::from_millis(50),
        max_line_bytes: 1 << 20,
        start_at_end: false,
        once: true,
    };
    eprintln!("tailing it into Kafka…");
    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let summary = mcpsiem_collect::tail::run(std::slice::from_ref(&log), &mapper, &sink, &settings, stop)?;
    let tail_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(summary.lines == lines, "the tailer read {} of {lines} lines", summary.lines);
    let (delivered, failed) = sink.shipper().delivered();
    anyhow::ensure!(failed == 0 && delivered == lines, "{delivered} of {lines} delivered, {failed} failed");

    let parse_rate = lines as f64 / parse_seconds;
    let tail_rate = lines as f64 / tail_seconds;
    Ok(TailBenchReport {
        lines,
        file_bytes,
        parse_only_lines_per_sec: parse_rate,
        tail_lines_per_sec: tail_rate,
        ratio: tail_rate / parse_rate,
        delivered,
    })
}
