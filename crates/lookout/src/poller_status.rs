//! `lookout poller status` / `forget`: the cluster as the coordination backend sees it (nodes with
//! their last check-in and liveness, the master, per-group queue depths), as text or JSON.
//! The JSON shape is what scripts and the web UI's poller page rely on; see
//! docs/high-availability.md.

use std::process::ExitCode;

use anyhow::{Context, Result};
use lookout_coord::{Coord, CoordConfig};

use crate::config::Config;

pub use lookout_web::poller::{queue_summaries, status_json};

pub async fn status(cfg: &Config, json: bool) -> Result<ExitCode> {
    if cfg.coord == CoordConfig::Memory {
        // In-process coordination lives in the `serve` process: this process would see an
        // empty cluster, which reads as "nothing runs". Say where the state is instead.
        let message = format!(
            "no REDIS_* setting: coordination is in-process, so only the running `lookout serve` \
             knows the poller state; see http://{listen}/poller or \
             `curl -H \"X-Auth-Token: $TOKEN\" http://{listen}/api/v0/poller` \
             (or set REDIS_SENTINEL / REDIS_HOST for a cluster)",
            listen = cfg.listen
        );
        if json {
            println!(
                "{}",
                serde_json::json!({"status": "error", "message": message})
            );
        } else {
            eprintln!("{message}");
        }
        return Ok(ExitCode::from(2));
    }
    let coord = Coord::connect(&cfg.coord)
        .await
        .context("cannot reach the coordination backend (check REDIS_* settings)")?;
    let master = coord.current_master().await?;
    let nodes = coord.nodes().await?;
    let queues = coord.queue_depths().await?;
    if json {
        let doc = status_json(coord.backend_name(), master.as_ref(), &nodes, &queues);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &master {
        Some(m) => {
            println!("master: {} (token {})", m.node_id, m.token);
            // The master's discovery schedule, as its last heartbeat published it.
            if let Some(n) = nodes.iter().find(|n| n.info.node_id == m.node_id) {
                let stat = |k: &str| n.info.stats.get(k).copied();
                if let Some(next) = stat("discovery_next_secs") {
                    println!(
                        "discovery: {} devices due, next in {} s",
                        stat("discoveries_waiting").unwrap_or(0.0),
                        next
                    );
                }
            }
        }
        None => println!("master: none"),
    }
    println!(
        "{:<20} {:<20} {:<24} {:<8} {:>7} {:<6} last check-in",
        "node", "hostname", "roles", "groups", "workers", "state"
    );
    for n in &nodes {
        let groups: Vec<String> = n.info.groups.iter().map(|g| g.to_string()).collect();
        println!(
            "{:<20} {:<20} {:<24} {:<8} {:>7} {:<6} {}{}",
            n.info.node_id,
            n.info.hostname,
            n.info.roles.join(","),
            groups.join(","),
            n.info.workers,
            if n.alive { "alive" } else { "DEAD" },
            n.last_checkin.format("%Y-%m-%d %H:%M:%S"),
            if master.as_ref().is_some_and(|m| m.node_id == n.info.node_id) {
                "  (master)"
            } else {
                ""
            }
        );
    }
    println!(
        "{:<6} {:>7} {:>7} {:>5} {:>8} {:>8} {:>16} {:>11} {:>11}  behind",
        "group",
        "workers",
        "queued",
        "due",
        "claimed",
        "done",
        "lag p99/max s",
        "queue lag s",
        "discoveries"
    );
    let summaries = queue_summaries(master.as_ref(), &nodes, &queues);
    for q in &summaries {
        println!(
            "{:<6} {:>7} {:>7} {:>5} {:>8} {:>8} {:>16} {:>11} {:>11}  {}",
            q.group,
            q.workers,
            q.queued,
            q.due,
            q.claimed,
            q.done,
            format!("{:.1}/{:.1}", q.lag_p99_secs, q.lag_max_secs),
            q.queue_lag_secs,
            q.discoveries,
            if q.unserved {
                format!(
                    "NO POLLER SERVES GROUP {} (start a node with POLLER_GROUP={})",
                    q.group, q.group
                )
            } else if q.behind > 0 {
                format!(
                    "POLLER IS BEHIND: {} devices, up to {} s late, queue lag {} s",
                    q.behind, q.behind_max_secs, q.queue_lag_secs
                )
            } else {
                "no".to_string()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lookout poller forget NODE_ID`.
pub async fn forget(cfg: &Config, node_id: &str) -> Result<ExitCode> {
    let coord = Coord::connect(&cfg.coord)
        .await
        .context("cannot reach the coordination backend (check REDIS_* settings)")?;
    if coord.forget_node(node_id).await? {
        println!("node {node_id} forgotten");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("no node {node_id:?} in the cluster");
        Ok(ExitCode::FAILURE)
    }
}
