//! Shared pieces of the binary's integration tests: a real net-snmp `snmpd` on loopback
//! (`lookout-testkit`), running the `lookout` binary against a temporary data dir, and what
//! the multi-process tests (`cluster.rs`, `galera_processes.rs`) share: the `lookout`
//! command cleared of the caller's settings, `lookout serve` processes with their logs, and
//! `device_poll_log` rows with the every-interval check.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod webdriver;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use lookout_testkit::mariadb::{
    test_db_is_mysql, TestDatabase, HOST as MARIADB_HOST, PORT as MARIADB_PORT,
};
#[allow(unused_imports)]
pub use lookout_testkit::snmpd::{free_tcp_port, free_udp_port, Snmpd, SnmpdConfig};

/// The admin password every test installation gets (`LOOKOUT_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "admin-test-pw";

/// The single-device tests' agent: snmpd answering v1/v2c (community `public`) on
/// 127.0.0.1 with a known sysName, location and contact; killed on drop.
pub fn start_snmpd() -> Snmpd {
    Snmpd::start(
        SnmpdConfig::new("lookout-test-agent")
            .line("sysLocation Rack 7, Lab")
            .line("sysContact noc@example.net"),
    )
}

/// One snmpd answering on 127.0.0.2 .. 127.0.0.(1+n), same port: n distinct "devices"
/// for multi-node tests; killed on drop.
pub fn start_devices(n: u8) -> Snmpd {
    Snmpd::start(SnmpdConfig::new("cluster-agent").devices(n))
}

/// Seconds since the epoch (what `UNIX_TIMESTAMP()` of the store's rows compares with).
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Settings `lookout` reads from the environment that a test sets itself or must not
/// inherit from the shell that runs it.
const INHERITED: &[&str] = &[
    "LOOKOUT_DATA_DIR",
    "APP_KEY_PREVIOUS",
    "LOOKOUT_SNMP_COMMUNITY",
    "LOOKOUT_SNMP_AUTHPASS",
    "LOOKOUT_SNMP_PRIVPASS",
    "LOOKOUT_ROLES",
    "LOOKOUT_LISTEN",
    "NODE_ID",
    "POLLER_GROUP",
    "DB_CONNECTION",
    "DB_HOST",
    "DB_PORT",
    "DB_DATABASE",
    "DB_USERNAME",
    "DB_PASSWORD",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_SENTINEL",
    "REDIS_SENTINEL_SERVICE",
    "RRDCACHED",
];

/// The APP_KEY of every test installation: the nodes of a test cluster have data dirs of
/// their own but must share the key, as a real cluster's nodes must (it seals sessions and
/// the stored SNMP secrets). Tests of key generation and rotation remove it.
pub const TEST_APP_KEY: &str = "base64:bG9va291dC10ZXN0LWFwcC1rZXktMzItYnl0ZXMhISE=";

/// `lookout --data-dir DATA_DIR`, run in `work_dir`, with [`ADMIN_PASSWORD`],
/// [`TEST_APP_KEY`] and none of the caller's database, coordination or role settings.
pub fn lookout(data_dir: &Path, work_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lookout"));
    c.arg("--data-dir")
        .arg(data_dir)
        .current_dir(work_dir)
        .env("LOOKOUT_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("APP_KEY", TEST_APP_KEY);
    for var in INHERITED {
        c.env_remove(var);
    }
    c
}

/// Points `c` at `database` as root without a password: on `host` (one host, or a
/// `host:port,...` node list) and, when given, `port`.
pub fn use_mysql<'c>(
    c: &'c mut Command,
    host: &str,
    port: Option<u16>,
    database: &str,
) -> &'c mut Command {
    c.env("DB_CONNECTION", "mysql")
        .env("DB_HOST", host)
        .env("DB_DATABASE", database)
        .env("DB_USERNAME", "root")
        .env("DB_PASSWORD", "");
    if let Some(port) = port {
        c.env("DB_PORT", port.to_string());
    }
    c
}

/// Runs `c` and asserts success (its stdout and stderr in the failure); stdout.
pub fn stdout_ok(c: &mut Command) -> String {
    let out = c.output().expect("run lookout");
    let args: Vec<_> = c.get_args().collect();
    assert!(
        out.status.success(),
        "lookout {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Spawns `c` (e.g. `lookout serve`) with stdout and stderr appended to `log`.
pub fn spawn_logged(c: &mut Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    c.stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// Sends `sig` (`-STOP`, `-CONT`, `-TERM`, ...) to process `pid`.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGKILL and reap.
pub fn kill9(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM to all (a clean shutdown; a stopped process is continued first so it can act
/// on it), SIGKILL whatever still runs after `grace`.
pub fn terminate(children: impl IntoIterator<Item = Child>, grace: Duration) {
    let children: Vec<Child> = children.into_iter().collect();
    for c in &children {
        signal(c.id(), "-CONT");
        signal(c.id(), "-TERM");
    }
    let deadline = Instant::now() + grace;
    for mut c in children {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill9(c);
    }
}

/// When the test is panicking: copies `logs` (path, name to keep it as) to
/// `$TMPDIR/lookout-<what>-<pid>` for the post-mortem and says where.
pub fn keep_logs_if_panicking(what: &str, logs: &[(PathBuf, String)]) -> Option<PathBuf> {
    if !std::thread::panicking() {
        return None;
    }
    let keep = std::env::temp_dir().join(format!("lookout-{what}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&keep);
    for (path, name) in logs {
        let _ = std::fs::copy(path, keep.join(name));
    }
    eprintln!("logs kept in {}", keep.display());
    Some(keep)
}

/// One row of `device_poll_log`.
#[derive(Debug, Clone)]
pub struct PollRow {
    pub device: i64,
    pub node: String,
    pub token: u64,
    pub started: f64,
    pub finished: f64,
    pub status: String,
    pub duration: f64,
}

/// The query whose rows (tab-separated, from the `mariadb` client) [`poll_rows`] reads.
pub const POLL_LOG_SQL: &str = "SELECT device_id, node_id, token, UNIX_TIMESTAMP(started), \
     UNIX_TIMESTAMP(finished), status, duration FROM device_poll_log ORDER BY started";

pub fn poll_rows(rows: Vec<Vec<String>>) -> Vec<PollRow> {
    rows.into_iter()
        .map(|r| PollRow {
            device: r[0].parse().unwrap(),
            node: r[1].clone(),
            token: r[2].parse().unwrap(),
            started: r[3].parse().unwrap(),
            finished: r[4].parse().unwrap(),
            status: r[5].clone(),
            duration: r[6].parse().unwrap(),
        })
        .collect()
}

/// Waits until `devices` devices have an `ok` poll that started after `since`, reading the
/// log with `poll_log`; after `limit` fails with `context()` (e.g. a node's log).
pub fn wait_all_polled(
    devices: usize,
    since: f64,
    limit: Duration,
    poll_log: impl Fn() -> Vec<PollRow>,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    loop {
        let polled: std::collections::BTreeSet<i64> = poll_log()
            .iter()
            .filter(|r| r.status == "ok" && r.started > since)
            .map(|r| r.device)
            .collect();
        if polled.len() == devices {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {devices} devices polled after {limit:?}:\n{}",
            polled.len(),
            context()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The `ok` polls that started in [from, to]: asserts that exactly `devices` devices were
/// polled, each first and last within `max_gap` of the window's edges and consecutive
/// polls of a device between `min_gap` (no duplicate) and `max_gap` (no missed interval)
/// apart. Returns the smallest and largest gap seen.
pub fn assert_polled_throughout(
    what: &str,
    log: &[PollRow],
    devices: usize,
    (from, to): (f64, f64),
    (min_gap, max_gap): (f64, f64),
) -> (f64, f64) {
    let mut by_device: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for r in log
        .iter()
        .filter(|r| r.status == "ok" && r.started >= from && r.started <= to)
    {
        by_device.entry(r.device).or_default().push(r.started);
    }
    assert_eq!(
        by_device.len(),
        devices,
        "{what}: devices polled in [{from:.1}, {to:.1}]: {by_device:?}"
    );
    let (mut smallest, mut largest) = (f64::MAX, 0.0f64);
    for (d, starts) in &by_device {
        let (first, last) = (starts[0], starts[starts.len() - 1]);
        assert!(
            first - from <= max_gap,
            "{what}: device {d} first polled {:.1} s into [{from:.1}, {to:.1}]: {starts:?}",
            first - from
        );
        assert!(
            to - last <= max_gap,
            "{what}: device {d} not polled in the last {:.1} s of [{from:.1}, {to:.1}]: {starts:?}",
            to - last
        );
        for w in starts.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= min_gap,
                "{what}: device {d} polled twice within {gap:.1} s: {starts:?}"
            );
            assert!(
                gap <= max_gap,
                "{what}: device {d} missed an interval ({gap:.1} s between polls): {starts:?}"
            );
            smallest = smallest.min(gap);
            largest = largest.max(gap);
        }
    }
    (smallest, largest)
}

/// A Lookout installation in a temporary data dir (and, in the MySQL leg, a database of
/// its own, dropped with it).
pub struct Install {
    pub dir: tempfile::TempDir,
    /// The MySQL database of this installation, when the tests run on MySQL.
    pub mysql_db: Option<TestDatabase>,
}

impl Install {
    /// An installation: its database created and migrated (`lookout migrate`), as the first
    /// `lookout serve` leaves it.
    pub fn new() -> Install {
        let lo = Install::bare();
        lo.ok(&["migrate"]);
        lo
    }

    /// A data dir that holds no installation yet.
    pub fn bare() -> Install {
        let dir = tempfile::tempdir().unwrap();
        let mysql_db = test_db_is_mysql().then(|| TestDatabase::create("lookout_test"));
        Install { dir, mysql_db }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `lookout --data-dir <tmp>/data ARGS`, with a short poll interval.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = lookout(&self.data_dir(), self.dir.path());
        c.args(args)
            .env("POLL_INTERVAL", "10")
            // Tests create RRD files whatever the machine's free space (the floor has its
            // own tests).
            .env("RRD_MIN_FREE", "0")
            .env("LOOKOUT_LOG", "warn");
        if let Some(db) = &self.mysql_db {
            use_mysql(&mut c, MARIADB_HOST, Some(MARIADB_PORT), &db.name);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run lookout")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        stdout_ok(&mut self.cmd(args))
    }

    /// Runs and asserts failure, returning stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "lookout {args:?} should fail but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn devices_json(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["device", "list", "--json"]);
        serde_json::from_str(&out).unwrap()
    }

    pub fn rrd(&self, rel: &str) -> PathBuf {
        self.data_dir().join("rrd").join(rel)
    }
}

/// `rrdtool ARGS`, asserting success; stdout.
pub fn rrdtool(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/rrdtool")
        .args(args)
        .output()
        .expect("rrdtool missing: apt-get install rrdtool");
    assert!(
        out.status.success(),
        "rrdtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
