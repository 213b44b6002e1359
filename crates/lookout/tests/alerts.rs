//! Alerting end to end: real snmpd agents on their own loopback addresses, `lookout serve`
//! polling them, and a webhook receiver of the test's own. Agents are taken away with
//! SIGSTOP (they stop answering, as a dead device does) and a port is taken down through an
//! snmpd `pass` script. One serve run carries every scenario, each on its own device with
//! its own rule, so that the suite stays short; each asserts what could fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::webhook::{Received, Webhook};
use common::*;

/// An agent on its own address, with ifOperStatus served from a file the test writes.
struct Agent {
    snmpd: Snmpd,
    host: String,
    oper_file: std::path::PathBuf,
}

const OPER_SCRIPT: &str = r#"#!/bin/sh
# snmpd pass script: ifOperStatus (.1.3.6.1.2.1.2.2.1.8.<ifIndex>) from oper.txt beside
# it (lines "ifIndex status", ascending), so a test can take a port down while snmpd runs.
base=.1.3.6.1.2.1.2.2.1.8
exec awk -v op="$1" -v req="$2" -v base="$base" '
  BEGIN { idx = -1; if (req != base) { rest = substr(req, length(base) + 2); split(rest, p, "."); idx = p[1] + 0 } }
  (op == "-g" && req == base "." $1) || (op == "-n" && $1 + 0 > idx) {
    print base "." $1; print "integer"; print $2; exit
  }' "$(dirname "$0")/oper.txt"
"#;

/// The machine's interfaces as snmpd numbers them on Linux (the kernel's ifindex).
fn if_indexes() -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path().join("ifindex");
            std::fs::read_to_string(p).ok()?.trim().parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

fn write_oper(file: &Path, down: &[u32]) {
    let text: String = if_indexes()
        .into_iter()
        .map(|i| format!("{i} {}\n", if down.contains(&i) { 2 } else { 1 }))
        .collect();
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

fn agent(dir: &Path, last_octet: u8) -> Agent {
    let script = dir.join(format!("oper-{last_octet}")).join("oper.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(&script, OPER_SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let oper_file = script.with_file_name("oper.txt");
    write_oper(&oper_file, &[]);
    let addr = Ipv4Addr::new(127, 0, 0, last_octet);
    let snmpd = Snmpd::start(
        SnmpdConfig::new(&format!("alert-agent-{last_octet}"))
            .on(addr)
            .line(&format!("pass .1.3.6.1.2.1.2.2.1.8 {}", script.display())),
    );
    Agent {
        snmpd,
        host: addr.to_string(),
        oper_file,
    }
}

fn of_host(got: &[Received], host: &str, rule: &str, kind: &str) -> Vec<Received> {
    got.iter()
        .filter(|r| {
            r.body["hostname"] == host && r.body["rule_name"] == rule && r.body["kind"] == kind
        })
        .cloned()
        .collect()
}

fn device_status(lo: &Install, host: &str) -> Option<(bool, bool)> {
    lo.devices_json()
        .into_iter()
        .find(|d| d["hostname"] == host)
        .map(|d| (d["last_polled"].is_string(), d["status"] == "up"))
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn outbox(lo: &Install, state: Option<&str>) -> Vec<serde_json::Value> {
    let mut args = vec!["alert", "outbox", "--json", "--limit", "1000"];
    if let Some(s) = state {
        args.extend(["--state", s]);
    }
    serde_json::from_str(&lo.ok(&args)).unwrap()
}

struct Serve(Option<Child>);
impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            terminate([c], Duration::from_secs(10));
        }
    }
}

#[test]
fn alerts_reach_a_webhook_with_their_options() {
    let lo = Install::new();
    let hook = Webhook::start();
    let broken = Webhook::start();
    broken.set_status(500);
    let dir = tempfile::tempdir().unwrap();
    // a: down/up. b: delay. c: repeats with a maximum. d: ack. e: maintenance. f: no
    // recovery. g: port down. h: a transport that keeps failing.
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let agents: Vec<Agent> = (0..names.len())
        .map(|i| agent(dir.path(), 11 + i as u8))
        .collect();
    let host = |n: &str| {
        agents[names.iter().position(|x| *x == n).unwrap()]
            .host
            .clone()
    };
    for a in &agents {
        lo.ok(&[
            "device",
            "add",
            &a.host,
            "--port",
            &a.snmpd.port.to_string(),
        ]);
    }
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
        "alert",
        "transport",
        "add",
        "broken",
        "webhook",
        "--url",
        &broken.url(),
    ]);
    let rule = |name: &str, expr: &str, dev: &str, extra: &[&str]| {
        let d = host(dev);
        let mut args = vec![
            "alert",
            "rules",
            "add",
            name,
            "--rule",
            expr,
            "--devices",
            &d,
        ];
        args.extend_from_slice(extra);
        lo.ok(&args);
    };
    // A rule that does not parse is refused with the position and the known fields.
    let err = lo.fails(&[
        "alert",
        "rules",
        "add",
        "bad",
        "--rule",
        "(device.uptime < 300",
    ]);
    assert!(err.contains("column"), "{err}");
    let err = lo.fails(&[
        "alert",
        "rules",
        "add",
        "bad",
        "--rule",
        "ports.nosuchfield == 1",
    ]);
    assert!(err.contains("ifOperStatus"), "known fields listed: {err}");

    let delay_from = hook.elapsed();
    rule(
        "Delayed",
        "macros.device_up",
        "b",
        &["--delay", "15", "--transport", "hook"],
    );
    rule(
        "Repeats",
        "macros.device_up",
        "c",
        &["--interval", "2", "--count", "3"],
    );
    rule("Acked", "macros.device_up", "d", &["--interval", "2"]);
    rule("No recovery", "macros.device_down", "f", &["--no-recovery"]);
    rule(
        "Failing",
        "macros.device_up",
        "h",
        &["--transport", "broken"],
    );
    lo.ok(&[
        "alert",
        "maintenance",
        "add",
        "works",
        "--devices",
        &host("e"),
        "--duration",
        "2h",
    ]);

    let log = lo.dir.path().join("serve.log");
    let web_port = free_tcp_port().to_string();
    let mut serve = lo.cmd(&["serve", "--listen", &format!("127.0.0.1:{web_port}")]);
    serve
        .env("LOOKOUT_LOG", "info")
        .env("ALERT_TIME_PASS_SECS", "1")
        .env("ALERT_MAX_ATTEMPTS", "3")
        .env("ALERT_RETRY_SECS", "0.5");
    let server = Serve(Some(spawn_logged(&mut serve, &log)));
    let _logs = Logs(log.clone());

    wait_until("every device polled once", Duration::from_secs(90), || {
        agents
            .iter()
            .all(|a| device_status(&lo, &a.host) == Some((true, true)))
    });
    // Agents a, e, f go away.
    for n in ["a", "e", "f"] {
        let a = &agents[names.iter().position(|x| *x == n).unwrap()];
        assert!(signal(a.snmpd.pid(), "-STOP"));
    }
    // g's loopback port (ifIndex 1, administratively up) goes down.
    let g = &agents[names.iter().position(|x| *x == "g").unwrap()];
    write_oper(&g.oper_file, &[1]);

    let (a, e, f) = (host("a"), host("e"), host("f"));
    hook.wait_for(Duration::from_secs(90), "device a down", |got| {
        of_host(got, &a, "Devices up/down", "alert").len() == 1
    });
    hook.wait_for(
        Duration::from_secs(90),
        "f down (no-recovery rule)",
        |got| of_host(got, &f, "No recovery", "alert").len() == 1,
    );
    wait_until("e seen down", Duration::from_secs(90), || {
        device_status(&lo, &e) == Some((true, false))
    });
    for n in ["a", "e", "f"] {
        let a = &agents[names.iter().position(|x| *x == n).unwrap()];
        assert!(signal(a.snmpd.pid(), "-CONT"));
    }
    let got = hook.wait_for(Duration::from_secs(90), "a and f recovered", |got| {
        of_host(got, &a, "Devices up/down", "recovery").len() == 1
            && of_host(got, &f, "Devices up/down", "recovery").len() == 1
    });
    assert_eq!(
        of_host(&got, &a, "Devices up/down", "alert").len(),
        1,
        "one down alert for a"
    );
    assert!(
        of_host(&got, &f, "No recovery", "recovery").is_empty(),
        "recovery off"
    );
    assert!(
        got.iter()
            .all(|r| r.body["hostname"] != e.as_str() || r.body["rule_name"] != "Devices up/down"),
        "maintenance (skip): nothing sent for e"
    );

    // Port down: an alert for that port only.
    let gh = host("g");
    let got = hook.wait_for(Duration::from_secs(90), "g's port down", |got| {
        !of_host(got, &gh, "Port status up/down", "alert").is_empty()
    });
    let port_alert = &of_host(&got, &gh, "Port status up/down", "alert")[0];
    let faults = port_alert.body["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    // ifIndex 1 is the loopback interface on Linux.
    assert_eq!(faults[0]["label"], "lo", "{faults:?}");
    assert_eq!(faults[0]["entity_type"], "ports", "{faults:?}");
    assert_eq!(faults[0]["ifOperStatus"], "down", "{faults:?}");

    // Delay: not before 15 s after the rule existed.
    let bh = host("b");
    let got = hook.wait_for(Duration::from_secs(90), "delayed alert", |got| {
        !of_host(got, &bh, "Delayed", "alert").is_empty()
    });
    let delayed = &of_host(&got, &bh, "Delayed", "alert")[0];
    assert!(
        delayed.at >= delay_from + Duration::from_secs(15),
        "delay 15 s ignored: sent {:?} after the rule was added",
        delayed.at - delay_from
    );
    assert_eq!(of_host(&got, &bh, "Delayed", "alert").len(), 1);

    // Repeats: alert + 2 repeats (count 3), then no more.
    let ch = host("c");
    hook.wait_for(Duration::from_secs(90), "3 notifications of c", |got| {
        of_host(got, &ch, "Repeats", "alert").len() + of_host(got, &ch, "Repeats", "repeat").len()
            >= 3
    });
    std::thread::sleep(Duration::from_secs(8));
    let got = hook.received();
    assert_eq!(of_host(&got, &ch, "Repeats", "alert").len(), 1);
    assert_eq!(
        of_host(&got, &ch, "Repeats", "repeat").len(),
        2,
        "count 3 = alert + 2 repeats"
    );

    // Ack: no repeats while acknowledged; repeats again after unack.
    let dh = host("d");
    hook.wait_for(Duration::from_secs(90), "d alerting", |got| {
        !of_host(got, &dh, "Acked", "alert").is_empty()
    });
    let alerts: Vec<serde_json::Value> =
        serde_json::from_str(&lo.ok(&["alert", "list", "--json"])).unwrap();
    let rules: Vec<serde_json::Value> =
        serde_json::from_str(&lo.ok(&["alert", "rules", "list", "--json"])).unwrap();
    let rule_id = rules.iter().find(|r| r["name"] == "Acked").unwrap()["id"].clone();
    let d_alert = alerts
        .iter()
        .find(|a| a["key"]["rule_id"] == rule_id)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    lo.ok(&["alert", "ack", &d_alert.to_string(), "--note", "on it"]);
    wait_until(
        "d's messages all delivered",
        Duration::from_secs(30),
        || {
            outbox(&lo, None)
                .iter()
                .all(|m| m["alert_id"] != d_alert || m["state"] == "delivered")
        },
    );
    let before = of_host(&hook.received(), &dh, "Acked", "repeat").len();
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        of_host(&hook.received(), &dh, "Acked", "repeat").len(),
        before,
        "repeats while acknowledged"
    );
    lo.ok(&["alert", "unack", &d_alert.to_string()]);
    hook.wait_for(Duration::from_secs(60), "repeats after unack", |got| {
        of_host(got, &dh, "Acked", "repeat").len() > before
    });

    // A transport that keeps answering 500: retried, then failed and shown.
    wait_until("h's message failed", Duration::from_secs(60), || {
        outbox(&lo, Some("failed")).iter().any(|m| {
            m["attempts"] == 3 && m["last_error"].as_str().is_some_and(|e| e.contains("500"))
        })
    });
    assert!(broken.received().is_empty());

    // Every message carried its key as a header, and no key arrived twice.
    let got = hook.received();
    let mut keys: Vec<String> = got
        .iter()
        .map(|r| {
            assert_eq!(
                r.idempotency_key.as_deref(),
                r.body["idempotency_key"].as_str()
            );
            r.idempotency_key.clone().unwrap()
        })
        .collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate notifications on one node");
    drop(server);
}

/// Keeps serve's log when the test fails.
struct Logs(std::path::PathBuf);
impl Drop for Logs {
    fn drop(&mut self) {
        keep_logs_if_panicking("alerts", &[(self.0.clone(), "serve.log".into())]);
    }
}

#[test]
fn validate_checks_alert_transports() {
    let lo = Install::new();
    lo.ok(&["migrate"]);
    let out = lo.run(&["validate"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("[WARN] no alert transport"), "{text}");
    assert!(text.contains("alert rules compile"), "{text}");
    // A webhook whose receiver is up, and one on a port where nothing listens.
    let hook = Webhook::start();
    lo.ok(&[
        "alert",
        "transport",
        "add",
        "up",
        "webhook",
        "--url",
        &hook.url(),
    ]);
    let dead = format!("http://127.0.0.1:{}/hook", free_tcp_port());
    lo.ok(&[
        "alert",
        "transport",
        "add",
        "down",
        "webhook",
        "--url",
        &dead,
    ]);
    let out = lo.run(&["validate"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("[ OK ] alert transport \"up\""), "{text}");
    assert!(text.contains("[FAIL] alert transport \"down\""), "{text}");
    assert!(hook.received().is_empty(), "validate sent a notification");
    // `transport test` sends one test notification now, and says when it cannot.
    let out = lo.ok(&["alert", "transport", "test", "up"]);
    assert!(out.contains("test notification sent"), "{out}");
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body["kind"], "test");
    let out = lo.run(&["alert", "transport", "test", "down"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("failed"),
        "{out:?}"
    );
    // A bad transport setting is refused when saved, naming the field.
    let err = lo.fails(&[
        "alert",
        "transport",
        "add",
        "bad",
        "webhook",
        "--url",
        "not a url",
    ]);
    assert!(err.contains("url"), "{err}");
}
