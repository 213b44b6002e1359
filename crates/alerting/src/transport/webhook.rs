//! `webhook`: an HTTP request to any URL, with the notification as JSON or a body
//! template, and always the `Idempotency-Key` header.
//!
//! Config: `url` (required), `method` (`POST`; `GET`, `PUT`, `PATCH`, `DELETE`),
//! `headers` (`{"Authorization": "Bearer ..."}`), `body` (a template; none: the
//! notification JSON), `timeout_secs` (10). Secrets: credentials and the query string of
//! `url`, every header value but `Content-Type`/`Accept`/`User-Agent`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{self, field_error};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::template::Template;

pub(crate) static KIND: Kind = Kind {
    name: "webhook",
    build: |c| Ok(Arc::new(Webhook::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Webhook::parse(c).map(drop),
    secrets: &[],
    redact: Some(redact),
};

fn redact(m: &mut Map<String, Value>) {
    config::redact_url_field(m, "url");
    config::redact_header_values(m, "headers");
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Webhook {
    url: Url,
    shown: String,
    method: Method,
    headers: HeaderMap,
    body: Option<Template>,
    timeout: Duration,
}

impl Webhook {
    fn parse(c: &Value) -> Result<Webhook, TransportConfigError> {
        let c: Config = config::parse(c)?;
        let url = config::http_url("url", &c.url)?;
        let method = match c.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("POST") => Method::POST,
            Some("GET") => Method::GET,
            Some("PUT") => Method::PUT,
            Some("PATCH") => Method::PATCH,
            Some("DELETE") => Method::DELETE,
            Some(other) => {
                return Err(field_error(
                    "method",
                    format!("`{other}` is not one of POST, GET, PUT, PATCH, DELETE"),
                ))
            }
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &c.headers {
            let field = format!("headers.{k}");
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| field_error(&field, "not a valid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| field_error(&field, "not a valid header value"))?;
            headers.insert(name, value);
        }
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let body = match &c.body {
            Some(src) => Some(config::template("body", Some(src), "")?),
            None => None,
        };
        Ok(Webhook {
            shown: config::shown_url(&url, true),
            url,
            method,
            headers,
            body,
            timeout: config::timeout(c.timeout_secs, 10)?,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let mut headers = self.headers.clone();
        http::set_idempotency_key(&mut headers, n);
        let body = if self.method == Method::GET {
            None
        } else {
            Some(match &self.body {
                Some(t) => t
                    .render(n)
                    .map_err(|e| DeliveryError::Permanent(format!("template `body`: {e}")))?
                    .into_bytes(),
                None => crate::payload::webhook::body(n).to_string().into_bytes(),
            })
        };
        http::send(Request {
            method: self.method.clone(),
            url: self.url.clone(),
            shown: self.shown.clone(),
            headers,
            body,
            timeout: self.timeout,
        })
        .await
    }
}

impl Transport for Webhook {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(self.deliver(n))
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(http::check_connect(&self.url, self.timeout))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transport::{redact, validate_config, REDACTED};
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        let e = |c: Value| validate_config("webhook", &c).unwrap_err().to_string();
        assert_eq!(e(json!({})), "transport config: missing field `url`");
        assert!(e(json!({"url": "x"})).starts_with("`url`: not a URL"));
        assert!(e(json!({"url": "http://h/", "method": "BREW"}))
            .starts_with("`method`: `BREW` is not one of"));
        assert_eq!(
            e(json!({"url": "http://h/", "headers": {"Bad Name": "x"}})),
            "`headers.Bad Name`: not a valid header name"
        );
        let t = e(json!({"url": "http://h/", "body": "{{ hostname }"}));
        assert!(
            t.starts_with("`body`: template error at line 1, column "),
            "{t}"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let r = redact(
            "webhook",
            &json!({"url": "https://u:p@h.example.net/hook?token=abc", "headers": {"Authorization": "Bearer x"}, "body": "{}"}),
        );
        assert_eq!(r["url"], "https://********@h.example.net/hook?********");
        assert_eq!(r["headers"]["Authorization"], REDACTED);
        assert_eq!(r["body"], "{}");
    }
}
