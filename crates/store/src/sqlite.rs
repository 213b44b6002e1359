//! The SQLite backend (embedded default): opening the file with the pragmas a server
//! process needs, read-only detection, and the dialect hooks of `define_ops!`.
//!
//! Storage choices, SQLite only:
//! - u64 counters and ifSpeed are INTEGER in two's complement (`v as i64`): compact, exact
//!   for all of u64, and ordered correctly below 2^63; a raw SQL reader sees values above
//!   2^63 as negative (about 23 years of a saturated 100 Gbit/s link).
//! - timestamps are UTC TEXT `YYYY-MM-DD HH:MM:SS.ffffff` (fixed width: text order is time
//!   order, SQLite's date functions read it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_core::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row as _;
use sqlx::SqliteConnection;

use crate::{Result, StoreError};

/// What [`SqliteBackend::write_on_writer`]'s function returns: the operation, borrowing
/// the connection inside the transaction.
pub(crate) type WriteFuture<'c, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>>;

/// Connections a write tries when it is refused as read-only (see
/// [`Files::retry`]): the pool's size and one fresh connection.
const WRITE_ATTEMPTS: u32 = 9;

pub(crate) use crate::sql::DEVICE_LOCK;
/// Which conflict clause the batched port write takes.
pub(crate) const SQLITE: bool = true;

/// How long a writer waits for another writer before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn enc_u64(v: Option<u64>) -> Option<i64> {
    // Two's complement on purpose, see the module doc.
    v.map(|v| v as i64)
}

pub(crate) fn get_u64(r: &SqliteRow, col: &str) -> std::result::Result<Option<u64>, sqlx::Error> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(|v| v as u64))
}

pub(crate) fn enc_ts(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

pub(crate) struct SqliteBackend {
    pub(crate) pool: SqlitePool,
    /// One writer at a time inside this process. SQLite allows one writer per file; without
    /// this gate concurrent `BEGIN IMMEDIATE`s of the pool's connections wait in SQLite's
    /// busy handler, which sleeps in steps of up to 100 ms: at a few hundred writes per
    /// second (10,000 devices at 60 s) most of a poll's time went into those sleeps. Queued
    /// on a fair async mutex, writers run back to back; the busy timeout still covers other
    /// processes (the CLI) writing the same file.
    pub(crate) write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The writer thread of the hot write transactions, see [`SqliteBackend::write_on_writer`].
    writer: WriterThread,
    pub(crate) path: PathBuf,
    /// Opened read-only because the file is not writable.
    pub(crate) read_only: bool,
}

/// A thread running a single-threaded runtime for [`SqliteBackend::write_on_writer`]; it
/// ends when the backend is dropped.
struct WriterThread {
    handle: tokio::runtime::Handle,
    /// Dropped with the backend: the thread's `block_on` returns.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriterThread {
    fn start(what: &str) -> Result<WriterThread> {
        let open_err = |e: std::io::Error| StoreError::Open {
            what: format!("{what} (starting the SQLite writer thread)"),
            source: Box::new(e),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(open_err)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(open_err)?;
        Ok(WriterThread {
            handle,
            _stop: stop,
        })
    }
}

/// True when the existing file at `path` must not be written: no write permission bit
/// at all (which matters when running as root, where the kernel ignores the mode), or
/// the kernel refuses to open it for writing (another owner, a read-only mount).
fn file_is_read_only(path: &Path) -> std::io::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.permissions().readonly() {
        return Ok(true);
    }
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => Ok(false),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Creates `dir` (and missing parents) mode 0700: it holds the database (password hashes,
/// sealed SNMP secrets) and usually `.env` with APP_KEY. An existing directory is left as
/// it is (it may be shared on purpose, e.g. for a backup user).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates the database file mode 0600 before SQLite does (SQLite creates it 0644 less the
/// umask; its -wal and -shm files take the database file's mode), and takes group and
/// other access away from an existing database and its -wal/-shm (older installations were
/// 0644), saying so once.
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            let tight = mode & 0o700;
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(tight)) {
                Ok(()) => tracing::warn!(
                    file = %file.display(),
                    from = format!("{mode:04o}"),
                    to = format!("{tight:04o}"),
                    "database file was readable by other users; permissions tightened"
                ),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "database file is readable by other users and its permissions cannot be changed")
                }
            }
        }
    }
    Ok(())
}

/// The database's files as a write sees them (copied into the writer thread's task).
#[derive(Clone)]
pub(crate) struct Files {
    path: PathBuf,
    /// The store was opened read-only on purpose (the file was not writable then).
    read_only: bool,
}

impl Files {
    /// After a write transaction on `conn` failed with `e` (attempt `attempt`, rolled
    /// back): whether to run it again on another connection.
    ///
    /// Why: SQLite's unix VFS silently opens a file read-only when opening it for writing
    /// fails (EACCES, EPERM from `chattr +i`, EROFS), and such a connection stays read-only
    /// after the file is writable again; the pool opens connections at any time (reads
    /// too). Its `BEGIN IMMEDIATE` still succeeds, the first write fails with
    /// SQLITE_READONLY (nothing written). Such a connection is closed, and when the
    /// database and its WAL are writable now, the transaction runs again on another one.
    pub(crate) async fn retry(
        &self,
        conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
        e: &StoreError,
        attempt: u32,
    ) -> bool {
        if self.read_only || !matches!(e, StoreError::ReadOnly(_)) {
            return false;
        }
        tracing::warn!(path = %self.path.display(), "closing a database connection that SQLite opened read-only (the file was not writable when it was opened)");
        let _ = conn.close().await;
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let writable = [&self.path, &wal]
            .iter()
            .all(|p| matches!(file_is_read_only(p), Ok(false)));
        attempt < WRITE_ATTEMPTS && writable
    }
}

impl SqliteBackend {
    pub(crate) fn files(&self) -> Files {
        Files {
            path: self.path.clone(),
            read_only: self.read_only,
        }
    }

    pub(crate) async fn open(path: &Path) -> Result<SqliteBackend> {
        let what = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(|e| StoreError::Open {
                what: format!("{what} (creating directory {})", dir.display()),
                source: Box::new(e),
            })?;
        }
        let read_only = file_is_read_only(path).map_err(|e| StoreError::Open {
            what: what.clone(),
            source: Box::new(e),
        })?;
        if !read_only {
            private_files(path).map_err(|e| StoreError::Open {
                what: format!("{what} (creating it mode 0600)"),
                source: Box::new(e),
            })?;
        }
        let mut options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Reads through a memory map instead of a pread per page (a syscall each, costly
            // on VMs; the 10k-device benchmark's ports table is ~100 MB), and a page cache of
            // 16 MiB per connection instead of 2 MiB.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384")
            .read_only(read_only)
            .create_if_missing(!read_only);
        if !read_only {
            // WAL: readers do not block the writer (web pages during polls). NORMAL sync is
            // durable across application crashes, the usual pairing with WAL.
            options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
        } else {
            tracing::warn!(path = %what, "database file is not writable: opened read-only");
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(WRITE_ATTEMPTS - 1)
            .after_release(|c, _meta| Box::pin(crate::tx::release_clean(c)))
            .connect_with(options)
            .await
            .map_err(|e| match crate::query_err("open", e) {
                StoreError::ReadOnly(m) => StoreError::ReadOnly(format!("{what}: {m}")),
                StoreError::Query { source, .. } => StoreError::Open {
                    what: what.clone(),
                    source,
                },
                other => other,
            })?;
        Ok(SqliteBackend {
            pool,
            write_gate: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            writer: WriterThread::start(&what)?,
            path: path.to_path_buf(),
            read_only,
        })
    }

    /// Runs one write transaction (`BEGIN IMMEDIATE` .. `COMMIT`, under the write gate) on
    /// the writer thread: `f` runs the operation on the connection inside the transaction,
    /// which is committed when it returns `Ok`, rolled back otherwise (`tx::finish`). `f` may
    /// run more than once (see [`Files::retry`]), so it must be re-runnable, as it is for
    /// the MySQL retries.
    ///
    /// Why a thread of its own: each statement is a round trip to sqlx's connection thread,
    /// and its wake-up comes from outside the runtime, so on the callers' runtime it waits
    /// in the global queue behind every runnable poll task. A poll commit is ~20 such round
    /// trips while holding the one SQLite write lock: at 10,000 devices per minute those
    /// waits made the write lock the bottleneck with CPU to spare. On this thread's own
    /// runtime the transaction's continuations run as soon as the OS schedules it. Once
    /// started, the transaction finishes even if the caller stops waiting.
    pub(crate) async fn write_on_writer<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> WriteFuture<'c, T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let gate = self.write_gate.clone();
        let files = self.files();
        let task = self.writer.handle.spawn(async move {
            let _writer = gate.lock_owned().await;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut conn = pool.acquire().await.map_err(|e| crate::query_err(op, e))?;
                let res = match sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await {
                    Ok(mut tx) => {
                        let out = f(&mut tx).await;
                        crate::tx::finish(op, tx, out).await
                    }
                    Err(e) => Err(crate::query_err(op, e)),
                };
                match res {
                    Err(e) if files.retry(conn, &e, attempt).await => {}
                    res => break res,
                }
            }
        });
        let res = match task.await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Query {
                op,
                source: format!("the SQLite writer thread did not finish the transaction: {e}")
                    .into(),
            }),
        };
        res.map_err(|e| self.explain(e))
    }

    /// Names the file in a read-only error, so the user knows what to fix.
    pub(crate) fn explain(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::ReadOnly(m) => StoreError::ReadOnly(format!(
                "{} cannot be written ({m}); check its permissions and those of its directory, and that it and its -wal file are not immutable (lsattr)",
                self.path.display()
            )),
            StoreError::DiskFull(m) => StoreError::DiskFull(format!(
                "{} ({m}); free space on its file system, then the next write will succeed",
                self.path.display()
            )),
            StoreError::Io(m) => StoreError::Io(format!(
                "{} or its -wal/-shm file ({m}); check that the file system is writable and not \
                 failing, and that the files are not immutable (lsattr)",
                self.path.display()
            )),
            other => other,
        }
    }
}
