//! A configured destination: its type's [`Destination`](crate::destinations::Destination),
//! its templates, its client and its limits, ready to send.

use mcpsiem_event::Alert;

use crate::config::DestinationConfig;
use crate::destinations::Attempt;
use crate::destinations::http::HttpClient;
use crate::message::{AlertContext, Message, TemplateError, Templates};
pub use crate::outcome::Outcome;

/// A destination by name, as `[delivery.destinations.NAME]` configures it.
pub struct ConfiguredDestination {
    pub name: String,
    pub config: DestinationConfig,
    templates: Templates,
    http: HttpClient,
    query_url: String,
}

impl ConfiguredDestination {
    pub fn new(name: &str, config: &DestinationConfig, query_url: &str) -> Result<Self, TemplateError> {
        let templates = Templates::new(name, config.title_template.as_deref(), config.body_template.as_deref())?;
        Ok(Self {
            name: name.to_owned(),
            config: config.clone(),
            templates,
            http: HttpClient::new(config.timeout_seconds),
            query_url: query_url.to_owned(),
        })
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
        let attempt = Attempt {
            alert,
            message: &message,
            context: &context,
            key,
            attempts,
            http: &self.http,
            timeout_seconds: self.config.timeout_seconds,
        };
        self.config.kind.destination().deliver(&attempt).await
    }

    /// Most alerts one attempt may carry (see [`Self::deliver_batch`]).
    pub fn batch_limit(&self) -> usize {
        self.config.kind.destination().batch_limit()
    }

    /// One attempt at several alerts, `(alert, delivery key, attempts before)` each, in one
    /// request where the type batches; one alert goes through [`Self::deliver`].
    pub async fn deliver_batch(&self, deliveries: &[(&Alert, &str, u32)]) -> Outcome {
        if let [(alert, key, attempts)] = deliveries {
            return self.deliver(alert, key, *attempts).await;
        }
        let rendered: Vec<(AlertContext, Message)> =
            deliveries.iter().map(|(alert, _, _)| self.render(alert)).collect();
        let attempts: Vec<Attempt<'_>> = deliveries
            .iter()
            .zip(&rendered)
            .map(|((alert, key, attempts), (context, message))| Attempt {
                alert,
                message,
                context,
                key,
                attempts: *attempts,
                http: &self.http,
                timeout_seconds: self.config.timeout_seconds,
            })
            .collect();
        self.config.kind.destination().deliver_batch(&attempts).await
    }

    /// Whether the alert's repeats are told to what its delivery here started.
    pub fn can_update(&self) -> bool {
        self.config.kind.destination().can_update()
    }

    /// Tells what the alert's delivery started that it repeated (PagerDuty, Jira).
    pub async fn update(&self, alert: &Alert, update: &crate::outbox::AlertUpdate) -> Outcome {
        match self.config.kind.destination().update(&self.http, alert, update) {
            Some(updating) => updating.await,
            None => Outcome::Failed {
                reason: format!(
                    "{} destinations take no updates (pagerduty and jira do)",
                    self.config.kind.type_name()
                ),
                status: None,
            },
        }
    }

    /// Whether closing an alert resolves what its delivery here started.
    pub fn can_resolve(&self) -> bool {
        self.config.kind.destination().can_resolve()
    }

    /// Ends what the alert started, where the type has something to end (PagerDuty).
    pub async fn resolve(&self, alert_id: &str) -> Outcome {
        match self.config.kind.destination().resolve(&self.http, alert_id) {
            Some(resolving) => resolving.await,
            None => Outcome::Failed {
                reason: format!(
                    "{} destinations have nothing to resolve (only pagerduty does)",
                    self.config.kind.type_name()
                ),
                status: None,
            },
        }
    }
}
