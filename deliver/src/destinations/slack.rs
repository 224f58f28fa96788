//! Slack: an incoming webhook, or the Web API with a bot token. The message is Block Kit.
//! Through the Web API the alert's repeats reply in the message's thread; a webhook can
//! neither thread nor edit, so it gets no updates.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{HttpClient, parse_retry_after};
use super::{Attempt, Destination, cut, update_text};
use crate::message::{AlertContext, Message};
use crate::outbox::AlertUpdate;
use crate::outcome::Outcome;

/// Slack: `url` (an incoming webhook), or `token` and `channel` (the Web API).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The incoming webhook URL (itself the credential: masked by `config show`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// A bot token (`xoxb-…`, scope `chat:write`): messages go through `chat.postMessage`
    /// to `channel`, and the alert's repeats reply in the message's thread.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// The channel's id or name, for `token`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    /// The Web API's base URL.
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

fn default_api_url() -> String {
    "https://slack.com/api".into()
}

impl Slack {
    /// An incoming webhook.
    pub fn webhook(url: &str) -> Self {
        Self { url: url.to_owned(), token: String::new(), channel: String::new(), api_url: default_api_url() }
    }

    fn uses_api(&self) -> bool {
        !self.token.is_empty()
    }

    async fn post_message(&self, http: &HttpClient, mut payload: Value) -> Outcome {
        payload["channel"] = Value::from(self.channel.as_str());
        let endpoint = format!("{}/chat.postMessage", self.api_url.trim_end_matches('/'));
        let body = serde_json::to_vec(&payload).expect("JSON serializes");
        let sent = http
            .client
            .post(endpoint)
            .bearer_auth(&self.token)
            .header("content-type", "application/json; charset=utf-8")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let reason = if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("cannot reach Slack: {}", e.without_url())
                };
                return Outcome::Retry { reason, status: None, after: None };
            }
        };
        let status = response.status().as_u16();
        let after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return super::http::classify(status, after, &body);
        }
        web_api_outcome(status, after, &body)
    }
}

/// What a `chat.postMessage` answer means: Slack answers 200 with `ok` false for most
/// errors. The reference is `CHANNEL_ID:TS`, where a thread reply goes.
fn web_api_outcome(status: u16, after: Option<std::time::Duration>, body: &str) -> Outcome {
    let answer: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if answer["ok"].as_bool() == Some(true) {
        let reference = match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Some(format!("{channel}:{ts}")),
            _ => None,
        };
        return Outcome::Delivered { status: Some(status), reference };
    }
    let error = answer["error"].as_str().unwrap_or("an answer that is not Slack's").to_owned();
    let reason = format!("Slack refused the message: {error}");
    // Errors that the same request meets again: a wrong token, channel or payload.
    const FOR_GOOD: [&str; 12] = [
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "invalid_arguments",
    ];
    if FOR_GOOD.contains(&error.as_str()) {
        Outcome::Failed { reason, status: Some(status) }
    } else {
        Outcome::Retry { reason, status: Some(status), after }
    }
}

impl Destination for Slack {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        let payload = payload(attempt.context, attempt.message);
        Box::pin(async move {
            if self.uses_api() {
                self.post_message(attempt.http, payload).await
            } else {
                attempt.http.post_json(&self.url, &payload, &[]).await
            }
        })
    }

    fn problem(&self) -> Option<String> {
        match (self.url.is_empty(), self.token.is_empty(), self.channel.is_empty()) {
            (true, true, _) => Some("set `url` (an incoming webhook) or `token` and `channel` (the Web API)".into()),
            (false, false, _) => Some("set either `url` or `token`, not both".into()),
            (true, false, true) => Some("`token` needs the `channel` to post to".into()),
            _ => None,
        }
    }

    fn can_update(&self) -> bool {
        self.uses_api()
    }

    fn update<'a>(
        &'a self,
        http: &'a HttpClient,
        alert: &'a mcpsiem_event::Alert,
        update: &'a AlertUpdate,
    ) -> Option<BoxFuture<'a, Outcome>> {
        if !self.uses_api() {
            return None;
        }
        Some(Box::pin(async move {
            let Some((_, ts)) = update.reference.as_deref().and_then(|r| r.split_once(':')) else {
                return Outcome::Failed {
                    reason: "Slack gave no message to reply to when the alert was delivered".into(),
                    status: None,
                };
            };
            let text = update_text(alert, update);
            self.post_message(http, json!({"text": cut(&text, 3000), "thread_ts": ts})).await
        }))
    }
}

/// Block Kit: a header, the body, the facts, a button to the events.
pub fn payload(context: &AlertContext, message: &Message) -> Value {
    json!({
        "text": cut(&message.title, 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&message.title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&message.body, 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": format!("*{}* · {} · rule `{}` · alert `{}`", context.level, context.source, context.rule_id, context.id)}]},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Matched events"}, "url": context.link},
                {"type": "button", "text": {"type": "plain_text", "text": "Triage"}, "url": context.alert_link}]}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_api_answers_become_outcomes_with_the_thread_reference() {
        let ok = web_api_outcome(200, None, r#"{"ok":true,"channel":"C1","ts":"1712.0001"}"#);
        assert_eq!(ok, Outcome::Delivered { status: Some(200), reference: Some("C1:1712.0001".into()) });
        assert!(matches!(
            web_api_outcome(200, None, r#"{"ok":false,"error":"channel_not_found"}"#),
            Outcome::Failed { reason, .. } if reason.contains("channel_not_found")
        ));
        let later = Some(std::time::Duration::from_secs(3));
        assert!(matches!(
            web_api_outcome(200, later, r#"{"ok":false,"error":"ratelimited"}"#),
            Outcome::Retry { after, .. } if after == later
        ));
        assert!(matches!(web_api_outcome(200, None, "<html>"), Outcome::Retry { .. }));
    }

    #[test]
    fn a_destination_is_a_webhook_or_the_web_api_not_both_nor_neither() {
        let api = Slack { token: "xoxb-1".into(), channel: "#sec".into(), ..Slack::webhook("") };
        assert_eq!(api.problem(), None);
        assert!(api.can_update() && !Slack::webhook("https://hooks").can_update());
        assert!(Slack::webhook("").problem().unwrap().contains("set `url`"));
        assert!(Slack { channel: String::new(), ..api.clone() }.problem().unwrap().contains("channel"));
        assert!(Slack { url: "https://hooks".into(), ..api }.problem().unwrap().contains("not both"));
    }
}
