//! Prometheus Alertmanager API v2: `POST {url}/api/v2/alerts` with a list of one alert.
//!
//! Alertmanager identifies an alert by its label set, and deduplicates: the same labels
//! posted again (to the same replica, or to each replica of a cluster) are one alert,
//! which is why the transport posts to every replica and may re-post after a failure.
//! The labels are therefore only what identifies the alert, never what changes:
//!
//! | label | value |
//! |---|---|
//! | `alertname` | the rule's name |
//! | `severity` | `ok`, `warning`, `critical` |
//! | `hostname` | the device's hostname |
//! | `device_id` | id in `devices` |
//! | `rule` | the rule's id in `alert_rules` |
//! | `entity`, `entity_type`, `entity_id` | the alert's entity (label, kind, id), when it has one |
//! | (config `labels`) | static labels, e.g. `{"team": "noc"}` |
//!
//! Annotations (may change, the latest wins): `summary` (the rendered title),
//! `description` (the rendered body), `procedure_url`, plus config `annotations`.
//! `startsAt` is when the alert first triggered; `endsAt` is the recovery's time, or for a
//! firing alert `ends_after` seconds after this notification (so a Lookout that went
//! away does not leave it firing forever; 0 leaves it to Alertmanager's `resolve_timeout`).
//! A test ends 5 minutes after it is sent.

use std::collections::BTreeMap;

use chrono::Duration;
use serde_json::{json, Map, Value};

use super::Texts;
use crate::notification::{Notification, NotificationKind};
use crate::template::rfc3339;

/// The v2 path under each replica's URL.
pub const PATH: &str = "/api/v2/alerts";

/// Labels the transport sets itself: config `labels` may not use these names.
pub const OWN_LABELS: &[&str] = &[
    "alertname",
    "severity",
    "hostname",
    "device_id",
    "rule",
    "entity",
    "entity_type",
    "entity_id",
];

/// How long a test alert fires.
const TEST_FIRES: i64 = 300;

#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub annotations: Option<&'a BTreeMap<String, String>>,
    pub generator_url: Option<&'a str>,
    /// Seconds a firing alert lasts after this notification; 0: no `endsAt`.
    pub ends_after: i64,
}

pub fn labels(n: &Notification, o: &Options<'_>) -> Map<String, Value> {
    let mut l = Map::new();
    if let Some(extra) = o.labels {
        for (k, v) in extra {
            l.insert(k.clone(), v.clone().into());
        }
    }
    l.insert("alertname".into(), n.rule_name.clone().into());
    l.insert("severity".into(), n.severity.clone().into());
    l.insert("hostname".into(), n.hostname.clone().into());
    l.insert("device_id".into(), n.device_id.to_string().into());
    l.insert("rule".into(), n.rule_id.to_string().into());
    if let Some(e) = &n.entity {
        l.insert("entity".into(), e.label.clone().into());
        l.insert("entity_type".into(), e.kind.clone().into());
        l.insert("entity_id".into(), e.id.to_string().into());
    }
    l
}

/// The request body: a list of one alert.
pub fn alerts(n: &Notification, t: &Texts, o: &Options<'_>) -> Value {
    let mut ann = Map::new();
    if let Some(extra) = o.annotations {
        for (k, v) in extra {
            ann.insert(k.clone(), v.clone().into());
        }
    }
    ann.insert("summary".into(), t.title.clone().into());
    ann.insert("description".into(), t.body.clone().into());
    if let Some(url) = n.procedure_url.as_ref().filter(|u| !u.is_empty()) {
        ann.insert("procedure_url".into(), url.clone().into());
    }
    let mut a = json!({
        "labels": labels(n, o),
        "annotations": ann,
        "startsAt": rfc3339(n.triggered_at),
    });
    let ends = match n.kind {
        NotificationKind::Recovery => Some(n.timestamp),
        NotificationKind::Test => Some(n.timestamp + Duration::seconds(TEST_FIRES)),
        _ if o.ends_after > 0 => Some(n.timestamp + Duration::seconds(o.ends_after)),
        _ => None,
    };
    if let Some(e) = ends {
        a["endsAt"] = rfc3339(e).into();
    }
    if let Some(g) = o.generator_url {
        a["generatorURL"] = g.into();
    }
    Value::Array(vec![a])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;

    fn texts() -> Texts {
        Texts {
            title: "summary".into(),
            body: "description".into(),
        }
    }

    #[test]
    fn firing_alert_shape() {
        let labels: BTreeMap<String, String> = [("team".to_owned(), "noc".to_owned())].into();
        let ann: BTreeMap<String, String> = [("runbook".to_owned(), "r".to_owned())].into();
        let o = Options {
            labels: Some(&labels),
            annotations: Some(&ann),
            generator_url: Some("https://lookout.example.net/alerts"),
            ends_after: 86_400,
        };
        let v = alerts(&example(), &texts(), &o);
        assert_eq!(v.as_array().unwrap().len(), 1);
        let a = &v[0];
        assert_eq!(
            a["labels"],
            json!({
                "alertname": "Port status up/down", "severity": "critical",
                "hostname": "core1.example.net", "device_id": "3", "rule": "7",
                "entity": "xe-0/0/1", "entity_type": "ports", "entity_id": "12",
                "team": "noc",
            })
        );
        assert_eq!(
            a["annotations"],
            json!({"summary": "summary", "description": "description",
                   "procedure_url": "https://wiki.example.net/port-down", "runbook": "r"})
        );
        assert_eq!(a["startsAt"], "2026-01-02T03:04:05Z");
        assert_eq!(a["endsAt"], "2026-01-03T03:09:05Z");
        assert_eq!(a["generatorURL"], "https://lookout.example.net/alerts");
    }

    #[test]
    fn recovery_ends_now_and_labels_stay_the_same() {
        let firing = alerts(&example(), &texts(), &Options::default());
        assert!(firing[0].get("endsAt").is_none());
        assert!(firing[0].get("generatorURL").is_none());
        let mut n = example();
        n.kind = NotificationKind::Recovery;
        n.sequence = 1;
        n.timestamp += Duration::seconds(60);
        let v = alerts(&n, &texts(), &Options::default());
        assert_eq!(v[0]["endsAt"], "2026-01-02T03:10:05Z");
        assert_eq!(v[0]["startsAt"], firing[0]["startsAt"]);
        assert_eq!(v[0]["labels"], firing[0]["labels"]);
    }

    #[test]
    fn own_labels_win_and_device_alert_has_no_entity() {
        let labels: BTreeMap<String, String> = [("severity".to_owned(), "x".to_owned())].into();
        let mut n = example();
        n.entity = None;
        let l = super::labels(
            &n,
            &Options {
                labels: Some(&labels),
                ..Options::default()
            },
        );
        assert_eq!(l["severity"], "critical");
        assert!(!l.contains_key("entity"));
        let mut t = example();
        t.kind = NotificationKind::Test;
        assert_eq!(
            alerts(&t, &texts(), &Options::default())[0]["endsAt"],
            "2026-01-02T03:14:05Z"
        );
    }
}
