//! Outbox delivery, on the live master only.
//!
//! Every notification was written to `alert_outbox` in the same transaction as the
//! transition it tells of, so none is lost when a node dies. The master claims the
//! store's alert fence with its lease token, then for each due message: records the
//! attempt (fenced), checks on its own clock that the lease still holds, hands the message
//! to the transport, and records the outcome (fenced). A message whose sender died between
//! handing it over and recording it stays `sending` and is sent again by the next master,
//! with the same idempotency key: the only duplicate there can be. Messages of one alert
//! and transport go out in order; a failing one holds back the later ones until it is
//! delivered or ends as failed after `max_attempts` (with back-off between attempts).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use lookout_coord::Lease;
use lookout_store::{AlertTransport, AttemptOutcome, MasterFence, OutboxRow, StoreError};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use super::timepass::fence_of;
use super::{Engine, EngineConfig};
use crate::notification::Notification;
use crate::transport::{self, DeliveryError, Transport};

/// How one message's attempt ended, for the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Not delivered (to be retried, or failed for good): later messages of the alert wait.
    NotDelivered,
    /// Delivered or failed by someone else meanwhile.
    Gone,
    /// This node is no longer the master that may send.
    Stale,
}

/// The transports built from the catalog, rebuilt when a transport's settings change.
#[derive(Default)]
struct Transports {
    built: HashMap<i64, (String, Arc<dyn Transport>)>,
}

impl Transports {
    fn get(&mut self, t: &AlertTransport) -> Result<Arc<dyn Transport>, String> {
        let fingerprint = format!("{}\n{}", t.transport_type, t.transport_config);
        if let Some((fp, built)) = self.built.get(&t.transport_id) {
            if *fp == fingerprint {
                return Ok(built.clone());
            }
        }
        let built = transport::build(t).map_err(|e| e.to_string())?;
        self.built
            .insert(t.transport_id, (fingerprint, built.clone()));
        Ok(built)
    }
}

/// Wait before the next attempt after `attempt` (1-based) failed.
pub fn backoff(cfg: &EngineConfig, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    cfg.first_backoff
        .saturating_mul(factor)
        .min(cfg.max_backoff)
}

/// The outcome to record for a transport's answer to attempt `attempt` (1-based).
pub fn outcome_of(
    cfg: &EngineConfig,
    attempt: u32,
    result: Result<String, DeliveryError>,
) -> AttemptOutcome {
    match result {
        Ok(detail) => AttemptOutcome::Delivered { detail },
        Err(DeliveryError::Permanent(e)) => AttemptOutcome::Failed { error: e },
        Err(DeliveryError::Transient(e)) if attempt >= cfg.max_attempts => AttemptOutcome::Failed {
            error: format!("{e} (gave up after {attempt} attempts)"),
        },
        Err(DeliveryError::Transient(e)) => {
            let wait = chrono::Duration::from_std(backoff(cfg, attempt)).unwrap_or_default();
            AttemptOutcome::Retry {
                error: e,
                next_at: Utc::now() + wait,
            }
        }
    }
}

/// Groups due messages by (alert, transport), each group oldest first.
fn groups(due: Vec<OutboxRow>) -> Vec<Vec<OutboxRow>> {
    let mut order: Vec<(i64, i64)> = Vec::new();
    let mut by: HashMap<(i64, i64), Vec<OutboxRow>> = HashMap::new();
    for row in due {
        // A message of no alert (none today) is a group of its own.
        let k = (row.alert_id.unwrap_or(-row.id), row.transport_id);
        if !by.contains_key(&k) {
            order.push(k);
        }
        by.entry(k).or_default().push(row);
    }
    order.into_iter().filter_map(|k| by.remove(&k)).collect()
}

/// True while `lease` (the dispatcher's current view) is `fence`'s and valid locally.
fn still_master(master: &watch::Receiver<Option<Lease>>, fence: &MasterFence) -> bool {
    master
        .borrow()
        .as_ref()
        .is_some_and(|l| l.token == fence.token && l.is_valid_locally())
}

impl Engine {
    /// Delivers due outbox messages while this node holds the master lease, until
    /// `shutdown`.
    pub async fn run_delivery(
        self: Arc<Self>,
        master: watch::Receiver<Option<Lease>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let permits = Arc::new(Semaphore::new(self.cfg.max_in_flight.max(1)));
        let transports = Arc::new(Mutex::new(Transports::default()));
        let mut claimed: Option<u64> = None;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.deliver_every) => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
            let lease = master.borrow().clone();
            let Some(lease) = lease.filter(Lease::is_valid_locally) else {
                claimed = None;
                continue;
            };
            let fence = fence_of(&lease);
            if claimed != Some(fence.token) {
                match self.store.alert_fence_claim(&fence).await {
                    Ok(true) => {
                        info!(
                            token = fence.token,
                            "alert delivery: this node is the sender"
                        );
                        claimed = Some(fence.token);
                    }
                    Ok(false) => {
                        warn!(
                            token = fence.token,
                            "alert delivery: a newer master holds the alert fence"
                        );
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %e, "alert delivery: cannot claim the alert fence");
                        continue;
                    }
                }
            }
            let due = match self.store.outbox_due(Utc::now(), 500).await {
                Ok(d) => {
                    failing = false;
                    d
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, "alert delivery: cannot read the outbox; retrying");
                    }
                    failing = true;
                    continue;
                }
            };
            for group in groups(due) {
                {
                    let Ok(mut f) = in_flight.lock() else {
                        continue;
                    };
                    if group.iter().any(|r| f.contains(&r.id)) {
                        continue;
                    }
                    f.extend(group.iter().map(|r| r.id));
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (engine, fence, master) = (self.clone(), fence.clone(), master.clone());
                let (in_flight, transports) = (in_flight.clone(), transports.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let ids: Vec<i64> = group.iter().map(|r| r.id).collect();
                    for row in &group {
                        match engine.deliver_one(row, &fence, &master, &transports).await {
                            Sent::Delivered | Sent::Gone => {}
                            Sent::NotDelivered | Sent::Stale => break,
                        }
                    }
                    if let Ok(mut f) = in_flight.lock() {
                        for id in ids {
                            f.remove(&id);
                        }
                    }
                });
            }
        }
    }

    async fn deliver_one(
        &self,
        row: &OutboxRow,
        fence: &MasterFence,
        master: &watch::Receiver<Option<Lease>>,
        transports: &Mutex<Transports>,
    ) -> Sent {
        if !still_master(master, fence) {
            return Sent::Stale;
        }
        let attempt_id = match self.store.outbox_begin_attempt(fence, row.id).await {
            Ok(Some(a)) => a,
            Ok(None) => return Sent::Gone,
            Err(e @ StoreError::AlertFenced { .. }) => {
                warn!(key = %row.idempotency_key, error = %e, "not sending: a newer master holds the alert fence");
                return Sent::Stale;
            }
            Err(e) => {
                warn!(key = %row.idempotency_key, error = %e, "cannot record a delivery attempt; not sending");
                return Sent::NotDelivered;
            }
        };
        let attempt = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
        let result = self.send(row, transports, fence, master).await;
        let Some(result) = result else {
            // The lease ran out between recording the attempt and sending: nothing left
            // this node; the next master sends it.
            info!(key = %row.idempotency_key, "lease ran out before sending; left to the next master");
            return Sent::Stale;
        };
        let outcome = outcome_of(&self.cfg, attempt, result);
        let catalog = self.catalog();
        let transport = catalog
            .transports
            .get(&row.transport_id)
            .map_or("?", |t| t.transport_name.as_str());
        match &outcome {
            AttemptOutcome::Delivered { detail } => {
                info!(key = %row.idempotency_key, transport, attempt, detail = %detail, "alert notification delivered")
            }
            AttemptOutcome::Retry { error, next_at } => {
                warn!(key = %row.idempotency_key, transport, attempt, error = %error, next_at = %next_at, "alert notification not delivered; will retry")
            }
            AttemptOutcome::Failed { error } => {
                warn!(key = %row.idempotency_key, transport, attempt, error = %error, "alert notification failed for good")
            }
        }
        let sent = if matches!(outcome, AttemptOutcome::Delivered { .. }) {
            Sent::Delivered
        } else {
            Sent::NotDelivered
        };
        match self
            .store
            .outbox_finish_attempt(fence, row.id, attempt_id, &outcome)
            .await
        {
            Ok(()) => sent,
            Err(e) => {
                // The message may have left: whoever sends it again uses the same key.
                warn!(key = %row.idempotency_key, error = %e, "cannot record the delivery outcome; the message may be sent again (same idempotency key)");
                Sent::Stale
            }
        }
    }

    /// Sends one message; `None` when the lease no longer holds right before it leaves.
    async fn send(
        &self,
        row: &OutboxRow,
        transports: &Mutex<Transports>,
        fence: &MasterFence,
        master: &watch::Receiver<Option<Lease>>,
    ) -> Option<Result<String, DeliveryError>> {
        let note: Notification = match serde_json::from_str(&row.notification) {
            Ok(n) => n,
            Err(e) => {
                return Some(Err(DeliveryError::Permanent(format!(
                    "stored notification unreadable: {e}"
                ))))
            }
        };
        let catalog = self.catalog();
        let Some(t) = catalog.transports.get(&row.transport_id) else {
            return Some(Err(DeliveryError::Permanent(format!(
                "transport {} was removed",
                row.transport_id
            ))));
        };
        let built = match transports.lock() {
            Ok(mut m) => m.get(t),
            Err(_) => Err("transport cache unavailable".to_string()),
        };
        let built = match built {
            Ok(b) => b,
            Err(e) => return Some(Err(DeliveryError::Permanent(e))),
        };
        if !still_master(master, fence) {
            return None;
        }
        debug!(key = %note.idempotency_key, transport = %t.transport_name, "sending alert notification");
        Some(
            match tokio::time::timeout(self.cfg.attempt_timeout, built.send(&note)).await {
                Ok(r) => r.map(|d| d.detail),
                Err(_) => Err(DeliveryError::Transient(format!(
                    "no answer within {} s",
                    self.cfg.attempt_timeout.as_secs()
                ))),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = EngineConfig::default();
        assert_eq!(backoff(&cfg, 1), Duration::from_secs(10));
        assert_eq!(backoff(&cfg, 2), Duration::from_secs(20));
        assert_eq!(backoff(&cfg, 4), Duration::from_secs(80));
        assert_eq!(backoff(&cfg, 30), Duration::from_secs(600));
    }

    #[test]
    fn transient_errors_retry_until_the_last_attempt_permanent_fail_at_once() {
        let cfg = EngineConfig::default();
        let t = || Err(DeliveryError::Transient("HTTP 503".into()));
        assert!(matches!(
            outcome_of(&cfg, 1, t()),
            AttemptOutcome::Retry { .. }
        ));
        match outcome_of(&cfg, cfg.max_attempts, t()) {
            AttemptOutcome::Failed { error } => assert!(error.contains("gave up after 8")),
            o => panic!("{o:?}"),
        }
        let p = Err(DeliveryError::Permanent("HTTP 404".into()));
        assert!(matches!(
            outcome_of(&cfg, 1, p),
            AttemptOutcome::Failed { .. }
        ));
        assert_eq!(
            outcome_of(&cfg, 1, Ok("HTTP 200".into())),
            AttemptOutcome::Delivered {
                detail: "HTTP 200".into()
            }
        );
    }

    fn row(id: i64, alert: i64, transport: i64) -> OutboxRow {
        OutboxRow {
            id,
            idempotency_key: format!("k{id}"),
            transport_id: transport,
            alert_id: Some(alert),
            device_id: Some(1),
            notification: "{}".into(),
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: Utc::now(),
            created: Utc::now(),
            last_attempt_at: None,
            delivered_at: None,
            last_error: None,
        }
    }

    #[test]
    fn groups_keep_order_per_alert_and_transport() {
        let g = groups(vec![row(1, 7, 1), row(2, 8, 1), row(3, 7, 1), row(4, 7, 2)]);
        let ids: Vec<Vec<i64>> = g.iter().map(|g| g.iter().map(|r| r.id).collect()).collect();
        assert_eq!(ids, vec![vec![1, 3], vec![2], vec![4]]);
    }
}
