//! `mcpsiem incidents list|show|ack|assign|close|reopen|comment`: incidents (alerts sharing
//! an entity) of a running query service (docs/alerts.md#incidents).

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

use super::alerts::{RemoteArgs, VerdictArg};
use crate::commands::triage::Remote;
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
    /// Acknowledge an incident: someone is on it.
    Ack {
        incident_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Assign an incident to someone (without --to: to nobody).
    Assign {
        incident_id: String,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Close an incident with a verdict (its alerts keep their own states).
    Close {
        incident_id: String,
        #[arg(long, value_enum)]
        verdict: VerdictArg,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Reopen a closed incident.
    Reopen {
        incident_id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Add a comment to an incident's history.
    Comment {
        incident_id: String,
        text: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

fn change(remote: &Remote, incident_id: &str, action: &str, body: Value) -> Result<()> {
    let path = format!("/api/v1/incidents/{incident_id}/{action}");
    let outcome = remote.call(reqwest::Method::POST, &path, &[], Some(body))?;
    writeln!(std::io::stdout().lock(), "{outcome}")?;
    Ok(())
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
            IncidentsCommand::Ack { incident_id, remote } => {
                change(&remote.remote(config)?, &incident_id, "ack", json!({}))
            }
            IncidentsCommand::Assign { incident_id, to, remote } => {
                change(&remote.remote(config)?, &incident_id, "assign", json!({ "assignee": to }))
            }
            IncidentsCommand::Close { incident_id, verdict, comment, remote } => change(
                &remote.remote(config)?,
                &incident_id,
                "close",
                json!({ "verdict": verdict.name(), "comment": comment }),
            ),
            IncidentsCommand::Reopen { incident_id, comment, remote } => {
                change(&remote.remote(config)?, &incident_id, "reopen", json!({ "comment": comment }))
            }
            IncidentsCommand::Comment { incident_id, text, remote } => {
                change(&remote.remote(config)?, &incident_id, "comment", json!({ "comment": text }))
            }
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
