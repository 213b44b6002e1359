//! Device management pages (admin): `/device/{id}/edit` changes SNMP settings, poller group
//! and the disabled flag through `device_edit` (the same checks as the API's PATCH), keeping
//! the device's id, ports and history; `/device/{id}/delete` removes it (RRD files stay).
//! Secrets are never put into the form: a blank secret field keeps the stored value.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use lookout_core::Device;
use lookout_store::StoreError;
use serde_json::Value;

use crate::alerts::pages::{
    check_csrf, field, form_pairs, path_id, render, FormBody, Pairs, Refusal,
};
use crate::error::{error_page, WebError};
use crate::pages::{Layout, PageUser};
use crate::Shared;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/device/{device_id}/edit", get(edit_form).post(edit))
        .route("/device/{device_id}/delete", post(delete))
}

fn store_err(e: StoreError) -> Refusal {
    Box::new(WebError::from(e).into_response())
}

#[derive(Template)]
#[template(path = "device_edit.html")]
struct EditPage {
    layout: Layout,
    d: Device,
    /// v3 settings shown (no passwords).
    level: String,
    user: String,
    auth_protocol: String,
    priv_protocol: String,
    timeout: String,
    error: String,
}

impl EditPage {
    fn new(ctx: &Shared, u: &PageUser, d: Device, error: String) -> EditPage {
        let v3 = d.snmp.v3.clone().unwrap_or_default_v3();
        EditPage {
            layout: Layout::new(ctx, u),
            level: v3.0,
            user: v3.1,
            auth_protocol: v3.2,
            priv_protocol: v3.3,
            timeout: format!("{}", f64::from(d.snmp.timeout_ms) / 1000.0),
            d,
            error,
        }
    }
}

/// The shown (non-secret) v3 fields, or the defaults a new v3 setup starts from.
trait V3Shown {
    fn unwrap_or_default_v3(self) -> (String, String, String, String);
}

impl V3Shown for Option<lookout_core::SnmpV3Config> {
    fn unwrap_or_default_v3(self) -> (String, String, String, String) {
        match self {
            Some(v) => (
                v.security_level,
                v.auth_user,
                v.auth_protocol,
                v.priv_protocol,
            ),
            None => ("authPriv".into(), String::new(), "SHA".into(), "AES".into()),
        }
    }
}

async fn target(u: &PageUser, ctx: &Shared, id: Option<i64>) -> Result<Device, Refusal> {
    u.require_admin()?;
    let not_found = || Box::new(error_page(StatusCode::NOT_FOUND, "no such device"));
    let id = id.ok_or_else(not_found)?;
    ctx.state
        .store
        .device(id)
        .await
        .map_err(store_err)?
        .ok_or_else(not_found)
}

async fn edit_form(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    match target(&u, &ctx, path_id(id)).await {
        Ok(d) => render(StatusCode::OK, &EditPage::new(&ctx, &u, d, String::new())),
        Err(r) => *r,
    }
}

/// The form's fields as changes: secrets only when typed, the checkbox always.
fn changes(form: &Pairs) -> Vec<(String, Value)> {
    let mut out = Vec::new();
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
    ] {
        if form.iter().any(|(k, _)| k == name) {
            out.push((
                name.to_string(),
                Value::String(field(form, name).to_string()),
            ));
        }
    }
    for secret in ["community", "authpass", "cryptopass"] {
        let v = field(form, secret);
        if !v.is_empty() {
            out.push((secret.to_string(), Value::String(v.to_string())));
        }
    }
    let disabled = form.iter().any(|(k, v)| k == "disabled" && v == "1");
    out.push(("disabled".into(), Value::Bool(disabled)));
    out
}

async fn edit(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    let run = async {
        let form = form_pairs(form)?;
        check_csrf(&u, &form)?;
        let d = target(&u, &ctx, path_id(id)).await?;
        let changes = changes(&form);
        let s = match crate::device_edit::apply(&d, &changes) {
            Ok(s) => s,
            Err(e) => {
                return Ok(render(
                    StatusCode::BAD_REQUEST,
                    &EditPage::new(&ctx, &u, d, e),
                ))
            }
        };
        ctx.state
            .store
            .update_device_settings(d.device_id, &s.snmp, s.poller_group, s.disabled)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, device = %d.hostname, "device updated from the web");
        Ok(Redirect::to(&format!("/device/{}", d.device_id)).into_response())
    };
    run.await.unwrap_or_else(|r: Refusal| *r)
}

async fn delete(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    let run = async {
        let form = form_pairs(form)?;
        check_csrf(&u, &form)?;
        let d = target(&u, &ctx, path_id(id)).await?;
        // A typed confirmation: deleting the wrong device at 3 a.m. loses its ports and events.
        if field(&form, "confirm") != d.hostname {
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &EditPage::new(
                    &ctx,
                    &u,
                    d,
                    "to delete, type the device's hostname in the confirmation field".into(),
                ),
            ));
        }
        ctx.state
            .store
            .remove_device(d.device_id)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, device = %d.hostname, "device removed from the web");
        Ok(Redirect::to("/devices").into_response())
    };
    run.await.unwrap_or_else(|r: Refusal| *r)
}
