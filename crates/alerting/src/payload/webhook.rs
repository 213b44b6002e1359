//! The generic webhook's default body: the [`Notification`] as JSON, every field under
//! its Rust name (`idempotency_key`, `kind`, `alert_id`, `rule_name`, `severity`,
//! `hostname`, `faults`, `triggered_at`, `timestamp`, ...), timestamps in RFC 3339.

use crate::notification::Notification;

/// The body sent when the webhook has no body template.
pub fn body(n: &Notification) -> serde_json::Value {
    // A Notification is plain data (strings, numbers, JSON faults): it always serializes.
    serde_json::to_value(n).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;

    #[test]
    fn the_notification_with_its_own_field_names() {
        let v = body(&example());
        assert_eq!(v["idempotency_key"], "lookout-alert:r7:d3:ports:12:alert:0");
        assert_eq!(v["kind"], "alert");
        assert_eq!(v["alert_id"], 42);
        assert_eq!(v["rule_id"], 7);
        assert_eq!(v["rule_name"], "Port status up/down");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["device_id"], 3);
        assert_eq!(v["hostname"], "core1.example.net");
        assert_eq!(v["sys_name"], "core1");
        assert_eq!(v["entity"]["kind"], "ports");
        assert_eq!(v["entity"]["label"], "xe-0/0/1");
        assert_eq!(v["faults"][0]["ports.ifOperStatus"], "down");
        assert_eq!(v["triggered_at"], "2026-01-02T03:04:05Z");
        assert_eq!(v["timestamp"], "2026-01-02T03:09:05Z");
        assert_eq!(v["sequence"], 0);
        // It reads back as the same notification (receivers may use the Rust type).
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, example());
    }
}
