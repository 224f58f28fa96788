//! Who may do what: API keys, stored hashed, each with a role.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do. Higher roles include the lower ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs queries.
    Analyst,
    /// Runs queries and exports evidence.
    Auditor,
    /// Everything, including reading the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

/// One API key of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds it, as the audit log records them.
    pub name: String,
    /// SHA-256 of the key, hex: the key itself is never stored.
    pub sha256: String,
    pub role: Role,
}

/// The caller of a request, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The hash stored for `key`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The caller holding `key`, if it is one of `keys`. Hashing first makes the comparison
/// independent of how much of a guess matches.
pub fn authenticate(keys: &[ApiKey], key: &str) -> Option<Caller> {
    let hashed = hash_key(key);
    keys.iter().find(|k| k.sha256.eq_ignore_ascii_case(&hashed)).map(|k| Caller { name: k.name.clone(), role: k.role })
}

/// The operator at this terminal, as the audit log names them (`cli:$USER`): commands that
/// read the lake directly act with the admin role, since whoever runs them can read the
/// lake's files anyway.
pub fn local_operator() -> Caller {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    Caller { name: format!("cli:{user}"), role: Role::Admin }
}

/// A new random key (32 bytes, hex) and its hash, for `mcpsiem keys create`.
pub fn new_key() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let key = format!("mcpsiem_{}", hex::encode(bytes));
    let hash = hash_key(&key);
    (key, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_authenticates_by_its_hash_only() {
        let (key, hash) = new_key();
        let keys = vec![ApiKey { name: "alice".into(), sha256: hash, role: Role::Auditor }];
        assert_eq!(authenticate(&keys, &key), Some(Caller { name: "alice".into(), role: Role::Auditor }));
        assert_eq!(authenticate(&keys, "mcpsiem_wrong"), None);
        assert!(Role::Admin > Role::Auditor && Role::Auditor > Role::Analyst);
    }
}
