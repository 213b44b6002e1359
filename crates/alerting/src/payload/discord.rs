//! Discord webhooks: one embed, coloured by severity, within Discord's limits (title 256,
//! description 4096 characters, 25 fields).
//!
//! ```json
//! {"username": "lookout", "avatar_url": "...",
//!  "embeds": [{"title": title, "description": body, "color": 13959168,
//!    "timestamp": "2026-01-02T03:09:05Z", "url": procedure_url,
//!    "fields": [{"name": "Device", "value": "core1", "inline": true}, ...],
//!    "footer": {"text": "Lookout"}}],
//!  "allowed_mentions": {"parse": []}}
//! ```

use serde_json::{json, Value};

use super::{facts, truncate, Texts, Tone};
use crate::notification::Notification;
use crate::template::rfc3339;

#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    pub username: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
}

pub fn body(n: &Notification, t: &Texts, o: &Options<'_>) -> Value {
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": truncate(&v, 1024), "inline": true}))
        .collect();
    let mut embed = json!({
        "title": truncate(&t.title, 256),
        "description": truncate(&t.body, 4096),
        "color": Tone::of(n).rgb(),
        "timestamp": rfc3339(n.timestamp),
        "fields": fields,
        "footer": {"text": "Lookout"},
    });
    if let Some(url) = n.procedure_url.as_ref().filter(|u| !u.is_empty()) {
        embed["url"] = url.as_str().into();
    }
    // A hostname or ifAlias with "@everyone" in it must not ping a whole server.
    let mut v = json!({"embeds": [embed], "allowed_mentions": {"parse": []}});
    if let Some(u) = o.username {
        v["username"] = u.into();
    }
    if let Some(a) = o.avatar_url {
        v["avatar_url"] = a.into();
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;

    #[test]
    fn one_embed_within_limits() {
        let t = Texts {
            title: "x".repeat(300),
            body: "y".repeat(5000),
        };
        let v = body(
            &example(),
            &t,
            &Options {
                username: Some("lookout"),
                avatar_url: None,
            },
        );
        let e = &v["embeds"][0];
        assert_eq!(e["title"].as_str().unwrap().chars().count(), 256);
        assert_eq!(e["description"].as_str().unwrap().chars().count(), 4096);
        assert_eq!(e["color"], 0xD5_00_00);
        assert_eq!(e["timestamp"], "2026-01-02T03:09:05Z");
        assert_eq!(e["url"], "https://wiki.example.net/port-down");
        assert_eq!(
            e["fields"][0],
            json!({"name": "Device", "value": "core1.example.net", "inline": true})
        );
        assert_eq!(e["footer"]["text"], "Lookout");
        assert_eq!(v["username"], "lookout");
        assert!(v.get("avatar_url").is_none());
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
    }
}
