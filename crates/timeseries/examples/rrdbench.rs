//! Updates/s benchmark, one command:
//! `cargo run --release -p lookout-timeseries --example rrdbench -- [FILES] [ROUNDS]`.
//!
//! Same workload three ways, in one run, each on its own set of LibreNMS port files (15 DERIVE
//! DS, LibreNMS RRAs): `rrdtool update` once per file and poll (how a naive poller does it),
//! the local backend (`rrdtool -` pipes), and rrdcached with BATCH (a private rrdcached started
//! here on a free loopback port). File creation happens in an untimed first round.
//!
//! `... --example rrdbench -- scale [FILES] [ROUNDS] [PACE]` (default 240000 files, 3 rounds,
//! 60 s) is the
//! one-node scale of issue 7 (10,000 devices x 24 ports at 60 s) through rrdcached only:
//! devices of 24 port files sent with `update_many` as the poller does, small RRAs (the
//! files' size is not what is measured). It reports the first round, where every file is
//! created (creates/s, unpaced), then rounds of one update per file, the devices spread
//! evenly over PACE seconds as a poller's polls are (a minute with the default), with the
//! CPU time of this process (the client; rrdcached is a child and not counted) per update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_timeseries::{defs, RrdDef, TimeSeries, TimeSeriesConfig, Value};

const STEP: i64 = 300;

fn values(f: usize, k: usize) -> Vec<Value> {
    (0..15)
        .map(|d| Value::Counter(((k * 1000 + f) * (d + 1)) as u64 * 300))
        .collect()
}

fn line(t: i64, vals: &[Value]) -> String {
    let mut s = t.to_string();
    for v in vals {
        if let Value::Counter(n) = v {
            s.push_str(&format!(":{n}"));
        }
    }
    s
}

fn file(f: usize) -> String {
    format!("h{}/port-id{f}.rrd", f % 20)
}

async fn round(ts: &TimeSeries, def: &Arc<RrdDef>, files: usize, t: i64, k: usize) {
    let mut set = tokio::task::JoinSet::new();
    for f in 0..files {
        let (ts, def) = (ts.clone(), def.clone());
        set.spawn(async move { ts.update(&file(f), &def, t, &values(f, k)).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
}

fn report(name: &str, updates: usize, took: Duration, naive: Option<f64>) -> f64 {
    let rate = updates as f64 / took.as_secs_f64();
    let vs = naive
        .map(|n| format!("{:.1}x", rate / n))
        .unwrap_or_else(|| "1x".into());
    println!(
        "| {name} | {updates} | {:.2} s | {rate:.0} | {:.1} µs | {vs} |",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / updates as f64
    );
    rate
}

/// User + system CPU of this process (from /proc/self/stat, clock ticks of 10 ms).
fn cpu_self() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn start_rrdcached(tmp: &Path, extra: &[&str]) -> (std::process::Child, String) {
    let base = tmp.join("base");
    let journal = tmp.join("journal");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&journal).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Command::new("/usr/bin/rrdcached")
        .args(["-g", "-R", "-B", "-F"])
        .args(extra)
        .args(["-l", &listen, "-b"])
        .arg(&base)
        .arg("-j")
        .arg(&journal)
        .arg("-p")
        .arg(tmp.join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(&listen).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (daemon, listen)
}

/// One round of the scale mode: every device sends its 24 port updates in one `update_many`.
async fn device_round(
    ts: &TimeSeries,
    def: &Arc<RrdDef>,
    files: usize,
    t: i64,
    k: usize,
    pace: Duration,
) {
    let mut set = tokio::task::JoinSet::new();
    let devices = files.div_ceil(24);
    let start = tokio::time::Instant::now();
    for d in 0..devices {
        tokio::time::sleep_until(start + pace.mul_f64(d as f64 / devices as f64)).await;
        let (ts, def) = (ts.clone(), def.clone());
        set.spawn(async move {
            let ports: Vec<usize> = (d * 24..((d + 1) * 24).min(files)).collect();
            let names: Vec<String> = ports.iter().map(|&f| file(f)).collect();
            let vals: Vec<Vec<Value>> = ports.iter().map(|&f| values(f, k)).collect();
            let ups: Vec<lookout_timeseries::Update<'_>> = names
                .iter()
                .zip(&vals)
                .map(|(n, v)| lookout_timeseries::Update {
                    path: n,
                    def: &def,
                    at: t,
                    values: v,
                })
                .collect();
            for r in ts.update_many(&ups).await {
                r.unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

async fn scale(files: usize, rounds: usize, pace: Duration) {
    const STEP: i64 = 60;
    let tmp = tempfile::tempdir().unwrap();
    // rrdcached as the dispatcher benchmark runs it: writes a file a minute after its first
    // cached value, spread over 10 s.
    let (mut daemon, listen) = start_rrdcached(tmp.path(), &["-w", "60", "-z", "10"]);
    let def = Arc::new(defs::port(STEP as u64));
    let rras: Vec<lookout_timeseries::Rra> = defs::librenms_rras(STEP as u64)
        .into_iter()
        .map(|mut r| {
            r.rows = r.rows.min(if r.steps == 1 { 10 } else { 2 });
            r
        })
        .collect();
    let opts = lookout_timeseries::TimeSeriesOptions {
        spill_dir: Some(tmp.path().join("spill")),
        rra_override: Some(rras),
        ..Default::default()
    };
    let ts = TimeSeries::open_with(&TimeSeriesConfig::Rrdcached { address: listen }, opts)
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t0 = (now - STEP * (rounds as i64 + 10)) / STEP * STEP;
    println!(
        "scale: {files} port files ({} devices x 24) through rrdcached -w 60 -z 10, {rounds} rounds paced over {} s; {} CPUs",
        files.div_ceil(24),
        pace.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("\n| round | updates | wall | updates/s | client CPU | CPU per update |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for k in 0..=rounds {
        let (w0, c0) = (Instant::now(), cpu_self());
        let pace = if k == 0 { Duration::ZERO } else { pace };
        device_round(&ts, &def, files, t0 + STEP * k as i64, k, pace).await;
        let (wall, cpu) = (w0.elapsed(), cpu_self() - c0);
        let name = if k == 0 {
            "1 (creates every file)".to_string()
        } else {
            format!("{}", k + 1)
        };
        println!(
            "| {name} | {files} | {:.1} s | {:.0} | {:.1} s | {:.1} µs |",
            wall.as_secs_f64(),
            files as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / files as f64
        );
    }
    let (w0, c0) = (Instant::now(), cpu_self());
    ts.flush(Duration::from_secs(1800)).await.unwrap();
    println!(
        "\nfinal flush of every file: {:.1} s wall, {:.1} s client CPU",
        w0.elapsed().as_secs_f64(),
        (cpu_self() - c0).as_secs_f64()
    );
    println!("rrdcached handle stats: {:?}", ts.stats());
    let _ = daemon.kill();
    let _ = daemon.wait();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("scale") {
        args.next();
        let files: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(240_000);
        let rounds: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(3);
        let pace: u64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(60);
        scale(files, rounds, Duration::from_secs(pace)).await;
        return;
    }
    let files: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(200);
    let rounds: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(10);
    for bin in ["/usr/bin/rrdtool", "/usr/bin/rrdcached"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} missing: apt-get install -y rrdtool rrdcached"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let def = Arc::new(defs::port(STEP as u64));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t0 = (now - STEP * (rounds as i64 + 10)) / STEP * STEP;
    let updates = files * rounds;
    println!(
        "{files} port files (15 DS), {rounds} timed rounds; {} CPUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("\n| method | updates | time | updates/s | per update | vs rrdtool update |");
    println!("| --- | --- | --- | --- | --- | --- |");

    // 1. `rrdtool update` per file, sequential like a naive poller.
    let naive_dir = tmp.path().join("naive");
    let setup = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: naive_dir.clone(),
    })
    .await
    .unwrap();
    round(&setup, &def, files, t0, 0).await;
    let started = Instant::now();
    for k in 1..=rounds {
        for f in 0..files {
            let st = Command::new("/usr/bin/rrdtool")
                .current_dir(&naive_dir)
                .env_remove("RRDCACHED_ADDRESS")
                .arg("update")
                .arg(file(f))
                .arg(line(t0 + STEP * k as i64, &values(f, k)))
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
    let naive = report(
        "`rrdtool update` per file",
        updates,
        started.elapsed(),
        None,
    );

    // 2. Local backend.
    let local = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: tmp.path().join("local"),
    })
    .await
    .unwrap();
    round(&local, &def, files, t0, 0).await;
    let started = Instant::now();
    for k in 1..=rounds {
        round(&local, &def, files, t0 + STEP * k as i64, k).await;
    }
    report(
        "local backend (`rrdtool -` pipes)",
        updates,
        started.elapsed(),
        Some(naive),
    );

    // 3. rrdcached with BATCH.
    let base = tmp.path().join("base");
    let journal = tmp.path().join("journal");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&journal).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut daemon = Command::new("/usr/bin/rrdcached")
        .args([
            "-g", "-R", "-B", "-F", "-w", "3600", "-z", "1", "-l", &listen, "-b",
        ])
        .arg(&base)
        .arg("-j")
        .arg(&journal)
        .arg("-p")
        .arg(tmp.path().join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(&listen).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cached = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: listen.clone(),
    })
    .await
    .unwrap();
    round(&cached, &def, files, t0, 0).await;
    cached.flush(Duration::from_secs(120)).await.unwrap();
    let started = Instant::now();
    for k in 1..=rounds {
        round(&cached, &def, files, t0 + STEP * k as i64, k).await;
    }
    let accepted = started.elapsed();
    cached.flush(Duration::from_secs(600)).await.unwrap();
    let flushed = started.elapsed();
    report("rrdcached BATCH (accepted)", updates, accepted, Some(naive));
    report(
        "rrdcached BATCH (+ FLUSH of every file)",
        updates,
        flushed,
        Some(naive),
    );
    println!("\nrrdcached handle stats: {:?}", cached.stats());
    let _ = daemon.kill();
    let _ = daemon.wait();
}
