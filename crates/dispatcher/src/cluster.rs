//! The distributed dispatcher: what one node runs for the `dispatcher` and `poller` roles
//! over a [`Coord`] (in-process for a single node, Redis/Sentinel for a cluster).
//!
//! * **Membership**: a heartbeat every [`ClusterConfig::heartbeat_every`] with a TTL of
//!   three beats, carrying roles, groups, workers and per-group counters.
//! * **Master** (`dispatcher` role): every such node tries to take the master lease; the
//!   holder keeps the [`Schedule`] (fed from the store inventory, reloaded periodically,
//!   first due times from each device's `last_polled` so a new master does not re-poll
//!   what its predecessor just polled) and the [`Discoveries`] (from `last_discovered`),
//!   enqueues due devices in their poller group's queue with `enqueue_as_master` (fenced
//!   by the lease in the backend) as a poll or, when the device's discovery is due, as a
//!   discovery (`Work::Discover`), re-queues claims whose lease ran out, runs the
//!   master-only jobs ([`JobKind`]), and stops at once when a renewal is refused or its
//!   lease runs out on its own clock.
//! * **Workers** (`poller` role): claim a device of the node's groups under a lease,
//!   renew it while the poll runs, register the claim's fencing token in the store before
//!   polling and write the results only while that token is still the device's
//!   (`Store::update_device_poll_fenced`), then acknowledge. A `Discover` claim runs
//!   `Poller::discover_fenced`; the poller should run with `DiscoveryMode::Scheduled` so
//!   that it does not also decide on discovery by itself.
//!
//! Back-pressure: a device that cannot be queued because its previous poll is still
//! queued or running is retried every quarter interval; still refused a whole interval
//! after it was due, it counts as "behind". So do queued devices due for longer than one
//! interval (queue lag: every device got queued but the workers do not get to them in
//! time). Both are logged as "poller is behind" and published in the heartbeat.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use lookout_coord::{Claim, Coord, Lease, NodeInfo, Work};
use lookout_core::DeviceId;
use lookout_poller::{PollError, Poller};
use lookout_store::{PollFence, PollLogEntry, PollOutcome, Store, StoreError};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::discovery::Discoveries;
use crate::metrics::{PollMetrics, PollSample};
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

/// Parses `POLLER_GROUP_WORKERS`, e.g. `0:8,2:4`: at most 8 of the node's workers poll
/// group 0 at once and at most 4 group 2 (groups not named: no limit of their own).
pub fn parse_group_workers(text: &str) -> Result<BTreeMap<i32, usize>, String> {
    let mut m = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (g, n) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?} is not GROUP:WORKERS (e.g. 0:8,2:4)"))?;
        let g: i32 = g
            .trim()
            .parse()
            .map_err(|_| format!("poller group {g:?} in {part:?} is not a number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("worker count {n:?} in {part:?} is not a number"))?;
        if n == 0 {
            return Err(format!("{part:?}: a group needs at least 1 worker"));
        }
        if m.insert(g, n).is_some() {
            return Err(format!("poller group {g} is given twice"));
        }
    }
    Ok(m)
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
    /// Workers (polls at once) on this node, all groups together (`POLLER_WORKERS`).
    pub workers: usize,
    /// Per poller group: at most this many of the node's workers poll the group at once
    /// (`POLLER_GROUP_WORKERS=0:8,2:4`), so one busy group cannot starve the others.
    pub group_workers: BTreeMap<i32, usize>,
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
    /// Dead nodes whose last check-in is older than this are removed from the cluster
    /// status by the master (hourly job), as LibreNMS drops stale `poller_cluster` rows.
    pub dead_node_keep: Duration,
    /// Time between discoveries of a device (`DISCOVERY_INTERVAL`, LibreNMS's 6 h).
    pub discovery_interval: Duration,
    /// How long eventlog rows are kept (`EVENTLOG_PURGE_DAYS`; the master purges hourly);
    /// `None` keeps them forever.
    pub eventlog_keep: Option<Duration>,
    /// Lag and duration of this node's polls (heartbeat figures; a benchmark may keep
    /// every sample).
    pub metrics: Arc<PollMetrics>,
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
            group_workers: BTreeMap::new(),
            interval_secs,
            reload_every: Duration::from_secs(10),
            master_ttl: Duration::from_secs(3),
            claim_ttl: Duration::from_secs(6),
            heartbeat_every: Duration::from_secs(1),
            poll_log_keep: Duration::from_secs(86_400),
            dead_node_keep: Duration::from_secs(86_400),
            discovery_interval: Duration::from_secs(6 * 3600),
            eventlog_keep: Some(Duration::from_secs(30 * 86_400)),
            metrics: Arc::new(PollMetrics::new(Duration::from_secs(interval_secs.max(1)))),
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
    /// Per capped group: one permit per worker allowed to poll it at once.
    slots: HashMap<i32, Arc<Semaphore>>,
    /// Polls whose SNMP work is done and that wait only for their ping, each holding one
    /// permit (see [`WAITING_PER_WORKER`]); at shutdown every permit is taken back, which
    /// waits for them to commit.
    waiting: Arc<Semaphore>,
    /// This node's master lease while it is master (renewed value), `None` otherwise:
    /// what [`MasterTask`]s act on.
    master: watch::Sender<Option<Lease>>,
}

/// Work that only the live master does beside scheduling (the alerting engine's time pass
/// and outbox delivery): started once per node with the dispatcher role, it watches the
/// node's lease and acts only while it holds one, checking `Lease::is_valid_locally` right
/// before every externally visible step (a paused old master wakes up with a lease that
/// has run out on its own clock and does nothing).
pub trait MasterTask: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Runs until `shutdown` turns true.
    fn run(
        self: Arc<Self>,
        master: watch::Receiver<Option<Lease>>,
        shutdown: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
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
    run_cluster_with(store, poller, coord, cfg, Vec::new(), shutdown).await
}

/// [`run_cluster`] with tasks that run on the master only (given the master role).
pub async fn run_cluster_with(
    store: Store,
    poller: Option<Poller>,
    coord: Coord,
    cfg: ClusterConfig,
    master_tasks: Vec<Arc<dyn MasterTask>>,
    shutdown: watch::Receiver<bool>,
) {
    info!(
        node_id = %cfg.node_id,
        backend = coord.backend_name(),
        roles = ?cfg.roles.names(),
        groups = ?cfg.groups,
        workers = cfg.workers,
        group_workers = ?cfg.group_workers,
        interval_secs = cfg.interval_secs,
        "dispatcher node starting"
    );
    let slots = cfg
        .group_workers
        .iter()
        .filter(|(g, _)| cfg.groups.contains(g))
        .map(|(g, n)| (*g, Arc::new(Semaphore::new(*n))))
        .collect();
    let waiting_cap = cfg.workers.max(1).saturating_mul(WAITING_PER_WORKER);
    let (master, _) = watch::channel(None);
    let ctx = Arc::new(Ctx {
        store,
        coord,
        cfg,
        stats: Stats::default(),
        slots,
        waiting: Arc::new(Semaphore::new(waiting_cap)),
        master,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(heartbeat_loop(ctx.clone(), shutdown.clone()));
    if ctx.cfg.roles.dispatcher {
        tasks.spawn(master_loop(ctx.clone(), shutdown.clone()));
        for t in master_tasks {
            info!(task = t.name(), "master task registered");
            tasks.spawn(t.run(ctx.master.subscribe(), shutdown.clone()));
        }
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
    // Polls handed off to wait for their ping finish (commit, acknowledge) first.
    let _ = ctx
        .waiting
        .acquire_many(u32::try_from(waiting_cap).unwrap_or(u32::MAX))
        .await;
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
    if ctx.cfg.roles.poller {
        for g in &ctx.cfg.groups {
            let n = ctx
                .cfg
                .group_workers
                .get(g)
                .copied()
                .unwrap_or(ctx.cfg.workers);
            ctx.stats
                .set(&format!("group.{g}.workers"), n.min(ctx.cfg.workers) as f64);
        }
        for (g, p) in ctx.cfg.metrics.recent_lag() {
            ctx.stats.set(&format!("group.{g}.lag_p50"), round3(p.p50));
            ctx.stats.set(&format!("group.{g}.lag_p99"), round3(p.p99));
            ctx.stats.set(&format!("group.{g}.lag_max"), round3(p.max));
            ctx.stats
                .set(&format!("group.{g}.polls_recent"), p.count as f64);
        }
    }
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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What this node's workers did since the last summary: one info line per interval (at
/// least a minute) instead of a line per poll.
struct Summary {
    every: Duration,
    last: Instant,
    prev: BTreeMap<String, f64>,
}

impl Summary {
    /// Per-poll counters of the heartbeat stats (`group.{g}.{key}`), summed over groups.
    const KEYS: [&'static str; 7] = [
        "done",
        "failed",
        "stale",
        "skipped",
        "discoveries",
        "down",
        "module_failures",
    ];

    fn new(ctx: &Ctx) -> Summary {
        Summary {
            every: Duration::from_secs(ctx.cfg.interval_secs.max(60)),
            last: Instant::now(),
            prev: BTreeMap::new(),
        }
    }

    fn totals(stats: &BTreeMap<String, f64>) -> [f64; 7] {
        let mut out = [0.0; 7];
        for (k, v) in stats {
            if let Some(rest) = k.strip_prefix("group.") {
                for (i, key) in Self::KEYS.iter().enumerate() {
                    if rest.split_once('.').is_some_and(|(_, name)| name == *key) {
                        out[i] += v;
                    }
                }
            }
        }
        out
    }

    fn maybe_log(&mut self, ctx: &Ctx) {
        if !ctx.cfg.roles.poller || self.last.elapsed() < self.every {
            return;
        }
        let now = ctx.stats.snapshot();
        let (a, b) = (Self::totals(&self.prev), Self::totals(&now));
        let d: Vec<u64> = a
            .iter()
            .zip(b)
            .map(|(a, b)| (b - a).max(0.0) as u64)
            .collect();
        let lag = ctx.cfg.metrics.recent_lag();
        let p50 = lag.values().map(|p| p.p50).fold(0.0, f64::max);
        let p99 = lag.values().map(|p| p.p99).fold(0.0, f64::max);
        info!(
            secs = self.last.elapsed().as_secs(),
            polls_ok = d[0],
            failed = d[1],
            stale = d[2],
            skipped = d[3],
            discoveries = d[4],
            devices_down = d[5],
            module_failures = d[6],
            lag_p50_secs = round3(p50),
            lag_p99_secs = round3(p99),
            busy_workers = now.get("busy").copied().unwrap_or(0.0),
            "polling summary (each poll at debug: RUST_LOG=lookout_dispatcher=debug)"
        );
        self.prev = now;
        self.last = Instant::now();
    }
}

async fn heartbeat_loop(ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let started = Utc::now();
    let ttl = ctx.cfg.heartbeat_every * 3;
    let mut failing = false;
    let mut summary = Summary::new(&ctx);
    loop {
        summary.maybe_log(&ctx);
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
                ctx.master.send_replace(Some(lease.clone()));
                let stopping = act_as_master(&ctx, lease, &mut shutdown).await;
                ctx.master.send_replace(None);
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
    discoveries: Discoveries,
    groups: HashMap<DeviceId, i32>,
    last_reload: Option<Instant>,
    last_requeue: Option<Instant>,
    jobs: Vec<Job>,
    behind_logged: Option<Instant>,
    /// Devices whose enqueue was refused (previous poll still queued or running), since
    /// when they were due (unix seconds): refused for a whole interval = the pollers are
    /// behind.
    refused_since: HashMap<DeviceId, i64>,
    /// Per group from the last queue-lag read: (queued devices due for longer than an
    /// interval, seconds the oldest queued device has been due).
    queue_lag: BTreeMap<i32, (u64, i64)>,
    last_lag_read: Option<Instant>,
    /// Poller groups served by a live poller node (`None` until the nodes were read).
    served: Option<BTreeSet<i32>>,
    /// Groups with devices and no live poller, as last reported (logged when it changes).
    unserved: BTreeSet<i32>,
}

/// The poller groups the live nodes with the poller role serve.
fn served_groups(nodes: &[lookout_coord::NodeStatus]) -> BTreeSet<i32> {
    nodes
        .iter()
        .filter(|n| n.alive && n.info.roles.iter().any(|r| r == "poller") && n.info.workers > 0)
        .flat_map(|n| n.info.groups.iter().copied())
        .collect()
}

/// Groups that have devices and no live poller: published per group (`group.{g}.unserved`),
/// logged once when it starts (WARN, with how to fix it) and once when it ends.
fn report_unserved(ctx: &Ctx, st: &mut MasterState) {
    let Some(served) = &st.served else { return };
    let mut devices: BTreeMap<i32, usize> = BTreeMap::new();
    for g in st.groups.values() {
        *devices.entry(*g).or_default() += 1;
    }
    let now: BTreeSet<i32> = devices
        .keys()
        .copied()
        .filter(|g| !served.contains(g))
        .collect();
    for g in devices.keys() {
        ctx.stats.set(
            &format!("group.{g}.unserved"),
            if now.contains(g) { 1.0 } else { 0.0 },
        );
    }
    for g in now.difference(&st.unserved) {
        warn!(group = g, devices = devices.get(g).copied().unwrap_or(0), "no poller serves group {g}: its devices are not polled (start a node with POLLER_GROUP={g}, or add {g} to a node's POLLER_GROUP)");
    }
    for g in st.unserved.difference(&now) {
        info!(group = g, "group {g} has a live poller again");
    }
    st.unserved = now;
}

/// The master-only periodic jobs (LibreNMS runs these from its dispatcher's master too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Delete `device_poll_log` rows older than [`ClusterConfig::poll_log_keep`].
    PollLogCleanup,
    /// Forget dead nodes whose last check-in is older than [`ClusterConfig::dead_node_keep`].
    DeadNodes,
    /// Delete eventlog rows older than [`ClusterConfig::eventlog_keep`] (LibreNMS's
    /// `eventlog_purge`), in batches of at most 10,000 rows per transaction.
    EventlogPurge,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::PollLogCleanup => "poll-log-cleanup",
            JobKind::DeadNodes => "dead-nodes",
            JobKind::EventlogPurge => "eventlog-purge",
        }
    }
}

struct Job {
    kind: JobKind,
    every: Duration,
    last: Option<Instant>,
}

fn job_table(cfg: &ClusterConfig) -> Vec<Job> {
    // Discovery is not a job: it rides on the device's poll (the master queues the poll
    // as `Work::Discover` when the device's discovery is due, see `Discoveries`).
    let mut kinds = vec![JobKind::PollLogCleanup, JobKind::DeadNodes];
    if cfg.eventlog_keep.is_some() {
        kinds.push(JobKind::EventlogPurge);
    }
    kinds
        .into_iter()
        .map(|kind| Job {
            kind,
            every: Duration::from_secs(3600),
            last: None,
        })
        .collect()
}

enum Step {
    Continue,
    /// The lease is gone: stop acting as master now.
    Lost,
}

/// Acts as master while the lease holds. Returns true when shutting down.
async fn act_as_master(ctx: &Ctx, mut lease: Lease, shutdown: &mut watch::Receiver<bool>) -> bool {
    // A discovery that left no trace in the store (device down, or its claim lost) is
    // handed out again after a quarter of the discovery interval, and never before two
    // polls and two inventory reads could have shown it.
    let retry = (ctx.cfg.discovery_interval / 4)
        .max(Duration::from_secs(2 * ctx.cfg.interval_secs))
        .max(2 * ctx.cfg.reload_every);
    // A device never discovered (added while down): again after 5 minutes, as LibreNMS's
    // `discovery.php -h new` cron, with the same floor of two polls and two reads.
    let retry_new = Duration::from_secs(300)
        .max(Duration::from_secs(2 * ctx.cfg.interval_secs))
        .max(2 * ctx.cfg.reload_every)
        .min(retry);
    let mut st = MasterState {
        schedule: Schedule::new(ctx.cfg.interval_secs),
        discoveries: Discoveries::new(
            ctx.cfg.discovery_interval.as_secs(),
            ctx.cfg.interval_secs,
            retry.as_secs(),
            retry_new.as_secs(),
        ),
        groups: HashMap::new(),
        last_reload: None,
        last_requeue: None,
        jobs: job_table(&ctx.cfg),
        behind_logged: None,
        served: None,
        unserved: BTreeSet::new(),
        refused_since: HashMap::new(),
        queue_lag: BTreeMap::new(),
        last_lag_read: None,
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
        if let Step::Lost = master_step(ctx, &mut lease, &mut st).await {
            return false;
        }
        // Master tasks see every renewal (a later local deadline).
        ctx.master.send_if_modified(|m| {
            let changed = m.as_ref() != Some(&lease);
            if changed {
                *m = Some(lease.clone());
            }
            changed
        });
        if pause(tick, shutdown).await {
            // Master tasks stop before another node can take over.
            ctx.master.send_replace(None);
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

async fn master_step(ctx: &Ctx, lease: &mut Lease, st: &mut MasterState) -> Step {
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
    for i in 0..st.jobs.len() {
        let job = &st.jobs[i];
        if job.last.is_some_and(|t| t.elapsed() < job.every) {
            continue;
        }
        let kind = job.kind;
        // Only the live master runs a job: the lease is confirmed by the backend right
        // before (a master paused past its lease learns it lost here and runs nothing).
        if !lease.is_valid_locally() {
            return Step::Lost;
        }
        match ctx.coord.renew_master(lease).await {
            Ok(l) => *lease = l,
            Err(e) if e.is_lost() => {
                warn!(job = kind.name(), error = %e, "master lease lost; job not run");
                return Step::Lost;
            }
            Err(e) => {
                debug!(job = kind.name(), error = %e, "cannot confirm the lease; job postponed");
                break;
            }
        }
        st.jobs[i].last = Some(Instant::now());
        run_job(ctx, kind).await;
        ctx.stats.add(&format!("job.{}.runs", kind.name()), 1.0);
    }

    let now = Utc::now().timestamp();
    let interval = i64::try_from(ctx.cfg.interval_secs).unwrap_or(i64::MAX);
    let retry = (interval / 4).clamp(1, 15);
    let due = st.schedule.take_due(now, usize::MAX);
    let mut enqueued = 0u64;
    let mut pending = due.into_iter();
    while let Some((id, late)) = pending.next() {
        let group = st.groups.get(&id).copied().unwrap_or(0);
        // The due time travels with the claim so the worker measures the whole lag; a
        // device retried after refusals keeps the time it was first due.
        let due_secs = st.refused_since.get(&id).copied().unwrap_or(now - late);
        let due_at = chrono::DateTime::<Utc>::from_timestamp(due_secs, 0).unwrap_or_else(Utc::now);
        let work = st.discoveries.work_for(id, now);
        match ctx
            .coord
            .enqueue_as_master(lease, group, id, due_at, work)
            .await
        {
            Ok(true) => {
                st.refused_since.remove(&id);
                enqueued += 1;
                if work == Work::Discover {
                    st.discoveries.started(id, now);
                    ctx.stats.add("discoveries_queued", 1.0);
                }
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
                st.refused_since.entry(id).or_insert(now - late);
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
    // Once a second (both walk every device or queue): the discovery figures, and the
    // queue lag (queued devices due for longer than one interval: the workers do not get
    // to them in time although every device did get queued).
    if st
        .last_lag_read
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
    {
        st.last_lag_read = Some(Instant::now());
        ctx.stats
            .set("discoveries_waiting", st.discoveries.waiting(now) as f64);
        if let Some(next) = st.discoveries.next_due_in(now) {
            ctx.stats.set("discovery_next_secs", next as f64);
        }
        match ctx
            .coord
            .queue_lag(Duration::from_secs(ctx.cfg.interval_secs.max(1)))
            .await
        {
            Ok(depths) => {
                let at = Utc::now();
                st.queue_lag = depths
                    .iter()
                    .map(|d| {
                        let lag = d.oldest_due.map_or(0, |t| (at - t).num_seconds().max(0));
                        (d.group, (d.late, lag))
                    })
                    .collect();
            }
            Err(e) => debug!(error = %e, "cannot read the queue lag"),
        }
        match ctx.coord.nodes().await {
            Ok(nodes) => {
                st.served = Some(served_groups(&nodes));
            }
            Err(e) => debug!(error = %e, "cannot list the nodes"),
        }
        report_unserved(ctx, st);
    }
    // Back-pressure: per group, the devices whose previous poll has been queued or
    // running for a whole interval past their due time (LibreNMS's "poller is behind"),
    // or the queued devices due for longer than an interval, whichever is more (a device
    // stuck in the queue is usually in both counts).
    let mut behind: BTreeMap<i32, (u64, i64)> = st.groups.values().map(|g| (*g, (0, 0))).collect();
    for (id, since) in &st.refused_since {
        let over = now - since;
        if over >= interval {
            let e = behind
                .entry(st.groups.get(id).copied().unwrap_or(0))
                .or_default();
            e.0 += 1;
            e.1 = e.1.max(over);
        }
    }
    for (g, (late, lag)) in &st.queue_lag {
        let e = behind.entry(*g).or_default();
        e.0 = e.0.max(*late);
        if *late > 0 {
            e.1 = e.1.max(*lag);
        }
    }
    // A group no live poller serves is reported as such (report_unserved), not as behind.
    if let Some(served) = &st.served {
        behind.retain(|g, _| served.contains(g));
    }
    let total: u64 = behind.values().map(|(n, _)| n).sum();
    for (g, (n, worst)) in &behind {
        ctx.stats.set(&format!("group.{g}.behind"), *n as f64);
        ctx.stats
            .set(&format!("group.{g}.behind_max_secs"), *worst as f64);
        let lag = st.queue_lag.get(g).map_or(0, |(_, l)| *l);
        ctx.stats
            .set(&format!("group.{g}.queue_lag_secs"), lag as f64);
    }
    ctx.stats.set("behind", total as f64);
    let every = Duration::from_secs(ctx.cfg.interval_secs.max(1));
    if total > 0 && st.behind_logged.is_none_or(|t| t.elapsed() >= every) {
        let groups: Vec<String> = behind
            .iter()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(g, (n, w))| {
                let lag = st.queue_lag.get(g).map_or(0, |(_, l)| *l);
                format!("group {g}: {n} devices, up to {w} s late, queue lag {lag} s")
            })
            .collect();
        warn!(
            devices = total,
            interval_secs = ctx.cfg.interval_secs,
            "poller is behind ({}): devices still queued or being polled a whole interval after they were due (add workers or nodes for these groups)",
            groups.join("; ")
        );
        st.behind_logged = Some(Instant::now());
    }
    Step::Continue
}

async fn run_job(ctx: &Ctx, kind: JobKind) {
    match kind {
        JobKind::PollLogCleanup => {
            let keep = chrono::Duration::from_std(ctx.cfg.poll_log_keep).unwrap_or_default();
            match ctx.store.prune_poll_log(Utc::now() - keep).await {
                Ok(n) if n > 0 => info!(rows = n, "pruned the poll log"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot prune the poll log"),
            }
        }
        JobKind::EventlogPurge => {
            let Some(keep) = ctx.cfg.eventlog_keep else {
                return;
            };
            let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
            let before = Utc::now()
                .checked_sub_signed(keep)
                .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
            match ctx.store.purge_events(before).await {
                Ok(n) if n > 0 => info!(rows = n, before = %before, "purged the eventlog"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot purge the eventlog"),
            }
        }
        JobKind::DeadNodes => {
            let keep = chrono::Duration::from_std(ctx.cfg.dead_node_keep).unwrap_or_default();
            match ctx.coord.nodes().await {
                Ok(nodes) => {
                    for n in nodes
                        .iter()
                        .filter(|n| !n.alive && n.last_checkin < Utc::now() - keep)
                    {
                        match ctx.coord.forget_node(&n.info.node_id).await {
                            Ok(_) => {
                                info!(node_id = %n.info.node_id, last_checkin = %n.last_checkin, "forgot a dead node")
                            }
                            Err(e) => {
                                warn!(node_id = %n.info.node_id, error = %e, "cannot forget a dead node")
                            }
                        }
                    }
                }
                Err(e) => warn!(error = %e, "cannot list nodes"),
            }
        }
    }
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
            let mut known = Vec::with_capacity(keep.len());
            let mut discovered = Vec::with_capacity(keep.len());
            for d in devices.iter().filter(|d| !d.disabled) {
                st.groups.insert(d.device_id, d.poller_group);
                known.push((d.device_id, d.last_polled.map(|t| t.timestamp())));
                discovered.push((d.device_id, d.last_discovered.map(|t| t.timestamp())));
            }
            st.schedule.upsert_all(&known, now);
            st.discoveries.sync(&discovered);
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
        // A group at its POLLER_GROUP_WORKERS limit is left out of this claim.
        let mut permits: Vec<(i32, OwnedSemaphorePermit)> = Vec::new();
        let mut groups = Vec::with_capacity(ctx.cfg.groups.len());
        for g in &ctx.cfg.groups {
            match ctx.slots.get(g) {
                None => groups.push(*g),
                Some(sem) => {
                    if let Ok(p) = sem.clone().try_acquire_owned() {
                        permits.push((*g, p));
                        groups.push(*g);
                    }
                }
            }
        }
        let claimed = if groups.is_empty() {
            Ok(None)
        } else {
            ctx.coord
                .claim(&groups, &ctx.cfg.node_id, ctx.cfg.claim_ttl)
                .await
        };
        match claimed {
            Ok(Some(claim)) => {
                failing = false;
                // Keep only the claimed group's permit while the poll runs.
                permits.retain(|(g, _)| *g == claim.group);
                let group = claim.group;
                ctx.stats.add(&format!("group.{group}.busy"), 1.0);
                run_claim_releasing(&ctx, &poller, claim, worker).await;
                ctx.stats.add(&format!("group.{group}.busy"), -1.0);
                drop(permits);
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

/// Polls whose SNMP work is done may wait for their ping without a worker, up to this many
/// per worker. A poll then holds a worker for its SNMP walks only (milliseconds) instead
/// of the ~1 s fping takes, so 64 workers keep up with 10,000 devices a minute with ICMP
/// on. Bounded, so that a stuck fping cannot pile up polls without limit: when all are
/// taken, the worker waits for its own poll as before.
const WAITING_PER_WORKER: usize = 4;

/// Runs one claim on this worker until its poll waits only for the ping, then leaves it
/// to finish in its own task (still renewing and holding the claim: the device stays
/// locked until the commit and the acknowledgement).
async fn run_claim_releasing(ctx: &Arc<Ctx>, poller: &Poller, claim: Claim, worker: usize) {
    let Ok(slot) = ctx.waiting.clone().try_acquire_owned() else {
        run_claim(ctx, poller, claim, worker, None).await;
        return;
    };
    let (snmp_done, released) = tokio::sync::oneshot::channel();
    let (ctx, poller) = (ctx.clone(), poller.clone());
    tokio::spawn(async move {
        run_claim(&ctx, &poller, claim, worker, Some(snmp_done)).await;
        drop(slot);
    });
    // Fired when only the ping is left, or dropped when the claim ended before that.
    let _ = released.await;
}

/// One claimed device: register the token, poll while renewing the claim, write fenced,
/// acknowledge. `snmp_done` fires when only the poll's ping is left (dropped when the
/// claim ends without one).
async fn run_claim(
    ctx: &Ctx,
    poller: &Poller,
    claim: Claim,
    worker: usize,
    snmp_done: Option<tokio::sync::oneshot::Sender<()>>,
) {
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
    // interval. For a discovery what counts is the last discovery: one that is due runs
    // even right after a poll.
    let half = i64::try_from(ctx.cfg.interval_secs / 2).unwrap_or(i64::MAX);
    let last = match claim.work {
        Work::Poll => device.last_polled,
        Work::Discover => device.last_discovered,
    };
    if let Some(last) = last {
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
    let (result, claim) = poll_renewing(ctx, poller, &device, &fence, claim, snmp_done).await;
    let secs = t.elapsed().as_secs_f64();
    ctx.stats.add("busy", -1.0);
    if let Some(due) = claim.due_at {
        ctx.cfg.metrics.record(PollSample {
            group,
            lag_secs: (started_at - due).num_milliseconds() as f64 / 1000.0,
            poll_secs: secs,
            collect_secs: result.as_ref().map_or(0.0, |r| r.seconds),
            commit_secs: result.as_ref().map_or(0.0, |r| r.commit_secs),
            rrd_secs: result.as_ref().map_or(0.0, |r| r.rrd_secs),
            ok: result.is_ok(),
        });
    }
    ctx.stats
        .add(&format!("group.{group}.worker_seconds"), secs);
    let outcome = match &result {
        Ok(r) => {
            // Per poll at debug: 10,000 devices a minute would be 170 lines a second. The
            // heartbeat loop logs a summary per interval at info instead.
            debug!(worker, device = %r.hostname, status = ?r.status, work = claim.work.as_str(), discovered = r.discovered, token = claim.token, seconds = format!("{secs:.3}"), "polled");
            ctx.stats.add(&format!("group.{group}.done"), 1.0);
            if r.discovered {
                ctx.stats.add(&format!("group.{group}.discoveries"), 1.0);
            }
            // A poll that worked can still find the device down or a module broken off:
            // the summary counts them, so "failed=0" does not read as "all is well".
            if !r.status.is_up() {
                ctx.stats.add(&format!("group.{group}.down"), 1.0);
            }
            let broken = r
                .timings
                .iter()
                .filter(|t| matches!(t.outcome, lookout_poller::ModuleOutcome::Failed(_)))
                .count();
            if broken > 0 {
                ctx.stats
                    .add(&format!("group.{group}.module_failures"), broken as f64);
            }
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
    snmp_done: Option<tokio::sync::oneshot::Sender<()>>,
) -> (Result<lookout_poller::PollReport, PollError>, Claim) {
    let discover = claim.work == Work::Discover;
    let poll = async move {
        match (snmp_done, discover) {
            (Some(done), _) => {
                poller
                    .poll_releasing(device, Some(fence), discover, done)
                    .await
            }
            (None, false) => poller.poll_fenced(device, Some(fence)).await,
            (None, true) => poller.discover_fenced(device, Some(fence)).await,
        }
    };
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
    fn summary_sums_per_poll_counters_over_groups() {
        let stats: BTreeMap<String, f64> = [
            ("group.0.done", 7.0),
            ("group.2.done", 3.0),
            ("group.0.failed", 1.0),
            ("group.2.discoveries", 2.0),
            ("group.0.lag_p50", 9.0),
            ("group.0.busy", 4.0),
            ("group.0.down", 2.0),
            ("group.2.down", 1.0),
            ("group.2.module_failures", 3.0),
            ("busy", 5.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // done, failed, stale, skipped, discoveries, down, module failures
        assert_eq!(
            Summary::totals(&stats),
            [10.0, 1.0, 0.0, 0.0, 2.0, 3.0, 3.0]
        );
    }

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
