//! `mcpsiem alerts list|show|ack|assign|close|reopen|comment`: the alert workflow of a
//! running query service, from a terminal (the same API the console uses, docs/alerts.md).

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A running query service and the key to ask it with.
pub struct Remote {
    pub server: String,
    pub key: String,
}

impl Remote {
    fn url(&self, path: &str) -> Result<String> {
        let base: url::Url = self.server.parse().with_context(|| format!("--server {} is not a URL", self.server))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            bail!("--server {}: give an http:// address such as http://127.0.0.1:9480", self.server);
        }
        Ok(format!("{}{path}", self.server.trim_end_matches('/')))
    }

    /// Sends one request and returns the JSON answer, or the service's own message.
    pub(crate) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value> {
        let url = self.url(path)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build()?;
            let mut request =
                client.request(method, &url).bearer_auth(&self.key).header("x-mcpsiem-interface", "cli").query(query);
            if let Some(body) = body {
                request = request.header("content-type", "application/json").body(body.to_string());
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach the query service at {}; is it running?", self.server))?;
            let status = response.status();
            let bytes = response.bytes().await.context("reading the answer")?;
            let value: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            if !status.is_success() {
                let message = value["message"].as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
                bail!("{message} (HTTP {status})");
            }
            Ok(value)
        })
    }
}

/// The queue's filters as the command line gives them.
#[derive(Default)]
pub struct ListArgs {
    pub state: Option<String>,
    pub level: Option<String>,
    pub rule: Option<String>,
    pub assignee: Option<String>,
    pub entity: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub json: bool,
}

pub fn list(remote: &Remote, args: &ListArgs) -> Result<()> {
    let mut query = Vec::new();
    let pairs = [
        ("state", &args.state),
        ("level", &args.level),
        ("rule", &args.rule),
        ("assignee", &args.assignee),
        ("entity", &args.entity),
        ("from", &args.from),
        ("to", &args.to),
    ];
    for (name, value) in pairs {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(offset) = args.offset {
        query.push(("offset", offset.to_string()));
    }
    let page = remote.call(reqwest::Method::GET, "/api/v1/alerts", &query, None)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{page}")?;
        return Ok(());
    }
    let empty = Vec::new();
    let alerts = page["alerts"].as_array().unwrap_or(&empty);
    writeln!(out, "{:<26}  {:<20}  {:<13}  {:<8}  {:<12}  RULE", "ALERT", "TIME", "STATE", "LEVEL", "ASSIGNEE")?;
    for alert in alerts {
        let text = |name: &str| alert[name].as_str().unwrap_or("-").to_string();
        let time: String = text("alert_time").chars().take(19).collect();
        writeln!(
            out,
            "{:<26}  {:<20}  {:<13}  {:<8}  {:<12}  {}",
            text("alert_id"),
            time,
            text("state"),
            text("level"),
            text("assignee"),
            text("rule_title")
        )?;
    }
    match page["next_offset"].as_u64() {
        Some(next) => writeln!(out, "{} alerts; more with --offset {next}", alerts.len())?,
        None => writeln!(out, "{} alerts", alerts.len())?,
    }
    Ok(())
}

pub fn show(remote: &Remote, alert_id: &str) -> Result<()> {
    let detail = remote.call(reqwest::Method::GET, &format!("/api/v1/alerts/{alert_id}"), &[], None)?;
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&detail)?)?;
    Ok(())
}

/// Makes one change (`…/{id}/ack`, `assign`, `close`, `reopen`, `comment` of an alert or an
/// incident) and prints the new state.
pub fn change(remote: &Remote, path: &str, body: Value) -> Result<()> {
    let outcome = remote.call(reqwest::Method::POST, path, &[], Some(body))?;
    writeln!(std::io::stdout().lock(), "{outcome}")?;
    Ok(())
}

/// `mcpsiem rules stats`: each rule's verdicts and false-positive ratio.
pub fn rule_stats(remote: &Remote, days: u32, json: bool) -> Result<()> {
    let answer = remote.call(reqwest::Method::GET, "/api/v1/rules/stats", &[("days", days.to_string())], None)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{answer}")?;
        return Ok(());
    }
    let empty = Vec::new();
    writeln!(
        out,
        "{:>7}  {:>4}  {:>4}  {:>4}  {:>4}  {:>8}  {:<7}  RULE",
        "ALERTS", "TP", "FP", "BP", "DUP", "FP RATIO", "FLAG"
    )?;
    for rule in answer["rules"].as_array().unwrap_or(&empty) {
        let n = |name: &str| rule[name].as_u64().unwrap_or(0);
        let ratio = rule["false_positive_ratio"].as_f64().map_or("-".to_string(), |r| format!("{r:.2}"));
        let flag = if rule["flagged"].as_bool() == Some(true) { "FLAGGED" } else { "" };
        writeln!(
            out,
            "{:>7}  {:>4}  {:>4}  {:>4}  {:>4}  {:>8}  {:<7}  {}",
            n("alerts"),
            n("true_positives"),
            n("false_positives"),
            n("benign_positives"),
            n("duplicates"),
            ratio,
            flag,
            rule["rule_title"].as_str().unwrap_or("-")
        )?;
    }
    Ok(())
}
