//! SNMPv3 interop against a real net-snmp `snmpd`: every auth and priv protocol it supports
//! (incl. the AES-192/256 key extensions), engine discovery, time-window resync after an
//! agent restart, and credential errors surfacing as `AuthFailure` rather than timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{netsnmp, parse_netsnmp, Snmpd, V3_USERS};
use lookout_core::SnmpVersion;
use lookout_snmp::{AuthFailureKind, Oid, SnmpClient, SnmpError, Version};

fn oid(s: &str) -> Oid {
    Oid::parse(s).unwrap()
}

fn level(auth: &str, privacy: &str) -> &'static str {
    match (auth.is_empty(), privacy.is_empty()) {
        (true, _) => "noAuthNoPriv",
        (false, true) => "authNoPriv",
        (false, false) => "authPriv",
    }
}

#[tokio::test]
async fn every_auth_and_priv_protocol_interoperates() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let v2 = client
        .session(agent.addr, &agent.cfg(SnmpVersion::V2c, "public"))
        .unwrap();
    let system_v2: Vec<String> = v2
        .walk(&oid("1.3.6.1.2.1.1"))
        .await
        .unwrap()
        .iter()
        .map(|vb| vb.oid.to_string())
        .collect();
    let if_descr_v2 = v2.walk(&oid("1.3.6.1.2.1.2.2.1.2")).await.unwrap();
    for (user, auth, ap, privacy, pp) in V3_USERS {
        let cfg = agent.v3_cfg(user, level(auth, privacy), (auth, ap), (privacy, pp));
        let s = client.session(agent.addr, &cfg).unwrap();
        assert_eq!(s.version(), Version::V3);
        let name = s
            .get(&[oid("1.3.6.1.2.1.1.5.0")])
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(name[0].value.as_str_lossy(), "probe-snmpd", "{user}");
        // A bulk walk over v3 gives the same OIDs as over v2c.
        let sys: Vec<String> = s
            .walk(&oid("1.3.6.1.2.1.1"))
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"))
            .iter()
            .map(|vb| vb.oid.to_string())
            .collect();
        assert_eq!(sys, system_v2, "{user}");
        let rows = s
            .walk_columns(&[oid("1.3.6.1.2.1.2.2.1.2")])
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(rows.len(), if_descr_v2.len(), "{user}");
    }
    let st = client.stats();
    assert_eq!(st.dropped_unknown_id + st.dropped_wrong_source, 0, "{st:?}");
}

#[tokio::test]
async fn v3_matches_snmpbulkwalk_for_authpriv() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let cfg = agent.v3_cfg(
        "sha256aes192",
        "authPriv",
        ("SHA-256", "sha256password"),
        ("AES-192", "aes192password"),
    );
    let s = client.session(agent.addr, &cfg).unwrap();
    let ours = s.walk(&oid("1.3.6.1.2.1.2.2.1")).await.unwrap();
    let theirs = parse_netsnmp(&netsnmp(
        "snmpbulkwalk",
        &[
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "sha256aes192",
            "-a",
            "SHA-256",
            "-A",
            "sha256password",
            "-x",
            "AES-192",
            "-X",
            "aes192password",
            "-On",
            "-Oe",
            &agent.addr.to_string(),
            "1.3.6.1.2.1.2.2.1",
        ],
    ));
    assert_eq!(ours.len(), theirs.len());
    for (vb, (o, v)) in ours.iter().zip(&theirs) {
        assert_eq!(&vb.oid.to_string(), o);
        // Counters move between the walks; types and static columns do not.
        let their_type = if v == "\"\"" {
            "STRING"
        } else {
            v.split(':').next().unwrap()
        };
        assert_eq!(vb.value.type_name(), their_type, "{o}");
    }
}

#[tokio::test]
async fn wrong_credentials_are_auth_failures_not_timeouts() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    // A long timeout: an answer from the agent comes back far sooner than a timeout would.
    let get = |mut cfg: lookout_core::SnmpConfig| {
        if cfg.timeout_ms == 1000 {
            cfg.timeout_ms = 5000;
            cfg.retries = 0;
        }
        let s = client.session(agent.addr, &cfg).unwrap();
        async move {
            let t0 = Instant::now();
            let r = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await;
            (r, t0.elapsed())
        }
    };
    // Wrong auth password: usmStatsWrongDigests, answered at once.
    let (r, took) = get(agent.v3_cfg(
        "sha512aes256",
        "authPriv",
        ("SHA-512", "not-the-password"),
        ("AES-256", "aes256password2"),
    ))
    .await;
    match r {
        Err(SnmpError::AuthFailure {
            kind: AuthFailureKind::WrongDigest,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Well below the 5 s a timeout would take (debug-build key hashing is slow).
    assert!(took < Duration::from_millis(3000), "{took:?}");
    // Wrong auth protocol gives a wrong digest too.
    let (r, _) =
        get(agent.v3_cfg("md5only", "authNoPriv", ("SHA", "md5password0"), ("", ""))).await;
    assert!(
        matches!(
            r,
            Err(SnmpError::AuthFailure {
                kind: AuthFailureKind::WrongDigest,
                ..
            })
        ),
        "{r:?}"
    );
    // Unknown user.
    let (r, _) = get(agent.v3_cfg("nobody", "authNoPriv", ("MD5", "md5password0"), ("", ""))).await;
    assert!(
        matches!(
            r,
            Err(SnmpError::AuthFailure {
                kind: AuthFailureKind::UnknownUser,
                ..
            })
        ),
        "{r:?}"
    );
    // Asking for privacy from a user that has no privacy key.
    let (r, _) = get(agent.v3_cfg(
        "md5only",
        "authPriv",
        ("MD5", "md5password0"),
        ("DES", "despassword1"),
    ))
    .await;
    assert!(
        matches!(
            r,
            Err(SnmpError::AuthFailure {
                kind: AuthFailureKind::UnsupportedSecurityLevel,
                ..
            })
        ),
        "{r:?}"
    );
    // A wrong privacy password: net-snmp drops the undecryptable request silently (its own
    // snmpget times out too), so this one can only be a timeout.
    let mut cfg = agent.v3_cfg(
        "sha1aes",
        "authPriv",
        ("SHA", "sha1password2"),
        ("AES", "wrong-priv-password"),
    );
    cfg.timeout_ms = 200;
    cfg.retries = 0;
    let (r, _) = get(cfg).await;
    assert!(r.as_ref().is_err_and(|e| e.is_timeout()), "{r:?}");
    // Bad configuration never reaches the wire.
    let bad = agent.v3_cfg("md5only", "authNoPriv", ("MD4", "md5password0"), ("", ""));
    assert!(matches!(
        client.session(agent.addr, &bad),
        Err(SnmpError::BadConfig(_))
    ));
}

#[tokio::test]
async fn agent_restart_is_resynchronised() {
    let mut agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let cfg = agent.v3_cfg(
        "sha1aes",
        "authPriv",
        ("SHA", "sha1password2"),
        ("AES", "aespassword1"),
    );
    let s = client.session(agent.addr, &cfg).unwrap();
    assert_eq!(s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap().len(), 1);
    let before = client.stats().responses;
    // Same engine ID, boots + 1: the next request is outside the time window, the agent
    // reports notInTimeWindow and the session retries with the reported clock.
    agent.restart();
    let vbs = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap();
    assert_eq!(vbs[0].value.as_str_lossy(), "probe-snmpd");
    let after = client.stats().responses;
    assert_eq!(after - before, 2, "notInTimeWindow report + response");
    // A new engine ID: the agent reports unknownEngineIDs, the session rediscovers.
    agent.restart_with(true);
    let vbs = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap();
    assert_eq!(vbs[0].value.as_str_lossy(), "probe-snmpd");
    assert_eq!(
        client.stats().responses - after,
        3,
        "unknownEngineIDs report + discovery report + response"
    );
}

#[tokio::test]
async fn many_v3_sessions_share_the_key_cache() {
    let agent = Snmpd::start();
    let client = SnmpClient::bind_v4().await.unwrap();
    let cfg = agent.v3_cfg(
        "sha512aes256",
        "authPriv",
        ("SHA-512", "sha512password"),
        ("AES-256", "aes256password2"),
    );
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = client.session(agent.addr, &cfg).unwrap();
        tasks.push(tokio::spawn(async move {
            s.get(&[oid("1.3.6.1.2.1.1.3.0")]).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    eprintln!(
        "50 v3 sessions (discovery + authPriv GET each) in {:?}",
        t0.elapsed()
    );
}
