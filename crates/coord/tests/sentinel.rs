//! Fail-over through Redis Sentinel: 1 primary + 2 replicas + 3 sentinels on ports of the
//! test's own; a Coord connected through the sentinels; kill -9 the primary; the Coord
//! must keep working against the promoted replica within 10 s without any help, the
//! replicated state (nodes, master lease, queues) must be there, and fencing tokens must
//! keep growing even when the token counter itself was lost in the fail-over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/servers.rs"]
mod servers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lookout_coord::{Coord, CoordConfig, NodeInfo, RedisConfig, Work};
use servers::{cli, Lab, Proc};

const SERVICE: &str = "mymaster";

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    cli(port, &["INFO", section]).lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_owned())
    })
}

/// Port of the primary the sentinel on `sport` names now.
fn primary_port(sport: u16) -> Option<u16> {
    cli(sport, &["SENTINEL", "get-master-addr-by-name", SERVICE])
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

struct Cluster {
    _lab: Lab,
    primary: Proc,
    replicas: Vec<Proc>,
    sentinels: Vec<Proc>,
}

fn cluster() -> Cluster {
    let lab = Lab::new();
    let primary = lab.redis(None);
    let replicas: Vec<Proc> = (0..2).map(|_| lab.redis(Some(primary.port))).collect();
    for r in &replicas {
        wait_until("replica in sync", Duration::from_secs(10), || {
            info_field(r.port, "replication", "master_link_status").as_deref() == Some("up")
        });
    }
    let sentinels: Vec<Proc> = (0..3)
        .map(|_| lab.sentinel(primary.port, SERVICE))
        .collect();
    for s in &sentinels {
        // Each sentinel must know both replicas and the two other sentinels, or a
        // fail-over cannot be agreed on.
        wait_until("sentinel quorum", Duration::from_secs(15), || {
            cli(s.port, &["SENTINEL", "ckquorum", SERVICE]).starts_with("OK 3 usable")
                && cli(s.port, &["SENTINEL", "replicas", SERVICE])
                    .matches("name")
                    .count()
                    == 2
        });
    }
    Cluster {
        _lab: lab,
        primary,
        replicas,
        sentinels,
    }
}

fn replicas_caught_up(c: &Cluster) -> bool {
    let off = info_field(c.primary.port, "replication", "master_repl_offset");
    c.replicas
        .iter()
        .all(|r| info_field(r.port, "replication", "slave_repl_offset") == off)
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        node_id: id.into(),
        hostname: id.into(),
        version: "0.1.0".into(),
        roles: vec!["poller".into()],
        groups: vec![0],
        workers: 1,
        ..NodeInfo::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coord_follows_sentinel_failover() {
    let mut cl = cluster();
    let sentinels: Vec<(String, u16)> = cl
        .sentinels
        .iter()
        .map(|s| ("127.0.0.1".to_string(), s.port))
        .collect();
    let mut rc = RedisConfig::sentinel(sentinels, SERVICE);
    rc.command_timeout = Duration::from_millis(1_000);
    rc.reconnect_delay = Duration::from_millis(100);
    let coord = Coord::connect(&CoordConfig::Redis(rc.clone()))
        .await
        .unwrap();
    // The same settings as LibreNMS would write them resolve to the same config.
    let env_form = cl
        .sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect::<Vec<_>>()
        .join(",");
    let parsed = CoordConfig::from_lookup(|k| match k {
        "REDIS_SENTINEL" => Some(env_form.clone()),
        "REDIS_SENTINEL_SERVICE" => Some(SERVICE.into()),
        _ => None,
    })
    .unwrap();
    let CoordConfig::Redis(p) = parsed else {
        panic!("not redis")
    };
    assert_eq!(p.target, rc.target);

    // State before the fail-over.
    coord
        .heartbeat(&node("a"), Duration::from_secs(30))
        .await
        .unwrap();
    let lease = coord
        .try_acquire_master("a", Duration::from_secs(2))
        .await
        .unwrap()
        .unwrap();
    let now = Utc::now();
    for d in 1..=20 {
        assert!(coord.enqueue(0, d, now, Work::Poll).await.unwrap());
    }
    let held = coord
        .claim(&[0], "a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    wait_until(
        "replication of the test's writes",
        Duration::from_secs(5),
        || replicas_caught_up(&cl),
    );

    // Watch the sentinels for the promotion while the Coord is exercised.
    let old_port = cl.primary.port;
    let sports: Vec<u16> = cl.sentinels.iter().map(|s| s.port).collect();
    let t0 = Instant::now();
    let promoted_ms = Arc::new(AtomicU64::new(0));
    let watcher = {
        let promoted_ms = promoted_ms.clone();
        std::thread::spawn(move || loop {
            // The first sentinel to name another primary marks the promotion.
            for &sp in &sports {
                if let Some(p) = primary_port(sp) {
                    if p != old_port {
                        promoted_ms.store(t0.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
                        return p;
                    }
                }
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return 0;
            }
            std::thread::sleep(Duration::from_millis(25));
        })
    };
    cl.primary.kill();
    let killed = t0;

    // Keep working: the first call that succeeds after the kill, by a Coord nobody told
    // about the fail-over.
    let mut failures = 0;
    let recovered = loop {
        match coord.heartbeat(&node("a"), Duration::from_secs(30)).await {
            Ok(()) => break killed.elapsed(),
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "while failing over");
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "Coord did not follow the fail-over within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let new_port = watcher.join().unwrap();
    let promoted = Duration::from_millis(promoted_ms.load(Ordering::SeqCst).saturating_sub(1));
    assert!(
        new_port != 0 && new_port != old_port,
        "sentinel named no new primary"
    );
    eprintln!(
        "fail-over: a sentinel named the new primary {promoted:?} after kill -9 (polled every \
         ~25 ms); Coord's first successful call {recovered:?} after the kill ({:?} after that), \
         {failures} failed calls before",
        recovered.saturating_sub(promoted)
    );
    assert!(recovered < Duration::from_secs(10));

    // It talks to the promoted replica, which is now a primary holding the replicated state.
    assert!(cl.replicas.iter().any(|r| r.port == new_port));
    assert!(cli(new_port, &["ROLE"]).starts_with("master"));
    assert_eq!(cli(new_port, &["HEXISTS", "lookout:nodes", "a"]), "1");
    let nodes = coord.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].alive);
    let depth = coord.queue_depths().await.unwrap();
    assert_eq!(
        (depth[0].queued, depth[0].claimed),
        (19, 1),
        "queues survived: {depth:?}"
    );

    // Queue work goes on: the held claim can still be acked, the rest is claimable.
    assert!(coord.ack(&held).await.unwrap());
    let next = coord
        .claim(&[0], "a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(next.token > held.token);

    // Fencing across a lost counter: wipe the token counters as if the last increments
    // never reached the replica; the next lease still gets a larger token.
    cli(
        new_port,
        &["DEL", "lookout:master:token", "lookout:claim:token"],
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await; // the 2 s master lease runs out
    let b = coord
        .try_acquire_master("b", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.token > lease.token,
        "token {} after the loss must exceed {}",
        b.token,
        lease.token
    );
    assert!(coord.renew_master(&lease).await.unwrap_err().is_lost());
    let after = coord
        .claim(&[0], "a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(after.token > next.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coord_follows_forced_failover_without_a_kill() {
    // `SENTINEL FAILOVER` demotes a live primary: a client that only reconnects to the
    // address it had (redis-rs's ConnectionManager) ends up on a replica and gets READONLY.
    // The Coord must end up writing to the new primary.
    let cl = cluster();
    let sentinels: Vec<(String, u16)> = cl
        .sentinels
        .iter()
        .map(|s| ("127.0.0.1".to_string(), s.port))
        .collect();
    let mut rc = RedisConfig::sentinel(sentinels, SERVICE);
    rc.command_timeout = Duration::from_millis(1_000);
    rc.reconnect_delay = Duration::from_millis(100);
    let coord = Coord::connect(&CoordConfig::Redis(rc)).await.unwrap();
    coord
        .heartbeat(&node("a"), Duration::from_secs(30))
        .await
        .unwrap();
    let old_port = cl.primary.port;
    let s0 = cl.sentinels[0].port;
    assert_eq!(cli(s0, &["SENTINEL", "FAILOVER", SERVICE]), "OK");
    let t = Instant::now();
    wait_until("promotion", Duration::from_secs(10), || {
        primary_port(s0).is_some_and(|p| p != old_port)
    });
    let new_port = primary_port(s0).unwrap();
    let promoted = t.elapsed();
    // Write continuously; find when writes start landing on the new primary (and stay
    // there), and count the writes that went to the demoted primary in between.
    let mut i = 0i64;
    let mut streak = 0;
    let mut lost = 0;
    let followed = loop {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "Coord stuck on the old primary"
        );
        i += 1;
        if coord.enqueue(0, i, Utc::now(), Work::Poll).await.is_err() {
            continue;
        }
        if cli(new_port, &["ZSCORE", "lookout:q:0", &i.to_string()]).is_empty() {
            lost += 1;
            streak = 0;
        } else {
            streak += 1;
            if streak == 5 {
                break t.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "forced fail-over: promoted {promoted:?} after SENTINEL FAILOVER; Coord writing to the new \
         primary at {followed:?}; {lost} writes went to the demoted primary after promotion"
    );
    assert!(
        followed < promoted + Duration::from_secs(3),
        "the sentinel watch should move the Coord within ~1 s of the promotion"
    );
    assert!(cli(new_port, &["ROLE"]).starts_with("master"));
    let depth = coord.queue_depths().await.unwrap()[0].queued;
    assert_eq!(
        depth,
        cli(new_port, &["ZCARD", "lookout:q:0"])
            .parse::<u64>()
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_survives_a_failover_under_load() {
    // Four workers on two nodes claim and ack 600 devices while the primary is killed.
    // Every device must be acknowledged at least once within the test's bound; a device
    // polled again (its ack or claim lost in the fail-over) must carry a larger token the
    // second time, so a writer checking tokens keeps the newer result.
    use std::collections::HashMap;
    use std::sync::Mutex;

    let mut cl = cluster();
    let sentinels: Vec<(String, u16)> = cl
        .sentinels
        .iter()
        .map(|s| ("127.0.0.1".to_string(), s.port))
        .collect();
    let mut rc = RedisConfig::sentinel(sentinels, SERVICE);
    rc.command_timeout = Duration::from_millis(1_000);
    rc.reconnect_delay = Duration::from_millis(100);
    let nodes = [
        Coord::connect(&CoordConfig::Redis(rc.clone()))
            .await
            .unwrap(),
        Coord::connect(&CoordConfig::Redis(rc)).await.unwrap(),
    ];
    const DEVICES: i64 = 600;
    let now = Utc::now();
    for d in 0..DEVICES {
        assert!(nodes[0].enqueue(0, d, now, Work::Poll).await.unwrap());
    }
    wait_until("replication of the queue", Duration::from_secs(5), || {
        replicas_caught_up(&cl)
    });

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // (device, token, acked at) for every ack that returned true.
    let acked: Arc<Mutex<Vec<(i64, u64, Instant)>>> = Arc::default();
    let stale = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ack_errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = nodes[w % 2].clone();
        let (stop, acked, stale, errors) =
            (stop.clone(), acked.clone(), stale.clone(), errors.clone());
        let ack_errors = ack_errors.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("w{w}");
            while !stop.load(Ordering::SeqCst) {
                match c.claim(&[0], &me, Duration::from_secs(2)).await {
                    Ok(Some(claim)) => {
                        tokio::time::sleep(Duration::from_millis(20)).await; // the "poll"
                        match c.ack(&claim).await {
                            Ok(true) => acked.lock().unwrap().push((
                                claim.device_id,
                                claim.token,
                                Instant::now(),
                            )),
                            Ok(false) => _ = stale.fetch_add(1, Ordering::SeqCst),
                            // The poll happened but its ack did not arrive: the claim
                            // expires and the device is polled again.
                            Err(_) => _ = ack_errors.fetch_add(1, Ordering::SeqCst),
                        }
                    }
                    Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    // The master's periodic re-queue of expired claims.
    let master = {
        let (c, stop) = (nodes[0].clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let _ = c.requeue_expired().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(700)).await;
    let before_kill = acked.lock().unwrap().len();
    cl.primary.kill();
    let t = Instant::now();
    let all_done = loop {
        let done: std::collections::HashSet<i64> =
            acked.lock().unwrap().iter().map(|a| a.0).collect();
        if done.len() as i64 == DEVICES {
            break t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(25),
            "only {} of {DEVICES} devices done 25 s after the kill",
            done.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    master.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    let mut by_device: HashMap<i64, Vec<(Instant, u64)>> = HashMap::new();
    for (d, tok, at) in &acked {
        by_device.entry(*d).or_default().push((*at, *tok));
    }
    let mut repolled = 0;
    for (d, mut v) in by_device {
        v.sort();
        repolled += v.len() - 1;
        for w in v.windows(2) {
            assert!(
                w[1].1 > w[0].1,
                "device {d}: a later ack carries an older token {v:?}"
            );
        }
    }
    eprintln!(
        "under load: {before_kill} acked before kill -9; all {DEVICES} done {all_done:?} after it; \
         {repolled} devices acked twice (tokens increasing), {} acks failed in the outage (those \
         devices were polled again after their claim expired), {} stale acks refused, {} claim \
         calls failed during the outage",
        ack_errors.load(Ordering::SeqCst),
        stale.load(Ordering::SeqCst),
        errors.load(Ordering::SeqCst)
    );
    assert!(
        before_kill > 0 && before_kill < DEVICES as usize,
        "kill must fall mid-run"
    );
}
