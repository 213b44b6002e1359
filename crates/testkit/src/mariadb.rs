//! The CI's second database leg: with `LOOKOUT_TEST_DB=mysql` the crate-level tests that
//! normally use a SQLite file run on the MariaDB at 127.0.0.1:3306 (root, no password)
//! instead, each in a fresh database of its own that is dropped when its guard goes out of
//! scope (also when the test panics). [`Server`] is a MariaDB of a test's own (e.g. with TLS).

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

    /// Rows of `sql` run as root in this database (tab-separated columns, UTC session),
    /// through the `mariadb` client, so it works from sync tests too.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let out = client(&["-N", "-B", &self.name, "-e"])
            .arg(format!("SET time_zone = '+00:00'; {sql}"))
            .output()
            .expect("mariadb client missing: apt-get install mariadb-client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tab_separated(&out.stdout)
    }
}

/// The `mariadb` client as root on the test server, with `args` after the connection ones.
fn client(args: &[&str]) -> Command {
    let mut c = Command::new(super::galera::MARIADB_CLIENT);
    c.args(["-h", HOST, "-P", &PORT.to_string(), "-u", "root"])
        .args(args);
    c
}

/// The `mariadb -N -B` client's output as rows of columns.
pub(crate) fn tab_separated(stdout: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = client(&["-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .output();
    }
}

/// Runs `sql` as root on the test server; panics with the client's message on failure.
pub fn sql(sql: &str) {
    let out = client(&["-e", sql])
        .output()
        .expect("mariadb client missing: apt-get install mariadb-client");
    assert!(
        out.status.success(),
        "mariadb {sql}: {} (LOOKOUT_TEST_DB=mysql needs MariaDB on {HOST}:{PORT}, root, no password)",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A MariaDB server of the test's own (no Galera): fresh data dir, random loopback port,
/// `extra` appended to its `[mysqld]` section; killed on drop.
pub struct Server {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Server {
    pub async fn start(extra: &str) -> Server {
        use crate::galera::{INSTALL_DB, MARIADBD};
        for bin in [MARIADBD, INSTALL_DB] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} missing: install the Debian package mariadb-server"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).unwrap();
        let cnf = format!(
            "[mysqld]\nuser=mysql\ndatadir={d}/data\nsocket={d}/mysqld.sock\nlog-error={d}/error.log\n\
             pid-file={d}/mysqld.pid\nport={port}\nbind-address=127.0.0.1\nskip-name-resolve\n\
             innodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\nperformance_schema=OFF\n{extra}\n\
             [client]\nsocket={d}/mysqld.sock\n",
            d = d.display()
        );
        std::fs::write(d.join("my.cnf"), cnf).unwrap();
        // mariadbd runs as user mysql: it must reach its data dir (and any files in `d`).
        for (cmd, args) in [
            ("chmod", vec!["-R", "a+rX"]),
            ("chown", vec!["-R", "mysql:mysql"]),
        ] {
            let st = Command::new(cmd).args(&args).arg(d).status().unwrap();
            assert!(st.success(), "{cmd} {args:?}");
        }
        crate::galera::install_db(&d.join("my.cnf"));
        let child = Command::new(MARIADBD)
            .arg(format!("--defaults-file={}", d.join("my.cnf").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let mut server = Server {
            port,
            dir,
            child: Some(child),
        };
        let start = std::time::Instant::now();
        loop {
            if server.sql_socket("SELECT 1").is_ok() {
                break;
            }
            if let Some(c) = server.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("mariadbd exited ({st}): {}", server.log());
                }
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "mariadbd did not start: {}",
                server.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        server
    }

    /// The server's temp dir (readable by the server: put certificates here).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Runs `sql` as root over the server's socket; the client's stderr on failure.
    pub fn sql_socket(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(super::galera::MARIADB_CLIENT)
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysqld.sock").display()
            ))
            .args(["-u", "root", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if std::thread::panicking() {
                eprintln!("--- mariadbd error.log ---\n{}", self.log());
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
