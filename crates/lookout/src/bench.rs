//! `lookout bench dispatcher`: the scale benchmark of the distributed dispatcher on one
//! machine. Real parts end to end: simulated SNMP agents (`lookout-snmpsim`, or one
//! net-snmp `snmpd` when the simulator is not built), the real store (a throw-away
//! MariaDB database on 127.0.0.1:3306, or SQLite), the real time-series backend (local
//! `rrdtool -` pipes or an rrdcached the benchmark starts), the memory coordination
//! backend, and `run_cluster` twice in one process: a dispatcher-only node on its own
//! single-threaded runtime (so its CPU is its thread's CPU) and a poller-only node.
//!
//! It reports end-to-end poll lag (poll start − due time, the due time carried by the
//! claim), polls per minute, whether anything was behind or overran its interval, the
//! CPU of every process involved (from `/proc`), and store statements per minute (MariaDB
//! `information_schema.USER_STATISTICS` of one database user per node).
//!
//! Device hostnames must be unique and every simulated agent listens on 127.0.0.1
//! (one UDP port each), so devices are named by distinct spellings of 127.0.0.1 that the
//! C library's resolver accepts (`127.00.0.01`: inet_aton allows leading zeros).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Args;
use lookout_coord::Coord;
use lookout_core::{NewDevice, SnmpConfig};
use lookout_dispatcher::{ClusterConfig, Percentiles, PollMetrics, PollSample, Roles};
use lookout_poller::{DiscoveryMode, ModuleSet, Poller, PollerConfig};
use lookout_store::{Store, StoreConfig};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig, TimeSeriesOptions};
use serde_json::json;
use tokio::sync::watch;
use tracing::info;

/// `lookout bench dispatcher` flags.
#[derive(Debug, Clone, Args)]
pub struct DispatcherBenchArgs {
    /// Simulated devices.
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Interfaces per simulated device (lookout-snmpsim's --synthetic-ifmib).
    #[arg(long, default_value_t = 24)]
    pub ifaces: usize,
    /// Poll interval, seconds.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// Measured seconds, after the warm-up: until every device was polled once (first
    /// polls create ports and RRD files; reported separately), then one more interval.
    #[arg(long, default_value_t = 300)]
    pub duration: u64,
    /// POLLER_WORKERS of the poller node.
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Store: `mysql` (a throw-away database on 127.0.0.1:3306, root without password)
    /// or `sqlite`.
    #[arg(long, default_value = "mysql")]
    pub db: String,
    /// Time series: `local` (rrdtool pipes) or `rrdcached` (started by the benchmark).
    #[arg(long, default_value = "rrdcached")]
    pub rrd: String,
    /// Agents: `snmpsim` (lookout-snmpsim, one port per device), `snmpd` (one net-snmp
    /// snmpd port shared by all devices; its real interfaces, not --ifaces), or `auto`.
    #[arg(long, default_value = "auto")]
    pub agents: String,
    /// Path of lookout-snmpsim (default: next to this binary, then PATH).
    #[arg(long)]
    pub snmpsim: Option<PathBuf>,
    /// First UDP port of the simulated agents (devices use base..base+N-1); 0: the first
    /// free block below the kernel's ephemeral range.
    #[arg(long, default_value_t = 0)]
    pub base_port: u16,
    /// lookout-snmpsim --threads.
    #[arg(long, default_value_t = 1)]
    pub sim_threads: usize,
    /// Poller modules (LOOKOUT_POLLER_MODULES form, e.g. `-availability`) applied to all
    /// modules on; empty (the default): every module, as `lookout serve` polls.
    #[arg(long, default_value = "")]
    pub modules: String,
    /// Create RRD files with the full archives (3.5 MiB per port file at a 60 s step:
    /// 10,000 devices x 24 ports need ~917 GB, docs/timeseries.md). By default the same
    /// archives are created with 10 raw and 2 consolidated rows: the same work per update
    /// (it does not depend on the rows), ~30 KB files.
    #[arg(long)]
    pub full_rras: bool,
    /// rrdcached: seconds an update may wait before its file is FLUSHed
    /// (`RRDCACHED_FLUSH_AFTER`); rrdcached's `-w` is set to the same.
    #[arg(long, default_value_t = 60)]
    pub rrd_flush_after: u64,
    /// Keep the temp directory and database for inspection.
    #[arg(long)]
    pub keep: bool,
    #[arg(long)]
    pub json: bool,
}

/// Processes the benchmark started; killed on drop.
struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The throw-away MariaDB database and users; dropped on drop unless kept.
struct MysqlBench {
    db: String,
    users: Vec<String>,
    keep: bool,
}

impl Drop for MysqlBench {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let mut sql = format!("DROP DATABASE IF EXISTS `{}`;", self.db);
        for u in &self.users {
            sql.push_str(&format!("DROP USER IF EXISTS '{u}'@'%';"));
        }
        let _ = mysql_root(&sql);
    }
}

pub(crate) fn mysql_root(sql: &str) -> Result<String> {
    let out = Command::new("mysql")
        .args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "-e", sql])
        .output()
        .context("cannot run the mysql client (apt-get install mariadb-client)")?;
    if !out.status.success() {
        bail!("mysql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Statement counters of the benchmark's database users.
#[derive(Clone, Copy, Debug, Default)]
struct Statements {
    select: u64,
    update: u64,
    other: u64,
}

fn user_statements(user: &str) -> Result<Statements> {
    let out = mysql_root(&format!(
        "SELECT SELECT_COMMANDS, UPDATE_COMMANDS, OTHER_COMMANDS FROM \
         information_schema.USER_STATISTICS WHERE USER = '{user}'"
    ))?;
    let v: Vec<u64> = out
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Ok(match v.as_slice() {
        [s, u, o] => Statements {
            select: *s,
            update: *u,
            other: *o,
        },
        _ => Statements::default(),
    })
}

/// utime+stime of a process or thread in seconds (`/proc/.../stat`, 100 ticks/s, the
/// Linux USER_HZ).
fn cpu_secs(stat_path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the parenthesised command name (which may contain spaces).
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// cutime+cstime of this process: the CPU of its children that exited and were waited
/// for (fping runs; the live children are counted by [`children_cpu`]).
fn reaped_children_cpu() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cutime: f64 = f.get(13)?.parse().ok()?;
    let cstime: f64 = f.get(14)?.parse().ok()?;
    Some((cutime + cstime) / 100.0)
}

fn pid_cpu(pid: u32) -> Option<f64> {
    cpu_secs(Path::new(&format!("/proc/{pid}/stat")))
}

/// Children of this process (e.g. `rrdtool -` pipes) and their CPU.
fn children_cpu() -> f64 {
    let mut total = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                for pid in text
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok())
                {
                    total += pid_cpu(pid).unwrap_or(0.0);
                }
            }
        }
    }
    total
}

fn find_pid_by_comm(names: &[&str]) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            if names.contains(&comm.trim()) {
                return Some(pid);
            }
        }
    }
    None
}

/// A free port on 127.0.0.1 (TCP or UDP); racy but fine for a benchmark on loopback.
fn free_port(udp: bool) -> Result<u16> {
    Ok(if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

/// A block of `n` consecutive free UDP ports on 127.0.0.1, below 32768 (Linux's default
/// ephemeral range), searched in steps of 500 from 2000.
fn free_udp_block(n: usize) -> Result<u16> {
    let mut base = 2000usize;
    while base + n < 32768 {
        let busy = (base..base + n).find(|p| {
            u16::try_from(*p).map_or(true, |p| {
                std::net::UdpSocket::bind(("127.0.0.1", p)).is_err()
            })
        });
        match busy {
            None => return Ok(u16::try_from(base)?),
            Some(p) => base = (p / 500 + 1) * 500,
        }
    }
    bail!("no {n} consecutive free UDP ports below 32768 on 127.0.0.1 (give --base-port)")
}

/// The i-th distinct spelling of 127.0.0.1: zeros before the 2nd/3rd/4th octet's value.
fn loopback_name(i: usize) -> String {
    const K: usize = 30; // 30^3 = 27,000 names, at most 97 characters
    let (a, b, c) = (i / (K * K), (i / K) % K, i % K);
    format!(
        "127.{}.{}.{}1",
        "0".repeat(a + 1),
        "0".repeat(b + 1),
        "0".repeat(c)
    )
}

fn snmpsim_path(arg: &Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = arg {
        return Some(p.clone());
    }
    let next_to_us = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("lookout-snmpsim")));
    if let Some(p) = next_to_us.filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("lookout-snmpsim"))
            .find(|p| p.is_file())
    })
}

/// Starts the agents; returns the UDP port of each device.
fn start_agents(
    a: &DispatcherBenchArgs,
    dir: &Path,
    procs: &mut Procs,
) -> Result<(String, Vec<u16>)> {
    let sim = snmpsim_path(&a.snmpsim);
    let use_sim = match a.agents.as_str() {
        "snmpsim" => true,
        "snmpd" => false,
        "auto" => sim.is_some(),
        other => bail!("--agents {other:?}: use snmpsim, snmpd or auto"),
    };
    if use_sim {
        let bin = sim.context("lookout-snmpsim not found (cargo build --release -p lookout-snmpsim, or --snmpsim PATH)")?;
        let base = match a.base_port {
            0 => free_udp_block(a.devices)?,
            p => p,
        };
        let mut child = Command::new(&bin)
            .args([
                "--listen",
                &format!("127.0.0.1:{base}"),
                "--devices",
                &a.devices.to_string(),
                "--synthetic-ifmib",
                &a.ifaces.to_string(),
                "--community",
                "bench",
                "--threads",
                &a.sim_threads.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(dir.join("snmpsim.log"))?))
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("snmpsim stdout")?;
        procs.0.push(("snmpsim".into(), child));
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let (first, n) = match f.as_slice() {
            ["ready", first, _last, n] => (first.parse::<u16>()?, n.parse::<usize>()?),
            _ => bail!(
                "lookout-snmpsim did not say ready (got {line:?}; see {})",
                dir.join("snmpsim.log").display()
            ),
        };
        if n < a.devices {
            bail!("lookout-snmpsim serves {n} devices, {} asked", a.devices);
        }
        let ports = (0..a.devices)
            .map(|i| u16::try_from(usize::from(first) + i).context("port range"))
            .collect::<Result<Vec<_>>>()?;
        Ok((format!("lookout-snmpsim {}", bin.display()), ports))
    } else {
        let port = free_port(true)?;
        let conf = dir.join("snmpd.conf");
        std::fs::write(
            &conf,
            "rocommunity bench 127.0.0.0/8\nsysName bench-snmpd\n",
        )?;
        let child = Command::new("/usr/sbin/snmpd")
            .args(["-f", "-Lf"])
            .arg(dir.join("snmpd.log"))
            .args(["-C", "-c"])
            .arg(&conf)
            .arg(format!(
                "--persistentDir={}",
                dir.join("snmp-persist").display()
            ))
            .arg(format!("udp:127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start /usr/sbin/snmpd (apt-get install snmpd)")?;
        procs.0.push(("snmpd".into(), child));
        std::thread::sleep(Duration::from_millis(500));
        Ok((
            format!("net-snmp snmpd on udp:127.0.0.1:{port} (its own interfaces)"),
            vec![port; a.devices],
        ))
    }
}

fn start_rrdcached(dir: &Path, write_secs: u64, procs: &mut Procs) -> Result<String> {
    let port = free_port(false)?;
    let base = dir.join("rrd");
    let journal = dir.join("rrd-journal");
    std::fs::create_dir_all(&base)?;
    std::fs::create_dir_all(&journal)?;
    let child = Command::new("/usr/bin/rrdcached")
        .args(["-g", "-R", "-l", &format!("127.0.0.1:{port}"), "-b"])
        .arg(&base)
        .args(["-B", "-F", "-j"])
        .arg(&journal)
        .args(["-w", &write_secs.to_string(), "-z", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(
            dir.join("rrdcached.log"),
        )?))
        .spawn()
        .context("cannot start /usr/bin/rrdcached (apt-get install rrdcached)")?;
    procs.0.push(("rrdcached".into(), child));
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("rrdcached did not listen on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("127.0.0.1:{port}"))
}

/// CPU seconds of everything involved, at one instant.
#[derive(Clone, Debug, Default)]
struct CpuSnap {
    at: Option<Instant>,
    lookout: f64,
    dispatcher_thread: f64,
    children: f64,
    /// Children that exited meanwhile (one fping per ping, or per batch of pings).
    reaped: f64,
    procs: Vec<(String, f64)>,
    mysqld: f64,
    /// This process's threads, summed by name (tokio workers, `sqlite-writer`, ...): shows
    /// whether one thread is the bottleneck.
    threads: std::collections::BTreeMap<String, f64>,
}

/// CPU seconds of this process's threads, summed by thread name.
fn threads_cpu() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let name = std::fs::read_to_string(t.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            if let Some(secs) = cpu_secs(&t.path().join("stat")) {
                *by_name.entry(name).or_insert(0.0) += secs;
            }
        }
    }
    by_name
}

fn cpu_snap(dispatcher_tid: Option<u32>, procs: &Procs, mysqld: Option<u32>) -> CpuSnap {
    CpuSnap {
        at: Some(Instant::now()),
        lookout: cpu_secs(Path::new("/proc/self/stat")).unwrap_or(0.0),
        dispatcher_thread: dispatcher_tid
            .and_then(|t| cpu_secs(Path::new(&format!("/proc/self/task/{t}/stat"))))
            .unwrap_or(0.0),
        children: children_cpu(),
        reaped: reaped_children_cpu().unwrap_or(0.0),
        procs: procs
            .0
            .iter()
            .map(|(n, c)| (n.clone(), pid_cpu(c.id()).unwrap_or(0.0)))
            .collect(),
        mysqld: mysqld.and_then(pid_cpu).unwrap_or(0.0),
        threads: threads_cpu(),
    }
}

pub async fn dispatcher(a: DispatcherBenchArgs) -> Result<ExitCode> {
    if a.devices == 0 || a.interval == 0 || a.workers == 0 || a.rrd_flush_after == 0 {
        bail!("--devices, --interval, --workers and --rrd-flush-after must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("lookout-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&a, &dir).await;
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", dir.display());
    }
    result
}

async fn run(a: &DispatcherBenchArgs, dir: &Path) -> Result<ExitCode> {
    let mut procs = Procs(Vec::new());
    let (agents, ports) = start_agents(a, dir, &mut procs)?;
    info!(%agents, devices = a.devices, "agents ready");

    // Store: one database user per node so statements are counted per node.
    let pid = std::process::id();
    let (store_cfg_d, store_cfg_p, mysql) = match a.db.as_str() {
        "mysql" => {
            let db = format!("lookout_bench_{pid}");
            let (ud, up) = (format!("lkb_disp_{pid}"), format!("lkb_poll_{pid}"));
            let guard = MysqlBench {
                db: db.clone(),
                users: vec![ud.clone(), up.clone()],
                keep: a.keep,
            };
            let mut sql = format!("SET GLOBAL userstat = 1; CREATE DATABASE `{db}`;");
            for u in [&ud, &up] {
                sql.push_str(&format!(
                    "CREATE USER '{u}'@'%' IDENTIFIED BY 'bench'; GRANT ALL ON `{db}`.* TO '{u}'@'%';"
                ));
            }
            mysql_root(&sql).context("cannot prepare the MariaDB benchmark database")?;
            let cfg = |u: &str| StoreConfig::Mysql {
                hosts: vec![("127.0.0.1".into(), 3306)],
                database: db.clone(),
                username: u.to_string(),
                password: "bench".into(),
            };
            (cfg(&ud), cfg(&up), Some((guard, ud, up)))
        }
        "sqlite" => {
            let c = StoreConfig::Sqlite {
                path: dir.join("lookout.sqlite"),
            };
            (c.clone(), c, None)
        }
        other => bail!("--db {other:?}: use mysql or sqlite"),
    };
    let store = Store::open(&store_cfg_p).await?;
    store.migrate().await?;

    let (ts_cfg, rrd_desc) = match a.rrd.as_str() {
        "local" => (
            TimeSeriesConfig::Local {
                rrd_dir: dir.join("rrd"),
            },
            "local rrdtool pipes".to_string(),
        ),
        "rrdcached" => {
            let address = start_rrdcached(dir, a.rrd_flush_after, &mut procs)?;
            (
                TimeSeriesConfig::Rrdcached {
                    address: address.clone(),
                },
                format!(
                    "rrdcached {address} (started by the benchmark, -w {w} -z 10; FLUSH after {w} s)",
                    w = a.rrd_flush_after
                ),
            )
        }
        other => bail!("--rrd {other:?}: use local or rrdcached"),
    };
    let timeseries = TimeSeries::open_with(
        &ts_cfg,
        TimeSeriesOptions {
            spill_dir: Some(dir.join("rrd-spill")),
            rra_override: (!a.full_rras).then(|| {
                lookout_timeseries::defs::librenms_rras(a.interval)
                    .into_iter()
                    .map(|mut r| {
                        r.rows = r.rows.min(if r.steps == 1 { 10 } else { 2 });
                        r
                    })
                    .collect()
            }),
            flush_after: Duration::from_secs(a.rrd_flush_after),
            // Room for every update of `flush_after` (ports + the device's own files), so
            // that files are FLUSHed by age, not by the memory limit.
            max_unflushed: (a.devices * (a.ifaces + 4))
                .saturating_mul(a.rrd_flush_after.div_ceil(a.interval) as usize + 1)
                .max(TimeSeriesOptions::default().max_unflushed),
            ..TimeSeriesOptions::default()
        },
    )
    .await?;

    // Devices, added straight to the store (the agents are known to answer).
    let t = Instant::now();
    let mut adds = tokio::task::JoinSet::new();
    let chunk = a.devices.div_ceil(8);
    for part in 0..8usize {
        let store = store.clone();
        let ports = ports.clone();
        adds.spawn(async move {
            let end = ((part + 1) * chunk).min(ports.len());
            for (i, port) in ports.iter().enumerate().take(end).skip(part * chunk) {
                store
                    .add_device(&NewDevice {
                        hostname: loopback_name(i),
                        snmp: SnmpConfig {
                            port: *port,
                            community: "bench".into(),
                            timeout_ms: 2000,
                            retries: 1,
                            ..SnmpConfig::default()
                        },
                        poller_group: 0,
                    })
                    .await?;
            }
            Ok::<(), lookout_store::StoreError>(())
        });
    }
    while let Some(r) = adds.join_next().await {
        r.context("device insert task")??;
    }
    info!(
        devices = a.devices,
        secs = t.elapsed().as_secs_f64(),
        "devices added"
    );

    let mut modules = ModuleSet::all();
    modules
        .apply_list(&a.modules)
        .map_err(|e| anyhow::anyhow!("--modules: {e}"))?;
    let poller = Poller::new(
        store.clone(),
        timeseries.clone(),
        PollerConfig {
            step_secs: a.interval,
            modules,
            // As `lookout serve`: the master decides when a device is discovered.
            discovery: DiscoveryMode::Scheduled,
            ..PollerConfig::default()
        },
    )
    .await?;

    let coord = Coord::memory();
    let metrics = Arc::new(PollMetrics::keeping_all(Duration::from_secs(a.interval)));
    let (stop_tx, stop_rx) = watch::channel(false);

    // The dispatcher node on its own thread and single-threaded runtime.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let disp_coord = coord.clone();
    let disp_stop = stop_rx.clone();
    let interval = a.interval;
    let disp = std::thread::Builder::new()
        .name("bench-dispatcher".into())
        .spawn(move || -> Result<()> {
            let tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok());
            let _ = tid_tx.send(tid);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let store = Store::open(&store_cfg_d).await?;
                let mut cc = ClusterConfig::new("bench-dispatcher", interval, 0);
                cc.roles = Roles {
                    web: false,
                    dispatcher: true,
                    poller: false,
                };
                lookout_dispatcher::run_cluster(store, None, disp_coord, cc, disp_stop).await;
                Ok(())
            })
        })?;
    let dispatcher_tid = tid_rx.recv().ok().flatten();

    let mut cc = ClusterConfig::new("bench-poller", a.interval, a.workers);
    cc.roles = Roles {
        web: false,
        dispatcher: false,
        poller: true,
    };
    cc.metrics = metrics.clone();
    cc.claim_ttl = Duration::from_secs(30);
    let poller_node = tokio::spawn(lookout_dispatcher::run_cluster(
        store.clone(),
        Some(poller),
        coord.clone(),
        cc,
        stop_rx.clone(),
    ));

    let mysqld = find_pid_by_comm(&["mariadbd", "mysqld"]);
    let stmts = |m: &Option<(MysqlBench, String, String)>| -> Option<(Statements, Statements)> {
        let (_, ud, up) = m.as_ref()?;
        Some((user_statements(ud).ok()?, user_statements(up).ok()?))
    };

    // Warm-up: until every device was polled once, then one more interval.
    let warm_started = Instant::now();
    eprintln!(
        "warm-up: until {} first polls, then {} s and no device behind; then {} s measured ...",
        a.devices, a.interval, a.duration
    );
    let mut max_behind = 0.0f64;
    let mut max_due = 0u64;
    let sample_every = Duration::from_secs(5);
    let mut warm_samples = Vec::new();
    let mut first_round = None;
    let give_up = warm_started + Duration::from_secs(a.interval * 10 + 120);
    loop {
        tokio::time::sleep(sample_every).await;
        warm_samples.extend(metrics.take_all());
        let (b, d) = cluster_now(&coord).await;
        eprintln!(
            "  warm-up {:>4.0} s: {} polls, queue due {d}, behind {b}",
            warm_started.elapsed().as_secs_f64(),
            warm_samples.len()
        );
        if first_round.is_none() && warm_samples.len() >= a.devices {
            first_round = Some(warm_started.elapsed());
        }
        // Steady state: an interval after the first round (every device discovered, every
        // file created), and the backlog of that round worked off.
        if first_round
            .is_some_and(|t| warm_started.elapsed() >= t + Duration::from_secs(a.interval))
            && b == 0.0
        {
            break;
        }
        if Instant::now() > give_up {
            eprintln!(
                "  {} in time; measuring anyway",
                if first_round.is_none() {
                    "the first round did not finish"
                } else {
                    "the backlog of the first round was not worked off"
                }
            );
            break;
        }
    }
    warm_samples.extend(metrics.take_all());
    let first_round_secs = first_round.map(|t| t.as_secs_f64());

    let window_start = Utc::now();
    let cpu0 = cpu_snap(dispatcher_tid, &procs, mysqld);
    let st0 = stmts(&mysql);
    let end = Instant::now() + Duration::from_secs(a.duration);
    while Instant::now() < end {
        tokio::time::sleep(sample_every.min(end - Instant::now())).await;
        let (b, d) = cluster_now(&coord).await;
        max_behind = max_behind.max(b);
        max_due = max_due.max(d);
    }
    let cpu1 = cpu_snap(dispatcher_tid, &procs, mysqld);
    let st1 = stmts(&mysql);
    let samples = metrics.take_all();
    let log = store.poll_log(window_start).await.unwrap_or_default();

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(60), poller_node).await;
    let _ = tokio::task::spawn_blocking(move || disp.join()).await;
    let _ = timeseries.flush(Duration::from_secs(10)).await;

    report(
        a,
        &agents,
        &rrd_desc,
        &warm_samples,
        &samples,
        &log,
        &cpu0,
        &cpu1,
        st0.zip(st1),
        max_behind,
        max_due,
        first_round_secs,
    )
}

/// (devices behind per the master, devices due in the queues) right now.
async fn cluster_now(coord: &Coord) -> (f64, u64) {
    let mut behind = 0.0f64;
    if let Ok(nodes) = coord.nodes().await {
        for n in nodes {
            behind = behind.max(n.info.stats.get("behind").copied().unwrap_or(0.0));
        }
    }
    let due = coord
        .queue_depths()
        .await
        .map(|q| q.iter().map(|d| d.due).sum())
        .unwrap_or(0);
    (behind, due)
}

#[allow(clippy::too_many_arguments)]
fn report(
    a: &DispatcherBenchArgs,
    agents: &str,
    rrd: &str,
    warm: &[PollSample],
    samples: &[PollSample],
    log: &[lookout_store::PollLogEntry],
    cpu0: &CpuSnap,
    cpu1: &CpuSnap,
    stmts: Option<((Statements, Statements), (Statements, Statements))>,
    max_behind: f64,
    max_due: u64,
    first_round_secs: Option<f64>,
) -> Result<ExitCode> {
    let wall = match (cpu0.at, cpu1.at) {
        (Some(t0), Some(t1)) => t1.duration_since(t0).as_secs_f64(),
        _ => a.duration as f64,
    };
    let minutes = wall / 60.0;
    let lag =
        |s: &[PollSample]| Percentiles::of(&mut s.iter().map(|x| x.lag_secs).collect::<Vec<_>>());
    let dur = Percentiles::of(&mut samples.iter().map(|x| x.poll_secs).collect::<Vec<_>>());
    // The phases of the polls that wrote their results.
    let phase = |f: fn(&PollSample) -> f64| {
        Percentiles::of(&mut samples.iter().filter(|x| x.ok).map(f).collect::<Vec<_>>())
    };
    let collect = phase(|x| x.collect_secs);
    let commit = phase(|x| x.commit_secs);
    let rrd_phase = phase(|x| x.rrd_secs);
    let lag_w = lag(warm);
    let lag_m = lag(samples);
    let ok = samples.iter().filter(|s| s.ok).count();
    let overran = samples
        .iter()
        .filter(|s| s.lag_secs > a.interval as f64)
        .count();
    // Every device polled once per interval in the window: count from the store.
    let mut per_device: HashMap<i64, usize> = HashMap::new();
    for e in log
        .iter()
        .filter(|e| e.status == lookout_store::PollOutcome::Ok)
    {
        *per_device.entry(e.device_id).or_default() += 1;
    }
    let expected = (wall / a.interval as f64).floor() as usize;
    let never = a.devices.saturating_sub(per_device.len());
    let min_polls = if never > 0 {
        0
    } else {
        per_device.values().copied().min().unwrap_or(0)
    };
    let max_polls = per_device.values().copied().max().unwrap_or(0);

    let d = |f: fn(&CpuSnap) -> f64| (f(cpu1) - f(cpu0)).max(0.0);
    let pct = |secs: f64| 100.0 * secs / wall;
    let lookout_cpu = d(|c| c.lookout);
    let disp_cpu = d(|c| c.dispatcher_thread);
    let children = d(|c| c.children);
    let reaped = d(|c| c.reaped);
    let mysqld = d(|c| c.mysqld);
    let procs: Vec<(String, f64)> = cpu1
        .procs
        .iter()
        .map(|(n, v)| {
            let before = cpu0
                .procs
                .iter()
                .find(|(m, _)| m == n)
                .map_or(0.0, |(_, v)| *v);
            (n.clone(), (v - before).max(0.0))
        })
        .collect();
    let threads: Vec<(String, f64)> = cpu1
        .threads
        .iter()
        .map(|(n, v)| {
            let before = cpu0.threads.get(n).copied().unwrap_or(0.0);
            (n.clone(), (v - before).max(0.0))
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    let per_min = |s: &Statements, t: &Statements| {
        let total = (t.select + t.update + t.other).saturating_sub(s.select + s.update + s.other);
        total as f64 / minutes
    };
    let queries = stmts.map(|((d0, p0), (d1, p1))| {
        json!({
            "dispatcher_per_min": (per_min(&d0, &d1) * 10.0).round() / 10.0,
            "pollers_per_min": per_min(&p0, &p1).round(),
            "pollers_select_per_min": ((p1.select.saturating_sub(p0.select)) as f64 / minutes).round(),
            "pollers_write_per_min": ((p1.update.saturating_sub(p0.update)) as f64 / minutes).round(),
            "pollers_other_per_min": ((p1.other.saturating_sub(p0.other)) as f64 / minutes).round(),
        })
    });
    let behind = max_behind > 0.0 || overran > 0 || min_polls + 1 < expected;
    let p = |x: &Percentiles| json!({"count": x.count, "p50": x.p50, "p90": x.p90, "p99": x.p99, "max": x.max});
    let doc = json!({
        "devices": a.devices, "ifaces": a.ifaces, "interval_secs": a.interval,
        "workers": a.workers, "measured_secs": (wall * 10.0).round() / 10.0,
        "agents": agents, "store": a.db, "timeseries": rrd, "modules": a.modules,
        "polls_per_min": ((samples.len() as f64 / minutes) * 10.0).round() / 10.0,
        "polls_needed_per_min": (a.devices as f64 * 60.0 / a.interval as f64).round(),
        "polls_ok": ok, "polls_failed_or_stale": samples.len() - ok,
        "lag_secs": p(&lag_m), "warmup_lag_secs": p(&lag_w), "poll_secs": p(&dur),
        "poll_phase_secs": {"collect": p(&collect), "commit": p(&commit), "rrd": p(&rrd_phase)},
        "first_round_secs": first_round_secs,
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "polls_per_device_in_window": {"expected_at_least": expected.saturating_sub(1), "min": min_polls, "max": max_polls, "never_polled": never},
        "overran_interval": overran, "max_behind": max_behind, "max_queue_due": max_due,
        "behind": behind,
        "cpu_percent_of_one_core": {
            "dispatcher_thread": (pct(disp_cpu) * 100.0).round() / 100.0,
            "lookout_process": (pct(lookout_cpu) * 10.0).round() / 10.0,
            // Everything this process started: the agents, rrdcached, rrdtool pipes.
            "children": (pct(children) * 10.0).round() / 10.0,
            // Children that exited in the window: fping.
            "exited_children": (pct(reaped) * 10.0).round() / 10.0,
            "mariadbd_whole_server": (pct(mysqld) * 10.0).round() / 10.0,
            "started": procs.iter().map(|(n, v)| (n.clone(), json!((pct(*v) * 10.0).round() / 10.0))).collect::<serde_json::Map<_, _>>(),
            "lookout_threads": threads.iter().map(|(n, v)| (n.clone(), json!((pct(*v) * 10.0).round() / 10.0))).collect::<serde_json::Map<_, _>>(),
        },
        "store_statements": queries,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("dispatcher benchmark: {} devices x {} interfaces, {} s interval, {} workers, {:.0} s measured",
            a.devices, a.ifaces, a.interval, a.workers, wall);
        println!(
            "  agents: {agents}\n  store: {}\n  time series: {rrd}\n  modules: {}",
            a.db, a.modules
        );
        println!(
            "  polls/min: {:.1} (needed {:.0}); ok {ok}, failed/stale {}",
            samples.len() as f64 / minutes,
            a.devices as f64 * 60.0 / a.interval as f64,
            samples.len() - ok
        );
        let line = |n: &str, x: &Percentiles| {
            println!(
                "  {n:<22} n={:<7} p50 {:>7.3}  p90 {:>7.3}  p99 {:>7.3}  max {:>7.3}",
                x.count, x.p50, x.p90, x.p99, x.max
            )
        };
        line("lag s (measured)", &lag_m);
        line("lag s (warm-up)", &lag_w);
        println!(
            "  first round (every device polled once): {}",
            first_round_secs.map_or("not finished".to_string(), |t| format!("{t:.0} s"))
        );
        line("poll duration s", &dur);
        line("  collect (SNMP) s", &collect);
        line("  store commit s", &commit);
        line("  RRD hand-over s", &rrd_phase);
        println!("  polls per device in window: min {min_polls}, max {max_polls} (expected >= {}); never polled {never}", expected.saturating_sub(1));
        println!("  overran interval: {overran}; max behind: {max_behind}; max queue due: {max_due}; BEHIND: {}", if behind { "yes" } else { "no" });
        println!("  CPU % of one core: dispatcher thread {:.2}, lookout process {:.1}, its children (agents, rrdcached, rrdtool) {:.1}, children that exited (fping) {:.1}, mariadbd (whole server) {:.1}", pct(disp_cpu), pct(lookout_cpu), pct(children), pct(reaped), pct(mysqld));
        for (n, v) in &procs {
            println!("    {n}: {:.1}", pct(*v));
        }
        let threads = threads
            .iter()
            .map(|(n, v)| format!("{n} {:.1}", pct(*v)))
            .collect::<Vec<_>>()
            .join(", ");
        println!("    lookout threads by name: {threads}");
        if let Some(q) = &queries {
            println!("  store statements/min: {q}");
        }
        println!(
            "  load average at the end: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
    Ok(if behind {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
