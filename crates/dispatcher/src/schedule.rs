//! The pure scheduling decision: which device is due when. No clock, no I/O: time goes
//! in as unix seconds, so it is tested without sleeping. The dispatcher keeps one
//! `Schedule` and feeds it inventory changes instead of rescanning every device every
//! second (LibreNMS's dispatcher does the latter).

use std::collections::{BTreeSet, HashMap};

use lookout_core::DeviceId;

/// Devices ordered by when they are next due.
#[derive(Debug, Default)]
pub struct Schedule {
    interval: i64,
    /// (due time, device) pairs; the first is the next due.
    queue: BTreeSet<(i64, DeviceId)>,
    due_at: HashMap<DeviceId, i64>,
    /// Devices handed out and not yet completed.
    in_flight: HashMap<DeviceId, i64>,
}

impl Schedule {
    pub fn new(interval_secs: u64) -> Schedule {
        Schedule {
            interval: i64::try_from(interval_secs).unwrap_or(i64::MAX).max(1),
            ..Schedule::default()
        }
    }

    pub fn interval_secs(&self) -> i64 {
        self.interval
    }

    /// Adds a device, or keeps its place if known. `last_polled` spreads first polls: a
    /// device polled recently is due one interval after that poll, a new one right away.
    pub fn upsert(&mut self, id: DeviceId, last_polled: Option<i64>, now: i64) {
        if self.due_at.contains_key(&id) || self.in_flight.contains_key(&id) {
            return;
        }
        let due = match last_polled {
            Some(t) if t + self.interval > now => t + self.interval,
            _ => now,
        };
        self.insert(id, due);
    }

    /// [`Schedule::upsert`] for a whole inventory read. Devices never polled that are new
    /// to the schedule are spread evenly over one interval (the first due now), so a
    /// first start or a bulk import does not make them all due in the same second, and
    /// again every interval after (due times advance by whole intervals). A single new
    /// device is still due at once.
    pub fn upsert_all(&mut self, devices: &[(DeviceId, Option<i64>)], now: i64) {
        let fresh: Vec<DeviceId> = devices
            .iter()
            .filter(|(id, last)| {
                last.is_none() && !self.due_at.contains_key(id) && !self.in_flight.contains_key(id)
            })
            .map(|(id, _)| *id)
            .collect();
        let n = i64::try_from(fresh.len()).unwrap_or(i64::MAX).max(1);
        for (i, id) in fresh.iter().enumerate() {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            self.insert(*id, now + i * self.interval / n);
        }
        for (id, last) in devices {
            self.upsert(*id, *last, now);
        }
    }

    fn insert(&mut self, id: DeviceId, due: i64) {
        if let Some(old) = self.due_at.insert(id, due) {
            self.queue.remove(&(old, id));
        }
        self.queue.insert((due, id));
    }

    /// Forgets a device (removed from the inventory or disabled).
    pub fn remove(&mut self, id: DeviceId) {
        if let Some(due) = self.due_at.remove(&id) {
            self.queue.remove(&(due, id));
        }
        self.in_flight.remove(&id);
    }

    /// Keeps only these devices.
    pub fn retain(&mut self, keep: &BTreeSet<DeviceId>) {
        let gone: Vec<DeviceId> = self
            .due_at
            .keys()
            .chain(self.in_flight.keys())
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.remove(id);
        }
    }

    /// Takes the devices due at `now` (at most `limit`) and marks them in flight.
    /// Returns (device, how many seconds late).
    pub fn take_due(&mut self, now: i64, limit: usize) -> Vec<(DeviceId, i64)> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(&(due, id)) = self.queue.first() else {
                break;
            };
            if due > now {
                break;
            }
            self.queue.remove(&(due, id));
            self.due_at.remove(&id);
            self.in_flight.insert(id, due);
            out.push((id, now - due));
        }
        out
    }

    /// A poll finished: the device is next due one interval after it was due (not after
    /// it finished), so polls do not drift; if that is already past (the poll overran),
    /// it is due now.
    pub fn complete(&mut self, id: DeviceId, now: i64) {
        let Some(was_due) = self.in_flight.remove(&id) else {
            return;
        };
        let mut next = was_due + self.interval;
        if next <= now {
            next = now;
        }
        self.insert(id, next);
    }

    /// A device handed out could not be dispatched (its previous poll is still queued or
    /// running): try it again at `at` instead of one interval later.
    pub fn defer(&mut self, id: DeviceId, at: i64) {
        if self.in_flight.remove(&id).is_some() {
            self.insert(id, at);
        }
    }

    /// Seconds until the next device is due (0 when one is due now), None when empty.
    pub fn next_due_in(&self, now: i64) -> Option<i64> {
        self.queue.first().map(|&(due, _)| (due - now).max(0))
    }

    /// Devices due but not yet handed out at `now` (the "poller is behind" signal).
    pub fn overdue(&self, now: i64) -> usize {
        self.queue.range(..(now + 1, DeviceId::MIN)).count()
    }

    pub fn len(&self) -> usize {
        self.due_at.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_devices_are_due_now_and_then_every_interval() {
        let mut s = Schedule::new(300);
        s.upsert(1, None, 1000);
        s.upsert(2, Some(900), 1000);
        assert_eq!(s.take_due(1000, 10), vec![(1, 0)]);
        assert_eq!(s.next_due_in(1000), Some(200));
        s.complete(1, 1003);
        assert_eq!(s.take_due(1200, 10), vec![(2, 0)]);
        assert_eq!(s.take_due(1299, 10), vec![]);
        assert_eq!(s.take_due(1300, 10), vec![(1, 0)]);
    }

    #[test]
    fn never_polled_devices_are_spread_over_one_interval() {
        let mut s = Schedule::new(60);
        s.upsert(100, None, 0);
        let mut batch: Vec<(DeviceId, Option<i64>)> = (1001..=1600).map(|id| (id, None)).collect();
        batch.push((100, None));
        batch.push((700, Some(-30)));
        s.upsert_all(&batch, 1000);
        // 600 new ones over 60 s: 10 per second; 100 was already known (due at 0) and
        // 700 was polled more than an interval ago (due now): 12 at once.
        assert_eq!(s.take_due(1000, usize::MAX).len(), 12);
        for sec in 1001..1060 {
            assert_eq!(s.take_due(sec, usize::MAX).len(), 10, "second {sec}");
        }
        assert_eq!(s.take_due(1060, usize::MAX).len(), 0);
        // One device added later is due at once.
        s.upsert_all(&[(900, None)], 2000);
        assert_eq!(s.take_due(2000, usize::MAX), vec![(900, 0)]);
    }

    #[test]
    fn in_flight_device_is_not_handed_out_twice() {
        let mut s = Schedule::new(60);
        s.upsert(7, None, 0);
        assert_eq!(s.take_due(0, 10).len(), 1);
        s.upsert(7, None, 100);
        assert_eq!(s.take_due(200, 10), vec![]);
        s.complete(7, 200);
        // overran: due now, not in the past
        assert_eq!(s.take_due(200, 10), vec![(7, 0)]);
    }

    #[test]
    fn limit_and_lateness() {
        let mut s = Schedule::new(60);
        for id in 0..5 {
            s.upsert(id, None, 10);
        }
        assert_eq!(s.overdue(15), 5);
        let got = s.take_due(15, 3);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|&(_, late)| late == 5));
        assert_eq!(s.overdue(15), 2);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn deferred_device_comes_back_at_the_given_time() {
        let mut s = Schedule::new(60);
        s.upsert(3, None, 0);
        assert_eq!(s.take_due(0, 10), vec![(3, 0)]);
        s.defer(3, 15);
        assert_eq!(s.take_due(14, 10), vec![]);
        assert_eq!(s.take_due(15, 10), vec![(3, 0)]);
        // Unknown or not in flight: nothing happens.
        s.defer(9, 20);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn removed_devices_vanish() {
        let mut s = Schedule::new(60);
        s.upsert(1, None, 0);
        s.upsert(2, None, 0);
        s.retain(&BTreeSet::from([2]));
        assert_eq!(s.take_due(0, 10), vec![(2, 0)]);
        s.remove(2);
        s.complete(2, 1);
        assert!(s.is_empty());
    }
}
