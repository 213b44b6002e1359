//! Coordination between Lookout nodes: membership and heartbeats, master election with a
//! lease and a fencing token, and per-poller-group work queues whose items are claimed
//! under a lease. One handle, [`Coord`], over two backends chosen by [`CoordConfig`]:
//!
//! * `Memory` — one node, in process (the default). Same rules, no network.
//! * `Redis` — a Redis primary reached directly or through Redis Sentinel. The client
//!   re-asks the sentinels for the primary on every reconnect and reconnects on
//!   `READONLY`, so it follows a fail-over by itself. Lease and queue decisions run as Lua
//!   scripts on Redis's own clock, so the nodes' clocks need not agree for leases.
//!
//! # Fencing: why every [`Lease`] and [`Claim`] carries a token
//! A lease in Redis is not a guarantee. Sentinel replication is asynchronous: a lease or
//! claim acknowledged by a primary that dies a moment later may never reach the replica
//! that gets promoted, so a second node can be granted "the same" lease. A node may also
//! pause (GC, SIGSTOP, a slow disk) past its lease and wake up believing it still holds
//! it. Therefore:
//!
//! * every acquisition hands out a fencing token larger than every earlier one
//!   (a counter, floored at the backend's time in microseconds so that it keeps growing
//!   even if the counter's last increments were lost in a fail-over — see
//!   [`lease::next_token`]);
//! * whoever *writes results* (the store, the time-series writer) checks the token where
//!   the write lands and refuses a token older than one already seen for the same
//!   resource ([`lease::FencingGate`] is that rule); Redis alone is never trusted for
//!   "exactly once";
//! * a holder stops acting when its *local* view of the lease runs out
//!   ([`Lease::is_valid_locally`], counted from when the request was sent), not when the
//!   backend tells it so.
//!
//! `ack` of a claim whose lease ran out returns `false`: its result must be discarded.
//!
//! What Redis can still lose, measured on loopback (tests/sentinel.rs): after kill -9 of
//! the primary the Coord works again ~0.1 s after Sentinel promotes a replica (~2.3 s
//! after the kill with `down-after-milliseconds 1000`); after a forced fail-over the old
//! primary keeps accepting writes until the Coord's sentinel watch moves it (~1 s), and
//! those writes are lost. Setting `min-replicas-to-write 1` and `min-replicas-max-lag 10`
//! on the Redis servers makes an isolated old primary refuse writes sooner.
//! A command cut off by a broken connection may be retried by the client once it has
//! reconnected; for `claim` that can leave an extra claim that simply expires and is
//! re-queued, for `ack` a successful ack can come back as `false` (result discarded,
//! device re-polled next interval). Neither breaks the fencing.
//!
//! # Use
//! ```no_run
//! # async fn demo() -> Result<(), lookout_coord::CoordError> {
//! use std::time::Duration;
//! use lookout_coord::{Coord, CoordConfig, NodeInfo, Work};
//!
//! // REDIS_SENTINEL / REDIS_HOST / ... as LibreNMS names them; nothing set = memory.
//! let coord = Coord::connect(&CoordConfig::from_lookup(|k| std::env::var(k).ok())?).await?;
//! let me = NodeInfo { node_id: "node-1".into(), groups: vec![0], ..Default::default() };
//! coord.heartbeat(&me, Duration::from_secs(10)).await?; // every ~3 s
//!
//! // Dispatcher: act as master only while the lease is valid on the local clock.
//! if let Some(lease) = coord.try_acquire_master(&me.node_id, Duration::from_secs(5)).await? {
//!     // Fenced by the lease in the backend, and idempotent: re-enqueue freely.
//!     coord.enqueue_as_master(&lease, 0, 42, chrono::Utc::now(), Work::Poll).await?;
//!     coord.requeue_expired_as_master(&lease).await?;
//!     let _lease = coord.renew_master(&lease).await?; // at lease.renew_at()
//! }
//!
//! // Worker: claim, poll (renewing at claim.renew_at()), write results checking
//! // claim.token, then ack; `false` means the result must be discarded.
//! if let Some(claim) = coord.claim(&me.groups, &me.node_id, Duration::from_secs(30)).await? {
//!     let _kept = coord.ack(&claim).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Times
//! The backend's clock decides leases (Redis `TIME` in the scripts, the system clock in
//! memory). `enqueue`'s `due_at` comes from the caller's clock and only decides when an
//! item becomes claimable. Timestamps returned ([`Lease::expires`], ...) are on the
//! backend's clock and are informational.

mod backend;
pub mod config;
pub mod lease;
mod memory;
pub mod queue;
mod redis;
mod sentinel;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lookout_core::{DeviceId, Timestamp};
use serde::{Deserialize, Serialize};

pub use config::{CoordConfig, RedisConfig, RedisTarget};
pub use lease::Token;
pub use queue::Work;

use backend::{Backend, BackendError};
use lease::{Millis, Refusal};

/// What a node tells the others about itself (a LibreNMS `poller_cluster` row).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Stable across restarts (LibreNMS `NODE_ID`).
    pub node_id: String,
    pub hostname: String,
    /// Lookout version the node runs.
    pub version: String,
    /// Roles it runs: `web`, `dispatcher`, `poller`.
    pub roles: Vec<String>,
    /// Poller groups it serves.
    pub groups: Vec<i32>,
    /// Poller workers it runs.
    pub workers: u32,
    /// When the process started.
    pub started_at: Option<Timestamp>,
    /// Free-form figures for the status page (per-queue done, worker seconds, ...).
    #[serde(default)]
    pub stats: std::collections::BTreeMap<String, f64>,
}

/// A node as the cluster sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub info: NodeInfo,
    pub last_checkin: Timestamp,
    /// False once the TTL of its last heartbeat has passed.
    pub alive: bool,
}

/// The master lease as granted to its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub node_id: String,
    /// Fencing token: larger than every token granted before.
    pub token: Token,
    /// Expiry on the backend's clock.
    pub expires: Timestamp,
    pub ttl: Duration,
    /// Local monotonic deadline (counted from when the request was sent); stop acting
    /// as master after it unless a renewal succeeded.
    pub valid_until: Instant,
}

impl Lease {
    /// Whether the holder may still act, on its own monotonic clock.
    pub fn is_valid_locally(&self) -> bool {
        Instant::now() < self.valid_until
    }

    /// When to renew: a third of the TTL after the grant, so two renewals can
    /// fail before the lease is lost (the rule of [`lease::LocalLease::renew_due`]).
    pub fn renew_at(&self) -> Instant {
        self.valid_until
            .checked_sub(self.ttl)
            .unwrap_or(self.valid_until)
            + self.ttl / 3
    }
}

/// Who is master now, as any node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    pub node_id: String,
    pub token: Token,
    pub expires: Timestamp,
}

/// A device handed to a worker under a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub device_id: DeviceId,
    pub group: i32,
    pub node_id: String,
    /// Fencing token: check it where the poll's results are written.
    pub token: Token,
    /// Expiry on the backend's clock.
    pub expires: Timestamp,
    pub ttl: Duration,
    /// Local monotonic deadline; a result finished after it must be discarded.
    pub valid_until: Instant,
    /// When the device was due in its queue (the master's schedule, or the expiry of a
    /// re-queued claim), on the backend's clock; `None` if the backend did not say.
    pub due_at: Option<Timestamp>,
    /// What the master queued the device for.
    pub work: Work,
}

impl Claim {
    /// Whether the worker may still finish this claim, on its own monotonic clock.
    pub fn is_valid_locally(&self) -> bool {
        Instant::now() < self.valid_until
    }

    /// When to renew while the poll runs (a third of the TTL after the grant).
    pub fn renew_at(&self) -> Instant {
        self.valid_until
            .checked_sub(self.ttl)
            .unwrap_or(self.valid_until)
            + self.ttl / 3
    }
}

/// Depth of one poller group's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub group: i32,
    /// Devices waiting (due or not).
    pub queued: u64,
    /// Of those, due now: a growing number means the pollers are behind.
    pub due: u64,
    /// Claimed by a worker, not yet acknowledged.
    pub claimed: u64,
    /// Acknowledged since the backend started (memory) or was created (Redis).
    pub done: u64,
    /// Due time of the most overdue queued device (the queue's head), on the clock of
    /// whoever enqueued it: `now - oldest_due` is the group's queue lag.
    #[serde(default)]
    pub oldest_due: Option<Timestamp>,
    /// Queued devices due at least the `late_after` given to [`Coord::queue_lag`] ago
    /// (always 0 from [`Coord::queue_depths`]).
    #[serde(default)]
    pub late: u64,
}

/// Errors of the coordination layer. A `*Lost` error means the lease or claim is gone
/// for sure; any other error means the backend could not be reached or answered oddly,
/// and the holder must rely on its local deadline.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("invalid coordination config: {0}")]
    Config(String),
    #[error("cannot connect to redis: {0}")]
    Connect(#[source] BackendError),
    #[error("heartbeat of node {node_id} failed: {source}")]
    Heartbeat {
        node_id: String,
        source: BackendError,
    },
    #[error("listing nodes failed: {0}")]
    Nodes(#[source] BackendError),
    #[error("forgetting node {node_id} failed: {source}")]
    ForgetNode {
        node_id: String,
        source: BackendError,
    },
    #[error("acquiring the master lease for {node_id} failed: {source}")]
    AcquireMaster {
        node_id: String,
        source: BackendError,
    },
    #[error("renewing the master lease of {node_id} failed: {source}")]
    RenewMaster {
        node_id: String,
        source: BackendError,
    },
    #[error("master lease of {node_id} (token {token}) lost: {reason}")]
    MasterLost {
        node_id: String,
        token: Token,
        reason: String,
    },
    #[error("releasing the master lease of {node_id} failed: {source}")]
    ReleaseMaster {
        node_id: String,
        source: BackendError,
    },
    #[error("reading the current master failed: {0}")]
    CurrentMaster(#[source] BackendError),
    #[error("enqueueing device {device_id} in group {group} failed: {source}")]
    Enqueue {
        group: i32,
        device_id: DeviceId,
        source: BackendError,
    },
    #[error("claiming work for {node_id} failed: {source}")]
    Claim {
        node_id: String,
        source: BackendError,
    },
    #[error("renewing the claim of device {device_id} failed: {source}")]
    RenewClaim {
        device_id: DeviceId,
        source: BackendError,
    },
    #[error("claim of device {device_id} (token {token}) lost: {reason}")]
    ClaimLost {
        device_id: DeviceId,
        token: Token,
        reason: String,
    },
    #[error("acknowledging device {device_id} failed: {source}")]
    Ack {
        device_id: DeviceId,
        source: BackendError,
    },
    #[error("re-queueing expired claims failed: {0}")]
    RequeueExpired(#[source] BackendError),
    #[error("reading queue depths failed: {0}")]
    QueueDepths(#[source] BackendError),
    #[error("session store ({op}) failed: {source}")]
    Session {
        op: &'static str,
        source: BackendError,
    },
}

impl CoordError {
    /// True when a lease or claim is certainly gone (not a transient backend error).
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            CoordError::MasterLost { .. } | CoordError::ClaimLost { .. }
        )
    }
}

fn describe(r: &Refusal) -> String {
    match r {
        Refusal::Vacant => "nobody holds it (released, re-queued or lost in a fail-over)".into(),
        Refusal::Expired => "its lease ran out".into(),
        Refusal::Superseded { owner, token } => format!("now held by {owner} with token {token}"),
    }
}

/// The error for an operation refused because `lease` is not the live master lease.
fn master_lost(lease: Option<&Lease>, refusal: &Refusal) -> CoordError {
    let reason = describe(refusal);
    tracing::warn!(node_id = ?lease.map(|l| &l.node_id), reason = %reason, "refused: not the master");
    CoordError::MasterLost {
        node_id: lease.map(|l| l.node_id.clone()).unwrap_or_default(),
        token: lease.map(|l| l.token).unwrap_or_default(),
        reason,
    }
}

pub(crate) fn to_timestamp(ms: Millis) -> Timestamp {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(crate) fn from_timestamp(t: Timestamp) -> Millis {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn ttl_ms(ttl: Duration) -> u64 {
    // A zero TTL would grant an already expired lease; one millisecond is the floor.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Cheap-to-clone handle to the coordination backend.
#[derive(Clone)]
pub struct Coord {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Coord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coord")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Default for Coord {
    fn default() -> Self {
        Self::memory()
    }
}

impl Coord {
    /// The in-process backend (single node). Every call makes a separate coordination
    /// domain: roles in one process must share one `Coord` (clone it).
    pub fn memory() -> Self {
        Self {
            backend: Arc::new(memory::MemoryBackend::new()),
        }
    }

    /// Build the backend `config` names; for Redis this connects (and fails fast if the
    /// server or the sentinels cannot be reached now; later outages are retried).
    pub async fn connect(config: &CoordConfig) -> Result<Self, CoordError> {
        match config {
            CoordConfig::Memory => Ok(Self::memory()),
            CoordConfig::Redis(rc) => {
                let b = redis::RedisBackend::connect(rc)
                    .await
                    .map_err(CoordError::Connect)?;
                Ok(Self {
                    backend: Arc::new(b),
                })
            }
        }
    }

    /// Stores a web session record under `key` for `ttl`, indexed under its user (the index
    /// lives `index_ttl`, the longest a session of the user can last).
    pub async fn session_put(
        &self,
        key: &str,
        user_id: i64,
        record: &str,
        ttl: Duration,
        index_ttl: Duration,
    ) -> Result<(), CoordError> {
        self.backend
            .session_put(key, user_id, record, ttl_ms(ttl), ttl_ms(index_ttl))
            .await
            .map_err(|source| CoordError::Session { op: "put", source })
    }

    /// The live session record under `key`.
    pub async fn session_get(&self, key: &str) -> Result<Option<String>, CoordError> {
        self.backend
            .session_get(key)
            .await
            .map_err(|source| CoordError::Session { op: "get", source })
    }

    /// Ends one session; `false` when it did not exist (any more).
    pub async fn session_remove(&self, key: &str, user_id: i64) -> Result<bool, CoordError> {
        self.backend
            .session_remove(key, user_id)
            .await
            .map_err(|source| CoordError::Session {
                op: "remove",
                source,
            })
    }

    /// Ends every session of a user; returns how many were live.
    pub async fn session_remove_user(&self, user_id: i64) -> Result<u64, CoordError> {
        self.backend
            .session_remove_user(user_id)
            .await
            .map_err(|source| CoordError::Session {
                op: "remove_user",
                source,
            })
    }

    /// The live session records of a user.
    pub async fn session_list(&self, user_id: i64) -> Result<Vec<String>, CoordError> {
        self.backend
            .session_list(user_id)
            .await
            .map_err(|source| CoordError::Session { op: "list", source })
    }

    /// `memory` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Register or refresh `info`; the node counts as dead once `ttl` passes without
    /// another heartbeat.
    pub async fn heartbeat(&self, info: &NodeInfo, ttl: Duration) -> Result<(), CoordError> {
        self.backend
            .heartbeat(info, ttl_ms(ttl))
            .await
            .map_err(|source| CoordError::Heartbeat {
                node_id: info.node_id.clone(),
                source,
            })
    }

    /// Every node that ever checked in and was not forgotten, dead ones included, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, CoordError> {
        let mut v = self.backend.nodes().await.map_err(CoordError::Nodes)?;
        v.sort_by(|a, b| a.info.node_id.cmp(&b.info.node_id));
        Ok(v)
    }

    /// Remove a node's record (a decommissioned node). Returns whether it existed.
    pub async fn forget_node(&self, node_id: &str) -> Result<bool, CoordError> {
        self.backend
            .forget_node(node_id)
            .await
            .map_err(|source| CoordError::ForgetNode {
                node_id: node_id.to_owned(),
                source,
            })
    }

    /// Become master if nobody else holds a live lease. Every success carries a new,
    /// larger fencing token (also when `node_id` already held it: a restarted node fences
    /// off its former incarnation).
    pub async fn try_acquire_master(
        &self,
        node_id: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, CoordError> {
        let sent = Instant::now();
        let grant = self
            .backend
            .acquire_master(node_id, ttl_ms(ttl))
            .await
            .map_err(|source| CoordError::AcquireMaster {
                node_id: node_id.to_owned(),
                source,
            })?;
        Ok(grant.map(|h| Lease {
            node_id: node_id.to_owned(),
            token: h.token,
            expires: to_timestamp(h.expires),
            ttl,
            valid_until: sent + ttl,
        }))
    }

    /// Extend the master lease by its TTL. Fails with [`CoordError::MasterLost`] if the
    /// lease expired or someone else holds it; the token never changes on renewal.
    pub async fn renew_master(&self, lease: &Lease) -> Result<Lease, CoordError> {
        let sent = Instant::now();
        let r = self
            .backend
            .renew_master(&lease.node_id, lease.token, ttl_ms(lease.ttl))
            .await
            .map_err(|source| CoordError::RenewMaster {
                node_id: lease.node_id.clone(),
                source,
            })?;
        match r {
            Ok(expires) => Ok(Lease {
                expires: to_timestamp(expires),
                valid_until: sent + lease.ttl,
                ..lease.clone()
            }),
            Err(refusal) => {
                tracing::warn!(node_id = %lease.node_id, token = lease.token, reason = %describe(&refusal), "master lease lost");
                Err(CoordError::MasterLost {
                    node_id: lease.node_id.clone(),
                    token: lease.token,
                    reason: describe(&refusal),
                })
            }
        }
    }

    /// Give the master lease up (on shutdown). Returns whether this lease was the live one.
    pub async fn release_master(&self, lease: &Lease) -> Result<bool, CoordError> {
        self.backend
            .release_master(&lease.node_id, lease.token)
            .await
            .map_err(|source| CoordError::ReleaseMaster {
                node_id: lease.node_id.clone(),
                source,
            })
    }

    /// The live master, if any.
    pub async fn current_master(&self) -> Result<Option<MasterInfo>, CoordError> {
        let h = self
            .backend
            .current_master()
            .await
            .map_err(CoordError::CurrentMaster)?;
        Ok(h.map(|h| MasterInfo {
            node_id: h.owner,
            token: h.token,
            expires: to_timestamp(h.expires),
        }))
    }

    /// Queue `device_id` in poller group `group` for `work`, claimable from `due_at`.
    /// Returns false if the device is already queued (in any group, for any work) or
    /// claimed: queueing is idempotent and a device is in one place at a time.
    /// Unfenced: the master's scheduler should use [`Coord::enqueue_as_master`].
    pub async fn enqueue(
        &self,
        group: i32,
        device_id: DeviceId,
        due_at: Timestamp,
        work: Work,
    ) -> Result<bool, CoordError> {
        self.enqueue_fenced(None, group, device_id, due_at, work)
            .await
    }

    /// [`Coord::enqueue`], refused with [`CoordError::MasterLost`] unless `lease` is the
    /// live master lease when the backend decides. A master paused past its lease (GC,
    /// SIGSTOP) and woken up with a stale schedule therefore cannot queue anything, even
    /// if it checked its lease locally just before the pause.
    pub async fn enqueue_as_master(
        &self,
        lease: &Lease,
        group: i32,
        device_id: DeviceId,
        due_at: Timestamp,
        work: Work,
    ) -> Result<bool, CoordError> {
        self.enqueue_fenced(Some(lease), group, device_id, due_at, work)
            .await
    }

    async fn enqueue_fenced(
        &self,
        lease: Option<&Lease>,
        group: i32,
        device_id: DeviceId,
        due_at: Timestamp,
        work: Work,
    ) -> Result<bool, CoordError> {
        let fence = lease.map(|l| (l.node_id.as_str(), l.token));
        let r = self
            .backend
            .enqueue(group, device_id, from_timestamp(due_at), work, fence)
            .await
            .map_err(|source| CoordError::Enqueue {
                group,
                device_id,
                source,
            })?;
        r.map_err(|refusal| master_lost(lease, &refusal))
    }

    /// Take the most overdue due device of `groups` and lock it for `node_id` for
    /// `lease_ttl` under a new fencing token. `None` when nothing is due.
    pub async fn claim(
        &self,
        groups: &[i32],
        node_id: &str,
        lease_ttl: Duration,
    ) -> Result<Option<Claim>, CoordError> {
        if groups.is_empty() {
            return Ok(None);
        }
        let sent = Instant::now();
        let g = self
            .backend
            .claim(groups, node_id, ttl_ms(lease_ttl))
            .await
            .map_err(|source| CoordError::Claim {
                node_id: node_id.to_owned(),
                source,
            })?;
        Ok(g.map(|g| Claim {
            device_id: g.device_id,
            group: g.group,
            node_id: node_id.to_owned(),
            token: g.token,
            expires: to_timestamp(g.expires),
            ttl: lease_ttl,
            valid_until: sent + lease_ttl,
            due_at: (g.due > 0).then(|| to_timestamp(g.due)),
            work: g.work,
        }))
    }

    /// Extend a claim while its poll runs. Fails with [`CoordError::ClaimLost`] once the
    /// lease ran out or the device was re-queued or claimed by another node.
    pub async fn renew_claim(&self, claim: &Claim) -> Result<Claim, CoordError> {
        let sent = Instant::now();
        let r = self
            .backend
            .renew_claim(
                claim.device_id,
                &claim.node_id,
                claim.token,
                ttl_ms(claim.ttl),
            )
            .await
            .map_err(|source| CoordError::RenewClaim {
                device_id: claim.device_id,
                source,
            })?;
        match r {
            Ok(g) => Ok(Claim {
                expires: to_timestamp(g.expires),
                valid_until: sent + claim.ttl,
                ..claim.clone()
            }),
            Err(refusal) => {
                tracing::warn!(device_id = claim.device_id, token = claim.token, reason = %describe(&refusal), "claim lost");
                Err(CoordError::ClaimLost {
                    device_id: claim.device_id,
                    token: claim.token,
                    reason: describe(&refusal),
                })
            }
        }
    }

    /// Finish a claim. `true` when this was the live claim (the device leaves the queue
    /// system until enqueued again); `false` for a stale claim (expired, re-queued, or
    /// re-claimed by another node): its result must be discarded.
    pub async fn ack(&self, claim: &Claim) -> Result<bool, CoordError> {
        let r = self
            .backend
            .ack(claim.device_id, &claim.node_id, claim.token)
            .await
            .map_err(|source| CoordError::Ack {
                device_id: claim.device_id,
                source,
            })?;
        match r {
            Ok(()) => Ok(true),
            Err(refusal) => {
                tracing::info!(device_id = claim.device_id, token = claim.token, reason = %describe(&refusal), "stale claim acknowledged; result to be discarded");
                Ok(false)
            }
        }
    }

    /// Put claims whose lease ran out (on the backend's clock) back in their group's
    /// queue, due when they expired (at most 1,000 per call on Redis: call again while it
    /// returns a full batch). The master calls this periodically. Returns the devices.
    pub async fn requeue_expired(&self) -> Result<Vec<DeviceId>, CoordError> {
        self.requeue_fenced(None).await
    }

    /// [`Coord::requeue_expired`], refused with [`CoordError::MasterLost`] unless `lease`
    /// is the live master lease.
    pub async fn requeue_expired_as_master(
        &self,
        lease: &Lease,
    ) -> Result<Vec<DeviceId>, CoordError> {
        self.requeue_fenced(Some(lease)).await
    }

    async fn requeue_fenced(&self, lease: Option<&Lease>) -> Result<Vec<DeviceId>, CoordError> {
        let fence = lease.map(|l| (l.node_id.as_str(), l.token));
        let v = self
            .backend
            .requeue_expired(fence)
            .await
            .map_err(CoordError::RequeueExpired)?
            .map_err(|refusal| master_lost(lease, &refusal))?;
        if !v.is_empty() {
            tracing::info!(count = v.len(), devices = ?v, "re-queued expired claims");
        }
        Ok(v)
    }

    /// Depth of every poller group's queue, by group.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, CoordError> {
        self.depths(None).await
    }

    /// [`Coord::queue_depths`] with [`QueueDepth::late`] counting the queued devices due
    /// at least `late_after` ago (on the backend's clock): the master's queue-lag check
    /// (devices waiting in a queue for longer than one interval = the pollers are behind).
    pub async fn queue_lag(&self, late_after: Duration) -> Result<Vec<QueueDepth>, CoordError> {
        self.depths(Some(ttl_ms(late_after))).await
    }

    async fn depths(&self, late_ms: Option<u64>) -> Result<Vec<QueueDepth>, CoordError> {
        let mut v = self
            .backend
            .queue_depths(late_ms)
            .await
            .map_err(CoordError::QueueDepths)?;
        v.sort_by_key(|d| d.group);
        Ok(v)
    }
}
