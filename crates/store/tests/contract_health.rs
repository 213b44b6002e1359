//! The store contract for the poller's health modules and per-module settings (migration
//! 0002): processors, mempools, storage, `poll_<module>` overrides, module timing, port
//! counter reset and ifIndex renumbering. Each function runs against SQLite and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone, Utc};
use lookout_core::{NewDevice, PortCounters, PortPoll, SnmpConfig, Timestamp};
use lookout_store::{
    Ipv4AddressPoll, MempoolPoll, ModulePerf, ProcessorPoll, StoragePoll, Store, StoreError,
};

contract_tests!(
    processors_sync,
    mempools_and_storage_sync,
    health_of_unknown_device,
    health_rows_go_with_the_device,
    module_overrides,
    module_perf,
    reset_port_counters_gives_no_rate,
    renumber_ports_keeps_port_ids,
    mark_discovered,
    ipv4_addresses_follow_ports,
);

async fn ipv4_addresses_follow_ports(store: Store) {
    let id = device(&store, "r1").await;
    let s = store
        .sync_ports(id, &[port(1, "lo", 0), port(2, "eth0", 0)], t(0))
        .await
        .unwrap();
    let a = |idx: i64, ip: &str, len: i32| Ipv4AddressPoll {
        if_index: idx,
        ipv4_address: ip.into(),
        ipv4_prefixlen: len,
    };
    let rows = store
        .sync_ipv4_addresses(
            id,
            &[
                a(1, "127.0.0.1", 8),
                a(2, "192.0.2.10", 24),
                a(9, "198.51.100.1", 30),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the address on unknown ifIndex 9 is skipped");
    let eth0 = s.ports.iter().find(|p| p.if_index == 2).unwrap();
    assert!(rows.iter().any(|r| r.port_id == eth0.port_id
        && r.ipv4_address == "192.0.2.10"
        && r.ipv4_prefixlen == 24));
    let rows = store
        .sync_ipv4_addresses(id, &[a(2, "192.0.2.11", 24)])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(store.ipv4_addresses(id).await.unwrap(), rows);
    assert!(store.remove_device(id).await.unwrap());
    assert!(store.ipv4_addresses(id).await.unwrap().is_empty());
}

async fn mark_discovered(store: Store) {
    let id = device(&store, "r1").await;
    assert_eq!(
        store.device(id).await.unwrap().unwrap().last_discovered,
        None
    );
    store.mark_discovered(id, t(5)).await.unwrap();
    assert_eq!(
        store.device(id).await.unwrap().unwrap().last_discovered,
        Some(t(5))
    );
}

async fn device(store: &Store, host: &str) -> i64 {
    store
        .add_device(&NewDevice {
            hostname: host.to_string(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap()
        .device_id
}

fn t(secs: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

fn cpu(index: &str, usage: Option<f64>) -> ProcessorPoll {
    ProcessorPoll {
        processor_type: "hr".into(),
        processor_index: index.into(),
        processor_oid: format!("1.3.6.1.2.1.25.3.3.1.2.{index}"),
        processor_descr: format!("CPU {index}"),
        processor_usage: usage,
    }
}

async fn processors_sync(store: Store) {
    let id = device(&store, "r1").await;
    let rows = store
        .sync_processors(id, &[cpu("196608", Some(7.0)), cpu("196609", None)])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].processor_usage, Some(7.0));
    assert_eq!(rows[1].processor_usage, None);
    let first_id = rows[0].processor_id;
    // Same key: updated in place (same id); missing one: deleted; new one: added.
    let rows = store
        .sync_processors(id, &[cpu("196608", Some(55.5)), cpu("196610", Some(1.0))])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let a = rows.iter().find(|r| r.processor_index == "196608").unwrap();
    assert_eq!((a.processor_id, a.processor_usage), (first_id, Some(55.5)));
    assert!(rows.iter().all(|r| r.processor_index != "196609"));
    assert_eq!(store.processors(id).await.unwrap(), rows);
}

async fn mempools_and_storage_sync(store: Store) {
    let id = device(&store, "r1").await;
    let big = u64::MAX - 5;
    let pool = MempoolPoll {
        mempool_type: "ucd".into(),
        mempool_class: "system".into(),
        mempool_index: "1".into(),
        mempool_descr: "Physical memory".into(),
        mempool_perc: 50.0,
        mempool_used: 2048,
        mempool_free: 2048,
        mempool_total: 4096,
    };
    let swap = MempoolPoll {
        mempool_class: "swap".into(),
        mempool_index: "2".into(),
        mempool_total: big,
        ..pool.clone()
    };
    let rows = store
        .sync_mempools(id, &[pool.clone(), swap])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].mempool_total, big, "u64 above 2^63 round-trips");
    let rows = store
        .sync_mempools(
            id,
            &[MempoolPoll {
                mempool_used: 1024,
                mempool_free: 3072,
                mempool_perc: 25.0,
                ..pool
            }],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].mempool_used, rows[0].mempool_perc), (1024, 25.0));

    let root = StoragePoll {
        storage_mib: "hrstorage".into(),
        storage_index: 31,
        storage_type: Some("hrStorageFixedDisk".into()),
        storage_descr: "/".into(),
        storage_size: 40_960_000_000,
        storage_units: 4096,
        storage_used: 10_240_000_000,
        storage_free: 30_720_000_000,
        storage_perc: 25.0,
    };
    let home = StoragePoll {
        storage_index: 35,
        storage_descr: "/home".into(),
        ..root.clone()
    };
    let rows = store.sync_storage(id, &[root.clone(), home]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].storage_size, 40_960_000_000);
    assert_eq!(rows[0].storage_mib, "hrstorage");
    let rows = store.sync_storage(id, &[root]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(store.storage(id).await.unwrap(), rows);
}

async fn health_of_unknown_device(store: Store) {
    assert!(matches!(
        store.sync_processors(999, &[cpu("1", None)]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.sync_storage(999, &[]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.processors(999).await.unwrap().is_empty());
}

async fn health_rows_go_with_the_device(store: Store) {
    let id = device(&store, "r1").await;
    let other = device(&store, "r2").await;
    store
        .sync_processors(id, &[cpu("1", Some(1.0))])
        .await
        .unwrap();
    store
        .sync_processors(other, &[cpu("1", Some(2.0))])
        .await
        .unwrap();
    store
        .set_module_override(id, "ports", Some(false))
        .await
        .unwrap();
    store
        .record_module_perf(
            id,
            &[ModulePerf {
                module: "core".into(),
                seconds: 0.1,
                status: "ok".into(),
                message: None,
                polled_at: t(0),
            }],
        )
        .await
        .unwrap();
    assert!(store.remove_device(id).await.unwrap());
    assert!(store.processors(id).await.unwrap().is_empty());
    assert!(store.module_perf(id).await.unwrap().is_empty());
    assert!(store.module_overrides(id).await.unwrap().is_empty());
    assert_eq!(store.processors(other).await.unwrap().len(), 1);
}

async fn module_overrides(store: Store) {
    let id = device(&store, "r1").await;
    assert!(store.module_overrides(id).await.unwrap().is_empty());
    store
        .set_module_override(id, "ports", Some(false))
        .await
        .unwrap();
    store
        .set_module_override(id, "storage", Some(true))
        .await
        .unwrap();
    store
        .set_module_override(id, "ports", Some(true))
        .await
        .unwrap();
    assert_eq!(
        store.module_overrides(id).await.unwrap(),
        vec![("ports".to_string(), true), ("storage".to_string(), true)]
    );
    store.set_module_override(id, "ports", None).await.unwrap();
    assert_eq!(
        store.module_overrides(id).await.unwrap(),
        vec![("storage".to_string(), true)]
    );
    assert!(matches!(
        store.set_module_override(999, "ports", Some(false)).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn module_perf(store: Store) {
    let id = device(&store, "r1").await;
    let perf = |secs: f64, at: i64| {
        vec![
            ModulePerf {
                module: "core".into(),
                seconds: secs,
                status: "ok".into(),
                message: None,
                polled_at: t(at),
            },
            ModulePerf {
                module: "ports".into(),
                seconds: secs * 2.0,
                status: "failed".into(),
                message: Some("ifTable walk stopped".into()),
                polled_at: t(at),
            },
        ]
    };
    store.record_module_perf(id, &perf(0.5, 0)).await.unwrap();
    store
        .record_module_perf(id, &perf(0.25, 300))
        .await
        .unwrap();
    // One row per module: the latest poll.
    assert_eq!(store.module_perf(id).await.unwrap(), perf(0.25, 300));
}

fn port(if_index: i64, name: &str, octets: u64) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(name.into()),
        if_speed: Some(1_000_000_000),
        counters: PortCounters {
            in_octets: Some(octets),
            out_octets: Some(octets),
            in_errors: Some(octets),
            hc: false,
            ..PortCounters::default()
        },
        ..PortPoll::default()
    }
}

async fn reset_port_counters_gives_no_rate(store: Store) {
    let id = device(&store, "r1").await;
    store
        .sync_ports(id, &[port(1, "eth0", 4_000_000_000)], t(0))
        .await
        .unwrap();
    store.reset_port_counters(id).await.unwrap();
    // Without the reset this 32-bit drop would be taken as a wrap.
    let s = store
        .sync_ports(id, &[port(1, "eth0", 1000)], t(300))
        .await
        .unwrap();
    let p = &s.ports[0];
    assert_eq!((p.in_octets_rate, p.in_errors_rate), (None, None));
    assert_eq!(p.counters.in_octets, Some(1000));
    let s = store
        .sync_ports(id, &[port(1, "eth0", 4000)], t(600))
        .await
        .unwrap();
    assert_eq!(s.ports[0].in_octets_rate, Some(10.0));
}

async fn renumber_ports_keeps_port_ids(store: Store) {
    let id = device(&store, "r1").await;
    let s = store
        .sync_ports(
            id,
            &[port(1, "eth0", 0), port(2, "eth1", 0), port(3, "eth2", 0)],
            t(0),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = s.ports.iter().map(|p| p.port_id).collect();
    // eth2 goes away (deleted row keeps ifIndex 3), then eth0 and eth1 swap and eth1 takes 3.
    store
        .sync_ports(id, &[port(1, "eth0", 0), port(2, "eth1", 0)], t(300))
        .await
        .unwrap();
    store
        .renumber_ports(id, &[(ids[0], 2), (ids[1], 3)])
        .await
        .unwrap();
    let s = store
        .sync_ports(id, &[port(2, "eth0", 3000), port(3, "eth1", 3000)], t(600))
        .await
        .unwrap();
    assert!(s.added.is_empty() && s.removed.is_empty(), "{s:?}");
    let eth0 = s
        .ports
        .iter()
        .find(|p| p.if_name.as_deref() == Some("eth0"))
        .unwrap();
    assert_eq!((eth0.port_id, eth0.if_index), (ids[0], 2));
    assert_eq!(eth0.in_octets_rate, Some(10.0));
    let eth1 = s
        .ports
        .iter()
        .find(|p| p.if_name.as_deref() == Some("eth1"))
        .unwrap();
    assert_eq!((eth1.port_id, eth1.if_index), (ids[1], 3));
    assert!(
        store.port(ids[2]).await.unwrap().is_none(),
        "the deleted eth2 row gave way"
    );
}
