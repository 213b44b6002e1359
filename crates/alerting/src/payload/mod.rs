//! Request shapes of the HTTP transports, sans-IO: each family's builder takes the
//! notification, its rendered texts and the transport's options, and returns the JSON
//! (and, where it depends on the notification, the path) that the transport sends. No
//! sockets, no clock: unit-tested field by field against each receiver's documented API.
//!
//! Families: [`webhook`] (the notification itself), [`slack`], [`teams`], [`discord`],
//! [`telegram`], [`pagerduty`], [`opsgenie`], [`alertmanager`].

use crate::notification::{Notification, NotificationKind};

pub mod alertmanager;
pub mod discord;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod webhook;

/// A notification's rendered templates: the subject (chat title, email subject, summary)
/// and the body (chat text, email body, description).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Texts {
    pub title: String,
    pub body: String,
}

/// The three colours of a notification, as chat receivers show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// A recovery, or better.
    Good,
    /// Severity warning (or an alert of unknown severity).
    Warning,
    /// Severity critical.
    Danger,
    /// A test, or severity ok.
    Info,
}

impl Tone {
    pub fn of(n: &Notification) -> Tone {
        match n.kind {
            NotificationKind::Recovery | NotificationKind::Better => Tone::Good,
            NotificationKind::Test => Tone::Info,
            _ => match n.severity.as_str() {
                "critical" => Tone::Danger,
                "ok" => Tone::Info,
                _ => Tone::Warning,
            },
        }
    }

    /// RGB, as Discord's integer and Slack's/Teams' hex colours.
    pub fn rgb(self) -> u32 {
        match self {
            Tone::Good => 0x2E_B8_86,
            Tone::Warning => 0xDA_A0_38,
            Tone::Danger => 0xD5_00_00,
            Tone::Info => 0x43_9F_E0,
        }
    }

    /// `#2eb886`.
    pub fn hex(self) -> String {
        format!("#{:06x}", self.rgb())
    }
}

/// Whether the notification ends the alert at the receiver (close, resolve, endsAt).
pub fn is_recovery(n: &Notification) -> bool {
    n.kind == NotificationKind::Recovery
}

/// The receiver-side identity of an alert, the same for all its notifications, so that
/// receivers that deduplicate (PagerDuty's dedup_key, Opsgenie's alias) fold an alert's
/// repeats into one incident and close it on recovery. A test gets its own per send.
pub fn alert_identity(n: &Notification) -> String {
    if n.kind == NotificationKind::Test {
        format!("lookout-test-{}", n.idempotency_key.replace(':', "-"))
    } else {
        format!("lookout-alert-{}", n.alert_id)
    }
}

/// The facts chat cards show beside the text: (name, value), empty values left out.
pub fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Device", n.hostname.clone()),
        ("Severity", n.severity.clone()),
        ("State", n.kind.as_str().to_owned()),
        ("Rule", n.rule_name.clone()),
    ];
    if let Some(e) = &n.entity {
        f.push(("Entity", e.label.clone()));
    }
    if let Some(l) = n.location.as_ref().filter(|l| !l.is_empty()) {
        f.push(("Location", l.clone()));
    }
    if n.kind == NotificationKind::Recovery {
        f.push(("Elapsed", crate::template::human_duration(n.elapsed_secs())));
    }
    f
}

/// At most `max` characters, an ellipsis marking the cut (receivers refuse longer fields).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Joins a base URL and a path without doubling or losing the slash.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::template::example;

    #[test]
    fn tones() {
        let mut n = example();
        assert_eq!(Tone::of(&n), Tone::Danger);
        n.severity = "warning".into();
        assert_eq!(Tone::of(&n), Tone::Warning);
        n.kind = NotificationKind::Recovery;
        assert_eq!(Tone::of(&n), Tone::Good);
        assert_eq!(Tone::Good.hex(), "#2eb886");
        n.kind = NotificationKind::Test;
        assert_eq!(Tone::of(&n), Tone::Info);
    }

    #[test]
    fn identity_is_per_alert_and_per_test_send() {
        let mut n = example();
        assert_eq!(alert_identity(&n), "lookout-alert-42");
        n.sequence = 5;
        n.kind = NotificationKind::Recovery;
        assert_eq!(alert_identity(&n), "lookout-alert-42");
        n.kind = NotificationKind::Test;
        n.idempotency_key = "lookout-test:abc:1".into();
        assert_eq!(alert_identity(&n), "lookout-test-lookout-test-abc-1");
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 4), "hél…");
        assert_eq!(join_url("http://a:1/", "/v2/x"), "http://a:1/v2/x");
        assert_eq!(join_url("http://a:1/base", "v2/x"), "http://a:1/base/v2/x");
    }

    #[test]
    fn facts_skip_what_is_unknown() {
        let mut n = example();
        n.location = None;
        n.entity = None;
        let names: Vec<_> = facts(&n).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["Device", "Severity", "State", "Rule"]);
        n.kind = NotificationKind::Recovery;
        assert_eq!(facts(&n).last().unwrap(), &("Elapsed", "5m 0s".to_owned()));
    }
}
