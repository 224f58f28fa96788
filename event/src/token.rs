//! Bearer-token fingerprints: the only form of a token that leaves a collector.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Computes keyed fingerprints of bearer tokens.
///
/// HMAC-SHA256 under a site key rather than a plain hash: a plain SHA-256 of a JWT can be
/// recomputed by anyone holding a leaked token list, linking it to our events; with a site
/// key only this deployment can. Every collector of a site shares the key, so the same
/// token has the same fingerprint wherever it is seen.
#[derive(Clone)]
pub struct TokenFingerprinter {
    key: Vec<u8>,
}

impl TokenFingerprinter {
    pub fn new(site_key: impl AsRef<[u8]>) -> Self {
        Self { key: site_key.as_ref().to_vec() }
    }

    /// Lower-case hex of HMAC-SHA256(site key, token). A `Bearer ` prefix is ignored so the
    /// header value and the bare token give the same fingerprint.
    pub fn fingerprint(&self, token: &str) -> String {
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Which token an event was made with, from what its collector could see: the keyed
/// fingerprint of the raw token (proxies), else the token's `jti` (a gateway log that kept
/// the claims), else its subject and client (`jwt.sub` of an agentgateway log). One token
/// seen by a proxy and by a gateway log gets two identities; the token rules group by this
/// so that logs without a raw token are not invisible to them.
pub fn token_identity(event: &crate::McpEvent<'_>) -> Option<String> {
    if let Some(fingerprint) = &event.token_fingerprint {
        return Some(format!("fp:{fingerprint}"));
    }
    let issuer = event.token_issuer.as_deref().unwrap_or("");
    if let Some(jti) = &event.token_id {
        return Some(format!("jti:{issuer}|{jti}"));
    }
    let subject = event.token_subject.as_deref()?;
    Some(format!("sub:{issuer}|{subject}|{}", event.token_client_id.as_deref().unwrap_or("")))
}

impl std::fmt::Debug for TokenFingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenFingerprinter { key: \"***\" }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_identity_falls_back_from_fingerprint_to_jti_to_subject() {
        use crate::{EventId, EventKind, OwnedEvent, Timestamp};
        let mut e = OwnedEvent::new(EventId::new(), Timestamp::from_micros(0), EventKind::Message);
        assert_eq!(token_identity(&e), None);
        e.token_subject = Some("alice".into());
        assert_eq!(token_identity(&e).as_deref(), Some("sub:|alice|"));
        e.token_issuer = Some("https://idp".into());
        e.token_client_id = Some("agent-1".into());
        assert_eq!(token_identity(&e).as_deref(), Some("sub:https://idp|alice|agent-1"));
        e.token_id = Some("j-1".into());
        assert_eq!(token_identity(&e).as_deref(), Some("jti:https://idp|j-1"));
        e.token_fingerprint = Some("ab12".into());
        assert_eq!(token_identity(&e).as_deref(), Some("fp:ab12"));
    }

    #[test]
    fn same_key_same_fingerprint_other_key_other_fingerprint() {
        let a = TokenFingerprinter::new("site-key");
        assert_eq!(a.fingerprint("abc.def.ghi"), a.fingerprint("Bearer abc.def.ghi"));
        assert_ne!(a.fingerprint("abc.def.ghi"), TokenFingerprinter::new("other").fingerprint("abc.def.ghi"));
        assert_eq!(a.fingerprint("x").len(), 64);
        assert!(!format!("{a:?}").contains("site-key"));
    }
}
