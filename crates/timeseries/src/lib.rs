//! Lookout time series: RRD files that rrdtool and LibreNMS users can read, written either
//! locally (`RRD_DIR`, also on shared storage) or through rrdcached over TCP/unix socket so
//! that many pollers share one set of files. `TimeSeries` is a cheap-to-clone handle over a
//! crate-private backend trait, chosen from configuration at start-up.
//!
//! Paths are relative to the RRD base directory: `<hostname>/port-id<N>.rrd`.
//!
//! NOTE: the API below is the contract other crates code against; bodies are being built.

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
    #[error("rrdcached at {address} unreachable: {message}")]
    Unreachable { address: String, message: String },
}

pub type Result<T, E = TimeSeriesError> = std::result::Result<T, E>;

/// Standard definitions with LibreNMS's data source names.
pub mod defs {
    use super::RrdDef;

    /// `port-id<N>.rrd`: INOCTETS, OUTOCTETS, INERRORS, ... (DERIVE, min 0).
    #[allow(clippy::todo)]
    pub fn port(step_secs: u64) -> RrdDef {
        let _ = step_secs;
        todo!()
    }
    /// `icmp-perf.rrd`: avg, xmt, rcv, min, max (GAUGE).
    #[allow(clippy::todo)]
    pub fn icmp_perf(step_secs: u64) -> RrdDef {
        let _ = step_secs;
        todo!()
    }
    /// `uptime.rrd`: uptime (GAUGE).
    #[allow(clippy::todo)]
    pub fn uptime(step_secs: u64) -> RrdDef {
        let _ = step_secs;
        todo!()
    }
    /// Names of the port DSes in the order `defs::port` defines them.
    pub const PORT_DS: [&str; 15] = [
        "INOCTETS",
        "OUTOCTETS",
        "INERRORS",
        "OUTERRORS",
        "INUCASTPKTS",
        "OUTUCASTPKTS",
        "INNUCASTPKTS",
        "OUTNUCASTPKTS",
        "INDISCARDS",
        "OUTDISCARDS",
        "INUNKNOWNPROTOS",
        "INBROADCASTPKTS",
        "OUTBROADCASTPKTS",
        "INMULTICASTPKTS",
        "OUTMULTICASTPKTS",
    ];
}

/// Handle to the time-series backend; clone it freely.
#[derive(Clone)]
pub struct TimeSeries {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl TimeSeries {
    pub async fn open(config: &TimeSeriesConfig) -> Result<TimeSeries> {
        todo!()
    }
    /// Connectivity/permission check for `lookout validate`.
    pub async fn check(&self) -> Result<()> {
        todo!()
    }
    /// Creates `path` with `def` unless it exists, then writes one update at `at` (unix
    /// seconds) with one value per data source, in `def` order.
    pub async fn update(&self, path: &str, def: &RrdDef, at: i64, values: &[Value]) -> Result<()> {
        todo!()
    }
    /// Reads `cf` rows covering `start..=end` (unix seconds) at the finest resolution at or
    /// above `resolution_secs`.
    pub async fn fetch(
        &self,
        path: &str,
        cf: Cf,
        start: i64,
        end: i64,
        resolution_secs: u64,
    ) -> Result<Series> {
        todo!()
    }
    /// True when the file exists.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        todo!()
    }
}
