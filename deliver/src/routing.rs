//! Routes: which destinations an alert goes to, by level, tags, rule id and time of day.

use chrono::{Datelike, Timelike};
use mcpsiem_event::{Alert, Timestamp};

use super::config::{DeliveryConfig, RouteConfig};

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("delivery.routes[{index}] ({name}): destination `{destination}` is not in [delivery.destinations]")]
    UnknownDestination { index: usize, name: String, destination: String },
    #[error("delivery.routes[{index}] ({name}): hours `{hours}` is not of the form \"08-18\"")]
    BadHours { index: usize, name: String, hours: String },
    #[error("delivery.routes[{index}] ({name}): day `{day}` is not one of mon, tue, wed, thu, fri, sat, sun")]
    BadDay { index: usize, name: String, day: String },
}

/// A checked route.
#[derive(Clone, Debug)]
struct Route {
    config: RouteConfig,
    hours: Option<(u32, u32)>,
    days: Vec<u32>,
}

/// The routing table, checked against the destinations once.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
    all: Vec<String>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Router {
    pub fn new(config: &DeliveryConfig) -> Result<Self, RouteError> {
        let mut routes = Vec::new();
        for (index, route) in config.routes.iter().enumerate() {
            let name = if route.name.is_empty() { format!("#{index}") } else { route.name.clone() };
            for destination in &route.destinations {
                if !config.destinations.contains_key(destination) {
                    return Err(RouteError::UnknownDestination { index, name, destination: destination.clone() });
                }
            }
            let hours = match &route.hours {
                None => None,
                Some(text) => Some(parse_hours(text).ok_or_else(|| RouteError::BadHours {
                    index,
                    name: name.clone(),
                    hours: text.clone(),
                })?),
            };
            let mut days = Vec::new();
            for day in &route.days {
                let d = DAYS.iter().position(|d| d.eq_ignore_ascii_case(day)).ok_or_else(|| RouteError::BadDay {
                    index,
                    name: name.clone(),
                    day: day.clone(),
                })?;
                days.push(d as u32);
            }
            routes.push(Route { config: route.clone(), hours, days });
        }
        Ok(Self { routes, all: config.destinations.keys().cloned().collect() })
    }

    /// The destinations of `alert` arriving at `now`, each once, in route order.
    pub fn destinations(&self, alert: &Alert, now: Timestamp) -> Vec<String> {
        if self.routes.is_empty() {
            return self.all.clone();
        }
        let at = now.to_datetime();
        let (hour, day) = (at.hour(), at.weekday().num_days_from_monday());
        let mut out: Vec<String> = Vec::new();
        for route in &self.routes {
            if !route.matches(alert, hour, day) {
                continue;
            }
            for destination in &route.config.destinations {
                if !out.contains(destination) {
                    out.push(destination.clone());
                }
            }
            if !route.config.continue_matching {
                break;
            }
        }
        out
    }
}

impl Route {
    fn matches(&self, alert: &Alert, hour: u32, day: u32) -> bool {
        let c = &self.config;
        c.min_level.is_none_or(|min| alert.level >= min)
            && (c.tags.is_empty() || c.tags.iter().any(|t| alert.tags.iter().any(|a| a.eq_ignore_ascii_case(t))))
            && (c.rule_ids.is_empty() || c.rule_ids.contains(&alert.rule_id))
            && self.hours.is_none_or(
                |(from, to)| if from <= to { (from..to).contains(&hour) } else { hour >= from || hour < to },
            )
            && (self.days.is_empty() || self.days.contains(&day))
    }
}

fn parse_hours(text: &str) -> Option<(u32, u32)> {
    let (from, to) = text.split_once('-')?;
    let (from, to): (u32, u32) = (from.trim().parse().ok()?, to.trim().parse().ok()?);
    (from <= 24 && to <= 24 && from != to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DestinationConfig, DestinationKind};
    use mcpsiem_event::{AlertSource, Level};

    fn alert(level: Level, tags: &[&str], rule: &str) -> Alert {
        Alert {
            id: "01JD0000000000000000000000".into(),
            rule_id: rule.into(),
            rule_title: "t".into(),
            level,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            source: AlertSource::Detection,
            first_time: Timestamp::from_micros(0),
            last_time: Timestamp::from_micros(0),
            group: Default::default(),
            count: 1,
            event_ids: vec![],
            sql: String::new(),
        }
    }

    fn config(routes: Vec<RouteConfig>) -> DeliveryConfig {
        let destination = |url: &str| DestinationConfig {
            kind: DestinationKind::Slack(crate::destinations::slack::Slack::webhook(url)),
            rate_per_minute: 0,
            timeout_seconds: 10,
            title_template: None,
            body_template: None,
        };
        let mut config = DeliveryConfig { routes, ..Default::default() };
        for name in ["pager", "chat", "tickets"] {
            config.destinations.insert(name.into(), destination(name));
        }
        config
    }

    #[test]
    fn routes_by_level_tags_rule_and_time() {
        let routes = vec![
            RouteConfig {
                name: "night pager".into(),
                destinations: vec!["pager".into()],
                min_level: Some(Level::High),
                hours: Some("22-06".into()),
                continue_matching: true,
                ..Default::default()
            },
            RouteConfig {
                name: "credential theft".into(),
                destinations: vec!["tickets".into(), "chat".into()],
                tags: vec!["attack.credential_access".into()],
                ..Default::default()
            },
            RouteConfig { name: "rest".into(), destinations: vec!["chat".into()], ..Default::default() },
        ];
        let router = Router::new(&config(routes)).unwrap();
        let night = Timestamp::parse("2026-11-24T23:30:00Z").unwrap();
        let day = Timestamp::parse("2026-11-24T12:00:00Z").unwrap();
        let theft = alert(Level::Critical, &["attack.credential_access"], "r1");
        assert_eq!(router.destinations(&theft, night), vec!["pager", "tickets", "chat"]);
        assert_eq!(router.destinations(&theft, day), vec!["tickets", "chat"]);
        assert_eq!(router.destinations(&alert(Level::Low, &[], "r2"), night), vec!["chat"]);

        let no_routes = Router::new(&config(vec![])).unwrap();
        assert_eq!(no_routes.destinations(&theft, day).len(), 3);
    }

    #[test]
    fn bad_routes_are_named() {
        let bad = |route: RouteConfig| Router::new(&config(vec![route])).unwrap_err().to_string();
        let err = bad(RouteConfig { name: "x".into(), destinations: vec!["nowhere".into()], ..Default::default() });
        assert!(err.contains("nowhere") && err.contains("(x)"), "{err}");
        assert!(bad(RouteConfig { hours: Some("8 to 6".into()), ..Default::default() }).contains("hours"));
        assert!(bad(RouteConfig { days: vec!["funday".into()], ..Default::default() }).contains("funday"));
        let only_weekends = RouteConfig {
            destinations: vec!["chat".into()],
            rule_ids: vec!["r1".into()],
            days: vec!["sat".into(), "sun".into()],
            ..Default::default()
        };
        let router = Router::new(&config(vec![only_weekends])).unwrap();
        let tuesday = Timestamp::parse("2026-11-24T12:00:00Z").unwrap();
        let saturday = Timestamp::parse("2026-11-28T12:00:00Z").unwrap();
        let a = alert(Level::Medium, &[], "r1");
        assert!(router.destinations(&a, tuesday).is_empty());
        assert_eq!(router.destinations(&a, saturday), vec!["chat"]);
    }
}
