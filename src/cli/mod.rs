//! The command line's flags: one module per area, each with its commands' `run`.

pub mod alerts;
pub mod collect;
pub mod evidence;
pub mod generate;
pub mod incidents;
pub mod query;
pub mod rules;
pub mod silence;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mcpsiem", version, about = "Streaming SIEM for Model Context Protocol audit logs")]
pub struct Cli {
    /// Configuration file (TOML). Default: $MCPSIEM_CONFIG, else ./mcpsiem.toml when present.
    #[arg(long, short, global = true, env = "MCPSIEM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one setting, such as `--set kafka.brokers=localhost:9092`. Repeatable.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Generate realistic MCP audit traffic, with injected attacks on request.
    Gen(generate::GenArgs),
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
        /// Stop once the detector holds its partitions and no record arrived for this many
        /// seconds, also on an empty topic (tests, backfills).
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
    Rules(rules::RulesCommand),
    /// Serve the query API (SQL over the lake) with its metrics, until SIGINT/SIGTERM.
    Serve,
    /// Run SQL over the lake and print the answer (tables: events, alerts, deadletters,
    /// alert_changes, silences, audit_log).
    Query(query::QueryArgs),
    /// API keys of the query service.
    #[command(subcommand)]
    Apikey(query::ApikeyCommand),
    /// Collect MCP traffic into audit events on the events topic.
    #[command(subcommand)]
    Collect(collect::CollectCommand),
    /// Deliver alerts to chat, ticketing, paging and e-mail (docs/delivery.md), and work the
    /// alert queue of a running query service: list, show, ack, assign, close… (docs/alerts.md).
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Incidents of a running query service: alerts sharing a user, token, session or address,
    /// worked as one (docs/alerts.md#incidents).
    #[command(subcommand)]
    Incidents(incidents::IncidentsCommand),
    /// Silences of a running query service: hold back the delivery of matching alerts for a
    /// while (docs/alerts.md#silences).
    #[command(subcommand)]
    Silence(silence::SilenceCommand),
    /// Run every stage (intake, ingester, detector, alert delivery, query service) in one
    /// process, with an embedded Kafka broker unless kafka.brokers is set. Ctrl-C stops all.
    Up(UpArgs),
    /// Export signed evidence bundles for auditors, or verify one (docs/evidence.md).
    Export(evidence::ExportCommandArgs),
    /// Signing keys of evidence bundles.
    #[command(subcommand)]
    Keys(evidence::KeysCommand),
    /// Check the lake against its ledger: changed, removed or inserted files (docs/evidence.md).
    #[command(subcommand)]
    Lake(evidence::LakeCommand),
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags) with secrets masked.
    Show,
}

#[derive(Args)]
pub struct UpArgs {
    /// Where everything lives: the lake, the broker's storage, keys, the outbox, state.
    /// Paths under `data/` in the configuration move here.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Port of the embedded broker (when kafka.brokers is empty).
    #[arg(long, default_value_t = 9092)]
    pub broker_port: u16,
    /// Also produce generated traffic with every injected attack and print alerts as they fire.
    #[arg(long)]
    pub demo: bool,
    /// Events the demo produces (over the last simulated day).
    #[arg(long, default_value_t = 20_000)]
    pub demo_events: u64,
    /// Events per second the demo produces.
    #[arg(long, default_value_t = 1_000)]
    pub demo_rate: u64,
}
