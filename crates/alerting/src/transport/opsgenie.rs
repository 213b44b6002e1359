//! `opsgenie`: Opsgenie Alert API v2 (create with one alias per alert, close by alias on
//! recovery); the payloads are [`crate::payload::opsgenie`].
//!
//! Config: `api_key` (an API integration key: a secret), `api_url`
//! (`https://api.opsgenie.com`; EU: `https://api.eu.opsgenie.com`), `tags`, `responders`
//! (Opsgenie's objects, e.g. `[{"type": "team", "name": "NOC"}]`), `title` (the message)
//! and `body` (the description) templates, `timeout_secs` (10).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, field_error, Texts};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::payload::{is_recovery, opsgenie};

pub(crate) static KIND: Kind = Kind {
    name: "opsgenie",
    build: |c| Ok(Arc::new(Opsgenie::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Opsgenie::parse(c).map(drop),
    secrets: &["api_key"],
    redact: None,
};

const API_URL: &str = "https://api.opsgenie.com";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    api_key: String,
    api_url: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    responders: Vec<Value>,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Opsgenie {
    api_url: String,
    auth: HeaderValue,
    tags: Vec<String>,
    responders: Vec<Value>,
    texts: Texts,
    timeout: Duration,
}

impl Opsgenie {
    fn parse(v: &Value) -> Result<Opsgenie, TransportConfigError> {
        let c: Config = config::parse(v)?;
        let api_url = c.api_url.as_deref().unwrap_or(API_URL).to_owned();
        config::http_url("api_url", &api_url)?;
        let mut auth = HeaderValue::from_str(&format!("GenieKey {}", c.api_key.trim()))
            .map_err(|_| field_error("api_key", "not a valid key"))?;
        auth.set_sensitive(true);
        if c.api_key.trim().is_empty() {
            return Err(field_error("api_key", "empty"));
        }
        for (i, r) in c.responders.iter().enumerate() {
            if !r.is_object() {
                return Err(field_error(
                    &format!("responders[{i}]"),
                    "a responder is an object like {\"type\": \"team\", \"name\": \"NOC\"}",
                ));
            }
        }
        Ok(Opsgenie {
            api_url,
            auth,
            tags: c.tags,
            responders: c.responders,
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let (url, body) = if is_recovery(n) {
            (
                opsgenie::close_url(&self.api_url, n),
                opsgenie::close(&texts),
            )
        } else {
            let o = opsgenie::Options {
                tags: &self.tags,
                responders: &self.responders,
            };
            (
                opsgenie::create_url(&self.api_url),
                opsgenie::create(n, &texts, &o),
            )
        };
        let url = Url::parse(&url).map_err(|e| DeliveryError::Permanent(format!("URL: {e}")))?;
        let shown = config::shown_url(&url, true);
        let mut req = Request::json(url, shown, &body, n, self.timeout);
        req.headers.insert(AUTHORIZATION, self.auth.clone());
        http::send(req).await
    }
}

impl Transport for Opsgenie {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(self.deliver(n))
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let url = Url::parse(&self.api_url).map_err(|e| e.to_string())?;
            http::check_connect(&url, self.timeout).await
        })
    }
}
