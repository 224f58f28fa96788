//! `mcpsiem export …`, `mcpsiem keys …` and `mcpsiem lake …`: evidence for auditors.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use mcpsiem_query::export::Selector;

use crate::commands::{evidence, lake};
use crate::config::Config;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExportCommandArgs {
    #[command(subcommand)]
    pub command: Option<ExportCommand>,
    /// Export the rows of this read-only SQL.
    #[arg(long, group = "selector")]
    pub sql: Option<String>,
    /// Export an alert (by alert_id) and the events it matched.
    #[arg(long, group = "selector")]
    pub alert: Option<String>,
    /// Export every event of an MCP session.
    #[arg(long, group = "selector")]
    pub session: Option<String>,
    /// Export every event carrying this token fingerprint.
    #[arg(long, group = "selector")]
    pub token: Option<String>,
    /// Export every event of this user (token subject or end-user id).
    #[arg(long, group = "selector")]
    pub user: Option<String>,
    /// Rows from this time (RFC 3339), by each table's time column.
    #[arg(long)]
    pub start: Option<String>,
    /// Rows before this time (RFC 3339).
    #[arg(long)]
    pub end: Option<String>,
    /// parquet, csv or jsonl.
    #[arg(long, default_value = "parquet")]
    pub format: String,
    /// Where to write the bundle (a .zip; never overwritten).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the outcome as JSON (with the process's peak memory).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ExportCommand {
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
pub enum KeysCommand {
    /// Create an Ed25519 key pair for signing bundles: DIR/NAME.key and DIR/NAME.pub.
    Generate {
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
        #[arg(long, default_value = "export")]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum LakeCommand {
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
    /// The files of a table's current snapshot, one per line (absolute paths, or URLs on an
    /// object store): what outside engines (DuckDB, pyarrow, Spark) should read instead of
    /// a glob, which can see a file twice while compaction replaces it.
    Files {
        /// events, deadletters, alerts, alert_changes or silences.
        #[arg(long, default_value = "events")]
        table: String,
        /// A JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
}

impl ExportCommandArgs {
    pub fn run(self, config: &Config) -> Result<()> {
        if let Some(ExportCommand::Verify { bundle, key, json }) = self.command {
            return exit_unless(evidence::verify(&bundle, &key, json)?);
        }
        let selector = match (self.sql, self.alert, self.session, self.token, self.user) {
            (Some(v), ..) => Selector::Sql(v),
            (_, Some(v), ..) => Selector::Alert(v),
            (_, _, Some(v), ..) => Selector::Session(v),
            (_, _, _, Some(v), _) => Selector::Token(v),
            (.., Some(v)) => Selector::User(v),
            _ => bail!("say what to export: --sql, --alert, --session, --token or --user (or `export verify`)"),
        };
        let Some(out) = self.out else { bail!("--out FILE.zip is required: where to write the bundle") };
        evidence::export(
            config,
            evidence::ExportArgs {
                selector,
                start: self.start,
                end: self.end,
                format: self.format,
                out,
                json: self.json,
            },
        )
    }
}

impl KeysCommand {
    pub fn run(self) -> Result<()> {
        match self {
            KeysCommand::Generate { dir, name } => evidence::generate_keys(&dir, &name),
        }
    }
}

impl LakeCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            LakeCommand::Verify { table, anchor, json } => exit_unless(lake::verify(config, &table, &anchor, json)?),
            LakeCommand::Files { table, json } => lake::files(config, &table, json),
        }
    }
}

/// Checks that found a problem end the process with status 1 (after printing their report).
fn exit_unless(passed: bool) -> Result<()> {
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}
