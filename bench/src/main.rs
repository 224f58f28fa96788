//! `mcpsiem-bench`: measured figures against named baselines, in the same run.
//!
//! Its own binary, so that `mcpsiem` links none of the baselines (rsigma, the naive
//! sigma-rust loop). Benchmarks that time a stage as its own process run the `mcpsiem`
//! binary next to this one (`cargo build --release` builds both).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use mcpsiem_runtime::report::print_report;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "mcpsiem-bench", version, about = "Measure mcpsiem against named baselines")]
struct Cli {
    /// Rule files or directories the detector benchmarks load.
    #[arg(long, global = true, default_value = "rules")]
    rules: Vec<PathBuf>,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The alert queue's first page (`GET /api/v1/alerts?state=new`…) through `mcpsiem
    /// serve` on a lake of many alerts and changes, against the plain newest-alerts query.
    Triage {
        #[arg(long, default_value_t = 1_000_000)]
        alerts: u64,
        #[arg(long, default_value_t = 100_000)]
        changes: u64,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Where the generated lake is kept (reused by the next run with the same sizes).
        #[arg(long, default_value = "data/bench-triage")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Signed bundles of a generated lake (one day, then all of it): peak memory of
    /// `mcpsiem export` against the size of the data.
    Export {
        #[arg(long, default_value_t = 5_000_000)]
        events: u64,
        #[arg(long, default_value_t = 10)]
        days: u32,
        /// Where the generated lake lives (reused across runs with the same options).
        #[arg(long, default_value = "target/bench-export")]
        dir: PathBuf,
        /// Formats of the whole-lake exports.
        #[arg(long, value_delimiter = ',', default_value = "parquet,jsonl")]
        formats: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Peak memory of `mcpsiem serve` under several wide answers at once, in every format
    /// and over the PostgreSQL protocol, against query.total_memory_bytes.
    Answers {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 2000)]
        width: usize,
        #[arg(long, default_value_t = 8)]
        concurrent: usize,
        /// Each query's own limit (query.memory_limit_bytes).
        #[arg(long, default_value_t = 1 << 30)]
        memory_limit_bytes: u64,
        /// Every running query's together (query.total_memory_bytes).
        #[arg(long, default_value_t = 1 << 30)]
        total_memory_bytes: u64,
        #[arg(long)]
        json: bool,
    },
    /// Forensic queries on a generated lake through the query engine and through DuckDB.
    Query {
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Where the generated lake is kept (and reused by the next run with the same size).
        #[arg(long, default_value = "data/bench-query")]
        dir: std::path::PathBuf,
        /// Only these queries (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Round-trip latency added by the stdio proxy, against the same server connected directly.
    Proxy {
        #[arg(long, default_value_t = 5000)]
        messages: usize,
        /// The MCP server's command line (default: a built-in server that answers at once).
        #[arg(long)]
        server: Option<String>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Alert delivery latency (alerts topic to a webhook receiver) at a steady rate, and
    /// burst throughput.
    Delivery {
        #[arg(long, default_value_t = 100)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lines per second `collect tail` ships, against reading and JSON-parsing the same file.
    Tail {
        #[arg(long, default_value_t = 500_000)]
        lines: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decoder throughput against serde_json::Value parsing of the same NDJSON.
    Decode {
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Detector throughput with the rule pack against a naive sigma-rust loop.
    Detect {
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// More rule directories (e.g. a SigmaHQ checkout's `rules/`): measures the scaling
        /// curve at `--sizes` rules instead, the pack plus subsets of these.
        #[arg(long = "rules-dir")]
        rules_dirs: Vec<PathBuf>,
        /// Rewrite each extra rule's `logsource` to `{product: mcp}`, so that it is
        /// evaluated on every event (rules for other products would not load otherwise).
        #[arg(long)]
        rewrite_logsource: bool,
        /// Total detection rules at each point of the curve.
        #[arg(long, value_delimiter = ',', default_value = "27,300,1000,3000")]
        sizes: Vec<usize>,
        /// Events the slow references (no index, naive loop) and the verdict checks run on.
        #[arg(long, default_value_t = 2_000)]
        baseline_events: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Alerts per rule on benign-only generated traffic, and which rules catch each
    /// injected attack scenario (another seed than the rule tests).
    Noise {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        attack_events: u64,
        #[arg(long, default_value_t = 7_331)]
        seed: u64,
        /// The generator's traffic: `real-world` (public servers' tools, stdio proxies,
        /// gateway logs without tokens) or `catalog` (the curated one the rule tests use).
        #[arg(long, default_value = "real-world", value_parser = parse_profile)]
        profile: mcpsiem_gen::TrafficProfile,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End-to-end latency from producing an event to its alert on the alerts topic.
    Latency {
        /// Events per second produced (one in a hundred is a probe that must alert).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ingest throughput against a bare rdkafka consumer on the same local Tansu broker,
    /// lake bytes per event against NDJSON, and the ingester's peak memory.
    Ingest {
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Keep the broker and lakes here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also ingest into a lake on a local S3-protocol server (moto, from scripts/setup)
        /// in the same rounds, and report the throughput against the local directory's.
        #[arg(long)]
        s3: bool,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        BenchCommand::Answers { rows, width, concurrent, memory_limit_bytes, total_memory_bytes, json } => {
            let options = mcpsiem_bench::answers::AnswerBenchOptions {
                rows: rows.max(1),
                width,
                concurrent: concurrent.max(1),
                memory_limit_bytes,
                total_memory_bytes,
            };
            print_report(&mcpsiem_bench::answers::answers_bench(&options)?, json)?;
            Ok(())
        }
        BenchCommand::Proxy { messages, server, json } => {
            let report = mcpsiem_bench::collect::proxy_bench(server.as_deref(), messages.max(10))?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Delivery { rate, seconds, json } => {
            let report = mcpsiem_bench::delivery::delivery_bench(rate.max(1), seconds.max(1))?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Tail { lines, json } => {
            let report = mcpsiem_bench::collect::tail_bench(lines.max(1))?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Decode { events, rounds, json } => {
            eprintln!("generating {events} events…");
            let corpus = mcpsiem_bench::decode::NdjsonCorpus::generate(events, 42);
            let report = mcpsiem_bench::decode::decode_bench(&corpus, rounds);
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Detect { events, rounds, rules_dirs, rewrite_logsource, sizes, baseline_events, json } => {
            eprintln!("generating {events} events…");
            let corpus = mcpsiem_bench::decode::NdjsonCorpus::generate(events, 42);
            let mut lists = mcpsiem_detect::DetectConfig::default().lists;
            // The pack's shadow-server rule needs an inventory; use the generator's.
            approve_generated_servers(&mut lists);
            if !rules_dirs.is_empty() {
                let work_dir = PathBuf::from("target/bench-detect-rules");
                let options = mcpsiem_bench::detect_scaling::ScalingOptions {
                    pack: &cli.rules,
                    extra_dirs: &rules_dirs,
                    rewrite_logsource,
                    sizes: &sizes,
                    baseline_events,
                    work_dir: &work_dir,
                };
                let report = mcpsiem_bench::detect_scaling::detect_scaling(&corpus, &lists, &options)?;
                print_report(&report, json)?;
                return Ok(());
            }
            let report = mcpsiem_bench::detect::detect_bench(&corpus, &cli.rules, &lists, rounds)?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Noise { events, attack_events, seed, profile, json } => {
            let mut lists = mcpsiem_detect::DetectConfig::default().lists;
            approve_generated_servers(&mut lists);
            let report = mcpsiem_bench::noise::noise_bench(&cli.rules, &lists, events, attack_events, seed, profile)?;
            print_report(&report, json)?;
            if !report.missed_scenarios.is_empty() {
                anyhow::bail!("scenarios no rule detected: {:?}", report.missed_scenarios);
            }
            Ok(())
        }
        BenchCommand::Latency { rate, seconds, json } => {
            let mut lists = mcpsiem_detect::DetectConfig::default().lists;
            approve_generated_servers(&mut lists);
            let report = mcpsiem_bench::latency::latency_bench(&cli.rules, &lists, rate.max(1), seconds)?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Export { events, days, dir, formats, json } => {
            let options = mcpsiem_bench::export::ExportBenchOptions { events, days, dir, formats };
            let report = mcpsiem_bench::export::export_bench(&options)?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Triage { alerts, changes, days, runs, dir, json } => {
            let options = mcpsiem_bench::triage::TriageBenchOptions { alerts, changes, days, runs, dir };
            let report = mcpsiem_bench::triage::triage_bench(&options)?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Query { events, days, runs, dir, only, json } => {
            let options = mcpsiem_bench::query::QueryBenchOptions { events, days, runs, dir, only };
            let report = mcpsiem_bench::query::query_bench(&options)?;
            print_report(&report, json)?;
            Ok(())
        }
        BenchCommand::Ingest { events, partitions, rounds, dir, s3, json } => {
            let options = mcpsiem_bench::ingest::IngestBenchOptions { events, partitions, rounds, dir, s3 };
            let report = mcpsiem_bench::ingest::ingest_bench(&options)?;
            print_report(&report, json)?;
            Ok(())
        }
    }
}

/// The generator's benign servers as the approved inventory, unless one is configured: the
/// default configuration's is empty, which would make every generated server unapproved.
fn parse_profile(name: &str) -> Result<mcpsiem_gen::TrafficProfile, String> {
    mcpsiem_gen::TrafficProfile::parse(name).ok_or_else(|| format!("unknown profile `{name}`: real-world or catalog"))
}

fn approve_generated_servers(lists: &mut std::collections::HashMap<String, Vec<String>>) {
    let approved = lists.entry("approved_servers".into()).or_default();
    if approved.is_empty() {
        *approved = mcpsiem_gen::approved_server_names_all_profiles();
    }
}
