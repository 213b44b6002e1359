//! Telegram Bot API `sendMessage`: `POST {api_url}/bot{token}/sendMessage` with the chat
//! and the text (title, blank line, body; at most 4096 characters).
//!
//! ```json
//! {"chat_id": "-1001234", "text": "...", "disable_web_page_preview": true,
//!  "parse_mode": "HTML", "disable_notification": false, "message_thread_id": 7}
//! ```

use serde_json::{json, Value};

use super::{join_url, truncate, Texts};

#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    /// `HTML`, `MarkdownV2` or `Markdown`; none: plain text (nothing to escape).
    pub parse_mode: Option<&'a str>,
    pub disable_notification: bool,
    /// A forum topic.
    pub message_thread_id: Option<i64>,
}

/// The method URL (holds the bot token: never log it, show [`shown_url`]).
pub fn url(api_url: &str, token: &str) -> String {
    join_url(api_url, &format!("bot{token}/sendMessage"))
}

/// The method URL with the token masked.
pub fn shown_url(api_url: &str) -> String {
    join_url(api_url, "bot********/sendMessage")
}

/// `chat_id` is a number (a group's `-100...`) or `@channelname`: sent as given.
pub fn body(chat_id: &Value, t: &Texts, o: &Options<'_>) -> Value {
    let text = if t.body.is_empty() {
        t.title.clone()
    } else {
        format!("{}\n\n{}", t.title, t.body)
    };
    let mut v = json!({
        "chat_id": chat_id,
        "text": truncate(&text, 4096),
        "disable_web_page_preview": true,
    });
    if let Some(p) = o.parse_mode {
        v["parse_mode"] = p.into();
    }
    if o.disable_notification {
        v["disable_notification"] = true.into();
    }
    if let Some(id) = o.message_thread_id {
        v["message_thread_id"] = id.into();
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn send_message_shape() {
        let t = Texts {
            title: "CRITICAL alert".into(),
            body: "body".into(),
        };
        let v = body(&json!(-100_123), &t, &Options::default());
        assert_eq!(
            v,
            json!({"chat_id": -100_123, "text": "CRITICAL alert\n\nbody", "disable_web_page_preview": true})
        );
        let o = Options {
            parse_mode: Some("HTML"),
            disable_notification: true,
            message_thread_id: Some(7),
        };
        let v = body(&json!("@noc"), &t, &o);
        assert_eq!(v["chat_id"], "@noc");
        assert_eq!(v["parse_mode"], "HTML");
        assert_eq!(v["disable_notification"], true);
        assert_eq!(v["message_thread_id"], 7);
        let long = Texts {
            title: "t".into(),
            body: "b".repeat(5000),
        };
        let v = body(&json!(1), &long, &Options::default());
        assert_eq!(v["text"].as_str().unwrap().chars().count(), 4096);
    }

    #[test]
    fn urls() {
        assert_eq!(
            url("https://api.telegram.org/", "123:abc"),
            "https://api.telegram.org/bot123:abc/sendMessage"
        );
        assert_eq!(
            shown_url("https://api.telegram.org"),
            "https://api.telegram.org/bot********/sendMessage"
        );
    }
}
