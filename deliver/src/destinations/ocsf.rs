//! OCSF collectors: the alert as an OCSF Detection Finding (class 2004, schema 1.3.0), in a
//! JSON array as HTTP event collectors of security lakes and SIEMs take them, with the
//! delivery key as the idempotency key and an optional `Authorization` header.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Attempt, Destination};
use crate::outcome::Outcome;

/// Any HTTP endpoint that takes OCSF findings as JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ocsf {
    pub url: String,
    /// The whole `Authorization` header value (`Bearer …`, `Splunk …`); empty: none. Masked
    /// by `config show`.
    #[serde(default)]
    pub authorization_token: String,
}

impl Destination for Ocsf {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        let finding = mcpsiem_event::ocsf::detection_finding(attempt.alert, env!("CARGO_PKG_VERSION"));
        let payload = serde_json::Value::Array(vec![finding]);
        Box::pin(async move {
            let mut headers = vec![("Idempotency-Key", attempt.key.to_owned())];
            if !self.authorization_token.is_empty() {
                headers.push(("Authorization", self.authorization_token.clone()));
            }
            attempt.http.post_json(&self.url, &payload, &headers).await
        })
    }
}
