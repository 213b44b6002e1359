//! Measurement, not run by default (`cargo test -p lookout-store --test throughput --
//! --ignored --nocapture`): how long `sync_ports` takes for a poll cycle of many devices
//! with 48 ports each, on SQLite and on the local MariaDB, with 8 concurrent writers (as a
//! poller would). Asserts that every port got its rate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use common::Fixture;
use lookout_core::{NewDevice, PortCounters, PortPoll, SnmpConfig};

const DEVICES: usize = 100;
const PORTS: i64 = 48;

async fn cycle(fx: &Fixture, label: &str) {
    let store = fx.store().await;
    let mut ids = Vec::new();
    for i in 0..DEVICES {
        let d = store
            .add_device(&NewDevice {
                hostname: format!("dev{i:04}"),
                snmp: SnmpConfig::default(),
                poller_group: 0,
            })
            .await
            .unwrap();
        ids.push(d.device_id);
    }
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    for round in 0..2u64 {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for chunk in ids.chunks(DEVICES / 8) {
            let store = store.clone();
            let chunk = chunk.to_vec();
            tasks.push(tokio::spawn(async move {
                for id in chunk {
                    let polled: Vec<_> = (1..=PORTS)
                        .map(|k| PortPoll {
                            if_index: k,
                            if_name: Some(format!("eth{k}")),
                            counters: PortCounters {
                                in_octets: Some(round * 300_000),
                                out_octets: Some(round * 600_000),
                                hc: true,
                                ..PortCounters::default()
                            },
                            ..PortPoll::default()
                        })
                        .collect();
                    let at = t0 + Duration::seconds(round as i64 * 300);
                    store.sync_ports(id, &polled, at).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = started.elapsed();
        eprintln!(
            "{label}: round {round}: {DEVICES} devices x {PORTS} ports in {el:?} ({:.1} ms/device)",
            el.as_secs_f64() * 1000.0 / DEVICES as f64
        );
    }
    for id in ids {
        let ports = store.ports(id).await.unwrap();
        assert_eq!(ports.len(), PORTS as usize);
        assert!(ports.iter().all(|p| p.in_octets_rate == Some(1000.0)));
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn sync_ports_throughput() {
    cycle(&Fixture::sqlite(), "sqlite").await;
    if let Some(my) = Fixture::mysql() {
        cycle(&my, "mariadb").await;
    }
}
