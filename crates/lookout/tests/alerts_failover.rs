//! Alert delivery across fail-overs: three `lookout serve --roles dispatcher,poller`
//! nodes over one MariaDB database and Redis (primary, two replicas, three Sentinels),
//! four devices on one real snmpd, a rule that notifies every 3 s per device, and a webhook
//! of the test's own that answers after 1 s (so that messages are always in flight).
//!
//! 1. kill -9 the master 20 times, at varying moments (each time after new deliveries);
//! 2. kill -9 the Redis primary while messages are pending;
//! 3. SIGSTOP the master past its lease, then SIGCONT: the old master sends nothing more.
//!
//! Then the rule is disabled, the outbox drains, and every message in it is compared with
//! what the webhook received: none lost; a key received twice only when a sender recorded
//! the attempt and never its outcome (died or was fenced between handing the message over
//! and recording it). The counts are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../coord/tests/support/servers.rs"]
mod servers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::webhook::Webhook;
use common::{now_secs, TestDatabase};

struct Cluster {
    base: tempfile::TempDir,
    db: TestDatabase,
    sentinels: String,
    nodes: BTreeMap<String, (Option<Child>, PathBuf)>,
}

impl Cluster {
    fn lookout(&self, data: &str) -> Command {
        let mut c = common::lookout(&self.base.path().join(data), self.base.path());
        c.env("POLL_INTERVAL", "10")
            .env("POLLER_WORKERS", "4")
            .env("REDIS_SENTINEL", &self.sentinels)
            .env("REDIS_SENTINEL_SERVICE", "mymaster")
            .env("ALERT_TIME_PASS_SECS", "1")
            .env("ALERT_RETRY_SECS", "1")
            .env("ALERT_MAX_ATTEMPTS", "50")
            .env("LOOKOUT_LOG", "info");
        common::use_mysql(
            &mut c,
            common::MARIADB_HOST,
            Some(common::MARIADB_PORT),
            &self.db.name,
        );
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        common::stdout_ok(self.lookout("admin").args(args))
    }

    fn start(&mut self, id: &str) {
        let log = self.nodes[id].1.clone();
        let child = common::spawn_logged(
            self.lookout(id)
                .args(["serve", "--roles", "dispatcher,poller", "--node-id", id]),
            &log,
        );
        self.nodes.get_mut(id).unwrap().0 = Some(child);
    }

    fn kill(&mut self, id: &str) {
        if let Some(c) = self.nodes.get_mut(id).unwrap().0.take() {
            common::kill9(c);
        }
    }

    fn pid(&self, id: &str) -> u32 {
        self.nodes[id].0.as_ref().unwrap().id()
    }

    /// The master as the coordination backend reports it (None while it does not answer).
    fn master(&self) -> Option<String> {
        let out = self
            .lookout("admin")
            .args(["poller", "status", "--json"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["master"].as_str().map(str::to_owned)
    }

    fn wait_master(&self, not: Option<&str>, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.master().filter(|m| Some(m.as_str()) != not) {
                return m;
            }
            assert!(Instant::now() < deadline, "no new master within {limit:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn scalar(&self, sql: &str) -> i64 {
        self.db.rows(sql)[0][0].parse().unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let logs: Vec<(PathBuf, String)> = self
            .nodes
            .iter()
            .map(|(id, (_, log))| (log.clone(), format!("{id}.log")))
            .collect();
        common::keep_logs_if_panicking("alerts-failover", &logs);
        for (c, _) in self.nodes.values_mut() {
            if let Some(c) = c.take() {
                common::signal(c.id(), "-CONT");
                common::kill9(c);
            }
        }
    }
}

fn wait_more_deliveries(hook: &Webhook, than: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while hook.received().len() <= than {
        assert!(
            Instant::now() < deadline,
            "no delivery within {limit:?} (received {than})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn no_notification_lost_across_fail_overs() {
    if common::test_db_is_mysql() {
        eprintln!("\n*** SKIPPED in the LOOKOUT_TEST_DB=mysql leg: the default leg runs it ***\n");
        return;
    }
    let lab = servers::Lab::new();
    let mut redis = vec![lab.redis(None)];
    let pport = redis[0].port;
    redis.push(lab.redis(Some(pport)));
    redis.push(lab.redis(Some(pport)));
    let sentinels: Vec<servers::Proc> = (0..3).map(|_| lab.sentinel(pport, "mymaster")).collect();
    let sentinel_list = sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect::<Vec<_>>()
        .join(",");
    let snmpd = common::start_devices(4);
    let hook = Webhook::start();
    hook.set_delay(Duration::from_secs(1));

    let base = tempfile::tempdir().unwrap();
    let nodes = ["n1", "n2", "n3"]
        .iter()
        .map(|id| {
            (
                id.to_string(),
                (None, base.path().join(format!("{id}.log"))),
            )
        })
        .collect();
    let mut c = Cluster {
        base,
        db: TestDatabase::create("lookout_test_alert_failover"),
        sentinels: sentinel_list,
        nodes,
    };
    c.ok(&["migrate"]);
    let port = snmpd.port.to_string();
    for a in &snmpd.addrs {
        c.ok(&["device", "add", &a.to_string(), "--port", &port]);
    }
    c.ok(&[
        "alert",
        "transport",
        "add",
        "hook",
        "webhook",
        "--url",
        &hook.url(),
        "--default",
    ]);
    c.ok(&[
        "alert",
        "rules",
        "add",
        "Heartbeat",
        "--rule",
        "macros.device_up",
        "--interval",
        "3",
    ]);
    for id in ["n1", "n2", "n3"] {
        c.start(id);
    }
    c.wait_master(None, Duration::from_secs(30));
    wait_more_deliveries(&hook, 4, Duration::from_secs(60));

    // 1. kill -9 the master, 20 times.
    for i in 0..20u64 {
        let m = c.wait_master(None, Duration::from_secs(30));
        let seen = hook.received().len();
        wait_more_deliveries(&hook, seen, Duration::from_secs(30));
        // Vary the moment within the webhook's 1 s answer time.
        std::thread::sleep(Duration::from_millis(150 + (i * 337) % 900));
        c.kill(&m);
        c.start(&m);
        c.wait_master(None, Duration::from_secs(30));
    }

    // 2. The Redis primary dies while messages are pending.
    let seen = hook.received().len();
    redis[0].kill();
    wait_more_deliveries(&hook, seen + 4, Duration::from_secs(60));

    // 3. SIGSTOP the master past its lease; another takes over; SIGCONT.
    let old = c.wait_master(None, Duration::from_secs(30));
    let old_token = c.scalar("SELECT token FROM alert_fence WHERE id = 1");
    common::signal(c.pid(&old), "-STOP");
    let new = c.wait_master(Some(&old), Duration::from_secs(30));
    let seen = hook.received().len();
    wait_more_deliveries(&hook, seen, Duration::from_secs(30));
    let woke_at = now_secs();
    common::signal(c.pid(&old), "-CONT");
    std::thread::sleep(Duration::from_secs(5));
    let after_wake = c.scalar(&format!(
        "SELECT COUNT(*) FROM alert_delivery_attempts WHERE node_id = '{old}' AND token = {old_token} \
         AND UNIX_TIMESTAMP(started) > {woke_at}"
    ));
    assert_eq!(
        after_wake, 0,
        "the paused old master {old} sent after waking up (new master {new})"
    );

    // Drain: no new messages, then everything in the outbox delivered.
    c.ok(&["alert", "rules", "disable", "Heartbeat"]);
    std::thread::sleep(Duration::from_secs(8));
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.scalar("SELECT COUNT(*) FROM alert_outbox WHERE state <> 'delivered'") > 0 {
        assert!(Instant::now() < deadline, "outbox not drained: {:?}",
            c.db.rows("SELECT id, state, attempts, last_error FROM alert_outbox WHERE state <> 'delivered'"));
        std::thread::sleep(Duration::from_millis(500));
    }

    let keys: Vec<String> =
        c.db.rows("SELECT idempotency_key FROM alert_outbox")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for r in hook.received() {
        let k = r.idempotency_key.clone().unwrap();
        assert_eq!(Some(k.as_str()), r.body["idempotency_key"].as_str());
        *received.entry(k).or_default() += 1;
    }
    let lost: Vec<&String> = keys.iter().filter(|k| !received.contains_key(*k)).collect();
    let dups: Vec<(&String, &usize)> = received.iter().filter(|(_, n)| **n > 1).collect();
    // A duplicate is only allowed where an attempt never recorded its outcome.
    for (k, n) in &dups {
        let unrecorded = c.scalar(&format!(
            "SELECT COUNT(*) FROM alert_delivery_attempts a JOIN alert_outbox o ON o.id = a.outbox_id \
             WHERE o.idempotency_key = '{k}' AND a.outcome = 'sending'"
        ));
        assert!(
            unrecorded as usize >= *n - 1,
            "{k} received {n} times but only {unrecorded} attempt(s) without a recorded outcome"
        );
    }
    let unknown: Vec<&String> = received.keys().filter(|k| !keys.contains(k)).collect();
    println!(
        "alert fail-over: {} messages, {} received, {} lost, {} duplicated (send-before-record window), {} unknown",
        keys.len(),
        received.values().sum::<usize>(),
        lost.len(),
        dups.len(),
        unknown.len()
    );
    assert!(
        keys.len() >= 40,
        "too few messages to prove anything: {}",
        keys.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(
        unknown.is_empty(),
        "received keys that are not in the outbox: {unknown:?}"
    );
    drop(sentinels);
}
