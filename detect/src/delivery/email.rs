//! E-mail over SMTP (lettre). The Message-ID is derived from the delivery key, so a mail
//! sent twice after a crash is recognised as one by clients that thread by it.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{DestinationConfig, DestinationKind};
use super::destination::Outcome;
use super::message::Message;

pub async fn send(config: &DestinationConfig, key: &str, message: &Message) -> Outcome {
    let DestinationKind::Email { smtp_host, smtp_port, security, username, password, from, to } = &config.kind else {
        return Outcome::Failed { reason: "not an e-mail destination".into(), status: None };
    };
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
        Ok(t) => t.port(*smtp_port).timeout(Some(std::time::Duration::from_secs(config.timeout_seconds.max(1)))),
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
