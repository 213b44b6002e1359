//! The script transport with real shell scripts: the notification JSON on stdin, the
//! environment it gets (and does not get), a failing exit with its stderr, a script
//! that sleeps past its timeout killed together with the child it started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_alerting::transport::check_reachable;
use serde_json::json;
use transport_common::*;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_reads_the_notification_on_stdin_with_its_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got.json");
    let env = dir.path().join("env.txt");
    let s = script(
        dir.path(),
        "notify.sh",
        &format!(
            "cat > '{}'\nenv > '{}'\necho \"queued $LOOKOUT_IDEMPOTENCY_KEY\"",
            out.display(),
            env.display()
        ),
    );
    let t = build(
        "script",
        json!({"argv": [s, "--flag", "two words"], "env": {"TEAM_TOKEN": "t0k"}}),
    );
    let n = notification();
    let d = send(&t, &n).await.unwrap();
    assert_eq!(
        d.detail,
        format!(
            "script {} exited 0: queued {}",
            s.display(),
            n.idempotency_key
        )
    );
    let got: lookout_alerting::Notification =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(got, n);
    let env = std::fs::read_to_string(&env).unwrap();
    for line in [
        "LOOKOUT_IDEMPOTENCY_KEY=lookout-alert:r7:d3:ports:12:alert:0",
        "LOOKOUT_STATE=alert",
        "LOOKOUT_ALERT_ID=42",
        "LOOKOUT_RULE=Port status up/down",
        "LOOKOUT_SEVERITY=critical",
        "LOOKOUT_HOSTNAME=core1.example.net",
        "LOOKOUT_TITLE=CRITICAL alert: Port status up/down on core1.example.net",
        "TEAM_TOKEN=t0k",
        "LANG=C.UTF-8",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in:\n{env}");
    }
    // Nothing of the server's own environment but PATH (cargo sets CARGO_* for tests).
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CARGO") || k == "HOME") {
        assert!(
            !env.lines().any(|l| l.starts_with(&format!("{k}="))),
            "{k} leaked:\n{env}"
        );
    }
    assert!(
        std::env::vars().any(|(k, _)| k.starts_with("CARGO")),
        "cargo runs the tests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_script_is_transient_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "fail.sh",
        "cat > /dev/null\necho 'starting' >&2\necho 'relay said: 451 try later' >&2\nexit 3",
    );
    let t = build("script", json!({"argv": [s]}));
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "script {} exited 3: starting relay said: 451 try later",
            s.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_ignores_stdin_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "quiet.sh", "exit 0");
    let t = build("script", json!({"argv": [s]}));
    let mut n = notification();
    // Larger than a pipe's buffer: the write must not block the wait.
    n.faults = (0..2000)
        .map(|i| json!({"label": format!("port {i}"), "ports.ifAlias": "x".repeat(64)}))
        .collect();
    let d = send(&t, &n).await.unwrap();
    assert_eq!(d.detail, format!("script {} exited 0", s.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    // The script starts a child that would outlive it, then sleeps past the timeout.
    let s = script(
        dir.path(),
        "hang.sh",
        &format!(
            "sleep 300 &\necho $! > '{}'\necho 'waiting for the relay' >&2\nsleep 300",
            pid_file.display()
        ),
    );
    let t = build("script", json!({"argv": [s], "timeout_secs": 1}));
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "script {}: no exit within 1.0 s, killed; stderr: waiting for the relay",
            s.display()
        )
    );
    let child: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The child was in the script's process group: it is gone too (reaped by init, so
    // wait for its /proc entry to disappear or turn into a zombie).
    wait_for(
        "the script's child to be killed",
        Duration::from_secs(30),
        || async {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            matches!(state, None | Some("Z")).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_program_is_permanent_and_check_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.sh");
    let t = build("script", json!({"argv": [missing]}));
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(
        e.message().starts_with(&format!(
            "script {}: cannot run: No such file",
            missing.display()
        )),
        "{e}"
    );
    let e = check_reachable(&row("script", json!({"argv": [missing]})))
        .await
        .unwrap_err();
    assert!(e.contains("No such file"), "{e}");

    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, "not a program").unwrap();
    let e = check_reachable(&row("script", json!({"argv": [plain]})))
        .await
        .unwrap_err();
    assert!(e.ends_with("not executable"), "{e}");
    let ok_script = script(dir.path(), "ok.sh", "exit 0");
    let ok = check_reachable(&row("script", json!({"argv": [ok_script]})))
        .await
        .unwrap();
    assert!(ok.ends_with("present and executable"), "{ok}");
}
