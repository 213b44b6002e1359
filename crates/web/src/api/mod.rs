//! The REST API under `/api/v0`, in LibreNMS's shapes so that existing scripts carry over:
//! `X-Auth-Token` authentication (the store holds the token's SHA-256), `{"status":"ok",...}`
//! answers, LibreNMS column names, `last_polled` as `YYYY-MM-DD HH:MM:SS` UTC. Every failure
//! is a JSON `{"status":"error","message":...}`.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lookout_core::{Device, Port};
use lookout_store::User;
use serde_json::{json, Value};

pub(crate) mod index;
pub(crate) mod logs;
pub(crate) mod ports;

use crate::access::{needs, Access, Role};
use crate::error::ApiError;
use crate::view::librenms_time;
use crate::Shared;

/// Header carrying the API token (as in LibreNMS).
pub(crate) const TOKEN_HEADER: &str = "x-auth-token";

/// `Path` whose rejection (e.g. invalid UTF-8 in a segment) is a JSON error, not plain text.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ApiPath(t)),
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}

/// The user an API request authenticated as, and what they may see and do.
pub(crate) struct ApiUser {
    pub(crate) user: User,
    pub(crate) access: Access,
}

impl FromRequestParts<Shared> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Shared) -> Result<Self, ApiError> {
        match token_user(parts, ctx).await? {
            Some(user) => {
                let access = Access::of(&ctx.state.store, &user).await?;
                Ok(ApiUser { user, access })
            }
            None => Err(unauthorized(parts)),
        }
    }
}

impl ApiUser {
    /// 403 unless the caller sees every device (global read or admin).
    pub(crate) fn require_global_read(&self) -> Result<(), ApiError> {
        if self.access.sees_all() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                needs(Role::GlobalRead),
            ))
        }
    }

    /// 403 unless the caller is an admin.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.access.is_admin() {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, needs(Role::Admin)))
        }
    }

    /// The device by hostname or id, 404 when unknown or not visible to the caller.
    pub(crate) async fn device(&self, ctx: &Shared, key: &str) -> Result<Device, ApiError> {
        visible_device(ctx, &self.access, key).await
    }
}

/// The device by hostname or id, 404 when unknown or not visible with `access`.
pub(crate) async fn visible_device(
    ctx: &Shared,
    access: &Access,
    key: &str,
) -> Result<Device, ApiError> {
    let d = find_device(ctx, key).await?;
    if access.can_see(d.device_id) {
        Ok(d)
    } else {
        Err(device_not_found(key))
    }
}

/// The user whose token is in `X-Auth-Token`, `None` when there is no usable token.
pub(crate) async fn token_user(parts: &Parts, ctx: &Shared) -> Result<Option<User>, ApiError> {
    let Some(token) = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let digest = crate::auth::token_sha256(token);
    Ok(ctx.state.store.user_by_api_token(&digest).await?)
}

fn unauthorized(parts: &Parts) -> ApiError {
    let message = if parts.headers.contains_key(TOKEN_HEADER) {
        "invalid API token"
    } else {
        "missing API token: send it in the X-Auth-Token header (create one with `lookout token create`)"
    };
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

type Params = Result<axum::extract::Query<HashMap<String, String>>, QueryRejection>;

type DeviceFilter = Box<dyn Fn(&Device) -> bool + Send + Sync>;

/// LibreNMS's `list_devices` filter: `type` and, for the typed ones, `query`.
fn device_filter(q: &HashMap<String, String>) -> Result<DeviceFilter, ApiError> {
    let kind = q
        .get("type")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or("all");
    let needle = q
        .get("query")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let lower = needle.to_lowercase();
    let contains = move |v: Option<&str>| v.is_some_and(|v| v.to_lowercase().contains(&lower));
    let need_query = || {
        if needle.is_empty() {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("type={kind} needs a query= value"),
            ))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        "all" => Box::new(|_| true),
        "active" => Box::new(|d| !d.disabled),
        // Never polled is not "up"; LibreNMS counts it down (status 0) too.
        "up" => Box::new(|d| !d.disabled && d.status.is_up()),
        "down" => Box::new(|d| !d.disabled && !d.status.is_up()),
        "disabled" => Box::new(|d| d.disabled),
        "ignored" => Box::new(|_| false),
        "os" => {
            need_query()?;
            Box::new(move |d| d.os.eq_ignore_ascii_case(&needle))
        }
        "location" => {
            need_query()?;
            Box::new(move |d| contains(d.sys_location.as_deref()))
        }
        "hostname" => {
            need_query()?;
            Box::new(move |d| contains(Some(&d.hostname)))
        }
        "sysName" => {
            need_query()?;
            Box::new(move |d| contains(d.sys_name.as_deref()))
        }
        "hardware" => {
            need_query()?;
            Box::new(move |d| contains(d.hardware.as_deref()))
        }
        "version" => {
            need_query()?;
            Box::new(move |d| contains(d.version.as_deref()))
        }
        "serial" => {
            need_query()?;
            Box::new(move |d| contains(d.serial.as_deref()))
        }
        "device_id" => {
            let id: i64 = needle.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "type=device_id needs a numeric query=",
                )
            })?;
            Box::new(move |d| d.device_id == id)
        }
        "poller_group" => {
            let g: i32 = needle.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "type=poller_group needs a numeric query=",
                )
            })?;
            Box::new(move |d| d.poller_group == g)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "type={other:?} is not a device filter: use all, active, up, down, disabled, \
                     ignored, os, location, hostname, sysName, hardware, version, serial, \
                     device_id or poller_group"
                ),
            ))
        }
    })
}

/// `GET /api/v0/devices[?type=...&query=...]`
pub(crate) async fn devices(
    user: ApiUser,
    State(ctx): State<Shared>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let axum::extract::Query(q) =
        q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {e}")))?;
    let keep = device_filter(&q)?;
    let mut devices = user.access.visible(ctx.state.store.devices().await?);
    devices.retain(|d| keep(d));
    let list: Vec<Value> = devices.iter().map(device_json).collect();
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "devices": list}),
    ))
}

/// `GET /api/v0/devices/{hostname}`; like LibreNMS, a numeric device id works too.
pub(crate) async fn device(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let d = user.device(&ctx, &hostname).await?;
    Ok(Json(
        json!({"status": "ok", "count": 1, "devices": [device_json(&d)]}),
    ))
}

/// `GET /api/v0/devices/{hostname}/ports`
pub(crate) async fn ports(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let d = user.device(&ctx, &hostname).await?;
    let ports = ctx.state.store.ports(d.device_id).await?;
    let list: Vec<Value> = ports.iter().map(port_json).collect();
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "ports": list}),
    ))
}

/// `GET /api/v0/devices/{hostname}/ports/{ifname}` (LibreNMS `get_port_stats_by_port_hostname`):
/// one port by ifName, else ifDescr. Names with `/` are sent URL-encoded (`ge-0%2F0%2F1`).
pub(crate) async fn port(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath((hostname, ifname)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, p) = find_port(&ctx, &user.access, &hostname, &ifname).await?;
    Ok(Json(json!({"status": "ok", "port": port_json(&p)})))
}

/// A device's port by ifName, else ifDescr (LibreNMS matches either); 404 JSON otherwise.
pub(crate) async fn find_port(
    ctx: &Shared,
    access: &Access,
    hostname: &str,
    ifname: &str,
) -> Result<(Device, Port), ApiError> {
    let d = visible_device(ctx, access, hostname).await?;
    let ports = ctx.state.store.ports(d.device_id).await?;
    let found = ports
        .iter()
        .find(|p| p.if_name.as_deref() == Some(ifname))
        .or_else(|| ports.iter().find(|p| p.if_descr.as_deref() == Some(ifname)))
        .cloned();
    match found {
        Some(p) => Ok((d, p)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("device {hostname} has no port {ifname}"),
        )),
    }
}

/// Unknown path under `/api/v0`.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint")
}

pub(crate) async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
    .into_response()
}

async fn find_device(ctx: &Shared, key: &str) -> Result<Device, ApiError> {
    let store = &ctx.state.store;
    if let Some(d) = store.device_by_hostname(key).await? {
        return Ok(d);
    }
    if let Ok(id) = key.parse::<i64>() {
        if let Some(d) = store.device(id).await? {
            return Ok(d);
        }
    }
    Err(device_not_found(key))
}

/// The same answer for an unknown device and one the caller may not see.
fn device_not_found(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("device {key} does not exist"),
    )
}

/// A device in LibreNMS's API shape. SNMP credentials are deliberately left out.
pub(crate) fn device_json(d: &Device) -> Value {
    json!({
        "device_id": d.device_id,
        "hostname": d.hostname,
        "sysName": d.sys_name,
        "sysDescr": d.sys_descr,
        "sysObjectID": d.sys_object_id,
        "sysContact": d.sys_contact,
        "location": d.sys_location,
        "os": d.os,
        "hardware": d.hardware,
        "version": d.version,
        "serial": d.serial,
        "uptime": d.uptime,
        "uptime_source": d.uptime_source,
        "status": i32::from(d.status.is_up()),
        "status_reason": d.status_reason,
        "last_polled": d.last_polled.as_ref().map(librenms_time),
        "last_polled_timetaken": d.last_polled_timetaken,
        "last_discovered": d.last_discovered.as_ref().map(librenms_time),
        "poller_group": d.poller_group,
        "disabled": i32::from(d.disabled),
        "snmpver": d.snmp.version.as_str(),
        "port": d.snmp.port,
        "inserted": librenms_time(&d.inserted),
    })
}

/// A port in LibreNMS's API shape (`poll_time` is a unix time stamp there, as here).
pub(crate) fn port_json(p: &Port) -> Value {
    json!({
        "port_id": p.port_id,
        "device_id": p.device_id,
        "ifIndex": p.if_index,
        "ifName": p.if_name,
        "ifDescr": p.if_descr,
        "ifAlias": p.if_alias,
        "ifType": p.if_type,
        "ifMtu": p.if_mtu,
        "ifSpeed": p.if_speed,
        "ifPhysAddress": p.if_phys_address,
        "ifAdminStatus": p.if_admin_status,
        "ifOperStatus": p.if_oper_status,
        "ifInOctets": p.counters.in_octets,
        "ifOutOctets": p.counters.out_octets,
        "ifInUcastPkts": p.counters.in_ucast_pkts,
        "ifOutUcastPkts": p.counters.out_ucast_pkts,
        "ifInErrors": p.counters.in_errors,
        "ifOutErrors": p.counters.out_errors,
        "ifInOctets_rate": p.in_octets_rate,
        "ifOutOctets_rate": p.out_octets_rate,
        "ifInUcastPkts_rate": p.in_ucast_pkts_rate,
        "ifOutUcastPkts_rate": p.out_ucast_pkts_rate,
        "ifInErrors_rate": p.in_errors_rate,
        "ifOutErrors_rate": p.out_errors_rate,
        "poll_time": p.poll_time.map(|t| t.timestamp()),
        "poll_period": p.poll_period,
        "deleted": i32::from(p.deleted),
    })
}

/// What `/status` and `/api/v0/status` show.
pub(crate) struct StatusSnapshot {
    pub(crate) store_dialect: &'static str,
    pub(crate) store_node: Option<String>,
    pub(crate) store_error: Option<String>,
    pub(crate) timeseries: lookout_timeseries::TimeSeriesStats,
}

pub(crate) async fn status_snapshot(ctx: &Shared) -> StatusSnapshot {
    let store = &ctx.state.store;
    let store_error =
        match tokio::time::timeout(std::time::Duration::from_secs(2), store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("no answer within 2 s".to_string()),
        };
    StatusSnapshot {
        store_dialect: store.dialect(),
        store_node: store.database_node(),
        store_error,
        timeseries: ctx.state.timeseries.stats(),
    }
}

/// `GET /api/v0/status`: the status page as JSON, for monitoring the monitor.
pub(crate) async fn status(
    user: ApiUser,
    State(ctx): State<Shared>,
) -> Result<Json<Value>, ApiError> {
    user.require_global_read()?;
    let s = status_snapshot(&ctx).await;
    let t = &s.timeseries;
    Ok(Json(json!({
        "status": "ok",
        "node": ctx.state.node_name,
        "store": {"dialect": s.store_dialect, "node": s.store_node, "error": s.store_error},
        "timeseries": {
            "written": t.written, "queued": t.queued, "replayed": t.replayed,
            "already_written": t.already_written, "rejected": t.rejected, "dropped": t.dropped,
            "pending": t.pending, "unflushed": t.unflushed, "round_trips": t.round_trips,
            "round_trip_micros_total": t.round_trip_micros_total,
            "round_trip_micros_max": t.round_trip_micros_max,
        },
    })))
}

/// `GET /api/v0/devices/{hostname}/health`: processors, memory pools and storage with their
/// current values (LibreNMS column names), and where the last poll's time went.
pub(crate) async fn health(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let d = user.device(&ctx, &hostname).await?;
    let store = &ctx.state.store;
    Ok(Json(json!({
        "status": "ok",
        "device_id": d.device_id,
        "processors": store.processors(d.device_id).await?,
        "mempools": store.mempools(d.device_id).await?,
        "storage": store.storage(d.device_id).await?,
        "module_perf": store.module_perf(d.device_id).await?,
    })))
}

/// `GET /api/v0/devices/{hostname}/links`: the device's LLDP/CDP neighbours, LibreNMS's
/// `links` rows (`remote_device_id` set when the neighbour is a known device).
pub(crate) async fn links(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let d = user.device(&ctx, &hostname).await?;
    let links = ctx.state.store.links(d.device_id).await?;
    Ok(Json(
        json!({"status": "ok", "count": links.len(), "links": links}),
    ))
}

/// `GET /api/v0/devices/{hostname}/ip`: IPv4 and IPv6 addresses of the device's ports
/// (LibreNMS's `addresses`, rows of `ipv4_addresses` and `ipv6_addresses`).
pub(crate) async fn ip_addresses(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let d = user.device(&ctx, &hostname).await?;
    let store = &ctx.state.store;
    let mut addresses: Vec<Value> = Vec::new();
    for a in store.ipv4_addresses(d.device_id).await? {
        addresses.push(json!(a));
    }
    for a in store.ipv6_addresses(d.device_id).await? {
        addresses.push(json!(a));
    }
    Ok(Json(
        json!({"status": "ok", "count": addresses.len(), "addresses": addresses}),
    ))
}

/// `GET /api/v0/devices/{hostname}/discover`: the device's next poll runs discovery (as
/// LibreNMS, which queues it too).
pub(crate) async fn discover(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let d = user.device(&ctx, &hostname).await?;
    ctx.state.store.request_discovery(d.device_id).await?;
    Ok(Json(json!({
        "status": "ok",
        "message": format!("Device {} will be rediscovered at its next poll", d.hostname),
    })))
}

/// `GET /api/v0/poller_group`: the poller groups devices are in (LibreNMS keeps a table of
/// them; here a group exists by being used), with their device counts.
pub(crate) async fn poller_groups(
    user: ApiUser,
    State(ctx): State<Shared>,
) -> Result<Json<Value>, ApiError> {
    user.require_global_read()?;
    let mut counts = std::collections::BTreeMap::<i32, usize>::new();
    counts.insert(0, 0);
    for d in ctx.state.store.devices().await? {
        *counts.entry(d.poller_group).or_default() += 1;
    }
    let groups: Vec<Value> = counts
        .into_iter()
        .map(|(id, devices)| {
            json!({
                "id": id,
                "group_name": if id == 0 { "default".to_string() } else { format!("group {id}") },
                "devices": devices,
            })
        })
        .collect();
    Ok(Json(
        json!({"status": "ok", "count": groups.len(), "get_poller_group": groups}),
    ))
}

/// `PATCH /api/v0/devices/{hostname}` (admin): LibreNMS's `update_device` body
/// (`{"field": "community", "data": "..."}`, or arrays, or a plain object). The device keeps
/// its `device_id`, ports and history; its next poll uses the new settings.
pub(crate) async fn update_device(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let d = user.device(&ctx, &hostname).await?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let changes = crate::device_edit::changes_of(&body).map_err(bad)?;
    let s = crate::device_edit::apply(&d, &changes).map_err(bad)?;
    let updated = ctx
        .state
        .store
        .update_device_settings(d.device_id, &s.snmp, s.poller_group, s.disabled)
        .await?;
    let fields: Vec<&str> = changes.iter().map(|(f, _)| f.as_str()).collect();
    tracing::info!(by = %user.user.username, device = %d.hostname, fields = ?fields, "device updated");
    Ok(Json(json!({
        "status": "ok",
        "message": format!("Device {} updated: {}", d.hostname, fields.join(", ")),
        "devices": [device_json(&updated)],
    })))
}

/// `DELETE /api/v0/devices/{hostname}` (admin): removes the device with its ports, events
/// and alerts. Its RRD files stay (history can be archived or the device re-added).
pub(crate) async fn delete_device(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(hostname): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let d = user.device(&ctx, &hostname).await?;
    ctx.state.store.remove_device(d.device_id).await?;
    tracing::info!(by = %user.user.username, device = %d.hostname, "device removed");
    Ok(Json(json!({
        "status": "ok",
        "message": format!("Removed device {} (RRD files kept)", d.hostname),
        "devices": [device_json(&d)],
    })))
}
