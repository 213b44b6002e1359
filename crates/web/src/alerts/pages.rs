//! Alert pages: `/alerts` (alerts with filters, ack/unack forms), `/alerts/log` and
//! `/alerts/outbox` (messages not yet delivered, failed first, with their attempts).
//! Transports and maintenance windows are in `ops_pages`, rules in `rule_pages`.
//!
//! Every form posts the session's CSRF token; writes need admin (level 10) and answer
//! with a redirect (POST-redirect-GET, so a reload does not repeat them) carrying a
//! notice code from a fixed list, never text from the request. Failures re-render the
//! page with the reason. Stable hooks for browser tests: `table#alerts
//! tr[data-alert-id]`, `form.ack`, `form.unack`, `#notice`, `#error`, `table#alert-log
//! tr[data-log-id]`, `table#outbox tr[data-outbox-id]`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use lookout_store::Store;
use serde_json::Value;

use super::api::{ack_request, with_fresh_catalog};
use super::model::{self, AlertFilter, AlertView, Names};
use super::{can_read, can_write, engine, Failure, ADMIN_LEVEL, READ_LEVEL};
use crate::pages::{Layout, PageUser};
use crate::session::tokens_equal;
use crate::view;
use crate::Shared;

pub(crate) type Pairs = Vec<(String, String)>;
pub(crate) type FormBody = Result<Form<Pairs>, FormRejection>;
pub(crate) type PageQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The tabs of the alert pages.
pub(crate) const TABS: [(&str, &str); 6] = [
    ("/alerts", "Alerts"),
    ("/alerts/log", "Log"),
    ("/alerts/rules", "Rules"),
    ("/alerts/transports", "Transports"),
    ("/alerts/outbox", "Outbox"),
    ("/alerts/maintenance", "Maintenance"),
];

pub(crate) struct Tab {
    pub(crate) href: &'static str,
    pub(crate) name: &'static str,
    pub(crate) sel: bool,
}

/// What every alert page shows above its content.
pub(crate) struct Frame {
    pub(crate) tabs: Vec<Tab>,
    pub(crate) admin: bool,
    pub(crate) notice: String,
    pub(crate) error: String,
}

impl Frame {
    pub(crate) fn new(u: &PageUser, tab: &'static str) -> Frame {
        Frame {
            tabs: TABS
                .iter()
                .map(|&(href, name)| Tab {
                    href,
                    name,
                    sel: href == tab,
                })
                .collect(),
            admin: can_write(&u.user),
            notice: String::new(),
            error: String::new(),
        }
    }

    /// The notice for a code from the page's redirect (unknown codes show nothing).
    pub(crate) fn with_notice(mut self, q: &HashMap<String, String>) -> Frame {
        let text = match q.get("notice").map(String::as_str) {
            Some("acked") => "Alert acknowledged.",
            Some("unacked") => "Acknowledgement withdrawn: the alert is alerting again.",
            Some("saved") => "Rule saved.",
            Some("removed") => "Removed.",
            Some("added") => "Maintenance window added.",
            _ => "",
        };
        self.notice = text.to_string();
        self
    }
}

pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => crate::error::WebError::from(e).into_response(),
    }
}

/// A refusal page (boxed: a `Response` is large to carry in every `Result`).
pub(crate) type Refusal = Box<Response>;

/// Pages need global read (level 5): there are no per-device grants to narrow a normal
/// user's view to their devices.
pub(crate) fn check_read(u: &PageUser) -> Result<(), Refusal> {
    if can_read(&u.user) {
        Ok(())
    } else {
        Err(Box::new(Failure::forbidden(READ_LEVEL).into_page()))
    }
}

/// The form carries the session's CSRF token.
pub(crate) fn check_csrf(u: &PageUser, form: &Pairs) -> Result<(), Refusal> {
    if tokens_equal(&u.session.csrf, field(form, "_csrf")) {
        Ok(())
    } else {
        Err(Box::new(crate::error::error_page(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token; reload the page and retry",
        )))
    }
}

/// A write: admin, and the form carries the session's CSRF token.
pub(crate) fn check_write(u: &PageUser, form: &Pairs) -> Result<(), Refusal> {
    check_csrf(u, form)?;
    if !can_write(&u.user) {
        return Err(Box::new(Failure::forbidden(ADMIN_LEVEL).into_page()));
    }
    Ok(())
}

/// The (trimmed) value of a form field, `""` when absent.
pub(crate) fn field<'a>(form: &'a Pairs, key: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.trim())
}

pub(crate) fn form_pairs(form: FormBody) -> Result<Pairs, Refusal> {
    form.map(|Form(f)| f).map_err(|_| {
        Box::new(crate::error::error_page(
            StatusCode::BAD_REQUEST,
            "the form was malformed",
        ))
    })
}

pub(crate) fn query_map(q: PageQuery) -> HashMap<String, String> {
    q.map(|Query(q)| q).unwrap_or_default()
}

pub(crate) fn path_id(id: Result<Path<String>, PathRejection>) -> Option<i64> {
    id.ok().and_then(|Path(s)| s.parse().ok())
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn url_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The alert list's filters (`state`, `severity`, `device`) found in `get`.
fn filters(get: impl Fn(&str) -> String) -> HashMap<String, String> {
    ["state", "severity", "device"]
        .into_iter()
        .map(|k| (k.to_string(), get(k)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// `/alerts` with these filters.
fn alerts_url(filters: &HashMap<String, String>) -> String {
    let mut parts: Vec<String> = filters
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    parts.sort();
    if parts.is_empty() {
        "/alerts".to_string()
    } else {
        format!("/alerts?{}", parts.join("&"))
    }
}

/// `url` with `notice=<code>` added.
pub(crate) fn with_notice(url: &str, code: &str) -> Response {
    let base: String = url
        .split('&')
        .filter(|p| !p.contains("notice="))
        .collect::<Vec<_>>()
        .join("&");
    let sep = if base.contains('?') { "&" } else { "?" };
    Redirect::to(&format!("{base}{sep}notice={code}")).into_response()
}

/// A fault as one line: its label (or "device"), then the fields the rule read.
pub(crate) fn fault_text(f: &Value) -> String {
    let Some(m) = f.as_object() else {
        return f.to_string();
    };
    let label = m.get("label").and_then(Value::as_str).unwrap_or("device");
    let fields: Vec<String> = m
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "label" | "entity_type" | "entity_id"))
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect();
    if fields.is_empty() {
        label.to_string()
    } else {
        format!("{label}: {}", fields.join(", "))
    }
}

// --- /alerts

struct AlertLine {
    id: i64,
    severity: String,
    sev_class: &'static str,
    phase: &'static str,
    state: i32,
    device_id: i64,
    hostname: String,
    sys_name: String,
    rule_id: i64,
    rule_name: String,
    entity: String,
    since: String,
    since_at: String,
    faults: Vec<String>,
    note: String,
    ack_by: String,
    ack_until: String,
    can_ack: bool,
    can_unack: bool,
}

pub(crate) fn severity_class(s: &str) -> &'static str {
    match s {
        "critical" => "down",
        "warning" => "warn",
        "ok" => "up",
        _ => "",
    }
}

fn alert_line(a: &AlertView, now: i64) -> AlertLine {
    let s = a.state.as_ref();
    let ack = s.and_then(|s| s.ack.as_ref());
    let since = s.map(|s| s.triggered_at.unwrap_or(s.since));
    let phase = a.phase();
    AlertLine {
        id: a.row.id,
        sev_class: severity_class(&a.severity),
        severity: a.severity.clone(),
        phase,
        state: a.row.state,
        device_id: a.row.key.device_id,
        hostname: a.hostname.clone(),
        sys_name: a.sys_name.clone().unwrap_or_default(),
        rule_id: a.row.key.rule_id,
        rule_name: a.rule_name.clone(),
        entity: a.entity.clone().unwrap_or_default(),
        since: since.map_or_else(String::new, |t| view::ago(now - t.timestamp())),
        since_at: since.as_ref().map(view::librenms_time).unwrap_or_default(),
        faults: s
            .map(|s| s.faults.0.iter().map(fault_text).collect())
            .unwrap_or_default(),
        note: a.row.note.clone().unwrap_or_default(),
        ack_by: ack.and_then(|a| a.by.clone()).unwrap_or_default(),
        ack_until: ack
            .map(|a| match a.until {
                Some(t) => format!("until {}", view::librenms_time(&t)),
                None if a.until_worse => "until worse".to_string(),
                None => "until clear".to_string(),
            })
            .unwrap_or_default(),
        can_ack: phase == "alerting",
        can_unack: phase == "acknowledged",
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    f: Frame,
    rows: Vec<AlertLine>,
    critical: usize,
    warning: usize,
    acked: usize,
    pending: usize,
    state: String,
    severity: String,
    device: String,
}

/// `GET /alerts`
pub(crate) async fn alerts(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let q = query_map(q);
    let f = Frame::new(&u, "/alerts").with_notice(&q);
    alerts_page(&ctx, Layout::new(&ctx, &u), f, &q, StatusCode::OK).await
}

async fn alerts_page(
    ctx: &Shared,
    layout: Layout,
    mut f: Frame,
    q: &HashMap<String, String>,
    status: StatusCode,
) -> Response {
    let store = &ctx.state.store;
    let (rows, status) = match AlertFilter::parse(store, q).await {
        Ok(filter) => match model::alerts(store, &filter).await {
            Ok(rows) => (rows, status),
            Err(e) => return e.into_page(),
        },
        Err(e) => {
            f.error = e.message;
            (Vec::new(), e.status)
        }
    };
    let now = Utc::now().timestamp();
    let lines: Vec<AlertLine> = rows.iter().map(|a| alert_line(a, now)).collect();
    let count = |p: &dyn Fn(&AlertLine) -> bool| lines.iter().filter(|l| p(l)).count();
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    let page = AlertsPage {
        critical: count(&|l| l.severity == "critical" && l.phase == "alerting"),
        warning: count(&|l| l.severity == "warning" && l.phase == "alerting"),
        acked: count(&|l| l.phase == "acknowledged"),
        pending: count(&|l| l.phase == "pending"),
        rows: lines,
        state: param("state"),
        severity: param("severity"),
        device: param("device"),
        layout,
        f,
    };
    render(status, &page)
}

/// `POST /alerts/{id}/ack`: note, `until` (optional), `until_worse` (checkbox; unchecked:
/// acknowledged until the alert clears, LibreNMS's default).
pub(crate) async fn ack(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    operator_action(u, ctx, id, form, true).await
}

/// `POST /alerts/{id}/unack`
pub(crate) async fn unack(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    operator_action(u, ctx, id, form, false).await
}

async fn operator_action(
    u: PageUser,
    ctx: Shared,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
    acknowledge: bool,
) -> Response {
    let form = match form_pairs(form) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = check_write(&u, &form) {
        return *r;
    }
    let Some(id) = path_id(id) else {
        return Failure::not_found("no such alert").into_page();
    };
    let kept = filters(|k| field(&form, &format!("f_{k}")).to_string());
    let back = alerts_url(&kept);
    let done = async {
        let e = engine(&ctx)?.clone();
        if acknowledge {
            let body = serde_json::json!({
                "note": field(&form, "note"),
                "until": field(&form, "until"),
                "until_clear": field(&form, "until_worse").is_empty(),
            });
            let req = ack_request(&body, &u.user.username)?;
            with_fresh_catalog(&ctx, || e.acknowledge(id, req.clone())).await
        } else {
            with_fresh_catalog(&ctx, || e.unacknowledge(id)).await
        }
    }
    .await;
    match done {
        Ok(_) => {
            let what = if acknowledge {
                "acknowledged"
            } else {
                "unacknowledged"
            };
            tracing::info!(user = %u.user.username, alert_id = id, "alert {what}");
            with_notice(&back, if acknowledge { "acked" } else { "unacked" })
        }
        Err(e) => {
            let mut f = Frame::new(&u, "/alerts");
            f.error = format!("alert {id}: {}", e.message);
            alerts_page(&ctx, Layout::new(&ctx, &u), f, &kept, e.status).await
        }
    }
}

// --- /alerts/log

struct LogLine {
    id: i64,
    at: String,
    device_id: i64,
    hostname: String,
    rule_name: String,
    entity: String,
    state: i32,
    state_name: &'static str,
    event: String,
    detail: String,
}

fn state_name(state: i32) -> &'static str {
    match state {
        0 => "recovered",
        1 => "alert",
        2 => "acknowledged",
        3 => "worse",
        4 => "better",
        _ => "?",
    }
}

#[derive(Template)]
#[template(path = "alerts_log.html")]
struct LogPage {
    layout: Layout,
    f: Frame,
    rows: Vec<LogLine>,
    device: String,
    /// `device`, encoded for the pager's links.
    device_q: String,
    start: u32,
    limit: u32,
    prev: Option<u32>,
    next: Option<u32>,
}

fn log_line(r: &lookout_store::AlertLogRow, names: &Names) -> LogLine {
    let details: Value = serde_json::from_str(&r.details).unwrap_or(Value::Null);
    let mut detail = Vec::new();
    if let Some(n) = details
        .get("note")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        detail.push(format!("note: {n}"));
    }
    if let Some(b) = details.get("by").and_then(Value::as_str) {
        detail.push(format!("by {b}"));
    }
    if let Some(faults) = details.get("faults").and_then(Value::as_array) {
        detail.extend(faults.iter().take(5).map(fault_text));
        if faults.len() > 5 {
            detail.push(format!("and {} more", faults.len() - 5));
        }
    }
    let event = details
        .get("events")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .or_else(|| {
            details
                .get("event")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    LogLine {
        id: r.id,
        at: view::librenms_time(&r.time_logged),
        device_id: r.key.device_id,
        hostname: names.hostname(r.key.device_id),
        rule_name: names.rule_name(r.key.rule_id),
        entity: if r.key.entity_type.is_empty() {
            String::new()
        } else {
            format!("{} {}", r.key.entity_type, r.key.entity_id)
        },
        state: r.state,
        state_name: state_name(r.state),
        event,
        detail: detail.join("; "),
    }
}

/// `GET /alerts/log` (`device`, `start`, `limit`)
pub(crate) async fn log(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let q = query_map(q);
    let mut f = Frame::new(&u, "/alerts/log");
    let store = &ctx.state.store;
    let num = |k: &str, d: u32| {
        q.get(k)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(d)
    };
    let limit = num("limit", 100).clamp(1, 1000);
    let start = num("start", 0).min(model::LOG_WINDOW - limit);
    let device = q
        .get("device")
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    let mut status = StatusCode::OK;
    let device_id = if device.is_empty() {
        None
    } else {
        match model::find_device(store, &device).await {
            Ok(d) => Some(d.device_id),
            Err(e) => {
                f.error = e.message;
                status = e.status;
                Some(-1)
            }
        }
    };
    let loaded = async {
        let rows = match device_id {
            Some(-1) => Vec::new(),
            d => model::log_page(store, d, start, limit).await?,
        };
        let names = Names::load(store).await?;
        Ok::<_, Failure>(rows.iter().map(|r| log_line(r, &names)).collect::<Vec<_>>())
    }
    .await;
    let rows = match loaded {
        Ok(r) => r,
        Err(e) => return e.into_page(),
    };
    let page = LogPage {
        prev: (start > 0).then(|| start.saturating_sub(limit)),
        next: (rows.len() == limit as usize).then_some(start + limit),
        rows,
        device_q: url_encode(&device),
        device,
        start,
        limit,
        layout: Layout::new(&ctx, &u),
        f,
    };
    render(status, &page)
}

// --- /alerts/outbox

struct OutboxLine {
    id: i64,
    state: String,
    state_class: &'static str,
    created: String,
    transport: String,
    alert_id: Option<i64>,
    device_id: Option<i64>,
    hostname: String,
    kind: String,
    rule: String,
    attempts: i32,
    next_attempt: String,
    last_error: String,
    key: String,
    log: Vec<String>,
}

#[derive(Template)]
#[template(path = "alerts_outbox.html")]
struct OutboxPage {
    layout: Layout,
    f: Frame,
    rows: Vec<OutboxLine>,
    failed: usize,
    waiting: usize,
    state: String,
}

async fn outbox_lines(store: &Store, states: &[&str]) -> Result<Vec<OutboxLine>, Failure> {
    let rows = model::outbox(store, states, 200).await?;
    let transports = model::transport_names(store).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let attempts = store.delivery_attempts(r.id).await?;
        let n: Value = serde_json::from_str(&r.notification).unwrap_or(Value::Null);
        let text = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        out.push(OutboxLine {
            state_class: match r.state.as_str() {
                "failed" => "down",
                "delivered" => "up",
                _ => "warn",
            },
            id: r.id,
            created: view::librenms_time(&r.created),
            transport: transports
                .get(&r.transport_id)
                .cloned()
                .unwrap_or_else(|| format!("transport {}", r.transport_id)),
            alert_id: r.alert_id,
            device_id: r.device_id,
            hostname: text("hostname"),
            kind: text("kind"),
            rule: text("rule_name"),
            attempts: r.attempts,
            next_attempt: if r.state == "pending" || r.state == "sending" {
                view::librenms_time(&r.next_attempt_at)
            } else {
                String::new()
            },
            last_error: r.last_error.clone().unwrap_or_default(),
            key: r.idempotency_key.clone(),
            log: attempts
                .iter()
                .map(|a| {
                    format!(
                        "{} {} (node {}, token {}){}",
                        view::librenms_time(&a.started),
                        a.outcome,
                        a.node_id,
                        a.token,
                        a.detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    )
                })
                .collect(),
            state: r.state,
        });
    }
    // Failed first: that is what needs a look.
    out.sort_by_key(|l| l.state != "failed");
    Ok(out)
}

/// `GET /alerts/outbox` (`state=failed|pending|sending|delivered`; not delivered by default)
pub(crate) async fn outbox(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let q = query_map(q);
    let state = q.get("state").cloned().unwrap_or_default();
    let states: Vec<&str> = match state.as_str() {
        "failed" => vec!["failed"],
        "pending" => vec!["pending", "sending"],
        "delivered" => vec!["delivered"],
        _ => model::UNDELIVERED.to_vec(),
    };
    let rows = match outbox_lines(&ctx.state.store, &states).await {
        Ok(r) => r,
        Err(e) => return e.into_page(),
    };
    let page = OutboxPage {
        layout: Layout::new(&ctx, &u),
        f: Frame::new(&u, "/alerts/outbox").with_notice(&q),
        failed: rows.iter().filter(|r| r.state == "failed").count(),
        waiting: rows
            .iter()
            .filter(|r| r.state == "pending" || r.state == "sending")
            .count(),
        rows,
        state,
    };
    render(StatusCode::OK, &page)
}
