//! Public API of access control and login state (LibreNMS names where it has the table):
//! users and their level, `devices_perms` (devices a normal user may see), API tokens as
//! listed and revoked, server-side session records (`user_sessions`, keyed by the SHA-256 of
//! the session id), `authlog` (every login attempt, from which the login throttle counts) and
//! the `APP_KEY` check value. The store decides nothing about roles: that is the web crate's
//! `access` module. Operations are in `access_ops.rs`.

use lookout_core::DeviceId;
use serde::Serialize;

// What `run!` (defined in lib.rs before this module) refers to.
use crate::{mysql, mysql_ops, query_err, sqlite_ops, Inner, Result, Store, User};

/// An API token as listed (never the token: only its digest is stored, and not shown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub description: String,
    pub disabled: bool,
}

/// A server-side session (times in unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub user_id: i64,
    pub created: i64,
    pub last_seen: i64,
    /// Absolute end: the session is refused after it, whatever its activity.
    pub expires: i64,
    /// The client address at login.
    pub address: String,
    pub user_agent: String,
}

/// A row of `authlog`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthlogRow {
    pub id: i64,
    /// Unix seconds.
    pub datetime: i64,
    pub user: String,
    pub address: String,
    /// `ok`, `failure` or `throttled`.
    pub result: String,
}

/// Failed logins counted for the throttle: of one account and of one client address, since
/// a time (and, for the account, since its last successful login).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub user_failures: u32,
    /// Unix seconds of the newest counted failure of the account.
    pub user_last: Option<i64>,
    pub address_failures: u32,
    pub address_last: Option<i64>,
}

impl Store {
    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        run!(self, read, "users", users())
    }
    /// Removes a user with its tokens, sessions and device grants; `false` when unknown.
    pub async fn remove_user(&self, user_id: i64) -> Result<bool> {
        run!(self, write, "remove_user", remove_user(user_id))
    }
    /// `StoreError::NotFound` for an unknown user.
    pub async fn set_user_level(&self, user_id: i64, level: i32) -> Result<()> {
        run!(
            self,
            write,
            "set_user_level",
            set_user_level(user_id, level)
        )
    }
    /// Devices granted to a user, in id order.
    pub async fn device_perms(&self, user_id: i64) -> Result<Vec<DeviceId>> {
        run!(self, read, "device_perms", device_perms(user_id))
    }
    /// Grants a device to a user (idempotent). `NotFound` for an unknown user or device.
    pub async fn grant_device(&self, user_id: i64, device_id: DeviceId) -> Result<()> {
        run!(
            self,
            write,
            "grant_device",
            grant_device(user_id, device_id)
        )
    }
    /// `false` when the grant did not exist.
    pub async fn revoke_device(&self, user_id: i64, device_id: DeviceId) -> Result<bool> {
        run!(
            self,
            write,
            "revoke_device",
            revoke_device(user_id, device_id)
        )
    }
    /// Every API token (without its digest), by id.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        run!(self, read, "api_tokens", api_tokens())
    }
    /// Deletes a token; `false` when unknown.
    pub async fn remove_api_token(&self, id: i64) -> Result<bool> {
        run!(self, write, "remove_api_token", remove_api_token(id))
    }

    // --- sessions
    /// Stores a session under the SHA-256 hex of its id.
    pub async fn add_session(&self, session_hash: &str, record: &SessionRecord) -> Result<()> {
        run!(
            self,
            write,
            "add_session",
            add_session(session_hash, record)
        )
    }
    pub async fn session(&self, session_hash: &str) -> Result<Option<SessionRecord>> {
        run!(self, read, "session", session(session_hash))
    }
    /// Moves `last_seen` forward (the idle time-out counts from it).
    pub async fn touch_session(&self, session_hash: &str, last_seen: i64) -> Result<()> {
        run!(
            self,
            write,
            "touch_session",
            touch_session(session_hash, last_seen)
        )
    }
    /// `false` when the session did not exist.
    pub async fn remove_session(&self, session_hash: &str) -> Result<bool> {
        run!(self, write, "remove_session", remove_session(session_hash))
    }
    /// Ends every session of a user; returns how many there were.
    pub async fn remove_user_sessions(&self, user_id: i64) -> Result<u64> {
        run!(
            self,
            write,
            "remove_user_sessions",
            remove_user_sessions(user_id)
        )
    }
    /// The sessions of a user (without their hashes), newest first.
    pub async fn user_sessions(&self, user_id: i64) -> Result<Vec<SessionRecord>> {
        run!(self, read, "user_sessions", user_sessions(user_id))
    }
    /// Deletes sessions whose absolute end or idle limit has passed; returns how many.
    pub async fn prune_sessions(&self, now: i64, idle_secs: i64) -> Result<u64> {
        run!(
            self,
            write,
            "prune_sessions",
            prune_sessions(now, idle_secs)
        )
    }

    // --- authlog and the login throttle
    pub async fn add_authlog(
        &self,
        datetime: i64,
        user: &str,
        address: &str,
        result: &str,
    ) -> Result<()> {
        run!(
            self,
            write,
            "add_authlog",
            add_authlog(datetime, user, address, result)
        )
    }
    /// Newest first, paged.
    pub async fn authlog(&self, start: i64, limit: i64) -> Result<Vec<AuthlogRow>> {
        run!(self, read, "authlog", authlog(start, limit))
    }
    /// Failures of `user` and of `address` at or after `since` (unix seconds); the account's
    /// count starts after its last successful login.
    pub async fn login_failures(
        &self,
        user: &str,
        address: &str,
        since: i64,
    ) -> Result<LoginFailures> {
        run!(
            self,
            read,
            "login_failures",
            login_failures(user, address, since)
        )
    }

    // --- APP_KEY check value
    /// Stores `check` when none is stored yet, or replaces `previous` by it (a key rotation);
    /// returns the stored value (the first writer's). A caller whose `check` differs from the
    /// answer holds another installation's key.
    pub async fn app_key_check(&self, check: &str, previous: Option<&str>) -> Result<String> {
        run!(self, write, "app_key_check", app_key_check(check, previous))
    }
}
