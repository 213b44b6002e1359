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
