//! How a write transaction ends, and the pool's guarantee that no connection is reused
//! while still inside one (issue #16).
//!
//! The failure this prevents: a COMMIT that failed with SQLITE_FULL (or SQLITE_IOERR) may
//! already have been rolled back by SQLite itself. sqlx then runs its ROLLBACK (from the
//! dropped `Transaction`), which fails with "no transaction is active", and its own depth
//! counter stays at 1; the connection went back to the pool like that, and every later
//! `BEGIN IMMEDIATE` on it failed with `attempted to call begin_with at non-zero
//! transaction depth` until the process restarted. sqlx has no way to reset that counter,
//! so such a connection must be closed; the pool opens a fresh one when needed.
//!
//! Two parts: [`finish`] commits or explicitly rolls back (instead of leaving the rollback
//! to `Drop`, whose outcome nobody sees), and [`release_clean`], installed as every pool's
//! `after_release` hook, closes a returned connection that is still inside a transaction
//! (also one whose task was cancelled mid-transaction).

use crate::{query_err, Result};

/// Commits `tx` when `out` is `Ok`, else rolls it back and returns the operation's error.
/// A failed rollback is logged and otherwise ignored: the operation's error is the one
/// that matters, and the connection is not reused (see [`release_clean`]).
pub(crate) async fn finish<DB: sqlx::Database, T>(
    op: &'static str,
    tx: sqlx::Transaction<'_, DB>,
    out: Result<T>,
) -> Result<T> {
    match out {
        Ok(v) => {
            tx.commit().await.map_err(|e| query_err(op, e))?;
            Ok(v)
        }
        Err(e) => {
            if let Err(re) = tx.rollback().await {
                tracing::warn!(op, error = %re, "rollback after a failed operation failed; the connection is closed, not reused");
            }
            Err(e)
        }
    }
}

/// The pools' `after_release` hook: `Ok(false)` (close, do not reuse) for a connection
/// still inside a transaction. Cheap on the normal path (a counter read); only a
/// connection that reports a transaction pays a round trip, which first runs a rollback
/// queued by a dropped `Transaction` (on SQLite the depth counter is updated by the
/// connection's worker thread, so it may lag behind).
pub(crate) async fn release_clean<C: sqlx::Connection>(c: &mut C) -> Result<bool, sqlx::Error> {
    if !c.is_in_transaction() {
        return Ok(true);
    }
    c.ping().await?;
    if c.is_in_transaction() {
        tracing::warn!("closing a database connection left inside a transaction by an error; the next operation uses a fresh one");
        return Ok(false);
    }
    Ok(true)
}
