//! The MySQL/MariaDB backend, single server or Galera cluster: one lazy pool per listed
//! node, node health from `wsrep_*`, fail-over and the retry policy for transient errors,
//! plus the dialect hooks of `define_ops!`.
//!
//! Galera rules followed here: the store sticks to one node (the first healthy one in the
//! configured order) so that concurrent writes of one process do not conflict with each
//! other across nodes; it moves to the next healthy node when the current one stops
//! answering or is not ready. A transaction that fails with a deadlock or certification
//! conflict (1213), a lock wait timeout (1205), WSREP not ready (1047) or a lost
//! connection is run again as a whole, with exponential back-off; connection-level
//! failures also move to another node first.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lookout_core::Timestamp;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Connection as _, Row as _};

use crate::{Result, StoreError};

pub(crate) use crate::sql::DEVICE_LOCK_FOR_UPDATE as DEVICE_LOCK;
/// Which conflict clause the batched port write takes.
pub(crate) const SQLITE: bool = false;

/// Attempts of one transaction before its error is returned.
pub(crate) const MAX_ATTEMPTS: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A node that does not complete a connection in this time is treated as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a pooled connection before the attempt counts as failed.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// `DB_SSL_MODE`, as sqlx's `MySqlSslMode` (and MySQL's `--ssl-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MysqlSslMode {
    /// Plain TCP.
    Disabled,
    /// TLS if the server offers it, else plain (the default, as MySQL's clients).
    #[default]
    Preferred,
    /// TLS or fail; the server certificate is not checked.
    Required,
    /// TLS with the server certificate checked against the CA (`DB_SSL_CA`).
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyIdentity,
}

impl MysqlSslMode {
    /// Parses `disabled|preferred|required|verify_ca|verify_identity` (case-insensitive,
    /// `-` for `_` accepted).
    pub fn parse(text: &str) -> Option<MysqlSslMode> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => Some(MysqlSslMode::Disabled),
            "preferred" => Some(MysqlSslMode::Preferred),
            "required" => Some(MysqlSslMode::Required),
            "verify_ca" => Some(MysqlSslMode::VerifyCa),
            "verify_identity" => Some(MysqlSslMode::VerifyIdentity),
            _ => None,
        }
    }

    fn to_sqlx(self) -> sqlx::mysql::MySqlSslMode {
        use sqlx::mysql::MySqlSslMode as M;
        match self {
            MysqlSslMode::Disabled => M::Disabled,
            MysqlSslMode::Preferred => M::Preferred,
            MysqlSslMode::Required => M::Required,
            MysqlSslMode::VerifyCa => M::VerifyCa,
            MysqlSslMode::VerifyIdentity => M::VerifyIdentity,
        }
    }
}

/// TLS for MySQL/MariaDB connections (`DB_SSL_*`): the mode, the CA that signed the
/// server's certificate, and an optional client certificate and key (PEM files).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlTls {
    pub mode: MysqlSslMode,
    pub ca: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

impl MysqlTls {
    fn apply(&self, mut o: MySqlConnectOptions) -> MySqlConnectOptions {
        o = o.ssl_mode(self.mode.to_sqlx());
        if let Some(ca) = &self.ca {
            o = o.ssl_ca(ca);
        }
        if let Some(cert) = &self.cert {
            o = o.ssl_client_cert(cert);
        }
        if let Some(key) = &self.key {
            o = o.ssl_client_key(key);
        }
        o
    }
}

pub(crate) fn enc_u64(v: Option<u64>) -> Option<u64> {
    v
}

pub(crate) fn get_u64(r: &MySqlRow, col: &str) -> std::result::Result<Option<u64>, sqlx::Error> {
    r.try_get(col)
}

pub(crate) fn enc_ts(t: Timestamp) -> Timestamp {
    t
}

struct Node {
    label: String,
    /// Without a database selected: for creating the database.
    server: MySqlConnectOptions,
    /// With the database: for health checks, so that a missing database or a user
    /// without access to it is an open error, not a failure of the first query.
    options: MySqlConnectOptions,
    pool: MySqlPool,
}

pub(crate) struct MysqlBackend {
    nodes: Vec<Node>,
    /// Index of the node in use.
    current: AtomicUsize,
    /// Transactions run again after a transient error, and of those after a deadlock or
    /// certification conflict (1213): for measurements and tests (`Store::retries`).
    retries: AtomicU64,
    deadlocks: AtomicU64,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not transient: return the error.
    No,
    /// Conflict on a healthy node (deadlock, certification failure): run it again there.
    SameNode,
    /// The node is gone or not ready: move to another node, then run it again.
    OtherNode,
}

/// The MySQL error number of a query error, if it is one.
fn error_number(e: &StoreError) -> Option<u16> {
    let (StoreError::Query { source, .. } | StoreError::Open { source, .. }) = e else {
        return None;
    };
    match source.downcast_ref::<sqlx::Error>()? {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Classifies an error for the retry loop.
pub(crate) fn classify(e: &StoreError) -> Retry {
    let source = match e {
        StoreError::Query { source, .. } | StoreError::Open { source, .. } => source,
        _ => return Retry::No,
    };
    let Some(e) = source.downcast_ref::<sqlx::Error>() else {
        return Retry::No;
    };
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => Retry::OtherNode,
        sqlx::Error::Database(d) => {
            let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() else {
                return Retry::No;
            };
            match my.number() {
                // deadlock / certification conflict, lock wait timeout, and a unique key
                // taken by a concurrent writer (the retry sees its row and updates it)
                1213 | 1205 | 1062 => Retry::SameNode,
                // WSREP not ready (non-primary), server shutting down, connection killed,
                // too many connections, MariaDB idle disconnect
                1047 | 1053 | 1927 | 1040 | 4031 => Retry::OtherNode,
                _ => Retry::No,
            }
        }
        _ => Retry::No,
    }
}

/// Delay before attempt `attempt` (1-based count of failures so far), with jitter so
/// that writers that conflicted do not collide again.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let capped = exp.min(BACKOFF_MAX);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // up to +50 %
    capped + capped.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

const NOT_SYNCED: &str = "galera node not synced";

/// How picky a node check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Ready and in the primary component: the node accepts queries.
    Ready,
    /// Also `Synced`: not a donor or desynced node, which may stall writes (an rsync SST
    /// blocks the donor) or lag behind. Preferred when choosing a node.
    Synced,
}

/// Checks that a node may be used: either not a Galera node (`wsrep_on` absent or OFF; a
/// plain MariaDB reports `wsrep_ready` OFF too), or ready and in the primary component
/// (and synced, for `Want::Synced`). `Ok(true)` for a Galera node.
async fn check_node(c: &mut MySqlConnection, want: Want) -> std::result::Result<bool, sqlx::Error> {
    let wsrep_on: Option<(String, String)> =
        sqlx::query_as("SHOW GLOBAL VARIABLES WHERE Variable_name = 'wsrep_on'")
            .fetch_optional(&mut *c)
            .await?;
    if !wsrep_on.is_some_and(|(_, v)| v.eq_ignore_ascii_case("ON")) {
        return Ok(false);
    }
    let status: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN \
         ('wsrep_ready', 'wsrep_cluster_status', 'wsrep_local_state_comment')",
    )
    .fetch_all(&mut *c)
    .await?;
    let get = |name: &str| {
        status
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let ready = get("wsrep_ready");
    let cluster = get("wsrep_cluster_status");
    if !ready.eq_ignore_ascii_case("ON") || !cluster.eq_ignore_ascii_case("Primary") {
        return Err(sqlx::Error::Protocol(format!(
            "galera node not usable: wsrep_ready={ready}, wsrep_cluster_status={cluster}"
        )));
    }
    let state = get("wsrep_local_state_comment");
    if want == Want::Synced && !state.eq_ignore_ascii_case("Synced") {
        return Err(sqlx::Error::Protocol(format!(
            "{NOT_SYNCED}: wsrep_local_state_comment={state}"
        )));
    }
    Ok(true)
}

/// A new pooled connection: the node must be ready; on Galera the session also waits for
/// causality before reads and transactions (`wsrep_sync_wait=1`: SELECT, SHOW, BEGIN). Without
/// it a transaction on one node may not yet see what another node committed a moment ago;
/// behind a load balancer that spreads connections (HAProxy round robin), a poll's fencing
/// token registered through one connection then read through another looked stale.
async fn prepare_connection(c: &mut MySqlConnection) -> std::result::Result<(), sqlx::Error> {
    if check_node(c, Want::Ready).await? {
        sqlx::raw_sql("SET SESSION wsrep_sync_wait = 1")
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

fn valid_database_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

impl MysqlBackend {
    /// Builds a lazy pool per node and picks the first healthy node. Creates the database
    /// when it is missing and the user may (a fresh install), else leaves it to the DBA.
    pub(crate) async fn open(
        hosts: &[(String, u16)],
        database: &str,
        username: &str,
        password: &str,
        tls: &MysqlTls,
    ) -> Result<MysqlBackend> {
        let what = format!(
            "mysql://{username}@{}/{database}",
            hosts
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        if hosts.is_empty() {
            return Err(StoreError::Open {
                what,
                source: "no database host configured".into(),
            });
        }
        if !valid_database_name(database) {
            return Err(StoreError::Open {
                what,
                source: format!(
                    "database name {database:?} must be 1-64 characters of A-Z, a-z, 0-9, _ and $"
                )
                .into(),
            });
        }
        let mut nodes = Vec::new();
        for (host, port) in hosts {
            let mut base = MySqlConnectOptions::new()
                .host(host)
                .port(*port)
                .username(username);
            if !password.is_empty() {
                // An empty password set would be sent as one ("using password: YES").
                base = base.password(password);
            }
            let base = base
                // DATETIME columns hold UTC; the session zone only matters for NOW().
                .timezone(Some("+00:00".to_string()))
                .charset("utf8mb4");
            let base = tls.apply(base);
            let pool = MySqlPoolOptions::new()
                .max_connections(16)
                // Short: a dead node makes the pool retry connecting until this time-out
                // before the error reaches `recover`; waits for a busy pool are retried.
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // Ping on checkout (the default, kept on purpose): a pooled connection the
                // server dropped is replaced before use instead of costing a retry.
                .test_before_acquire(true)
                // Never back into the pool inside a transaction (see `tx::release_clean`).
                .after_release(|c, _meta| Box::pin(crate::tx::release_clean(c)))
                .after_connect(|c, _meta| Box::pin(async move { prepare_connection(c).await }))
                .connect_lazy_with(base.clone().database(database));
            nodes.push(Node {
                label: format!("{host}:{port}"),
                options: base.clone().database(database),
                server: base,
                pool,
            });
        }
        let backend = MysqlBackend {
            nodes,
            current: AtomicUsize::new(0),
            retries: AtomicU64::new(0),
            deadlocks: AtomicU64::new(0),
        };
        // Create the database if missing (a fresh install), on the first node that answers;
        // lacking the privilege is fine when it exists.
        for node in &backend.nodes {
            if let Ok(mut c) = MySqlConnection::connect_with(&node.server).await {
                let sql =
                    format!("CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4");
                if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                {
                    tracing::debug!(node = %node.label, error = %e, "cannot create the database (may exist already)");
                }
                let _ = c.close().await;
                break;
            }
        }
        match backend.first_healthy(0).await {
            Ok(i) => {
                backend.current.store(i, Ordering::Relaxed);
                tracing::info!(node = %backend.nodes[i].label, "using database node");
                Ok(backend)
            }
            Err(errors) => Err(StoreError::Open {
                what,
                source: format!("no usable node: {}", errors.join("; ")).into(),
            }),
        }
    }

    pub(crate) fn current_label(&self) -> &str {
        &self.nodes[self.current.load(Ordering::Relaxed) % self.nodes.len()].label
    }

    pub(crate) async fn close(&self) {
        for n in &self.nodes {
            n.pool.close().await;
        }
    }

    /// Whether node `i` connects and is ready, on a fresh direct connection: one attempt,
    /// so a dead node costs a refused connect rather than the pool's connect retries until
    /// its acquire timeout.
    async fn check(&self, i: usize, want: Want) -> std::result::Result<(), String> {
        let node = &self.nodes[i];
        let res = async {
            let mut c = tokio::time::timeout(
                CONNECT_TIMEOUT,
                MySqlConnection::connect_with(&node.options),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
            let checked = check_node(&mut c, want).await.map(|_| ());
            let _ = c.close().await;
            checked
        }
        .await;
        res.map_err(|e| {
            tracing::warn!(node = %node.label, error = %e, "database node not usable");
            format!("{}: {e}", node.label)
        })
    }

    /// The first node from `start` on (wrapping) that connects, is ready and synced; failing
    /// that, the first that is at least ready (a donor beats no node).
    async fn first_healthy(&self, start: usize) -> std::result::Result<usize, Vec<String>> {
        let n = self.nodes.len();
        let mut errors = Vec::new();
        let mut ready = None;
        for k in 0..n {
            let i = (start + k) % n;
            match self.check(i, Want::Synced).await {
                Ok(()) => return Ok(i),
                Err(e) => {
                    // Ready but not synced: no need to connect again to know it.
                    if ready.is_none() && e.contains(NOT_SYNCED) {
                        ready = Some(i);
                    }
                    errors.push(e);
                }
            }
        }
        ready.ok_or(errors)
    }

    /// The pool of the node in use and its index.
    pub(crate) fn pool(&self) -> (usize, &MySqlPool) {
        let i = self.current.load(Ordering::Relaxed) % self.nodes.len();
        (i, &self.nodes[i].pool)
    }

    /// Called after attempt `attempt` failed on node `node` with a transient error:
    /// moves away from a failed node, then waits the back-off.
    /// `(retries, of which after a 1213 deadlock/certification conflict)` so far.
    pub(crate) fn retries(&self) -> (u64, u64) {
        (
            self.retries.load(Ordering::Relaxed),
            self.deadlocks.load(Ordering::Relaxed),
        )
    }

    pub(crate) async fn recover(
        &self,
        op: &str,
        node: usize,
        attempt: u32,
        retry: Retry,
        e: &StoreError,
    ) {
        let delay = backoff(attempt);
        self.retries.fetch_add(1, Ordering::Relaxed);
        if error_number(e) == Some(1213) {
            self.deadlocks.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(op, node = %self.nodes[node].label, attempt, ?retry, error = %e, ?delay, "transient database error, retrying");
        // Only the first task to notice moves the index; others see it moved already. A
        // node that still checks out healthy (a dropped connection, a pool time-out under
        // load) is kept: moving would only spread writes over nodes.
        if retry == Retry::OtherNode
            && self.nodes.len() > 1
            && self.current.load(Ordering::Relaxed) == node
            && self.check(node, Want::Ready).await.is_err()
        {
            match self.first_healthy(node + 1).await {
                Ok(i) => {
                    if self
                        .current
                        .compare_exchange(node, i, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                        && i != node
                    {
                        tracing::warn!(from = %self.nodes[node].label, to = %self.nodes[i].label, "database fail-over");
                    }
                }
                Err(_) => tracing::error!("no database node is usable"),
            }
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= BACKOFF_BASE && backoff(1) < BACKOFF_BASE * 2);
        assert!(backoff(3) >= BACKOFF_BASE * 4);
        assert!(backoff(30) <= BACKOFF_MAX.mul_f64(1.5));
    }

    #[test]
    fn database_names() {
        assert!(valid_database_name("lookout_test_1a2b"));
        assert!(!valid_database_name("a`; DROP DATABASE x"));
        assert!(!valid_database_name(""));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let io = StoreError::Query {
            op: "x",
            source: Box::new(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
        };
        assert_eq!(classify(&io), Retry::OtherNode);
        let not_found = StoreError::NotFound {
            what: "device",
            key: "1".into(),
        };
        assert_eq!(classify(&not_found), Retry::No);
        let decode = StoreError::Query {
            op: "x",
            source: Box::new(sqlx::Error::RowNotFound),
        };
        assert_eq!(classify(&decode), Retry::No);
    }
}
