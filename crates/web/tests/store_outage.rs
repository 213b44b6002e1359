//! Fault test: the database goes away under a running web instance, then comes back.
//!
//! The store talks to the machine's MariaDB (127.0.0.1:3306, root, no password; a database of
//! the test's own, dropped at the end) through a TCP relay the test owns on a loopback port.
//! Killing the relay cuts the database off for real (connections reset, new ones refused)
//! without touching the shared server. Expected: `/health` says 503 quickly so a load balancer
//! takes the instance out; pages and API answer 503 (HTML/JSON), never a panic or a hang; the
//! session cookie survives the outage (it lives in the browser); everything recovers when the
//! database is reachable again; a page fails within the request deadline (5 s), not after the
//! store's whole retry schedule. A second test gives the store two "nodes" (two relays to the
//! same server): when the one in use dies, pages and API still answer 200 within the deadline
//! (the store fails over to the other). Set `LOOKOUT_TEST_MYSQL=0` to skip (as the store's tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use lookout_store::{Store, StoreConfig};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};
use lookout_web::{new_api_token, router, AppKey, WebState, REQUEST_DEADLINE};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const MARIADB: &str = "127.0.0.1:3306";

/// A TCP relay to MariaDB; dropping it (or `stop`) closes the listener and every relayed
/// connection.
struct Relay {
    conns: Option<JoinSet<()>>,
}

impl Relay {
    async fn start(addr: SocketAddr) -> Relay {
        let listener = TcpListener::bind(addr).await.unwrap();
        let mut set = JoinSet::new();
        set.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(MARIADB).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Relay { conns: Some(set) }
    }

    /// Aborting the accept task drops the listener and its inner JoinSet, which aborts every
    /// relayed connection.
    async fn stop(&mut self) {
        if let Some(mut set) = self.conns.take() {
            set.shutdown().await;
        }
    }
}

/// Drops the test database when the test ends, passed or not.
struct TestDb(String);

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("/usr/bin/mariadb")
            .args(["-h127.0.0.1", "-P3306", "-uroot", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.0))
            .status();
    }
}

/// These tests always use the MariaDB; the `LOOKOUT_TEST_DB=mysql` leg would only run
/// them twice.
fn skip_in_mysql_leg() -> bool {
    let skip = std::env::var("LOOKOUT_TEST_DB").is_ok_and(|v| v == "mysql");
    if skip {
        eprintln!("\n*** SKIPPED in the LOOKOUT_TEST_DB=mysql leg: run by the default leg ***\n");
    }
    skip
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn database_outage_gives_503_and_recovers() {
    if std::env::var("LOOKOUT_TEST_MYSQL").as_deref() == Ok("0") {
        eprintln!("\n*** SKIPPED: LOOKOUT_TEST_MYSQL=0, database outage test not run ***\n");
        return;
    }
    if skip_in_mysql_leg() {
        return;
    }
    assert!(
        std::net::TcpStream::connect(MARIADB).is_ok(),
        "MariaDB on {MARIADB} (root, no password) must run (Debian package mariadb-server); \
         set LOOKOUT_TEST_MYSQL=0 to skip"
    );
    let relay_addr = free_port();
    let mut relay = Relay::start(relay_addr).await;
    let db = TestDb(format!(
        "lookout_webtest_{}",
        &lookout_web::new_api_token().0[..12]
    ));
    let store = Store::open(&StoreConfig::Mysql {
        hosts: vec![("127.0.0.1".to_string(), relay_addr.port())],
        database: db.0.clone(),
        username: "root".to_string(),
        password: String::new(),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let user = store
        .add_user(USER, &cheap_hash(PASSWORD), 10)
        .await
        .unwrap();
    let (token, digest) = new_api_token();
    store
        .add_api_token(user.user_id, &digest, "outage")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    let app = router(WebState {
        coord: lookout_coord::Coord::memory(),
        store: store.clone(),
        timeseries: ts,
        app_key: AppKey::generate(),
        poll_interval_secs: 300,
        node_name: "outage-node".to_string(),
        alerting: None,
        security: Default::default(),
        prober: None,
        rrd_disk: None,
    });

    let cookie = login_on(&app, USER, PASSWORD)
        .await
        .cookie("lookout_session")
        .unwrap();
    assert_eq!(
        send(&app, get("/health", None)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, get("/devices", Some(&cookie))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, api("/api/v0/devices", Some(&token)))
            .await
            .status,
        StatusCode::OK
    );

    relay.stop().await;

    let t = Instant::now();
    let r = send(&app, get("/health", None)).await;
    let health_latency = t.elapsed();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.json()["status"], "error");
    // Readiness names the store; liveness stays up so the balancer does not restart us.
    let ready = send(&app, get("/readyz", None)).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert!(
        ready.json()["message"].as_str().unwrap().contains("store"),
        "{}",
        ready.body
    );
    assert_eq!(
        send(&app, get("/healthz", None)).await.status,
        StatusCode::OK
    );
    // The load balancer's check must not hang: the store's acquire time-out bounds it.
    assert!(
        health_latency < Duration::from_secs(5),
        "{health_latency:?}"
    );

    // Concurrently: each is cut off by the request deadline instead of waiting out the
    // store's whole retry schedule (~15 s measured before the deadline).
    let t = Instant::now();
    let (page, api_res, login) = tokio::join!(
        send(&app, get("/devices", Some(&cookie))),
        send(&app, api("/api/v0/devices", Some(&token))),
        login_on(&app, USER, PASSWORD),
    );
    let page_latency = t.elapsed();
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.body.contains("the database is unavailable"),
        "{}",
        page.body
    );
    assert_eq!(api_res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api_res.json()["status"], "error");
    assert_eq!(api_res.json()["message"], "the database is unavailable");
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page_latency < REQUEST_DEADLINE + Duration::from_secs(2),
        "a page took {page_latency:?} to fail (deadline {REQUEST_DEADLINE:?})"
    );

    // Back: the same address answers again.
    let _relay = Relay::start(relay_addr).await;
    let t = Instant::now();
    loop {
        if send(&app, get("/health", None)).await.status == StatusCode::OK {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no recovery after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovery = t.elapsed();
    // The session issued before the outage still works.
    assert_eq!(
        send(&app, get("/devices", Some(&cookie))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, api("/api/v0/devices", Some(&token)))
            .await
            .status,
        StatusCode::OK
    );
    eprintln!(
        "outage: /health answered 503 in {health_latency:?}, pages/API/login in {page_latency:?}; \
         recovered {recovery:?} after the database came back"
    );
    store.close().await;
}

#[tokio::test]
async fn dead_node_fails_over_within_the_request_deadline() {
    if std::env::var("LOOKOUT_TEST_MYSQL").as_deref() == Ok("0") {
        eprintln!("\n*** SKIPPED: LOOKOUT_TEST_MYSQL=0, fail-over test not run ***\n");
        return;
    }
    if skip_in_mysql_leg() {
        return;
    }
    // Two "nodes": two relays to the same server, listed in this order.
    let (addr_a, addr_b) = (free_port(), free_port());
    let mut relay_a = Relay::start(addr_a).await;
    let _relay_b = Relay::start(addr_b).await;
    let db = TestDb(format!(
        "lookout_webtest_{}",
        &lookout_web::new_api_token().0[..12]
    ));
    let store = Store::open(&StoreConfig::Mysql {
        hosts: vec![
            ("127.0.0.1".to_string(), addr_a.port()),
            ("127.0.0.1".to_string(), addr_b.port()),
        ],
        database: db.0.clone(),
        username: "root".to_string(),
        password: String::new(),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.database_node(), Some(addr_a.to_string()));
    let user = store
        .add_user(USER, &cheap_hash(PASSWORD), 10)
        .await
        .unwrap();
    let (token, digest) = new_api_token();
    store
        .add_api_token(user.user_id, &digest, "failover")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    let app = router(WebState {
        coord: lookout_coord::Coord::memory(),
        store: store.clone(),
        timeseries: ts,
        app_key: AppKey::generate(),
        poll_interval_secs: 300,
        node_name: "failover-node".to_string(),
        alerting: None,
        security: Default::default(),
        prober: None,
        rrd_disk: None,
    });
    let cookie = login_on(&app, USER, PASSWORD)
        .await
        .cookie("lookout_session")
        .unwrap();
    assert_eq!(
        send(&app, get("/devices", Some(&cookie))).await.status,
        StatusCode::OK
    );

    relay_a.stop().await;
    let t = Instant::now();
    let page = send(&app, get("/devices", Some(&cookie))).await;
    let page_latency = t.elapsed();
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let t = Instant::now();
    let api_res = send(&app, api("/api/v0/devices", Some(&token))).await;
    let api_latency = t.elapsed();
    assert_eq!(api_res.status, StatusCode::OK, "{}", api_res.body);
    assert_eq!(
        store.database_node(),
        Some(addr_b.to_string()),
        "failed over"
    );
    assert!(
        page_latency < REQUEST_DEADLINE,
        "{page_latency:?} for the page that failed over"
    );
    eprintln!(
        "node in use died: the page answered 200 in {page_latency:?} (fail-over), the API next in {api_latency:?}"
    );
    store.close().await;
}
