//! The engine's walk of real-device recordings (PyPI `snmpsim-data`, served by `snmpsim`)
//! must equal net-snmp's `snmpbulkwalk -On -Oe`, varbind by varbind and character by
//! character. Recordings hold what real agents sent: odd strings, Opaque, Counter64,
//! IpAddress, OIDs of every shape.
//!
//! Needs a Python venv with snmpsim: `python3 -m venv V && V/bin/pip install snmpsim
//! snmpsim-data cryptography`, then
//! `LOOKOUT_SNMPSIM_VENV=V cargo test -p lookout-snmp --test snmpsim_recordings -- --ignored`.
//! `LOOKOUT_SNMPSIM_RECORDINGS=a/b,c/d` walks other recordings than the default list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_udp_port, parse_netsnmp};
use lookout_core::SnmpConfig;
use lookout_snmp::{Oid, SnmpClient};

/// Recordings of many kinds of device (all under 40 KB compressed, so snmpsim's slow
/// Python serves them in seconds).
const RECORDINGS: &[&str] = &[
    "camera/hikvision",
    "UPS/eaton-9px-partial",
    "unclassified/03",
    "network/appliance/ucdavis-sic",
    "network/firewall/venus-vsos-v070060600",
    "UPS/huawei-gse200m",
    "network/switch/cts-media-converter",
    "network/wifi/ubiquiti-m5",
    "iot/geist-temperature-sensor",
    "UPS/vertiv-power",
    "network/wifi/aruba-7020",
    "network/firewall/clavister-amaranten",
    "UPS/phoenixtec-power",
    "os/linux/unknown-005",
    "camera/semac-ipcam-500",
    "os/linux/netmanage",
    "network/firewall/paloalto-pa-5000",
    "os/windows/XP",
    "os/linux/ibm-x3550-m3",
    "network/switch/dlink-des3038",
    "network/router/cisco-unmarked-0",
    "storage/isilon-onefs",
];

struct Snmpsim {
    child: Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    /// Per recording, the OIDs whose value a variation module computes (`oid|66:numeric|...`):
    /// they change between two walks, so only their type is compared.
    dynamic: BTreeMap<String, BTreeSet<String>>,
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data_dir(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    for e in std::fs::read_dir(&lib).expect("venv has no lib/") {
        let p = e.unwrap().path().join("site-packages/snmpsim_data/data");
        if p.exists() {
            return p;
        }
    }
    panic!("snmpsim-data is not installed in {}", venv.display());
}

fn recordings() -> Vec<String> {
    match std::env::var("LOOKOUT_SNMPSIM_RECORDINGS") {
        Ok(v) if !v.is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
        _ => RECORDINGS.iter().map(|s| s.to_string()).collect(),
    }
}

fn start_snmpsim(venv: &Path) -> Snmpsim {
    let src = data_dir(venv);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut dynamic = BTreeMap::new();
    for r in &recordings() {
        let dst = data.join(format!("{r}.snmprec"));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let plain = src.join(format!("{r}.snmprec"));
        if plain.exists() {
            std::fs::copy(&plain, &dst).unwrap();
        } else {
            let out = Command::new("bzcat")
                .arg(src.join(format!("{r}.snmprec.bz2")))
                .output()
                .expect("bzcat (Debian package bzip2)");
            assert!(out.status.success(), "bzcat {r}");
            std::fs::write(&dst, out.stdout).unwrap();
        }
        let text = String::from_utf8_lossy(&std::fs::read(&dst).unwrap()).to_string();
        let dynamic_oids: BTreeSet<String> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '|');
                let (o, t) = (f.next()?, f.next()?);
                t.contains(':').then(|| o.to_string())
            })
            .collect();
        dynamic.insert(r.to_string(), dynamic_oids);
    }
    let port = free_udp_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(venv.join("bin/snmpsim-command-responder"))
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!(
            "--cache-dir={}",
            dir.path().join("cache").display()
        ))
        .arg(format!("--agent-udpv4-endpoint={addr}"))
        .args(["--process-user=root", "--process-group=root"])
        .arg("--logging-method=null")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpsim-command-responder");
    let mut sim = Snmpsim {
        child,
        addr,
        _dir: dir,
        dynamic,
    };
    // Ready when the first recording answers (it indexes all files first: slow for big sets).
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "snmpsim did not start"
        );
        if let Ok(Some(st)) = sim.child.try_wait() {
            panic!("snmpsim exited: {st}");
        }
        let ok = Command::new("/usr/bin/snmpget")
            .args(["-v2c", "-c", &recordings()[0], "-r0", "-t", "1", "-On"])
            .arg(sim.addr.to_string())
            .arg("1.3.6.1.2.1.1.1.0")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return sim;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test]
#[ignore = "needs snmpsim: LOOKOUT_SNMPSIM_VENV=<venv with snmpsim + snmpsim-data>"]
async fn walks_of_real_device_recordings_match_snmpbulkwalk() {
    let venv = PathBuf::from(
        std::env::var("LOOKOUT_SNMPSIM_VENV")
            .expect("set LOOKOUT_SNMPSIM_VENV to a venv with snmpsim and snmpsim-data"),
    );
    let sim = start_snmpsim(&venv);
    let client = SnmpClient::bind_v4().await.unwrap();
    let root = Oid::parse("1.3.6.1").unwrap();
    let mut total = 0;
    let mut looping = 0;
    let mut table_cells = 0;
    let list = recordings();
    for r in &list {
        let r = r.as_str();
        let cfg = SnmpConfig {
            port: sim.addr.port(),
            community: r.to_string(),
            timeout_ms: 5000,
            retries: 1,
            ..Default::default()
        };
        let s = client
            .session(sim.addr, &cfg)
            .unwrap()
            .with_max_repetitions(25);
        let (ours, err) = s.walk_partial(&root).await;
        let out = Command::new("/usr/bin/snmpbulkwalk")
            // Same max-repetitions as the engine: with an agent that returns OIDs out of
            // order, where responses end decides what both see (and whether they see a loop).
            .args(["-v2c", "-c", r, "-t", "5", "-Cr25", "-On", "-Oe"])
            .arg(sim.addr.to_string())
            .arg("1.3.6.1")
            .env("MIBS", "")
            .env("MIBDIRS", "/nonexistent")
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("OID not increasing") {
            // A recording of an agent whose OIDs are out of order across responses. What
            // snmpbulkwalk prints then depends on its quirks (it reported several loops in
            // one run); the engine must only end the walk and say why, or return in-order
            // data. Not compared varbind by varbind.
            assert!(
                matches!(
                    err,
                    None | Some(lookout_snmp::SnmpError::NonIncreasingOid { .. })
                ),
                "{r}: {err:?}"
            );
            looping += 1;
            eprintln!(
                "{r}: agent with non-increasing OIDs ({} varbinds before the walk ended)",
                ours.len()
            );
            continue;
        }
        assert!(out.status.success(), "{r}: snmpbulkwalk failed: {stderr}");
        if let Some(e) = err {
            panic!("{r}: {e}");
        }
        let mut theirs = parse_netsnmp(&String::from_utf8_lossy(&out.stdout));
        // snmpbulkwalk also prints the endOfMibView exceptions that end the walk (snmpsim
        // repeats the last OID with it, once per remaining repetition); they are not data,
        // and the engine's walk ends there without returning them.
        theirs.retain(|(_, v)| !v.starts_with("No more variables left in this MIB View"));
        let dynamic = &sim.dynamic[r];
        for (i, (vb, (o, v))) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(&vb.oid.to_string(), o, "{r}: OID #{i}");
            if dynamic.contains(o) {
                // Computed values change between walks, and with them whether net-snmp shows
                // a string as text, hex or "" (empty): compare the kind of value only.
                let kind = |t: &str| match t {
                    "STRING" | "Hex-STRING" | "\"\"" => "string".to_string(),
                    t => t.to_string(),
                };
                let their_type = kind(v.split(':').next().unwrap_or(""));
                assert_eq!(kind(vb.value.type_name()), their_type, "{r}: type of {o}");
            } else {
                assert_eq!(&vb.value.to_string(), v, "{r}: value of {o}");
            }
        }
        assert_eq!(ours.len(), theirs.len(), "{r}: number of varbinds");
        // The table helper on the same data: rows of a few IF-MIB columns must hold exactly
        // what the full walk found under those columns.
        let cols: Vec<Oid> = [
            "1.3.6.1.2.1.2.2.1.2",
            "1.3.6.1.2.1.2.2.1.8",
            "1.3.6.1.2.1.31.1.1.1.6",
        ]
        .iter()
        .map(|c| Oid::parse(c).unwrap())
        .collect();
        let rows = s
            .walk_columns(&cols)
            .await
            .unwrap_or_else(|e| panic!("{r}: {e}"));
        for (i, c) in cols.iter().enumerate() {
            let from_walk: BTreeMap<Oid, String> = ours
                .iter()
                .filter_map(|vb| {
                    let ix = vb.oid.suffix_after(c)?;
                    (!ix.is_empty()).then(|| (Oid::new(ix), vb.value.to_string()))
                })
                .collect();
            let from_rows: BTreeMap<Oid, String> = rows
                .iter()
                .filter_map(|(ix, row)| Some((ix.clone(), row[i].as_ref()?.to_string())))
                .collect();
            if dynamic.iter().any(|o| o.starts_with(&c.to_string())) {
                assert_eq!(from_walk.len(), from_rows.len(), "{r}: rows of {c}");
            } else {
                assert_eq!(from_walk, from_rows, "{r}: rows of {c}");
            }
            table_cells += from_rows.len();
        }
        eprintln!("{r}: {} varbinds identical", ours.len());
        total += ours.len();
    }
    eprintln!(
        "{} recordings ({looping} with non-increasing OIDs), {total} varbinds identical",
        list.len()
    );
    eprintln!("{table_cells} table cells from walk_columns matched the walks");
    assert!(total > 10_000);
    assert!(table_cells > 100);
}
