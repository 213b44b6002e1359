//! The availability module under the poller: pings of concurrent polls share one fping
//! run, the ping runs beside SNMP, and its answer still says why a device is down
//! (`icmp` when it does not answer ping either, `snmp` when only SNMP is silent).
//!
//! fping runs in a network namespace of its own (`unshare -rn`, loopback up, 127.0.0.9
//! blackholed), the only way to have a non-answering address on 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{start_snmpd, Rig};
use lookout_core::DeviceStatus;
use lookout_icmp::{BatchConfig, PingConfig};
use lookout_poller::{ModuleOutcome, ModuleSet, PollerConfig};

/// An fping that logs its arguments to `dir/runs.log` and runs the real one in a private
/// namespace where 127.0.0.9 is blackholed.
fn netns_fping(dir: &Path) -> PathBuf {
    assert!(
        Path::new("/usr/bin/fping").exists(),
        "fping missing: scripts/install-deps.sh"
    );
    let ok = std::process::Command::new("unshare")
        .args(["-rn", "ip", "link", "set", "lo", "up"])
        .status()
        .expect("unshare (util-linux) and ip (iproute2) are needed");
    assert!(
        ok.success(),
        "cannot create a network namespace (unshare -rn)"
    );
    let path = dir.join("fping");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n\
             exec unshare -rn sh -c 'ip link set lo up && ip route add blackhole 127.0.0.9/32 table local && exec /usr/bin/fping \"$@\"' fping \"$@\"\n",
            dir.join("runs.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A UDP port on 127.0.0.1 that nothing listens on (bound, then let go).
fn closed_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn ping_runs_beside_snmp_and_says_why_a_device_is_down() {
    let agent = start_snmpd();
    let dir = tempfile::tempdir().unwrap();
    let fping = netns_fping(dir.path());
    let rig = Rig::with_config(PollerConfig {
        step_secs: 300,
        modules: ModuleSet::all(),
        ping: PingConfig {
            fping,
            count: 2,
            interval_ms: 20,
            timeout_ms: 500,
            // One run for the three polls below, whenever they reach the pinger.
            batch: BatchConfig {
                window: Duration::from_secs(3600),
                max_hosts: 3,
                ..BatchConfig::default()
            },
        },
        ..PollerConfig::default()
    })
    .await;
    let closed = closed_udp_port();
    let up = rig.add("127.0.0.1", agent.port, "public").await;
    let silent = rig.add("127.0.0.9", closed, "public").await;
    let no_snmp = rig.add("127.0.0.2", closed, "public").await;
    let (a, b, c) = tokio::join!(
        rig.poller.poll(&up),
        rig.poller.poll(&silent),
        rig.poller.poll(&no_snmp)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());

    assert_eq!(a.status, DeviceStatus::Up, "{}", a.status_reason);
    assert_eq!(a.ping.as_ref().map(|p| p.received), Some(2));
    let names: Vec<&str> = a.timings.iter().map(|t| t.module).collect();
    assert_eq!(&names[..2], ["availability", "core"], "{names:?}");
    assert_eq!(a.timings[0].outcome, ModuleOutcome::Ok);
    assert!(a.ports.iter().any(|p| p.if_descr.as_deref() == Some("lo")));
    assert!(rig.rrd_dir.join("127.0.0.1/icmp-perf.rrd").exists());

    assert_eq!(b.status, DeviceStatus::Down);
    assert_eq!(b.status_reason, "icmp");
    assert_eq!(
        b.ping.as_ref().map(|p| (p.transmitted, p.received)),
        Some((2, 0))
    );

    assert_eq!(c.status, DeviceStatus::Down);
    assert_eq!(c.status_reason, "snmp");
    assert_eq!(c.ping.as_ref().map(|p| p.received), Some(2));
    assert_eq!(
        rig.device(silent.device_id).await.status_reason,
        "icmp",
        "stored reason"
    );

    let log = std::fs::read_to_string(dir.path().join("runs.log")).unwrap();
    let runs: Vec<&str> = log.lines().collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let mut targets: Vec<&str> = runs[0]
        .split_once("-- ")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    targets.sort();
    assert_eq!(targets, ["127.0.0.1", "127.0.0.2", "127.0.0.9"]);
}
