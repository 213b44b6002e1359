//! What a transport is asked to deliver: one notification of one alert transition.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which transition a notification tells of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// The rule started to match (after its delay).
    Alert,
    /// Still matching: a repeat after the rule's interval.
    Repeat,
    /// Still matching, with more faults than before.
    Worse,
    /// Still matching, with fewer faults than before.
    Better,
    /// The rule stopped matching.
    Recovery,
    /// A test sent by an operator (`lookout alert transport test`).
    Test,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Alert => "alert",
            NotificationKind::Repeat => "repeat",
            NotificationKind::Worse => "worse",
            NotificationKind::Better => "better",
            NotificationKind::Recovery => "recovery",
            NotificationKind::Test => "test",
        }
    }
}

/// The entity an alert is about, when it is not the device itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    /// `ports`, `processors`, `mempools`, `storage`, ...
    pub kind: String,
    /// The entity's id in its table (`port_id`, `processor_id`, ...).
    pub id: i64,
    /// What an engineer calls it (`ifName`, processor description, mount point).
    pub label: String,
}

/// One notification, with everything templates and transports may show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Same for every delivery attempt of this notification, on every node: receivers drop
    /// duplicates by it (rule, device, entity, transition, sequence).
    pub idempotency_key: String,
    pub kind: NotificationKind,
    pub alert_id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    /// `ok`, `warning` or `critical`.
    pub severity: String,
    pub device_id: i64,
    pub hostname: String,
    pub sys_name: Option<String>,
    pub os: Option<String>,
    pub hardware: Option<String>,
    pub location: Option<String>,
    pub uptime_secs: Option<u64>,
    pub entity: Option<EntityRef>,
    /// The matching entities (or the device) with the fields the rule looked at.
    pub faults: Vec<serde_json::Value>,
    /// When the alert first triggered.
    pub triggered_at: DateTime<Utc>,
    /// When this transition happened.
    pub timestamp: DateTime<Utc>,
    pub procedure_url: Option<String>,
    /// 0 for the first notification of an alert, then one more per notification.
    pub sequence: u32,
}

impl Notification {
    /// What a transport's "send test" delivers: kind `test`, about `hostname` (the node
    /// that sends it), with a key of its own.
    pub fn test(hostname: &str, now: DateTime<Utc>) -> Notification {
        Notification {
            idempotency_key: format!("lookout-test:{}", now.timestamp_micros()),
            kind: NotificationKind::Test,
            alert_id: 0,
            rule_id: 0,
            rule_name: "Test notification".into(),
            severity: "ok".into(),
            device_id: 0,
            hostname: hostname.to_string(),
            sys_name: None,
            os: None,
            hardware: None,
            location: None,
            uptime_secs: None,
            entity: None,
            faults: Vec::new(),
            triggered_at: now,
            timestamp: now,
            procedure_url: None,
            sequence: 0,
        }
    }

    /// Seconds between the alert's trigger and this transition.
    pub fn elapsed_secs(&self) -> i64 {
        (self.timestamp - self.triggered_at).num_seconds().max(0)
    }
}
