//! `teams`: a Microsoft Teams incoming webhook, as a MessageCard (connectors) or an
//! Adaptive Card (Workflows); the payload is [`crate::payload::teams`].
//!
//! Config: `url` (the webhook URL: a secret), `format` (`messagecard` or `adaptive`),
//! `title` and `body` (templates), `timeout_secs` (10).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, Texts};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::payload::teams::{body, Format};

pub(crate) static KIND: Kind = Kind {
    name: "teams",
    build: |c| Ok(Arc::new(Teams::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Teams::parse(c).map(drop),
    secrets: &["url"],
    redact: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    format: Format,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Teams {
    url: Url,
    format: Format,
    texts: Texts,
    timeout: Duration,
}

impl Teams {
    fn parse(v: &Value) -> Result<Teams, TransportConfigError> {
        let c: Config = config::parse(v)?;
        Ok(Teams {
            url: config::http_url("url", &c.url)?,
            format: c.format,
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let shown = config::shown_url(&self.url, false);
        let payload = body(n, &texts, self.format);
        http::send(Request::json(
            self.url.clone(),
            shown,
            &payload,
            n,
            self.timeout,
        ))
        .await
    }
}

impl Transport for Teams {
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
