//! Alerting in the web role: the LibreNMS-shaped API (`/api/v0/alerts`, `/api/v0/rules`,
//! `/api/v0/logs/alertlog`, Lookout's `/api/v0/alerts/outbox`) and the pages under
//! `/alerts` (open alerts with ack/unack, log, rules with a test against now, transports,
//! outbox, maintenance windows).
//!
//! Roles are enforced here (the rest of the web crate does not check levels yet): reading
//! needs LibreNMS's global read-only level (5) because there are no per-device grants to
//! restrict a normal user (1) to their devices; every write (ack, rules, maintenance)
//! needs admin (10).
//!
//! Reads go to the store; writes that need the alert state machine or the rule catalog
//! (ack, unack, rule test) go through the process's [`lookout_alerting::engine::Engine`]
//! ([`crate::WebState::alerting`]). Rules are checked with the engine's own compiler before
//! they are stored, and every engine of the cluster picks them up on its next reload.
//!
//! Code map: `model` (alerts, log and outbox rows joined with devices and rules; filters),
//! `rules` (rule bodies from JSON or a form, rule JSON), `api` (JSON handlers), `pages`
//! (alerts, log, outbox), `ops_pages` (transports, maintenance) and `rule_pages` (rules),
//! HTML.

pub(crate) mod api;
pub(crate) mod model;
pub(crate) mod ops_pages;
pub(crate) mod pages;
pub(crate) mod rule_pages;
pub(crate) mod rules;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use lookout_alerting::engine::{Engine, EngineError};
use lookout_alerting::lang::RuleError;
use lookout_store::{StoreError, User};
use serde_json::{json, Value};

use crate::Shared;

use crate::access::Role;
pub(crate) use crate::access::{ADMIN_LEVEL, READ_LEVEL};

/// Global read or admin: alerts span devices, so a normal user sees none of them here.
pub(crate) fn can_read(u: &User) -> bool {
    Role::of_level(u.level) != Role::Normal
}

/// Admin: may acknowledge and edit rules, transports and maintenance.
pub(crate) fn can_write(u: &User) -> bool {
    Role::of_level(u.level) == Role::Admin
}

/// Why an alerts request failed: the status, a message for the client, and for a refused
/// rule the compiler's error (column, known names) so that it can be shown in place.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) rule: Option<(RuleError, String)>,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            rule: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn forbidden(need: i32) -> Failure {
        let what = if need >= ADMIN_LEVEL {
            "admin (level 10)"
        } else {
            "global read (level 5) or admin"
        };
        Failure::new(
            StatusCode::FORBIDDEN,
            format!("insufficient permissions: this needs {what}"),
        )
    }

    /// A refused rule: 400 with the compiler's column and known names.
    fn rule(name: &str, error: RuleError, expr: String) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            message: format!("rule {name:?} refused: {error}"),
            rule: Some((error, expr)),
        }
    }

    /// The engine is not running in this process (only tests build a web state so).
    pub(crate) fn no_engine() -> Failure {
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "alerting is not running on this web instance",
        )
    }

    /// The JSON body of the API's answer.
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({"status": "error", "message": self.message});
        if let Some((e, expr)) = &self.rule {
            v["column"] = json!(e.column);
            v["offset"] = json!(e.offset);
            v["error"] = json!(e.message);
            v["known"] = json!(e.known);
            v["caret"] = json!(e.render(expr));
        }
        v
    }

    /// As a page: the short HTML error page.
    pub(crate) fn into_page(self) -> Response {
        crate::error::error_page(self.status, &self.message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.to_json())).into_response()
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what, key } => Failure::new(
                StatusCode::CONFLICT,
                format!("{what} {key:?} already exists"),
            ),
            StoreError::NotFound { what, key } => {
                Failure::not_found(format!("{what} {key:?} not found"))
            }
            e => {
                // Details to the log; the client learns which dependency failed.
                tracing::error!(error = %e, "alerts request: store failed");
                Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable",
                )
            }
        }
    }
}

impl From<crate::error::WebError> for Failure {
    fn from(e: crate::error::WebError) -> Self {
        match e {
            crate::error::WebError::QueryStore(e) => Failure::from(e),
            e => {
                tracing::error!(error = %e, "alerts request failed");
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "an internal task failed")
            }
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        use lookout_alerting::state::StateError;
        match e {
            EngineError::Store(e) => Failure::from(e),
            EngineError::Rule { name, source } => {
                // The error's column is in the expression the caller sent (check_rule
                // compiles exactly that text).
                Failure::rule(&name, source, String::new())
            }
            EngineError::Options { name, source } => {
                Failure::bad_request(format!("rule {name:?} refused: {source}"))
            }
            EngineError::State(s @ (StateError::NotTriggered(_) | StateError::NotAcknowledged)) => {
                Failure::new(StatusCode::CONFLICT, s.to_string())
            }
            EngineError::AlertNotFound(id) => {
                Failure::not_found(format!("alert {id} does not exist"))
            }
            EngineError::RuleNotFound(id) => Failure::new(
                StatusCode::CONFLICT,
                format!("the rule of this alert ({id}) no longer exists"),
            ),
            EngineError::Conflict => Failure::new(
                StatusCode::CONFLICT,
                "the alert changed meanwhile; reload and try again",
            ),
            e @ EngineError::BadState(..) => {
                tracing::error!(error = %e, "alert row unreadable");
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

/// Adds the rule text to a rule failure so its caret can be drawn.
pub(crate) fn with_expr(mut f: Failure, expr: &str) -> Failure {
    if let Some((_, e)) = &mut f.rule {
        *e = expr.to_string();
    }
    f
}

/// The engine of this process, or 503 when the web state was built without one.
pub(crate) fn engine(ctx: &Shared) -> Result<&Arc<Engine>, Failure> {
    ctx.state.alerting.as_ref().ok_or_else(Failure::no_engine)
}

/// After a write the engine's catalog is reread at once, so this instance's next ack or
/// test sees it; other nodes reload on their own schedule. A failed reload is logged: the
/// write itself is done.
pub(crate) async fn reload(ctx: &Shared) {
    if let Some(e) = &ctx.state.alerting {
        if let Err(err) = e.reload().await {
            tracing::warn!(error = %err, "alert catalog not reloaded after a change");
        }
    }
}

/// A time an operator typed: RFC 3339 (`2026-01-02T03:04:05Z`), LibreNMS's
/// `YYYY-MM-DD HH:MM[:SS]` (UTC), or an offset from `now` like `90s`, `30m`, `2h`, `1d`.
pub(crate) fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(v) = DateTime::parse_from_rfc3339(t) {
        return Ok(v.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(v) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(v.and_utc());
        }
    }
    match parse_duration(t) {
        Ok(secs) => i64::try_from(secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| format!("{text:?} is too far in the future")),
        Err(_) => Err(format!(
            "{text:?} is not a time: write RFC 3339 (2026-01-02T03:04:05Z), \
             YYYY-MM-DD HH:MM (UTC) or a duration from now (30m, 2h, 1d)"
        )),
    }
}

/// Seconds from `300`, `90s`, `5m`, `2h`, `1d` (LibreNMS's rule delay/interval forms).
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration (seconds, or a number with s, m, h or d)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Seconds as LibreNMS shows rule delays: `0`, `90s`, `5m`, `2h`, `1d`.
pub(crate) fn show_duration(secs: u64) -> String {
    match secs {
        0 => "0".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("300"), Ok(300));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration(" 2h "), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(show_duration(0), "0");
        assert_eq!(show_duration(300), "5m");
        assert_eq!(show_duration(90), "90s");
        assert_eq!(show_duration(7200), "2h");
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            parse_time("2026-01-02T05:00:00+01:00", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 2, 4, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("2026-01-03 10:30", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 3, 10, 30, 0).unwrap()
        );
        assert_eq!(
            parse_time("2h", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 2, 5, 4, 5).unwrap()
        );
        assert!(parse_time("tomorrow", now).is_err());
    }
}
