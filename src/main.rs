//! The `mcpsiem` command line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Args, Parser, Subcommand};
use mcpsiem::config::{Config, LogFormat};
use mcpsiem::generate::{GenOptions, Generator, Scenario};
use mcpsiem_event::Timestamp;

#[derive(Parser)]
#[command(name = "mcpsiem", version, about = "Streaming SIEM for Model Context Protocol audit logs")]
struct Cli {
    /// Configuration file (TOML). Default: $MCPSIEM_CONFIG, else ./mcpsiem.toml when present.
    #[arg(long, short, global = true, env = "MCPSIEM_CONFIG")]
    config: Option<PathBuf>,
    /// Override one setting, such as `--set kafka.brokers=localhost:9092`. Repeatable.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Generate realistic MCP audit traffic, with injected attacks on request.
    Gen(GenArgs),
    /// Print the event schema.
    Schema {
        /// Print the Arrow schema instead of the Markdown field table.
        #[arg(long)]
        arrow: bool,
    },
    /// Consume the events topic into the Parquet lake (exactly once), compacting closed hours.
    Ingest {
        /// Stop once no record arrived for this many seconds and all is committed
        /// (backfills, benchmarks). Default: run until SIGINT/SIGTERM.
        #[arg(long, value_name = "SECONDS")]
        stop_when_idle: Option<f64>,
        /// Stop after this many records, once they are committed (benchmarks).
        #[arg(long, value_name = "N")]
        stop_after_records: Option<u64>,
    },
    /// Merge the small files of closed hours of the lake into large ones (one pass).
    Compact {
        /// Seconds after its end an hour counts as closed; default ingest.compaction.settle_seconds.
        #[arg(long)]
        settle_seconds: Option<u64>,
    },
    /// Run the rules on the events topic and send alerts to the alerts topic.
    Detect {
        /// Stop once no record arrived for this many seconds (tests, backfills).
        #[arg(long, value_name = "SECONDS")]
        stop_when_idle: Option<f64>,
        /// Run the rules over the lake's events instead of the topic, printing the alerts as
        /// NDJSON on stdout (needs --from and --to).
        #[arg(long, requires_all = ["from", "to"])]
        replay: bool,
        /// Start of the replay (RFC 3339, inclusive).
        #[arg(long)]
        from: Option<String>,
        /// End of the replay (RFC 3339, exclusive).
        #[arg(long)]
        to: Option<String>,
    },
    /// Check and test rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Serve the query API (SQL over the lake) with its metrics, until SIGINT/SIGTERM.
    Serve,
    /// Run SQL over the lake and print the answer (tables: events, alerts, deadletters, audit_log).
    Query {
        sql: String,
        /// Rows from this time (RFC 3339), by each table's time column.
        #[arg(long)]
        start: Option<String>,
        /// Rows before this time (RFC 3339).
        #[arg(long)]
        end: Option<String>,
        /// At most this many rows (never more than query.max_rows).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, value_enum, default_value = "table")]
        format: mcpsiem::query_cmd::OutputFormat,
        /// Ask a running query service (http://host:9480) instead of reading the lake.
        #[arg(long)]
        server: Option<String>,
        /// The API key for --server.
        #[arg(long, env = "MCPSIEM_API_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// API keys of the query service.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Measure performance against named baselines.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Collect MCP traffic into audit events on the events topic.
    #[command(subcommand)]
    Collect(CollectCommand),
    /// Deliver alerts to chat, ticketing, paging and e-mail (docs/delivery.md).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Run every stage (intake, ingester, detector, alert delivery, query service) in one
    /// process, with an embedded Kafka broker unless kafka.brokers is set. Ctrl-C stops all.
    Up {
        /// Where everything lives: the lake, the broker's storage, keys, the outbox, state.
        /// Paths under `data/` in the configuration move here.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Port of the embedded broker (when kafka.brokers is empty).
        #[arg(long, default_value_t = 9092)]
        broker_port: u16,
        /// Also produce generated traffic with every injected attack and print alerts as they fire.
        #[arg(long)]
        demo: bool,
        /// Events the demo produces (over the last simulated day).
        #[arg(long, default_value_t = 20_000)]
        demo_events: u64,
        /// Events per second the demo produces.
        #[arg(long, default_value_t = 1_000)]
        demo_rate: u64,
    },
    /// Export signed evidence bundles for auditors, or verify one (docs/evidence.md).
    Export(ExportCommandArgs),
    /// Signing keys of evidence bundles.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the lake against its ledger: changed, removed or inserted files (docs/evidence.md).
    #[command(subcommand)]
    Lake(LakeCommand),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ExportCommandArgs {
    #[command(subcommand)]
    command: Option<ExportCommand>,
    /// Export the rows of this read-only SQL.
    #[arg(long, group = "selector")]
    sql: Option<String>,
    /// Export an alert (by alert_id) and the events it matched.
    #[arg(long, group = "selector")]
    alert: Option<String>,
    /// Export every event of an MCP session.
    #[arg(long, group = "selector")]
    session: Option<String>,
    /// Export every event carrying this token fingerprint.
    #[arg(long, group = "selector")]
    token: Option<String>,
    /// Export every event of this user (token subject or end-user id).
    #[arg(long, group = "selector")]
    user: Option<String>,
    /// Rows from this time (RFC 3339), by each table's time column.
    #[arg(long)]
    start: Option<String>,
    /// Rows before this time (RFC 3339).
    #[arg(long)]
    end: Option<String>,
    /// parquet, csv or jsonl.
    #[arg(long, default_value = "parquet")]
    format: String,
    /// Where to write the bundle (a .zip; never overwritten).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the outcome as JSON (with the process's peak memory).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Check a bundle's signature and every file's hash; exits non-zero if any check fails.
    Verify {
        bundle: PathBuf,
        /// The signer's public key (PEM), obtained from the operator, not from the bundle.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an Ed25519 key pair for signing bundles: DIR/NAME.key and DIR/NAME.pub.
    Generate {
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
        #[arg(long, default_value = "export")]
        name: String,
    },
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Verify every table (or --table) against its ledger; exits non-zero on any finding.
    Verify {
        /// events, deadletters or alerts; repeatable. Default: all.
        #[arg(long)]
        table: Vec<String>,
        /// A head recorded earlier (TABLE=SEQ:SHA256, as printed here and in bundle
        /// manifests): fails if the chain no longer holds it. Repeatable.
        #[arg(long)]
        anchor: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Run the delivery stage: the alerts topic to the configured destinations, through the
    /// durable outbox, until SIGINT/SIGTERM.
    Deliver,
    /// Send a sample alert to one destination now, to check its configuration.
    TestDestination { name: String },
    /// Resolve the PagerDuty incident an alert triggered.
    Resolve {
        #[arg(long)]
        destination: String,
        alert_id: String,
    },
    /// List the dead-lettered deliveries of the outbox (with the stage stopped), or queue
    /// them again with --retry.
    Dead {
        #[arg(long)]
        retry: bool,
    },
}

#[derive(Subcommand)]
enum CollectCommand {
    /// Sit between an MCP client and an MCP server, passing every byte through and recording
    /// each message: `collect proxy --stdio -- npx @modelcontextprotocol/server-everything`,
    /// or `collect proxy --http --listen 127.0.0.1:8931 --upstream http://127.0.0.1:3001/mcp`.
    Proxy {
        /// Run COMMAND as a stdio MCP server behind this process's stdin and stdout.
        #[arg(long, conflicts_with = "http", required_unless_present = "http")]
        stdio: bool,
        /// Proxy Streamable HTTP from --listen to --upstream.
        #[arg(long, requires_all = ["listen", "upstream"])]
        http: bool,
        /// Address the HTTP proxy listens on (HOST:PORT).
        #[arg(long)]
        listen: Option<String>,
        /// The MCP server's URL (its endpoint, such as http://host:3001/mcp).
        #[arg(long)]
        upstream: Option<String>,
        /// The stdio MCP server's command and arguments.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Follow JSON-lines logs of MCP gateways (agentgateway, Docker MCP gateway, our own
    /// format), through rotation, keeping read positions across restarts.
    Tail {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// auto (per line), mcpsiem, agentgateway or docker.
        #[arg(long, default_value = "auto")]
        format: mcpsiem::collect::tail::formats::LogFormat,
        /// For files with no saved position, start at their end (skip what is there).
        #[arg(long)]
        from_end: bool,
        /// Read every file to its end, ship it, and exit (a backfill).
        #[arg(long)]
        once: bool,
    },
    /// A minimal stdio MCP server that answers at once (the proxy benchmark's upstream).
    #[command(hide = true)]
    EchoServer,
    /// Take events over HTTP: `POST /v1/events` (JSON, JSON array or NDJSON; gzip accepted).
    Http {
        /// HOST:PORT; default collect.intake.listen.
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Print a new random key and the `[[query.api_keys]]` entry (its hash) to add to the
    /// configuration.
    Create {
        /// Who gets the key, as the audit log names them.
        #[arg(long)]
        name: String,
        /// analyst (query), auditor (query and export) or admin (also the audit log).
        #[arg(long, default_value = "analyst")]
        role: String,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load every rule and report each problem as `file:line: kind: reason`; exits non-zero
    /// when a rule was skipped.
    Check {
        /// Rule files or directories; default detect.rules.
        paths: Vec<PathBuf>,
        /// Print the problems as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print `rules/README.md`: a table of every rule with its threat, kind, level, fields
    /// and tags, generated from the rule files.
    Doc {
        /// Rule files or directories; default detect.rules.
        paths: Vec<PathBuf>,
    },
    /// Run every rule against the test events beside it (`*.tests.yml`) and report per
    /// rule; exits non-zero when a case fails or a rule lacks a match or a close-miss case.
    Test {
        /// Rule files or directories; default detect.rules.
        paths: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags) with secrets masked.
    Show,
}

#[derive(Subcommand)]
enum BenchCommand {
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
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct GenArgs {
    /// How many events to generate.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Random seed: the same seed gives the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start of the simulated period (RFC 3339).
    #[arg(long, default_value = "2026-11-02T00:00:00Z")]
    start: String,
    /// Length of the simulated period in days.
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// Number of simulated users.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Attacks to inject: `all`, or a comma-separated list of scenario names (see --list-attacks).
    #[arg(long, value_delimiter = ',')]
    attacks: Vec<String>,
    /// How many times each attack is injected.
    #[arg(long, default_value_t = 1)]
    attack_repeats: u32,
    /// List the attack scenarios and exit.
    #[arg(long)]
    list_attacks: bool,
    /// Write NDJSON here (`-` for stdout). Default: stdout, unless --kafka is given.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Produce to the events topic of kafka.brokers instead of writing a file.
    #[arg(long)]
    kafka: bool,
    /// Events per second when producing (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let (config, sources) = Config::load(cli.config.as_deref(), &cli.overrides)?;
    init_logging(&config);
    match cli.command {
        Command::Config(ConfigCommand::Show) => {
            match &sources.file {
                Some(file) => println!("# file: {}", file.display()),
                None => println!("# file: none (defaults, environment and flags only)"),
            }
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Gen(args) => generate(&config, args),
        Command::Schema { arrow } => {
            if arrow {
                println!("{:#?}", mcpsiem_event::schema::arrow_schema());
            } else {
                print!("{}", mcpsiem_event::schema::markdown_field_table());
            }
            Ok(())
        }
        Command::Ingest { stop_when_idle, stop_after_records } => {
            let idle = stop_when_idle.map(Duration::from_secs_f64);
            let report = mcpsiem::ingest_cmd::run_ingest(&config, idle, stop_after_records)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Detect { replay: true, from, to, .. } => {
            let parse = |name: &str, value: Option<String>| -> Result<Timestamp> {
                let value = value.with_context(|| format!("--{name} is required with --replay"))?;
                Timestamp::parse(&value).with_context(|| format!("--{name} {value}"))
            };
            let summary = mcpsiem::detect_cmd::run_replay(&config, parse("from", from)?, parse("to", to)?)?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Detect { stop_when_idle, .. } => {
            let summary = mcpsiem::detect_cmd::run_detect(&config, stop_when_idle.map(Duration::from_secs_f64))?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Serve => mcpsiem::query_cmd::run_serve(&config),
        Command::Query { sql, start, end, limit, format, server, key } => {
            let args = mcpsiem::query_cmd::QueryArgs {
                sql: &sql,
                start: start.as_deref(),
                end: end.as_deref(),
                limit,
                output: format,
            };
            match server {
                Some(server) => {
                    let key = key.context("--server needs an API key: --key or MCPSIEM_API_KEY")?;
                    mcpsiem::query_cmd::run_remote_query(&server, &key, &args)
                }
                None => mcpsiem::query_cmd::run_query(&config, &args),
            }
        }
        Command::Apikey(ApikeyCommand::Create { name, role }) => {
            let role = match role.as_str() {
                "analyst" => mcpsiem_query::Role::Analyst,
                "auditor" => mcpsiem_query::Role::Auditor,
                "admin" => mcpsiem_query::Role::Admin,
                other => anyhow::bail!("--role {other}: use analyst, auditor or admin"),
            };
            mcpsiem::query_cmd::create_api_key(&name, role);
            Ok(())
        }
        Command::Rules(RulesCommand::Check { paths, json }) => mcpsiem::detect_cmd::check(&config, &paths, json),
        Command::Rules(RulesCommand::Doc { paths }) => {
            let paths = if paths.is_empty() { config.detect.rules.clone() } else { paths };
            print!("{}", mcpsiem_detect::rules_doc::markdown(&paths, &config.detect.lists));
            Ok(())
        }
        Command::Rules(RulesCommand::Test { paths, json }) => mcpsiem::detect_cmd::test(&config, &paths, json),
        Command::Compact { settle_seconds } => {
            let summary = mcpsiem::ingest_cmd::run_compact(&config, settle_seconds)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Collect(CollectCommand::Proxy { stdio: true, command, .. }) => {
            let code = mcpsiem::collect_cmd::run_stdio_proxy(&config, &command)?;
            std::process::exit(code);
        }
        Command::Collect(CollectCommand::Proxy { listen, upstream, .. }) => {
            let (listen, upstream) = (listen.unwrap_or_default(), upstream.unwrap_or_default());
            mcpsiem::collect_cmd::run_http_proxy(&config, &listen, &upstream)
        }
        Command::Collect(CollectCommand::EchoServer) => mcpsiem::collect::echo_server::run(),
        Command::Collect(CollectCommand::Tail { paths, format, from_end, once }) => {
            let summary = mcpsiem::collect_cmd::run_tail(&config, &paths, format, from_end, once)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Collect(CollectCommand::Http { listen }) => {
            mcpsiem::collect_cmd::run_intake(&config, listen.as_deref().unwrap_or(&config.collect.intake.listen))
        }
        Command::Bench(BenchCommand::Proxy { messages, server, json }) => {
            let report = mcpsiem::bench_collect::proxy_bench(server.as_deref(), messages.max(10))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Delivery { rate, seconds, json }) => {
            let report = mcpsiem::bench_delivery::delivery_bench(rate.max(1), seconds.max(1))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Tail { lines, json }) => {
            let report = mcpsiem::bench_collect::tail_bench(lines.max(1))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Alerts(AlertsCommand::Deliver) => {
            let summary = mcpsiem::alerts_cmd::run_deliver(&config)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Alerts(AlertsCommand::TestDestination { name }) => {
            mcpsiem::alerts_cmd::test_destination(&config, &name)
        }
        Command::Alerts(AlertsCommand::Resolve { destination, alert_id }) => {
            mcpsiem::alerts_cmd::resolve(&config, &destination, &alert_id)
        }
        Command::Alerts(AlertsCommand::Dead { retry }) => mcpsiem::alerts_cmd::dead_letters(&config, retry),
        Command::Export(ExportCommandArgs { command: Some(ExportCommand::Verify { bundle, key, json }), .. }) => {
            if !mcpsiem::evidence_cmd::verify(&bundle, &key, json)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Export(args) => {
            use mcpsiem_query::export::Selector;
            let selector = match (args.sql, args.alert, args.session, args.token, args.user) {
                (Some(v), ..) => Selector::Sql(v),
                (_, Some(v), ..) => Selector::Alert(v),
                (_, _, Some(v), ..) => Selector::Session(v),
                (_, _, _, Some(v), _) => Selector::Token(v),
                (.., Some(v)) => Selector::User(v),
                _ => anyhow::bail!(
                    "say what to export: --sql, --alert, --session, --token or --user (or `export verify`)"
                ),
            };
            let out =
                args.out.ok_or_else(|| anyhow::anyhow!("--out FILE.zip is required: where to write the bundle"))?;
            mcpsiem::evidence_cmd::export(
                &config,
                mcpsiem::evidence_cmd::ExportArgs {
                    selector,
                    start: args.start,
                    end: args.end,
                    format: args.format,
                    out,
                    json: args.json,
                },
            )
        }
        Command::Up { data_dir, broker_port, demo, demo_events, demo_rate } => mcpsiem::up::run_up(
            &config,
            &mcpsiem::up::UpOptions { data_dir, broker_port, demo, demo_events, demo_rate },
        ),
        Command::Keys(KeysCommand::Generate { dir, name }) => mcpsiem::evidence_cmd::generate_keys(&dir, &name),
        Command::Lake(LakeCommand::Verify { table, anchor, json }) => {
            if !mcpsiem::lake_cmd::verify(&config, &table, &anchor, json)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Decode { events, rounds, json }) => {
            eprintln!("generating {events} events…");
            let corpus = mcpsiem::bench::NdjsonCorpus::generate(events, 42);
            let report = mcpsiem::bench::decode_bench(&corpus, rounds);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Detect { events, rounds, json }) => {
            eprintln!("generating {events} events…");
            let corpus = mcpsiem::bench::NdjsonCorpus::generate(events, 42);
            let mut lists = config.detect.lists.clone();
            // The pack's shadow-server rule needs an inventory; use the generator's.
            lists.entry("approved_servers".into()).or_insert_with(mcpsiem::generate::approved_server_names);
            let report = mcpsiem::bench_detect::detect_bench(&corpus, &config.detect.rules, &lists, rounds)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Noise { events, attack_events, seed, json }) => {
            let mut lists = config.detect.lists.clone();
            lists.entry("approved_servers".into()).or_insert_with(mcpsiem::generate::approved_server_names);
            let report = mcpsiem::bench_noise::noise_bench(&config.detect.rules, &lists, events, attack_events, seed)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            if !report.missed_scenarios.is_empty() {
                anyhow::bail!("scenarios no rule detected: {:?}", report.missed_scenarios);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Latency { rate, seconds, json }) => {
            let mut lists = config.detect.lists.clone();
            lists.entry("approved_servers".into()).or_insert_with(mcpsiem::generate::approved_server_names);
            let report = mcpsiem::bench_latency::latency_bench(&config.detect.rules, &lists, rate.max(1), seconds)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Export { events, days, dir, formats, json }) => {
            let options = mcpsiem::bench_export::ExportBenchOptions { events, days, dir, formats };
            let report = mcpsiem::bench_export::export_bench(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Query { events, days, runs, dir, only, json }) => {
            let options = mcpsiem::bench_query::QueryBenchOptions { events, days, runs, dir, only };
            let report = mcpsiem::bench_query::query_bench(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Ingest { events, partitions, rounds, dir, json }) => {
            let options = mcpsiem::bench_ingest::IngestBenchOptions { events, partitions, rounds, dir };
            let report = mcpsiem::bench_ingest::ingest_bench(&options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn parse_attacks(names: &[String]) -> Result<Vec<Scenario>> {
    if names.iter().any(|n| n == "all") {
        return Ok(Scenario::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            Scenario::parse(name).with_context(|| {
                let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown attack `{name}`; known: all, {}", known.join(", "))
            })
        })
        .collect()
}

fn generate(config: &Config, args: GenArgs) -> Result<()> {
    if args.list_attacks {
        for scenario in Scenario::ALL {
            println!("{:<26} {}", scenario.name(), scenario.description());
        }
        return Ok(());
    }
    let options = GenOptions {
        seed: args.seed,
        events: args.events,
        start: Timestamp::parse(&args.start).with_context(|| format!("--start {}", args.start))?,
        days: args.days,
        users: args.users,
        attacks: parse_attacks(&args.attacks)?,
        attack_repeats: args.attack_repeats,
        token_key: if config.site.token_key.is_empty() {
            GenOptions::default().token_key
        } else {
            config.site.token_key.clone()
        },
    };
    let mut generator = Generator::new(options);
    let bar = mcpsiem::progress::counter(args.events, "events");
    let started = Instant::now();
    if args.kafka {
        if config.kafka.brokers.is_empty() {
            bail!(
                "--kafka needs kafka.brokers: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime
            .block_on(mcpsiem::kafka_out::ensure_topic(
                &config.kafka,
                &config.kafka.events_topic,
                config.kafka.partitions,
            ))
            .with_context(|| format!("creating topic {} on {}", config.kafka.events_topic, config.kafka.brokers))?;
        let producer = mcpsiem::kafka_out::EventProducer::new(&config.kafka).context("creating the Kafka producer")?;
        let mut sent = 0u64;
        let mut payload = Vec::with_capacity(2048);
        for event in generator.by_ref() {
            payload.clear();
            event.write_json(&mut payload);
            producer.send(mcpsiem_event::kafka::event_key(&event), &payload)?;
            sent += 1;
            bar.inc(1);
            if args.rate > 0 && sent.is_multiple_of(50) {
                let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let report = producer.flush(Duration::from_secs(120))?;
        bar.finish_and_clear();
        if report.failed > 0 || report.delivered != sent {
            bail!(
                "{} of {sent} events were not delivered to Kafka ({} failed)",
                sent - report.delivered,
                report.failed
            );
        }
        eprintln!("produced {sent} events to {} in {:.1?}", config.kafka.events_topic, started.elapsed());
    } else {
        let out: Box<dyn Write> = match args.out.as_deref() {
            None => Box::new(std::io::stdout().lock()),
            Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdout().lock()),
            Some(path) => {
                Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)
            }
        };
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let mut line = Vec::with_capacity(2048);
        for event in generator.by_ref() {
            line.clear();
            event.write_json(&mut line);
            line.push(b'\n');
            out.write_all(&line)?;
            bar.inc(1);
        }
        out.flush()?;
        bar.finish_and_clear();
    }
    let summary: Vec<String> = generator.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("scenarios: {}", summary.join(" "));
    Ok(())
}
