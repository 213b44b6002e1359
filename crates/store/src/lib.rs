//! The Lookout store: devices, ports, users, API tokens and the event log, in SQLite
//! (embedded default) or MySQL/MariaDB (incl. Galera). `Store` is a cheap-to-clone handle
//! over a crate-private backend trait, chosen from configuration at start-up; every
//! backend passes the same contract tests.
//!
//! Table and column names follow LibreNMS (`devices.device_id`, `sysName`, `ports.ifIndex`,
//! `eventlog`, ...) so that a LibreNMS user's SQL carries over.
//!
//! NOTE: the API below is the contract other crates code against; bodies are being built.

use lookout_core::{
    Device, DeviceId, DevicePollUpdate, NewDevice, Port, PortId, PortPoll, Timestamp,
};
use serde::{Deserialize, Serialize};

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
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error("{what} {key:?} already exists")]
    Duplicate { what: &'static str, key: String },
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
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

/// Handle to the store; clone it freely.
#[derive(Clone)]
pub struct Store {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl Store {
    /// Opens (creating if needed) the database. Does not migrate.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        todo!()
    }
    /// Applies pending migrations (safe to call on every start).
    pub async fn migrate(&self) -> Result<()> {
        todo!()
    }
    /// Cheap connectivity check for `lookout validate`.
    pub async fn ping(&self) -> Result<()> {
        todo!()
    }

    // --- devices
    /// `StoreError::Duplicate` when the hostname exists.
    pub async fn add_device(&self, new: &NewDevice) -> Result<Device> {
        todo!()
    }
    pub async fn device(&self, id: DeviceId) -> Result<Option<Device>> {
        todo!()
    }
    pub async fn device_by_hostname(&self, hostname: &str) -> Result<Option<Device>> {
        todo!()
    }
    /// All devices ordered by hostname.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        todo!()
    }
    /// Removes the device with its ports and events; false when it did not exist.
    pub async fn remove_device(&self, id: DeviceId) -> Result<bool> {
        todo!()
    }
    /// Writes what one poll learned about the device (one statement).
    pub async fn update_device_poll(&self, id: DeviceId, update: &DevicePollUpdate) -> Result<()> {
        todo!()
    }

    // --- ports
    /// Current (not deleted) ports of a device ordered by ifIndex.
    pub async fn ports(&self, device_id: DeviceId) -> Result<Vec<Port>> {
        todo!()
    }
    pub async fn port(&self, port_id: PortId) -> Result<Option<Port>> {
        todo!()
    }
    /// Stores the interfaces one poll read at `polled_at`, matched to existing rows by
    /// ifIndex, computing rates from the previous counters (counter wrap/reset gives no
    /// rate rather than a huge one). Ports missing from `polled` are marked deleted. One
    /// transaction.
    pub async fn sync_ports(
        &self,
        device_id: DeviceId,
        polled: &[PortPoll],
        polled_at: Timestamp,
    ) -> Result<PortSync> {
        todo!()
    }

    // --- event log
    pub async fn log_event(
        &self,
        device_id: Option<DeviceId>,
        kind: &str,
        message: &str,
        severity: Severity,
        reference: Option<i64>,
    ) -> Result<()> {
        todo!()
    }
    /// Newest first.
    pub async fn events(&self, device_id: Option<DeviceId>, limit: u32) -> Result<Vec<Event>> {
        todo!()
    }

    // --- users and API tokens
    pub async fn add_user(&self, username: &str, password_hash: &str, level: i32) -> Result<User> {
        todo!()
    }
    pub async fn user(&self, user_id: i64) -> Result<Option<User>> {
        todo!()
    }
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        todo!()
    }
    pub async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        todo!()
    }
    /// Stores a token given as its SHA-256 hex digest (the token itself is never stored).
    pub async fn add_api_token(&self, user_id: i64, token_sha256: &str, description: &str) -> Result<()> {
        todo!()
    }
    pub async fn user_by_api_token(&self, token_sha256: &str) -> Result<Option<User>> {
        todo!()
    }
}
