//! The poller against recordings of real devices: snmpsim-data's snmprec files (BSD-licensed,
//! installed by `scripts/snmpsim-venv.sh` into a venv under the target dir, not committed)
//! served by snmpsim, the independent agent simulator.
//!
//! Each recording is served twice: as recorded (`first/<name>`), then with known counter
//! increments and sysUpTime + 300 s (`second/<name>`), so that two polls give rates that
//! can be checked: ifIndex N moves by 1000·N octets in and 2000·N out.
//! `LOOKOUT_TEST_SNMPSIM=0` skips (loudly).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::Rig;

/// Rewrites snmpsim-data recordings into `<out>/first/<flat>.snmprec` (as recorded) and
/// `<out>/second/<flat>.snmprec` (counters and uptime moved).
const PREPARE: &str = r#"
import bz2, os, sys, snmpsim_data
src = os.path.join(os.path.dirname(snmpsim_data.__file__), 'data')
out = sys.argv[1]
IF = '1.3.6.1.2.1.2.2.1.'
IFX = '1.3.6.1.2.1.31.1.1.1.'
STEP = {IF + '10': 1000, IF + '16': 2000, IF + '11': 10, IF + '17': 20,
        IFX + '6': 1000, IFX + '10': 2000, IFX + '7': 10, IFX + '11': 20}
for name in sys.argv[2:]:
    p = os.path.join(src, name + '.snmprec')
    if os.path.exists(p + '.bz2'):
        data = bz2.open(p + '.bz2', 'rt', encoding='latin-1').read()
    else:
        data = open(p, encoding='latin-1').read()
    flat = name.replace('/', '_')
    for variant in ('first', 'second'):
        lines = []
        for line in data.splitlines():
            parts = line.split('|', 2)
            if variant == 'second' and len(parts) == 3 and parts[2].isdigit():
                oid, tag, val = parts
                col, _, idx = oid.rpartition('.')
                if oid == '1.3.6.1.2.1.1.3.0' and tag == '67':
                    line = '%s|%s|%d' % (oid, tag, (int(val) + 30000) % 2**32)
                elif col in STEP and tag in ('65', '70') and idx.isdigit():
                    mod = 2**32 if tag == '65' else 2**64
                    line = '%s|%s|%d' % (oid, tag, (int(val) + STEP[col] * int(idx)) % mod)
            lines.append(line)
        d = os.path.join(out, variant)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, flat + '.tmp')
        with open(tmp, 'w', encoding='latin-1') as f:
            f.write('\n'.join(lines) + '\n')
        os.replace(tmp, os.path.join(d, flat + '.snmprec'))
"#;

/// One recording and what the poller must find in it.
struct Case {
    recording: &'static str,
    /// From ENTITY-MIB's chassis entry or the OS rules' sysDescr regexes.
    hardware: Option<&'static str>,
    version: Option<&'static str>,
    os: &'static str,
    ports: usize,
    /// ifName (else ifDescr) of the first two ports in ifIndex order.
    first_ports: [&'static str; 2],
    processors: usize,
    mempools: usize,
    storage: usize,
}

const CASES: &[Case] = &[
    Case {
        recording: "network/switch/cisco-c3560",
        hardware: Some("WS-C3560G-48TS-E"),
        version: Some("12.2(55)SE3"),
        os: "ios",
        ports: 57,
        first_ports: ["Vl1", "Vl2"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "network/switch/cisco-n5000",
        hardware: Some("N5K-C5548UP"),
        version: Some("6.0(2)N2(3)"),
        os: "nxos",
        ports: 61,
        first_ports: ["mgmt0", "Vlan1"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "network/router/juniper-mx960-13-3r9-13",
        hardware: Some("mx960"),
        version: Some("13.3R9.13"),
        os: "junos",
        ports: 61,
        first_ports: ["fxp0", "lsi"],
        processors: 0,
        mempools: 0,
        storage: 4,
    },
    Case {
        recording: "cloud/arista-dcs-7150s-52-cl",
        hardware: Some("DCS-7150S-52-CL"),
        version: Some("4.20.5F"),
        os: "arista_eos",
        ports: 59,
        first_ports: ["Ethernet1", "Ethernet2"],
        processors: 3,
        mempools: 3,
        storage: 0,
    },
    Case {
        recording: "network/switch/hpe-procurve-516733-b21",
        hardware: Some("516733-B21"),
        version: Some("Z.14.31"),
        os: "procurve",
        ports: 42,
        first_ports: ["1", "2"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "network/firewall/paloalto-pa-5000",
        hardware: Some("PA-5050"),
        version: Some("8.0.1"),
        os: "panos",
        ports: 46,
        first_ports: ["dedicated-ha1", "dedicated-ha2"],
        processors: 2,
        mempools: 2,
        storage: 3,
    },
    Case {
        recording: "storage/netapp-fas3270",
        hardware: None,
        version: Some("8.2.3"),
        os: "netapp",
        ports: 15,
        first_ports: ["e0a", "e0b"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "UPS/apc-8641",
        hardware: Some("AP8641"),
        version: Some("v6.7.2"),
        os: "apc",
        ports: 2,
        first_ports: ["LOOPBACK", "vmac0"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "os/linux/unknown-006",
        hardware: Some("x86_64"),
        version: Some("3.10.0-514.el7.x86_64"),
        os: "linux",
        ports: 11,
        first_ports: ["lo", "ens32"],
        processors: 4,
        mempools: 4,
        storage: 5,
    },
    Case {
        recording: "os/windows/server-2003-5-2",
        hardware: Some("x86 Family 6 Model 63 Stepping 2 AT/AT COMPATIBLE"),
        version: Some("5.2"),
        os: "windows",
        ports: 2,
        first_ports: [
            "MS TCP Loopback interface",
            "Intel(R) PRO/1000 MT Network Connection",
        ],
        processors: 4,
        mempools: 2,
        storage: 1,
    },
    Case {
        recording: "network/wifi/aruba-7210",
        hardware: Some("Aruba7210"),
        version: Some("6.5.1.6"),
        os: "arubaos",
        ports: 22,
        first_ports: ["GE0/0/0", "GE0/0/1"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "network/router/huawei-s5720",
        hardware: Some("S5720-36C-EI-AC"),
        version: Some("V200R007C00SPC500"),
        os: "vrp",
        ports: 39,
        first_ports: ["InLoopBack0", "NULL0"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "network/switch/h3c-e528-1",
        hardware: Some("H3C Switch E528"),
        version: Some("5.20, Release 1513P62"),
        os: "comware",
        ports: 31,
        first_ports: ["GigabitEthernet1/0/1", "GigabitEthernet1/0/2"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
    Case {
        recording: "network/switch/dlink-des3200",
        hardware: Some("DES-3200-18"),
        version: None,
        os: "dlink",
        ports: 23,
        first_ports: ["1", "2"],
        processors: 0,
        mempools: 0,
        storage: 0,
    },
];

/// Neighbours in the recordings: (recording, number of links, one of them as
/// (protocol, local port, remote name, remote port)). The numbers are the recordings'
/// cdpCacheTable rows with a device id plus lldpRemTable rows with a name or chassis id,
/// counted from the snmprec files; the samples read off them by hand.
type LinkSample = (&'static str, &'static str, &'static str, &'static str);
const LINKS: &[(&str, usize, LinkSample)] = &[
    (
        "network/switch/cisco-c3560",
        9,
        (
            "cdp",
            "Gi0/49",
            "OLD-ShiTang-WIRELESS",
            "GigabitEthernet0/2",
        ),
    ),
    (
        "network/switch/cisco-n5000",
        14,
        ("lldp", "mgmt0", "NWPU-CA-5548-02", "mgmt0"),
    ),
    (
        "network/switch/hpe-procurve-516733-b21",
        10,
        // no system name: the chassis MAC; a port id of subtype MAC, without description
        ("lldp", "8", "e8:39:35:1a:ca:99", "e8:39:35:1a:ca:99"),
    ),
    (
        "network/switch/h3c-e528-1",
        1,
        // no lldpLocPortTable: the LLDP port number is the ifIndex
        (
            "lldp",
            "GigabitEthernet1/0/24",
            "WRD-Huiju-2",
            "GigabitEthernet1/0/33",
        ),
    ),
    (
        "network/router/juniper-mx960-13-3r9-13",
        6,
        ("lldp", "ge-1/0/3", "SNNU_Lib", "GigabitEthernet0/0/11"),
    ),
    (
        "cloud/arista-dcs-7150s-52-cl",
        2,
        ("lldp", "Ethernet47", "ZJ-BP-Bak-Arista", "Ethernet23"),
    ),
];

/// IPv6 addresses in the recordings (IP-MIB ipAddressTable rows of type ipv6/ipv6z,
/// counted from the snmprec files) and one as `port address/prefix`.
const IPV6: &[(&str, usize, &str)] = &[
    (
        "network/switch/cisco-c3560",
        4,
        "Vl2 2001:da8:215:100::148/64",
    ),
    ("os/linux/unknown-006", 21, "lo ::1/128"),
];

struct Snmpsim {
    child: Child,
    port: u16,
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv (created on first use) and a work dir with the prepared data and snmpsim's
/// index cache, both kept under the target dir so later runs start in a second.
fn setup() -> (PathBuf, PathBuf) {
    // Canonical, because snmpsim names its index files after the data file's path.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let venv = target.join("snmpsim-venv");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/snmpsim-venv.sh"))
        .arg(&venv)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/snmpsim-venv.sh");
    assert!(
        out.status.success(),
        "scripts/snmpsim-venv.sh failed (needs python3-venv and PyPI access); \
         set LOOKOUT_TEST_SNMPSIM=0 to skip the recording tests"
    );
    let work = target.join("snmpsim-work-v1");
    let data = work.join("data");
    let recordings: Vec<&str> = CASES.iter().map(|c| c.recording).collect();
    let missing = CASES.iter().any(|c| {
        !data
            .join("second")
            .join(format!("{}.snmprec", c.recording.replace('/', "_")))
            .exists()
    });
    if missing {
        let st = Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(PREPARE)
            .arg(&data)
            .args(&recordings)
            .status()
            .unwrap();
        assert!(st.success(), "preparing the recordings failed");
    }
    (venv, work)
}

fn start_snmpsim(venv: &Path, work: &Path) -> Snmpsim {
    let port = lookout_testkit::snmpd::free_udp_port();
    std::fs::create_dir_all(work.join("cache")).unwrap();
    let log = std::fs::File::create(work.join(format!("snmpsim-{port}.log"))).unwrap();
    let mut cmd = Command::new(venv.join("bin/snmpsim-command-responder"));
    cmd.arg(format!("--data-dir={}", work.join("data").display()))
        .arg(format!("--cache-dir={}", work.join("cache").display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        // One loopback address per device: hostnames are unique in the store.
        .args((1..=CASES.len()).map(|i| format!("--agent-udpv4-endpoint=127.0.51.{i}:{port}")))
        .arg("--logging-method=stdout")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // As root snmpsim drops privileges unless told not to (and then cannot read the venv).
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&uid).trim() == "0" {
        cmd.args(["--process-user=root", "--process-group=root"]);
    }
    let child = cmd.spawn().expect("start snmpsim-command-responder");
    let sim = Snmpsim { child, port };
    // The first start indexes every file (minutes for all of them); later starts reuse
    // the cache and answer in about a second.
    lookout_testkit::snmpd::wait_snmp(
        port,
        &format!("first/{}", CASES[0].recording.replace('/', "_")),
        std::time::Duration::from_secs(600),
    );
    sim
}

#[tokio::test]
async fn recordings_of_real_devices() {
    if std::env::var("LOOKOUT_TEST_SNMPSIM").as_deref() == Ok("0") {
        eprintln!(
            "\n!!! LOOKOUT_TEST_SNMPSIM=0: SKIPPING the poller's recording tests (snmpsim) !!!\n"
        );
        return;
    }
    let (venv, work) = setup();
    let sim = start_snmpsim(&venv, &work);
    let rig = Rig::new("").await;
    let mut devices = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let flat = c.recording.replace('/', "_");
        let mut d = rig
            .add(
                &format!("127.0.51.{}", i + 1),
                sim.port,
                &format!("first/{flat}"),
            )
            .await;
        // snmpsim is slow Python, slower still on a loaded 2-core machine: give it time.
        d.snmp.timeout_ms = 10_000;
        devices.push((c, flat, d));
    }
    // Poll 1: as recorded.
    let mut firsts = Vec::new();
    let mut failures = Vec::new();
    for (c, _, d) in &devices {
        let r = rig.poller.poll(d).await.unwrap();
        let names: Vec<String> = r.ports.iter().take(2).map(|p| p.label()).collect();
        println!(
            "{:<45} os={:<10} hw={:?} ver={:?} serial={:?} ports={} first={:?} proc={} mem={} storage={} reason={:?} {:.2}s",
            c.recording, r.system.as_ref().map(|s| s.os.as_str()).unwrap_or("-"),
            r.system.as_ref().and_then(|s| s.hardware.clone()),
            r.system.as_ref().and_then(|s| s.version.clone()),
            r.system.as_ref().and_then(|s| s.serial.clone()),
            r.ports.len(), names, r.processors.len(), r.mempools.len(), r.storage.len(), r.status_reason, r.seconds
        );
        let got = (
            r.system.as_ref().map(|s| s.os.clone()).unwrap_or_default(),
            r.ports.len(),
            r.processors.len(),
            r.mempools.len(),
            r.storage.len(),
        );
        let want = (
            c.os.to_string(),
            c.ports,
            c.processors,
            c.mempools,
            c.storage,
        );
        if got != want || names != c.first_ports {
            failures.push(format!(
                "{}: got {got:?} {names:?}, want {want:?} {:?}",
                c.recording, c.first_ports
            ));
        }
        let hv = (
            r.system.as_ref().and_then(|s| s.hardware.clone()),
            r.system.as_ref().and_then(|s| s.version.clone()),
        );
        if hv != (c.hardware.map(String::from), c.version.map(String::from)) {
            failures.push(format!("{}: hardware/version {hv:?}", c.recording));
        }
        if !r.status.is_up() || !r.status_reason.is_empty() {
            failures.push(format!(
                "{}: status {:?} {:?}",
                c.recording, r.status, r.status_reason
            ));
        }
        firsts.push(r);
    }
    // Discovery ran in poll 1: neighbours (LLDP/CDP) and IPv6 addresses.
    for (c, _, d) in &devices {
        let links = rig.store.links(d.device_id).await.unwrap();
        let ports = rig.store.ports(d.device_id).await.unwrap();
        let label = |id: Option<i64>| {
            id.and_then(|id| ports.iter().find(|p| p.port_id == id))
                .map(|p| p.label())
                .unwrap_or_else(|| "-".into())
        };
        let v6 = rig.store.ipv6_addresses(d.device_id).await.unwrap();
        println!(
            "{:<45} links={} ipv6={} {:?} {:?}",
            c.recording,
            links.len(),
            v6.len(),
            links
                .iter()
                .take(3)
                .map(|l| format!(
                    "{} {} -> {} {}",
                    l.protocol,
                    label(l.local_port_id),
                    l.remote_hostname,
                    l.remote_port
                ))
                .collect::<Vec<_>>(),
            v6.iter()
                .take(3)
                .map(|a| format!(
                    "{} {}/{}",
                    label(Some(a.port_id)),
                    a.ipv6_compressed,
                    a.ipv6_prefixlen
                ))
                .collect::<Vec<_>>()
        );
        if let Some((_, want, sample)) = IPV6.iter().find(|(r, _, _)| *r == c.recording) {
            let got: Vec<String> = v6
                .iter()
                .map(|a| {
                    format!(
                        "{} {}/{}",
                        label(Some(a.port_id)),
                        a.ipv6_compressed,
                        a.ipv6_prefixlen
                    )
                })
                .collect();
            if got.len() != *want || !got.iter().any(|g| g == sample) {
                failures.push(format!(
                    "{}: IPv6 {got:?}, want {want} with {sample}",
                    c.recording
                ));
            }
        } else if !v6.is_empty() {
            failures.push(format!("{}: unexpected IPv6 {v6:?}", c.recording));
        }
        let Some((_, want, sample)) = LINKS.iter().find(|(r, _, _)| *r == c.recording) else {
            if !links.is_empty() {
                failures.push(format!("{}: unexpected links {links:?}", c.recording));
            }
            continue;
        };
        if links.len() != *want {
            failures.push(format!(
                "{}: {} links, want {want}",
                c.recording,
                links.len()
            ));
        }
        let (proto, local, remote, remote_port) = sample;
        if !links.iter().any(|l| {
            l.protocol == *proto
                && label(l.local_port_id) == *local
                && l.remote_hostname == *remote
                && l.remote_port == *remote_port
        }) {
            failures.push(format!(
                "{}: no {proto} link {local} -> {remote} {remote_port} in {links:?}",
                c.recording
            ));
        }
    }
    // Poll 2: counters moved by known amounts.
    for ((c, flat, d), first) in devices.iter().zip(&firsts) {
        let mut d = rig.device(d.device_id).await;
        d.snmp.community = format!("second/{flat}");
        d.snmp.timeout_ms = 10_000;
        let r = rig.poller.poll(&d).await.unwrap();
        let mut checked = 0;
        for p in &r.ports {
            let Some(before) = first.ports.iter().find(|x| x.port_id == p.port_id) else {
                failures.push(format!(
                    "{}: port {} is new in poll 2",
                    c.recording,
                    p.label()
                ));
                continue;
            };
            let (Some(_), Some(_)) = (before.counters.in_octets, p.counters.in_octets) else {
                continue;
            };
            let period = p.poll_period.unwrap();
            let want_in = 1000.0 * p.if_index as f64;
            match p.in_octets_rate {
                Some(rate) if (rate * period - want_in).abs() < 0.5 => checked += 1,
                other => failures.push(format!(
                    "{}: {} in rate {other:?} over {period}s, want {want_in} octets",
                    c.recording,
                    p.label()
                )),
            }
        }
        if c.ports > 0 && checked == 0 {
            failures.push(format!("{}: no port rate could be checked", c.recording));
        }
        let events = rig.store.events(Some(d.device_id), 100).await.unwrap();
        if events
            .iter()
            .any(|e| e.message.starts_with("Device rebooted"))
        {
            failures.push(format!(
                "{}: uptime went up but a reboot was logged",
                c.recording
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
