//! rrdcached backend: files live under rrdcached's `-b` base directory and no Lookout node
//! needs them on its disk. Updates go through one writer task per handle that owns a
//! connection, sends them in BATCHes and keeps every update until a FLUSH of its file
//! succeeded, because rrdcached's own journal is buffered and a `kill -9` loses its tail.
//! When rrdcached is unreachable, updates wait in a bounded queue (spilling to disk, see
//! `queue`) and are replayed in order after reconnecting, together with every update not yet
//! confirmed flushed; rrdcached's "illegal attempt to update using time X when last update
//! time is X" on such a replay means "already written". Reads (FETCH, INFO, PING) use a
//! separate connection so that graphs do not wait behind write batches. FLUSHes run on a
//! connection of their own too, in a task beside the writer: rrdcached answers a FLUSH only
//! once that file is written, and updates must not wait behind thousands of file writes.

pub(crate) mod client;
pub(crate) mod proto;
mod queue;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;

use crate::disk::DiskGuard;
use crate::format::{self, FileInfo};
use crate::{Cf, RrdDef, Series, StatsCounters, TimeSeriesError, TimeSeriesOptions};
use client::Conn;

type Reply = oneshot::Sender<Result<(), TimeSeriesError>>;

/// One update on its way to rrdcached.
pub(crate) struct Item {
    pub(crate) path: Arc<str>,
    pub(crate) def: Arc<RrdDef>,
    pub(crate) at: i64,
    /// `at:v1:v2...`
    pub(crate) line: String,
    /// Sent before, so rrdcached may already have it.
    pub(crate) sent: bool,
    /// The caller waiting for the outcome, if it still waits.
    pub(crate) reply: Option<Reply>,
}

enum Msg {
    Update(Item),
    Flush { deadline: Instant, reply: Reply },
}

pub(crate) struct CachedBackend {
    address: String,
    tx: mpsc::UnboundedSender<Msg>,
    query: Mutex<Option<Conn>>,
}

fn rrd_err(op: &'static str, path: &str, message: impl Into<String>) -> TimeSeriesError {
    TimeSeriesError::Rrd {
        op,
        path: path.to_string(),
        message: message.into(),
    }
}

impl CachedBackend {
    pub(crate) fn new(
        address: &str,
        opts: &TimeSeriesOptions,
        stats: Arc<StatsCounters>,
        disk: Option<Arc<DiskGuard>>,
    ) -> CachedBackend {
        let address = proto::normalize_address(address);
        let address = address.as_str();
        let (tx, rx) = mpsc::unbounded_channel();
        // One subdirectory per rrdcached: adopted segments must go to the daemon they were
        // meant for.
        let spill_dir = opts
            .spill_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("lookout-rrd-spill"))
            .join(proto::address_dir_name(address));
        let writer = Writer {
            address: address.to_string(),
            opts: opts.clone(),
            stats,
            disk,
            conn: None,
            down: false,
            backoff: MIN_BACKOFF,
            next_connect: Instant::now(),
            queue: queue::Queue::new(opts.queue_memory_limit, spill_dir),
            retained: HashMap::new(),
            retained_count: 0,
            due: VecDeque::new(),
            next_seq: 0,
            verified: HashMap::new(),
            flush_waiters: Vec::new(),
            flush_conn: None,
            flushing: None,
            flush_in_flight: HashMap::new(),
            held: Vec::new(),
            generation: 0,
            flush_generation: 0,
            next_flush: Instant::now(),
            closing: false,
        };
        tokio::spawn(writer.run(rx));
        CachedBackend {
            address: address.to_string(),
            tx,
            query: Mutex::new(None),
        }
    }

    fn unreachable(&self, message: impl Into<String>) -> TimeSeriesError {
        TimeSeriesError::Unreachable {
            address: self.address.clone(),
            message: message.into(),
        }
    }

    /// Queues an update; resolves when rrdcached accepted or refused it, or at once when it
    /// went to the outage queue.
    pub(crate) async fn update(
        &self,
        path: &str,
        def: &RrdDef,
        at: i64,
        line: String,
    ) -> Result<(), TimeSeriesError> {
        let rx = self.enqueue(path, Arc::new(def.clone()), at, line)?;
        self.outcome(rx).await
    }

    /// Hands one update to the writer; the receiver resolves like `update`.
    pub(crate) fn enqueue(
        &self,
        path: &str,
        def: Arc<RrdDef>,
        at: i64,
        line: String,
    ) -> Result<oneshot::Receiver<Result<(), TimeSeriesError>>, TimeSeriesError> {
        let (reply, rx) = oneshot::channel();
        let item = Item {
            path: Arc::from(path),
            def,
            at,
            line,
            sent: false,
            reply: Some(reply),
        };
        self.tx
            .send(Msg::Update(item))
            .map_err(|_| self.unreachable("writer task stopped"))?;
        Ok(rx)
    }

    pub(crate) async fn outcome(
        &self,
        rx: oneshot::Receiver<Result<(), TimeSeriesError>>,
    ) -> Result<(), TimeSeriesError> {
        rx.await
            .map_err(|_| self.unreachable("writer task stopped"))?
    }

    /// Waits until every update accepted so far is written and FLUSHed to its file.
    pub(crate) async fn flush(&self, timeout: Duration) -> Result<(), TimeSeriesError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush {
                deadline: Instant::now() + timeout,
                reply,
            })
            .map_err(|_| self.unreachable("writer task stopped"))?;
        rx.await
            .map_err(|_| self.unreachable("writer task stopped"))?
    }

    /// One command on the read connection (reconnecting once if it went stale).
    async fn query(&self, command: &str) -> Result<proto::Reply, TimeSeriesError> {
        let mut guard = self.query.lock().await;
        let mut last_err = String::new();
        for _ in 0..2 {
            if guard.is_none() {
                match Conn::connect(&self.address).await {
                    Ok(c) => *guard = Some(c),
                    Err(e) => return Err(self.unreachable(e.to_string())),
                }
            }
            if let Some(conn) = guard.as_mut() {
                match conn.command(command).await {
                    Ok(r) => return Ok(r),
                    Err(e) => {
                        last_err = e.to_string();
                        *guard = None;
                    }
                }
            }
        }
        Err(self.unreachable(last_err))
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// The name `rrdtool graph --daemon` needs for `path`: relative over TCP; over a unix
    /// socket rrdtool resolves relative names on the local disk, so the absolute name in
    /// rrdcached's base directory, which `INFO` reports.
    pub(crate) async fn graph_path(&self, path: &str) -> Result<String, TimeSeriesError> {
        if !self.address.starts_with("unix:") {
            return Ok(path.to_string());
        }
        let r = self.query(&proto::info(path)).await?;
        if r.is_err() {
            return Err(rrd_err("graph", path, r.message));
        }
        r.lines
            .iter()
            .find_map(|l| l.strip_prefix("filename 2 "))
            .map(str::to_string)
            .ok_or_else(|| rrd_err("graph", path, "INFO reply without a filename"))
    }

    pub(crate) async fn check(&self) -> Result<(), TimeSeriesError> {
        let r = self.query(&proto::ping()).await?;
        if r.is_err() || r.message != "PONG" {
            return Err(self.unreachable(format!("unexpected PING reply: {}", r.message)));
        }
        Ok(())
    }

    pub(crate) async fn fetch(
        &self,
        path: &str,
        cf: Cf,
        start: i64,
        end: i64,
    ) -> Result<Series, TimeSeriesError> {
        let r = self.query(&proto::fetch(path, cf, start, end)).await?;
        proto::parse_fetch(&r).map_err(|m| rrd_err("fetch", path, m))
    }

    pub(crate) async fn exists(&self, path: &str) -> Result<bool, TimeSeriesError> {
        let r = self.query(&proto::info(path)).await?;
        if !r.is_err() {
            return Ok(true);
        }
        if format::is_no_such_file(&r.message) {
            return Ok(false);
        }
        Err(rrd_err("exists", path, r.message))
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// New files checked per pipelined step: a CREATE writes the whole file inside rrdcached,
/// and the step must finish within the connection's reply timeout.
const ENSURE_CHUNK: usize = 256;

/// Updates sent to rrdcached but not yet confirmed flushed to one file.
struct Retained {
    /// Identifies this entry's place in `Writer::due` (a path can be released and retained
    /// again, leaving a stale place behind).
    seq: u64,
    items: Vec<Item>,
}

struct Writer {
    address: String,
    opts: TimeSeriesOptions,
    stats: Arc<StatsCounters>,
    /// Refuses new files below the free-space floor (when the base dir is known).
    disk: Option<Arc<DiskGuard>>,
    conn: Option<Conn>,
    /// Last connection attempt failed or the connection broke: updates are answered at once.
    down: bool,
    backoff: Duration,
    next_connect: Instant,
    queue: queue::Queue,
    retained: HashMap<Arc<str>, Retained>,
    retained_count: usize,
    /// (since, seq, path) of every `retained` entry, oldest first (pushed in time order), so
    /// that finding the files due for a FLUSH costs what is due, not a scan of every file
    /// (with ~240,000 files and a scan per pump, that scan was a third of a poller's CPU).
    /// Entries whose seq no longer matches `retained` are stale and skipped.
    due: VecDeque<(Instant, u64, Arc<str>)>,
    next_seq: u64,
    /// Files known to exist with a definition compatible with this one.
    verified: HashMap<Arc<str>, Arc<RrdDef>>,
    flush_waiters: Vec<(Instant, Reply)>,
    /// The FLUSH connection, between rounds (a round owns it while it runs). Only ever
    /// one that `open_flush_conn` proved to reach the rrdcached of `conn`.
    flush_conn: Option<Conn>,
    /// The FLUSH round running beside the writer, if any (one at a time).
    flushing: Option<tokio::task::JoinHandle<FlushDone>>,
    /// The files of the running round, each with the number of its updates retained when
    /// the round was sent: a FLUSH confirms those, not the updates retained after it.
    /// Their new updates wait in `held` until the round ends:
    /// rrdcached journals "wrote FILE" after writing what it took, and on journal replay
    /// that line wipes every earlier journaled update of the file, also one that came in
    /// during the write and was never written. Later updates of the file then make the
    /// lost one look written (rrd cannot go back in time) and the step stays missing.
    flush_in_flight: HashMap<Arc<str>, usize>,
    /// Updates of `flush_in_flight` files, in order, answered as accepted.
    held: Vec<Item>,
    /// Bumped when the writer reconnects and moves every retained update back into the
    /// queue for replay: a round sent before that must not release anything.
    generation: u64,
    /// `generation` when the running round was sent.
    flush_generation: u64,
    /// No round before this (the FLUSH connection failed).
    next_flush: Instant,
    /// Shutting down: FLUSH every file once the queue is empty.
    closing: bool,
}

/// What a FLUSH round reports: its files, the connection if it is still good, the outcome
/// of the first `results.len()` FLUSHes, and the error that stopped the round early, if
/// one did.
struct FlushDone {
    paths: Vec<Arc<str>>,
    conn: Option<Conn>,
    results: Vec<Result<(), String>>,
    error: Option<std::io::Error>,
}

/// FLUSHes `paths` in BATCHes of `max_batch` on `conn`. The round never connects by
/// itself: see `Writer::open_flush_conn`.
async fn flush_round(mut conn: Conn, paths: Vec<Arc<str>>, max_batch: usize) -> FlushDone {
    let mut results = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(max_batch.max(1)) {
        let commands: Vec<String> = chunk.iter().map(|p| proto::flush(p)).collect();
        let text = proto::batch(commands.iter().map(String::as_str));
        let errors = match conn
            .batch(&text)
            .await
            .and_then(|reply| proto::batch_errors(&reply).map_err(std::io::Error::other))
        {
            Ok(e) => e.into_iter().collect::<HashMap<usize, String>>(),
            Err(e) => {
                return FlushDone {
                    paths,
                    conn: None,
                    results,
                    error: Some(e),
                }
            }
        };
        for i in 0..chunk.len() {
            results.push(match errors.get(&i) {
                None => Ok(()),
                Some(m) => Err(m.clone()),
            });
        }
    }
    FlushDone {
        paths,
        conn: Some(conn),
        results,
        error: None,
    }
}

/// Waits for the running FLUSH round; never resolves when there is none.
async fn round_done(
    flushing: &mut Option<tokio::task::JoinHandle<FlushDone>>,
) -> Result<FlushDone, tokio::task::JoinError> {
    match flushing {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

/// A definition to check for a file: (definition, first update time, refusal).
type DefCheck = (Arc<RrdDef>, i64, Option<Refusal>);

/// Why a file cannot take its updates.
#[derive(Clone, Debug)]
enum Refusal {
    /// Wrong definition, CREATE failed, ...: logged per update.
    Bad(String),
    /// Not created below the free-space floor (the guard logged it once).
    DiskFloor { free: u64, floor: u64 },
}

impl From<String> for Refusal {
    fn from(m: String) -> Refusal {
        Refusal::Bad(m)
    }
}

/// Ok when an INFO answer shows the file takes `def`'s updates.
fn matches(info: Result<FileInfo, String>, def: &RrdDef) -> Result<(), String> {
    match info?.mismatch(def) {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

/// A lost connection, with the items that were in flight.
struct Lost(Vec<Item>, std::io::Error);

impl Writer {
    fn has_work(&self) -> bool {
        !self.queue.is_empty()
            || !self.retained.is_empty()
            || !self.flush_waiters.is_empty()
            || self.flushing.is_some()
    }

    fn publish_gauges(&self) {
        self.stats.set_pending(self.queue.len() as u64);
        self.stats.set_unflushed(self.retained_count as u64);
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let adopted = self.queue.adopt_orphans().await;
        if adopted > 0 {
            self.stats.add_queued(adopted as u64);
        }
        loop {
            let wake = if self.conn.is_none() && self.has_work() {
                self.next_connect
            } else {
                Instant::now() + Duration::from_millis(500)
            };
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.accept(m).await,
                    None => break,
                },
                done = round_done(&mut self.flushing) => {
                    self.flushing = None;
                    self.on_flushed(done);
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            // Take what else is waiting so that it shares one BATCH round trip.
            for _ in 0..self.opts.max_batch.max(1) * 4 {
                match rx.try_recv() {
                    Ok(m) => self.accept(m).await,
                    Err(_) => break,
                }
            }
            self.pump().await;
            self.publish_gauges();
        }
        self.shutdown().await;
    }

    /// All handles are gone: deliver and flush what is left, for a bounded time.
    async fn shutdown(mut self) {
        let deadline = Instant::now() + self.opts.shutdown_grace;
        self.closing = true;
        while (!self.queue.is_empty() || !self.retained.is_empty() || self.flushing.is_some())
            && Instant::now() < deadline
        {
            self.pump().await;
            if self.flushing.is_some() {
                match tokio::time::timeout_at(deadline, round_done(&mut self.flushing)).await {
                    Ok(done) => {
                        self.flushing = None;
                        self.on_flushed(done);
                    }
                    Err(_) => break,
                }
            } else if self.conn.is_none() {
                tokio::time::sleep_until(self.next_connect.min(deadline)).await;
            } else if !self.queue.is_empty() || !self.retained.is_empty() {
                // Nothing could be sent or flushed just now (the FLUSH connection failed).
                tokio::time::sleep_until(self.next_flush.min(deadline)).await;
            }
        }
        let held = std::mem::take(&mut self.held);
        self.queue.push_front(held);
        let left = self.queue.abandon().await;
        if left > 0 {
            self.stats.add_dropped(left as u64);
            tracing::error!(left, address = %self.address, "rrd updates never reached rrdcached before shutdown");
        }
        if self.retained_count > 0 {
            tracing::warn!(
                unflushed = self.retained_count,
                "rrd updates not confirmed flushed at shutdown"
            );
        }
    }

    async fn accept(&mut self, msg: Msg) {
        match msg {
            Msg::Update(mut item) => {
                if self.down {
                    if let Some(r) = item.reply.take() {
                        let _ = r.send(Ok(()));
                    }
                    self.stats.add_queued(1);
                }
                if self.queue.push_back(item).await {
                    self.stats.add_queued(1);
                }
            }
            Msg::Flush { deadline, reply } => self.flush_waiters.push((deadline, reply)),
        }
    }

    async fn pump(&mut self) {
        if self.conn.is_none() {
            if !self.has_work() {
                return;
            }
            if Instant::now() < self.next_connect {
                self.expire_flush_waiters();
                return;
            }
            match Conn::connect(&self.address).await {
                Ok(c) => self.on_connected(c),
                Err(e) => {
                    self.on_lost(Lost(Vec::new(), e));
                    return;
                }
            }
        }
        loop {
            let mut batch = self.queue.pop_batch(self.opts.max_batch.max(1)).await;
            if batch.is_empty() {
                break;
            }
            if !self.flush_in_flight.is_empty() {
                batch = self.hold_flushing(batch);
                if batch.is_empty() {
                    continue;
                }
            }
            if let Err(lost) = self.send_batch(batch).await {
                self.on_lost(lost);
                return;
            }
        }
        let all = !self.flush_waiters.is_empty() || (self.closing && self.queue.is_empty());
        if let Err(lost) = self.start_flush_round(all).await {
            self.on_lost(lost);
            return;
        }
        if self.queue.is_empty() && self.retained.is_empty() {
            // Callers read stats() right after flush(): publish before answering.
            self.publish_gauges();
            for (_, r) in self.flush_waiters.drain(..) {
                let _ = r.send(Ok(()));
            }
        }
        self.expire_flush_waiters();
    }

    fn expire_flush_waiters(&mut self) {
        let now = Instant::now();
        let (expired, keep): (Vec<_>, Vec<_>) =
            self.flush_waiters.drain(..).partition(|(d, _)| *d <= now);
        self.flush_waiters = keep;
        for (_, r) in expired {
            let _ = r.send(Err(TimeSeriesError::Unreachable {
                address: self.address.clone(),
                message: format!(
                    "flush timed out with {} updates queued and {} not confirmed flushed",
                    self.queue.len(),
                    self.retained_count
                ),
            }));
        }
    }

    fn on_connected(&mut self, conn: Conn) {
        if self.down {
            tracing::info!(address = %self.address, "rrdcached reachable again");
        }
        self.conn = Some(conn);
        self.down = false;
        self.backoff = MIN_BACKOFF;
        // rrdcached may have restarted and lost its journal's tail: replay everything not
        // confirmed flushed, before the queue (per file, those are the older updates).
        let mut replay: Vec<Item> = Vec::with_capacity(self.retained_count);
        for (_, r) in self.retained.drain() {
            replay.extend(r.items);
        }
        // Newer than the retained ones of their files (and not sent yet).
        replay.append(&mut self.held);
        self.retained_count = 0;
        self.due.clear();
        // A FLUSH round still running confirms updates that are now queued for replay, and
        // an idle FLUSH connection was proved against the old writer connection.
        self.generation += 1;
        self.flush_conn = None;
        if !replay.is_empty() {
            tracing::info!(
                updates = replay.len(),
                "replaying rrd updates not confirmed flushed"
            );
        }
        self.queue.push_front(replay);
    }

    fn on_lost(&mut self, Lost(in_flight, err): Lost) {
        if !self.down {
            tracing::warn!(address = %self.address, error = %err, "rrdcached unreachable; queueing rrd updates");
        }
        self.conn = None;
        self.down = true;
        self.next_connect = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        // In-flight updates may or may not have landed: keep them for replay.
        let n = in_flight.len();
        for mut item in in_flight {
            if let Some(r) = item.reply.take() {
                let _ = r.send(Ok(()));
            }
            item.sent = true;
            self.retain(item);
        }
        let mut waiting = 0u64;
        for item in self.queue.waiting_replies() {
            if let Some(r) = item.reply.take() {
                let _ = r.send(Ok(()));
                waiting += 1;
            }
        }
        self.stats.add_queued(n as u64 + waiting);
        self.expire_flush_waiters();
    }

    fn retain(&mut self, item: Item) {
        self.retained_count += 1;
        match self.retained.get_mut(&item.path) {
            Some(r) => r.items.push(item),
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.due.push_back((Instant::now(), seq, item.path.clone()));
                self.retained.insert(
                    item.path.clone(),
                    Retained {
                        seq,
                        items: vec![item],
                    },
                );
            }
        }
    }

    /// Gives a retained file a new place at the back of `due` (a FLUSH of it failed).
    fn requeue(&mut self, path: &Arc<str>) {
        if let Some(r) = self.retained.get_mut(path) {
            r.seq = self.next_seq;
            self.next_seq += 1;
            self.due.push_back((Instant::now(), r.seq, path.clone()));
        }
    }

    /// Files to FLUSH now: every retained file when `all`; else those whose oldest
    /// unconfirmed update is older than `flush_after`, plus the oldest others while more
    /// than `max_unflushed` updates are held. Pops `due` as far as it goes, no further.
    fn take_due(&mut self, all: bool) -> Vec<Arc<str>> {
        if all {
            return self.retained.keys().cloned().collect();
        }
        let now = Instant::now();
        let mut excess = self.retained_count.saturating_sub(self.opts.max_unflushed);
        let mut out = Vec::new();
        while let Some((since, _, _)) = self.due.front() {
            if excess == 0 && now.duration_since(*since) < self.opts.flush_after {
                break;
            }
            let Some((_, seq, path)) = self.due.pop_front() else {
                break;
            };
            if let Some(r) = self.retained.get(&path) {
                if r.seq == seq {
                    excess = excess.saturating_sub(r.items.len());
                    out.push(path);
                }
            }
        }
        out
    }

    fn reject(&self, mut item: Item, why: Refusal) {
        self.stats.add_rejected(1);
        let e = match why {
            Refusal::Bad(message) => {
                tracing::error!(path = %item.path, at = item.at, error = %message, "rrd update rejected");
                rrd_err("update", &item.path, message)
            }
            Refusal::DiskFloor { free, floor } => TimeSeriesError::DiskFloor {
                path: item.path.to_string(),
                free,
                floor,
            },
        };
        if let Some(r) = item.reply.take() {
            let _ = r.send(Err(e));
        }
    }

    fn conn(&mut self) -> Result<&mut Conn, std::io::Error> {
        self.conn
            .as_mut()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotConnected, "not connected"))
    }

    /// Makes sure each `(path, def, first update time)` exists with `def`'s data sources:
    /// INFO, else CREATE -O, then INFO again only if someone else created it meanwhile
    /// ("File exists"; a file this CREATE made has `def` by construction, and rrdcached's
    /// INFO of a port file is ~1,000 lines to parse). The commands of each step go out
    /// pipelined, so a first round over thousands of new files costs a few round trips per
    /// chunk instead of three per file. One outcome per check, in order; Err(msg): the file cannot take
    /// these updates.
    async fn ensure_many(
        &mut self,
        checks: &[(Arc<str>, Arc<RrdDef>, i64)],
    ) -> Result<Vec<Result<(), Refusal>>, std::io::Error> {
        let rras = self.opts.rra_override.clone();
        let disk = self.disk.clone();
        let chunk_len = self.opts.max_batch.clamp(1, ENSURE_CHUNK);
        let mut out = Vec::with_capacity(checks.len());
        for chunk in checks.chunks(chunk_len) {
            let conn = self.conn()?;
            let infos: Vec<String> = chunk.iter().map(|(p, _, _)| proto::info(p)).collect();
            let replies = conn.pipeline(&infos).await?;
            // None: not there; CREATE it.
            let mut outcome: Vec<Option<Result<(), Refusal>>> = Vec::new();
            let mut creates = Vec::new();
            for ((path, def, at), r) in chunk.iter().zip(&replies) {
                if !r.is_err() {
                    outcome.push(Some(
                        matches(proto::parse_info(r), def).map_err(Refusal::Bad),
                    ));
                } else if format::is_no_such_file(&r.message) {
                    let bytes = crate::defs::file_bytes(def, rras.as_deref());
                    match disk.as_ref().map(|g| g.admit(path, bytes)) {
                        Some(Err(TimeSeriesError::DiskFloor { free, floor, .. })) => {
                            outcome.push(Some(Err(Refusal::DiskFloor { free, floor })))
                        }
                        _ => {
                            outcome.push(None);
                            creates.push(proto::create(path, def, rras.as_deref(), at - 10));
                        }
                    }
                } else {
                    outcome.push(Some(Err(Refusal::Bad(r.message.clone()))));
                }
            }
            if !creates.is_empty() {
                let created = conn.pipeline(&creates).await?;
                let mut created = created.iter();
                let mut again = Vec::new();
                for ((path, _, _), o) in chunk.iter().zip(outcome.iter_mut()) {
                    if o.is_some() {
                        continue;
                    }
                    let Some(c) = created.next() else {
                        break;
                    };
                    if !c.is_err() {
                        tracing::debug!(path = %path, "created rrd file through rrdcached");
                        *o = Some(Ok(()));
                    } else if !c.message.contains("File exists") {
                        *o = Some(Err(Refusal::Bad(format!("create failed: {}", c.message))));
                    } else {
                        again.push(proto::info(path));
                    }
                }
                let checked = if again.is_empty() {
                    Vec::new()
                } else {
                    conn.pipeline(&again).await?
                };
                let mut checked = checked.iter();
                for ((_, def, _), o) in chunk.iter().zip(outcome.iter_mut()) {
                    if o.is_none() {
                        *o = Some(match checked.next() {
                            Some(r) => matches(proto::parse_info(r), def).map_err(Refusal::Bad),
                            None => Err(Refusal::Bad("no INFO reply after CREATE".to_string())),
                        });
                    }
                }
            }
            for o in outcome {
                out.push(o.unwrap_or_else(|| Err(Refusal::Bad("no CREATE reply".to_string()))));
            }
        }
        Ok(out)
    }

    async fn send_batch(&mut self, batch: Vec<Item>) -> Result<(), Lost> {
        // First touch of a file (or of a file with another definition) in this handle:
        // create or check it. rrdcached itself would take any update into its cache and fail
        // only when writing the file, silently, losing the file's later updates with it.
        let mut checks: HashMap<Arc<str>, Vec<DefCheck>> = HashMap::new();
        for item in &batch {
            if self
                .verified
                .get(&item.path)
                .is_some_and(|d| **d == *item.def)
            {
                continue;
            }
            let entry = checks.entry(item.path.clone()).or_default();
            if !entry.iter().any(|(d, _, _)| **d == *item.def) {
                entry.push((item.def.clone(), item.at, None));
            }
        }
        let list: Vec<(Arc<str>, Arc<RrdDef>, i64)> = checks
            .iter()
            .flat_map(|(path, pairs)| {
                pairs
                    .iter()
                    .map(|(def, at, _)| (path.clone(), def.clone(), *at))
            })
            .collect();
        if !list.is_empty() {
            let outcomes = match self.ensure_many(&list).await {
                Ok(o) => o,
                Err(e) => return Err(Lost(batch, e)),
            };
            for ((path, def, _), o) in list.into_iter().zip(outcomes) {
                match o {
                    Ok(()) => {
                        self.verified.insert(path, def);
                    }
                    Err(m) => {
                        if let Some(slot) = checks
                            .get_mut(&path)
                            .and_then(|pairs| pairs.iter_mut().find(|(d, _, _)| *d == def))
                        {
                            slot.2 = Some(m);
                        }
                    }
                }
            }
        }
        let mut items = Vec::with_capacity(batch.len());
        for item in batch {
            let bad = checks
                .get(&item.path)
                .and_then(|pairs| pairs.iter().find(|(d, _, _)| **d == *item.def))
                .and_then(|(_, _, m)| m.clone());
            match bad {
                Some(m) => self.reject(item, m),
                None => items.push(item),
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let commands: Vec<String> = items
            .iter()
            .map(|i| proto::update(&i.path, &i.line))
            .collect();
        let text = proto::batch(commands.iter().map(String::as_str));
        let started = std::time::Instant::now();
        let reply = match self.conn() {
            Ok(c) => c.batch(&text).await,
            Err(e) => Err(e),
        };
        self.stats.add_batch(started.elapsed());
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return Err(Lost(items, e)),
        };
        let errors: HashMap<usize, String> = match proto::batch_errors(&reply) {
            Ok(e) => e.into_iter().collect(),
            Err(m) => return Err(Lost(items, std::io::Error::other(m))),
        };
        for (i, mut item) in items.into_iter().enumerate() {
            match errors.get(&i) {
                None => {
                    if item.sent {
                        self.stats.add_replayed(1);
                    } else {
                        self.stats.add_written(1);
                    }
                    item.sent = true;
                    if let Some(r) = item.reply.take() {
                        let _ = r.send(Ok(()));
                    }
                    self.retain(item);
                }
                Some(m) if item.sent && format::is_already_written(m) => {
                    // Already in rrdcached; keep it until a FLUSH proves it is on disk.
                    self.stats.add_already_written(1);
                    self.retain(item);
                }
                Some(m) => {
                    if format::is_no_such_file(m) {
                        self.verified.remove(&item.path);
                    }
                    let m = Refusal::Bad(m.clone());
                    self.reject(item, m);
                }
            }
        }
        Ok(())
    }

    /// Takes the updates of files being FLUSHed out of `batch` into `held` (see
    /// `flush_in_flight`), answering their callers: the update is in the writer's hands.
    fn hold_flushing(&mut self, batch: Vec<Item>) -> Vec<Item> {
        let mut send = Vec::with_capacity(batch.len());
        for mut item in batch {
            if self.flush_in_flight.contains_key(&item.path) {
                if let Some(r) = item.reply.take() {
                    let _ = r.send(Ok(()));
                }
                self.held.push(item);
            } else {
                send.push(item);
            }
        }
        send
    }

    /// Sends the files `take_due` picks (every file when `all`) to a FLUSH round on the
    /// FLUSH connection, unless one is running already or the writer is not connected (its
    /// reconnection replays every retained update anyway).
    async fn start_flush_round(&mut self, all: bool) -> Result<(), Lost> {
        if self.flushing.is_some()
            || self.conn.is_none()
            || self.retained.is_empty()
            || Instant::now() < self.next_flush
        {
            return Ok(());
        }
        let Some(conn) = self.open_flush_conn().await? else {
            return Ok(());
        };
        let due = self.take_due(all);
        if due.is_empty() {
            self.flush_conn = Some(conn);
            return Ok(());
        }
        self.flush_in_flight = due
            .iter()
            .map(|p| (p.clone(), self.retained.get(p).map_or(0, |r| r.items.len())))
            .collect();
        self.flush_generation = self.generation;
        self.flushing = Some(tokio::spawn(flush_round(conn, due, self.opts.max_batch)));
        Ok(())
    }

    /// The FLUSH connection, connecting it if needed (`None`: it could not connect; the
    /// next round tries again after a back-off).
    ///
    /// A FLUSH only confirms updates held by the rrdcached it reaches. Were rrdcached killed
    /// and restarted under the writer's feet, a new connection would reach the new process,
    /// which answers "Nothing to flush" (success) for a file whose updates died with the
    /// old one. So a new FLUSH connection counts only once the writer's connection, older
    /// than it, has answered a PING after it connected: the process that took the updates
    /// was then still listening when the FLUSH connection was made.
    async fn open_flush_conn(&mut self) -> Result<Option<Conn>, Lost> {
        if let Some(c) = self.flush_conn.take() {
            return Ok(Some(c));
        }
        let conn = match Conn::connect(&self.address).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(address = %self.address, error = %e, "rrdcached FLUSH connection failed; retrying");
                self.next_flush = Instant::now() + MIN_BACKOFF;
                return Ok(None);
            }
        };
        let ping = match self.conn() {
            Ok(c) => c.command(&proto::ping()).await,
            Err(e) => Err(e),
        };
        match ping {
            Ok(r) if !r.is_err() => Ok(Some(conn)),
            Ok(r) => Err(Lost(
                Vec::new(),
                std::io::Error::other(format!("unexpected PING reply: {}", r.message)),
            )),
            Err(e) => Err(Lost(Vec::new(), e)),
        }
    }

    /// A FLUSH round ended: a successful FLUSH releases the updates of that file that were
    /// retained when the round was sent; a failed one is retried `flush_after` later (or at
    /// the next flush of everything), and so is one the round did not get to (its
    /// connection broke; the next round waits a back-off and reconnects).
    fn on_flushed(&mut self, done: Result<FlushDone, tokio::task::JoinError>) {
        let sent = std::mem::take(&mut self.flush_in_flight);
        // Before anything queued since: per file, the held updates are the older ones.
        let held = std::mem::take(&mut self.held);
        self.queue.push_front(held);
        let done = done.unwrap_or_else(|e| FlushDone {
            paths: Vec::new(),
            conn: None,
            results: Vec::new(),
            error: Some(std::io::Error::other(format!("FLUSH task failed: {e}"))),
        });
        if self.flush_generation != self.generation {
            // Everything retained went back to the queue meanwhile and is replayed; the
            // FLUSH connection is proved again against the writer's new one.
            return;
        }
        self.flush_conn = done.conn;
        if let Some(e) = &done.error {
            tracing::warn!(address = %self.address, error = %e, flushed = done.results.len(), left = sent.len() - done.results.len().min(sent.len()), "rrdcached FLUSH connection failed; retrying");
            self.next_flush = Instant::now() + MIN_BACKOFF;
        }
        // A round whose task failed reports no paths: requeue all it had.
        let paths: Vec<Arc<str>> = if done.paths.is_empty() {
            sent.keys().cloned().collect()
        } else {
            done.paths
        };
        for (i, path) in paths.iter().enumerate() {
            match done.results.get(i) {
                Some(Ok(())) => self.release(path, sent.get(path).copied().unwrap_or(0)),
                Some(Err(m)) if format::is_no_such_file(m) => {
                    if let Some(r) = self.retained.remove(path) {
                        self.retained_count -= r.items.len();
                        self.stats.add_dropped(r.items.len() as u64);
                        tracing::error!(path = %path, updates = r.items.len(), "rrd file vanished before its updates were flushed");
                    }
                    self.verified.remove(path);
                }
                Some(Err(m)) => {
                    tracing::warn!(path = %path, error = %m, "rrdcached FLUSH failed; retrying later");
                    self.requeue(path);
                }
                None => self.requeue(path),
            }
        }
    }

    /// The first `n` retained updates of `path` are on disk. Updates retained after the
    /// FLUSH was sent stay, with a new place in `due` (so they are held up to about twice
    /// `flush_after`).
    fn release(&mut self, path: &Arc<str>, n: usize) {
        let Some(r) = self.retained.get_mut(path) else {
            return;
        };
        let n = n.min(r.items.len());
        r.items.drain(..n);
        self.retained_count -= n;
        if r.items.is_empty() {
            self.retained.remove(path);
        } else {
            self.requeue(path);
        }
    }
}
