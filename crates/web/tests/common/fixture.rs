//! A store (SQLite, or a fresh MariaDB database with `LOOKOUT_TEST_DB=mysql`), RRD files in
//! a temporary directory, and web instances over them seen from a chosen client address.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use axum::extract::connect_info::MockConnectInfo;
use axum::Router;
use lookout_core::{NewDevice, PortCounters, PortPoll, SnmpConfig};
use lookout_store::{Store, StoreConfig};
use lookout_testkit::mariadb::{self, test_db_is_mysql, TestDatabase};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};
use lookout_web::{router, AppKey, SecurityOptions, WebState};

use super::{cheap_hash, PASSWORD};

pub struct Fixture {
    pub store: Store,
    pub ts: TimeSeries,
    pub key: AppKey,
    /// What instances get as `WebState::rrd_disk` (None by default).
    pub rrd_disk: Option<lookout_web::rrd_disk::RrdDiskOptions>,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (config, db) = if test_db_is_mysql() {
            let db = TestDatabase::create("lookout_test_access");
            let config = StoreConfig::Mysql {
                hosts: vec![(mariadb::HOST.to_string(), mariadb::PORT)],
                database: db.name.clone(),
                username: "root".to_string(),
                password: String::new(),
            };
            (config, Some(db))
        } else {
            let path = dir.path().join("lookout.sqlite");
            (StoreConfig::Sqlite { path }, None)
        };
        let store = Store::open(&config).await.unwrap();
        store.migrate().await.unwrap();
        std::fs::create_dir_all(dir.path().join("rrd")).unwrap();
        let ts = TimeSeries::open(&TimeSeriesConfig::Local {
            rrd_dir: dir.path().join("rrd"),
        })
        .await
        .unwrap();
        Fixture {
            store,
            ts,
            key: AppKey::generate(),
            rrd_disk: None,
            _dir: dir,
            _db: db,
        }
    }

    /// A web instance over the shared store, its clients seen at `client`.
    pub fn instance(&self, security: SecurityOptions, client: &str) -> Router {
        self.instance_with(lookout_coord::Coord::memory(), security, client)
    }

    /// The same with a given coordination backend (Redis: sessions live there).
    pub fn instance_with(
        &self,
        coord: lookout_coord::Coord,
        security: SecurityOptions,
        client: &str,
    ) -> Router {
        let state = WebState {
            coord,
            store: self.store.clone(),
            timeseries: self.ts.clone(),
            app_key: self.key.clone(),
            poll_interval_secs: 300,
            node_name: "access-node".to_string(),
            alerting: None,
            security,
            prober: None,
            rrd_disk: self.rrd_disk,
        };
        let addr: SocketAddr = format!("{client}:40000").parse().unwrap();
        router(state).layer(MockConnectInfo(addr))
    }

    pub async fn user(&self, name: &str, level: i32) -> (i64, String) {
        let u = self
            .store
            .add_user(name, &cheap_hash(PASSWORD), level)
            .await
            .unwrap();
        let (token, digest) = lookout_web::new_api_token();
        self.store
            .add_api_token(u.user_id, &digest, "test")
            .await
            .unwrap();
        (u.user_id, token)
    }

    pub async fn device(&self, hostname: &str) -> (i64, i64) {
        let id = self
            .store
            .add_device(&NewDevice {
                hostname: hostname.to_string(),
                snmp: SnmpConfig::default(),
                poller_group: 0,
            })
            .await
            .unwrap()
            .device_id;
        let port = PortPoll {
            if_index: 1,
            if_name: Some("eth0".into()),
            if_descr: Some("eth0".into()),
            if_alias: None,
            if_type: Some("ethernetCsmacd".into()),
            if_mtu: None,
            if_speed: None,
            if_phys_address: None,
            if_admin_status: Some("up".into()),
            if_oper_status: Some("up".into()),
            counters: PortCounters::default(),
        };
        let sync = self
            .store
            .sync_ports(id, &[port], chrono::Utc::now())
            .await
            .unwrap();
        (id, sync.ports[0].port_id)
    }
}

/// A client of the test machine's Redis (127.0.0.1:6379) under a key prefix of this test's
/// own, so parallel tests and runs never share keys.
pub async fn redis_coord() -> lookout_coord::Coord {
    let prefix = format!("lookout-test-{}-{}:", std::process::id(), rand_suffix());
    let cfg = lookout_coord::CoordConfig::from_lookup(|k| match k {
        "REDIS_URL" => Some("redis://127.0.0.1:6379/0".to_string()),
        "REDIS_PREFIX" => Some(prefix.clone()),
        _ => None,
    })
    .unwrap();
    lookout_coord::Coord::connect(&cfg)
        .await
        .expect("the tests need Redis on 127.0.0.1:6379 (CI starts it)")
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
