//! A worker is an SNMP slot: once a poll's SNMP work is done and it waits only for its
//! batched ping (fping takes seconds, SNMP milliseconds), the worker takes the next device
//! while the first poll, still holding its claim, waits for the ping and commits.
//!
//! One worker, six devices (one due every second) on loopback addresses whose SNMP port nobody answers (SNMP
//! fails in 200 ms) while fping gets answers from the loopback address for ~3 s. Were the
//! worker held through the ping, the polls could not overlap at all; with the
//! hand-off they do. Shutting down waits for the handed-off polls to commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use lookout_coord::Coord;
use lookout_core::{NewDevice, SnmpConfig};
use lookout_dispatcher::{run_cluster, ClusterConfig};
use lookout_icmp::PingConfig;
use lookout_poller::{ModuleSet, Poller, PollerConfig};
use lookout_store::{Store, StoreConfig};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};

/// Spread over a 6 s interval by the master: one device due every second, each poll ~3 s.
const DEVICES: usize = 6;
const INTERVAL_SECS: u64 = 6;

fn unanswered_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_overlaps_polls_waiting_for_their_ping() {
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
    for n in 1..=DEVICES {
        store
            .add_device(&NewDevice {
                hostname: format!("127.0.3.{n}"),
                snmp: SnmpConfig {
                    port: unanswered_udp_port(),
                    timeout_ms: 200,
                    retries: 0,
                    ..SnmpConfig::default()
                },
                poller_group: 0,
            })
            .await
            .unwrap();
    }
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().join("rrd"),
    })
    .await
    .unwrap();
    let poller = Poller::new(
        store.clone(),
        ts,
        PollerConfig {
            step_secs: INTERVAL_SECS,
            modules: ModuleSet::all(),
            // 4 requests 1 s apart: each ping lasts ~3 s, SNMP 0.2 s.
            ping: PingConfig {
                count: 4,
                interval_ms: 1000,
                ..PingConfig::default()
            },
            ..PollerConfig::default()
        },
    )
    .await
    .unwrap();

    let since = Utc::now() - chrono::Duration::seconds(1);
    let coord = Coord::memory();
    let mut cfg = ClusterConfig::new("solo", INTERVAL_SECS, 1);
    cfg.claim_ttl = Duration::from_secs(10);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let node = tokio::spawn(run_cluster(
        store.clone(),
        Some(poller),
        coord.clone(),
        cfg,
        rx,
    ));

    // Two devices claimed (not yet acknowledged) at once through one worker: the first
    // waits for its ping while the worker polls the second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let claimed: u64 = coord
            .queue_depths()
            .await
            .unwrap()
            .iter()
            .map(|q| q.claimed)
            .sum();
        if claimed >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "one worker never had two polls in flight (claimed: {claimed}, log: {:?})",
            store.poll_log(since).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Shutdown now, while both wait for their pings: it must wait for them to commit.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(60), node)
        .await
        .expect("shutdown waits for the handed-off polls, then ends")
        .unwrap();

    let log = store.poll_log(since).await.unwrap();
    let depths = coord.queue_depths().await.unwrap();
    let claimed: u64 = depths.iter().map(|q| q.claimed).sum();
    let done: u64 = depths.iter().map(|q| q.done).sum();
    assert_eq!(
        claimed, 0,
        "every claim acknowledged at shutdown: {depths:?}"
    );
    assert!(log.len() >= 2, "{log:?}");
    assert_eq!(
        log.len() as u64,
        done,
        "each acknowledged claim committed its poll: {log:?}"
    );
    let overlapping = log.iter().enumerate().any(|(i, a)| {
        log.iter()
            .skip(i + 1)
            .any(|b| a.started < b.finished && b.started < a.finished)
    });
    assert!(
        overlapping,
        "one worker, yet no two polls overlapped while waiting for their ping: {log:?}"
    );
}
