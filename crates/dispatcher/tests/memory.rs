//! `run_cluster` in one process on the in-process coordination backend (what a single
//! node runs): a device of a group this node serves is polled every interval under a
//! registered fencing token and logged; a device of another group is never polled; a
//! claim token older than the registered one cannot write. SQLite store in a temp dir,
//! local RRD files; the devices point at a loopback UDP port nobody answers, so each
//! poll is quick and marks the device down (fping of 127.0.0.1 still runs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use lookout_coord::Coord;
use lookout_core::{NewDevice, SnmpConfig};
use lookout_dispatcher::{run_cluster, ClusterConfig};
use lookout_poller::{Poller, PollerConfig};
use lookout_store::{PollOutcome, Store, StoreConfig};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};

fn unanswered_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_polls_its_groups_under_fencing_tokens() {
    assert!(
        std::path::Path::new("/usr/bin/fping").exists(),
        "fping missing: apt-get install fping"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.path().join("lookout.sqlite"),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let snmp = SnmpConfig {
        port: unanswered_udp_port(),
        timeout_ms: 200,
        retries: 0,
        ..SnmpConfig::default()
    };
    let mine = store
        .add_device(&NewDevice {
            hostname: "127.0.0.1".into(),
            snmp: snmp.clone(),
            poller_group: 0,
        })
        .await
        .unwrap();
    let other = store
        .add_device(&NewDevice {
            hostname: "127.0.0.2".into(),
            snmp,
            poller_group: 5,
        })
        .await
        .unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().join("rrd"),
    })
    .await
    .unwrap();
    let poller = Poller::new(
        store.clone(),
        ts,
        PollerConfig {
            step_secs: 4,
            ..PollerConfig::default()
        },
    )
    .await
    .unwrap();
    let coord = Coord::memory();
    let mut cfg = ClusterConfig::new("solo", 4, 2);
    cfg.groups = vec![0];
    let (tx, rx) = tokio::sync::watch::channel(false);
    let since = Utc::now() - chrono::Duration::seconds(1);
    let task = tokio::spawn(run_cluster(
        store.clone(),
        Some(poller),
        coord.clone(),
        cfg,
        rx,
    ));
    tokio::time::sleep(Duration::from_secs(11)).await;

    let nodes = coord.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].alive);
    assert_eq!(nodes[0].info.groups, vec![0]);
    assert_eq!(
        coord.current_master().await.unwrap().map(|m| m.node_id),
        Some("solo".to_string())
    );
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run_cluster stops on shutdown")
        .unwrap();
    assert_eq!(
        coord.current_master().await.unwrap(),
        None,
        "the master lease is released on shutdown"
    );

    let log = store.poll_log(since).await.unwrap();
    let ok: Vec<_> = log
        .iter()
        .filter(|e| e.device_id == mine.device_id && e.status == PollOutcome::Ok)
        .collect();
    // Due at 0, 4 and 8 s within 11 s (the first poll right away).
    assert!(
        (2..=3).contains(&ok.len()),
        "polls of the group-0 device: {log:?}"
    );
    for w in ok.windows(2) {
        let gap = (w[1].started - w[0].started).num_milliseconds();
        assert!(gap >= 2000, "polled twice within half an interval: {log:?}");
        assert!(w[1].token > w[0].token, "tokens grow: {log:?}");
    }
    assert!(log.iter().all(|e| e.device_id != other.device_id));
    let d = store.device(mine.device_id).await.unwrap().unwrap();
    assert!(d.last_polled.is_some());
    assert_eq!(
        store.poll_token(mine.device_id).await.unwrap(),
        Some(ok.last().unwrap().token)
    );
    assert_eq!(store.poll_token(other.device_id).await.unwrap(), None);
    assert!(store
        .device(other.device_id)
        .await
        .unwrap()
        .unwrap()
        .last_polled
        .is_none());
}
