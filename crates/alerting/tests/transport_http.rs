//! The HTTP transports against a real HTTP server of the test's own on 127.0.0.1: what
//! arrives (method, path, headers, body shape), how answers are classified (500
//! transient, 404 permanent, 429 transient, a redirect permanent, no answer transient
//! after the configured timeout, a refused connection transient), that no secret shows
//! in what a delivery reports, and reachability checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_common;

use lookout_alerting::transport::{check_reachable, DeliveryError};
use lookout_alerting::NotificationKind;
use serde_json::json;
use transport_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_the_notification_with_its_idempotency_key() {
    let rx = Receiver::start().await;
    let t = build(
        "webhook",
        json!({"url": rx.url("/hook?token=s3cr3t"), "headers": {"Authorization": "Bearer tok3n", "X-Team": "noc"}}),
    );
    let n = notification();
    let d = send(&t, &n).await.unwrap();
    assert_eq!(d.detail, format!("HTTP 200 from {}", rx.url("/hook")));
    let r = rx.only_request();
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri, "/hook?token=s3cr3t");
    assert_eq!(
        r.header("idempotency-key"),
        Some("lookout-alert:r7:d3:ports:12:alert:0")
    );
    assert_eq!(r.header("authorization"), Some("Bearer tok3n"));
    assert_eq!(r.header("x-team"), Some("noc"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("user-agent").unwrap().starts_with("Lookout/"));
    let body = r.json();
    assert_eq!(body["idempotency_key"], n.idempotency_key);
    assert_eq!(body["rule_name"], "Port status up/down");
    assert_eq!(body["faults"][0]["label"], "xe-0/0/1");

    // A retry of the same notification carries the same key; the next one its own.
    let mut next = n.clone();
    next.kind = NotificationKind::Recovery;
    next.sequence = 1;
    next.idempotency_key = "lookout-alert:r7:d3:ports:12:recovery:1".into();
    send(&t, &n).await.unwrap();
    send(&t, &next).await.unwrap();
    let keys: Vec<_> = rx
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[2], "lookout-alert:r7:d3:ports:12:recovery:1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_body_template_method_and_configured_idempotency_header_overridden() {
    let rx = Receiver::start().await;
    let t = build(
        "webhook",
        json!({
            "url": rx.url("/put"),
            "method": "put",
            "headers": {"Content-Type": "text/plain", "Idempotency-Key": "mine"},
            "body": "{{ severity|upper }} {{ hostname }} {{ faults|length }} fault(s)",
        }),
    );
    send(&t, &notification()).await.unwrap();
    let r = rx.only_request();
    assert_eq!(r.method, "PUT");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(
        r.header("idempotency-key"),
        Some("lookout-alert:r7:d3:ports:12:alert:0")
    );
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        "CRITICAL core1.example.net 1 fault(s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_classified() {
    let rx = Receiver::start().await;
    let t = build("webhook", json!({"url": rx.url("/hook?token=s3cr3t")}));
    let n = notification();
    for (code, transient) in [
        (500, true),
        (503, true),
        (429, true),
        (408, true),
        (404, false),
        (400, false),
        (401, false),
        (301, false),
    ] {
        rx.set_status(code);
        let e = send(&t, &n).await.unwrap_err();
        assert_eq!(e.is_transient(), transient, "HTTP {code}: {e:?}");
        assert!(
            e.message()
                .starts_with(&format!("HTTP {code} from {}", rx.url("/hook"))),
            "{e}"
        );
        assert!(!e.message().contains("s3cr3t"), "{e}");
    }
    rx.set_status(500);
    let e = send(&t, &n).await.unwrap_err();
    // The start of the answer is in the message: receivers say why there.
    assert!(e.message().ends_with(": {\"answered\": 500}"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_transient_after_the_timeout() {
    let silent = Silent::start().await;
    let url = format!("http://{}/hook?token=s3cr3t", silent.addr);
    let t = build("webhook", json!({"url": url, "timeout_secs": 1}));
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(matches!(e, DeliveryError::Transient(_)), "{e:?}");
    assert_eq!(
        e.message(),
        format!("POST http://{}/hook: no answer within 1.0 s", silent.addr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_transient() {
    let port = closed_port();
    let t = build(
        "webhook",
        json!({"url": format!("http://127.0.0.1:{port}/hook")}),
    );
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.message().starts_with(&format!(
            "POST http://127.0.0.1:{port}/hook: cannot connect"
        )),
        "{e}"
    );
    let e = check_reachable(&row(
        "webhook",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    ))
    .await
    .unwrap_err();
    assert!(e.contains("cannot connect to 127.0.0.1"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reachability_check_connects_without_sending() {
    let rx = Receiver::start().await;
    let ok = check_reachable(&row("slack", json!({"url": rx.url("/services/T/B/X")})))
        .await
        .unwrap();
    assert_eq!(
        ok,
        format!(
            "http://127.0.0.1:{}: connected to {}",
            rx.addr.port(),
            rx.addr
        )
    );
    assert!(rx.requests().is_empty(), "a check sends nothing");
    let bad = check_reachable(&row("slack", json!({"url": "ftp://x"})))
        .await
        .unwrap_err();
    assert!(bad.starts_with("`url`: scheme `ftp`"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_teams_discord_post_their_shapes_and_hide_the_webhook_path() {
    let rx = Receiver::start().await;
    let n = notification();

    let slack = build(
        "slack",
        json!({"url": rx.url("/services/T0/B0/S3CR3T"), "channel": "#noc"}),
    );
    let d = send(&slack, &n).await.unwrap();
    assert_eq!(
        d.detail,
        format!("HTTP 200 from http://{}/********", rx.addr)
    );
    let r = rx.only_request();
    assert_eq!(r.uri, "/services/T0/B0/S3CR3T");
    let v = r.json();
    assert_eq!(v["channel"], "#noc");
    assert_eq!(
        v["attachments"][0]["title"],
        "CRITICAL alert: Port status up/down on core1.example.net"
    );
    assert_eq!(v["attachments"][0]["color"], "#d50000");
    assert!(v["attachments"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Faults:"));
    rx.clear();

    let teams = build(
        "teams",
        json!({"url": rx.url("/webhookb2/S3CR3T"), "format": "adaptive", "title": "{{ rule }}"}),
    );
    send(&teams, &n).await.unwrap();
    let v = rx.only_request().json();
    assert_eq!(v["type"], "message");
    assert_eq!(
        v["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(
        v["attachments"][0]["content"]["body"][0]["text"],
        "Port status up/down"
    );
    rx.clear();

    let teams = build("teams", json!({"url": rx.url("/webhookb2/S3CR3T")}));
    send(&teams, &n).await.unwrap();
    let v = rx.only_request().json();
    assert_eq!(v["@type"], "MessageCard");
    assert_eq!(v["themeColor"], "d50000");
    rx.clear();

    let discord = build(
        "discord",
        json!({"url": rx.url("/api/webhooks/1/S3CR3T"), "username": "lookout"}),
    );
    let mut rec = n.clone();
    rec.kind = NotificationKind::Recovery;
    let e = send(&discord, &rec).await.unwrap();
    assert!(!e.detail.contains("S3CR3T"));
    let v = rx.only_request().json();
    assert_eq!(v["username"], "lookout");
    assert_eq!(
        v["embeds"][0]["title"],
        "CRITICAL recovery: Port status up/down on core1.example.net"
    );
    assert_eq!(v["embeds"][0]["color"], 0x2E_B8_86);
    assert_eq!(v["allowed_mentions"]["parse"], json!([]));

    // A 404 (a deleted webhook) is permanent and does not show the token either.
    rx.set_status(404);
    let e = send(&slack, &n).await.unwrap_err();
    assert!(!e.is_transient());
    assert!(!e.message().contains("S3CR3T"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_sends_message_with_the_token_in_the_path_only() {
    let rx = Receiver::start().await;
    let t = build(
        "telegram",
        json!({"bot_token": "123456:S3CR3T", "chat_id": -10042, "api_url": rx.url("/"), "body": "{{ faults|length }} fault"}),
    );
    let d = send(&t, &notification()).await.unwrap();
    assert_eq!(
        d.detail,
        format!("HTTP 200 from {}", rx.url("/bot********/sendMessage"))
    );
    let r = rx.only_request();
    assert_eq!(r.uri, "/bot123456:S3CR3T/sendMessage");
    assert_eq!(
        r.json(),
        json!({"chat_id": -10042, "text": "CRITICAL alert: Port status up/down on core1.example.net\n\n1 fault", "disable_web_page_preview": true})
    );
    rx.set_status(403);
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(!e.is_transient());
    assert!(!e.message().contains("S3CR3T"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_triggers_and_resolves_one_dedup_key() {
    let rx = Receiver::start().await;
    let t = build(
        "pagerduty",
        json!({"routing_key": "R0UT1NGK3Y", "api_url": rx.url("")}),
    );
    let n = notification();
    rx.set_status(202);
    let d = send(&t, &n).await.unwrap();
    assert_eq!(d.detail, format!("HTTP 202 from {}", rx.url("/v2/enqueue")));
    let mut rec = n.clone();
    rec.kind = NotificationKind::Recovery;
    rec.sequence = 1;
    send(&t, &rec).await.unwrap();
    let r = rx.requests();
    assert_eq!(r.len(), 2);
    assert!(r
        .iter()
        .all(|r| r.method == "POST" && r.uri == "/v2/enqueue"));
    let (trigger, resolve) = (r[0].json(), r[1].json());
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UT1NGK3Y");
    assert_eq!(trigger["payload"]["source"], "core1.example.net");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], "lookout-alert-42");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    rx.set_status(400);
    let e = send(&t, &n).await.unwrap_err();
    assert!(
        !e.is_transient() && !e.message().contains("R0UT1NGK3Y"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie_creates_by_alias_and_closes_it() {
    let rx = Receiver::start().await;
    let t = build(
        "opsgenie",
        json!({"api_key": "G3N13K3Y", "api_url": rx.url("/"), "tags": ["network"], "responders": [{"type": "team", "name": "NOC"}]}),
    );
    let n = notification();
    rx.set_status(202);
    send(&t, &n).await.unwrap();
    let mut rec = n.clone();
    rec.kind = NotificationKind::Recovery;
    rec.sequence = 1;
    let d = send(&t, &rec).await.unwrap();
    assert_eq!(
        d.detail,
        format!(
            "HTTP 202 from {}",
            rx.url("/v2/alerts/lookout-alert-42/close")
        )
    );
    let r = rx.requests();
    assert_eq!(r[0].uri, "/v2/alerts");
    assert_eq!(r[0].header("authorization"), Some("GenieKey G3N13K3Y"));
    let create = r[0].json();
    assert_eq!(create["alias"], "lookout-alert-42");
    assert_eq!(create["priority"], "P1");
    assert_eq!(create["responders"][0]["name"], "NOC");
    assert_eq!(create["tags"], json!(["lookout", "critical", "network"]));
    assert_eq!(
        r[1].uri,
        "/v2/alerts/lookout-alert-42/close?identifierType=alias"
    );
    assert_eq!(r[1].header("authorization"), Some("GenieKey G3N13K3Y"));
    assert_eq!(r[1].json()["source"], "Lookout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_fails_at_render_is_permanent() {
    let rx = Receiver::start().await;
    // Renders the example (sequence 0) at save time, but divides by zero for sequence 3.
    let t = build(
        "webhook",
        json!({"url": rx.url("/"), "body": "{{ 1 // (sequence - 3) }}"}),
    );
    let mut n = notification();
    n.sequence = 3;
    let e = send(&t, &n).await.unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(e.message().starts_with("template `body`: line 1"), "{e}");
    assert!(rx.requests().is_empty());
}
