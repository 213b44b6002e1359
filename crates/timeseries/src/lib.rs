//! Lookout time series: RRD files that rrdtool and LibreNMS users can read, written either
//! locally (`RRD_DIR`, also on shared storage) or through rrdcached over TCP/unix socket so
//! that many pollers share one set of files. `TimeSeries` is a cheap-to-clone handle over a
//! crate-private backend, chosen from configuration at start-up. See docs/timeseries.md.
//!
//! Paths are relative to the RRD base directory: `<hostname>/port-id<N>.rrd`.
//!
//! Backends (an enum, chosen by `TimeSeriesConfig`): `local` drives long-running `rrdtool -`
//! processes (rrdtool's pipe mode, as LibreNMS does); `rrdcached` speaks rrdcached's text
//! protocol (`rrdcached::proto` is sans-IO) with batching, an outage queue and replay of
//! everything not yet confirmed flushed. Input that rrdtool would refuse is refused here first,
//! because rrdcached only notices it when it writes the file, silently, and then also drops the
//! file's later updates of the same flush.

pub mod defs;
pub mod disk;
mod format;
mod graph;
mod local;
mod rrdcached;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use graph::{GraphLine, GraphRequest};

/// Which backend writes the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeSeriesConfig {
    /// Files under this directory.
    Local { rrd_dir: std::path::PathBuf },
    /// rrdcached at `host:port` or `unix:/path`; files live under its `-b` base dir.
    Rrdcached { address: String },
}

/// Kind of a data source (rrdtool's DST).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsKind {
    Gauge,
    Counter,
    Derive,
    Absolute,
}

/// One data source: `DS:name:KIND:heartbeat:min:max`.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    pub name: String,
    pub kind: DsKind,
    pub heartbeat_secs: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Consolidation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cf {
    Average,
    Min,
    Max,
    Last,
}

/// One archive: `RRA:CF:0.5:steps:rows`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rra {
    pub cf: Cf,
    pub steps: u64,
    pub rows: u64,
}

/// Definition of an RRD file.
#[derive(Clone, Debug, PartialEq)]
pub struct RrdDef {
    pub step_secs: u64,
    pub sources: Vec<DataSource>,
    pub archives: Vec<Rra>,
}

/// A value for one data source in an update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// Integer counter reading, written exactly (no f64 rounding above 2^53).
    Counter(u64),
    Gauge(f64),
    /// `U`: not known this time.
    Unknown,
}

/// Rows read back from a file: `rows[i]` holds one value per `ds_names` entry at
/// `start + i * step`; `None` is unknown (NaN in rrdtool).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub start: i64,
    pub step: u64,
    pub ds_names: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TimeSeriesError {
    #[error("bad RRD path {0:?}")]
    BadPath(String),
    #[error("rrd {op} failed for {path}: {message}")]
    Rrd {
        op: &'static str,
        path: String,
        message: String,
    },
    #[error("bad RRA list: {0}")]
    BadRras(String),
    /// A new file refused because free space is below `RRD_MIN_FREE` (existing files are
    /// still updated).
    #[error("not creating {path}: {} free, below RRD_MIN_FREE ({})", disk::human_bytes(*free), disk::human_bytes(*floor))]
    DiskFloor { path: String, free: u64, floor: u64 },
    #[error("rrdcached at {address} unreachable: {message}")]
    Unreachable { address: String, message: String },
}

pub type Result<T, E = TimeSeriesError> = std::result::Result<T, E>;

/// One update for `TimeSeries::update_many`.
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    pub path: &'a str,
    pub def: &'a RrdDef,
    pub at: i64,
    pub values: &'a [Value],
}

/// Tuning of a handle; `Default` fits a poller.
#[derive(Clone, Debug)]
pub struct TimeSeriesOptions {
    /// Local backend: number of `rrdtool -` processes (files are sharded over them).
    pub local_processes: usize,
    /// rrdcached: updates kept in memory while it is unreachable; beyond, they spill to disk.
    pub queue_memory_limit: usize,
    /// rrdcached: where the spill journal goes (default: `lookout-rrd-spill` in the system
    /// temp dir; better a directory that survives reboots, e.g. under the data dir). Segments
    /// left there by a process that died are replayed at the next start.
    pub spill_dir: Option<std::path::PathBuf>,
    /// rrdcached: a file gets a FLUSH once its oldest unconfirmed update is this old; until
    /// then Lookout keeps the update (in memory) for replay. A FLUSH makes rrdcached write
    /// the file then, so rrdcached coalesces at most this long's updates, not its `-w`'s;
    /// 60 s by default to bound the memory held (docs/timeseries.md has the arithmetic).
    pub flush_after: Duration,
    /// rrdcached: above this many unconfirmed updates, the oldest files get a FLUSH at once
    /// until it is under the limit again.
    pub max_unflushed: usize,
    /// rrdcached: updates per BATCH round trip.
    pub max_batch: usize,
    /// Per-install RRA set for new files (LibreNMS's `rrd_rra`), see `defs::parse_rras`;
    /// `None` uses each definition's archives. Existing files keep theirs.
    pub rra_override: Option<Vec<Rra>>,
    /// rrdcached: when the last handle is dropped, how long the writer keeps trying to
    /// deliver and flush what it holds (spilled updates stay on disk for the next start).
    pub shutdown_grace: Duration,
    /// No new file is created while free space would drop below this (`RRD_MIN_FREE`).
    pub min_free: disk::FreeSpaceFloor,
    /// rrdcached: its `-b` base dir when it is on this machine (`RRDCACHED_BASE_DIR`), so
    /// that free space there is watched; unknown otherwise.
    pub rrdcached_base_dir: Option<std::path::PathBuf>,
}

impl Default for TimeSeriesOptions {
    fn default() -> Self {
        TimeSeriesOptions {
            local_processes: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8),
            queue_memory_limit: 100_000,
            spill_dir: None,
            flush_after: Duration::from_secs(60),
            max_unflushed: 200_000,
            max_batch: 1_000,
            rra_override: None,
            shutdown_grace: Duration::from_secs(10),
            min_free: disk::FreeSpaceFloor::default(),
            rrdcached_base_dir: None,
        }
    }
}

/// Counters for the status page. `dropped` must stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeSeriesStats {
    /// Updates accepted on their first attempt.
    pub written: u64,
    /// Updates that went to the outage queue (rrdcached unreachable or connection lost).
    pub queued: u64,
    /// Re-sent updates that rrdcached accepted (they had been lost or never arrived).
    pub replayed: u64,
    /// Re-sent updates that rrdcached already had.
    pub already_written: u64,
    /// Updates refused (bad input, wrong file definition); each was logged.
    pub rejected: u64,
    /// Updates lost by Lookout.
    pub dropped: u64,
    /// Now waiting to be sent.
    pub pending: u64,
    /// Now sent but not yet confirmed flushed to the file.
    pub unflushed: u64,
    /// Update round trips to the backend (rrdcached: one BATCH; local: one `update` command)
    /// and their total and longest duration, for the mean and worst write latency.
    pub round_trips: u64,
    pub round_trip_micros_total: u64,
    pub round_trip_micros_max: u64,
    /// New files not created because free space was below `RRD_MIN_FREE`.
    pub new_files_refused: u64,
    /// Free space is below `RRD_MIN_FREE` now (as of the last file creation tried).
    pub disk_low: bool,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    written: AtomicU64,
    queued: AtomicU64,
    replayed: AtomicU64,
    already_written: AtomicU64,
    rejected: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicU64,
    unflushed: AtomicU64,
    round_trips: AtomicU64,
    round_trip_micros_total: AtomicU64,
    round_trip_micros_max: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn add_written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_queued(&self, n: u64) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_replayed(&self, n: u64) {
        self.replayed.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_already_written(&self, n: u64) {
        self.already_written.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_batch(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.round_trip_micros_total
            .fetch_add(us, Ordering::Relaxed);
        self.round_trip_micros_max.fetch_max(us, Ordering::Relaxed);
    }
    pub(crate) fn set_pending(&self, n: u64) {
        self.pending.store(n, Ordering::Relaxed);
    }
    pub(crate) fn set_unflushed(&self, n: u64) {
        self.unflushed.store(n, Ordering::Relaxed);
    }
    fn snapshot(&self) -> TimeSeriesStats {
        TimeSeriesStats {
            written: self.written.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            already_written: self.already_written.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            unflushed: self.unflushed.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
            round_trip_micros_total: self.round_trip_micros_total.load(Ordering::Relaxed),
            round_trip_micros_max: self.round_trip_micros_max.load(Ordering::Relaxed),
            new_files_refused: 0,
            disk_low: false,
        }
    }
}

enum Backend {
    Local(local::LocalBackend),
    Rrdcached(rrdcached::CachedBackend),
}

struct Inner {
    backend: Backend,
    stats: Arc<StatsCounters>,
    /// Where the files live when that is this machine's disk, with `min_free`'s guard.
    disk: Option<Arc<disk::DiskGuard>>,
}

/// Handle to the time-series backend; clone it freely.
#[derive(Clone)]
pub struct TimeSeries {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TimeSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner.backend {
            Backend::Local(_) => "local",
            Backend::Rrdcached(_) => "rrdcached",
        };
        f.debug_struct("TimeSeries")
            .field("backend", &kind)
            .finish()
    }
}

fn rejected(stats: &StatsCounters, path: &str, message: String) -> TimeSeriesError {
    stats.add_rejected(1);
    tracing::error!(path, error = %message, "rrd update rejected");
    TimeSeriesError::Rrd {
        op: "update",
        path: path.to_string(),
        message,
    }
}

impl TimeSeries {
    pub async fn open(config: &TimeSeriesConfig) -> Result<TimeSeries> {
        Self::open_with(config, TimeSeriesOptions::default()).await
    }

    /// `open` with explicit tuning. Does not fail when rrdcached is down (updates queue);
    /// `check` tells.
    pub async fn open_with(
        config: &TimeSeriesConfig,
        options: TimeSeriesOptions,
    ) -> Result<TimeSeries> {
        let stats = Arc::new(StatsCounters::default());
        let files_dir = match config {
            TimeSeriesConfig::Local { rrd_dir } => Some(rrd_dir.clone()),
            TimeSeriesConfig::Rrdcached { .. } => options.rrdcached_base_dir.clone(),
        };
        let disk = files_dir.map(|d| Arc::new(disk::DiskGuard::new(&d, options.min_free)));
        let backend = match config {
            TimeSeriesConfig::Local { rrd_dir } => {
                if !rrd_dir.is_absolute() {
                    tracing::debug!(dir = %rrd_dir.display(), "relative RRD_DIR");
                }
                Backend::Local(local::LocalBackend::new(
                    rrd_dir,
                    options.local_processes,
                    options.rra_override.clone(),
                    disk.clone(),
                ))
            }
            TimeSeriesConfig::Rrdcached { address } => Backend::Rrdcached(
                rrdcached::CachedBackend::new(address, &options, stats.clone(), disk.clone()),
            ),
        };
        Ok(TimeSeries {
            inner: Arc::new(Inner {
                backend,
                stats,
                disk,
            }),
        })
    }

    /// Connectivity/permission check for `lookout validate`.
    pub async fn check(&self) -> Result<()> {
        match &self.inner.backend {
            Backend::Local(b) => b.check().await,
            Backend::Rrdcached(b) => b.check().await,
        }
    }

    /// Creates `path` with `def` unless it exists, then writes one update at `at` (unix
    /// seconds) with one value per data source, in `def` order.
    ///
    /// Through rrdcached this returns once rrdcached accepted (or refused) the update, or at
    /// once when rrdcached is unreachable and the update was queued for replay.
    pub async fn update(&self, path: &str, def: &RrdDef, at: i64, values: &[Value]) -> Result<()> {
        let stats = &self.inner.stats;
        format::validate_path(path)?;
        format::validate_def(def).map_err(|m| rejected(stats, path, m))?;
        let line = format::update_line(def, at, values).map_err(|m| rejected(stats, path, m))?;
        match &self.inner.backend {
            Backend::Local(b) => b.update(path, def, at, &line, stats).await,
            Backend::Rrdcached(b) => b.update(path, def, at, line).await,
        }
    }

    /// Many updates at once (e.g. all ports of a device): through rrdcached they share BATCH
    /// round trips even from one task. One result per update, in order; files are created
    /// as by `update`.
    pub async fn update_many(&self, updates: &[Update<'_>]) -> Vec<Result<()>> {
        let stats = &self.inner.stats;
        let prepared: Vec<Result<String>> = updates
            .iter()
            .map(|u| {
                format::validate_path(u.path)?;
                format::validate_def(u.def).map_err(|m| rejected(stats, u.path, m))?;
                format::update_line(u.def, u.at, u.values).map_err(|m| rejected(stats, u.path, m))
            })
            .collect();
        match &self.inner.backend {
            Backend::Local(b) => {
                let mut out = Vec::with_capacity(updates.len());
                for (u, line) in updates.iter().zip(prepared) {
                    out.push(match line {
                        Ok(line) => b.update(u.path, u.def, u.at, &line, stats).await,
                        Err(e) => Err(e),
                    });
                }
                out
            }
            Backend::Rrdcached(b) => {
                let mut defs: Vec<(&RrdDef, Arc<RrdDef>)> = Vec::new();
                let mut pending = Vec::with_capacity(updates.len());
                for (u, line) in updates.iter().zip(prepared) {
                    pending.push(line.and_then(|line| {
                        let def = match defs.iter().find(|(d, _)| std::ptr::eq(*d, u.def)) {
                            Some((_, a)) => a.clone(),
                            None => {
                                let a = Arc::new(u.def.clone());
                                defs.push((u.def, a.clone()));
                                a
                            }
                        };
                        b.enqueue(u.path, def, u.at, line)
                    }));
                }
                let mut out = Vec::with_capacity(pending.len());
                for p in pending {
                    out.push(match p {
                        Ok(rx) => b.outcome(rx).await,
                        Err(e) => Err(e),
                    });
                }
                out
            }
        }
    }

    /// Reads `cf` rows covering `start..=end` (unix seconds) at the finest resolution at or
    /// above `resolution_secs`. `Series::start` is the time of the first row; a row at `t`
    /// covers `(t - step, t]` as in `rrdtool fetch`.
    pub async fn fetch(
        &self,
        path: &str,
        cf: Cf,
        start: i64,
        end: i64,
        resolution_secs: u64,
    ) -> Result<Series> {
        format::validate_path(path)?;
        let series = match &self.inner.backend {
            Backend::Local(b) => b.fetch(path, cf, start, end, resolution_secs).await?,
            Backend::Rrdcached(b) => b.fetch(path, cf, start, end).await?,
        };
        Ok(format::consolidate(series, cf, resolution_secs))
    }

    /// True when the file exists.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        format::validate_path(path)?;
        match &self.inner.backend {
            Backend::Local(b) => b.exists(path).await,
            Backend::Rrdcached(b) => b.exists(path).await,
        }
    }

    /// Waits (up to `timeout`) until every update accepted so far is in its file: through
    /// rrdcached, sent and FLUSHed. Local updates are written synchronously: no-op.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        match &self.inner.backend {
            Backend::Local(_) => Ok(()),
            Backend::Rrdcached(b) => b.flush(timeout).await,
        }
    }

    /// Renders a PNG graph with `rrdtool graph` (both backends; through rrdcached with
    /// `--daemon`, so no local files are needed).
    pub async fn graph_png(&self, request: &GraphRequest) -> Result<Vec<u8>> {
        // Name the files in graph errors.
        let files = || {
            let mut p: Vec<&str> = request.lines.iter().map(|l| l.path.as_str()).collect();
            p.dedup();
            p.join(",")
        };
        let name = |e: TimeSeriesError| match e {
            TimeSeriesError::Rrd { op, path, message } if path.is_empty() => TimeSeriesError::Rrd {
                op,
                path: files(),
                message,
            },
            other => other,
        };
        graph::validate(request).map_err(name)?;
        let png = match &self.inner.backend {
            Backend::Local(b) => {
                let files: Vec<String> = request.lines.iter().map(|l| l.path.clone()).collect();
                graph::render(Some(b.dir()), &graph::args(request, &files, None)).await
            }
            Backend::Rrdcached(b) => {
                let mut files = Vec::with_capacity(request.lines.len());
                for l in &request.lines {
                    files.push(b.graph_path(&l.path).await?);
                }
                graph::render(None, &graph::args(request, &files, Some(b.address()))).await
            }
        };
        png.map_err(name)
    }

    /// Counters for the status page.
    pub fn stats(&self) -> TimeSeriesStats {
        let mut s = self.inner.stats.snapshot();
        if let Some(d) = &self.inner.disk {
            s.new_files_refused = d.refused();
            s.disk_low = d.is_low();
        }
        s
    }

    /// The directory the files live in, when it is on this machine (local RRD_DIR, or
    /// rrdcached's base dir when `RRDCACHED_BASE_DIR` names it).
    pub fn files_dir(&self) -> Option<&std::path::Path> {
        self.inner.disk.as_ref().map(|d| d.dir())
    }
}
