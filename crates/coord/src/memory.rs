//! The in-process backend for a single node: the pure lease and queue state machines
//! behind one mutex, driven by the system clock. Nothing survives a restart, which is
//! fine for one node (the scheduler re-fills the queues from the store).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lookout_core::DeviceId;

use crate::backend::{BResult, Backend, Fence};
use crate::lease::{Holder, LeaseSlot, Millis, Refusal, Token};
use crate::queue::{Granted, Work, WorkQueues};
use crate::{to_timestamp, NodeInfo, NodeStatus, QueueDepth};

struct NodeRecord {
    info: NodeInfo,
    last_checkin: Millis,
    expires: Millis,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, NodeRecord>,
    /// Session key -> (user id, record, expires ms).
    sessions: HashMap<String, (i64, String, Millis)>,
    master: LeaseSlot,
    queues: WorkQueues,
}

pub(crate) struct MemoryBackend {
    state: Mutex<State>,
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl MemoryBackend {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than stopping coordination altogether would, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn heartbeat(&self, info: &NodeInfo, ttl_ms: u64) -> BResult<()> {
        let now = now_ms();
        self.lock().nodes.insert(
            info.node_id.clone(),
            NodeRecord {
                info: info.clone(),
                last_checkin: now,
                expires: now.saturating_add(ttl_ms),
            },
        );
        Ok(())
    }

    async fn nodes(&self) -> BResult<Vec<NodeStatus>> {
        let now = now_ms();
        Ok(self
            .lock()
            .nodes
            .values()
            .map(|r| NodeStatus {
                info: r.info.clone(),
                last_checkin: to_timestamp(r.last_checkin),
                alive: now < r.expires,
            })
            .collect())
    }

    async fn forget_node(&self, node_id: &str) -> BResult<bool> {
        Ok(self.lock().nodes.remove(node_id).is_some())
    }

    async fn acquire_master(&self, node_id: &str, ttl_ms: u64) -> BResult<Option<Holder>> {
        Ok(self.lock().master.acquire(node_id, now_ms(), ttl_ms))
    }

    async fn renew_master(
        &self,
        node_id: &str,
        token: Token,
        ttl_ms: u64,
    ) -> BResult<Result<Millis, Refusal>> {
        Ok(self
            .lock()
            .master
            .renew(node_id, token, now_ms(), ttl_ms)
            .map(|h| h.expires))
    }

    async fn release_master(&self, node_id: &str, token: Token) -> BResult<bool> {
        Ok(self.lock().master.release(node_id, token))
    }

    async fn current_master(&self) -> BResult<Option<Holder>> {
        Ok(self.lock().master.holder(now_ms()).cloned())
    }

    async fn enqueue(
        &self,
        group: i32,
        device_id: DeviceId,
        due: Millis,
        work: Work,
        fence: Fence<'_>,
    ) -> BResult<Result<bool, Refusal>> {
        let mut st = self.lock();
        if let Some((owner, token)) = fence {
            if let Err(r) = st.master.check(owner, token, now_ms()) {
                return Ok(Err(r));
            }
        }
        Ok(Ok(st.queues.enqueue(group, device_id, due, work)))
    }

    async fn claim(&self, groups: &[i32], node_id: &str, ttl_ms: u64) -> BResult<Option<Granted>> {
        Ok(self.lock().queues.claim(groups, node_id, now_ms(), ttl_ms))
    }

    async fn renew_claim(
        &self,
        device_id: DeviceId,
        node_id: &str,
        token: Token,
        ttl_ms: u64,
    ) -> BResult<Result<Granted, Refusal>> {
        Ok(self
            .lock()
            .queues
            .renew(device_id, node_id, token, now_ms(), ttl_ms))
    }

    async fn ack(
        &self,
        device_id: DeviceId,
        node_id: &str,
        token: Token,
    ) -> BResult<Result<(), Refusal>> {
        Ok(self.lock().queues.ack(device_id, node_id, token, now_ms()))
    }

    async fn requeue_expired(&self, fence: Fence<'_>) -> BResult<Result<Vec<DeviceId>, Refusal>> {
        let now = now_ms();
        let mut st = self.lock();
        if let Some((owner, token)) = fence {
            if let Err(r) = st.master.check(owner, token, now) {
                return Ok(Err(r));
            }
        }
        Ok(Ok(st.queues.requeue_expired(now)))
    }

    async fn queue_depths(&self, late_ms: Option<u64>) -> BResult<Vec<QueueDepth>> {
        Ok(self.lock().queues.depths(now_ms(), late_ms))
    }

    async fn session_put(
        &self,
        key: &str,
        user_id: i64,
        record: &str,
        ttl_ms: u64,
        _index_ttl_ms: u64,
    ) -> BResult<()> {
        let now = now_ms();
        let mut st = self.lock();
        st.sessions.retain(|_, (_, _, exp)| *exp > now);
        st.sessions.insert(
            key.to_string(),
            (user_id, record.to_string(), now.saturating_add(ttl_ms)),
        );
        Ok(())
    }

    async fn session_get(&self, key: &str) -> BResult<Option<String>> {
        let now = now_ms();
        let st = self.lock();
        Ok(st
            .sessions
            .get(key)
            .filter(|(_, _, exp)| *exp > now)
            .map(|(_, r, _)| r.clone()))
    }

    async fn session_remove(&self, key: &str, _user_id: i64) -> BResult<bool> {
        let now = now_ms();
        Ok(self
            .lock()
            .sessions
            .remove(key)
            .is_some_and(|(_, _, exp)| exp > now))
    }

    async fn session_remove_user(&self, user_id: i64) -> BResult<u64> {
        let now = now_ms();
        let mut st = self.lock();
        let live = st
            .sessions
            .values()
            .filter(|(u, _, exp)| *u == user_id && *exp > now)
            .count();
        st.sessions.retain(|_, (u, _, _)| *u != user_id);
        Ok(live as u64)
    }

    async fn session_list(&self, user_id: i64) -> BResult<Vec<String>> {
        let now = now_ms();
        let st = self.lock();
        Ok(st
            .sessions
            .values()
            .filter(|(u, _, exp)| *u == user_id && *exp > now)
            .map(|(_, r, _)| r.clone())
            .collect())
    }
}
