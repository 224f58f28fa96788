//! Jira Cloud or Data Center: one issue per alert through the REST API, labelled with the
//! alert id so that a retry finds the issue an earlier attempt created.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::HttpClient;
use super::{Attempt, Destination, cut};
use crate::message::Message;
use crate::outcome::Outcome;

/// Jira Cloud or Data Center: one issue per alert through the REST API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Jira {
    /// The site, such as `https://example.atlassian.net`.
    pub url: String,
    pub project: String,
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// The account's e-mail (Cloud) or user name; with `token` for basic auth.
    pub user: String,
    /// An API token (Cloud) or a personal access token.
    pub token: String,
}

fn default_issue_type() -> String {
    "Task".into()
}

impl Destination for Jira {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let auth = (self.user.as_str(), self.token.as_str());
            if attempt.attempts > 0
                && let Some(existing) = find(attempt.http, &self.url, &attempt.alert.id, auth).await
            {
                return Outcome::Delivered { status: None, reference: Some(existing) };
            }
            let payload = issue(&self.project, &self.issue_type, &self.labels, &attempt.alert.id, attempt.message);
            let endpoint = format!("{}/rest/api/2/issue", self.url.trim_end_matches('/'));
            let body = serde_json::to_vec(&payload).expect("JSON serializes");
            attempt.http.post(&endpoint, body, &[], Some(auth)).await
        })
    }
}

/// The key of a Jira issue already created for this alert, if any.
async fn find(http: &HttpClient, url: &str, alert_id: &str, (user, token): (&str, &str)) -> Option<String> {
    let endpoint = format!("{}/rest/api/2/search", url.trim_end_matches('/'));
    let jql = format!("labels = \"{}\"", alert_label(alert_id));
    let response = http
        .client
        .get(endpoint)
        .query(&[("jql", jql.as_str()), ("fields", "key"), ("maxResults", "1")])
        .basic_auth(user, Some(token))
        .send()
        .await
        .ok()?;
    let found: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    found.get("issues")?.as_array()?.first()?.get("key")?.as_str().map(str::to_owned)
}

/// The Jira label that ties an issue to its alert (labels cannot hold spaces).
pub fn alert_label(alert_id: &str) -> String {
    format!("mcpsiem-{}", alert_id.to_ascii_lowercase())
}

pub fn issue(project: &str, issue_type: &str, labels: &[String], alert_id: &str, message: &Message) -> Value {
    let mut all: Vec<String> = labels.to_vec();
    all.push("mcpsiem".into());
    all.push(alert_label(alert_id));
    json!({
        "fields": {
            "project": {"key": project},
            "issuetype": {"name": issue_type},
            "summary": cut(&message.title, 255),
            "description": message.body,
            "labels": all,
        }
    })
}
