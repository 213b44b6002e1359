//! Test helpers: a real rrdcached started per test on its own loopback port and temp dir
//! (killed on Drop), and `/usr/bin/rrdtool` to read the files back independently of the crate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RRDCACHED: &str = "/usr/bin/rrdcached";
pub const RRDTOOL: &str = "/usr/bin/rrdtool";

pub fn need(bin: &str, package: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A real rrdcached: `-g -R -B -F`, base dir and journal in a temp dir.
pub struct Rrdcached {
    pub dir: tempfile::TempDir,
    pub listen: String,
    child: Option<Child>,
}

impl Rrdcached {
    pub fn start_tcp() -> Rrdcached {
        let port = free_port();
        Self::start(format!("127.0.0.1:{port}"))
    }

    pub fn start_unix() -> Rrdcached {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("rrdcached.sock");
        let mut r = Rrdcached {
            dir,
            listen: format!("unix:{}", sock.display()),
            child: None,
        };
        r.spawn();
        r
    }

    pub fn start(listen: String) -> Rrdcached {
        let mut r = Rrdcached {
            dir: tempfile::tempdir().unwrap(),
            listen,
            child: None,
        };
        r.spawn();
        r
    }

    /// Not started: for tests where rrdcached comes up late.
    pub fn not_started() -> Rrdcached {
        Rrdcached {
            dir: tempfile::tempdir().unwrap(),
            listen: format!("127.0.0.1:{}", free_port()),
            child: None,
        }
    }

    pub fn base(&self) -> PathBuf {
        self.dir.path().join("base")
    }

    /// The address as Lookout's `RRDCACHED` setting spells it.
    pub fn address(&self) -> String {
        self.listen.clone()
    }

    pub fn spawn(&mut self) {
        need(RRDCACHED, "rrdcached");
        let base = self.base();
        let journal = self.dir.path().join("journal");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(&journal).unwrap();
        let pid = self.dir.path().join("rrdcached.pid");
        let _ = std::fs::remove_file(&pid);
        if let Some(sock) = self.listen.strip_prefix("unix:") {
            let _ = std::fs::remove_file(sock);
        }
        let log = std::fs::File::create(self.dir.path().join("rrdcached.log")).unwrap();
        let child = Command::new(RRDCACHED)
            .args(["-g", "-R", "-B", "-F", "-l", &self.listen, "-b"])
            .arg(&base)
            .arg("-j")
            .arg(&journal)
            .arg("-p")
            .arg(&pid)
            // Long timers, as in production: the files are written when Lookout FLUSHes.
            .args(["-w", "3600", "-z", "1", "-f", "7200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = if let Some(sock) = self.listen.strip_prefix("unix:") {
                std::os::unix::net::UnixStream::connect(sock).is_ok()
            } else {
                std::net::TcpStream::connect(&self.listen).is_ok()
            };
            if up {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let log = std::fs::read_to_string(self.dir.path().join("rrdcached.log"))
                        .unwrap_or_default();
                    panic!("rrdcached exited with {status}: {log}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "rrdcached did not come up on {}",
                self.listen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no shutdown flush, the journal's buffered tail is lost.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Rrdcached {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `/usr/bin/rrdtool fetch FILE CF -s START -e END`: (time, values) rows.
pub fn rrdtool_fetch(file: &Path, cf: &str, start: i64, end: i64) -> Vec<(i64, Vec<Option<f64>>)> {
    need(RRDTOOL, "rrdtool");
    let out = Command::new(RRDTOOL)
        .env_remove("RRDCACHED_ADDRESS")
        .arg("fetch")
        .arg(file)
        .args([cf, "-s", &start.to_string(), "-e", &end.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rrdtool fetch {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_fetch(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_fetch(text: &str) -> Vec<(i64, Vec<Option<f64>>)> {
    text.lines()
        .filter_map(|l| {
            let (t, rest) = l.split_once(':')?;
            let t: i64 = t.trim().parse().ok()?;
            let vals = rest
                .split_whitespace()
                .map(|v| {
                    let x: f64 = v.parse().unwrap();
                    if x.is_nan() {
                        None
                    } else {
                        Some(x)
                    }
                })
                .collect();
            Some((t, vals))
        })
        .collect()
}

/// `/usr/bin/rrdtool info FILE` as text.
pub fn rrdtool_info(file: &Path) -> String {
    need(RRDTOOL, "rrdtool");
    let out = Command::new(RRDTOOL)
        .env_remove("RRDCACHED_ADDRESS")
        .arg("info")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rrdtool info: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Many fetches through one `rrdtool -` process (fast for thousands of files).
pub struct RrdtoolPipe {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl RrdtoolPipe {
    pub fn new(dir: &Path) -> RrdtoolPipe {
        need(RRDTOOL, "rrdtool");
        let mut child = Command::new(RRDTOOL)
            .arg("-")
            .current_dir(dir)
            .env_remove("RRDCACHED_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        RrdtoolPipe { child, out }
    }

    pub fn fetch(
        &mut self,
        rel: &str,
        cf: &str,
        start: i64,
        end: i64,
    ) -> Vec<(i64, Vec<Option<f64>>)> {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "fetch {rel} {cf} -s {start} -e {end}").unwrap();
        stdin.flush().unwrap();
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(self.out.read_line(&mut line).unwrap() > 0, "rrdtool exited");
            if line.starts_with("OK ") {
                break;
            }
            assert!(!line.starts_with("ERROR"), "rrdtool fetch {rel}: {line}");
            text.push_str(&line);
        }
        parse_fetch(&text)
    }
}

impl Drop for RrdtoolPipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A poll-interval-aligned time well in the past, so that tests choose their timestamps.
pub fn aligned_past(step: i64, ago: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - ago) / step * step
}

pub fn value_at(rows: &[(i64, Vec<Option<f64>>)], t: i64, ds: usize) -> Option<f64> {
    rows.iter().find(|r| r.0 == t).and_then(|r| r.1[ds])
}
