//! `/alerts/transports` (every transport with its settings, secrets masked by the
//! transport's own `redact`; a "send test" button that makes one real delivery attempt)
//! and `/alerts/maintenance` (windows, add a one-off window for devices or poller groups,
//! remove one). Stable hooks: `table#transports tr[data-transport-id]`,
//! `form.send-test`, `table#maintenance tr[data-schedule-id]`, `form#add-maintenance`,
//! `form.remove-maintenance`.

use std::time::Duration;

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use lookout_alerting::engine::maintenance::active_at;
use lookout_alerting::transport;
use lookout_alerting::Notification;
use lookout_store::{AlertTransport, Maintenance};

use super::model::{find_device, Names};
use super::pages::{
    check_read, check_write, field, form_pairs, path_id, query_map, render, with_notice, FormBody,
    Frame, PageQuery, Pairs,
};
use super::{parse_duration, parse_time, reload, Failure};
use crate::pages::{Layout, PageUser};
use crate::view;
use crate::Shared;

// --- transports

struct TransportLine {
    id: i64,
    name: String,
    kind: String,
    default: bool,
    /// The settings with every secret replaced (`transport::redact`).
    config: String,
    /// Rules that name this transport (default transports also get every rule naming none).
    rules: Vec<String>,
    /// Why it cannot be built, if it cannot.
    problem: String,
}

#[derive(Template)]
#[template(path = "alerts_transports.html")]
struct TransportsPage {
    layout: Layout,
    f: Frame,
    rows: Vec<TransportLine>,
    kinds: String,
}

fn transport_line(t: &AlertTransport, names: &Names) -> TransportLine {
    let config = serde_json::from_str::<serde_json::Value>(&t.transport_config)
        .map(|c| transport::redact(&t.transport_type, &c).to_string())
        .unwrap_or_else(|_| transport::REDACTED.to_string());
    let mut rules: Vec<String> = names
        .rules
        .values()
        .filter(|r| r.transport_ids.contains(&t.transport_id))
        .map(|r| r.name.clone())
        .collect();
    rules.sort();
    TransportLine {
        id: t.transport_id,
        name: t.transport_name.clone(),
        kind: t.transport_type.clone(),
        default: t.is_default,
        config,
        rules,
        problem: transport::build(t)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
    }
}

async fn transports_page(ctx: &Shared, u: &PageUser, f: Frame, status: StatusCode) -> Response {
    let store = &ctx.state.store;
    let loaded = async {
        let names = Names::load(store).await?;
        let ts = store.alert_transports().await?;
        Ok::<_, Failure>(ts.iter().map(|t| transport_line(t, &names)).collect())
    }
    .await;
    let rows = match loaded {
        Ok(r) => r,
        Err(e) => return e.into_page(),
    };
    let page = TransportsPage {
        layout: Layout::new(ctx, u),
        f,
        rows,
        kinds: transport::kinds().join(", "),
    };
    render(status, &page)
}

/// `GET /alerts/transports`
pub(crate) async fn transports(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let f = Frame::new(&u, "/alerts/transports").with_notice(&query_map(q));
    transports_page(&ctx, &u, f, StatusCode::OK).await
}

/// How long "send test" waits for the receiver: inside the request deadline, so the page
/// says what happened instead of timing out.
const TEST_SEND_TIMEOUT: Duration = Duration::from_secs(4);

/// `POST /alerts/transports/{id}/test`: one delivery attempt, straight from this instance
/// (not through the outbox, so the answer is on the page at once).
pub(crate) async fn send_test(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    let form = match form_pairs(form) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = check_write(&u, &form) {
        return *r;
    }
    let Some(id) = path_id(id) else {
        return Failure::not_found("no such transport").into_page();
    };
    let mut f = Frame::new(&u, "/alerts/transports");
    let found = match ctx.state.store.alert_transports().await {
        Ok(ts) => ts.into_iter().find(|t| t.transport_id == id),
        Err(e) => return Failure::from(e).into_page(),
    };
    let Some(t) = found else {
        return Failure::not_found(format!("transport {id} does not exist")).into_page();
    };
    let name = t.transport_name.clone();
    let status = match transport::build(&t) {
        Err(e) => {
            f.error = format!("{name}: cannot be used: {e}");
            StatusCode::BAD_REQUEST
        }
        Ok(built) => {
            let n = Notification::test(&ctx.state.node_name, Utc::now());
            match tokio::time::timeout(TEST_SEND_TIMEOUT, built.send(&n)).await {
                Ok(Ok(d)) => {
                    f.notice = format!("Test notification sent through {name}: {}", d.detail);
                    StatusCode::OK
                }
                Ok(Err(e)) => {
                    f.error = format!("Test notification through {name} failed: {e}");
                    StatusCode::BAD_GATEWAY
                }
                Err(_) => {
                    f.error = format!(
                        "Test notification through {name}: no answer within {} s",
                        TEST_SEND_TIMEOUT.as_secs()
                    );
                    StatusCode::GATEWAY_TIMEOUT
                }
            }
        }
    };
    tracing::info!(user = %u.user.username, transport = %name, ok = status.is_success(), "transport test sent");
    transports_page(&ctx, &u, f, status).await
}

// --- maintenance

struct WindowLine {
    id: i64,
    title: String,
    notes: String,
    start: String,
    end: String,
    recurring: String,
    behavior: &'static str,
    items: Vec<String>,
    active: bool,
    over: bool,
}

#[derive(Template)]
#[template(path = "alerts_maintenance.html")]
struct MaintenancePage {
    layout: Layout,
    f: Frame,
    rows: Vec<WindowLine>,
    /// The add form as submitted (kept when it was refused).
    form: Pairs,
}

impl MaintenancePage {
    fn value(&self, key: &str) -> &str {
        field(&self.form, key)
    }
}

fn window_line(m: &Maintenance, names: &Names, now: DateTime<Utc>) -> WindowLine {
    WindowLine {
        id: m.schedule_id,
        title: m.title.clone(),
        notes: m.notes.clone().unwrap_or_default(),
        start: view::librenms_time(&m.start),
        end: view::librenms_time(&m.end),
        recurring: if m.recurring {
            format!(
                "{}-{} UTC{}",
                m.start_recurring_hm.as_deref().unwrap_or("00:00"),
                m.end_recurring_hm.as_deref().unwrap_or("24:00"),
                m.recurring_day
                    .as_deref()
                    .filter(|d| !d.trim().is_empty())
                    .map(|d| format!(", days {d}"))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        },
        behavior: if m.behavior == 0 { "skip" } else { "mute" },
        items: m
            .items
            .iter()
            .map(|(kind, id)| match kind.as_str() {
                "device" => names.hostname(*id),
                "poller_group" => format!("poller group {id}"),
                k => format!("{k} {id}"),
            })
            .collect(),
        active: active_at(m, now),
        over: m.end <= now,
    }
}

async fn maintenance_page(
    ctx: &Shared,
    u: &PageUser,
    f: Frame,
    form: Pairs,
    status: StatusCode,
) -> Response {
    let store = &ctx.state.store;
    let now = Utc::now();
    let loaded = async {
        let names = Names::load(store).await?;
        let ws = store.maintenances().await?;
        Ok::<_, Failure>(ws.iter().map(|m| window_line(m, &names, now)).collect())
    }
    .await;
    let rows = match loaded {
        Ok(r) => r,
        Err(e) => return e.into_page(),
    };
    let page = MaintenancePage {
        layout: Layout::new(ctx, u),
        f,
        rows,
        form,
    };
    render(status, &page)
}

/// `GET /alerts/maintenance`
pub(crate) async fn maintenance(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let f = Frame::new(&u, "/alerts/maintenance").with_notice(&query_map(q));
    maintenance_page(&ctx, &u, f, Vec::new(), StatusCode::OK).await
}

/// A one-off window from the add form: `title`, `devices` (hostnames or ids, comma or
/// space separated), `poller_groups`, `start` (empty: now), `end` or `duration`,
/// `behavior` (`skip` or `mute`), `notes`.
async fn window_from_form(ctx: &Shared, form: &Pairs) -> Result<Maintenance, Failure> {
    let now = Utc::now();
    let title = field(form, "title");
    if title.is_empty() || title.chars().count() > 255 {
        return Err(Failure::bad_request("title: 1 to 255 characters"));
    }
    let words = |k: &str| -> Vec<String> {
        field(form, k)
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut items = Vec::new();
    for d in words("devices") {
        let dev = find_device(&ctx.state.store, &d)
            .await
            .map_err(|_| Failure::bad_request(format!("devices: no device {d:?}")))?;
        items.push(("device".to_string(), dev.device_id));
    }
    for g in words("poller_groups") {
        let n: i64 = g
            .parse()
            .map_err(|_| Failure::bad_request(format!("poller groups: {g:?} is not a number")))?;
        items.push(("poller_group".to_string(), n));
    }
    if items.is_empty() {
        return Err(Failure::bad_request(
            "a window needs at least one device or poller group",
        ));
    }
    let bad = |k: &str, e: String| Failure::bad_request(format!("{k}: {e}"));
    let start = match field(form, "start") {
        "" => now,
        s => parse_time(s, now).map_err(|e| bad("start", e))?,
    };
    let end = match (field(form, "end"), field(form, "duration")) {
        ("", "") => return Err(Failure::bad_request("give an end or a duration (e.g. 2h)")),
        ("", d) => {
            let secs = parse_duration(d).map_err(|e| bad("duration", e))?;
            i64::try_from(secs)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| start.checked_add_signed(d))
                .ok_or_else(|| bad("duration", "too long".into()))?
        }
        (e, _) => parse_time(e, now).map_err(|e| bad("end", e))?,
    };
    if end <= start {
        return Err(Failure::bad_request("the window ends before it starts"));
    }
    if end <= now {
        return Err(Failure::bad_request("the window is already over"));
    }
    let behavior = match field(form, "behavior") {
        "" | "skip" => 0,
        "mute" => 1,
        b => {
            return Err(Failure::bad_request(format!(
                "behavior: {b:?} (skip or mute)"
            )))
        }
    };
    let notes = field(form, "notes");
    Ok(Maintenance {
        schedule_id: 0,
        title: title.to_string(),
        notes: (!notes.is_empty()).then(|| notes.to_string()),
        start,
        end,
        recurring: false,
        start_recurring_hm: None,
        end_recurring_hm: None,
        recurring_day: None,
        behavior,
        items,
    })
}

/// `POST /alerts/maintenance`: adds a one-off window.
pub(crate) async fn add_maintenance(
    u: PageUser,
    State(ctx): State<Shared>,
    form: FormBody,
) -> Response {
    let form = match form_pairs(form) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = check_write(&u, &form) {
        return *r;
    }
    let added = match window_from_form(&ctx, &form).await {
        Ok(m) => ctx
            .state
            .store
            .add_maintenance(&m)
            .await
            .map_err(Failure::from),
        Err(e) => Err(e),
    };
    match added {
        Ok(m) => {
            reload(&ctx).await;
            tracing::info!(user = %u.user.username, schedule_id = m.schedule_id, title = %m.title, "maintenance window added");
            with_notice("/alerts/maintenance", "added")
        }
        Err(e) => {
            let mut f = Frame::new(&u, "/alerts/maintenance");
            f.error = e.message;
            maintenance_page(&ctx, &u, f, form, e.status).await
        }
    }
}

/// `POST /alerts/maintenance/{id}/remove`
pub(crate) async fn remove_maintenance(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    let form = match form_pairs(form) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = check_write(&u, &form) {
        return *r;
    }
    let Some(id) = path_id(id) else {
        return Failure::not_found("no such maintenance window").into_page();
    };
    match ctx.state.store.remove_maintenance(id).await {
        Ok(true) => {
            reload(&ctx).await;
            tracing::info!(user = %u.user.username, schedule_id = id, "maintenance window removed");
            with_notice("/alerts/maintenance", "removed")
        }
        Ok(false) => {
            Failure::not_found(format!("maintenance window {id} does not exist")).into_page()
        }
        Err(e) => Failure::from(e).into_page(),
    }
}
