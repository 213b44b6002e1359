//! `GET /api/v0`: the index of the API's routes (as LibreNMS answers it: a name per route
//! with its URL), and `GET /api/v0/system`: what this instance runs.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::api::ApiUser;
use crate::error::ApiError;
use crate::Shared;

/// Every route under `/api/v0`: (LibreNMS-style name, method, path). The router test checks
/// that each GET listed here is served.
pub(crate) const ROUTES: &[(&str, &str, &str)] = &[
    ("system", "GET", "/api/v0/system"),
    ("list_devices", "GET", "/api/v0/devices"),
    ("add_device", "POST", "/api/v0/devices"),
    ("get_device", "GET", "/api/v0/devices/:hostname"),
    ("update_device_field", "PATCH", "/api/v0/devices/:hostname"),
    ("del_device", "DELETE", "/api/v0/devices/:hostname"),
    ("get_port_graphs", "GET", "/api/v0/devices/:hostname/ports"),
    (
        "get_port_stats_by_port_hostname",
        "GET",
        "/api/v0/devices/:hostname/ports/:ifname",
    ),
    (
        "get_graph_by_port_hostname",
        "GET",
        "/api/v0/devices/:hostname/ports/:ifname/port_bits",
    ),
    (
        "get_port_series",
        "GET",
        "/api/v0/devices/:hostname/ports/:ifname/series",
    ),
    (
        "get_device_health",
        "GET",
        "/api/v0/devices/:hostname/health",
    ),
    ("list_links", "GET", "/api/v0/devices/:hostname/links"),
    (
        "get_device_ip_addresses",
        "GET",
        "/api/v0/devices/:hostname/ip",
    ),
    (
        "discover_device",
        "GET",
        "/api/v0/devices/:hostname/discover",
    ),
    ("get_all_ports", "GET", "/api/v0/ports"),
    ("get_port_info", "GET", "/api/v0/ports/:portid"),
    ("search_ports", "GET", "/api/v0/ports/search/:field/:search"),
    ("list_eventlog", "GET", "/api/v0/logs/eventlog"),
    (
        "list_eventlog_device",
        "GET",
        "/api/v0/logs/eventlog/:hostname",
    ),
    ("list_authlog", "GET", "/api/v0/logs/authlog"),
    ("list_alertlog", "GET", "/api/v0/logs/alertlog"),
    (
        "list_alertlog_device",
        "GET",
        "/api/v0/logs/alertlog/:hostname",
    ),
    ("get_poller_group", "GET", "/api/v0/poller_group"),
    ("list_alerts", "GET", "/api/v0/alerts"),
    ("get_alert", "GET", "/api/v0/alerts/:id"),
    ("ack_alert", "PUT", "/api/v0/alerts/:id"),
    ("unmute_alert", "PUT", "/api/v0/alerts/unmute/:id"),
    ("list_alert_outbox", "GET", "/api/v0/alerts/outbox"),
    ("list_alert_rules", "GET", "/api/v0/rules"),
    ("add_rule", "POST", "/api/v0/rules"),
    ("edit_rule", "PUT", "/api/v0/rules"),
    ("test_rule", "POST", "/api/v0/rules/test"),
    ("get_alert_rule", "GET", "/api/v0/rules/:id"),
    ("delete_rule", "DELETE", "/api/v0/rules/:id"),
    ("status", "GET", "/api/v0/status"),
    ("poller", "GET", "/api/v0/poller"),
];

/// `GET /api/v0`
pub(crate) async fn index(_user: ApiUser) -> Json<Value> {
    let mut routes = Map::new();
    for (name, method, path) in ROUTES {
        let url = if *method == "GET" {
            path.to_string()
        } else {
            format!("{method} {path}")
        };
        routes.insert((*name).to_string(), Value::String(url));
    }
    Json(Value::Object(routes))
}

/// `GET /api/v0/system`
pub(crate) async fn system(
    user: ApiUser,
    State(ctx): State<Shared>,
) -> Result<Json<Value>, ApiError> {
    user.require_global_read()?;
    let store = &ctx.state.store;
    Ok(Json(json!({
        "status": "ok",
        "count": 1,
        "system": [{
            "local_ver": env!("CARGO_PKG_VERSION"),
            "node": ctx.state.node_name,
            "database": store.dialect(),
            "database_node": store.database_node(),
            "coordination": ctx.state.coord.backend_name(),
            "poll_interval": ctx.state.poll_interval_secs,
        }],
    })))
}
