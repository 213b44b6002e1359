//! Test harness: a real net-snmp `snmpd` on 127.0.0.1 with its own port, config and state
//! directory (killed on drop), helpers to run net-snmp's command-line tools, and a scriptable
//! fake agent for fault injection.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lookout_core::{SnmpConfig, SnmpVersion};

pub const SNMPD: &str = "/usr/sbin/snmpd";

pub fn require(bin: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(bin);
    assert!(
        p.exists(),
        "{bin} is missing: install the Debian package `{package}` (apt-get install -y {package})"
    );
    p
}

/// v3 users every snmpd of the tests knows: (name, auth, auth pass, priv, priv pass).
pub const V3_USERS: &[(&str, &str, &str, &str, &str)] = &[
    ("noauth", "", "", "", ""),
    ("md5only", "MD5", "md5password0", "", ""),
    ("shaonly", "SHA", "shapassword0", "", ""),
    ("sha512only", "SHA-512", "sha512password0", "", ""),
    ("md5des", "MD5", "md5password1", "DES", "despassword1"),
    ("sha1des", "SHA", "sha1password1", "DES", "despassword2"),
    ("sha1aes", "SHA", "sha1password2", "AES", "aespassword1"),
    (
        "sha224aes",
        "SHA-224",
        "sha224password",
        "AES",
        "aespassword2",
    ),
    (
        "sha256aes192",
        "SHA-256",
        "sha256password",
        "AES-192",
        "aes192password",
    ),
    (
        "sha384aes256",
        "SHA-384",
        "sha384password",
        "AES-256",
        "aes256password",
    ),
    (
        "sha512aes256",
        "SHA-512",
        "sha512password",
        "AES-256",
        "aes256password2",
    ),
    // Short hashes with long AES keys exercise net-snmp's key extension.
    (
        "md5aes256",
        "MD5",
        "md5password3",
        "AES-256",
        "aes256password3",
    ),
    (
        "sha1aes192",
        "SHA",
        "sha1password3",
        "AES-192",
        "aes192password3",
    ),
    (
        "md5aes256c",
        "MD5",
        "md5password4",
        "AES-256-C",
        "aes256password4",
    ),
    (
        "sha1aes192c",
        "SHA",
        "sha1password4",
        "AES-192-C",
        "aes192password4",
    ),
];

/// A running snmpd; killed and reaped on drop.
pub struct Snmpd {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Snmpd {
    /// Starts snmpd on a free port of 127.0.0.1 and waits until it answers.
    pub fn start() -> Snmpd {
        require(SNMPD, "snmpd");
        require("/usr/bin/snmpget", "snmp");
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_udp_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut conf = format!(
                "agentAddress udp:127.0.0.1:{port},udp6:[::1]:{port}\n\
                 rocommunity public 127.0.0.0/8\n\
                 rocommunity6 public ::1/128\n\
                 rwcommunity private 127.0.0.1\n\
                 sysName probe-snmpd\n\
                 sysLocation Rack 1, \"lab\"\n\
                 sysContact ops@example.invalid\n"
            );
            for (user, auth, ap, pp, pw) in V3_USERS {
                if auth.is_empty() {
                    conf.push_str(&format!("createUser {user}\nrouser {user} noauth\n"));
                } else if pp.is_empty() {
                    conf.push_str(&format!(
                        "createUser {user} {auth} \"{ap}\"\nrouser {user} auth\n"
                    ));
                } else {
                    conf.push_str(&format!(
                        "createUser {user} {auth} \"{ap}\" {pp} \"{pw}\"\nrouser {user} priv\n"
                    ));
                }
            }
            let conf_path = dir.path().join("snmpd.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let persist = dir.path().join("persist");
            std::fs::create_dir_all(&persist).unwrap();
            let child = spawn_snmpd(dir.path());
            let mut s = Snmpd { child, addr, dir };
            if s.wait_ready(Duration::from_secs(5)) {
                return s;
            }
            // Port taken in the meantime or snmpd failed: try another port.
            drop(s);
        }
        panic!("snmpd did not start");
    }

    /// Kills snmpd and starts it again on the same port with the same state directory
    /// (so its engine ID stays and its engine boots counter goes up).
    pub fn restart(&mut self) {
        self.restart_with(false);
    }

    /// Restarts snmpd; with `forget_state` its persistent state is wiped first, so it comes
    /// back with a new engine ID.
    pub fn restart_with(&mut self, forget_state: bool) {
        // SIGTERM, so that snmpd saves its engine boots and ID on the way out.
        let _ = Command::new("/bin/kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        if forget_state {
            let _ = std::fs::remove_file(self.dir.path().join("persist").join("snmpd.conf"));
        }
        self.child = spawn_snmpd(self.dir.path());
        assert!(
            self.wait_ready(Duration::from_secs(5)),
            "snmpd did not restart"
        );
    }

    fn wait_ready(&mut self, max: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < max {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let out = Command::new("/usr/bin/snmpget")
                .args(["-v2c", "-c", "public", "-r0", "-t", "0.2", "-On"])
                .arg(self.addr.to_string())
                .arg("1.3.6.1.2.1.1.5.0")
                .output()
                .unwrap();
            if out.status.success() {
                return true;
            }
        }
        false
    }

    pub fn cfg(&self, version: SnmpVersion, community: &str) -> SnmpConfig {
        SnmpConfig {
            version,
            port: self.addr.port(),
            community: community.to_string(),
            timeout_ms: 1000,
            retries: 1,
            v3: None,
        }
    }

    pub fn v3_cfg(
        &self,
        user: &str,
        level: &str,
        auth: (&str, &str),
        privacy: (&str, &str),
    ) -> SnmpConfig {
        SnmpConfig {
            version: SnmpVersion::V3,
            port: self.addr.port(),
            community: String::new(),
            timeout_ms: 1000,
            retries: 1,
            v3: Some(lookout_core::SnmpV3Config {
                security_level: level.to_string(),
                auth_user: user.to_string(),
                auth_protocol: auth.0.to_string(),
                auth_password: auth.1.to_string(),
                priv_protocol: privacy.0.to_string(),
                priv_password: privacy.1.to_string(),
            }),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpd.log")).unwrap_or_default()
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_snmpd(dir: &Path) -> Child {
    // SNMPCONFPATH (rather than -C -c) confines snmpd to our config and lets it read back its
    // persistent state (engine ID, boots) after a restart; nothing from /etc/snmp is read.
    let persist = dir.join("persist");
    Command::new(SNMPD)
        .env(
            "SNMPCONFPATH",
            format!("{}:{}", dir.display(), persist.display()),
        )
        .arg("-f")
        .arg("-Lf")
        .arg(dir.join("snmpd.log"))
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        // No SMUX: parallel test agents would fight over its fixed TCP port.
        .args(["-I", "-smux"])
        .arg(format!("--persistentDir={}", dir.join("persist").display()))
        .env("MIBS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning snmpd")
}

pub fn free_udp_port() -> u16 {
    let s = StdUdp::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Runs a net-snmp tool and returns stdout (panics with stderr on failure).
pub fn netsnmp(tool: &str, args: &[&str]) -> String {
    let path = Path::new("/usr/bin").join(tool);
    require(path.to_str().unwrap(), "snmp");
    let out = Command::new(&path)
        .args(args)
        // No MIBs at all, wherever this runs: with MIB files installed net-snmp would apply
        // DISPLAY-HINTs and print other text than the raw values the engine renders.
        .env("MIBS", "")
        .env("MIBDIRS", "/nonexistent")
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Splits `-On` output into (oid, rendered value) pairs; continuation lines (multi-line hex
/// dumps, strings with newlines) are joined with `\n`.
pub fn parse_netsnmp(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for line in out.split('\n') {
        let starts_entry = line.starts_with('.')
            && line
                .split_once(" = ")
                .map(|(o, _)| o[1..].chars().all(|c| c.is_ascii_digit() || c == '.'))
                .unwrap_or(false);
        if starts_entry {
            let (o, val) = line.split_once(" = ").unwrap();
            v.push((o[1..].to_string(), val.to_string()));
        } else if let Some(last) = v.last_mut() {
            last.1.push('\n');
            last.1.push_str(line);
        }
    }
    // The final newline of the output is not a continuation.
    if let Some(last) = v.last_mut() {
        while last.1.ends_with('\n') {
            last.1.pop();
        }
    }
    v
}
