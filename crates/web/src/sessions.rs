//! Server-side sessions: the record behind a session cookie, kept in the store (shared by
//! every instance, as the database is), keyed by the SHA-256 of the session id so that a
//! copy of the table gives no usable session. A request's session is valid when its sealed
//! cookie opens, its record exists, belongs to the cookie's user, and neither the absolute
//! lifetime nor the idle time-out has passed. Logout removes the record; a password change
//! or the user's removal removes all of the user's records, on every instance at once.

use lookout_store::{SessionRecord, StoreError, User};

use crate::access::Access;
use crate::session::{CookieSealer, SessionData};
use crate::Shared;

/// `last_seen` is written at most this often per session (a write per request would make
/// every page view a database write).
const TOUCH_EVERY_SECS: i64 = 60;

fn key(sid: &str) -> String {
    crate::auth::token_sha256(sid)
}

/// Starts a session for `user` (a fresh id: the id rotates at every login).
pub(crate) async fn start(
    ctx: &Shared,
    user: &User,
    address: &str,
    user_agent: &str,
    now: i64,
) -> Result<SessionData, StoreError> {
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
    ctx.state
        .store
        .add_session(&key(&data.sid), &record)
        .await?;
    Ok(data)
}

/// The user and access of a session cookie's record, `None` when the session has ended.
pub(crate) async fn resume(
    ctx: &Shared,
    data: &SessionData,
    now: i64,
) -> Result<Option<(User, Access)>, StoreError> {
    let store = &ctx.state.store;
    let hash = key(&data.sid);
    let Some(record) = store.session(&hash).await? else {
        return Ok(None);
    };
    let idle = ctx.state.security.session_idle_secs;
    if record.user_id != data.uid || now >= record.expires || now - record.last_seen > idle {
        store.remove_session(&hash).await?;
        return Ok(None);
    }
    if now - record.last_seen >= TOUCH_EVERY_SECS {
        store.touch_session(&hash, now).await?;
    }
    let Some(user) = store.user(record.user_id).await? else {
        return Ok(None);
    };
    let access = Access::of(store, &user).await?;
    Ok(Some((user, access)))
}

/// Ends one session (logout).
pub(crate) async fn end(ctx: &Shared, data: &SessionData) -> Result<bool, StoreError> {
    ctx.state.store.remove_session(&key(&data.sid)).await
}

/// Ends every session of a user (password change, removal, "log out everywhere").
pub(crate) async fn end_all(ctx: &Shared, user_id: i64) -> Result<u64, StoreError> {
    ctx.state.store.remove_user_sessions(user_id).await
}
