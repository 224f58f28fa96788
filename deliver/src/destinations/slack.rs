//! Slack incoming webhooks: the message as Block Kit.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Attempt, Destination, cut};
use crate::message::{AlertContext, Message};
use crate::outcome::Outcome;

/// A Slack incoming webhook; the message is Block Kit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The webhook URL (itself the credential: masked by `config show`).
    pub url: String,
}

impl Destination for Slack {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        let payload = payload(attempt.context, attempt.message);
        Box::pin(async move { attempt.http.post_json(&self.url, &payload, &[]).await })
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
