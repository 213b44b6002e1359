//! `Store::purge_events` (the master's eventlog purge, `EVENTLOG_PURGE_DAYS`) on SQLite
//! and MariaDB (127.0.0.1:3306; `LOOKOUT_TEST_MYSQL=0` skips it): only events older than
//! the cut-off go, in batches, and the newer ones stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::Fixture;
use lookout_core::{NewDevice, SnmpConfig};
use lookout_store::{Severity, Store};

async fn purge_old_events_only(fx: Fixture) {
    let store = fx.store().await;
    let d = store
        .add_device(&NewDevice {
            hostname: "purge.example".into(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap();
    for i in 0..7 {
        store
            .log_event(
                Some(d.device_id),
                "interface",
                &format!("old {i}"),
                Severity::Info,
                None,
            )
            .await
            .unwrap();
    }
    store
        .log_event(None, "system", "old system", Severity::Info, None)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .log_event(
                Some(d.device_id),
                "interface",
                &format!("new {i}"),
                Severity::Info,
                None,
            )
            .await
            .unwrap();
    }
    // Back-date the "old" ones by 40 days (both dialects store 'YYYY-MM-DD HH:MM:SS.ffffff').
    let old = (Utc::now() - Duration::days(40))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let sql = format!("UPDATE eventlog SET datetime = '{old}' WHERE message LIKE 'old%'");
    fx.exec(&sql, &sql).await;
    assert_eq!(fx.count("eventlog").await, 11);

    let cut = Utc::now() - Duration::days(30);
    // Nothing older than 50 days.
    assert_eq!(
        store
            .purge_events(Utc::now() - Duration::days(50))
            .await
            .unwrap(),
        0
    );
    // 8 old rows in batches of 3: 3 + 3 + 2.
    assert_eq!(store.purge_events_in_batches(cut, 3).await.unwrap(), 8);
    assert_eq!(fx.count("eventlog").await, 3);
    let left: Vec<String> = store
        .events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(left, ["new 2", "new 1", "new 0"]);
    assert_eq!(store.purge_events(cut).await.unwrap(), 0, "idempotent");

    // A batch size that divides the backlog exactly still ends (one empty batch).
    let sql = format!("UPDATE eventlog SET datetime = '{old}'");
    fx.exec(&sql, &sql).await;
    assert_eq!(store.purge_events_in_batches(cut, 3).await.unwrap(), 3);
    assert_eq!(fx.count("eventlog").await, 0);
    assert_eq!(Store::PURGE_BATCH, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_purges_old_events_in_batches() {
    purge_old_events_only(Fixture::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_purges_old_events_in_batches() {
    let Some(fx) = Fixture::mysql() else { return };
    purge_old_events_only(fx).await;
}
