//! A poller group with devices and no live poller is reported as such ("no poller serves
//! group 7", once, with the fix; `group.7.unserved` in the heartbeat), not as "poller is
//! behind" every interval; and the per-poll counters count devices found down. In-process
//! coordination, SQLite, devices on loopback UDP ports nobody answers (so they poll down).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lookout_coord::Coord;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_without_a_poller_is_named_not_behind() {
    let log = Captured::install_global(tracing::Level::INFO);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.path().join("lookout.sqlite"),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    for (i, group) in [0, 7, 7].into_iter().enumerate() {
        store
            .add_device(&NewDevice {
                hostname: format!("127.0.3.{}", i + 1),
                snmp: SnmpConfig {
                    port: unanswered_udp_port(),
                    timeout_ms: 200,
                    retries: 0,
                    ..SnmpConfig::default()
                },
                poller_group: group,
            })
            .await
            .unwrap();
    }
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().join("rrd"),
    })
    .await
    .unwrap();
    let mut modules = ModuleSet::all();
    modules.set(Module::Availability, false);
    let poller = Poller::new(
        store.clone(),
        ts,
        PollerConfig {
            step_secs: 2,
            modules,
            ..PollerConfig::default()
        },
    )
    .await
    .unwrap();
    let coord = Coord::memory();
    let mut cfg = ClusterConfig::new("solo", 2, 2);
    cfg.groups = vec![0];
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_cluster(
        store.clone(),
        Some(poller),
        coord.clone(),
        cfg,
        rx,
    ));

    // Wait (bounded) until the master has published the unserved group and group 0's device
    // has been polled (down) at least twice.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let nodes = coord.nodes().await.unwrap();
        if let Some(n) = nodes.first() {
            let s = n.info.stats.clone();
            let unserved = s.get("group.7.unserved").copied().unwrap_or(0.0);
            let down = s.get("group.0.down").copied().unwrap_or(0.0);
            if unserved == 1.0 && down >= 2.0 {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no unserved group / down polls reported"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Three intervals more: group 7's devices stay due, yet it is not "behind".
    tokio::time::sleep(Duration::from_secs(7)).await;
    let nodes = coord.nodes().await.unwrap();
    let later = &nodes[0].info.stats;
    assert_eq!(later.get("group.0.unserved"), Some(&0.0), "{later:?}");
    assert_eq!(
        later.get("group.7.behind").copied().unwrap_or(0.0),
        0.0,
        "{later:?}"
    );
    assert!(
        stats.get("group.7.done").copied().unwrap_or(0.0) == 0.0,
        "nobody polled group 7"
    );
    tx.send(true).unwrap();
    task.await.unwrap();

    let text = log.text();
    assert_eq!(
        text.matches("no poller serves group 7").count(),
        1,
        "said once, when it started:\n{text}"
    );
    assert!(text.contains("POLLER_GROUP=7"), "with the fix");
    assert!(
        !text.contains("poller is behind"),
        "not reported as behind:\n{text}"
    );
}
