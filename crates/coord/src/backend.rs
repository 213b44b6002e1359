//! The crate-private backend trait behind [`crate::Coord`]. Backends speak in backend
//! milliseconds and report refusals as values; the handle turns them into the public
//! types and the operation-named [`crate::CoordError`] variants.

use async_trait::async_trait;
use lookout_core::DeviceId;

use crate::lease::{Holder, Millis, Refusal, Token};
use crate::queue::{Granted, Work};
use crate::{NodeInfo, NodeStatus, QueueDepth};

/// The cause of a failed backend call. Boxed so the Redis client's error type does not
/// leak into the public API.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub(crate) type BResult<T> = Result<T, BackendError>;

/// An optional master lease (owner, token) an operation is fenced by: the backend refuses
/// it unless that lease is the live master lease at the moment it decides.
pub(crate) type Fence<'a> = Option<(&'a str, Token)>;

#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    async fn heartbeat(&self, info: &NodeInfo, ttl_ms: u64) -> BResult<()>;
    async fn nodes(&self) -> BResult<Vec<NodeStatus>>;
    async fn forget_node(&self, node_id: &str) -> BResult<bool>;

    async fn acquire_master(&self, node_id: &str, ttl_ms: u64) -> BResult<Option<Holder>>;
    async fn renew_master(
        &self,
        node_id: &str,
        token: Token,
        ttl_ms: u64,
    ) -> BResult<Result<Millis, Refusal>>;
    async fn release_master(&self, node_id: &str, token: Token) -> BResult<bool>;
    async fn current_master(&self) -> BResult<Option<Holder>>;

    async fn enqueue(
        &self,
        group: i32,
        device_id: DeviceId,
        due: Millis,
        work: Work,
        fence: Fence<'_>,
    ) -> BResult<Result<bool, Refusal>>;
    async fn claim(&self, groups: &[i32], node_id: &str, ttl_ms: u64) -> BResult<Option<Granted>>;
    async fn renew_claim(
        &self,
        device_id: DeviceId,
        node_id: &str,
        token: Token,
        ttl_ms: u64,
    ) -> BResult<Result<Granted, Refusal>>;
    async fn ack(
        &self,
        device_id: DeviceId,
        node_id: &str,
        token: Token,
    ) -> BResult<Result<(), Refusal>>;
    async fn requeue_expired(&self, fence: Fence<'_>) -> BResult<Result<Vec<DeviceId>, Refusal>>;
    /// With `late_ms`, [`QueueDepth::late`] counts the queued devices due at least that
    /// long ago on the backend's clock.
    async fn queue_depths(&self, late_ms: Option<u64>) -> BResult<Vec<QueueDepth>>;

    // Web sessions (issue #15): opaque records under a key, indexed per user.
    async fn session_put(
        &self,
        key: &str,
        user_id: i64,
        record: &str,
        ttl_ms: u64,
        index_ttl_ms: u64,
    ) -> BResult<()>;
    async fn session_get(&self, key: &str) -> BResult<Option<String>>;
    async fn session_remove(&self, key: &str, user_id: i64) -> BResult<bool>;
    async fn session_remove_user(&self, user_id: i64) -> BResult<u64>;
    async fn session_list(&self, user_id: i64) -> BResult<Vec<String>>;
}
