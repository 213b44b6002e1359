//! Pure per-poller-group work queues: enqueue (idempotent per device), claim under a lease
//! with a fencing token, renew, acknowledge, and re-queue claims whose lease ran out.
//! Time is passed in (milliseconds on the deciding backend's clock); no I/O.
//!
//! This is the memory backend's state, and the specification the Redis backend's Lua
//! scripts follow: a device is in at most one place at a time (one group's queue, or
//! claimed by one node), so it is never handed to two workers at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use lookout_core::DeviceId;

use serde::{Deserialize, Serialize};

use crate::lease::{next_token, Holder, Millis, Refusal, Token};
use crate::{to_timestamp, QueueDepth};

/// What a worker is to do with a queued device. It travels with the queue item and the
/// claim (and a re-queued expired claim keeps it), so the master decides it once, when it
/// schedules the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Work {
    /// A regular poll.
    #[default]
    Poll,
    /// A full poll plus the discovery-only work (the master's 6-hourly discovery).
    Discover,
}

impl Work {
    /// `poll` or `discover` (also the Redis encoding).
    pub fn as_str(self) -> &'static str {
        match self {
            Work::Poll => "poll",
            Work::Discover => "discover",
        }
    }

    /// The inverse of [`Work::as_str`]; anything else (a missing field: an item queued by
    /// an older version) is a poll.
    pub fn parse(s: &str) -> Work {
        match s {
            "discover" => Work::Discover,
            _ => Work::Poll,
        }
    }
}

/// A device handed to a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    pub device_id: DeviceId,
    pub group: i32,
    pub token: Token,
    pub expires: Millis,
    /// When the device was due in its queue (0 when not known, e.g. on renewal): the
    /// worker measures its poll lag from it.
    pub due: Millis,
    pub work: Work,
}

#[derive(Clone, Debug)]
struct Claimed {
    group: i32,
    holder: Holder,
    work: Work,
}

/// All queues and claims of one coordination domain.
#[derive(Clone, Debug, Default)]
pub struct WorkQueues {
    /// Per group: (due, device) ordered, so the most overdue device is claimed first.
    queued: BTreeMap<i32, BTreeSet<(Millis, DeviceId)>>,
    /// Where each queued device sits and what is to be done: (group, due, work).
    index: HashMap<DeviceId, (i32, Millis, Work)>,
    claims: HashMap<DeviceId, Claimed>,
    /// Acknowledged claims per group since start.
    done: BTreeMap<i32, u64>,
    last_token: Token,
}

impl WorkQueues {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue `device_id` in `group`, due at `due`, for `work`. Returns false (and changes
    /// nothing) if the device is already queued anywhere or claimed, whatever the work.
    pub fn enqueue(&mut self, group: i32, device_id: DeviceId, due: Millis, work: Work) -> bool {
        if self.index.contains_key(&device_id) || self.claims.contains_key(&device_id) {
            return false;
        }
        self.queued
            .entry(group)
            .or_default()
            .insert((due, device_id));
        self.index.insert(device_id, (group, due, work));
        true
    }

    /// Pop the most overdue device (due at or before `now`) among `groups` and lock it
    /// for `owner` until `now + ttl_ms` under a new fencing token.
    pub fn claim(
        &mut self,
        groups: &[i32],
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Option<Granted> {
        let (due, device_id, group) = groups
            .iter()
            .filter_map(|g| {
                let first = self.queued.get(g)?.first()?;
                (first.0 <= now).then_some((first.0, first.1, *g))
            })
            .min()?;
        if let Some(q) = self.queued.get_mut(&group) {
            q.remove(&(due, device_id));
        }
        let work = self
            .index
            .remove(&device_id)
            .map_or(Work::Poll, |(_, _, w)| w);
        let token = next_token(self.last_token, now);
        self.last_token = token;
        let holder = Holder {
            owner: owner.to_owned(),
            token,
            expires: now.saturating_add(ttl_ms),
        };
        self.claims.insert(
            device_id,
            Claimed {
                group,
                holder,
                work,
            },
        );
        Some(Granted {
            device_id,
            group,
            token,
            expires: now.saturating_add(ttl_ms),
            due,
            work,
        })
    }

    fn check(
        &self,
        device_id: DeviceId,
        owner: &str,
        token: Token,
        now: Millis,
    ) -> Result<&Claimed, Refusal> {
        let c = self.claims.get(&device_id).ok_or(Refusal::Vacant)?;
        let h = &c.holder;
        if h.owner != owner || h.token != token {
            return Err(Refusal::Superseded {
                owner: h.owner.clone(),
                token: h.token,
            });
        }
        if !h.is_live(now) {
            return Err(Refusal::Expired);
        }
        Ok(c)
    }

    /// Extend a live claim held by `owner` with `token`.
    pub fn renew(
        &mut self,
        device_id: DeviceId,
        owner: &str,
        token: Token,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<Granted, Refusal> {
        self.check(device_id, owner, token, now)?;
        let c = self.claims.get_mut(&device_id).ok_or(Refusal::Vacant)?;
        c.holder.expires = now.saturating_add(ttl_ms);
        Ok(Granted {
            device_id,
            group: c.group,
            token,
            expires: c.holder.expires,
            due: 0,
            work: c.work,
        })
    }

    /// Finish a claim. Only the live holder with the current token may: a claim whose
    /// lease ran out is left for `requeue_expired`, and its result must be discarded.
    pub fn ack(
        &mut self,
        device_id: DeviceId,
        owner: &str,
        token: Token,
        now: Millis,
    ) -> Result<(), Refusal> {
        let group = self.check(device_id, owner, token, now)?.group;
        self.claims.remove(&device_id);
        *self.done.entry(group).or_default() += 1;
        Ok(())
    }

    /// Put every claim whose lease ran out at `now` back at the head of its group's queue
    /// (due when it expired), with the work it was claimed for. Returns the re-queued
    /// devices.
    pub fn requeue_expired(&mut self, now: Millis) -> Vec<DeviceId> {
        let expired: Vec<DeviceId> = self
            .claims
            .iter()
            .filter(|(_, c)| !c.holder.is_live(now))
            .map(|(d, _)| *d)
            .collect();
        for d in &expired {
            if let Some(c) = self.claims.remove(d) {
                let due = c.holder.expires;
                self.queued.entry(c.group).or_default().insert((due, *d));
                self.index.insert(*d, (c.group, due, c.work));
            }
        }
        expired
    }

    /// Depth of every group that has ever had work, at `now`. With `late_ms`, `late`
    /// counts the queued devices due at least that long ago (0 without).
    pub fn depths(&self, now: Millis, late_ms: Option<u64>) -> Vec<QueueDepth> {
        let mut out: BTreeMap<i32, QueueDepth> = BTreeMap::new();
        let blank = |group| QueueDepth {
            group,
            ..QueueDepth::default()
        };
        for (g, q) in &self.queued {
            let d = out.entry(*g).or_insert_with(|| blank(*g));
            d.queued = q.len() as u64;
            d.due = q.iter().take_while(|(due, _)| *due <= now).count() as u64;
            d.oldest_due = q.first().map(|(due, _)| to_timestamp(*due));
            if let Some(late) = late_ms {
                let before = now.saturating_sub(late);
                d.late = q.iter().take_while(|(due, _)| *due <= before).count() as u64;
            }
        }
        for c in self.claims.values() {
            out.entry(c.group).or_insert_with(|| blank(c.group)).claimed += 1;
        }
        for (g, n) in &self.done {
            out.entry(*g).or_insert_with(|| blank(*g)).done = *n;
        }
        out.into_values().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn enqueue_is_idempotent_across_queue_and_claim() {
        let mut q = WorkQueues::new();
        assert!(q.enqueue(0, 1, 10, Work::Poll));
        assert!(!q.enqueue(0, 1, 5, Work::Poll));
        assert!(
            !q.enqueue(2, 1, 5, Work::Poll),
            "a device sits in one group only"
        );
        let c = q.claim(&[0], "n1", 10, 100).unwrap();
        assert!(
            !q.enqueue(0, 1, 20, Work::Poll),
            "claimed devices are not queued again"
        );
        q.ack(1, "n1", c.token, 50).unwrap();
        assert!(q.enqueue(0, 1, 400, Work::Poll));
    }

    #[test]
    fn claim_takes_most_overdue_due_device_of_served_groups() {
        let mut q = WorkQueues::new();
        q.enqueue(0, 1, 300, Work::Poll);
        q.enqueue(1, 2, 100, Work::Poll);
        q.enqueue(2, 3, 50, Work::Poll);
        q.enqueue(0, 4, 1_000, Work::Poll);
        assert_eq!(q.claim(&[0, 1], "n", 200, 10).map(|c| c.device_id), Some(2));
        assert_eq!(q.claim(&[0, 1], "n", 200, 10), None, "device 1 not due yet");
        assert_eq!(
            q.claim(&[0, 1], "n", 300, 10)
                .map(|c| (c.device_id, c.group)),
            Some((1, 0))
        );
        assert_eq!(q.claim(&[1], "n", 5_000, 10), None);
        assert_eq!(q.claim(&[2], "n", 5_000, 10).map(|c| c.device_id), Some(3));
    }

    #[test]
    fn stale_holder_cannot_ack_or_renew() {
        let mut q = WorkQueues::new();
        q.enqueue(0, 7, 0, Work::Poll);
        let a = q.claim(&[0], "a", 0, 100).unwrap();
        assert_eq!(
            q.renew(7, "a", a.token, 50, 100).map(|g| g.expires),
            Ok(150)
        );
        assert_eq!(q.ack(7, "a", a.token, 150), Err(Refusal::Expired));
        assert_eq!(q.requeue_expired(149), Vec::<DeviceId>::new());
        assert_eq!(q.requeue_expired(150), vec![7]);
        let b = q.claim(&[0], "b", 160, 100).unwrap();
        assert!(b.token > a.token);
        assert!(matches!(
            q.ack(7, "a", a.token, 170),
            Err(Refusal::Superseded { .. })
        ));
        assert!(matches!(
            q.renew(7, "a", a.token, 170, 100),
            Err(Refusal::Superseded { .. })
        ));
        assert_eq!(q.ack(7, "b", b.token, 170), Ok(()));
        assert_eq!(q.ack(7, "b", b.token, 171), Err(Refusal::Vacant));
    }

    #[test]
    fn depths_count_queued_due_claimed_done() {
        let mut q = WorkQueues::new();
        q.enqueue(0, 1, 0, Work::Poll);
        q.enqueue(0, 2, 0, Work::Poll);
        q.enqueue(0, 3, 500, Work::Poll);
        q.enqueue(3, 4, 0, Work::Poll);
        let c = q.claim(&[0], "n", 10, 100).unwrap();
        q.ack(c.device_id, "n", c.token, 20).unwrap();
        q.claim(&[0], "n", 10, 100).unwrap();
        let d = q.depths(100, Some(90));
        assert_eq!(
            d,
            vec![
                QueueDepth {
                    group: 0,
                    queued: 1,
                    due: 0,
                    claimed: 1,
                    done: 1,
                    oldest_due: Some(to_timestamp(500)),
                    late: 0,
                },
                QueueDepth {
                    group: 3,
                    queued: 1,
                    due: 1,
                    claimed: 0,
                    done: 0,
                    oldest_due: Some(to_timestamp(0)),
                    late: 1,
                },
            ]
        );
        assert_eq!(
            q.depths(100, Some(100))[1].late,
            1,
            "due exactly 100 ms ago"
        );
        assert_eq!(
            q.depths(100, Some(90))[0].late,
            0,
            "group 0's head is not due"
        );
        assert_eq!(q.depths(100, None)[1].late, 0);
    }

    #[test]
    fn work_kind_travels_with_queue_claim_and_requeue() {
        let mut q = WorkQueues::new();
        assert!(q.enqueue(0, 1, 0, Work::Discover));
        assert!(q.enqueue(0, 2, 5, Work::Poll));
        assert!(
            !q.enqueue(0, 1, 0, Work::Poll),
            "one place per device, whatever the work"
        );
        let a = q.claim(&[0], "a", 10, 100).unwrap();
        assert_eq!((a.device_id, a.work), (1, Work::Discover));
        assert!(!q.enqueue(0, 1, 20, Work::Discover), "claimed: not queued");
        assert_eq!(
            q.renew(1, "a", a.token, 20, 100).unwrap().work,
            Work::Discover
        );
        // The claim runs out: it comes back as the same work.
        assert_eq!(q.requeue_expired(500), vec![1]);
        let b = q.claim(&[0], "b", 500, 100).unwrap();
        assert_eq!((b.device_id, b.work), (2, Work::Poll));
        let c = q.claim(&[0], "c", 500, 100).unwrap();
        assert_eq!((c.device_id, c.work), (1, Work::Discover));
        assert_eq!(Work::parse(Work::Discover.as_str()), Work::Discover);
        assert_eq!(Work::parse(""), Work::Poll);
    }
}
