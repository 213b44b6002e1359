//! Server-rendered pages (askama templates in `templates/`): login/logout, the device list and
//! the device page. Dense tables, no decoration: built for an engineer at 3 a.m. Every page
//! except `/login` requires a session; without one the browser is sent to `/login?next=...`.
//!
//! Stable hooks for browser tests (keep them when restyling): login form `#username`,
//! `#password`, `button[type=submit]`, failure message `#login-error`; device list
//! `table#devices tr[data-device-id]`; device page `table#system`, `table#ports
//! tr[data-port-id]`, `table#events`; graphs `.graph[data-port-id]` whose `data-state` goes
//! `loading` -> `ok` (a uPlot `canvas` inside) | `empty` ("no data yet") | `error`.

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use lookout_core::{Device, Port};
use lookout_store::{Event, Severity, User};
use serde::Deserialize;

use crate::access::{needs, Access, Role};
use crate::error::{error_page, WebError};
use crate::graph::Period;
use crate::security::{throttled_for, ClientAddress, FAILURE_WINDOW_SECS};
use crate::session::{client_uses_https, removal_cookie, set_cookie, tokens_equal, SessionData};
use crate::session::{LOGIN_COOKIE, SESSION_COOKIE};
use crate::view;
use crate::Shared;

/// What every authenticated page shows around its content.
pub(crate) struct Layout {
    pub(crate) user: String,
    /// Shows the admin-only navigation.
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    pub(crate) node: String,
    pub(crate) assets: String,
    pub(crate) now: String,
}

impl Layout {
    pub(crate) fn new(ctx: &Shared, u: &PageUser) -> Layout {
        Layout {
            user: u.user.username.clone(),
            admin: u.access.is_admin(),
            csrf: u.session.csrf.clone(),
            node: ctx.state.node_name.clone(),
            assets: crate::assets::prefix(),
            now: Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

/// A request with a valid session of an existing user.
pub(crate) struct PageUser {
    pub(crate) user: User,
    pub(crate) session: SessionData,
    /// What the user may see and do.
    pub(crate) access: Access,
}

impl PageUser {
    /// `Err(403 page)` unless the user sees every device (global read or admin).
    pub(crate) fn require_global_read(&self) -> Result<(), Box<Response>> {
        if self.access.sees_all() {
            Ok(())
        } else {
            Err(Box::new(error_page(
                StatusCode::FORBIDDEN,
                &needs(Role::GlobalRead),
            )))
        }
    }

    /// `Err(403 page)` unless the user is an admin.
    pub(crate) fn require_admin(&self) -> Result<(), Box<Response>> {
        if self.access.is_admin() {
            Ok(())
        } else {
            Err(Box::new(error_page(
                StatusCode::FORBIDDEN,
                &needs(Role::Admin),
            )))
        }
    }
}

impl FromRequestParts<Shared> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Shared) -> Result<Self, Response> {
        let now = Utc::now().timestamp();
        let Some(session) = ctx.sealer.session(&parts.headers, now) else {
            return Err(login_redirect(&parts.uri));
        };
        match crate::sessions::resume(ctx, &session, now).await {
            Ok(Some((user, access))) => Ok(PageUser {
                user,
                session,
                access,
            }),
            // Logged out, timed out, or the user was removed: the session has ended.
            Ok(None) => Err(login_redirect(&parts.uri)),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

fn login_redirect(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/devices", |p| p.as_str());
    Redirect::to(&format!("/login?next={}", percent_encode(next))).into_response()
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after login: only a local path, never another site (`//evil`, `/\evil`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/devices".to_string(),
    }
}

fn render<T: Template>(t: &T) -> Result<Html<String>, WebError> {
    Ok(Html(t.render()?))
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

// --- login / logout

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    assets: String,
    csrf: String,
    next: String,
    username: String,
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the form, with a fresh CSRF token in its own sealed cookie.
pub(crate) async fn login_form(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let next = safe_next(query.ok().and_then(|Query(q)| q.next).as_deref());
    if ctx.sealer.session(&headers, now_secs()).is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let Some((csrf, cookie)) = ctx
        .sealer
        .new_login_token(now_secs(), client_uses_https(&headers))
    else {
        return Ok(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not create the login form",
        ));
    };
    let page = LoginPage {
        assets: crate::assets::prefix(),
        csrf,
        next,
        username: String::new(),
        error: None,
    };
    let mut res = render(&page)?.into_response();
    set_cookie(res.headers_mut(), cookie);
    Ok(res)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
    next: Option<String>,
}

/// The one message for every failed login, so that it does not reveal which user names exist.
const LOGIN_FAILED: &str = "Invalid username or password.";

/// `POST /login`: throttled per account and per client address (429 with `Retry-After`,
/// whatever the password), every attempt in the auth log with the client address.
pub(crate) async fn login(
    State(ctx): State<Shared>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Ok(Form(form)) = form else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "the login form was malformed",
        ));
    };
    let now = now_secs();
    if !ctx.sealer.check_login_token(&headers, &form.csrf, now) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "the login form expired or its CSRF token is missing; reload the login page",
        ));
    }
    let next = safe_next(form.next.as_deref());
    let store = &ctx.state.store;
    // Long names are cut so that the auth log cannot be flooded with megabytes per attempt.
    let username: String = form.username.chars().take(255).collect();
    let failures = store
        .login_failures(&username, &address, now - FAILURE_WINDOW_SECS)
        .await?;
    if let Some(wait) = throttled_for(&failures, &ctx.state.security, now) {
        tracing::warn!(username = %username, client = %address, retry_after = wait, "login throttled");
        store
            .add_authlog(now, &username, &address, "throttled")
            .await?;
        let page = LoginPage {
            assets: crate::assets::prefix(),
            csrf: form.csrf,
            next,
            username,
            error: Some(LOGIN_THROTTLED),
        };
        let mut res = (StatusCode::TOO_MANY_REQUESTS, render(&page)?).into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    }
    let user = store.user_by_username(&username).await?;
    let ok = check_password(&ctx, user.as_ref(), form.password).await?;
    match user {
        Some(user) if ok => {
            tracing::info!(user = %user.username, client = %address, "login");
            store.add_authlog(now, &username, &address, "ok").await?;
            let agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let session = crate::sessions::start(&ctx, &user, &address, agent, now).await?;
            let Some(cookie) = ctx.sealer.session_cookie(
                &session,
                ctx.state.security.session_lifetime_secs,
                client_uses_https(&headers),
            ) else {
                return Ok(error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not create the session",
                ));
            };
            let mut res = Redirect::to(&next).into_response();
            set_cookie(res.headers_mut(), cookie);
            set_cookie(res.headers_mut(), removal_cookie(LOGIN_COOKIE));
            Ok(res)
        }
        _ => {
            tracing::warn!(username = %username, client = %address, "login failed");
            store
                .add_authlog(now, &username, &address, "failure")
                .await?;
            // The login cookie stays valid, so the same token is reused for the retry.
            let page = LoginPage {
                assets: crate::assets::prefix(),
                csrf: form.csrf,
                next,
                username,
                error: Some(LOGIN_FAILED),
            };
            Ok((StatusCode::UNAUTHORIZED, render(&page)?).into_response())
        }
    }
}

/// The message of a throttled login (the wait is in `Retry-After`).
const LOGIN_THROTTLED: &str = "Too many failed logins: wait a few minutes before trying again.";

/// Verifies `password` against the user's hash, or a dummy hash for an unknown user so both
/// cases take the same time. At most one argon2 run per core at once.
async fn check_password(
    ctx: &Shared,
    user: Option<&User>,
    password: String,
) -> Result<bool, WebError> {
    let hash = user.map_or_else(
        || crate::auth::dummy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    // Never closed, so acquiring only fails if that invariant breaks; then refuse the login.
    let Ok(_slot) = ctx.password_slots.acquire().await else {
        return Ok(false);
    };
    Ok(
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
            .await?
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "unusable password hash in the store");
                false
            }),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// `POST /logout`: ends the session record (on every instance: a copied cookie is refused
/// from now on) and clears the cookie.
pub(crate) async fn logout(
    u: PageUser,
    State(ctx): State<Shared>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let submitted = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !tokens_equal(&u.session.csrf, &submitted) {
        return error_page(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token; reload the page and retry",
        );
    }
    if let Err(e) = crate::sessions::end(&ctx, &u.session).await {
        return WebError::from(e).into_response();
    }
    tracing::info!(user = %u.user.username, "logout");
    let mut res = Redirect::to("/login").into_response();
    set_cookie(res.headers_mut(), removal_cookie(SESSION_COOKIE));
    res
}

/// Any unknown path.
pub(crate) async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "no such page")
}

// --- device list: see `device_list`

/// A device is stale when it has not been polled for two intervals (or, never polled, was
/// added that long ago): the poller is behind or not running.
fn stale_after_secs(poll_interval: u64) -> i64 {
    i64::try_from(poll_interval.saturating_mul(2)).unwrap_or(i64::MAX)
}

fn is_stale(d: &Device, now: i64, after: i64) -> bool {
    let since = d.last_polled.unwrap_or(d.inserted).timestamp();
    now - since > after
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

// --- device page

struct DeviceInfo {
    id: i64,
    hostname: String,
    pending: bool,
    /// Why a device is not polled (yet): disabled, no poller for its group, queued.
    not_polled_why: String,
    /// Down or disabled: its values are the last known ones, not current (said how).
    stale_values: String,
    up: bool,
    reason: String,
    sys_name: String,
    sys_descr: String,
    sys_object_id: String,
    contact: String,
    location: String,
    os: String,
    hardware: String,
    version: String,
    uptime: String,
    last_polled: String,
    last_polled_at: String,
    stale: bool,
    poll_time: String,
    snmp: String,
}

struct PortRow {
    id: i64,
    name: String,
    descr: String,
    alias: String,
    admin: String,
    oper: String,
    oper_class: &'static str,
    speed: String,
    in_rate: String,
    out_rate: String,
}

/// A neighbour on the device page.
struct LinkRow {
    local_port: String,
    protocol: String,
    remote: String,
    /// The neighbour's device page, when it is a known device.
    remote_device_id: Option<i64>,
    remote_port: String,
    platform: String,
}

/// An IP address on the device page.
struct AddressRow {
    port: String,
    address: String,
}

struct EventRow {
    at: String,
    severity: &'static str,
    class: &'static str,
    kind: String,
    message: String,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    layout: Layout,
    d: DeviceInfo,
    health: Vec<HealthRow>,
    modules: Vec<ModuleRow>,
    ports: Vec<PortRow>,
    links: Vec<LinkRow>,
    addresses: Vec<AddressRow>,
    events: Vec<EventRow>,
    period: &'static str,
    periods: Vec<PeriodLink>,
}

struct PeriodLink {
    name: &'static str,
    selected: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PeriodQuery {
    period: Option<String>,
}

/// `GET /device/{device_id}`
pub(crate) async fn device(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Some(id) = id.ok().and_then(|Path(id)| id.parse::<i64>().ok()) else {
        return Ok(error_page(StatusCode::NOT_FOUND, "no such device"));
    };
    let store = &ctx.state.store;
    let Some(d) = store.device(id).await?.filter(|_| u.access.can_see(id)) else {
        return Ok(error_page(StatusCode::NOT_FOUND, "no such device"));
    };
    let ports = store.ports(id).await?;
    let events = store.events(Some(id), 50).await?;
    let period = query
        .ok()
        .and_then(|Query(q)| q.period)
        .and_then(|p| Period::parse(&p))
        .unwrap_or(Period::Day);
    let now = now_secs();
    let store = &ctx.state.store;
    let health = health_rows(
        &store.processors(d.device_id).await?,
        &store.mempools(d.device_id).await?,
        &store.storage(d.device_id).await?,
    );
    let modules = store
        .module_perf(d.device_id)
        .await?
        .into_iter()
        .map(|m| ModuleRow {
            module: m.module,
            seconds: format!("{:.3} s", m.seconds),
            status: m.status,
            message: m.message.unwrap_or_default(),
        })
        .collect();
    let port_label = |id: Option<i64>| {
        id.and_then(|id| ports.iter().find(|p| p.port_id == id))
            .map(Port::label)
            .unwrap_or_default()
    };
    let links = store
        .links(d.device_id)
        .await?
        .into_iter()
        .map(|l| LinkRow {
            local_port: port_label(l.local_port_id),
            protocol: l.protocol.to_uppercase(),
            remote: l.remote_hostname,
            remote_device_id: l.remote_device_id,
            remote_port: l.remote_port,
            platform: l.remote_platform.unwrap_or_default(),
        })
        .collect();
    let mut addresses: Vec<AddressRow> = store
        .ipv4_addresses(d.device_id)
        .await?
        .into_iter()
        .map(|a| AddressRow {
            port: port_label(Some(a.port_id)),
            address: format!("{}/{}", a.ipv4_address, a.ipv4_prefixlen),
        })
        .collect();
    addresses.extend(
        store
            .ipv6_addresses(d.device_id)
            .await?
            .into_iter()
            .map(|a| AddressRow {
                port: port_label(Some(a.port_id)),
                address: format!("{}/{}", a.ipv6_compressed, a.ipv6_prefixlen),
            }),
    );
    let mut info = device_info(&d, now, stale_after_secs(ctx.state.poll_interval_secs));
    info.not_polled_why = not_polled_why(&ctx, &d, now).await;
    let page = DevicePage {
        layout: Layout::new(&ctx, &u),
        links,
        addresses,
        health,
        modules,
        d: info,
        ports: ports.iter().map(port_row).collect(),
        events: events.iter().map(event_row).collect(),
        period: period.as_str(),
        periods: Period::ALL
            .into_iter()
            .map(|p| PeriodLink {
                name: p.as_str(),
                selected: p == period,
            })
            .collect(),
    };
    Ok(render(&page)?.into_response())
}

/// Why the device is not being polled, or `""` when it is: disabled, no live poller for its
/// group (from the master's heartbeat), or waiting for its first poll since when.
async fn not_polled_why(ctx: &Shared, d: &Device, now: i64) -> String {
    if d.disabled {
        return "disabled: not polled (enable it on the edit page or with `lookout device update HOST --enable`)".into();
    }
    let unserved = match ctx.state.coord.nodes().await {
        Ok(nodes) => nodes.iter().any(|n| {
            n.alive
                && n.info
                    .stats
                    .get(&format!("group.{}.unserved", d.poller_group))
                    .is_some_and(|v| *v > 0.0)
        }),
        Err(_) => false,
    };
    if unserved {
        return format!(
            "no poller serves group {g}: start a node with POLLER_GROUP={g} or move the device to a served group",
            g = d.poller_group
        );
    }
    if d.last_polled.is_none() {
        return format!(
            "queued for its first poll (added {})",
            view::ago(now - d.inserted.timestamp())
        );
    }
    String::new()
}

fn device_info(d: &Device, now: i64, stale_after: i64) -> DeviceInfo {
    DeviceInfo {
        id: d.device_id,
        hostname: d.hostname.clone(),
        pending: d.last_polled.is_none(),
        not_polled_why: String::new(),
        stale_values: match (d.last_polled, d.disabled, d.status.is_up()) {
            (None, _, _) => String::new(),
            (Some(_), true, _) => "Disabled: the values below are from its last poll, not current.".into(),
            (Some(t), false, false) => format!(
                "Down ({}): the values below are from its last successful poll, not current (last poll attempt {} UTC).",
                if d.status_reason.is_empty() { "no answer" } else { d.status_reason.as_str() },
                view::librenms_time(&t)
            ),
            (Some(_), false, true) => String::new(),
        },
        up: d.status.is_up(),
        reason: d.status_reason.clone(),
        sys_name: opt(&d.sys_name),
        sys_descr: opt(&d.sys_descr),
        sys_object_id: opt(&d.sys_object_id),
        contact: opt(&d.sys_contact),
        location: opt(&d.sys_location),
        os: d.os.clone(),
        hardware: opt(&d.hardware),
        version: opt(&d.version),
        uptime: match (d.uptime, d.uptime_source.as_deref()) {
            (Some(u), Some(src)) => format!("{} ({src})", view::duration(u)),
            (Some(u), None) => view::duration(u),
            _ => String::new(),
        },
        last_polled: d
            .last_polled
            .map_or_else(|| "never".to_string(), |t| view::ago(now - t.timestamp())),
        last_polled_at: d
            .last_polled
            .as_ref()
            .map(view::librenms_time)
            .unwrap_or_default(),
        stale: is_stale(d, now, stale_after),
        poll_time: d
            .last_polled_timetaken
            .map(|s| format!("{s:.2} s"))
            .unwrap_or_default(),
        snmp: format!("{} udp/{}", d.snmp.version, d.snmp.port),
    }
}

fn port_row(p: &Port) -> PortRow {
    let rate = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| view::bits_per_sec(r * 8.0));
    let oper = opt(&p.if_oper_status);
    PortRow {
        id: p.port_id,
        name: p.label(),
        descr: opt(&p.if_descr),
        alias: opt(&p.if_alias),
        admin: opt(&p.if_admin_status),
        oper_class: match oper.as_str() {
            "up" => "up",
            "down" | "lowerLayerDown" if p.if_admin_status.as_deref() == Some("up") => "down",
            _ => "muted",
        },
        oper,
        speed: p.if_speed.map(view::speed).unwrap_or_default(),
        in_rate: rate(p.in_octets_rate),
        out_rate: rate(p.out_octets_rate),
    }
}

fn event_row(e: &Event) -> EventRow {
    let (severity, class) = match e.severity {
        Severity::Ok => ("ok", "up"),
        Severity::Info => ("info", ""),
        Severity::Notice => ("notice", ""),
        Severity::Warning => ("warning", "warn"),
        Severity::Error => ("error", "down"),
        Severity::Critical => ("critical", "down"),
    };
    EventRow {
        at: view::librenms_time(&e.datetime),
        severity,
        class,
        kind: e.kind.clone(),
        message: e.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(
            safe_next(Some("/device/3?period=week")),
            "/device/3?period=week"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "devices",
            "/a\r\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/devices", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/devices");
    }

    #[test]
    fn encodes_next() {
        assert_eq!(
            percent_encode("/device/3?period=week&x"),
            "/device/3%3Fperiod%3Dweek%26x"
        );
    }
}

// --- status

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    store_dialect: &'static str,
    store_node: String,
    store_ok: bool,
    store_error: String,
    ts: lookout_timeseries::TimeSeriesStats,
    latency_mean: String,
    latency_max: String,
}

fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// `GET /status`: this node's view of its backends (the metrics the issue asks the status
/// page to show: time-series updates written, queued, replayed, dropped, latency).
pub(crate) async fn status(u: PageUser, State(ctx): State<Shared>) -> Result<Response, WebError> {
    if let Err(refused) = u.require_global_read() {
        return Ok(*refused);
    }
    let s = crate::api::status_snapshot(&ctx).await;
    let page = StatusPage {
        layout: Layout::new(&ctx, &u),
        store_dialect: s.store_dialect,
        store_node: s.store_node.unwrap_or_default(),
        store_ok: s.store_error.is_none(),
        store_error: s.store_error.unwrap_or_default(),
        latency_mean: micros(
            s.timeseries.round_trip_micros_total / s.timeseries.round_trips.max(1),
        ),
        latency_max: micros(s.timeseries.round_trip_micros_max),
        ts: s.timeseries,
    };
    Ok(render(&page)?.into_response())
}

// --- health rows of the device page

struct HealthRow {
    kind: &'static str,
    descr: String,
    used: String,
    size: String,
    usage: String,
    /// Over 90 %: shown in the "down" colour, the way an engineer scans for trouble.
    high: bool,
}

struct ModuleRow {
    module: String,
    seconds: String,
    status: String,
    message: String,
}

/// `3.5 MiB`: the same binary units as the RRD disk status.
fn bytes(n: u64) -> String {
    lookout_timeseries::disk::human_bytes(n)
}

fn health_rows(
    processors: &[lookout_store::Processor],
    mempools: &[lookout_store::Mempool],
    storage: &[lookout_store::Storage],
) -> Vec<HealthRow> {
    let pct = |p: f64| format!("{p:.0} %");
    let mut rows = Vec::new();
    for p in processors {
        rows.push(HealthRow {
            kind: "processor",
            descr: p.processor_descr.clone(),
            used: String::new(),
            size: String::new(),
            usage: p.processor_usage.map(pct).unwrap_or_else(|| "-".into()),
            high: p.processor_usage.is_some_and(|u| u > 90.0),
        });
    }
    for m in mempools {
        rows.push(HealthRow {
            kind: "memory",
            descr: m.mempool_descr.clone(),
            used: bytes(m.mempool_used),
            size: bytes(m.mempool_total),
            usage: pct(m.mempool_perc),
            high: m.mempool_perc > 90.0,
        });
    }
    for s in storage {
        rows.push(HealthRow {
            kind: "storage",
            descr: s.storage_descr.clone(),
            used: bytes(s.storage_used),
            size: bytes(s.storage_size),
            usage: pct(s.storage_perc),
            high: s.storage_perc > 90.0,
        });
    }
    rows
}
