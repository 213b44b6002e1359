//! The store contract for migration 0005 and the one-transaction poll commit: neighbours
//! (`links`) resolved to known devices, IPv6 addresses, and `commit_poll`, which writes a
//! whole poll (device row, ports, health rows, addresses, neighbours, timing, events, poll
//! log) only while the poll's claim token is the device's. Each function runs against
//! SQLite and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone, Utc};
use lookout_core::{
    DevicePollUpdate, DeviceStatus, NewDevice, Port, PortCounters, PortPoll, SnmpConfig, Timestamp,
};
use lookout_store::{
    Ipv4AddressPoll, Ipv6AddressPoll, LinkPoll, MempoolPoll, ModulePerf, NewEvent, PollCommit,
    PollFence, PollOutcome, PortSync, PortsStage, ProcessorPoll, Severity, Store, StoreError,
};

contract_tests!(
    links_resolve_known_devices,
    ipv6_addresses_follow_ports,
    commit_poll_writes_everything,
    stale_commit_writes_nothing,
    unfenced_commit_of_removed_device_writes_nothing,
);

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

fn port(if_index: i64, name: &str, octets: u64) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(name.into()),
        if_oper_status: Some("up".into()),
        if_speed: Some(1_000_000_000),
        counters: PortCounters {
            in_octets: Some(octets),
            out_octets: Some(octets),
            hc: true,
            ..PortCounters::default()
        },
        ..PortPoll::default()
    }
}

fn update(name: &str, secs: i64) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some(name.into()),
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: None,
        os: Some("linux".into()),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(1000 + secs),
        uptime_source: None,
        status: DeviceStatus::Up,
        status_reason: String::new(),
        last_polled: t(secs),
        last_polled_timetaken: 0.25,
    }
}

fn lldp(local: i64, name: &str, port: &str) -> LinkPoll {
    LinkPoll {
        local_if_index: Some(local),
        protocol: "lldp".into(),
        remote_hostname: name.into(),
        remote_port: port.into(),
        remote_platform: Some("Linux".into()),
        remote_version: None,
        remote_address: None,
    }
}

fn v6(if_index: i64, full: &str, short: &str) -> Ipv6AddressPoll {
    Ipv6AddressPoll {
        if_index,
        ipv6_address: full.into(),
        ipv6_compressed: short.into(),
        ipv6_prefixlen: 64,
        ipv6_origin: "manual".into(),
    }
}

async fn links_resolve_known_devices(store: Store) {
    let a = device(&store, "sw-a.example.net").await;
    let b = device(&store, "192.0.2.2").await;
    store
        .sync_ports(a, &[port(1, "ge-0/0/1", 0), port(2, "ge-0/0/2", 0)], t(0))
        .await
        .unwrap();
    let b_ports = store
        .sync_ports(b, &[port(7, "Gi0/7", 0)], t(0))
        .await
        .unwrap();
    // b is known by its sysName (what LLDP announces), not its hostname (an address).
    store
        .update_device_poll(b, &update("core-b", 0))
        .await
        .unwrap();
    let mut by_addr = lldp(2, "unknown-name", "Gi0/9");
    by_addr.remote_address = Some("192.0.2.2".into());
    let mut cdp = lldp(9, "phone-1", "Port 1");
    cdp.protocol = "cdp".into();
    cdp.remote_version = Some("SIP 12.0".into());
    let rows = store
        .sync_links(a, &[lldp(1, "CORE-B", "Gi0/7"), by_addr, cdp])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let ports_a = store.ports(a).await.unwrap();
    let pid = |n: &str| {
        ports_a
            .iter()
            .find(|p| p.if_name.as_deref() == Some(n))
            .unwrap()
            .port_id
    };
    let l1 = rows.iter().find(|l| l.remote_port == "Gi0/7").unwrap();
    assert_eq!(l1.local_port_id, Some(pid("ge-0/0/1")));
    assert_eq!(l1.local_device_id, a);
    assert_eq!(
        l1.remote_device_id,
        Some(b),
        "matched by sysName, case-insensitive"
    );
    assert_eq!(l1.remote_port_id, Some(b_ports.ports[0].port_id));
    assert_eq!(l1.protocol, "lldp");
    assert!(l1.active);
    let l2 = rows.iter().find(|l| l.remote_port == "Gi0/9").unwrap();
    assert_eq!(
        l2.remote_device_id,
        Some(b),
        "matched by management address"
    );
    assert_eq!(l2.remote_port_id, None, "b has no port Gi0/9");
    let l3 = rows.iter().find(|l| l.protocol == "cdp").unwrap();
    assert_eq!(l3.local_port_id, None, "ifIndex 9 is no port of a");
    assert_eq!(l3.remote_device_id, None);
    assert_eq!(l3.remote_version.as_deref(), Some("SIP 12.0"));
    assert_eq!(store.links(a).await.unwrap(), rows);
    assert!(store.links(b).await.unwrap().is_empty());

    // Removing b keeps a's neighbour rows (the names) but drops the references.
    assert!(store.remove_device(b).await.unwrap());
    let rows = store.links(a).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|l| l.remote_device_id.is_none() && l.remote_port_id.is_none()));
    // A new discovery replaces the rows; removing a removes them.
    assert_eq!(
        store
            .sync_links(a, &[lldp(2, "x", "y")])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        store.sync_links(a + 999, &[]).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(store.remove_device(a).await.unwrap());
    assert!(store.links(a).await.unwrap().is_empty());
}

async fn ipv6_addresses_follow_ports(store: Store) {
    let id = device(&store, "r1").await;
    let s = store
        .sync_ports(id, &[port(1, "lo", 0), port(2, "eth0", 0)], t(0))
        .await
        .unwrap();
    let lo_full = "0000:0000:0000:0000:0000:0000:0000:0001";
    let doc = "2001:0db8:0000:0000:0000:0000:0000:0010";
    let rows = store
        .sync_ipv6_addresses(
            id,
            &[
                v6(1, lo_full, "::1"),
                v6(2, doc, "2001:db8::10"),
                // the same address from the other MIB: kept once
                v6(2, doc, "2001:db8::10"),
                v6(9, doc, "2001:db8::10"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let eth0 = s.ports.iter().find(|p| p.if_index == 2).unwrap();
    let r = rows.iter().find(|r| r.port_id == eth0.port_id).unwrap();
    assert_eq!(
        (
            r.ipv6_address.as_str(),
            r.ipv6_compressed.as_str(),
            r.ipv6_prefixlen
        ),
        (doc, "2001:db8::10", 64)
    );
    assert_eq!(store.ipv6_addresses(id).await.unwrap(), rows);
    assert_eq!(
        store.sync_ipv6_addresses(id, &[]).await.unwrap(),
        Vec::new()
    );
    store
        .sync_ipv6_addresses(id, &[v6(1, lo_full, "::1")])
        .await
        .unwrap();
    assert!(store.remove_device(id).await.unwrap());
    assert!(store.ipv6_addresses(id).await.unwrap().is_empty());
}

/// The port events a poller derives in the commit (added ports, here).
fn added_events(_before: &[Port], sync: &PortSync) -> Vec<NewEvent> {
    sync.added
        .iter()
        .filter_map(|id| sync.ports.iter().find(|p| p.port_id == *id))
        .map(|p| {
            NewEvent::new(
                "interface",
                format!("Interface added: {}", p.label()),
                Severity::Info,
            )
        })
        .collect()
}

/// A full poll's worth of writes.
fn full_commit(secs: i64, octets: u64, fence: Option<PollFence>) -> PollCommit {
    let mut c = PollCommit::new(update(&format!("poll-{secs}"), secs), fence);
    c.ports = Some(PortsStage {
        polled: vec![port(1, "lo", octets), port(2, "eth0", octets * 2)],
        polled_at: t(secs),
        reset_counters: false,
        moves: Vec::new(),
        events: Some(added_events),
    });
    c.ipv4_addresses = Some(vec![Ipv4AddressPoll {
        if_index: 1,
        ipv4_address: "127.0.0.1".into(),
        ipv4_prefixlen: 8,
    }]);
    c.ipv6_addresses = Some(vec![v6(
        1,
        "0000:0000:0000:0000:0000:0000:0000:0001",
        "::1",
    )]);
    c.processors = Some(vec![ProcessorPoll {
        processor_type: "hr".into(),
        processor_index: "196608".into(),
        processor_oid: "1.3.6.1.2.1.25.3.3.1.2.196608".into(),
        processor_descr: "CPU".into(),
        processor_usage: Some(secs as f64),
    }]);
    c.mempools = Some(vec![MempoolPoll {
        mempool_type: "hrstorage".into(),
        mempool_class: "system".into(),
        mempool_index: "1".into(),
        mempool_descr: "Physical memory".into(),
        mempool_perc: 50.0,
        mempool_used: 512,
        mempool_free: 512,
        mempool_total: 1024,
    }]);
    c.storage = Some(vec![common::root_storage()]);
    c.links = Some(vec![lldp(2, "peer", "eth1")]);
    c.module_perf = vec![ModulePerf {
        module: "ports".into(),
        seconds: 0.125,
        status: "ok".into(),
        message: None,
        polled_at: t(secs),
    }];
    c.discovered_at = Some(t(secs));
    c.events = vec![NewEvent::new(
        "system",
        format!("poll {secs}"),
        Severity::Ok,
    )];
    c
}

async fn commit_poll_writes_everything(store: Store) {
    let id = device(&store, "r1").await;
    let out = store
        .commit_poll(id, &full_commit(0, 1000, None))
        .await
        .unwrap();
    let sync = out.ports.unwrap();
    assert_eq!(sync.added.len(), 2);
    assert_eq!(out.events, 3, "two ports added + the poll's own event");
    let d = store.device(id).await.unwrap().unwrap();
    assert_eq!(d.sys_name.as_deref(), Some("poll-0"));
    assert_eq!(d.last_discovered, Some(t(0)));
    assert_eq!(store.ports(id).await.unwrap().len(), 2);
    assert_eq!(store.ipv4_addresses(id).await.unwrap().len(), 1);
    assert_eq!(store.ipv6_addresses(id).await.unwrap().len(), 1);
    assert_eq!(
        store.processors(id).await.unwrap()[0].processor_usage,
        Some(0.0)
    );
    assert_eq!(store.mempools(id).await.unwrap().len(), 1);
    assert_eq!(store.storage(id).await.unwrap().len(), 1);
    assert_eq!(store.links(id).await.unwrap().len(), 1);
    assert_eq!(store.module_perf(id).await.unwrap().len(), 1);
    let events = store.events(Some(id), 10).await.unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().any(|e| e.message == "Interface added: eth0"));

    // Second poll: rates from the counters, no new port events, modules left out keep rows.
    let mut second = full_commit(300, 1000 + 300 * 125, None);
    second.processors = None;
    second.links = None;
    let out = store.commit_poll(id, &second).await.unwrap();
    let lo = out
        .ports
        .unwrap()
        .ports
        .into_iter()
        .find(|p| p.if_index == 1)
        .unwrap();
    assert_eq!(lo.in_octets_rate, Some(125.0));
    assert_eq!(
        store.processors(id).await.unwrap()[0].processor_usage,
        Some(0.0)
    );
    assert_eq!(store.links(id).await.unwrap().len(), 1);
    assert_eq!(store.events(Some(id), 10).await.unwrap().len(), 4);
}

/// The heart of fencing: a poll whose claim was handed to a newer poll writes nothing.
async fn stale_commit_writes_nothing(store: Store) {
    let id = device(&store, "r1").await;
    let since = Utc::now() - chrono::Duration::seconds(5);
    let fence = |node: &str, token: u64| PollFence {
        node_id: node.into(),
        token,
        started: Utc::now(),
    };
    // Node b's poll (token 200) lands first.
    assert!(store.register_poll_token(id, 100).await.unwrap());
    assert!(store.register_poll_token(id, 200).await.unwrap());
    store
        .commit_poll(id, &full_commit(0, 1000, Some(fence("b", 200))))
        .await
        .unwrap();
    let before = (
        store.device(id).await.unwrap().unwrap(),
        store.ports(id).await.unwrap(),
        store.processors(id).await.unwrap(),
        store.events(Some(id), 100).await.unwrap(),
        store.links(id).await.unwrap(),
        store.module_perf(id).await.unwrap(),
    );

    // Node a (token 100) finishes later with different values, a removed port, new events.
    let mut stale = full_commit(300, 999_999, Some(fence("a", 100)));
    if let Some(p) = &mut stale.ports {
        p.polled.truncate(1);
        p.reset_counters = true;
    }
    stale.links = Some(Vec::new());
    let err = store.commit_poll(id, &stale).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Fenced {
                token: 100,
                current: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
    let after = (
        store.device(id).await.unwrap().unwrap(),
        store.ports(id).await.unwrap(),
        store.processors(id).await.unwrap(),
        store.events(Some(id), 100).await.unwrap(),
        store.links(id).await.unwrap(),
        store.module_perf(id).await.unwrap(),
    );
    assert_eq!(before, after, "the stale poll changed something");
    assert_eq!(store.ipv4_addresses(id).await.unwrap().len(), 1);
    let log = store.poll_log(since).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].token, log[0].status), (200, PollOutcome::Ok));

    // The owner's next poll still writes, and a commit for an unknown device is NotFound.
    store
        .commit_poll(id, &full_commit(300, 2000, Some(fence("b", 200))))
        .await
        .unwrap();
    assert_eq!(
        store.device(id).await.unwrap().unwrap().sys_name.as_deref(),
        Some("poll-300")
    );
    assert!(matches!(
        store
            .commit_poll(id + 999, &full_commit(0, 1, Some(fence("b", 200))))
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

/// A failure part-way (the device vanished) rolls the whole commit back.
async fn unfenced_commit_of_removed_device_writes_nothing(store: Store) {
    let id = device(&store, "r1").await;
    let other = device(&store, "r2").await;
    assert!(store.remove_device(id).await.unwrap());
    assert!(matches!(
        store
            .commit_poll(id, &full_commit(0, 1000, None))
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(store.ports(id).await.unwrap().is_empty());
    assert!(store.events(None, 100).await.unwrap().is_empty());
    assert!(store.ports(other).await.unwrap().is_empty());
}
