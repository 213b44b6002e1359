//! Probes for load balancers and orchestrators, without authentication:
//!
//! - `/healthz`: liveness. 200 as long as the process answers HTTP; it touches no backend, so
//!   a database outage does not get every instance restarted at once.
//! - `/readyz`: readiness. 200 when the store answers and, where the coordination backend is
//!   Redis, Redis answers too (sessions and the cluster view live there); 503 naming what
//!   failed otherwise, so the balancer sends users to an instance that can serve them.
//! - `/health`: the older combined check (store only), kept for existing balancer configs.
//!
//! Each backend check is bounded by [`PROBE_TIMEOUT`]: balancers give up after a few seconds,
//! and the store's own retries can take much longer when the database is gone (~15 s seen
//! with MariaDB unreachable), so the probe answers 503 itself.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::Shared;

/// How long a probe waits for one backend.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
}

async fn healthz(State(ctx): State<Shared>) -> Response {
    Json(json!({"status": "ok", "node": ctx.state.node_name})).into_response()
}

/// `None` when the store answered in time; otherwise what went wrong, for the probe's body.
async fn check_store(ctx: &Shared) -> Option<&'static str> {
    match tokio::time::timeout(PROBE_TIMEOUT, ctx.state.store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "probe: store ping failed");
            Some("store unreachable")
        }
        Err(_) => {
            tracing::warn!(timeout = ?PROBE_TIMEOUT, "probe: store ping timed out");
            Some("store did not answer in time")
        }
    }
}

/// `None` when the coordination backend answered (always, in-process); otherwise why not.
async fn check_coord(ctx: &Shared) -> Option<&'static str> {
    if ctx.state.coord.backend_name() != "redis" {
        return None;
    }
    match tokio::time::timeout(PROBE_TIMEOUT, ctx.state.coord.current_master()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "probe: redis unreachable");
            Some("redis unreachable")
        }
        Err(_) => {
            tracing::warn!(timeout = ?PROBE_TIMEOUT, "probe: redis timed out");
            Some("redis did not answer in time")
        }
    }
}

fn answer(ctx: &Shared, failures: Vec<&'static str>) -> Response {
    if failures.is_empty() {
        return Json(json!({"status": "ok", "node": ctx.state.node_name})).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "error",
            "node": ctx.state.node_name,
            "message": failures.join("; "),
        })),
    )
        .into_response()
}

async fn readyz(State(ctx): State<Shared>) -> Response {
    let (store, coord) = tokio::join!(check_store(&ctx), check_coord(&ctx));
    answer(&ctx, store.into_iter().chain(coord).collect())
}

async fn health(State(ctx): State<Shared>) -> Response {
    let store = check_store(&ctx).await;
    answer(&ctx, store.into_iter().collect())
}
