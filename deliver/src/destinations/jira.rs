//! Jira Cloud or Data Center: one issue per alert through the REST API, labelled with the
//! alert id so that a retry finds the issue an earlier attempt created; the alert's repeats
//! become comments on it.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::HttpClient;
use super::{Attempt, Destination, cut, update_text};
use crate::message::Message;
use crate::outbox::AlertUpdate;
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

    fn can_update(&self) -> bool {
        true
    }

    fn update<'a>(
        &'a self,
        http: &'a HttpClient,
        alert: &'a mcpsiem_event::Alert,
        update: &'a AlertUpdate,
    ) -> Option<BoxFuture<'a, Outcome>> {
        Some(Box::pin(async move {
            let auth = (self.user.as_str(), self.token.as_str());
            // The key the creation answered with; else the issue is found by its label.
            let key = match &update.reference {
                Some(key) => Some(key.clone()),
                None => find(http, &self.url, &alert.id, auth).await,
            };
            let Some(key) = key else {
                return Outcome::Retry {
                    reason: format!("no Jira issue labelled {} was found to comment on", alert_label(&alert.id)),
                    status: None,
                    after: None,
                };
            };
            let endpoint = format!("{}/rest/api/2/issue/{key}/comment", self.url.trim_end_matches('/'));
            let body = serde_json::to_vec(&comment(alert, update)).expect("JSON serializes");
            http.post(&endpoint, body, &[], Some(auth)).await
        }))
    }
}

/// The comment that tells an issue its alert repeated.
pub fn comment(alert: &mcpsiem_event::Alert, update: &AlertUpdate) -> Value {
    let mut text = update_text(alert, update);
    if !update.event_ids.is_empty() {
        text.push_str(&format!("\nEvents: {}", update.event_ids.join(", ")));
    }
    json!({ "body": text })
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

#[cfg(test)]
mod tests {
    use super::*;
    use mcpsiem_event::{Alert, AlertSource, Level, Timestamp};

    #[test]
    fn a_repeat_comment_says_how_often_and_when_with_the_events() {
        let alert = Alert {
            id: "A1".into(),
            rule_id: "r".into(),
            rule_title: "Token replay".into(),
            level: Level::High,
            tags: vec![],
            source: AlertSource::Detection,
            first_time: Timestamp::from_micros(0),
            last_time: Timestamp::from_micros(0),
            group: Default::default(),
            count: 1,
            event_ids: vec![],
            sql: String::new(),
        };
        let update = AlertUpdate {
            change_id: "C1".into(),
            count: 3,
            first_time: Timestamp::parse("2026-12-06T10:00:00Z").unwrap(),
            last_time: Timestamp::parse("2026-12-06T10:01:00Z").unwrap(),
            event_ids: vec!["e1".into(), "e2".into()],
            reference: Some("SEC-1".into()),
        };
        let body = comment(&alert, &update)["body"].as_str().unwrap().to_string();
        assert!(
            body.starts_with("Token replay fired again for the same group: 3 more matches from 2026-12-06T10:00:00"),
            "{body}"
        );
        assert!(body.ends_with("Events: e1, e2"), "{body}");
        let one = AlertUpdate { count: 1, last_time: update.first_time, event_ids: vec![], ..update };
        let body = comment(&alert, &one)["body"].as_str().unwrap().to_string();
        assert!(body.contains("1 more match at 2026-12-06T10:00:00") && !body.contains("Events"), "{body}");
    }
}
