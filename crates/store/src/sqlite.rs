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

use crate::{Result, StoreError};

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

impl SqliteBackend {
    pub(crate) async fn open(path: &Path) -> Result<SqliteBackend> {
        let what = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                what: format!("{what} (creating directory {})", dir.display()),
                source: Box::new(e),
            })?;
        }
        let read_only = file_is_read_only(path).map_err(|e| StoreError::Open {
            what: what.clone(),
            source: Box::new(e),
        })?;
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
            .max_connections(8)
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
    /// the writer thread: `f` gets the open transaction and hands it back with its result;
    /// it is committed when the result is `Ok`, rolled back otherwise.
    ///
    /// Why a thread of its own: each statement is a round trip to sqlx's connection thread,
    /// and its wake-up comes from outside the runtime, so on the callers' runtime it waits
    /// in the global queue behind every runnable poll task. A poll commit is ~20 such round
    /// trips while holding the one SQLite write lock: at 10,000 devices per minute those
    /// waits made the write lock the bottleneck with CPU to spare. On this thread's own
    /// runtime the transaction's continuations run as soon as the OS schedules it. Once
    /// started, the transaction finishes even if the caller stops waiting.
    pub(crate) async fn write_on_writer<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(sqlx::Transaction<'static, sqlx::Sqlite>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = (Result<T>, sqlx::Transaction<'static, sqlx::Sqlite>)>
            + Send
            + 'static,
    {
        let pool = self.pool.clone();
        let gate = self.write_gate.clone();
        let task = self.writer.handle.spawn(async move {
            let _writer = gate.lock_owned().await;
            let tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| crate::query_err(op, e))?;
            let (out, tx) = f(tx).await;
            match out {
                Ok(v) => {
                    tx.commit().await.map_err(|e| crate::query_err(op, e))?;
                    Ok(v)
                }
                // Dropping the transaction rolls it back.
                Err(e) => Err(e),
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
                "{} cannot be written ({m}); check its permissions and those of its directory",
                self.path.display()
            )),
            StoreError::DiskFull(m) => StoreError::DiskFull(format!(
                "{} ({m}); free space on its file system, then the next write will succeed",
                self.path.display()
            )),
            other => other,
        }
    }
}
