//! Configuration: a `.env` file plus environment variables, with LibreNMS's names where
//! LibreNMS has one (`APP_KEY`, `DB_*`, `RRD_DIR`, `RRDCACHED`, ...). Every variable is
//! documented in docs/configuration.md.
//!
//! Precedence, highest first: command-line flags, the process environment, `./.env` in the
//! working directory, `<data dir>/.env` (which first start creates with `APP_KEY`).
//! Reading both `.env` files means every subcommand run with the same `--data-dir` sees the
//! same installation as the running server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lookout_coord::CoordConfig;
use lookout_dispatcher::{parse_groups, Roles};
use lookout_store::{MysqlSslMode, MysqlTls, StoreConfig};
use lookout_timeseries::{TimeSeriesConfig, TimeSeriesOptions};

/// The file name of the per-installation settings inside the data dir.
pub const ENV_FILE: &str = ".env";

/// Resolved configuration of this node.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `APP_KEY`, absent until first start writes one.
    pub app_key: Option<String>,
    /// `APP_KEY_PREVIOUS`: the key before `lookout key rotate`, set only while a rotation
    /// is under way (it still opens SNMP secrets sealed with it; see `crate::key`).
    pub app_key_previous: Option<String>,
    pub store: StoreConfig,
    /// `DB_SSL_MODE`, `DB_SSL_CA`, `DB_SSL_CERT`, `DB_SSL_KEY`: TLS of MySQL connections.
    pub store_tls: MysqlTls,
    pub timeseries: TimeSeriesConfig,
    /// Spill directory (under the data dir, so queued rrdcached updates survive a reboot)
    /// and the `RRD_RRA` override.
    pub timeseries_options: TimeSeriesOptions,
    /// `POLL_INTERVAL` seconds between polls of a device (also the RRD step).
    pub poll_interval_secs: u64,
    /// `POLLER_WORKERS`: devices polled at once on this node.
    pub poller_workers: usize,
    /// `POLLER_GROUP_WORKERS` (`0:8,2:4`): at most this many of the node's workers per
    /// poller group at once.
    pub poller_group_workers: std::collections::BTreeMap<i32, usize>,
    /// `NODE_ID`: stable name of this node.
    pub node_id: String,
    /// `LOOKOUT_ADMIN_PASSWORD`: password of the `admin` user created on first start.
    pub admin_password: Option<String>,
    /// `LOOKOUT_ROLES` / `--roles`: what `serve` runs on this node.
    pub roles: Roles,
    /// `POLLER_GROUP` / `--poller-groups`: poller groups this node's workers serve.
    pub poller_groups: Vec<i32>,
    /// Coordination backend (`REDIS_SENTINEL`, `REDIS_URL`, `REDIS_HOST`, ...; memory when
    /// none is set).
    pub coord: CoordConfig,
    /// `DISPATCHER_LEASE_SECS`: master lease TTL (renewed every third of it).
    pub master_lease: Duration,
    /// `POLLER_CLAIM_SECS`: claim lease TTL of a device being polled.
    pub claim_lease: Duration,
    /// `DISCOVERY_INTERVAL` seconds between discoveries of a device (the dispatcher's
    /// master schedules them; LibreNMS's 6 h by default).
    pub discovery_interval: Duration,
    /// `EVENTLOG_PURGE_DAYS`: eventlog rows older than this are deleted by the master
    /// (LibreNMS's `eventlog_purge`, 30 days by default); `None` (0) keeps them forever.
    pub eventlog_keep: Option<Duration>,
    /// `ALERT_TIME_PASS_SECS` (10), `ALERT_MAX_ATTEMPTS` (8), `ALERT_RETRY_SECS` (10, the
    /// first back-off, doubled per attempt up to 10 min): the alerting engine's timing.
    pub alerting: lookout_alerting::engine::EngineConfig,
    /// Web sessions, login throttle, trusted proxies, password policy.
    pub web_security: lookout_web::SecurityOptions,
}

/// Values the command line may override.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub roles: Option<String>,
    pub node_id: Option<String>,
    pub poller_groups: Option<String>,
}

/// Looks a variable up in the process environment, then the `.env` files.
pub struct Vars {
    files: HashMap<String, String>,
}

impl Vars {
    /// Reads `./.env` and `<data_dir>/.env` (the working directory's wins). A missing file is
    /// fine; a malformed one is an error naming the file and line.
    pub fn load(data_dir: &Path) -> Result<Vars> {
        let mut files = HashMap::new();
        for path in [data_dir.join(ENV_FILE), PathBuf::from(ENV_FILE)] {
            if !path.is_file() {
                continue;
            }
            let iter = dotenvy::from_path_iter(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for item in iter {
                let (k, v) =
                    item.with_context(|| format!("malformed line in {}", path.display()))?;
                files.insert(k, v);
            }
        }
        Ok(Vars { files })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.files.get(name).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}")),
        }
    }
}

/// The data dir from `--data-dir`/`LOOKOUT_DATA_DIR` (clap already merged both), else
/// `LOOKOUT_DATA_DIR` from `./.env`, else `./data`.
pub fn data_dir(cli: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = cli {
        return dir;
    }
    if let Ok(iter) = dotenvy::from_path_iter(ENV_FILE) {
        for (k, v) in iter.flatten() {
            if k == "LOOKOUT_DATA_DIR" && !v.is_empty() {
                return PathBuf::from(v);
            }
        }
    }
    PathBuf::from("data")
}

impl Config {
    pub fn load(data_dir: PathBuf, overrides: &Overrides) -> Result<Config> {
        let vars = Vars::load(&data_dir)?;
        Config::from_vars(data_dir, &vars, overrides)
    }

    pub fn from_vars(data_dir: PathBuf, vars: &Vars, overrides: &Overrides) -> Result<Config> {
        let listen_text = overrides
            .listen
            .clone()
            .or_else(|| vars.get("LOOKOUT_LISTEN"))
            .unwrap_or_else(|| "127.0.0.1:8000".to_string());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("listen address {listen_text:?} is not ADDR:PORT (e.g. 127.0.0.1:8000)")
        })?;

        let store = match vars
            .get("DB_CONNECTION")
            .unwrap_or_else(|| "sqlite".to_string())
            .as_str()
        {
            "sqlite" => StoreConfig::Sqlite {
                path: vars
                    .get("DB_DATABASE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("lookout.sqlite")),
            },
            "mysql" | "mariadb" => {
                let port: u16 = vars.parse("DB_PORT", 3306)?;
                let hosts_text = vars
                    .get("DB_HOST")
                    .unwrap_or_else(|| "127.0.0.1".to_string());
                let mut hosts = Vec::new();
                for h in hosts_text
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                {
                    hosts.push(split_host_port(h, port)?);
                }
                StoreConfig::Mysql {
                    hosts,
                    database: vars
                        .get("DB_DATABASE")
                        .unwrap_or_else(|| "lookout".to_string()),
                    username: vars
                        .get("DB_USERNAME")
                        .unwrap_or_else(|| "lookout".to_string()),
                    password: vars.get("DB_PASSWORD").unwrap_or_default(),
                }
            }
            other => bail!("DB_CONNECTION={other:?} is not supported (use sqlite or mysql)"),
        };
        let store_tls = MysqlTls {
            mode: match vars.get("DB_SSL_MODE") {
                None => MysqlSslMode::default(),
                Some(m) => MysqlSslMode::parse(&m).with_context(|| {
                    format!(
                        "DB_SSL_MODE={m:?} is not one of disabled, preferred, required, verify_ca, verify_identity"
                    )
                })?,
            },
            ca: vars.get("DB_SSL_CA").map(PathBuf::from),
            cert: vars.get("DB_SSL_CERT").map(PathBuf::from),
            key: vars.get("DB_SSL_KEY").map(PathBuf::from),
        };
        if matches!(
            store_tls.mode,
            MysqlSslMode::VerifyCa | MysqlSslMode::VerifyIdentity
        ) && store_tls.ca.is_none()
        {
            bail!(
                "DB_SSL_MODE=verify_ca/verify_identity needs DB_SSL_CA (the CA certificate, PEM)"
            );
        }
        if store_tls.cert.is_some() != store_tls.key.is_some() {
            bail!("DB_SSL_CERT and DB_SSL_KEY go together (client certificate and its key, PEM)");
        }

        let timeseries = match vars.get("RRDCACHED") {
            Some(address) => TimeSeriesConfig::Rrdcached { address },
            None => TimeSeriesConfig::Local {
                rrd_dir: vars
                    .get("RRD_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("rrd")),
            },
        };

        let rra_override = match vars.get("RRD_RRA") {
            Some(text) => Some(
                lookout_timeseries::defs::parse_rras(&text)
                    .map_err(|e| anyhow::anyhow!("RRD_RRA is not valid: {e}"))?,
            ),
            None => None,
        };
        let defaults = TimeSeriesOptions::default();
        let flush_after_secs: u64 =
            vars.parse("RRDCACHED_FLUSH_AFTER", defaults.flush_after.as_secs())?;
        if !(1..=86_400).contains(&flush_after_secs) {
            bail!("RRDCACHED_FLUSH_AFTER={flush_after_secs} is out of range (1..=86400 seconds)");
        }
        let max_unflushed: usize = vars.parse("RRDCACHED_MAX_UNFLUSHED", defaults.max_unflushed)?;
        if max_unflushed == 0 {
            bail!("RRDCACHED_MAX_UNFLUSHED must be at least 1");
        }
        let min_free = match vars.get("RRD_MIN_FREE") {
            Some(text) => lookout_timeseries::disk::FreeSpaceFloor::parse(&text)
                .map_err(|e| anyhow::anyhow!("RRD_MIN_FREE is not valid: {e}"))?,
            None => defaults.min_free,
        };
        let rrdcached_base_dir = vars.get("RRDCACHED_BASE_DIR").map(PathBuf::from);
        if rrdcached_base_dir.is_some() && !matches!(timeseries, TimeSeriesConfig::Rrdcached { .. })
        {
            bail!(
                "RRDCACHED_BASE_DIR is set but RRDCACHED is not: it names rrdcached's -b directory"
            );
        }
        let timeseries_options = TimeSeriesOptions {
            spill_dir: Some(data_dir.join("rrd-spill")),
            rra_override,
            min_free,
            rrdcached_base_dir,
            flush_after: std::time::Duration::from_secs(flush_after_secs),
            max_unflushed,
            ..defaults
        };

        let poll_interval_secs: u64 = vars.parse("POLL_INTERVAL", 300)?;
        if !(10..=86_400).contains(&poll_interval_secs) {
            bail!("POLL_INTERVAL={poll_interval_secs} is out of range (10..=86400 seconds)");
        }
        let poller_workers: usize = vars.parse("POLLER_WORKERS", 16)?;
        if poller_workers == 0 {
            bail!("POLLER_WORKERS must be at least 1");
        }
        let poller_group_workers = match vars.get("POLLER_GROUP_WORKERS") {
            Some(text) => lookout_dispatcher::parse_group_workers(&text)
                .map_err(|e| anyhow::anyhow!("POLLER_GROUP_WORKERS: {e}"))?,
            None => Default::default(),
        };
        let node_id = overrides
            .node_id
            .clone()
            .or_else(|| vars.get("NODE_ID"))
            .unwrap_or_else(default_node_id);
        let roles = match overrides
            .roles
            .clone()
            .or_else(|| vars.get("LOOKOUT_ROLES"))
        {
            Some(text) => Roles::parse(&text).map_err(|e| anyhow::anyhow!("roles: {e}"))?,
            None => Roles::default(),
        };
        let poller_groups = match overrides
            .poller_groups
            .clone()
            .or_else(|| vars.get("POLLER_GROUP"))
        {
            Some(text) => parse_groups(&text).map_err(|e| anyhow::anyhow!("POLLER_GROUP: {e}"))?,
            None => vec![0],
        };
        let coord = CoordConfig::from_lookup(|k| vars.get(k))
            .map_err(|e| anyhow::anyhow!("{e} (REDIS_* settings)"))?;
        let master_lease: f64 = vars.parse("DISPATCHER_LEASE_SECS", 3.0)?;
        let claim_lease: f64 = vars.parse("POLLER_CLAIM_SECS", 6.0)?;
        if !(1.0..=300.0).contains(&master_lease) || !(1.0..=3600.0).contains(&claim_lease) {
            bail!("DISPATCHER_LEASE_SECS must be 1..=300 and POLLER_CLAIM_SECS 1..=3600 seconds");
        }
        let discovery_interval: u64 = vars.parse("DISCOVERY_INTERVAL", 6 * 3600)?;
        if !(60..=30 * 86_400).contains(&discovery_interval) {
            bail!("DISCOVERY_INTERVAL={discovery_interval} is out of range (60..=2592000 seconds)");
        }
        let eventlog_days: u64 = vars.parse("EVENTLOG_PURGE_DAYS", 30)?;
        if eventlog_days > 36_500 {
            bail!("EVENTLOG_PURGE_DAYS={eventlog_days} is out of range (0 = keep forever, up to 36500)");
        }

        let alerting = alert_config(vars, poll_interval_secs)?;
        let web_security = web_security(vars)?;

        Ok(Config {
            data_dir,
            listen,
            app_key: vars.get("APP_KEY"),
            app_key_previous: vars.get("APP_KEY_PREVIOUS"),
            store,
            store_tls,
            timeseries,
            timeseries_options,
            poll_interval_secs,
            poller_workers,
            poller_group_workers,
            node_id,
            admin_password: vars.get("LOOKOUT_ADMIN_PASSWORD"),
            roles,
            poller_groups,
            coord,
            master_lease: Duration::from_secs_f64(master_lease),
            claim_lease: Duration::from_secs_f64(claim_lease),
            discovery_interval: Duration::from_secs(discovery_interval),
            eventlog_keep: (eventlog_days > 0).then(|| Duration::from_secs(eventlog_days * 86_400)),
            alerting,
            web_security,
        })
    }
}

/// `SESSION_LIFETIME`, `SESSION_IDLE` (seconds), `LOGIN_MAX_FAILURES`,
/// `LOGIN_MAX_FAILURES_PER_ADDRESS`, `TRUSTED_PROXIES` (comma-separated addresses or
/// networks), `PASSWORD_MIN_LENGTH`.
fn web_security(vars: &Vars) -> Result<lookout_web::SecurityOptions> {
    let d = lookout_web::SecurityOptions::default();
    let lifetime: i64 = vars.parse("SESSION_LIFETIME", d.session_lifetime_secs)?;
    let idle: i64 = vars.parse("SESSION_IDLE", d.session_idle_secs)?;
    if !(60..=366 * 86_400).contains(&lifetime) || !(60..=366 * 86_400).contains(&idle) {
        bail!("SESSION_LIFETIME and SESSION_IDLE must be 60..=31622400 seconds");
    }
    let per_user: u32 = vars.parse("LOGIN_MAX_FAILURES", d.max_failures_per_user)?;
    let per_address: u32 =
        vars.parse("LOGIN_MAX_FAILURES_PER_ADDRESS", d.max_failures_per_address)?;
    let min_password_len: usize = vars.parse("PASSWORD_MIN_LENGTH", d.min_password_len)?;
    if !(1..=1024).contains(&min_password_len) {
        bail!("PASSWORD_MIN_LENGTH must be 1..=1024");
    }
    let mut trusted_proxies = Vec::new();
    for item in vars.get("TRUSTED_PROXIES").unwrap_or_default().split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let net = item
            .parse::<ipnet::IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                anyhow::anyhow!(
                    "TRUSTED_PROXIES: {item:?} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                )
            })?;
        trusted_proxies.push(net);
    }
    Ok(lookout_web::SecurityOptions {
        session_lifetime_secs: lifetime,
        session_idle_secs: idle,
        max_failures_per_user: per_user,
        max_failures_per_address: per_address,
        trusted_proxies,
        min_password_len,
    })
}

fn alert_config(vars: &Vars, interval_secs: u64) -> Result<lookout_alerting::engine::EngineConfig> {
    let pass: f64 = vars.parse("ALERT_TIME_PASS_SECS", 10.0)?;
    let attempts: u32 = vars.parse("ALERT_MAX_ATTEMPTS", 8)?;
    let retry: f64 = vars.parse("ALERT_RETRY_SECS", 10.0)?;
    if !(0.2..=300.0).contains(&pass) {
        bail!("ALERT_TIME_PASS_SECS={pass} is out of range (0.2..=300 seconds)");
    }
    if !(1..=100).contains(&attempts) {
        bail!("ALERT_MAX_ATTEMPTS={attempts} is out of range (1..=100)");
    }
    if !(0.1..=3600.0).contains(&retry) {
        bail!("ALERT_RETRY_SECS={retry} is out of range (0.1..=3600 seconds)");
    }
    Ok(lookout_alerting::engine::EngineConfig {
        interval_secs,
        time_pass_every: Duration::from_secs_f64(pass),
        max_attempts: attempts,
        first_backoff: Duration::from_secs_f64(retry),
        ..lookout_alerting::engine::EngineConfig::default()
    })
}

fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16)> {
    // `[v6]:port`, `host:port`, or a bare host / IPv6 address.
    if let Some(rest) = text.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .with_context(|| format!("DB_HOST entry {text:?} has an unclosed '['"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().with_context(|| format!("bad port in {text:?}"))?,
            None => default_port,
        };
        return Ok((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((
            host.to_string(),
            port.parse()
                .with_context(|| format!("bad port in DB_HOST entry {text:?}"))?,
        )),
        _ => Ok((text.to_string(), default_port)),
    }
}

fn default_node_id() -> String {
    hostname()
}

/// This machine's host name (`/etc/hostname`), `lookout` if unknown.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "lookout".to_string())
}

/// Creates the data dir (and missing parents) mode 0700: it holds `.env` with APP_KEY and
/// the SQLite database. An existing directory is left as it is.
pub fn create_data_dir(data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if data_dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))
}

/// Appends `KEY=value` to `<data_dir>/.env`, creating it (mode 0600: it holds APP_KEY).
pub fn append_env(data_dir: &Path, key: &str, value: &str) -> Result<()> {
    use std::io::Write;
    create_data_dir(data_dir)?;
    let path = data_dir.join(ENV_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{key}={value}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Sets (`Some`) or removes (`None`) variables of `<data_dir>/.env`, keeping every other
/// line (comments too) as it is; a variable not yet in the file is appended. Atomic: the
/// new text is written to a temporary file in the same directory (mode 0600), synced and
/// renamed over `.env`, and the directory synced, so a crash leaves the old file or the new
/// one, never a mix (the file holds APP_KEY: losing it loses every sealed secret).
pub fn rewrite_env(data_dir: &Path, changes: &[(&str, Option<&str>)]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data_dir.join(ENV_FILE);
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = edit_env_text(&old, changes);
    let tmp = data_dir.join(format!("{ENV_FILE}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(data_dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {} atomically: {e}", path.display())
    })
}

/// [`rewrite_env`]'s text edit: each `KEY=...` line of a changed variable (also `export
/// KEY=...`) is replaced by the new value or dropped.
fn edit_env_text(old: &str, changes: &[(&str, Option<&str>)]) -> String {
    let name_of = |line: &str| -> Option<String> {
        let t = line.trim_start();
        let t = t.strip_prefix("export ").unwrap_or(t);
        let (name, _) = t.split_once('=')?;
        let name = name.trim();
        (!name.is_empty() && !name.starts_with('#')).then(|| name.to_string())
    };
    let mut out = String::new();
    let mut done = Vec::new();
    for line in old.lines() {
        let change = name_of(line).and_then(|n| changes.iter().find(|(k, _)| *k == n));
        match change {
            None => {
                out.push_str(line);
                out.push('\n');
            }
            Some((k, v)) => {
                if let (Some(v), false) = (v, done.contains(k)) {
                    out.push_str(&format!("{k}={v}\n"));
                }
                done.push(*k);
            }
        }
    }
    for (k, v) in changes {
        if let (Some(v), false) = (v, done.contains(k)) {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars {
            files: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn env_edits_keep_other_lines() {
        let old =
            "# installation\nAPP_KEY=base64:old\nPOLL_INTERVAL=60\nexport APP_KEY_PREVIOUS=x\n";
        let new = edit_env_text(
            old,
            &[
                ("APP_KEY", Some("base64:new")),
                ("APP_KEY_PREVIOUS", Some("base64:old")),
            ],
        );
        assert_eq!(
            new,
            "# installation\nAPP_KEY=base64:new\nPOLL_INTERVAL=60\nAPP_KEY_PREVIOUS=base64:old\n"
        );
        let done = edit_env_text(&new, &[("APP_KEY_PREVIOUS", None)]);
        assert_eq!(
            done,
            "# installation\nAPP_KEY=base64:new\nPOLL_INTERVAL=60\n"
        );
        assert_eq!(edit_env_text("", &[("A", Some("1"))]), "A=1\n");
    }

    #[test]
    fn defaults_are_the_embedded_single_node() {
        let c = Config::from_vars("d".into(), &vars(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: "d/lookout.sqlite".into()
            }
        );
        assert_eq!(
            c.timeseries,
            TimeSeriesConfig::Local {
                rrd_dir: "d/rrd".into()
            }
        );
        assert_eq!(c.poll_interval_secs, 300);
        assert_eq!(c.roles, Roles::default());
        assert_eq!(c.poller_groups, vec![0]);
        assert_eq!(c.coord, CoordConfig::Memory);
        assert_eq!(c.discovery_interval, Duration::from_secs(6 * 3600));
        assert_eq!(c.eventlog_keep, Some(Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn discovery_interval_and_eventlog_purge() {
        let c = Config::from_vars(
            "d".into(),
            &vars(&[("DISCOVERY_INTERVAL", "3600"), ("EVENTLOG_PURGE_DAYS", "0")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.discovery_interval, Duration::from_secs(3600));
        assert_eq!(c.eventlog_keep, None, "0 keeps events forever");
        let c = Config::from_vars(
            "d".into(),
            &vars(&[("EVENTLOG_PURGE_DAYS", "7")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.eventlog_keep, Some(Duration::from_secs(7 * 86_400)));
        for bad in [("DISCOVERY_INTERVAL", "10"), ("EVENTLOG_PURGE_DAYS", "-1")] {
            let e = Config::from_vars("d".into(), &vars(&[bad]), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad.0), "{e}");
        }
    }

    #[test]
    fn rrdcached_flush_settings() {
        let c = Config::from_vars("d".into(), &vars(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.timeseries_options.flush_after, Duration::from_secs(60));
        let c = Config::from_vars(
            "d".into(),
            &vars(&[
                ("RRDCACHED", "127.0.0.1:42217"),
                ("RRDCACHED_FLUSH_AFTER", "300"),
                ("RRDCACHED_MAX_UNFLUSHED", "1500000"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.timeseries_options.flush_after, Duration::from_secs(300));
        assert_eq!(c.timeseries_options.max_unflushed, 1_500_000);
        for bad in [
            ("RRDCACHED_FLUSH_AFTER", "0"),
            ("RRDCACHED_FLUSH_AFTER", "5m"),
            ("RRDCACHED_MAX_UNFLUSHED", "0"),
        ] {
            let e = Config::from_vars("d".into(), &vars(&[bad]), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad.0), "{e}");
        }
    }

    #[test]
    fn cluster_settings() {
        let c = Config::from_vars(
            "d".into(),
            &vars(&[
                ("LOOKOUT_ROLES", "web"),
                ("POLLER_GROUP", "1,2"),
                ("NODE_ID", "env-node"),
                ("REDIS_SENTINEL", "127.0.0.1:26379,127.0.0.1:26380"),
            ]),
            &Overrides {
                roles: Some("poller,dispatcher".into()),
                node_id: Some("flag-node".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert!(c.roles.poller && c.roles.dispatcher && !c.roles.web);
        assert_eq!(c.poller_groups, vec![1, 2]);
        assert!(c.poller_group_workers.is_empty());
        assert_eq!(c.node_id, "flag-node");
        assert!(matches!(c.coord, CoordConfig::Redis(_)));
        let err = Config::from_vars(
            "d".into(),
            &vars(&[("LOOKOUT_ROLES", "cook")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cook"), "{err}");
        let c = Config::from_vars(
            "d".into(),
            &vars(&[
                ("POLLER_WORKERS", "16"),
                ("POLLER_GROUP_WORKERS", "0:8, 2:4"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.poller_workers, 16);
        assert_eq!(
            c.poller_group_workers,
            std::collections::BTreeMap::from([(0, 8), (2, 4)])
        );
        for bad in ["0:0", "0=8", "x:1", "1:2,1:3"] {
            let err = Config::from_vars(
                "d".into(),
                &vars(&[("POLLER_GROUP_WORKERS", bad)]),
                &Overrides::default(),
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("POLLER_GROUP_WORKERS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn mysql_tls_settings() {
        let load =
            |kv: &[(&str, &str)]| Config::from_vars("d".into(), &vars(kv), &Overrides::default());
        let c = load(&[
            ("DB_CONNECTION", "mysql"),
            ("DB_SSL_MODE", "VERIFY_CA"),
            ("DB_SSL_CA", "/etc/mysql/ca.pem"),
        ])
        .unwrap();
        assert_eq!(c.store_tls.mode, MysqlSslMode::VerifyCa);
        assert_eq!(c.store_tls.ca, Some(PathBuf::from("/etc/mysql/ca.pem")));
        assert_eq!(load(&[]).unwrap().store_tls, MysqlTls::default());
        for (kv, needle) in [
            (vec![("DB_SSL_MODE", "strict")], "DB_SSL_MODE"),
            (vec![("DB_SSL_MODE", "verify_identity")], "DB_SSL_CA"),
            (vec![("DB_SSL_CERT", "/c.pem")], "DB_SSL_KEY"),
        ] {
            let err = load(&kv).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{kv:?}: {err:#}");
        }
    }

    #[test]
    fn mysql_host_list() {
        let c = Config::from_vars(
            "d".into(),
            &vars(&[
                ("DB_CONNECTION", "mysql"),
                ("DB_HOST", "n1, n2:3308,[::1]:3309"),
                ("DB_PORT", "3307"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        match c.store {
            StoreConfig::Mysql { hosts, .. } => assert_eq!(
                hosts,
                vec![
                    ("n1".to_string(), 3307),
                    ("n2".to_string(), 3308),
                    ("::1".to_string(), 3309)
                ]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let err = Config::from_vars(
            "d".into(),
            &vars(&[("POLL_INTERVAL", "often")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("POLL_INTERVAL"), "{err}");
        let err = Config::from_vars(
            "d".into(),
            &vars(&[("DB_CONNECTION", "oracle")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("oracle"), "{err}");
        let err = Config::from_vars(
            "d".into(),
            &vars(&[]),
            &Overrides {
                listen: Some("nowhere".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }
}
