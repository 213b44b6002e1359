//! rrdcached backend: files live under rrdcached's `-b` base directory and no Lookout node
//! needs them on its disk. Updates go through one writer task per handle that owns a
//! connection, sends them in BATCHes and keeps every update until a FLUSH of its file
//! succeeded, because rrdcached's own journal is buffered and a `kill -9` loses its tail.
//! When rrdcached is unreachable, updates wait in a bounded queue (spilling to disk, see
//! `queue`) and are replayed in order after reconnecting, together with every update not yet
//! confirmed flushed; rrdcached's "illegal attempt to update using time X when last update
//! time is X" on such a replay means "already written". Reads (FETCH, INFO, PING) use a
//! separate connection so that graphs do not wait behind write batches.

pub(crate) mod client;
pub(crate) mod proto;
mod queue;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;

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
}

/// A definition to check for a file: (definition, first update time, refusal).
type DefCheck = (Arc<RrdDef>, i64, Option<String>);

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
        !self.queue.is_empty() || !self.retained.is_empty() || !self.flush_waiters.is_empty()
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
        while (!self.queue.is_empty() || !self.retained.is_empty()) && Instant::now() < deadline {
            self.pump().await;
            if self.conn.is_none() {
                tokio::time::sleep_until(self.next_connect.min(deadline)).await;
            }
            let force_flush = self.queue.is_empty();
            if force_flush && self.conn.is_some() {
                if let Err(lost) = self.flush_due(true).await {
                    self.on_lost(lost);
                }
            }
        }
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
            let batch = self.queue.pop_batch(self.opts.max_batch.max(1)).await;
            if batch.is_empty() {
                break;
            }
            if let Err(lost) = self.send_batch(batch).await {
                self.on_lost(lost);
                return;
            }
        }
        let all = !self.flush_waiters.is_empty();
        if let Err(lost) = self.flush_due(all).await {
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
        self.retained_count = 0;
        self.due.clear();
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

    fn reject(&self, mut item: Item, message: String) {
        self.stats.add_rejected(1);
        tracing::error!(path = %item.path, at = item.at, error = %message, "rrd update rejected");
        if let Some(r) = item.reply.take() {
            let _ = r.send(Err(rrd_err("update", &item.path, message)));
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
    ) -> Result<Vec<Result<(), String>>, std::io::Error> {
        let rras = self.opts.rra_override.clone();
        let chunk_len = self.opts.max_batch.clamp(1, ENSURE_CHUNK);
        let mut out = Vec::with_capacity(checks.len());
        for chunk in checks.chunks(chunk_len) {
            let conn = self.conn()?;
            let infos: Vec<String> = chunk.iter().map(|(p, _, _)| proto::info(p)).collect();
            let replies = conn.pipeline(&infos).await?;
            // None: not there; CREATE it.
            let mut outcome: Vec<Option<Result<(), String>>> = Vec::new();
            let mut creates = Vec::new();
            for ((path, def, at), r) in chunk.iter().zip(&replies) {
                if !r.is_err() {
                    outcome.push(Some(matches(proto::parse_info(r), def)));
                } else if format::is_no_such_file(&r.message) {
                    outcome.push(None);
                    creates.push(proto::create(path, def, rras.as_deref(), at - 10));
                } else {
                    outcome.push(Some(Err(r.message.clone())));
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
                        *o = Some(Err(format!("create failed: {}", c.message)));
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
                            Some(r) => matches(proto::parse_info(r), def),
                            None => Err("no INFO reply after CREATE".to_string()),
                        });
                    }
                }
            }
            for o in outcome {
                out.push(o.unwrap_or_else(|| Err("no CREATE reply".to_string())));
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
                    let m = m.clone();
                    self.reject(item, m);
                }
            }
        }
        Ok(())
    }

    /// FLUSHes the files `take_due` picks (every file when `all`), in BATCHes; a successful
    /// FLUSH releases that file's retained updates, a failed one is retried `flush_after`
    /// later (or at the next flush of everything). A lost connection leaves the rest
    /// retained: reconnecting replays all of them anyway.
    async fn flush_due(&mut self, all: bool) -> Result<(), Lost> {
        if self.retained.is_empty() {
            return Ok(());
        }
        let due = self.take_due(all);
        for chunk in due.chunks(self.opts.max_batch.max(1)) {
            let commands: Vec<String> = chunk.iter().map(|p| proto::flush(p)).collect();
            let text = proto::batch(commands.iter().map(String::as_str));
            let reply = match self.conn() {
                Ok(c) => c.batch(&text).await,
                Err(e) => Err(e),
            };
            let reply = reply.map_err(|e| Lost(Vec::new(), e))?;
            let errors: HashMap<usize, String> = proto::batch_errors(&reply)
                .map_err(|m| Lost(Vec::new(), std::io::Error::other(m)))?
                .into_iter()
                .collect();
            for (i, path) in chunk.iter().enumerate() {
                match errors.get(&i) {
                    None => {
                        if let Some(r) = self.retained.remove(path) {
                            self.retained_count -= r.items.len();
                        }
                    }
                    Some(m) if format::is_no_such_file(m) => {
                        if let Some(r) = self.retained.remove(path) {
                            self.retained_count -= r.items.len();
                            self.stats.add_dropped(r.items.len() as u64);
                            tracing::error!(path = %path, updates = r.items.len(), "rrd file vanished before its updates were flushed");
                        }
                        self.verified.remove(path);
                    }
                    Some(m) => {
                        tracing::warn!(path = %path, error = %m, "rrdcached FLUSH failed; retrying later");
                        self.requeue(path);
                    }
                }
            }
        }
        Ok(())
    }
}
