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

/// One poller group's queue with what the nodes report about it: workers (alive nodes
/// serving it, each capped by `POLLER_GROUP_WORKERS`), "behind" (from the master: devices
/// whose previous poll is still queued or running a whole interval after they were due, or
/// queued devices due for longer than an interval, and the worst lateness; the queue lag:
/// how long the oldest queued device has been due), the recent poll lag (worst over the
/// nodes) and the discoveries run (sum over the nodes since they started).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct QueueSummary {
    pub group: i32,
    pub queued: u64,
    pub due: u64,
    pub claimed: u64,
    pub done: u64,
    pub workers: u64,
    pub behind: u64,
    /// The group has devices and no live poller (the master's `group.N.unserved`).
    pub unserved: bool,
    pub behind_max_secs: u64,
    pub queue_lag_secs: u64,
    pub discoveries: u64,
    pub lag_p50_secs: f64,
    pub lag_p99_secs: f64,
    pub lag_max_secs: f64,
}

/// Per-group summaries of `queues` and the groups served by alive nodes, by group.
pub fn queue_summaries(
    master: Option<&MasterInfo>,
    nodes: &[NodeStatus],
    queues: &[QueueDepth],
) -> Vec<QueueSummary> {
    let mut out: std::collections::BTreeMap<i32, QueueSummary> = queues
        .iter()
        .map(|q| {
            (
                q.group,
                QueueSummary {
                    group: q.group,
                    queued: q.queued,
                    due: q.due,
                    claimed: q.claimed,
                    done: q.done,
                    ..QueueSummary::default()
                },
            )
        })
        .collect();
    let stat = |n: &NodeStatus, key: String| n.info.stats.get(&key).copied().unwrap_or(0.0);
    for n in nodes.iter().filter(|n| n.alive) {
        for g in &n.info.groups {
            let e = out.entry(*g).or_insert_with(|| QueueSummary {
                group: *g,
                ..QueueSummary::default()
            });
            let w = stat(n, format!("group.{g}.workers"));
            e.workers += if w > 0.0 {
                w as u64
            } else {
                u64::from(n.info.workers)
            };
            e.lag_p50_secs = e.lag_p50_secs.max(stat(n, format!("group.{g}.lag_p50")));
            e.lag_p99_secs = e.lag_p99_secs.max(stat(n, format!("group.{g}.lag_p99")));
            e.lag_max_secs = e.lag_max_secs.max(stat(n, format!("group.{g}.lag_max")));
            e.discoveries += stat(n, format!("group.{g}.discoveries")) as u64;
        }
        if master.is_some_and(|m| m.node_id == n.info.node_id) {
            for (key, v) in &n.info.stats {
                if let Some(g) = key
                    .strip_prefix("group.")
                    .and_then(|k| k.strip_suffix(".unserved"))
                    .and_then(|g| g.parse::<i32>().ok())
                {
                    let e = out.entry(g).or_insert_with(|| QueueSummary {
                        group: g,
                        ..QueueSummary::default()
                    });
                    e.unserved = *v > 0.0;
                    continue;
                }
                let Some(g) = key
                    .strip_prefix("group.")
                    .and_then(|k| k.strip_suffix(".behind"))
                    .and_then(|g| g.parse::<i32>().ok())
                else {
                    continue;
                };
                let e = out.entry(g).or_insert_with(|| QueueSummary {
                    group: g,
                    ..QueueSummary::default()
                });
                e.behind = *v as u64;
                e.behind_max_secs = stat(n, format!("group.{g}.behind_max_secs")) as u64;
                e.queue_lag_secs = stat(n, format!("group.{g}.queue_lag_secs")) as u64;
            }
        }
    }
    out.into_values().collect()
}

/// The `--json` document: `{"master", "backend", "nodes": [...], "queues": [...]}`;
/// `queues` are [`QueueSummary`] rows, `behind` is true when any group is behind.
pub fn status_json(
    backend: &str,
    master: Option<&MasterInfo>,
    nodes: &[NodeStatus],
    queues: &[QueueDepth],
) -> Value {
    let master_id = master.map(|m| m.node_id.clone());
    let summaries = queue_summaries(master, nodes, queues);
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
        "behind": summaries.iter().any(|q| q.behind > 0),
        "unserved_groups": summaries.iter().filter(|q| q.unserved).map(|q| q.group).collect::<Vec<_>>(),
        "queues": summaries,
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
pub(crate) async fn api(user: ApiUser, State(ctx): State<Shared>) -> Result<Json<Value>, ApiError> {
    user.require_global_read()?;
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
    let disk = match crate::rrd_disk::report(&ctx).await {
        Some(Ok(r)) => r.json(),
        Some(Err(e)) => json!({"state": "unknown", "error": e}),
        None => Value::Null,
    };
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("status".into(), json!("ok"));
        obj.insert("rrd_disk".into(), disk);
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
    workers: u64,
    behind: String,
    lag: String,
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
    /// (state ok|warn|fail|unknown, summary, fix); empty state: not shown.
    disk_state: &'static str,
    disk_summary: String,
    disk_fix: String,
}

/// `GET /poller`: nodes, master and queues; a dead node is shown dead within its heartbeat
/// TTL (seconds).
pub(crate) async fn page(u: PageUser, State(ctx): State<Shared>) -> Result<Response, WebError> {
    if let Err(refused) = u.require_global_read() {
        return Ok(*refused);
    }
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
    let queues = queue_summaries(snap.master.as_ref(), &snap.nodes, &snap.queues)
        .into_iter()
        .map(|q| QueueRow {
            group: q.group,
            queued: q.queued,
            due: q.due,
            claimed: q.claimed,
            done: q.done,
            workers: q.workers,
            behind: if q.unserved {
                format!(
                    "no poller serves group {g}: start a node with POLLER_GROUP={g}",
                    g = q.group
                )
            } else if q.behind > 0 {
                format!(
                    "poller is behind: {} devices, up to {} s late, queue lag {} s",
                    q.behind, q.behind_max_secs, q.queue_lag_secs
                )
            } else {
                String::new()
            },
            lag: format!("{:.1} / {:.1} s", q.lag_p99_secs, q.lag_max_secs),
        })
        .collect();
    let (disk_state, disk_summary, disk_fix) = match crate::rrd_disk::report(&ctx).await {
        Some(Ok(r)) => (
            r.state(),
            r.assessment.summary.clone(),
            r.assessment.fix.clone(),
        ),
        Some(Err(e)) => ("unknown", format!("RRD disk: {e}"), String::new()),
        None => ("", String::new(), String::new()),
    };
    let page = PollerPage {
        disk_state,
        disk_summary,
        disk_fix,
        layout: Layout::new(&ctx, &u),
        backend: ctx.state.coord.backend_name(),
        error,
        master: master_id.unwrap_or_else(|| "none".to_string()),
        nodes,
        queues,
    };
    Ok(axum::response::Html(page.render()?).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use lookout_coord::NodeInfo;

    fn node(id: &str, groups: Vec<i32>, alive: bool, stats: &[(&str, f64)]) -> NodeStatus {
        NodeStatus {
            info: NodeInfo {
                node_id: id.into(),
                hostname: id.into(),
                version: String::new(),
                roles: vec!["poller".into()],
                groups,
                workers: 16,
                started_at: None,
                stats: stats.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            },
            last_checkin: Utc::now(),
            alive,
        }
    }

    #[test]
    fn queues_show_workers_lag_and_behind_from_the_master() {
        let master = MasterInfo {
            node_id: "a".into(),
            token: 7,
            expires: Utc::now(),
        };
        let nodes = vec![
            node(
                "a",
                vec![0, 2],
                true,
                &[
                    ("group.0.workers", 8.0),
                    ("group.2.workers", 4.0),
                    ("group.2.behind", 3.0),
                    ("group.2.behind_max_secs", 75.0),
                    ("group.2.queue_lag_secs", 70.0),
                    ("group.0.behind", 0.0),
                    ("group.2.lag_p99", 1.5),
                    ("group.2.discoveries", 4.0),
                ],
            ),
            // No per-group limit published: all its workers count.
            node(
                "b",
                vec![2],
                true,
                &[
                    ("group.2.lag_p99", 2.5),
                    ("group.2.behind", 9.0),
                    ("group.2.queue_lag_secs", 99.0),
                    ("group.2.discoveries", 1.0),
                ],
            ),
            node("dead", vec![0], false, &[("group.0.workers", 100.0)]),
        ];
        let queues = vec![QueueDepth {
            group: 2,
            queued: 5,
            due: 4,
            claimed: 2,
            done: 10,
            ..QueueDepth::default()
        }];
        let q = queue_summaries(Some(&master), &nodes, &queues);
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].group, q[0].workers, q[0].behind), (0, 8, 0));
        assert_eq!((q[1].group, q[1].workers, q[1].queued), (2, 20, 5));
        // Only the master's "behind" counts (b's is from when it was master, stale).
        assert_eq!(
            (q[1].behind, q[1].behind_max_secs, q[1].queue_lag_secs),
            (3, 75, 70)
        );
        assert_eq!(q[1].discoveries, 5, "discoveries add up over the nodes");
        assert_eq!(q[1].lag_p99_secs, 2.5);
        let doc = status_json("memory", Some(&master), &nodes, &queues);
        assert_eq!(doc["behind"], true);
        assert_eq!(doc["queues"][1]["behind"], 3);
        assert_eq!(doc["queues"][1]["workers"], 20);
        assert_eq!(doc["queues"][1]["queue_lag_secs"], 70);
    }
}
