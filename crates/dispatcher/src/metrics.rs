//! Poll lag and duration as the workers see them: lag is when a poll actually started
//! minus when its device was due (the due time travels with the claim), so it measures
//! the whole path master → queue → worker. Recent samples per poller group feed the
//! heartbeat (`group.N.lag_p99` ...); a benchmark can keep every sample.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One finished poll as a worker saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PollSample {
    pub group: i32,
    /// Poll start minus due time, seconds (negative: a clock step between nodes).
    pub lag_secs: f64,
    /// How long the poll took, seconds.
    pub poll_secs: f64,
    /// Its phases (0 for a poll that failed): collecting from the device, the store
    /// commit, handing the RRD updates over. The rest of `poll_secs` is reading the device
    /// row and registering the claim.
    pub collect_secs: f64,
    pub commit_secs: f64,
    pub rrd_secs: f64,
    /// The poll's results were written (not failed, not stale).
    pub ok: bool,
}

/// Percentiles of a set of values (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(values: &mut [f64]) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            // Nearest rank: the smallest value with at least q of the samples at or below it.
            let rank = (q * values.len() as f64).ceil() as usize;
            values[rank.clamp(1, values.len()) - 1]
        };
        Percentiles {
            count: values.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: values[values.len() - 1],
        }
    }
}

/// Shared by a node's workers and its heartbeat; cheap to record into.
#[derive(Debug)]
pub struct PollMetrics {
    window: Duration,
    keep_all: bool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    recent: BTreeMap<i32, VecDeque<(Instant, PollSample)>>,
    all: Vec<PollSample>,
}

impl PollMetrics {
    /// Keeps the samples of the last `window` per group (the heartbeat's figures).
    pub fn new(window: Duration) -> PollMetrics {
        PollMetrics {
            window,
            keep_all: false,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Also keeps every sample until [`PollMetrics::take_all`] (benchmarks).
    pub fn keeping_all(window: Duration) -> PollMetrics {
        PollMetrics {
            keep_all: true,
            ..PollMetrics::new(window)
        }
    }

    pub fn record(&self, s: PollSample) {
        let now = Instant::now();
        if let Ok(mut m) = self.inner.lock() {
            if self.keep_all {
                m.all.push(s);
            }
            let q = m.recent.entry(s.group).or_default();
            q.push_back((now, s));
            while q
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
            {
                q.pop_front();
            }
        }
    }

    /// Lag percentiles per group over the window.
    pub fn recent_lag(&self) -> BTreeMap<i32, Percentiles> {
        let now = Instant::now();
        let Ok(m) = self.inner.lock() else {
            return BTreeMap::new();
        };
        m.recent
            .iter()
            .map(|(g, q)| {
                let mut v: Vec<f64> = q
                    .iter()
                    .filter(|(t, _)| now.duration_since(*t) <= self.window)
                    .map(|(_, s)| s.lag_secs)
                    .collect();
                (*g, Percentiles::of(&mut v))
            })
            .collect()
    }

    /// Every sample since the last call (only with [`PollMetrics::keeping_all`]).
    pub fn take_all(&self) -> Vec<PollSample> {
        self.inner
            .lock()
            .map(|mut m| std::mem::take(&mut m.all))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        let p = Percentiles::of(&mut [7.0]);
        assert_eq!((p.p50, p.p99, p.max), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of(&mut []).count, 0);
    }

    #[test]
    fn window_per_group_and_keep_all() {
        let m = PollMetrics::keeping_all(Duration::from_millis(50));
        let s = |group, lag_secs| PollSample {
            group,
            lag_secs,
            poll_secs: 0.1,
            collect_secs: 0.05,
            commit_secs: 0.02,
            rrd_secs: 0.01,
            ok: true,
        };
        m.record(s(0, 1.0));
        std::thread::sleep(Duration::from_millis(80));
        m.record(s(0, 3.0));
        m.record(s(2, 5.0));
        let r = m.recent_lag();
        assert_eq!(r[&0].count, 1, "the old sample left the window");
        assert_eq!(r[&0].max, 3.0);
        assert_eq!(r[&2].p50, 5.0);
        assert_eq!(m.take_all().len(), 3);
        assert!(m.take_all().is_empty());
    }
}
