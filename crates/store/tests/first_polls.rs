//! Concurrent first polls of different devices on MariaDB: 16 `commit_poll`s at once, each
//! the first of its device (24 new ports, IPv4 addresses, a processor, a storage row), in
//! several rounds. Before the store locked the device row instead of `SELECT ... FOR
//! UPDATE` on the device's (empty) ports and deleted addresses by key instead of by
//! device, both took gap locks on the `device_id` indexes, and neighbouring devices that
//! then inserted into the shared gap deadlocked (1213, retried). Asserts no 1213 retries
//! (`Store::retries`) and every row written; prints InnoDB's own deadlock count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone, Utc};
use common::Fixture;
use sqlx::Row as _;

const WRITERS: usize = 16;
const ROUNDS: usize = 4;
const PORTS: i64 = 24;

async fn innodb_deadlocks() -> i64 {
    let mut c = common::mysql_admin().await;
    let row = sqlx::query("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    row.get::<String, _>(1).parse().unwrap()
}

/// The first poll of a device: 24 new ports, 3 IPv4 addresses, a processor, a storage row.
fn first_poll(at: chrono::DateTime<Utc>) -> lookout_store::PollCommit {
    common::whole_poll(at, 7, common::port_polls(PORTS, 1000, None), 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_polls_do_not_deadlock() {
    let Some(fx) = Fixture::mysql() else { return };
    let store = fx.store().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let innodb_before = innodb_deadlocks().await;
    let mut all = Vec::new();
    for round in 0..ROUNDS {
        let ids = common::add_devices(&store, &format!("r{round}-dev"), WRITERS, Some(7)).await;
        // All writers start together: a barrier, so that the first statements overlap.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks: Vec<_> = ids
            .iter()
            .map(|&id| {
                let store = store.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.commit_poll(id, &first_poll(at)).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            let out = t.await.unwrap();
            assert_eq!(out.ports.unwrap().added.len(), PORTS as usize);
        }
        all.extend(ids);
    }
    let (retries, deadlocks) = store.retries();
    let innodb = innodb_deadlocks().await - innodb_before;
    eprintln!(
        "{} first polls, {WRITERS} at a time: {retries} retries, {deadlocks} after 1213; \
         InnoDB deadlocks server-wide (other clients of the server included) {innodb}",
        all.len()
    );
    for id in &all {
        let ports = store.ports(*id).await.unwrap();
        assert_eq!(ports.len(), PORTS as usize);
        assert_eq!(store.ipv4_addresses(*id).await.unwrap().len(), 3);
        assert_eq!(store.processors(*id).await.unwrap().len(), 1);
    }
    let log = store
        .poll_log(at - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(log.len(), all.len(), "one poll log row per device");
    assert_eq!(deadlocks, 0, "concurrent first polls deadlocked");
    store.close().await;
}
