//! The batching pinger against the real fping on loopback: answers match single-host
//! pings, a request for a host already in a batch rides along, one bad host fails no one
//! else, and runs never exceed their bound.
//!
//! A non-answering address on 127.0.0.0/8 needs a network namespace: the fping wrappers
//! below run every fping in a fresh one of their own (`unshare -rn`) with loopback up and
//! 127.0.0.9 blackholed, so nothing outside the test is touched. Wrappers also log each
//! run's arguments, which is how the tests see what went into which fping run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_icmp::{ping, BatchConfig, IcmpError, PingConfig, Pinger};

const FPING: &str = "/usr/bin/fping";
/// Blackholed inside the wrappers' namespace: sends, never answers.
const SILENT: &str = "127.0.0.9";

fn require_fping() {
    assert!(
        Path::new(FPING).exists(),
        "fping missing: apt-get install fping (scripts/install-deps.sh)"
    );
}

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An fping that logs its arguments (one run a line) to `dir/runs.log`, then runs the
/// real one in a namespace of its own where 127.0.0.9 is blackholed.
fn netns_fping(dir: &Path) -> PathBuf {
    let probe = std::process::Command::new("unshare")
        .args(["-rn", "ip", "link", "set", "lo", "up"])
        .status()
        .expect("unshare (util-linux) and ip (iproute2) are needed");
    assert!(
        probe.success(),
        "cannot create a network namespace (unshare -rn): run as root or allow user namespaces"
    );
    let log = dir.join("runs.log");
    script(
        dir,
        "fping",
        &format!(
            "echo \"$*\" >> '{log}'\n\
             exec unshare -rn sh -c 'ip link set lo up && ip route add blackhole {SILENT}/32 table local && exec {FPING} \"$@\"' fping \"$@\"",
            log = log.display()
        ),
    )
}

/// The target arguments of each logged run (what follows `--`).
fn runs(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("runs.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            l.split_once("-- ")
                .map(|(_, t)| t.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        })
        .collect()
}

fn config(fping: PathBuf, batch: BatchConfig) -> PingConfig {
    PingConfig {
        fping,
        count: 2,
        interval_ms: 20,
        timeout_ms: 500,
        batch,
    }
}

/// A batch that starts only when `hosts` distinct hosts are in it: no timing involved.
fn exactly(hosts: usize) -> BatchConfig {
    BatchConfig {
        window: Duration::from_secs(3600),
        max_hosts: hosts,
        ..BatchConfig::default()
    }
}

/// Pings all `hosts` through `pinger` at once.
async fn ping_all(
    pinger: &Pinger,
    hosts: &[String],
) -> Vec<Result<lookout_icmp::PingResult, IcmpError>> {
    let handles: Vec<_> = hosts.iter().map(|h| pinger.start(h)).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.finish().await.0);
    }
    out
}

#[tokio::test]
async fn batched_answers_match_single_host_pings() {
    require_fping();
    let dir = tempfile::tempdir().unwrap();
    let fping = netns_fping(dir.path());
    let mut hosts: Vec<String> = (1..=8).map(|i| format!("127.0.0.{i}")).collect();
    hosts.push(SILENT.to_string());
    hosts.push("::1".to_string());
    hosts.push("[::1]".to_string()); // another spelling, the same address: its own target
    hosts.push("127.00.0.01".to_string()); // inet_aton spelling, resolved by the system
    let n = hosts.len();
    let pinger = Pinger::spawn(config(fping.clone(), exactly(n)));
    let batched = ping_all(&pinger, &hosts).await;

    let single_cfg = config(fping, BatchConfig::default());
    for (host, b) in hosts.iter().zip(&batched) {
        let b = b.as_ref().unwrap_or_else(|e| panic!("{host}: {e}"));
        let s = ping(&single_cfg, host)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(b.transmitted, 2, "{host}");
        assert_eq!(
            (b.transmitted, b.received, b.avg_ms.is_some()),
            (s.transmitted, s.received, s.avg_ms.is_some()),
            "{host}: batched {b:?} vs single {s:?}"
        );
        assert_eq!(b.is_up(), host != SILENT, "{host}: {b:?}");
    }
    let r = runs(dir.path());
    // One batched run with every host, then one single-host run each.
    assert_eq!(r.len(), 1 + n, "{r:?}");
    assert_eq!(r[0].len(), n, "{r:?}");
    assert_eq!(r[0].iter().filter(|t| *t == "::1").count(), 2, "{r:?}");
    assert!(r[0].contains(&"127.0.0.1".to_string()) && !r[0].iter().any(|t| t == "127.00.0.01"));
}

#[tokio::test]
async fn a_host_already_in_a_batch_is_not_pinged_twice() {
    require_fping();
    let dir = tempfile::tempdir().unwrap();
    let fping = netns_fping(dir.path());
    let pinger = Pinger::spawn(config(fping, exactly(3)));
    // join! polls the five in order before any can finish, and an address needs no
    // lookup, so the requests reach the pinger in this order: the repeats of 127.0.0.1
    // come while it waits in the forming batch, and the third distinct host fills it.
    let (a, b, c, d, e) = tokio::join!(
        pinger.ping("127.0.0.1"),
        pinger.ping("127.0.0.2"),
        pinger.ping("127.0.0.1"),
        pinger.ping("127.0.0.1"),
        pinger.ping("127.0.0.3"),
    );
    for (i, r) in [a, b, c, d, e].into_iter().enumerate() {
        assert_eq!(r.unwrap().received, 2, "request {i}");
    }
    let r = runs(dir.path());
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0], ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
}

#[tokio::test]
async fn an_unresolvable_name_fails_alone() {
    require_fping();
    let dir = tempfile::tempdir().unwrap();
    let fping = netns_fping(dir.path());
    // A label longer than 63 characters: the resolver rejects it without asking DNS.
    let bad = format!("{}.invalid", "a".repeat(70));
    let pinger = Pinger::spawn(config(fping, exactly(2)));
    let hosts = vec![
        "127.0.0.1".to_string(),
        bad.clone(),
        "127.0.0.2".to_string(),
    ];
    let answers = ping_all(&pinger, &hosts).await;
    assert!(
        matches!(&answers[1], Err(IcmpError::Resolve(h)) if *h == bad),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[0].as_ref().unwrap().received, 2);
    assert_eq!(answers[2].as_ref().unwrap().received, 2);
    assert_eq!(
        runs(dir.path()).len(),
        1,
        "the bad name never reached fping"
    );
}

#[tokio::test]
async fn a_run_that_fails_is_split_until_the_culprit_is_alone() {
    require_fping();
    let dir = tempfile::tempdir().unwrap();
    let inner = netns_fping(dir.path());
    // fping's exit status 4 (a system call failed) whenever 127.0.0.13 is in the run.
    let failing = script(
        dir.path(),
        "fping-failing",
        &format!(
            "case \" $* \" in *' 127.0.0.13 '*) echo 'fping: sendto: simulated failure' >&2; exit 4;; esac\nexec '{}' \"$@\"",
            inner.display()
        ),
    );
    let hosts: Vec<String> = (10..=17).map(|i| format!("127.0.0.{i}")).collect();
    let pinger = Pinger::spawn(config(failing, exactly(hosts.len())));
    let answers = ping_all(&pinger, &hosts).await;
    for (h, a) in hosts.iter().zip(&answers) {
        if h == "127.0.0.13" {
            assert!(
                matches!(a, Err(IcmpError::Fping { status, message }) if status == "exit status 4" && message.contains("simulated")),
                "{a:?}"
            );
        } else {
            assert_eq!(
                a.as_ref().unwrap_or_else(|e| panic!("{h}: {e}")).received,
                2,
                "{h}"
            );
        }
    }
    // Every run that reached the real fping (the log) lacked the culprit; the hosts
    // beside it were pinged in halves, quarters, ..., not one by one.
    let r = runs(dir.path());
    assert!(
        r.iter().all(|t| !t.contains(&"127.0.0.13".to_string())),
        "{r:?}"
    );
    assert_eq!(
        r.iter().map(Vec::len).sum::<usize>(),
        hosts.len() - 1,
        "{r:?}"
    );
    assert!(r.len() < hosts.len() - 1, "{r:?}");
}

#[tokio::test]
async fn runs_never_exceed_max_runs_and_later_requests_wait() {
    require_fping();
    let dir = tempfile::tempdir().unwrap();
    let inner = netns_fping(dir.path());
    let lock = dir.path().join("running");
    let overlap = dir.path().join("overlap");
    // mkdir is atomic: a second run while one holds the directory leaves a mark.
    let guarded = script(
        dir.path(),
        "fping-guarded",
        &format!(
            "mkdir '{lock}' 2>/dev/null || touch '{overlap}'\n'{inner}' \"$@\"; rc=$?\nrmdir '{lock}' 2>/dev/null\nexit $rc",
            lock = lock.display(),
            overlap = overlap.display(),
            inner = inner.display()
        ),
    );
    let pinger = Pinger::spawn(config(
        guarded,
        BatchConfig {
            window: Duration::from_millis(1),
            max_hosts: 2,
            max_runs: 1,
            ..BatchConfig::default()
        },
    ));
    let hosts: Vec<String> = (20..=27).map(|i| format!("127.0.0.{i}")).collect();
    let answers = ping_all(&pinger, &hosts).await;
    for (h, a) in hosts.iter().zip(&answers) {
        assert_eq!(
            a.as_ref().unwrap_or_else(|e| panic!("{h}: {e}")).received,
            2,
            "{h}"
        );
    }
    assert!(
        !overlap.exists(),
        "two fping runs overlapped with max_runs = 1"
    );
    let r = runs(dir.path());
    assert!(r.iter().all(|t| t.len() <= 2), "{r:?}");
    assert_eq!(r.iter().map(Vec::len).sum::<usize>(), hosts.len(), "{r:?}");
}

#[tokio::test]
async fn missing_fping_is_an_error_for_everyone() {
    let pinger = Pinger::spawn(config(PathBuf::from("/nonexistent/fping"), exactly(2)));
    let hosts = vec!["127.0.0.1".to_string(), "127.0.0.2".to_string()];
    for a in ping_all(&pinger, &hosts).await {
        assert!(matches!(a, Err(IcmpError::FpingMissing(_))), "{a:?}");
    }
}
