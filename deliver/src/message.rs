//! What a message says: a title and a text body rendered with minijinja from the alert,
//! with defaults good enough that most sites never write a template.

use mcpsiem_event::Alert;
use minijinja::Environment;
use serde::Serialize;

pub const DEFAULT_TITLE: &str = "[{{ level | upper }}] {{ rule_title }}";
pub const DEFAULT_BODY: &str = "\
{{ count }} matching event{% if count != 1 %}s{% endif %} from {{ first_time }} to {{ last_time }} \
({{ source }} rule {{ rule_id }}).
{% for key, value in group | items %}{{ key }}: {{ value }}
{% endfor %}{% if tags %}Tags: {{ tags | join(', ') }}
{% endif %}Events: {{ sql }}
Open in the query service: {{ link }}
Triage (ack, assign, close): {{ alert_link }}";

#[derive(Debug, thiserror::Error)]
#[error("destination `{destination}`: the {which} template is invalid: {source}")]
pub struct TemplateError {
    pub destination: String,
    pub which: &'static str,
    pub source: minijinja::Error,
}

/// The values templates see.
#[derive(Clone, Debug, Serialize)]
pub struct AlertContext {
    pub id: String,
    pub rule_id: String,
    pub rule_title: String,
    pub level: String,
    pub source: String,
    pub tags: Vec<String>,
    pub first_time: String,
    pub last_time: String,
    pub count: u64,
    pub group: std::collections::BTreeMap<String, String>,
    pub event_ids: Vec<String>,
    pub sql: String,
    /// The query service URL that runs `sql`.
    pub link: String,
    /// The alert in the query service's alert workflow (its state, history and events).
    pub alert_link: String,
}

impl AlertContext {
    pub fn new(alert: &Alert, query_url: &str) -> Self {
        let link = format!(
            "{}/api/v1/query?sql={}",
            query_url.trim_end_matches('/'),
            url::form_urlencoded::byte_serialize(alert.sql.as_bytes()).collect::<String>()
        );
        Self {
            id: alert.id.clone(),
            rule_id: alert.rule_id.clone(),
            rule_title: alert.rule_title.clone(),
            level: alert.level.as_str().into(),
            source: alert.source.as_str().into(),
            tags: alert.tags.clone(),
            first_time: alert.first_time.to_string(),
            last_time: alert.last_time.to_string(),
            count: alert.count,
            group: alert.group.clone(),
            event_ids: alert.event_ids.clone(),
            sql: alert.sql.clone(),
            link,
            alert_link: format!(
                "{}/api/v1/alerts/{}",
                query_url.trim_end_matches('/'),
                url::form_urlencoded::byte_serialize(alert.id.as_bytes()).collect::<String>()
            ),
        }
    }
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub body: String,
}

/// One destination's two templates, compiled once.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(destination: &str, title: Option<&str>, body: Option<&str>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        let error = |which, source| TemplateError { destination: destination.to_owned(), which, source };
        env.add_template_owned("title", title.unwrap_or(DEFAULT_TITLE).to_owned()).map_err(|e| error("title", e))?;
        env.add_template_owned("body", body.unwrap_or(DEFAULT_BODY).to_owned()).map_err(|e| error("body", e))?;
        Ok(Self { env })
    }

    /// Renders both; a template that fails at render time (an unknown filter on a value)
    /// falls back to the default so the alert still goes out.
    pub fn render(&self, context: &AlertContext) -> Message {
        let render = |name: &str, default: &str| {
            self.env
                .get_template(name)
                .and_then(|t| t.render(context))
                .or_else(|e| {
                    tracing::warn!(error = %e, template = name, "a message template failed; using the default");
                    Environment::new().render_str(default, context)
                })
                .unwrap_or_else(|_| context.rule_title.clone())
        };
        Message { title: render("title", DEFAULT_TITLE), body: render("body", DEFAULT_BODY) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpsiem_event::{AlertSource, Level, Timestamp};

    pub(crate) fn sample() -> Alert {
        Alert {
            id: "01JD3K7W9Z8Y7X6V5T4S3R2Q1P".into(),
            rule_id: "5d3d4c3e-token-replay".into(),
            rule_title: "Token replayed from a new address".into(),
            level: Level::High,
            tags: vec!["attack.credential_access".into(), "attack.t1550".into()],
            source: AlertSource::Correlation,
            first_time: Timestamp::parse("2026-11-24T10:00:00Z").unwrap(),
            last_time: Timestamp::parse("2026-11-24T10:04:00Z").unwrap(),
            group: [("auth.token.fingerprint".to_string(), "ab12".to_string())].into(),
            count: 3,
            event_ids: vec!["e1".into(), "e2".into(), "e3".into()],
            sql: "SELECT * FROM events WHERE event_id IN ('e1','e2','e3')".into(),
        }
    }

    #[test]
    fn defaults_carry_everything_a_responder_needs() {
        let t = Templates::new("chat", None, None).unwrap();
        let m = t.render(&AlertContext::new(&sample(), "http://siem:9480/"));
        assert_eq!(m.title, "[HIGH] Token replayed from a new address");
        for part in [
            "3 matching events",
            "2026-11-24T10:00:00",
            "correlation rule 5d3d4c3e-token-replay",
            "auth.token.fingerprint: ab12",
            "attack.credential_access",
            "SELECT * FROM events",
            "http://siem:9480/api/v1/query?sql=SELECT+*+FROM+events",
        ] {
            assert!(m.body.contains(part), "missing {part:?} in:\n{}", m.body);
        }
    }

    #[test]
    fn custom_templates_and_bad_ones() {
        let t = Templates::new("x", Some("{{ rule_id }}/{{ group['auth.token.fingerprint'] }}"), Some("n={{ count }}"))
            .unwrap();
        let m = t.render(&AlertContext::new(&sample(), "http://q"));
        assert_eq!((m.title.as_str(), m.body.as_str()), ("5d3d4c3e-token-replay/ab12", "n=3"));
        let err = Templates::new("pager", Some("{{ unclosed"), None).err().unwrap().to_string();
        assert!(err.contains("pager") && err.contains("title"), "{err}");
    }
}
