//! Micro benchmark of rule evaluation (not a test: `#[ignore]`, prints ns per device).
//! The issue's budget: the default rules over 10,000 devices × 24 ports per interval in
//! under 5 % of the poller's CPU. Run optimised (see docs/alerting.md):
//!
//! ```text
//! cargo test -p lookout-alerting --test bench_rules --config \
//!   'profile.dev.package.lookout-alerting.opt-level=3' -- --ignored --nocapture
//! ```

use std::time::Instant;

use chrono::{TimeZone, Utc};
use lookout_alerting::defaults::default_rules;
use lookout_alerting::rule::{in_scope, outcomes, CompiledRule, DeviceFacts};
use lookout_alerting::snapshot::{device_snapshot, IcmpFacts};
use lookout_alerting::state::{on_evaluation, EvalContext};
use lookout_core::{Device, DeviceStatus, Port, PortCounters, SnmpConfig};
use lookout_store::{Mempool, Processor, Storage};

fn device(id: i64, healthy: bool) -> Device {
    let t = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .unwrap_or_default();
    Device {
        device_id: id,
        hostname: format!("sw{id}.example"),
        sys_name: Some(format!("sw{id}")),
        sys_descr: Some("Cisco IOS Software".into()),
        sys_object_id: None,
        sys_contact: None,
        sys_location: Some("DC1".into()),
        os: "ios".into(),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(86_400 + id),
        uptime_source: None,
        // One device in 100 is down.
        status: if !healthy && id % 100 == 0 {
            DeviceStatus::Down
        } else {
            DeviceStatus::Up
        },
        status_reason: String::new(),
        last_polled: Some(t),
        last_polled_timetaken: Some(3.0),
        last_discovered: None,
        poller_group: 0,
        disabled: false,
        snmp: SnmpConfig::default(),
        inserted: t,
    }
}

fn port(device_id: i64, i: i64, healthy: bool) -> Port {
    Port {
        port_id: device_id * 100 + i,
        device_id,
        if_index: i,
        if_name: Some(format!("Gi0/{i}")),
        if_descr: Some(format!("GigabitEthernet0/{i}")),
        if_alias: None,
        if_type: Some("ethernetCsmacd".into()),
        if_mtu: Some(1500),
        if_speed: Some(1_000_000_000),
        if_phys_address: None,
        if_admin_status: Some("up".into()),
        // A quarter of the ports are unplugged (down, admin up), as on access switches.
        if_oper_status: Some(if !healthy && i % 4 == 0 { "down" } else { "up" }.into()),
        counters: PortCounters::default(),
        in_octets_rate: Some(1_000_000.0 * i as f64),
        out_octets_rate: Some(500_000.0),
        in_ucast_pkts_rate: Some(1000.0),
        out_ucast_pkts_rate: Some(800.0),
        in_errors_rate: Some(0.0),
        out_errors_rate: Some(0.0),
        poll_time: None,
        poll_period: Some(300.0),
        deleted: false,
    }
}

/// ns per device and alerts per round.
fn run(healthy: bool) -> (f64, usize) {
    const DEVICES: i64 = 1000;
    const ROUNDS: usize = 10;
    let rules: Vec<CompiledRule> = default_rules()
        .into_iter()
        .enumerate()
        .map(|(i, r)| CompiledRule::new(i as i64 + 1, r.name, r.expr, r.options))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let fleet: Vec<(Device, Vec<Port>)> = (1..=DEVICES)
        .map(|id| {
            (
                device(id, healthy),
                (1..=24).map(|i| port(id, i, healthy)).collect(),
            )
        })
        .collect();
    let processors: Vec<Processor> = (0..2)
        .map(|i| Processor {
            processor_id: i,
            device_id: 1,
            processor_index: i.to_string(),
            processor_type: "cisco".into(),
            processor_oid: String::new(),
            processor_descr: format!("CPU {i}"),
            processor_usage: Some(20.0),
            processor_precision: 1,
        })
        .collect();
    let mempools: Vec<Mempool> = ["system", "buffers"]
        .iter()
        .enumerate()
        .map(|(i, class)| Mempool {
            mempool_id: i as i64,
            device_id: 1,
            mempool_index: i.to_string(),
            mempool_type: "cisco".into(),
            mempool_class: (*class).into(),
            mempool_precision: 1,
            mempool_descr: "Processor".into(),
            mempool_perc: if healthy { 50.0 } else { 95.0 },
            mempool_used: 95,
            mempool_free: 5,
            mempool_total: 100,
        })
        .collect();
    let storage: Vec<Storage> = Vec::new();
    let icmp = Some(IcmpFacts {
        loss_pct: 0.0,
        avg_ms: Some(1.2),
    });
    let now = Utc
        .timestamp_opt(1_700_000_100, 0)
        .single()
        .unwrap_or_default();
    let ctx = EvalContext::at(now);
    let mut alerts = 0usize;
    let mut notifications = 0usize;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for (d, ports) in &fleet {
            let snap = device_snapshot(d, ports, &processors, &mempools, &storage, icmp, now, 300);
            let facts = DeviceFacts::of(d, &[]);
            for rule in &rules {
                if !in_scope(rule, &facts) {
                    continue;
                }
                for o in outcomes(rule, &snap) {
                    alerts += 1;
                    let dec = on_evaluation(None, Some(o.faults), &rule.options, &ctx);
                    notifications += usize::from(dec.notify.is_some());
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let per_device = elapsed.as_nanos() as f64 / (DEVICES as usize * ROUNDS) as f64;
    println!(
        "{} default rules, 24 ports, 2 processors, 2 mempools, {}: {per_device:.0} ns/device \
         ({:.1} ms for 10,000 devices; {} alerts, {} notifications per round)",
        rules.len(),
        if healthy { "healthy" } else { "faulty" },
        per_device * 10_000.0 / 1e6,
        alerts / ROUNDS,
        notifications / ROUNDS
    );
    (per_device, alerts / ROUNDS)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture, optimised"]
fn default_rules_ns_per_device() {
    let (_, alerts) = run(true);
    assert_eq!(alerts, 0);
    // Every device: port status (6 ports down); memory (the system pool at 95 %) on the
    // devices up, device down on the one in 100 that is not.
    let (_, alerts) = run(false);
    assert_eq!(alerts, 1000 + 990 + 10);
}
