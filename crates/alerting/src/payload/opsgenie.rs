//! Opsgenie Alert API v2 (`Authorization: GenieKey <api key>`):
//!
//! - an alert, repeat, worse or better: `POST {api_url}/v2/alerts` — the same `alias`
//!   (`lookout-alert-<alert id>`) for all of them, so Opsgenie folds them into one alert
//!   (counting them) instead of opening new ones;
//! - a recovery: `POST {api_url}/v2/alerts/{alias}/close?identifierType=alias`.
//!
//! ```json
//! {"message": title, "alias": "lookout-alert-42", "description": body,
//!  "entity": "core1.example.net", "source": "Lookout", "priority": "P1",
//!  "tags": ["lookout", ...], "responders": [...],
//!  "details": {"rule": "...", "state": "alert", "severity": "critical", ...}}
//! {"source": "Lookout", "note": title}
//! ```

use serde_json::{json, Map, Value};

use super::{alert_identity, join_url, truncate, Texts};
use crate::notification::Notification;

#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    pub tags: &'a [String],
    /// Opsgenie's responder objects, as given (`{"type": "team", "name": "NOC"}`).
    pub responders: &'a [Value],
}

/// P1 critical, P3 warning, P5 ok and tests.
pub fn priority(n: &Notification) -> &'static str {
    if n.kind == crate::NotificationKind::Test {
        return "P5";
    }
    match n.severity.as_str() {
        "critical" => "P1",
        "warning" => "P3",
        "ok" => "P5",
        _ => "P3",
    }
}

pub fn create_url(api_url: &str) -> String {
    join_url(api_url, "/v2/alerts")
}

/// The alias is ours (`lookout-alert-` and digits, or a test key of `[a-z0-9-]`), so it
/// needs no escaping in a path.
pub fn close_url(api_url: &str, n: &Notification) -> String {
    join_url(
        api_url,
        &format!(
            "/v2/alerts/{}/close?identifierType=alias",
            alert_identity(n)
        ),
    )
}

pub fn create(n: &Notification, t: &Texts, o: &Options<'_>) -> Value {
    let mut details = Map::new();
    for (k, v) in [
        ("rule", n.rule_name.clone()),
        ("state", n.kind.as_str().to_owned()),
        ("severity", n.severity.clone()),
        ("device_id", n.device_id.to_string()),
        ("alert_id", n.alert_id.to_string()),
        ("idempotency_key", n.idempotency_key.clone()),
    ] {
        details.insert(k.into(), v.into());
    }
    if let Some(e) = &n.entity {
        details.insert("entity".into(), e.label.clone().into());
    }
    if let Some(url) = n.procedure_url.as_ref().filter(|u| !u.is_empty()) {
        details.insert("procedure_url".into(), url.clone().into());
    }
    let mut tags = vec!["lookout".to_owned(), n.severity.clone()];
    tags.extend(o.tags.iter().cloned());
    let mut v = json!({
        "message": truncate(&t.title, 130),
        "alias": alert_identity(n),
        "description": truncate(&t.body, 15_000),
        "entity": truncate(&n.hostname, 512),
        "source": "Lookout",
        "priority": priority(n),
        "tags": tags,
        "details": details,
    });
    if !o.responders.is_empty() {
        v["responders"] = Value::Array(o.responders.to_vec());
    }
    v
}

pub fn close(t: &Texts) -> Value {
    json!({"source": "Lookout", "note": truncate(&t.title, 25_000)})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;
    use crate::NotificationKind;

    fn texts() -> Texts {
        Texts {
            title: "CRITICAL alert: Port status up/down on core1.example.net".into(),
            body: "body".into(),
        }
    }

    #[test]
    fn create_shape() {
        let tags = vec!["network".to_owned()];
        let responders = vec![json!({"type": "team", "name": "NOC"})];
        let o = Options {
            tags: &tags,
            responders: &responders,
        };
        let v = create(&example(), &texts(), &o);
        assert_eq!(v["message"], texts().title);
        assert_eq!(v["alias"], "lookout-alert-42");
        assert_eq!(v["description"], "body");
        assert_eq!(v["entity"], "core1.example.net");
        assert_eq!(v["source"], "Lookout");
        assert_eq!(v["priority"], "P1");
        assert_eq!(v["tags"], json!(["lookout", "critical", "network"]));
        assert_eq!(v["responders"], json!([{"type": "team", "name": "NOC"}]));
        assert_eq!(v["details"]["rule"], "Port status up/down");
        assert_eq!(v["details"]["device_id"], "3");
        assert_eq!(v["details"]["entity"], "xe-0/0/1");
        // Opsgenie's details are a map of strings.
        assert!(v["details"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string));
    }

    #[test]
    fn message_is_at_most_130_characters_and_priorities() {
        let mut n = example();
        let t = Texts {
            title: "m".repeat(200),
            body: String::new(),
        };
        let v = create(&n, &t, &Options::default());
        assert_eq!(v["message"].as_str().unwrap().chars().count(), 130);
        assert!(v.get("responders").is_none());
        n.severity = "warning".into();
        assert_eq!(priority(&n), "P3");
        n.kind = NotificationKind::Test;
        assert_eq!(priority(&n), "P5");
    }

    #[test]
    fn close_by_alias() {
        let mut n = example();
        n.kind = NotificationKind::Recovery;
        assert_eq!(
            close_url("https://api.eu.opsgenie.com/", &n),
            "https://api.eu.opsgenie.com/v2/alerts/lookout-alert-42/close?identifierType=alias"
        );
        assert_eq!(
            create_url("http://127.0.0.1:9"),
            "http://127.0.0.1:9/v2/alerts"
        );
        assert_eq!(
            close(&texts()),
            json!({"source": "Lookout", "note": texts().title})
        );
    }
}
