//! The poller cluster as the coordination backend sees it: the `/poller` page and
//! `/api/v0/poller` (the same document as `lookout poller status --json`), so an engineer sees
//! which node is master, which nodes are alive, and how deep each poller group's queue is.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use lookout_coord::{MasterInfo, NodeStatus, QueueDepth};
use serde_json::{json, Value};

use crate::api::ApiUser;
use crate::error::{ApiError, WebError};
use crate::pages::{Layout, PageUser};
use crate::Shared;

/// The `--json` document: `{"master", "backend", "nodes": [...], "queues": [...]}`.
pub fn status_json(
    backend: &str,
    master: Option<&MasterInfo>,
    nodes: &[NodeStatus],
    queues: &[QueueDepth],
) -> Value {
    let master_id = master.map(|m| m.node_id.clone());
    json!({
        "backend": backend,
        "master": master_id,
        "master_token": master.map(|m| m.token),
        "nodes": nodes.iter().map(|n| json!({
            "node_id": n.info.node_id,
            "hostname": n.info.hostname,
            "version": n.info.version,
            "roles": n.info.roles,
            "groups": n.info.groups,
            "workers": n.info.workers,
            "master": master_id.as_deref() == Some(n.info.node_id.as_str()),
            "last_checkin": n.last_checkin.to_rfc3339(),
            "alive": n.alive,
            "started_at": n.info.started_at.map(|t| t.to_rfc3339()),
            "stats": n.info.stats,
        })).collect::<Vec<_>>(),
        "queues": queues,
    })
}

struct Snapshot {
    master: Option<MasterInfo>,
    nodes: Vec<NodeStatus>,
    queues: Vec<QueueDepth>,
}

async fn snapshot(ctx: &Shared) -> Result<Snapshot, lookout_coord::CoordError> {
    let coord = &ctx.state.coord;
    Ok(Snapshot {
        master: coord.current_master().await?,
        nodes: coord.nodes().await?,
        queues: coord.queue_depths().await?,
    })
}

/// `GET /api/v0/poller`
pub(crate) async fn api(
    _user: ApiUser,
    State(ctx): State<Shared>,
) -> Result<Json<Value>, ApiError> {
    let s = snapshot(&ctx).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("coordination backend: {e}"),
        )
    })?;
    let mut doc = status_json(
        ctx.state.coord.backend_name(),
        s.master.as_ref(),
        &s.nodes,
        &s.queues,
    );
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("status".into(), json!("ok"));
    }
    Ok(Json(doc))
}

struct NodeRow {
    node_id: String,
    hostname: String,
    roles: String,
    groups: String,
    workers: u32,
    master: bool,
    alive: bool,
    checkin: String,
}

struct QueueRow {
    group: i32,
    queued: u64,
    due: u64,
    claimed: u64,
    done: u64,
}

#[derive(Template)]
#[template(path = "poller.html")]
struct PollerPage {
    layout: Layout,
    backend: &'static str,
    error: String,
    master: String,
    nodes: Vec<NodeRow>,
    queues: Vec<QueueRow>,
}

/// `GET /poller`: nodes, master and queues; a dead node is shown dead within its heartbeat
/// TTL (seconds).
pub(crate) async fn page(u: PageUser, State(ctx): State<Shared>) -> Result<Response, WebError> {
    let now = Utc::now();
    let (error, snap) = match snapshot(&ctx).await {
        Ok(s) => (String::new(), s),
        Err(e) => (
            e.to_string(),
            Snapshot {
                master: None,
                nodes: Vec::new(),
                queues: Vec::new(),
            },
        ),
    };
    let master_id = snap.master.as_ref().map(|m| m.node_id.clone());
    let nodes = snap
        .nodes
        .iter()
        .map(|n| NodeRow {
            node_id: n.info.node_id.clone(),
            hostname: n.info.hostname.clone(),
            roles: n.info.roles.join(","),
            groups: n
                .info
                .groups
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            workers: n.info.workers,
            master: master_id.as_deref() == Some(n.info.node_id.as_str()),
            alive: n.alive,
            checkin: format!("{} s ago", (now - n.last_checkin).num_seconds().max(0)),
        })
        .collect();
    let queues = snap
        .queues
        .iter()
        .map(|q| QueueRow {
            group: q.group,
            queued: q.queued,
            due: q.due,
            claimed: q.claimed,
            done: q.done,
        })
        .collect();
    let page = PollerPage {
        layout: Layout::new(&ctx, &u),
        backend: ctx.state.coord.backend_name(),
        error,
        master: master_id.unwrap_or_else(|| "none".to_string()),
        nodes,
        queues,
    };
    Ok(axum::response::Html(page.render()?).into_response())
}
