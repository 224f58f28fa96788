//! `mcpsiem query`, `mcpsiem serve` and `mcpsiem apikey …`: the query service.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use mcpsiem_query::Role;
use mcpsiem_query::format::{Format, Sink};

use crate::commands::query as run;
use crate::config::Config;

/// Run SQL over the lake, or through a running query service.
#[derive(Args)]
pub struct QueryArgs {
    pub sql: String,
    /// Rows from this time (RFC 3339), by each table's time column.
    #[arg(long)]
    pub start: Option<String>,
    /// Rows before this time (RFC 3339).
    #[arg(long)]
    pub end: Option<String>,
    /// At most this many rows (never more than query.max_rows).
    #[arg(long)]
    pub limit: Option<usize>,
    /// table, json, ndjson or csv.
    #[arg(long, default_value = "table", value_parser = terminal_format)]
    pub format: Format,
    /// Ask a running query service (http://host:9480) instead of reading the lake.
    #[arg(long)]
    pub server: Option<String>,
    /// The API key for --server.
    #[arg(long, env = "MCPSIEM_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl QueryArgs {
    pub fn run(self, config: &Config) -> Result<()> {
        let args = run::QueryArgs {
            sql: &self.sql,
            start: self.start.as_deref(),
            end: self.end.as_deref(),
            limit: self.limit,
            output: self.format,
        };
        match self.server {
            Some(server) => {
                let key = self.key.context("--server needs an API key: --key or MCPSIEM_API_KEY")?;
                run::run_remote_query(&server, &key, &args)
            }
            None => run::run_query(config, &args),
        }
    }
}

#[derive(Subcommand)]
pub enum ApikeyCommand {
    /// Print a new random key and the `[[query.api_keys]]` entry (its hash) to add to the
    /// configuration.
    Create {
        /// Who gets the key, as the audit log names them.
        #[arg(long)]
        name: String,
        /// analyst (query), auditor (query and export) or admin (also the audit log).
        #[arg(long, value_enum, default_value = "analyst")]
        role: RoleArg,
    },
}

/// The roles an API key can have.
#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Analyst,
    Auditor,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Analyst => Role::Analyst,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

impl ApikeyCommand {
    pub fn run(self) {
        match self {
            ApikeyCommand::Create { name, role } => run::create_api_key(&name, role.into()),
        }
    }
}

/// The formats `mcpsiem query` prints.
fn terminal_format(text: &str) -> Result<Format, String> {
    Format::for_sink(text, Sink::Terminal)
}
