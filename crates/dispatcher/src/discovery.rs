//! The master's discovery decision: whether a device whose poll is being queued goes in as
//! a discovery (`Work::Discover`: a full poll plus the discovery-only work) or as a plain
//! poll. Pure like [`crate::schedule`]: time goes in as unix seconds.
//!
//! * A device never discovered (`devices.last_discovered` empty) is discovered at its
//!   first poll, at once.
//! * After that, every `interval` (LibreNMS's 6 h) from `last_discovered` as the store has
//!   it, so a new master does not re-discover what its predecessor just discovered.
//! * Re-discoveries are rate-limited to `budget()` per poll interval (twice the steady
//!   rate, `devices × poll interval / interval`), so 10,000 devices first discovered in the
//!   same few minutes are not all re-discovered in the same few minutes 6 h later: the
//!   surplus waits for later polls and the due times spread out over the interval.
//! * A discovery handed out and not yet seen in the store (still queued, running, or the
//!   device was down so nothing was written) is not handed out again for `retry` seconds;
//!   `retry_new` (shorter) for a device never discovered, so that a device added while
//!   down is discovered soon after it comes up (LibreNMS looks at new devices every 5
//!   minutes), not hours later. A down device costs the same timeout as a poll or a
//!   discovery, so the shorter retry adds no load.

use std::collections::{HashMap, VecDeque};

use lookout_coord::Work;
use lookout_core::DeviceId;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// `last_discovered` as last read from the store (or newer).
    last: Option<i64>,
    /// When it was last queued as a discovery, until the store shows one at or after it.
    sent: Option<i64>,
}

/// Discovery due times of the master's devices.
#[derive(Debug)]
pub struct Discoveries {
    interval: i64,
    poll_interval: i64,
    retry: i64,
    retry_new: i64,
    devices: HashMap<DeviceId, Entry>,
    /// When the discoveries of the last poll interval were handed out (oldest first).
    recent: VecDeque<i64>,
}

impl Discoveries {
    /// `interval_secs` between discoveries of a device, `poll_interval_secs` between its
    /// polls, `retry_secs` before a discovery that left no trace in the store is tried again
    /// (`retry_new_secs` for a device that was never discovered; at most `retry_secs`).
    pub fn new(
        interval_secs: u64,
        poll_interval_secs: u64,
        retry_secs: u64,
        retry_new_secs: u64,
    ) -> Discoveries {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX).max(1);
        Discoveries {
            interval: secs(interval_secs),
            poll_interval: secs(poll_interval_secs),
            retry: secs(retry_secs),
            retry_new: secs(retry_new_secs).min(secs(retry_secs)),
            devices: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// An inventory read: `(device, last_discovered)` of every device to schedule. Devices
    /// not in it are forgotten; a stored `last_discovered` only ever moves a device's time
    /// forward (a read that raced a discovery's commit does not make it due again).
    pub fn sync(&mut self, devices: &[(DeviceId, Option<i64>)]) {
        let mut next = HashMap::with_capacity(devices.len());
        for (id, stored) in devices {
            let mut e = self.devices.get(id).copied().unwrap_or_default();
            e.last = e.last.max(*stored);
            if let (Some(sent), Some(last)) = (e.sent, e.last) {
                if last >= sent {
                    e.sent = None;
                }
            }
            next.insert(*id, e);
        }
        self.devices = next;
    }

    /// Re-discoveries handed out per poll interval at most: twice the steady rate, at least 1.
    pub fn budget(&self) -> usize {
        let n = i64::try_from(self.devices.len()).unwrap_or(i64::MAX);
        let per = (2 * n * self.poll_interval + self.interval - 1) / self.interval;
        usize::try_from(per).unwrap_or(usize::MAX).max(1)
    }

    fn prune(&mut self, now: i64) {
        while self
            .recent
            .front()
            .is_some_and(|t| *t <= now - self.poll_interval)
        {
            self.recent.pop_front();
        }
    }

    /// Seconds a discovery handed out may leave no trace before it is handed out again.
    fn retry_of(&self, e: &Entry) -> i64 {
        if e.last.is_none() {
            self.retry_new
        } else {
            self.retry
        }
    }

    /// When device `id` is next due for discovery (`None`: unknown, or one is pending).
    pub fn due_at(&self, id: DeviceId) -> Option<i64> {
        let e = self.devices.get(&id)?;
        if let Some(sent) = e.sent {
            // Pending: due again only if it leaves no trace for the retry time.
            return Some(sent.saturating_add(self.retry_of(e)));
        }
        Some(e.last.map_or(i64::MIN, |l| l + self.interval))
    }

    /// What to queue device `id` for at `now` (it does not record anything: call
    /// [`Discoveries::started`] once the queue took it).
    pub fn work_for(&mut self, id: DeviceId, now: i64) -> Work {
        self.prune(now);
        let Some(e) = self.devices.get(&id) else {
            return Work::Poll;
        };
        if e.sent
            .is_some_and(|sent| now < sent.saturating_add(self.retry_of(e)))
        {
            return Work::Poll;
        }
        match e.last {
            None => Work::Discover,
            Some(last) if now >= last + self.interval && self.recent.len() < self.budget() => {
                Work::Discover
            }
            Some(_) => Work::Poll,
        }
    }

    /// Device `id` was queued as a discovery at `now`.
    pub fn started(&mut self, id: DeviceId, now: i64) {
        if let Some(e) = self.devices.get_mut(&id) {
            e.sent = Some(now);
            self.recent.push_back(now);
        }
    }

    /// Devices whose discovery is due at `now` but not handed out yet (waiting for their
    /// next poll or for room in the budget).
    pub fn waiting(&self, now: i64) -> usize {
        self.devices
            .keys()
            .filter(|id| self.due_at(**id).is_some_and(|t| t <= now))
            .count()
    }

    /// Seconds until the next discovery is due (0 when one is due now), not counting the
    /// ones handed out and not yet in the store; `None` when there is none.
    pub fn next_due_in(&self, now: i64) -> Option<i64> {
        self.devices
            .iter()
            .filter(|(_, e)| e.sent.is_none())
            .filter_map(|(id, _)| self.due_at(*id))
            .min()
            .map(|t| t.saturating_sub(now).max(0))
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H6: u64 = 6 * 3600;

    #[test]
    fn never_discovered_devices_are_discovered_at_once_then_every_interval() {
        let mut d = Discoveries::new(H6, 300, 600, 600);
        d.sync(&[(1, None), (2, Some(1_000))]);
        assert_eq!(d.work_for(1, 1_000), Work::Discover);
        d.started(1, 1_000);
        // Pending: not handed out again while the result is not in the store.
        assert_eq!(d.work_for(1, 1_300), Work::Poll);
        // Device 2 was discovered at 1,000 (by a former master): not again before 6 h.
        assert_eq!(d.work_for(2, 1_300), Work::Poll);
        assert_eq!(d.work_for(2, 1_000 + 21_599), Work::Poll);
        assert_eq!(d.work_for(2, 1_000 + 21_600), Work::Discover);
        // The store shows device 1's discovery: due 6 h after it.
        d.sync(&[(1, Some(1_010)), (2, Some(1_000))]);
        assert_eq!(d.due_at(1), Some(1_010 + 21_600));
        assert_eq!(d.work_for(1, 1_010 + 21_599), Work::Poll);
        assert_eq!(d.work_for(1, 1_010 + 21_600), Work::Discover);
    }

    #[test]
    fn a_discovery_that_left_no_trace_is_retried_after_the_retry_time() {
        let mut d = Discoveries::new(H6, 60, 5_400, 300);
        d.sync(&[(7, None), (8, Some(0))]);
        assert_eq!(d.work_for(7, 0), Work::Discover);
        d.started(7, 0);
        // The device was down: the store still has no last_discovered. Never discovered,
        // so it is tried again after the short retry, not after 1.5 h.
        d.sync(&[(7, None), (8, Some(0))]);
        assert_eq!(d.work_for(7, 299), Work::Poll);
        assert_eq!(d.waiting(299), 0);
        assert_eq!(d.work_for(7, 300), Work::Discover);
        assert_eq!(d.waiting(300), 1);
        // A stale read (older than what we know) never moves a device back.
        d.started(7, 300);
        d.sync(&[(7, Some(310)), (8, Some(0))]);
        d.sync(&[(7, Some(5)), (8, Some(0))]);
        assert_eq!(d.due_at(7), Some(310 + 21_600));
        // A re-discovery (the device was discovered before) that left no trace waits for
        // the long retry: the device keeps its inventory meanwhile.
        assert_eq!(d.work_for(8, 21_600), Work::Discover);
        d.started(8, 21_600);
        assert_eq!(d.work_for(8, 21_600 + 300), Work::Poll);
        assert_eq!(d.work_for(8, 21_600 + 5_399), Work::Poll);
        assert_eq!(d.due_at(8), Some(21_600 + 5_400));
        assert_eq!(d.work_for(8, 21_600 + 5_400), Work::Discover);
    }

    #[test]
    fn re_discoveries_are_spread_by_the_budget() {
        // 10,000 devices discovered in the same 5 minutes, 6 h ago: at most twice the
        // steady rate (10,000 × 300 / 21,600 ≈ 139) per 5-minute window, not all at once.
        let mut d = Discoveries::new(H6, 300, 100_000, 600);
        let devices: Vec<(DeviceId, Option<i64>)> =
            (0..10_000).map(|i| (i, Some(i % 300))).collect();
        d.sync(&devices);
        assert_eq!(d.budget(), 278);
        let start = 21_600 + 300;
        let mut per_window = Vec::new();
        // Every device's poll comes once per 300 s window, spread over it (device i at
        // second i % 300 of each window).
        for w in 0..20 {
            let mut n = 0;
            for sec in 0..300 {
                let now = start + w * 300 + sec;
                for i in (sec..10_000).step_by(300) {
                    if d.work_for(i, now) == Work::Discover {
                        d.started(i, now);
                        n += 1;
                    }
                }
            }
            per_window.push(n);
        }
        assert!(per_window.iter().all(|n| *n <= 278), "{per_window:?}");
        // The budget is used (all of them get re-discovered within ~36 windows, 3 h).
        let sum: usize = per_window.iter().sum();
        assert!(sum > 19 * 278, "{per_window:?}");
        assert_eq!(d.waiting(start + 20 * 300), 10_000 - sum);
    }

    #[test]
    fn never_discovered_devices_are_not_held_back_by_the_budget() {
        let mut d = Discoveries::new(H6, 60, 3_600, 300);
        let devices: Vec<(DeviceId, Option<i64>)> = (0..500).map(|i| (i, None)).collect();
        d.sync(&devices);
        assert_eq!(d.budget(), 3);
        for i in 0..500 {
            assert_eq!(d.work_for(i, 10), Work::Discover);
            d.started(i, 10);
        }
        assert_eq!(d.next_due_in(10), None, "all of them in progress");
        // Removed devices are forgotten.
        d.sync(&[(1, Some(20))]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.work_for(2, 99_999), Work::Poll);
        assert_eq!(d.next_due_in(20), Some(21_600));
    }
}
