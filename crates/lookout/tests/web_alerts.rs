//! The alert pages and API end to end: `lookout serve` polls a real snmpd (sysName
//! `<script>...`), the agent is paused with SIGSTOP, the "Devices up/down" alert shows up
//! through the API of the serving node and of a second, web-only instance (which runs its
//! own engine: it acknowledges), a webhook of the test's own receives the notification,
//! a read-only user is refused the write, headless Chromium sees the alert with the
//! sysName as text (not as markup), un-acknowledges and acknowledges through the forms and
//! sees a refused rule's column; SIGCONT brings the recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::webdriver::WebDriver;
use common::webhook::Webhook;
use common::*;
use serde_json::{json, Value};

/// Were it markup, the browser would run it (an alert dialog fails every WebDriver call).
const EVIL: &str = "<script>alert(1)</script>";

struct Running(Option<Child>);
impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            terminate([c], Duration::from_secs(10));
        }
    }
}

struct Logs(Vec<(std::path::PathBuf, String)>);
impl Drop for Logs {
    fn drop(&mut self) {
        keep_logs_if_panicking("web-alerts", &self.0);
    }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn call(
    h: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut resp = match (method, body) {
        ("GET", _) => h.get(url).header("X-Auth-Token", token).call().unwrap(),
        (_, b) => h
            .put(url)
            .header("X-Auth-Token", token)
            .send_json(b.unwrap_or(json!({})))
            .unwrap(),
    };
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_json().unwrap_or(Value::Null))
}

fn start_serve(lo: &Install, port: u16, roles: &str, log: &std::path::Path) -> Running {
    let mut c = lo.cmd(&[
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--roles",
        roles,
    ]);
    c.env("LOOKOUT_LOG", "info")
        .env("ALERT_TIME_PASS_SECS", "1");
    Running(Some(spawn_logged(&mut c, log)))
}

#[test]
fn alert_pages_and_api_on_a_real_serve() {
    let snmpd = Snmpd::start(SnmpdConfig::new(EVIL));
    let hook = Webhook::start();
    let lo = Install::new();
    lo.ok(&[
        "device",
        "add",
        "127.0.0.1",
        "--port",
        &snmpd.port.to_string(),
    ]);
    lo.ok(&[
        "alert",
        "transport",
        "add",
        "hook",
        "webhook",
        "--url",
        &hook.url(),
        "--default",
    ]);
    lo.ok(&[
        "user",
        "add",
        "reader",
        "--password",
        "reader-test-pw",
        "--level",
        "5",
    ]);
    let (p1, p2) = (free_tcp_port(), free_tcp_port());
    let (log1, log2) = (
        lo.dir.path().join("serve.log"),
        lo.dir.path().join("web.log"),
    );
    let _logs = Logs(vec![
        (log1.clone(), "serve.log".into()),
        (log2.clone(), "web.log".into()),
    ]);
    let _serve = start_serve(&lo, p1, "web,dispatcher,poller", &log1);
    let h = http();
    wait_for("/health", 60, || {
        h.get(&format!("http://127.0.0.1:{p1}/health"))
            .call()
            .ok()
            .filter(|r| r.status() == 200)
    });
    // The admin user exists once serve has started.
    let token = |user: &str| {
        let out = lo.ok(&["token", "create", "--user", user]);
        out.lines().last().unwrap().trim().to_string()
    };
    let (admin, reader) = (token("admin"), token("reader"));

    let (b1, b2) = (
        format!("http://127.0.0.1:{p1}"),
        format!("http://127.0.0.1:{p2}"),
    );
    wait_for("the device polled up", 90, || {
        let (st, j) = call(&h, "GET", &format!("{b1}/api/v0/devices"), &admin, None);
        (st == 200 && j["devices"][0]["status"] == 1 && j["devices"][0]["sysName"] == EVIL)
            .then_some(())
    });
    // A web-only instance beside it, on the same store.
    let _web = start_serve(&lo, p2, "web", &log2);
    wait_for("the web-only instance", 60, || {
        h.get(&format!("{b2}/health"))
            .call()
            .ok()
            .filter(|r| r.status() == 200)
    });

    // The device stops answering: one device-down alert, through both instances' API.
    assert!(signal(snmpd.pid(), "-STOP"));
    let alert = wait_for("the device-down alert", 120, || {
        let (st, j) = call(
            &h,
            "GET",
            &format!("{b1}/api/v0/alerts?state=1"),
            &admin,
            None,
        );
        assert_eq!(st, 200, "{j}");
        j["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "Devices up/down")
            .cloned()
    });
    let id = alert["id"].as_i64().unwrap();
    assert_eq!(alert["hostname"], "127.0.0.1");
    assert_eq!(alert["sysName"], EVIL);
    assert_eq!(alert["severity"], "critical");
    let (st, j) = call(&h, "GET", &format!("{b2}/api/v0/alerts/{id}"), &admin, None);
    assert_eq!(st, 200, "{j}");
    assert_eq!(j["alerts"][0]["state"], 1);
    hook.wait_for(Duration::from_secs(60), "the alert notification", |got| {
        got.iter()
            .any(|r| r.body["rule_name"] == "Devices up/down" && r.body["kind"] == "alert")
    });

    // A read-only user reads but may not acknowledge; admin acknowledges on the web-only
    // instance, and the serving node sees it.
    let (st, _) = call(&h, "GET", &format!("{b2}/api/v0/alerts"), &reader, None);
    assert_eq!(st, 200);
    let (st, j) = call(
        &h,
        "PUT",
        &format!("{b2}/api/v0/alerts/{id}"),
        &reader,
        Some(json!({"note": "x"})),
    );
    assert_eq!(st, 403, "{j}");
    let (st, j) = call(
        &h,
        "PUT",
        &format!("{b2}/api/v0/alerts/{id}"),
        &admin,
        Some(json!({"note": "api ack"})),
    );
    assert_eq!(st, 200, "{j}");
    let (_, j) = call(&h, "GET", &format!("{b1}/api/v0/alerts/{id}"), &admin, None);
    assert_eq!(j["alerts"][0]["state"], 2, "{j}");
    assert_eq!(j["alerts"][0]["note"], "api ack");

    browser_acts_on_the_alert(&b1, id);
    let (_, j) = call(&h, "GET", &format!("{b1}/api/v0/alerts/{id}"), &admin, None);
    assert_eq!(
        j["alerts"][0]["state"], 2,
        "acknowledged from the page: {j}"
    );
    assert_eq!(j["alerts"][0]["note"], "from the browser");

    // The agent answers again: the alert recovers, the receiver hears of it.
    assert!(signal(snmpd.pid(), "-CONT"));
    wait_for("the recovery", 120, || {
        let (_, j) = call(&h, "GET", &format!("{b1}/api/v0/alerts/{id}"), &admin, None);
        (j["alerts"][0]["open"] == 0).then_some(())
    });
    hook.wait_for(
        Duration::from_secs(60),
        "the recovery notification",
        |got| {
            got.iter()
                .any(|r| r.body["rule_name"] == "Devices up/down" && r.body["kind"] == "recovery")
        },
    );
    let (_, log) = call(
        &h,
        "GET",
        &format!("{b1}/api/v0/logs/alertlog"),
        &admin,
        None,
    );
    let events: Vec<&str> = log["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"] == "Devices up/down")
        .filter_map(|l| l["details"]["event"].as_str())
        .collect();
    for e in ["alert", "acknowledged", "unacknowledged", "recovered"] {
        assert!(
            events.iter().any(|x| x.starts_with(e)),
            "{e} missing from the log: {events:?}"
        );
    }
}

fn browser_acts_on_the_alert(base: &str, id: i64) {
    let wd = WebDriver::start();
    wd.goto(&format!("{base}/login"));
    wd.type_into("#username", "admin");
    wd.type_into("#password", ADMIN_PASSWORD);
    wd.click("button[type=submit]");
    wait_for("the devices page", 20, || {
        wd.url().ends_with("/devices").then_some(())
    });
    wd.click("header a[href='/alerts']");
    wait_for("the alerts page", 20, || {
        wd.url().ends_with("/alerts").then_some(())
    });
    let row = format!("tr[data-alert-id='{id}']");
    // The sysName is text on the page, not a script that ran.
    let shown = wd.script(&format!(
        "return document.querySelector(\"{row} td span.muted\").textContent"
    ));
    assert_eq!(shown, EVIL);
    assert_eq!(wd.script("return document.title"), "Alerts - Lookout");
    // Acknowledged through the API: the page offers Unack.
    wd.click(&format!("{row} form.unack button"));
    wait_for("the unack notice", 20, || {
        wd.url().contains("notice=unacked").then_some(())
    });
    assert!(wd
        .script("return document.querySelector('#notice') !== null")
        .as_bool()
        .unwrap());
    wd.type_into(
        &format!("{row} form.ack input[name=note]"),
        "from the browser",
    );
    wd.click(&format!("{row} form.ack button"));
    wait_for("the ack notice", 20, || {
        wd.url().contains("notice=acked").then_some(())
    });
    let state = wd.script(&format!(
        "return document.querySelector(\"{row}\").dataset.state"
    ));
    assert_eq!(state, "2");

    // A rule with a typo, tested from the form: the error names the column.
    wd.goto(&format!("{base}/alerts/rules/new"));
    wd.type_into("input[name=rule]", "macros.device_down && device.uptme < 5");
    wd.click("button[value=test]");
    let err = wait_for("the rule error", 20, || {
        let t = wd.script(
            "const e = document.querySelector('#rule-error'); return e ? e.textContent : null",
        );
        t.as_str().map(str::to_string)
    });
    assert!(err.contains("column 23"), "{err}");
    assert!(err.contains("device.uptime"), "known names listed: {err}");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("alerts-rule-error.png");
    wd.screenshot(&shot);
}
