//! In-process tests of the whole web router against a real SQLite store (with
//! `LOOKOUT_TEST_DB=mysql`: a fresh database on the MariaDB at 127.0.0.1:3306) and real RRD
//! files (rrdtool) in a temporary directory: login, sealed sessions (tampering, another APP_KEY, a
//! second instance sharing APP_KEY), CSRF, pages, the API with tokens and its JSON shapes,
//! graph data, assets, `/health`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use lookout_core::{DevicePollUpdate, DeviceStatus, NewDevice, PortCounters, PortPoll, SnmpConfig};
use lookout_store::{Severity, Store, StoreConfig};
use lookout_timeseries::{defs, TimeSeries, TimeSeriesConfig, Value};
use lookout_web::{hash_password, new_api_token, router, AppKey, WebState};
use serde_json::Value as Json;

mod common;

use common::*;
use lookout_testkit::mariadb::{self, test_db_is_mysql, TestDatabase};

/// The store of one test: a SQLite file in `dir`, or with `LOOKOUT_TEST_DB=mysql` a fresh
/// MariaDB database (dropped with the returned guard).
fn test_store_config(dir: &std::path::Path) -> (StoreConfig, Option<TestDatabase>) {
    if !test_db_is_mysql() {
        return (
            StoreConfig::Sqlite {
                path: dir.join("lookout.sqlite"),
            },
            None,
        );
    }
    let db = TestDatabase::create("lookout_test_web");
    let config = StoreConfig::Mysql {
        hosts: vec![(mariadb::HOST.to_string(), mariadb::PORT)],
        database: db.name.clone(),
        username: "root".to_string(),
        password: String::new(),
    };
    (config, Some(db))
}

struct App {
    router: Router,
    store: Store,
    ts: TimeSeries,
    key: AppKey,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

impl App {
    async fn new() -> App {
        App::with_key(AppKey::generate()).await
    }

    async fn with_key(key: AppKey) -> App {
        App::build(key, cheap_hash(PASSWORD)).await
    }

    async fn build(key: AppKey, password_hash: String) -> App {
        let dir = tempfile::tempdir().unwrap();
        let (config, db) = test_store_config(dir.path());
        let store = Store::open(&config).await.unwrap();
        store.migrate().await.unwrap();
        let ts = TimeSeries::open(&TimeSeriesConfig::Local {
            rrd_dir: dir.path().join("rrd"),
        })
        .await
        .unwrap();
        std::fs::create_dir_all(dir.path().join("rrd")).unwrap();
        store.add_user(USER, &password_hash, 10).await.unwrap();
        App {
            router: router(state(&store, &ts, &key)),
            store,
            ts,
            key,
            _dir: dir,
            _db: db,
        }
    }

    /// Another web instance over the same store and time series with the given key.
    fn instance(&self, key: &AppKey) -> Router {
        router(state(&self.store, &self.ts, key))
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        send(&self.router, req).await
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> Resp {
        self.send(get(uri, cookie)).await
    }

    /// Logs in through the form and returns the session cookie (`lookout_session=...`).
    async fn login(&self) -> String {
        login_on(&self.router, USER, PASSWORD)
            .await
            .cookie("lookout_session")
            .expect("no session cookie")
    }

    async fn add_device(&self, hostname: &str) -> i64 {
        let d = self
            .store
            .add_device(&NewDevice {
                hostname: hostname.to_string(),
                snmp: SnmpConfig::default(),
                poller_group: 0,
            })
            .await
            .unwrap();
        d.device_id
    }
}

fn state(store: &Store, ts: &TimeSeries, key: &AppKey) -> WebState {
    WebState {
        coord: lookout_coord::Coord::memory(),
        store: store.clone(),
        timeseries: ts.clone(),
        app_key: key.clone(),
        poll_interval_secs: 300,
        node_name: "test-node".to_string(),
        alerting: None,
        security: Default::default(),
        prober: None,
        rrd_disk: None,
    }
}

#[tokio::test]
async fn login_good_and_bad() {
    let app = App::build(AppKey::generate(), hash_password(PASSWORD).unwrap()).await;

    let good = login_on(&app.router, USER, PASSWORD).await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
    assert_eq!(good.location(), "/devices");
    let set = good
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("lookout_session="))
        .expect("session cookie set");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    // The login cookie is cleared once used.
    assert!(good
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("lookout_login=;")));

    let wrong_pw = login_on(&app.router, USER, "wrong").await;
    let no_user = login_on(&app.router, "nobody", PASSWORD).await;
    for r in [&wrong_pw, &no_user] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body.contains("Invalid username or password."),
            "{}",
            r.body
        );
        assert!(r.cookie("lookout_session").is_none());
    }
    // No user enumeration: the two failures differ only in the echoed user name.
    assert_eq!(
        wrong_pw
            .body
            .replace(USER, "X")
            .replace(&csrf_of(&wrong_pw.body), "T"),
        no_user
            .body
            .replace("nobody", "X")
            .replace(&csrf_of(&no_user.body), "T"),
    );
}

#[tokio::test]
async fn pages_require_a_session() {
    let app = App::new().await;
    for uri in ["/devices", "/device/1", "/device/1?period=week"] {
        let r = app.get(uri, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert!(
            r.location().starts_with("/login?next=/device"),
            "{uri}: {}",
            r.location()
        );
    }
    // The dashboard too.
    let root = app.get("/", None).await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert!(
        root.location().starts_with("/login?next=/"),
        "{}",
        root.location()
    );
    // After login, `next` brings the user back to the page asked for.
    let form = app.get("/login?next=/device/7", None).await;
    assert!(form.body.contains("name=\"next\" value=\"/device/7\""));
    // An off-site `next` is replaced.
    let form = app.get("/login?next=//evil.example/", None).await;
    assert!(form.body.contains("name=\"next\" value=\"/devices\""));
}

#[tokio::test]
async fn session_cookie_works_and_forgeries_are_rejected() {
    let app = App::new().await;
    let cookie = app.login().await;
    let ok = app.get("/devices", Some(&cookie)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body.contains(USER));

    // One character of the sealed value changed.
    let mut forged = cookie.clone().into_bytes();
    let i = forged.len() - 3;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let r = app.get("/devices", Some(&forged)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // A plain-text session someone made up.
    let r = app
        .get(
            "/devices",
            Some("lookout_session={\"uid\":1,\"exp\":9999999999,\"csrf\":\"x\"}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // A cookie sealed by an instance with another APP_KEY.
    let other = app.instance(&AppKey::generate());
    let foreign = login_on(&other, USER, PASSWORD)
        .await
        .cookie("lookout_session")
        .unwrap();
    assert_eq!(
        send(&other, get("/devices", Some(&foreign))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/devices", Some(&foreign)).await.status,
        StatusCode::SEE_OTHER
    );

    // Another instance sharing APP_KEY accepts the session (HA: an instance may die).
    let twin = app.instance(&app.key);
    let r = send(&twin, get("/devices", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn csrf_is_required_on_every_form() {
    let app = App::new().await;
    // Login without the token, with a wrong one, and without the login cookie.
    let form = app.get("/login", None).await;
    let login_cookie = form.cookie("lookout_login").unwrap();
    let csrf = csrf_of(&form.body);
    let creds = [("username", USER), ("password", PASSWORD)];
    let r = app
        .send(post_form("/login", Some(&login_cookie), &creds))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .send(post_form(
            "/login",
            Some(&login_cookie),
            &[creds[0], creds[1], ("_csrf", "0000")],
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .send(post_form(
            "/login",
            None,
            &[creds[0], creds[1], ("_csrf", &csrf)],
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.cookie("lookout_session").is_none());

    // Logout without the session's token, then with it.
    let cookie = app.login().await;
    let r = app.send(post_form("/logout", Some(&cookie), &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .send(post_form("/logout", Some(&cookie), &[("_csrf", &csrf)]))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a login token is not a session token"
    );
    let page = app.get("/devices", Some(&cookie)).await;
    let token = csrf_of(&page.body);
    let r = app
        .send(post_form("/logout", Some(&cookie), &[("_csrf", &token)]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    assert!(r
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("lookout_session=;") && c.contains("Max-Age=0")));
}

#[tokio::test]
async fn devices_page_lists_devices_from_the_store() {
    let app = App::new().await;
    let cookie = app.login().await;
    let empty = app.get("/devices", Some(&cookie)).await;
    assert!(empty.body.contains("No devices yet"));

    let up = app.add_device("router1.example.net").await;
    let down = app.add_device("sw-<b>2</b>").await; // markup in data must be escaped
    app.add_device("new.example").await;
    let now = chrono::Utc::now();
    app.store
        .update_device_poll(
            up,
            &poll_update(DeviceStatus::Up, "", now - chrono::Duration::seconds(42)),
        )
        .await
        .unwrap();
    app.store
        .update_device_poll(down, &poll_update(DeviceStatus::Down, "snmp", now))
        .await
        .unwrap();

    let r = app.get("/devices", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    let b = &r.body;
    assert!(b.contains("router1.example.net"), "{b}");
    assert!(b.contains("rtr1-sysname"), "{b}");
    assert!(b.contains(&format!("href=\"/device/{up}\"")));
    assert!(
        ["42 s ago", "43 s ago", "44 s ago"]
            .iter()
            .any(|s| b.contains(s)),
        "{b}"
    );
    assert!(b.contains("down</span> (snmp)"), "{b}");
    assert!(b.contains("1 up"), "{b}");
    assert!(b.contains("1 down"), "{b}");
    assert!(b.contains("0.50 s"), "{b}");
    // A device never polled is neither up nor down yet.
    assert!(b.contains("1 not polled yet"), "{b}");
    assert!(
        b.contains("sw-&#60;b&#62;2&#60;/b&#62;") || b.contains("sw-&lt;b&gt;2&lt;/b&gt;"),
        "{b}"
    );
    assert!(!b.contains("<b>2</b>"));
}

fn poll_update(
    status: DeviceStatus,
    reason: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some("rtr1-sysname".into()),
        sys_descr: Some("Linux rtr1 6.1.0 x86_64".into()),
        sys_object_id: Some("1.3.6.1.4.1.8072.3.2.10".into()),
        sys_contact: Some("noc@example.net".into()),
        sys_location: Some("Rack 4".into()),
        os: Some("linux".into()),
        hardware: None,
        version: Some("6.1.0".into()),
        serial: None,
        uptime: Some(86_400 * 3 + 3600),
        uptime_source: None,
        status,
        status_reason: reason.into(),
        last_polled: at,
        last_polled_timetaken: 0.5,
    }
}

fn port_poll(if_index: i64, name: &str, in_octets: u64, out_octets: u64) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(name.into()),
        if_descr: Some(format!("{name} descr")),
        if_alias: Some("uplink to core".into()),
        if_type: Some("ethernetCsmacd".into()),
        if_mtu: Some(1500),
        if_speed: Some(1_000_000_000),
        if_phys_address: Some("020000000001".into()),
        if_admin_status: Some("up".into()),
        if_oper_status: Some("up".into()),
        counters: PortCounters {
            in_octets: Some(in_octets),
            out_octets: Some(out_octets),
            hc: true,
            ..PortCounters::default()
        },
    }
}

/// A device with one port polled twice, 300 s apart: 1,250,000 octets/s in (10 Mbit/s),
/// 125,000 out (1 Mbit/s).
async fn polled_device(app: &App) -> (i64, i64) {
    let id = app.add_device("127.0.0.1").await;
    let now = chrono::Utc::now();
    app.store
        .update_device_poll(id, &poll_update(DeviceStatus::Up, "", now))
        .await
        .unwrap();
    let t0 = now - chrono::Duration::seconds(300);
    app.store
        .sync_ports(id, &[port_poll(2, "eth0", 1_000, 2_000)], t0)
        .await
        .unwrap();
    let sync = app
        .store
        .sync_ports(
            id,
            &[port_poll(
                2,
                "eth0",
                1_000 + 1_250_000 * 300,
                2_000 + 125_000 * 300,
            )],
            now,
        )
        .await
        .unwrap();
    let port_id = sync.ports[0].port_id;
    app.store
        .log_event(
            Some(id),
            "interface",
            "eth0 went up",
            Severity::Notice,
            Some(port_id),
        )
        .await
        .unwrap();
    (id, port_id)
}

#[tokio::test]
async fn device_page_shows_system_interfaces_graphs_and_events() {
    let app = App::new().await;
    let cookie = app.login().await;
    let (id, port_id) = polled_device(&app).await;

    let r = app.get(&format!("/device/{id}"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = &r.body;
    for want in [
        "rtr1-sysname",
        "Linux rtr1 6.1.0 x86_64",
        "1.3.6.1.4.1.8072.3.2.10",
        "noc@example.net",
        "Rack 4",
        "3d 1h 0m",
        "eth0",
        "uplink to core",
        "1 Gbps",
        "10 Mbps",
        "1 Mbps",
        "eth0 went up",
        "notice",
    ] {
        assert!(b.contains(want), "missing {want:?} in {b}");
    }
    assert!(
        b.contains(&format!(
            "class=\"graph\" data-port-id=\"{port_id}\" data-period=\"day\""
        )),
        "{b}"
    );
    assert!(b.contains("uPlot.iife.min.js"));
    assert!(
        !b.contains("public"),
        "the SNMP community must not be shown"
    );

    let week = app
        .get(&format!("/device/{id}?period=week"), Some(&cookie))
        .await;
    assert!(week.body.contains("data-period=\"week\""));
    let bogus = app
        .get(&format!("/device/{id}?period=decade"), Some(&cookie))
        .await;
    assert!(bogus.body.contains("data-period=\"day\""));
    // The presets from an hour to two years are offered and served.
    for p in ["hour", "6h", "year", "2y"] {
        assert!(
            bogus.body.contains(&format!("?period={p}#traffic")),
            "preset {p}"
        );
        let r = app
            .get(&format!("/device/{id}?period={p}"), Some(&cookie))
            .await;
        assert!(r.body.contains(&format!("data-period=\"{p}\"")), "{p}");
    }

    for uri in ["/device/999999", "/device/abc", "/device/%ff", "/nope"] {
        let r = app.get(uri, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn graph_data_empty_then_from_rrd() {
    let app = App::new().await;
    let cookie = app.login().await;
    let (_id, port_id) = polled_device(&app).await;
    let uri = format!("/graph-data/port/{port_id}?period=day");

    // No RRD file yet: an empty graph, not an error.
    let r = app.get(&uri, Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["no_data"], true);
    assert_eq!(j["timestamps"], serde_json::json!([]));
    assert_eq!(j["series"]["in_bps"], serde_json::json!([]));
    assert_eq!(j["series"]["out_bps"], serde_json::json!([]));

    // Write counters every 300 s for an hour: 1000 octets/s in, 250 out.
    let def = defs::port(300);
    let path = format!("127.0.0.1/port-id{port_id}.rrd");
    let now = chrono::Utc::now().timestamp();
    let t0 = (now / 300) * 300 - 3600;
    for k in 0..=12 {
        let t = t0 + k * 300;
        let mut values = vec![Value::Unknown; def.sources.len()];
        values[0] = Value::Counter(u64::try_from(k).unwrap() * 300 * 1000);
        values[1] = Value::Counter(u64::try_from(k).unwrap() * 300 * 250);
        app.ts.update(&path, &def, t, &values).await.unwrap();
    }
    let r = app.get(&uri, Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["no_data"], false, "{j}");
    let ts = j["timestamps"].as_array().unwrap();
    let inb = j["series"]["in_bps"].as_array().unwrap();
    let outb = j["series"]["out_bps"].as_array().unwrap();
    assert_eq!(ts.len(), inb.len());
    assert_eq!(ts.len(), outb.len());
    assert_eq!(j["step"], 300);
    assert_eq!(ts[0].as_i64(), j["start"].as_i64());
    let known: Vec<(f64, f64)> = inb
        .iter()
        .zip(outb)
        .filter_map(|(i, o)| Some((i.as_f64()?, o.as_f64()?)))
        .collect();
    assert!(known.len() >= 10, "{j}");
    for (i, o) in known {
        assert!((i - 8000.0).abs() < 1e-6, "in {i}");
        assert!((o - 2000.0).abs() < 1e-6, "out {o}");
    }

    // Week and month read coarser archives of the same file.
    for p in ["hour", "6h", "week", "month", "year", "2y"] {
        let r = app
            .get(
                &format!("/graph-data/port/{port_id}?period={p}"),
                Some(&cookie),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.body);
        assert_eq!(r.json()["period"], p);
    }
}

#[tokio::test]
async fn graph_data_errors_are_json() {
    let app = App::new().await;
    let cookie = app.login().await;
    let (_id, port_id) = polled_device(&app).await;
    let cases = [
        (
            format!("/graph-data/port/{port_id}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/graph-data/port/{port_id}?period=decade"),
            Some(&cookie),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph-data/port/abc".to_string(),
            Some(&cookie),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph-data/port/%ff".to_string(),
            Some(&cookie),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph-data/port/99999".to_string(),
            Some(&cookie),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (uri, c, status) in cases {
        let r = app.get(&uri, c.map(String::as_str)).await;
        assert_eq!(r.status, status, "{uri}: {}", r.body);
        assert_eq!(r.json()["status"], "error", "{uri}");
    }
    // An API token works too (scripts).
    let (token, digest) = new_api_token();
    let user = app.store.user_by_username(USER).await.unwrap().unwrap();
    app.store
        .add_api_token(user.user_id, &digest, "graphs")
        .await
        .unwrap();
    let r = app
        .send(api(&format!("/graph-data/port/{port_id}"), Some(&token)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn api_tokens_and_json_shapes() {
    let app = App::new().await;
    let (id, _port_id) = polled_device(&app).await;
    let other = app.add_device("never-polled.example").await;
    let (token, digest) = new_api_token();
    let user = app.store.user_by_username(USER).await.unwrap().unwrap();
    app.store
        .add_api_token(user.user_id, &digest, "test")
        .await
        .unwrap();

    // Missing, wrong, and the digest itself instead of the token.
    for t in [None, Some("0123"), Some(digest.as_str()), Some("")] {
        let r = app.send(api("/api/v0/devices", t)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{t:?}");
        let j = r.json();
        assert_eq!(j["status"], "error");
        assert!(j["message"].as_str().unwrap().contains("token"), "{j}");
    }

    let r = app.send(api("/api/v0/devices", Some(&token))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let j = r.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["count"], 2);
    let devices = j["devices"].as_array().unwrap();
    let d = devices.iter().find(|d| d["device_id"] == id).unwrap();
    assert_eq!(d["hostname"], "127.0.0.1");
    assert_eq!(d["sysName"], "rtr1-sysname");
    assert_eq!(d["sysDescr"], "Linux rtr1 6.1.0 x86_64");
    assert_eq!(d["sysObjectID"], "1.3.6.1.4.1.8072.3.2.10");
    assert_eq!(d["os"], "linux");
    assert_eq!(d["status"], 1);
    assert_eq!(d["status_reason"], "");
    assert_eq!(d["uptime"], 86_400 * 3 + 3600);
    assert_eq!(d["last_polled_timetaken"], 0.5);
    assert_eq!(d["poller_group"], 0);
    let lp = d["last_polled"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(lp, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{lp}"
    );
    assert!(d.get("community").is_none(), "credentials must not leak");
    let never = devices.iter().find(|d| d["device_id"] == other).unwrap();
    assert_eq!(never["last_polled"], Json::Null);

    // One device, by hostname or id; unknown is a JSON 404.
    for key in ["127.0.0.1".to_string(), id.to_string()] {
        let r = app
            .send(api(&format!("/api/v0/devices/{key}"), Some(&token)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{key}");
        assert_eq!(r.json()["devices"][0]["device_id"], id);
    }
    let r = app
        .send(api("/api/v0/devices/no.such.host", Some(&token)))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["status"], "error");

    let r = app
        .send(api("/api/v0/devices/127.0.0.1/ports", Some(&token)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "ok");
    let p = &j["ports"][0];
    assert_eq!(p["ifIndex"], 2);
    assert_eq!(p["ifName"], "eth0");
    assert_eq!(p["ifDescr"], "eth0 descr");
    assert_eq!(p["ifAlias"], "uplink to core");
    assert_eq!(p["ifOperStatus"], "up");
    assert_eq!(p["ifAdminStatus"], "up");
    assert_eq!(p["ifSpeed"], 1_000_000_000_u64);
    assert!(
        (p["ifInOctets_rate"].as_f64().unwrap() - 1_250_000.0).abs() < 1.0,
        "{p}"
    );
    assert!(
        (p["ifOutOctets_rate"].as_f64().unwrap() - 125_000.0).abs() < 1.0,
        "{p}"
    );
    assert!(p["port_id"].is_i64());

    // One port by ifName (or ifDescr), LibreNMS's get_port_stats_by_port_hostname.
    for name in ["eth0", "eth0%20descr"] {
        let r = app
            .send(api(
                &format!("/api/v0/devices/127.0.0.1/ports/{name}"),
                Some(&token),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!(r.json()["port"]["ifName"], "eth0");
    }
    // A name with slashes, URL-encoded as LibreNMS clients send it.
    let later = chrono::Utc::now() + chrono::Duration::seconds(300);
    let mut polls = vec![port_poll(2, "eth0", 1, 1), port_poll(3, "ge-0/0/1", 1, 1)];
    polls[1].if_descr = None;
    app.store.sync_ports(id, &polls, later).await.unwrap();
    let r = app
        .send(api(
            "/api/v0/devices/127.0.0.1/ports/ge-0%2F0%2F1",
            Some(&token),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["port"]["ifIndex"], 3);
    let r = app
        .send(api("/api/v0/devices/127.0.0.1/ports/eth9", Some(&token)))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["status"], "error");

    // Bad paths and methods answer JSON, never HTML.
    for (method, uri, status) in [
        (Method::GET, "/api/v0/nope", StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/api/v0/devices/no.such.host/ports",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v0/devices",
            StatusCode::BAD_REQUEST, // no body: says what is missing
        ),
        (
            Method::DELETE,
            "/api/v0/status",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/api/v0/devices/%ff%fe",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v0/devices/%ff%fe/ports",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("X-Auth-Token", &token)
            .body(Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.body);
        assert_eq!(r.json()["status"], "error", "{method} {uri}");
    }
}

#[tokio::test]
async fn health_assets_and_headers() {
    let app = App::new().await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.json()["node"], "test-node");
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert!(r.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    // Liveness and readiness (in-process coordination: the store alone decides readiness).
    for probe in ["/healthz", "/readyz"] {
        let r = app.get(probe, None).await;
        assert_eq!(r.status, StatusCode::OK, "{probe}: {}", r.body);
        assert_eq!(r.json()["node"], "test-node", "{probe}");
    }

    // The login page links the fingerprinted stylesheet; the assets are served from it.
    let login = app.get("/login", None).await;
    let i = login.body.find("/assets/").unwrap();
    let css = login.body[i..].split('"').next().unwrap().to_string();
    let prefix = css.rsplit_once('/').unwrap().0.to_string();
    for (name, ctype, needle) in [
        ("lookout.css", "text/css", "font"),
        ("graph.js", "text/javascript", "graph-data/port"),
        ("uPlot.iife.min.js", "text/javascript", "uPlot"),
        ("uPlot.min.css", "text/css", "uplot"),
    ] {
        let r = app.get(&format!("{prefix}/{name}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert!(r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(ctype));
        assert!(r.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert!(r.body.contains(needle), "{name}");
    }
    let stale = app.get("/assets/000000000000/graph.js", None).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert!(!stale.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        app.get(&format!("{prefix}/nope.js"), None).await.status,
        StatusCode::NOT_FOUND
    );

    // Compression when the client asks for it.
    let req = Request::get(format!("{prefix}/uPlot.iife.min.js"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.headers[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn unknown_user_id_in_a_valid_session_is_refused() {
    // Sessions are stateless, but every request re-reads the user, so a session whose user
    // no longer exists (here: an instance sharing APP_KEY over a database without users)
    // is refused.
    let app = App::new().await;
    let cookie = app.login().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _db) = test_store_config(dir.path());
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    let r = send(
        &router(state(&store, &app.ts, &app.key)),
        get("/devices", Some(&cookie)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_proxy() {
    let app = App::new().await;
    let plain = login_on(&app.router, USER, PASSWORD).await;
    assert!(plain.set_cookies().iter().all(|c| !c.contains("Secure")));

    let with_proto = |req: Request<Body>| {
        let (mut parts, body) = req.into_parts();
        parts
            .headers
            .insert("x-forwarded-proto", "https".parse().unwrap());
        Request::from_parts(parts, body)
    };
    let form = app.send(with_proto(get("/login", None))).await;
    let login_cookie = form
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("lookout_login="))
        .unwrap();
    assert!(login_cookie.contains("Secure"), "{login_cookie}");
    let csrf = csrf_of(&form.body);
    let r = app
        .send(with_proto(post_form(
            "/login",
            form.cookie("lookout_login").as_deref(),
            &[("username", USER), ("password", PASSWORD), ("_csrf", &csrf)],
        )))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("lookout_session="))
        .unwrap();
    assert!(session.contains("Secure"), "{session}");
}

/// Neighbours and addresses: on the device page (a known neighbour links to its page) and
/// in the API (`/links`, `/ip` in LibreNMS's shapes); `/discover` queues a rediscovery.
#[tokio::test]
async fn neighbours_addresses_and_rediscovery() {
    let app = App::new().await;
    let cookie = app.login().await;
    let (id, _port_id) = polled_device(&app).await;
    let peer = app.add_device("core-b.example.net").await;
    app.store
        .sync_links(
            id,
            &[
                lookout_store::LinkPoll {
                    local_if_index: Some(2),
                    protocol: "lldp".into(),
                    remote_hostname: "core-b.example.net".into(),
                    remote_port: "Gi0/7".into(),
                    remote_platform: Some("Cisco IOS Software".into()),
                    remote_version: None,
                    remote_address: None,
                },
                lookout_store::LinkPoll {
                    local_if_index: Some(2),
                    protocol: "cdp".into(),
                    remote_hostname: "phone-17".into(),
                    remote_port: "Port 1".into(),
                    remote_platform: Some("Cisco IP Phone 7945".into()),
                    remote_version: Some("SCCP45.9-3-1SR1-1S".into()),
                    remote_address: None,
                },
            ],
        )
        .await
        .unwrap();
    app.store
        .sync_ipv4_addresses(
            id,
            &[lookout_store::Ipv4AddressPoll {
                if_index: 2,
                ipv4_address: "192.0.2.1".into(),
                ipv4_prefixlen: 24,
            }],
        )
        .await
        .unwrap();
    app.store
        .sync_ipv6_addresses(
            id,
            &[lookout_store::Ipv6AddressPoll {
                if_index: 2,
                ipv6_address: "2001:0db8:0000:0000:0000:0000:0000:0001".into(),
                ipv6_compressed: "2001:db8::1".into(),
                ipv6_prefixlen: 64,
                ipv6_origin: "manual".into(),
            }],
        )
        .await
        .unwrap();

    let r = app.get(&format!("/device/{id}"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    let b = &r.body;
    for want in [
        "Neighbours (2)",
        &format!("<a href=\"/device/{peer}\">core-b.example.net</a>"),
        "Gi0/7",
        "phone-17",
        "Cisco IP Phone 7945",
        "192.0.2.1/24",
        "2001:db8::1/64",
    ] {
        assert!(b.contains(want), "missing {want:?} in {b}");
    }

    let (token, digest) = new_api_token();
    let user = app.store.user_by_username(USER).await.unwrap().unwrap();
    app.store
        .add_api_token(user.user_id, &digest, "test")
        .await
        .unwrap();
    let r = app
        .send(api("/api/v0/devices/127.0.0.1/links", Some(&token)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["count"], 2);
    let links = j["links"].as_array().unwrap();
    let l = links.iter().find(|l| l["protocol"] == "lldp").unwrap();
    assert_eq!(l["local_device_id"], id);
    assert_eq!(l["remote_device_id"], peer);
    assert_eq!(l["remote_hostname"], "core-b.example.net");
    assert_eq!(l["remote_port"], "Gi0/7");
    assert!(l["local_port_id"].is_i64());
    let c = links.iter().find(|l| l["protocol"] == "cdp").unwrap();
    assert_eq!(c["remote_device_id"], Json::Null);
    assert_eq!(c["remote_version"], "SCCP45.9-3-1SR1-1S");

    let r = app
        .send(api("/api/v0/devices/127.0.0.1/ip", Some(&token)))
        .await;
    let j = r.json();
    assert_eq!(j["count"], 2, "{j}");
    let a = j["addresses"].as_array().unwrap();
    assert!(a.iter().any(|a| a["ipv4_address"] == "192.0.2.1"));
    assert!(a
        .iter()
        .any(|a| a["ipv6_compressed"] == "2001:db8::1" && a["ipv6_prefixlen"] == 64));

    // Rediscovery: last_discovered is cleared so the next poll discovers.
    app.store
        .mark_discovered(id, chrono::Utc::now())
        .await
        .unwrap();
    let r = app
        .send(api("/api/v0/devices/127.0.0.1/discover", Some(&token)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(
        app.store.device(id).await.unwrap().unwrap().last_discovered,
        None
    );
    for uri in [
        "/api/v0/devices/nope/links",
        "/api/v0/devices/nope/ip",
        "/api/v0/devices/nope/discover",
    ] {
        let r = app.send(api(uri, Some(&token))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(r.json()["status"], "error");
    }
    let r = app.send(api("/api/v0/devices/127.0.0.1/links", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
