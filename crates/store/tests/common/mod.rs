//! Test fixtures: a fresh SQLite file in a temp dir, or a fresh database on the MariaDB at
//! 127.0.0.1:3306 (root, no password) named `lookout_test_<random>` and dropped when the
//! fixture goes out of scope, even when the test panics.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use lookout_store::{Store, StoreConfig};
use rand::Rng as _;
use sqlx::Connection as _;

pub const MYSQL_HOST: &str = "127.0.0.1";
pub const MYSQL_PORT: u16 = 3306;

pub enum Fixture {
    Sqlite {
        config: StoreConfig,
        _dir: tempfile::TempDir,
    },
    Mysql {
        config: StoreConfig,
        database: String,
    },
}

impl Fixture {
    pub fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture::Sqlite {
            config: StoreConfig::Sqlite {
                path: dir.path().join("lookout.sqlite"),
            },
            _dir: dir,
        }
    }

    /// None (after saying so loudly) when `LOOKOUT_TEST_MYSQL=0`.
    pub fn mysql() -> Option<Fixture> {
        if std::env::var("LOOKOUT_TEST_MYSQL").as_deref() == Ok("0") {
            eprintln!(
                "\n*** SKIPPED: LOOKOUT_TEST_MYSQL=0, MySQL/MariaDB contract tests not run ***\n"
            );
            return None;
        }
        let database = format!("lookout_test_{:016x}", rand::rng().random::<u64>());
        Some(Fixture::Mysql {
            config: mysql_config(vec![(MYSQL_HOST.to_string(), MYSQL_PORT)], &database),
            database,
        })
    }

    pub fn config(&self) -> &StoreConfig {
        match self {
            Fixture::Sqlite { config, .. } | Fixture::Mysql { config, .. } => config,
        }
    }

    /// A new handle on the fixture's database, not migrated.
    pub async fn open(&self) -> Store {
        Store::open(self.config()).await.unwrap()
    }

    /// A new handle, migrated.
    pub async fn store(&self) -> Store {
        let s = self.open().await;
        s.migrate().await.unwrap();
        s
    }
}

pub fn mysql_config(hosts: Vec<(String, u16)>, database: &str) -> StoreConfig {
    StoreConfig::Mysql {
        hosts,
        database: database.to_string(),
        username: "root".to_string(),
        password: String::new(),
    }
}

/// A direct connection to the test server (no database selected), for checks and cleanup.
pub async fn mysql_admin() -> sqlx::MySqlConnection {
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(MYSQL_HOST)
        .port(MYSQL_PORT)
        .username("root");
    sqlx::MySqlConnection::connect_with(&opts).await.expect(
        "MariaDB on 127.0.0.1:3306 (root, no password) must run; set LOOKOUT_TEST_MYSQL=0 to skip",
    )
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Fixture::Mysql { database, .. } = self {
            let database = database.clone();
            // Drop runs inside the test's runtime: clean up from a thread with its own.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut c = mysql_admin().await;
                    let sql = format!("DROP DATABASE IF EXISTS `{database}`");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .unwrap();
                });
            })
            .join();
            if done.is_err() {
                eprintln!("could not drop a test database");
            }
        }
    }
}

/// Generates one `#[tokio::test]` per dialect for each contract function
/// `async fn name(store: Store)`.
#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = $crate::common::Fixture::sqlite();
                    super::$name(fx.store().await).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fx) = $crate::common::Fixture::mysql() else { return };
                    super::$name(fx.store().await).await;
                }
            )*
        }
    };
}

impl Fixture {
    /// Runs one raw statement on the fixture's database: `sqlite` or `mysql` text by dialect.
    pub async fn exec(&self, sqlite: &str, mysql: &str) {
        match self {
            Fixture::Sqlite {
                config: StoreConfig::Sqlite { path },
                ..
            } => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_string()))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Fixture::Mysql { database, .. } => {
                let mut c = mysql_admin().await;
                let sql = format!("USE `{database}`; {mysql}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Fixture::Sqlite { .. } => unreachable!(),
        }
    }

    /// The first column of every row of a raw `SELECT` (NULL as ""), as a reader of the
    /// database itself (not through the store) sees it.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match self {
            Fixture::Sqlite {
                config: StoreConfig::Sqlite { path },
                ..
            } => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                let rows: Vec<Option<String>> =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                c.close().await.unwrap();
                rows.into_iter().map(Option::unwrap_or_default).collect()
            }
            Fixture::Mysql { database, .. } => {
                let mut c = mysql_admin().await;
                let use_db = format!("USE `{database}`");
                sqlx::raw_sql(sqlx::AssertSqlSafe(use_db))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let rows: Vec<Option<String>> =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                c.close().await.unwrap();
                rows.into_iter().map(Option::unwrap_or_default).collect()
            }
            Fixture::Sqlite { .. } => unreachable!(),
        }
    }

    /// `SELECT COUNT(*)` of a table.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Fixture::Sqlite {
                config: StoreConfig::Sqlite { path },
                ..
            } => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            Fixture::Mysql { database, .. } => {
                let mut c = mysql_admin().await;
                let sql = format!("SELECT COUNT(*) FROM `{database}`.{table}");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            Fixture::Sqlite { .. } => unreachable!(),
        }
    }
}

/// Devices `<prefix>0000`, `<prefix>0001`, ... (`n` of them, default SNMP settings, poller
/// group 0); with `token`, each has that poll token registered (as a claimed poll would).
pub async fn add_devices(store: &Store, prefix: &str, n: usize, token: Option<u64>) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let d = store
            .add_device(&lookout_core::NewDevice {
                hostname: format!("{prefix}{i:04}"),
                snmp: lookout_core::SnmpConfig::default(),
                poller_group: 0,
            })
            .await
            .unwrap();
        if let Some(token) = token {
            store.register_poll_token(d.device_id, token).await.unwrap();
        }
        ids.push(d.device_id);
    }
    ids
}

/// Ports `eth1` .. `eth<n>` (ifIndex 1..n, 64-bit counters) with these octet counters.
pub fn port_polls(n: i64, in_octets: u64, out_octets: Option<u64>) -> Vec<lookout_core::PortPoll> {
    (1..=n)
        .map(|k| lookout_core::PortPoll {
            if_index: k,
            if_name: Some(format!("eth{k}")),
            counters: lookout_core::PortCounters {
                in_octets: Some(in_octets),
                out_octets,
                hc: true,
                ..lookout_core::PortCounters::default()
            },
            ..lookout_core::PortPoll::default()
        })
        .collect()
}

/// A whole poll as the poller commits it, fenced by node `n1` with `token`: the device row
/// (up, linux, uptime 1000), `ports`, `ipv4` addresses 10.0.0.1 .. on ifIndex 1.., one
/// processor and one storage row.
pub fn whole_poll(
    at: chrono::DateTime<chrono::Utc>,
    token: u64,
    ports: Vec<lookout_core::PortPoll>,
    ipv4: i64,
) -> lookout_store::PollCommit {
    let mut c = lookout_store::PollCommit::new(
        lookout_core::DevicePollUpdate {
            sys_name: Some("dev".into()),
            sys_descr: None,
            sys_object_id: None,
            sys_contact: None,
            sys_location: None,
            os: Some("linux".into()),
            hardware: None,
            version: None,
            serial: None,
            uptime: Some(1000),
            uptime_source: None,
            status: lookout_core::DeviceStatus::Up,
            status_reason: String::new(),
            last_polled: at,
            last_polled_timetaken: 0.2,
        },
        Some(lookout_store::PollFence {
            node_id: "n1".into(),
            token,
            started: at,
        }),
    );
    c.ports = Some(lookout_store::PortsStage {
        polled: ports,
        polled_at: at,
        reset_counters: false,
        moves: Vec::new(),
        events: None,
    });
    c.ipv4_addresses = Some(
        (1..=ipv4)
            .map(|k| lookout_store::Ipv4AddressPoll {
                if_index: k,
                ipv4_address: format!("10.0.0.{k}"),
                ipv4_prefixlen: 24,
            })
            .collect(),
    );
    c.processors = Some(vec![lookout_store::ProcessorPoll {
        processor_type: "hr".into(),
        processor_index: "1".into(),
        processor_oid: "1.3.6.1.2.1.25.3.3.1.2.1".into(),
        processor_descr: "CPU".into(),
        processor_usage: Some(5.0),
    }]);
    c.storage = Some(vec![root_storage()]);
    c
}

/// `/`: 1 GiB in 4 KiB units, half used.
pub fn root_storage() -> lookout_store::StoragePoll {
    lookout_store::StoragePoll {
        storage_mib: "hrstorage".into(),
        storage_index: 31,
        storage_type: Some("hrStorageFixedDisk".into()),
        storage_descr: "/".into(),
        storage_size: 1 << 30,
        storage_units: 4096,
        storage_used: 1 << 29,
        storage_free: 1 << 29,
        storage_perc: 50.0,
    }
}
