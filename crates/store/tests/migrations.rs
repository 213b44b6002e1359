//! Migrations on both dialects: several processes migrating one fresh database at once,
//! waiting for a lock another process holds, and taking over the lock of a process that
//! died while migrating.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Fixture;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::common::Fixture::sqlite()).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fx) = $crate::common::Fixture::mysql() else { return };
                    super::$name(&fx).await;
                }
            )*
        }
    };
}

both!(
    concurrent_migrations,
    waits_for_a_held_lock,
    takes_over_a_stale_lock
);

async fn all_applied(fx: &Fixture) -> bool {
    let s = fx.open().await;
    let status = s.migrate_status().await.unwrap();
    s.close().await;
    status.iter().all(|m| m.applied_at.is_some())
}

async fn concurrent_migrations(fx: &Fixture) {
    let mut handles = Vec::new();
    for _ in 0..6 {
        handles.push(fx.open().await);
    }
    let mut tasks = Vec::new();
    for h in handles {
        tasks.push(tokio::spawn(async move {
            let r = h.migrate().await;
            h.close().await;
            r
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(all_applied(fx).await);
    let applied = fx.open().await.migrate_status().await.unwrap().len() as i64;
    assert_eq!(
        fx.count("migrations").await,
        applied,
        "each migration recorded once"
    );
    assert_eq!(fx.count("migrations_lock").await, 0, "lock released");
    assert_eq!(fx.count("devices").await, 0);
}

async fn waits_for_a_held_lock(fx: &Fixture) {
    let store = fx.open().await;
    assert!(store
        .migrate_status()
        .await
        .unwrap()
        .iter()
        .all(|m| m.applied_at.is_none()));
    fx.exec(
        "INSERT INTO migrations_lock (id, owner, acquired_at) VALUES (1, 'other-host pid 1', strftime('%Y-%m-%d %H:%M:%f', 'now'))",
        "INSERT INTO migrations_lock (id, owner, acquired_at) VALUES (1, 'other-host pid 1', UTC_TIMESTAMP(6))",
    )
    .await;
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.migrate().await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !waiting.is_finished(),
        "migrate must wait while the lock is held"
    );
    assert!(
        !all_applied(fx).await,
        "nothing applied under someone else's lock"
    );
    fx.exec("DELETE FROM migrations_lock", "DELETE FROM migrations_lock")
        .await;
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("migrate proceeds once the lock is released")
        .unwrap()
        .unwrap();
    assert!(all_applied(fx).await);
    assert_eq!(fx.count("migrations_lock").await, 0);
    store.close().await;
}

async fn takes_over_a_stale_lock(fx: &Fixture) {
    let store = fx.open().await;
    store.migrate_status().await.unwrap();
    fx.exec(
        "INSERT INTO migrations_lock (id, owner, acquired_at) VALUES (1, 'dead-host pid 1', strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 hours'))",
        "INSERT INTO migrations_lock (id, owner, acquired_at) VALUES (1, 'dead-host pid 1', UTC_TIMESTAMP(6) - INTERVAL 2 HOUR)",
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), store.migrate())
        .await
        .expect("a stale lock does not block")
        .unwrap();
    assert!(all_applied(fx).await);
    assert_eq!(fx.count("migrations_lock").await, 0);
    store.close().await;
}
