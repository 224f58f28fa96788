//! `mcpsiem alerts …`: the delivery stage and its outbox, and the alert workflow of a
//! running query service (list, show, ack, assign, close, reopen, comment).

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::commands::alerts as run;
use crate::commands::triage;
use crate::config::Config;
use crate::output::print_json_line;

#[derive(Subcommand)]
pub enum AlertsCommand {
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
    /// The alert queue of a running query service, newest first.
    List {
        /// new, acknowledged, closed or silenced (several: comma separated).
        #[arg(long)]
        state: Option<String>,
        /// informational, low, medium, high or critical (several: comma separated).
        #[arg(long)]
        level: Option<String>,
        /// A rule's id or title.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        /// Any value of the alert's group: a user, token fingerprint, session, address…
        #[arg(long)]
        entity: Option<String>,
        /// Alerts from this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Alerts before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        offset: Option<usize>,
        /// Print the service's JSON page instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// One alert with its state, history and events (JSON).
    Show {
        alert_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Acknowledge, assign, close, reopen or comment on an alert.
    #[command(flatten)]
    Work(WorkCommand),
}

/// What an analyst does to an alert (`mcpsiem alerts …`) or an incident
/// (`mcpsiem incidents …`): the same actions on either.
#[derive(Subcommand)]
pub enum WorkCommand {
    /// Acknowledge: someone is on it.
    Ack {
        /// The alert's id, or the incident's (INC-…).
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Assign to someone (without --to: to nobody).
    Assign {
        /// The alert's id, or the incident's (INC-…).
        id: String,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Close with a verdict.
    Close {
        /// The alert's id, or the incident's (INC-…).
        id: String,
        #[arg(long, value_enum)]
        verdict: VerdictArg,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Reopen a closed one: it goes back to the queue as new.
    Reopen {
        /// The alert's id, or the incident's (INC-…).
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Add a comment to the history.
    Comment {
        /// The alert's id, or the incident's (INC-…).
        id: String,
        text: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

impl WorkCommand {
    /// Makes the change under `/api/v1/{collection}` (`alerts` or `incidents`) and prints
    /// what it did.
    pub fn run(self, config: &Config, collection: &str) -> Result<()> {
        let (id, action, body, remote) = match self {
            WorkCommand::Ack { id, remote } => (id, "ack", json!({}), remote),
            WorkCommand::Assign { id, to, remote } => (id, "assign", json!({ "assignee": to }), remote),
            WorkCommand::Close { id, verdict, comment, remote } => {
                (id, "close", json!({ "verdict": verdict.name(), "comment": comment }), remote)
            }
            WorkCommand::Reopen { id, comment, remote } => (id, "reopen", json!({ "comment": comment }), remote),
            WorkCommand::Comment { id, text, remote } => (id, "comment", json!({ "comment": text }), remote),
        };
        triage::change(&remote.remote(config)?, &format!("/api/v1/{collection}/{id}/{action}"), body)
    }
}

/// A running query service and the key to use.
#[derive(Args)]
pub struct RemoteArgs {
    /// The query service (default: http:// and query.listen of the configuration).
    #[arg(long)]
    pub server: Option<String>,
    /// An API key (analyst or admin to change alerts; auditor reads).
    #[arg(long, env = "MCPSIEM_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl RemoteArgs {
    pub fn remote(self, config: &Config) -> Result<triage::Remote> {
        let server = self.server.unwrap_or_else(|| format!("http://{}", config.query.listen));
        let key = self.key.context("the query service needs an API key: --key or MCPSIEM_API_KEY")?;
        Ok(triage::Remote { server, key })
    }
}

/// How an alert is closed.
#[derive(Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    TruePositive,
    FalsePositive,
    BenignPositive,
    Duplicate,
}

impl VerdictArg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            VerdictArg::TruePositive => "true_positive",
            VerdictArg::FalsePositive => "false_positive",
            VerdictArg::BenignPositive => "benign_positive",
            VerdictArg::Duplicate => "duplicate",
        }
    }
}

impl AlertsCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            AlertsCommand::Deliver => print_json_line(&run::run_deliver(config)?),
            AlertsCommand::TestDestination { name } => run::test_destination(config, &name),
            AlertsCommand::Resolve { destination, alert_id } => run::resolve(config, &destination, &alert_id),
            AlertsCommand::Dead { retry } => run::dead_letters(config, retry),
            AlertsCommand::List { state, level, rule, assignee, entity, from, to, limit, offset, json, remote } => {
                let args = triage::ListArgs { state, level, rule, assignee, entity, from, to, limit, offset, json };
                triage::list(&remote.remote(config)?, &args)
            }
            AlertsCommand::Show { alert_id, remote } => triage::show(&remote.remote(config)?, &alert_id),
            AlertsCommand::Work(work) => work.run(config, "alerts"),
        }
    }
}
