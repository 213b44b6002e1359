//! PagerDuty Events API v2: `POST {api_url}/v2/enqueue`.
//!
//! Every notification of an alert carries the same `dedup_key` (`lookout-alert-<alert
//! id>`): the alert, its repeats and worse/better updates are one incident, which the
//! recovery resolves. A test triggers an incident of its own (`lookout-test-...`).
//!
//! ```json
//! {"routing_key": "...", "event_action": "trigger", "dedup_key": "lookout-alert-42",
//!  "client": "Lookout", "client_url": procedure_url,
//!  "payload": {"summary": title, "source": "core1.example.net", "severity": "critical",
//!    "timestamp": "2026-01-02T03:09:05Z", "component": "xe-0/0/1", "group": "DC1",
//!    "class": "Port status up/down", "custom_details": {...}},
//!  "links": [{"href": procedure_url, "text": "Procedure"}]}
//! {"routing_key": "...", "event_action": "resolve", "dedup_key": "lookout-alert-42"}
//! ```

use serde_json::{json, Value};

use super::{alert_identity, is_recovery, truncate, Texts};
use crate::notification::Notification;
use crate::template::rfc3339;

/// The Events v2 path under the API URL.
pub const PATH: &str = "/v2/enqueue";

/// PagerDuty's severities are critical, error, warning, info.
pub fn severity(n: &Notification) -> &'static str {
    match n.severity.as_str() {
        "critical" => "critical",
        "warning" => "warning",
        "ok" => "info",
        _ => "error",
    }
}

pub fn event(n: &Notification, t: &Texts, routing_key: &str) -> Value {
    let dedup = alert_identity(n);
    if is_recovery(n) {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup,
        });
    }
    let mut payload = json!({
        "summary": truncate(&t.title, 1024),
        "source": n.hostname,
        "severity": severity(n),
        "timestamp": rfc3339(n.timestamp),
        "class": n.rule_name,
        "custom_details": {
            "state": n.kind.as_str(),
            "rule": n.rule_name,
            "device_id": n.device_id,
            "alert_id": n.alert_id,
            "faults": n.faults,
            "details": t.body,
            "idempotency_key": n.idempotency_key,
        },
    });
    if let Some(e) = &n.entity {
        payload["component"] = e.label.as_str().into();
    }
    if let Some(l) = n.location.as_ref().filter(|l| !l.is_empty()) {
        payload["group"] = l.as_str().into();
    }
    let mut v = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "client": "Lookout",
        "payload": payload,
    });
    if let Some(url) = n.procedure_url.as_ref().filter(|u| !u.is_empty()) {
        v["client_url"] = url.as_str().into();
        v["links"] = json!([{"href": url, "text": "Procedure"}]);
    }
    v
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
    fn trigger_shape() {
        let v = event(&example(), &texts(), "R0UT1NG");
        assert_eq!(v["routing_key"], "R0UT1NG");
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], "lookout-alert-42");
        assert_eq!(v["client"], "Lookout");
        assert_eq!(v["client_url"], "https://wiki.example.net/port-down");
        assert_eq!(
            v["links"][0],
            json!({"href": "https://wiki.example.net/port-down", "text": "Procedure"})
        );
        let p = &v["payload"];
        assert_eq!(p["summary"], texts().title);
        assert_eq!(p["source"], "core1.example.net");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2026-01-02T03:09:05Z");
        assert_eq!(p["component"], "xe-0/0/1");
        assert_eq!(p["group"], "DC1, rack 4");
        assert_eq!(p["class"], "Port status up/down");
        assert_eq!(p["custom_details"]["faults"][0]["label"], "xe-0/0/1");
        assert_eq!(p["custom_details"]["details"], "body");
    }

    #[test]
    fn repeats_share_the_key_and_recovery_resolves_it() {
        let mut n = example();
        n.kind = NotificationKind::Worse;
        n.sequence = 3;
        assert_eq!(event(&n, &texts(), "k")["dedup_key"], "lookout-alert-42");
        n.kind = NotificationKind::Recovery;
        assert_eq!(
            event(&n, &texts(), "k"),
            json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "lookout-alert-42"})
        );
    }

    #[test]
    fn severity_mapping_and_summary_limit() {
        let mut n = example();
        n.severity = "warning".into();
        assert_eq!(severity(&n), "warning");
        n.severity = "ok".into();
        assert_eq!(severity(&n), "info");
        n.severity = "weird".into();
        assert_eq!(severity(&n), "error");
        let t = Texts {
            title: "s".repeat(2000),
            body: String::new(),
        };
        let v = event(&n, &t, "k");
        assert_eq!(
            v["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
    }
}
