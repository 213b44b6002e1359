//! The Lookout store: devices, ports, users, API tokens and the event log, in SQLite
//! (embedded default) or MySQL/MariaDB (incl. Galera). `Store` is a cheap-to-clone handle
//! over a crate-private backend enum, chosen from configuration at start-up; every
//! backend passes the same contract tests.
//!
//! Table and column names follow LibreNMS (`devices.device_id`, `sysName`, `ports.ifIndex`,
//! `eventlog`, ...) so that a LibreNMS user's SQL carries over.
//!
//! Layout: `ops` holds every operation once, instantiated per dialect (`sqlite_ops`,
//! `mysql_ops`); `Store` picks the backend and wraps each operation in a transaction
//! (SQLite: `BEGIN IMMEDIATE`; MySQL: retried as a whole on transient errors, see
//! `mysql`). Timestamps are UTC and stored to the microsecond.

use std::sync::Arc;

use chrono::SubsecRound as _;
use lookout_core::{
    Device, DeviceId, DevicePollUpdate, NewDevice, Port, PortId, PortPoll, Timestamp,
};
use serde::{Deserialize, Serialize};

mod access_ops;
mod alert_ops;
mod discovery_ops;
mod dump;
mod health_ops;
mod migrate;
mod mysql;
mod ops;
mod rates;
mod secret_ops;
mod secrets;
mod sql;
mod sqlite;
mod tx;

pub use dump::{Dump, DumpApiToken, DumpUser, DUMP_FORMAT};
pub use migrate::MigrationStatus;
pub use mysql::{MysqlSslMode, MysqlTls};
pub use secrets::SecretKey;

ops::define_ops!(sqlite_ops, sqlx::Sqlite, crate::sqlite);
ops::define_ops!(mysql_ops, sqlx::MySql, crate::mysql);

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file, created with its directory if missing.
    Sqlite { path: std::path::PathBuf },
    /// MySQL/MariaDB; `hosts` may list several Galera nodes (tried in order).
    Mysql {
        hosts: Vec<(String, u16)>,
        database: String,
        username: String,
        password: String,
    },
}

/// Errors of store operations, named after what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {what}: {source}")]
    Open {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    /// The file system holding the database (SQLite) or the server's data (MySQL) is full;
    /// the transaction was rolled back, nothing of it is stored.
    #[error("the disk holding the database is full: {0}")]
    DiskFull(String),
    /// SQLite could not read or write its files (SQLITE_IOERR: a failing disk, a file made
    /// immutable or a file system gone read-only under it); rolled back as `DiskFull`.
    #[error("database I/O error: {0}")]
    Io(String),
    /// A stored SNMP secret cannot be read: sealed with another `APP_KEY`, no key given, or
    /// changed. The message names APP_KEY and what to do.
    #[error("{0}")]
    Secrets(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error("import failed: {0}")]
    Import(String),
    #[error("{what} {key:?} already exists")]
    Duplicate { what: &'static str, key: String },
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    /// A poll's results refused because a newer claim (fencing token) owns the device.
    #[error("poll of device {device_id} with token {token} is stale (device now fenced by token {current:?}); results discarded")]
    Fenced {
        device_id: DeviceId,
        token: u64,
        current: Option<u64>,
    },
    /// A master's alert write or delivery refused: a newer master holds the alert fence.
    #[error(
        "alert write with master token {token} refused: the alert fence is held by token {current}"
    )]
    AlertFenced { token: u64, current: u64 },
    #[error("database query failed ({op}): {source}")]
    Query {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Severity of an event log entry (LibreNMS uses 1..5; we keep the names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// The number stored in `eventlog.severity` (LibreNMS 1..5; 6 for `Critical`).
    pub fn level(self) -> i32 {
        match self {
            Severity::Ok => 1,
            Severity::Info => 2,
            Severity::Notice => 3,
            Severity::Warning => 4,
            Severity::Error => 5,
            Severity::Critical => 6,
        }
    }

    /// Inverse of [`Severity::level`]; LibreNMS's 0 (unknown) and other values read as `Info`.
    pub fn from_level(level: i32) -> Severity {
        match level {
            1 => Severity::Ok,
            3 => Severity::Notice,
            4 => Severity::Warning,
            5 => Severity::Error,
            6 => Severity::Critical,
            _ => Severity::Info,
        }
    }
}

/// A row of `eventlog`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: i64,
    pub device_id: Option<DeviceId>,
    pub datetime: Timestamp,
    /// `system`, `interface`, `reboot`, `poller`, ... (LibreNMS `type`).
    pub kind: String,
    pub message: String,
    pub severity: Severity,
    /// Optional related object, e.g. the port id for interface events.
    pub reference: Option<i64>,
}

/// A user of the web UI/API. `level` follows LibreNMS: 10 admin, 5 global read, 1 normal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    /// PHC string (argon2id); never shown.
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub level: i32,
}

/// Port rows after an upsert, plus what changed (for the event log).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortSync {
    /// All current (not deleted) ports of the device, with their new rates.
    pub ports: Vec<Port>,
    /// Ports seen for the first time.
    pub added: Vec<PortId>,
    /// Ports no longer returned by the agent (now marked deleted).
    pub removed: Vec<PortId>,
}

/// Who polls a device under which claim: the fencing token handed out by the
/// coordination backend (lookout-coord) when the device was claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollFence {
    pub node_id: String,
    pub token: u64,
    /// When the poll started (logged in `device_poll_log`).
    pub started: Timestamp,
}

/// How a poll ended, as logged in `device_poll_log.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PollOutcome {
    /// Results written.
    Ok,
    /// The poll failed (the store or the poller errored).
    Failed,
    /// Results discarded: a newer claim owns the device.
    Stale,
}

impl PollOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PollOutcome::Ok => "ok",
            PollOutcome::Failed => "failed",
            PollOutcome::Stale => "stale",
        }
    }

    /// Anything unknown reads as `Failed`.
    pub fn parse(s: &str) -> PollOutcome {
        match s {
            "ok" => PollOutcome::Ok,
            "stale" => PollOutcome::Stale,
            _ => PollOutcome::Failed,
        }
    }
}

/// A row of `device_poll_log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PollLogEntry {
    pub device_id: DeviceId,
    pub node_id: String,
    pub token: u64,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub status: PollOutcome,
    /// Seconds.
    pub duration: f64,
}

/// Handle to the store; clone it freely.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Seals and opens the devices' SNMP secrets (`device_secrets`); `None`: stored as given.
    keys: Option<Arc<secrets::Keys>>,
}

enum Inner {
    Sqlite(sqlite::SqliteBackend),
    Mysql(mysql::MysqlBackend),
}

/// Maps a driver error: a write refused because the database is read-only becomes
/// `ReadOnly`, anything else `Query` (callers map duplicates and missing rows themselves).
pub(crate) fn query_err(op: &'static str, e: sqlx::Error) -> StoreError {
    if let Some(d) = e.as_database_error() {
        let read_only = if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // SQLITE_READONLY and its extended codes
            d.code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == 8)
        } else if let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            // ER_OPTION_PREVENTS_STATEMENT (--read-only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
            matches!(m.number(), 1290 | 1792)
        } else {
            false
        };
        if read_only {
            let code = d.code().map(|c| format!(", code {c}")).unwrap_or_default();
            return StoreError::ReadOnly(format!("{op}: {}{code}", d.message()));
        }
        if is_disk_full(d) {
            return StoreError::DiskFull(format!("{op}: {}", d.message()));
        }
        if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // SQLITE_IOERR and its extended codes (778 = a write() failed, ...)
            let code = d.code().and_then(|c| c.parse::<i32>().ok());
            if let Some(code) = code.filter(|c| c & 0xff == 10) {
                return StoreError::Io(format!("{op}: {} (SQLite code {code})", d.message()));
            }
        }
    }
    StoreError::Query {
        op,
        source: Box::new(e),
    }
}

/// SQLITE_FULL (13, also as the primary code of an extended one); MySQL/MariaDB's
/// ER_RECORD_FILE_FULL (1114, "the table is full"), ER_DISK_FULL (1021) and the
/// "errno: 28" (ENOSPC) of a failed write (EE_WRITE 3, 1030 from the storage engine).
fn is_disk_full(d: &dyn sqlx::error::DatabaseError) -> bool {
    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| c & 0xff == 13);
    }
    if let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match m.number() {
            1114 | 1021 => true,
            3 | 1030 => m.message().contains("errno: 28") || m.message().contains("No space"),
            _ => false,
        };
    }
    false
}

/// Time stamps are kept to the microsecond (MySQL `DATETIME(6)`), so that what is read back
/// equals what was written on every backend.
pub(crate) fn micros(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

fn now() -> Timestamp {
    micros(chrono::Utc::now())
}

/// Runs `$f` of the backend's ops module with a connection as first argument.
/// `write`: in a transaction (SQLite `BEGIN IMMEDIATE`, so the write lock is taken up
/// front rather than failing on upgrade), committed on `Ok` and explicitly rolled back on
/// `Err` (`tx::finish`; a connection whose transaction could not be ended is closed by the
/// pool, see `tx::release_clean`); on MySQL the whole transaction is retried on
/// transient errors, on the next healthy node when the current one failed. `read`: on a
/// pooled connection, retried the same way on MySQL.
macro_rules! run {
    ($store:expr, write, $op:literal, $f:ident ( $($arg:expr),* $(,)? )) => {
        match &*$store.inner {
            Inner::Sqlite(b) => {
                let res: Result<_> = async {
                    let _writer = b.write_gate.lock().await;
                    let files = b.files();
                    let mut attempt = 0;
                    // As `SqliteBackend::write_on_writer`: a connection SQLite opened
                    // read-only is replaced and the transaction run again (`Files::retry`).
                    loop {
                        attempt += 1;
                        let mut conn = b.pool.acquire().await.map_err(|e| query_err($op, e))?;
                        let res = match sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await {
                            Ok(mut tx) => {
                                let out = sqlite_ops::$f(&mut *tx, $($arg),*).await;
                                crate::tx::finish($op, tx, out).await
                            }
                            Err(e) => Err(query_err($op, e)),
                        };
                        match res {
                            Err(e) if files.retry(conn, &e, attempt).await => {}
                            res => break res,
                        }
                    }
                }
                .await;
                res.map_err(|e| b.explain(e))
            }
            Inner::Mysql(b) => {
                let mut attempt = 0u32;
                loop {
                    let (node, pool) = b.pool();
                    let res: Result<_> = async {
                        let mut tx = pool.begin().await.map_err(|e| query_err($op, e))?;
                        let out = mysql_ops::$f(&mut *tx, $($arg),*).await;
                        crate::tx::finish($op, tx, out).await
                    }
                    .await;
                    match res {
                        Err(e) => {
                            let retry = mysql::classify(&e);
                            attempt += 1;
                            if retry == mysql::Retry::No || attempt >= mysql::MAX_ATTEMPTS {
                                break Err(e);
                            }
                            b.recover($op, node, attempt, retry, &e).await;
                        }
                        ok => break ok,
                    }
                }
            }
        }
    };
    ($store:expr, read, $op:literal, $f:ident ( $($arg:expr),* $(,)? )) => {
        match &*$store.inner {
            Inner::Sqlite(b) => {
                let res: Result<_> = async {
                    let mut c = b.pool.acquire().await.map_err(|e| query_err($op, e))?;
                    sqlite_ops::$f(&mut *c, $($arg),*).await
                }
                .await;
                res.map_err(|e| b.explain(e))
            }
            Inner::Mysql(b) => {
                let mut attempt = 0u32;
                loop {
                    let (node, pool) = b.pool();
                    let res: Result<_> = async {
                        let mut c = pool.acquire().await.map_err(|e| query_err($op, e))?;
                        mysql_ops::$f(&mut *c, $($arg),*).await
                    }
                    .await;
                    match res {
                        Err(e) => {
                            let retry = mysql::classify(&e);
                            attempt += 1;
                            if retry == mysql::Retry::No || attempt >= mysql::MAX_ATTEMPTS {
                                break Err(e);
                            }
                            b.recover($op, node, attempt, retry, &e).await;
                        }
                        ok => break ok,
                    }
                }
            }
        }
    };
}

impl Store {
    /// Opens (creating if needed) the database. Does not migrate.
    ///
    /// SQLite: creates the file and its directory; a file that is not writable is opened
    /// read-only (reads work, writes fail with `StoreError::ReadOnly`). MySQL: picks the
    /// first listed node that answers and is ready, creating the database if missing.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        Store::open_with_tls(config, &MysqlTls::default()).await
    }

    /// [`Store::open`] with TLS settings for MySQL/MariaDB connections (ignored for SQLite).
    pub async fn open_with_tls(config: &StoreConfig, tls: &MysqlTls) -> Result<Store> {
        let inner = match config {
            StoreConfig::Sqlite { path } => Inner::Sqlite(sqlite::SqliteBackend::open(path).await?),
            StoreConfig::Mysql {
                hosts,
                database,
                username,
                password,
            } => Inner::Mysql(
                mysql::MysqlBackend::open(hosts, database, username, password, tls).await?,
            ),
        };
        Ok(Store {
            inner: Arc::new(inner),
            keys: None,
        })
    }

    /// Closes every connection (waits for checked-out ones to come back). For a clean
    /// shutdown: SQLite checkpoints its WAL into the main file when the last connection
    /// closes. Later calls on any clone of this handle fail.
    pub async fn close(&self) {
        match &*self.inner {
            Inner::Sqlite(b) => b.pool.close().await,
            Inner::Mysql(b) => b.close().await,
        }
    }

    /// The node in use as `host:port` (MySQL), `None` for SQLite. For `lookout validate`
    /// and logs: it changes on fail-over.
    pub fn database_node(&self) -> Option<String> {
        match &*self.inner {
            Inner::Sqlite(_) => None,
            Inner::Mysql(b) => Some(b.current_label().to_string()),
        }
    }

    /// Transactions this store ran again after a transient MySQL error since it was
    /// opened: `(all, of which after a deadlock or certification conflict (1213))`. Always
    /// `(0, 0)` on SQLite (no retries there).
    pub fn retries(&self) -> (u64, u64) {
        match &*self.inner {
            Inner::Sqlite(_) => (0, 0),
            Inner::Mysql(b) => b.retries(),
        }
    }

    /// `sqlite` or `mysql`.
    pub fn dialect(&self) -> &'static str {
        match &*self.inner {
            Inner::Sqlite(_) => "sqlite",
            Inner::Mysql(_) => "mysql",
        }
    }

    fn migrations(&self) -> (&'static [migrate::Migration], &'static str) {
        match &*self.inner {
            Inner::Sqlite(_) => (migrate::SQLITE, migrate::SQLITE_BOOKKEEPING),
            Inner::Mysql(_) => (migrate::MYSQL, migrate::MYSQL_BOOKKEEPING),
        }
    }

    fn is_read_only(&self) -> bool {
        matches!(&*self.inner, Inner::Sqlite(b) if b.read_only)
    }

    /// Creates the bookkeeping tables (no-op when present). On a read-only file they may
    /// be missing and cannot be created: returns false then, and callers read that as
    /// "nothing applied".
    async fn bookkeeping(&self) -> Result<bool> {
        let (_, bookkeeping) = self.migrations();
        for sql in migrate::statements(bookkeeping) {
            match run!(self, write, "migrate", exec("migrate", sql)) {
                Err(StoreError::ReadOnly(_)) if self.is_read_only() => return Ok(false),
                other => other?,
            }
        }
        Ok(true)
    }

    /// Every migration this build knows, with when it was applied (`None` = pending).
    /// Migrations recorded in the database but unknown to this build (a newer version
    /// migrated it) are listed too, after the known ones.
    pub async fn migrate_status(&self) -> Result<Vec<MigrationStatus>> {
        let created = self.bookkeeping().await?;
        let applied = match run!(self, read, "migrate_status", applied_migrations()) {
            Ok(a) => a,
            // Read-only file without the bookkeeping tables: a database never migrated.
            Err(StoreError::Query { .. }) if !created => Vec::new(),
            Err(e) => return Err(e),
        };
        let (known, _) = self.migrations();
        let mut out: Vec<MigrationStatus> = known
            .iter()
            .map(|m| MigrationStatus {
                version: m.version,
                name: m.name.to_string(),
                applied_at: applied
                    .iter()
                    .find(|a| a.version == m.version)
                    .map(|a| a.applied_at),
            })
            .collect();
        for a in applied {
            if !known.iter().any(|m| m.version == a.version) {
                out.push(MigrationStatus {
                    version: a.version,
                    name: a.name,
                    applied_at: Some(a.applied_at),
                });
            }
        }
        Ok(out)
    }

    /// Applies pending migrations (safe to call on every start, and from several
    /// processes or Galera nodes at once: see the `migrate` module for the lock), then,
    /// when the store has a secret key, seals plaintext SNMP secrets in place and re-seals
    /// those of a previous key ([`Store::reseal_secrets`]).
    pub async fn migrate(&self) -> Result<()> {
        self.migrate_schema().await?;
        let report = self.reseal_secrets().await?;
        if report.sealed_plaintext + report.resealed > 0 {
            tracing::info!(
                plaintext = report.sealed_plaintext,
                previous_key = report.resealed,
                "SNMP secrets encrypted in place"
            );
        }
        Ok(())
    }

    async fn migrate_schema(&self) -> Result<()> {
        let pending =
            |status: &[MigrationStatus]| status.iter().filter(|s| s.applied_at.is_none()).count();
        let status = self.migrate_status().await?;
        if pending(&status) == 0 {
            return Ok(());
        }
        if self.is_read_only() {
            return Err(self.read_only_error(format!("{} migration(s) pending", pending(&status))));
        }
        let owner = migrate::lock_owner();
        let started = std::time::Instant::now();
        loop {
            if run!(self, write, "migration lock", try_lock(&owner, now()))? {
                break;
            }
            if let Some((holder, since)) = run!(self, read, "migration lock", lock_holder())? {
                let age = (now() - since).to_std().unwrap_or_default();
                if age > migrate::STALE_LOCK {
                    tracing::warn!(%holder, %since, "taking over a stale migration lock");
                    run!(self, write, "migration lock", unlock(&holder))?;
                    continue;
                }
                if started.elapsed() > migrate::LOCK_WAIT {
                    return Err(StoreError::Migrate(format!(
                        "waited {:?} for the migration lock held by {holder} since {since}; if that process is gone, delete the row of migrations_lock",
                        migrate::LOCK_WAIT
                    )));
                }
                tracing::info!(%holder, "waiting for another process to finish migrating");
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let result = self.apply_pending().await;
        let unlocked = run!(self, write, "migration lock", unlock(&owner));
        result?;
        unlocked
    }

    async fn apply_pending(&self) -> Result<()> {
        // Re-read under the lock: another process may have applied some meanwhile.
        let status = self.migrate_status().await?;
        let (known, _) = self.migrations();
        for m in known {
            if status
                .iter()
                .any(|s| s.version == m.version && s.applied_at.is_some())
            {
                continue;
            }
            let statements = migrate::statements(m.sql);
            tracing::info!(version = m.version, name = m.name, "applying migration");
            run!(
                self,
                write,
                "migrate",
                apply_migration(&statements, m.version, m.name, now())
            )
            .map_err(|e| match e {
                StoreError::ReadOnly(m) => StoreError::ReadOnly(m),
                other => StoreError::Migrate(format!("{} ({}): {other}", m.name, self.dialect())),
            })?;
        }
        Ok(())
    }

    fn read_only_error(&self, what: String) -> StoreError {
        match &*self.inner {
            Inner::Sqlite(b) => b.explain(StoreError::ReadOnly(what)),
            Inner::Mysql(_) => StoreError::ReadOnly(what),
        }
    }

    /// Every row of every table, read in one transaction (a consistent copy).
    pub async fn export(&self) -> Result<Dump> {
        run!(self, write, "export", export_all())
    }

    /// Loads a [`Dump`] into this store, keeping ids. The target must be migrated and
    /// empty (`StoreError::Import` otherwise, nothing written). Rows go in transactions of
    /// `IMPORT_CHUNK` rows, parents first; if the import fails part-way, empty the target
    /// (or start from a fresh database) and run it again.
    pub async fn import(&self, dump: &Dump) -> Result<()> {
        if dump.format == 0 || dump.format > dump::DUMP_FORMAT {
            return Err(StoreError::Import(format!(
                "dump format {} is not supported (1 to {})",
                dump.format,
                dump::DUMP_FORMAT
            )));
        }
        let filled = run!(self, read, "import", non_empty_tables())?;
        if !filled.is_empty() {
            let list: Vec<String> = filled
                .iter()
                .map(|(t, n)| format!("{t}: {n} rows"))
                .collect();
            return Err(StoreError::Import(format!(
                "the target database is not empty ({})",
                list.join(", ")
            )));
        }
        for chunk in dump.users.chunks(dump::IMPORT_CHUNK) {
            run!(self, write, "import", import_users(chunk))?;
        }
        for chunk in dump.api_tokens.chunks(dump::IMPORT_CHUNK) {
            run!(self, write, "import", import_api_tokens(chunk))?;
        }
        for chunk in dump.devices.chunks(dump::IMPORT_CHUNK) {
            run!(self, write, "import", import_devices(chunk))?;
        }
        for chunk in dump.ports.chunks(dump::IMPORT_CHUNK) {
            run!(self, write, "import", import_ports(chunk))?;
        }
        for chunk in dump.events.chunks(dump::IMPORT_CHUNK) {
            run!(self, write, "import", import_events(chunk))?;
        }
        // The modules' tables, in chunks like the others.
        for part in dump::module_parts(dump) {
            run!(self, write, "import", import_modules(&part))?;
        }
        // A dump from a database without sealed secrets (or another key's, which fails
        // here naming APP_KEY) is sealed now rather than at the next start.
        self.reseal_secrets().await?;
        tracing::info!(
            devices = dump.devices.len(),
            ports = dump.ports.len(),
            events = dump.events.len(),
            users = dump.users.len(),
            api_tokens = dump.api_tokens.len(),
            "import done"
        );
        Ok(())
    }

    /// Cheap connectivity check for `lookout validate`.
    pub async fn ping(&self) -> Result<()> {
        run!(self, read, "ping", exec("ping", "SELECT 1"))
    }

    // --- devices
    /// `StoreError::Duplicate` when the hostname exists.
    /// Its SNMP secrets are stored sealed when the store has a key (`with_secret_keys`).
    pub async fn add_device(&self, new: &NewDevice) -> Result<Device> {
        let inserted = now();
        // Sealed once, before any retry: a retry recognises its own row by equal values.
        let sealed = self.seal_new_device(new);
        let sealed = &sealed;
        let mut d = run!(self, write, "add_device", add_device(sealed, inserted))?;
        d.snmp = new.snmp.clone();
        Ok(d)
    }
    /// Devices are read with their SNMP secrets opened; `StoreError::Secrets` (naming
    /// APP_KEY) when they cannot be.
    pub async fn device(&self, id: DeviceId) -> Result<Option<Device>> {
        let d = run!(self, read, "device", device(id))?;
        d.map(|d| self.open_device(d)).transpose()
    }
    pub async fn device_by_hostname(&self, hostname: &str) -> Result<Option<Device>> {
        let d = run!(
            self,
            read,
            "device_by_hostname",
            device_by_hostname(hostname)
        )?;
        d.map(|d| self.open_device(d)).transpose()
    }
    /// All devices ordered by hostname.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        let all = run!(self, read, "devices", devices())?;
        self.open_devices(all)
    }
    /// Replaces a device's SNMP settings, poller group and disabled flag, keeping its id,
    /// ports and history (secrets sealed as on add). `NotFound` for an unknown id.
    pub async fn update_device_settings(
        &self,
        id: DeviceId,
        snmp: &lookout_core::SnmpConfig,
        poller_group: i32,
        disabled: bool,
    ) -> Result<Device> {
        let Some(current) = self.device(id).await? else {
            return Err(StoreError::NotFound {
                what: "device",
                key: id.to_string(),
            });
        };
        let sealed = self.seal_new_device(&NewDevice {
            hostname: current.hostname.clone(),
            snmp: snmp.clone(),
            poller_group,
        });
        let sealed = &sealed.snmp;
        run!(
            self,
            write,
            "update_device_settings",
            update_device_settings(id, sealed, poller_group, disabled)
        )?;
        self.device(id).await?.ok_or_else(|| StoreError::NotFound {
            what: "device",
            key: id.to_string(),
        })
    }
    /// Removes the device with its ports and events; false when it did not exist.
    pub async fn remove_device(&self, id: DeviceId) -> Result<bool> {
        run!(self, write, "remove_device", remove_device(id))
    }
    /// Writes what one poll learned about the device (one statement). Fields the poll did
    /// not learn (`None`) keep their stored value; `StoreError::NotFound` for an unknown id.
    pub async fn update_device_poll(&self, id: DeviceId, update: &DevicePollUpdate) -> Result<()> {
        run!(
            self,
            write,
            "update_device_poll",
            update_device_poll(id, update)
        )
    }

    // --- poll fencing (distributed polling)
    /// Registers claim `token` as the device's poll token before polling it. False when a
    /// newer (larger) token is registered already: someone newer owns the device, skip
    /// the poll. `StoreError::NotFound` for an unknown device.
    pub async fn register_poll_token(&self, id: DeviceId, token: u64) -> Result<bool> {
        // Once per poll, like the commit: on the writer thread (see `write_on_writer`).
        if let Inner::Sqlite(b) = &*self.inner {
            return b
                .write_on_writer("register_poll_token", move |c| {
                    Box::pin(sqlite_ops::register_poll_token(c, id, token))
                })
                .await;
        }
        run!(
            self,
            write,
            "register_poll_token",
            register_poll_token(id, token)
        )
    }
    /// The device's registered poll token, if any.
    pub async fn poll_token(&self, id: DeviceId) -> Result<Option<u64>> {
        run!(self, read, "poll_token", poll_token(id))
    }
    /// [`Store::update_device_poll`] plus an `ok` row in `device_poll_log`, in one
    /// transaction, only while `fence.token` is still the device's poll token; else
    /// `StoreError::Fenced` and nothing is written.
    pub async fn update_device_poll_fenced(
        &self,
        id: DeviceId,
        update: &DevicePollUpdate,
        fence: &PollFence,
    ) -> Result<()> {
        let finished = now();
        run!(
            self,
            write,
            "update_device_poll_fenced",
            update_device_poll_fenced(id, update, fence, finished)
        )
    }
    /// Logs a poll that wrote nothing (`Failed` or `Stale`); an `Ok` poll is logged by
    /// [`Store::update_device_poll_fenced`].
    pub async fn log_poll(&self, entry: &PollLogEntry) -> Result<()> {
        run!(self, write, "log_poll", insert_poll_log(entry))
    }
    /// Deletes poll log rows of polls started before `before` (the master's clean-up).
    pub async fn prune_poll_log(&self, before: Timestamp) -> Result<u64> {
        run!(self, write, "prune_poll_log", prune_poll_log(before))
    }
    /// Polls started at or after `since`, oldest first.
    pub async fn poll_log(&self, since: Timestamp) -> Result<Vec<PollLogEntry>> {
        run!(self, read, "poll_log", poll_log(since))
    }

    // --- ports
    /// Current (not deleted) ports of a device ordered by ifIndex.
    pub async fn ports(&self, device_id: DeviceId) -> Result<Vec<Port>> {
        run!(self, read, "ports", ports(device_id))
    }
    /// The ifIndexes of all the device's port rows (deleted ones too): what a poll needs to
    /// see whether any interface is new (only then can one have been renumbered), without
    /// reading whole port rows.
    pub async fn port_if_indexes(&self, device_id: DeviceId) -> Result<Vec<i64>> {
        run!(self, read, "port_if_indexes", port_if_indexes(device_id))
    }
    /// The `limit` busiest current ports by in + out octets/s.
    pub async fn top_ports(&self, limit: i64) -> Result<Vec<Port>> {
        run!(self, read, "top_ports", top_ports(limit))
    }
    /// Current ports of all devices with an id above `after`, in id order, at most `limit`.
    pub async fn ports_after(&self, after: PortId, limit: i64) -> Result<Vec<Port>> {
        run!(self, read, "ports_after", ports_after(after, limit))
    }
    pub async fn port(&self, port_id: PortId) -> Result<Option<Port>> {
        run!(self, read, "port", port(port_id))
    }
    /// Stores the interfaces one poll read at `polled_at`, matched to existing rows by
    /// ifIndex, computing rates from the previous counters (counter wrap/reset gives no
    /// rate rather than a huge one). Ports missing from `polled` are marked deleted. One
    /// transaction.
    ///
    /// Rates follow `rates::counter_rate`: a counter that went backwards gives no rate,
    /// except a 32-bit counter (non-HC poll, or the error counters) with both readings
    /// below 2^32, taken as one wrap if the rate fits the interface speed. Running the same
    /// poll again (same `polled_at`, e.g. a retried transaction) does not change the rates.
    /// A port that comes back after being deleted is listed in `added` again, without a
    /// rate for that poll.
    pub async fn sync_ports(
        &self,
        device_id: DeviceId,
        polled: &[PortPoll],
        polled_at: Timestamp,
    ) -> Result<PortSync> {
        let polled_at = micros(polled_at);
        run!(
            self,
            write,
            "sync_ports",
            sync_ports(device_id, polled, polled_at)
        )
    }

    // --- event log
    /// `StoreError::NotFound` when `device_id` names no device.
    pub async fn log_event(
        &self,
        device_id: Option<DeviceId>,
        kind: &str,
        message: &str,
        severity: Severity,
        reference: Option<i64>,
    ) -> Result<()> {
        let at = now();
        run!(
            self,
            write,
            "log_event",
            log_event(device_id, kind, message, severity, reference, at)
        )
    }
    /// Deletes events logged before `before` (the master's eventlog purge,
    /// `EVENTLOG_PURGE_DAYS`); returns how many. In transactions of at most
    /// [`Store::PURGE_BATCH`] rows each, so a large backlog never becomes one huge write set
    /// (Galera certifies and replicates a transaction as a whole).
    pub async fn purge_events(&self, before: Timestamp) -> Result<u64> {
        self.purge_events_in_batches(before, Self::PURGE_BATCH)
            .await
    }
    /// Rows per transaction of [`Store::purge_events`].
    pub const PURGE_BATCH: u32 = 10_000;
    /// [`Store::purge_events`] with another batch size (tests use small ones).
    pub async fn purge_events_in_batches(&self, before: Timestamp, batch: u32) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = run!(
                self,
                write,
                "purge_events",
                purge_events_batch(before, batch)
            )?;
            total += n;
            if n < u64::from(batch.max(1)) {
                return Ok(total);
            }
        }
    }
    /// Newest first; `None` lists the events of all devices (and those of none).
    pub async fn events(&self, device_id: Option<DeviceId>, limit: u32) -> Result<Vec<Event>> {
        run!(self, read, "events", events(device_id, limit))
    }

    /// Events newest first at or after `from` and before `until`, skipping `start`, at most
    /// `limit`; `None` for every device's.
    pub async fn events_page(
        &self,
        device_id: Option<DeviceId>,
        from: Timestamp,
        until: Timestamp,
        start: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        run!(
            self,
            read,
            "events_page",
            events_page(device_id, from, until, start, limit)
        )
    }

    // --- users and API tokens
    /// `StoreError::Duplicate` when the username exists.
    pub async fn add_user(&self, username: &str, password_hash: &str, level: i32) -> Result<User> {
        run!(
            self,
            write,
            "add_user",
            add_user(username, password_hash, level)
        )
    }
    pub async fn user(&self, user_id: i64) -> Result<Option<User>> {
        run!(self, read, "user", user(user_id))
    }
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        run!(self, read, "user_by_username", user_by_username(username))
    }
    /// `StoreError::NotFound` for an unknown user.
    pub async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        run!(
            self,
            write,
            "set_password",
            set_password(user_id, password_hash)
        )
    }
    /// Stores a token given as its SHA-256 hex digest (the token itself is never stored).
    /// `NotFound` for an unknown user, `Duplicate` when the digest exists.
    pub async fn add_api_token(
        &self,
        user_id: i64,
        token_sha256: &str,
        description: &str,
    ) -> Result<()> {
        run!(
            self,
            write,
            "add_api_token",
            add_api_token(user_id, token_sha256, description)
        )
    }
    /// The user owning an enabled token with this digest.
    pub async fn user_by_api_token(&self, token_sha256: &str) -> Result<Option<User>> {
        run!(
            self,
            read,
            "user_by_api_token",
            user_by_api_token(token_sha256)
        )
    }
}

// After `run!`, which they use (macro_rules scoping is textual).
mod access;
pub use access::{ApiTokenInfo, AuthlogRow, LoginFailures, SessionRecord};
mod alerts;
mod device_secrets;
pub use device_secrets::{ResealReport, SecretsStatus};
mod discovery;
mod health;
pub use alerts::{
    AlertChange, AlertHook, AlertInput, AlertKey, AlertLogRow, AlertRow, AlertRowNew, AlertRule,
    AlertTransport, AppliedChanges, AttemptOutcome, DeliveryAttempt, Maintenance, MasterFence,
    NewAlertRule, OutboxNew, OutboxRow, PollAlerts,
};
pub use discovery::{
    Ipv6Address, Ipv6AddressPoll, Link, LinkPoll, NewEvent, PollCommit, PollCommitted,
    PortEventsFn, PortsStage,
};
pub use health::{
    Ipv4Address, Ipv4AddressPoll, Mempool, MempoolPoll, ModulePerf, Processor, ProcessorPoll,
    RrdInventory, Storage, StoragePoll,
};
