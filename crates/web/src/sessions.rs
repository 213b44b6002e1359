//! Server-side sessions: the record behind a session cookie, keyed by the SHA-256 of the
//! session id (a copy of the records gives no usable session). Where the coordination backend
//! is Redis (through Sentinel, as the dispatcher uses it) the records live there, with the
//! session's remaining time as their TTL, so a web instance and a Redis primary can each die
//! without logging anyone out; otherwise they live in the store, which every instance shares
//! too. A request's session is valid when its sealed cookie opens, its record exists, belongs
//! to the cookie's user, and neither the absolute lifetime nor the idle time-out has passed.
//! Logout removes the record; a password change or the user's removal removes all of the
//! user's records, on every instance at once.

use lookout_store::{SessionRecord, StoreError, User};

use crate::access::Access;
use crate::session::{CookieSealer, SessionData};
use crate::Shared;

/// `last_seen` is written at most this often per session (a write per request would make
/// every page view a database write).
const TOUCH_EVERY_SECS: i64 = 60;

/// Why a session operation failed: the store or Redis.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session records in redis: {0}")]
    Redis(#[from] lookout_coord::CoordError),
    #[error("unreadable session record: {0}")]
    Record(#[from] serde_json::Error),
}

fn key(sid: &str) -> String {
    crate::auth::token_sha256(sid)
}

fn in_redis(ctx: &Shared) -> bool {
    ctx.state.coord.backend_name() == "redis"
}

/// Seconds the record must live from `now`: until the idle limit or the absolute end.
fn ttl(ctx: &Shared, r: &SessionRecord, now: i64) -> std::time::Duration {
    let left = (r.expires - now)
        .min(ctx.state.security.session_idle_secs)
        .max(1);
    std::time::Duration::from_secs(u64::try_from(left).unwrap_or(1))
}

async fn put(ctx: &Shared, hash: &str, r: &SessionRecord, now: i64) -> Result<(), SessionError> {
    let lifetime = std::time::Duration::from_secs(
        u64::try_from(ctx.state.security.session_lifetime_secs).unwrap_or(1),
    );
    let json = serde_json::to_string(r)?;
    ctx.state
        .coord
        .session_put(hash, r.user_id, &json, ttl(ctx, r, now), lifetime)
        .await?;
    Ok(())
}

/// Starts a session for `user` (a fresh id: the id rotates at every login).
pub(crate) async fn start(
    ctx: &Shared,
    user: &User,
    address: &str,
    user_agent: &str,
    now: i64,
) -> Result<SessionData, SessionError> {
    let opts = &ctx.state.security;
    let data = CookieSealer::new_session(user.user_id, now, opts.session_lifetime_secs);
    let record = SessionRecord {
        user_id: user.user_id,
        created: now,
        last_seen: now,
        expires: data.exp,
        address: address.chars().take(64).collect(),
        user_agent: user_agent.chars().take(255).collect(),
    };
    let hash = key(&data.sid);
    if in_redis(ctx) {
        put(ctx, &hash, &record, now).await?;
    } else {
        ctx.state.store.add_session(&hash, &record).await?;
    }
    Ok(data)
}

async fn record(ctx: &Shared, hash: &str) -> Result<Option<SessionRecord>, SessionError> {
    if in_redis(ctx) {
        match ctx.state.coord.session_get(hash).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    } else {
        Ok(ctx.state.store.session(hash).await?)
    }
}

async fn remove(ctx: &Shared, hash: &str, user_id: i64) -> Result<bool, SessionError> {
    if in_redis(ctx) {
        Ok(ctx.state.coord.session_remove(hash, user_id).await?)
    } else {
        Ok(ctx.state.store.remove_session(hash).await?)
    }
}

/// The user and access of a session cookie's record, `None` when the session has ended.
pub(crate) async fn resume(
    ctx: &Shared,
    data: &SessionData,
    now: i64,
) -> Result<Option<(User, Access)>, SessionError> {
    let store = &ctx.state.store;
    let hash = key(&data.sid);
    let Some(mut record) = record(ctx, &hash).await? else {
        return Ok(None);
    };
    let idle = ctx.state.security.session_idle_secs;
    if record.user_id != data.uid || now >= record.expires || now - record.last_seen > idle {
        remove(ctx, &hash, record.user_id).await?;
        return Ok(None);
    }
    if now - record.last_seen >= TOUCH_EVERY_SECS {
        record.last_seen = now;
        if in_redis(ctx) {
            put(ctx, &hash, &record, now).await?;
        } else {
            store.touch_session(&hash, now).await?;
        }
    }
    let Some(user) = store.user(record.user_id).await? else {
        return Ok(None);
    };
    let access = Access::of(store, &user).await?;
    Ok(Some((user, access)))
}

/// Ends one session (logout).
pub(crate) async fn end(ctx: &Shared, data: &SessionData) -> Result<bool, SessionError> {
    remove(ctx, &key(&data.sid), data.uid).await
}

/// Ends every session of a user (password change, removal, "log out everywhere"), in both
/// places: records written before a switch to Redis must not outlive a password change.
pub(crate) async fn end_all(ctx: &Shared, user_id: i64) -> Result<u64, SessionError> {
    let mut n = ctx.state.store.remove_user_sessions(user_id).await?;
    if in_redis(ctx) {
        n += ctx.state.coord.session_remove_user(user_id).await?;
    }
    Ok(n)
}

/// The live sessions of a user, newest first (the users page).
pub(crate) async fn list(ctx: &Shared, user_id: i64) -> Result<Vec<SessionRecord>, SessionError> {
    let mut out = if in_redis(ctx) {
        ctx.state
            .coord
            .session_list(user_id)
            .await?
            .iter()
            .map(|j| serde_json::from_str(j))
            .collect::<Result<Vec<SessionRecord>, _>>()?
    } else {
        ctx.state.store.user_sessions(user_id).await?
    };
    out.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(out)
}
