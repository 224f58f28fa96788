//! PagerDuty Events API v2: a trigger per alert, deduplicated by the alert id, and resolve.

use futures::future::BoxFuture;
use mcpsiem_event::{Alert, Level};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::HttpClient;
use super::{Attempt, Destination, cut, update_text};
use crate::message::{AlertContext, Message};
use crate::outbox::AlertUpdate;
use crate::outcome::Outcome;

/// PagerDuty Events API v2: a trigger per alert, deduplicated by the alert id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pagerduty {
    pub routing_key: String,
    #[serde(default = "default_url")]
    pub url: String,
}

fn default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

impl Destination for Pagerduty {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        let payload = trigger(&self.routing_key, attempt.context, attempt.message, attempt.alert);
        Box::pin(async move { attempt.http.post_json(&self.url, &payload, &[]).await })
    }

    fn can_resolve(&self) -> bool {
        true
    }

    fn resolve<'a>(&'a self, http: &'a HttpClient, alert_id: &'a str) -> Option<BoxFuture<'a, Outcome>> {
        let payload = json!({"routing_key": self.routing_key, "event_action": "resolve", "dedup_key": alert_id});
        Some(Box::pin(async move { http.post_json(&self.url, &payload, &[]).await }))
    }

    fn can_update(&self) -> bool {
        true
    }

    fn update<'a>(
        &'a self,
        http: &'a HttpClient,
        alert: &'a Alert,
        update: &'a AlertUpdate,
    ) -> Option<BoxFuture<'a, Outcome>> {
        let payload = repeat_trigger(&self.routing_key, alert, update);
        Some(Box::pin(async move { http.post_json(&self.url, &payload, &[]).await }))
    }
}

/// A trigger under the alert's dedup key: PagerDuty adds it to the open incident's log
/// (and opens none), so the responder sees that the alert keeps firing.
pub fn repeat_trigger(routing_key: &str, alert: &Alert, update: &AlertUpdate) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id,
        "payload": {
            "summary": cut(&update_text(alert, update), 1024),
            "source": "mcpsiem",
            "severity": severity(alert.level),
            "timestamp": update.last_time.to_string(),
            "group": alert.rule_id,
            "class": "repeat",
            "custom_details": {
                "repeats": update.count, "first_time": update.first_time.to_string(),
                "last_time": update.last_time.to_string(), "event_ids": update.event_ids,
                "group": alert.group,
            }
        }
    })
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Informational => "info",
    }
}

/// A trigger; the alert id is the dedup key, so a repeat of the same alert updates the
/// incident instead of opening another.
pub fn trigger(routing_key: &str, context: &AlertContext, message: &Message, alert: &Alert) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id,
        "payload": {
            "summary": cut(&message.title, 1024),
            "source": "mcpsiem",
            "severity": severity(alert.level),
            "timestamp": context.last_time,
            "group": context.rule_id,
            "class": context.source,
            "custom_details": {
                "text": message.body, "group": context.group, "count": context.count, "tags": context.tags,
                "sql": context.sql, "first_time": context.first_time, "last_time": context.last_time,
            }
        },
        "links": [{"href": context.link, "text": "Matched events"}, {"href": context.alert_link, "text": "Triage"}]
    })
}
