//! `mcpsiem rules …`: check, document and test the rule pack.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::commands::detect as run;
use crate::config::Config;

#[derive(Subcommand)]
pub enum RulesCommand {
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
    /// Each rule's alerts, verdicts and false-positive ratio over the last days, from a
    /// running query service; rules over query.rule_flag_ratio are flagged.
    Stats {
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Print the service's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: crate::cli::alerts::RemoteArgs,
    },
}

impl RulesCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            RulesCommand::Check { paths, json } => run::check(config, &paths, json),
            RulesCommand::Doc { paths } => {
                let paths = if paths.is_empty() { config.detect.rules.clone() } else { paths };
                print!("{}", mcpsiem_detect::rules_doc::markdown(&paths, &config.detect.lists));
                Ok(())
            }
            RulesCommand::Test { paths, json } => run::test(config, &paths, json),
            RulesCommand::Stats { days, json, remote } => {
                crate::commands::triage::rule_stats(&remote.remote(config)?, days, json)
            }
        }
    }
}
