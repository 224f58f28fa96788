//! A bearer token as it may leave the collector: its keyed fingerprint and the claims of its
//! JWT payload, read without verification (the MCP server verifies; we record who the
//! token says it is, which is what a stolen token's replay shows). The raw token is
//! dropped here and goes nowhere else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpsiem_event::token::TokenFingerprinter;
use mcpsiem_event::{OwnedEvent, TextList, Timestamp};
use serde_json::Value;

/// What is kept of one bearer token.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenInfo {
    pub fingerprint: String,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub jti: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires: Option<Timestamp>,
    pub issued: Option<Timestamp>,
}

impl TokenInfo {
    /// From an `Authorization` header value; `None` when it holds no bearer token.
    pub fn from_authorization(header: &str, fingerprinter: &TokenFingerprinter) -> Option<Self> {
        let (scheme, token) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return None;
        }
        Some(Self::from_token(token.trim(), fingerprinter))
    }

    /// From a bare token: an opaque token gets only its fingerprint.
    pub fn from_token(token: &str, fingerprinter: &TokenFingerprinter) -> Self {
        let mut info = TokenInfo { fingerprint: fingerprinter.fingerprint(token), ..Default::default() };
        if let Some(claims) = jwt_claims(token) {
            info.apply_claims(&claims);
        }
        info
    }

    fn apply_claims(&mut self, claims: &serde_json::Map<String, Value>) {
        let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
        let time = |key: &str| claims.get(key).and_then(Value::as_i64).and_then(Timestamp::from_unix_seconds);
        self.subject = text("sub");
        self.issuer = text("iss");
        self.audience = match claims.get("aud") {
            Some(Value::String(a)) => Some(vec![a.clone()]),
            Some(Value::Array(items)) => Some(items.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            _ => None,
        };
        self.client_id = text("client_id").or_else(|| text("azp"));
        self.jti = text("jti");
        self.scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) => Some(s.split_whitespace().map(str::to_owned).collect()),
            (_, Some(Value::Array(items))) => Some(items.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            (_, Some(Value::String(s))) => Some(s.split_whitespace().map(str::to_owned).collect()),
            _ => None,
        };
        self.expires = time("exp");
        self.issued = time("iat");
    }

    /// Sets the `auth.token.*` fields, and `enduser.id` from `sub` when it is not set.
    pub fn apply(&self, e: &mut OwnedEvent) {
        e.token_fingerprint = Some(self.fingerprint.clone().into());
        e.token_subject = self.subject.clone().map(Into::into);
        e.token_issuer = self.issuer.clone().map(Into::into);
        e.token_audience = self.audience.as_ref().map(|a| a.iter().cloned().collect::<TextList>());
        e.token_client_id = self.client_id.clone().map(Into::into);
        e.token_id = self.jti.clone().map(Into::into);
        e.token_scopes = self.scopes.as_ref().map(|s| s.iter().cloned().collect::<TextList>());
        e.token_expires = self.expires;
        e.token_issued = self.issued;
        if e.user_id.is_none() {
            e.user_id = self.subject.clone().map(Into::into);
        }
    }
}

/// The payload of a JWT (`header.payload.signature`), unverified; `None` for anything else.
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None; // a JWE has five parts; its payload is encrypted
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) fn test_jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_read_and_the_token_is_not_kept() {
        let fp = TokenFingerprinter::new("site");
        let token = test_jwt(&json!({
            "sub": "alice", "iss": "https://idp", "aud": "https://mcp.example/mcp", "azp": "cursor",
            "jti": "j-1", "scope": "files:read mail:send", "exp": 1_800_000_000, "iat": 1_799_996_400
        }));
        let info = TokenInfo::from_authorization(&format!("Bearer {token}"), &fp).unwrap();
        assert_eq!(info.fingerprint, fp.fingerprint(&token));
        assert_eq!(info.subject.as_deref(), Some("alice"));
        assert_eq!(info.audience, Some(vec!["https://mcp.example/mcp".to_owned()]));
        assert_eq!(info.client_id.as_deref(), Some("cursor"));
        assert_eq!(info.scopes, Some(vec!["files:read".to_owned(), "mail:send".to_owned()]));
        assert_eq!(info.expires, Some(Timestamp::from_micros(1_800_000_000_000_000)));
        assert!(!format!("{info:?}").contains(&token));

        let opaque = TokenInfo::from_authorization("bearer opaque-token-123", &fp).unwrap();
        assert_eq!(opaque.fingerprint, fp.fingerprint("opaque-token-123"));
        assert_eq!(opaque.subject, None);
        assert!(TokenInfo::from_authorization("Basic dXNlcjpwYXNz", &fp).is_none());
        assert!(TokenInfo::from_authorization("Bearer ", &fp).is_none());
    }
}
