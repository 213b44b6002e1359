//! Transitions of the alert state machine.

use super::*;
use crate::snapshot::tests::t;
use serde_json::json;

fn faults(n: usize) -> Faults {
    Faults((0..n).map(|i| json!({ "entity_id": i })).collect())
}

fn ctx(secs: i64) -> EvalContext {
    EvalContext::at(t(secs))
}

fn opts() -> RuleOptions {
    RuleOptions::default()
}

/// The kinds notified along a run, and the final state.
struct Run {
    rule: RuleOptions,
    state: Option<AlertState>,
    sent: Vec<(NotificationKind, u32)>,
    logs: Vec<i32>,
}

impl Run {
    fn new(rule: RuleOptions) -> Self {
        Run {
            rule,
            state: None,
            sent: Vec::new(),
            logs: Vec::new(),
        }
    }

    fn take(&mut self, d: Decision) -> Option<NotificationKind> {
        if let Some(n) = d.notify {
            self.sent.push((n.kind, n.sequence));
        }
        if let Some(l) = &d.log {
            self.logs.push(l.state);
        }
        self.state = d.state;
        d.notify.map(|n| n.kind)
    }

    fn eval(&mut self, at: i64, matched: Option<usize>) -> Option<NotificationKind> {
        self.eval_in(at, matched, MaintenanceMode::Off)
    }

    fn eval_in(
        &mut self,
        at: i64,
        matched: Option<usize>,
        m: MaintenanceMode,
    ) -> Option<NotificationKind> {
        let c = EvalContext {
            now: t(at),
            maintenance: m,
        };
        let d = on_evaluation(self.state.as_ref(), matched.map(faults), &self.rule, &c);
        self.take(d)
    }

    fn tick(&mut self, at: i64) -> Option<NotificationKind> {
        self.tick_in(at, MaintenanceMode::Off)
    }

    fn tick_in(&mut self, at: i64, m: MaintenanceMode) -> Option<NotificationKind> {
        let s = self.state.clone()?;
        let d = on_tick(
            &s,
            &self.rule,
            &EvalContext {
                now: t(at),
                maintenance: m,
            },
        );
        self.take(d)
    }

    fn st(&self) -> &AlertState {
        self.state.as_ref().unwrap_or_else(|| panic!("no state"))
    }

    fn librenms(&self) -> i32 {
        self.state.as_ref().map_or(-1, AlertState::librenms_state)
    }
}

use NotificationKind::{Alert, Better, Recovery, Repeat, Worse};

#[test]
fn alert_then_recovery_without_delay() {
    let mut r = Run::new(opts());
    assert_eq!(r.eval(0, None), None);
    assert!(r.state.is_none());
    assert_eq!(r.eval(0, Some(1)), Some(Alert));
    assert_eq!(
        (r.st().phase, r.librenms(), r.st().sent),
        (Phase::Triggered, 1, 1)
    );
    assert!(r.st().is_open());
    // Still matching, same faults: nothing (no repeats configured).
    assert_eq!(r.eval(300, Some(1)), None);
    assert_eq!(r.tick(10_000), None);
    assert_eq!(r.eval(600, None), Some(Recovery));
    assert_eq!((r.st().phase, r.librenms()), (Phase::Recovered, 0));
    assert!(!r.st().is_open());
    // A new episode continues the sequence.
    assert_eq!(r.eval(900, Some(1)), Some(Alert));
    assert_eq!(r.sent, [(Alert, 0), (Recovery, 1), (Alert, 2)]);
    assert_eq!(r.logs, [1, 0, 1]);
    let json = r.st().to_json();
    assert_eq!(AlertState::from_json(&json).ok().as_ref(), r.state.as_ref());
}

#[test]
fn delay_holds_back_the_first_notification() {
    let mut r = Run::new(RuleOptions {
        delay_secs: 300,
        ..opts()
    });
    assert_eq!(r.eval(0, Some(1)), None);
    assert_eq!((r.st().phase, r.librenms()), (Phase::Pending, 0));
    assert!(r.st().is_open());
    assert_eq!(r.tick(299), None);
    // Cleared before the delay: no alert, no row (it never triggered).
    assert_eq!(r.eval(200, None), None);
    assert!(r.state.is_none());
    assert_eq!(r.eval(1000, Some(1)), None);
    assert_eq!(r.tick(1300), Some(Alert));
    assert_eq!(r.st().triggered_at, Some(t(1300)));
    assert_eq!(r.st().since, t(1000));
    // An evaluation past the delay triggers too.
    let mut r = Run::new(RuleOptions {
        delay_secs: 300,
        ..opts()
    });
    r.eval(0, Some(1));
    assert_eq!(r.eval(300, Some(2)), Some(Alert));
    // Pending after an earlier episode falls back to recovered, keeping the sequence.
    r.eval(600, None);
    r.eval(900, Some(1));
    assert_eq!(r.st().phase, Phase::Pending);
    r.eval(1000, None);
    assert_eq!((r.st().phase, r.st().sequence), (Phase::Recovered, 2));
}

#[test]
fn repeats_every_interval_up_to_max() {
    let mut r = Run::new(RuleOptions {
        interval_secs: 600,
        max_notifications: Some(3),
        ..opts()
    });
    r.eval(0, Some(1));
    assert_eq!(r.tick(599), None);
    assert_eq!(r.tick(600), Some(Repeat));
    assert_eq!(r.eval(900, Some(1)), None);
    assert_eq!(r.eval(1200, Some(1)), Some(Repeat));
    // Max 3 (the alert and two repeats) reached.
    assert_eq!(r.tick(5000), None);
    assert_eq!(r.st().sent, 3);
    assert_eq!(r.eval(6000, None), Some(Recovery));
    assert_eq!(
        r.sent,
        [(Alert, 0), (Repeat, 1), (Repeat, 2), (Recovery, 3)]
    );
}

#[test]
fn worse_and_better_follow_the_fault_count_and_severity() {
    let mut r = Run::new(opts());
    r.eval(0, Some(1));
    assert_eq!(r.eval(300, Some(3)), Some(Worse));
    assert_eq!(r.librenms(), 3);
    assert_eq!(r.eval(600, Some(2)), Some(Better));
    assert_eq!(r.librenms(), 4);
    assert_eq!(r.eval(900, Some(2)), None);
    assert_eq!(r.st().faults.count(), 2);
    // The rule's severity was raised: worse.
    r.rule.severity = Severity::Critical;
    if let Some(s) = r.state.as_mut() {
        s.severity = Severity::Warning;
    }
    assert_eq!(r.eval(1200, Some(2)), Some(Worse));
    assert_eq!(r.logs, [1, 3, 4, 3]);
}

#[test]
fn recovery_off_recovers_silently() {
    let mut r = Run::new(RuleOptions {
        recovery: false,
        ..opts()
    });
    r.eval(0, Some(1));
    assert_eq!(r.eval(300, None), None);
    assert_eq!(r.st().phase, Phase::Recovered);
    assert!(!r.st().notified);
    assert_eq!(r.logs, [1, 0]);
    assert_eq!(r.eval(600, Some(1)), Some(Alert));
}

#[test]
fn mute_keeps_state_and_announces_when_lifted() {
    let mut r = Run::new(RuleOptions {
        mute: true,
        ..opts()
    });
    assert_eq!(r.eval(0, Some(1)), None);
    assert_eq!((r.st().phase, r.st().notified), (Phase::Triggered, false));
    assert_eq!(r.eval(300, Some(2)), None);
    r.rule.mute = false;
    // Still open, never announced: the alert goes out now.
    assert_eq!(r.tick(400), Some(Alert));
    // Muted again: the recovery is owed, then sent.
    r.rule.mute = true;
    assert_eq!(r.eval(600, None), None);
    assert!(r.st().notified);
    r.rule.mute = false;
    assert_eq!(r.tick(700), Some(Recovery));
    assert_eq!(r.tick(800), None);
    // Triggered and recovered while muted: receivers never hear of it.
    let mut r = Run::new(RuleOptions {
        mute: true,
        ..opts()
    });
    r.eval(0, Some(1));
    r.eval(300, None);
    r.rule.mute = false;
    assert_eq!(r.tick(400), None);
    assert!(r.sent.is_empty());
}

#[test]
fn maintenance_skip_and_mute() {
    let mut r = Run::new(opts());
    assert_eq!(r.eval_in(0, Some(1), MaintenanceMode::Skip), None);
    assert!(r.state.is_none());
    // Mute: state, no notification; announced after the window.
    assert_eq!(r.eval_in(0, Some(1), MaintenanceMode::Mute), None);
    assert_eq!(r.st().phase, Phase::Triggered);
    assert_eq!(r.tick_in(100, MaintenanceMode::Mute), None);
    assert_eq!(r.tick(200), Some(Alert));
    // Skip freezes an open alert: no recovery during the window, sent after.
    assert_eq!(r.eval_in(300, None, MaintenanceMode::Skip), None);
    assert_eq!(r.st().phase, Phase::Triggered);
    assert_eq!(r.eval(600, None), Some(Recovery));
    // Skip drops a pending alert.
    let mut r = Run::new(RuleOptions {
        delay_secs: 300,
        ..opts()
    });
    r.eval(0, Some(1));
    assert_eq!(r.tick_in(400, MaintenanceMode::Skip), None);
    assert!(r.state.is_none());
    assert_eq!(
        MaintenanceMode::from_behavior(Some(0)),
        MaintenanceMode::Skip
    );
    assert_eq!(
        MaintenanceMode::from_behavior(Some(1)),
        MaintenanceMode::Mute
    );
    assert_eq!(MaintenanceMode::from_behavior(None), MaintenanceMode::Off);
}

fn ack(at: i64, until: Option<i64>, until_worse: bool) -> Ack {
    Ack {
        at: t(at),
        by: Some("ops".into()),
        note: "on it".into(),
        until: until.map(t),
        until_worse,
    }
}

#[test]
fn ack_stops_repeats_until_it_expires_or_is_withdrawn() {
    let rule = RuleOptions {
        interval_secs: 600,
        ..opts()
    };
    let mut r = Run::new(rule.clone());
    // Nothing to acknowledge before it triggers.
    assert!(on_ack(
        &{
            let mut p = Run::new(RuleOptions {
                delay_secs: 60,
                ..opts()
            });
            p.eval(0, Some(1));
            p.st().clone()
        },
        ack(0, None, false),
        &rule,
        &ctx(0)
    )
    .is_err());
    r.eval(0, Some(1));
    let d = on_ack(r.st(), ack(100, Some(2000), false), &rule, &ctx(100))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.log.as_ref().map(|l| l.state), Some(2));
    assert_eq!(
        d.log.as_ref().map(|l| l.details["note"].clone()),
        Some(json!("on it"))
    );
    r.take(d);
    assert_eq!((r.librenms(), r.st().note()), (2, Some("on it")));
    assert_eq!(r.tick(1200), None);
    // Worse while acknowledged (not until_worse): noted, not sent, still acknowledged.
    assert_eq!(r.eval(1300, Some(2)), None);
    assert_eq!(r.librenms(), 2);
    // The ack expires: repeats resume an interval later.
    assert_eq!(r.tick(2000), None);
    assert_eq!(r.librenms(), 3);
    assert_eq!(r.tick(2599), None);
    assert_eq!(r.tick(2600), Some(Repeat));
    // Withdrawn by hand.
    let d =
        on_ack(r.st(), ack(2700, None, false), &rule, &ctx(2700)).unwrap_or_else(|e| panic!("{e}"));
    r.take(d);
    assert_eq!(r.tick(4000), None);
    let d = on_unack(r.st(), &rule, &ctx(4000)).unwrap_or_else(|e| panic!("{e}"));
    r.take(d);
    assert!(on_unack(r.st(), &rule, &ctx(4000)).is_err());
    assert_eq!(r.tick(4599), None);
    assert_eq!(r.tick(4600), Some(Repeat));
    // Recovery while acknowledged is sent and ends the ack.
    let d =
        on_ack(r.st(), ack(4700, None, false), &rule, &ctx(4700)).unwrap_or_else(|e| panic!("{e}"));
    r.take(d);
    assert_eq!(r.eval(4800, None), Some(Recovery));
    assert!(r.st().ack.is_none());
}

#[test]
fn ack_until_worse_ends_on_worse() {
    let rule = opts();
    let mut r = Run::new(rule.clone());
    r.eval(0, Some(1));
    let d = on_ack(r.st(), ack(10, None, true), &rule, &ctx(10)).unwrap_or_else(|e| panic!("{e}"));
    r.take(d);
    assert_eq!(r.eval(300, Some(1)), None);
    // Better does not end it.
    assert_eq!(r.eval(400, Some(1)), None);
    assert_eq!(r.eval(600, Some(2)), Some(Worse));
    assert_eq!((r.librenms(), r.st().ack.is_none()), (3, true));
}

#[test]
fn unchanged_decisions_say_so() {
    let rule = opts();
    let d = on_evaluation(None, Some(faults(1)), &rule, &ctx(0));
    assert!(d.changed);
    let s = d.state.unwrap_or_else(|| panic!("state"));
    let again = on_evaluation(Some(&s), Some(faults(1)), &rule, &ctx(300));
    assert!(!again.changed && again.notify.is_none() && again.log.is_none());
    assert!(!on_tick(&s, &rule, &ctx(300)).changed);
    // Other faults of the same count: changed (details), nothing sent.
    let other = Faults(vec![json!({ "entity_id": 9 })]);
    let d = on_evaluation(Some(&s), Some(other), &rule, &ctx(300));
    assert!(d.changed && d.notify.is_none());
}

#[test]
fn idempotency_keys_are_stable_text() {
    assert_eq!(
        idempotency_key(3, 7, Some(("ports", 12)), Alert, 0),
        "lookout-alert:r3:d7:ports:12:alert:0"
    );
    assert_eq!(
        idempotency_key(3, 7, None, Recovery, 4),
        "lookout-alert:r3:d7:device:0:recovery:4"
    );
    assert_eq!(
        idempotency_key(3, 7, Some(("", 0)), Recovery, 4),
        idempotency_key(3, 7, None, Recovery, 4)
    );
}

#[test]
fn repeats_count_from_the_trigger_when_the_alert_was_muted() {
    let mut r = Run::new(RuleOptions {
        interval_secs: 600,
        mute: true,
        ..opts()
    });
    r.eval(0, Some(1));
    r.rule.mute = false;
    // Announced late; the first repeat is an interval after the announcement.
    assert_eq!(r.tick(500), Some(Alert));
    assert_eq!(r.tick(1000), None);
    assert_eq!(r.tick(1100), Some(Repeat));
}
