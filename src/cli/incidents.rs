//! `mcpsiem incidents list|show|ack|assign|close|reopen|comment`: incidents (alerts sharing
//! an entity) of a running query service (docs/alerts.md#incidents).

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use super::alerts::{RemoteArgs, WorkCommand};
use crate::config::Config;

#[derive(Subcommand)]
pub enum IncidentsCommand {
    /// The incidents of the last days' alerts, newest first.
    List {
        /// new, acknowledged or closed (several: comma separated).
        #[arg(long)]
        state: Option<String>,
        /// Group the alerts of this many days (default 7).
        #[arg(long)]
        days: Option<u32>,
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
    /// One incident with its alerts, history and the timeline of their events (JSON).
    Show {
        incident_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Acknowledge, assign, close (its alerts keep their own states), reopen or comment on an
    /// incident.
    #[command(flatten)]
    Work(WorkCommand),
}

impl IncidentsCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            IncidentsCommand::List { state, days, limit, offset, json, remote } => {
                let mut query = Vec::new();
                if let Some(state) = state {
                    query.push(("state", state));
                }
                for (name, value) in [("days", days.map(|d| d as usize)), ("limit", limit), ("offset", offset)] {
                    if let Some(value) = value {
                        query.push((name, value.to_string()));
                    }
                }
                let page = remote.remote(config)?.call(reqwest::Method::GET, "/api/v1/incidents", &query, None)?;
                print_incidents(&page, json)
            }
            IncidentsCommand::Show { incident_id, remote } => {
                let path = format!("/api/v1/incidents/{incident_id}");
                let detail = remote.remote(config)?.call(reqwest::Method::GET, &path, &[], None)?;
                writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&detail)?)?;
                Ok(())
            }
            IncidentsCommand::Work(work) => work.run(config, "incidents"),
        }
    }
}

fn print_incidents(page: &Value, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{page}")?;
        return Ok(());
    }
    let empty = Vec::new();
    let incidents = page["incidents"].as_array().unwrap_or(&empty);
    writeln!(
        out,
        "{:<30}  {:<20}  {:<13}  {:<8}  {:>6}  {:<12}  RULES",
        "INCIDENT", "LAST", "STATE", "LEVEL", "ALERTS", "ASSIGNEE"
    )?;
    for incident in incidents {
        let text = |value: &Value| value.as_str().unwrap_or("-").to_string();
        let rules: Vec<&str> =
            incident["rules"].as_array().unwrap_or(&empty).iter().filter_map(Value::as_str).collect();
        writeln!(
            out,
            "{:<30}  {:<20}  {:<13}  {:<8}  {:>6}  {:<12}  {}",
            text(&incident["incident_id"]),
            text(&incident["last_time"]).chars().take(19).collect::<String>(),
            text(&incident["status"]["state"]),
            text(&incident["level"]),
            incident["alerts"].as_u64().unwrap_or(0),
            text(&incident["status"]["assignee"]),
            rules.join("; ")
        )?;
    }
    match page["next_offset"].as_u64() {
        Some(next) => writeln!(out, "{} incidents; more with --offset {next}", incidents.len())?,
        None => writeln!(out, "{} incidents", incidents.len())?,
    }
    Ok(())
}
