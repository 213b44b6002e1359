//! Roles, server-side sessions and login protection, through the whole router over a real
//! store (SQLite, or a fresh MariaDB database with `LOOKOUT_TEST_DB=mysql`):
//! - the role matrix (admin / global read / normal user with one granted device) asserted
//!   from a table over pages, API route families and graph data;
//! - logout, a password change and a user's removal end sessions on every instance, so a
//!   copied cookie is refused; idle sessions end;
//! - the login throttle per account and per client address, shared by two instances, with
//!   429 + `Retry-After` whatever the password, and the auth log with client addresses;
//! - the users pages: add a user, grant a device, create and revoke a token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{header, StatusCode};
use axum::Router;
use lookout_web::SecurityOptions;

mod common;

use common::fixture::Fixture;
use common::*;

async fn login_cookie(app: &Router, user: &str) -> String {
    let r = login_on(app, user, PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "login of {user}: {}",
        r.body
    );
    r.cookie("lookout_session").unwrap()
}

/// Expected status per role: admin, global read, normal user (granted device A only).
struct Row(&'static str, [u16; 3]);

#[tokio::test]
async fn role_matrix_over_pages_api_and_graphs() {
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (_, admin_token) = fx.user("admin", 10).await;
    let (_, reader_token) = fx.user("reader", 5).await;
    let (normal_id, normal_token) = fx.user("normal", 1).await;
    let (a, port_a) = fx.device("a.example.net").await;
    let (b, port_b) = fx.device("b.example.net").await;
    fx.store.grant_device(normal_id, a).await.unwrap();

    let cookies = [
        login_cookie(&app, "admin").await,
        login_cookie(&app, "reader").await,
        login_cookie(&app, "normal").await,
    ];
    let tokens = [admin_token, reader_token, normal_token];

    let pages = [
        Row("/", [200, 200, 200]),
        Row("/devices", [200, 200, 200]),
        Row("/device/{a}", [200, 200, 200]),
        Row("/device/{b}", [200, 200, 404]),
        Row("/status", [200, 200, 403]),
        Row("/poller", [200, 200, 403]),
        Row("/alerts", [200, 200, 403]),
        Row("/alerts/rules", [200, 200, 403]),
        Row("/users", [200, 403, 403]),
        Row("/users/tokens", [200, 403, 403]),
        Row("/users/authlog", [200, 403, 403]),
        Row("/users/1", [200, 403, 403]),
        Row("/account", [200, 200, 200]),
        Row("/device/{a}/edit", [200, 403, 403]),
        Row("/graph-data/port/{pa}", [200, 200, 200]),
        Row("/graph-data/port/{pb}", [200, 200, 404]),
    ];
    let fill = |p: &str| {
        p.replace("{a}", &a.to_string())
            .replace("{b}", &b.to_string())
            .replace("{pa}", &port_a.to_string())
            .replace("{pb}", &port_b.to_string())
    };
    for Row(path, want) in &pages {
        for (role, cookie) in cookies.iter().enumerate() {
            let r = send(&app, get(&fill(path), Some(cookie))).await;
            assert_eq!(
                r.status.as_u16(),
                want[role],
                "page {path} as role #{role}: {}",
                &r.body[..r.body.len().min(300)]
            );
        }
    }
    let apis = [
        Row("/api/v0/devices", [200, 200, 200]),
        Row("/api/v0/devices/a.example.net", [200, 200, 200]),
        Row("/api/v0/devices/b.example.net", [200, 200, 404]),
        Row("/api/v0/devices/{b}", [200, 200, 404]),
        Row("/api/v0/devices/b.example.net/ports", [200, 200, 404]),
        Row("/api/v0/devices/a.example.net/ports/eth0", [200, 200, 200]),
        Row("/api/v0/devices/b.example.net/ports/eth0", [200, 200, 404]),
        Row(
            "/api/v0/devices/b.example.net/ports/eth0/series",
            [200, 200, 404],
        ),
        Row("/api/v0/devices/b.example.net/health", [200, 200, 404]),
        Row("/api/v0/devices/b.example.net/links", [200, 200, 404]),
        Row("/api/v0/devices/b.example.net/ip", [200, 200, 404]),
        Row("/api/v0/devices/a.example.net/discover", [200, 403, 403]),
        Row("/api/v0/status", [200, 200, 403]),
        Row("/api/v0/poller", [200, 200, 403]),
        Row("/api/v0/alerts", [200, 200, 403]),
        Row("/api/v0/rules", [200, 200, 403]),
        Row("/graph-data/port/{pb}", [200, 200, 404]),
    ];
    for Row(path, want) in &apis {
        for (role, token) in tokens.iter().enumerate() {
            let r = send(&app, api(&fill(path), Some(token))).await;
            assert_eq!(
                r.status.as_u16(),
                want[role],
                "API {path} as role #{role}: {}",
                r.body
            );
        }
    }
    // Lists are narrowed, not only single items.
    let list = send(&app, api("/api/v0/devices", Some(&tokens[2])))
        .await
        .json();
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["devices"][0]["hostname"], "a.example.net");
    let page = send(&app, get("/devices", Some(&cookies[2]))).await.body;
    assert!(page.contains("a.example.net") && !page.contains("b.example.net"));
    // The dashboard: a normal user gets no cluster-wide panels and only their devices.
    let dash = send(&app, get("/", Some(&cookies[2]))).await.body;
    assert!(
        dash.contains("1 devices") && !dash.contains("id=\"dash-cluster\""),
        "{dash}"
    );
    let dash = send(&app, get("/", Some(&cookies[1]))).await.body;
    assert!(dash.contains("2 devices") && dash.contains("id=\"dash-cluster\""));
    // The admin-only navigation is shown to admins only.
    assert!(send(&app, get("/devices", Some(&cookies[0])))
        .await
        .body
        .contains("href=\"/users\""));
    assert!(!page.contains("href=\"/users\""));

    // A change refused to a reader even with a valid CSRF token.
    let csrf = csrf_of(&send(&app, get("/account", Some(&cookies[1]))).await.body);
    let r = send(
        &app,
        post_form(
            "/users",
            Some(&cookies[1]),
            &[
                ("_csrf", &csrf),
                ("username", "x"),
                ("password", "longenough"),
                ("level", "10"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(fx.store.user_by_username("x").await.unwrap().is_none());
}

#[tokio::test]
async fn logout_password_change_and_removal_end_sessions_everywhere() {
    let fx = Fixture::new().await;
    let one = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let two = fx.instance(SecurityOptions::default(), "127.0.0.2");
    let (admin_id, _) = fx.user("admin", 10).await;
    let (ops_id, ops_token) = fx.user("ops", 5).await;

    // Logout on one instance: the copied cookie is refused on both.
    let cookie = login_cookie(&one, "admin").await;
    let copy = cookie.clone();
    assert_eq!(
        send(&two, get("/devices", Some(&copy))).await.status,
        StatusCode::OK
    );
    let csrf = csrf_of(&send(&one, get("/devices", Some(&cookie))).await.body);
    let r = send(
        &one,
        post_form("/logout", Some(&cookie), &[("_csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    for app in [&one, &two] {
        let r = send(app, get("/devices", Some(&copy))).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "copied cookie after logout"
        );
        assert!(r.location().starts_with("/login"));
        let r = send(app, get("/graph-data/port/1", Some(&copy))).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "graph data after logout"
        );
    }

    // A new login gets a new session id: the old cookie stays dead.
    let fresh = login_cookie(&two, "admin").await;
    assert_ne!(fresh, cookie);
    assert_eq!(
        send(&one, get("/devices", Some(&copy))).await.status,
        StatusCode::SEE_OTHER
    );

    // The admin changes ops's password: ops's sessions end on both instances.
    let ops_cookie = login_cookie(&two, "ops").await;
    assert_eq!(
        send(&one, get("/devices", Some(&ops_cookie))).await.status,
        StatusCode::OK
    );
    let csrf = csrf_of(&send(&one, get("/users", Some(&fresh))).await.body);
    let r = send(
        &one,
        post_form(
            &format!("/users/{ops_id}/password"),
            Some(&fresh),
            &[("_csrf", &csrf), ("password", "short")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "policy: {}", r.body);
    assert!(r.body.contains("at least 8"), "{}", r.body);
    let r = send(
        &one,
        post_form(
            &format!("/users/{ops_id}/password"),
            Some(&fresh),
            &[("_csrf", &csrf), ("password", "a much longer one")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    for app in [&one, &two] {
        assert_eq!(
            send(app, get("/devices", Some(&ops_cookie))).await.status,
            StatusCode::SEE_OTHER
        );
    }
    assert_eq!(
        login_on(&two, "ops", "a much longer one").await.status,
        StatusCode::SEE_OTHER
    );

    // Removing ops ends its sessions and its token.
    let ops_cookie = login_cookie_with(&two, "ops", "a much longer one").await;
    assert_eq!(
        send(&two, api("/api/v0/devices", Some(&ops_token)))
            .await
            .status,
        StatusCode::OK
    );
    let r = send(
        &one,
        post_form(
            &format!("/users/{ops_id}/remove"),
            Some(&fresh),
            &[("_csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        send(&two, get("/devices", Some(&ops_cookie))).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        send(&two, api("/api/v0/devices", Some(&ops_token)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // An admin cannot remove themselves.
    let r = send(
        &one,
        post_form(
            &format!("/users/{admin_id}/remove"),
            Some(&fresh),
            &[("_csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

async fn login_cookie_with(app: &Router, user: &str, password: &str) -> String {
    let r = login_on(app, user, password).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    r.cookie("lookout_session").unwrap()
}

#[tokio::test]
async fn idle_sessions_end() {
    let fx = Fixture::new().await;
    let opts = SecurityOptions {
        session_idle_secs: 1,
        ..SecurityOptions::default()
    };
    let app = fx.instance(opts, "127.0.0.1");
    fx.user("admin", 10).await;
    let cookie = login_cookie(&app, "admin").await;
    assert_eq!(
        send(&app, get("/devices", Some(&cookie))).await.status,
        StatusCode::OK
    );
    // Idle for longer than the limit (the record's last_seen stays at login time).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = send(&app, get("/devices", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_throttle_per_account_and_address_across_instances() {
    let fx = Fixture::new().await;
    fx.user("admin", 10).await;
    fx.user("other", 10).await;
    let opts = SecurityOptions::default();
    let one = fx.instance(opts.clone(), "10.0.0.1");
    let two = fx.instance(opts.clone(), "10.0.0.9");
    // Five wrong passwords for admin, split across the two instances: each answered 401.
    for i in 0..opts.max_failures_per_user {
        let app = if i % 2 == 0 { &one } else { &two };
        let r = login_on(app, "admin", "wrong").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Now throttled on both instances, even with the right password.
    for app in [&one, &two] {
        let r = login_on(app, "admin", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        let wait: i64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert!(r.cookie("lookout_session").is_none());
    }
    // Another account from the same addresses is not affected.
    assert_eq!(
        login_on(&one, "other", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    // Per address: many accounts tried from one address.
    let three = fx.instance(opts.clone(), "10.0.0.3");
    for i in 0..opts.max_failures_per_address {
        let r = login_on(&three, &format!("guess{i}"), "wrong").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let r = login_on(&three, "other", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The same account from elsewhere still logs in.
    assert_eq!(
        login_on(&two, "other", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    // The auth log has every attempt with its client address.
    let log = fx.store.authlog(0, 1000).await.unwrap();
    let count = |user: &str, addr: &str, result: &str| {
        log.iter()
            .filter(|r| r.user == user && r.address == addr && r.result == result)
            .count()
    };
    assert_eq!(count("admin", "10.0.0.1", "failure"), 3);
    assert_eq!(count("admin", "10.0.0.9", "failure"), 2);
    assert_eq!(count("admin", "10.0.0.1", "throttled"), 1);
    assert_eq!(count("other", "10.0.0.3", "throttled"), 1);
    assert_eq!(count("other", "10.0.0.9", "ok"), 1);
    // The users page shows the lockout.
    let cookie = login_cookie(&two, "other").await;
    let page = send(&two, get("/users", Some(&cookie))).await.body;
    assert!(page.contains("locked for"), "{page}");
    let page = send(&two, get("/users/authlog", Some(&cookie))).await.body;
    assert!(page.contains("10.0.0.3") && page.contains("throttled"));
}

#[tokio::test]
async fn forwarded_for_only_from_trusted_proxies() {
    let fx = Fixture::new().await;
    fx.user("admin", 10).await;
    let opts = SecurityOptions {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..SecurityOptions::default()
    };
    let behind_lb = fx.instance(opts.clone(), "127.0.0.7");
    let direct = fx.instance(opts, "192.0.2.44");
    for app in [&behind_lb, &direct] {
        let form = send(app, get("/login", None)).await;
        let login = form.cookie("lookout_login").unwrap();
        let mut req = post_form(
            "/login",
            Some(&login),
            &[
                ("username", "admin"),
                ("password", "wrong"),
                ("_csrf", &csrf_of(&form.body)),
            ],
        );
        req.headers_mut()
            .insert("x-forwarded-for", "198.51.100.23".parse().unwrap());
        assert_eq!(send(app, req).await.status, StatusCode::UNAUTHORIZED);
    }
    let addrs: Vec<String> = fx
        .store
        .authlog(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.address)
        .collect();
    assert_eq!(addrs, vec!["192.0.2.44", "198.51.100.23"]);
}

#[tokio::test]
async fn users_pages_add_grant_token_and_revoke() {
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    fx.user("admin", 10).await;
    let (a, _) = fx.device("a.example.net").await;
    fx.device("b.example.net").await;
    let admin = login_cookie(&app, "admin").await;
    let csrf = csrf_of(&send(&app, get("/users", Some(&admin))).await.body);

    // Without the CSRF token: refused, nothing added.
    let r = send(
        &app,
        post_form(
            "/users",
            Some(&admin),
            &[("username", "noc"), ("password", PASSWORD), ("level", "1")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        post_form(
            "/users",
            Some(&admin),
            &[
                ("_csrf", &csrf),
                ("username", "noc"),
                ("password", PASSWORD),
                ("level", "1"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let noc = fx.store.user_by_username("noc").await.unwrap().unwrap();
    assert_eq!(noc.level, 1);
    // A bad level is a 400, a duplicate a 409.
    for (level, want) in [("7", StatusCode::BAD_REQUEST), ("1", StatusCode::CONFLICT)] {
        let r = send(
            &app,
            post_form(
                "/users",
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("username", "noc"),
                    ("password", PASSWORD),
                    ("level", level),
                ],
            ),
        )
        .await;
        assert_eq!(r.status, want, "{}", r.body);
    }

    // Grant device a by hostname: noc sees it and only it.
    let r = send(
        &app,
        post_form(
            &format!("/users/{}/grant", noc.user_id),
            Some(&admin),
            &[("_csrf", &csrf), ("device", "a.example.net")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(fx.store.device_perms(noc.user_id).await.unwrap(), vec![a]);
    let noc_cookie = login_cookie(&app, "noc").await;
    let list = send(&app, get("/devices", Some(&noc_cookie))).await.body;
    assert!(list.contains("a.example.net") && !list.contains("b.example.net"));

    // A token created on the page is shown once and works with noc's view.
    let r = send(
        &app,
        post_form(
            &format!("/users/{}/token", noc.user_id),
            Some(&admin),
            &[("_csrf", &csrf), ("description", "grafana")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let i = r.body.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    let token = r.body[i..].split('<').next().unwrap().to_string();
    assert_eq!(token.len(), 64);
    let devices = send(&app, api("/api/v0/devices", Some(&token)))
        .await
        .json();
    assert_eq!(devices["count"], 1);
    // Listed without the token itself; revoked from the list.
    let tokens = send(&app, get("/users/tokens", Some(&admin))).await.body;
    assert!(tokens.contains("grafana") && !tokens.contains(&token));
    let id = fx
        .store
        .api_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.description == "grafana")
        .unwrap()
        .id;
    let r = send(
        &app,
        post_form(
            &format!("/users/tokens/{id}/revoke"),
            Some(&admin),
            &[("_csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&app, api("/api/v0/devices", Some(&token)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Own password: the current one is required; success ends the session.
    let csrf_noc = csrf_of(&send(&app, get("/account", Some(&noc_cookie))).await.body);
    let r = send(
        &app,
        post_form(
            "/account",
            Some(&noc_cookie),
            &[
                ("_csrf", &csrf_noc),
                ("current", "wrong"),
                ("password", "new password 1"),
                ("confirm", "new password 1"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        post_form(
            "/account",
            Some(&noc_cookie),
            &[
                ("_csrf", &csrf_noc),
                ("current", PASSWORD),
                ("password", "new password 1"),
                ("confirm", "new password 1"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&app, get("/devices", Some(&noc_cookie))).await.status,
        StatusCode::SEE_OTHER
    );
    login_cookie_with(&app, "noc", "new password 1").await;
}

#[tokio::test]
async fn device_edit_and_delete_pages() {
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    fx.user("admin", 10).await;
    let (a, port_a) = fx.device("a.example.net").await;
    let mut snmp = fx.store.device(a).await.unwrap().unwrap().snmp;
    snmp.community = "s3cret-community".into();
    fx.store
        .update_device_settings(a, &snmp, 0, false)
        .await
        .unwrap();
    let admin = login_cookie(&app, "admin").await;

    let page = send(&app, get(&format!("/device/{a}"), Some(&admin)))
        .await
        .body;
    assert!(
        page.contains(&format!("/device/{a}/edit")),
        "edit link for admins"
    );
    let form = send(&app, get(&format!("/device/{a}/edit"), Some(&admin))).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        !form.body.contains("s3cret-community"),
        "secrets never in the page"
    );
    let csrf = csrf_of(&form.body);
    let edit = |fields: Vec<(&'static str, String)>| {
        let mut f: Vec<(&str, String)> = vec![("_csrf", csrf.clone())];
        f.extend(fields);
        f
    };
    let post = |fields: Vec<(&str, String)>, path: String| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form(&path, Some(&admin), &pairs)
    };
    let path = format!("/device/{a}/edit");
    // A blank community keeps the stored one; the port changes.
    let r = send(
        &app,
        post(
            edit(vec![
                ("snmpver", "v2c".into()),
                ("port", "1161".into()),
                ("community", "".into()),
            ]),
            path.clone(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let d = fx.store.device(a).await.unwrap().unwrap();
    assert_eq!(
        (d.snmp.port, d.snmp.community.as_str()),
        (1161, "s3cret-community")
    );
    let r = send(
        &app,
        post(
            edit(vec![
                ("community", "new-one".into()),
                ("disabled", "1".into()),
            ]),
            path.clone(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let d = fx.store.device(a).await.unwrap().unwrap();
    assert_eq!(d.snmp.community, "new-one");
    assert!(d.disabled);
    assert_eq!(d.device_id, a);
    assert_eq!(fx.store.ports(a).await.unwrap()[0].port_id, port_a);
    // A bad value: the form again with the error, nothing stored.
    let r = send(
        &app,
        post(edit(vec![("port", "99999".into())]), path.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"edit-error\""), "{}", r.body);
    assert_eq!(fx.store.device(a).await.unwrap().unwrap().snmp.port, 1161);
    // Without CSRF: refused.
    let r = send(&app, post_form(&path, Some(&admin), &[("port", "162")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Delete needs the typed hostname.
    let del = format!("/device/{a}/delete");
    let r = send(
        &app,
        post(edit(vec![("confirm", "wrong".into())]), del.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(fx.store.device(a).await.unwrap().is_some());
    let r = send(
        &app,
        post(edit(vec![("confirm", "a.example.net".into())]), del),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(fx.store.device(a).await.unwrap().is_none());
}

/// The device list at a size where paging matters: down devices first, search, filters,
/// sorting and pages, all in the server's answer (the browser test drives the same form).
#[tokio::test]
async fn device_list_search_filters_and_pages() {
    use lookout_core::{DevicePollUpdate, DeviceStatus};
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    fx.user("admin", 10).await;
    let cookie = login_cookie(&app, "admin").await;
    for i in 0..130 {
        let (id, _) = fx.device(&format!("sw{i:03}.example.net")).await;
        let down = i % 40 == 7; // sw007, sw047, sw087, sw127
        let update = DevicePollUpdate {
            sys_name: Some(format!("sw{i:03}")),
            sys_descr: None,
            sys_object_id: None,
            sys_contact: None,
            sys_location: Some(if i < 65 { "DC1".into() } else { "DC2".into() }),
            os: Some(if i % 2 == 0 {
                "ios".into()
            } else {
                "junos".into()
            }),
            hardware: None,
            version: None,
            serial: None,
            uptime: Some(1000),
            uptime_source: None,
            status: if down {
                DeviceStatus::Down
            } else {
                DeviceStatus::Up
            },
            status_reason: if down { "icmp".into() } else { String::new() },
            last_polled: chrono::Utc::now(),
            last_polled_timetaken: 0.2,
        };
        fx.store.update_device_poll(id, &update).await.unwrap();
    }
    let ids_in = |body: &str| -> Vec<String> {
        body.split("data-device-id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    };
    let page = send(&app, get("/devices", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("130 devices") && page.body.contains("4 down"),
        "summary"
    );
    assert_eq!(ids_in(&page.body).len(), 100, "first page of 100");
    let first_rows: Vec<&str> = page
        .body
        .split("data-state=\"")
        .skip(1)
        .take(5)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(
        first_rows,
        ["down", "down", "down", "down", "up"],
        "down devices first"
    );
    assert!(
        page.body.contains("1–100 of 130") && page.body.contains("rel=\"next\""),
        "pager"
    );
    let p2 = send(&app, get("/devices?page=2", Some(&cookie))).await.body;
    assert_eq!(ids_in(&p2).len(), 30);

    let hit = send(&app, get("/devices?q=SW12", Some(&cookie))).await.body;
    assert_eq!(ids_in(&hit).len(), 10, "sw120..sw129");
    let down = send(&app, get("/devices?state=down&os=junos", Some(&cookie)))
        .await
        .body;
    assert_eq!(ids_in(&down).len(), 4);
    let dc2 = send(&app, get("/devices?q=dc2&state=up&per=250", Some(&cookie)))
        .await
        .body;
    assert_eq!(ids_in(&dc2).len(), 63, "65 in DC2 minus sw087, sw127");
    let none = send(&app, get("/devices?q=nothing-like-this", Some(&cookie)))
        .await
        .body;
    assert!(none.contains("id=\"no-match\""));
    let sorted = send(&app, get("/devices?sort=hostname&dir=desc", Some(&cookie)))
        .await
        .body;
    assert!(sorted.find("sw129.example.net").unwrap() < sorted.find("sw128.example.net").unwrap());
    // Bad values fall back to defaults instead of failing.
    let bad = send(
        &app,
        get("/devices?page=x&per=7&sort=%3Cscript%3E", Some(&cookie)),
    )
    .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(!bad.body.contains("<script>"));
}

/// With Redis configured the session records live there (not in the store): a session started
/// on one instance is valid on another, logout and a password change end it on both.
#[tokio::test]
async fn sessions_in_redis_are_shared_and_revocable() {
    let fx = Fixture::new().await;
    let coord = common::fixture::redis_coord().await;
    let one = fx.instance_with(coord.clone(), SecurityOptions::default(), "127.0.0.1");
    let two = fx.instance_with(coord.clone(), SecurityOptions::default(), "127.0.0.2");
    let (admin_id, _) = fx.user("admin", 10).await;
    let (ops_id, _) = fx.user("ops", 5).await;

    let cookie = login_cookie(&one, "admin").await;
    assert!(
        fx.store.user_sessions(admin_id).await.unwrap().is_empty(),
        "the record is in Redis, not the store"
    );
    assert_eq!(coord.session_list(admin_id).await.unwrap().len(), 1);
    assert_eq!(
        send(&two, get("/devices", Some(&cookie))).await.status,
        StatusCode::OK
    );
    let page = send(&two, get(&format!("/users/{admin_id}"), Some(&cookie)))
        .await
        .body;
    assert!(
        page.contains("id=\"sessions\""),
        "the users page lists Redis sessions"
    );

    let csrf = csrf_of(&send(&two, get("/devices", Some(&cookie))).await.body);
    let r = send(
        &two,
        post_form("/logout", Some(&cookie), &[("_csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&one, get("/devices", Some(&cookie))).await.status,
        StatusCode::SEE_OTHER
    );

    // Password change through one instance ends ops's sessions on the other.
    let admin = login_cookie(&one, "admin").await;
    let ops = login_cookie(&two, "ops").await;
    let ops2 = login_cookie(&one, "ops").await;
    assert_eq!(coord.session_list(ops_id).await.unwrap().len(), 2);
    let csrf = csrf_of(&send(&one, get("/users", Some(&admin))).await.body);
    let r = send(
        &one,
        post_form(
            &format!("/users/{ops_id}/password"),
            Some(&admin),
            &[("_csrf", &csrf), ("password", "another long one")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    for c in [&ops, &ops2] {
        assert_eq!(
            send(&two, get("/devices", Some(c))).await.status,
            StatusCode::SEE_OTHER
        );
    }
    assert!(coord.session_list(ops_id).await.unwrap().is_empty());
}

/// A device page says why a device is not polled, and that a down device's values are the
/// last known ones.
#[tokio::test]
async fn device_page_says_why_and_marks_last_known_values() {
    use lookout_core::{DevicePollUpdate, DeviceStatus};
    let fx = Fixture::new().await;
    let coord = lookout_coord::Coord::memory();
    let app = fx.instance_with(coord.clone(), SecurityOptions::default(), "127.0.0.1");
    fx.user("admin", 10).await;
    let cookie = login_cookie(&app, "admin").await;
    let (fresh, _) = fx.device("fresh.example.net").await;
    let page = send(&app, get(&format!("/device/{fresh}"), Some(&cookie)))
        .await
        .body;
    assert!(page.contains("queued for its first poll"), "{page}");

    // The master says group 7 has no poller: a device of group 7 says so.
    let (lonely, _) = fx.device("lonely.example.net").await;
    let d = fx.store.device(lonely).await.unwrap().unwrap();
    fx.store
        .update_device_settings(lonely, &d.snmp, 7, false)
        .await
        .unwrap();
    let master = lookout_coord::NodeInfo {
        node_id: "m".into(),
        hostname: "m".into(),
        version: "test".into(),
        roles: vec!["dispatcher".into()],
        groups: vec![0],
        workers: 0,
        started_at: None,
        stats: [("group.7.unserved".to_string(), 1.0)].into(),
    };
    coord
        .heartbeat(&master, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let page = send(&app, get(&format!("/device/{lonely}"), Some(&cookie)))
        .await
        .body;
    assert!(page.contains("no poller serves group 7"), "{page}");

    // Down after a successful poll: the values are marked as last known.
    let update = |status| DevicePollUpdate {
        sys_name: Some("sw".into()),
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: None,
        os: Some("ios".into()),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(10),
        uptime_source: None,
        status,
        status_reason: if status == DeviceStatus::Up {
            String::new()
        } else {
            "snmp".into()
        },
        last_polled: chrono::Utc::now(),
        last_polled_timetaken: 0.1,
    };
    fx.store
        .update_device_poll(fresh, &update(DeviceStatus::Up))
        .await
        .unwrap();
    let page = send(&app, get(&format!("/device/{fresh}"), Some(&cookie)))
        .await
        .body;
    assert!(!page.contains("id=\"last-known\"") && !page.contains("id=\"not-polled\""));
    fx.store
        .update_device_poll(fresh, &update(DeviceStatus::Down))
        .await
        .unwrap();
    let page = send(&app, get(&format!("/device/{fresh}"), Some(&cookie)))
        .await
        .body;
    assert!(
        page.contains("id=\"last-known\"") && page.contains("Down (snmp)"),
        "{page}"
    );

    // Disabled: said, with how to enable it.
    let d = fx.store.device(fresh).await.unwrap().unwrap();
    fx.store
        .update_device_settings(fresh, &d.snmp, 0, true)
        .await
        .unwrap();
    let page = send(&app, get(&format!("/device/{fresh}"), Some(&cookie)))
        .await
        .body;
    assert!(page.contains("disabled: not polled"), "{page}");
}

/// Every state-changing page route refuses a form without the session's CSRF token (403),
/// whatever else it carries, and changes nothing. (The API authenticates with X-Auth-Token
/// only, never with the session cookie, so a browser cannot be made to call it.)
#[tokio::test]
async fn csrf_is_refused_on_every_state_changing_route() {
    let fx = Fixture::new().await;
    let app = fx.instance(SecurityOptions::default(), "127.0.0.1");
    let (admin_id, _) = fx.user("admin", 10).await;
    let (other, _) = fx.user("other", 5).await;
    let (dev, _) = fx.device("a.example.net").await;
    let cookie = login_cookie(&app, "admin").await;
    let routes = [
        "/logout".to_string(),
        "/account".into(),
        "/users".into(),
        format!("/users/{other}/level"),
        format!("/users/{other}/password"),
        format!("/users/{other}/logout"),
        format!("/users/{other}/remove"),
        format!("/users/{other}/grant"),
        format!("/users/{other}/revoke/{dev}"),
        format!("/users/{other}/token"),
        "/users/tokens/1/revoke".into(),
        "/devices/add".into(),
        format!("/device/{dev}/edit"),
        format!("/device/{dev}/delete"),
        "/alerts/1/ack".into(),
        "/alerts/1/unack".into(),
        "/alerts/rules/new".into(),
        "/alerts/rules/1".into(),
        "/alerts/rules/1/delete".into(),
        "/alerts/transports/1/test".into(),
        "/alerts/maintenance".into(),
        "/alerts/maintenance/1/remove".into(),
    ];
    let fields: [(&str, &str); 8] = [
        ("username", "x"),
        ("password", "a long enough password"),
        ("level", "10"),
        ("device", "a.example.net"),
        ("hostname", "b.example.net"),
        ("confirm", "a.example.net"),
        ("port", "1161"),
        ("_csrf", "not-the-token"),
    ];
    for route in &routes {
        for form in [&fields[..7], &fields[..]] {
            let r = send(&app, post_form(route, Some(&cookie), form)).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "POST {route} without the CSRF token: {}",
                r.body
            );
        }
    }
    // Nothing changed: the session, the users, the device.
    assert_eq!(
        send(&app, get("/devices", Some(&cookie))).await.status,
        StatusCode::OK
    );
    assert_eq!(fx.store.user(other).await.unwrap().unwrap().level, 5);
    assert!(fx.store.user_by_username("x").await.unwrap().is_none());
    assert_eq!(fx.store.device(dev).await.unwrap().unwrap().snmp.port, 161);
    assert!(fx
        .store
        .device_by_hostname("b.example.net")
        .await
        .unwrap()
        .is_none());
    assert!(fx.store.api_tokens().await.unwrap().len() == 2);
    assert_eq!(fx.store.user(admin_id).await.unwrap().unwrap().level, 10);
}
