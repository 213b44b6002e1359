//! The tokio edge of the engine: one shared UDP socket per [`SnmpClient`], one receive task
//! that matches responses to requests by id, and cheap per-agent [`Session`] handles that run
//! GET/GETNEXT/GETBULK/SET, walks and table walks.
//!
//! Why this shape: polling thousands of agents must not cost a socket, a task or a system
//! call storm per request. Requests register a one-shot slot in a shared map keyed by
//! request-id (msgID for v3) and send on the shared socket; the receive task reads each
//! datagram, peeks the id without decoding the varbinds, checks the source address and hands
//! the decoded PDU (decoded straight from the receive buffer) to the waiting request.
//! Datagrams from the wrong source or with unknown ids are dropped and counted.
//!
//! On Linux the socket is driven in batches (`ClientOptions::batch_io`): the receive task
//! drains every datagram that is ready with `recvmmsg` (up to 32 per system call) before it
//! yields, and requests queued in the same scheduler tick (typically the next requests of the
//! walks its last batch of responses woke) leave together in one `sendmmsg`. Elsewhere, or
//! with `batch_io` off, each datagram is one `recv_from`/`send_to`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lookout_core::{SnmpConfig, SnmpVersion};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::AbortHandle;

use crate::ber::DecodeError;
use crate::error::{Result, SnmpError};
use crate::oid::Oid;
use crate::pdu::{
    decode_community_message, encode_community_message, peek_message_id, AnyPdu, Pdu, PduType,
    Version,
};
use crate::usm::{UsmParams, UsmSession};
use crate::value::{Value, VarBind};

/// Rows of a table walk: the row index (OID suffix after the column) to one value per
/// requested column, `None` where the agent had no value for that row and column.
pub type TableRows = BTreeMap<Oid, Vec<Option<Value>>>;

/// Tunables of a client (shared by all its sessions).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Requests in flight per agent address at most (net-snmp tools use 1).
    pub max_in_flight_per_agent: usize,
    /// max-repetitions for bulk walks unless a session overrides it.
    pub max_repetitions: u32,
    /// Socket receive buffer to ask the kernel for, so bursts of replies are not dropped.
    pub recv_buffer_bytes: usize,
    /// Linux: move datagrams with `recvmmsg`/`sendmmsg`, many per system call (default on).
    /// Ignored on other systems, which use one `recv_from`/`send_to` per datagram.
    pub batch_io: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_in_flight_per_agent: 4,
            max_repetitions: 25,
            recv_buffer_bytes: 4 << 20,
            batch_io: true,
        }
    }
}

/// Counters of the client's traffic (monotonic since bind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Datagrams sent, retries included.
    pub requests_sent: u64,
    /// Re-sends after a timeout.
    pub retries: u64,
    /// Requests that ran out of retries.
    pub timeouts: u64,
    /// Datagrams matched to a waiting request.
    pub responses: u64,
    /// Datagrams whose id matched no waiting request (late, duplicate or foreign).
    pub dropped_unknown_id: u64,
    /// Datagrams whose id matched but whose source address was not the agent's.
    pub dropped_wrong_source: u64,
    /// Datagrams that were not even an SNMP header.
    pub dropped_undecodable: u64,
}

#[derive(Default)]
struct Stats {
    requests_sent: AtomicU64,
    retries: AtomicU64,
    timeouts: AtomicU64,
    responses: AtomicU64,
    dropped_unknown_id: AtomicU64,
    dropped_wrong_source: AtomicU64,
    dropped_undecodable: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the receive task hands to a waiting request.
enum Delivery {
    /// v1/v2c: the PDU, decoded in the receive task straight from its buffer.
    Pdu(std::result::Result<Pdu, DecodeError>),
    /// v3: the whole datagram; the session verifies and decrypts it with its keys.
    Raw(Vec<u8>),
}

/// A delivery, or why the request's datagram could not be sent (batched sends happen in
/// the send task, which reports errors back through the request's slot).
type Reply = std::result::Result<Delivery, std::io::Error>;

struct Pending {
    addr: SocketAddr,
    tx: oneshot::Sender<Reply>,
}

/// A request datagram waiting in the outbox for the send task.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Outgoing {
    id: i32,
    addr: SocketAddr,
    bytes: Vec<u8>,
}

struct Shared {
    socket: UdpSocket,
    pending: Mutex<HashMap<i32, Pending>>,
    stats: Stats,
    /// Batched I/O in use: requests go through `outbox` and the send task.
    batched: bool,
    outbox: Mutex<Vec<Outgoing>>,
    outbox_ready: tokio::sync::Notify,
}

impl Shared {
    /// Queues a datagram for the send task.
    fn enqueue(&self, out: Outgoing) -> Result<()> {
        self.outbox.lock().map_err(|_| SnmpError::Closed)?.push(out);
        self.outbox_ready.notify_one();
        Ok(())
    }

    /// Fails the request waiting for `id` with a send error.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn fail(&self, id: i32, e: std::io::Error) {
        let p = match self.pending.lock() {
            Ok(mut map) => map.remove(&id),
            Err(_) => None,
        };
        if let Some(p) = p {
            let _ = p.tx.send(Err(e));
        }
    }
}

struct ClientInner {
    shared: Arc<Shared>,
    options: ClientOptions,
    next_id: AtomicU32,
    agents: Mutex<HashMap<SocketAddr, Weak<Semaphore>>>,
    usm_keys: crate::usm::KeyCache,
    tasks: Vec<AbortHandle>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An SNMP manager endpoint: one UDP socket and its receive task. Cheap to clone; the task
/// stops when the last clone and the last [`Session`] made from it are dropped.
#[derive(Clone)]
pub struct SnmpClient {
    inner: Arc<ClientInner>,
}

impl SnmpClient {
    /// Binds `0.0.0.0:0` (for IPv4 agents) with default options. Needs a tokio runtime.
    pub async fn bind_v4() -> Result<SnmpClient> {
        Self::bind(
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            ClientOptions::default(),
        )
        .await
    }

    /// Binds `[::]:0` (for IPv6 agents) with default options.
    pub async fn bind_v6() -> Result<SnmpClient> {
        Self::bind(
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            ClientOptions::default(),
        )
        .await
    }

    /// Binds a given local address with given options.
    pub async fn bind(local: SocketAddr, options: ClientOptions) -> Result<SnmpClient> {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(local),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if local.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        // Best effort: the kernel caps it at net.core.rmem_max.
        if let Err(e) = sock.set_recv_buffer_size(options.recv_buffer_bytes) {
            tracing::debug!("setting SO_RCVBUF failed: {e}");
        }
        sock.set_nonblocking(true)?;
        sock.bind(&local.into())?;
        let socket = UdpSocket::from_std(sock.into())?;
        let batched = cfg!(target_os = "linux") && options.batch_io;
        let shared = Arc::new(Shared {
            socket,
            pending: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            batched,
            outbox: Mutex::new(Vec::new()),
            outbox_ready: tokio::sync::Notify::new(),
        });
        let tasks = spawn_io_tasks(&shared);
        // Random start so that ids of a restarted poller do not collide with late replies.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(1);
        Ok(SnmpClient {
            inner: Arc::new(ClientInner {
                shared,
                options,
                next_id: AtomicU32::new(seed),
                agents: Mutex::new(HashMap::new()),
                usm_keys: crate::usm::KeyCache::default(),
                tasks,
            }),
        })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.shared.socket.local_addr()?)
    }

    /// Traffic counters.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.shared.stats;
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            requests_sent: l(&s.requests_sent),
            retries: l(&s.retries),
            timeouts: l(&s.timeouts),
            responses: l(&s.responses),
            dropped_unknown_id: l(&s.dropped_unknown_id),
            dropped_wrong_source: l(&s.dropped_wrong_source),
            dropped_undecodable: l(&s.dropped_undecodable),
        }
    }

    /// A session to the agent at `addr` (its port is used as is; callers normally build it
    /// from the device's IP and `cfg.port`). Validates `cfg` (v3 names and protocols) but
    /// sends nothing: v3 engine discovery happens on the first request.
    pub fn session(&self, addr: SocketAddr, cfg: &SnmpConfig) -> Result<Session> {
        let local = self.inner.shared.socket.local_addr()?;
        if local.is_ipv4() != addr.is_ipv4() {
            return Err(SnmpError::BadConfig(format!(
                "agent {addr} and client socket {local} are of different IP families \
                 (use SnmpClient::bind_v4 for IPv4 agents, bind_v6 for IPv6)"
            )));
        }
        let security = match cfg.version {
            SnmpVersion::V1 => Security::Community {
                version: Version::V1,
                community: Arc::from(cfg.community.as_bytes()),
            },
            SnmpVersion::V2c => Security::Community {
                version: Version::V2c,
                community: Arc::from(cfg.community.as_bytes()),
            },
            SnmpVersion::V3 => {
                let v3 = cfg
                    .v3
                    .as_ref()
                    .ok_or_else(|| SnmpError::BadConfig("SNMPv3 without v3 settings".into()))?;
                let params = UsmParams::from_config(v3)?;
                Security::Usm(Arc::new(UsmSession::new(params)))
            }
        };
        let limit = {
            let mut agents = self.inner.agents.lock().map_err(|_| SnmpError::Closed)?;
            // Forget agents without sessions, but only now and then: pruning on every call
            // would make creating n sessions O(n^2).
            if agents.len() >= 1024 && agents.len().is_power_of_two() {
                agents.retain(|_, w| w.strong_count() > 0);
            }
            match agents.get(&addr).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    let s = Arc::new(Semaphore::new(
                        self.inner.options.max_in_flight_per_agent.max(1),
                    ));
                    agents.insert(addr, Arc::downgrade(&s));
                    s
                }
            }
        };
        Ok(Session {
            inner: Arc::new(SessionInner {
                client: self.inner.clone(),
                addr,
                security,
                timeout: Duration::from_millis(u64::from(cfg.timeout_ms.max(1))),
                retries: cfg.retries,
                limit,
            }),
            max_repetitions: self.inner.options.max_repetitions.clamp(1, 10_000),
        })
    }
}

fn spawn_io_tasks(shared: &Arc<Shared>) -> Vec<AbortHandle> {
    #[cfg(target_os = "linux")]
    if shared.batched {
        return vec![
            tokio::spawn(batched::receive_loop(shared.clone())).abort_handle(),
            tokio::spawn(batched::send_loop(shared.clone())).abort_handle(),
        ];
    }
    vec![tokio::spawn(receive_loop(shared.clone())).abort_handle()]
}

/// The portable receive loop: one `recv_from` per datagram.
async fn receive_loop(shared: Arc<Shared>) {
    // 64 KiB: the largest UDP payload, so no reply is ever truncated.
    let mut buf = vec![0u8; 65_536];
    loop {
        match shared.socket.recv_from(&mut buf).await {
            Ok((n, from)) => handle_datagram(&shared, &buf[..n], from),
            Err(e) => {
                tracing::warn!("snmp socket receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn handle_datagram(shared: &Shared, data: &[u8], from: SocketAddr) {
    let (version, id) = match peek_message_id(data) {
        Ok(x) => x,
        Err(e) => {
            bump(&shared.stats.dropped_undecodable);
            tracing::debug!(%from, "dropping undecodable datagram: {e}");
            return;
        }
    };
    let pending = {
        let Ok(mut map) = shared.pending.lock() else {
            return;
        };
        match map.get(&id) {
            None => {
                bump(&shared.stats.dropped_unknown_id);
                tracing::debug!(%from, id, "dropping response with unknown id");
                return;
            }
            Some(p) if !same_source(p.addr, from) => {
                bump(&shared.stats.dropped_wrong_source);
                tracing::debug!(%from, expected = %p.addr, id, "dropping response from wrong source");
                return;
            }
            Some(_) => map.remove(&id),
        }
    };
    let Some(pending) = pending else { return };
    bump(&shared.stats.responses);
    let delivery = if version == Version::V3 {
        Delivery::Raw(data.to_vec())
    } else {
        Delivery::Pdu(decode_community_message(data).and_then(|m| match m.pdu {
            AnyPdu::Pdu(p) => Ok(p),
            AnyPdu::TrapV1(_) => Err(DecodeError {
                offset: 0,
                msg: "trap where a response was expected",
            }),
        }))
    };
    // The requester may have given up in the meantime; nothing to do then.
    let _ = pending.tx.send(Ok(delivery));
}

/// IPv4 agents seen through a dual-stack socket arrive as IPv4-mapped IPv6 addresses.
fn same_source(expected: SocketAddr, from: SocketAddr) -> bool {
    if expected == from {
        return true;
    }
    let canon = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => a,
        },
        a => a,
    };
    canon(expected) == canon(from)
}

/// Removes a request's slot from the map however the request ends (answer, timeout, drop).
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.shared.pending.lock() {
            map.remove(&self.id);
        }
    }
}

enum Security {
    Community {
        version: Version,
        community: Arc<[u8]>,
    },
    Usm(Arc<UsmSession>),
}

struct SessionInner {
    client: Arc<ClientInner>,
    addr: SocketAddr,
    security: Security,
    timeout: Duration,
    retries: u32,
    limit: Arc<Semaphore>,
}

/// A handle for talking to one agent with one set of credentials. Clone it freely; clones
/// share the agent's in-flight limit (and, for v3, the discovered engine state).
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
    max_repetitions: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.inner.addr)
            .field("version", &self.version())
            .field("max_repetitions", &self.max_repetitions)
            .finish()
    }
}

impl Session {
    /// The agent's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The SNMP version this session speaks.
    pub fn version(&self) -> Version {
        match &self.inner.security {
            Security::Community { version, .. } => *version,
            Security::Usm(_) => Version::V3,
        }
    }

    /// This session with another max-repetitions for bulk walks (tune per device: big
    /// values save round trips, too big ones make agents answer tooBig or slowly).
    pub fn with_max_repetitions(mut self, n: u32) -> Session {
        // Above a few thousand no response fits a UDP datagram anyway; the cap also keeps
        // the value inside the PDU's signed 32-bit field.
        self.max_repetitions = n.clamp(1, 10_000);
        self
    }

    /// The max-repetitions bulk walks use.
    pub fn max_repetitions(&self) -> u32 {
        self.max_repetitions
    }

    fn next_id(&self) -> i32 {
        // Ids stay positive and non-zero: some agents mishandle negative request-ids.
        let n = self.inner.client.next_id.fetch_add(1, Ordering::Relaxed);
        ((n & 0x7fff_ffff) as i32).max(1)
    }

    /// Sends a request PDU and waits for the matching response PDU, with retries.
    /// Returns the response even when its error-status is non-zero.
    pub async fn request(&self, mut pdu: Pdu) -> Result<Pdu> {
        let _permit = self
            .inner
            .limit
            .acquire()
            .await
            .map_err(|_| SnmpError::Closed)?;
        match &self.inner.security {
            Security::Community { version, community } => {
                let id = self.next_id();
                pdu.request_id = id;
                let bytes = encode_community_message(*version, community, &pdu);
                match self.exchange(id, &bytes).await? {
                    Delivery::Pdu(p) => check_response(p?, &pdu),
                    Delivery::Raw(_) => Err(SnmpError::UnexpectedResponse(
                        "SNMPv3 message on a community session".into(),
                    )),
                }
            }
            Security::Usm(usm) => {
                let usm = usm.clone();
                usm.request(self, &self.inner.client.usm_keys, pdu).await
            }
        }
    }

    /// One id, one datagram, retries on timeout; the raw delivery back.
    async fn exchange(&self, id: i32, bytes: &[u8]) -> Result<Delivery> {
        let shared = &*self.inner.client.shared;
        let (tx, mut rx) = oneshot::channel();
        shared
            .pending
            .lock()
            .map_err(|_| SnmpError::Closed)?
            .insert(
                id,
                Pending {
                    addr: self.inner.addr,
                    tx,
                },
            );
        let _guard = PendingGuard { shared, id };
        let attempts = self.inner.retries.saturating_add(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                bump(&shared.stats.retries);
            }
            if shared.batched {
                // The send task counts it once it is on the wire.
                shared.enqueue(Outgoing {
                    id,
                    addr: self.inner.addr,
                    bytes: bytes.to_vec(),
                })?;
            } else {
                shared.socket.send_to(bytes, self.inner.addr).await?;
                bump(&shared.stats.requests_sent);
            }
            match tokio::time::timeout(self.inner.timeout, &mut rx).await {
                Ok(Ok(Ok(d))) => return Ok(d),
                Ok(Ok(Err(e))) => return Err(SnmpError::Io(e)),
                Ok(Err(_)) => return Err(SnmpError::Closed),
                Err(_) => continue,
            }
        }
        bump(&shared.stats.timeouts);
        Err(SnmpError::Timeout {
            addr: self.inner.addr,
            attempts,
        })
    }

    /// Sends pre-encoded bytes under `id` (for the v3 layer, which encodes itself).
    pub(crate) async fn exchange_raw(&self, id: i32, bytes: &[u8]) -> Result<Vec<u8>> {
        match self.exchange(id, bytes).await? {
            Delivery::Raw(b) => Ok(b),
            Delivery::Pdu(_) => Err(SnmpError::UnexpectedResponse(
                "v1/v2c message on an SNMPv3 session".into(),
            )),
        }
    }

    pub(crate) fn new_id(&self) -> i32 {
        self.next_id()
    }

    /// GET: the values of `oids`, in order. v2c/v3 agents report missing objects as
    /// `NoSuchObject`/`NoSuchInstance` values; v1 agents as `ErrorStatus` noSuchName (2).
    pub async fn get(&self, oids: &[Oid]) -> Result<Vec<VarBind>> {
        let resp = self.request(Pdu::get(0, oids)).await?;
        ok_varbinds(resp)
    }

    /// GETNEXT: the next varbind after each of `oids`.
    pub async fn get_next(&self, oids: &[Oid]) -> Result<Vec<VarBind>> {
        let resp = self.request(Pdu::get_next(0, oids)).await?;
        ok_varbinds(resp)
    }

    /// GETBULK (v2c/v3): `non_repeaters` GETNEXTs, then up to `max_repetitions` successors of
    /// each remaining OID, interleaved row by row as the agent returns them.
    pub async fn get_bulk(
        &self,
        non_repeaters: u32,
        max_repetitions: u32,
        oids: &[Oid],
    ) -> Result<Vec<VarBind>> {
        if self.version() == Version::V1 {
            return Err(SnmpError::BadConfig(
                "GETBULK does not exist in SNMPv1".into(),
            ));
        }
        let nr = i32::try_from(non_repeaters).unwrap_or(i32::MAX);
        let mr = i32::try_from(max_repetitions).unwrap_or(i32::MAX);
        let resp = self.request(Pdu::get_bulk(0, nr, mr, oids)).await?;
        ok_varbinds(resp)
    }

    /// SET: writes `varbinds`; returns the agent's echo of them.
    pub async fn set(&self, varbinds: &[VarBind]) -> Result<Vec<VarBind>> {
        let resp = self.request(Pdu::set(0, varbinds.to_vec())).await?;
        ok_varbinds(resp)
    }

    /// Walks the subtree under `root` (GETBULK for v2c/v3, GETNEXT for v1), in agent order.
    /// Stops on leaving the subtree or at an exception (endOfMibView); fails with
    /// `NonIncreasingOid` when a response does not get past the OID it was asked from (the
    /// agent loops). The rules are net-snmp's `snmpbulkwalk`'s, so both return the same
    /// varbinds even from agents that return OIDs out of order within a response. When the subtree is empty, GETs `root` itself as net-snmp's walk
    /// tools do (so walking a scalar instance like `sysUpTime.0` gives it).
    pub async fn walk(&self, root: &Oid) -> Result<Vec<VarBind>> {
        let (vbs, err) = self.walk_partial(root).await;
        match err {
            Some(e) => Err(e),
            None => Ok(vbs),
        }
    }

    /// Like [`Session::walk`], but keeps what was collected before an error.
    pub async fn walk_partial(&self, root: &Oid) -> (Vec<VarBind>, Option<SnmpError>) {
        let mut out = Vec::new();
        let res = self.walk_into(root, &mut out).await;
        if res.is_ok() && out.is_empty() {
            match self.get(std::slice::from_ref(root)).await {
                Ok(vbs) => out.extend(vbs.into_iter().filter(|v| !v.value.is_exception())),
                // v1 says noSuchName for a missing instance: an empty walk, not an error.
                Err(SnmpError::ErrorStatus { status: 2, .. }) => {}
                Err(e) => return (out, Some(e)),
            }
        }
        (out, res.err())
    }

    async fn walk_into(&self, root: &Oid, out: &mut Vec<VarBind>) -> Result<()> {
        let v1 = self.version() == Version::V1;
        let mut cursor = root.clone();
        let mut reps = self.max_repetitions;
        loop {
            let pdu = if v1 {
                Pdu::get_next(0, std::slice::from_ref(&cursor))
            } else {
                Pdu::get_bulk(0, 0, reps as i32, std::slice::from_ref(&cursor))
            };
            let resp = self.request(pdu).await?;
            match resp.error_status {
                0 => {}
                // v1: noSuchName on GETNEXT means the end of the MIB.
                2 if v1 => return Ok(()),
                // tooBig: ask for less.
                1 if reps > 1 => {
                    reps = (reps / 2).max(1);
                    continue;
                }
                s => {
                    return Err(SnmpError::ErrorStatus {
                        status: s,
                        index: resp.error_index,
                    })
                }
            }
            if resp.varbinds.is_empty() {
                return Ok(());
            }
            // net-snmp's snmpbulkwalk rules, so that both return the same varbinds from the
            // same agent (buggy ones included): every varbind of a response that lies in the
            // subtree and is not an exception is kept, in agent order; leaving the subtree or
            // an exception ends the walk after this response; loop detection compares the
            // response's last OID with the one the request started from, which guarantees
            // progress.
            let last = resp.varbinds.last().map(|v| v.oid.clone());
            let mut done = false;
            for vb in resp.varbinds {
                if !vb.oid.starts_with(root) || vb.value.is_exception() {
                    done = true;
                    continue;
                }
                out.push(vb);
            }
            if done {
                return Ok(());
            }
            let Some(last) = last else { return Ok(()) };
            if last <= cursor {
                return Err(SnmpError::NonIncreasingOid {
                    previous: cursor,
                    next: last,
                });
            }
            cursor = last;
        }
    }

    /// Walks several columns of one table together (one GETBULK carries all columns still
    /// running) and returns rows keyed by index: `rows[index][i]` is the value of
    /// `columns[i]` for that row. Columns end independently (sparse tables work).
    pub async fn walk_columns(&self, columns: &[Oid]) -> Result<TableRows> {
        let v1 = self.version() == Version::V1;
        let n = columns.len();
        let mut rows = TableRows::new();
        let mut cursors: Vec<Option<Oid>> = columns.iter().cloned().map(Some).collect();
        let mut reps = self.max_repetitions;
        loop {
            let active: Vec<usize> = (0..n).filter(|&i| cursors[i].is_some()).collect();
            if active.is_empty() {
                return Ok(rows);
            }
            let oids: Vec<Oid> = active.iter().filter_map(|&i| cursors[i].clone()).collect();
            let pdu = if v1 {
                Pdu::get_next(0, &oids)
            } else {
                let per = (reps as usize / active.len()).max(1);
                Pdu::get_bulk(0, 0, per as i32, &oids)
            };
            let resp = self.request(pdu).await?;
            match resp.error_status {
                0 => {}
                2 if v1 => {
                    // The column at error-index ran off the end of the MIB.
                    let k = usize::try_from(resp.error_index - 1).ok();
                    match k.and_then(|k| active.get(k)) {
                        Some(&col) => {
                            cursors[col] = None;
                            continue;
                        }
                        None => {
                            return Err(SnmpError::ErrorStatus {
                                status: 2,
                                index: resp.error_index,
                            })
                        }
                    }
                }
                1 if reps as usize > active.len() => {
                    reps /= 2;
                    continue;
                }
                s => {
                    return Err(SnmpError::ErrorStatus {
                        status: s,
                        index: resp.error_index,
                    })
                }
            }
            if resp.varbinds.is_empty() {
                return Ok(rows);
            }
            // Per column, the same rules as `walk`: varbinds in the column are kept in agent
            // order until the column is left or an exception comes; the column's last OID in
            // the response must be past where its request started.
            let mut finished = vec![false; active.len()];
            let mut last: Vec<Option<Oid>> = vec![None; active.len()];
            for (k, vb) in resp.varbinds.into_iter().enumerate() {
                let slot = k % active.len();
                if finished[slot] {
                    continue;
                }
                let col = active[slot];
                let index = match vb.oid.suffix_after(&columns[col]) {
                    Some(ix) if !ix.is_empty() && !vb.value.is_exception() => ix,
                    _ => {
                        finished[slot] = true;
                        continue;
                    }
                };
                let row = rows.entry(Oid::new(index)).or_insert_with(|| vec![None; n]);
                row[col] = Some(vb.value);
                last[slot] = Some(vb.oid);
            }
            for (slot, &col) in active.iter().enumerate() {
                if finished[slot] {
                    cursors[col] = None;
                    continue;
                }
                // A truncated response may carry nothing for some columns: they wait.
                let Some(l) = last[slot].take() else { continue };
                if let Some(cur) = &cursors[col] {
                    if l <= *cur {
                        return Err(SnmpError::NonIncreasingOid {
                            previous: cur.clone(),
                            next: l,
                        });
                    }
                }
                cursors[col] = Some(l);
            }
        }
    }
}

/// A response must be a RESPONSE to our request.
pub(crate) fn check_response(resp: Pdu, req: &Pdu) -> Result<Pdu> {
    if resp.pdu_type != PduType::Response {
        return Err(SnmpError::UnexpectedResponse(format!(
            "{:?} PDU where a response was expected",
            resp.pdu_type
        )));
    }
    if resp.error_status == 0
        && req.pdu_type != PduType::GetBulk
        && resp.varbinds.len() != req.varbinds.len()
    {
        return Err(SnmpError::UnexpectedResponse(format!(
            "{} varbinds in the response to a request of {}",
            resp.varbinds.len(),
            req.varbinds.len()
        )));
    }
    Ok(resp)
}

fn ok_varbinds(resp: Pdu) -> Result<Vec<VarBind>> {
    if resp.error_status != 0 {
        return Err(SnmpError::ErrorStatus {
            status: resp.error_status,
            index: resp.error_index,
        });
    }
    Ok(resp.varbinds)
}

/// Linux batched datagram I/O: `recvmmsg`/`sendmmsg` through `libc` (already in the
/// dependency tree through tokio and socket2; its bindings are exact per target, where
/// nix's `MultiHeaders` wrapper allocates per call and has changed shape between versions).
#[cfg(target_os = "linux")]
mod batched {
    use std::io;
    use std::mem::size_of;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::Interest;

    use super::{handle_datagram, Outgoing, Shared};

    /// Datagrams per system call at most.
    const BATCH: usize = 32;
    /// The largest UDP payload, so that no reply is ever truncated.
    const SLOT: usize = 65_536;
    /// Full batches read in a row before the receive task yields to the requests it woke
    /// (so their next requests can leave, and other tasks are not starved by a flood).
    const FULL_BATCHES_BEFORE_YIELD: usize = 4;

    /// Receive buffers for one `recvmmsg`: BATCH slots of 64 KiB. The 2 MiB are allocated
    /// zeroed (calloc), so only the pages datagrams actually reach become resident.
    struct RecvBatch {
        buf: Vec<u8>,
        addrs: Vec<libc::sockaddr_storage>,
        lens: [usize; BATCH],
    }

    impl RecvBatch {
        fn new() -> RecvBatch {
            RecvBatch {
                buf: vec![0u8; BATCH * SLOT],
                // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
                addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
                lens: [0; BATCH],
            }
        }

        /// One non-blocking `recvmmsg`: the number of datagrams read (≥ 1) or an error
        /// (`WouldBlock` when none was waiting).
        fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
            // The headers hold raw pointers into `self`; they live only for this call (and
            // so the struct stays Send for the receive task).
            // SAFETY: iovec and mmsghdr are plain C structs; all zeroes is valid for both.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (i, (slot, addr)) in self
                .buf
                .chunks_exact_mut(SLOT)
                .zip(self.addrs.iter_mut())
                .enumerate()
            {
                iov[i].iov_base = slot.as_mut_ptr().cast();
                iov[i].iov_len = SLOT;
                let h = &mut hdrs[i].msg_hdr;
                h.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = &mut iov[i];
                h.msg_iovlen = 1;
            }
            // SAFETY: every header points at live memory of the sizes given (a 64 KiB slot,
            // a sockaddr_storage, one iovec), all of which outlive the call; MSG_DONTWAIT
            // keeps it from blocking the runtime.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    BATCH as _,
                    libc::MSG_DONTWAIT as _,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = (n as usize).min(BATCH);
            for (len, h) in self.lens.iter_mut().zip(&hdrs).take(n) {
                *len = (h.msg_len as usize).min(SLOT);
            }
            Ok(n)
        }

        /// Datagram `i` of the last `recv` and its source.
        fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
            let data = &self.buf[i * SLOT..i * SLOT + self.lens[i]];
            (data, from_storage(&self.addrs[i]))
        }
    }

    fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) into storage that
                // is large and aligned enough for any sockaddr.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, a sockaddr_in6 (family AF_INET6).
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// One `sendmmsg` of up to BATCH datagrams: how many left (≥ 1), or the error of the
    /// first one (the caller skips it and goes on with the rest).
    fn send(
        fd: RawFd,
        items: &[Outgoing],
        names: &mut Vec<socket2::SockAddr>,
    ) -> io::Result<usize> {
        let items = &items[..items.len().min(BATCH)];
        names.clear();
        names.extend(items.iter().map(|o| socket2::SockAddr::from(o.addr)));
        // SAFETY: plain C structs; all zeroes is valid.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (o, name)) in items.iter().zip(names.iter()).enumerate() {
            // The kernel only reads through these pointers on send.
            iov[i].iov_base = o.bytes.as_ptr() as *mut libc::c_void;
            iov[i].iov_len = o.bytes.len();
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = name.as_ptr() as *mut libc::c_void;
            h.msg_namelen = name.len();
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: the first items.len() headers point at live buffers and addresses of the
        // lengths given, which outlive the call; MSG_DONTWAIT keeps it from blocking.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr(),
                items.len() as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        match n {
            n if n < 0 => Err(io::Error::last_os_error()),
            0 => Err(io::ErrorKind::WriteZero.into()),
            n => Ok(n as usize),
        }
    }

    /// Drains the socket with `recvmmsg` whenever it becomes readable: full batches are
    /// followed by another read, a short one means the queue is empty.
    pub(super) async fn receive_loop(shared: Arc<Shared>) {
        let mut batch = RecvBatch::new();
        let fd = shared.socket.as_raw_fd();
        loop {
            if let Err(e) = shared.socket.readable().await {
                tracing::warn!("snmp socket receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let mut full = 0;
            loop {
                let mut got = 0;
                let res = shared.socket.try_io(Interest::READABLE, || {
                    got = batch.recv(fd)?;
                    // A short batch emptied the queue: report WouldBlock so that tokio
                    // clears the readiness now instead of after one more recvmmsg that
                    // finds nothing. A datagram arriving meanwhile is a new readiness
                    // event, which this does not clear.
                    if got < BATCH {
                        Err(io::ErrorKind::WouldBlock.into())
                    } else {
                        Ok(())
                    }
                });
                for i in 0..got {
                    match batch.get(i) {
                        (data, Some(from)) => handle_datagram(&shared, data, from),
                        (_, None) => super::bump(&shared.stats.dropped_undecodable),
                    }
                }
                match res {
                    Ok(()) => {
                        full += 1;
                        if full % FULL_BATCHES_BEFORE_YIELD == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::warn!("snmp socket receive failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        break;
                    }
                }
            }
        }
    }

    /// Sends what the requests queued, in `sendmmsg` batches. A datagram that cannot be
    /// sent fails its request with the error; the others go on.
    pub(super) async fn send_loop(shared: Arc<Shared>) {
        let fd = shared.socket.as_raw_fd();
        let mut queue: Vec<Outgoing> = Vec::new();
        let mut names = Vec::with_capacity(BATCH);
        loop {
            shared.outbox_ready.notified().await;
            // Let every task woken in this tick (by one batch of responses) queue its next
            // request first, so that one sendmmsg carries them all.
            tokio::task::yield_now().await;
            match shared.outbox.lock() {
                Ok(mut outbox) => std::mem::swap(&mut queue, &mut *outbox),
                Err(_) => return,
            }
            let mut start = 0;
            while start < queue.len() {
                let chunk = &queue[start..];
                match shared
                    .socket
                    .async_io(Interest::WRITABLE, || send(fd, chunk, &mut names))
                    .await
                {
                    Ok(n) => {
                        shared
                            .stats
                            .requests_sent
                            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        start += n;
                    }
                    Err(e) => {
                        tracing::debug!(to = %chunk[0].addr, "snmp send failed: {e}");
                        shared.fail(chunk[0].id, e);
                        start += 1;
                    }
                }
            }
            queue.clear();
        }
    }
}
