//! A real 3-node MariaDB Galera cluster on loopback (Debian `mariadb-server` + `galera-4`,
//! own ports and data dirs, started and killed by the test), with the store given all
//! three nodes:
//! - two stores on two different nodes writing the same rows at once (certification
//!   conflicts on purpose) all succeed, without duplicate rows;
//! - kill -9 of the node in use while polls are written: no call fails, no poll is lost;
//!   the node restarts, rejoins and catches up;
//! - the same behind HAProxy in TCP mode (one address, the LibreNMS way): kill -9 of a
//!   node behind it surfaces no error;
//! - a desynced (donor) node is passed over for a synced one when choosing a node;
//! - a node isolated from the cluster (non-primary, `wsrep_ready=OFF`) is left for a
//!   healthy one, and skipped when opening.
//!
//! One test, because a cluster takes ~10 s to start on this 2-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::mysql_config;
use lookout_core::{DevicePollUpdate, DeviceStatus, NewDevice, PortCounters, PortPoll, SnmpConfig};
use lookout_store::{Severity, Store};
use rand::Rng as _;
use sqlx::Connection as _;

const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const GALERA: &str = "/usr/lib/galera/libgalera_smm.so";
const RSYNC: &str = "/usr/bin/rsync";
const HAPROXY: &str = "/usr/sbin/haproxy";

struct Node {
    name: String,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Node {
    fn cnf(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }
    fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }
    fn start(&mut self, new_cluster: bool) {
        let mut cmd = Command::new(MARIADBD);
        // --defaults-file must be the first option.
        cmd.arg(format!("--defaults-file={}", self.cnf().display()));
        if new_cluster {
            cmd.arg("--wsrep-new-cluster");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
    }
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
    async fn admin(&self) -> sqlx::MySqlConnection {
        let opts = sqlx::mysql::MySqlConnectOptions::new()
            .socket(self.socket())
            .username("root");
        sqlx::MySqlConnection::connect_with(&opts).await.unwrap()
    }
    async fn status(&self, var: &str) -> Option<String> {
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
    async fn wait_status(&mut self, var: &str, want: &str, timeout: Duration) {
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
    /// The log's ERROR/Warning lines and its last lines, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
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
}

struct Cluster {
    nodes: Vec<Node>,
    /// Free port for HAProxy in front of the nodes.
    haproxy_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if std::thread::panicking() {
                eprintln!("--- {} error.log tail ---\n{}", n.name, n.log_tail());
            }
            n.kill9();
        }
    }
}

/// HAProxy in TCP mode in front of the nodes (the LibreNMS way), killed on drop.
struct Haproxy(Child);

impl Haproxy {
    async fn start(cluster: &Cluster) -> Haproxy {
        let servers: String = cluster
            .nodes
            .iter()
            .map(|n| format!("  server {} 127.0.0.1:{} check\n", n.name, n.port))
            .collect();
        let cfg = format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             listen galera\n  bind 127.0.0.1:{}\n  balance roundrobin\n  option mysql-check user haproxy\n\
             default-server inter 500ms fall 2 rise 2\n{servers}",
            cluster.haproxy_port
        );
        let path = cluster._dir.path().join("haproxy.cfg");
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
        while tokio::net::TcpStream::connect(("127.0.0.1", cluster.haproxy_port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "haproxy did not listen"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Haproxy(child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl Cluster {
    async fn start() -> Cluster {
        for (bin, pkg) in [
            (MARIADBD, "mariadb-server"),
            (INSTALL_DB, "mariadb-server"),
            (GALERA, "galera-4"),
            (RSYNC, "rsync"),
            (HAPROXY, "haproxy"),
        ] {
            assert!(
                Path::new(bin).exists(),
                "{bin} missing: install the Debian package {pkg}"
            );
        }
        // 3 SQL ports + 3 x (gcomm, IST, SST) + HAProxy, from a random base so parallel
        // runs differ.
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
                 wsrep_cluster_name=lookout-store-test\nwsrep_cluster_address=gcomm://{all}\n\
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
            nodes.push(Node {
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
        let out = Command::new(INSTALL_DB)
            .arg(format!("--defaults-file={}", nodes[0].cnf().display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cluster = Cluster {
            nodes,
            haproxy_port: base + 5,
            _dir: dir,
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

    fn hosts(&self, order: &[usize]) -> Vec<(String, u16)> {
        order
            .iter()
            .map(|i| ("127.0.0.1".to_string(), self.nodes[*i].port))
            .collect()
    }

    fn label(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }
}

fn port_poll(if_index: i64, in_octets: u64) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(format!("eth{if_index}")),
        if_oper_status: Some("up".into()),
        if_speed: Some(10_000_000_000),
        counters: PortCounters {
            in_octets: Some(in_octets),
            out_octets: Some(in_octets / 2),
            hc: true,
            ..PortCounters::default()
        },
        ..PortPoll::default()
    }
}

fn poll_update(i: u64) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some(format!("poll {i}")),
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: None,
        os: Some("linux".into()),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(i as i64),
        status: DeviceStatus::Up,
        status_reason: String::new(),
        last_polled: Utc.timestamp_opt(1_800_000_000 + i as i64, 0).unwrap(),
        last_polled_timetaken: 0.1,
    }
}

/// Rows of `db.table` as seen on `node`.
async fn count(node: &Node, db: &str, table: &str) -> i64 {
    scalar(node, &format!("SELECT COUNT(*) FROM `{db}`.{table}")).await
}

async fn scalar(node: &Node, sql: &str) -> i64 {
    let mut c = node.admin().await;
    let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut c)
        .await
        .unwrap();
    let _ = c.close().await;
    v
}

async fn cert_failures(node: &Node) -> i64 {
    node.status("wsrep_local_cert_failures")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galera_cluster_faults() {
    if std::env::var("LOOKOUT_TEST_GALERA").as_deref() == Ok("0") {
        eprintln!("\n*** SKIPPED: LOOKOUT_TEST_GALERA=0, Galera cluster test not run ***\n");
        return;
    }
    // RUST_LOG=lookout_store=warn shows the store's retries and fail-overs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let mut cluster = Cluster::start().await;
    eprintln!("cluster of 3 up in {:?}", started.elapsed());
    let db = "lookout_galera";
    let all = cluster.hosts(&[0, 1, 2]);
    let store = Store::open(&mysql_config(all.clone(), db)).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.database_node(),
        Some(cluster.label(0)),
        "first listed node"
    );
    let dev = store
        .add_device(&NewDevice {
            hostname: "galera-dev".into(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();

    // --- 1. the same rows written through two nodes at once
    let on2 = Store::open(&mysql_config(cluster.hosts(&[1]), db))
        .await
        .unwrap();
    let on3 = Store::open(&mysql_config(cluster.hosts(&[2]), db))
        .await
        .unwrap();
    let (cf2, cf3) = (
        cert_failures(&cluster.nodes[1]).await,
        cert_failures(&cluster.nodes[2]).await,
    );
    let mut tasks = Vec::new();
    for (k, s) in [on2.clone(), on3.clone()].into_iter().enumerate() {
        let id = dev.device_id;
        tasks.push(tokio::spawn(async move {
            for i in 0..40u64 {
                let at = t0 + chrono::Duration::seconds((i * 2 + k as u64) as i64);
                let polled: Vec<_> = (1..=4).map(|p| port_poll(p, i * 1000)).collect();
                s.sync_ports(id, &polled, at).await?;
                s.update_device_poll(id, &poll_update(i)).await?;
            }
            Ok::<_, lookout_store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let conflicts =
        cert_failures(&cluster.nodes[1]).await - cf2 + cert_failures(&cluster.nodes[2]).await - cf3;
    eprintln!(
        "two-node writers: 160 transactions, {conflicts} certification failures, all retried"
    );
    assert_eq!(
        count(&cluster.nodes[0], db, "ports").await,
        4,
        "no duplicate port rows"
    );
    on2.close().await;
    on3.close().await;

    // --- 2. kill -9 the node in use while polls are written
    let n_polls = 40u64;
    let mut worst = Duration::ZERO;
    for i in 0..n_polls {
        if i == 10 {
            cluster.nodes[0].kill9();
            eprintln!("killed n1 (the node in use)");
        }
        let t = Instant::now();
        let at = t0 + chrono::Duration::seconds(1000 + i as i64 * 60);
        let polled: Vec<_> = (1..=4)
            .map(|p| port_poll(p, 1_000_000 + i * 60_000))
            .collect();
        store.sync_ports(dev.device_id, &polled, at).await.unwrap();
        store
            .log_event(
                Some(dev.device_id),
                "poller",
                &format!("poll {i}"),
                Severity::Info,
                None,
            )
            .await
            .unwrap();
        store
            .update_device_poll(dev.device_id, &poll_update(100 + i))
            .await
            .unwrap();
        if t.elapsed() > Duration::from_millis(200) {
            eprintln!("poll {i} took {:?}", t.elapsed());
        }
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{n_polls} polls with a kill -9 in between; slowest poll write {worst:?}");
    assert_ne!(store.database_node(), Some(cluster.label(0)), "failed over");
    let ports = store.ports(dev.device_id).await.unwrap();
    assert_eq!(ports.len(), 4);
    assert_eq!(
        ports[0].counters.in_octets,
        Some(1_000_000 + (n_polls - 1) * 60_000)
    );
    assert_eq!(
        ports[0].in_octets_rate,
        Some(1000.0),
        "last rate from the last two polls"
    );
    let events = count(&cluster.nodes[1], db, "eventlog").await;
    // A commit whose acknowledgement died with the node is retried; the store finds the
    // event it already wrote and does not log it twice.
    assert_eq!(events, n_polls as i64, "one event per poll");

    // The killed node restarts, rejoins and catches up (IST). Restarted once the survivors
    // have evicted it: a node rejoining under the identity still in the view can abort.
    cluster.nodes[1]
        .wait_status("wsrep_cluster_size", "2", Duration::from_secs(30))
        .await;
    let t = Instant::now();
    cluster.nodes[0].start(false);
    cluster.nodes[0]
        .wait_status(
            "wsrep_local_state_comment",
            "Synced",
            Duration::from_secs(90),
        )
        .await;
    eprintln!("n1 rejoined and synced in {:?}", t.elapsed());
    assert_eq!(count(&cluster.nodes[0], db, "eventlog").await, events);

    // --- 3. the LibreNMS way: one address, HAProxy in TCP mode in front of the nodes
    let proxy = Haproxy::start(&cluster).await;
    let via = Store::open(&mysql_config(
        vec![("127.0.0.1".to_string(), cluster.haproxy_port)],
        db,
    ))
    .await
    .unwrap();
    let dev2 = via
        .add_device(&NewDevice {
            hostname: "via-haproxy".into(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..n_polls {
        if i == 10 {
            // n3: not the node `store` uses, so the next phase still has it.
            cluster.nodes[2].kill9();
            eprintln!("killed n3 behind haproxy");
        }
        let t = Instant::now();
        let at = t0 + chrono::Duration::seconds(1000 + i as i64 * 60);
        let polled: Vec<_> = (1..=4)
            .map(|p| port_poll(p, 1_000_000 + i * 60_000))
            .collect();
        via.sync_ports(dev2.device_id, &polled, at).await.unwrap();
        via.log_event(
            Some(dev2.device_id),
            "poller",
            &format!("poll {i}"),
            Severity::Info,
            None,
        )
        .await
        .unwrap();
        if t.elapsed() > Duration::from_millis(200) {
            eprintln!("haproxy poll {i} took {:?}", t.elapsed());
        }
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{n_polls} polls through haproxy with a kill -9 in between; slowest {worst:?}");
    let ports = via.ports(dev2.device_id).await.unwrap();
    assert_eq!(ports[0].in_octets_rate, Some(1000.0));
    let events = via.events(Some(dev2.device_id), 100).await.unwrap().len() as u64;
    assert_eq!(events, n_polls, "one event per poll");
    via.close().await;
    drop(proxy);
    cluster.nodes[0]
        .wait_status("wsrep_cluster_size", "2", Duration::from_secs(30))
        .await;
    cluster.nodes[2].start(false);
    cluster.nodes[2]
        .wait_status(
            "wsrep_local_state_comment",
            "Synced",
            Duration::from_secs(90),
        )
        .await;

    // --- 4. a desynced node (Donor/Desynced, as during a state transfer) is passed over
    // for a synced one when choosing a node
    let mut c = cluster.nodes[0].admin().await;
    sqlx::raw_sql("SET GLOBAL wsrep_desync = ON")
        .execute(&mut c)
        .await
        .unwrap();
    cluster.nodes[0]
        .wait_status(
            "wsrep_local_state_comment",
            "Donor/Desynced",
            Duration::from_secs(30),
        )
        .await;
    let picky = Store::open(&mysql_config(cluster.hosts(&[0, 1]), db))
        .await
        .unwrap();
    assert_eq!(
        picky.database_node(),
        Some(cluster.label(1)),
        "synced node preferred"
    );
    picky.close().await;
    // ... but used when it is the only one.
    let only = Store::open(&mysql_config(cluster.hosts(&[0]), db))
        .await
        .unwrap();
    assert_eq!(only.devices().await.unwrap().len(), 2);
    only.close().await;
    sqlx::raw_sql("SET GLOBAL wsrep_desync = OFF")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    cluster.nodes[0]
        .wait_status(
            "wsrep_local_state_comment",
            "Synced",
            Duration::from_secs(30),
        )
        .await;

    // --- 5. a node leaves the primary component (isolated): avoided
    let current = store.database_node().unwrap();
    let idx = (0..3).find(|i| cluster.label(*i) == current).unwrap();
    let mut c = cluster.nodes[idx].admin().await;
    sqlx::raw_sql("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    cluster.nodes[idx]
        .wait_status("wsrep_ready", "OFF", Duration::from_secs(30))
        .await;
    let others: Vec<usize> = (0..3).filter(|i| *i != idx).collect();
    cluster.nodes[others[0]]
        .wait_status("wsrep_cluster_size", "2", Duration::from_secs(30))
        .await;
    store
        .log_event(
            Some(dev.device_id),
            "poller",
            "after isolation",
            Severity::Info,
            None,
        )
        .await
        .unwrap();
    assert_ne!(
        store.database_node(),
        Some(current.clone()),
        "left the isolated node"
    );
    // Opening with the isolated node first skips it.
    let fresh = Store::open(&mysql_config(cluster.hosts(&[idx, others[0]]), db))
        .await
        .unwrap();
    assert_eq!(fresh.database_node(), Some(cluster.label(others[0])));
    assert_eq!(
        fresh.events(Some(dev.device_id), 1).await.unwrap()[0].message,
        "after isolation"
    );
    assert_eq!(
        scalar(&cluster.nodes[idx], "SELECT 1").await,
        1,
        "isolated node still runs"
    );
    fresh.close().await;
    store.close().await;
}
