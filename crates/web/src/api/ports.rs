//! `GET /api/v0/ports` (every port the caller may see: `port_id`, `ifName`, `device_id` and
//! `hostname` by default, or the LibreNMS `columns=` of their choice), `GET /api/v0/ports/{id}`
//! (one port, every column) and `GET /api/v0/ports/search/{field}/{q}` (case-insensitive
//! substring match on `ifName`, `ifDescr` or `ifAlias`; `/ports/search/{q}` searches all three).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use lookout_core::Port;
use serde_json::{json, Map, Value};

use crate::api::{port_json, ApiPath, ApiUser};
use crate::error::ApiError;
use crate::Shared;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Ports read per store round trip.
const BATCH: i64 = 5000;

/// Every current port the caller may see, with the hostnames of their devices.
async fn visible_ports(
    ctx: &Shared,
    user: &ApiUser,
) -> Result<(Vec<Port>, HashMap<i64, String>), ApiError> {
    let store = &ctx.state.store;
    let hostnames: HashMap<i64, String> = store
        .devices()
        .await?
        .into_iter()
        .filter(|d| user.access.can_see(d.device_id))
        .map(|d| (d.device_id, d.hostname))
        .collect();
    let mut ports = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.ports_after(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.port_id;
        let full = batch.len() as i64 == BATCH;
        ports.extend(
            batch
                .into_iter()
                .filter(|p| hostnames.contains_key(&p.device_id)),
        );
        if !full {
            break;
        }
    }
    Ok((ports, hostnames))
}

/// The `columns` of a port's JSON; 400 naming an unknown column.
fn select(p: &Port, hostname: Option<&String>, columns: &[String]) -> Result<Value, ApiError> {
    let mut all = match port_json(p) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    all.insert("hostname".into(), json!(hostname));
    let mut out = Map::new();
    for c in columns {
        let v = all.get(c).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("columns: unknown column {c:?} (e.g. port_id, ifName, ifAlias, ifOperStatus, ifInOctets_rate)"),
            )
        })?;
        out.insert(c.clone(), v);
    }
    Ok(Value::Object(out))
}

fn columns(q: &HashMap<String, String>) -> Vec<String> {
    match q.get("columns").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(list) => list
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        None => ["port_id", "ifName", "device_id", "hostname"]
            .map(String::from)
            .to_vec(),
    }
}

fn query(q: Params) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {e}")))
}

/// `GET /api/v0/ports`
pub(crate) async fn all(
    user: ApiUser,
    State(ctx): State<Shared>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let cols = columns(&q);
    let (ports, hostnames) = visible_ports(&ctx, &user).await?;
    let list = ports
        .iter()
        .map(|p| select(p, hostnames.get(&p.device_id), &cols))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "ports": list}),
    ))
}

/// `GET /api/v0/ports/{id}`
pub(crate) async fn one(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("port {id} does not exist"));
    let port_id: i64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("port id {id:?} is not a number"),
        )
    })?;
    let p = ctx.state.store.port(port_id).await?.ok_or_else(not_found)?;
    if p.deleted || !user.access.can_see(p.device_id) {
        return Err(not_found());
    }
    Ok(Json(
        json!({"status": "ok", "count": 1, "port": [port_json(&p)]}),
    ))
}

const SEARCH_FIELDS: [&str; 3] = ["ifName", "ifDescr", "ifAlias"];

async fn search_in(
    ctx: &Shared,
    user: &ApiUser,
    fields: &[&str],
    needle: &str,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let cols = columns(&q);
    let needle = needle.to_lowercase();
    let (ports, hostnames) = visible_ports(ctx, user).await?;
    let hit = |p: &Port| {
        fields.iter().any(|f| {
            let v = match *f {
                "ifName" => &p.if_name,
                "ifDescr" => &p.if_descr,
                _ => &p.if_alias,
            };
            v.as_deref()
                .is_some_and(|v| v.to_lowercase().contains(&needle))
        })
    };
    let list = ports
        .iter()
        .filter(|p| hit(p))
        .map(|p| select(p, hostnames.get(&p.device_id), &cols))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(
        json!({"status": "ok", "count": list.len(), "ports": list}),
    ))
}

/// `GET /api/v0/ports/search/{field}/{q}`
pub(crate) async fn search_field(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath((field, needle)): ApiPath<(String, String)>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let Some(f) = SEARCH_FIELDS
        .iter()
        .find(|f| f.eq_ignore_ascii_case(&field))
    else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot search field {field:?}: use ifName, ifDescr or ifAlias"),
        ));
    };
    search_in(&ctx, &user, &[f], &needle, q).await
}

/// `GET /api/v0/ports/search/{q}`: ifName, ifDescr and ifAlias.
pub(crate) async fn search_any(
    user: ApiUser,
    State(ctx): State<Shared>,
    ApiPath(needle): ApiPath<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    search_in(&ctx, &user, &SEARCH_FIELDS, &needle, q).await
}
