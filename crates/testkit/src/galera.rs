//! A real 3-node MariaDB Galera cluster on loopback, and HAProxy in TCP mode in front of it.
//!
//! [`GaleraCluster::start`] bootstraps node 1 (`--wsrep-new-cluster`), creates
//! `root@127.0.0.1` (no password, all privileges) and `haproxy@127.0.0.1` (for
//! `option mysql-check`), then joins nodes 2 and 3 by rsync SST. Every port (3 SQL, 3 × gcomm,
//! IST, SST, and one for HAProxy) comes from one random base so that parallel test binaries
//! do not collide. Galera's failure detection is shortened (`evs.suspect_timeout=PT2S`,
//! `evs.inactive_timeout=PT3S`) so a killed node is evicted in ~2-3 s instead of ~5 s.
//! Every node is killed (SIGKILL) when the cluster is dropped; on a panic their error logs
//! are printed first.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng as _;
use sqlx::Connection as _;

pub const MARIADBD: &str = "/usr/sbin/mariadbd";
pub const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
pub const MARIADB_CLIENT: &str = "/usr/bin/mariadb";
pub const GALERA: &str = "/usr/lib/galera/libgalera_smm.so";
pub const RSYNC: &str = "/usr/bin/rsync";
pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// One `mariadbd` of the cluster.
pub struct GaleraNode {
    /// `n1`, `n2`, `n3` (also its `wsrep_node_name`).
    pub name: String,
    /// The SQL port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl GaleraNode {
    pub fn cnf(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// `127.0.0.1:<port>`, as the store labels its nodes.
    pub fn label(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts `mariadbd`; `new_cluster` bootstraps a new primary component.
    pub fn start(&mut self, new_cluster: bool) {
        self.start_at(new_cluster, None);
    }

    /// What the systemd unit's `galera_recovery` does before starting a node that crashed:
    /// `mariadbd --wsrep-recover` reads the last committed position from InnoDB (after a
    /// kill -9, `grastate.dat` has seqno -1). `uuid:seqno`, or None if not found.
    pub fn recover_position(&self) -> Option<String> {
        let log = self.dir.join("recover.log");
        let _ = std::fs::remove_file(&log);
        let out = Command::new(MARIADBD)
            .arg(format!("--defaults-file={}", self.cnf().display()))
            .arg("--wsrep-recover")
            .arg(format!("--log-error={}", log.display()))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = std::fs::read_to_string(&log).ok()?;
        let pos = text
            .lines()
            .filter_map(|l| l.split("WSREP: Recovered position:").nth(1))
            .next_back()?
            .trim()
            .to_string();
        (!pos.ends_with(":-1")).then_some(pos)
    }

    /// [`GaleraNode::start`] from a known position (`--wsrep_start_position`), so that a
    /// rejoining node asks for IST (the missing write sets from a donor's gcache) instead of
    /// a full SST, which with rsync blocks the donor for seconds.
    pub fn start_at(&mut self, new_cluster: bool, position: Option<&str>) {
        let mut cmd = Command::new(MARIADBD);
        // --defaults-file must be the first option.
        cmd.arg(format!("--defaults-file={}", self.cnf().display()));
        if new_cluster {
            cmd.arg("--wsrep-new-cluster");
        }
        if let Some(pos) = position {
            cmd.arg(format!("--wsrep_start_position={pos}"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
    }

    /// SIGKILL and reap: the node dies without leaving the cluster.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// A root connection over the node's socket.
    pub async fn admin(&self) -> sqlx::MySqlConnection {
        let opts = sqlx::mysql::MySqlConnectOptions::new()
            .socket(self.socket())
            .username("root");
        sqlx::MySqlConnection::connect_with(&opts).await.unwrap()
    }

    /// A global status variable, or None while the node does not answer.
    pub async fn status(&self, var: &str) -> Option<String> {
        let opts = sqlx::mysql::MySqlConnectOptions::new()
            .socket(self.socket())
            .username("root");
        let mut c = sqlx::MySqlConnection::connect_with(&opts).await.ok()?;
        let row: Option<(String, String)> =
            sqlx::query_as("SHOW GLOBAL STATUS WHERE Variable_name = ?")
                .bind(var)
                .fetch_optional(&mut c)
                .await
                .ok()?;
        let _ = c.close().await;
        row.map(|(_, v)| v)
    }

    /// Waits until status `var` is `want`; panics with the log if the node exits or the
    /// time runs out.
    pub async fn wait_status(&mut self, var: &str, want: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!(
                        "{} exited ({st}) while waiting for {var}={want}; log:\n{}",
                        self.name,
                        self.log_tail()
                    );
                }
            }
            let got = self.status(var).await;
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "{}: {var} is {got:?}, waited {timeout:?} for {want}; log:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Rows of `sql` run as root in database `db` (tab-separated columns, UTC session,
    /// `wsrep_sync_wait=1` so that the node has applied everything the cluster committed
    /// before it reads). Through the `mariadb` client, so it works from sync tests too.
    pub fn rows(&self, db: &str, sql: &str) -> Vec<Vec<String>> {
        let out = Command::new(MARIADB_CLIENT)
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "-N", "-B"])
            .arg(db)
            .arg("-e")
            .arg(format!(
                "SET time_zone = '+00:00'; SET SESSION wsrep_sync_wait = 1; {sql}"
            ))
            .output()
            .expect("mariadb client missing: apt-get install mariadb-client");
        assert!(
            out.status.success(),
            "{} {sql}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        crate::mariadb::tab_separated(&out.stdout)
    }

    /// One integer from `sql` (see [`GaleraNode::rows`]).
    pub fn scalar(&self, db: &str, sql: &str) -> i64 {
        let rows = self.rows(db, sql);
        rows.first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}: {sql} gave no integer: {rows:?}", self.name))
    }

    /// The log's ERROR/Warning lines and its last lines, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.error_log()).unwrap_or_default();
        let lines: Vec<_> = log.lines().collect();
        let errors: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("[ERROR]") || l.contains("[Warning] WSREP"))
            .copied()
            .collect();
        format!(
            "errors:\n{}\ntail:\n{}",
            errors[errors.len().saturating_sub(20)..].join("\n"),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// How the node got its state when it last joined: `"IST"` (incremental, from the
    /// donor's gcache) or `"SST"` (a full copy), read from its error log.
    pub fn last_state_transfer(&self) -> Option<&'static str> {
        let log = std::fs::read_to_string(self.error_log()).unwrap_or_default();
        // The last join is after the last "Start replication" of the provider.
        let from = log.rfind("Start replication").unwrap_or(0);
        let tail = &log[from..];
        if tail.contains("IST received") {
            Some("IST")
        } else if tail.contains("SST received") || tail.contains("SST succeeded") {
            Some("SST")
        } else {
            None
        }
    }
}

/// Three Galera nodes on loopback; killed on drop.
pub struct GaleraCluster {
    pub nodes: Vec<GaleraNode>,
    /// A free port reserved for HAProxy in front of the nodes.
    pub haproxy_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for GaleraCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if std::thread::panicking() {
                eprintln!("--- {} error.log tail ---\n{}", n.name, n.log_tail());
            }
            n.kill9();
        }
    }
}

/// `mariadb-install-db` for the server of `cnf` (root authenticated normally, no test db).
pub(crate) fn install_db(cnf: &Path) {
    let out = Command::new(INSTALL_DB)
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl GaleraCluster {
    /// Whether the Debian packages the cluster needs are installed (else a message naming
    /// the missing one).
    pub fn check_installed() -> Result<(), String> {
        for (bin, pkg) in [
            (MARIADBD, "mariadb-server"),
            (INSTALL_DB, "mariadb-server"),
            (MARIADB_CLIENT, "mariadb-client"),
            (GALERA, "galera-4"),
            (RSYNC, "rsync"),
            (HAPROXY, "haproxy"),
        ] {
            if !Path::new(bin).exists() {
                return Err(format!("{bin} missing: install the Debian package {pkg}"));
            }
        }
        Ok(())
    }

    /// Brings up the cluster (`cluster_name` is its `wsrep_cluster_name`) and waits until
    /// all three nodes are synced; ~10-20 s on a 2-core machine.
    pub async fn start(cluster_name: &str) -> GaleraCluster {
        if let Err(e) = GaleraCluster::check_installed() {
            panic!("{e}");
        }
        // 3 SQL ports + 3 x (gcomm, IST, SST) + HAProxy, from a random base.
        let base = loop {
            let base: u16 = rand::rng().random_range(20_000..60_000);
            let all: Vec<u16> = (0..3)
                .flat_map(|i| {
                    [
                        base + i,
                        base + 10 + i * 10,
                        base + 11 + i * 10,
                        base + 12 + i * 10,
                    ]
                })
                .chain([base + 5])
                .collect();
            if all.iter().all(|p| port_free(*p)) {
                break base;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        // mariadbd runs as user mysql: it must reach its data dirs.
        let st = Command::new("chmod")
            .arg("0755")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let gcomm: Vec<String> = (0..3)
            .map(|i| format!("127.0.0.1:{}", base + 10 + i * 10))
            .collect();
        let mut nodes = Vec::new();
        for i in 0..3u16 {
            let ndir = dir.path().join(format!("n{}", i + 1));
            std::fs::create_dir_all(ndir.join("data")).unwrap();
            let g = base + 10 + i * 10;
            let cnf = format!(
                "[mysqld]\nuser=mysql\ndatadir={d}/data\nsocket={d}/mysqld.sock\nlog-error={d}/error.log\n\
                 pid-file={d}/mysqld.pid\nport={port}\nbind-address=127.0.0.1\nskip-name-resolve\n\
                 binlog_format=ROW\ninnodb_autoinc_lock_mode=2\ninnodb_buffer_pool_size=64M\n\
                 innodb_log_file_size=16M\nperformance_schema=OFF\nwsrep_on=ON\nwsrep_provider={GALERA}\n\
                 wsrep_cluster_name={cluster_name}\nwsrep_cluster_address=gcomm://{all}\n\
                 wsrep_node_name=n{n}\nwsrep_node_address=127.0.0.1:{g}\n\
                 wsrep_provider_options=\"gmcast.listen_addr=tcp://127.0.0.1:{g};ist.recv_addr=127.0.0.1:{ist};gcache.size=32M;evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S;evs.install_timeout=PT3S\"\n\
                 wsrep_sst_receive_address=127.0.0.1:{sst}\nwsrep_sst_method=rsync\n\
                 [client]\nsocket={d}/mysqld.sock\n",
                d = ndir.display(),
                port = base + i,
                all = gcomm.join(","),
                n = i + 1,
                ist = g + 1,
                sst = g + 2,
            );
            std::fs::write(ndir.join("my.cnf"), cnf).unwrap();
            nodes.push(GaleraNode {
                name: format!("n{}", i + 1),
                dir: ndir,
                port: base + i,
                child: None,
            });
        }
        let st = Command::new("chown")
            .args(["-R", "mysql:mysql"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        install_db(&nodes[0].cnf());
        let mut cluster = GaleraCluster {
            nodes,
            haproxy_port: base + 5,
            dir,
        };
        cluster.nodes[0].start(true);
        cluster.nodes[0]
            .wait_status("wsrep_ready", "ON", Duration::from_secs(60))
            .await;
        // root over TCP from 127.0.0.1 (skip-name-resolve: 'localhost' only matches the
        // socket). Created before the joiners, which receive it with the snapshot.
        let mut c = cluster.nodes[0].admin().await;
        sqlx::raw_sql(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; \
             GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
             CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1';",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        for i in 1..3 {
            cluster.nodes[i].start(false);
            cluster.nodes[i]
                .wait_status(
                    "wsrep_local_state_comment",
                    "Synced",
                    Duration::from_secs(90),
                )
                .await;
        }
        cluster.nodes[0]
            .wait_status("wsrep_cluster_size", "3", Duration::from_secs(30))
            .await;
        cluster
    }

    /// The temp dir holding the nodes' data dirs (and HAProxy's config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `(host, port)` of the nodes in `order`, for a store configuration.
    pub fn hosts(&self, order: &[usize]) -> Vec<(String, u16)> {
        order
            .iter()
            .map(|i| ("127.0.0.1".to_string(), self.nodes[*i].port))
            .collect()
    }

    /// The nodes in `order` as a `DB_HOST` value: `127.0.0.1:p1,127.0.0.1:p2,...`.
    pub fn db_host(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|i| self.nodes[*i].label())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `127.0.0.1:<port>` of node `i`.
    pub fn label(&self, i: usize) -> String {
        self.nodes[i].label()
    }

    /// Restarts killed node `i` as the systemd unit would (position recovered first, so it
    /// rejoins by IST when the donor's gcache still has what it missed) and waits until it
    /// is synced again; returns how long the rejoin took. Waits first until a surviving node
    /// sees the cluster without it: a node rejoining under the identity still in the view
    /// can abort.
    pub async fn rejoin(&mut self, i: usize) -> Duration {
        let other = (0..self.nodes.len()).find(|k| *k != i).unwrap();
        let survivors = (self.nodes.len() - 1).to_string();
        self.nodes[other]
            .wait_status("wsrep_cluster_size", &survivors, Duration::from_secs(30))
            .await;
        let t = Instant::now();
        let position = self.nodes[i].recover_position();
        self.nodes[i].start_at(false, position.as_deref());
        self.nodes[i]
            .wait_status(
                "wsrep_local_state_comment",
                "Synced",
                Duration::from_secs(90),
            )
            .await;
        let all = self.nodes.len().to_string();
        self.nodes[i]
            .wait_status("wsrep_cluster_size", &all, Duration::from_secs(30))
            .await;
        t.elapsed()
    }
}

/// HAProxy in TCP mode in front of the nodes (the LibreNMS way: one address, round robin,
/// `option mysql-check` every 500 ms, a server out after 2 failed checks); killed on drop.
pub struct Haproxy {
    child: Child,
    pub port: u16,
}

impl Haproxy {
    pub async fn start(cluster: &GaleraCluster) -> Haproxy {
        let servers: String = cluster
            .nodes
            .iter()
            .map(|n| format!("  server {} 127.0.0.1:{} check\n", n.name, n.port))
            .collect();
        let port = cluster.haproxy_port;
        let cfg = format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             listen galera\n  bind 127.0.0.1:{port}\n  balance roundrobin\n  option mysql-check user haproxy\n\
             default-server inter 500ms fall 2 rise 2\n{servers}"
        );
        let path = cluster.dir().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = Command::new(HAPROXY)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "haproxy did not listen"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Haproxy { child, port }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
