//! The alert state machine, pure: one [`AlertState`] per (rule, device[, entity]), moved by
//! [`on_evaluation`] (a poll or the master's pass evaluated the rule), [`on_tick`] (time
//! passed: delay elapsed, repeat due, acknowledgement expired, suppression ended),
//! [`on_ack`] and [`on_unack`]. Each returns a [`Decision`]: the new state, at most one
//! notification (with its `sequence`, monotonic per alert) and at most one alert-log entry.
//!
//! ```text
//!  (none) ──match──► Pending ──delay held──► Triggered ──no match──► Recovered
//!     ▲                 │  no match            │  ▲  │ ack            │ match
//!     └─────────────────┘ (or Recovered)       │  │  ▼                ▼
//!                                              │  Acknowledged      Pending ...
//!                              more/fewer faults, severity: Worse / Better
//! ```
//!
//! Suppression (rule `mute`, maintenance `Mute`) keeps the state moving and sends nothing;
//! what receivers were told is tracked (`notified`), so an alert that triggered while
//! suppressed is announced when suppression ends and still open, and a recovery owed to
//! receivers is sent once it is not suppressed any more. Maintenance `Skip` creates no alert,
//! drops a pending one and freezes an open one until the window ends.
//!
//! Keep recovered rows: a new episode continues the alert's `sequence`, which keeps
//! [`idempotency_key`]s unique.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::rule::{Faults, RuleOptions, Severity};
use crate::NotificationKind;

/// Where an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The condition holds, its `delay` has not passed yet.
    Pending,
    /// Alerting (possibly acknowledged: [`AlertState::ack`]).
    Triggered,
    /// The condition stopped holding.
    Recovered,
}

/// The last change of a triggered alert (LibreNMS's state 1, 3 or 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Alert,
    Worse,
    Better,
}

/// An operator's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub note: String,
    /// Back to triggered (repeats resume) at this time.
    pub until: Option<DateTime<Utc>>,
    /// Back to triggered, with a Worse notification, when the alert gets worse.
    pub until_worse: bool,
}

/// The state of one alert, stored as JSON (`alerts.info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub phase: Phase,
    /// When the condition started to hold (this episode).
    pub since: DateTime<Utc>,
    /// When this episode triggered (after the delay).
    pub triggered_at: Option<DateTime<Utc>>,
    pub recovered_at: Option<DateTime<Utc>>,
    pub trend: Trend,
    pub severity: Severity,
    /// The faults of the last evaluation that matched.
    pub faults: Faults,
    pub ack: Option<Ack>,
    /// Receivers were told this episode is open and not yet of its recovery.
    pub notified: bool,
    /// Alert and repeat notifications sent this episode (LibreNMS `alerted`; bounded by
    /// the rule's `count`).
    pub sent: u32,
    /// Notifications sent over the alert's life: the next one gets this sequence number.
    pub sequence: u32,
    /// Repeats count their interval from here (the last notification, or un-acking).
    pub repeat_from: Option<DateTime<Utc>>,
}

impl AlertState {
    /// LibreNMS's `alerts.state`: 0 ok/recovered (and pending), 1 alert, 2 acknowledged,
    /// 3 worse, 4 better.
    pub fn librenms_state(&self) -> i32 {
        match (self.phase, &self.ack, self.trend) {
            (Phase::Triggered, Some(_), _) => 2,
            (Phase::Triggered, None, Trend::Alert) => 1,
            (Phase::Triggered, None, Trend::Worse) => 3,
            (Phase::Triggered, None, Trend::Better) => 4,
            _ => 0,
        }
    }

    /// Open: pending its delay or triggered (`alerts.open`).
    pub fn is_open(&self) -> bool {
        self.phase != Phase::Recovered
    }

    pub fn is_acknowledged(&self) -> bool {
        self.ack.is_some()
    }

    /// The acknowledgement note (`alerts.note`).
    pub fn note(&self) -> Option<&str> {
        self.ack.as_ref().map(|a| a.note.as_str())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<AlertState, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// Maintenance of the device at the time of the decision (`alert_schedule.behavior`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaintenanceMode {
    #[default]
    Off,
    /// No alert state: nothing new triggers, pending alerts are dropped, open ones freeze.
    Skip,
    /// State kept, nothing sent.
    Mute,
}

impl MaintenanceMode {
    /// From LibreNMS's `alert_schedule.behavior` (0 skip, 1 mute); `None`: no window.
    pub fn from_behavior(behavior: Option<i32>) -> Self {
        match behavior {
            None => MaintenanceMode::Off,
            Some(0) => MaintenanceMode::Skip,
            Some(_) => MaintenanceMode::Mute,
        }
    }
}

/// When the decision is made and under which maintenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalContext {
    pub now: DateTime<Utc>,
    pub maintenance: MaintenanceMode,
}

impl EvalContext {
    pub fn at(now: DateTime<Utc>) -> Self {
        EvalContext {
            now,
            maintenance: MaintenanceMode::Off,
        }
    }
}

/// A notification to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify {
    pub kind: NotificationKind,
    /// Monotonic per alert: part of the idempotency key.
    pub sequence: u32,
}

/// An `alert_log` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// LibreNMS's state number the entry records (0 recovered, 1 alert, 2 acknowledged,
    /// 3 worse, 4 better).
    pub state: i32,
    /// `{"event": "...", "faults": [...], ...}`; several events of one decision are
    /// listed in `events`.
    pub details: serde_json::Value,
}

/// What one call decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The new state; `None`: no row (delete it if there is one).
    pub state: Option<AlertState>,
    pub notify: Option<Notify>,
    pub log: Option<LogEntry>,
    /// False when the state is the one passed in (nothing to write).
    pub changed: bool,
}

/// An acknowledgement or un-acknowledgement that does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the alert is not triggered (it is {0}): nothing to acknowledge")]
    NotTriggered(&'static str),
    #[error("the alert is not acknowledged")]
    NotAcknowledged,
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "pending",
        Phase::Triggered => "triggered",
        Phase::Recovered => "recovered",
    }
}

/// A decision being built from the previous state.
struct Step {
    prev: Option<AlertState>,
    s: AlertState,
    notify: Option<Notify>,
    log: Option<LogEntry>,
    suppressed: bool,
    now: DateTime<Utc>,
}

impl Step {
    fn new(prev: &AlertState, rule: &RuleOptions, ctx: &EvalContext) -> Self {
        Step {
            prev: Some(prev.clone()),
            s: prev.clone(),
            notify: None,
            log: None,
            suppressed: rule.mute || ctx.maintenance == MaintenanceMode::Mute,
            now: ctx.now,
        }
    }

    fn log(&mut self, state: i32, event: &str, extra: serde_json::Value) {
        let mut details = serde_json::json!({ "event": event, "faults": self.s.faults.0 });
        if let (Some(d), serde_json::Value::Object(x)) = (details.as_object_mut(), extra) {
            d.extend(x);
        }
        if let Some(prev) = self.log.take() {
            let mut events = vec![prev.details["event"].clone()];
            if let Some(serde_json::Value::Array(a)) = prev.details.get("events") {
                events = a.clone();
            }
            events.push(event.into());
            details["events"] = serde_json::Value::Array(events);
        }
        self.log = Some(LogEntry { state, details });
    }

    /// Sends `kind` unless suppressed; returns whether it was sent.
    fn send(&mut self, kind: NotificationKind) -> bool {
        if self.suppressed || self.notify.is_some() {
            return false;
        }
        self.notify = Some(Notify {
            kind,
            sequence: self.s.sequence,
        });
        self.s.sequence += 1;
        self.s.repeat_from = Some(self.now);
        true
    }

    fn finish(self) -> Decision {
        let changed = self.prev.as_ref() != Some(&self.s);
        Decision {
            state: Some(self.s),
            notify: self.notify,
            log: self.log,
            changed,
        }
    }

    /// The delay has passed (or there is none): the alert triggers.
    fn trigger(&mut self, rule: &RuleOptions) {
        self.s.phase = Phase::Triggered;
        self.s.triggered_at = Some(self.now);
        self.s.recovered_at = None;
        self.s.trend = Trend::Alert;
        self.s.severity = rule.severity;
        self.s.ack = None;
        self.s.sent = 0;
        // Repeats count from the trigger even when the alert itself is not sent
        // (suppressed, or receivers still think the last episode open).
        self.s.repeat_from = Some(self.now);
        self.log(1, "alert", serde_json::json!({ "severity": rule.severity }));
        self.announce();
    }

    /// An open alert receivers have not heard of is announced when not suppressed.
    fn announce(&mut self) {
        if !self.s.notified && self.send(NotificationKind::Alert) {
            self.s.notified = true;
            self.s.sent += 1;
        }
    }

    fn expire_ack(&mut self) {
        let expired = self
            .s
            .ack
            .as_ref()
            .and_then(|a| a.until)
            .is_some_and(|u| u <= self.now);
        if expired {
            self.s.ack = None;
            self.s.repeat_from = Some(self.now);
            self.log(1, "ack_expired", serde_json::json!({}));
        }
    }

    fn repeat(&mut self, rule: &RuleOptions) {
        let due = rule.interval_secs > 0
            && self.s.ack.is_none()
            && self.s.notified
            && rule.max_notifications.is_none_or(|m| self.s.sent < m)
            && self
                .s
                .repeat_from
                .is_none_or(|from| self.now >= from + Duration::seconds(secs(rule.interval_secs)));
        if due && self.send(NotificationKind::Repeat) {
            self.s.sent += 1;
        }
    }

    /// The time-driven moves of an open alert: delay, ack expiry, announcement, repeats.
    fn tick(&mut self, rule: &RuleOptions) {
        match self.s.phase {
            Phase::Pending => {
                if self.now >= self.s.since + Duration::seconds(secs(rule.delay_secs)) {
                    self.trigger(rule);
                }
            }
            Phase::Triggered => {
                self.expire_ack();
                if self.s.ack.is_none() {
                    self.announce();
                }
                self.repeat(rule);
            }
            Phase::Recovered => self.owed_recovery(rule),
        }
    }

    fn owed_recovery(&mut self, rule: &RuleOptions) {
        // Recovery off: receivers are not told, and nothing stays owed.
        if self.s.notified && (!rule.recovery || self.send(NotificationKind::Recovery)) {
            self.s.notified = false;
        }
    }

    /// The condition holds again in a triggered alert: worse, better, or the same.
    fn still_matching(&mut self, faults: Faults, rule: &RuleOptions) {
        let (old, new) = (self.s.faults.count(), faults.count());
        let worse = new > old || rule.severity > self.s.severity;
        let better = !worse && (new < old || rule.severity < self.s.severity);
        self.s.faults = faults;
        self.s.severity = rule.severity;
        self.expire_ack();
        if worse {
            self.s.trend = Trend::Worse;
            let unack = self.s.ack.as_ref().is_some_and(|a| a.until_worse);
            if unack {
                self.s.ack = None;
            }
            self.log(3, "worse", serde_json::json!({ "was": old, "now": new }));
            if self.s.ack.is_none() {
                if self.s.notified {
                    self.send(NotificationKind::Worse);
                } else {
                    self.announce();
                }
            }
        } else if better {
            self.s.trend = Trend::Better;
            self.log(4, "better", serde_json::json!({ "was": old, "now": new }));
            if self.s.ack.is_none() && self.s.notified {
                self.send(NotificationKind::Better);
            }
        }
        if self.s.ack.is_none() {
            self.announce();
        }
        self.repeat(rule);
    }

    fn recover(&mut self, rule: &RuleOptions) {
        self.s.phase = Phase::Recovered;
        self.s.recovered_at = Some(self.now);
        self.s.ack = None;
        self.log(0, "recovered", serde_json::json!({}));
        self.owed_recovery(rule);
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 1_000_000)
}

fn unchanged(prev: Option<&AlertState>) -> Decision {
    Decision {
        state: prev.cloned(),
        notify: None,
        log: None,
        changed: false,
    }
}

/// A pending alert that did not trigger: gone if the alert never triggered, else back to
/// recovered (the row keeps its sequence).
fn cancel_pending(prev: &AlertState) -> Decision {
    if prev.triggered_at.is_none() && prev.recovered_at.is_none() && prev.sequence == 0 {
        return Decision {
            state: None,
            notify: None,
            log: None,
            changed: true,
        };
    }
    let mut s = prev.clone();
    s.phase = Phase::Recovered;
    Decision {
        state: Some(s),
        notify: None,
        log: None,
        changed: true,
    }
}

/// The rule was evaluated for this alert's subject: `matched` is its faults when the
/// condition holds (after `invert`: see [`crate::rule::outcomes`]), `None` when not.
pub fn on_evaluation(
    prev: Option<&AlertState>,
    matched: Option<Faults>,
    rule: &RuleOptions,
    ctx: &EvalContext,
) -> Decision {
    if ctx.maintenance == MaintenanceMode::Skip {
        return match prev {
            Some(p) if p.phase == Phase::Pending => cancel_pending(p),
            _ => unchanged(prev),
        };
    }
    match (prev, matched) {
        (None, None) => unchanged(None),
        (None, Some(faults)) => {
            let fresh = AlertState {
                phase: Phase::Recovered,
                since: ctx.now,
                triggered_at: None,
                recovered_at: None,
                trend: Trend::Alert,
                severity: rule.severity,
                faults: Faults::default(),
                ack: None,
                notified: false,
                sent: 0,
                sequence: 0,
                repeat_from: None,
            };
            let mut step = Step::new(&fresh, rule, ctx);
            step.prev = None;
            start(step, faults, rule)
        }
        (Some(p), Some(faults)) => {
            let mut step = Step::new(p, rule, ctx);
            match p.phase {
                Phase::Recovered => start(step, faults, rule),
                Phase::Pending => {
                    step.s.faults = faults;
                    step.tick(rule);
                    step.finish()
                }
                Phase::Triggered => {
                    step.still_matching(faults, rule);
                    step.finish()
                }
            }
        }
        (Some(p), None) => match p.phase {
            Phase::Pending => cancel_pending(p),
            Phase::Triggered => {
                let mut step = Step::new(p, rule, ctx);
                step.recover(rule);
                step.finish()
            }
            Phase::Recovered => {
                let mut step = Step::new(p, rule, ctx);
                step.owed_recovery(rule);
                step.finish()
            }
        },
    }
}

/// A new episode: pending, and triggered at once when there is no delay.
fn start(mut step: Step, faults: Faults, rule: &RuleOptions) -> Decision {
    step.s.phase = Phase::Pending;
    step.s.since = step.now;
    step.s.faults = faults;
    step.s.severity = rule.severity;
    step.tick(rule);
    step.finish()
}

/// Time passed without an evaluation (the master's pass): a pending alert whose delay
/// passed triggers (its condition held at the last evaluation), an expired
/// acknowledgement ends, a due repeat or an owed notification is sent.
pub fn on_tick(prev: &AlertState, rule: &RuleOptions, ctx: &EvalContext) -> Decision {
    if ctx.maintenance == MaintenanceMode::Skip {
        return if prev.phase == Phase::Pending {
            cancel_pending(prev)
        } else {
            unchanged(Some(prev))
        };
    }
    let mut step = Step::new(prev, rule, ctx);
    step.tick(rule);
    step.finish()
}

/// An operator acknowledges a triggered alert (again: replaces the acknowledgement).
pub fn on_ack(
    prev: &AlertState,
    ack: Ack,
    rule: &RuleOptions,
    ctx: &EvalContext,
) -> Result<Decision, StateError> {
    if prev.phase != Phase::Triggered {
        return Err(StateError::NotTriggered(phase_name(prev.phase)));
    }
    let mut step = Step::new(prev, rule, ctx);
    let extra = serde_json::json!({
        "note": ack.note, "by": ack.by, "until": ack.until, "until_worse": ack.until_worse,
    });
    step.s.ack = Some(ack);
    step.log(2, "acknowledged", extra);
    Ok(step.finish())
}

/// An operator withdraws an acknowledgement: triggered again, repeats count from now.
pub fn on_unack(
    prev: &AlertState,
    rule: &RuleOptions,
    ctx: &EvalContext,
) -> Result<Decision, StateError> {
    if prev.ack.is_none() {
        return Err(StateError::NotAcknowledged);
    }
    let mut step = Step::new(prev, rule, ctx);
    step.s.ack = None;
    step.s.repeat_from = Some(ctx.now);
    step.log(1, "unacknowledged", serde_json::json!({}));
    Ok(step.finish())
}

/// The key receivers drop duplicates by: the same for every attempt of one notification
/// on every node, different for every notification (`sequence` is per alert).
pub fn idempotency_key(
    rule_id: i64,
    device_id: i64,
    entity: Option<(&str, i64)>,
    kind: NotificationKind,
    sequence: u32,
) -> String {
    let (etype, eid) = match entity {
        Some((t, id)) if !t.is_empty() => (t, id),
        _ => ("device", 0),
    };
    format!(
        "lookout-alert:r{rule_id}:d{device_id}:{etype}:{eid}:{}:{sequence}",
        kind.as_str()
    )
}

#[cfg(test)]
mod tests;
