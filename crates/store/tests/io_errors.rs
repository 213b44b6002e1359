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

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use common::{add_devices, mysql_admin, port_polls, whole_poll, Fixture};
use lookout_store::{Store, StoreConfig, StoreError};

/// A tmpfs of `size` mounted at `<tempdir>/mnt`, unmounted when dropped (even on panic).
struct Tmpfs {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None (after saying so loudly) when not running as root.
    fn mount(size: &str) -> Option<Tmpfs> {
        let uid = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("\n*** SKIPPED: not root, cannot mount a tmpfs for the disk-full test ***\n");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700"))
            .arg("tmpfs")
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", mnt.display());
        Some(Tmpfs { mnt, _dir: dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Whatever is left in the page cache must hit the (full) file system now.
    let _ = f.sync_all();
    written
}

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
            .log_event(Some(device), "system", &format!("after {k}"), lookout_store::Severity::Info, None)
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
