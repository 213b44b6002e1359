//! Lookout's web role: server-rendered pages for engineers (login, device list, device page
//! with interface traffic graphs), the LibreNMS-shaped REST API (`/api/v0`, `X-Auth-Token`),
//! the JSON series the graphs draw, embedded static assets and the load balancer probes
//! (`/healthz`, `/readyz`, `/health`).
//!
//! The binary builds a [`WebState`] and serves [`router`]. Every instance is stateless: session
//! records, users and data live in the store, graphs in the time series, and the session
//! cookie is sealed under `APP_KEY` (see [`session`]), so any number of instances can run
//! behind a load balancer and any of them continues a session another one started.
//!
//! Code map: `auth` (APP_KEY, passwords, API tokens), `session` (sealed cookies, CSRF),
//! `sessions` (server-side session records), `access` (roles and device grants, asked by
//! every handler), `security` (time-outs, login throttle, client address),
//! `pages` (HTML), `api` (JSON API), `graph` (series for uPlot), `assets` (embedded files),
//! `view` (pure formatting), `error` (how failures become responses), `probes` (health checks).

mod access;
pub mod auth;
pub mod security;
pub mod session;
mod sessions;
mod timespec;

mod alerts;
mod api;
mod assets;
mod dashboard;
pub mod device_add;
pub mod device_edit;
mod device_list;
mod device_pages;
mod error;
mod graph;
mod pages;
pub mod poller;
mod probes;
pub mod rrd_disk;
mod users;
mod view;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{middleware, Router};
use lookout_store::Store;
use lookout_timeseries::TimeSeries;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

pub use auth::{hash_password, new_api_token, token_sha256, verify_password, AppKey, AuthError};
pub use error::WebError;
pub use security::SecurityOptions;

/// Everything a web instance needs; the binary builds it once.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub timeseries: TimeSeries,
    /// Coordination backend: the poller page shows nodes, master and queues from it.
    pub coord: lookout_coord::Coord,
    /// Seals session cookies; instances sharing it share sessions.
    pub app_key: AppKey,
    /// Poll interval, used to pick graph resolutions and to flag stale devices.
    pub poll_interval_secs: u64,
    /// Shown in the page footer and `/health`, so one can tell which instance answered.
    pub node_name: String,
    /// The alerting engine of this process: acknowledgements, rule tests and the rule
    /// catalog. `None`: alert pages and API still read, but cannot act.
    pub alerting: Option<Arc<lookout_alerting::engine::Engine>>,
    /// Session time-outs, login throttle, trusted proxies, password policy.
    pub security: security::SecurityOptions,
    /// Probes a device before it is added (the binary's SNMP engine); `None`: adds must be
    /// forced.
    pub prober: Option<Arc<dyn device_add::DeviceProber>>,
    /// File sizes and free-space floor for the "RRD disk" status (None: not shown).
    pub rrd_disk: Option<rrd_disk::RrdDiskOptions>,
}

/// State shared by handlers: the public state plus what is derived from it once.
pub(crate) struct Ctx {
    pub(crate) state: WebState,
    pub(crate) sealer: session::CookieSealer,
    /// Bounds concurrent password checks: each argon2 run takes 19 MiB and a core for tens
    /// of milliseconds, so a login flood must queue instead of exhausting memory.
    pub(crate) password_slots: tokio::sync::Semaphore,
    /// Bytes the existing RRD files take, measured at most every few minutes.
    pub(crate) rrd_existing: rrd_disk::ExistingCache,
}

pub(crate) type Shared = Arc<Ctx>;

/// The whole web application: pages, API, graph data, assets and `/health`.
pub fn router(state: WebState) -> Router {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let ctx: Shared = Arc::new(Ctx {
        sealer: session::CookieSealer::new(&state.app_key),
        password_slots: tokio::sync::Semaphore::new(cores),
        rrd_existing: rrd_disk::ExistingCache::default(),
        state,
    });
    let api = Router::new()
        .route("/", get(api::index::index))
        .route("/system", get(api::index::system))
        .route("/devices", get(api::devices).post(device_add::api_add))
        .route("/ports", get(api::ports::all))
        .route("/ports/{id}", get(api::ports::one))
        .route("/ports/search/{q}", get(api::ports::search_any))
        .route("/ports/search/{field}/{q}", get(api::ports::search_field))
        .route("/logs/eventlog", get(api::logs::eventlog))
        .route("/logs/eventlog/{hostname}", get(api::logs::device_eventlog))
        .route("/logs/authlog", get(api::logs::authlog))
        .route("/poller_group", get(api::poller_groups))
        .route("/status", get(api::status))
        .route("/poller", get(poller::api))
        .route(
            "/devices/{hostname}",
            get(api::device)
                .patch(api::update_device)
                .delete(api::delete_device),
        )
        .route("/devices/{hostname}/ports", get(api::ports))
        .route("/devices/{hostname}/health", get(api::health))
        .route("/devices/{hostname}/links", get(api::links))
        .route("/devices/{hostname}/ip", get(api::ip_addresses))
        .route("/devices/{hostname}/discover", get(api::discover))
        .route("/devices/{hostname}/ports/{ifname}", get(api::port))
        .route(
            "/devices/{hostname}/ports/{ifname}/port_bits",
            get(graph::port_bits_png),
        )
        .route(
            "/devices/{hostname}/ports/{ifname}/series",
            get(graph::port_series),
        )
        .merge(alerts_api())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed);
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/devices", get(device_list::page))
        .route("/device/{device_id}", get(pages::device))
        .route("/status", get(pages::status))
        .route("/poller", get(poller::page))
        .merge(alerts_pages())
        .merge(users::routes())
        .merge(device_pages::routes())
        .merge(device_add::routes())
        .route("/graph-data/port/{port_id}", get(graph::port))
        .route("/assets/{fingerprint}/{name}", get(assets::serve))
        .merge(probes::routes())
        .nest("/api/v0", api)
        .fallback(pages::not_found)
        .layer(middleware::from_fn(deadline))
        .layer(middleware::map_response(security_headers))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(ctx)
}

/// The alert endpoints under `/api/v0` (see `alerts::api`).
fn alerts_api() -> Router<Shared> {
    use alerts::api as a;
    Router::new()
        .route("/alerts", get(a::list_alerts))
        .route("/alerts/outbox", get(a::outbox))
        .route("/alerts/unmute/{id}", put(a::unmute_alert))
        .route("/alerts/{id}", get(a::get_alert).put(a::ack_alert))
        .route(
            "/rules",
            get(a::list_rules).post(a::add_rule).put(a::edit_rule),
        )
        .route("/rules/test", post(a::test_rule))
        .route(
            "/rules/{id}",
            get(a::get_rule).put(a::update_rule).delete(a::delete_rule),
        )
        .route("/logs/alertlog", get(a::alert_log))
        .route("/logs/alertlog/{hostname}", get(a::device_alert_log))
}

/// The alert pages under `/alerts` (see `alerts::pages`, `ops_pages`, `rule_pages`).
fn alerts_pages() -> Router<Shared> {
    use alerts::{ops_pages as o, pages as p, rule_pages as r};
    Router::new()
        .route("/alerts", get(p::alerts))
        .route("/alerts/{id}/ack", post(p::ack))
        .route("/alerts/{id}/unack", post(p::unack))
        .route("/alerts/log", get(p::log))
        .route("/alerts/outbox", get(p::outbox))
        .route("/alerts/rules", get(r::rules))
        .route("/alerts/rules/new", get(r::new_rule).post(r::post_new))
        .route("/alerts/rules/{id}", get(r::edit_rule).post(r::post_edit))
        .route("/alerts/rules/{id}/delete", post(r::delete))
        .route("/alerts/transports", get(o::transports))
        .route("/alerts/transports/{id}/test", post(o::send_test))
        .route(
            "/alerts/maintenance",
            get(o::maintenance).post(o::add_maintenance),
        )
        .route(
            "/alerts/maintenance/{id}/remove",
            post(o::remove_maintenance),
        )
}

/// How long a page or API request may take before it is answered 503 "the database is
/// unavailable". Without it a request waits out the store's whole retry schedule when the
/// database is unreachable (~15 s measured); with it the user gets a clear page quickly. It
/// is long enough for the store's Galera fail-over to finish inside it (a dead node costs a
/// read ~1-2 s: the pool's 1 s acquire time-out, a refused check, the next node), so a node
/// failure is still invisible to the user. Background writers (pollers) keep the store's
/// full retry schedule.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers 503 when a request runs past [`REQUEST_DEADLINE`] (HTML for pages, LibreNMS's
/// JSON error on the API). The handler is dropped, which drops its store query; an open
/// transaction is rolled back when its connection returns to the pool.
async fn deadline(req: axum::extract::Request, next: middleware::Next) -> Response {
    let path = req.uri().path().to_owned();
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(%path, deadline = ?REQUEST_DEADLINE, "request timed out waiting for the database");
            let message = "the database is unavailable";
            if path.starts_with("/api/") {
                error::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).into_response()
            } else {
                error::error_page(StatusCode::SERVICE_UNAVAILABLE, message)
            }
        }
    }
}

/// Headers every response carries: no framing (clickjacking), no MIME sniffing, scripts and
/// styles only from this origin (templates have no inline script), no referrer leakage, and
/// no caching unless the handler allows it (assets do): device data must not linger in
/// shared caches or come back through the browser's back button after logout.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let defaults = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; object-src 'none'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ];
    for (name, value) in defaults {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}
