//! Lookout alerting: rules over the stored state of devices and their entities, the alert
//! state machine, templates, transports and the durable delivery outbox.
//!
//! Pure parts take values and time in and give decisions out (unit-tested without a
//! database): [`lang`] (the rule expression language), [`rule`] (rule options and the
//! built-in defaults), [`snapshot`] (a device's stored state as rule fields), [`state`] (alert
//! transitions), [`template`] (subject/body rendering) and [`payload`] (each transport's
//! request shape). I/O lives at the edges: [`transport`] (HTTP, SMTP, scripts) and
//! [`engine`] (the store hooks: evaluation inside the poll's fenced commit, the master's
//! time-based pass and outbox delivery fenced by the master lease).
//!
//! See docs/alerting.md for the language, the defaults and what is promised on fail-over.

pub mod defaults;
pub mod engine;
pub mod lang;
pub mod notification;
pub mod payload;
pub mod rule;
pub mod snapshot;
pub mod state;
pub mod template;
pub mod transport;

pub use notification::{EntityRef, Notification, NotificationKind};
