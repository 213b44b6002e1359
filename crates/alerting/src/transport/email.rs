//! `email`: a plain-text mail through an SMTP relay (lettre, rustls on tokio).
//!
//! Config: `host`, `port` (587 with `starttls: required`, 465 with `implicit`, else 25),
//! `from`, `to` (a list, or a comma-separated string), `starttls` (`required` — the
//! default —, `opportunistic`, `none`, or `implicit` for SMTPS), `username`/`password`
//! (the password is a secret; refused over a connection that may be plain text, unless
//! the relay is on loopback), `subject` and `body` templates, `helo_name` (default: this
//! host's name), `timeout_secs` (30, per SMTP command).
//!
//! The `Message-ID` is made from the idempotency key (and `X-Lookout-Idempotency-Key`
//! carries it as is), so every attempt of one notification is the same message.

use std::net::IpAddr;
use std::sync::Arc;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, field_error, OneOrMany, Texts};
use super::{
    CheckFuture, Delivered, DeliveryError, Kind, SendFuture, Transport, TransportConfigError,
};
use crate::notification::Notification;

pub(crate) static KIND: Kind = Kind {
    name: "email",
    build: |c| Ok(Arc::new(Email::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Email::parse(c).map(drop),
    secrets: &["password"],
    redact: None,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StartTls {
    Required,
    Opportunistic,
    None,
    Implicit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    host: String,
    port: Option<u16>,
    from: String,
    to: OneOrMany,
    starttls: Option<StartTls>,
    username: Option<String>,
    password: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    helo_name: Option<String>,
    timeout_secs: Option<f64>,
}

struct Email {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for messages.
    relay: String,
    tls: StartTls,
    authenticated: bool,
    from: Mailbox,
    to: Vec<Mailbox>,
    texts: Texts,
}

fn mailbox(field: &str, s: &str) -> Result<Mailbox, TransportConfigError> {
    s.parse::<Mailbox>()
        .map_err(|e| field_error(field, format!("`{s}` is not a mail address: {e}")))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Email {
    fn parse(v: &Value) -> Result<Email, TransportConfigError> {
        let c: Config = config::parse(v)?;
        let host = c.host.trim().to_owned();
        if host.is_empty() {
            return Err(field_error("host", "empty"));
        }
        let tls_mode = c.starttls.unwrap_or(StartTls::Required);
        let port = c.port.unwrap_or(match tls_mode {
            StartTls::Required => 587,
            StartTls::Implicit => 465,
            StartTls::Opportunistic | StartTls::None => 25,
        });
        let from = mailbox("from", &c.from)?;
        let to =
            c.to.into_vec()
                .iter()
                .enumerate()
                .map(|(i, s)| mailbox(&format!("to[{i}]"), s))
                .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(field_error("to", "at least one recipient is needed"));
        }
        let params = || {
            TlsParameters::new_rustls(host.clone())
                .map_err(|e| field_error("starttls", format!("TLS setup: {e}")))
        };
        let tls = match tls_mode {
            StartTls::Required => Tls::Required(params()?),
            StartTls::Opportunistic => Tls::Opportunistic(params()?),
            StartTls::Implicit => Tls::Wrapper(params()?),
            StartTls::None => Tls::None,
        };
        let timeout = config::timeout(c.timeout_secs, 30)?;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(h) = &c.helo_name {
            b = b.hello_name(ClientId::Domain(h.clone()));
        }
        let authenticated = match (c.username, c.password) {
            (None, None) => false,
            (Some(u), Some(p)) => {
                let may_be_plain = matches!(tls_mode, StartTls::None | StartTls::Opportunistic);
                if may_be_plain && !is_loopback(&host) {
                    return Err(field_error(
                        "password",
                        "refusing to send a password over a connection that may not be encrypted; use starttls `required` or `implicit`",
                    ));
                }
                b = b.credentials(Credentials::new(u, p));
                true
            }
            _ => return Err(field_error("password", "username and password go together")),
        };
        Ok(Email {
            mailer: b.build(),
            relay: format!("{host}:{port}"),
            tls: tls_mode,
            authenticated,
            from,
            to,
            texts: Texts::compile("subject", c.subject.as_deref(), "body", c.body.as_deref())?,
        })
    }

    fn message(&self, n: &Notification) -> Result<Message, DeliveryError> {
        let texts = self.texts.render(n)?;
        // A subject is one line.
        let subject: String = texts.title.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(&n.idempotency_key)))
            .header(IdempotencyKey(n.idempotency_key.clone()))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        b.body(texts.body)
            .map_err(|e| DeliveryError::Permanent(format!("building the message: {e}")))
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let m = self.message(n)?;
        match self.mailer.send(m).await {
            Ok(resp) => {
                let text: Vec<&str> = resp.message().collect();
                Ok(Delivered {
                    detail: format!(
                        "SMTP {} from {} for {} recipient(s): {}",
                        resp.code(),
                        self.relay,
                        self.to.len(),
                        text.join(" ")
                    ),
                })
            }
            Err(e) => Err(classify(&self.relay, &e)),
        }
    }
}

/// A 5xx reply and a client-side refusal (STARTTLS required but not offered, a bad
/// address) are permanent; 4xx replies, timeouts, network and TLS errors transient.
fn classify(relay: &str, e: &lettre::transport::smtp::Error) -> DeliveryError {
    let msg = format!("SMTP {relay}: {e}");
    if e.is_permanent() || e.is_client() {
        DeliveryError::Permanent(msg)
    } else {
        DeliveryError::Transient(msg)
    }
}

/// `<lookout-alert.r1.d2.ports.12.alert.0@lookout>`: the key with the characters a
/// Message-ID may not hold replaced.
fn message_id(key: &str) -> String {
    let left: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<{left}@lookout>")
}

#[derive(Clone)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Lookout-Idempotency-Key")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IdempotencyKey(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Transport for Email {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(self.deliver(n))
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match self.mailer.test_connection().await {
                Ok(true) => Ok(format!(
                    "SMTP {}: EHLO answered{}{}",
                    self.relay,
                    match self.tls {
                        StartTls::Required | StartTls::Implicit => ", TLS up",
                        StartTls::Opportunistic => ", TLS if offered",
                        StartTls::None => ", no TLS",
                    },
                    if self.authenticated {
                        ", logged in"
                    } else {
                        ""
                    }
                )),
                Ok(false) => Err(format!("SMTP {}: connected, but NOOP failed", self.relay)),
                Err(e) => Err(classify(&self.relay, &e).message().to_owned()),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transport::validate_config;
    use serde_json::json;

    fn base() -> Value {
        json!({"host": "smtp.example.net", "from": "Lookout <lookout@example.net>", "to": "noc@example.net, oncall@example.net"})
    }

    #[test]
    fn defaults_and_lists() {
        let e = Email::parse(&base()).unwrap();
        assert_eq!(e.relay, "smtp.example.net:587");
        assert_eq!(e.tls, StartTls::Required);
        assert_eq!(e.to.len(), 2);
        let mut c = base();
        c["starttls"] = json!("implicit");
        assert_eq!(Email::parse(&c).unwrap().relay, "smtp.example.net:465");
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = |c: Value| validate_config("email", &c).unwrap_err().to_string();
        let mut c = base();
        c["to"] = json!(["ok@example.net", "not an address"]);
        assert!(e(c).starts_with("`to[1]`: `not an address` is not a mail address"));
        let mut c = base();
        c["starttls"] = json!("yes");
        assert!(e(c).starts_with("`starttls`: unknown variant `yes`, expected one of `required`"));
        let mut c = base();
        c["starttls"] = json!("none");
        c["username"] = json!("u");
        c["password"] = json!("p");
        assert!(e(c.clone()).starts_with("`password`: refusing to send a password"));
        c["host"] = json!("127.0.0.1");
        validate_config("email", &c).unwrap();
        let mut c = base();
        c["subject"] = json!("{{ severity|upper }");
        assert!(e(c).starts_with("`subject`: template error at line 1"));
    }

    #[test]
    fn message_headers() {
        let e = Email::parse(&base()).unwrap();
        let m = e.message(&crate::template::example()).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("Subject: CRITICAL alert: Port status up/down on core1.example.net\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Message-ID: <lookout-alert.r7.d3.ports.12.alert.0@lookout>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("X-Lookout-Idempotency-Key: lookout-alert:r7:d3:ports:12:alert:0\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("To: noc@example.net, oncall@example.net\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{raw}"
        );
    }
}
