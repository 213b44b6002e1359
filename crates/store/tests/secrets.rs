//! Secrets at rest (issue #16, finding 3), on SQLite and MariaDB: SNMP communities and v3
//! passwords are stored sealed with a key derived from APP_KEY (a raw `SELECT` shows no
//! plaintext), a plaintext database is sealed in place by `migrate`, a key rotation
//! re-seals everything and keeps devices readable, a wrong APP_KEY is an error naming
//! APP_KEY, a sealed value copied to another device's row does not open, and dumps carry
//! the sealed values (a plaintext dump is sealed on import).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use lookout_core::{NewDevice, SnmpConfig, SnmpV3Config, SnmpVersion};
use lookout_store::{SecretKey, Store, StoreError};

/// One `#[tokio::test]` per dialect for each `async fn name(fx: &Fixture)`.
macro_rules! both_dialects {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = crate::common::Fixture::sqlite();
                    super::$name(&fx).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fx) = crate::common::Fixture::mysql() else { return };
                    super::$name(&fx).await;
                }
            )*
        }
    };
}

both_dialects!(
    secrets_are_sealed_at_rest,
    a_plaintext_database_is_sealed_by_migrate,
    rotation_reseals_and_keeps_devices_readable,
    a_sealed_value_copied_to_another_device_does_not_open,
    dumps_carry_sealed_values_and_plaintext_dumps_are_sealed_on_import,
);

fn key(n: u8) -> SecretKey {
    SecretKey::from_app_key(&[n; 32])
}

fn v2(host: &str, community: &str) -> NewDevice {
    NewDevice {
        hostname: host.into(),
        snmp: SnmpConfig {
            community: community.into(),
            ..SnmpConfig::default()
        },
        poller_group: 0,
    }
}

fn v3(host: &str, auth: &str, privacy: &str) -> NewDevice {
    NewDevice {
        hostname: host.into(),
        snmp: SnmpConfig {
            version: SnmpVersion::V3,
            community: String::new(),
            v3: Some(SnmpV3Config {
                security_level: "authPriv".into(),
                auth_user: "monitor".into(),
                auth_protocol: "SHA".into(),
                auth_password: auth.into(),
                priv_protocol: "AES".into(),
                priv_password: privacy.into(),
            }),
            ..SnmpConfig::default()
        },
        poller_group: 0,
    }
}

async fn keyed(fx: &Fixture, current: u8, previous: &[u8]) -> Store {
    fx.open()
        .await
        .with_secret_keys(key(current), previous.iter().map(|n| key(*n)).collect())
}

/// Every non-empty stored secret (community, authpass, cryptopass of every device), as
/// a reader of the database file sees it.
async fn raw_secrets(fx: &Fixture) -> Vec<String> {
    let mut all = Vec::new();
    for col in ["community", "authpass", "cryptopass"] {
        let sql = format!("SELECT {col} FROM devices ORDER BY device_id");
        all.extend(fx.texts(&sql).await.into_iter().filter(|v| !v.is_empty()));
    }
    all
}

/// SQLite: whether the database file or its WAL contains `needle` anywhere (live or not);
/// `None` on MySQL.
fn file_bytes_contain(fx: &Fixture, needle: &str) -> Option<bool> {
    let Fixture::Sqlite {
        config: lookout_store::StoreConfig::Sqlite { path },
        ..
    } = fx
    else {
        return None;
    };
    let mut found = false;
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", path.display());
        if let Ok(bytes) = std::fs::read(&file) {
            found |= bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        }
    }
    Some(found)
}

fn assert_all_sealed_with(raw: &[String], key_id: &str, plaintexts: &[&str]) {
    assert!(!raw.is_empty());
    for v in raw {
        assert!(
            v.starts_with(&format!("enc:v1:{key_id}:")),
            "not sealed with {key_id}: {v}"
        );
        for p in plaintexts {
            assert!(!v.contains(p), "plaintext {p} in {v}");
        }
    }
}

async fn secrets_are_sealed_at_rest(fx: &Fixture) {
    let store = keyed(fx, 1, &[]).await;
    store.migrate().await.unwrap();
    let r1 = store.add_device(&v2("r1", "comm-s3cret")).await.unwrap();
    assert_eq!(
        r1.snmp.community, "comm-s3cret",
        "add_device returns it readable"
    );
    store
        .add_device(&v3("r2", "auth-s3cret", "priv-s3cret"))
        .await
        .unwrap();

    let raw = raw_secrets(fx).await;
    assert_eq!(raw.len(), 3, "{raw:?}");
    assert_all_sealed_with(&raw, key(1).id(), &["s3cret"]);
    // Not secrets: the v3 user name and protocols stay readable for SQL users.
    assert_eq!(
        fx.texts("SELECT authname FROM devices WHERE hostname = 'r2'")
            .await,
        vec!["monitor".to_string()]
    );

    // Read through the store: the values as given.
    let all = store.devices().await.unwrap();
    assert_eq!(all[0].snmp.community, "comm-s3cret");
    let v3cfg = all[1].snmp.v3.as_ref().unwrap();
    assert_eq!(
        (v3cfg.auth_password.as_str(), v3cfg.priv_password.as_str()),
        ("auth-s3cret", "priv-s3cret")
    );
    assert_eq!(store.device(r1.device_id).await.unwrap().unwrap(), r1);
    assert_eq!(store.device_by_hostname("r1").await.unwrap().unwrap(), r1);

    // Another APP_KEY: an error that says so, naming both key ids.
    let other = keyed(fx, 2, &[]).await;
    let err = other.devices().await.unwrap_err();
    assert!(matches!(err, StoreError::Secrets(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("another APP_KEY"), "{text}");
    assert!(
        text.contains(key(1).id()) && text.contains(key(2).id()),
        "{text}"
    );
    // ... also at start-up (migrate), before any poll.
    let err = other.migrate().await.unwrap_err();
    assert!(err.to_string().contains("APP_KEY"), "{err}");
    assert_eq!(
        raw_secrets(fx).await,
        raw,
        "a failed migrate changes nothing"
    );
    // No key at all.
    let err = fx.open().await.device(r1.device_id).await.unwrap_err();
    assert!(err.to_string().contains("no APP_KEY"), "{err}");
    store.close().await;
}

async fn a_plaintext_database_is_sealed_by_migrate(fx: &Fixture) {
    // An older database: written without a key.
    let plain = fx.store().await;
    plain.add_device(&v2("r1", "plain-comm")).await.unwrap();
    plain
        .add_device(&v3("r2", "plain-auth", "plain-priv"))
        .await
        .unwrap();
    let before = raw_secrets(fx).await;
    assert!(before.contains(&"plain-comm".to_string()), "{before:?}");
    let expected = plain.devices().await.unwrap();
    plain.close().await;

    let store = keyed(fx, 1, &[]).await;
    let status = store.secrets_status().await.unwrap();
    assert_eq!((status.plaintext, status.current), (3, 0));
    assert!(file_bytes_contain(fx, "plain-comm") != Some(false));
    store.migrate().await.unwrap();
    assert_all_sealed_with(&raw_secrets(fx).await, key(1).id(), &["plain-"]);
    // Not even as leftovers in free space or the WAL (SQLite: VACUUM + TRUNCATE checkpoint).
    for p in ["plain-comm", "plain-auth", "plain-priv"] {
        assert_ne!(
            file_bytes_contain(fx, p),
            Some(true),
            "{p} left in the files"
        );
    }
    assert_eq!(store.devices().await.unwrap(), expected);
    let status = store.secrets_status().await.unwrap();
    assert_eq!((status.plaintext, status.current), (0, 3));
    // Nothing left to do the second time.
    let again = store.reseal_secrets().await.unwrap();
    assert_eq!((again.sealed_plaintext, again.resealed), (0, 0));
    store.close().await;
}

async fn rotation_reseals_and_keeps_devices_readable(fx: &Fixture) {
    let old = keyed(fx, 1, &[]).await;
    old.migrate().await.unwrap();
    for i in 0..3 {
        old.add_device(&v2(&format!("r{i}"), &format!("c{i}")))
            .await
            .unwrap();
    }
    old.add_device(&v3("v3", "a", "p")).await.unwrap();
    let expected = old.devices().await.unwrap();

    // During the rotation: the new key seals, the old one still opens.
    let rotating = keyed(fx, 2, &[1]).await;
    assert_eq!(rotating.devices().await.unwrap(), expected);
    let report = rotating.reseal_secrets().await.unwrap();
    assert_eq!((report.resealed, report.sealed_plaintext), (5, 0));
    assert_eq!(report.devices, 4);
    assert_all_sealed_with(&raw_secrets(fx).await, key(2).id(), &[]);
    assert_eq!(
        rotating.reseal_secrets().await.unwrap().resealed,
        0,
        "a resumed rotation has nothing left"
    );

    // After it: the new key alone reads everything; the old one no longer does.
    assert_eq!(keyed(fx, 2, &[]).await.devices().await.unwrap(), expected);
    let err = old.devices().await.unwrap_err();
    assert!(err.to_string().contains("another APP_KEY"), "{err}");
}

async fn a_sealed_value_copied_to_another_device_does_not_open(fx: &Fixture) {
    let store = keyed(fx, 1, &[]).await;
    store.migrate().await.unwrap();
    store.add_device(&v2("r1", "c-one")).await.unwrap();
    store.add_device(&v2("r2", "c-two")).await.unwrap();
    let sealed_r1 = fx
        .texts("SELECT community FROM devices WHERE hostname = 'r1'")
        .await
        .remove(0);
    // Someone with write access to the database but not the key.
    let sql = format!("UPDATE devices SET community = '{sealed_r1}' WHERE hostname = 'r2'");
    fx.exec(&sql, &sql).await;
    let err = store.device_by_hostname("r2").await.unwrap_err();
    assert!(err.to_string().contains("does not decrypt"), "{err}");
    assert_eq!(
        store
            .device_by_hostname("r1")
            .await
            .unwrap()
            .unwrap()
            .snmp
            .community,
        "c-one"
    );
}

async fn dumps_carry_sealed_values_and_plaintext_dumps_are_sealed_on_import(fx: &Fixture) {
    let target = || async {
        match fx {
            Fixture::Sqlite { .. } => Fixture::sqlite(),
            Fixture::Mysql { .. } => Fixture::mysql().unwrap(),
        }
    };
    let store = keyed(fx, 1, &[]).await;
    store.migrate().await.unwrap();
    store.add_device(&v2("r1", "dump-comm")).await.unwrap();
    let dump = store.export().await.unwrap();
    let json = serde_json::to_string(&dump).unwrap();
    assert!(!json.contains("dump-comm"), "plaintext in the dump");

    let t1 = target().await;
    let s1 = keyed(&t1, 1, &[]).await;
    s1.migrate().await.unwrap();
    s1.import(&dump).await.unwrap();
    assert_eq!(s1.devices().await.unwrap()[0].snmp.community, "dump-comm");

    // A dump of a plaintext database (no key), imported with a key: sealed.
    let plain_fx = target().await;
    let plain = plain_fx.store().await;
    plain.add_device(&v2("p1", "plain-dump")).await.unwrap();
    let plain_dump = plain.export().await.unwrap();
    assert!(serde_json::to_string(&plain_dump)
        .unwrap()
        .contains("plain-dump"));
    let t2 = target().await;
    let s2 = keyed(&t2, 1, &[]).await;
    s2.migrate().await.unwrap();
    s2.import(&plain_dump).await.unwrap();
    assert_all_sealed_with(&raw_secrets(&t2).await, key(1).id(), &["plain-dump"]);
    assert_eq!(s2.devices().await.unwrap()[0].snmp.community, "plain-dump");
}
