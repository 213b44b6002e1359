//! A real net-snmp `snmpd` (Debian `snmpd`) on loopback, answering v1/v2c for community
//! `public`: one agent on 127.0.0.1, or one process that stands for many devices by
//! listening on 127.0.0.2 .. 127.0.0.(1+n) with the same port. Config, log, pid file and
//! persistent dir live in a temp dir of its own; the process is killed on drop (its log is
//! printed first when the test panics).

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SNMPD: &str = "/usr/sbin/snmpd";
pub const SNMPGET: &str = "/usr/bin/snmpget";

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

/// What the agent says about itself and where it listens; [`Snmpd::start`] runs it.
#[derive(Debug, Clone)]
pub struct SnmpdConfig {
    sys_name: String,
    extra: Vec<String>,
    /// None: 127.0.0.1; Some(n): 127.0.0.2 .. 127.0.0.(1+n).
    devices: Option<u8>,
    /// Listen on this one address instead (see [`SnmpdConfig::on`]).
    addr: Option<Ipv4Addr>,
}

impl SnmpdConfig {
    /// An agent on 127.0.0.1 whose sysName.0 is `sys_name`.
    pub fn new(sys_name: &str) -> SnmpdConfig {
        SnmpdConfig {
            sys_name: sys_name.to_string(),
            extra: Vec::new(),
            devices: None,
            addr: None,
        }
    }

    /// Adds a line to `snmpd.conf` (e.g. `sysLocation Rack 7, Lab`).
    pub fn line(mut self, line: &str) -> SnmpdConfig {
        self.extra.push(line.to_string());
        self
    }

    /// Listens on `addr` (a 127.0.0.0/8 address) alone: one device per agent, so that each
    /// can be paused on its own.
    pub fn on(mut self, addr: Ipv4Addr) -> SnmpdConfig {
        assert!(addr.is_loopback(), "{addr} is not a loopback address");
        self.addr = Some(addr);
        self
    }

    /// Listens on `n` addresses, 127.0.0.2 .. 127.0.0.(1+n), all on the same port: `n`
    /// distinct "devices" for multi-device tests.
    pub fn devices(mut self, n: u8) -> SnmpdConfig {
        assert!((1..=253).contains(&n), "1..=253 loopback devices, not {n}");
        self.devices = Some(n);
        self
    }
}

/// A running snmpd; killed on drop.
pub struct Snmpd {
    /// The UDP port, the same on every address.
    pub port: u16,
    /// The addresses it answers on.
    pub addrs: Vec<Ipv4Addr>,
    child: Child,
    dir: tempfile::TempDir,
}

/// snmpd in the foreground with `dir`'s snmpd.conf, log and state.
fn spawn_snmpd(dir: &Path, addrs: &[Ipv4Addr], port: u16) -> std::process::Child {
    // The address list goes on the command line: the config file chokes on long lists.
    let listen: Vec<String> = addrs.iter().map(|a| format!("udp:{a}:{port}")).collect();
    Command::new(SNMPD)
        .args(["-f", "-Lf"])
        .arg(dir.join("snmpd.log"))
        .args(["-C", "-c"])
        .arg(dir.join("snmpd.conf"))
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        .arg(format!("--persistentDir={}", dir.join("persist").display()))
        .arg(listen.join(","))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start snmpd")
}

impl Snmpd {
    pub fn start(config: SnmpdConfig) -> Snmpd {
        assert!(
            Path::new(SNMPD).exists(),
            "{SNMPD} missing: apt-get install snmpd"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let addrs: Vec<Ipv4Addr> = match (config.addr, config.devices) {
            (Some(a), _) => vec![a],
            (None, None) => vec![Ipv4Addr::LOCALHOST],
            (None, Some(n)) => (0..n).map(|i| Ipv4Addr::new(127, 0, 0, i + 2)).collect(),
        };
        let mut conf = format!(
            "rocommunity public 127.0.0.0/8\nsysName {}\n",
            config.sys_name
        );
        for line in &config.extra {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = dir.path().join("snmpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = spawn_snmpd(dir.path(), &addrs, port);
        let mut agent = Snmpd {
            port,
            addrs,
            child,
            dir,
        };
        agent.wait_ready();
        agent
    }

    /// Kills the agent and starts it again on the same addresses, port and configuration
    /// (its sysUpTime starts from zero; the host's hrSystemUptime does not).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_snmpd(self.dir.path(), &self.addrs, self.port);
        self.wait_ready();
    }

    /// The agent's process id (to pause it with SIGSTOP: the device stops answering).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first (for a single agent: the only) address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addrs[0]
    }

    /// snmpd's own log (`-Lf`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpd.log")).unwrap_or_default()
    }

    /// Until the last address answers sysName.0 (snmpd binds every address before it
    /// serves any); panics with the log if snmpd exits or does not answer within 10 s.
    fn wait_ready(&mut self) {
        let last = *self.addrs.last().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("snmpd exited ({st}):\n{}", self.log());
            }
            if answers(last, self.port, "public") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "snmpd did not answer on {last}:{} within 10 s:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- snmpd log ---\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an agent answers a v2c GET of sysName.0 on `addr:port` (net-snmp's snmpget, one
/// try of 0.5 s).
pub fn answers(addr: Ipv4Addr, port: u16, community: &str) -> bool {
    Command::new(SNMPGET)
        .args(["-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On"])
        .arg(format!("{addr}:{port}"))
        .arg("1.3.6.1.2.1.1.5.0")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Waits until any agent (snmpd, lookout-snmpsim, ...) answers sysName.0 on
/// 127.0.0.1:`port` for `community`; panics after `limit`.
pub fn wait_snmp(port: u16, community: &str, limit: Duration) {
    assert!(
        Path::new(SNMPGET).exists(),
        "{SNMPGET} missing: apt-get install snmp"
    );
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if answers(Ipv4Addr::LOCALHOST, port, community) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no SNMP agent answered on port {port} (community {community}) within {limit:?}");
}
