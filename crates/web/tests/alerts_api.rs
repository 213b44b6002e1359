//! The alert API against a real store and engine with a real alert (see `alerts_fixture`):
//! LibreNMS's list/ack/unmute shapes, filters, the alert log, the outbox, rule CRUD, a bad
//! rule refused with its column, rule tests, and the role checks (a read-only user reads
//! and gets 403 on every write; a normal user gets 403).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts_fixture;
mod common;

use alerts_fixture::*;
use axum::http::{Method, StatusCode};
use common::{api, send, Resp};
use serde_json::json;

async fn go(
    app: &AlertApp,
    m: Method,
    uri: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Resp {
    send(&app.router, call(m, uri, token, body)).await
}

async fn get_ok(app: &AlertApp, uri: &str) -> serde_json::Value {
    let r = send(&app.router, api(uri, Some(&app.admin))).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "ok", "{j}");
    j
}

#[tokio::test]
async fn alerts_list_ack_unmute_and_log() {
    let app = alert_app().await;
    let id = app.alert_id;

    // The open alert in LibreNMS's shape.
    let j = get_ok(&app, "/api/v0/alerts").await;
    assert_eq!(j["count"], 1, "{j}");
    let a = &j["alerts"][0];
    assert_eq!(a["id"], id);
    assert_eq!(a["device_id"], app.device_id);
    assert_eq!(a["hostname"], "r1");
    assert_eq!(a["sysName"], EVIL);
    assert_eq!(a["name"], "Devices up/down");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["state"], 1);
    assert_eq!(a["open"], 1);
    assert_eq!(a["alerted"], 1);
    assert_eq!(a["phase"], "alerting");
    assert!(a["rule_id"].is_number());
    assert!(a["timestamp"].as_str().unwrap().len() == 19, "{a}");

    // Filters.
    for (q, n) in [
        ("state=1", 1),
        ("state=2", 0),
        ("state=1,2", 1),
        ("state=all", 1),
        ("severity=critical", 1),
        ("severity=warning,ok", 0),
        ("device=r1", 1),
    ] {
        let j = get_ok(&app, &format!("/api/v0/alerts?{q}")).await;
        assert_eq!(j["count"], n, "{q}: {j}");
    }
    for (q, code) in [
        ("state=7", StatusCode::BAD_REQUEST),
        ("state=x", StatusCode::BAD_REQUEST),
        ("severity=urgent", StatusCode::BAD_REQUEST),
        ("device=nosuch", StatusCode::NOT_FOUND),
        ("rule=abc", StatusCode::BAD_REQUEST),
    ] {
        let r = send(
            &app.router,
            api(&format!("/api/v0/alerts?{q}"), Some(&app.admin)),
        )
        .await;
        assert_eq!(r.status, code, "{q}: {}", r.body);
        assert_eq!(r.json()["status"], "error");
    }
    let j = get_ok(&app, &format!("/api/v0/alerts/{id}")).await;
    assert_eq!(j["alerts"][0]["id"], id);
    let r = send(&app.router, api("/api/v0/alerts/99999", Some(&app.admin))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = send(&app.router, api("/api/v0/alerts/abc", Some(&app.admin))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.json()["status"], "error");

    // Acknowledge: bad bodies are 400, a good one moves the alert to state 2.
    let ack = format!("/api/v0/alerts/{id}");
    for bad in [
        json!({"until": "whenever"}),
        json!({"until": "2001-01-01T00:00:00Z"}),
        json!({"until_clear": "maybe"}),
        json!({"note": 42}),
    ] {
        let r = go(&app, Method::PUT, &ack, &app.admin, Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = send(
        &app.router,
        call_raw(Method::PUT, &ack, &app.admin, "{not json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = go(
        &app,
        Method::PUT,
        &ack,
        &app.admin,
        Some(json!({"note": "on it <b>now</b>", "until_clear": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["message"], "Alert has been acknowledged");
    let a = &j["alerts"][0];
    assert_eq!(a["state"], 2, "{a}");
    assert_eq!(a["note"], "on it <b>now</b>");
    assert_eq!(a["acknowledged"]["by"], "admin");
    assert_eq!(a["acknowledged"]["until_clear"], false);
    assert_eq!(get_ok(&app, "/api/v0/alerts?state=2").await["count"], 1);
    // No ack when nothing is triggered.
    let r = go(&app, Method::PUT, "/api/v0/alerts/99999", &app.admin, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // Unmute (LibreNMS's name for un-acknowledging), twice: the second is a conflict.
    let unmute = format!("/api/v0/alerts/unmute/{id}");
    let r = go(&app, Method::PUT, &unmute, &app.admin, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["alerts"][0]["state"], 1);
    let r = go(&app, Method::PUT, &unmute, &app.admin, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("not acknowledged"));

    // The alert log, newest first: unacknowledged (1), acknowledged (2), alert (1).
    let j = get_ok(&app, "/api/v0/logs/alertlog").await;
    assert_eq!(j["count"], 3, "{j}");
    let states: Vec<i64> = j["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_i64().unwrap())
        .collect();
    assert_eq!(states, vec![1, 2, 1], "{j}");
    assert_eq!(j["logs"][0]["details"]["event"], "unacknowledged");
    assert_eq!(j["logs"][1]["details"]["note"], "on it <b>now</b>");
    assert_eq!(j["logs"][2]["hostname"], "r1");
    assert_eq!(j["logs"][2]["name"], "Devices up/down");
    let j = get_ok(&app, "/api/v0/logs/alertlog?start=1&limit=1").await;
    assert_eq!(j["count"], 1);
    assert_eq!(j["logs"][0]["state"], 2);
    assert_eq!(get_ok(&app, "/api/v0/logs/alertlog/r1").await["count"], 3);
    assert_eq!(
        get_ok(&app, "/api/v0/logs/alertlog?device=r1").await["count"],
        3
    );
    for q in ["limit=x", "start=-1", "limit=100000"] {
        let r = send(
            &app.router,
            api(&format!("/api/v0/logs/alertlog?{q}"), Some(&app.admin)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
    }
    let r = send(
        &app.router,
        api("/api/v0/logs/alertlog/nosuch", Some(&app.admin)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn outbox_shows_pending_messages_without_secrets() {
    let app = alert_app().await;
    let r = send(&app.router, api("/api/v0/alerts/outbox", Some(&app.admin))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains(SECRET), "{}", r.body);
    let j = r.json();
    assert_eq!(j["count"], 1, "{j}");
    let m = &j["messages"][0];
    assert_eq!(m["state"], "pending");
    assert_eq!(m["transport_name"], "noc-hook");
    assert_eq!(m["transport_id"], app.transport_id);
    assert_eq!(m["alert_id"], app.alert_id);
    assert_eq!(m["notification"]["kind"], "alert");
    assert!(m["idempotency_key"]
        .as_str()
        .unwrap()
        .starts_with("lookout-alert:"));
    assert_eq!(m["attempt_log"], json!([]));
    assert_eq!(
        get_ok(&app, "/api/v0/alerts/outbox?state=delivered").await["count"],
        0
    );
    assert_eq!(
        get_ok(&app, "/api/v0/alerts/outbox?state=all").await["count"],
        1
    );
    let r = send(
        &app.router,
        api("/api/v0/alerts/outbox?state=lost", Some(&app.admin)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rules_crud_bad_rules_and_tests() {
    let app = alert_app().await;
    let j = get_ok(&app, "/api/v0/rules").await;
    let builtin = j["rules"].as_array().unwrap();
    assert!(builtin.len() >= 10, "{j}");
    let down = builtin
        .iter()
        .find(|r| r["name"] == "Devices up/down")
        .unwrap();
    assert_eq!(down["rule"], "macros.device_down");
    assert_eq!(down["disabled"], 0);
    assert_eq!(down["builtin"], true);

    // A rule that does not compile: 400 with the column and the known names.
    let r = go(
        &app,
        Method::POST,
        "/api/v0/rules",
        &app.admin,
        Some(json!({"name": "typo", "rule": "ports.ifOperStatu == \"down\""})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let e = r.json();
    assert_eq!(e["status"], "error");
    assert_eq!(e["column"], 1, "{e}");
    assert!(
        e["known"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "ports.ifOperStatus"),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("column 1"), "{e}");
    assert!(
        e["caret"]
            .as_str()
            .unwrap()
            .contains("ports.ifOperStatu == \"down\"\n^"),
        "{e}"
    );
    let r = go(
        &app,
        Method::POST,
        "/api/v0/rules",
        &app.admin,
        Some(json!({"name": "half", "rule": "device.uptime < "})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.json()["column"], 17, "{}", r.body);
    for bad in [
        json!({"rule": "macros.device_down"}),
        json!({"name": "x"}),
        json!({"name": "x", "rule": "macros.device_down", "severity": "urgent"}),
        json!({"name": "x", "rule": "macros.device_down", "devices": ["nosuch"]}),
        json!({"name": "x", "rule": "macros.device_down", "transports": ["nosuch"]}),
        json!({"name": "x", "rule": "macros.device_down", "delya": 3}),
        json!({"name": "x", "builder": {"condition": "AND", "rules": []}}),
    ] {
        let r = go(
            &app,
            Method::POST,
            "/api/v0/rules",
            &app.admin,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }

    // Create, read, change one field, LibreNMS's PUT /rules with rule_id, delete.
    let r = go(
        &app,
        Method::POST,
        "/api/v0/rules",
        &app.admin,
        Some(json!({
            "name": "Disk full", "rule": "storage.storage_perc > 95", "severity": "warning",
            "delay": "5m", "interval": 3600, "count": 3, "devices": ["r1"],
            "transports": ["noc-hook"], "recovery": false,
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rule = r.json()["rules"][0].clone();
    let rid = rule["id"].as_i64().unwrap();
    let one = get_ok(&app, &format!("/api/v0/rules/{rid}")).await;
    let got = &one["rules"][0];
    assert_eq!(got["delay"], 300, "{got}");
    assert_eq!(got["interval"], 3600);
    assert_eq!(got["count"], 3);
    assert_eq!(got["recovery"], false);
    assert_eq!(got["devices"], json!([app.device_id]));
    assert_eq!(got["transports"], json!([app.transport_id]));
    assert_eq!(got["severity"], "warning");
    assert!(
        got["extra"].as_str().unwrap().contains("\"delay\":300"),
        "{got}"
    );
    let dup = go(
        &app,
        Method::POST,
        "/api/v0/rules",
        &app.admin,
        Some(json!({"name": "Disk full", "rule": "macros.device_down"})),
    )
    .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);

    let url = format!("/api/v0/rules/{rid}");
    let r = go(
        &app,
        Method::PUT,
        &url,
        &app.admin,
        Some(json!({"severity": "critical"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = &r.json()["rules"][0];
    assert_eq!(got["severity"], "critical");
    assert_eq!(got["delay"], 300, "unchanged fields stay: {got}");
    assert_eq!(got["rule"], "storage.storage_perc > 95");
    // A bad edit changes nothing.
    let r = go(
        &app,
        Method::PUT,
        &url,
        &app.admin,
        Some(json!({"rule": "storage.nope > 1"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.json()["column"], 1);
    assert_eq!(
        get_ok(&app, &url).await["rules"][0]["rule"],
        "storage.storage_perc > 95"
    );
    let r = go(
        &app,
        Method::PUT,
        "/api/v0/rules",
        &app.admin,
        Some(json!({"rule_id": rid, "name": "Disk really full", "disabled": 1})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["rules"][0]["disabled"], 1);
    assert_eq!(
        get_ok(&app, &url).await["rules"][0]["name"],
        "Disk really full"
    );
    let r = go(
        &app,
        Method::PUT,
        "/api/v0/rules/99999",
        &app.admin,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // Built-in rules are disabled, not deleted (they would come back at the next start).
    let builtin_id = down["id"].as_i64().unwrap();
    let r = go(
        &app,
        Method::DELETE,
        &format!("/api/v0/rules/{builtin_id}"),
        &app.admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = go(&app, Method::DELETE, &url, &app.admin, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&app.router, api(&url, Some(&app.admin))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = go(&app, Method::DELETE, &url, &app.admin, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Test against now: the device is down, so device_down matches it and device_up not.
    let test = |body: serde_json::Value| {
        go(
            &app,
            Method::POST,
            "/api/v0/rules/test",
            &app.reader,
            Some(body),
        )
    };
    let r = test(json!({"rule": "macros.device_down"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["count"], 1, "{j}");
    assert_eq!(j["devices"][0]["hostname"], "r1");
    assert_eq!(j["devices"][0]["device_id"], app.device_id);
    let r = test(json!({"rule": "macros.device_up"})).await;
    assert_eq!(r.json()["count"], 0, "{}", r.body);
    let r = test(json!({"rule_id": builtin_id})).await;
    assert_eq!(r.json()["count"], 1, "{}", r.body);
    let r = test(json!({"rule": "macros.device_down", "invert": true})).await;
    assert_eq!(r.json()["count"], 0, "{}", r.body);
    let r = test(json!({"rule": "device.sysName ~ \"(\""})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.json()["column"].is_number(), "{}", r.body);
}

#[tokio::test]
async fn roles_read_only_and_normal_users() {
    let app = alert_app().await;
    let id = app.alert_id;
    // No token: 401; a normal user (level 1): 403 everywhere (no per-device grants yet).
    let r = send(&app.router, api("/api/v0/alerts", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for uri in [
        "/api/v0/alerts".to_string(),
        format!("/api/v0/alerts/{id}"),
        "/api/v0/rules".to_string(),
        "/api/v0/logs/alertlog".to_string(),
        "/api/v0/alerts/outbox".to_string(),
    ] {
        let r = send(&app.router, api(&uri, Some(&app.normal))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}: {}", r.body);
        assert_eq!(r.json()["status"], "error");
        // The read-only user reads.
        let r = send(&app.router, api(&uri, Some(&app.reader))).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    }
    // ...and is refused every write, which changes nothing.
    let writes = [
        (
            Method::PUT,
            format!("/api/v0/alerts/{id}"),
            Some(json!({"note": "x"})),
        ),
        (Method::PUT, format!("/api/v0/alerts/unmute/{id}"), None),
        (
            Method::POST,
            "/api/v0/rules".to_string(),
            Some(json!({"name": "x", "rule": "macros.device_down"})),
        ),
        (
            Method::PUT,
            "/api/v0/rules/1".to_string(),
            Some(json!({"severity": "ok"})),
        ),
        (
            Method::PUT,
            "/api/v0/rules".to_string(),
            Some(json!({"rule_id": 1, "severity": "ok"})),
        ),
        (Method::DELETE, "/api/v0/rules/1".to_string(), None),
    ];
    for (m, uri, body) in writes {
        for t in [&app.reader, &app.normal] {
            let r = go(&app, m.clone(), &uri, t, body.clone()).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {uri}: {}", r.body);
            assert!(
                r.json()["message"].as_str().unwrap().contains("admin"),
                "{}",
                r.body
            );
        }
    }
    let a = app.store.alert(id).await.unwrap().unwrap();
    assert_eq!(a.state, 1, "the refused ack changed nothing");
    let rules = app.store.alert_rules().await.unwrap();
    assert!(rules.iter().all(|r| r.name != "x" && r.severity != "ok"));
}
