//! `telegram`: a message from a bot to a chat (Bot API `sendMessage`); the payload is
//! [`crate::payload::telegram`].
//!
//! Config: `bot_token` (a secret), `chat_id` (a number, or `@channel`), `api_url`
//! (`https://api.telegram.org`), `parse_mode`, `disable_notification`,
//! `message_thread_id`, `title` and `body` (templates), `timeout_secs` (10).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::config::{self, field_error, Texts};
use super::http::{self, Request};
use super::{CheckFuture, DeliveryError, Kind, SendFuture, Transport, TransportConfigError};
use crate::notification::Notification;
use crate::payload::telegram::{body, shown_url, url, Options};

pub(crate) static KIND: Kind = Kind {
    name: "telegram",
    build: |c| Ok(Arc::new(Telegram::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Telegram::parse(c).map(drop),
    secrets: &["bot_token"],
    redact: None,
};

const API_URL: &str = "https://api.telegram.org";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    bot_token: String,
    chat_id: Value,
    api_url: Option<String>,
    parse_mode: Option<String>,
    #[serde(default)]
    disable_notification: bool,
    message_thread_id: Option<i64>,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Telegram {
    url: Url,
    shown: String,
    c: Config,
    texts: Texts,
    timeout: Duration,
}

impl Telegram {
    fn parse(v: &Value) -> Result<Telegram, TransportConfigError> {
        let c: Config = config::parse(v)?;
        let api = c.api_url.as_deref().unwrap_or(API_URL);
        config::http_url("api_url", api)?;
        if c.bot_token.trim().is_empty() || c.bot_token.contains(['/', '?', '#']) {
            return Err(field_error(
                "bot_token",
                "not a bot token (`123456:ABC...`)",
            ));
        }
        match &c.chat_id {
            Value::Number(n) if n.is_i64() => {}
            Value::String(s) if !s.trim().is_empty() => {}
            _ => {
                return Err(field_error(
                    "chat_id",
                    "a chat id (number) or `@channel` is needed",
                ))
            }
        }
        if let Some(p) = &c.parse_mode {
            if !matches!(p.as_str(), "HTML" | "MarkdownV2" | "Markdown") {
                return Err(field_error(
                    "parse_mode",
                    format!("`{p}` is not HTML, MarkdownV2 or Markdown"),
                ));
            }
        }
        let full = url(api, c.bot_token.trim());
        Ok(Telegram {
            url: Url::parse(&full).map_err(|e| field_error("bot_token", e.to_string()))?,
            shown: shown_url(api),
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
            c,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<super::Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let o = Options {
            parse_mode: self.c.parse_mode.as_deref(),
            disable_notification: self.c.disable_notification,
            message_thread_id: self.c.message_thread_id,
        };
        let payload = body(&self.c.chat_id, &texts, &o);
        let req = Request::json(
            self.url.clone(),
            self.shown.clone(),
            &payload,
            n,
            self.timeout,
        );
        http::send(req).await
    }
}

impl Transport for Telegram {
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
