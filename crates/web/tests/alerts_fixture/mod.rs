//! The web router over a real store (SQLite, or a fresh MariaDB database with
//! `LOOKOUT_TEST_DB=mysql`) with a running alerting engine and one real alert: a device
//! (whose sysName is a `<script>`) polled up, then down, through the store's fenced poll
//! commit with the engine as its alert hook, exactly as the poller does. A default webhook
//! transport (with a secret header) receives the notification into the outbox.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use lookout_alerting::engine::{Engine, EngineConfig};
use lookout_core::{DevicePollUpdate, DeviceStatus, NewDevice, SnmpConfig};
use lookout_store::{AlertTransport, PollAlerts, PollCommit, Store, StoreConfig};
use lookout_testkit::mariadb::{self, test_db_is_mysql, TestDatabase};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig};
use lookout_web::{new_api_token, router, AppKey, WebState};

use crate::common::{cheap_hash, PASSWORD, USER};

pub const EVIL: &str = "<script>alert(\"pwn\")</script>";
/// In the transport's config: must never appear in a page or an API answer.
pub const SECRET: &str = "s3cret-bearer-d41d8cd9";

pub struct AlertApp {
    pub router: Router,
    pub store: Store,
    pub engine: Arc<Engine>,
    pub device_id: i64,
    pub alert_id: i64,
    pub transport_id: i64,
    /// Tokens of `admin` (level 10), `reader` (5) and `normal` (1).
    pub admin: String,
    pub reader: String,
    pub normal: String,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

fn store_config(dir: &std::path::Path) -> (StoreConfig, Option<TestDatabase>) {
    if !test_db_is_mysql() {
        let path = dir.join("lookout.sqlite");
        return (StoreConfig::Sqlite { path }, None);
    }
    let db = TestDatabase::create("lookout_test_web_alerts");
    let config = StoreConfig::Mysql {
        hosts: vec![(mariadb::HOST.to_string(), mariadb::PORT)],
        database: db.name.clone(),
        username: "root".to_string(),
        password: String::new(),
    };
    (config, Some(db))
}

pub fn poll_update(status: DeviceStatus) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some(EVIL.into()),
        sys_descr: Some("Linux r1".into()),
        sys_object_id: None,
        sys_contact: None,
        sys_location: Some("<b>Rack 4</b>".into()),
        os: Some("linux".into()),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(86_400),
        uptime_source: None,
        status,
        status_reason: if status == DeviceStatus::Down {
            "snmp".into()
        } else {
            String::new()
        },
        last_polled: chrono::Utc::now(),
        last_polled_timetaken: 0.2,
    }
}

/// Commits a poll of `id` with the engine deciding its alerts inside the commit.
pub async fn poll(store: &Store, engine: &Arc<Engine>, id: i64, status: DeviceStatus) {
    let update = poll_update(status);
    let device = store.device(id).await.unwrap().unwrap();
    let mut commit = PollCommit::new(update.clone(), None);
    commit.alerts = Some(PollAlerts {
        hook: engine.clone(),
        device: update.applied_to(&device),
        icmp: None,
    });
    store.commit_poll(id, &commit).await.unwrap();
}

async fn token(store: &Store, name: &str, level: i32) -> String {
    let user = match store.user_by_username(name).await.unwrap() {
        Some(u) => u,
        None => store
            .add_user(name, &cheap_hash(PASSWORD), level)
            .await
            .unwrap(),
    };
    let (token, digest) = new_api_token();
    store
        .add_api_token(user.user_id, &digest, "test")
        .await
        .unwrap();
    token
}

pub async fn alert_app() -> AlertApp {
    let dir = tempfile::tempdir().unwrap();
    let (config, db) = store_config(dir.path());
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    std::fs::create_dir_all(dir.path().join("rrd")).unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().join("rrd"),
    })
    .await
    .unwrap();
    let admin = token(&store, USER, 10).await;
    let reader = token(&store, "reader", 5).await;
    let normal = token(&store, "normal", 1).await;
    let transport = store
        .add_alert_transport(&AlertTransport {
            transport_id: 0,
            transport_name: "noc-hook".into(),
            transport_type: "webhook".into(),
            is_default: true,
            transport_config: serde_json::json!({
                "url": "http://127.0.0.1:9/hook",
                "headers": {"Authorization": format!("Bearer {SECRET}")},
            })
            .to_string(),
        })
        .await
        .unwrap();
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    let device_id = store
        .add_device(&NewDevice {
            hostname: "r1".into(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap()
        .device_id;
    poll(&store, &engine, device_id, DeviceStatus::Up).await;
    poll(&store, &engine, device_id, DeviceStatus::Down).await;
    let alerts = store.alerts().await.unwrap();
    let open: Vec<_> = alerts.iter().filter(|a| a.open).collect();
    assert_eq!(
        open.len(),
        1,
        "one alert expected after the down poll: {alerts:?}"
    );
    let state = WebState {
        coord: lookout_coord::Coord::memory(),
        store: store.clone(),
        timeseries: ts,
        app_key: AppKey::generate(),
        poll_interval_secs: 300,
        node_name: "alerts-node".to_string(),
        alerting: Some(engine.clone()),
        security: Default::default(),
        prober: None,
        rrd_disk: None,
    };
    AlertApp {
        router: router(state),
        alert_id: open[0].id,
        store,
        engine,
        device_id,
        transport_id: transport.transport_id,
        admin,
        reader,
        normal,
        _dir: dir,
        _db: db,
    }
}

/// An API request with a token and an optional JSON body.
pub fn call(
    method: Method,
    uri: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("X-Auth-Token", token);
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// A request with a raw body.
pub fn call_raw(method: Method, uri: &str, token: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("X-Auth-Token", token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}
