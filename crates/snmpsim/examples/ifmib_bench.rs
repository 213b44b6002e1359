//! The same-run SNMP benchmark of issue 3: ifTable + ifXTable of every simulated device walked
//! by (a) the Lookout engine, (b) one net-snmp `snmpbulkwalk` process per device and table (the
//! LibreNMS way) and (c) Prometheus `snmp_exporter`, against the same `lookout-snmpsim` agents.
//!
//! Run (release build; `scripts/bench-snmp.sh` wraps this and builds the simulator first):
//! `cargo run --release -p lookout-snmpsim --example ifmib_bench -- --devices 100,1000,10000`
//!
//! For each N the simulator is started afresh per method (so its own counters and CPU belong to
//! that method) serving N synthetic 48-interface IF-MIB devices on consecutive UDP ports.
//! Poller CPU is measured where it is spent:
//! - (a) this process (`getrusage(RUSAGE_SELF)`; the engine runs on a current_thread runtime and
//!   nothing else in the process is busy meanwhile);
//! - (b) the `snmpbulkwalk` children (`getrusage(RUSAGE_CHILDREN)`, each child is waited for),
//!   run 8 at a time like `xargs -P 8 -n 2`;
//! - (c) the exporter process (`/proc/PID/stat` utime+stime before/after), scraped over HTTP on
//!   127.0.0.1 by 8 workers.
//!
//! The simulator's CPU (sum of its threads' schedstat) tells whether it was the bottleneck.
//! Every method must see the same number of varbinds per device; a mismatch fails the run.
//! (b) and (c) can walk an evenly spread sample of the devices (`--sample`, default 1,000) so that
//! N = 10,000 does not take 20,000 processes; the output says when they did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use lookout_core::SnmpConfig;
use lookout_snmp::{ClientOptions, Oid, SnmpClient};
use serde_json::{json, Value as Json};

const IF_TABLE: &str = "1.3.6.1.2.1.2.2";
const IFX_TABLE: &str = "1.3.6.1.2.1.31.1.1";
const COMMUNITY: &str = "bench";
/// Interfaces per simulated device (the benchmark fixes 48).
const IFACES: u32 = 48;
/// max-repetitions that LibreNMS passes to snmpbulkwalk (`-Cr10`).
const BULKWALK_REPS: usize = 10;
/// max-repetitions of snmp_exporter's if_mib module (its default).
const EXPORTER_REPS: usize = 25;

struct Args {
    devices: Vec<usize>,
    methods: Vec<Method>,
    sample: usize,
    port: u16,
    agent: String,
    sim: PathBuf,
    sim_threads: usize,
    max_reps: Vec<u32>,
    concurrency: usize,
    procs: usize,
    rounds: Option<usize>,
    exporter: String,
    exporter_config: PathBuf,
    exporter_port: u16,
    json: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Lookout,
    Bulkwalk,
    Exporter,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Lookout => "(a) lookout",
            Method::Bulkwalk => "(b) snmpbulkwalk",
            Method::Exporter => "(c) snmp_exporter",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Method::Lookout => "lookout",
            Method::Bulkwalk => "snmpbulkwalk",
            Method::Exporter => "snmp_exporter",
        }
    }
}

const USAGE: &str =
    "ifmib_bench [--devices 100,1000,10000] [--methods lookout,snmpbulkwalk,snmp_exporter]
  [--sample 1000] [--port 20000] [--agent snmpsim|walkbench] [--sim PATH] [--sim-threads 1]
  [--max-reps 25,50] [--concurrency 256] [--procs 8] [--rounds R]
  [--exporter prometheus-snmp-exporter] [--exporter-config FILE] [--exporter-port 19116]
  [--json FILE|-]";

fn parse_args() -> Args {
    let exe = std::env::current_exe().unwrap();
    // target/release/examples/ifmib_bench -> target/release/lookout-snmpsim
    let release_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        devices: vec![100, 1000, 10_000],
        methods: vec![Method::Lookout, Method::Bulkwalk, Method::Exporter],
        sample: 1000,
        port: 20_000,
        agent: "snmpsim".into(),
        sim: release_dir.join("lookout-snmpsim"),
        sim_threads: 1,
        max_reps: vec![25, 50],
        concurrency: 256,
        procs: 8,
        rounds: None,
        exporter: "prometheus-snmp-exporter".into(),
        exporter_config: manifest.join("bench/snmp_exporter_if_mib.yml"),
        exporter_port: 19_116,
        json: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = || {
            v.get(i + 1).cloned().unwrap_or_else(|| {
                eprintln!("{} needs a value\n{USAGE}", v[i]);
                std::process::exit(2)
            })
        };
        let num = |s: String| -> usize {
            s.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("not a number: {s}\n{USAGE}");
                std::process::exit(2)
            })
        };
        match v[i].as_str() {
            "--devices" => a.devices = val().split(',').map(|s| num(s.into())).collect(),
            "--methods" => {
                a.methods = val()
                    .split(',')
                    .map(|m| match m {
                        "lookout" | "a" => Method::Lookout,
                        "snmpbulkwalk" | "bulkwalk" | "b" => Method::Bulkwalk,
                        "snmp_exporter" | "exporter" | "c" => Method::Exporter,
                        other => {
                            eprintln!("unknown method {other}\n{USAGE}");
                            std::process::exit(2)
                        }
                    })
                    .collect()
            }
            "--sample" => a.sample = num(val()),
            "--port" => a.port = num(val()) as u16,
            "--agent" => a.agent = val(),
            "--sim" => a.sim = val().into(),
            "--sim-threads" => a.sim_threads = num(val()),
            "--max-reps" => a.max_reps = val().split(',').map(|s| num(s.into()) as u32).collect(),
            "--concurrency" => a.concurrency = num(val()),
            "--procs" => a.procs = num(val()),
            "--rounds" => a.rounds = Some(num(val())),
            "--exporter" => a.exporter = val(),
            "--exporter-config" => a.exporter_config = val().into(),
            "--exporter-port" => a.exporter_port = num(val()) as u16,
            "--json" => a.json = Some(val()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    a
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

fn rusage(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime+stime of a process from /proc/PID/stat (clock ticks).
fn proc_stat_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}

/// CPU of a process as the sum of its threads' schedstat (ns precision), falling back to
/// /proc/PID/stat; and how many threads it has.
fn proc_cpu(pid: u32) -> (f64, usize) {
    let mut ns = 0f64;
    let mut threads = 0;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            threads += 1;
            if let Some(x) = std::fs::read_to_string(t.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            {
                ns += x;
            }
        }
    }
    if ns > 0.0 {
        (ns / 1e9, threads)
    } else {
        (proc_stat_cpu(pid), threads.max(1))
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The simulator

struct Sim {
    child: Child,
    pid: u32,
    addrs: Vec<SocketAddr>,
    threads: usize,
    stderr: Option<std::thread::JoinHandle<String>>,
    cpu0: f64,
    t0: Instant,
}

fn start_sim(a: &Args, n: usize) -> Sim {
    let mut cmd = match a.agent.as_str() {
        "snmpsim" => {
            let mut c = Command::new(&a.sim);
            c.args(["--listen", &format!("127.0.0.1:{}", a.port)])
                .args(["--devices", &n.to_string()])
                .args(["--synthetic-ifmib", &IFACES.to_string()])
                .args(["--community", COMMUNITY])
                .args(["--threads", &a.sim_threads.to_string()]);
            c
        }
        // Development stand-in: crates/snmp's walkbench example in agent mode (same synthetic
        // IF-MIB, single-threaded, prints a bare "ready").
        "walkbench" => {
            let mut c = Command::new(a.sim.with_file_name("examples").join("walkbench"));
            c.args(["agent-mode", "--devices", &n.to_string()])
                .args(["--ifaces", &IFACES.to_string()])
                .args(["--port-base", &a.port.to_string()]);
            c
        }
        other => panic!("unknown --agent {other} (snmpsim or walkbench)"),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start the simulator {:?}: {e} (build it: cargo build --release -p lookout-snmpsim)",
                cmd.get_program()
            )
        });
    let pid = child.id();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the simulator never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_default();
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.first() != Some(&"ready") {
        let _ = child.kill();
        let _ = child.wait();
        let err = stderr.join().unwrap_or_default();
        panic!("simulator did not get ready (stdout {line:?}); stderr:\n{err}");
    }
    let first: u16 = f.get(1).and_then(|x| x.parse().ok()).unwrap_or(a.port);
    if let Some(d) = f.get(3).and_then(|x| x.parse::<usize>().ok()) {
        assert_eq!(d, n, "simulator reports {d} devices, asked for {n}");
    }
    let addrs = (0..n)
        .map(|d| SocketAddr::from(([127, 0, 0, 1], first + d as u16)))
        .collect();
    let (cpu0, threads) = proc_cpu(pid);
    let threads = if a.agent == "snmpsim" && a.sim_threads > 0 {
        a.sim_threads
    } else {
        threads
    };
    Sim {
        child,
        pid,
        addrs,
        threads,
        stderr: Some(stderr),
        cpu0,
        t0: Instant::now(),
    }
}

#[derive(Default, Clone)]
struct SimUse {
    cpu: f64,
    wall: f64,
    threads: usize,
    /// Whatever numbers the simulator printed about itself on SIGTERM (`key=value`).
    stats: BTreeMap<String, f64>,
    stats_text: String,
}

impl Sim {
    /// Starts the measured window (after warm-ups).
    fn mark(&mut self) {
        self.cpu0 = proc_cpu(self.pid).0;
        self.t0 = Instant::now();
    }

    /// CPU used since `mark`, then SIGTERM and the simulator's own stats.
    fn stop(mut self) -> SimUse {
        let cpu = proc_cpu(self.pid).0 - self.cpu0;
        let wall = self.t0.elapsed().as_secs_f64();
        // SAFETY: plain kill(2) of our own child, not yet waited for.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let mut stats = BTreeMap::new();
        for tok in text.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some((k, v)) = tok.split_once('=') {
                if let Ok(x) = v.trim_end_matches(['s', '%']).parse::<f64>() {
                    stats.insert(k.trim_matches('"').to_string(), x);
                }
            }
        }
        SimUse {
            cpu,
            wall,
            threads: self.threads,
            stats,
            stats_text: text.trim().to_string(),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// What one method did against one simulator run.
struct Run {
    method: Method,
    /// The method's name in the table (with max-repetitions for the engine).
    label: String,
    /// Devices walked in the measured window (per round, times rounds).
    walks: usize,
    /// Distinct devices covered (N, or the sample).
    devices: usize,
    rounds: usize,
    /// Varbinds per device index (ifTable, ifXTable) as this method saw them.
    per_device: BTreeMap<usize, (u64, u64)>,
    varbinds: u64,
    pdus: u64,
    pdus_source: &'static str,
    wall: f64,
    cpu: f64,
    sim: SimUse,
    note: String,
}

impl Run {
    fn devices_per_s(&self) -> f64 {
        self.walks as f64 / self.wall
    }
    fn cpu_per_1000(&self) -> f64 {
        self.cpu * 1000.0 / self.walks as f64
    }
    fn us_per_varbind(&self) -> f64 {
        self.cpu * 1e6 / self.varbinds.max(1) as f64
    }
    fn sim_util(&self) -> f64 {
        self.sim.cpu / (self.sim.wall.max(1e-9) * self.sim.threads.max(1) as f64)
    }
    fn sim_bottleneck(&self) -> bool {
        self.sim_util() >= 0.9
    }
    fn json(&self) -> Json {
        json!({
            "method": self.method.key(),
            "label": self.label,
            "devices": self.devices,
            "rounds": self.rounds,
            "device_walks": self.walks,
            "sampled": self.note.contains("sample"),
            "wall_s": self.wall,
            "devices_per_s": self.devices_per_s(),
            "pdus": self.pdus,
            "pdus_source": self.pdus_source,
            "pdus_per_s": self.pdus as f64 / self.wall,
            "varbinds": self.varbinds,
            "varbinds_per_device": self.varbinds as f64 / self.walks.max(1) as f64,
            "poller_cpu_s": self.cpu,
            "cpu_s_per_1000_devices": self.cpu_per_1000(),
            "poller_cpu_us_per_varbind": self.us_per_varbind(),
            "sim_cpu_s": self.sim.cpu,
            "sim_threads": self.sim.threads,
            "sim_utilisation": self.sim_util(),
            "sim_bottleneck": self.sim_bottleneck(),
            "sim_cpu_us_per_varbind": self.sim.cpu * 1e6 / self.varbinds.max(1) as f64,
            "sim_stats": self.sim.stats,
            "note": self.note,
        })
    }
}

/// Devices that (b) and (c) walk: all of them, or `sample` spread evenly over 0..n.
fn sample_indices(n: usize, sample: usize) -> Vec<usize> {
    if sample == 0 || n <= sample {
        (0..n).collect()
    } else {
        (0..sample).map(|i| i * n / sample).collect()
    }
}

/// The simulator's own request count if it printed one, else `computed`.
fn pdus_from_sim(sim: &SimUse, computed: u64) -> (u64, &'static str) {
    for k in ["requests", "pdus", "responses", "rx", "received"] {
        if let Some(v) = sim.stats.get(k) {
            return (*v as u64, "simulator");
        }
    }
    (computed, "computed")
}

/// GETBULK requests a net-snmp style walk of `k` in-subtree varbinds needs at `reps`: the walk
/// stops at the first response holding an OID past the subtree.
fn bulk_requests(k: u64, reps: usize) -> u64 {
    k / reps as u64 + 1
}

// ---------------------------------------------------------------------------------------------
// (a) the Lookout engine

fn run_lookout(a: &Args, n: usize, reps: u32) -> Run {
    let mut sim = start_sim(a, n);
    let rounds = a.rounds.unwrap_or((5000 / n).clamp(1, 10));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (per_device, varbinds, pdus, wall, cpu) = rt.block_on(async {
        let client = SnmpClient::bind(
            "127.0.0.1:0".parse().unwrap(),
            ClientOptions {
                max_repetitions: reps,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let cfg = SnmpConfig {
            community: COMMUNITY.into(),
            timeout_ms: 5000,
            retries: 1,
            ..Default::default()
        };
        let sessions: Arc<Vec<_>> = Arc::new(
            sim.addrs
                .iter()
                .map(|ad| client.session(*ad, &cfg).unwrap())
                .collect(),
        );
        let tables = [
            Oid::parse(IF_TABLE).unwrap(),
            Oid::parse(IFX_TABLE).unwrap(),
        ];
        // Warm-up round, not measured (first packets, allocator growth); its counts are the
        // reference the measured rounds must repeat.
        let reference = walk_all(&sessions, &tables, a.concurrency).await;
        sim.mark();
        let s0 = client.stats();
        let cpu0 = rusage(libc::RUSAGE_SELF);
        let t0 = Instant::now();
        let mut varbinds = 0u64;
        for r in 0..rounds {
            let got = walk_all(&sessions, &tables, a.concurrency).await;
            if got != reference {
                let bad = got
                    .iter()
                    .find(|(d, c)| reference.get(d) != Some(c))
                    .map(|(d, c)| format!("device {d}: {c:?} vs {:?}", reference.get(d)));
                panic!("lookout round {r}: varbind counts changed between rounds ({bad:?})");
            }
            varbinds += got.values().map(|(x, y)| x + y).sum::<u64>();
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = rusage(libc::RUSAGE_SELF) - cpu0;
        let s1 = client.stats();
        assert_eq!(s1.timeouts, s0.timeouts, "lookout: requests timed out");
        (reference, varbinds, s1.responses - s0.responses, wall, cpu)
    });
    let simuse = sim.stop();
    Run {
        method: Method::Lookout,
        label: format!("(a) lookout, max-reps {reps}"),
        walks: n * rounds,
        devices: n,
        rounds,
        per_device,
        varbinds,
        pdus,
        pdus_source: "engine",
        wall,
        cpu,
        sim: simuse,
        note: format!(
            "one socket, {} devices at once, max-repetitions {}, current_thread runtime",
            a.concurrency, reps
        ),
    }
}

/// Walks both tables of every device with `concurrency` workers (a bounded pool, as a poller
/// has, rather than a task per device); fails loudly on any error.
async fn walk_all(
    sessions: &Arc<Vec<lookout_snmp::Session>>,
    tables: &[Oid; 2],
    concurrency: usize,
) -> BTreeMap<usize, (u64, u64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, sessions.len().max(1)) {
        let sessions = sessions.clone();
        let next = next.clone();
        let tables = tables.clone();
        set.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(s) = sessions.get(i) else {
                    return Ok(done);
                };
                let a = s.walk(&tables[0]).await;
                let b = s.walk(&tables[1]).await;
                match (a, b) {
                    (Ok(a), Ok(b)) => done.push((i, (a.len() as u64, b.len() as u64))),
                    (Err(e), _) | (_, Err(e)) => return Err(format!("{}: {e}", s.addr())),
                }
            }
        });
    }
    let mut out = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(done)) => out.extend(done),
            Ok(Err(e)) => panic!("lookout walk failed: {e}"),
            Err(e) => panic!("lookout task failed: {e}"),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (b) snmpbulkwalk, one process per device and table

fn run_bulkwalk(a: &Args, n: usize) -> Run {
    let mut sim = start_sim(a, n);
    let idx = sample_indices(n, a.sample);
    let jobs: Vec<(usize, usize)> = idx.iter().flat_map(|&d| [(d, 0), (d, 1)]).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, (u64, u64)>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let tables = [IF_TABLE, IFX_TABLE];
    sim.mark();
    let cpu0 = rusage(libc::RUSAGE_CHILDREN);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.procs {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(d, t)) = jobs.get(j) else { break };
                let target = sim.addrs[d].to_string();
                let out = Command::new("snmpbulkwalk")
                    .args(["-v2c", "-c", COMMUNITY, "-OQUs", "-On", "-Cr10"])
                    .arg(&target)
                    .arg(tables[t])
                    .stdin(Stdio::null())
                    .output();
                let out = match out {
                    Ok(o) => o,
                    Err(e) => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("snmpbulkwalk (Debian package snmp): {e}"));
                        break;
                    }
                };
                if !out.status.success() {
                    failures.lock().unwrap().push(format!(
                        "snmpbulkwalk {target} {}: {} {}",
                        tables[t],
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                    continue;
                }
                // Data lines are `.OID = value`; snmpbulkwalk adds a "No more variables" line
                // when the walk ran into endOfMibView, which is no varbind.
                let prefix = format!(".{}.", tables[t]);
                let count = out
                    .stdout
                    .split(|&b| b == b'\n')
                    .filter(|l| l.starts_with(prefix.as_bytes()))
                    .filter(|l| !String::from_utf8_lossy(l).contains("No more variables"))
                    .count() as u64;
                let mut r = results.lock().unwrap();
                let e = r.entry(d).or_insert((0, 0));
                if t == 0 {
                    e.0 = count;
                } else {
                    e.1 = count;
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = rusage(libc::RUSAGE_CHILDREN) - cpu0;
    let simuse = sim.stop();
    let failures = failures.into_inner().unwrap();
    if !failures.is_empty() {
        panic!(
            "{} snmpbulkwalk runs failed, first: {}",
            failures.len(),
            failures[0]
        );
    }
    let per_device = results.into_inner().unwrap();
    let varbinds: u64 = per_device.values().map(|(x, y)| x + y).sum();
    let computed: u64 = per_device
        .values()
        .map(|(x, y)| bulk_requests(*x, BULKWALK_REPS) + bulk_requests(*y, BULKWALK_REPS))
        .sum();
    let (pdus, pdus_source) = pdus_from_sim(&simuse, computed);
    Run {
        method: Method::Bulkwalk,
        label: Method::Bulkwalk.name().into(),
        walks: idx.len(),
        devices: idx.len(),
        rounds: 1,
        per_device,
        varbinds,
        pdus,
        pdus_source,
        wall,
        cpu,
        sim: simuse,
        note: if idx.len() < n {
            format!(
                "sample of {} of {n} devices; {} processes, {} at a time",
                idx.len(),
                jobs.len(),
                a.procs
            )
        } else {
            format!("{} processes, {} at a time", jobs.len(), a.procs)
        },
    }
}

// ---------------------------------------------------------------------------------------------
// (c) snmp_exporter

struct Exporter {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 GET on 127.0.0.1; (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

fn start_exporter(a: &Args) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("exporter.log")).unwrap();
    let child = Command::new(&a.exporter)
        .arg(format!("--config.file={}", a.exporter_config.display()))
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            a.exporter_port
        ))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (Debian package prometheus-snmp-exporter)",
                a.exporter
            )
        });
    let ex = Exporter { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(a.exporter_port, "/").is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(ex._dir.path().join("exporter.log"));
            panic!(
                "snmp_exporter did not listen on 127.0.0.1:{}: {log:?}",
                a.exporter_port
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ex
}

/// Scrapes one device; the number of varbinds the exporter got (its `snmp_scrape_pdus_returned`,
/// which counts varbinds, not PDUs).
fn scrape(port: u16, target: SocketAddr) -> Result<u64, String> {
    let path = format!("/snmp?target={target}&module=if_mib");
    let (status, body) = http_get(port, &path).map_err(|e| format!("{target}: {e}"))?;
    if status != 200 {
        return Err(format!("{target}: HTTP {status}: {}", body.trim()));
    }
    body.lines()
        .find_map(|l| l.strip_prefix("snmp_scrape_pdus_returned "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| format!("{target}: no snmp_scrape_pdus_returned in the scrape"))
}

/// Varbinds the exporter's module fetches beyond ifTable+ifXTable, per device: it walks all of
/// 1.3.6.1.2.1.2 (ifNumber.0 besides ifTable) and GETs sysUpTime.0. Found with the engine.
fn exporter_extras(addr: SocketAddr) -> (u64, u64, u64, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = SnmpClient::bind("127.0.0.1:0".parse().unwrap(), ClientOptions::default())
            .await
            .unwrap();
        let cfg = SnmpConfig {
            community: COMMUNITY.into(),
            timeout_ms: 5000,
            retries: 1,
            ..Default::default()
        };
        let s = client.session(addr, &cfg).unwrap();
        let interfaces = s
            .walk(&Oid::parse("1.3.6.1.2.1.2").unwrap())
            .await
            .unwrap()
            .len() as u64;
        let if_table = s.walk(&Oid::parse(IF_TABLE).unwrap()).await.unwrap().len() as u64;
        let uptime = s
            .get(&[Oid::parse("1.3.6.1.2.1.1.3.0").unwrap()])
            .await
            .unwrap()
            .iter()
            .filter(|v| !v.value.is_exception())
            .count() as u64;
        let pdus = client.stats().responses;
        (interfaces - if_table + uptime, interfaces, uptime, pdus)
    })
}

fn run_exporter(a: &Args, n: usize) -> Run {
    let mut sim = start_sim(a, n);
    let ex = start_exporter(a);
    let pid = ex.child.id();
    let idx = sample_indices(n, a.sample);
    let (extras, interfaces_vbs, uptime_vbs, extras_pdus) = exporter_extras(sim.addrs[0]);
    // Warm-up scrape, not measured.
    scrape(a.exporter_port, sim.addrs[0]).unwrap_or_else(|e| panic!("snmp_exporter: {e}"));
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, u64>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    sim.mark();
    let cpu0 = proc_stat_cpu(pid);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.procs {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&d) = idx.get(j) else { break };
                match scrape(a.exporter_port, sim.addrs[d]) {
                    Ok(v) => {
                        results.lock().unwrap().insert(d, v);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc_stat_cpu(pid) - cpu0;
    drop(ex);
    let simuse = sim.stop();
    let failures = failures.into_inner().unwrap();
    if !failures.is_empty() {
        panic!(
            "{} snmp_exporter scrapes failed, first: {}",
            failures.len(),
            failures[0]
        );
    }
    let raw = results.into_inner().unwrap();
    let varbinds: u64 = raw.values().sum();
    // Per device, only ifTable+ifXTable are compared with the other methods; the exporter
    // reports one total, so its split is unknown: (total - extras, 0).
    let per_device: BTreeMap<usize, (u64, u64)> = raw
        .iter()
        .map(|(d, v)| (*d, (v.saturating_sub(extras), 0)))
        .collect();
    // Per device: walk of 1.3.6.1.2.1.2 and of ifXTable at 25 repetitions, and the GET.
    let ifx_vbs = per_device
        .values()
        .next()
        .map(|v| v.0 + extras - interfaces_vbs - uptime_vbs)
        .unwrap_or(0);
    let computed = idx.len() as u64
        * (bulk_requests(interfaces_vbs, EXPORTER_REPS)
            + bulk_requests(ifx_vbs, EXPORTER_REPS)
            + 1);
    // The simulator counts from its start: take off the engine's look-up above and the
    // warm-up scrape (one device's worth).
    let (pdus, pdus_source) = match pdus_from_sim(&simuse, computed) {
        (p, "simulator") => (
            p.saturating_sub(extras_pdus) * idx.len() as u64 / (idx.len() as u64 + 1),
            "simulator",
        ),
        other => other,
    };
    Run {
        method: Method::Exporter,
        label: Method::Exporter.name().into(),
        walks: idx.len(),
        devices: idx.len(),
        rounds: 1,
        per_device,
        varbinds,
        pdus,
        pdus_source,
        wall,
        cpu,
        sim: simuse,
        note: format!(
            "{}{} scrapes, {} at a time; per device {extras} varbinds more than the tables (ifNumber, sysUpTime)",
            if idx.len() < n {
                format!("sample of {} of {n} devices; ", idx.len())
            } else {
                String::new()
            },
            idx.len(),
            a.procs
        ),
    }
}

// ---------------------------------------------------------------------------------------------

/// Every method must have seen, for each device it walked, as many ifTable+ifXTable varbinds as
/// the first method did. Returns the mismatches.
fn check(runs: &[Run]) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(base) = runs.first() else {
        return errs;
    };
    for r in runs {
        if r.per_device.len() != r.devices {
            errs.push(format!(
                "{}: results for {} of {} devices",
                r.label,
                r.per_device.len(),
                r.devices
            ));
        }
        for (d, c) in &r.per_device {
            let total = c.0 + c.1;
            if total == 0 {
                errs.push(format!("{}: device {d}: no varbinds", r.label));
                continue;
            }
            if let Some(b) = base.per_device.get(d) {
                let (bt, split_known) = (b.0 + b.1, c.1 != 0 && b.1 != 0);
                if total != bt || (split_known && c != b) {
                    errs.push(format!(
                        "device {d}: {} saw {c:?} varbinds (ifTable, ifXTable), {} saw {b:?}",
                        r.label, base.label
                    ));
                }
            }
        }
    }
    errs.truncate(20);
    errs
}

fn print_table(n: usize, runs: &[Run]) {
    println!("\n## N = {n} devices x {IFACES} interfaces (ifTable + ifXTable)");
    println!(
        "| method | devices walked | varbinds/device | wall s | devices/s | PDUs | PDUs/s | poller CPU s | CPU-s / 1,000 devices | poller µs / varbind | vs (a) | simulator CPU s | simulator µs / varbind | simulator busy | simulator bottleneck |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let a_us = runs
        .iter()
        .find(|r| r.method == Method::Lookout)
        .map(|r| r.us_per_varbind());
    for r in runs {
        let ratio = match a_us {
            Some(x) if x > 0.0 => format!("{:.1}x", r.us_per_varbind() / x),
            _ => "-".into(),
        };
        println!(
            "| {} | {}{} | {:.0} | {:.2} | {:.0} | {}{} | {:.0} | {:.3} | {:.2} | {:.3} | {} | {:.2} | {:.3} | {:.0}% of {} thread(s) | {} |",
            r.label,
            r.walks,
            if r.rounds > 1 {
                format!(" ({} x {})", r.devices, r.rounds)
            } else if r.note.contains("sample") {
                " (sample)".into()
            } else {
                String::new()
            },
            r.varbinds as f64 / r.walks.max(1) as f64,
            r.wall,
            r.devices_per_s(),
            r.pdus,
            if r.pdus_source == "computed" { " (computed)" } else { "" },
            r.pdus as f64 / r.wall,
            r.cpu,
            r.cpu_per_1000(),
            r.us_per_varbind(),
            ratio,
            r.sim.cpu,
            r.sim.cpu * 1e6 / r.varbinds.max(1) as f64,
            r.sim_util() * 100.0,
            r.sim.threads,
            if r.sim_bottleneck() { "YES" } else { "no" },
        );
    }
    for r in runs {
        println!("- {}: {}", r.label, r.note);
        if !r.sim.stats_text.is_empty() {
            println!(
                "  simulator: {}",
                r.sim.stats_text.lines().last().unwrap_or_default()
            );
        }
    }
    for a in runs.iter().filter(|r| r.method == Method::Lookout) {
        let us = a.us_per_varbind();
        println!(
            "- target (issue 3), {}: <= 1 µs poller CPU per varbind: {us:.3} µs -> {}",
            a.label,
            if us <= 1.0 { "met" } else { "NOT met" }
        );
    }
}

fn main() {
    let a = parse_args();
    let started = chrono_like_now();
    let cmdline: Vec<String> = std::env::args().collect();
    println!(
        "ifmib_bench {} | {} | {} cores | load {} | agent {} ({} thread(s))",
        started,
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l
                .strip_prefix("model name")
                .map(|x| x.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_default(),
        std::thread::available_parallelism()
            .map(|x| x.get())
            .unwrap_or(0),
        loadavg(),
        a.agent,
        a.sim_threads
    );
    let mut all = Vec::new();
    let mut failed = false;
    for &n in &a.devices {
        let load = loadavg();
        let mut runs = Vec::new();
        for m in &a.methods {
            let one_or_per_reps: Vec<Option<u32>> = match m {
                Method::Lookout => a.max_reps.iter().map(|r| Some(*r)).collect(),
                _ => vec![None],
            };
            for reps in one_or_per_reps {
                eprintln!("N={n}: {} ...", m.name());
                let r = match (m, reps) {
                    (Method::Lookout, Some(reps)) => run_lookout(&a, n, reps),
                    (Method::Bulkwalk, _) => run_bulkwalk(&a, n),
                    (_, _) => run_exporter(&a, n),
                };
                eprintln!(
                    "N={n}: {} done: {:.2} s, {:.3} µs/varbind",
                    r.label,
                    r.wall,
                    r.us_per_varbind()
                );
                runs.push(r);
            }
        }
        print_table(n, &runs);
        let errs = check(&runs);
        for e in &errs {
            println!("- MISMATCH: {e}");
        }
        failed |= !errs.is_empty();
        let us = |m: Method| {
            runs.iter()
                .find(|r| r.method == m)
                .map(|r| r.us_per_varbind())
        };
        let ratio = |m: Method| match (us(m), us(Method::Lookout)) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        };
        if let (Some(b), Some(c), Some(base)) = (
            ratio(Method::Bulkwalk),
            ratio(Method::Exporter),
            runs.iter().find(|r| r.method == Method::Lookout),
        ) {
            println!(
                "- poller CPU per varbind against {}: (b)/(a) = {b:.1}x, (c)/(a) = {c:.1}x",
                base.label
            );
        }
        all.push(json!({
            "devices": n,
            "interfaces": IFACES,
            "load_before": load,
            "correct": errs.is_empty(),
            "mismatches": errs,
            "methods": runs.iter().map(Run::json).collect::<Vec<_>>(),
            "ratio_b_over_a_cpu_per_varbind": ratio(Method::Bulkwalk),
            "ratio_c_over_a_cpu_per_varbind": ratio(Method::Exporter),
            "target_met": us(Method::Lookout).map(|x| x <= 1.0),
        }));
    }
    if let Some(path) = &a.json {
        let doc = json!({
            "benchmark": "ifTable+ifXTable walk: lookout vs snmpbulkwalk vs snmp_exporter",
            "started": started,
            "command": cmdline,
            "cores": std::thread::available_parallelism().map(|x| x.get()).unwrap_or(0),
            "agent": a.agent,
            "sim_threads": a.sim_threads,
            "runs": all,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap();
        if path == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n").unwrap();
        }
    }
    if failed {
        eprintln!("FAILED: the methods did not see the same varbinds per device");
        std::process::exit(1);
    }
}

/// UTC now as `YYYY-MM-DD HH:MM:SS UTC` without a date crate (days-from-civil inverse).
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    //! `cargo test -p lookout-snmpsim --example ifmib_bench`: the bookkeeping that decides
    //! whether a run is reported as correct.
    use super::*;

    fn run(method: Method, per_device: &[(usize, (u64, u64))]) -> Run {
        Run {
            method,
            label: method.name().into(),
            walks: per_device.len(),
            devices: per_device.len(),
            rounds: 1,
            per_device: per_device.iter().copied().collect(),
            varbinds: per_device.iter().map(|(_, (a, b))| a + b).sum(),
            pdus: 0,
            pdus_source: "computed",
            wall: 1.0,
            cpu: 1.0,
            sim: SimUse::default(),
            note: String::new(),
        }
    }

    #[test]
    fn equal_counts_pass_and_any_difference_fails() {
        let a = run(Method::Lookout, &[(0, (1056, 912)), (5, (1056, 912))]);
        let b = run(Method::Bulkwalk, &[(0, (1056, 912)), (5, (1056, 912))]);
        // The exporter only knows the total.
        let c = run(Method::Exporter, &[(0, (1968, 0)), (5, (1968, 0))]);
        assert!(check(&[a, b, c]).is_empty());

        let a = run(Method::Lookout, &[(0, (1056, 912)), (5, (1056, 912))]);
        let short = run(Method::Bulkwalk, &[(0, (1056, 912)), (5, (1056, 911))]);
        let errs = check(&[a, short]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("device 5"), "{errs:?}");

        // Same total, different split between the tables: still a mismatch.
        let a = run(Method::Lookout, &[(0, (1056, 912))]);
        let moved = run(Method::Bulkwalk, &[(0, (1057, 911))]);
        assert_eq!(check(&[a, moved]).len(), 1);

        // A device without any varbind, or one missing from the results, fails too.
        let a = run(Method::Lookout, &[(0, (1056, 912))]);
        let mut none = run(Method::Exporter, &[(0, (0, 0))]);
        assert_eq!(check(&[a, none.clone_shallow()]).len(), 1);
        none.devices = 2;
        let a = run(Method::Lookout, &[(0, (1056, 912))]);
        assert_eq!(check(&[a, none]).len(), 2);
    }

    #[test]
    fn samples_are_spread_and_bulk_requests_match_net_snmp() {
        assert_eq!(sample_indices(5, 1000), vec![0, 1, 2, 3, 4]);
        let s = sample_indices(10_000, 1000);
        assert_eq!(s.len(), 1000);
        assert_eq!((s[0], s[1], s[999]), (0, 10, 9990));
        // 1056 ifTable varbinds at 10 per request: 105 full responses, and the 106th holds
        // the last 6 and the first OID past the table.
        assert_eq!(bulk_requests(1056, 10), 106);
        // 1050 at 10: the 106th request returns only OIDs past the table.
        assert_eq!(bulk_requests(1050, 10), 106);
        assert_eq!(bulk_requests(912, 25), 37);
    }

    impl Run {
        fn clone_shallow(&self) -> Run {
            run(
                self.method,
                &self
                    .per_device
                    .iter()
                    .map(|(d, c)| (*d, *c))
                    .collect::<Vec<_>>(),
            )
        }
    }
}
