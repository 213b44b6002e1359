//! The store contract for access control (migration 0008): users and levels, device grants,
//! token listing and revocation, server-side sessions, the authlog and the counts the login
//! throttle reads, and the APP_KEY check value. Each function runs against SQLite and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lookout_core::{NewDevice, SnmpConfig};
use lookout_store::{SessionRecord, Store, StoreError};

contract_tests!(
    users_levels_and_grants,
    tokens_listed_and_revoked,
    sessions_end_one_or_all,
    authlog_counts_failures_since_last_success,
    app_key_check_keeps_the_first_value,
    app_key_check_race_has_one_winner,
);

async fn device(store: &Store, host: &str) -> i64 {
    store
        .add_device(&NewDevice {
            hostname: host.to_string(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap()
        .device_id
}

async fn users_levels_and_grants(store: Store) {
    let alice = store.add_user("alice", "$argon2id$x", 1).await.unwrap();
    let bob = store.add_user("bob", "$argon2id$y", 5).await.unwrap();
    let names: Vec<_> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.username, u.level))
        .collect();
    assert_eq!(names, vec![("alice".into(), 1), ("bob".into(), 5)]);

    store.set_user_level(alice.user_id, 10).await.unwrap();
    // Setting the same level again is not "unknown user" (MySQL counts 0 changed rows).
    store.set_user_level(alice.user_id, 10).await.unwrap();
    assert_eq!(store.user(alice.user_id).await.unwrap().unwrap().level, 10);
    assert!(matches!(
        store.set_user_level(9999, 1).await,
        Err(StoreError::NotFound { what: "user", .. })
    ));

    let d1 = device(&store, "r1").await;
    let d2 = device(&store, "r2").await;
    store.grant_device(bob.user_id, d2).await.unwrap();
    store.grant_device(bob.user_id, d1).await.unwrap();
    store.grant_device(bob.user_id, d1).await.unwrap(); // idempotent
    assert_eq!(store.device_perms(bob.user_id).await.unwrap(), vec![d1, d2]);
    assert!(matches!(
        store.grant_device(bob.user_id, 9999).await,
        Err(StoreError::NotFound { what: "device", .. })
    ));
    assert!(store.revoke_device(bob.user_id, d1).await.unwrap());
    assert!(!store.revoke_device(bob.user_id, d1).await.unwrap());
    assert_eq!(store.device_perms(bob.user_id).await.unwrap(), vec![d2]);

    assert!(store.remove_user(bob.user_id).await.unwrap());
    assert!(!store.remove_user(bob.user_id).await.unwrap());
    assert!(store.user(bob.user_id).await.unwrap().is_none());
    assert!(store.device_perms(bob.user_id).await.unwrap().is_empty());
}

async fn tokens_listed_and_revoked(store: Store) {
    let u = store.add_user("ops", "h", 10).await.unwrap();
    store
        .add_api_token(u.user_id, "aa", "grafana")
        .await
        .unwrap();
    store
        .add_api_token(u.user_id, "bb", "scripts")
        .await
        .unwrap();
    let tokens = store.api_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].username, "ops");
    assert_eq!(tokens[0].description, "grafana");
    assert!(!tokens[0].disabled);
    assert!(store.remove_api_token(tokens[0].id).await.unwrap());
    assert!(!store.remove_api_token(tokens[0].id).await.unwrap());
    assert!(store.user_by_api_token("aa").await.unwrap().is_none());
    assert!(store.user_by_api_token("bb").await.unwrap().is_some());
    // Removing the user takes its tokens with it.
    store.remove_user(u.user_id).await.unwrap();
    assert!(store.user_by_api_token("bb").await.unwrap().is_none());
    assert!(store.api_tokens().await.unwrap().is_empty());
}

fn session(user_id: i64, created: i64) -> SessionRecord {
    SessionRecord {
        user_id,
        created,
        last_seen: created,
        expires: created + 3600,
        address: "127.0.0.1".into(),
        user_agent: "test".into(),
    }
}

async fn sessions_end_one_or_all(store: Store) {
    let u = store.add_user("s", "h", 10).await.unwrap();
    let other = store.add_user("t", "h", 10).await.unwrap();
    store
        .add_session("h1", &session(u.user_id, 1000))
        .await
        .unwrap();
    store
        .add_session("h2", &session(u.user_id, 1001))
        .await
        .unwrap();
    store
        .add_session("h3", &session(other.user_id, 1002))
        .await
        .unwrap();
    assert_eq!(
        store.session("h1").await.unwrap(),
        Some(session(u.user_id, 1000))
    );
    assert!(store.session("nope").await.unwrap().is_none());

    store.touch_session("h1", 1500).await.unwrap();
    store.touch_session("h1", 1400).await.unwrap(); // never backwards
    assert_eq!(store.session("h1").await.unwrap().unwrap().last_seen, 1500);
    assert_eq!(store.user_sessions(u.user_id).await.unwrap().len(), 2);

    assert!(store.remove_session("h2").await.unwrap());
    assert!(!store.remove_session("h2").await.unwrap());
    assert_eq!(store.remove_user_sessions(u.user_id).await.unwrap(), 1);
    assert!(store.session("h1").await.unwrap().is_none());
    assert!(
        store.session("h3").await.unwrap().is_some(),
        "another user's session stays"
    );

    // Pruning: past the absolute end, or idle too long.
    store
        .add_session("h4", &session(u.user_id, 5000))
        .await
        .unwrap();
    assert_eq!(store.prune_sessions(2000, 10_000).await.unwrap(), 0);
    // h3 ends at 4602 (created 1002 + 3600); h4 is still within both limits.
    assert_eq!(store.prune_sessions(4700, 10_000).await.unwrap(), 1);
    assert!(store.session("h4").await.unwrap().is_some());
    // Idle: last seen 5000, limit 100 s, now 5200.
    assert_eq!(store.prune_sessions(5200, 100).await.unwrap(), 1);
    assert!(store.session("h4").await.unwrap().is_none());
}

async fn authlog_counts_failures_since_last_success(store: Store) {
    for (t, user, addr, result) in [
        (100, "admin", "10.0.0.1", "failure"),
        (101, "admin", "10.0.0.1", "failure"),
        (102, "admin", "10.0.0.2", "ok"),
        (103, "admin", "10.0.0.1", "failure"),
        (104, "admin", "10.0.0.1", "throttled"),
        (105, "bob", "10.0.0.1", "failure"),
        (106, "admin", "10.0.0.3", "failure"),
    ] {
        store.add_authlog(t, user, addr, result).await.unwrap();
    }
    let f = store.login_failures("admin", "10.0.0.1", 0).await.unwrap();
    // Account: failures after its success at 102 (103, 106); throttled ones do not count.
    assert_eq!(f.user_failures, 2);
    assert_eq!(f.user_last, Some(106));
    // Address: every failure from it since `since`, whatever the account (100, 101, 103, 105).
    assert_eq!(f.address_failures, 4);
    assert_eq!(f.address_last, Some(105));
    let f = store
        .login_failures("admin", "10.0.0.1", 104)
        .await
        .unwrap();
    assert_eq!((f.user_failures, f.address_failures), (1, 1));
    let f = store
        .login_failures("nobody", "192.0.2.1", 0)
        .await
        .unwrap();
    assert_eq!((f.user_failures, f.user_last), (0, None));

    let page = store.authlog(0, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.datetime).collect::<Vec<_>>(),
        vec![106, 105, 104]
    );
    assert_eq!(page[2].result, "throttled");
    let next = store.authlog(3, 3).await.unwrap();
    assert_eq!(next[0].datetime, 103);
}

async fn app_key_check_keeps_the_first_value(store: Store) {
    assert_eq!(store.app_key_check("first", None).await.unwrap(), "first");
    assert_eq!(store.app_key_check("second", None).await.unwrap(), "first");
    // Another key claiming a wrong previous one changes nothing.
    assert_eq!(
        store.app_key_check("second", Some("x")).await.unwrap(),
        "first"
    );
    // A rotation (new key, the stored one as previous) moves the value on.
    assert_eq!(
        store.app_key_check("second", Some("first")).await.unwrap(),
        "second"
    );
    assert_eq!(store.app_key_check("first", None).await.unwrap(), "second");
}

/// Nodes starting at once each store their check value: one wins and every caller, the
/// losers too, gets the winner's (on MySQL the losers' re-read must not come from the
/// snapshot their first SELECT fixed, which had no row).
async fn app_key_check_race_has_one_winner(store: Store) {
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.app_key_check(&format!("key-{i}"), None).await })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for c in calls {
        seen.insert(c.await.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    let winner = seen.into_iter().next().unwrap();
    assert_eq!(store.app_key_check("late", None).await.unwrap(), winner);
}
