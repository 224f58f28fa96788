//! `mcpsiem silence add|list|expire`: silences of a running query service (docs/alerts.md).

use std::io::Write;

use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::alerts::RemoteArgs;
use crate::config::Config;

#[derive(Subcommand)]
pub enum SilenceCommand {
    /// Hold back delivery of matching alerts for a while; they are still recorded, as silenced.
    Add {
        /// A condition every silenced alert meets: FIELD=VALUE, FIELD!=VALUE, FIELD=~REGEX or
        /// FIELD!~REGEX, FIELD being rule_id, rule_title, tag, level or group.<field> (such as
        /// group.enduser.id). Repeat for several; all must hold.
        #[arg(long = "match", value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        /// How long, from its start: 90m, 2h, 7d.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
        duration: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// When it starts (RFC 3339; default now).
        #[arg(long)]
        from: Option<String>,
        /// Why: responders read it when they wonder where an alert went.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// The silences, newest first.
    List {
        /// pending, active or expired.
        #[arg(long)]
        state: Option<String>,
        /// Print the service's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// End a silence now.
    Expire {
        silence_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// Minutes in `90m`, `2h`, `7d` (a bare number is minutes).
pub fn duration_minutes(text: &str) -> Result<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let Ok(number) = number.parse::<u64>() else {
        bail!("`{text}` is not a duration; write 90m, 2h or 7d");
    };
    let per = match unit {
        "" | "m" => 1,
        "h" => 60,
        "d" => 24 * 60,
        _ => bail!("`{text}`: the unit is m, h or d (90m, 2h, 7d)"),
    };
    Ok(number.saturating_mul(per))
}

impl SilenceCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            SilenceCommand::Add { matchers, duration, until, from, reason, remote } => {
                let minutes = duration.as_deref().map(duration_minutes).transpose()?;
                if minutes.is_none() && until.is_none() {
                    bail!("say how long the silence holds: --for 2h, or --until 2026-12-24T08:00:00Z");
                }
                let body = json!({
                    "matchers": matchers,
                    "starts_at": from,
                    "ends_at": until,
                    "duration_minutes": minutes,
                    "reason": reason,
                });
                let silence =
                    remote.remote(config)?.call(reqwest::Method::POST, "/api/v1/silences", &[], Some(body))?;
                writeln!(std::io::stdout().lock(), "{silence}")?;
                Ok(())
            }
            SilenceCommand::List { state, json, remote } => {
                let query: Vec<(&str, String)> = state.map(|s| ("state", s)).into_iter().collect();
                let answer = remote.remote(config)?.call(reqwest::Method::GET, "/api/v1/silences", &query, None)?;
                print_silences(&answer, json)
            }
            SilenceCommand::Expire { silence_id, remote } => {
                let path = format!("/api/v1/silences/{silence_id}/expire");
                let silence = remote.remote(config)?.call(reqwest::Method::POST, &path, &[], None)?;
                writeln!(std::io::stdout().lock(), "{silence}")?;
                Ok(())
            }
        }
    }
}

fn print_silences(answer: &Value, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{answer}")?;
        return Ok(());
    }
    let empty = Vec::new();
    let silences = answer["silences"].as_array().unwrap_or(&empty);
    writeln!(out, "{:<26}  {:<8}  {:<20}  {:<12}  MATCHERS / REASON", "SILENCE", "STATE", "ENDS", "AUTHOR")?;
    for silence in silences {
        let text = |name: &str| silence[name].as_str().unwrap_or("-").to_string();
        let matchers: Vec<&str> =
            silence["matchers"].as_array().unwrap_or(&empty).iter().filter_map(Value::as_str).collect();
        writeln!(
            out,
            "{:<26}  {:<8}  {:<20}  {:<12}  {} / {}",
            text("silence_id"),
            text("state"),
            text("ends_at").chars().take(19).collect::<String>(),
            text("actor"),
            matchers.join(", "),
            text("reason")
        )?;
    }
    writeln!(out, "{} silences", silences.len())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_minutes_hours_or_days() {
        assert_eq!(duration_minutes("90m").unwrap(), 90);
        assert_eq!(duration_minutes("45").unwrap(), 45);
        assert_eq!(duration_minutes("2h").unwrap(), 120);
        assert_eq!(duration_minutes("7d").unwrap(), 7 * 24 * 60);
        assert!(duration_minutes("2w").unwrap_err().to_string().contains("m, h or d"));
        assert!(duration_minutes("soon").unwrap_err().to_string().contains("not a duration"));
    }
}
