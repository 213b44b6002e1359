//! Real Redis servers and Sentinels for the tests, on 127.0.0.1 ports of their own, with
//! fresh config files in a temp dir (Sentinel rewrites its config, so never reuse one).
//! Every process is killed (SIGKILL) and reaped when its guard is dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_SENTINEL: &str = "/usr/bin/redis-sentinel";
const REDIS_CLI: &str = "/usr/bin/redis-cli";

fn need(path: &'static str, package: &str) -> &'static str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install -y {package})"
    );
    path
}

/// A port nobody listens on right now (the kernel picks it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Send one command with redis-cli and return its raw output (trimmed).
pub fn cli(port: u16, args: &[&str]) -> String {
    let bin = need(REDIS_CLI, "redis-tools");
    let out = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn wait_ping(port: u16, deadline: Duration) {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            if s.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 16];
                if let Ok(n) = s.read(&mut buf) {
                    // A server with requirepass answers NOAUTH: it is up all the same.
                    if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH") {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis on port {port} did not answer PING within {deadline:?}");
}

/// One process killed on drop.
pub struct Proc {
    pub name: String,
    pub port: u16,
    child: Option<Child>,
}

impl Proc {
    fn spawn(name: &str, bin: &str, conf: &Path, port: u16, log: &Path) -> Proc {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Proc {
            name: name.to_owned(),
            port,
            child: Some(child),
        };
        wait_ping(port, Duration::from_secs(5));
        p
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temp dir plus the processes started in it.
pub struct Lab {
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A redis-server on a free port; `replica_of` makes it a replica of that port.
    pub fn redis(&self, replica_of: Option<u16>) -> Proc {
        self.redis_on(free_port(), replica_of)
    }

    /// A redis-server with `requirepass` set.
    pub fn redis_with_password(&self, password: &str) -> Proc {
        self.start_redis(free_port(), None, &format!("requirepass {password}\n"))
    }

    /// A redis-server on `port` (e.g. one that replaces a killed server).
    pub fn redis_on(&self, port: u16, replica_of: Option<u16>) -> Proc {
        self.start_redis(port, replica_of, "")
    }

    fn start_redis(&self, port: u16, replica_of: Option<u16>, extra: &str) -> Proc {
        let bin = need(REDIS_SERVER, "redis-server");
        let data = self.path(&format!("d{port}-{}", free_port()));
        std::fs::create_dir_all(&data).unwrap();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\nprotected-mode no\n\
             repl-diskless-sync-delay 0\n",
            data.display()
        );
        if let Some(p) = replica_of {
            conf.push_str(&format!("replicaof 127.0.0.1 {p}\n"));
        }
        conf.push_str(extra);
        let cf = self.path(&format!("r{port}.conf"));
        std::fs::write(&cf, conf).unwrap();
        Proc::spawn(
            &format!("redis:{port}"),
            bin,
            &cf,
            port,
            &self.path(&format!("r{port}.log")),
        )
    }

    /// A sentinel watching the primary on `primary_port` as service `service`.
    pub fn sentinel(&self, primary_port: u16, service: &str) -> Proc {
        let bin = need(REDIS_SENTINEL, "redis-sentinel");
        let port = free_port();
        let conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nprotected-mode no\n\
             sentinel monitor {service} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 3000\n",
            self.dir.path().display()
        );
        let cf = self.path(&format!("s{port}.conf"));
        std::fs::write(&cf, conf).unwrap();
        Proc::spawn(
            &format!("sentinel:{port}"),
            bin,
            &cf,
            port,
            &self.path(&format!("s{port}.log")),
        )
    }
}
