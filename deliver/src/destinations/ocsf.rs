//! OCSF collectors: alerts as OCSF Detection Findings (class 2004, schema 1.3.0), in a JSON
//! array as HTTP event collectors of security lakes and SIEMs take them, up to `max_batch`
//! findings a request, with an idempotency key and an optional `Authorization` header.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Attempt, Destination};
use crate::outcome::Outcome;

/// Most findings one request carries unless configured: collectors take batches of this
/// order (Splunk's HEC and Security Lake's custom sources accept far larger ones).
pub const DEFAULT_MAX_BATCH: usize = 100;

/// The most `max_batch` may be: one request must stay well under collectors' body limits
/// (a finding is 2–20 KiB).
pub const MAX_BATCH_LIMIT: usize = 1000;

/// Any HTTP endpoint that takes OCSF findings as JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ocsf {
    pub url: String,
    /// The whole `Authorization` header value (`Bearer …`, `Splunk …`); empty: none. Masked
    /// by `config show`.
    #[serde(default)]
    pub authorization_token: String,
    /// Most findings in one request (1 to 1000): alerts due at the same moment go together.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

fn default_max_batch() -> usize {
    DEFAULT_MAX_BATCH
}

impl Ocsf {
    /// A destination with the default batch size.
    pub fn new(url: impl Into<String>, authorization_token: impl Into<String>) -> Self {
        Self { url: url.into(), authorization_token: authorization_token.into(), max_batch: DEFAULT_MAX_BATCH }
    }
}

/// The idempotency key of a request: the delivery key of a single alert, and for a batch a
/// digest of its sorted delivery keys, so a retry of the same batch carries the same key.
/// (A retry may group alerts differently; receivers that deduplicate findings use each
/// finding's `finding_info.uid`, the alert id.)
pub fn batch_key(keys: &[&str]) -> String {
    if let [one] = keys {
        return (*one).to_owned();
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let mut digest = Sha256::new();
    for key in sorted {
        digest.update(key.as_bytes());
        digest.update(b"\n");
    }
    format!("batch-{}", hex::encode(&digest.finalize()[..16]))
}

impl Destination for Ocsf {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        self.deliver_batch(std::slice::from_ref(attempt))
    }

    fn batch_limit(&self) -> usize {
        self.max_batch.clamp(1, MAX_BATCH_LIMIT)
    }

    fn deliver_batch<'a>(&'a self, attempts: &'a [Attempt<'a>]) -> BoxFuture<'a, Outcome> {
        let findings = attempts
            .iter()
            .map(|attempt| mcpsiem_event::ocsf::detection_finding(attempt.alert, env!("CARGO_PKG_VERSION")))
            .collect();
        let payload = serde_json::Value::Array(findings);
        let keys: Vec<&str> = attempts.iter().map(|attempt| attempt.key).collect();
        let key = batch_key(&keys);
        Box::pin(async move {
            let Some(first) = attempts.first() else {
                return Outcome::Delivered { status: None, reference: None };
            };
            let mut headers = vec![("Idempotency-Key", key)];
            if !self.authorization_token.is_empty() {
                headers.push(("Authorization", self.authorization_token.clone()));
            }
            first.http.post_json(&self.url, &payload, &headers).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_key_is_the_single_key_or_a_digest_independent_of_order() {
        assert_eq!(batch_key(&["a1:lake"]), "a1:lake");
        let key = batch_key(&["a1:lake", "a2:lake", "a3:lake"]);
        assert!(key.starts_with("batch-") && key.len() == 38, "{key}");
        assert_eq!(key, batch_key(&["a3:lake", "a1:lake", "a2:lake"]));
        assert_ne!(key, batch_key(&["a1:lake", "a2:lake"]));
    }

    #[test]
    fn max_batch_defaults_and_is_bounded() {
        let ocsf: Ocsf = serde_json::from_str(r#"{"url": "http://x"}"#).unwrap();
        assert_eq!(ocsf.batch_limit(), DEFAULT_MAX_BATCH);
        assert_eq!(Ocsf { max_batch: 0, ..ocsf.clone() }.batch_limit(), 1);
        assert_eq!(Ocsf { max_batch: 1_000_000, ..ocsf }.batch_limit(), MAX_BATCH_LIMIT);
    }
}
