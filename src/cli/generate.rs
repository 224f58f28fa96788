//! `mcpsiem gen`: generated traffic with injected attacks.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct GenArgs {
    /// How many events to generate.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Random seed: the same seed gives the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start of the simulated period (RFC 3339). Default: with --kafka, `--days` ending two
    /// hours before now (so the ingester takes every event as recent, none in its future);
    /// for a file, 2026-11-02T00:00:00Z (the same seed gives the same file).
    #[arg(long)]
    pub start: Option<String>,
    /// Length of the simulated period in days.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Number of simulated users.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Attacks to inject: `all`, or a comma-separated list of scenario names (see --list-attacks).
    #[arg(long, value_delimiter = ',')]
    pub attacks: Vec<String>,
    /// How many times each attack is injected.
    #[arg(long, default_value_t = 1)]
    pub attack_repeats: u32,
    /// The benign traffic: `catalog` (a curated company: every event names its user and
    /// token) or `real-world` (also public servers' tool lists, stdio proxies that know only
    /// the account name, gateway logs without tokens or results, pings, resources, prompts
    /// and failing calls).
    #[arg(long, default_value = "catalog", value_parser = ["catalog", "real-world"])]
    pub profile: String,
    /// List the attack scenarios and exit.
    #[arg(long)]
    pub list_attacks: bool,
    /// Write NDJSON here (`-` for stdout). Default: stdout, unless --kafka is given.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Produce to the events topic of kafka.brokers instead of writing a file.
    #[arg(long)]
    pub kafka: bool,
    /// Events per second when producing (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}
