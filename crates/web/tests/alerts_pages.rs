//! The alert pages against a real store and engine with a real alert (see
//! `alerts_fixture`): every page renders with the alert, the device's `<script>` sysName is
//! escaped everywhere it appears, forms need the CSRF token and admin, ack/unack, the rule
//! form's test against now and its inline error with the column, rule save/edit/delete,
//! transports with masked secrets and a send test to a receiver of the test's own,
//! maintenance add/remove, and the read-only and normal users' views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts_fixture;
mod common;

use alerts_fixture::*;
use axum::http::StatusCode;
use common::{csrf_of, get, login_on, post_form, send, Resp, PASSWORD, USER};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Browser<'a> {
    app: &'a AlertApp,
    cookie: String,
}

impl<'a> Browser<'a> {
    async fn login(app: &'a AlertApp, user: &str) -> Browser<'a> {
        let r = login_on(&app.router, user, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        Browser {
            app,
            cookie: r.cookie("lookout_session").unwrap(),
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        send(&self.app.router, get(uri, Some(&self.cookie))).await
    }

    async fn page(&self, uri: &str) -> String {
        let r = self.get(uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        assert_escaped(&r.body);
        r.body
    }

    async fn post(&self, uri: &str, form: &[(&str, &str)]) -> Resp {
        let csrf = csrf_of(&self.page("/alerts/log").await);
        let mut f: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        f.extend_from_slice(form);
        let r = send(&self.app.router, post_form(uri, Some(&self.cookie), &f)).await;
        assert_escaped(&r.body);
        r
    }
}

/// `s` escaped as askama writes it (numeric entities).
fn esc(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The device's sysName is a script: it must only ever appear escaped.
fn assert_escaped(html: &str) {
    assert!(!html.contains("<script>"), "unescaped script in:\n{html}");
}

#[tokio::test]
async fn alerts_page_ack_and_unack() {
    let app = alert_app().await;
    let b = Browser::login(&app, USER).await;
    let id = app.alert_id;
    let html = b.page("/alerts").await;
    assert!(
        html.contains("<a href=\"/alerts\">Alerts</a>"),
        "nav link: {html}"
    );
    assert!(html.contains(&format!("data-alert-id=\"{id}\"")), "{html}");
    assert!(html.contains("Devices up/down"));
    assert!(html.contains(">r1</a>"));
    assert!(html.contains(&esc(EVIL)), "sysName shown escaped: {html}");
    assert!(html.contains(&format!("action=\"/alerts/{id}/ack\"")));
    assert!(html.contains("1 critical"), "{html}");

    // Filters.
    let none = b.page("/alerts?severity=warning").await;
    assert!(!none.contains("data-alert-id"), "{none}");
    assert!(none.contains("No alerts match"));
    let r = b.get("/alerts?state=bogus").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"error\""), "{}", r.body);
    assert!(b.page("/alerts?device=r1").await.contains("data-alert-id"));

    // No CSRF token: refused, nothing changes.
    let ack = format!("/alerts/{id}/ack");
    let r = send(
        &app.router,
        post_form(&ack, Some(&b.cookie), &[("note", "x")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.alert(id).await.unwrap().unwrap().state, 1);

    let r = b
        .post(
            &ack,
            &[("note", "<i>looking</i>"), ("f_severity", "critical")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/alerts?severity=critical&notice=acked");
    assert_eq!(app.store.alert(id).await.unwrap().unwrap().state, 2);
    let html = b.page(r.location()).await;
    assert!(html.contains("id=\"notice\""), "{html}");
    assert!(html.contains(&esc("<i>looking</i>")), "{html}");
    assert!(html.contains("until clear"), "{html}");
    assert!(html.contains(&format!("action=\"/alerts/{id}/unack\"")));
    let r = b.post(&ack, &[("until", "yesterday")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("is not a time"), "{}", r.body);

    let unack = format!("/alerts/{id}/unack");
    let r = b.post(&unack, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(app.store.alert(id).await.unwrap().unwrap().state, 1);
    // Twice: the page says why, with a 409.
    let r = b.post(&unack, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("not acknowledged"), "{}", r.body);

    // The log shows the three transitions.
    let log = b.page("/alerts/log").await;
    assert_eq!(log.matches("data-log-id=").count(), 3, "{log}");
    assert!(log.contains("unacknowledged"));
    assert!(
        log.contains(&format!("note: {}", esc("<i>looking</i>"))),
        "{log}"
    );
    let one = b.page("/alerts/log?limit=1&start=1").await;
    assert_eq!(one.matches("data-log-id=").count(), 1, "{one}");
    assert!(
        one.contains(">newer</a>") && one.contains(">older</a>"),
        "{one}"
    );
}

#[tokio::test]
async fn rule_pages_test_save_edit_delete() {
    let app = alert_app().await;
    let b = Browser::login(&app, USER).await;
    let list = b.page("/alerts/rules").await;
    assert!(list.contains("Devices up/down"), "{list}");
    assert!(list.contains("macros.device_down"));
    assert!(
        list.contains("href=\"/alerts?rule="),
        "open alert count links: {list}"
    );
    let form = b.page("/alerts/rules/new").await;
    assert!(form.contains("id=\"rule\""));
    assert!(form.contains("noc-hook"), "transport choice: {form}");

    // Test against now: the device is down, its sysName is a script (escaped in the faults).
    let r = b
        .post(
            "/alerts/rules/new",
            &[
                ("action", "test"),
                ("rule", "device.sysName ~ \"script\" && macros.device_down"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("data-device-id=\"{}\"", app.device_id)),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("device.sysName={}", esc(EVIL))),
        "{}",
        r.body
    );
    let r = b
        .post(
            "/alerts/rules/new",
            &[("action", "test"), ("rule", "macros.device_up")],
        )
        .await;
    assert!(r.body.contains("id=\"rule-test-none\""), "{}", r.body);

    // A rule with a typo: shown in place with the caret under its column and the known names.
    let r = b
        .post(
            "/alerts/rules/new",
            &[
                ("action", "test"),
                ("name", "t"),
                (
                    "rule",
                    "macros.device_down && ports.ifOperStatu == \"down\"",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("id=\"rule-error\""), "{}", r.body);
    assert!(r.body.contains("column 23"), "{}", r.body);
    let caret = esc(&format!(
        "macros.device_down && ports.ifOperStatu == \"down\"\n{}^",
        " ".repeat(22)
    ));
    assert!(r.body.contains(&caret), "{}", r.body);
    assert!(
        r.body.contains("ports.ifOperStatus"),
        "known names: {}",
        r.body
    );
    assert!(
        r.body.contains(&format!(
            "value=\"{}",
            esc("macros.device_down && ports.ifOperStatu")
        )),
        "the form keeps the text: {}",
        r.body
    );
    let before = app.store.alert_rules().await.unwrap().len();
    let r = b
        .post(
            "/alerts/rules/new",
            &[
                ("action", "save"),
                ("name", "t"),
                ("rule", "storage.nope > 1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.store.alert_rules().await.unwrap().len(),
        before,
        "nothing saved"
    );

    // Save, edit, delete.
    let tid = app.transport_id.to_string();
    let r = b
        .post(
            "/alerts/rules/new",
            &[
                ("action", "save"),
                ("name", "Disk <full>"),
                ("rule", "storage.storage_perc > 95"),
                ("severity", "warning"),
                ("delay", "5m"),
                ("recovery", "1"),
                ("devices", "r1"),
                ("transport", &tid),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/alerts/rules?notice=saved");
    let rule = app
        .store
        .alert_rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Disk <full>")
        .unwrap();
    assert_eq!(rule.severity, "warning");
    assert_eq!(rule.transport_ids, vec![app.transport_id]);
    assert!(rule.extra.contains("\"delay\":300"), "{}", rule.extra);
    let list = b.page("/alerts/rules?notice=saved").await;
    assert!(list.contains(&esc("Disk <full>")), "{list}");
    let edit = b.page(&format!("/alerts/rules/{}", rule.id)).await;
    assert!(edit.contains("value=\"5m\""), "{edit}");
    assert!(edit.contains("value=\"r1\""), "{edit}");
    assert!(
        edit.contains(&format!("<option value=\"{tid}\" selected>")),
        "{edit}"
    );
    let r = b
        .post(
            &format!("/alerts/rules/{}", rule.id),
            &[
                ("action", "save"),
                ("name", "Disk <full>"),
                ("rule", "storage.storage_perc > 97"),
                ("severity", "critical"),
                ("delay", "0"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let edited = app
        .store
        .alert_rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r2| r2.id == rule.id)
        .unwrap();
    assert_eq!(edited.rule, "storage.storage_perc > 97");
    assert_eq!(edited.severity, "critical");
    assert!(
        edited.transport_ids.is_empty(),
        "no transport selected: the defaults"
    );
    // Built-in rules have no delete button and are refused.
    let builtin = app
        .store
        .alert_rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.builtin)
        .unwrap();
    let page = b.page(&format!("/alerts/rules/{}", builtin.id)).await;
    assert!(!page.contains("/delete\""), "{page}");
    let r = b
        .post(&format!("/alerts/rules/{}/delete", builtin.id), &[])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = b
        .post(&format!("/alerts/rules/{}/delete", rule.id), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(app
        .store
        .alert_rules()
        .await
        .unwrap()
        .iter()
        .all(|r2| r2.id != rule.id));
}

/// A receiver of the test's own on loopback: answers one request 200, hands it back.
async fn one_shot_receiver() -> (String, tokio::task::JoinHandle<String>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then the body by Content-Length.
        loop {
            let n = s.read(&mut buf).await.unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    break;
                }
            }
            assert!(n > 0, "receiver: connection closed early");
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8_lossy(&req).to_string()
    });
    (url, task)
}

#[tokio::test]
async fn transports_outbox_and_maintenance_pages() {
    let app = alert_app().await;
    let b = Browser::login(&app, USER).await;

    let html = b.page("/alerts/transports").await;
    assert!(html.contains("noc-hook"), "{html}");
    assert!(!html.contains(SECRET), "secret shown: {html}");
    assert!(html.contains("********"), "masked: {html}");
    // A test to a receiver that is not there: the page says so.
    let r = b
        .post(
            &format!("/alerts/transports/{}/test", app.transport_id),
            &[],
        )
        .await;
    assert!(
        r.status.is_server_error() && r.status != StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        r.status
    );
    assert!(
        r.body.contains("failed") || r.body.contains("no answer"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(SECRET));
    // And to one that is.
    let (url, got) = one_shot_receiver().await;
    let t = app
        .store
        .add_alert_transport(&lookout_store::AlertTransport {
            transport_id: 0,
            transport_name: "test-receiver".into(),
            transport_type: "webhook".into(),
            is_default: false,
            transport_config: serde_json::json!({"url": url}).to_string(),
        })
        .await
        .unwrap();
    let r = b
        .post(&format!("/alerts/transports/{}/test", t.transport_id), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("Test notification sent through test-receiver"),
        "{}",
        r.body
    );
    let req = got.await.unwrap();
    assert!(req.starts_with("POST /hook"), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("idempotency-key: lookout-test:"),
        "{req}"
    );

    let out = b.page("/alerts/outbox").await;
    assert_eq!(out.matches("data-outbox-id=").count(), 1, "{out}");
    assert!(out.contains("data-state=\"pending\""), "{out}");
    assert!(out.contains("noc-hook"));
    assert!(b
        .page("/alerts/outbox?state=delivered")
        .await
        .contains("No messages"));

    // Maintenance: a refused window keeps the form, a good one is listed and in force.
    let r = b
        .post("/alerts/maintenance", &[("title", "x"), ("duration", "2h")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("at least one device"), "{}", r.body);
    assert!(r.body.contains("value=\"2h\""), "{}", r.body);
    let r = b
        .post(
            "/alerts/maintenance",
            &[
                ("title", "core <swap>"),
                ("devices", "r1"),
                ("duration", "2h"),
                ("behavior", "mute"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let ws = app.store.maintenances().await.unwrap();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].items, vec![("device".to_string(), app.device_id)]);
    assert_eq!(ws[0].behavior, 1);
    assert_eq!(
        app.engine.catalog().maintenances.len(),
        1,
        "the engine reloaded"
    );
    let html = b.page("/alerts/maintenance").await;
    assert!(html.contains(&esc("core <swap>")), "{html}");
    assert!(html.contains(">active<"), "{html}");
    let r = b
        .post(
            &format!("/alerts/maintenance/{}/remove", ws[0].schedule_id),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.store.maintenances().await.unwrap().is_empty());
}

#[tokio::test]
async fn read_only_and_normal_users() {
    let app = alert_app().await;
    let id = app.alert_id;
    let reader = Browser::login(&app, "reader").await;
    for uri in [
        "/alerts",
        "/alerts/log",
        "/alerts/rules",
        "/alerts/rules/1",
        "/alerts/transports",
        "/alerts/outbox",
        "/alerts/maintenance",
    ] {
        let html = reader.page(uri).await;
        assert!(
            !html.contains("/ack\""),
            "{uri}: ack form shown to a reader"
        );
        assert!(
            !html.contains("value=\"save\""),
            "{uri}: save shown to a reader"
        );
        assert!(!html.contains("class=\"send-test"), "{uri}");
        assert!(!html.contains("add-maintenance"), "{uri}");
    }
    // The reader may test a rule (nothing is written) but not act.
    let r = reader
        .post(
            "/alerts/rules/new",
            &[("action", "test"), ("rule", "macros.device_down")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for (uri, form) in [
        (format!("/alerts/{id}/ack"), vec![("note", "x")]),
        (
            "/alerts/rules/new".to_string(),
            vec![
                ("action", "save"),
                ("name", "x"),
                ("rule", "macros.device_down"),
            ],
        ),
        (
            "/alerts/maintenance".to_string(),
            vec![("title", "x"), ("devices", "r1"), ("duration", "1h")],
        ),
        (
            format!("/alerts/transports/{}/test", app.transport_id),
            vec![],
        ),
    ] {
        let r = reader.post(&uri, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}: {}", r.body);
    }
    assert_eq!(app.store.alert(id).await.unwrap().unwrap().state, 1);
    assert!(app.store.maintenances().await.unwrap().is_empty());

    // A normal user (level 1) has no device grants yet: refused.
    let normal = Browser::login(&app, "normal").await;
    for uri in ["/alerts", "/alerts/rules", "/alerts/log"] {
        assert_eq!(normal.get(uri).await.status, StatusCode::FORBIDDEN, "{uri}");
    }
    // Without a session: to the login form.
    let r = send(&app.router, get("/alerts", None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
}
