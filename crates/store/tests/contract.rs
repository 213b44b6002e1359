//! The store contract: every function here takes a migrated `Store` and runs against
//! SQLite (temp file) and MariaDB (fresh database on 127.0.0.1:3306), so both backends
//! behave the same for every public method.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use lookout_core::{
    DevicePollUpdate, DeviceStatus, NewDevice, PortCounters, PortPoll, SnmpConfig, SnmpV3Config,
    SnmpVersion, Timestamp,
};
use lookout_store::{PollFence, PollLogEntry, PollOutcome, Severity, Store, StoreError};

contract_tests!(
    migrate_is_idempotent,
    device_add_get_list,
    device_duplicate_is_rejected,
    device_poll_update,
    device_remove_cascades,
    device_settings_change_keeps_id_and_ports,
    ports_add_rename_remove,
    ports_rates,
    ports_counter_backwards_gives_no_rate,
    ports_counter32_wrap,
    ports_counters_above_2_pow_63,
    ports_replayed_poll_is_idempotent,
    ports_returned_are_the_stored_rows,
    ports_unknown_device,
    events_log_and_list,
    users_and_passwords,
    api_tokens,
    concurrent_writers,
    poll_fencing,
);

fn new_device(host: &str) -> NewDevice {
    NewDevice {
        hostname: host.to_string(),
        snmp: SnmpConfig::default(),
        poller_group: 0,
    }
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn port_poll(if_index: i64, name: &str, in_octets: u64, out_octets: u64, hc: bool) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(name.to_string()),
        if_descr: Some(format!("{name} descr")),
        if_alias: None,
        if_type: Some("ethernetCsmacd".to_string()),
        if_mtu: Some(1500),
        if_speed: Some(1_000_000_000),
        if_phys_address: Some("0011223344ff".to_string()),
        if_admin_status: Some("up".to_string()),
        if_oper_status: Some("up".to_string()),
        counters: PortCounters {
            in_octets: Some(in_octets),
            out_octets: Some(out_octets),
            in_ucast_pkts: Some(in_octets / 100),
            out_ucast_pkts: Some(out_octets / 100),
            in_errors: Some(0),
            out_errors: Some(0),
            hc,
            ..PortCounters::default()
        },
    }
}

async fn migrate_is_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let status = store.migrate_status().await.unwrap();
    assert!(!status.is_empty());
    assert!(status.iter().all(|s| s.applied_at.is_some()), "{status:?}");
}

async fn device_add_get_list(store: Store) {
    let before = Utc::now() - Duration::seconds(1);
    let mut v3dev = new_device("router-b.example.net");
    v3dev.poller_group = 3;
    v3dev.snmp = SnmpConfig {
        version: SnmpVersion::V3,
        port: 16161,
        community: String::new(),
        timeout_ms: 1500,
        retries: 4,
        v3: Some(SnmpV3Config {
            security_level: "authPriv".into(),
            auth_user: "probeuser".into(),
            auth_protocol: "SHA-256".into(),
            auth_password: "authpass123".into(),
            priv_protocol: "AES-256".into(),
            priv_password: "privpass123".into(),
        }),
    };
    let b = store.add_device(&v3dev).await.unwrap();
    let a = store.add_device(&new_device("127.0.0.1")).await.unwrap();
    assert_ne!(a.device_id, b.device_id);
    assert_eq!(b.hostname, "router-b.example.net");
    assert_eq!(b.snmp, v3dev.snmp, "SNMP settings round-trip, v3 included");
    assert_eq!(b.poller_group, 3);
    assert_eq!(a.snmp, SnmpConfig::default());
    assert_eq!(a.os, "generic");
    assert_eq!(a.status, DeviceStatus::Down);
    assert!(a.last_polled.is_none() && a.sys_name.is_none());
    assert!(!a.disabled);
    assert!(a.inserted >= before && a.inserted <= Utc::now() + Duration::seconds(1));

    assert_eq!(store.device(a.device_id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store
            .device_by_hostname("router-b.example.net")
            .await
            .unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        store
            .device(a.device_id + b.device_id + 1000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.device_by_hostname("nope").await.unwrap(), None);
    let all = store.devices().await.unwrap();
    let names: Vec<_> = all.iter().map(|d| d.hostname.as_str()).collect();
    assert_eq!(
        names,
        ["127.0.0.1", "router-b.example.net"],
        "ordered by hostname"
    );
}

async fn device_duplicate_is_rejected(store: Store) {
    store.add_device(&new_device("sw1")).await.unwrap();
    let err = store.add_device(&new_device("sw1")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Duplicate { what: "device", key } if key == "sw1"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "device \"sw1\" already exists");
    assert_eq!(store.devices().await.unwrap().len(), 1);
}

async fn device_poll_update(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    // Nanoseconds are dropped: the store keeps microseconds on every backend.
    let polled = t0() + Duration::nanoseconds(123_456_789);
    let up = DevicePollUpdate {
        sys_name: Some("sw1.lab".into()),
        sys_descr: Some("Linux sw1 6.1".into()),
        sys_object_id: Some(".1.3.6.1.4.1.8072.3.2.10".into()),
        sys_contact: Some("noc@example.net".into()),
        sys_location: Some("rack 4".into()),
        os: Some("linux".into()),
        hardware: Some("x86_64".into()),
        version: Some("6.1".into()),
        serial: None,
        uptime: Some(86_400),
        uptime_source: None,
        status: DeviceStatus::Up,
        status_reason: String::new(),
        last_polled: polled,
        last_polled_timetaken: 1.25,
    };
    store.update_device_poll(d.device_id, &up).await.unwrap();
    let got = store.device(d.device_id).await.unwrap().unwrap();
    assert_eq!(got.sys_name.as_deref(), Some("sw1.lab"));
    assert_eq!(got.sys_descr.as_deref(), Some("Linux sw1 6.1"));
    assert_eq!(
        got.sys_object_id.as_deref(),
        Some(".1.3.6.1.4.1.8072.3.2.10")
    );
    assert_eq!(got.sys_contact.as_deref(), Some("noc@example.net"));
    assert_eq!(got.sys_location.as_deref(), Some("rack 4"));
    assert_eq!(got.os, "linux");
    assert_eq!(got.uptime, Some(86_400));
    assert_eq!(got.status, DeviceStatus::Up);
    assert_eq!(
        got.last_polled,
        Some(t0() + Duration::microseconds(123_456))
    );
    assert_eq!(got.last_polled_timetaken, Some(1.25));

    // A failed poll learns nothing: the system information stays, the status changes.
    let down = DevicePollUpdate {
        sys_name: None,
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: None,
        os: None,
        hardware: None,
        version: None,
        serial: None,
        uptime: None,
        uptime_source: None,
        status: DeviceStatus::Down,
        status_reason: "snmp".into(),
        last_polled: polled + Duration::seconds(300),
        last_polled_timetaken: 3.0,
    };
    store.update_device_poll(d.device_id, &down).await.unwrap();
    let got = store.device(d.device_id).await.unwrap().unwrap();
    assert_eq!(got.status, DeviceStatus::Down);
    assert_eq!(got.status_reason, "snmp");
    assert_eq!(got.sys_name.as_deref(), Some("sw1.lab"));
    assert_eq!(got.os, "linux");
    // Writing the same values again still finds the row (matched, not changed, rows).
    store.update_device_poll(d.device_id, &down).await.unwrap();

    let err = store
        .update_device_poll(d.device_id + 999, &down)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "device", .. }),
        "{err:?}"
    );
}

async fn device_remove_cascades(store: Store) {
    let a = store.add_device(&new_device("a")).await.unwrap();
    let b = store.add_device(&new_device("b")).await.unwrap();
    let sync = store
        .sync_ports(a.device_id, &[port_poll(1, "eth0", 0, 0, true)], t0())
        .await
        .unwrap();
    store
        .sync_ports(b.device_id, &[port_poll(1, "eth0", 0, 0, true)], t0())
        .await
        .unwrap();
    store
        .log_event(Some(a.device_id), "system", "added", Severity::Info, None)
        .await
        .unwrap();
    store
        .log_event(Some(b.device_id), "system", "added", Severity::Info, None)
        .await
        .unwrap();
    store
        .log_event(None, "system", "global", Severity::Notice, None)
        .await
        .unwrap();

    assert!(store.remove_device(a.device_id).await.unwrap());
    assert_eq!(store.device(a.device_id).await.unwrap(), None);
    assert!(store.ports(a.device_id).await.unwrap().is_empty());
    assert_eq!(
        store.port(sync.added[0]).await.unwrap(),
        None,
        "port row deleted, not only flagged"
    );
    assert!(store
        .events(Some(a.device_id), 10)
        .await
        .unwrap()
        .is_empty());
    // Other devices and global events are untouched.
    assert_eq!(store.ports(b.device_id).await.unwrap().len(), 1);
    assert_eq!(store.events(Some(b.device_id), 10).await.unwrap().len(), 1);
    assert_eq!(store.events(None, 10).await.unwrap().len(), 2);

    assert!(
        !store.remove_device(a.device_id).await.unwrap(),
        "second remove finds nothing"
    );
    // The hostname is free again.
    store.add_device(&new_device("a")).await.unwrap();
}

async fn ports_add_rename_remove(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    let first = [
        port_poll(1, "lo", 10, 10, true),
        port_poll(2, "eth0", 10, 10, true),
        port_poll(3, "eth1", 10, 10, true),
    ];
    let s1 = store.sync_ports(d.device_id, &first, t0()).await.unwrap();
    assert_eq!(s1.added.len(), 3);
    assert!(s1.removed.is_empty());
    assert_eq!(
        s1.ports.iter().map(|p| p.if_index).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let p2 = &s1.ports[1];
    assert_eq!(p2.if_name.as_deref(), Some("eth0"));
    assert_eq!(p2.if_speed, Some(1_000_000_000));
    assert_eq!(p2.if_phys_address.as_deref(), Some("0011223344ff"));
    assert_eq!(p2.counters, first[1].counters);
    assert_eq!(p2.in_octets_rate, None, "no rate after a single poll");
    assert_eq!(p2.poll_time, Some(t0()));
    assert!(!p2.deleted);
    assert_eq!(store.port(p2.port_id).await.unwrap().as_ref(), Some(p2));
    let eth1 = s1.ports[2].port_id;

    // eth0 renamed (same ifIndex), eth1 gone, eth2 new.
    let second = [
        port_poll(1, "lo", 20, 20, true),
        port_poll(2, "uplink0", 20, 20, true),
        port_poll(4, "eth2", 20, 20, true),
    ];
    let s2 = store
        .sync_ports(d.device_id, &second, t0() + Duration::seconds(300))
        .await
        .unwrap();
    assert_eq!(s2.removed, [eth1]);
    assert_eq!(s2.added.len(), 1);
    let listed: Vec<_> = s2.ports.iter().map(|p| (p.if_index, p.label())).collect();
    assert_eq!(
        listed,
        [
            (1, "lo".to_string()),
            (2, "uplink0".to_string()),
            (4, "eth2".to_string())
        ]
    );
    assert_eq!(s2.ports[1].port_id, p2.port_id, "renamed port keeps its id");
    assert_eq!(s2.ports[2].port_id, s2.added[0]);
    assert_eq!(store.ports(d.device_id).await.unwrap(), s2.ports);
    let gone = store.port(eth1).await.unwrap().unwrap();
    assert!(
        gone.deleted,
        "a vanished port is flagged, keeping its history"
    );

    // eth1 comes back: same row, reported as added, no longer deleted.
    let mut third = second.to_vec();
    third.push(port_poll(3, "eth1", 30, 30, true));
    let s3 = store
        .sync_ports(d.device_id, &third, t0() + Duration::seconds(600))
        .await
        .unwrap();
    assert_eq!(s3.added, [eth1]);
    assert!(s3.removed.is_empty());
    assert_eq!(s3.ports.len(), 4);
    let back = s3.ports.iter().find(|p| p.port_id == eth1).unwrap();
    assert!(!back.deleted);
    assert_eq!(
        back.in_octets_rate, None,
        "no rate across the time the port was gone"
    );
    let lo = &s3.ports[0];
    assert_eq!(
        lo.in_octets_rate,
        Some(0.0),
        "ports that stayed keep rating (20 -> 20)"
    );

    // An empty poll marks everything deleted.
    let s4 = store
        .sync_ports(d.device_id, &[], t0() + Duration::seconds(900))
        .await
        .unwrap();
    assert_eq!(s4.removed.len(), 4);
    assert!(s4.ports.is_empty());
}

async fn ports_rates(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 1_000, 5_000, true)],
            t0(),
        )
        .await
        .unwrap();
    let mut p = port_poll(1, "eth0", 31_000, 65_000, true);
    p.counters.in_errors = Some(600);
    let s = store
        .sync_ports(d.device_id, &[p.clone()], t0() + Duration::seconds(300))
        .await
        .unwrap();
    let port = &s.ports[0];
    assert_eq!(port.in_octets_rate, Some(100.0));
    assert_eq!(port.out_octets_rate, Some(200.0));
    assert_eq!(port.in_ucast_pkts_rate, Some(1.0)); // (310 - 10) / 300
    assert_eq!(port.out_ucast_pkts_rate, Some(2.0));
    assert_eq!(port.in_errors_rate, Some(2.0));
    assert_eq!(port.out_errors_rate, Some(0.0));
    assert_eq!(port.poll_period, Some(300.0));
    assert_eq!(port.poll_time, Some(t0() + Duration::seconds(300)));
    assert_eq!(
        port.counters, p.counters,
        "the new counters are the base of the next rate"
    );
    // Sub-second periods are kept.
    let s = store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 31_500, 65_000, true)],
            t0() + Duration::milliseconds(300_500),
        )
        .await
        .unwrap();
    assert_eq!(s.ports[0].poll_period, Some(0.5));
    assert_eq!(s.ports[0].in_octets_rate, Some(1000.0));
}

async fn ports_counter_backwards_gives_no_rate(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 9_000_000, 9_000_000, true)],
            t0(),
        )
        .await
        .unwrap();
    // Agent rebooted: HC counters restart near zero.
    let s = store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 1_000, 9_003_000, true)],
            t0() + Duration::seconds(300),
        )
        .await
        .unwrap();
    let p = &s.ports[0];
    assert_eq!(p.in_octets_rate, None, "counter went backwards: no rate");
    assert_eq!(p.in_ucast_pkts_rate, None);
    assert_eq!(
        p.out_octets_rate,
        Some(10.0),
        "the other direction still counts"
    );
    // The next poll rates from the new base again.
    let s = store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 4_000, 9_006_000, true)],
            t0() + Duration::seconds(600),
        )
        .await
        .unwrap();
    assert_eq!(s.ports[0].in_octets_rate, Some(10.0));
    // Switching from 32-bit to HC counters gives no rate either (different counters).
    let s = store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 7_000, 9_009_000, false)],
            t0() + Duration::seconds(900),
        )
        .await
        .unwrap();
    assert_eq!(s.ports[0].in_octets_rate, None);
    assert_eq!(s.ports[0].out_octets_rate, None);
}

async fn ports_counter32_wrap(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    let near_wrap = u64::from(u32::MAX) - 29_999;
    store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", near_wrap, near_wrap, false)],
            t0(),
        )
        .await
        .unwrap();
    // 30 000 octets to the wrap, then 30 000 more: 60 000 in 300 s.
    let s = store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", 30_000, near_wrap, false)],
            t0() + Duration::seconds(300),
        )
        .await
        .unwrap();
    assert_eq!(
        s.ports[0].in_octets_rate,
        Some(200.0),
        "32-bit wrap is a wrap"
    );
    assert_eq!(s.ports[0].out_octets_rate, Some(0.0));

    // A "wrap" faster than the link is an agent reboot: 4e9 -> 1000 in 300 s would be
    // ~983 kB/s, a 1 Mbit/s link moves 125 kB/s.
    let mut slow = port_poll(1, "eth0", 4_000_000_000, 0, false);
    slow.if_speed = Some(1_000_000);
    store
        .sync_ports(d.device_id, &[slow], t0() + Duration::seconds(600))
        .await
        .unwrap();
    let mut rebooted = port_poll(1, "eth0", 1_000, 0, false);
    rebooted.if_speed = Some(1_000_000);
    let s = store
        .sync_ports(d.device_id, &[rebooted], t0() + Duration::seconds(900))
        .await
        .unwrap();
    assert_eq!(s.ports[0].in_octets_rate, None);
}

async fn ports_counters_above_2_pow_63(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    let big = u64::MAX - 60_000;
    let mut p = port_poll(1, "eth0", big, 1 << 63, true);
    p.if_speed = Some(u64::MAX);
    let s = store
        .sync_ports(d.device_id, &[p.clone()], t0())
        .await
        .unwrap();
    assert_eq!(s.ports[0].counters.in_octets, Some(big));
    assert_eq!(s.ports[0].counters.out_octets, Some(1 << 63));
    assert_eq!(s.ports[0].if_speed, Some(u64::MAX));
    let s = store
        .sync_ports(
            d.device_id,
            &[port_poll(1, "eth0", u64::MAX, (1 << 63) + 3_000, true)],
            t0() + Duration::seconds(300),
        )
        .await
        .unwrap();
    assert_eq!(s.ports[0].counters.in_octets, Some(u64::MAX));
    assert_eq!(s.ports[0].in_octets_rate, Some(200.0));
    assert_eq!(s.ports[0].out_octets_rate, Some(10.0));
}

async fn ports_replayed_poll_is_idempotent(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    store
        .sync_ports(d.device_id, &[port_poll(1, "eth0", 0, 0, true)], t0())
        .await
        .unwrap();
    let at = t0() + Duration::seconds(300);
    let polled = [port_poll(1, "eth0", 30_000, 0, true)];
    let s1 = store.sync_ports(d.device_id, &polled, at).await.unwrap();
    // The same poll again (what a retried transaction whose commit landed does).
    let s2 = store.sync_ports(d.device_id, &polled, at).await.unwrap();
    assert_eq!(s1.ports, s2.ports);
    assert_eq!(s2.ports[0].in_octets_rate, Some(100.0));
    assert!(s2.added.is_empty() && s2.removed.is_empty());
}

/// `sync_ports` builds the rows of a steady poll in memory instead of reading them back:
/// whatever the poll, what it returns must be what the database now holds.
async fn ports_returned_are_the_stored_rows(store: Store) {
    let d = store.add_device(&new_device("sw1")).await.unwrap();
    let id = d.device_id;
    // Sub-microsecond times: the database keeps microseconds.
    let at = |s: i64| t0() + Duration::seconds(s) + Duration::nanoseconds(123_456_789);
    let mut gone_back = port_poll(3, "eth2", 5, 5, true);
    gone_back.if_alias = Some("uplink ".into());
    let mut counter32 = port_poll(2, "eth1", u64::from(u32::MAX) - 10, 0, false);
    counter32.if_speed = None;
    let mut big = port_poll(4, "eth3", u64::MAX - 1, 1 << 63, true);
    big.if_speed = Some(u64::MAX);
    let polls: Vec<(i64, Vec<PortPoll>)> = vec![
        // New ports (read back: their ids are new).
        (
            0,
            vec![
                port_poll(1, "eth0", 0, 0, true),
                counter32.clone(),
                gone_back.clone(),
                big,
            ],
        ),
        // Steady: rates, a 32-bit wrap, eth2 gone.
        (
            300,
            vec![
                port_poll(1, "eth0", 30_000, 9, true),
                port_poll(2, "eth1", 20, 0, false),
            ],
        ),
        // eth2 back from the dead, eth0 renamed and HC → 32-bit (no rate), eth1 speed known.
        (600, {
            let mut renamed = port_poll(1, "Gi0/0", 60_000, 18, false);
            renamed.if_descr = None;
            vec![renamed, port_poll(2, "eth1", 40, 0, false), gone_back]
        }),
        // Counters going backwards, a counter vanishing.
        (900, {
            let mut p = port_poll(2, "eth1", 10, 0, false);
            p.counters.out_octets = None;
            vec![
                port_poll(1, "Gi0/0", 1, 1, false),
                p,
                port_poll(3, "eth2", 50, 50, true),
            ]
        }),
    ];
    for (secs, polled) in polls {
        let s = store.sync_ports(id, &polled, at(secs)).await.unwrap();
        let stored = store.ports(id).await.unwrap();
        assert_eq!(
            s.ports, stored,
            "poll at +{secs} s: returned rows differ from stored"
        );
        assert_eq!(s.ports.len(), polled.len(), "poll at +{secs} s");
    }
    let eth1 = store
        .ports(id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.if_index == 2)
        .unwrap();
    assert_eq!(
        eth1.poll_time,
        Some(t0() + Duration::seconds(900) + Duration::microseconds(123_456))
    );
}

async fn ports_unknown_device(store: Store) {
    let err = store
        .sync_ports(424242, &[port_poll(1, "eth0", 0, 0, true)], t0())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "device", .. }),
        "{err:?}"
    );
    assert!(store.ports(424242).await.unwrap().is_empty());
    assert_eq!(store.port(424242).await.unwrap(), None);
}

async fn events_log_and_list(store: Store) {
    let a = store.add_device(&new_device("a")).await.unwrap();
    let b = store.add_device(&new_device("b")).await.unwrap();
    let sev = [
        Severity::Ok,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];
    for (i, s) in sev.iter().enumerate() {
        store
            .log_event(
                Some(a.device_id),
                "interface",
                &format!("event {i}"),
                *s,
                Some(i as i64),
            )
            .await
            .unwrap();
    }
    store
        .log_event(
            Some(b.device_id),
            "reboot",
            "b rebooted",
            Severity::Warning,
            None,
        )
        .await
        .unwrap();
    store
        .log_event(None, "system", "lookout started", Severity::Info, None)
        .await
        .unwrap();

    let of_a = store.events(Some(a.device_id), 100).await.unwrap();
    assert_eq!(of_a.len(), 6);
    let msgs: Vec<_> = of_a.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        ["event 5", "event 4", "event 3", "event 2", "event 1", "event 0"],
        "newest first"
    );
    for e in &of_a {
        let i: usize = e.message["event ".len()..].parse().unwrap();
        assert_eq!(e.severity, sev[i]);
        assert_eq!(e.reference, Some(i as i64));
        assert_eq!(e.kind, "interface");
        assert_eq!(e.device_id, Some(a.device_id));
        assert!(
            (Utc::now() - e.datetime).num_seconds().abs() < 60,
            "UTC now"
        );
    }
    let limited = store.events(Some(a.device_id), 2).await.unwrap();
    assert_eq!(limited, of_a[..2]);
    let all = store.events(None, 100).await.unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(all[0].message, "lookout started");
    assert_eq!(all[0].device_id, None);
    assert_eq!(
        store.events(Some(b.device_id), 100).await.unwrap()[0].kind,
        "reboot"
    );

    let err = store
        .log_event(
            Some(a.device_id + b.device_id + 100),
            "system",
            "x",
            Severity::Info,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "device", .. }),
        "{err:?}"
    );
}

async fn users_and_passwords(store: Store) {
    let admin = store
        .add_user("admin", "$argon2id$v=19$hash1", 10)
        .await
        .unwrap();
    assert_eq!(admin.username, "admin");
    assert_eq!(admin.level, 10);
    assert_eq!(admin.password_hash, "$argon2id$v=19$hash1");
    let err = store.add_user("admin", "x", 1).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Duplicate { what: "user", key } if key == "admin"),
        "{err:?}"
    );
    let bob = store.add_user("bob", "h", 1).await.unwrap();
    assert_ne!(bob.user_id, admin.user_id);
    assert_eq!(
        store.user(admin.user_id).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(
        store.user_by_username("bob").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.user_by_username("carol").await.unwrap(), None);
    assert_eq!(
        store.user(bob.user_id + admin.user_id + 10).await.unwrap(),
        None
    );

    store.set_password(bob.user_id, "new-hash").await.unwrap();
    assert_eq!(
        store
            .user(bob.user_id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "new-hash"
    );
    store.set_password(bob.user_id, "new-hash").await.unwrap(); // unchanged value: still found
    assert_eq!(
        store
            .user(admin.user_id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$v=19$hash1",
        "only bob changed"
    );
    let err = store.set_password(9999, "x").await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "user", .. }),
        "{err:?}"
    );
    // The hash is never serialised.
    assert!(!serde_json::to_string(&admin).unwrap().contains("argon2"));
}

async fn api_tokens(store: Store) {
    let admin = store.add_user("admin", "h", 10).await.unwrap();
    let bob = store.add_user("bob", "h", 1).await.unwrap();
    let t1 = "a".repeat(64);
    let t2 = "b".repeat(64);
    store
        .add_api_token(admin.user_id, &t1, "cli")
        .await
        .unwrap();
    store.add_api_token(bob.user_id, &t2, "").await.unwrap();
    assert_eq!(
        store.user_by_api_token(&t1).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(store.user_by_api_token(&t2).await.unwrap(), Some(bob));
    assert_eq!(
        store.user_by_api_token(&"c".repeat(64)).await.unwrap(),
        None
    );
    let err = store
        .add_api_token(admin.user_id, &t1, "again")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Duplicate {
                what: "api token",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .add_api_token(9999, &"d".repeat(64), "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "user", .. }),
        "{err:?}"
    );
}

/// Many writers at once on one store: SQLite serialises them (busy timeout), MariaDB
/// provokes deadlocks (gap locks of the first `sync_ports` of a device) that the store
/// retries. Every call must succeed and no row may be duplicated.
async fn concurrent_writers(store: Store) {
    let d = store.add_device(&new_device("shared")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.add_device(&new_device(&format!("dev{i:02}")))
                .await
                .map(|_| ())
        }));
        let s = store.clone();
        let id = d.device_id;
        tasks.push(tokio::spawn(async move {
            let polled: Vec<_> = (1..=8)
                .map(|k| port_poll(k, &format!("eth{k}"), 1000 * i as u64, 0, true))
                .collect();
            s.sync_ports(id, &polled, t0() + Duration::seconds(i))
                .await
                .map(|_| ())
        }));
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.log_event(
                Some(id),
                "poller",
                &format!("poll {i}"),
                Severity::Info,
                None,
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.devices().await.unwrap().len(), 17);
    let ports = store.ports(d.device_id).await.unwrap();
    assert_eq!(
        ports.iter().map(|p| p.if_index).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        store.events(Some(d.device_id), 100).await.unwrap().len(),
        16
    );
}

/// Distributed polling: a claim token registers only if it is newer than the registered
/// one, results land only under the registered token (device row and poll log in one
/// transaction), a stale writer gets `Fenced` and writes nothing.
async fn poll_fencing(store: Store) {
    let d = store.add_device(&new_device("fenced")).await.unwrap();
    let id = d.device_id;
    assert_eq!(store.poll_token(id).await.unwrap(), None);
    assert!(store.register_poll_token(id, 100).await.unwrap());
    // The same claim again (a retried transaction) is fine; an older one is refused.
    assert!(store.register_poll_token(id, 100).await.unwrap());
    assert!(!store.register_poll_token(id, 99).await.unwrap());
    assert_eq!(store.poll_token(id).await.unwrap(), Some(100));
    assert!(matches!(
        store.register_poll_token(id + 999, 1).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));

    let update = |secs: i64| DevicePollUpdate {
        sys_name: Some(format!("poll-{secs}")),
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: None,
        os: None,
        hardware: None,
        version: None,
        serial: None,
        uptime: None,
        uptime_source: None,
        status: DeviceStatus::Up,
        status_reason: String::new(),
        last_polled: t0() + Duration::seconds(secs),
        last_polled_timetaken: 0.5,
    };
    let fence = |node: &str, token: u64| PollFence {
        node_id: node.into(),
        token,
        started: Utc::now(),
    };
    let since = Utc::now() - Duration::seconds(5);

    // Node a (token 100) is overtaken by node b (token 200) mid-poll.
    let a = fence("a", 100);
    assert!(store.register_poll_token(id, 200).await.unwrap());
    let err = store
        .update_device_poll_fenced(id, &update(1), &a)
        .await
        .unwrap_err();
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
    assert_eq!(store.device(id).await.unwrap().unwrap().sys_name, None);

    let b = fence("b", 200);
    store
        .update_device_poll_fenced(id, &update(2), &b)
        .await
        .unwrap();
    let got = store.device(id).await.unwrap().unwrap();
    assert_eq!(got.sys_name.as_deref(), Some("poll-2"));
    assert_eq!(got.last_polled, Some(t0() + Duration::seconds(2)));
    // Writing again under the same token (a retry) logs the poll once.
    store
        .update_device_poll_fenced(id, &update(2), &b)
        .await
        .unwrap();
    store
        .log_poll(&PollLogEntry {
            device_id: id,
            node_id: "a".into(),
            token: 100,
            started: a.started,
            finished: Utc::now(),
            status: PollOutcome::Stale,
            duration: 0.7,
        })
        .await
        .unwrap();

    let log = store.poll_log(since).await.unwrap();
    let mut summary: Vec<_> = log
        .iter()
        .map(|e| (e.node_id.as_str(), e.token, e.status))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![("a", 100, PollOutcome::Stale), ("b", 200, PollOutcome::Ok)]
    );
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|e| e.device_id == id));
    assert_eq!(log.iter().find(|e| e.node_id == "b").unwrap().duration, 0.5);
    assert!(store
        .poll_log(Utc::now() + Duration::seconds(60))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.prune_poll_log(since).await.unwrap(), 0);
    assert_eq!(
        store
            .prune_poll_log(Utc::now() + Duration::seconds(60))
            .await
            .unwrap(),
        2
    );
    store
        .update_device_poll_fenced(id, &update(3), &fence("b", 200))
        .await
        .unwrap();
    // Removing the device removes its poll log.
    assert!(store.remove_device(id).await.unwrap());
    assert!(store.poll_log(since).await.unwrap().is_empty());
}

async fn device_settings_change_keeps_id_and_ports(store: Store) {
    let d = store
        .add_device(&new_device("edit.example.net"))
        .await
        .unwrap();
    let port = PortPoll {
        if_index: 3,
        if_name: Some("ge-0/0/3".into()),
        if_descr: None,
        if_alias: None,
        if_type: None,
        if_mtu: None,
        if_speed: None,
        if_phys_address: None,
        if_admin_status: None,
        if_oper_status: None,
        counters: PortCounters::default(),
    };
    let before = store
        .sync_ports(d.device_id, &[port], Utc::now())
        .await
        .unwrap();
    let snmp = SnmpConfig {
        version: SnmpVersion::V3,
        port: 1161,
        community: String::new(),
        timeout_ms: 2500,
        retries: 1,
        v3: Some(SnmpV3Config {
            security_level: "authPriv".into(),
            auth_user: "ops".into(),
            auth_protocol: "SHA-256".into(),
            auth_password: "auth secret".into(),
            priv_protocol: "AES".into(),
            priv_password: "priv secret".into(),
        }),
    };
    let after = store
        .update_device_settings(d.device_id, &snmp, 3, true)
        .await
        .unwrap();
    assert_eq!(after.device_id, d.device_id);
    assert_eq!(after.hostname, "edit.example.net");
    assert_eq!(after.snmp, snmp);
    assert_eq!(after.poller_group, 3);
    assert!(after.disabled);
    // The same values again: not "unknown device" (MySQL counts 0 changed rows).
    store
        .update_device_settings(d.device_id, &snmp, 3, true)
        .await
        .unwrap();
    let ports = store.ports(d.device_id).await.unwrap();
    assert_eq!(ports[0].port_id, before.ports[0].port_id, "port ids kept");
    assert!(matches!(
        store.update_device_settings(999_999, &snmp, 0, false).await,
        Err(StoreError::NotFound { what: "device", .. })
    ));
}
