//! Shared pieces of the binary's integration tests: a real net-snmp `snmpd` on loopback,
//! free ports, and running the `lookout` binary against a temporary data dir.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real snmpd answering v1/v2c (community `public`) on 127.0.0.1:`port`; killed on drop.
pub struct Snmpd {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Snmpd {
    pub fn start() -> Snmpd {
        let bin = Path::new("/usr/sbin/snmpd");
        assert!(bin.exists(), "snmpd missing: apt-get install snmpd");
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            "rocommunity public 127.0.0.0/8\n\
             sysName lookout-test-agent\n\
             sysLocation Rack 7, Lab\n\
             sysContact noc@example.net\n",
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-f")
            .arg("-Lf")
            .arg(dir.path().join("snmpd.log"))
            .arg("-C")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(format!(
                "--persistentDir={}",
                dir.path().join("persist").display()
            ))
            .arg(format!("udp:127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snmpd");
        let s = Snmpd {
            child,
            port,
            _dir: dir,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ok = Command::new("/usr/bin/snmpget")
                .args(["-v2c", "-c", "public", "-t", "0.3", "-r", "0", "-On"])
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("1.3.6.1.2.1.1.5.0")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("snmpd did not answer on port {}", self.port);
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One snmpd answering on 127.0.0.2 .. 127.0.0.(1+n), same port: n distinct "devices"
/// for multi-node tests; killed on drop.
pub struct MultiSnmpd {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl MultiSnmpd {
    pub fn start(n: u8) -> MultiSnmpd {
        let bin = "/usr/sbin/snmpd";
        assert!(
            std::path::Path::new(bin).exists(),
            "snmpd missing: apt-get install snmpd"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            "rocommunity public 127.0.0.0/8\nsysName cluster-agent\n",
        )
        .unwrap();
        // The address list goes on the command line: the config file chokes on long lists.
        let addrs: Vec<String> = (0..n)
            .map(|i| format!("udp:127.0.0.{}:{port}", i + 2))
            .collect();
        let child = Command::new(bin)
            .args(["-f", "-Lf"])
            .arg(dir.path().join("snmpd.log"))
            .args(["-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(format!(
                "--persistentDir={}",
                dir.path().join("persist").display()
            ))
            .arg(addrs.join(","))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snmpd");
        let s = MultiSnmpd {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = Command::new("/usr/bin/snmpget")
                .args(["-v2c", "-c", "public", "-t", "0.3", "-r", "0", "-On"])
                .arg(format!("127.0.0.{}:{port}", n + 1))
                .arg("1.3.6.1.2.1.1.5.0")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "snmpd did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }
}

impl Drop for MultiSnmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which database the binary's tests run on: `LOOKOUT_TEST_DB=mysql` runs the same tests
/// against the MariaDB on 127.0.0.1:3306 (root, no password), one fresh database per
/// installation, dropped afterwards. This is the CI matrix's second leg.
pub fn test_db_is_mysql() -> bool {
    std::env::var("LOOKOUT_TEST_DB").is_ok_and(|v| v == "mysql")
}

/// Runs SQL as root on the local MariaDB.
pub fn mariadb(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", sql])
        .output()
        .expect("mariadb client missing: apt-get install mariadb-client");
    assert!(
        out.status.success(),
        "mariadb {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Lookout installation in a temporary data dir (and, in the MySQL leg, a database).
pub struct Install {
    pub dir: tempfile::TempDir,
    /// The MySQL database of this installation, when the tests run on MySQL.
    pub mysql_db: Option<String>,
}

impl Drop for Install {
    fn drop(&mut self) {
        if let Some(db) = &self.mysql_db {
            let _ = Command::new("mariadb")
                .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                .arg(format!("DROP DATABASE IF EXISTS `{db}`"))
                .output();
        }
    }
}

impl Install {
    pub fn new() -> Install {
        let dir = tempfile::tempdir().unwrap();
        let mysql_db = test_db_is_mysql().then(|| {
            let suffix: String = dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let db = format!("lookout_test_{}", suffix.to_ascii_lowercase());
            mariadb(&format!("CREATE DATABASE `{db}`"));
            db
        });
        Install { dir, mysql_db }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `lookout --data-dir <tmp>/data ARGS`, with a short poll interval.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lookout"));
        c.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .current_dir(self.dir.path())
            .env("POLL_INTERVAL", "10")
            .env("LOOKOUT_ADMIN_PASSWORD", "admin-test-pw")
            .env("LOOKOUT_LOG", "warn")
            .env_remove("LOOKOUT_DATA_DIR")
            .env_remove("DB_CONNECTION")
            .env_remove("RRDCACHED");
        if let Some(db) = &self.mysql_db {
            c.env("DB_CONNECTION", "mysql")
                .env("DB_HOST", "127.0.0.1")
                .env("DB_PORT", "3306")
                .env("DB_DATABASE", db)
                .env("DB_USERNAME", "root")
                .env("DB_PASSWORD", "");
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run lookout")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lookout {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
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
