//! Simulator CPU per varbind served, and the same walk served by net-snmp's snmpd.
//!
//! `cargo run --release -p lookout-snmpsim --example simbench -- [--devices 1000]
//!  [--ifaces 48] [--rounds 3] [--snmpd-walks 200] [--threads 1]`
//!
//! 1. Synthetic: `--devices` IF-MIB devices of `--ifaces` interfaces in this process; the
//!    project's engine (lookout_snmp, current_thread runtime, 256 walks in flight,
//!    max-repetitions 50) walks ifTable + ifXTable of each, `--rounds` times. The simulator's
//!    CPU is its threads' own (getrusage RUSAGE_THREAD), so the client's is not counted.
//! 2. Same walk, two agents: a net-snmp snmpd on loopback is walked (system, interfaces, ip,
//!    ifMIB) once, the result
//!    is written as a `.snmprec` and served by the simulator; then both are walked
//!    `--snmpd-walks` times (8 in flight) and each agent's CPU per varbind is printed
//!    (snmpd's from /proc/PID/stat).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_core::{SnmpConfig, SnmpVersion};
use lookout_snmp::{Oid, Session, SnmpClient, Value, VarBind};
use lookout_snmpsim::{Config, Recording, Simulator};

struct Args {
    devices: usize,
    ifaces: u32,
    rounds: usize,
    snmpd_walks: usize,
    threads: usize,
}

fn args() -> Args {
    let mut a = Args {
        devices: 1000,
        ifaces: 48,
        rounds: 3,
        snmpd_walks: 200,
        threads: 1,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for p in v.chunks(2) {
        let n = p
            .get(1)
            .map(|s| s.parse::<usize>().expect("a number"))
            .unwrap_or(0);
        match p[0].as_str() {
            "--devices" => a.devices = n,
            "--ifaces" => a.ifaces = n as u32,
            "--rounds" => a.rounds = n,
            "--snmpd-walks" => a.snmpd_walks = n,
            "--threads" => a.threads = n,
            o => panic!("unknown option {o}"),
        }
    }
    a
}

fn cfg(port: u16) -> SnmpConfig {
    SnmpConfig {
        version: SnmpVersion::V2c,
        port,
        community: "public".into(),
        timeout_ms: 3000,
        retries: 2,
        v3: None,
    }
}

/// Runs `walks` (session, root) walks with `inflight` at a time; returns varbinds.
async fn run_walks(jobs: Vec<(Session, Oid)>, inflight: usize) -> usize {
    let mut set = tokio::task::JoinSet::new();
    let mut it = jobs.into_iter();
    let mut total = 0;
    loop {
        while set.len() < inflight {
            let Some((s, root)) = it.next() else { break };
            set.spawn(async move { s.walk(&root).await.map(|v| v.len()).unwrap_or(0) });
        }
        match set.join_next().await {
            Some(r) => total += r.unwrap(),
            None => return total,
        }
    }
}

fn proc_cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// A walk as `.snmprec` text.
fn to_snmprec(vbs: &[VarBind]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut out = String::new();
    for vb in vbs {
        let (t, v) = match &vb.value {
            Value::Integer(i) => ("2", i.to_string()),
            Value::OctetString(b) => ("4x", hex(b)),
            Value::Null => ("5", String::new()),
            Value::ObjectId(o) => ("6", o.to_string()),
            Value::IpAddress(a) => ("64x", hex(a)),
            Value::Counter32(n) => ("65", n.to_string()),
            Value::Gauge32(n) => ("66", n.to_string()),
            Value::TimeTicks(n) => ("67", n.to_string()),
            Value::Counter64(n) => ("70", n.to_string()),
            Value::Opaque(b) => ("68x", hex(b)),
            _ => continue,
        };
        let _ = writeln!(out, "{}|{t}|{v}", vb.oid);
    }
    out
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. Synthetic IF-MIB devices.
    let sim = Simulator::start(Config {
        synthetic_ifmib: Some(a.ifaces),
        devices: Some(a.devices),
        threads: a.threads,
        ..Config::default()
    })
    .unwrap();
    let addrs: Vec<SocketAddr> = sim.addrs().to_vec();
    let tables = [
        Oid::parse("1.3.6.1.2.1.2.2").unwrap(),
        Oid::parse("1.3.6.1.2.1.31.1.1").unwrap(),
    ];
    let t0 = Instant::now();
    let varbinds = rt.block_on(async {
        let client = SnmpClient::bind_v4().await.unwrap();
        let mut total = 0;
        for _ in 0..a.rounds {
            let mut jobs = Vec::new();
            for ad in &addrs {
                let s = client
                    .session(*ad, &cfg(ad.port()))
                    .unwrap()
                    .with_max_repetitions(50);
                for t in &tables {
                    jobs.push((s.clone(), t.clone()));
                }
            }
            total += run_walks(jobs, 256).await;
        }
        total
    });
    let wall = t0.elapsed().as_secs_f64();
    let st = sim.stop();
    println!(
        "synthetic: devices={} ifaces={} rounds={} varbinds={varbinds} pdus={} wall={wall:.2}s sim_cpu={:.3}s sim_us_per_varbind={:.3} sim_us_per_pdu={:.2} malformed={} truncated={}",
        a.devices,
        a.ifaces,
        a.rounds,
        st.responses,
        st.server_cpu_us as f64 / 1e6,
        st.server_cpu_us as f64 / st.varbinds.max(1) as f64,
        st.server_cpu_us as f64 / st.responses.max(1) as f64,
        st.malformed,
        st.truncated,
    );

    // 2. The same walk from snmpd and from the simulator.
    if a.snmpd_walks == 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("snmpd.conf");
    std::fs::write(&conf, "rocommunity public 127.0.0.0/8\n").unwrap();
    let mut snmpd = Command::new("/usr/sbin/snmpd")
        .args(["-f", "-Lf", "/dev/null", "-C", "-c"])
        .arg(&conf)
        .args(["-I", "-smux", "-p"])
        .arg(dir.path().join("pid"))
        .arg(format!("--persistentDir={}", dir.path().display()))
        .arg(format!("udp:127.0.0.1:{port}"))
        .env("MIBS", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpd (Debian package snmpd)");
    std::thread::sleep(Duration::from_millis(700));
    let snmpd_addr = SocketAddr::from(([127, 0, 0, 1], port));
    // system, interfaces, ip, ifMIB: subtrees snmpd answers from memory (hrSWRun and
    // friends take it seconds to compute, which would measure /proc, not the agent).
    let roots: Vec<Oid> = [
        "1.3.6.1.2.1.1",
        "1.3.6.1.2.1.2",
        "1.3.6.1.2.1.4",
        "1.3.6.1.2.1.31",
    ]
    .iter()
    .map(|o| Oid::parse(o).unwrap())
    .collect();
    let recorded = rt.block_on(async {
        let client = SnmpClient::bind_v4().await.unwrap();
        let s = client.session(snmpd_addr, &cfg(port)).unwrap();
        let mut all = Vec::new();
        for r in &roots {
            all.extend(s.walk(r).await.unwrap());
        }
        all
    });
    let text = to_snmprec(&recorded);
    let rec = Arc::new(Recording::parse_snmprec("snmpd-mib2", text.as_bytes()));
    let sim = Simulator::start(Config {
        recordings: vec![rec.clone()],
        devices: Some(1),
        threads: 1,
        ..Config::default()
    })
    .unwrap();
    let sim_addr = sim.addr(0);
    let measure = |addr: SocketAddr| {
        rt.block_on(async {
            let client = SnmpClient::bind_v4().await.unwrap();
            let s = client
                .session(addr, &cfg(addr.port()))
                .unwrap()
                .with_max_repetitions(25);
            let jobs = (0..a.snmpd_walks)
                .flat_map(|_| roots.iter().map(|r| (s.clone(), r.clone())))
                .collect();
            run_walks(jobs, 8).await
        })
    };
    let c0 = proc_cpu_s(snmpd.id());
    let t0 = Instant::now();
    let n_snmpd = measure(snmpd_addr);
    let snmpd_wall = t0.elapsed().as_secs_f64();
    let snmpd_cpu = proc_cpu_s(snmpd.id()) - c0;
    let t0 = Instant::now();
    let n_sim = measure(sim_addr);
    let sim_wall = t0.elapsed().as_secs_f64();
    let st = sim.stop();
    let _ = snmpd.kill();
    let _ = snmpd.wait();
    println!(
        "same walk (snmpd's system, interfaces, ip, ifMIB: {} varbinds, {} walks, max-repetitions 25, 8 in flight):",
        recorded.len(),
        a.snmpd_walks
    );
    println!(
        "  snmpd:     varbinds={n_snmpd} wall={snmpd_wall:.2}s cpu={snmpd_cpu:.2}s us_per_varbind={:.3}",
        snmpd_cpu * 1e6 / n_snmpd.max(1) as f64
    );
    println!(
        "  simulator: varbinds={n_sim} wall={sim_wall:.2}s cpu={:.3}s us_per_varbind={:.3}",
        st.server_cpu_us as f64 / 1e6,
        st.server_cpu_us as f64 / n_sim.max(1) as f64
    );
}
