//! One destination: the request each API expects, and what its answer means for a retry.

use std::time::Duration;

use hmac::{Hmac, Mac};
use mcpsiem_event::{Alert, Level};
use serde_json::{Value, json};
use sha2::Sha256;

use super::config::{DestinationConfig, DestinationKind};
use super::message::{AlertContext, Message, TemplateError, Templates};

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
        reference: Option<String>,
    },
    /// Worth trying again; `after` is the destination's own wish (429 `Retry-After`).
    Retry {
        reason: String,
        status: Option<u16>,
        after: Option<Duration>,
    },
    /// Will fail the same way every time (400, 401, 403, 404…): dead-lettered at once.
    Failed {
        reason: String,
        status: Option<u16>,
    },
}

/// The signature headers of generic webhooks.
pub const SIGNATURE_HEADER: &str = "X-Mcpsiem-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Mcpsiem-Timestamp";
pub const DELIVERY_HEADER: &str = "X-Mcpsiem-Delivery";

/// `v1=` and the hex HMAC-SHA256 under `secret` of `"{timestamp}.{body}"`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A configured destination, ready to send.
pub struct Destination {
    pub name: String,
    pub config: DestinationConfig,
    templates: Templates,
    client: reqwest::Client,
    query_url: String,
}

impl Destination {
    pub fn new(name: &str, config: &DestinationConfig, query_url: &str) -> Result<Self, TemplateError> {
        let templates = Templates::new(name, config.title_template.as_deref(), config.body_template.as_deref())?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds.max(1)))
            .connect_timeout(Duration::from_secs(config.timeout_seconds.clamp(1, 10)))
            .user_agent(concat!("mcpsiem/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with timeouts builds");
        Ok(Self { name: name.to_owned(), config: config.clone(), templates, client, query_url: query_url.to_owned() })
    }

    pub fn render(&self, alert: &Alert) -> (AlertContext, Message) {
        let context = AlertContext::new(alert, &self.query_url);
        let message = self.templates.render(&context);
        (context, message)
    }

    /// One attempt. `attempts` is how many were made before (a retry of a Jira issue
    /// first checks whether the earlier attempt created it after all).
    pub async fn deliver(&self, alert: &Alert, key: &str, attempts: u32) -> Outcome {
        let (context, message) = self.render(alert);
        match &self.config.kind {
            DestinationKind::Slack { url } => self.post_json(url, &slack_payload(&context, &message), &[]).await,
            DestinationKind::Teams { url } => self.post_json(url, &teams_payload(&context, &message), &[]).await,
            DestinationKind::Webhook { url, secret } => {
                let body = serde_json::to_vec(&json!({
                    "delivery_id": key, "title": message.title, "text": message.body, "link": context.link, "alert": alert,
                }))
                .expect("JSON serializes");
                let timestamp = mcpsiem_event::Timestamp::now().as_micros() / 1_000_000;
                let signature = webhook_signature(secret, timestamp, &body);
                let headers = [
                    (TIMESTAMP_HEADER, timestamp.to_string()),
                    (SIGNATURE_HEADER, signature),
                    (DELIVERY_HEADER, key.to_owned()),
                    ("Idempotency-Key", key.to_owned()),
                ];
                self.post(url, body, &headers, None).await
            }
            DestinationKind::Pagerduty { routing_key, url } => {
                let payload = pagerduty_trigger(routing_key, &context, &message, alert);
                self.post_json(url, &payload, &[]).await
            }
            DestinationKind::Jira { url, project, issue_type, labels, user, token } => {
                let auth = (user.as_str(), token.as_str());
                if attempts > 0
                    && let Some(existing) = self.jira_find(url, &alert.id, auth).await
                {
                    return Outcome::Delivered { status: None, reference: Some(existing) };
                }
                let payload = jira_issue(project, issue_type, labels, &alert.id, &message);
                let endpoint = format!("{}/rest/api/2/issue", url.trim_end_matches('/'));
                let body = serde_json::to_vec(&payload).expect("JSON serializes");
                self.post(&endpoint, body, &[], Some(auth)).await
            }
            DestinationKind::Email { .. } => super::email::send(&self.config, key, &message).await,
        }
    }

    /// PagerDuty: resolves the incident an alert triggered.
    pub async fn resolve(&self, alert_id: &str) -> Outcome {
        match &self.config.kind {
            DestinationKind::Pagerduty { routing_key, url } => {
                let payload = json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert_id});
                self.post_json(url, &payload, &[]).await
            }
            other => Outcome::Failed {
                reason: format!("{} destinations have nothing to resolve (only pagerduty does)", other.type_name()),
                status: None,
            },
        }
    }

    async fn post_json(&self, url: &str, payload: &Value, headers: &[(&str, String)]) -> Outcome {
        let body = serde_json::to_vec(payload).expect("JSON serializes");
        self.post(url, body, headers, None).await
    }

    async fn post(&self, url: &str, body: Vec<u8>, headers: &[(&str, String)], auth: Option<(&str, &str)>) -> Outcome {
        let mut request = self.client.post(url).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some((user, token)) = auth {
            request = request.basic_auth(user, Some(token));
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after =
                    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                let text = response.text().await.unwrap_or_default();
                classify(status.as_u16(), retry_after, &text)
            }
            Err(e) => Outcome::Retry {
                reason: if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("cannot reach the destination: {}", e.without_url())
                },
                status: None,
                after: None,
            },
        }
    }

    /// The key of a Jira issue already created for this alert, if any.
    async fn jira_find(&self, url: &str, alert_id: &str, (user, token): (&str, &str)) -> Option<String> {
        let endpoint = format!("{}/rest/api/2/search", url.trim_end_matches('/'));
        let jql = format!("labels = \"{}\"", alert_label(alert_id));
        let response = self
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
}

/// What an HTTP answer means.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let detail = || {
        let body: String = body.chars().take(300).collect();
        if body.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {body}") }
    };
    match status {
        200..=299 => {
            // Jira answers with the new issue's key.
            let reference = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v.get("key").and_then(Value::as_str).map(str::to_owned));
            Outcome::Delivered { status: Some(status), reference }
        }
        429 => Outcome::Retry { reason: detail(), status: Some(status), after: retry_after },
        408 | 425 | 500..=599 => Outcome::Retry { reason: detail(), status: Some(status), after: retry_after },
        _ => Outcome::Failed { reason: detail(), status: Some(status) },
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack Block Kit: a header, the body, the facts, a button to the events.
pub fn slack_payload(context: &AlertContext, message: &Message) -> Value {
    json!({
        "text": cut(&message.title, 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&message.title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&message.body, 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": format!("*{}* · {} · rule `{}` · alert `{}`", context.level, context.source, context.rule_id, context.id)}]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Matched events"},
                "url": context.link}]}
        ]
    })
}

/// Teams workflow webhook: an Adaptive Card in a message.
pub fn teams_payload(context: &AlertContext, message: &Message) -> Value {
    let mut facts = vec![
        json!({"title": "Level", "value": context.level}),
        json!({"title": "Rule", "value": context.rule_id}),
        json!({"title": "Events", "value": context.count.to_string()}),
        json!({"title": "First", "value": context.first_time}),
        json!({"title": "Last", "value": context.last_time}),
    ];
    for (key, value) in &context.group {
        facts.push(json!({"title": key, "value": value}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": true},
                    {"type": "TextBlock", "text": message.body, "wrap": true},
                    {"type": "FactSet", "facts": facts}
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Matched events", "url": context.link}]
            }
        }]
    })
}

fn pagerduty_severity(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Informational => "info",
    }
}

/// PagerDuty Events API v2 trigger; the alert id is the dedup key, so a repeat of the same
/// alert updates the incident instead of opening another.
pub fn pagerduty_trigger(routing_key: &str, context: &AlertContext, message: &Message, alert: &Alert) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id,
        "payload": {
            "summary": cut(&message.title, 1024),
            "source": "mcpsiem",
            "severity": pagerduty_severity(alert.level),
            "timestamp": context.last_time,
            "group": context.rule_id,
            "class": context.source,
            "custom_details": {
                "text": message.body, "group": context.group, "count": context.count, "tags": context.tags,
                "sql": context.sql, "first_time": context.first_time, "last_time": context.last_time,
            }
        },
        "links": [{"href": context.link, "text": "Matched events"}]
    })
}

/// The Jira label that ties an issue to its alert (labels cannot hold spaces).
pub fn alert_label(alert_id: &str) -> String {
    format!("mcpsiem-{}", alert_id.to_ascii_lowercase())
}

pub fn jira_issue(project: &str, issue_type: &str, labels: &[String], alert_id: &str, message: &Message) -> Value {
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

    #[test]
    fn answers_are_classified() {
        assert!(
            matches!(classify(201, None, r#"{"key":"SEC-7"}"#), Outcome::Delivered { reference: Some(k), .. } if k == "SEC-7")
        );
        assert!(
            matches!(classify(429, Some(Duration::from_secs(7)), ""), Outcome::Retry { after: Some(d), .. } if d.as_secs() == 7)
        );
        assert!(matches!(classify(503, None, "down"), Outcome::Retry { .. }));
        assert!(
            matches!(classify(400, None, "invalid_payload"), Outcome::Failed { reason, .. } if reason.contains("invalid_payload"))
        );
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn signatures_are_over_timestamp_and_body() {
        let a = webhook_signature("s3cret", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 67);
        assert_ne!(a, webhook_signature("s3cret", 1_700_000_001, b"{}"));
        assert_ne!(a, webhook_signature("other", 1_700_000_000, b"{}"));
    }
}
