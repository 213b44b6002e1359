//! The command line: subcommands and flags (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Lookout network monitoring.
#[derive(Debug, Parser)]
#[command(name = "lookout", version, about, propagate_version = true)]
pub struct Cli {
    /// Directory of the embedded defaults (SQLite file, RRD files, `.env`).
    #[arg(long, global = true, env = "LOOKOUT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Start a new installation in the data dir if it holds none (otherwise every command
    /// but `serve`, `migrate`, `validate`, `db import`, `snmp` and `bench` refuses such a dir,
    /// so that a mistyped --data-dir is not a silent empty installation).
    #[arg(long, global = true)]
    pub init: bool,
    /// More log output (-v debug, -vv trace); LOOKOUT_LOG / RUST_LOG override.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web UI/API, the dispatcher and the poller on this node.
    Serve(ServeArgs),
    /// Add, list, remove and poll devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Query a device over SNMP exactly as Lookout's poller does.
    #[command(subcommand)]
    Snmp(SnmpCommand),
    /// Manage web users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Apply database migrations (and encrypt plaintext SNMP secrets in place).
    Migrate(MigrateArgs),
    /// The APP_KEY that seals sessions and the stored SNMP secrets.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Copy the whole database out to / in from a JSON file (e.g. SQLite → MariaDB).
    #[command(subcommand)]
    Db(DbCommand),
    /// Check configuration and connectivity to every configured backend.
    Validate {
        /// Print the checks as JSON (ok, warn, fail with what and fix).
        #[arg(long)]
        json: bool,
    },
    /// The distributed poller: nodes, master, queues.
    #[command(subcommand)]
    Poller(PollerCommand),
    /// Alerts, alert rules, transports, the outbox and maintenance windows.
    #[command(subcommand)]
    Alert(crate::alert_cli::AlertCommand),
    /// Benchmarks on this machine (loopback only).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One node polling simulated devices: poll lag percentiles, polls/min, behind or not,
    /// CPU per process and store statements per minute (docs/benchmarks.md).
    Dispatcher(crate::bench::DispatcherBenchArgs),
    /// Alerting at scale: the alert hook's share of a poll's commit, rule evaluation per
    /// device and per interval, and the master's time pass (docs/benchmarks.md).
    Alerts(crate::bench_alerts::AlertsBenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum PollerCommand {
    /// Nodes of the cluster (alive or dead), the master and the queue depths, read from
    /// the coordination backend (REDIS_* settings; memory = this process only).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove a decommissioned node's record from the status (it reappears if it runs).
    Forget { node_id: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Web listener (env LOOKOUT_LISTEN), default 127.0.0.1:8000.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Roles of this node: any of web,dispatcher,poller (env LOOKOUT_ROLES; default all).
    #[arg(long, value_name = "ROLES")]
    pub roles: Option<String>,
    /// Stable name of this node (env NODE_ID; default the hostname).
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Poller groups this node's workers serve, e.g. 0,2 (env POLLER_GROUP; default 0).
    #[arg(long, value_name = "GROUPS")]
    pub poller_groups: Option<String>,
}

/// SNMP settings of a device, shared by `device add` and `snmp get/walk`.
#[derive(Debug, Clone, Args)]
pub struct SnmpArgs {
    /// UDP port of the agent.
    #[arg(long, default_value_t = 161)]
    pub port: u16,
    /// Community (v1/v2c); `-` reads it from stdin. On the command line it is visible in
    /// `ps` and the shell history: prefer LOOKOUT_SNMP_COMMUNITY, --community-file or `-`.
    #[arg(
        short = 'c',
        long,
        default_value = "public",
        env = "LOOKOUT_SNMP_COMMUNITY",
        hide_env_values = true
    )]
    pub community: String,
    /// Read the community from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "community")]
    pub community_file: Option<PathBuf>,
    /// v1, v2c or v3.
    #[arg(long = "snmp-version", default_value = "v2c")]
    pub snmp_version: String,
    /// v3: noAuthNoPriv, authNoPriv or authPriv.
    #[arg(long, default_value = "noAuthNoPriv")]
    pub security_level: String,
    /// v3 user name.
    #[arg(long, default_value = "")]
    pub auth_user: String,
    /// v3: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512.
    #[arg(long, default_value = "SHA")]
    pub auth_protocol: String,
    /// v3 authentication password; `-` reads it from stdin (see --community).
    #[arg(
        long,
        default_value = "",
        env = "LOOKOUT_SNMP_AUTHPASS",
        hide_env_values = true
    )]
    pub auth_password: String,
    /// Read the v3 authentication password from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "auth_password")]
    pub auth_password_file: Option<PathBuf>,
    /// v3: DES, AES, AES-192, AES-256.
    #[arg(long, default_value = "AES")]
    pub priv_protocol: String,
    /// v3 privacy password; `-` reads it from stdin (see --community).
    #[arg(
        long,
        default_value = "",
        env = "LOOKOUT_SNMP_PRIVPASS",
        hide_env_values = true
    )]
    pub priv_password: String,
    /// Read the v3 privacy password from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "priv_password")]
    pub priv_password_file: Option<PathBuf>,
    /// Per-request timeout.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u32,
    /// Retries after the first try.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a device (it is probed over SNMP first), or many with --from-file.
    Add {
        /// Hostname or IP address.
        #[arg(required_unless_present = "from_file", conflicts_with = "from_file")]
        host: Option<String>,
        /// Add every device listed in FILE, one per line: hostname[,community[,port[,version]]]
        /// (`#` starts a comment); the flags give the defaults. Prints a result per line;
        /// exits 1 when any line failed (the others are added).
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        #[command(flatten)]
        snmp: Box<SnmpArgs>,
        /// Poller group the device belongs to.
        #[arg(long, default_value_t = 0)]
        poller_group: i32,
        /// Store the device even if the probe fails.
        #[arg(long)]
        force: bool,
    },
    /// List devices.
    List {
        #[arg(long)]
        json: bool,
        /// With --json: include the SNMP community and v3 passwords (left out otherwise).
        #[arg(long, requires = "json")]
        show_secrets: bool,
    },
    /// Change a device's SNMP settings, poller group or disabled flag, keeping its
    /// device_id, ports and history. The new settings are probed first (--force skips it).
    Update {
        host: String,
        #[command(flatten)]
        changes: Box<DeviceUpdateArgs>,
        /// Store the change even if the probe with the new settings fails.
        #[arg(long)]
        force: bool,
    },
    /// Remove a device with its ports and events (RRD files are kept).
    Remove { host: String },
    /// Poll a device once in the foreground and print what was found.
    Poll {
        host: String,
        #[arg(long)]
        json: bool,
    },
    /// Run discovery now (OS, ports, processors, memory, storage, IP addresses, LLDP/CDP
    /// neighbours) for one device or all, and print what was found.
    Discover {
        host: Option<String>,
        /// Every (enabled) device.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

/// What `device update` may change; each flag left out keeps the stored value.
#[derive(Debug, Args)]
pub struct DeviceUpdateArgs {
    /// New community (v1/v2c); prefer LOOKOUT_SNMP_COMMUNITY to keep it out of `ps`.
    #[arg(
        short = 'c',
        long,
        env = "LOOKOUT_SNMP_COMMUNITY",
        hide_env_values = true
    )]
    pub community: Option<String>,
    /// v1, v2c or v3.
    #[arg(long = "snmp-version")]
    pub snmp_version: Option<String>,
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub timeout_ms: Option<u32>,
    #[arg(long)]
    pub retries: Option<u32>,
    /// v3: noAuthNoPriv, authNoPriv or authPriv.
    #[arg(long)]
    pub security_level: Option<String>,
    #[arg(long)]
    pub auth_user: Option<String>,
    #[arg(long)]
    pub auth_protocol: Option<String>,
    #[arg(long, env = "LOOKOUT_SNMP_AUTHPASS", hide_env_values = true)]
    pub auth_password: Option<String>,
    #[arg(long)]
    pub priv_protocol: Option<String>,
    #[arg(long, env = "LOOKOUT_SNMP_PRIVPASS", hide_env_values = true)]
    pub priv_password: Option<String>,
    #[arg(long)]
    pub poller_group: Option<i32>,
    /// Stop polling the device (kept with its history).
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Poll the device again.
    #[arg(long)]
    pub enable: bool,
}

#[derive(Debug, Subcommand)]
pub enum SnmpCommand {
    /// GET one or more OIDs.
    Get {
        host: String,
        #[arg(required = true)]
        oids: Vec<String>,
        #[command(flatten)]
        snmp: Box<SnmpArgs>,
        #[arg(long)]
        json: bool,
    },
    /// Walk a subtree (GETBULK for v2c/v3, GETNEXT for v1).
    Walk {
        host: String,
        oid: String,
        #[command(flatten)]
        snmp: Box<SnmpArgs>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (password from --password, LOOKOUT_USER_PASSWORD, or generated).
    Add {
        username: String,
        #[arg(long, env = "LOOKOUT_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// 10 admin, 5 global read-only, 1 normal (LibreNMS levels).
        #[arg(long, default_value_t = 10)]
        level: i32,
    },
    /// List users with level, granted devices and open sessions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a user with their tokens, sessions and device grants.
    Remove { username: String },
    /// Set a user's password (from --password, LOOKOUT_USER_PASSWORD, or generated); ends
    /// every session of the user.
    Passwd {
        username: String,
        #[arg(long, env = "LOOKOUT_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Set a user's level: 10 admin, 5 global read-only, 1 normal, 11 demo.
    Level { username: String, level: i32 },
    /// Let a normal user (level 1) see devices (hostnames or ids) and their ports.
    Grant {
        username: String,
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Take devices back from a user.
    Revoke {
        username: String,
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// End every session of a user on every web instance.
    Logout { username: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the token is printed alone on the last line.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List API tokens (id, user, description; never the token, which is not stored).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by its id (from `token list`).
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a new APP_KEY in <data dir>/.env and re-encrypt every stored SNMP secret
    /// with it (stop every `lookout serve` of the installation first; see
    /// docs/configuration.md, "Rotating APP_KEY").
    Rotate,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only show which migrations are applied.
    #[arg(long)]
    pub status: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Write every table of the configured database to FILE (`-` for stdout).
    Export { file: PathBuf },
    /// Load FILE (from `db export`) into the configured database, which must be empty.
    /// Ids are kept, so RRD files (`port-id<N>.rrd`) stay valid.
    Import { file: PathBuf },
}
