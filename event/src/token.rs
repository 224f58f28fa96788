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

impl std::fmt::Debug for TokenFingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenFingerprinter { key: \"***\" }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_fingerprint_other_key_other_fingerprint() {
        let a = TokenFingerprinter::new("site-key");
        assert_eq!(a.fingerprint("abc.def.ghi"), a.fingerprint("Bearer abc.def.ghi"));
        assert_ne!(a.fingerprint("abc.def.ghi"), TokenFingerprinter::new("other").fingerprint("abc.def.ghi"));
        assert_eq!(a.fingerprint("x").len(), 64);
        assert!(!format!("{a:?}").contains("site-key"));
    }
}
