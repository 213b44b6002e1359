//! SQLite-only behaviour: file and directory creation, WAL mode, and a read-only database
//! file (`StoreError::ReadOnly`, nothing written).
//!
//! About the read-only test: tests run as root, for whom the kernel ignores file modes, so
//! chmod 0444 alone would not stop a write. The store therefore treats a file without any
//! write permission bit as read-only itself and opens it with SQLITE_OPEN_READONLY; the
//! test proves that such a file is left byte-for-byte unchanged and every write is refused
//! with a clear error. A non-root user or a read-only mount (EACCES/EROFS on open for
//! writing) takes the same path but is not exercised here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;

use lookout_core::{NewDevice, SnmpConfig};
use lookout_store::{Store, StoreConfig, StoreError};

fn new_device(host: &str) -> NewDevice {
    NewDevice {
        hostname: host.to_string(),
        snmp: SnmpConfig::default(),
        poller_group: 0,
    }
}

#[tokio::test]
async fn creates_missing_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/lookout.sqlite");
    let store = Store::open(&StoreConfig::Sqlite { path: path.clone() })
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.add_device(&new_device("a")).await.unwrap();
    assert_eq!(store.dialect(), "sqlite");
    assert!(path.exists());
    let header = std::fs::read(&path).unwrap();
    assert_eq!(&header[..16], b"SQLite format 3\0");
    // File format bytes 18/19 are 2 in WAL mode (1 = rollback journal).
    assert_eq!((header[18], header[19]), (2, 2), "journal_mode=WAL");
    store.close().await;
}

#[tokio::test]
async fn a_directory_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let err = match Store::open(&StoreConfig::Sqlite {
        path: dir.path().to_path_buf(),
    })
    .await
    {
        Ok(_) => panic!("opened a directory as a database"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn read_only_file_refuses_writes_and_stays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    let dev = store.add_device(&new_device("kept")).await.unwrap();
    store.close().await;
    // After a clean close the WAL is checkpointed and removed: the file is the database.
    assert!(!dir.path().join("lookout.sqlite-wal").exists());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&path).unwrap();

    let store = Store::open(&config).await.unwrap();
    // Reading works and migrating with nothing pending is fine.
    store.migrate().await.unwrap();
    assert_eq!(store.devices().await.unwrap(), vec![dev.clone()]);
    // Every kind of write is refused with a message that names the file.
    let err = store.add_device(&new_device("new")).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("the database is read-only"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    let err = store.remove_device(dev.device_id).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    let err = store.add_user("admin", "h", 10).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    store.close().await;

    assert_eq!(std::fs::read(&path).unwrap(), before, "file unchanged");
    // SQLite's read-only connection may create an empty -wal/-shm pair next to a WAL
    // database (it needs the shared-memory index to read); nothing is logged in it.
    let wal = dir.path().join("lookout.sqlite-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "no WAL content"
    );
    // Writable again: the same file works normally.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&config).await.unwrap();
    store.add_device(&new_device("new")).await.unwrap();
    assert_eq!(store.devices().await.unwrap().len(), 2);
    store.close().await;
}

#[tokio::test]
async fn read_only_file_with_pending_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sqlite");
    // An empty file is an empty SQLite database.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let store = Store::open(&StoreConfig::Sqlite { path: path.clone() })
        .await
        .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    assert!(err.to_string().contains("empty.sqlite"), "{err}");
    store.close().await;
    assert_eq!(std::fs::read(&path).unwrap().len(), 0, "nothing written");
}

/// `chattr +i` on the file while the guard lives; cleared on drop so the temp dir can go.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: &std::path::Path) -> Immutable {
        let chattr = ["/usr/bin/chattr", "/bin/chattr"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chattr not found: install the Debian package e2fsprogs");
        let st = std::process::Command::new(chattr)
            .arg("+i")
            .arg(path)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "chattr +i failed (needs root on an ext4-like file system)"
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for chattr in ["/usr/bin/chattr", "/bin/chattr"] {
            if std::path::Path::new(chattr).exists() {
                let _ = std::process::Command::new(chattr)
                    .arg("-i")
                    .arg(&self.0)
                    .status();
                return;
            }
        }
    }
}

/// The kernel-enforced case, which holds for root too: an immutable file (EPERM on open
/// for writing) with normal mode bits.
#[tokio::test]
async fn immutable_file_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    store.add_device(&new_device("kept")).await.unwrap();
    store.close().await;
    let before = std::fs::read(&path).unwrap();
    {
        let _immutable = Immutable::set(&path);
        assert!(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .is_err(),
            "the kernel refuses writes to the file, even for root"
        );
        let store = Store::open(&config).await.unwrap();
        assert_eq!(store.devices().await.unwrap().len(), 1);
        let err = store.add_device(&new_device("new")).await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
        assert!(err.to_string().contains("lookout.sqlite"), "{err}");
        store.close().await;
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "file unchanged");
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The database holds password hashes and (sealed) SNMP secrets: a new database file and
/// its WAL/SHM are 0600, the directories created for it 0700 (issue #16).
#[tokio::test]
async fn new_database_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.join("db/lookout.sqlite");
    let store = Store::open(&StoreConfig::Sqlite { path: path.clone() })
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.add_device(&new_device("a")).await.unwrap();
    let wal = dir.path().join("data/db/lookout.sqlite-wal");
    let shm = dir.path().join("data/db/lookout.sqlite-shm");
    for f in [&path, &wal, &shm] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("db")), 0o700);
    store.close().await;
}

/// An older installation's 0644 database (and WAL) is made 0600 when opened for writing.
#[tokio::test]
async fn an_existing_world_readable_database_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&config).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    store.add_device(&new_device("b")).await.unwrap();
    assert_eq!(mode(&dir.path().join("lookout.sqlite-wal")), 0o600);
    store.close().await;
}
