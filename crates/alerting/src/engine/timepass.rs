//! The master's time-based pass: what changes with time alone (a device not polled for N
//! intervals, a pending alert whose delay passed, a due repeat, an acknowledgement or a
//! maintenance window that ended). Runs on the live master only, fenced by its lease token
//! through the store's alert fence: a stale master's pass writes nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use lookout_coord::Lease;
use lookout_store::{AlertRow, MasterFence, StoreError};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::hook::{evaluable_without_poll, DeviceEval};
use super::{Engine, EngineError};
use crate::snapshot::Snapshot;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassStats {
    pub devices: usize,
    pub alerts: usize,
    pub applied: usize,
    /// Changes not applied because a poll changed the alert meanwhile.
    pub skipped: usize,
    pub seconds: f64,
}

/// The alert fence of a master lease.
pub fn fence_of(lease: &Lease) -> MasterFence {
    MasterFence {
        node_id: lease.node_id.clone(),
        token: lease.token,
    }
}

impl Engine {
    /// One time pass as `fence`'s master (`StoreError::AlertFenced` when a newer master
    /// holds the fence: nothing written).
    pub async fn time_pass(&self, fence: &MasterFence) -> Result<PassStats, EngineError> {
        let started = Instant::now();
        if !self.store.alert_fence_claim(fence).await? {
            return Err(StoreError::AlertFenced {
                token: fence.token,
                current: 0,
            }
            .into());
        }
        let cat = self.catalog();
        let devices = self.store.devices().await?;
        let alerts = self.store.alerts().await?;
        let mut by_device: HashMap<i64, Vec<AlertRow>> = HashMap::new();
        for a in alerts {
            by_device.entry(a.key.device_id).or_default().push(a);
        }
        let now = Utc::now();
        let mut stats = PassStats {
            devices: devices.len(),
            alerts: by_device.values().map(Vec::len).sum(),
            ..PassStats::default()
        };
        let none = Vec::new();
        for device in devices.iter().filter(|d| !d.disabled) {
            let rows = by_device.get(&device.device_id).unwrap_or(&none);
            let ev = DeviceEval::new(&cat, device, rows, now);
            let snap = Snapshot::device_only(device, None, now, self.cfg.interval_secs);
            let mut changes = Vec::new();
            for lr in cat.rules.iter().filter(|r| !r.disabled) {
                let rule = &lr.compiled;
                if evaluable_without_poll(rule) {
                    ev.evaluate(rule, &snap, &mut changes);
                } else if rows.iter().any(|r| r.key.rule_id == rule.id) {
                    ev.tick(rule, &mut changes);
                }
            }
            if changes.is_empty() {
                continue;
            }
            let applied = self
                .store
                .apply_alert_changes_fenced(fence, device.device_id, &changes)
                .await?;
            stats.applied += applied.applied;
            stats.skipped += applied.skipped;
        }
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// Runs [`Engine::time_pass`] every `time_pass_every` while this node holds the master
    /// lease (`master`: the dispatcher's view of it), until `shutdown`.
    pub async fn run_time_passes(
        self: Arc<Self>,
        master: watch::Receiver<Option<Lease>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.time_pass_every) => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
            let lease = master.borrow().clone();
            let Some(lease) = lease.filter(Lease::is_valid_locally) else {
                continue;
            };
            match self.time_pass(&fence_of(&lease)).await {
                Ok(s) => {
                    failing = false;
                    if s.applied > 0 {
                        info!(
                            applied = s.applied,
                            skipped = s.skipped,
                            devices = s.devices,
                            seconds = s.seconds,
                            "alert time pass"
                        );
                    } else {
                        debug!(
                            devices = s.devices,
                            alerts = s.alerts,
                            seconds = s.seconds,
                            "alert time pass: nothing to change"
                        );
                    }
                }
                Err(EngineError::Store(e @ StoreError::AlertFenced { .. })) => {
                    warn!(token = lease.token, error = %e, "alert time pass refused: a newer master holds the alert fence");
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, "alert time pass failed; retrying");
                    }
                    failing = true;
                }
            }
        }
    }
}
