//! The REST API's LibreNMS routes beyond devices: the route index (every GET it lists is
//! served), `/system`, the device list's `type=` filters, ports (all, one, search), the event
//! log and auth log paged with `start`/`limit`/`from`/`to`, poller groups, and graph times in
//! rrdtool's forms (`-1d`, `now-6h`) with bad ones answered 400, never 503.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use lookout_core::{DevicePollUpdate, DeviceStatus};
use lookout_store::Severity;
use lookout_web::SecurityOptions;

mod common;

use common::fixture::Fixture;
use common::*;

fn polled(status: DeviceStatus, os: &str, location: &str) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some(format!("{os}-sysname")),
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: Some(location.into()),
        os: Some(os.into()),
        hardware: Some("x86_64".into()),
        version: None,
        serial: None,
        uptime: Some(100),
        uptime_source: None,
        status,
        status_reason: if status.is_up() {
            String::new()
        } else {
            "snmp".into()
        },
        last_polled: chrono::Utc::now(),
        last_polled_timetaken: 0.1,
    }
}

async fn get_json(app: &axum::Router, path: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let r = send(app, api(path, Some(token))).await;
    let status = r.status;
    (status, r.json())
}

#[tokio::test]
async fn routes_filters_ports_logs_and_times() {
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (_, admin) = fx.user("admin", 10).await;
    let (normal_id, normal) = fx.user("normal", 1).await;
    let (a, port_a) = fx.device("a.example.net").await;
    let (b, _) = fx.device("b.example.net").await;
    let (c, _) = fx.device("c.example.net").await;
    let store = &fx.store;
    store
        .update_device_poll(a, &polled(DeviceStatus::Up, "linux", "DC1 rack 4"))
        .await
        .unwrap();
    store
        .update_device_poll(b, &polled(DeviceStatus::Down, "ios", "DC2"))
        .await
        .unwrap();
    store.grant_device(normal_id, a).await.unwrap();
    for i in 0..7 {
        store
            .log_event(
                Some(a),
                "system",
                &format!("event {i}"),
                Severity::Info,
                None,
            )
            .await
            .unwrap();
    }
    store
        .log_event(Some(b), "system", "b event", Severity::Warning, None)
        .await
        .unwrap();

    // The index lists routes; every GET in it is served (placeholders filled).
    let (st, index) = get_json(&app, "/api/v0", &admin).await;
    assert_eq!(st, StatusCode::OK);
    let routes = index.as_object().unwrap();
    assert!(routes.len() > 20, "{index}");
    for (name, url) in routes {
        let url = url.as_str().unwrap();
        if url.contains(' ') {
            continue; // not a GET
        }
        let path = url
            .replace(":hostname", "a.example.net")
            .replace(":ifname", "eth0")
            .replace(":portid", &port_a.to_string())
            .replace(":field", "ifName")
            .replace(":search", "eth")
            .replace(":id", "1");
        let r = send(&app, api(&path, Some(&admin))).await;
        assert!(
            !r.body.contains("no such API endpoint"),
            "{name}: {path} is listed but not routed"
        );
        assert!(
            r.status.as_u16() < 500 || name == "discover_device",
            "{name} {path}: {} {}",
            r.status,
            r.body
        );
    }

    let (_, sys) = get_json(&app, "/api/v0/system", &admin).await;
    assert_eq!(sys["system"][0]["local_ver"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        get_json(&app, "/api/v0/system", &normal).await.0,
        StatusCode::FORBIDDEN
    );

    // type= filters.
    let hosts = |v: &serde_json::Value| -> Vec<String> {
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["hostname"].as_str().unwrap().to_string())
            .collect()
    };
    for (query, want) in [
        ("", vec!["a.example.net", "b.example.net", "c.example.net"]),
        (
            "?type=all",
            vec!["a.example.net", "b.example.net", "c.example.net"],
        ),
        ("?type=up", vec!["a.example.net"]),
        ("?type=down", vec!["b.example.net", "c.example.net"]),
        ("?type=os&query=IOS", vec!["b.example.net"]),
        ("?type=location&query=dc1", vec!["a.example.net"]),
        ("?type=hostname&query=c.example", vec!["c.example.net"]),
        (&format!("?type=device_id&query={c}"), vec!["c.example.net"]),
        ("?type=disabled", vec![]),
    ] {
        let (st, v) = get_json(&app, &format!("/api/v0/devices{query}"), &admin).await;
        assert_eq!(st, StatusCode::OK, "{query}: {v}");
        assert_eq!(hosts(&v), want, "{query}");
        assert_eq!(v["count"], want.len(), "{query}");
    }
    for bad in ["?type=bogus", "?type=os", "?type=device_id&query=x"] {
        let (st, v) = get_json(&app, &format!("/api/v0/devices{bad}"), &admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["status"], "error");
    }
    // Filters apply within what the caller may see.
    let (_, v) = get_json(&app, "/api/v0/devices?type=down", &normal).await;
    assert_eq!(v["count"], 0);

    // Ports.
    let (_, ports) = get_json(&app, "/api/v0/ports", &admin).await;
    assert_eq!(ports["count"], 3);
    assert_eq!(ports["ports"][0]["ifName"], "eth0");
    assert!(
        ports["ports"][0].get("ifInOctets").is_none(),
        "default columns only"
    );
    let (_, ports) = get_json(&app, "/api/v0/ports?columns=port_id,ifOperStatus", &normal).await;
    assert_eq!(ports["count"], 1);
    assert_eq!(ports["ports"][0]["port_id"], port_a);
    assert_eq!(ports["ports"][0]["ifOperStatus"], "up");
    assert_eq!(
        get_json(&app, "/api/v0/ports?columns=nope", &admin).await.0,
        StatusCode::BAD_REQUEST
    );
    let (st, one) = get_json(&app, &format!("/api/v0/ports/{port_a}"), &normal).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(one["port"][0]["ifName"], "eth0");
    assert_eq!(
        get_json(&app, "/api/v0/ports/abc", &admin).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get_json(&app, "/api/v0/ports/999999", &admin).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, found) = get_json(&app, "/api/v0/ports/search/ifName/ETH", &admin).await;
    assert_eq!(found["count"], 3);
    let (_, found) = get_json(&app, "/api/v0/ports/search/eth0", &normal).await;
    assert_eq!(found["count"], 1);
    assert_eq!(
        get_json(&app, "/api/v0/ports/search/ifType/x", &admin)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    // Event log paging.
    let (_, log) = get_json(&app, "/api/v0/logs/eventlog?limit=3", &admin).await;
    assert_eq!(log["count"], 3);
    assert_eq!(log["logs"][0]["message"], "b event", "newest first");
    let (_, log) = get_json(
        &app,
        "/api/v0/logs/eventlog/a.example.net?start=5&limit=10",
        &admin,
    )
    .await;
    let msgs: Vec<_> = log["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].clone())
        .collect();
    assert_eq!(msgs, vec!["event 1", "event 0"]);
    assert_eq!(log["logs"][0]["hostname"], "a.example.net");
    let (_, log) = get_json(&app, "/api/v0/logs/eventlog?from=-1h", &admin).await;
    assert_eq!(log["count"], 8);
    let (_, log) = get_json(&app, "/api/v0/logs/eventlog?to=-1h", &admin).await;
    assert_eq!(log["count"], 0);
    let (_, log) = get_json(&app, "/api/v0/logs/eventlog", &normal).await;
    assert_eq!(log["count"], 7, "only the granted device's events");
    assert_eq!(
        get_json(&app, "/api/v0/logs/eventlog/b.example.net", &normal)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for bad in [
        "?limit=5000",
        "?start=-1",
        "?from=yesterday",
        "?from=now&to=-1d",
    ] {
        let (st, v) = get_json(&app, &format!("/api/v0/logs/eventlog{bad}"), &admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().len() > 10, "{v}");
    }

    // Auth log: admin only, with the client address.
    login_on(&app, "admin", "wrong password").await;
    let (st, log) = get_json(&app, "/api/v0/logs/authlog", &admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(log["logs"][0]["address"], "127.0.0.1");
    assert_eq!(log["logs"][0]["result"], "failure");
    assert_eq!(
        get_json(&app, "/api/v0/logs/authlog", &normal).await.0,
        StatusCode::FORBIDDEN
    );

    // Poller groups.
    let (_, groups) = get_json(&app, "/api/v0/poller_group", &admin).await;
    assert_eq!(groups["get_poller_group"][0]["id"], 0);
    assert_eq!(groups["get_poller_group"][0]["devices"], 3);

    // Graph times: rrdtool forms accepted, bad ones 400 with what is accepted.
    let series = format!("/graph-data/port/{port_a}");
    for ok in [
        "?from=-1d",
        "?from=now-6h&to=now",
        "?from=-2y",
        "?period=week",
    ] {
        let r = send(&app, api(&format!("{series}{ok}"), Some(&admin))).await;
        assert_eq!(r.status, StatusCode::OK, "{ok}: {}", r.body);
    }
    for bad in [
        "?from=bogus",
        "?from=now&to=-1d",
        "?to=nope",
        "?period=fortnight",
    ] {
        let r = send(&app, api(&format!("{series}{bad}"), Some(&admin))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let png = "/api/v0/devices/a.example.net/ports/eth0/port_bits";
    let r = send(&app, api(&format!("{png}?from=yesterday"), Some(&admin))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("-1d"), "{}", r.body);
}

fn with_body(
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("X-Auth-Token", token)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn patch_and_delete_devices() {
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (_, admin) = fx.user("admin", 10).await;
    let (_, reader) = fx.user("reader", 5).await;
    let (a, port_a) = fx.device("a.example.net").await;
    let path = "/api/v0/devices/a.example.net";

    // LibreNMS's body, arrays, and a plain object; the device keeps its id and ports.
    for body in [
        r#"{"field": "community", "data": "n3w-secret"}"#,
        r#"{"field": ["port", "retries"], "data": [1161, 1]}"#,
        r#"{"poller_group": 2, "timeout": 2.5}"#,
    ] {
        let r = send(&app, with_body("PATCH", path, &admin, body)).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.body);
        assert_eq!(r.json()["devices"][0]["device_id"], a);
        assert!(
            !r.body.contains("n3w-secret"),
            "the community never comes back: {}",
            r.body
        );
    }
    let d = fx.store.device(a).await.unwrap().unwrap();
    assert_eq!(d.snmp.community, "n3w-secret");
    assert_eq!(
        (d.snmp.port, d.snmp.retries, d.snmp.timeout_ms),
        (1161, 1, 2500)
    );
    assert_eq!(d.poller_group, 2);
    assert_eq!(fx.store.ports(a).await.unwrap()[0].port_id, port_a);

    // Bad bodies: 400 naming what was wrong, nothing changed.
    for (body, needle) in [
        ("not json", "not valid JSON"),
        (r#"{"field": "hostname", "data": "x"}"#, "cannot be changed"),
        (r#"{"port": 0}"#, "port"),
        (
            r#"{"snmpver": "v3", "authlevel": "authPriv", "authname": "u", "authpass": "short"}"#,
            "8 characters",
        ),
        (r#"{"field": ["port"], "data": []}"#, "same length"),
        ("{}", "nothing to change"),
    ] {
        let r = send(&app, with_body("PATCH", path, &admin, body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(
            r.json()["message"].as_str().unwrap().contains(needle),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(fx.store.device(a).await.unwrap().unwrap().snmp.port, 1161);
    // Roles: a reader may not change or delete.
    let r = send(&app, with_body("PATCH", path, &reader, r#"{"port": 162}"#)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, with_body("DELETE", path, &reader, "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Unknown device: 404.
    let r = send(
        &app,
        with_body("PATCH", "/api/v0/devices/nope", &admin, r#"{"port": 162}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = send(&app, with_body("DELETE", path, &admin, "")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(fx.store.device(a).await.unwrap().is_none());
    let r = send(&app, with_body("DELETE", path, &admin, "")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn add_devices_through_the_api_and_the_bulk_form() {
    let fx = Fixture::new().await;
    // This instance has no prober: adds must be forced (the probe itself is tested end to
    // end in crates/lookout/tests/web.rs against a real snmpd).
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (_, admin) = fx.user("admin", 10).await;
    let (_, reader) = fx.user("reader", 5).await;
    let post = |token: &str, body: &str| with_body("POST", "/api/v0/devices", token, body);

    let r = send(
        &app,
        post(
            &admin,
            r#"{"hostname": "r1.example.net", "community": "c1"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("force_add"), "{}", r.body);
    let r = send(
        &app,
        post(
            &admin,
            r#"{"hostname": "r1.example.net", "version": "v2c", "community": "c1", "port": 1161, "poller_group": 2, "force_add": true}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(!r.body.contains("\"c1\""), "no community in the answer");
    let d = fx
        .store
        .device_by_hostname("r1.example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.snmp.community.as_str(), d.snmp.port, d.poller_group),
        ("c1", 1161, 2)
    );
    for (body, want) in [
        (
            r#"{"hostname": "r1.example.net", "force_add": true}"#,
            StatusCode::CONFLICT,
        ),
        (r#"{"community": "x"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"hostname": "bad host!", "force_add": true}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"hostname": "r2", "port": "x", "force_add": true}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"hostname": "r2", "transport": "tcp", "force_add": true}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"hostname": "r2", "bogus": 1, "force_add": true}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("[]", StatusCode::BAD_REQUEST),
    ] {
        let r = send(&app, post(&admin, body)).await;
        assert_eq!(r.status, want, "{body}: {}", r.body);
    }
    assert_eq!(
        send(
            &app,
            post(&reader, r#"{"hostname": "r3", "force_add": true}"#)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert!(fx.store.device_by_hostname("r2").await.unwrap().is_none());

    // Bulk: per-line results, nothing stored for the bad lines.
    let cookie = login_on(&app, "admin", PASSWORD)
        .await
        .cookie("lookout_session")
        .unwrap();
    let form = send(&app, get("/devices/add", Some(&cookie))).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = csrf_of(&form.body);
    let bulk = "# core\nsw1.example.net,pub1,161\nsw2.example.net,,1162,v1\nr1.example.net\nbad host!\nsw3,x,99999\n";
    let r = send(
        &app,
        post_form(
            "/devices/add",
            Some(&cookie),
            &[("_csrf", &csrf), ("bulk", bulk), ("force", "1")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.matches("class=\"ok\"").count(), 2, "{}", r.body);
    assert_eq!(r.body.matches("class=\"failed\"").count(), 3, "{}", r.body);
    assert!(r.body.contains("exists already"));
    let sw2 = fx
        .store
        .device_by_hostname("sw2.example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sw2.snmp.port, sw2.snmp.version.as_str()), (1162, "v1"));
    assert!(fx.store.device_by_hostname("sw3").await.unwrap().is_none());
    // Without force and without a prober: refused with the reason.
    let r = send(
        &app,
        post_form(
            "/devices/add",
            Some(&cookie),
            &[("_csrf", &csrf), ("hostname", "sw9")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("cannot probe"), "{}", r.body);
}

/// `/poller` and `GET /api/v0/poller` show free space where the RRD files live against the
/// projected size of every device's files, with the verdict `validate` gives.
#[tokio::test]
async fn poller_status_shows_rrd_disk_space_and_projection() {
    use lookout_timeseries::disk::{FileSizes, FreeSpaceFloor};
    let mut fx = Fixture::new().await;
    let sizes = FileSizes {
        per_device: 3 << 20,
        per_port: 5 << 20,
        per_processor: 1,
        per_pool: 1,
    };
    fx.rrd_disk = Some(lookout_web::rrd_disk::RrdDiskOptions {
        sizes,
        floor: FreeSpaceFloor::Bytes(0),
    });
    let (_, admin) = fx.user("admin", 10).await;
    fx.device("a.example.net").await;
    fx.device("b.example.net").await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (st, doc) = get_json(&app, "/api/v0/poller", &admin).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    let disk = &doc["rrd_disk"];
    // Two devices with one port each, nothing created yet.
    assert_eq!(
        disk["projected_bytes"],
        2 * (3 << 20) + 2 * (5 << 20),
        "{disk}"
    );
    assert_eq!(disk["existing_bytes"], 0, "{disk}");
    assert_eq!(disk["state"], "ok", "{disk}");
    assert!(disk["free_bytes"].as_u64().unwrap() > 0);

    // The whole file system as the floor: failing, on the page too, with the fix.
    fx.rrd_disk = Some(lookout_web::rrd_disk::RrdDiskOptions {
        sizes,
        floor: FreeSpaceFloor::Percent(100.0),
    });
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (_, doc) = get_json(&app, "/api/v0/poller", &admin).await;
    assert_eq!(doc["rrd_disk"]["state"], "fail", "{doc}");
    let login = login_on(&app, "admin", PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let cookie = login.cookie("lookout_session").unwrap();
    let page = send(&app, get("/poller", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"id="rrd-disk" data-state="fail""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("new RRD files are not being created"),
        "{}",
        page.body
    );

    // Without the options (rrdcached on another host): no such section, null in the API.
    fx.rrd_disk = None;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (_, doc) = get_json(&app, "/api/v0/poller", &admin).await;
    assert!(doc["rrd_disk"].is_null(), "{doc}");
}
