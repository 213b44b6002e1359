//! Public API of the alerting tables (LibreNMS names: `alert_rules`, `alerts`, `alert_log`,
//! `alert_transports`, `alert_transport_map`, `alert_schedule`, `alert_schedulables`; and
//! Lookout's durable delivery: `alert_outbox`, `alert_delivery_attempts`, `alert_fence`).
//!
//! The store knows no rule language and no state machine (that is `lookout-alerting`): it
//! keeps rows, applies [`AlertChange`]s with an optimistic version check, and fences.
//! - A poll's alert decisions are made *inside* its fenced commit: [`PollAlerts`] carries an
//!   [`AlertHook`] that `commit_poll` calls with the device's state as written and its alert
//!   rows, then applies what it returns in the same transaction (a stale poll thus creates
//!   no alert and clears none; a retried transaction decides again from what is stored).
//! - The master's writes (time-based transitions, outbox delivery) are fenced by its lease
//!   token through `alert_fence`: [`Store::alert_fence_claim`] raises the fence to the
//!   caller's token, and every fenced write first checks that the fence still holds it.
//!
//! Rule options, transport configs, alert state and notifications are JSON text here; the
//! alerting crate owns their shapes. Operations are in `alert_ops.rs`.

use std::sync::Arc;

use lookout_core::{Device, DeviceId, Port, Timestamp};
use serde::{Deserialize, Serialize};

// What `run!` (defined in lib.rs before this module) refers to.
use crate::{
    mysql, mysql_ops, now, query_err, sqlite_ops, Inner, Mempool, Processor, Result, Storage, Store,
};

/// A row of `alert_rules`, with its transports (`alert_transport_map`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: i64,
    pub name: String,
    /// The rule expression (Lookout's rule language).
    pub rule: String,
    /// `ok`, `warning` or `critical`.
    pub severity: String,
    /// Options as JSON (delay, interval, count, mute, invert, recovery, scope, template).
    pub extra: String,
    pub disabled: bool,
    /// One of the built-in defaults (re-created at start-up when missing).
    pub builtin: bool,
    /// Procedure URL (LibreNMS `proc`).
    pub proc_url: Option<String>,
    pub updated: Timestamp,
    /// Transports of this rule; empty = the default transports.
    pub transport_ids: Vec<i64>,
}

/// What [`Store::add_alert_rule`] and [`Store::update_alert_rule`] write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAlertRule {
    pub name: String,
    pub rule: String,
    pub severity: String,
    pub extra: String,
    pub disabled: bool,
    pub builtin: bool,
    pub proc_url: Option<String>,
    pub transport_ids: Vec<i64>,
}

/// A row of `alert_transports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertTransport {
    pub transport_id: i64,
    pub transport_name: String,
    /// `webhook`, `email`, `script`, `alertmanager`, `slack`, ...
    pub transport_type: String,
    /// Receives every rule that names no transport of its own.
    pub is_default: bool,
    /// The transport's settings as JSON (may hold secrets: never show it unredacted).
    pub transport_config: String,
}

/// Which alert: one per (rule, device, entity); `entity_type` `""` and `entity_id` 0 for
/// the device itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    pub rule_id: i64,
    pub device_id: DeviceId,
    pub entity_type: String,
    pub entity_id: i64,
}

/// A row of `alerts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: i64,
    pub key: AlertKey,
    /// LibreNMS's numbers: 0 ok/recovered, 1 alert, 2 acknowledged, 3 worse, 4 better.
    pub state: i32,
    /// Notifications sent for the current episode (LibreNMS `alerted`).
    pub alerted: i32,
    /// Still open (triggered, acknowledged, or pending its delay).
    pub open: bool,
    /// The acknowledgement note.
    pub note: Option<String>,
    /// When the row last changed.
    pub timestamp: Timestamp,
    /// The alert state machine's state as JSON.
    pub info: String,
    /// Bumped on every write; writers that read it update only that version.
    pub version: i64,
}

/// The new content of an alert row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRowNew {
    pub state: i32,
    pub alerted: i32,
    pub open: bool,
    pub note: Option<String>,
    pub info: String,
}

/// A message to deliver, written with the transition it tells of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxNew {
    pub idempotency_key: String,
    pub transport_id: i64,
    /// The notification as JSON. A top-level `alert_id` field is set by the store to the
    /// alert row's id (a new alert has none before the write).
    pub notification: String,
}

/// One decision about one alert, applied atomically with its log row and messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertChange {
    pub key: AlertKey,
    /// The version the decision was made from; `None`: the alert had no row. A row whose
    /// version moved meanwhile is left alone (the change is counted as skipped).
    pub expect_version: Option<i64>,
    /// The row after the change; `None` deletes it.
    pub new: Option<AlertRowNew>,
    /// An `alert_log` row: (state, details JSON).
    pub log: Option<(i32, String)>,
    pub outbox: Vec<OutboxNew>,
}

/// What an [`AlertHook`] sees inside a poll's commit: the device as the poll left it and its
/// entities as stored after the poll's syncs.
pub struct AlertInput<'a> {
    pub device: &'a Device,
    pub ports: &'a [Port],
    pub processors: &'a [Processor],
    pub mempools: &'a [Mempool],
    pub storage: &'a [Storage],
    /// ICMP of this poll: (loss %, average RTT ms) when the availability module ran.
    pub icmp: Option<(f64, Option<f64>)>,
    pub alerts: &'a [AlertRow],
    pub now: Timestamp,
}

/// Decides a poll's alert changes (implemented by `lookout-alerting`). Called inside the
/// commit's transaction, so it must be quick and must not block: no I/O.
pub trait AlertHook: Send + Sync {
    fn decide(&self, input: &AlertInput<'_>) -> Vec<AlertChange>;
}

/// The alert part of a [`crate::PollCommit`].
#[derive(Clone)]
pub struct PollAlerts {
    pub hook: Arc<dyn AlertHook>,
    /// The device row as this poll writes it.
    pub device: Device,
    pub icmp: Option<(f64, Option<f64>)>,
}

impl std::fmt::Debug for PollAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollAlerts")
            .field("device_id", &self.device.device_id)
            .finish_non_exhaustive()
    }
}

/// The master's lease, as the alert fence knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterFence {
    pub node_id: String,
    pub token: u64,
}

/// What [`Store::apply_alert_changes_fenced`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedChanges {
    pub applied: usize,
    /// Changes whose alert row had moved on since it was read.
    pub skipped: usize,
}

/// A row of `alert_outbox`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: i64,
    pub idempotency_key: String,
    pub transport_id: i64,
    pub alert_id: Option<i64>,
    pub device_id: Option<DeviceId>,
    pub notification: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    pub created: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    Delivered {
        detail: String,
    },
    /// Failed, to be tried again at `next_at`.
    Retry {
        error: String,
        next_at: Timestamp,
    },
    /// Failed for good (permanent error or too many attempts).
    Failed {
        error: String,
    },
}

/// A row of `alert_delivery_attempts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub outbox_id: i64,
    pub node_id: String,
    pub token: u64,
    pub started: Timestamp,
    pub finished: Option<Timestamp>,
    /// `sending` (no outcome recorded: the sender died or lost its fence), `delivered`,
    /// `retry`, `failed`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// A row of `alert_log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertLogRow {
    pub id: i64,
    pub key: AlertKey,
    pub state: i32,
    pub details: String,
    pub time_logged: Timestamp,
}

/// A maintenance window (`alert_schedule`) with what it covers (`alert_schedulables`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    pub schedule_id: i64,
    pub title: String,
    pub notes: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub recurring: bool,
    /// `HH:MM` (UTC), recurring windows only.
    pub start_recurring_hm: Option<String>,
    pub end_recurring_hm: Option<String>,
    /// ISO weekdays `1,2,...` (Monday = 1); empty = every day.
    pub recurring_day: Option<String>,
    /// 0 skip (no alert state), 1 mute (state kept, nothing sent).
    pub behavior: i32,
    /// `("device", device_id)` or `("poller_group", group)`.
    pub items: Vec<(String, i64)>,
}

impl Store {
    // ------------------------------------------------------------------ rules

    pub async fn alert_rules(&self) -> Result<Vec<AlertRule>> {
        run!(self, read, "alert_rules", alert_rules())
    }

    /// Adds a rule; `Duplicate` when the name is taken.
    pub async fn add_alert_rule(&self, rule: &NewAlertRule) -> Result<AlertRule> {
        let at = now();
        run!(self, write, "add_alert_rule", add_alert_rule(rule, at))
    }

    /// Replaces a rule's fields; `NotFound` when there is no such rule.
    pub async fn update_alert_rule(&self, id: i64, rule: &NewAlertRule) -> Result<AlertRule> {
        let at = now();
        run!(
            self,
            write,
            "update_alert_rule",
            update_alert_rule(id, rule, at)
        )
    }

    /// Removes a rule with its alerts and log; false when there was none.
    pub async fn remove_alert_rule(&self, id: i64) -> Result<bool> {
        run!(self, write, "remove_alert_rule", remove_alert_rule(id))
    }

    // ------------------------------------------------------------------ transports

    pub async fn alert_transports(&self) -> Result<Vec<AlertTransport>> {
        run!(self, read, "alert_transports", alert_transports())
    }

    /// Adds a transport (`transport_id` is ignored); `Duplicate` when the name is taken.
    pub async fn add_alert_transport(&self, t: &AlertTransport) -> Result<AlertTransport> {
        run!(self, write, "add_alert_transport", add_alert_transport(t))
    }

    /// Removes a transport; false when there was none.
    pub async fn remove_alert_transport(&self, id: i64) -> Result<bool> {
        run!(
            self,
            write,
            "remove_alert_transport",
            remove_alert_transport(id)
        )
    }

    // ------------------------------------------------------------------ alerts

    /// Every alert row (open and recovered), by id.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>> {
        run!(self, read, "alerts", alerts_all())
    }

    pub async fn alert(&self, id: i64) -> Result<Option<AlertRow>> {
        run!(self, read, "alert", alert_by_id(id))
    }

    /// Applies changes the operator asked for (ack, unack), unfenced: under the device row
    /// lock and the version check. A change whose row moved on is skipped.
    pub async fn apply_alert_changes(
        &self,
        device_id: DeviceId,
        changes: &[AlertChange],
    ) -> Result<AppliedChanges> {
        let at = now();
        run!(
            self,
            write,
            "apply_alert_changes",
            apply_alert_changes(None, device_id, changes, at)
        )
    }

    /// [`Store::apply_alert_changes`] by the master: only while `fence` holds the alert
    /// fence (`StoreError::Fenced` otherwise, nothing written).
    pub async fn apply_alert_changes_fenced(
        &self,
        fence: &MasterFence,
        device_id: DeviceId,
        changes: &[AlertChange],
    ) -> Result<AppliedChanges> {
        let at = now();
        run!(
            self,
            write,
            "apply_alert_changes_fenced",
            apply_alert_changes(Some(fence), device_id, changes, at)
        )
    }

    /// The newest `alert_log` rows first, optionally of one device.
    pub async fn alert_log(
        &self,
        device_id: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<AlertLogRow>> {
        run!(self, read, "alert_log", alert_log(device_id, limit))
    }

    // ------------------------------------------------------------------ fence + outbox

    /// Raises the alert fence to `fence.token`; false when a newer master's token holds it
    /// (the caller is stale and must not write alert state or deliver).
    pub async fn alert_fence_claim(&self, fence: &MasterFence) -> Result<bool> {
        run!(self, write, "alert_fence_claim", alert_fence_claim(fence))
    }

    /// Messages waiting for delivery whose next attempt is due at `at`, oldest first;
    /// `sending` ones too (their sender died or lost its lease: the outcome is unknown, so
    /// they are sent again, with the same idempotency key).
    pub async fn outbox_due(&self, at: Timestamp, limit: u32) -> Result<Vec<OutboxRow>> {
        run!(
            self,
            read,
            "outbox_due",
            outbox_due(crate::micros(at), limit)
        )
    }

    /// Outbox rows, newest first, optionally only those in `state`.
    pub async fn outbox(&self, state: Option<&str>, limit: u32) -> Result<Vec<OutboxRow>> {
        run!(self, read, "outbox", outbox_list(state, limit))
    }

    /// Marks a message as being sent by `fence`'s master and records the attempt; returns
    /// the attempt's id, `None` when the message is no longer waiting (delivered or failed
    /// meanwhile). `StoreError::Fenced` when the fence moved on.
    pub async fn outbox_begin_attempt(
        &self,
        fence: &MasterFence,
        outbox_id: i64,
    ) -> Result<Option<i64>> {
        let at = now();
        run!(
            self,
            write,
            "outbox_begin_attempt",
            outbox_begin_attempt(fence, outbox_id, at)
        )
    }

    /// Records how an attempt ended (fenced like [`Store::outbox_begin_attempt`]).
    pub async fn outbox_finish_attempt(
        &self,
        fence: &MasterFence,
        outbox_id: i64,
        attempt_id: i64,
        outcome: &AttemptOutcome,
    ) -> Result<()> {
        let at = now();
        let outcome = match outcome {
            AttemptOutcome::Retry { error, next_at } => AttemptOutcome::Retry {
                error: error.clone(),
                next_at: crate::micros(*next_at),
            },
            o => o.clone(),
        };
        let outcome = &outcome;
        run!(
            self,
            write,
            "outbox_finish_attempt",
            outbox_finish_attempt(fence, outbox_id, attempt_id, outcome, at)
        )
    }

    /// The attempts of one message, oldest first.
    pub async fn delivery_attempts(&self, outbox_id: i64) -> Result<Vec<DeliveryAttempt>> {
        run!(
            self,
            read,
            "delivery_attempts",
            delivery_attempts(outbox_id)
        )
    }

    /// Writes messages outside any alert transition (a transport test), unfenced.
    pub async fn outbox_insert(&self, messages: &[OutboxNew]) -> Result<()> {
        let at = now();
        run!(
            self,
            write,
            "outbox_insert",
            outbox_insert_all(messages, at)
        )
    }

    // ------------------------------------------------------------------ maintenance

    pub async fn maintenances(&self) -> Result<Vec<Maintenance>> {
        run!(self, read, "maintenances", maintenances())
    }

    /// Adds a window (`schedule_id` ignored) with its items.
    pub async fn add_maintenance(&self, m: &Maintenance) -> Result<Maintenance> {
        run!(self, write, "add_maintenance", add_maintenance(m))
    }

    pub async fn remove_maintenance(&self, id: i64) -> Result<bool> {
        run!(self, write, "remove_maintenance", remove_maintenance(id))
    }
}

/// `notification` (a JSON object) with its top-level `alert_id` set; unchanged when it is
/// not an object or there is no id.
pub(crate) fn with_alert_id(notification: &str, alert_id: Option<i64>) -> String {
    let Some(id) = alert_id else {
        return notification.to_string();
    };
    match serde_json::from_str::<serde_json::Value>(notification) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("alert_id".into(), serde_json::Value::from(id));
            serde_json::Value::Object(m).to_string()
        }
        _ => notification.to_string(),
    }
}
