//! The CI's second database leg: with `LOOKOUT_TEST_DB=mysql` the crate-level tests that
//! normally use a SQLite file run on the MariaDB at 127.0.0.1:3306 (root, no password)
//! instead, each in a fresh database of its own that is dropped when its guard goes out of
//! scope (also when the test panics).

use std::process::Command;

use rand::Rng as _;

/// The shared test server.
pub const HOST: &str = "127.0.0.1";
pub const PORT: u16 = 3306;

/// Whether this run is the MariaDB leg (`LOOKOUT_TEST_DB=mysql`).
pub fn test_db_is_mysql() -> bool {
    std::env::var("LOOKOUT_TEST_DB").is_ok_and(|v| v == "mysql")
}

/// A fresh database on the test server; dropped on drop.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    /// Creates `<prefix>_<random hex>` (`prefix` of `[a-z0-9_]`).
    pub fn create(prefix: &str) -> TestDatabase {
        let name = format!("{prefix}_{:016x}", rand::rng().random::<u64>());
        sql(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"));
        TestDatabase { name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new(super::galera::MARIADB_CLIENT)
            .args(["-h", HOST, "-P", &PORT.to_string(), "-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .output();
    }
}

/// Runs `sql` as root on the test server; panics with the client's message on failure.
pub fn sql(sql: &str) {
    let out = Command::new(super::galera::MARIADB_CLIENT)
        .args(["-h", HOST, "-P", &PORT.to_string(), "-u", "root", "-e", sql])
        .output()
        .expect("mariadb client missing: apt-get install mariadb-client");
    assert!(
        out.status.success(),
        "mariadb {sql}: {} (LOOKOUT_TEST_DB=mysql needs MariaDB on {HOST}:{PORT}, root, no password)",
        String::from_utf8_lossy(&out.stderr)
    );
}
