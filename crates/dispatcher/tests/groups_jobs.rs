//! `run_cluster` on the in-process coordination backend with SQLite: per-group worker
//! limits (`POLLER_GROUP_WORKERS`), back-pressure ("poller is behind" per group, warned
//! once per interval), and the master-only job table (run only by the lease holder).
//! Devices point at loopback UDP ports nobody answers, so a poll takes its SNMP timeout
//! (a slow device) and marks the device down; availability (fping) is off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use lookout_coord::{Coord, NodeInfo};
use lookout_core::{NewDevice, SnmpConfig};
use lookout_dispatcher::{run_cluster, ClusterConfig};
use lookout_poller::{Module, ModuleSet, Poller, PollerConfig};
use lookout_store::{Store, StoreConfig};
use lookout_testkit::logs::Captured;
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};

fn unanswered_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Log lines written while the test runs (the warn! of the dispatcher).
async fn setup(dir: &std::path::Path, groups: &[(i32, usize)], timeout_ms: u32) -> (Store, Poller) {
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.join("lookout.sqlite"),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let mut n = 0;
    for (group, count) in groups {
        for _ in 0..*count {
            n += 1;
            store
                .add_device(&NewDevice {
                    hostname: format!("127.0.1.{n}"),
                    snmp: SnmpConfig {
                        port: unanswered_udp_port(),
                        timeout_ms,
                        retries: 0,
                        ..SnmpConfig::default()
                    },
                    poller_group: *group,
                })
                .await
                .unwrap();
        }
    }
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.join("rrd"),
    })
    .await
    .unwrap();
    let mut modules = ModuleSet::all();
    modules.set(Module::Availability, false);
    let poller = Poller::new(
        store.clone(),
        ts,
        PollerConfig {
            step_secs: 4,
            modules,
            ..PollerConfig::default()
        },
    )
    .await
    .unwrap();
    (store, poller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_worker_limits_and_behind_per_group() {
    // Global: the dispatcher's tasks run on the runtime's worker threads. The other test
    // of this file logs no "poller is behind".
    let log = Captured::install_global(tracing::Level::WARN);
    let dir = tempfile::tempdir().unwrap();
    // Group 0: 6 devices of 2 s each through 1 worker = 12 s a round at a 4 s interval
    // (behind). Group 2: 2 devices with the other 3 workers (keeps up).
    let (store, poller) = setup(dir.path(), &[(0, 6), (2, 2)], 2000).await;
    let coord = Coord::memory();
    let mut cfg = ClusterConfig::new("solo", 4, 4);
    cfg.groups = vec![0, 2];
    cfg.group_workers = BTreeMap::from([(0, 1)]);
    cfg.claim_ttl = Duration::from_secs(10);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let since = Utc::now() - chrono::Duration::seconds(1);
    let task = tokio::spawn(run_cluster(
        store.clone(),
        Some(poller),
        coord.clone(),
        cfg,
        rx,
    ));
    tokio::time::sleep(Duration::from_secs(13)).await;

    let nodes = coord.nodes().await.unwrap();
    let stats = &nodes[0].info.stats;
    assert_eq!(stats.get("group.0.workers"), Some(&1.0), "{stats:?}");
    assert_eq!(stats.get("group.2.workers"), Some(&4.0), "{stats:?}");
    let behind0 = stats.get("group.0.behind").copied().unwrap_or(0.0);
    assert!(behind0 >= 1.0, "group 0 cannot keep up: {stats:?}");
    assert!(
        stats.get("group.0.behind_max_secs").copied().unwrap_or(0.0) >= 4.0,
        "{stats:?}"
    );
    assert_eq!(
        stats.get("group.2.behind"),
        Some(&0.0),
        "group 2 keeps up: {stats:?}"
    );
    assert!(
        stats.get("group.2.lag_max").is_some(),
        "lag published: {stats:?}"
    );
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("run_cluster stops")
        .unwrap();

    // From the store: never two polls of group 0 at once; group 2 polled every interval.
    let devices = store.devices().await.unwrap();
    let group_of: BTreeMap<i64, i32> = devices
        .iter()
        .map(|d| (d.device_id, d.poller_group))
        .collect();
    let polls = store.poll_log(since).await.unwrap();
    let g0: Vec<_> = polls
        .iter()
        .filter(|e| group_of[&e.device_id] == 0)
        .collect();
    assert!(g0.len() >= 4, "group 0 polled one at a time: {g0:?}");
    for (i, a) in g0.iter().enumerate() {
        for b in &g0[i + 1..] {
            assert!(
                a.finished <= b.started || b.finished <= a.started,
                "two group-0 polls overlapped: {a:?} {b:?}"
            );
        }
    }
    for d in devices.iter().filter(|d| d.poller_group == 2) {
        let n = polls.iter().filter(|e| e.device_id == d.device_id).count();
        assert!(
            n >= 3,
            "group-2 device {} polled {n} times in 13 s",
            d.hostname
        );
    }
    // Warned per interval, not per device: 13 s at 4 s = at most 3 (+1 at the edge).
    let text = log.text();
    let warned = text.matches("poller is behind").count();
    assert!((1..=4).contains(&warned), "{warned} warnings:\n{text}");
    assert!(text.contains("group 0:"), "{text}");
    assert!(!text.contains("group 2:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_only_jobs_run_under_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (store, poller) = setup(dir.path(), &[(0, 1)], 200).await;
    let coord = Coord::memory();
    // A node that died a while ago.
    let old = NodeInfo {
        node_id: "old".into(),
        hostname: "old".into(),
        version: String::new(),
        roles: vec!["poller".into()],
        groups: vec![0],
        workers: 1,
        started_at: None,
        stats: BTreeMap::new(),
    };
    coord
        .heartbeat(&old, Duration::from_millis(100))
        .await
        .unwrap();
    // Another node holds the master lease: ours must not run the jobs.
    let other = coord
        .try_acquire_master("other", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut cfg = ClusterConfig::new("solo", 4, 1);
    cfg.dead_node_keep = Duration::from_secs(1);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_cluster(store, Some(poller), coord.clone(), cfg, rx));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = |nodes: Vec<lookout_coord::NodeStatus>| -> Vec<String> {
        nodes.into_iter().map(|n| n.info.node_id).collect()
    };
    assert!(
        ids(coord.nodes().await.unwrap()).contains(&"old".to_string()),
        "a node that is not master ran the dead-node job"
    );

    // The lease is free: our node becomes master and runs the job table once.
    assert!(coord.release_master(&other).await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nodes = coord.nodes().await.unwrap();
    let solo = nodes.iter().find(|n| n.info.node_id == "solo").unwrap();
    assert_eq!(
        solo.info.stats.get("job.dead-nodes.runs"),
        Some(&1.0),
        "{:?}",
        solo.info.stats
    );
    assert_eq!(solo.info.stats.get("job.poll-log-cleanup.runs"), Some(&1.0));
    assert_eq!(
        ids(nodes),
        vec!["solo".to_string()],
        "the dead node is forgotten"
    );
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run_cluster stops")
        .unwrap();
}
