//! Microsoft Teams workflow webhooks: the message as an Adaptive Card.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Attempt, Destination};
use crate::message::{AlertContext, Message};
use crate::outcome::Outcome;

/// A Microsoft Teams workflow webhook; the message is an Adaptive Card.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Teams {
    /// The workflow's URL (itself the credential: masked by `config show`).
    pub url: String,
}

impl Destination for Teams {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        let payload = payload(attempt.context, attempt.message);
        Box::pin(async move { attempt.http.post_json(&self.url, &payload, &[]).await })
    }
}

/// An Adaptive Card in a message.
pub fn payload(context: &AlertContext, message: &Message) -> Value {
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
                "actions": [
                    {"type": "Action.OpenUrl", "title": "Matched events", "url": context.link},
                    {"type": "Action.OpenUrl", "title": "Triage", "url": context.alert_link}
                ]
            }
        }]
    })
}
