//! What HTTP destinations share: one client with the destination's timeouts, a POST, and
//! what an answer's status means for a retry.

use std::time::Duration;

use serde_json::Value;

use crate::outcome::Outcome;

/// A destination's HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    pub client: reqwest::Client,
}

impl HttpClient {
    pub fn new(timeout_seconds: u64) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout_seconds.max(1)))
            .connect_timeout(Duration::from_secs(timeout_seconds.clamp(1, 10)))
            .user_agent(concat!("mcpsiem/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with timeouts builds");
        Self { client }
    }

    pub async fn post_json(&self, url: &str, payload: &Value, headers: &[(&str, String)]) -> Outcome {
        let body = serde_json::to_vec(payload).expect("JSON serializes");
        self.post(url, body, headers, None).await
    }

    pub async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
        auth: Option<(&str, &str)>,
    ) -> Outcome {
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
}
