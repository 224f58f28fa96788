//! What of a message's content leaves the collector: secrets redacted by pattern, then cut
//! at a size limit. Tool arguments and results can hold anything an agent touched (keys in
//! a `.env`, passwords in a config); the lake keeps them for years, so they are scrubbed
//! before shipping, not after.

use std::borrow::Cow;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

/// The replacement for every redacted secret.
pub const REDACTED: &str = "[REDACTED]";

/// Capture limits and redaction, `[collect.capture]` in the configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Largest tool-call arguments kept, in bytes (after redaction); longer ones are cut
    /// and flagged `gen_ai.tool.call.arguments.truncated`.
    pub max_argument_bytes: usize,
    /// Largest tool-call or resource result kept, in bytes.
    pub max_result_bytes: usize,
    /// Largest tool description kept. Descriptions are hashed whole before any cut, so a
    /// rug pull past the limit still changes the hash.
    pub max_description_bytes: usize,
    /// Redact the built-in secret shapes: bearer and JWT strings, `password`/`secret`/
    /// `api_key`/`token` values (also in connection strings), passwords in URLs
    /// (`scheme://user:…@host`), private-key blocks, AWS, GitHub, Slack and `sk-` keys.
    pub redact_defaults: bool,
    /// Extra regular expressions (Rust `regex` syntax); every match is replaced by
    /// `[REDACTED]`.
    pub redact_patterns: Vec<String>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            max_argument_bytes: 16 * 1024,
            max_result_bytes: 16 * 1024,
            max_description_bytes: 64 * 1024,
            redact_defaults: true,
            redact_patterns: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("collect.capture.redact_patterns: pattern {pattern:?} is not a valid regular expression: {source}")]
pub struct PatternError {
    pattern: String,
    source: regex::Error,
}

/// A key whose value is a secret, in JSON (`"password": "x"`), in a query string or in an
/// environment file (`API_KEY=x`): the key is kept, the value goes.
const SECRET_ASSIGNMENT: &str = r#"(?i)("?[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|client[_-]?secret|authorization|credential)[A-Za-z0-9_.-]*"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|(?:(?:bearer|basic|token)\s+)?[^\s,;&}"']+)"#;

/// The password of a URL's user-info (`postgres://app:pw@db/prod`, `https://u:pw@host`,
/// `redis://:pw@cache`), in any scheme: the scheme, user and host are kept for the analyst.
const URL_PASSWORD: &str = r#"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@?#'"<>\[\]]*:)([^\s/@?#'"<>]+)(@)"#;

/// Secret shapes that are secrets wherever they appear, with the kind each is recorded as.
const SECRET_SHAPES: &[(&str, &str)] = &[
    ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    ("github_token", r"\bgithub_pat_[A-Za-z0-9_]{30,}\b"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("api_key", r"\bsk-[A-Za-z0-9_-]{20,}"),
];

/// The kind recorded for a match of `collect.capture.redact_patterns`.
const CUSTOM_KIND: &str = "custom";
/// The kind recorded for a secret-named key's value (`password=…`, `"api_key": …`).
const ASSIGNMENT_KIND: &str = "credential";
/// The kind recorded for a URL's password.
const URL_PASSWORD_KIND: &str = "url_password";

/// Applies the capture limits and redaction; cheap to clone.
#[derive(Clone, Debug)]
pub struct Capture {
    config: CaptureConfig,
    assignment: Option<Regex>,
    url_password: Option<Regex>,
    shapes: Vec<(&'static str, Regex)>,
}

/// Captured text, whether it was cut, and the kinds of secret redacted from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    pub text: String,
    pub truncated: bool,
    pub secrets: Vec<&'static str>,
}

impl Capture {
    pub fn new(config: &CaptureConfig) -> Result<Self, PatternError> {
        let compile =
            |pattern: &str| Regex::new(pattern).map_err(|source| PatternError { pattern: pattern.to_owned(), source });
        let mut shapes = Vec::new();
        let mut assignment = None;
        let mut url_password = None;
        if config.redact_defaults {
            assignment = Some(compile(SECRET_ASSIGNMENT)?);
            url_password = Some(compile(URL_PASSWORD)?);
            for (kind, pattern) in SECRET_SHAPES {
                shapes.push((*kind, compile(pattern)?));
            }
        }
        for pattern in &config.redact_patterns {
            shapes.push((CUSTOM_KIND, compile(pattern)?));
        }
        Ok(Self { config: config.clone(), assignment, url_password, shapes })
    }

    /// `text` with every secret replaced by `[REDACTED]`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.redact_found(text).0
    }

    /// `text` with every secret replaced, and the kinds of secret that were replaced (sorted,
    /// each once): what the detector can know of a secret without its value.
    pub fn redact_found<'t>(&self, text: &'t str) -> (Cow<'t, str>, Vec<&'static str>) {
        let mut found = Vec::new();
        let mut out = Cow::Borrowed(text);
        // Before the assignments: `password=postgres://u:pw@db` would otherwise lose the
        // whole URL to the assignment, which is safe but hides which database it named.
        if let Some(url_password) = &self.url_password
            && let Cow::Owned(s) = url_password.replace_all(&out, format!("${{1}}{REDACTED}${{3}}").as_str())
        {
            out = Cow::Owned(s);
            found.push(URL_PASSWORD_KIND);
        }
        if let Some(assignment) = &self.assignment {
            let replaced = assignment.replace_all(&out, |c: &Captures| {
                let value = &c[2];
                if value.starts_with('"') { format!("{}\"{REDACTED}\"", &c[1]) } else { format!("{}{REDACTED}", &c[1]) }
            });
            if let Cow::Owned(s) = replaced {
                // An assignment already redacted (`password=[REDACTED]` from a URL) is no
                // second secret.
                if s != *out {
                    found.push(ASSIGNMENT_KIND);
                    // A shaped secret assigned to a secret-named key (`AWS_ACCESS_KEY_ID=AKIA…`)
                    // is gone before the shapes run: name its kind from the text before.
                    found.extend(self.shapes.iter().filter(|(_, shape)| shape.is_match(&out)).map(|(kind, _)| *kind));
                }
                out = Cow::Owned(s);
            }
        }
        for (kind, shape) in &self.shapes {
            if let Cow::Owned(s) = shape.replace_all(&out, REDACTED) {
                out = Cow::Owned(s);
                found.push(kind);
            }
        }
        found.sort_unstable();
        found.dedup();
        (out, found)
    }

    pub fn arguments(&self, text: &str) -> Captured {
        self.capture(text, self.config.max_argument_bytes)
    }

    pub fn result(&self, text: &str) -> Captured {
        self.capture(text, self.config.max_result_bytes)
    }

    pub fn description(&self, text: &str) -> Captured {
        self.capture(text, self.config.max_description_bytes)
    }

    /// Redacts, then cuts at `limit` bytes on a character boundary.
    pub fn capture(&self, text: &str, limit: usize) -> Captured {
        let (redacted, secrets) = self.redact_found(text);
        if redacted.len() <= limit {
            return Captured { text: redacted.into_owned(), truncated: false, secrets };
        }
        let mut end = limit;
        while !redacted.is_char_boundary(end) {
            end -= 1;
        }
        Captured { text: redacted[..end].to_owned(), truncated: true, secrets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture() -> Capture {
        Capture::new(&CaptureConfig::default()).unwrap()
    }

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let c = capture();
        let text =
            r#"{"path":".env","password":"hunter2","api_key":"k-123","note":"Authorization: Bearer abc.def-ghi"}"#;
        let out = c.redact(text);
        assert!(!out.contains("hunter2") && !out.contains("k-123") && !out.contains("abc.def-ghi"), "{out}");
        assert!(out.contains(r#""path":".env""#), "{out}");
        assert!(out.contains(r#""password":"[REDACTED]""#), "{out}");
        // Still JSON: quoted values stay quoted.
        serde_json::from_str::<serde_json::Value>(&out).unwrap();

        let env = "DB_PASSWORD=s3cret\nAWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP\nHOME=/root";
        let out = c.redact(env);
        assert!(!out.contains("s3cret") && !out.contains("AKIAABCDEFGHIJKLMNOP"), "{out}");
        assert!(out.contains("HOME=/root"), "{out}");

        let jwt = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl here";
        assert_eq!(c.redact(jwt), "token [REDACTED] here");
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        assert_eq!(c.redact(key), REDACTED);
        assert!(matches!(c.redact("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn passwords_in_urls_and_connection_strings_are_redacted() {
        let c = capture();
        let cases = [
            ("postgres://app:s3cr3t-pw@db.internal:5432/prod", "postgres://app:[REDACTED]@db.internal:5432/prod"),
            (
                "see mongodb+srv://admin:p%40ss@cluster0.x.net/db?retryWrites=true",
                "see mongodb+srv://admin:[REDACTED]@cluster0.x.net/db?retryWrites=true",
            ),
            ("redis://:cachepw@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
            (
                "https://deploy:ghs-token-1@git.example.com/repo.git",
                "https://deploy:[REDACTED]@git.example.com/repo.git",
            ),
            (r#"{"url":"mysql://root:toor@10.0.0.5/app"}"#, r#"{"url":"mysql://root:[REDACTED]@10.0.0.5/app"}"#),
            (
                "Server=db;Database=app;User Id=sa;Password=Sup3r!;",
                "Server=db;Database=app;User Id=sa;Password=[REDACTED];",
            ),
            ("host=db user=app pwd=hunter22 dbname=prod", "host=db user=app pwd=[REDACTED] dbname=prod"),
        ];
        for (text, want) in cases {
            assert_eq!(c.redact(text), want, "{text}");
        }
        let (_, kinds) =
            c.redact_found("DATABASE_URL=postgres://app:pw@db/prod\nAWS_ACCESS_KEY_ID=AKIAZ7Q3EXAMPLE4KEY1\nx=1");
        assert_eq!(kinds, ["aws_access_key", "credential", "url_password"]);
        assert_eq!(c.redact_found("postgres://app:pw@db/prod").1, ["url_password"]);
        assert!(c.redact_found("nothing to see").1.is_empty());
        // A URL with a user and no password, and a port, keep everything.
        for plain in ["https://alice@example.com/x", "http://example.com:8080/path", "ssh://git@github.com:22/repo"] {
            assert_eq!(c.redact(plain), plain);
        }
    }

    #[test]
    fn extra_patterns_apply_and_a_bad_one_names_itself() {
        let config = CaptureConfig {
            redact_patterns: vec![r"\bEMP-\d{6}\b".into()],
            redact_defaults: false,
            ..Default::default()
        };
        let c = Capture::new(&config).unwrap();
        assert_eq!(c.redact("user EMP-123456 password=x"), "user [REDACTED] password=x");
        let bad = CaptureConfig { redact_patterns: vec!["(unclosed".into()], ..Default::default() };
        let err = Capture::new(&bad).unwrap_err().to_string();
        assert!(err.contains("(unclosed") && err.contains("redact_patterns"), "{err}");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let config = CaptureConfig { max_result_bytes: 5, ..Default::default() };
        let c = Capture::new(&config).unwrap();
        assert_eq!(c.result("abcdé"), Captured { text: "abcd".into(), truncated: true, secrets: vec![] });
        assert_eq!(c.result("abc"), Captured { text: "abc".into(), truncated: false, secrets: vec![] });
    }
}
