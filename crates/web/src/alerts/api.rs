//! Alert endpoints of `/api/v0`, in LibreNMS's paths and shapes (`{"status":"ok","count":N,
//! "alerts":[...]}`, errors `{"status":"error","message":...}` with a 4xx for bad input):
//!
//! - `GET /alerts` (`state=0..4[,..]|all`, `severity=`, `device=`, `rule=`; open alerts by
//!   default), `GET /alerts/{id}`, `PUT /alerts/{id}` (acknowledge: `note`, `until_clear`
//!   (default true: acknowledged until it recovers; false: alerting again when it gets
//!   worse), `until` RFC 3339), `PUT /alerts/unmute/{id}` (withdraw the acknowledgement).
//! - `GET/POST /rules`, `PUT /rules` with `rule_id` in the body (LibreNMS's edit),
//!   `GET/PUT/DELETE /rules/{id}` (PUT changes the fields given), `POST /rules/test`.
//! - `GET /logs/alertlog[/{hostname}]` (`start`, `limit`, `device`).
//! - Lookout's `GET /alerts/outbox` (`state=pending,sending,failed,delivered|all`, `limit`):
//!   messages not yet delivered by default, each with its delivery attempts.
//!
//! Reads need level 5, writes level 10 (see the module above).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use lookout_alerting::engine::ops::AckRequest;
use lookout_alerting::engine::EngineError;
use lookout_store::AlertRule;
use serde_json::{json, Value};

use super::model::{self, AlertFilter, Names};
use super::rules::{broken_rules, rule_json, RuleEdit};
use super::{can_read, can_write, engine, parse_time, reload, Failure, ADMIN_LEVEL, READ_LEVEL};
use crate::api::{ApiPath, ApiUser};
use crate::Shared;

type ApiResult = Result<Json<Value>, Failure>;
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn reader(u: &ApiUser) -> Result<(), Failure> {
    if can_read(&u.user) {
        Ok(())
    } else {
        Err(Failure::forbidden(READ_LEVEL))
    }
}

fn writer(u: &ApiUser) -> Result<(), Failure> {
    if can_write(&u.user) {
        Ok(())
    } else {
        Err(Failure::forbidden(ADMIN_LEVEL))
    }
}

fn params(q: Params) -> Result<HashMap<String, String>, Failure> {
    q.map(|Query(q)| q)
        .map_err(|e| Failure::bad_request(format!("bad query string: {e}")))
}

/// A JSON body; an empty one is `{}` (LibreNMS clients send none to acknowledge).
fn body_json(body: &Bytes) -> Result<Value, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| Failure::bad_request(format!("the body is not valid JSON: {e}")))
}

fn number(q: &HashMap<String, String>, key: &str, default: u32, max: u32) -> Result<u32, Failure> {
    match q.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(Failure::bad_request(format!(
                "{key}={s:?}: expected a number from 0 to {max}"
            ))),
        },
    }
}

/// `GET /api/v0/alerts`
pub(crate) async fn list_alerts(u: ApiUser, State(ctx): State<Shared>, q: Params) -> ApiResult {
    reader(&u)?;
    let filter = AlertFilter::parse(&ctx.state.store, &params(q)?).await?;
    let mut alerts = model::alerts(&ctx.state.store, &filter).await?;
    // LibreNMS orders its list by time, newest first.
    alerts.sort_by_key(|a| std::cmp::Reverse(a.row.timestamp));
    let list: Vec<Value> = alerts.iter().map(model::AlertView::to_json).collect();
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "alerts": list}),
    ))
}

/// `GET /api/v0/alerts/{id}`
pub(crate) async fn get_alert(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    reader(&u)?;
    let a = model::alert(&ctx.state.store, id).await?;
    Ok(Json(
        json!({"status": "ok", "count": 1, "alerts": [a.to_json()]}),
    ))
}

/// What `PUT /api/v0/alerts/{id}` asks for, read from its JSON body.
pub(crate) fn ack_request(body: &Value, by: &str) -> Result<AckRequest, Failure> {
    let Some(obj) = body.as_object() else {
        return Err(Failure::bad_request("the body must be a JSON object"));
    };
    let note = match obj.get("note") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(Failure::bad_request(format!(
                "note: expected a string, got {v}"
            )))
        }
    };
    if note.chars().count() > 2000 {
        return Err(Failure::bad_request("note: at most 2000 characters"));
    }
    let until_clear = match obj.get("until_clear") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" => false,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => false,
        Some(Value::Number(n)) if n.as_i64() == Some(1) => true,
        Some(v) => {
            return Err(Failure::bad_request(format!(
                "until_clear: expected true or false, got {v}"
            )))
        }
    };
    let now = Utc::now();
    let until = match obj.get("until") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            let t = parse_time(s, now).map_err(|e| Failure::bad_request(format!("until: {e}")))?;
            if t <= now {
                return Err(Failure::bad_request(format!("until: {s:?} is in the past")));
            }
            Some(t)
        }
        Some(v) => {
            return Err(Failure::bad_request(format!(
                "until: expected a time, got {v}"
            )))
        }
    };
    Ok(AckRequest {
        note,
        by: Some(by.to_string()),
        until,
        until_worse: !until_clear,
    })
}

/// Runs an operator action; when the alert's rule is not in this instance's catalog yet
/// (added through another instance moments ago), reloads once and tries again.
pub(crate) async fn with_fresh_catalog<F, Fut>(
    ctx: &Shared,
    action: F,
) -> Result<lookout_store::AlertRow, Failure>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<lookout_store::AlertRow, EngineError>>,
{
    match action().await {
        Err(EngineError::RuleNotFound(_)) => {
            engine(ctx)?.reload().await?;
            Ok(action().await?)
        }
        r => Ok(r?),
    }
}

/// `PUT /api/v0/alerts/{id}`: acknowledge.
pub(crate) async fn ack_alert(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult {
    writer(&u)?;
    let req = ack_request(&body_json(&body)?, &u.user.username)?;
    let e = engine(&ctx)?.clone();
    with_fresh_catalog(&ctx, || e.acknowledge(id, req.clone())).await?;
    tracing::info!(user = %u.user.username, alert_id = id, "alert acknowledged");
    let a = model::alert(&ctx.state.store, id).await?;
    Ok(Json(json!({
        "status": "ok",
        "message": "Alert has been acknowledged",
        "count": 1,
        "alerts": [a.to_json()],
    })))
}

/// `PUT /api/v0/alerts/unmute/{id}`: the acknowledgement is withdrawn (LibreNMS's name).
pub(crate) async fn unmute_alert(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    writer(&u)?;
    let e = engine(&ctx)?.clone();
    with_fresh_catalog(&ctx, || e.unacknowledge(id)).await?;
    tracing::info!(user = %u.user.username, alert_id = id, "alert unacknowledged");
    let a = model::alert(&ctx.state.store, id).await?;
    Ok(Json(json!({
        "status": "ok",
        "message": "Alert has been unmuted",
        "count": 1,
        "alerts": [a.to_json()],
    })))
}

/// `GET /api/v0/alerts/outbox`
pub(crate) async fn outbox(u: ApiUser, State(ctx): State<Shared>, q: Params) -> ApiResult {
    reader(&u)?;
    let q = params(q)?;
    let limit = number(&q, "limit", 100, 1000)?;
    const ALL: [&str; 4] = ["failed", "sending", "pending", "delivered"];
    let states: Vec<&str> = match q.get("state").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => model::UNDELIVERED.to_vec(),
        Some("all") => ALL.to_vec(),
        Some(s) => s
            .split(',')
            .map(str::trim)
            .map(|v| {
                ALL.iter().copied().find(|a| *a == v).ok_or_else(|| {
                    Failure::bad_request(format!(
                        "state={v:?}: expected pending, sending, delivered, failed or all"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let store = &ctx.state.store;
    let rows = model::outbox(store, &states, limit).await?;
    let names = model::transport_names(store).await?;
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        let attempts = store.delivery_attempts(r.id).await?;
        list.push(model::outbox_json(r, &attempts, &names));
    }
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "messages": list}),
    ))
}

// --- rules

async fn stored_rule(ctx: &Shared, id: i64) -> Result<AlertRule, Failure> {
    ctx.state
        .store
        .alert_rules()
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| Failure::not_found(format!("alert rule {id} does not exist")))
}

/// `GET /api/v0/rules`
pub(crate) async fn list_rules(u: ApiUser, State(ctx): State<Shared>) -> ApiResult {
    reader(&u)?;
    let rules = ctx.state.store.alert_rules().await?;
    let broken = broken_rules(&rules, ctx.state.alerting.as_deref());
    let list: Vec<Value> = rules
        .iter()
        .map(|r| rule_json(r, broken.get(&r.id).map(String::as_str)))
        .collect();
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "rules": list}),
    ))
}

/// `GET /api/v0/rules/{id}`
pub(crate) async fn get_rule(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    reader(&u)?;
    let r = stored_rule(&ctx, id).await?;
    let broken = broken_rules(std::slice::from_ref(&r), ctx.state.alerting.as_deref());
    Ok(Json(json!({
        "status": "ok",
        "count": 1,
        "rules": [rule_json(&r, broken.get(&r.id).map(String::as_str))],
    })))
}

/// `POST /api/v0/rules`
pub(crate) async fn add_rule(u: ApiUser, State(ctx): State<Shared>, body: Bytes) -> ApiResult {
    writer(&u)?;
    let edit = RuleEdit::from_json(&body_json(&body)?)?;
    let (new, _) = edit.resolve(&ctx.state.store, None).await?;
    let r = ctx.state.store.add_alert_rule(&new).await?;
    reload(&ctx).await;
    tracing::info!(user = %u.user.username, rule_id = r.id, name = %r.name, "alert rule added");
    Ok(Json(json!({
        "status": "ok",
        "message": format!("Added rule {}", r.name),
        "count": 1,
        "rules": [rule_json(&r, None)],
    })))
}

async fn update(ctx: &Shared, u: &ApiUser, id: i64, body: &Value) -> ApiResult {
    let base = stored_rule(ctx, id).await?;
    let edit = RuleEdit::from_json(body)?;
    let (new, _) = edit.resolve(&ctx.state.store, Some(&base)).await?;
    let r = ctx.state.store.update_alert_rule(id, &new).await?;
    reload(ctx).await;
    tracing::info!(user = %u.user.username, rule_id = r.id, name = %r.name, "alert rule updated");
    Ok(Json(json!({
        "status": "ok",
        "message": format!("Edited rule {}", r.name),
        "count": 1,
        "rules": [rule_json(&r, None)],
    })))
}

/// `PUT /api/v0/rules/{id}`: the fields given change, the others stay.
pub(crate) async fn update_rule(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult {
    writer(&u)?;
    update(&ctx, &u, id, &body_json(&body)?).await
}

/// `PUT /api/v0/rules` with `rule_id` in the body (LibreNMS's `edit_rule`).
pub(crate) async fn edit_rule(u: ApiUser, State(ctx): State<Shared>, body: Bytes) -> ApiResult {
    writer(&u)?;
    let body = body_json(&body)?;
    let id = match body.get("rule_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Failure::bad_request("rule_id: the id of the rule to edit is missing"))?;
    update(&ctx, &u, id, &body).await
}

/// `DELETE /api/v0/rules/{id}`
pub(crate) async fn delete_rule(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    writer(&u)?;
    let r = stored_rule(&ctx, id).await?;
    if r.builtin {
        // It would come back at the next start (built-in rules are re-created when missing).
        return Err(Failure::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "{:?} is a built-in rule and would be re-created at the next start: disable it instead (PUT {{\"disabled\": true}})",
                r.name
            ),
        ));
    }
    if !ctx.state.store.remove_alert_rule(id).await? {
        return Err(Failure::not_found(format!(
            "alert rule {id} does not exist"
        )));
    }
    reload(&ctx).await;
    tracing::info!(user = %u.user.username, rule_id = id, name = %r.name, "alert rule removed");
    Ok(Json(json!({
        "status": "ok",
        "message": format!("Alert rule {} has been removed", r.name),
    })))
}

/// `POST /api/v0/rules/test`: what a rule (a body like POST's, or `rule_id` of a stored one
/// with optional changes) would alert on now. Nothing is written.
pub(crate) async fn test_rule(u: ApiUser, State(ctx): State<Shared>, body: Bytes) -> ApiResult {
    reader(&u)?;
    let body = body_json(&body)?;
    let base = match body.get("rule_id") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let id = v
                .as_i64()
                .ok_or_else(|| Failure::bad_request("rule_id: expected a number"))?;
            Some(stored_rule(&ctx, id).await?)
        }
    };
    let mut edit = RuleEdit::from_json(&body)?;
    if base.is_none() && edit.name.is_none() {
        edit.name = Some("test".to_string());
    }
    let (new, compiled) = edit.resolve(&ctx.state.store, base.as_ref()).await?;
    let hits = engine(&ctx)?.test_rule(&compiled, None).await?;
    Ok(Json(json!({
        "status": "ok",
        "rule": new.rule,
        "time_based": compiled.is_time_based(),
        "count": hits.len(),
        "devices": hits,
    })))
}

// --- alert log

/// `GET /api/v0/logs/alertlog` (`?device=` optional).
pub(crate) async fn alert_log(u: ApiUser, State(ctx): State<Shared>, q: Params) -> ApiResult {
    reader(&u)?;
    let q = params(q)?;
    let host = q.get("device").cloned();
    log_of(&ctx, host, &q).await
}

/// `GET /api/v0/logs/alertlog/{hostname}` (LibreNMS's path).
pub(crate) async fn device_alert_log(
    u: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(host): ApiPath<String>,
    q: Params,
) -> ApiResult {
    reader(&u)?;
    log_of(&ctx, Some(host), &params(q)?).await
}

async fn log_of(ctx: &Shared, host: Option<String>, q: &HashMap<String, String>) -> ApiResult {
    let store = &ctx.state.store;
    let device = match host {
        Some(h) if !h.trim().is_empty() => Some(model::find_device(store, h.trim()).await?),
        _ => None,
    };
    let start = number(q, "start", 0, model::LOG_WINDOW)?;
    let limit = number(q, "limit", 50, 1000)?;
    let rows = model::log_page(store, device.as_ref().map(|d| d.device_id), start, limit).await?;
    let names = Names::load(store).await?;
    let logs: Vec<Value> = rows.iter().map(|r| model::log_json(r, &names)).collect();
    Ok(Json(json!({
        "status": "ok",
        "count": logs.len(),
        "start": start,
        "limit": limit,
        "logs": logs,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ack_bodies() {
        let r = ack_request(&json!({}), "admin").unwrap();
        assert!(!r.until_worse, "until_clear defaults to true");
        assert_eq!(r.by.as_deref(), Some("admin"));
        let r = ack_request(&json!({"note": "on it", "until_clear": false}), "a").unwrap();
        assert!(r.until_worse);
        assert_eq!(r.note, "on it");
        let r = ack_request(&json!({"until": "2h"}), "a").unwrap();
        assert!(r.until.unwrap() > Utc::now());
        assert!(ack_request(&json!({"until": "2000-01-01T00:00:00Z"}), "a").is_err());
        assert!(ack_request(&json!({"until": "soon"}), "a").is_err());
        assert!(ack_request(&json!({"until_clear": "perhaps"}), "a").is_err());
        assert!(ack_request(&json!({"note": 3}), "a").is_err());
        assert!(ack_request(&json!("x"), "a").is_err());
        assert!(body_json(&Bytes::from_static(b"  ")).unwrap().is_object());
        assert!(body_json(&Bytes::from_static(b"{nope")).is_err());
    }
}
