//! `pagerduty`: PagerDuty Events API v2 (trigger on alert and its updates, resolve on
//! recovery, one `dedup_key` per alert); the payload is [`crate::payload::pagerduty`].
//!
//! Config: `routing_key` (the integration key: a secret), `api_url`
//! (`https://events.pagerduty.com`; EU accounts: `https://events.eu.pagerduty.com`),
//! `title` (the summary) and `body` (`custom_details.details`) templates,
//! `timeout_secs` (10).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, field_error, Texts};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::payload::{join_url, pagerduty};

pub(crate) static KIND: Kind = Kind {
    name: "pagerduty",
    build: |c| Ok(Arc::new(PagerDuty::parse(c)?) as Arc<dyn Transport>),
    validate: |c| PagerDuty::parse(c).map(drop),
    secrets: &["routing_key"],
    redact: None,
};

const API_URL: &str = "https://events.pagerduty.com";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    routing_key: String,
    api_url: Option<String>,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct PagerDuty {
    url: Url,
    routing_key: String,
    texts: Texts,
    timeout: Duration,
}

impl PagerDuty {
    fn parse(v: &Value) -> Result<PagerDuty, TransportConfigError> {
        let c: Config = config::parse(v)?;
        if c.routing_key.trim().is_empty() {
            return Err(field_error("routing_key", "empty"));
        }
        let api = c.api_url.as_deref().unwrap_or(API_URL);
        config::http_url("api_url", api)?;
        Ok(PagerDuty {
            url: config::http_url("api_url", &join_url(api, pagerduty::PATH))?,
            routing_key: c.routing_key.trim().to_owned(),
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let event = pagerduty::event(n, &texts, &self.routing_key);
        let shown = config::shown_url(&self.url, true);
        http::send(Request::json(
            self.url.clone(),
            shown,
            &event,
            n,
            self.timeout,
        ))
        .await
    }
}

impl Transport for PagerDuty {
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
