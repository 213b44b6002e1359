//! `Store::export`/`import`: a filled store copied into a fresh one gives the same dump,
//! within a dialect and from SQLite to MariaDB and back; a non-empty target is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::Fixture;
use lookout_core::{
    DevicePollUpdate, DeviceStatus, NewDevice, PortCounters, PortPoll, SnmpConfig, SnmpV3Config,
    SnmpVersion,
};
use lookout_store::{
    Ipv4AddressPoll, Ipv6AddressPoll, LinkPoll, MempoolPoll, ProcessorPoll, Severity, StoragePoll,
    Store, StoreError,
};

fn poll(if_index: i64, octets: u64) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(format!("eth{if_index}")),
        if_speed: Some(u64::MAX - 1),
        counters: PortCounters {
            in_octets: Some(octets),
            out_octets: Some(u64::MAX - 1_000_000 + octets),
            in_errors: Some(3),
            hc: true,
            ..PortCounters::default()
        },
        ..PortPoll::default()
    }
}

/// Some of everything: v3 device, polled device, ports (one deleted), events, users, tokens.
async fn fill(store: &Store) {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let a = store
        .add_device(&NewDevice {
            hostname: "a".into(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap();
    let b = store
        .add_device(&NewDevice {
            hostname: "b".into(),
            snmp: SnmpConfig {
                version: SnmpVersion::V3,
                v3: Some(SnmpV3Config {
                    security_level: "authPriv".into(),
                    auth_user: "u".into(),
                    auth_protocol: "SHA".into(),
                    auth_password: "p1".into(),
                    priv_protocol: "AES".into(),
                    priv_password: "p2".into(),
                }),
                ..SnmpConfig::default()
            },
            poller_group: 2,
        })
        .await
        .unwrap();
    store.remove_device(a.device_id).await.unwrap(); // leaves a gap in the ids
    store
        .update_device_poll(
            b.device_id,
            &DevicePollUpdate {
                sys_name: Some("b.lab".into()),
                sys_descr: Some("Linux".into()),
                sys_object_id: None,
                sys_contact: None,
                sys_location: Some("here".into()),
                os: Some("linux".into()),
                hardware: None,
                version: None,
                serial: None,
                uptime: Some(5),
                uptime_source: None,
                status: DeviceStatus::Up,
                status_reason: String::new(),
                last_polled: t0,
                last_polled_timetaken: 0.25,
            },
        )
        .await
        .unwrap();
    store
        .sync_ports(b.device_id, &[poll(1, 0), poll(2, 0)], t0)
        .await
        .unwrap();
    store
        .sync_ports(b.device_id, &[poll(1, 3_000)], t0 + Duration::seconds(300))
        .await
        .unwrap();
    store
        .log_event(
            Some(b.device_id),
            "interface",
            "eth2 gone",
            Severity::Warning,
            Some(2),
        )
        .await
        .unwrap();
    store
        .log_event(None, "system", "started", Severity::Info, None)
        .await
        .unwrap();
    // What the poller's modules found (dump format 2).
    let id = b.device_id;
    store
        .sync_processors(
            id,
            &[ProcessorPoll {
                processor_type: "hr".into(),
                processor_index: "196608".into(),
                processor_oid: "1.3.6.1.2.1.25.3.3.1.2.196608".into(),
                processor_descr: "CPU".into(),
                processor_usage: Some(12.5),
            }],
        )
        .await
        .unwrap();
    store
        .sync_mempools(
            id,
            &[MempoolPoll {
                mempool_type: "hrstorage".into(),
                mempool_class: "system".into(),
                mempool_index: "1".into(),
                mempool_descr: "Physical memory".into(),
                mempool_perc: 25.0,
                mempool_used: 1 << 30,
                mempool_free: 3 << 30,
                mempool_total: 4 << 30,
            }],
        )
        .await
        .unwrap();
    store
        .sync_storage(
            id,
            &[StoragePoll {
                storage_mib: "hrstorage".into(),
                storage_index: 31,
                storage_type: Some("hrStorageFixedDisk".into()),
                storage_descr: "/".into(),
                storage_size: u64::MAX - 1,
                storage_units: 4096,
                storage_used: 1 << 40,
                storage_free: u64::MAX - 1 - (1 << 40),
                storage_perc: 0.0,
            }],
        )
        .await
        .unwrap();
    store
        .sync_ipv4_addresses(
            id,
            &[Ipv4AddressPoll {
                if_index: 1,
                ipv4_address: "192.0.2.1".into(),
                ipv4_prefixlen: 24,
            }],
        )
        .await
        .unwrap();
    store
        .sync_ipv6_addresses(
            id,
            &[Ipv6AddressPoll {
                if_index: 1,
                ipv6_address: "2001:0db8:0000:0000:0000:0000:0000:0001".into(),
                ipv6_compressed: "2001:db8::1".into(),
                ipv6_prefixlen: 64,
                ipv6_origin: "manual".into(),
            }],
        )
        .await
        .unwrap();
    store
        .sync_links(
            id,
            &[LinkPoll {
                local_if_index: Some(1),
                protocol: "lldp".into(),
                remote_hostname: "core".into(),
                remote_port: "Gi0/1".into(),
                remote_platform: Some("Cisco IOS".into()),
                remote_version: None,
                remote_address: None,
            }],
        )
        .await
        .unwrap();
    let u = store.add_user("admin", "$argon2id$x", 10).await.unwrap();
    store.add_user("ro", "$argon2id$y", 5).await.unwrap();
    store
        .add_api_token(u.user_id, &"f".repeat(64), "cli")
        .await
        .unwrap();
}

async fn roundtrip(from: &Fixture, to: &Fixture) {
    let src = from.store().await;
    fill(&src).await;
    let dump = src.export().await.unwrap();
    assert_eq!(dump.devices.len(), 1);
    assert_eq!(dump.ports.len(), 2);
    assert!(dump.ports.iter().any(|p| p.deleted));
    assert_eq!(dump.ports[0].in_octets_rate, Some(10.0));
    assert_eq!(dump.events.len(), 2);
    assert_eq!(dump.users[0].password_hash, "$argon2id$x");
    assert_eq!(dump.format, 2);
    assert_eq!(
        (
            dump.processors.len(),
            dump.mempools.len(),
            dump.storage.len(),
            dump.ipv4_addresses.len(),
            dump.ipv6_addresses.len(),
            dump.links.len()
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(dump.storage[0].storage_size, u64::MAX - 1);
    // Through JSON, as `lookout db export > file` would.
    let json = serde_json::to_string(&dump).unwrap();
    let dump2: lookout_store::Dump = serde_json::from_str(&json).unwrap();
    assert_eq!(dump2, dump);

    let dst = to.store().await;
    dst.import(&dump2).await.unwrap();
    assert_eq!(dst.export().await.unwrap(), dump, "same rows, same ids");
    let b = dump.devices[0].device_id;
    assert_eq!(dst.links(b).await.unwrap(), dump.links);
    assert_eq!(dst.processors(b).await.unwrap(), dump.processors);
    // Logging in and API tokens work on the copy; new rows get fresh ids.
    let admin = dst.user_by_username("admin").await.unwrap().unwrap();
    assert_eq!(
        dst.user_by_api_token(&"f".repeat(64)).await.unwrap(),
        Some(admin)
    );
    let c = dst
        .add_device(&NewDevice {
            hostname: "c".into(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap();
    assert!(dump.devices.iter().all(|d| d.device_id < c.device_id));
    dst.add_user("new", "h", 1).await.unwrap();

    // A second import into the now non-empty target is refused, nothing written.
    let before = dst.export().await.unwrap();
    let err = dst.import(&dump).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Import(m) if m.contains("not empty")),
        "{err:?}"
    );
    assert_eq!(dst.export().await.unwrap(), before);
    src.close().await;
    dst.close().await;
}

#[tokio::test]
async fn sqlite_to_sqlite() {
    roundtrip(&Fixture::sqlite(), &Fixture::sqlite()).await;
}

#[tokio::test]
async fn sqlite_to_mysql() {
    let Some(my) = Fixture::mysql() else { return };
    roundtrip(&Fixture::sqlite(), &my).await;
}

#[tokio::test]
async fn mysql_to_sqlite() {
    let Some(my) = Fixture::mysql() else { return };
    roundtrip(&my, &Fixture::sqlite()).await;
}

/// A format 1 dump (before the module tables) still imports; an unknown format does not.
#[tokio::test]
async fn format_1_dump_imports_and_unknown_formats_are_refused() {
    let from = Fixture::sqlite();
    let src = from.store().await;
    fill(&src).await;
    let mut v = serde_json::to_value(src.export().await.unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in [
        "processors",
        "mempools",
        "storage",
        "ipv4_addresses",
        "ipv6_addresses",
        "links",
    ] {
        o.remove(k);
    }
    o.insert("format".into(), 1.into());
    let old: lookout_store::Dump = serde_json::from_value(v).unwrap();
    assert!(old.links.is_empty());
    let to = Fixture::sqlite();
    let dst = to.store().await;
    let mut future = old.clone();
    future.format = 99;
    assert!(matches!(
        dst.import(&future).await.unwrap_err(),
        StoreError::Import(m) if m.contains("99")
    ));
    dst.import(&old).await.unwrap();
    let got = dst.export().await.unwrap();
    assert_eq!(got.devices, old.devices);
    assert!(got.links.is_empty() && got.processors.is_empty());
}
