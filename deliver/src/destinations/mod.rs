//! The destination types. Each is one file here: its settings (one `type = "…"` of
//! `[delivery.destinations.NAME]`), how it sends an alert, what an answer means, and its
//! tests; and one line in [`registry!`] below. CONTRIBUTING.md has the recipe.

pub mod email;
pub mod http;
pub mod jira;
pub mod ocsf;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

use futures::future::BoxFuture;
use mcpsiem_event::Alert;
use serde::{Deserialize, Serialize};

use crate::message::{AlertContext, Message};
use crate::outbox::AlertUpdate;
use crate::outcome::Outcome;
use http::HttpClient;

/// One attempt at delivering one alert to one destination.
pub struct Attempt<'a> {
    pub alert: &'a Alert,
    /// The rendered title and body (the destination's templates or the defaults).
    pub message: &'a Message,
    /// The values templates see, including the link to the matched events.
    pub context: &'a AlertContext,
    /// The outbox's delivery key: the same on every retry of this alert to this destination,
    /// so receivers that deduplicate by it see one delivery.
    pub key: &'a str,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The destination's HTTP client, with its timeouts.
    pub http: &'a HttpClient,
    /// Seconds one attempt may take (for transports that are not HTTP).
    pub timeout_seconds: u64,
}

/// A kind of destination: Slack, a signed webhook, PagerDuty…
pub trait Destination: Send + Sync {
    /// One attempt; what the answer means for a retry is in the [`Outcome`].
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome>;

    /// Most alerts one request may carry; 1 (most types): each alert is sent on its own.
    fn batch_limit(&self) -> usize {
        1
    }

    /// One attempt at several alerts in one request, whose outcome is every alert's. The
    /// worker calls it with more than one alert only where [`Self::batch_limit`] allows;
    /// by default the alerts go one after another and the first that is not delivered
    /// decides (what went before it is sent again on a retry, under the same keys).
    fn deliver_batch<'a>(&'a self, attempts: &'a [Attempt<'a>]) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut last = Outcome::Delivered { status: None, reference: None };
            for attempt in attempts {
                last = self.deliver(attempt).await;
                if !matches!(last, Outcome::Delivered { .. }) {
                    break;
                }
            }
            last
        })
    }

    /// Whether [`Self::resolve`] does something: closing an alert then resolves what its
    /// delivery started.
    fn can_resolve(&self) -> bool {
        false
    }

    /// Ends what an alert started (PagerDuty resolves its incident); `None`: this type has
    /// nothing to resolve, as most have.
    fn resolve<'a>(&'a self, _http: &'a HttpClient, _alert_id: &'a str) -> Option<BoxFuture<'a, Outcome>> {
        None
    }

    /// What is wrong with the settings, if anything (checked when the stage starts).
    fn problem(&self) -> Option<String> {
        None
    }

    /// Whether [`Self::update`] does something: the repeats the detector folds into an open
    /// alert are then told to what its delivery started.
    fn can_update(&self) -> bool {
        false
    }

    /// Tells what `alert`'s delivery started that the alert repeated (PagerDuty: a trigger
    /// under the same dedup key; Jira: a comment); `None`: this type has no way to.
    fn update<'a>(
        &'a self,
        _http: &'a HttpClient,
        _alert: &'a Alert,
        _update: &'a AlertUpdate,
    ) -> Option<BoxFuture<'a, Outcome>> {
        None
    }
}

/// One line saying what an update tells: how many more matches, over what time.
pub(crate) fn update_text(alert: &Alert, update: &AlertUpdate) -> String {
    let times = if update.first_time == update.last_time {
        format!("at {}", update.first_time)
    } else {
        format!("from {} to {}", update.first_time, update.last_time)
    };
    let noun = if update.count == 1 { "match" } else { "matches" };
    format!("{} fired again for the same group: {} more {noun} {times}.", alert.rule_title, update.count)
}

/// Declares [`DestinationKind`], the `type` of a destination's settings, from one line per
/// destination type: `type_name => Variant(module::Settings)`.
macro_rules! registry {
    ($($name:literal => $variant:ident($settings:ty)),+ $(,)?) => {
        /// The destination types and their settings (`type = "…"`).
        #[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum DestinationKind {
            $($variant($settings),)+
        }

        impl DestinationKind {
            /// The `type` as configured.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            /// The destination that sends with these settings.
            pub fn destination(&self) -> &dyn Destination {
                match self {
                    $(Self::$variant(settings) => settings,)+
                }
            }
        }
    };
}

registry! {
    "slack" => Slack(slack::Slack),
    "teams" => Teams(teams::Teams),
    "webhook" => Webhook(webhook::Webhook),
    "jira" => Jira(jira::Jira),
    "pagerduty" => Pagerduty(pagerduty::Pagerduty),
    "email" => Email(email::Email),
    "ocsf" => Ocsf(ocsf::Ocsf),
}

/// Shortens `text` to at most `max` characters, ending with `…` when cut (the APIs refuse
/// longer titles).
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_name_is_its_serde_tag() {
        let kinds = [
            DestinationKind::Slack(slack::Slack::webhook("u")),
            DestinationKind::Webhook(webhook::Webhook { url: "u".into(), secret: "s".into() }),
        ];
        for kind in kinds {
            let value = serde_json::to_value(&kind).unwrap();
            assert_eq!(value["type"], kind.type_name());
        }
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
