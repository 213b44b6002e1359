//! Interop tests of SNMPv1/v2c against a real net-snmp `snmpd` started by each test on its
//! own loopback port: gets, walks compared varbind by varbind with `snmpbulkwalk`/`snmpwalk`,
//! table walks, timeouts and wrong communities.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{netsnmp, parse_netsnmp, Snmpd};
use lookout_core::SnmpVersion;
use lookout_snmp::{Oid, SnmpClient, SnmpError, Value, Version};

fn oid(s: &str) -> Oid {
    Oid::parse(s).unwrap()
}

#[tokio::test]
async fn v2c_get_system_scalars() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap();
    assert_eq!(s.version(), Version::V2c);
    let vbs = s
        .get(&[
            oid("1.3.6.1.2.1.1.1.0"),
            oid("1.3.6.1.2.1.1.2.0"),
            oid("1.3.6.1.2.1.1.3.0"),
            oid("1.3.6.1.2.1.1.5.0"),
            oid("1.3.6.1.2.1.1.6.0"),
            oid("1.3.6.1.2.1.1.99.0"),
        ])
        .await
        .unwrap();
    assert_eq!(vbs.len(), 6);
    assert_eq!(vbs[0].oid, oid("1.3.6.1.2.1.1.1.0"));
    assert!(matches!(&vbs[0].value, Value::OctetString(b) if !b.is_empty()));
    assert!(vbs[1]
        .value
        .as_oid()
        .unwrap()
        .starts_with(&oid("1.3.6.1.4.1.8072")));
    assert!(matches!(vbs[2].value, Value::TimeTicks(_)));
    assert_eq!(vbs[3].value.as_str_lossy(), "probe-snmpd");
    assert_eq!(vbs[4].value.as_str_lossy(), "Rack 1, \"lab\"");
    assert_eq!(vbs[5].value, Value::NoSuchObject);
    // The same rendering as net-snmp's snmpget.
    let ns = parse_netsnmp(&netsnmp(
        "snmpget",
        &[
            "-v2c",
            "-c",
            "public",
            "-On",
            "-Oe",
            &agent.addr.to_string(),
            "1.3.6.1.2.1.1.5.0",
            "1.3.6.1.2.1.1.6.0",
        ],
    ));
    assert_eq!(ns[0].1, vbs[3].value.to_string());
    assert_eq!(ns[1].1, vbs[4].value.to_string());
    let st = client.stats();
    assert_eq!(st.responses, 1);
    assert_eq!(st.requests_sent, 1);
}

#[tokio::test]
async fn v1_get_walk_and_errors() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V1, "public"))
        .unwrap();
    let vbs = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap();
    assert_eq!(vbs[0].value.as_str_lossy(), "probe-snmpd");
    // v1 has no exception values: a missing object is error-status noSuchName at index 2.
    match s
        .get(&[oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.1.99.0")])
        .await
    {
        Err(SnmpError::ErrorStatus {
            status: 2,
            index: 2,
        }) => {}
        other => panic!("expected noSuchName, got {other:?}"),
    }
    assert!(matches!(
        s.get_bulk(0, 5, &[oid("1.3.6.1.2.1.1")]).await,
        Err(SnmpError::BadConfig(_))
    ));
    // GETNEXT walk of system equals snmpwalk -v1 (one before ours, one after: a value both
    // saw alike, sysUpTime included, was that value during ours too).
    let addr = agent.addr.to_string();
    let args = [
        "-v1",
        "-c",
        "public",
        "-On",
        "-Oe",
        addr.as_str(),
        "1.3.6.1.2.1.1",
    ];
    let before = parse_netsnmp(&netsnmp("snmpwalk", &args));
    let ours = s.walk(&oid("1.3.6.1.2.1.1")).await.unwrap();
    let after = parse_netsnmp(&netsnmp("snmpwalk", &args));
    compare_walks(&ours, &[before, after], &[]);
    // Walking past the end of the MIB ends cleanly (v1 noSuchName on GETNEXT).
    let tail = s.walk(&oid("1.3.6.1.6.3.999")).await.unwrap();
    assert!(tail.is_empty());
}

/// Compares our walk with one or more net-snmp walks done around it: every OID present in all
/// of theirs must be in ours and vice versa (except under `volatile` subtrees, which hold the
/// tools' own sockets), the type always matches, and the value matches wherever net-snmp
/// saw the same value twice.
fn compare_walks(
    ours: &[lookout_snmp::VarBind],
    theirs: &[Vec<(String, String)>],
    volatile: &[&str],
) {
    let maps: Vec<BTreeMap<String, String>> =
        theirs.iter().map(|t| t.iter().cloned().collect()).collect();
    let is_volatile = |o: &str| volatile.iter().any(|p| o.starts_with(p));
    let ours_map: BTreeMap<String, String> = ours
        .iter()
        .map(|vb| (vb.oid.to_string(), vb.value.to_string()))
        .collect();
    assert_eq!(ours_map.len(), ours.len(), "duplicate OIDs in our walk");
    // Order: strictly increasing like the agent's.
    for w in ours.windows(2) {
        assert!(w[0].oid < w[1].oid, "walk not increasing at {}", w[1].oid);
    }
    let in_all: BTreeSet<&String> = maps[0]
        .keys()
        .filter(|k| maps.iter().all(|m| m.contains_key(*k)))
        .collect();
    let mut exact = 0;
    for k in &in_all {
        if is_volatile(k) {
            continue;
        }
        let mine = ours_map
            .get(*k)
            .unwrap_or_else(|| panic!("our walk lacks {k}"));
        let vals: BTreeSet<&String> = maps.iter().map(|m| &m[*k]).collect();
        if vals.len() == 1 {
            assert_eq!(mine, *vals.iter().next().unwrap(), "value of {k}");
            exact += 1;
        } else {
            let ty = |s: &str| s.split(':').next().unwrap_or("").to_string();
            assert_eq!(ty(mine), ty(vals.iter().next().unwrap()), "type of {k}");
        }
    }
    for k in ours_map.keys() {
        if !is_volatile(k) {
            assert!(
                maps.iter().any(|m| m.contains_key(k)),
                "our walk has {k}, net-snmp's has not"
            );
        }
    }
    // Counters move with other loopback traffic between the runs; static objects (names,
    // types, addresses, OIDs, installed software ...) must have matched in numbers.
    eprintln!("{exact} of {} varbinds matched exactly", in_all.len());
    assert!(
        exact * 5 >= in_all.len(),
        "too few exact matches: {exact} of {}",
        in_all.len()
    );
}

#[tokio::test]
async fn v2c_bulk_walk_of_mib2_matches_snmpbulkwalk() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap()
        .with_max_repetitions(40);
    let addr = agent.addr.to_string();
    let args = [
        "-v2c",
        "-c",
        "public",
        "-On",
        "-Oe",
        addr.as_str(),
        "1.3.6.1.2.1",
    ];
    let before = parse_netsnmp(&netsnmp("snmpbulkwalk", &args));
    let ours = s.walk(&oid("1.3.6.1.2.1")).await.unwrap();
    let after = parse_netsnmp(&netsnmp("snmpbulkwalk", &args));
    assert!(ours.len() > 300, "only {} varbinds", ours.len());
    // UDP/TCP endpoint tables list the tools' own sockets, which differ per run.
    compare_walks(
        &ours,
        &[before, after],
        &[
            "1.3.6.1.2.1.7.5.",
            "1.3.6.1.2.1.7.7.",
            "1.3.6.1.2.1.6.13.",
            "1.3.6.1.2.1.6.19.",
            "1.3.6.1.2.1.6.20.",
            // hrSWRunTable / hrSWRunPerfTable: processes (parallel tests) come and go.
            "1.3.6.1.2.1.25.4.2.",
            "1.3.6.1.2.1.25.5.1.",
        ],
    );
    let st = client.stats();
    // A retry under load makes the agent answer twice; the late twin is an unknown id.
    assert_eq!(st.dropped_wrong_source, 0);
    assert!(st.dropped_unknown_id <= st.retries, "{st:?}");
    eprintln!(
        "walked {} varbinds of 1.3.6.1.2.1 in {} requests",
        ours.len(),
        st.requests_sent
    );
}

#[tokio::test]
async fn table_walk_rows_keyed_by_index() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    for version in [SnmpVersion::V1, SnmpVersion::V2c] {
        let s = client
            .session(agent.addr, &agent.cfg(version, "public"))
            .unwrap()
            .with_max_repetitions(7);
        // ifIndex, ifDescr, ifType, ifPhysAddress, ifInOctets, and a column snmpd lacks.
        let cols = [
            oid("1.3.6.1.2.1.2.2.1.1"),
            oid("1.3.6.1.2.1.2.2.1.2"),
            oid("1.3.6.1.2.1.2.2.1.3"),
            oid("1.3.6.1.2.1.2.2.1.6"),
            oid("1.3.6.1.2.1.2.2.1.10"),
            oid("1.3.6.1.2.1.2.2.1.99"),
        ];
        let rows = s.walk_columns(&cols).await.unwrap();
        let descr = parse_netsnmp(&netsnmp(
            "snmpwalk",
            &[
                "-v2c",
                "-c",
                "public",
                "-On",
                &agent.addr.to_string(),
                "1.3.6.1.2.1.2.2.1.2",
            ],
        ));
        assert!(!descr.is_empty());
        assert_eq!(rows.len(), descr.len(), "{version}: one row per interface");
        for (o, val) in &descr {
            let idx = Oid::parse(o)
                .unwrap()
                .suffix_after(&cols[1])
                .unwrap()
                .to_vec();
            let row = &rows[&Oid::new(&idx)];
            assert_eq!(&row[1].as_ref().unwrap().to_string(), val);
            assert_eq!(row[0].as_ref().unwrap().as_u64(), Some(u64::from(idx[0])));
            assert!(matches!(row[4], Some(Value::Counter32(_))));
            assert!(row[5].is_none());
        }
        // The same columns walked one by one give the same rows.
        for (i, c) in cols.iter().enumerate().take(4) {
            let w = s.walk(c).await.unwrap();
            let from_rows = rows.values().filter(|r| r[i].is_some()).count();
            assert_eq!(w.len(), from_rows, "column {c}");
        }
    }
}

#[tokio::test]
async fn timeout_when_nothing_listens() {
    // A bound socket that never answers: the port is certainly ours and silent.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let client = SnmpClient::bind_v4().await.unwrap();
    let mut cfg = lookout_core::SnmpConfig {
        port: addr.port(),
        timeout_ms: 200,
        retries: 2,
        ..Default::default()
    };
    let s = client.session(addr, &cfg).unwrap();
    let t0 = Instant::now();
    let r = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await;
    let took = t0.elapsed();
    assert!(
        matches!(r, Err(SnmpError::Timeout { attempts: 3, .. })),
        "{r:?}"
    );
    assert!(
        took >= Duration::from_millis(590) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    // Three datagrams actually went out.
    let mut buf = [0u8; 1500];
    silent.set_nonblocking(true).unwrap();
    let mut n = 0;
    while silent.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    assert_eq!(n, 3);
    let st = client.stats();
    assert_eq!((st.requests_sent, st.retries, st.timeouts), (3, 2, 1));
    // A port with no socket at all (ICMP port unreachable) is a timeout too.
    drop(silent);
    cfg.retries = 0;
    let s = client.session(addr, &cfg).unwrap();
    assert!(s
        .get(&[oid("1.3.6.1.2.1.1.5.0")])
        .await
        .unwrap_err()
        .is_timeout());
}

#[tokio::test]
async fn wrong_community_is_a_timeout_within_the_configured_time() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let mut cfg = agent.cfg(SnmpVersion::V2c, "not-the-community");
    cfg.timeout_ms = 300;
    cfg.retries = 1;
    let s = client.session(agent.addr, &cfg).unwrap();
    let t0 = Instant::now();
    let e = s.walk(&oid("1.3.6.1.2.1.1")).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let took = t0.elapsed();
    // 2 x 300 ms, plus slack for a loaded machine.
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // Meanwhile the right community works on the same client.
    let ok = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap();
    assert_eq!(ok.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn many_concurrent_requests_share_one_socket() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let o = Oid::from([1, 3, 6, 1, 2, 1, 1, 1 + (i % 7), 0]);
            s.get(&[o]).await
        }));
    }
    for t in tasks {
        let vbs = t.await.unwrap().unwrap();
        assert_eq!(vbs.len(), 1);
    }
    assert_eq!(client.stats().responses, 200);
}

#[tokio::test]
async fn set_with_write_community() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "private"))
        .unwrap();
    // sysName was fixed in snmpd.conf, so snmpd refuses to change it: notWritable (17).
    let e = s
        .set(&[lookout_snmp::VarBind::new(
            oid("1.3.6.1.2.1.1.5.0"),
            Value::OctetString(b"x".to_vec()),
        )])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SnmpError::ErrorStatus {
                status: 17,
                index: 1
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn ipv6_agent_over_a_v6_socket() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v6().await.unwrap();
    let addr: std::net::SocketAddr = format!("[::1]:{}", agent.addr.port()).parse().unwrap();
    let s = client
        .session(addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap();
    let vbs = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap();
    assert_eq!(vbs[0].value.as_str_lossy(), "probe-snmpd");
    let walked = s.walk(&oid("1.3.6.1.2.1.1")).await.unwrap();
    assert!(walked.len() >= 7);
    // An IPv4 agent on the IPv6 socket is a configuration error, not a timeout.
    let e = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap_err();
    assert!(matches!(e, SnmpError::BadConfig(_)), "{e}");
}

#[tokio::test]
async fn opaque_float_from_ucd_load_average() {
    // UCD-SNMP-MIB laLoadFloat is an Opaque-wrapped float in net-snmp.
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap();
    let vbs = s.get(&[oid("1.3.6.1.4.1.2021.10.1.6.1")]).await.unwrap();
    let Value::Float(f) = vbs[0].value else {
        panic!("not a float: {:?}", vbs[0].value)
    };
    assert!((0.0..1000.0).contains(&f));
    assert_eq!(vbs[0].value.as_f64(), Some(f64::from(f)));
    let ns = parse_netsnmp(&netsnmp(
        "snmpget",
        &[
            "-v2c",
            "-c",
            "public",
            "-On",
            &agent.addr.to_string(),
            "1.3.6.1.4.1.2021.10.1.6.1",
        ],
    ));
    assert!(ns[0].1.starts_with("Opaque: Float: "), "{}", ns[0].1);
    assert!(vbs[0].value.to_string().starts_with("Opaque: Float: "));
}
