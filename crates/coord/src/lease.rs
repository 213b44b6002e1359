//! Pure lease decisions: who holds a lease, when it runs out, which fencing token a new
//! holder gets, and how a writer rejects a stale token. No clock and no I/O: every
//! function takes `now` (milliseconds on the backend's clock) so the rules are unit-tested
//! without sleeping.
//!
//! The memory backend runs these functions directly; the Redis backend's Lua scripts
//! (`redis.rs`) implement the same rules on Redis's own clock, and the contract tests
//! check that both agree.

/// Milliseconds since the UNIX epoch on the clock of the backend that decides.
pub type Millis = u64;

/// Fencing token of a lease or claim. Larger means newer.
pub type Token = u64;

/// Tokens are floored at the backend's time in this many units per millisecond
/// (microseconds), so the floor outruns the counter unless more than a million tokens
/// are handed out per second. Today's tokens are ~1.8e15, below 2^53: exact in Lua's
/// doubles and in JSON numbers.
pub const TOKEN_UNITS_PER_MS: u64 = 1_000;

/// The next fencing token after `last`, at backend time `now` (milliseconds).
///
/// Why not just `last + 1`: Redis Sentinel replicates asynchronously, so increments
/// acknowledged by a primary that dies right after can be lost, and the promoted replica
/// would hand the same tokens out a second time. Flooring the token at the current time
/// (in microsecond units, so that a busy counter does not run ahead of the floor) keeps
/// tokens increasing across such a loss as long as the servers' clocks are closer to
/// each other than a fail-over takes (seconds), which NTP gives.
pub fn next_token(last: Token, now: Millis) -> Token {
    last.saturating_add(1)
        .max(now.saturating_mul(TOKEN_UNITS_PER_MS))
}

/// Who holds a lease, with which token, until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub token: Token,
    pub expires: Millis,
}

impl Holder {
    /// A lease is live strictly before its expiry instant.
    pub fn is_live(&self, now: Millis) -> bool {
        now < self.expires
    }

    /// Whether `owner` holding `token` may still act at `now`.
    pub fn is_held_by(&self, owner: &str, token: Token, now: Millis) -> bool {
        self.owner == owner && self.token == token && self.is_live(now)
    }
}

/// Why a renewal (or an acknowledgement) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody holds it any more (released, expired, or lost in a fail-over).
    Vacant,
    /// The lease ran out before the renewal came.
    Expired,
    /// Another owner or a newer token of the same owner holds it.
    Superseded { owner: String, token: Token },
}

/// One named lease (the master lease, or one device's claim) and its token counter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseSlot {
    holder: Option<Holder>,
    last_token: Token,
}

impl LeaseSlot {
    pub fn new() -> Self {
        Self::default()
    }

    /// The live holder at `now`, if any.
    pub fn holder(&self, now: Millis) -> Option<&Holder> {
        self.holder.as_ref().filter(|h| h.is_live(now))
    }

    /// The last token handed out (0 before the first acquisition).
    pub fn last_token(&self) -> Token {
        self.last_token
    }

    /// Take the lease if it is free or expired, or if `owner` itself holds it (a restarted
    /// node with a stable id takes over its own lease; the new token fences off its old
    /// incarnation). Every successful acquisition issues a new, larger token.
    pub fn acquire(&mut self, owner: &str, now: Millis, ttl_ms: u64) -> Option<Holder> {
        if let Some(h) = self.holder(now) {
            if h.owner != owner {
                return None;
            }
        }
        let token = next_token(self.last_token, now);
        self.last_token = token;
        let holder = Holder {
            owner: owner.to_owned(),
            token,
            expires: now.saturating_add(ttl_ms),
        };
        self.holder = Some(holder.clone());
        Some(holder)
    }

    /// Check that `owner` with `token` still holds the lease at `now`.
    pub fn check(&self, owner: &str, token: Token, now: Millis) -> Result<&Holder, Refusal> {
        match &self.holder {
            None => Err(Refusal::Vacant),
            Some(h) if h.owner != owner || h.token != token => Err(Refusal::Superseded {
                owner: h.owner.clone(),
                token: h.token,
            }),
            Some(h) if !h.is_live(now) => Err(Refusal::Expired),
            Some(h) => Ok(h),
        }
    }

    /// Extend a live lease held by `owner` with `token`; the token stays the same. An
    /// expired lease is not revived: its holder must acquire again and get a new token,
    /// because in between someone may have acted on the expiry.
    pub fn renew(
        &mut self,
        owner: &str,
        token: Token,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<Holder, Refusal> {
        self.check(owner, token, now)?;
        let h = self.holder.as_mut().ok_or(Refusal::Vacant)?;
        h.expires = now.saturating_add(ttl_ms);
        Ok(h.clone())
    }

    /// Give the lease up; only the holder with the current token may. Returns whether it
    /// was released. An expired lease of the same owner and token is cleared too.
    pub fn release(&mut self, owner: &str, token: Token) -> bool {
        match &self.holder {
            Some(h) if h.owner == owner && h.token == token => {
                self.holder = None;
                true
            }
            _ => false,
        }
    }

    /// Drop the holder regardless of who it is (used when an expired claim is re-queued).
    pub fn clear(&mut self) -> Option<Holder> {
        self.holder.take()
    }
}

/// The check a writer makes where results land (the store, a time-series writer): accept a
/// write only if its token is not older than the newest token already seen for the same
/// resource. This is what makes a lease safe when Redis loses it in a fail-over: a stale
/// holder's token is smaller than its successor's, so its late writes are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FencingGate {
    highest: Token,
}

impl FencingGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Admit a write carrying `token`; an equal token is the same holder writing again.
    pub fn admit(&mut self, token: Token) -> bool {
        if token < self.highest {
            return false;
        }
        self.highest = token;
        true
    }

    pub fn highest(&self) -> Token {
        self.highest
    }
}

/// The holder's own view of its lease, on its local monotonic clock (milliseconds from
/// any origin). The backend's expiry is on another clock, so a holder counts its lease
/// from the moment it *sent* the request: the backend cannot have started the lease
/// earlier, so the local deadline is never later than the real one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalLease {
    sent_at: Millis,
    ttl_ms: u64,
}

impl LocalLease {
    /// A lease granted for `ttl_ms` by a request sent at local time `sent_at`.
    pub fn new(sent_at: Millis, ttl_ms: u64) -> Self {
        Self { sent_at, ttl_ms }
    }

    /// Local instant after which the holder must stop acting.
    pub fn deadline(&self) -> Millis {
        self.sent_at.saturating_add(self.ttl_ms)
    }

    /// Whether the holder may still act at local time `now`.
    pub fn is_valid(&self, now: Millis) -> bool {
        now < self.deadline()
    }

    /// Renew once a third of the TTL has passed, so two renewals can fail before the
    /// lease is lost.
    pub fn renew_due(&self, now: Millis) -> bool {
        now >= self.sent_at.saturating_add(self.ttl_ms / 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_token_increases_and_floors_at_time() {
        assert_eq!(next_token(0, 0), 1);
        assert_eq!(next_token(5_000, 3), 5_001);
        assert_eq!(next_token(5, 1_000), 1_000_000);
        // A counter that went backwards (lost in a fail-over) still yields a newer token.
        let mut before_loss = 0;
        for _ in 0..500 {
            // 500 tokens within one millisecond: the counter runs ahead of the floor...
            before_loss = next_token(before_loss, 10_000);
        }
        assert_eq!(before_loss, 10_000_499);
        // ...but a fail-over takes seconds, so the floor after it is far above.
        let after_loss = next_token(0, 12_500);
        assert!(after_loss > before_loss);
        assert_eq!(next_token(u64::MAX, 0), u64::MAX);
        assert_eq!(next_token(0, u64::MAX), u64::MAX);
    }

    #[test]
    fn only_one_holder_at_a_time() {
        let mut s = LeaseSlot::new();
        let a = s.acquire("a", 100, 1_000).map(|h| h.token);
        assert!(a.is_some());
        assert!(s.acquire("b", 500, 1_000).is_none());
        assert_eq!(s.holder(500).map(|h| h.owner.as_str()), Some("a"));
        // At exactly the expiry instant the lease is gone.
        assert!(s.holder(1_100).is_none());
        let b = s.acquire("b", 1_100, 1_000).map(|h| h.token);
        assert!(b > a);
    }

    #[test]
    fn reacquire_by_same_owner_gets_new_token() {
        let mut s = LeaseSlot::new();
        let t1 = s.acquire("a", 0, 1_000).map(|h| h.token);
        let t2 = s.acquire("a", 10, 1_000).map(|h| h.token);
        assert!(t2 > t1);
        // The old incarnation's token is now refused.
        let old = t1.unwrap_or_default();
        assert!(matches!(
            s.renew("a", old, 20, 1_000),
            Err(Refusal::Superseded { .. })
        ));
    }

    #[test]
    fn renew_extends_only_live_lease_of_holder() {
        let mut s = LeaseSlot::new();
        let h = s.acquire("a", 0, 1_000).unwrap_or_else(|| unreachable!());
        let r = s.renew("a", h.token, 900, 1_000);
        assert_eq!(r.as_ref().map(|h| h.expires), Ok(1_900));
        assert_eq!(r.map(|r| r.token), Ok(h.token));
        assert_eq!(
            s.renew("b", h.token, 950, 1_000).map(|_| ()),
            Err(Refusal::Superseded {
                owner: "a".into(),
                token: h.token
            })
        );
        assert_eq!(
            s.renew("a", h.token, 1_900, 1_000).map(|_| ()),
            Err(Refusal::Expired)
        );
        // Once expired and taken by b, a's renewal names the new holder.
        let b = s
            .acquire("b", 2_000, 1_000)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(
            s.renew("a", h.token, 2_001, 1_000).map(|_| ()),
            Err(Refusal::Superseded {
                owner: "b".into(),
                token: b.token
            })
        );
    }

    #[test]
    fn release_needs_current_token() {
        let mut s = LeaseSlot::new();
        let h = s.acquire("a", 0, 1_000).unwrap_or_else(|| unreachable!());
        assert!(!s.release("a", h.token + 1));
        assert!(!s.release("b", h.token));
        assert!(s.release("a", h.token));
        assert!(s.holder(1).is_none());
        assert_eq!(s.check("a", h.token, 1).map(|_| ()), Err(Refusal::Vacant));
        // The counter survives a release, so the next token is still larger.
        let h2 = s.acquire("b", 2, 1_000).unwrap_or_else(|| unreachable!());
        assert!(h2.token > h.token);
    }

    #[test]
    fn fencing_gate_refuses_older_tokens() {
        let mut g = FencingGate::new();
        assert!(g.admit(5));
        assert!(g.admit(5));
        assert!(g.admit(9));
        assert!(!g.admit(7));
        assert_eq!(g.highest(), 9);
    }

    #[test]
    fn local_lease_counts_from_send_time() {
        let l = LocalLease::new(1_000, 3_000);
        assert!(!l.renew_due(1_999));
        assert!(l.renew_due(2_000));
        assert!(l.is_valid(3_999));
        assert!(!l.is_valid(4_000));
        assert_eq!(l.deadline(), 4_000);
    }
}
