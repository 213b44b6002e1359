//! `GET /api/v0/logs/eventlog[/{hostname}]` and `GET /api/v0/logs/authlog`, paged as in
//! LibreNMS: `start` (rows to skip), `limit` (at most 1000), `from` and `to` (unix seconds or
//! `-1d`, `now-6h`, dates; see `timespec`). A bad parameter is a 400 naming it.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::api::{ApiPath, ApiUser};
use crate::error::ApiError;
use crate::view::librenms_time;
use crate::Shared;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Largest page.
const MAX_LIMIT: i64 = 1000;

pub(crate) struct Page {
    pub(crate) start: i64,
    pub(crate) limit: i64,
    pub(crate) from: i64,
    pub(crate) to: i64,
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// `start`, `limit`, `from`, `to` of a query; the default range is everything up to now.
pub(crate) fn page(q: Params, default_limit: i64) -> Result<Page, ApiError> {
    let Query(q) = q.map_err(|e| bad(format!("bad query string: {e}")))?;
    let number = |key: &str, default: i64, max: i64| -> Result<i64, ApiError> {
        match q.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| bad(format!("{key}={s:?}: expected a number from 0 to {max}"))),
        }
    };
    let start = number("start", 0, i64::from(i32::MAX))?;
    let limit = number("limit", default_limit, MAX_LIMIT)?;
    let now = Utc::now().timestamp();
    let time = |key: &str, default: i64| -> Result<i64, ApiError> {
        match q.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => crate::timespec::parse(s, now).map_err(|e| bad(format!("{key}: {e}"))),
        }
    };
    // Everything by default: from the epoch to now.
    let from = time("from", 0)?;
    let to = time("to", now)?;
    if from > to {
        return Err(bad(format!("from ({from}) is after to ({to})")));
    }
    Ok(Page {
        start,
        limit,
        from,
        to,
    })
}

fn ts(secs: i64) -> Result<chrono::DateTime<Utc>, ApiError> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| bad(format!("{secs} is out of the supported time range")))
}

async fn eventlog_of(
    ctx: &Shared,
    user: &ApiUser,
    device: Option<lookout_core::Device>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let p = page(q, 50)?;
    let store = &ctx.state.store;
    let device_id = device.as_ref().map(|d| d.device_id);
    let mut events = store
        // `to` names a second: everything within it is included.
        .events_page(
            device_id,
            ts(p.from)?,
            ts(p.to.saturating_add(1))?,
            p.start,
            p.limit,
        )
        .await?;
    // A normal user sees the events of granted devices only (and none of no device).
    if !user.access.sees_all() {
        events.retain(|e| e.device_id.is_some_and(|d| user.access.can_see(d)));
    }
    let mut hostnames = HashMap::new();
    if let Some(d) = &device {
        hostnames.insert(d.device_id, d.hostname.clone());
    } else {
        for d in store.devices().await? {
            hostnames.insert(d.device_id, d.hostname);
        }
    }
    let logs: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "event_id": e.event_id,
                "device_id": e.device_id,
                "hostname": e.device_id.and_then(|d| hostnames.get(&d)),
                "datetime": librenms_time(&e.datetime),
                "type": e.kind,
                "message": e.message,
                "severity": e.severity.level(),
                "reference": e.reference,
            })
        })
        .collect();
    Ok(Json(json!({
        "status": "ok",
        "count": logs.len(),
        "logs": logs,
    })))
}

/// `GET /api/v0/logs/eventlog`
pub(crate) async fn eventlog(
    user: ApiUser,
    State(ctx): State<Shared>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    eventlog_of(&ctx, &user, None, q).await
}

/// `GET /api/v0/logs/eventlog/{hostname}`
pub(crate) async fn device_eventlog(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let d = user.device(&ctx, &hostname).await?;
    eventlog_of(&ctx, &user, Some(d), q).await
}

/// `GET /api/v0/logs/authlog` (admin): every login attempt with its client address.
pub(crate) async fn authlog(
    user: ApiUser,
    State(ctx): State<Shared>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let p = page(q, 50)?;
    let rows = ctx.state.store.authlog(p.start, p.limit).await?;
    let logs: Vec<Value> = rows
        .iter()
        .filter(|r| (p.from..=p.to).contains(&r.datetime))
        .map(|r| {
            json!({
                "id": r.id,
                "datetime": Utc.timestamp_opt(r.datetime, 0).single().map(|t| librenms_time(&t)),
                "user": r.user,
                "address": r.address,
                "result": r.result,
            })
        })
        .collect();
    Ok(Json(json!({
        "status": "ok",
        "count": logs.len(),
        "logs": logs,
    })))
}
