//! E-mail over SMTP (lettre). The Message-ID is derived from the delivery key, so a mail
//! sent twice after a crash is recognised as one by clients that thread by it.

use futures::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::{Attempt, Destination};
use crate::message::Message;
use crate::outcome::Outcome;

/// E-mail over SMTP.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a local relay only).
    #[serde(default = "default_smtp_security")]
    pub security: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    pub from: String,
    pub to: Vec<String>,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_security() -> String {
    "starttls".into()
}

impl Destination for Email {
    fn deliver<'a>(&'a self, attempt: &'a Attempt<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(attempt.key, attempt.message, attempt.timeout_seconds))
    }
}

impl Email {
    async fn send(&self, key: &str, message: &Message, timeout_seconds: u64) -> Outcome {
        let Email { smtp_host, smtp_port, security, username, password, from, to } = self;
        let failed = |reason: String| Outcome::Failed { reason, status: None };
        let mut builder = lettre::Message::builder()
            .subject(message.title.clone())
            .header(ContentType::TEXT_PLAIN)
            .message_id(Some(format!("<{}@mcpsiem>", key.replace(':', "."))));
        builder = match from.parse() {
            Ok(from) => builder.from(from),
            Err(e) => return failed(format!("`from` {from:?} is not an address: {e}")),
        };
        for recipient in to {
            builder = match recipient.parse() {
                Ok(address) => builder.to(address),
                Err(e) => return failed(format!("`to` {recipient:?} is not an address: {e}")),
            };
        }
        let email = match builder.body(message.body.clone()) {
            Ok(email) => email,
            Err(e) => return failed(format!("the message cannot be built: {e}")),
        };
        let transport = match security.as_str() {
            "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp_host.as_str())),
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(smtp_host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(smtp_host),
            other => return failed(format!("security `{other}`: use starttls, tls or none")),
        };
        let mut transport = match transport {
            Ok(t) => t.port(*smtp_port).timeout(Some(std::time::Duration::from_secs(timeout_seconds.max(1)))),
            Err(e) => return failed(format!("SMTP server {smtp_host}: {e}")),
        };
        if !username.is_empty() {
            transport = transport.credentials(Credentials::new(username.clone(), password.clone()));
        }
        match transport.build().send(email).await {
            Ok(response) => Outcome::Delivered { status: Some(response.code().into()), reference: None },
            // 5xx replies are permanent (bad recipient, refused sender); the rest may pass later.
            Err(e) if e.is_permanent() => failed(format!("the SMTP server refused the mail: {e}")),
            Err(e) => Outcome::Retry { reason: format!("SMTP: {e}"), status: None, after: None },
        }
    }
}
