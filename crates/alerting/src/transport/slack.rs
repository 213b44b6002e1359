//! `slack`: a Slack incoming webhook (or Mattermost/Rocket.Chat's Slack-compatible one);
//! the payload is [`crate::payload::slack`].
//!
//! Config: `url` (the webhook URL: a secret), `channel`, `username`, `icon_emoji`,
//! `icon_url`, `title` and `body` (templates), `timeout_secs` (10).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, Texts};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::payload::slack::{body, Options};

pub(crate) static KIND: Kind = Kind {
    name: "slack",
    build: |c| Ok(Arc::new(Slack::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Slack::parse(c).map(drop),
    secrets: &["url"],
    redact: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    icon_url: Option<String>,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Slack {
    url: Url,
    c: Config,
    texts: Texts,
    timeout: Duration,
}

impl Slack {
    fn parse(v: &Value) -> Result<Slack, TransportConfigError> {
        let c: Config = config::parse(v)?;
        Ok(Slack {
            url: config::http_url("url", &c.url)?,
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
            c,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let o = Options {
            channel: self.c.channel.as_deref(),
            username: self.c.username.as_deref(),
            icon_emoji: self.c.icon_emoji.as_deref(),
            icon_url: self.c.icon_url.as_deref(),
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

impl Transport for Slack {
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
