//! Generic webhooks: the alert as JSON, signed with HMAC-SHA256 over timestamp and body,
//! with the delivery key as the idempotency key.

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::{Attempt, Destination};
use crate::outcome::Outcome;

/// The signature headers of generic webhooks.
pub const SIGNATURE_HEADER: &str = "X-Mcpsiem-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Mcpsiem-Timestamp";
pub const DELIVERY_HEADER: &str = "X-Mcpsiem-Delivery";

/// Any HTTP endpoint: the alert as JSON, signed with HMAC-SHA256 over timestamp and body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// The signing secret shared with the receiver.
    pub secret: String,
}

impl Destination for Webhook {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        let body = serde_json::to_vec(&json!({
            "delivery_id": attempt.key, "title": attempt.message.title, "text": attempt.message.body,
            "link": attempt.context.link, "alert": attempt.alert,
        }))
        .expect("JSON serializes");
        let timestamp = mcpsiem_event::Timestamp::now().as_micros() / 1_000_000;
        let signature = webhook_signature(&self.secret, timestamp, &body);
        Box::pin(async move {
            let headers = [
                (TIMESTAMP_HEADER, timestamp.to_string()),
                (SIGNATURE_HEADER, signature),
                (DELIVERY_HEADER, attempt.key.to_owned()),
                ("Idempotency-Key", attempt.key.to_owned()),
            ];
            attempt.http.post(&self.url, body, &headers, None).await
        })
    }
}

/// `v1=` and the hex HMAC-SHA256 under `secret` of `"{timestamp}.{body}"`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_over_timestamp_and_body() {
        let a = webhook_signature("s3cret", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 67);
        assert_ne!(a, webhook_signature("s3cret", 1_700_000_001, b"{}"));
        assert_ne!(a, webhook_signature("other", 1_700_000_000, b"{}"));
    }
}
