//! Shared pieces of the poller's integration tests: a real net-snmp `snmpd` on loopback
//! (`lookout-testkit`), a fault-injecting UDP proxy in front of an agent, and a poller over a temporary SQLite store
//! (or, with `LOOKOUT_TEST_DB=mysql`, a fresh database on the MariaDB at 127.0.0.1:3306) and
//! RRD directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookout_core::{Device, NewDevice, SnmpConfig};
use lookout_poller::{ModuleSet, Poller, PollerConfig};
use lookout_snmp::pdu::{decode_community_message, encode_community_message, AnyPdu, Pdu};
use lookout_store::{Store, StoreConfig};
use lookout_testkit::mariadb::{self, test_db_is_mysql, TestDatabase};
use lookout_testkit::snmpd::{Snmpd, SnmpdConfig};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};

/// The poller tests' agent: a real snmpd answering v1/v2c (community `public`) on
/// 127.0.0.1, sysName `poller-test-agent`; killed on drop.
pub fn start_snmpd() -> Snmpd {
    Snmpd::start(SnmpdConfig::new("poller-test-agent"))
}

/// A fresh [`start_snmpd`] agent with a [`Proxy`] in front, and `rig`'s device
/// `127.0.0.1` (community `public`) polled through the proxy. Keep the agent for the whole
/// test: dropping it kills snmpd.
pub async fn behind_proxy(rig: Rig) -> (Snmpd, Proxy, Rig, Device) {
    let agent = start_snmpd();
    let proxy = Proxy::start(agent.port).await;
    let dev = rig.add("127.0.0.1", proxy.port, "public").await;
    (agent, proxy, rig, dev)
}

/// What the proxy does with a response before passing it on: `(request, response)`;
/// returning false drops the response (the agent "stops answering").
pub type Rewrite = Box<dyn FnMut(&Pdu, &mut Pdu) -> bool + Send>;

/// A UDP proxy between the poller and an agent that can rewrite or drop responses.
pub struct Proxy {
    pub port: u16,
    rewrite: Arc<Mutex<Option<Rewrite>>>,
    delay: Arc<Mutex<Duration>>,
    garbage: Arc<Mutex<Option<Vec<u32>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream_port: u16) -> Proxy {
        let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = front.local_addr().unwrap().port();
        let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(("127.0.0.1", upstream_port)).await.unwrap();
        let rewrite: Arc<Mutex<Option<Rewrite>>> = Arc::new(Mutex::new(None));
        let rw = rewrite.clone();
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let dl = delay.clone();
        let garbage: Arc<Mutex<Option<Vec<u32>>>> = Arc::new(Mutex::new(None));
        let gb = garbage.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            let mut client: Option<SocketAddr> = None;
            // Requests by id, to give the rewrite what was asked.
            let mut pending: std::collections::HashMap<i32, Pdu> = Default::default();
            let mut bbuf = vec![0u8; 65_536];
            loop {
                tokio::select! {
                    r = front.recv_from(&mut buf) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        if let Ok(m) = decode_community_message(&buf[..n]) {
                            if let AnyPdu::Pdu(p) = m.pdu {
                                pending.insert(p.request_id, p);
                            }
                        }
                        let _ = back.send(&buf[..n]).await;
                    }
                    r = back.recv(&mut bbuf) => {
                        let Ok(n) = r else { return };
                        let Some(to) = client else { continue };
                        let mut out = bbuf[..n].to_vec();
                        if let Ok(m) = decode_community_message(&bbuf[..n]) {
                            if let AnyPdu::Pdu(mut p) = m.pdu {
                                let req = pending.remove(&p.request_id);
                                let junk = gb.lock().unwrap().clone().is_some_and(|prefix| {
                                    req.as_ref()
                                        .and_then(|r| r.varbinds.first())
                                        .is_some_and(|vb| vb.oid.as_slice().starts_with(&prefix))
                                });
                                if junk {
                                    // Same length, not BER: the agent "returns garbage".
                                    out = vec![0xa5; n];
                                    let _ = front.send_to(&out, to).await;
                                    continue;
                                }
                                let mut f = rw.lock().unwrap();
                                if let (Some(f), Some(req)) = (f.as_mut(), req) {
                                    if !f(&req, &mut p) {
                                        continue;
                                    }
                                    out = encode_community_message(m.version, &m.community, &p);
                                }
                            }
                        }
                        let wait = *dl.lock().unwrap();
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        let _ = front.send_to(&out, to).await;
                    }
                }
            }
        });
        Proxy {
            port,
            rewrite,
            delay,
            garbage,
            task,
        }
    }

    /// Replaces responses to requests under `prefix` with bytes that are not SNMP.
    pub fn set_garbage(&self, prefix: Option<Vec<u32>>) {
        *self.garbage.lock().unwrap() = prefix;
    }

    /// Holds every response this long (a slow agent).
    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn set(&self, f: Option<Rewrite>) {
        *self.rewrite.lock().unwrap() = f;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The store of one test: a SQLite file in `dir`, or with `LOOKOUT_TEST_DB=mysql` a fresh
/// MariaDB database (dropped with the returned guard).
pub fn test_store_config(dir: &Path) -> (StoreConfig, Option<TestDatabase>) {
    if !test_db_is_mysql() {
        return (
            StoreConfig::Sqlite {
                path: dir.join("lookout.sqlite"),
            },
            None,
        );
    }
    let db = TestDatabase::create("lookout_test_poller");
    let config = StoreConfig::Mysql {
        hosts: vec![(mariadb::HOST.to_string(), mariadb::PORT)],
        database: db.name.clone(),
        username: "root".to_string(),
        password: String::new(),
    };
    (config, Some(db))
}

/// A poller over a temporary store (see [`test_store_config`]) and RRD directory.
pub struct Rig {
    pub poller: Poller,
    pub store: Store,
    pub rrd_dir: PathBuf,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

impl Rig {
    /// `modules` applied to the default set (availability is off unless asked: fping
    /// takes seconds and is tested elsewhere).
    pub async fn new(modules: &str) -> Rig {
        Rig::with_budget(modules, None).await
    }

    /// [`Rig::new`] with a poll time budget.
    pub async fn with_budget(modules: &str, poll_budget: Option<Duration>) -> Rig {
        let mut mods = ModuleSet::all();
        mods.apply_list("-availability").unwrap();
        mods.apply_list(modules).unwrap();
        Rig::with_config(PollerConfig {
            step_secs: 300,
            modules: mods,
            poll_budget,
            ..PollerConfig::default()
        })
        .await
    }

    /// A rig whose poller has exactly `config`.
    pub async fn with_config(config: PollerConfig) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let (store_config, db) = test_store_config(dir.path());
        let store = Store::open(&store_config).await.unwrap();
        store.migrate().await.unwrap();
        let rrd_dir = dir.path().join("rrd");
        std::fs::create_dir_all(&rrd_dir).unwrap();
        // No free-space floor: tests create files whatever the machine's free space
        // (disk_full.rs tests the floor).
        let ts = TimeSeries::open_with(
            &TimeSeriesConfig::Local {
                rrd_dir: rrd_dir.clone(),
            },
            lookout_timeseries::TimeSeriesOptions {
                min_free: lookout_timeseries::disk::FreeSpaceFloor::Bytes(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let poller = Poller::new(store.clone(), ts, config).await.unwrap();
        Rig {
            poller,
            store,
            rrd_dir,
            _dir: dir,
            _db: db,
        }
    }

    pub async fn add(&self, hostname: &str, port: u16, community: &str) -> Device {
        self.store
            .add_device(&NewDevice {
                hostname: hostname.to_string(),
                snmp: SnmpConfig {
                    port,
                    community: community.to_string(),
                    timeout_ms: 1000,
                    retries: 1,
                    ..SnmpConfig::default()
                },
                poller_group: 0,
            })
            .await
            .unwrap()
    }

    /// The device as stored now (the poller reads the previous uptime and status from it).
    pub async fn device(&self, id: i64) -> Device {
        self.store.device(id).await.unwrap().unwrap()
    }

    /// DS names of an RRD file, from `rrdtool info`.
    pub fn rrd_ds(&self, rel: &str) -> Vec<String> {
        let path = self.rrd_dir.join(rel);
        assert!(path.exists(), "{} missing", path.display());
        let out = Command::new("/usr/bin/rrdtool")
            .arg("info")
            .arg(&path)
            .output()
            .expect("rrdtool (apt-get install rrdtool)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ds["))
            .filter_map(|l| l.split_once("].type"))
            .map(|(n, _)| n.to_string())
            .collect();
        names.dedup();
        names
    }
}
