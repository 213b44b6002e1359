//! Adding devices from the web and the API, one at a time or in bulk. The settings are the
//! defaults (v2c, port 161, community `public`) with the given fields applied through
//! `device_edit` (the same checks as an edit); the device is probed over SNMP first unless
//! `force_add` is set, so a typo in a community is caught before anything is stored.
//!
//! - `POST /api/v0/devices` (admin): LibreNMS's `add_device` body (`hostname`, `version`,
//!   `community`, `port`, `transport`, `authlevel`, `authname`, `authpass`, `authalgo`,
//!   `cryptopass`, `cryptoalgo`, `poller_group`, `force_add`).
//! - `/devices/add` (admin): the form for one device and a bulk box (one device per line:
//!   `hostname[,community[,port[,version]]]`, `#` comments), answered line by line.
//!
//! The probe is behind [`DeviceProber`], which the binary implements with the poller's SNMP
//! engine, so this crate needs no poller.

use std::future::Future;
use std::pin::Pin;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lookout_core::{validate_hostname, NewDevice, SnmpConfig};
use lookout_store::StoreError;
use serde_json::{json, Value};

use crate::alerts::pages::{check_csrf, field, form_pairs, render, FormBody};
use crate::api::ApiUser;
use crate::device_edit::{apply_to, DeviceSettings};
use crate::error::ApiError;
use crate::pages::{Layout, PageUser};
use crate::Shared;

/// Checks that a device answers SNMP with given settings; `Ok(sysName)` when it does.
pub trait DeviceProber: Send + Sync {
    fn probe<'a>(
        &'a self,
        hostname: &'a str,
        snmp: &'a SnmpConfig,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/devices/add", get(form).post(submit))
}

/// What adding one device came to.
#[derive(Debug, PartialEq)]
pub(crate) enum Added {
    Ok { device_id: i64, sys_name: String },
    Refused(String),
    Exists,
}

/// The settings of a new device from `changes` (LibreNMS field names; `version` is an alias
/// of `snmpver`), or what is wrong with them.
pub(crate) fn settings(changes: &[(String, Value)]) -> Result<DeviceSettings, String> {
    let changes: Vec<(String, Value)> = changes
        .iter()
        .map(|(k, v)| {
            let k = if k == "version" {
                "snmpver"
            } else {
                k.as_str()
            };
            (k.to_string(), v.clone())
        })
        .collect();
    let base = DeviceSettings {
        snmp: SnmpConfig::default(),
        poller_group: 0,
        disabled: false,
    };
    if changes.is_empty() {
        return Ok(base);
    }
    apply_to(base, &changes)
}

/// Adds one device: validate, refuse a duplicate, probe (unless `force`), store.
pub(crate) async fn add_one(
    ctx: &Shared,
    hostname: &str,
    s: DeviceSettings,
    force: bool,
) -> Result<Added, StoreError> {
    if let Err(e) = validate_hostname(hostname) {
        return Ok(Added::Refused(e.to_string()));
    }
    let store = &ctx.state.store;
    if store.device_by_hostname(hostname).await?.is_some() {
        return Ok(Added::Exists);
    }
    let mut sys_name = String::new();
    if !force {
        let Some(prober) = &ctx.state.prober else {
            return Ok(Added::Refused(
                "this instance cannot probe devices; add with force_add".into(),
            ));
        };
        match prober.probe(hostname, &s.snmp).await {
            Ok(name) => sys_name = name,
            Err(e) => {
                return Ok(Added::Refused(format!(
                "{e}; nothing stored (check host, port, community/credentials, or force the add)"
            )))
            }
        }
    }
    let new = NewDevice {
        hostname: hostname.to_string(),
        snmp: s.snmp.clone(),
        poller_group: s.poller_group,
    };
    let d = match store.add_device(&new).await {
        Ok(d) => d,
        Err(StoreError::Duplicate { .. }) => return Ok(Added::Exists),
        Err(e) => return Err(e),
    };
    if s.disabled {
        store
            .update_device_settings(d.device_id, &s.snmp, s.poller_group, true)
            .await?;
    }
    Ok(Added::Ok {
        device_id: d.device_id,
        sys_name,
    })
}

/// `POST /api/v0/devices`
pub(crate) async fn api_add(
    user: ApiUser,
    State(ctx): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let Some(obj) = body.as_object() else {
        return Err(bad("the body must be a JSON object".into()));
    };
    let hostname = obj
        .get("hostname")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("hostname is required".into()))?
        .to_string();
    let force = match obj.get("force_add") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => matches!(
            v.as_str()
                .or(v.as_i64().map(|n| if n == 0 { "0" } else { "1" })),
            Some("1" | "true")
        ),
    };
    if let Some(t) = obj.get("transport").and_then(Value::as_str) {
        if !t.eq_ignore_ascii_case("udp") {
            return Err(bad(format!("transport {t:?}: only udp is supported")));
        }
    }
    let changes: Vec<(String, Value)> = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "hostname" | "force_add" | "transport"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let s = settings(&changes).map_err(bad)?;
    match add_one(&ctx, &hostname, s, force).await? {
        Added::Ok { device_id, .. } => {
            tracing::info!(by = %user.user.username, device = %hostname, forced = force, "device added");
            let d = ctx.state.store.device(device_id).await?;
            Ok((
                StatusCode::CREATED,
                Json(json!({
                    "status": "ok",
                    "message": format!("Device {hostname} ({device_id}) has been added successfully"),
                    "devices": d.iter().map(crate::api::device_json).collect::<Vec<_>>(),
                })),
            )
                .into_response())
        }
        Added::Exists => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("device {hostname} exists already"),
        )),
        Added::Refused(m) => Err(bad(format!("cannot add {hostname}: {m}"))),
    }
}

/// A device's hostname and the fields given for it.
pub type DeviceLine = (String, Vec<(String, Value)>);

/// One line of the bulk box: `hostname[,community[,port[,version]]]`; `None` for a blank or
/// comment line.
pub fn parse_line(line: &str) -> Option<Result<DeviceLine, String>> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    let parts: Vec<&str> = line.split(',').map(str::trim).collect();
    if parts.len() > 4 {
        return Some(Err(format!(
            "{line:?}: expected hostname[,community[,port[,version]]]"
        )));
    }
    let mut changes = Vec::new();
    for (name, v) in ["community", "port", "snmpver"]
        .iter()
        .zip(parts.iter().skip(1))
    {
        if !v.is_empty() {
            changes.push((name.to_string(), Value::String(v.to_string())));
        }
    }
    Some(Ok((parts[0].to_string(), changes)))
}

// ------------------------------------------------------------------ the page

struct ResultRow {
    line: String,
    ok: bool,
    message: String,
    device_id: i64,
}

#[derive(Template)]
#[template(path = "device_add.html")]
struct AddPage {
    layout: Layout,
    results: Vec<ResultRow>,
    error: String,
    hostname: String,
    can_probe: bool,
}

fn page(
    ctx: &Shared,
    u: &PageUser,
    status: StatusCode,
    results: Vec<ResultRow>,
    error: String,
    hostname: String,
) -> Response {
    render(
        status,
        &AddPage {
            layout: Layout::new(ctx, u),
            results,
            error,
            hostname,
            can_probe: ctx.state.prober.is_some(),
        },
    )
}

async fn form(u: PageUser, State(ctx): State<Shared>) -> Response {
    if let Err(r) = u.require_admin() {
        return *r;
    }
    page(
        &ctx,
        &u,
        StatusCode::OK,
        Vec::new(),
        String::new(),
        String::new(),
    )
}

fn row(line: String, added: Added) -> ResultRow {
    match added {
        Added::Ok {
            device_id,
            sys_name,
        } => ResultRow {
            line,
            ok: true,
            message: if sys_name.is_empty() {
                "added (not probed)".into()
            } else {
                format!("added: {sys_name}")
            },
            device_id,
        },
        Added::Exists => ResultRow {
            line,
            ok: false,
            message: "exists already".into(),
            device_id: 0,
        },
        Added::Refused(m) => ResultRow {
            line,
            ok: false,
            message: m,
            device_id: 0,
        },
    }
}

/// `POST /devices/add`: the single form (`hostname` set) or the bulk box (`bulk`).
async fn submit(u: PageUser, State(ctx): State<Shared>, form: FormBody) -> Response {
    let form = match form_pairs(form) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = check_csrf(&u, &form).and_then(|()| u.require_admin()) {
        return *r;
    }
    let force = field(&form, "force") == "1";
    let mut results = Vec::new();
    let bulk = field(&form, "bulk");
    if !bulk.is_empty() {
        for line in bulk.lines().take(1000) {
            let Some(parsed) = parse_line(line) else {
                continue;
            };
            let r = match parsed.and_then(|(h, ch)| settings(&ch).map(|s| (h, s))) {
                Err(m) => ResultRow {
                    line: line.trim().into(),
                    ok: false,
                    message: m,
                    device_id: 0,
                },
                Ok((host, s)) => match add_one(&ctx, &host, s, force).await {
                    Ok(a) => row(line.trim().into(), a),
                    Err(e) => return crate::error::WebError::from(e).into_response(),
                },
            };
            results.push(r);
        }
        tracing::info!(by = %u.user.username, lines = results.len(), added = results.iter().filter(|r| r.ok).count(), "bulk device add");
        return page(
            &ctx,
            &u,
            StatusCode::OK,
            results,
            String::new(),
            String::new(),
        );
    }
    let hostname = field(&form, "hostname").to_string();
    let mut changes = Vec::new();
    for name in [
        "snmpver",
        "port",
        "timeout",
        "retries",
        "authlevel",
        "authname",
        "authalgo",
        "cryptoalgo",
        "poller_group",
        "community",
        "authpass",
        "cryptopass",
    ] {
        let v = field(&form, name);
        if !v.is_empty() {
            changes.push((name.to_string(), Value::String(v.to_string())));
        }
    }
    let s = match settings(&changes) {
        Ok(s) => s,
        Err(m) => return page(&ctx, &u, StatusCode::BAD_REQUEST, Vec::new(), m, hostname),
    };
    match add_one(&ctx, &hostname, s, force).await {
        Ok(Added::Ok { device_id, .. }) => {
            tracing::info!(by = %u.user.username, device = %hostname, forced = force, "device added from the web");
            axum::response::Redirect::to(&format!("/device/{device_id}")).into_response()
        }
        Ok(Added::Exists) => page(
            &ctx,
            &u,
            StatusCode::CONFLICT,
            Vec::new(),
            format!("device {hostname} exists already"),
            hostname,
        ),
        Ok(Added::Refused(m)) => page(&ctx, &u, StatusCode::BAD_REQUEST, Vec::new(), m, hostname),
        Err(e) => crate::error::WebError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bulk_lines() {
        assert_eq!(parse_line("  # a comment"), None);
        assert_eq!(parse_line(""), None);
        let (h, ch) = parse_line("r1.example.net, s3cret, 1161 # core")
            .unwrap()
            .unwrap();
        assert_eq!(h, "r1.example.net");
        assert_eq!(
            ch,
            vec![
                ("community".into(), json!("s3cret")),
                ("port".into(), json!("1161"))
            ]
        );
        let (_, ch) = parse_line("r2,,,v1").unwrap().unwrap();
        assert_eq!(ch, vec![("snmpver".into(), json!("v1"))]);
        assert!(parse_line("a,b,c,d,e").unwrap().is_err());
    }

    #[test]
    fn settings_default_and_checked() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.snmp, SnmpConfig::default());
        let s = settings(&[
            ("version".into(), json!("v1")),
            ("community".into(), json!("x")),
        ])
        .unwrap();
        assert_eq!(s.snmp.version.as_str(), "v1");
        assert!(settings(&[("port".into(), json!("0"))])
            .unwrap_err()
            .contains("port"));
    }
}
