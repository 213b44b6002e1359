//! `lookout serve` end to end: the dispatcher polls a real snmpd, the API answers with
//! LibreNMS's shapes behind `X-Auth-Token`, and headless Chromium logs in and sees the
//! device and an interface graph.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::webdriver::WebDriver;
use common::{free_tcp_port, start_snmpd, Install};
use serde_json::{json, Value};

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent() -> ureq::Agent {
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
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn get_json(http: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
    (status, body)
}

#[test]
fn serve_polls_api_answers_browser_sees_graph() {
    let snmpd = start_snmpd();
    let lo = Install::new();
    lo.ok(&[
        "device",
        "add",
        "127.0.0.1",
        "--port",
        &snmpd.port.to_string(),
    ]);

    let web_port = free_tcp_port();
    let base = format!("http://127.0.0.1:{web_port}");
    let server = lo
        .cmd(&["serve", "--listen", &format!("127.0.0.1:{web_port}")])
        .env("LOOKOUT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let http = agent();
    wait_for("/health", 60, || {
        http.get(&format!("{base}/health"))
            .call()
            .ok()
            .filter(|r| r.status() == 200)
    });

    let out = lo.ok(&["token", "create", "--user", "admin"]);
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.len() >= 32, "{out}");

    // API: no token, bad token, good token.
    let (st, body) = get_json(&http, &format!("{base}/api/v0/devices"), None);
    assert_eq!(st, 401, "{body}");
    assert_eq!(body["status"], "error");
    let (st, _) = get_json(&http, &format!("{base}/api/v0/devices"), Some("nope"));
    assert_eq!(st, 401);

    // The dispatcher polls the device on its own (POLL_INTERVAL=10).
    let device = wait_for("the dispatcher's first poll", 60, || {
        let (st, body) = get_json(&http, &format!("{base}/api/v0/devices"), Some(&token));
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["status"], "ok");
        let d = body["devices"][0].clone();
        (d["last_polled"].is_string() && d["status"] == json!(1)).then_some(d)
    });
    assert_eq!(device["hostname"], "127.0.0.1");
    assert_eq!(device["sysName"], "lookout-test-agent");
    assert_eq!(device["os"], "linux");
    assert!(device["device_id"].is_number());

    let (st, one) = get_json(
        &http,
        &format!("{base}/api/v0/devices/127.0.0.1"),
        Some(&token),
    );
    assert_eq!(st, 200, "{one}");
    assert_eq!(one["devices"][0]["sysName"], "lookout-test-agent");
    let (st, missing) = get_json(
        &http,
        &format!("{base}/api/v0/devices/nosuch"),
        Some(&token),
    );
    assert_eq!(st, 404, "{missing}");
    assert_eq!(missing["status"], "error");
    let (st, ports) = get_json(
        &http,
        &format!("{base}/api/v0/devices/127.0.0.1/ports"),
        Some(&token),
    );
    assert_eq!(st, 200, "{ports}");
    let ports = ports["ports"].as_array().unwrap().clone();
    assert!(ports.iter().any(|p| p["ifDescr"] == "lo"), "{ports:?}");

    // Wait for two more polls: DERIVE needs two readings for a rate, and a whole RRD step
    // (10 s) between known readings before a consolidated value exists to draw.
    let mut seen = device["last_polled"].clone();
    for n in ["a second poll", "a third poll"] {
        seen = wait_for(n, 40, || {
            let (_, body) = get_json(
                &http,
                &format!("{base}/api/v0/devices/127.0.0.1"),
                Some(&token),
            );
            let t = body["devices"][0]["last_polled"].clone();
            (t != seen).then_some(t)
        });
    }

    // Graphs through the API: LibreNMS's port_bits PNG and the JSON series.
    let png_url = format!(
        "{base}/api/v0/devices/127.0.0.1/ports/lo/port_bits?period=day&width=400&height=150"
    );
    let mut resp = http
        .get(&png_url)
        .header("X-Auth-Token", &token)
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "image/png"
    );
    let png = resp.body_mut().read_to_vec().unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n"), "not a PNG");
    assert!(
        png.len() > 1000,
        "suspiciously small PNG: {} bytes",
        png.len()
    );
    let (st, _) = get_json(&http, &png_url, None);
    assert_eq!(st, 401);
    let (st, body) = get_json(
        &http,
        &format!("{base}/api/v0/devices/127.0.0.1/ports/nosuch0/port_bits"),
        Some(&token),
    );
    assert_eq!(st, 404, "{body}");
    let (st, series) = get_json(
        &http,
        &format!("{base}/api/v0/devices/127.0.0.1/ports/lo/series?period=day"),
        Some(&token),
    );
    assert_eq!(st, 200, "{series}");
    let ts = series["timestamps"].as_array().unwrap();
    assert!(ts.len() > 100, "a day of 10 s steps: {}", ts.len());
    assert_eq!(
        ts.len(),
        series["series"]["in_bps"].as_array().unwrap().len()
    );
    let (st, _) = get_json(
        &http,
        &format!("{base}/api/v0/devices/127.0.0.1/ports/lo/series?period=decade"),
        Some(&token),
    );
    assert_eq!(st, 400);

    // Health: what the processors/mempools/storage modules found on this host's snmpd.
    let (st, health) = get_json(
        &http,
        &format!("{base}/api/v0/devices/127.0.0.1/health"),
        Some(&token),
    );
    assert_eq!(st, 200, "{health}");
    assert!(
        !health["mempools"].as_array().unwrap().is_empty(),
        "{health}"
    );
    let storage = health["storage"].as_array().unwrap();
    assert!(
        storage.iter().any(|s| s["storage_descr"] == "/"),
        "no / in storage: {health}"
    );
    assert!(
        !health["module_perf"].as_array().unwrap().is_empty(),
        "{health}"
    );

    // The poller cluster as the web sees it: this one node, alive and master.
    let (st, cluster) = get_json(&http, &format!("{base}/api/v0/poller"), Some(&token));
    assert_eq!(st, 200, "{cluster}");
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{cluster}");
    assert_eq!(nodes[0]["alive"], true);
    assert_eq!(nodes[0]["master"], true, "{cluster}");
    assert_eq!(cluster["master"], nodes[0]["node_id"]);

    // The status API counts the time-series writes the polls made; nothing dropped.
    let (st, status) = get_json(&http, &format!("{base}/api/v0/status"), Some(&token));
    assert_eq!(st, 200, "{status}");
    assert!(
        status["timeseries"]["written"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert_eq!(status["timeseries"]["dropped"], 0);
    assert!(status["store"]["dialect"].as_str().is_some());
    assert!(status["store"]["error"].is_null(), "{status}");

    browser_logs_in_and_sees_graph(&base, device["device_id"].as_i64().unwrap(), ports.len());
    browser_runs_the_network(&base, &http, &token, device["device_id"].as_i64().unwrap());
    api_and_form_add_probe_first(&base, &token, snmpd.port);

    // SIGTERM stops the server cleanly.
    let pid = server.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = wait_for("serve to exit", 30, || server.0.try_wait().unwrap());
    assert!(status.success(), "serve exited with {status}");
}

fn browser_logs_in_and_sees_graph(base: &str, device_id: i64, interfaces: usize) {
    let wd = WebDriver::start();
    // Unauthenticated: redirected to the login form.
    wd.goto(&format!("{base}/devices"));
    assert!(wd.url().contains("/login"), "not redirected: {}", wd.url());
    // A wrong password keeps us out, with a message that does not say which part was wrong.
    wd.type_into("input[name=username]", "admin");
    wd.type_into("input[name=password]", "wrong");
    wd.click("button[type=submit], input[type=submit]");
    assert!(wd.url().contains("/login"), "{}", wd.url());
    wd.type_into("input[name=username]", "admin");
    wd.type_into("input[name=password]", "admin-test-pw");
    wd.click("button[type=submit], input[type=submit]");
    wait_for("the devices page", 10, || {
        wd.url().ends_with("/devices").then_some(())
    });
    let html = wd.source();
    assert!(html.contains("127.0.0.1"), "device missing from /devices");
    assert!(
        html.contains("lookout-test-agent"),
        "sysName missing from /devices"
    );

    wd.goto(&format!("{base}/device/{device_id}"));
    let html = wd.source();
    assert!(
        html.contains("Rack 7, Lab"),
        "sysLocation missing on the device page"
    );
    assert!(
        html.contains(">lo<") || html.contains("lo "),
        "lo interface missing"
    );
    // uPlot draws into a canvas once each interface's JSON series has loaded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = wd.script("return document.querySelectorAll('.uplot canvas').length");
        if n.as_u64().unwrap_or(0) as usize >= interfaces {
            break;
        }
        // Graphs load when scrolled into view (long interface lists): scroll as a user would.
        wd.script(
            "document.querySelectorAll('.graph[data-state=loading]').forEach(g => g.scrollIntoView())",
        );
        if Instant::now() > deadline {
            let states = wd.script(
                "return Array.from(document.querySelectorAll('.graph')).map(g => g.dataset.state + ':' + g.textContent.slice(0, 80))",
            );
            panic!("not every interface graph drew ({interfaces} interfaces): {states}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("device-page.png");
    wd.screenshot(&shot);
    eprintln!("screenshot: {}", shot.display());

    wd.goto(&format!("{base}/poller"));
    let html = wd.source();
    assert!(
        html.contains("id=\"pollers\""),
        "poller page without the node table"
    );
    assert!(
        html.contains("(master)") && html.contains(">alive<"),
        "poller page: no live master"
    );

    wd.goto(&format!("{base}/status"));
    let html = wd.source();
    assert!(
        html.contains("id=\"status-timeseries\""),
        "status page without time-series table"
    );
    assert!(
        html.contains("Dropped"),
        "status page misses the dropped counter"
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    wd.screenshot(&shot);
    eprintln!("screenshot: {}", shot.display());
}

/// Waits until the API reports a poll of the device after `after` with `status` (1 up, 0
/// down) and returns its `last_polled`.
fn wait_poll(http: &ureq::Agent, base: &str, token: &str, after: &Value, status: i64) -> Value {
    wait_for(&format!("a poll with status {status}"), 60, || {
        let (_, body) = get_json(
            http,
            &format!("{base}/api/v0/devices/127.0.0.1"),
            Some(token),
        );
        let d = &body["devices"][0];
        (d["last_polled"] != *after && d["status"] == json!(status))
            .then(|| d["last_polled"].clone())
    })
}

/// What a network team does in the UI: dashboard, search and filter the device list, edit the
/// device's community (the poll fails, then succeeds again after the fix, same device_id),
/// create a read-only user who is refused on an admin page, and a logout that ends a copied
/// session cookie.
fn browser_runs_the_network(base: &str, http: &ureq::Agent, token: &str, device_id: i64) {
    let wd = WebDriver::start();
    wd.goto(&format!("{base}/login"));
    wd.type_into("input[name=username]", "admin");
    wd.type_into("input[name=password]", "admin-test-pw");
    wd.click("button[type=submit]");
    wait_for("login", 10, || wd.url().ends_with("/devices").then_some(()));

    // Dashboard.
    wd.goto(&format!("{base}/"));
    let html = wd.source();
    assert!(
        html.contains("id=\"dash-devices\"") && html.contains("1 devices"),
        "dashboard"
    );
    assert!(
        html.contains("id=\"dash-cluster\""),
        "admin sees the cluster panel"
    );

    // Search and filter the device list.
    wd.goto(&format!("{base}/devices"));
    wd.type_into("#device-search", "lookout-test");
    wd.click("#device-filter button[type=submit]");
    wait_for("search results", 10, || {
        wd.url().contains("q=lookout-test").then_some(())
    });
    let rows =
        wd.script("return document.querySelectorAll('table#devices tr[data-device-id]').length");
    assert_eq!(rows, json!(1), "search by sysName");
    wd.goto(&format!("{base}/devices?q=no-such-device"));
    assert!(wd.source().contains("id=\"no-match\""));
    wd.goto(&format!("{base}/devices?state=down"));
    assert!(
        wd.source().contains("id=\"no-match\""),
        "nothing is down yet"
    );

    // Edit the community: a wrong one makes the next poll fail, the right one brings it back.
    let (_, body) = get_json(
        http,
        &format!("{base}/api/v0/devices/127.0.0.1"),
        Some(token),
    );
    let mut seen = body["devices"][0]["last_polled"].clone();
    for (community, status) in [("wrong-community", 0), ("public", 1)] {
        wd.goto(&format!("{base}/device/{device_id}/edit"));
        assert!(
            !wd.source().contains("value=\"public\""),
            "the community is never shown"
        );
        wd.type_into("#community", community);
        wd.type_into("input[name=timeout]", "0.5");
        wd.click("#edit-device button[type=submit]");
        wait_for("the device page", 10, || {
            wd.url()
                .ends_with(&format!("/device/{device_id}"))
                .then_some(())
        });
        seen = wait_poll(http, base, token, &seen, status);
    }
    let (_, body) = get_json(
        http,
        &format!("{base}/api/v0/devices/127.0.0.1"),
        Some(token),
    );
    assert_eq!(
        body["devices"][0]["device_id"],
        json!(device_id),
        "same device after the edits"
    );

    // A read-only user, created on the users page.
    wd.goto(&format!("{base}/users"));
    wd.type_into("#new-username", "viewer");
    wd.type_into("#new-password", "viewer-password");
    wd.script("document.querySelector('#new-level').value = '5'");
    wd.click("#add-user button[type=submit]");
    wait_for("the user list", 10, || {
        wd.source().contains(">viewer<").then_some(())
    });
    wd.click("header form button[type=submit]"); // log out
    wait_for("the login page", 10, || {
        wd.url().contains("/login").then_some(())
    });
    wd.type_into("input[name=username]", "viewer");
    wd.type_into("input[name=password]", "viewer-password");
    wd.click("button[type=submit]");
    wait_for("viewer's login", 10, || {
        wd.url().ends_with("/devices").then_some(())
    });
    assert!(
        wd.source().contains("127.0.0.1"),
        "global read sees the device"
    );
    assert!(
        !wd.source().contains("href=\"/users\""),
        "no admin navigation"
    );
    wd.goto(&format!("{base}/users"));
    assert!(
        wd.source().contains("insufficient permissions"),
        "{}",
        wd.source()
    );
    wd.goto(&format!("{base}/device/{device_id}/edit"));
    assert!(wd.source().contains("insufficient permissions"));

    // A second browser's copy of the cookie works until this browser logs out.
    let cookie = wd
        .cookies()
        .into_iter()
        .find(|(name, _)| name == "lookout_session")
        .map(|(n, v)| format!("{n}={v}"))
        .expect("session cookie");
    let no_redirects: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let status_with_copy = || {
        no_redirects
            .get(&format!("{base}/devices"))
            .header("Cookie", &cookie)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        status_with_copy(),
        200,
        "the copied cookie works while logged in"
    );
    wd.goto(&format!("{base}/devices"));
    wd.click("header form button[type=submit]");
    wait_for("logged out", 10, || {
        wd.url().contains("/login").then_some(())
    });
    assert_eq!(
        status_with_copy(),
        303,
        "the copied cookie is refused after logout"
    );
}

/// Adding devices probes them with the real SNMP engine: a wrong community is refused with
/// nothing stored, the right one is added (API), and the add form does the same in a browser.
fn api_and_form_add_probe_first(base: &str, token: &str, port: u16) {
    let http = agent();
    let post = |body: String| {
        let mut r = http
            .post(&format!("{base}/api/v0/devices"))
            .header("X-Auth-Token", token)
            .header("Content-Type", "application/json")
            .send(body.as_str())
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (st, body) = post(format!(
        r#"{{"hostname": "127.0.0.01", "community": "wrong", "port": {port}, "timeout": 0.3, "retries": 0}}"#
    ));
    assert_eq!(st, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("nothing stored"),
        "{body}"
    );
    let (st, body) = post(format!(
        r#"{{"hostname": "127.0.0.01", "community": "public", "port": {port}}}"#
    ));
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["devices"][0]["hostname"], "127.0.0.01");

    let wd = WebDriver::start();
    wd.goto(&format!("{base}/login"));
    wd.type_into("input[name=username]", "admin");
    wd.type_into("input[name=password]", "admin-test-pw");
    wd.click("button[type=submit]");
    wait_for("login", 10, || wd.url().ends_with("/devices").then_some(()));
    wd.goto(&format!("{base}/devices/add"));
    wd.type_into("#add-hostname", "127.000.0.1");
    wd.type_into("#add-community", "public");
    wd.type_into("#add-device input[name=port]", &port.to_string());
    wd.click("#add-device button[type=submit]");
    wait_for("the new device's page", 20, || {
        wd.url().contains("/device/").then_some(())
    });
    assert!(wd.source().contains("127.000.0.1"));
}
