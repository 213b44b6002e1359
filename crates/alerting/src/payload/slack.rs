//! Slack incoming webhooks (and Slack-compatible receivers: Mattermost, Rocket.Chat):
//! one message with one attachment coloured by severity, as LibreNMS sends it.
//!
//! ```json
//! {"attachments": [{"fallback": title, "color": "#d50000", "title": title,
//!   "title_link": procedure_url, "text": body, "mrkdwn_in": ["text"],
//!   "fields": [{"title": "Device", "value": "core1", "short": true}, ...],
//!   "footer": "Lookout", "ts": 1767323345}],
//!  "channel": "#noc", "username": "lookout", "icon_emoji": ":rotating_light:"}
//! ```

use serde_json::{json, Map, Value};

use super::{facts, truncate, Texts, Tone};
use crate::notification::Notification;

/// Optional overrides (the webhook's own channel, name and icon otherwise).
#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    pub channel: Option<&'a str>,
    pub username: Option<&'a str>,
    pub icon_emoji: Option<&'a str>,
    pub icon_url: Option<&'a str>,
}

/// Slack shows at most 8000 characters of an attachment's text before "show more".
const MAX_TEXT: usize = 8000;

pub fn body(n: &Notification, t: &Texts, o: &Options<'_>) -> Value {
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": true}))
        .collect();
    let mut att = json!({
        "fallback": t.title,
        "color": Tone::of(n).hex(),
        "title": t.title,
        "text": truncate(&t.body, MAX_TEXT),
        "mrkdwn_in": ["text"],
        "fields": fields,
        "footer": "Lookout",
        "ts": n.timestamp.timestamp(),
    });
    if let Some(url) = n.procedure_url.as_ref().filter(|u| !u.is_empty()) {
        att["title_link"] = url.as_str().into();
    }
    let mut m = Map::new();
    m.insert("attachments".into(), Value::Array(vec![att]));
    for (k, v) in [
        ("channel", o.channel),
        ("username", o.username),
        ("icon_emoji", o.icon_emoji),
        ("icon_url", o.icon_url),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    Value::Object(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;

    fn texts() -> Texts {
        Texts {
            title: "CRITICAL alert: Port status up/down on core1.example.net".into(),
            body: "xe-0/0/1 is down".into(),
        }
    }

    #[test]
    fn one_attachment_coloured_by_severity() {
        let o = Options {
            channel: Some("#noc"),
            username: Some("lookout"),
            icon_emoji: Some(":rotating_light:"),
            icon_url: None,
        };
        let v = body(&example(), &texts(), &o);
        let a = &v["attachments"][0];
        assert_eq!(v["attachments"].as_array().unwrap().len(), 1);
        assert_eq!(a["fallback"], texts().title);
        assert_eq!(a["title"], texts().title);
        assert_eq!(a["title_link"], "https://wiki.example.net/port-down");
        assert_eq!(a["text"], "xe-0/0/1 is down");
        assert_eq!(a["color"], "#d50000");
        assert_eq!(a["mrkdwn_in"], json!(["text"]));
        assert_eq!(
            a["fields"][0],
            json!({"title": "Device", "value": "core1.example.net", "short": true})
        );
        assert_eq!(a["fields"][1]["value"], "critical");
        assert_eq!(a["footer"], "Lookout");
        assert_eq!(a["ts"], 1_767_323_345);
        assert_eq!(v["channel"], "#noc");
        assert_eq!(v["username"], "lookout");
        assert_eq!(v["icon_emoji"], ":rotating_light:");
        assert!(v.get("icon_url").is_none());
    }

    #[test]
    fn without_overrides_or_procedure() {
        let mut n = example();
        n.procedure_url = None;
        n.kind = crate::NotificationKind::Recovery;
        let v = body(&n, &texts(), &Options::default());
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert!(v["attachments"][0].get("title_link").is_none());
        assert_eq!(v["attachments"][0]["color"], "#2eb886");
    }
}
