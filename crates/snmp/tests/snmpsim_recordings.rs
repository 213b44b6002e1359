//! The engine's walk of real-device recordings (PyPI `snmpsim-data`, served by `snmpsim`)
//! must equal net-snmp's `snmpbulkwalk -On -Oe`, varbind by varbind and character by
//! character. Recordings hold what real agents sent: odd strings, Opaque, Counter64,
//! IpAddress, OIDs of every shape.
//!
//! The venv with snmpsim and snmpsim-data is made (once, shared, locked) by
//! `scripts/snmpsim-venv.sh` under the target dir, as for the poller's recording tests;
//! `LOOKOUT_SNMPSIM_VENV=V` uses another one, `LOOKOUT_TEST_SNMPSIM=0` skips (loudly).
//! `LOOKOUT_SNMPSIM_RECORDINGS=a/b,c/d` walks other recordings than the default list
//! (`all`: every recording snmpsim-data has). snmpsim is single-threaded Python (~0.2 ms per
//! varbind), so several snmpsim processes serve the same files and the recordings are
//! walked in parallel (`LOOKOUT_SNMPSIM_PROCS`, default: cores + 1, 2 to 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_udp_port, parse_netsnmp};
use lookout_core::SnmpConfig;
use lookout_snmp::{Oid, SnmpClient, SnmpError};

/// Recordings of many kinds of device: every snmpsim-data recording of up to ~4,000
/// varbinds (cameras, UPSes, sensors, appliances, firewalls, wifi controllers, switches,
/// Linux/Windows hosts, a BMC), plus three of 8,000–10,000 (a D-Link switch, a Cisco
/// router, Isilon storage). About 80,000 varbinds in all.
const RECORDINGS: &[&str] = &[
    "camera/hikvision-network-video-recorder",
    "camera/hikvision",
    "iot/geist-temperature-sensor",
    "UPS/eastpower-istars-swv053",
    "UPS/eaton-9px-partial",
    "network/appliance/ucdavis-sic",
    "unclassified/03",
    "camera/wds-ips-1022",
    "network/wifi/aruba-7020",
    "UPS/ingrasys-power-switch",
    "UPS/huawei-gse200m",
    "network/appliance/network-research-squid",
    "network/wifi/ubiquiti-m5",
    "unclassified/01",
    "network/firewall/venus-vsos-v070060600",
    "network/switch/cts-media-converter",
    "network/wifi/aruba-7010",
    "UPS/vertiv-power",
    "unclassified/02",
    "network/firewall/venus-vsos-v0600r0705b20180507",
    "network/firewall/clavister-amaranten",
    "os/linux/unknown-005",
    "os/linux/unknown-008",
    "UPS/phoenixtec-power",
    "network/appliance/tripplite-poweralert",
    "camera/semac-ipcam-500",
    "UPS/eaton-93e-80",
    "network/appliance/vss-monitoring-optimizer-2400-span",
    "os/linux/sangfor",
    "UPS/emerson-network-power",
    "camera/samsung-ipolis",
    "os/windows/XP",
    "os/windows/server-2003-5-2",
    "network/appliance/nsfocus-ads",
    "UPS/apc-7902b",
    "os/linux/netmanage",
    "network/appliance/meru-networks-controller",
    "network/firewall/paloalto-pa-5000",
    "os/linux/ibm-x3550-m3",
    "network/firewall/legend-holdings-firewall-2",
    "network/firewall/legend-holdings-firewall",
    "os/linux/slackware",
    "network/firewall/nsfocus-osms",
    "storage/isilon-onefs",
    "network/switch/dlink-des3038",
    "network/router/cisco-unmarked-0",
];

/// Writes the named recordings (bz2 or plain in snmpsim-data) to `<out>/<name>.snmprec`,
/// each atomically and only once, and prints the names (`all`: every recording).
const PREPARE: &str = r#"
import bz2, os, sys, snmpsim_data
src = os.path.join(os.path.dirname(snmpsim_data.__file__), 'data')
out, names = sys.argv[1], sys.argv[2:]
if names == ['all']:
    names = sorted(os.path.relpath(os.path.join(d, f), src).split('.snmprec')[0]
                   for d, _, fs in os.walk(src) for f in fs if '.snmprec' in f)
for name in names:
    dst = os.path.join(out, name + '.snmprec')
    if not os.path.exists(dst):
        p = os.path.join(src, name + '.snmprec')
        if os.path.exists(p + '.bz2'):
            data = bz2.open(p + '.bz2', 'rb').read()
        else:
            data = open(p, 'rb').read()
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = '%s.tmp%d' % (dst, os.getpid())
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, dst)
    print(name)
"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv: `LOOKOUT_SNMPSIM_VENV`, else the shared one under the target dir (made on
/// first use by `scripts/snmpsim-venv.sh`, which locks against parallel test binaries).
fn venv(target: &Path) -> PathBuf {
    if let Some(v) = std::env::var_os("LOOKOUT_SNMPSIM_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
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
    venv
}

/// A recording prepared for snmpsim.
struct Recording {
    name: String,
    /// Lines of the file (about its number of varbinds): big ones are walked first.
    lines: usize,
    /// OIDs whose value a variation module computes (`oid|66:numeric|...`): they change
    /// between two walks, so only their type is compared.
    dynamic: BTreeSet<String>,
}

/// Prepares the recordings in a work dir under the target dir that is kept between runs
/// (one per list of recordings), so that snmpsim's index cache there makes later starts fast.
fn prepare(venv: &Path, target: &Path, list: &[String]) -> (PathBuf, Vec<Recording>) {
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        list.hash(&mut h);
        h.finish()
    };
    let work = target.join(format!("snmpsim-work-snmp-v1/{key:016x}"));
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let out = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(PREPARE)
        .arg(&data)
        .args(list)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "preparing the recordings failed");
    let recordings = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|name| {
            let bytes = std::fs::read(data.join(format!("{name}.snmprec"))).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            let dynamic = text
                .lines()
                .filter_map(|l| {
                    let mut f = l.splitn(3, '|');
                    let (o, t) = (f.next()?, f.next()?);
                    t.contains(':').then(|| o.to_string())
                })
                .collect();
            Recording {
                name: name.to_string(),
                lines: text.lines().count(),
                dynamic,
            }
        })
        .collect();
    (work, recordings)
}

struct Snmpsim {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a snmpsim serving every recording of `work/data` and waits until `probe` answers.
fn start_snmpsim(venv: &Path, work: &Path, probe: &str) -> Snmpsim {
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = Command::new(venv.join("bin/snmpsim-command-responder"));
    cmd.arg(format!("--data-dir={}", work.join("data").display()))
        .arg(format!("--cache-dir={}", work.join("cache").display()))
        .arg(format!("--agent-udpv4-endpoint={addr}"))
        .arg("--logging-method=null")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // As root snmpsim drops privileges unless told not to (and then cannot read the venv).
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&uid).trim() == "0" {
        cmd.args(["--process-user=root", "--process-group=root"]);
    }
    let mut sim = Snmpsim {
        child: cmd.spawn().expect("snmpsim-command-responder"),
        addr,
    };
    // Ready when a recording answers. The first start indexes every file into the cache
    // dir (seconds for the default list), later starts only check the index.
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "snmpsim did not start"
        );
        if let Ok(Some(st)) = sim.child.try_wait() {
            panic!("snmpsim exited: {st}");
        }
        let ok = Command::new("/usr/bin/snmpgetnext")
            .args(["-v2c", "-c", probe, "-r0", "-t", "1", "-On"])
            .arg(sim.addr.to_string())
            .arg("1.3.6.1")
            .env("MIBS", "")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return sim;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What one recording gave.
struct Outcome {
    varbinds: usize,
    table_cells: usize,
    /// The agent's OIDs go backwards across responses (not compared varbind by varbind).
    looping: bool,
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

/// Walks one recording with the engine and with snmpbulkwalk at the same time and compares.
async fn check(client: &SnmpClient, addr: SocketAddr, rec: &Recording) -> Result<Outcome, String> {
    let r = rec.name.as_str();
    let cfg = SnmpConfig {
        port: addr.port(),
        community: r.to_string(),
        timeout_ms: 5000,
        retries: 1,
        ..Default::default()
    };
    let s = client
        .session(addr, &cfg)
        .map_err(|e| format!("{r}: {e}"))?
        .with_max_repetitions(25);
    let root = Oid::parse("1.3.6.1").unwrap();
    let netsnmp = tokio::process::Command::new("/usr/bin/snmpbulkwalk")
        // Same max-repetitions as the engine: with an agent that returns OIDs out of
        // order, where responses end decides what both see (and whether they see a loop).
        .args(["-v2c", "-c", r, "-t", "5", "-Cr25", "-On", "-Oe"])
        .arg(addr.to_string())
        .arg("1.3.6.1")
        .env("MIBS", "")
        .env("MIBDIRS", "/nonexistent")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output();
    let ((ours, err), out) = tokio::join!(s.walk_partial(&root), netsnmp);
    let out = out.map_err(|e| format!("{r}: snmpbulkwalk: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("OID not increasing") {
        // A recording of an agent whose OIDs are out of order across responses. What
        // snmpbulkwalk prints then depends on its quirks (it reported several loops in
        // one run); the engine must only end the walk and say why, or return in-order
        // data. Not compared varbind by varbind.
        ensure!(
            matches!(err, None | Some(SnmpError::NonIncreasingOid { .. })),
            "{r}: {err:?}"
        );
        eprintln!(
            "{r}: agent with non-increasing OIDs ({} varbinds before the walk ended)",
            ours.len()
        );
        return Ok(Outcome {
            varbinds: 0,
            table_cells: 0,
            looping: true,
        });
    }
    ensure!(out.status.success(), "{r}: snmpbulkwalk failed: {stderr}");
    if let Some(e) = err {
        return Err(format!("{r}: {e}"));
    }
    let mut theirs = parse_netsnmp(&String::from_utf8_lossy(&out.stdout));
    // snmpbulkwalk also prints the endOfMibView exceptions that end the walk (snmpsim
    // repeats the last OID with it, once per remaining repetition); they are not data,
    // and the engine's walk ends there without returning them.
    theirs.retain(|(_, v)| !v.starts_with("No more variables left in this MIB View"));
    for (i, (vb, (o, v))) in ours.iter().zip(&theirs).enumerate() {
        let oid = vb.oid.to_string();
        ensure!(&oid == o, "{r}: OID #{i}: engine {oid}, snmpbulkwalk {o}");
        if rec.dynamic.contains(o) {
            // Computed values change between walks, and with them whether net-snmp shows
            // a string as text, hex or "" (empty): compare the kind of value only.
            let kind = |t: &str| match t {
                "STRING" | "Hex-STRING" | "\"\"" => "string".to_string(),
                t => t.to_string(),
            };
            let (ours, theirs) = (
                kind(vb.value.type_name()),
                kind(v.split(':').next().unwrap_or("")),
            );
            ensure!(
                ours == theirs,
                "{r}: type of {o}: engine {ours}, snmpbulkwalk {theirs}"
            );
        } else {
            let value = vb.value.to_string();
            ensure!(
                &value == v,
                "{r}: value of {o}: engine {value:?}, snmpbulkwalk {v:?}"
            );
        }
    }
    ensure!(
        ours.len() == theirs.len(),
        "{r}: engine {} varbinds, snmpbulkwalk {}",
        ours.len(),
        theirs.len()
    );
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
        .map_err(|e| format!("{r}: walk_columns: {e}"))?;
    let mut table_cells = 0;
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
        if rec.dynamic.iter().any(|o| o.starts_with(&c.to_string())) {
            ensure!(from_walk.len() == from_rows.len(), "{r}: rows of {c}");
        } else {
            ensure!(
                from_walk == from_rows,
                "{r}: rows of {c}: walk {from_walk:?}, walk_columns {from_rows:?}"
            );
        }
        table_cells += from_rows.len();
    }
    Ok(Outcome {
        varbinds: ours.len(),
        table_cells,
        looping: false,
    })
}

#[tokio::test]
async fn walks_of_real_device_recordings_match_snmpbulkwalk() {
    if std::env::var("LOOKOUT_TEST_SNMPSIM").as_deref() == Ok("0") {
        eprintln!(
            "\n!!! LOOKOUT_TEST_SNMPSIM=0: SKIPPING the engine's recording test (snmpsim) !!!\n"
        );
        return;
    }
    let t_start = Instant::now();
    // Canonical, because snmpsim names its index files after the data file's path.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let venv = venv(&target);
    let custom = std::env::var("LOOKOUT_SNMPSIM_RECORDINGS")
        .ok()
        .filter(|v| !v.is_empty());
    let list: Vec<String> = match &custom {
        Some(v) => v.split(',').map(|s| s.trim().to_string()).collect(),
        None => RECORDINGS.iter().map(|s| s.to_string()).collect(),
    };
    let (work, mut recordings) = prepare(&venv, &target, &list);
    let procs = std::env::var("LOOKOUT_SNMPSIM_PROCS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        // One more than the cores: snmpsim waits on the walkers now and then, and on a
        // machine shared with other work more processes get a bigger share of it.
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() + 1)
                .unwrap_or(3)
                .clamp(2, 4)
        })
        .max(1);
    // The first snmpsim builds the index cache alone; the others then find it ready.
    let mut sims = vec![start_snmpsim(&venv, &work, &recordings[0].name)];
    for _ in 1..procs {
        sims.push(start_snmpsim(&venv, &work, &recordings[0].name));
    }
    let t_ready = t_start.elapsed();
    // One client for all: walks of many agents multiplexed over one socket.
    let client = SnmpClient::bind_v4().await.unwrap();
    let n = recordings.len();
    // Biggest first (popped from the end), so the parallel walks finish together.
    recordings.sort_by_key(|r| r.lines);
    let queue = Arc::new(Mutex::new(recordings));
    let mut workers = tokio::task::JoinSet::new();
    for sim in &sims {
        let (queue, client, addr) = (queue.clone(), client.clone(), sim.addr);
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let Some(rec) = queue.lock().unwrap().pop() else {
                    return results;
                };
                let t0 = Instant::now();
                let res = check(&client, addr, &rec).await;
                if let Ok(o) = &res {
                    if !o.looping {
                        eprintln!(
                            "{}: {} varbinds identical ({:.1} s)",
                            rec.name,
                            o.varbinds,
                            t0.elapsed().as_secs_f64()
                        );
                    }
                }
                results.push(res);
            }
        });
    }
    let (mut total, mut table_cells, mut looping, mut failures) = (0, 0, 0, Vec::new());
    while let Some(results) = workers.join_next().await {
        for res in results.unwrap() {
            match res {
                Ok(o) => {
                    total += o.varbinds;
                    table_cells += o.table_cells;
                    looping += usize::from(o.looping);
                }
                Err(e) => failures.push(e),
            }
        }
    }
    eprintln!(
        "{n} recordings ({looping} with non-increasing OIDs), {total} varbinds identical, \
         {table_cells} table cells from walk_columns matched the walks; {procs} snmpsim \
         processes ready after {:.1} s, all done after {:.1} s",
        t_ready.as_secs_f64(),
        t_start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} recordings differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if custom.is_none() {
        assert!(total > 50_000, "only {total} varbinds compared");
        assert!(table_cells > 100, "only {table_cells} table cells compared");
    }
}
