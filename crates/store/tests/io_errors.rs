//! I/O errors never poison later work (issue #16): a write transaction that fails because
//! the disk is full, the file became immutable (`chattr +i`) or the database server killed
//! the connection is rolled back, and its connection is returned clean or dropped, so that
//! the next transactions succeed once the cause is gone, with nothing half-written.
//!
//! Before the fix, a commit that failed with SQLITE_FULL left its pooled connection at
//! transaction depth 1 (SQLite had rolled the transaction back itself, so sqlx's queued
//! ROLLBACK failed and its depth counter stayed), and every later write on that connection
//! failed with `attempted to call begin_with at non-zero transaction depth`.
//!
//! The disk-full test mounts a 16 MB tmpfs of its own under a temp dir (as root, which CI
//! is; skipped loudly otherwise) and fills it with a filler file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use chrono::Utc;
use common::{add_devices, mysql_admin, port_polls, whole_poll, Fixture};
use lookout_store::{Store, StoreConfig, StoreError};

use lookout_testkit::tmpfs::{fill, Tmpfs};

async fn port_count(store: &Store, device: i64) -> usize {
    store.ports(device).await.unwrap().len()
}

/// A device's poll (2,000 ports, ~1 MB of WAL) on a full tmpfs: the commit fails with a
/// disk-full error naming the file, nothing of it is stored, and once the filler is removed
/// every following commit (more than the pool has connections) succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_commit_fails_cleanly_and_later_commits_succeed() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let path = fs.mnt.join("lookout.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    let ids = add_devices(&store, "full", 2, Some(1)).await;
    // A clean close checkpoints and removes the WAL, so the next big commit must grow it.
    store.close().await;
    let store = Store::open(&config).await.unwrap();

    let filler = fs.mnt.join("filler");
    let filled = fill(&filler);
    assert!(filled > 8 << 20, "filled only {filled} bytes");

    let at = Utc::now();
    let big = whole_poll(at, 1, port_polls(2000, 1000, Some(1000)), 4);
    let mut failures = Vec::new();
    // Several attempts while full: none may succeed, each must say why.
    for _ in 0..3 {
        match store.commit_poll(ids[0], &big).await {
            Ok(_) => panic!("a 2,000-port commit succeeded on a full file system"),
            Err(e) => failures.push(e),
        }
    }
    for e in &failures {
        assert!(matches!(e, StoreError::DiskFull(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("full"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains("transaction depth"), "{text}");
    }
    // Nothing half-written: reads work and show the state before the failed commits.
    assert_eq!(port_count(&store, ids[0]).await, 0);
    let dev = store.device(ids[0]).await.unwrap().unwrap();
    assert_eq!(dev.last_polled, None, "device row untouched");

    std::fs::remove_file(&filler).unwrap();
    // More commits than the pool has connections (8): a poisoned connection would be hit.
    for k in 0..12i64 {
        let at = at + chrono::Duration::seconds(60 * (k + 1));
        let poll = whole_poll(at, 1, port_polls(2000, 1000 + k as u64, Some(1000)), 4);
        let device = ids[(k % 2) as usize];
        store
            .commit_poll(device, &poll)
            .await
            .unwrap_or_else(|e| panic!("commit {k} after freeing space: {e}"));
        // The other write paths (run! and reads) too.
        store
            .log_event(
                Some(device),
                "system",
                &format!("after {k}"),
                lookout_store::Severity::Info,
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("log_event {k} after freeing space: {e}"));
    }
    assert_eq!(port_count(&store, ids[0]).await, 2000);
    assert_eq!(port_count(&store, ids[1]).await, 2000);
    store.close().await;
}

/// Plain `run!` writes (not the poll writer thread) hit by a full disk: same guarantees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_plain_writes_recover() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let path = fs.mnt.join("lookout.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    let ids = add_devices(&store, "plain", 1, None).await;
    store.close().await;
    let store = Store::open(&config).await.unwrap();
    let filler = fs.mnt.join("filler");
    fill(&filler);
    let polls = port_polls(2000, 5, Some(5));
    for _ in 0..3 {
        let e = store
            .sync_ports(ids[0], &polls, Utc::now())
            .await
            .expect_err("sync of 2,000 ports on a full file system");
        assert!(matches!(e, StoreError::DiskFull(_)), "{e:?}");
    }
    assert_eq!(port_count(&store, ids[0]).await, 0);
    std::fs::remove_file(&filler).unwrap();
    for k in 0..12u64 {
        store
            .sync_ports(ids[0], &port_polls(2000, 10 + k, Some(5)), Utc::now())
            .await
            .unwrap_or_else(|e| panic!("sync {k} after freeing space: {e}"));
    }
    assert_eq!(port_count(&store, ids[0]).await, 2000);
    store.close().await;
}

/// Clears the immutable flag of the files when dropped, so the temp dir can be removed
/// even when the test fails.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Immutable {
        for p in &paths {
            let st = Command::new("chattr").arg("+i").arg(p).status().unwrap();
            assert!(st.success(), "chattr +i {}", p.display());
        }
        Immutable(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(p).status();
        }
    }
}

/// The database file and its WAL made immutable under a running store (`chattr +i`:
/// every write through the open descriptors fails with EPERM, even as root): the poll's
/// commit fails with an error naming the file, the stored poll stays as it was, and after
/// `chattr -i` the following commits succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_database_commit_fails_cleanly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    let ids = add_devices(&store, "imm", 1, Some(1)).await;
    store.close().await;
    let store = Store::open(&config).await.unwrap();
    let at = Utc::now();
    store
        .commit_poll(
            ids[0],
            &whole_poll(at, 1, port_polls(10, 100, Some(100)), 2),
        )
        .await
        .unwrap();
    let before = store.ports(ids[0]).await.unwrap();

    // Not the -shm: SQLite writes it through a shared memory map, and a page fault on an
    // immutable file is SIGBUS (the process dies; that is not what this test is about).
    let files: Vec<PathBuf> = ["", "-wal"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", path.display())))
        .collect();
    assert!(
        files.iter().all(|f| f.exists()),
        "database and WAL exist: {files:?}"
    );
    let guard = Immutable::set(files);
    // A poll big enough to need new WAL frames beyond what the first one wrote.
    let later = at + chrono::Duration::seconds(60);
    let big = whole_poll(later, 1, port_polls(2000, 200, Some(200)), 2);
    for _ in 0..3 {
        let e = store
            .commit_poll(ids[0], &big)
            .await
            .expect_err("commit to an immutable database");
        // SQLITE_READONLY or SQLITE_IOERR_WRITE, depending on which file SQLite touches first.
        assert!(
            matches!(e, StoreError::Io(_) | StoreError::ReadOnly(_)),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("immutable"), "says what to check: {text}");
        assert!(!text.contains("transaction depth"), "{text}");
    }
    // Reads still work and show the poll before.
    assert_eq!(store.ports(ids[0]).await.unwrap(), before);
    drop(guard);
    for k in 0..12i64 {
        let at = later + chrono::Duration::seconds(60 * k);
        store
            .commit_poll(
                ids[0],
                &whole_poll(at, 1, port_polls(2000, 300 + k as u64, Some(1)), 2),
            )
            .await
            .unwrap_or_else(|e| panic!("commit {k} after chattr -i: {e}"));
    }
    assert_eq!(port_count(&store, ids[0]).await, 2000);
    store.close().await;
}

/// MariaDB kills the store's connection in the middle of a poll's transaction (the device
/// row already updated, the port upsert waiting for a row lock another session holds):
/// the server rolls it back, the store runs the whole transaction again on a fresh
/// connection, the result is exactly one poll's rows, and no pooled connection is left
/// inside a transaction; later operations succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connection_killed_mid_transaction() {
    let Some(fx) = Fixture::mysql() else { return };
    let Fixture::Mysql { database, .. } = &fx else {
        unreachable!()
    };
    let store = fx.store().await;
    let ids = add_devices(&store, "kill", 1, Some(1)).await;
    let t0 = Utc::now();
    store
        .commit_poll(
            ids[0],
            &whole_poll(t0, 1, port_polls(10, 100, Some(100)), 2),
        )
        .await
        .unwrap();
    let port_id = store.ports(ids[0]).await.unwrap()[0].port_id;

    // Another session holds a port row, so the next commit stops inside its transaction.
    let mut holder = mysql_admin().await;
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    let sql =
        format!("SELECT port_id FROM `{database}`.ports WHERE port_id = {port_id} FOR UPDATE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut holder)
        .await
        .unwrap();
    let t1 = t0 + chrono::Duration::seconds(60);
    let commit = {
        let store = store.clone();
        let device = ids[0];
        tokio::spawn(async move {
            store
                .commit_poll(
                    device,
                    &whole_poll(t1, 1, port_polls(10, 200, Some(200)), 2),
                )
                .await
        })
    };
    let mut admin = mysql_admin().await;
    // The store's connection running the port upsert (MariaDB's INNODB_TRX says RUNNING,
    // not LOCK WAIT, for this wait; the process list shows it).
    let waiting = "SELECT ID FROM information_schema.PROCESSLIST \
                   WHERE DB = ? AND INFO LIKE 'INSERT INTO ports (port_id%'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let victim: i64 = loop {
        let ids: Vec<i64> = sqlx::query_scalar(waiting)
            .bind(database)
            .fetch_all(&mut admin)
            .await
            .unwrap();
        if let Some(id) = ids.first() {
            break *id;
        }
        assert!(
            std::time::Instant::now() < deadline && !commit.is_finished(),
            "the commit never waited for the port row lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let retries_before = store.retries().0;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL CONNECTION {victim}")))
        .execute(&mut admin)
        .await
        .unwrap();
    // Release the row only once the killed transaction is gone, so the retry is what runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let alive: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?")
                .bind(victim)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if alive == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "killed connection still listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    commit
        .await
        .unwrap()
        .expect("the poll's transaction runs again after the kill");
    assert!(store.retries().0 > retries_before, "the kill cost a retry");

    // Exactly one poll's rows: the second poll's counters, one ok log row per poll.
    let ports = store.ports(ids[0]).await.unwrap();
    assert_eq!(ports.len(), 10);
    assert!(ports.iter().all(|p| p.counters.in_octets == Some(200)));
    let logged = store
        .poll_log(t0 - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(logged.len(), 2, "{logged:?}");

    // Later operations (more than the pool has connections) succeed.
    for k in 0..20i64 {
        let at = t1 + chrono::Duration::seconds(60 * (k + 1));
        store
            .commit_poll(
                ids[0],
                &whole_poll(at, 1, port_polls(10, 300 + k as u64, Some(1)), 2),
            )
            .await
            .unwrap_or_else(|e| panic!("commit {k} after the kill: {e}"));
        store.devices().await.unwrap();
    }
    // No connection of the store is left inside a transaction.
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.INNODB_TRX t \
         JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = ?",
    )
    .bind(database)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(open, 0, "open transactions of the store's connections");
    store.close().await;
}
