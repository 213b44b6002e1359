//! Real processes on a real Galera cluster: a 3-node MariaDB Galera cluster on loopback
//! (`lookout-testkit`), one redis-server for coordination, one snmpd answering as
//! `DEVICES` loopback devices, and three `lookout serve` processes: two pollers
//! (`--roles dispatcher,poller`) and one web node (`--roles web`), at `POLL_INTERVAL=10`.
//! A "web user" thread meanwhile asks the API (`X-Auth-Token`) and a page (login cookie) for
//! the device list four times a second. Two phases, each with fresh processes:
//!
//! 1. `DB_HOST` lists the three nodes; every process uses the first (checked in their logs).
//!    That node is killed -9 during polling.
//! 2. `DB_HOST` is HAProxy in TCP mode in front of the three nodes (the LibreNMS way); a node
//!    behind it is killed -9.
//!
//! In each phase the killed node is restarted and must rejoin (IST or SST) and catch up.
//! Asserted per phase:
//! - no poll result lost: in the window from the steady state to the end, every device has an
//!   `ok` row in `device_poll_log` in every interval (consecutive polls at most 1.5 intervals
//!   apart, i.e. none skipped; first and last within 1.5 intervals of the window's edges), no
//!   `failed` rows, and no duplicates (no token logged twice, no two `ok` polls of a device
//!   within half an interval). `stale` rows are allowed and counted: a poll whose claim
//!   expired while the database stalled (an rsync SST blocks its donor for seconds) is
//!   claimed again by another node and its own result discarded by the fence;
//! - the web user: an action (one API or page request) whose first attempt fails (transport
//!   error, no answer within 10 s, or a status other than 200 with the expected content) is
//!   retried once, 500 ms later. At most one action per phase may need that retry, and every
//!   retry must succeed;
//! - catch-up: once the processes are stopped, `devices`, `ports`, `device_poll_log` and
//!   `eventlog` have the same row counts on all three nodes (read with `wsrep_sync_wait`).
//!
//! - alerting: a rule notifies every 5 s per device to a webhook of the test's own; every
//!   notification queued up to 10 s before the end of the window (so also those pending
//!   while the node was down) is delivered before the processes stop, none is lost.
//!
//! Skipped when `LOOKOUT_TEST_DB=mysql` (it always runs on its own cluster, so the MariaDB leg
//! of the CI would only run it twice) and when `LOOKOUT_TEST_GALERA=0`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../coord/tests/support/servers.rs"]
mod servers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::webhook::Webhook;
use common::{free_tcp_port, now_secs, PollRow, ADMIN_PASSWORD as PASSWORD};
use lookout_testkit::galera::{GaleraCluster, Haproxy};

const INTERVAL: f64 = 10.0;
const DEVICES: u8 = 6;
const DB: &str = "lookout_galera_procs";
/// Web user: pause between actions.
const WEB_PAUSE: Duration = Duration::from_millis(250);
/// Web user: an attempt not answered within this counts as failed.
const WEB_TIMEOUT: Duration = Duration::from_secs(10);

/// The lookout processes of one phase, all with the same database and Redis settings.
struct Lookouts {
    base: PathBuf,
    phase: &'static str,
    db_host: String,
    redis_url: String,
    children: BTreeMap<&'static str, Child>,
    web_port: u16,
}

impl Lookouts {
    fn cmd(&self, data: &str) -> Command {
        let mut c = common::lookout(&self.base.join(data), &self.base);
        c.env("POLL_INTERVAL", INTERVAL.to_string())
            .env("POLLER_WORKERS", "4")
            .env("REDIS_URL", &self.redis_url)
            .env("ALERT_TIME_PASS_SECS", "1")
            .env("ALERT_RETRY_SECS", "1")
            .env("LOOKOUT_LOG", "info");
        common::use_mysql(&mut c, &self.db_host, None, DB);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        common::stdout_ok(self.cmd("admin").args(args))
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.base.join(format!("{}-{id}.log", self.phase))
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Starts p1 and p2 (dispatcher + poller) and w1 (web).
    fn start(&mut self) {
        let listen = format!("127.0.0.1:{}", self.web_port);
        for (id, roles) in [
            ("p1", "dispatcher,poller"),
            ("p2", "dispatcher,poller"),
            ("w1", "web"),
        ] {
            let child = common::spawn_logged(
                self.cmd(id)
                    .args(["serve", "--roles", roles, "--node-id", id, "--listen"])
                    .arg(&listen),
                &self.log_path(id),
            );
            self.children.insert(id, child);
        }
    }

    /// SIGTERM (a clean shutdown), SIGKILL after 10 s.
    fn stop(&mut self) {
        common::terminate(
            std::mem::take(&mut self.children).into_values(),
            Duration::from_secs(10),
        );
    }

    /// Counts of a log line per process.
    fn count_lines(&self, needle: &str) -> BTreeMap<&'static str, usize> {
        ["p1", "p2", "w1"]
            .into_iter()
            .map(|id| (id, self.log(id).matches(needle).count()))
            .collect()
    }
}

impl Drop for Lookouts {
    fn drop(&mut self) {
        let logs: Vec<(PathBuf, String)> = ["p1", "p2", "w1"]
            .into_iter()
            .map(|id| (self.log_path(id), format!("{}-{id}.log", self.phase)))
            .collect();
        common::keep_logs_if_panicking("galera", &logs);
        self.stop();
    }
}

/// One attempt of the web user.
fn attempt(
    http: &ureq::Agent,
    url: &str,
    header: (&str, &str),
    expect: &str,
) -> Result<(), String> {
    let resp = http.get(url).header(header.0, header.1).call();
    let mut resp = resp.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        return Err(format!("status {status}: {}", &body[..body.len().min(200)]));
    }
    if !body.contains(expect) {
        return Err(format!("200 without {expect:?}"));
    }
    Ok(())
}

/// What the web user saw.
#[derive(Debug, Default)]
struct WebReport {
    actions: usize,
    /// (seconds since the epoch, what failed) of actions whose first attempt failed and
    /// whose retry succeeded.
    retried: Vec<(f64, String)>,
    /// Actions whose retry failed too.
    failed: Vec<(f64, String)>,
    slowest: Duration,
    slowest_at: f64,
}

/// Logs in through the login form: GET /login (login cookie + CSRF token), POST /login;
/// returns the session cookie (`lookout_session=...`).
fn login(http: &ureq::Agent, base: &str) -> String {
    let mut resp = http.get(&format!("{base}/login")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let login_cookie = set_cookie(&resp, "lookout_login").expect("login cookie");
    let html = resp.body_mut().read_to_string().unwrap();
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf field")
        .to_string();
    let resp = http
        .post(&format!("{base}/login"))
        .header("Cookie", &login_cookie)
        .send_form([
            ("username", "admin"),
            ("password", PASSWORD),
            ("_csrf", csrf.as_str()),
        ])
        .unwrap();
    assert!(
        resp.status().is_redirection(),
        "login: {}",
        resp.status().as_u16()
    );
    set_cookie(&resp, "lookout_session").expect("session cookie")
}

fn set_cookie<B>(resp: &ureq::http::Response<B>, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Runs the web user until `stop`: alternately the API device list (token) and the devices
/// page (cookie), every `WEB_PAUSE`.
fn web_user(base: String, token: String, cookie: String, stop: Arc<AtomicBool>) -> WebReport {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WEB_TIMEOUT))
        .build()
        .into();
    let api = format!("{base}/api/v0/devices");
    let page = format!("{base}/devices");
    let mut report = WebReport::default();
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let started = now_secs();
        let t = Instant::now();
        let try_once = || {
            if k.is_multiple_of(2) {
                attempt(&http, &api, ("X-Auth-Token", &token), "\"127.0.0.2\"")
            } else {
                attempt(&http, &page, ("Cookie", &cookie), "127.0.0.2")
            }
        };
        if let Err(first) = try_once() {
            std::thread::sleep(Duration::from_millis(500));
            match try_once() {
                Ok(()) => report.retried.push((started, first)),
                Err(second) => report
                    .failed
                    .push((started, format!("{first}; retry: {second}"))),
            }
        }
        report.actions += 1;
        if t.elapsed() > report.slowest {
            report.slowest = t.elapsed();
            report.slowest_at = started;
        }
        std::thread::sleep(WEB_PAUSE);
    }
    report
}

fn poll_log(galera: &GaleraCluster, via: usize) -> Vec<PollRow> {
    common::poll_rows(galera.nodes[via].rows(DB, common::POLL_LOG_SQL))
}

/// Every device polled in every interval of [from, to], no failures, no duplicates.
fn assert_every_interval(phase: &str, log: &[PollRow], from: f64, to: f64) {
    let window: Vec<&PollRow> = log
        .iter()
        .filter(|r| r.started >= from && r.started <= to)
        .collect();
    let failed: Vec<&&PollRow> = window.iter().filter(|r| r.status == "failed").collect();
    assert!(failed.is_empty(), "{phase}: failed polls: {failed:?}");
    // A `stale` row is a poll whose claim expired while the database stalled (an rsync SST
    // blocks its donor for seconds): another node claimed the device again and its result
    // was discarded by the fence, so it is not a duplicate. Counted, not refused.
    let stale = window.iter().filter(|r| r.status == "stale").count();
    let window: Vec<&PollRow> = window.into_iter().filter(|r| r.status == "ok").collect();
    let mut tokens = BTreeSet::new();
    for r in log {
        assert!(
            tokens.insert(r.token),
            "{phase}: token {} logged twice: {r:?}",
            r.token
        );
    }
    let (min_gap, max_gap) = common::assert_polled_throughout(
        phase,
        log,
        usize::from(DEVICES),
        (from, to),
        (0.5 * INTERVAL, 1.5 * INTERVAL),
    );
    let nodes: BTreeSet<&str> = window.iter().map(|r| r.node.as_str()).collect();
    eprintln!(
        "{phase}: {} ok polls of {} devices in {:.0} s by {nodes:?}; gaps {min_gap:.1}..{max_gap:.1} s; {stale} stale (discarded)",
        window.len(),
        DEVICES,
        to - from
    );
}

/// Same row counts on all nodes.
fn assert_caught_up(phase: &str, galera: &GaleraCluster) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for table in ["devices", "ports", "device_poll_log", "eventlog"] {
        let per_node: Vec<i64> = galera
            .nodes
            .iter()
            .map(|n| n.scalar(DB, &format!("SELECT COUNT(*) FROM {table}")))
            .collect();
        assert!(
            per_node.iter().all(|c| *c == per_node[0]),
            "{phase}: {table} differs between nodes: {per_node:?}"
        );
        counts.insert(table, per_node[0]);
    }
    counts
}

/// Waits until every device has an `ok` poll that started after `since`.
fn wait_all_polled(phase: &str, galera: &GaleraCluster, via: usize, since: f64, procs: &Lookouts) {
    common::wait_all_polled(
        usize::from(DEVICES),
        since,
        Duration::from_secs(40),
        || poll_log(galera, via),
        || format!("{phase}: p1 log:\n{}", procs.log("p1")),
    );
}

/// What both phases share: the work dir, Redis and the API token.
struct PhaseEnv {
    base: PathBuf,
    redis_url: String,
    token: String,
    hook: Webhook,
}

/// Every notification queued before `before` is delivered within 60 s and was received
/// by the webhook (none lost across the node kill). Returns (queued, received).
fn assert_alerts_delivered(
    name: &str,
    galera: &GaleraCluster,
    via: usize,
    hook: &Webhook,
    before: f64,
) -> (usize, usize) {
    let node = &galera.nodes[via];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = node.scalar(
            DB,
            &format!(
                "SELECT COUNT(*) FROM alert_outbox WHERE state <> 'delivered' \
                 AND UNIX_TIMESTAMP(created) < {before}"
            ),
        );
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {waiting} notifications still not delivered: {:?}",
            node.rows(DB, "SELECT id, state, attempts, last_error FROM alert_outbox WHERE state <> 'delivered'")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let keys: Vec<String> = node
        .rows(
            DB,
            &format!(
                "SELECT idempotency_key FROM alert_outbox WHERE UNIX_TIMESTAMP(created) < {before}"
            ),
        )
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let got: BTreeSet<String> = hook
        .received()
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect();
    let lost: Vec<&String> = keys.iter().filter(|k| !got.contains(*k)).collect();
    assert!(lost.is_empty(), "{name}: notifications lost: {lost:?}");
    assert!(
        !keys.is_empty(),
        "{name}: no notification queued: the rule never fired"
    );
    (keys.len(), hook.received().len())
}

/// One phase: start the processes on `db_host`, let them poll, kill -9 Galera node `victim`
/// while the web user runs, restart it, check polls, web user and catch-up.
async fn phase(
    name: &'static str,
    galera: &mut GaleraCluster,
    env: &PhaseEnv,
    db_host: String,
    victim: usize,
    uses: Option<String>,
) {
    let survivor = (victim + 1) % 3;
    let started = now_secs();
    let mut procs = Lookouts {
        base: env.base.clone(),
        phase: name,
        db_host,
        redis_url: env.redis_url.clone(),
        children: BTreeMap::new(),
        web_port: free_tcp_port(),
    };
    procs.start();
    let base_url = format!("http://127.0.0.1:{}", procs.web_port);
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(&format!("{base_url}/health"))
        .call()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            Instant::now() < deadline,
            "{name}: web node not healthy; log:\n{}",
            procs.log("w1")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let cookie = login(&http, &base_url);
    wait_all_polled(name, galera, survivor, started, &procs);
    if let Some(node) = &uses {
        // The processes say which node they use: the one the test kills.
        for id in ["p1", "p2", "w1"] {
            let log = procs.log(id);
            let line = log
                .lines()
                .find(|l| l.contains("using database node"))
                .unwrap_or_else(|| panic!("{name}: {id} did not log its database node:\n{log}"));
            assert!(
                line.contains(node.as_str()),
                "{name}: {id} uses another node: {line}"
            );
        }
    }
    // Past the start-up burst (first polls of every device at once).
    std::thread::sleep(Duration::from_secs(2));
    let t_steady = now_secs();

    let stop = Arc::new(AtomicBool::new(false));
    let user = {
        let (b, t, c, s) = (
            base_url.clone(),
            env.token.clone(),
            cookie.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || web_user(b, t, c, s))
    };
    std::thread::sleep(Duration::from_secs(4));
    let killed_at = now_secs();
    galera.nodes[victim].kill9();
    eprintln!(
        "{name}: killed -9 Galera node {} ({}) at +{:.1} s of the steady window",
        galera.nodes[victim].name,
        galera.label(victim),
        killed_at - t_steady
    );
    let rejoin = galera.rejoin(victim).await;
    let transfer = galera.nodes[victim].last_state_transfer();
    eprintln!(
        "{name}: {} restarted, rejoined ({}) and synced in {rejoin:.1?}",
        galera.nodes[victim].name,
        transfer.unwrap_or("state transfer not found in its log")
    );
    assert!(
        transfer.is_some(),
        "{name}: no IST/SST in the rejoined node's log"
    );
    // Polling goes on for at least 2.5 intervals in all, and 5 s after the rejoin.
    let until = (t_steady + 2.5 * INTERVAL).max(now_secs() + 5.0);
    while now_secs() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let t_end = now_secs();
    let report = user.join().unwrap();
    let (queued, received) =
        assert_alerts_delivered(name, galera, survivor, &env.hook, t_end - 10.0);
    eprintln!("{name}: alerting: {queued} notifications queued up to 10 s before the end, all delivered; {received} received");
    procs.stop();
    eprintln!(
        "{name}: window [{t_steady:.1}, {t_end:.1}], kill at {killed_at:.1}, stopped at {:.1}",
        now_secs()
    );

    // --- catch-up (first: a node that lags would also make the poll checks below fail)
    let counts = assert_caught_up(name, galera);
    eprintln!("{name}: all 3 nodes have the same row counts {counts:?}");

    // --- polls
    let log = poll_log(galera, survivor);
    assert_every_interval(name, &log, t_steady, t_end);
    let around_kill = log
        .iter()
        .filter(|r| r.started <= killed_at + 1.0 && r.started + r.duration >= killed_at)
        .map(|r| r.duration)
        .fold(0.0f64, f64::max);
    let normal = log
        .iter()
        .filter(|r| r.started > t_steady && r.started + r.duration < killed_at)
        .map(|r| r.duration)
        .fold(0.0f64, f64::max);

    // --- the web user
    eprintln!(
        "{name}: web user: {} actions, {} retried once {:?}, {} failed; slowest {:.2?} at {:+.1} s from the kill",
        report.actions,
        report.retried.len(),
        report.retried,
        report.failed.len(),
        report.slowest,
        report.slowest_at - killed_at
    );
    assert!(report.actions > 20, "{name}: web user too slow: {report:?}");
    assert!(
        report.failed.is_empty(),
        "{name}: web user saw failures that a retry did not fix: {:?}",
        report.failed
    );
    assert!(
        report.retried.len() <= 1,
        "{name}: web user needed more than one retried request: {:?}",
        report.retried
    );

    // --- retries and fail-overs as the processes logged them
    let retries = procs.count_lines("transient database error, retrying");
    let failovers = procs.count_lines("database fail-over");
    eprintln!(
        "{name}: longest poll overlapping the kill {around_kill:.2} s (before the kill: {normal:.2} s); \
         store retries per process {retries:?}, fail-overs {failovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_and_web_survive_a_galera_node_kill() {
    if common::test_db_is_mysql() {
        eprintln!(
            "\n*** SKIPPED in the LOOKOUT_TEST_DB=mysql leg: this test runs on its own Galera \
             cluster, the default leg runs it ***\n"
        );
        return;
    }
    if std::env::var("LOOKOUT_TEST_GALERA").as_deref() == Ok("0") {
        eprintln!("\n*** SKIPPED: LOOKOUT_TEST_GALERA=0, Galera process test not run ***\n");
        return;
    }
    let t_begin = Instant::now();
    let mut galera = GaleraCluster::start("lookout-process-test").await;
    eprintln!("Galera cluster of 3 up in {:.1?}", t_begin.elapsed());
    let lab = servers::Lab::new();
    let redis = lab.redis(None);
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let snmpd = common::start_devices(DEVICES);
    let base = tempfile::tempdir().unwrap();

    // --- inventory, through the node list
    let admin = Lookouts {
        base: base.path().to_path_buf(),
        phase: "setup",
        db_host: galera.db_host(&[0, 1, 2]),
        redis_url: redis_url.clone(),
        children: BTreeMap::new(),
        web_port: 0,
    };
    admin.ok(&["migrate"]);
    admin.ok(&["user", "add", "admin", "--password", PASSWORD]);
    let out = admin.ok(&["token", "create", "--user", "admin"]);
    let token = out.lines().last().unwrap().trim().to_string();
    let hook = Webhook::start();
    admin.ok(&[
        "alert",
        "transport",
        "add",
        "hook",
        "webhook",
        "--url",
        &hook.url(),
        "--default",
    ]);
    admin.ok(&[
        "alert",
        "rules",
        "add",
        "Heartbeat",
        "--rule",
        "macros.device_up",
        "--interval",
        "5",
    ]);
    let port = snmpd.port.to_string();
    for i in 0..DEVICES {
        admin.ok(&[
            "device",
            "add",
            &format!("127.0.0.{}", i + 2),
            "--port",
            &port,
        ]);
    }
    drop(admin);
    eprintln!(
        "inventory of {DEVICES} devices after {:.1?}",
        t_begin.elapsed()
    );

    // --- 1. DB_HOST lists the three nodes: every process uses n1, which is killed.
    let name = "node-list";
    let db_host = galera.db_host(&[0, 1, 2]);
    let n1 = galera.label(0);
    let env = PhaseEnv {
        base: base.path().to_path_buf(),
        redis_url,
        token,
        hook,
    };
    phase(name, &mut galera, &env, db_host, 0, Some(n1)).await;
    eprintln!("phase 1 done after {:.1?}", t_begin.elapsed());

    // --- 2. HAProxy in TCP mode in front: DB_HOST is its address only; n2 is killed.
    let proxy = Haproxy::start(&galera).await;
    phase("haproxy", &mut galera, &env, proxy.address(), 1, None).await;
    drop(proxy);
    eprintln!("whole test {:.1?}", t_begin.elapsed());
}
