//! Microsoft Teams incoming webhooks, in either card format:
//!
//! - `messagecard` (the connector format LibreNMS sends):
//!   `{"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary",
//!   "themeColor": "d50000", "title", "text", "sections": [{"facts": [{"name", "value"}]}],
//!   "potentialAction": [{"@type": "OpenUri", "name": "Procedure", "targets": [{"os":
//!   "default", "uri"}]}]}`
//! - `adaptive` (Workflows / Power Automate webhooks): `{"type": "message", "attachments":
//!   [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
//!   "content": {"type": "AdaptiveCard", "version": "1.4", "body": [TextBlock title,
//!   TextBlock text, FactSet], "actions": [Action.OpenUrl]}}]}`

use serde::Deserialize;
use serde_json::{json, Value};

use super::{facts, truncate, Texts, Tone};
use crate::notification::Notification;

/// Which card the webhook expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    MessageCard,
    Adaptive,
}

/// Teams refuses payloads over 28 KB: keep the text well inside.
const MAX_TEXT: usize = 20_000;

pub fn body(n: &Notification, t: &Texts, format: Format) -> Value {
    match format {
        Format::MessageCard => message_card(n, t),
        Format::Adaptive => adaptive_card(n, t),
    }
}

fn procedure(n: &Notification) -> Option<&str> {
    n.procedure_url.as_deref().filter(|u| !u.is_empty())
}

fn message_card(n: &Notification, t: &Texts) -> Value {
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut v = json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": t.title,
        "themeColor": format!("{:06x}", Tone::of(n).rgb()),
        "title": t.title,
        // MessageCard text is Markdown: keep the body's line breaks.
        "text": truncate(&t.body, MAX_TEXT).replace('\n', "  \n"),
        "sections": [{"facts": facts}],
    });
    if let Some(url) = procedure(n) {
        v["potentialAction"] = json!([{
            "@type": "OpenUri",
            "name": "Procedure",
            "targets": [{"os": "default", "uri": url}],
        }]);
    }
    v
}

fn adaptive_card(n: &Notification, t: &Texts) -> Value {
    let color = match Tone::of(n) {
        Tone::Good => "Good",
        Tone::Warning => "Warning",
        Tone::Danger => "Attention",
        Tone::Info => "Accent",
    };
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": t.title, "size": "Medium", "weight": "Bolder",
             "color": color, "wrap": true},
            {"type": "TextBlock", "text": truncate(&t.body, MAX_TEXT), "wrap": true},
            {"type": "FactSet", "facts": facts},
        ],
    });
    if let Some(url) = procedure(n) {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Procedure", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;

    fn texts() -> Texts {
        Texts {
            title: "CRITICAL alert: x".into(),
            body: "line 1\nline 2".into(),
        }
    }

    #[test]
    fn message_card_shape() {
        let v = body(&example(), &texts(), Format::MessageCard);
        assert_eq!(v["@type"], "MessageCard");
        assert_eq!(v["@context"], "https://schema.org/extensions");
        assert_eq!(v["summary"], "CRITICAL alert: x");
        assert_eq!(v["title"], "CRITICAL alert: x");
        assert_eq!(v["themeColor"], "d50000");
        assert_eq!(v["text"], "line 1  \nline 2");
        assert_eq!(
            v["sections"][0]["facts"][0],
            json!({"name": "Device", "value": "core1.example.net"})
        );
        assert_eq!(v["potentialAction"][0]["@type"], "OpenUri");
        assert_eq!(
            v["potentialAction"][0]["targets"][0],
            json!({"os": "default", "uri": "https://wiki.example.net/port-down"})
        );
    }

    #[test]
    fn adaptive_card_shape() {
        let v = body(&example(), &texts(), Format::Adaptive);
        assert_eq!(v["type"], "message");
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert!(a["contentUrl"].is_null());
        let c = &a["content"];
        assert_eq!(c["type"], "AdaptiveCard");
        assert_eq!(c["version"], "1.4");
        assert_eq!(c["body"][0]["type"], "TextBlock");
        assert_eq!(c["body"][0]["text"], "CRITICAL alert: x");
        assert_eq!(c["body"][0]["color"], "Attention");
        assert_eq!(c["body"][1]["text"], "line 1\nline 2");
        assert_eq!(c["body"][2]["type"], "FactSet");
        assert_eq!(
            c["body"][2]["facts"][1],
            json!({"title": "Severity", "value": "critical"})
        );
        assert_eq!(c["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(c["actions"][0]["url"], "https://wiki.example.net/port-down");
    }

    #[test]
    fn format_names() {
        let f: Format = serde_json::from_value(json!("adaptive")).unwrap();
        assert_eq!(f, Format::Adaptive);
        let f: Format = serde_json::from_value(json!("messagecard")).unwrap();
        assert_eq!(f, Format::MessageCard);
    }
}
