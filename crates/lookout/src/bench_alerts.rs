//! `lookout bench alerts`: what alerting costs at scale, measured in one run against the
//! real store (SQLite, or a throw-away MariaDB database).
//!
//! - **Per poll**: the same `commit_poll` (device row + 24 ports) with and without the
//!   alert hook, alternated over every device, so the ratio is the hook's share of the
//!   poll's store work (its extra reads and the rule evaluation), and the pure evaluation
//!   of the default rules (in memory) per device, healthy and with faults.
//! - **Per master pass**: the time-based pass over every device (target < 1 s at 10,000).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Args;
use lookout_alerting::engine::{Engine, EngineConfig};
use lookout_core::{DevicePollUpdate, DeviceStatus, NewDevice, PortPoll, SnmpConfig};
use lookout_store::{
    AlertHook, AlertInput, MasterFence, PollAlerts, PollCommit, PortsStage, Store, StoreConfig,
};
use serde_json::json;

#[derive(Debug, Clone, Args)]
pub struct AlertsBenchArgs {
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    #[arg(long, default_value_t = 24)]
    pub ports: usize,
    /// Poll interval the per-interval CPU is given for, seconds.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// `sqlite` or `mysql` (a throw-away database on 127.0.0.1:3306, root without password).
    #[arg(long, default_value = "sqlite")]
    pub db: String,
    #[arg(long)]
    pub json: bool,
}

fn ports(n: usize, down: bool) -> Vec<PortPoll> {
    (1..=n as i64)
        .map(|i| PortPoll {
            if_index: i,
            if_name: Some(format!("Gi0/{i}")),
            if_descr: Some(format!("GigabitEthernet0/{i}")),
            if_type: Some("ethernetCsmacd".into()),
            if_speed: Some(1_000_000_000),
            if_admin_status: Some("up".into()),
            if_oper_status: Some(if down && i == 1 { "down" } else { "up" }.into()),
            ..PortPoll::default()
        })
        .collect()
}

fn update(uptime: i64) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some("bench".into()),
        sys_descr: Some("Linux bench".into()),
        sys_object_id: Some(".1.3.6.1.4.1.8072.3.2.10".into()),
        sys_contact: None,
        sys_location: Some("lab".into()),
        os: Some("linux".into()),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(uptime),
        uptime_source: None,
        status: DeviceStatus::Up,
        status_reason: String::new(),
        last_polled: Utc::now(),
        last_polled_timetaken: 1.0,
    }
}

async fn commit(store: &Store, id: i64, ports_n: usize, hook: Option<&Arc<Engine>>) -> Result<f64> {
    let device = store.device(id).await?.context("device vanished")?;
    let mut c = PollCommit::new(update(100_000), None);
    c.ports = Some(PortsStage {
        polled: ports(ports_n, false),
        polled_at: Utc::now(),
        reset_counters: false,
        moves: Vec::new(),
        events: None,
    });
    if let Some(h) = hook {
        c.alerts = Some(PollAlerts {
            hook: h.clone() as Arc<dyn AlertHook>,
            device: c.update.applied_to(&device),
            icmp: Some((0.0, Some(0.3))),
        });
    }
    let t = Instant::now();
    store.commit_poll(id, &c).await?;
    Ok(t.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(a: AlertsBenchArgs) -> Result<ExitCode> {
    if a.devices == 0 || a.ports == 0 {
        bail!("--devices and --ports must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("lookout-bench-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg = match a.db.as_str() {
        "sqlite" => StoreConfig::Sqlite {
            path: dir.join("bench.sqlite"),
        },
        "mysql" => {
            let db = format!("lookout_bench_alerts_{}", std::process::id());
            crate::bench::mysql_root(&format!("CREATE DATABASE `{db}`"))?;
            StoreConfig::Mysql {
                hosts: vec![("127.0.0.1".into(), 3306)],
                database: db,
                username: "root".into(),
                password: String::new(),
            }
        }
        other => bail!("--db {other:?}: sqlite or mysql"),
    };
    let result = bench(&a, &cfg).await;
    if let StoreConfig::Mysql { database, .. } = &cfg {
        let _ = crate::bench::mysql_root(&format!("DROP DATABASE IF EXISTS `{database}`"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(a: &AlertsBenchArgs, cfg: &StoreConfig) -> Result<ExitCode> {
    let store = Store::open(cfg).await?;
    store.migrate().await?;
    eprintln!(
        "adding {} devices with {} ports each ...",
        a.devices, a.ports
    );
    let mut ids = Vec::with_capacity(a.devices);
    for i in 0..a.devices {
        let d = store
            .add_device(&NewDevice {
                hostname: format!("bench-{i}.example.net"),
                snmp: SnmpConfig::default(),
                poller_group: 0,
            })
            .await?;
        commit(&store, d.device_id, a.ports, None).await?;
        ids.push(d.device_id);
    }
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            interval_secs: a.interval,
            ..EngineConfig::default()
        },
    )
    .await?;

    // Per poll: commit with and without the hook, alternated.
    let (mut plain, mut hooked) = (Vec::new(), Vec::new());
    for (n, id) in ids.iter().enumerate() {
        let with_first = n % 2 == 0;
        let x = commit(&store, *id, a.ports, with_first.then_some(&engine)).await?;
        let y = commit(&store, *id, a.ports, (!with_first).then_some(&engine)).await?;
        let (p, h) = if with_first { (y, x) } else { (x, y) };
        plain.push(p);
        hooked.push(h);
    }
    let (plain_med, hooked_med) = (median(plain.clone()), median(hooked.clone()));
    let (plain_sum, hooked_sum): (f64, f64) = (plain.iter().sum(), hooked.iter().sum());

    // Pure evaluation of the default rules, in memory.
    let device = store.device(ids[0]).await?.context("device vanished")?;
    let stored_ports = store.ports(ids[0]).await?;
    let mut faulty_ports = stored_ports.clone();
    if let Some(p) = faulty_ports.first_mut() {
        p.if_oper_status = Some("down".into());
    }
    let eval = |ports: &[lookout_core::Port]| {
        let input = AlertInput {
            device: &device,
            ports,
            processors: &[],
            mempools: &[],
            storage: &[],
            icmp: Some((0.0, Some(0.3))),
            alerts: &[],
            now: Utc::now(),
        };
        let t = Instant::now();
        let mut changes = 0;
        for _ in 0..a.devices {
            changes += engine.decide(&input).len();
        }
        (t.elapsed().as_secs_f64() / a.devices as f64, changes)
    };
    let (eval_healthy, _) = eval(&stored_ports);
    let (eval_faulty, faulty_changes) = eval(&faulty_ports);

    // The master's time pass over every device.
    let fence = MasterFence {
        node_id: "bench".into(),
        token: 1,
    };
    let mut passes = Vec::new();
    for _ in 0..3 {
        passes.push(engine.time_pass(&fence).await?.seconds);
    }
    let pass = median(passes);

    let per_interval = eval_healthy * a.devices as f64;
    let overhead = (hooked_med - plain_med) / plain_med * 100.0;
    let out = json!({
        "devices": a.devices,
        "ports_per_device": a.ports,
        "db": a.db,
        "commit_poll_median_ms": {"without_alerts": plain_med * 1e3, "with_alerts": hooked_med * 1e3},
        "commit_poll_total_s": {"without_alerts": plain_sum, "with_alerts": hooked_sum},
        "alert_share_of_commit_percent": overhead,
        "evaluation_us_per_device": {"healthy": eval_healthy * 1e6, "one_port_down": eval_faulty * 1e6},
        "evaluation_cpu_s_per_interval": per_interval,
        "evaluation_cpu_percent_of_one_core": per_interval / a.interval as f64 * 100.0,
        "faulty_changes_decided": faulty_changes,
        "master_time_pass_s": pass,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "alert benchmark: {} devices x {} ports, {}",
            a.devices, a.ports, a.db
        );
        println!(
            "  commit_poll median: {:.2} ms without alerts, {:.2} ms with ({:+.1} %)",
            plain_med * 1e3,
            hooked_med * 1e3,
            overhead
        );
        println!(
            "  rule evaluation (default rules): {:.1} us/device healthy, {:.1} us with a port down; {:.2} s CPU per {} s interval ({:.2} % of one core)",
            eval_healthy * 1e6,
            eval_faulty * 1e6,
            per_interval,
            a.interval,
            per_interval / a.interval as f64 * 100.0
        );
        println!(
            "  master time pass over {} devices: {:.3} s (target < 1 s)",
            a.devices, pass
        );
    }
    Ok(ExitCode::SUCCESS)
}
