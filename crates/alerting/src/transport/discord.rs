//! `discord`: a Discord channel webhook; the payload is [`crate::payload::discord`].
//!
//! Config: `url` (the webhook URL: a secret), `username`, `avatar_url`, `title` and
//! `body` (templates), `timeout_secs` (10).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, Texts};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::payload::discord::{body, Options};

pub(crate) static KIND: Kind = Kind {
    name: "discord",
    build: |c| Ok(Arc::new(Discord::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Discord::parse(c).map(drop),
    secrets: &["url"],
    redact: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    username: Option<String>,
    avatar_url: Option<String>,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Discord {
    url: Url,
    c: Config,
    texts: Texts,
    timeout: Duration,
}

impl Discord {
    fn parse(v: &Value) -> Result<Discord, TransportConfigError> {
        let c: Config = config::parse(v)?;
        Ok(Discord {
            url: config::http_url("url", &c.url)?,
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
            c,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let o = Options {
            username: self.c.username.as_deref(),
            avatar_url: self.c.avatar_url.as_deref(),
        };
        let shown = config::shown_url(&self.url, false);
        let req = Request::json(
            self.url.clone(),
            shown,
            &body(n, &texts, &o),
            n,
            self.timeout,
        );
        http::send(req).await
    }
}

impl Transport for Discord {
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
