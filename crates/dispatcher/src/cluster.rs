//! The distributed dispatcher: what one node runs for the `dispatcher` and `poller` roles
//! over a [`Coord`] (in-process for a single node, Redis/Sentinel for a cluster).
//!
//! * **Membership**: a heartbeat every [`ClusterConfig::heartbeat_every`] with a TTL of
//!   three beats, carrying roles, groups, workers and per-group counters.
//! * **Master** (`dispatcher` role): every such node tries to take the master lease; the
//!   holder keeps the [`Schedule`] (fed from the store inventory, reloaded periodically,
//!   first due times from each device's `last_polled` so a new master does not re-poll
//!   what its predecessor just polled), enqueues due devices in their poller group's queue
//!   with `enqueue_as_master` (fenced by the lease in the backend), re-queues claims whose
//!   lease ran out, and stops at once when a renewal is refused or its lease runs out on
//!   its own clock.
//! * **Workers** (`poller` role): claim a device of the node's groups under a lease,
//!   renew it while the poll runs, register the claim's fencing token in the store before
//!   polling and write the results only while that token is still the device's
//!   (`Store::update_device_poll_fenced`), then acknowledge.
//!
//! Back-pressure: a device that cannot be queued because its previous poll is still
//! queued or running is retried every quarter interval; still refused a whole interval
//! after it was due, it counts as "behind" (logged as "poller is behind" and published
//! in the heartbeat).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use lookout_coord::{Claim, Coord, Lease, NodeInfo};
use lookout_core::DeviceId;
use lookout_poller::{PollError, Poller};
use lookout_store::{PollFence, PollLogEntry, PollOutcome, Store, StoreError};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::schedule::Schedule;

/// The roles a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub web: bool,
    pub dispatcher: bool,
    pub poller: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            web: true,
            dispatcher: true,
            poller: true,
        }
    }
}

impl Roles {
    /// `web,dispatcher,poller` (any subset, any order; `all` for the three).
    pub fn parse(text: &str) -> Result<Roles, String> {
        let mut r = Roles {
            web: false,
            dispatcher: false,
            poller: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "web" => r.web = true,
                "dispatcher" => r.dispatcher = true,
                "poller" => r.poller = true,
                "all" => r = Roles::default(),
                other => {
                    return Err(format!(
                        "unknown role {other:?} (roles: web, dispatcher, poller)"
                    ))
                }
            }
        }
        if !(r.web || r.dispatcher || r.poller) {
            return Err("no role given (roles: web, dispatcher, poller)".into());
        }
        Ok(r)
    }

    pub fn names(&self) -> Vec<String> {
        [
            (self.web, "web"),
            (self.dispatcher, "dispatcher"),
            (self.poller, "poller"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| (*n).to_string())
        .collect()
    }
}

/// Parses `0,2` into poller groups (sorted, deduplicated).
pub fn parse_groups(text: &str) -> Result<Vec<i32>, String> {
    let mut v = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        v.insert(
            part.parse::<i32>()
                .map_err(|_| format!("poller group {part:?} is not a number"))?,
        );
    }
    if v.is_empty() {
        return Err("no poller group given".into());
    }
    Ok(v.into_iter().collect())
}

/// Settings of one node's dispatcher and workers.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node_id: String,
    pub hostname: String,
    pub version: String,
    pub roles: Roles,
    /// Poller groups this node's workers serve.
    pub groups: Vec<i32>,
    /// Workers (polls at once) on this node.
    pub workers: usize,
    /// Seconds between polls of a device.
    pub interval_secs: u64,
    /// How often the master re-reads the inventory.
    pub reload_every: Duration,
    /// Master lease TTL; renewed every third of it.
    pub master_ttl: Duration,
    /// Claim lease TTL; renewed every third of it while the poll runs.
    pub claim_ttl: Duration,
    /// Heartbeat period; a node is dead after three missed beats.
    pub heartbeat_every: Duration,
    /// How long `device_poll_log` rows are kept (the master prunes hourly).
    pub poll_log_keep: Duration,
}

impl ClusterConfig {
    /// Defaults for a node: lease 3 s, claim 6 s, heartbeat 1 s, inventory every 10 s.
    pub fn new(node_id: impl Into<String>, interval_secs: u64, workers: usize) -> Self {
        ClusterConfig {
            node_id: node_id.into(),
            hostname: String::new(),
            version: String::new(),
            roles: Roles::default(),
            groups: vec![0],
            workers,
            interval_secs,
            reload_every: Duration::from_secs(10),
            master_ttl: Duration::from_secs(3),
            claim_ttl: Duration::from_secs(6),
            heartbeat_every: Duration::from_secs(1),
            poll_log_keep: Duration::from_secs(86_400),
        }
    }
}

/// Counters published in the heartbeat (`NodeInfo::stats`).
#[derive(Default)]
struct Stats {
    map: Mutex<BTreeMap<String, f64>>,
}

impl Stats {
    fn add(&self, key: &str, v: f64) {
        if let Ok(mut m) = self.map.lock() {
            *m.entry(key.to_owned()).or_default() += v;
        }
    }
    fn set(&self, key: &str, v: f64) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(key.to_owned(), v);
        }
    }
    fn snapshot(&self) -> BTreeMap<String, f64> {
        self.map.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

struct Ctx {
    store: Store,
    coord: Coord,
    cfg: ClusterConfig,
    stats: Stats,
}

/// Runs this node's roles (dispatcher/poller; `poller` must be given for the poller
/// role) until `shutdown` turns true. Polls in flight finish first; a master releases its
/// lease so another node takes over at once.
pub async fn run_cluster(
    store: Store,
    poller: Option<Poller>,
    coord: Coord,
    cfg: ClusterConfig,
    shutdown: watch::Receiver<bool>,
) {
    info!(
        node_id = %cfg.node_id,
        backend = coord.backend_name(),
        roles = ?cfg.roles.names(),
        groups = ?cfg.groups,
        workers = cfg.workers,
        interval_secs = cfg.interval_secs,
        "dispatcher node starting"
    );
    let ctx = Arc::new(Ctx {
        store,
        coord,
        cfg,
        stats: Stats::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(heartbeat_loop(ctx.clone(), shutdown.clone()));
    if ctx.cfg.roles.dispatcher {
        tasks.spawn(master_loop(ctx.clone(), shutdown.clone()));
    }
    if let (true, Some(poller)) = (ctx.cfg.roles.poller, poller) {
        for w in 0..ctx.cfg.workers.max(1) {
            tasks.spawn(worker_loop(
                ctx.clone(),
                poller.clone(),
                w,
                shutdown.clone(),
            ));
        }
    }
    while tasks.join_next().await.is_some() {}
    info!(node_id = %ctx.cfg.node_id, "dispatcher node stopped");
}

/// Sleeps `d` or until shutdown; true when shutting down.
async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

fn node_info(ctx: &Ctx, started: chrono::DateTime<Utc>) -> NodeInfo {
    NodeInfo {
        node_id: ctx.cfg.node_id.clone(),
        hostname: ctx.cfg.hostname.clone(),
        version: ctx.cfg.version.clone(),
        roles: ctx.cfg.roles.names(),
        groups: if ctx.cfg.roles.poller {
            ctx.cfg.groups.clone()
        } else {
            Vec::new()
        },
        workers: if ctx.cfg.roles.poller {
            u32::try_from(ctx.cfg.workers).unwrap_or(u32::MAX)
        } else {
            0
        },
        started_at: Some(started),
        stats: ctx.stats.snapshot(),
    }
}

async fn heartbeat_loop(ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let started = Utc::now();
    let ttl = ctx.cfg.heartbeat_every * 3;
    let mut failing = false;
    loop {
        match ctx.coord.heartbeat(&node_info(&ctx, started), ttl).await {
            Ok(()) => {
                if failing {
                    info!("heartbeat works again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    warn!(error = %e, "heartbeat failed; retrying every beat");
                }
                failing = true;
            }
        }
        if pause(ctx.cfg.heartbeat_every, &mut shutdown).await {
            break;
        }
    }
}

// ------------------------------------------------------------------------- master

async fn master_loop(ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let retry = (ctx.cfg.master_ttl / 6).max(Duration::from_millis(100));
    let mut failing = false;
    loop {
        match ctx
            .coord
            .try_acquire_master(&ctx.cfg.node_id, ctx.cfg.master_ttl)
            .await
        {
            Ok(Some(lease)) => {
                failing = false;
                info!(node_id = %ctx.cfg.node_id, token = lease.token, "became master");
                ctx.stats.set("master", 1.0);
                let stopping = act_as_master(&ctx, lease, &mut shutdown).await;
                ctx.stats.set("master", 0.0);
                if stopping {
                    break;
                }
            }
            Ok(None) => failing = false,
            Err(e) => {
                if !failing {
                    warn!(error = %e, "cannot try for the master lease; retrying");
                }
                failing = true;
            }
        }
        if pause(retry, &mut shutdown).await {
            break;
        }
    }
}

/// The master's schedule plus what it needs to enqueue.
struct MasterState {
    schedule: Schedule,
    groups: HashMap<DeviceId, i32>,
    last_reload: Option<Instant>,
    last_requeue: Option<Instant>,
    last_prune: Option<Instant>,
    behind_logged: Option<Instant>,
    /// Devices whose enqueue was refused (previous poll still queued or running), since
    /// when (unix seconds): refused for a whole interval = the pollers are behind.
    refused_since: HashMap<DeviceId, i64>,
}

enum Step {
    Continue,
    /// The lease is gone: stop acting as master now.
    Lost,
}

/// Acts as master while the lease holds. Returns true when shutting down.
async fn act_as_master(ctx: &Ctx, mut lease: Lease, shutdown: &mut watch::Receiver<bool>) -> bool {
    let mut st = MasterState {
        schedule: Schedule::new(ctx.cfg.interval_secs),
        groups: HashMap::new(),
        last_reload: None,
        last_requeue: None,
        last_prune: None,
        behind_logged: None,
        refused_since: HashMap::new(),
    };
    let tick = Duration::from_millis(250);
    loop {
        if !lease.is_valid_locally() {
            warn!(
                token = lease.token,
                "master lease ran out on the local clock; stepping down"
            );
            return false;
        }
        if Instant::now() >= lease.renew_at() {
            match ctx.coord.renew_master(&lease).await {
                Ok(l) => lease = l,
                Err(e) if e.is_lost() => {
                    warn!(error = %e, "master lease lost; stepping down");
                    return false;
                }
                Err(e) => {
                    // Keep acting only while the lease is valid on the local clock.
                    warn!(error = %e, "cannot renew the master lease; retrying");
                }
            }
        }
        if let Step::Lost = master_step(ctx, &lease, &mut st).await {
            return false;
        }
        if pause(tick, shutdown).await {
            match ctx.coord.release_master(&lease).await {
                Ok(_) => info!("released the master lease"),
                Err(e) => {
                    warn!(error = %e, "cannot release the master lease; it runs out by itself")
                }
            }
            return true;
        }
    }
}

async fn master_step(ctx: &Ctx, lease: &Lease, st: &mut MasterState) -> Step {
    let reload = ctx.cfg.reload_every;
    if st.last_reload.is_none_or(|t| t.elapsed() >= reload) {
        reload_inventory(ctx, st).await;
    }
    if st
        .last_requeue
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
    {
        st.last_requeue = Some(Instant::now());
        loop {
            match ctx.coord.requeue_expired_as_master(lease).await {
                // Redis hands back at most 1,000 per call.
                Ok(v) if v.len() >= 1000 => continue,
                Ok(_) => break,
                Err(e) if e.is_lost() => return Step::Lost,
                Err(e) => {
                    warn!(error = %e, "cannot re-queue expired claims");
                    break;
                }
            }
        }
    }
    if st
        .last_prune
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600))
    {
        st.last_prune = Some(Instant::now());
        let keep = chrono::Duration::from_std(ctx.cfg.poll_log_keep).unwrap_or_default();
        match ctx.store.prune_poll_log(Utc::now() - keep).await {
            Ok(n) if n > 0 => info!(rows = n, "pruned the poll log"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot prune the poll log"),
        }
    }

    let now = Utc::now().timestamp();
    let interval = i64::try_from(ctx.cfg.interval_secs).unwrap_or(i64::MAX);
    let retry = (interval / 4).clamp(1, 15);
    let due = st.schedule.take_due(now, usize::MAX);
    let mut behind = 0u64;
    let mut enqueued = 0u64;
    let mut pending = due.into_iter();
    while let Some((id, late)) = pending.next() {
        let group = st.groups.get(&id).copied().unwrap_or(0);
        match ctx
            .coord
            .enqueue_as_master(lease, group, id, Utc::now())
            .await
        {
            Ok(true) => {
                st.refused_since.remove(&id);
                enqueued += 1;
                if late > 2 {
                    debug!(device_id = id, late_secs = late, "enqueued late");
                }
                st.schedule.complete(id, now);
            }
            Ok(false) => {
                // Its previous poll is still queued or running (a slow poll, or a new
                // master that read `last_polled` before that poll landed): try again
                // shortly rather than a whole interval later, so the device is polled as
                // soon as it is free (the workers skip it if it was polled less than half
                // an interval ago). Refused for a whole interval = the pollers are behind.
                let since = *st.refused_since.entry(id).or_insert(now);
                if now - since >= interval {
                    behind += 1;
                    ctx.stats.add(&format!("group.{group}.behind"), 1.0);
                    st.refused_since.insert(id, now);
                }
                st.schedule.defer(id, now + retry);
            }
            Err(e) if e.is_lost() => return Step::Lost,
            Err(e) => {
                // Backend unreachable (e.g. a Sentinel fail-over): this one and the rest
                // stay due and are tried on the next tick.
                warn!(error = %e, "cannot enqueue; retrying on the next tick");
                for (id, _) in std::iter::once((id, late)).chain(pending) {
                    st.schedule.remove(id);
                    st.schedule.upsert(id, None, now);
                }
                break;
            }
        }
    }
    if enqueued > 0 {
        debug!(enqueued, "devices queued");
    }
    ctx.stats.set("behind", behind as f64);
    if behind > 0
        && st
            .behind_logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
    {
        warn!(
            devices = behind,
            interval_secs = ctx.cfg.interval_secs,
            "poller is behind: devices still queued or being polled a whole interval after they were due (add workers or nodes for their groups)"
        );
        st.behind_logged = Some(Instant::now());
    }
    Step::Continue
}

async fn reload_inventory(ctx: &Ctx, st: &mut MasterState) {
    st.last_reload = Some(Instant::now());
    match ctx.store.devices().await {
        Ok(devices) => {
            let now = Utc::now().timestamp();
            let keep: BTreeSet<DeviceId> = devices
                .iter()
                .filter(|d| !d.disabled)
                .map(|d| d.device_id)
                .collect();
            st.schedule.retain(&keep);
            st.refused_since.retain(|id, _| keep.contains(id));
            st.groups.clear();
            for d in devices.iter().filter(|d| !d.disabled) {
                st.groups.insert(d.device_id, d.poller_group);
                st.schedule
                    .upsert(d.device_id, d.last_polled.map(|t| t.timestamp()), now);
            }
            debug!(devices = st.schedule.len(), "inventory loaded");
        }
        Err(e) => warn!(error = %e, "cannot read the device inventory; keeping the old schedule"),
    }
}

// ------------------------------------------------------------------------- workers

async fn worker_loop(
    ctx: Arc<Ctx>,
    poller: Poller,
    worker: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let idle = Duration::from_millis(250);
    let mut failing = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match ctx
            .coord
            .claim(&ctx.cfg.groups, &ctx.cfg.node_id, ctx.cfg.claim_ttl)
            .await
        {
            Ok(Some(claim)) => {
                failing = false;
                run_claim(&ctx, &poller, claim, worker).await;
                continue;
            }
            Ok(None) => failing = false,
            Err(e) => {
                if !failing {
                    warn!(worker, error = %e, "cannot claim work; retrying");
                }
                failing = true;
            }
        }
        if pause(idle, &mut shutdown).await {
            break;
        }
    }
}

/// One claimed device: register the token, poll while renewing the claim, write fenced,
/// acknowledge.
async fn run_claim(ctx: &Ctx, poller: &Poller, claim: Claim, worker: usize) {
    let id = claim.device_id;
    let group = claim.group;
    let started_at = Utc::now();
    let device = match ctx.store.device(id).await {
        Ok(Some(d)) if !d.disabled => d,
        Ok(_) => {
            debug!(device_id = id, "claimed device is gone or disabled");
            ack(ctx, &claim).await;
            return;
        }
        Err(e) => {
            // Not acknowledged: the claim runs out and the master re-queues it.
            warn!(device_id = id, error = %e, "cannot load the claimed device");
            return;
        }
    };
    // A poll landed less than half an interval ago (e.g. a claim re-queued after its
    // lease ran out while its poll still finished): polling again would poll twice in one
    // interval.
    let half = i64::try_from(ctx.cfg.interval_secs / 2).unwrap_or(i64::MAX);
    if let Some(last) = device.last_polled {
        if (started_at - last).num_seconds() < half {
            debug!(device = %device.hostname, "polled moments ago; skipping");
            ctx.stats.add(&format!("group.{group}.skipped"), 1.0);
            ack(ctx, &claim).await;
            return;
        }
    }
    match ctx.store.register_poll_token(id, claim.token).await {
        Ok(true) => {}
        Ok(false) => {
            info!(device = %device.hostname, token = claim.token, "a newer claim owns the device; skipping");
            ctx.stats.add(&format!("group.{group}.skipped"), 1.0);
            ack(ctx, &claim).await;
            return;
        }
        Err(e) => {
            warn!(device = %device.hostname, error = %e, "cannot register the poll token");
            return;
        }
    }
    let fence = PollFence {
        node_id: ctx.cfg.node_id.clone(),
        token: claim.token,
        started: started_at,
    };
    ctx.stats.add("busy", 1.0);
    let t = Instant::now();
    let (result, claim) = poll_renewing(ctx, poller, &device, &fence, claim).await;
    let secs = t.elapsed().as_secs_f64();
    ctx.stats.add("busy", -1.0);
    ctx.stats
        .add(&format!("group.{group}.worker_seconds"), secs);
    let outcome = match &result {
        Ok(r) => {
            info!(worker, device = %r.hostname, status = ?r.status, token = claim.token, seconds = format!("{secs:.3}"), "polled");
            ctx.stats.add(&format!("group.{group}.done"), 1.0);
            None
        }
        Err(PollError::Store(StoreError::Fenced { current, .. })) => {
            warn!(device = %device.hostname, token = claim.token, current = ?current, "stale poll: a newer claim owns the device; results discarded");
            ctx.stats.add(&format!("group.{group}.stale"), 1.0);
            Some(PollOutcome::Stale)
        }
        Err(e) => {
            warn!(device = %device.hostname, error = %e, "poll failed");
            ctx.stats.add(&format!("group.{group}.failed"), 1.0);
            Some(PollOutcome::Failed)
        }
    };
    if let Some(status) = outcome {
        let entry = PollLogEntry {
            device_id: id,
            node_id: ctx.cfg.node_id.clone(),
            token: claim.token,
            started: started_at,
            finished: Utc::now(),
            status,
            duration: secs,
        };
        if let Err(e) = ctx.store.log_poll(&entry).await {
            debug!(error = %e, "cannot log the poll outcome");
        }
    }
    ack(ctx, &claim).await;
}

/// Polls while renewing the claim every third of its TTL. A lost claim does not stop the
/// poll: the store's fencing decides whether its results land.
async fn poll_renewing(
    ctx: &Ctx,
    poller: &Poller,
    device: &lookout_core::Device,
    fence: &PollFence,
    mut claim: Claim,
) -> (Result<lookout_poller::PollReport, PollError>, Claim) {
    let poll = poller.poll_fenced(device, Some(fence));
    tokio::pin!(poll);
    let mut next_renew = claim.renew_at();
    let mut lost = false;
    loop {
        tokio::select! {
            r = &mut poll => return (r, claim),
            _ = tokio::time::sleep_until(next_renew.into()), if !lost => {
                match ctx.coord.renew_claim(&claim).await {
                    Ok(c) => {
                        claim = c;
                        next_renew = claim.renew_at();
                    }
                    Err(e) if e.is_lost() => {
                        warn!(device = %device.hostname, error = %e, "claim lost while polling; the store decides whether the result lands");
                        lost = true;
                    }
                    Err(e) => {
                        debug!(error = %e, "cannot renew the claim; retrying");
                        next_renew = Instant::now() + Duration::from_millis(300);
                    }
                }
            }
        }
    }
}

async fn ack(ctx: &Ctx, claim: &Claim) {
    match ctx.coord.ack(claim).await {
        Ok(true) => {}
        Ok(false) => debug!(device_id = claim.device_id, "claim was stale at ack"),
        Err(e) => {
            warn!(device_id = claim.device_id, error = %e, "cannot acknowledge; the claim runs out and is re-queued")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_groups_parse() {
        assert_eq!(Roles::parse("all").unwrap(), Roles::default());
        let r = Roles::parse("poller, dispatcher").unwrap();
        assert!(!r.web && r.dispatcher && r.poller);
        assert_eq!(r.names(), vec!["dispatcher", "poller"]);
        assert!(Roles::parse("pollr").unwrap_err().contains("pollr"));
        assert!(Roles::parse(" ,").is_err());
        assert_eq!(parse_groups("2, 0,2").unwrap(), vec![0, 2]);
        assert!(parse_groups("x").is_err());
        assert!(parse_groups("").is_err());
    }
}
