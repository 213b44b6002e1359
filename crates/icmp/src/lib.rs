//! ICMP availability checks: packet loss and round-trip times of a device.
//!
//! The backend is `fping`, as in LibreNMS: Debian ships it with `cap_net_raw`, so Lookout
//! needs no privileges of its own, and one `fping` run pings several times with pacing.
//! Parsing its summary line is sans-IO ([`parse_fping_summary`]); running it is the edge.
//!
//! Two ways to ping: [`ping`] runs one fping for one host (the CLI), and [`Pinger`] is a
//! long-lived task that gathers the requests of many concurrent polls into one fping run
//! over many hosts (the poller): one process per batch instead of one per device, and
//! one raw socket that every echo reply on the machine is copied to instead of dozens.
//! Parsing a batch's output and reading its exit status are sans-IO too ([`batch`]).

pub mod batch;
mod pinger;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use pinger::{PendingPing, Pinger};

use tokio::process::Command;

/// Result of pinging one host `count` times.
#[derive(Clone, Debug, PartialEq)]
pub struct PingResult {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// Round-trip times in milliseconds; `None` when nothing came back.
    pub min_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl PingResult {
    /// Loss in percent (0..=100).
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.transmitted - self.received.min(self.transmitted))
            / f64::from(self.transmitted)
    }
    /// A host is up when at least one reply came back.
    pub fn is_up(&self) -> bool {
        self.received > 0
    }
}

/// Why a host could not be pinged. `Clone` because one batch's failure is every waiting
/// request's answer (hence the `Arc` around the I/O error).
#[derive(Clone, Debug, thiserror::Error)]
pub enum IcmpError {
    #[error("fping not found at {0} (install the Debian package `fping`)")]
    FpingMissing(PathBuf),
    #[error("cannot run fping: {0}")]
    Spawn(#[source] Arc<std::io::Error>),
    #[error("cannot resolve host {0:?}")]
    Resolve(String),
    #[error("unexpected fping output {0:?}")]
    Parse(String),
    /// fping itself failed (exit status 3: bad arguments, 4: a system call failed, or a
    /// signal), for this host alone (a batch that fails is split until the culprit is alone).
    #[error("fping failed ({status}): {message}")]
    Fping { status: String, message: String },
    /// The batching task is gone (the runtime is shutting down).
    #[error("the pinger has stopped")]
    Stopped,
}

/// How to ping.
#[derive(Clone, Debug)]
pub struct PingConfig {
    pub fping: PathBuf,
    /// Echo requests per host (LibreNMS default 3).
    pub count: u32,
    /// Milliseconds between requests to the same host (LibreNMS default 500).
    pub interval_ms: u32,
    /// Milliseconds to wait for a reply (LibreNMS default 500).
    pub timeout_ms: u32,
    /// How a [`Pinger`] groups requests into fping runs (unused by [`ping`]).
    pub batch: BatchConfig,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            fping: PathBuf::from("/usr/bin/fping"),
            count: 3,
            interval_ms: 500,
            timeout_ms: 500,
            batch: BatchConfig::default(),
        }
    }
}

/// How a [`Pinger`] groups requests into fping runs.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    /// How long the first request of a batch waits for others to join it. A ping takes
    /// `(count - 1) * interval` anyway (1 s with LibreNMS's settings), so 50 ms more buys
    /// ~10 hosts per fping at 10,000 polls a minute.
    pub window: Duration,
    /// Hosts in one fping run at most. fping spaces its packets `spacing_ms` apart, so a
    /// run of N hosts sends a round in N * spacing_ms: keep it under `interval_ms`.
    pub max_hosts: usize,
    /// fping runs at once at most; further requests gather in the next batch meanwhile.
    pub max_runs: usize,
    /// Milliseconds between packets to different hosts (fping `-i`; 1 is the least fping
    /// allows an unprivileged user, its default 10 would make a 100-host round last 1 s).
    pub spacing_ms: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            window: Duration::from_millis(50),
            max_hosts: 128,
            max_runs: 16,
            spacing_ms: 1,
        }
    }
}

/// Pings `host` and returns the summary. A host that does not answer is `Ok` with
/// `received == 0`; only a failure to run fping or resolve the name is an error.
pub async fn ping(config: &PingConfig, host: &str) -> Result<PingResult, IcmpError> {
    if !config.fping.exists() {
        return Err(IcmpError::FpingMissing(config.fping.clone()));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut cmd = Command::new(&config.fping);
    cmd.arg("-e")
        .arg("-q")
        .arg("-c")
        .arg(config.count.max(1).to_string())
        .arg("-p")
        .arg(config.interval_ms.max(20).to_string())
        .arg("-t")
        .arg(config.timeout_ms.max(50).to_string())
        .arg("--")
        .arg(bare)
        .kill_on_drop(true);
    // fping's own timeout bounds the run; this is a guard against a hung process.
    let budget = Duration::from_millis(
        u64::from(config.count.max(1)) * u64::from(config.interval_ms.max(20))
            + u64::from(config.timeout_ms.max(50))
            + 5_000,
    );
    let output = tokio::time::timeout(budget, cmd.output())
        .await
        .map_err(|_| IcmpError::Parse("fping did not finish in time".to_string()))?
        .map_err(|e| IcmpError::Spawn(Arc::new(e)))?;
    // fping -q writes its summary to stderr.
    let text = String::from_utf8_lossy(&output.stderr);
    tracing::trace!(host, output = %text, "fping");
    parse_fping_output(&text, bare)
}

/// Finds the summary line for `host` in fping's `-q -c` output.
pub fn parse_fping_output(text: &str, host: &str) -> Result<PingResult, IcmpError> {
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(" : ") else {
            if line.contains("Name or service not known")
                || line.contains("address not found")
                || line.contains("Temporary failure in name resolution")
            {
                return Err(IcmpError::Resolve(host.to_string()));
            }
            continue;
        };
        if name.trim() == host {
            return parse_fping_summary(rest);
        }
    }
    if text.contains("not known") || text.contains("not found") {
        return Err(IcmpError::Resolve(host.to_string()));
    }
    Err(IcmpError::Parse(text.trim().to_string()))
}

/// Parses `xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.05/0.07/0.13` (the part after `host : `).
pub fn parse_fping_summary(summary: &str) -> Result<PingResult, IcmpError> {
    let bad = || IcmpError::Parse(summary.to_string());
    let (counts, times) = match summary.split_once(", min/avg/max = ") {
        Some((c, t)) => (c, Some(t)),
        None => (summary, None),
    };
    let counts = counts
        .trim()
        .strip_prefix("xmt/rcv/%loss = ")
        .ok_or_else(bad)?;
    let mut it = counts.split('/');
    let transmitted: u32 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let received: u32 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let (mut min_ms, mut avg_ms, mut max_ms) = (None, None, None);
    if let Some(times) = times {
        let v: Vec<f64> = times
            .trim()
            .split('/')
            .map(|x| x.parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if v.len() != 3 {
            return Err(bad());
        }
        (min_ms, avg_ms, max_ms) = (Some(v[0]), Some(v[1]), Some(v[2]));
    }
    Ok(PingResult {
        transmitted,
        received,
        min_ms,
        avg_ms,
        max_ms,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_answered_and_lost() {
        let r = parse_fping_output(
            "127.0.0.1 : xmt/rcv/%loss = 3/2/33%, min/avg/max = 0.050/0.079/0.133\n",
            "127.0.0.1",
        )
        .unwrap();
        assert_eq!((r.transmitted, r.received), (3, 2));
        assert_eq!(r.avg_ms, Some(0.079));
        assert!((r.loss_percent() - 33.333).abs() < 0.01);
        let r = parse_fping_output("10.9.9.9 : xmt/rcv/%loss = 3/0/100%\n", "10.9.9.9").unwrap();
        assert!(!r.is_up());
        assert_eq!(r.avg_ms, None);
        assert_eq!(r.loss_percent(), 100.0);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            parse_fping_output("nonsense", "h"),
            Err(IcmpError::Parse(_))
        ));
        assert!(matches!(
            parse_fping_summary("xmt/rcv/%loss = a/b/c"),
            Err(IcmpError::Parse(_))
        ));
        assert!(matches!(
            parse_fping_output("bad.invalid: Name or service not known\n", "bad.invalid"),
            Err(IcmpError::Resolve(_))
        ));
    }

    #[tokio::test]
    async fn pings_loopback_for_real() {
        let cfg = PingConfig {
            count: 2,
            interval_ms: 20,
            ..PingConfig::default()
        };
        if !cfg.fping.exists() {
            panic!("fping missing: apt-get install fping");
        }
        let r = ping(&cfg, "127.0.0.1").await.unwrap();
        assert_eq!(r.transmitted, 2);
        assert_eq!(r.received, 2);
        assert!(r.avg_ms.unwrap() < 100.0);
    }
}
