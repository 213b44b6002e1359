//! Lookout dispatcher: decides which device is due and runs its poll.
//!
//! [`cluster::run_cluster`] is what `lookout serve` runs: master election, per-group
//! queues and claims through a `lookout_coord::Coord` (in-process for one node, Redis or
//! Sentinel for a cluster), fenced writes in the store. [`run`] is the walking skeleton's
//! single-node loop (one in-process schedule, polls handed directly to local tasks), kept
//! for embedding without a coordination backend. Both keep the same pure
//! [`schedule::Schedule`].

pub mod cluster;
pub mod discovery;
pub mod metrics;
pub mod schedule;

pub use cluster::{
    parse_group_workers, parse_groups, run_cluster, run_cluster_with, ClusterConfig, JobKind,
    MasterTask, Roles,
};
pub use metrics::{Percentiles, PollMetrics, PollSample};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lookout_core::DeviceId;
use lookout_poller::Poller;
use lookout_store::Store;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, info, warn};

use schedule::Schedule;

/// Settings of the dispatcher.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    pub interval_secs: u64,
    pub workers: usize,
    /// How often the inventory is re-read for added/removed devices.
    pub reload_secs: u64,
}

/// Runs until `shutdown` turns true; polls in flight finish first.
pub async fn run(
    store: Store,
    poller: Poller,
    config: DispatcherConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut schedule = Schedule::new(config.interval_secs);
    let workers = Arc::new(Semaphore::new(config.workers.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<DeviceId>();
    let mut last_reload: Option<tokio::time::Instant> = None;
    let mut behind_logged = false;
    info!(
        interval_secs = config.interval_secs,
        workers = config.workers,
        "dispatcher started"
    );

    loop {
        let now = Utc::now().timestamp();
        if last_reload.is_none_or(|t| t.elapsed() >= Duration::from_secs(config.reload_secs)) {
            match store.devices().await {
                Ok(devices) => {
                    let keep: BTreeSet<DeviceId> = devices
                        .iter()
                        .filter(|d| !d.disabled)
                        .map(|d| d.device_id)
                        .collect();
                    schedule.retain(&keep);
                    for d in devices.iter().filter(|d| !d.disabled) {
                        schedule.upsert(d.device_id, d.last_polled.map(|t| t.timestamp()), now);
                    }
                    debug!(devices = schedule.len(), "inventory loaded");
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the device inventory; keeping the old schedule")
                }
            }
            last_reload = Some(tokio::time::Instant::now());
        }

        let free = workers.available_permits();
        for (id, late) in schedule.take_due(now, free) {
            if late > 5 {
                debug!(device_id = id, late_secs = late, "poll starts late");
            }
            let Ok(permit) = workers.clone().try_acquire_owned() else {
                schedule.complete(id, now);
                break;
            };
            let store = store.clone();
            let poller = poller.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match store.device(id).await {
                    Ok(Some(device)) => match poller.poll(&device).await {
                        Ok(r) => info!(
                            device = %r.hostname,
                            status = ?r.status,
                            ports = r.ports.len(),
                            seconds = format!("{:.3}", r.seconds),
                            "polled"
                        ),
                        Err(e) => warn!(device = %device.hostname, error = %e, "poll failed"),
                    },
                    Ok(None) => debug!(device_id = id, "device removed before its poll"),
                    Err(e) => warn!(device_id = id, error = %e, "cannot load device"),
                }
                let _ = done.send(id);
            });
        }
        let overdue = schedule.overdue(now);
        if overdue > 0 && !behind_logged {
            warn!(
                overdue,
                "poller is behind: devices are due but all workers are busy"
            );
            behind_logged = true;
        } else if overdue == 0 {
            behind_logged = false;
        }

        // Due times have one-second resolution: waking once a second (or when a poll
        // completes and frees a worker) costs one peek at the schedule.
        let tick = Duration::from_secs(1);
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            Some(id) = done_rx.recv() => schedule.complete(id, Utc::now().timestamp()),
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
        while let Ok(id) = done_rx.try_recv() {
            schedule.complete(id, Utc::now().timestamp());
        }
    }
    info!("dispatcher stopping; waiting for polls in flight");
    let _ = workers.acquire_many(config.workers.max(1) as u32).await;
    info!("dispatcher stopped");
}
