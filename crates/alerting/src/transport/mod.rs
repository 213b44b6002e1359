//! Transports: where a notification goes (a webhook, a mailbox, a script, Alertmanager,
//! a chat or paging service), built from an `alert_transports` row.
//!
//! Each transport type is one file of this folder that describes itself as a [`Kind`]
//! (its name, how to check and build its config, which config keys are secret) in the
//! table [`KINDS`]; this file knows no transport beyond that table. The orchestration
//! around a transport — the outbox, retries with back-off, fencing — is the engine's:
//! a transport makes one attempt and says whether it is worth another
//! ([`DeliveryError::Transient`]) or not ([`DeliveryError::Permanent`]).
//!
//! Every attempt of one notification carries the same idempotency key (HTTP header
//! `Idempotency-Key`, SMTP `Message-ID`, script env `LOOKOUT_IDEMPOTENCY_KEY`), so a
//! receiver can drop the duplicate that a retry after a lost answer produces.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lookout_store::AlertTransport;
use serde_json::{Map, Value};

use crate::notification::Notification;
use crate::template::TemplateError;

mod alertmanager;
mod config;
mod discord;
mod email;
mod http;
mod opsgenie;
mod pagerduty;
mod script;
mod slack;
mod teams;
mod telegram;
mod webhook;

/// One delivery attempt.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Delivered, DeliveryError>> + Send + 'a>>;

/// A reachability check: what was reached, or why not.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// The receiver took the notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// What answered, e.g. `HTTP 200 from https://host/path` (never a secret, never a
    /// query string).
    pub detail: String,
}

/// The receiver did not take the notification.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth another attempt: 5xx, 408, 429, a timeout, a refused connection, a script
    /// that failed.
    #[error("{0}")]
    Transient(String),
    /// Another attempt would fail the same way: 4xx, an SMTP 5xx reply, a config or
    /// template error.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }

    pub fn message(&self) -> &str {
        match self {
            DeliveryError::Transient(m) | DeliveryError::Permanent(m) => m,
        }
    }
}

/// Something that delivers notifications.
pub trait Transport: Send + Sync {
    /// The transport type (`webhook`, `email`, ...).
    fn kind(&self) -> &'static str;

    /// One delivery attempt of `n`.
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a>;

    /// Checks that the receiver can be reached, without sending a notification (SMTP:
    /// connect, EHLO, STARTTLS, AUTH; HTTP: the host resolves and accepts a connection;
    /// script: the program is there and executable). Every built-in transport has one;
    /// the default (for test doubles) checks nothing.
    fn check(&self) -> CheckFuture<'_> {
        let kind = self.kind();
        Box::pin(async move { Ok(format!("{kind}: nothing to check")) })
    }
}

/// A transport config that cannot be used; the message names the field.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TransportConfigError {
    #[error("unknown transport type `{0}`; known: {known}", known = kinds().join(", "))]
    UnknownType(String),
    #[error("transport config is not valid JSON: {0}")]
    Json(String),
    #[error("transport config must be a JSON object")]
    NotAnObject,
    /// The config as a whole (a missing field, an unknown field).
    #[error("transport config: {0}")]
    Config(String),
    #[error("`{field}`: {message}")]
    Field { field: String, message: String },
    #[error("`{field}`: template error at {error}")]
    Template { field: String, error: TemplateError },
}

/// A transport type: the one entry each transport file contributes to [`KINDS`].
pub(crate) struct Kind {
    pub name: &'static str,
    pub build: fn(&Value) -> Result<Arc<dyn Transport>, TransportConfigError>,
    /// Parses the config and compiles its templates, building nothing.
    pub validate: fn(&Value) -> Result<(), TransportConfigError>,
    /// Top-level config keys whose whole value is a secret.
    pub secrets: &'static [&'static str],
    /// Secrets inside values (credentials in a URL, header values), if any.
    pub redact: Option<fn(&mut Map<String, Value>)>,
}

/// Every transport type.
static KINDS: &[&Kind] = &[
    &webhook::KIND,
    &email::KIND,
    &script::KIND,
    &alertmanager::KIND,
    &slack::KIND,
    &teams::KIND,
    &discord::KIND,
    &telegram::KIND,
    &pagerduty::KIND,
    &opsgenie::KIND,
];

/// What replaces a secret on pages, in API answers and in logs.
pub const REDACTED: &str = "********";

fn kind(transport_type: &str) -> Result<&'static Kind, TransportConfigError> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.name == transport_type)
        .ok_or_else(|| TransportConfigError::UnknownType(transport_type.to_owned()))
}

/// The transport types, in the order pages list them.
pub fn kinds() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| KINDS.iter().map(|k| k.name).collect())
}

fn parse_json(s: &str) -> Result<Value, TransportConfigError> {
    // LibreNMS stores `[]` or nothing for a transport without settings.
    if s.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(s).map_err(|e| TransportConfigError::Json(e.to_string()))
}

/// The transport of a row, ready to send.
pub fn build(t: &AlertTransport) -> Result<Arc<dyn Transport>, TransportConfigError> {
    let k = kind(&t.transport_type)?;
    let config = parse_json(&t.transport_config)?;
    (k.build)(&config)
}

/// Checks a config before it is saved: its fields, and that its templates compile (so
/// a template error is reported when saving, not when an alert fires).
pub fn validate_config(transport_type: &str, config: &Value) -> Result<(), TransportConfigError> {
    (kind(transport_type)?.validate)(config)
}

/// `config` with its secrets (passwords, tokens, routing keys, webhook URLs that hold a
/// token, credentials and query strings in URLs, header values) replaced by
/// [`REDACTED`], for pages, API answers and logs. An unknown type has every string
/// redacted.
pub fn redact(transport_type: &str, config: &Value) -> Value {
    let Value::Object(m) = config else {
        return Value::String(REDACTED.into());
    };
    let mut m = m.clone();
    match kind(transport_type) {
        Ok(k) => {
            for key in k.secrets {
                if let Some(v) = m.get_mut(*key) {
                    if !v.is_null() {
                        *v = Value::String(REDACTED.into());
                    }
                }
            }
            if let Some(f) = k.redact {
                f(&mut m);
            }
        }
        Err(_) => {
            for v in m.values_mut() {
                redact_strings(v);
            }
        }
    }
    Value::Object(m)
}

fn redact_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = REDACTED.into(),
        Value::Array(a) => a.iter_mut().for_each(redact_strings),
        Value::Object(o) => o.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// For `lookout validate`: builds the transport and checks that its receiver can be
/// reached (no notification is sent). The answer says what was reached, or why not.
pub async fn check_reachable(t: &AlertTransport) -> Result<String, String> {
    let transport = build(t).map_err(|e| e.to_string())?;
    transport.check().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(kind: &str, config: &str) -> AlertTransport {
        AlertTransport {
            transport_id: 1,
            transport_name: "t".into(),
            transport_type: kind.into(),
            is_default: false,
            transport_config: config.into(),
        }
    }

    #[test]
    fn every_kind_is_listed_once() {
        let k = kinds();
        assert_eq!(
            k,
            [
                "webhook",
                "email",
                "script",
                "alertmanager",
                "slack",
                "teams",
                "discord",
                "telegram",
                "pagerduty",
                "opsgenie"
            ]
        );
    }

    #[test]
    fn unknown_type_and_bad_json_say_so() {
        let e = build(&row("carrier-pigeon", "{}")).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("unknown transport type `carrier-pigeon`; known: webhook, email"),
            "{e}"
        );
        let e = build(&row("webhook", "{nope")).err().unwrap();
        assert!(matches!(e, TransportConfigError::Json(_)), "{e}");
        let e = validate_config("webhook", &json!([1])).unwrap_err();
        assert_eq!(e, TransportConfigError::NotAnObject);
    }

    #[test]
    fn redact_secret_keys_of_each_kind() {
        let r = redact(
            "pagerduty",
            &json!({"routing_key": "R0UT1NG", "api_url": "http://x"}),
        );
        assert_eq!(r, json!({"routing_key": REDACTED, "api_url": "http://x"}));
        let r = redact(
            "email",
            &json!({"host": "smtp", "password": "pw", "username": "u"}),
        );
        assert_eq!(r["password"], REDACTED);
        assert_eq!(r["username"], "u");
        let r = redact(
            "slack",
            &json!({"url": "https://hooks.slack.com/services/T/B/X"}),
        );
        assert_eq!(r["url"], REDACTED);
        let r = redact("telegram", &json!({"bot_token": "1:abc", "chat_id": 5}));
        assert_eq!(r, json!({"bot_token": REDACTED, "chat_id": 5}));
        let r = redact("opsgenie", &json!({"api_key": "k"}));
        assert_eq!(r["api_key"], REDACTED);
        let r = redact("nope", &json!({"a": "b", "c": [1, "d"]}));
        assert_eq!(r, json!({"a": REDACTED, "c": [1, REDACTED]}));
        assert_eq!(redact("webhook", &json!("x")), json!(REDACTED));
    }

    #[test]
    fn every_kind_validates_what_it_builds() {
        // The smallest valid config of each kind builds; a field of the wrong type is
        // named in the error.
        let minimal = [
            ("webhook", json!({"url": "http://127.0.0.1:9/hook"})),
            (
                "email",
                json!({"host": "127.0.0.1", "from": "a@example.net", "to": ["b@example.net"], "starttls": "none"}),
            ),
            ("script", json!({"argv": ["/bin/true"]})),
            ("alertmanager", json!({"urls": ["http://127.0.0.1:9093"]})),
            (
                "slack",
                json!({"url": "https://hooks.slack.com/services/T/B/X"}),
            ),
            (
                "teams",
                json!({"url": "https://example.webhook.office.com/x"}),
            ),
            (
                "discord",
                json!({"url": "https://discord.com/api/webhooks/1/x"}),
            ),
            ("telegram", json!({"bot_token": "1:abc", "chat_id": -100})),
            ("pagerduty", json!({"routing_key": "R"})),
            ("opsgenie", json!({"api_key": "K"})),
        ];
        for (k, c) in minimal {
            validate_config(k, &c).unwrap_or_else(|e| panic!("{k}: {e}"));
            let t = build(&row(k, &c.to_string())).unwrap_or_else(|e| panic!("{k}: {e}"));
            assert_eq!(t.kind(), k);
            let mut bad = c.clone();
            bad["timeout_secs"] = json!("soon");
            let e = validate_config(k, &bad).unwrap_err().to_string();
            assert!(e.contains("timeout_secs"), "{k}: {e}");
        }
    }
}
