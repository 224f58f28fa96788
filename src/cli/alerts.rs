//! `mcpsiem alerts …`: the delivery stage and its outbox.

use anyhow::Result;
use clap::Subcommand;

use crate::commands::alerts as run;
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
}

impl AlertsCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            AlertsCommand::Deliver => print_json_line(&run::run_deliver(config)?),
            AlertsCommand::TestDestination { name } => run::test_destination(config, &name),
            AlertsCommand::Resolve { destination, alert_id } => run::resolve(config, &destination, &alert_id),
            AlertsCommand::Dead { retry } => run::dead_letters(config, retry),
        }
    }
}
