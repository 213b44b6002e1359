//! The Alertmanager transport against two real Alertmanager replicas (Debian
//! `prometheus-alertmanager`) started by the test on 127.0.0.1, each with its own ports
//! and storage, clustering off: an alert shows up in both only because the transport
//! posted it to both. A replica that is down makes the delivery transient and named; the
//! retry to both is harmless (Alertmanager keeps one alert per label set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use lookout_alerting::transport::check_reachable;
use lookout_alerting::NotificationKind;
use serde_json::{json, Value};
use transport_common::*;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

const CONFIG: &str = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";

struct Replica {
    addr: SocketAddr,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Replica {
    async fn start(name: &str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, CONFIG).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
        let mut daemon = Daemon::spawn(
            name,
            Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                // No gossip: each replica only knows what was posted to it.
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn"),
            dir.path().join("alertmanager.log"),
        );
        let start = std::time::Instant::now();
        while http_get(addr, "/-/ready").await.map(|r| r.0) != Some(200) {
            daemon.assert_running();
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{name} not ready on {addr} within 90 s:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Replica {
            addr,
            daemon,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The replica's alerts (`GET /api/v2/alerts`).
    async fn alerts(&self) -> Vec<Value> {
        let (code, body) = http_get(self.addr, "/api/v2/alerts").await.unwrap();
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The example notification, happening now (Alertmanager drops alerts that ended).
fn now_notification() -> lookout_alerting::Notification {
    let mut n = notification();
    n.timestamp = chrono::Utc::now();
    n.triggered_at = n.timestamp - chrono::Duration::seconds(300);
    n
}

fn ours(alerts: &[Value]) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "Port status up/down")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_is_posted_to_every_replica_and_recovery_ends_it() {
    if !require(ALERTMANAGER, "prometheus-alertmanager") {
        return;
    }
    let (a, b) = tokio::join!(
        Replica::start("alertmanager-a"),
        Replica::start("alertmanager-b")
    );
    let t = build(
        "alertmanager",
        json!({"urls": [a.url(), b.url()], "labels": {"team": "noc"}, "annotations": {"runbook": "r1"}}),
    );
    let n = now_notification();
    let d = send(&t, &n).await.unwrap();
    assert_eq!(
        d.detail,
        format!(
            "2 of 2 Alertmanager replicas accepted: HTTP 200 from {}/api/v2/alerts; HTTP 200 from {}/api/v2/alerts",
            a.url(),
            b.url()
        )
    );
    for r in [&a, &b] {
        let got = ours(&r.alerts().await);
        assert_eq!(got.len(), 1, "{}: {got:#?}", r.url());
        let al = &got[0];
        assert_eq!(al["labels"]["severity"], "critical");
        assert_eq!(al["labels"]["hostname"], "core1.example.net");
        assert_eq!(al["labels"]["device_id"], "3");
        assert_eq!(al["labels"]["rule"], "7");
        assert_eq!(al["labels"]["entity"], "xe-0/0/1");
        assert_eq!(al["labels"]["team"], "noc");
        assert_eq!(
            al["annotations"]["summary"],
            "CRITICAL alert: Port status up/down on core1.example.net"
        );
        assert_eq!(
            al["annotations"]["procedure_url"],
            "https://wiki.example.net/port-down"
        );
        assert_eq!(al["annotations"]["runbook"], "r1");
        assert!(al["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("Faults:"));
        let starts: chrono::DateTime<chrono::Utc> =
            al["startsAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(starts.timestamp(), n.triggered_at.timestamp());
        let ends: chrono::DateTime<chrono::Utc> = al["endsAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(ends.timestamp(), n.timestamp.timestamp() + 86_400);
        assert_eq!(al["status"]["state"], "active");
    }

    // A repeat is the same alert (same labels) to Alertmanager: still one per replica.
    let mut repeat = n.clone();
    repeat.kind = NotificationKind::Repeat;
    repeat.sequence = 1;
    send(&t, &repeat).await.unwrap();
    assert_eq!(ours(&a.alerts().await).len(), 1);
    assert_eq!(ours(&b.alerts().await).len(), 1);

    // The recovery ends it now: Alertmanager stops listing it as firing.
    let mut rec = n.clone();
    rec.kind = NotificationKind::Recovery;
    rec.sequence = 2;
    rec.timestamp = chrono::Utc::now() - chrono::Duration::seconds(1);
    send(&t, &rec).await.unwrap();
    for r in [&a, &b] {
        let left = ours(&r.alerts().await);
        assert!(
            left.iter().all(|al| al["status"]["state"] != "active"),
            "{}: {left:#?}",
            r.url()
        );
    }

    let ok = check_reachable(&row("alertmanager", json!({"urls": [a.url(), b.url()]})))
        .await
        .unwrap();
    assert!(
        ok.contains(&a.addr.to_string()) && ok.contains(&b.addr.to_string()),
        "{ok}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_down_is_transient_naming_it_and_the_retry_is_deduplicated() {
    if !require(ALERTMANAGER, "prometheus-alertmanager") {
        return;
    }
    let (a, mut b) = tokio::join!(
        Replica::start("alertmanager-a"),
        Replica::start("alertmanager-b")
    );
    let t = build(
        "alertmanager",
        json!({"urls": format!("{}, {}", a.url(), b.url())}),
    );
    b.daemon.stop();
    let n = now_notification();
    let e = send(&t, &n).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.message().starts_with(&format!(
            "1 of 2 Alertmanager replicas failed: POST {}/api/v2/alerts: cannot connect",
            b.url()
        )),
        "{e}"
    );
    assert!(
        e.message().ends_with(&format!(
            "(accepted: HTTP 200 from {}/api/v2/alerts)",
            a.url()
        )),
        "{e}"
    );
    assert_eq!(ours(&a.alerts().await).len(), 1);

    // The engine retries the same notification to both: `a` still has one alert.
    let b2 = Replica::start("alertmanager-b2").await;
    let t = build("alertmanager", json!({"urls": [a.url(), b2.url()]}));
    send(&t, &n).await.unwrap();
    assert_eq!(ours(&a.alerts().await).len(), 1);
    assert_eq!(ours(&b2.alerts().await).len(), 1);
    let e = check_reachable(&row("alertmanager", json!({"urls": [a.url(), b.url()]})))
        .await
        .unwrap_err();
    assert!(
        e.contains(&b.addr.to_string()) && !e.contains(&a.addr.to_string()),
        "{e}"
    );
}
