//! `lookout-snmpsim`: serves `.snmprec` recordings and synthetic IF-MIB devices on loopback
//! until SIGTERM/SIGINT, then prints what it served and the CPU it took.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use lookout_snmpsim::{Config, Simulator, V3User};

#[derive(Parser, Debug)]
#[command(
    name = "lookout-snmpsim",
    version,
    about = "Fast SNMP agent simulator (snmpsim .snmprec recordings, synthetic IF-MIB) for tests and benchmarks"
)]
struct Cli {
    /// Address of the first device's socket; with --devices N, ports PORT..PORT+N-1.
    #[arg(long, default_value = "127.0.0.1:1161")]
    listen: SocketAddr,
    /// Number of port devices (one UDP socket each).
    #[arg(long)]
    devices: Option<usize>,
    /// Serve a synthetic IF-MIB device with this many interfaces on every port.
    #[arg(long, value_name = "IFACES")]
    synthetic_ifmib: Option<u32>,
    /// Every .snmprec(.bz2) under DIR is a device, selected by community / v3 context =
    /// its path relative to DIR without .snmprec; with --devices, also assigned to ports
    /// round-robin.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Community (and empty v3 context) of the port devices.
    #[arg(long, default_value = "public")]
    community: String,
    /// SNMPv3 user NAME[:AUTHPROTO:AUTHPASS[:PRIVPROTO:PRIVPASS]] (repeatable).
    #[arg(long = "v3-user", value_name = "USER")]
    v3_users: Vec<String>,
    /// SNMPv3 engine ID in hex (default 80001f8804 + "lookout-snmpsim").
    #[arg(long, value_name = "HEX")]
    v3_engine_id: Option<String>,
    /// Server threads (sockets are spread over them).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Counters and sysUpTime stand still (for exact comparisons).
    #[arg(long)]
    freeze_counters: bool,
    /// Largest response in bytes (v3: also at most the request's msgMaxSize).
    #[arg(long, default_value_t = 65_507)]
    max_msg_size: usize,
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim_start_matches("0x");
    anyhow::ensure!(
        s.len().is_multiple_of(2) && s.len() >= 10,
        "engine ID: 5 to 32 bytes of hex"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("engine ID is not hex"))
        .collect()
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let v3_users = cli
        .v3_users
        .iter()
        .map(|u| V3User::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    let engine_id = cli.v3_engine_id.as_deref().map(parse_hex).transpose()?;

    // Block SIGTERM/SIGINT before any thread starts (threads inherit the mask), then wait
    // for them in this thread: a clean stop with stats, no async signal handler.
    // SAFETY: sigset manipulation on a local set; pthread_sigmask on this thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };

    let cpu0 = cpu_seconds();
    let sim = Simulator::start(Config {
        listen: cli.listen,
        devices: cli.devices,
        synthetic_ifmib: cli.synthetic_ifmib,
        data_dir: cli.data_dir,
        recordings: Vec::new(),
        community: cli.community,
        v3_users,
        engine_id,
        threads: cli.threads,
        freeze_counters: cli.freeze_counters,
        max_msg_size: cli.max_msg_size,
    })?;
    let first = sim.addr(0).port();
    let last = sim.addrs().last().map(|a| a.port()).unwrap_or(first);
    let cpu_ready = cpu_seconds();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {first} {last} {}", sim.devices())?;
        out.flush()?;
    }
    tracing::info!(setup_cpu_s = cpu_ready - cpu0, engine_id = %sim.engine_id().iter().map(|b| format!("{b:02x}")).collect::<String>(), "ready");

    let mut sig: libc::c_int = 0;
    // SAFETY: waits for one of the blocked signals of `set`.
    unsafe {
        libc::sigwait(&set, &mut sig);
    }
    tracing::info!(signal = sig, "stopping");
    let st = sim.stop();
    let cpu = cpu_seconds() - cpu_ready;
    let per_vb = if st.varbinds > 0 {
        cpu * 1e6 / st.varbinds as f64
    } else {
        0.0
    };
    eprintln!(
        "lookout-snmpsim stats: datagrams={} responses={} varbinds={} reports={} malformed={} unknown_community={} truncated={} cpu_s={cpu:.3} us_per_varbind={per_vb:.3}",
        st.datagrams, st.responses, st.varbinds, st.reports, st.malformed, st.unknown_community, st.truncated
    );
    Ok(())
}
