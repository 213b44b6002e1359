//! Discovery scheduled by the master, and queue lag as back-pressure, on the in-process
//! coordination backend with SQLite and an in-process `lookout-snmpsim` agent on
//! loopback (synthetic IF-MIB devices, one per UDP port):
//!
//! * a device never discovered is queued as a discovery (`Work::Discover`) at its first
//!   poll and gets `last_discovered`; its later polls and those of a device discovered
//!   recently are plain polls (`last_discovered` does not move);
//! * a poller in `DiscoveryMode::Scheduled` does not discover by itself;
//! * devices queued and not claimed for longer than an interval make the master report
//!   the group as behind, with its queue lag.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use lookout_coord::{Coord, NodeInfo};
use lookout_core::{NewDevice, SnmpConfig};
use lookout_dispatcher::{run_cluster, ClusterConfig, Roles};
use lookout_poller::{DiscoveryMode, Module, ModuleSet, Poller, PollerConfig};
use lookout_snmpsim::{Config as SimConfig, Simulator};
use lookout_store::{PollOutcome, Store, StoreConfig};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};

async fn open(dir: &std::path::Path) -> (Store, TimeSeries) {
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.join("lookout.sqlite"),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.join("rrd"),
    })
    .await
    .unwrap();
    (store, ts)
}

async fn poller(store: &Store, ts: &TimeSeries, discovery: DiscoveryMode) -> Poller {
    let mut modules = ModuleSet::all();
    modules.set(Module::Availability, false);
    Poller::new(
        store.clone(),
        ts.clone(),
        PollerConfig {
            step_secs: 4,
            modules,
            discovery,
            ..PollerConfig::default()
        },
    )
    .await
    .unwrap()
}

fn stat(n: &NodeInfo, k: &str) -> f64 {
    n.stats.get(k).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_queues_discoveries_and_scheduled_pollers_do_not_discover_alone() {
    // One agent per loopback address: hostnames are unique in the inventory.
    let sims: Vec<_> = (1..=3)
        .map(|i| {
            Simulator::start(SimConfig {
                listen: std::net::SocketAddr::from(([127, 0, 3, i], 0)),
                synthetic_ifmib: Some(2),
                ..SimConfig::default()
            })
            .unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (store, ts) = open(dir.path()).await;
    let mut ids = Vec::new();
    for (i, sim) in sims.iter().enumerate() {
        let d = store
            .add_device(&NewDevice {
                hostname: sim.addr(0).ip().to_string(),
                snmp: SnmpConfig {
                    port: sim.addr(0).port(),
                    timeout_ms: 1000,
                    retries: 1,
                    ..SnmpConfig::default()
                },
                poller_group: 0,
            })
            .await
            .unwrap_or_else(|_| panic!("device {i}"));
        ids.push(d.device_id);
    }
    let (fresh, recent, alone) = (ids[0], ids[1], ids[2]);
    let scheduled = poller(&store, &ts, DiscoveryMode::Scheduled).await;

    // Scheduled mode: a plain poll of a never-discovered device does not discover it;
    // an explicit discovery does.
    let d = store.device(alone).await.unwrap().unwrap();
    let r = scheduled.poll(&d).await.unwrap();
    assert_eq!(r.status, lookout_core::DeviceStatus::Up, "{r:?}");
    assert!(!r.discovered);
    assert!(store
        .device(alone)
        .await
        .unwrap()
        .unwrap()
        .last_discovered
        .is_none());
    // ... while an Inline poller (standalone `lookout device poll`) discovers it at once.
    let inline = poller(&store, &ts, DiscoveryMode::Inline).await;
    assert!(inline.poll(&d).await.unwrap().discovered);
    // `recent` was discovered moments ago (as by a former master).
    let d = store.device(recent).await.unwrap().unwrap();
    assert!(scheduled.discover(&d).await.unwrap().discovered);
    let recent_at = store
        .device(recent)
        .await
        .unwrap()
        .unwrap()
        .last_discovered
        .unwrap();
    assert!(store.remove_device(alone).await.unwrap());

    let coord = Coord::memory();
    let mut cfg = ClusterConfig::new("solo", 4, 2);
    cfg.discovery_interval = Duration::from_secs(3600);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let since = Utc::now();
    let task = tokio::spawn(run_cluster(
        store.clone(),
        Some(scheduled),
        coord.clone(),
        cfg,
        rx,
    ));
    tokio::time::sleep(Duration::from_secs(11)).await;
    let nodes = coord.nodes().await.unwrap();
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("run_cluster stops on shutdown")
        .unwrap();

    let log = store.poll_log(since).await.unwrap();
    for id in [fresh, recent] {
        let ok = log
            .iter()
            .filter(|e| e.device_id == id && e.status == PollOutcome::Ok)
            .count();
        assert!(ok >= 2, "device {id} polled under claims: {log:?}");
    }
    let f = store.device(fresh).await.unwrap().unwrap();
    let first = log
        .iter()
        .find(|e| e.device_id == fresh && e.status == PollOutcome::Ok)
        .unwrap();
    let disc = f
        .last_discovered
        .expect("the never-discovered device was discovered");
    // Discovered by its first (claimed) poll, not again by the later ones.
    assert!(
        disc >= first.started && disc <= first.finished,
        "discovered at {disc}, first poll {first:?}, polls {log:?}"
    );
    assert_eq!(
        store.device(recent).await.unwrap().unwrap().last_discovered,
        Some(recent_at),
        "a device discovered moments ago is only polled"
    );
    let stats = &nodes[0].info;
    assert_eq!(stat(stats, "discoveries_queued"), 1.0, "{:?}", stats.stats);
    assert_eq!(stat(stats, "group.0.discoveries"), 1.0, "{:?}", stats.stats);
    assert_eq!(stat(stats, "discoveries_waiting"), 0.0);
    let next = stat(stats, "discovery_next_secs");
    assert!(
        next > 3000.0 && next <= 3600.0,
        "next discovery in {next} s"
    );
    assert!(stat(stats, "group.0.done") >= 4.0);
    drop(sims);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_waiting_in_the_queue_for_an_interval_make_the_group_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _ts) = open(dir.path()).await;
    for i in 0..3 {
        store
            .add_device(&NewDevice {
                hostname: format!("127.0.2.{}", i + 1),
                snmp: SnmpConfig::default(),
                poller_group: 3,
            })
            .await
            .unwrap();
    }
    // A master and a poller of group 3 that is alive but polls nothing (hung): every device
    // gets queued once and waits. (With no poller for the group at all, the group is
    // reported as unserved instead: tests/unserved.rs.)
    let coord = Coord::memory();
    let hung = NodeInfo {
        node_id: "hung-poller".into(),
        hostname: "hung".into(),
        version: "test".into(),
        roles: vec!["poller".into()],
        groups: vec![3],
        workers: 1,
        started_at: Some(Utc::now()),
        stats: Default::default(),
    };
    let beat = {
        let coord = coord.clone();
        tokio::spawn(async move {
            loop {
                coord
                    .heartbeat(&hung, Duration::from_secs(3))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let mut cfg = ClusterConfig::new("master-only", 2, 0);
    cfg.roles = Roles::parse("dispatcher").unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_cluster(store.clone(), None, coord.clone(), cfg, rx));
    let mut seen = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let nodes = coord.nodes().await.unwrap();
        if let Some(n) = nodes.iter().find(|n| n.info.node_id == "master-only") {
            if stat(&n.info, "group.3.behind") >= 3.0 {
                seen = Some(n.info.clone());
                break;
            }
        }
    }
    let depths = coord.queue_depths().await.unwrap();
    beat.abort();
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let info = seen.expect("the master reports the 3 devices of group 3 as behind within 10 s");
    assert_eq!(stat(&info, "group.3.behind"), 3.0, "{:?}", info.stats);
    assert!(
        stat(&info, "group.3.queue_lag_secs") >= 2.0,
        "{:?}",
        info.stats
    );
    assert!(
        stat(&info, "group.3.behind_max_secs") >= 2.0,
        "{:?}",
        info.stats
    );
    assert_eq!(stat(&info, "behind"), 3.0);
    assert_eq!((depths[0].group, depths[0].queued), (3, 3));
}
