//! One contract suite, run against the memory backend and against a real redis-server
//! (one per test, on a port of its own): membership and death by TTL, the master race
//! (exactly one winner), lease renewal/expiry/fencing, claim/ack/expiry/requeue,
//! idempotent enqueue, and many workers claiming at once (no device handed out twice).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/servers.rs"]
mod servers;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use lookout_coord::{Coord, CoordConfig, CoordError, NodeInfo, QueueDepth, RedisConfig, Work};
use servers::{Lab, Proc};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn node(id: &str, groups: Vec<i32>) -> NodeInfo {
    NodeInfo {
        node_id: id.into(),
        hostname: format!("{id}.example"),
        version: "0.1.0".into(),
        roles: vec!["poller".into(), "dispatcher".into()],
        groups,
        workers: 4,
        started_at: Some(Utc::now()),
        stats: [("poll_done".to_string(), 12.0)].into(),
    }
}

// ---------------------------------------------------------------- the contract

async fn membership(c: Coord) {
    assert!(c.nodes().await.unwrap().is_empty());
    let a = node("a", vec![0, 2]);
    c.heartbeat(&a, MS(800)).await.unwrap();
    c.heartbeat(&node("b", vec![1]), MS(5_000)).await.unwrap();
    let ns = c.nodes().await.unwrap();
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[0].info, a, "node info round-trips");
    assert!(ns[0].alive && ns[1].alive);
    let first_checkin = ns[0].last_checkin;
    assert!((Utc::now() - first_checkin).num_seconds().abs() < 5);

    tokio::time::sleep(MS(1_100)).await;
    let ns = c.nodes().await.unwrap();
    assert!(!ns[0].alive, "a's 800 ms TTL passed: dead within a second");
    assert!(ns[1].alive);
    assert_eq!(
        ns[0].last_checkin, first_checkin,
        "a dead node keeps its last check-in"
    );

    c.heartbeat(&a, MS(800)).await.unwrap();
    let ns = c.nodes().await.unwrap();
    assert!(ns[0].alive && ns[0].last_checkin > first_checkin);

    assert!(c.forget_node("a").await.unwrap());
    assert!(!c.forget_node("a").await.unwrap());
    assert_eq!(c.nodes().await.unwrap().len(), 1);
}

async fn master_race(a: Coord, b: Coord) {
    assert_eq!(a.current_master().await.unwrap(), None);
    // Eight contenders on two handles start together; exactly one may win.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            c.try_acquire_master(&format!("n{i}"), Duration::from_secs(5))
                .await
                .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(l) = t.await.unwrap() {
            winners.push(l);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one master: {winners:?}");
    let w = winners.pop().unwrap();
    assert!(w.is_valid_locally());
    let cur = b.current_master().await.unwrap().unwrap();
    assert_eq!(
        (cur.node_id.as_str(), cur.token),
        (w.node_id.as_str(), w.token)
    );

    // Renewal keeps the token; a forged lease of another node is refused as lost.
    let r = a.renew_master(&w).await.unwrap();
    assert_eq!(r.token, w.token);
    assert!(r.expires >= w.expires);
    let forged = lookout_coord::Lease {
        node_id: "intruder".into(),
        ..w.clone()
    };
    let e = b.renew_master(&forged).await.unwrap_err();
    assert!(e.is_lost(), "{e}");
    assert!(!b.release_master(&forged).await.unwrap());

    // Release hands it over; the next token is larger.
    assert!(a.release_master(&w).await.unwrap());
    assert_eq!(a.current_master().await.unwrap(), None);
    let x = b.try_acquire_master("x", MS(500)).await.unwrap().unwrap();
    assert!(x.token > w.token);
    assert!(a.try_acquire_master("y", MS(300)).await.unwrap().is_none());

    // Expiry: x stops renewing, y takes over, x's renewal is refused with the new holder.
    tokio::time::sleep(MS(700)).await;
    assert_eq!(
        a.current_master().await.unwrap(),
        None,
        "expired lease is nobody's"
    );
    let y = a
        .try_acquire_master("y", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(y.token > x.token);
    match b.renew_master(&x).await {
        Err(CoordError::MasterLost { reason, .. }) => assert!(reason.contains('y'), "{reason}"),
        other => panic!("expected MasterLost, got {other:?}"),
    }
    // The same node id re-acquiring (a restart) fences off its old incarnation.
    let y2 = b
        .try_acquire_master("y", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(y2.token > y.token);
    assert!(a.renew_master(&y).await.unwrap_err().is_lost());
    assert_eq!(a.renew_master(&y2).await.unwrap().token, y2.token);
}

async fn claim_ack_expiry_requeue(a: Coord, b: Coord) {
    let now = Utc::now();
    assert!(a.enqueue(0, 1, now, Work::Poll).await.unwrap());
    assert!(a
        .enqueue(1, 2, now - chrono::Duration::seconds(10), Work::Poll)
        .await
        .unwrap());
    assert!(a.enqueue(2, 3, now, Work::Poll).await.unwrap());
    assert!(a
        .enqueue(0, 4, now + chrono::Duration::seconds(60), Work::Poll)
        .await
        .unwrap());

    // Most overdue first, only from served groups, nothing before it is due.
    let c2 = a.claim(&[0, 1], "na", MS(500)).await.unwrap().unwrap();
    assert_eq!((c2.device_id, c2.group), (2, 1));
    // The claim carries when the device was due (to the millisecond), for lag figures.
    let due2 = (now - chrono::Duration::seconds(10)).timestamp_millis();
    assert_eq!(c2.due_at.map(|t| t.timestamp_millis()), Some(due2));
    let c1 = b
        .claim(&[0, 1], "nb", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c1.device_id, c1.group), (1, 0));
    assert!(c1.token > c2.token);
    assert_eq!(
        a.claim(&[0, 1], "na", MS(300)).await.unwrap(),
        None,
        "device 4 is not due, 3 is in group 2"
    );
    assert_eq!(a.claim(&[], "na", MS(300)).await.unwrap(), None);

    // Renewal while the poll runs; ack by the holder once; a second ack is stale.
    let c1r = b.renew_claim(&c1).await.unwrap();
    assert_eq!(c1r.token, c1.token);
    assert!(b.ack(&c1r).await.unwrap());
    assert!(!b.ack(&c1r).await.unwrap());
    let forged = lookout_coord::Claim {
        node_id: "nb".into(),
        ..c2.clone()
    };
    assert!(
        !a.ack(&forged).await.unwrap(),
        "another node cannot ack na's claim"
    );

    // c2 runs out: its renewal and ack fail, the master re-queues it, another node
    // claims it with a larger token, and the old holder still cannot ack.
    tokio::time::sleep(MS(700)).await;
    assert!(a.renew_claim(&c2).await.unwrap_err().is_lost());
    assert!(
        !a.ack(&c2).await.unwrap(),
        "expired claim: result discarded"
    );
    assert_eq!(
        a.queue_depths()
            .await
            .unwrap()
            .iter()
            .find(|d| d.group == 1)
            .map(|d| d.claimed),
        Some(1),
        "an expired claim stays claimed until re-queued"
    );
    assert_eq!(b.requeue_expired().await.unwrap(), vec![2]);
    assert_eq!(b.requeue_expired().await.unwrap(), Vec::<i64>::new());
    let c2b = b.claim(&[1], "nb", MS(5_000)).await.unwrap().unwrap();
    assert_eq!(c2b.device_id, 2);
    assert!(c2b.token > c2.token);
    assert!(!a.ack(&c2).await.unwrap());
    assert!(a.renew_claim(&c2).await.unwrap_err().is_lost());
    assert!(b.ack(&c2b).await.unwrap());

    let d = a.queue_depths().await.unwrap();
    let ms = |t: chrono::DateTime<Utc>| Some(t.timestamp_millis());
    assert_eq!(
        d.iter()
            .map(|q| (q.oldest_due.and_then(ms), q.late))
            .collect::<Vec<_>>(),
        vec![
            (ms(now + chrono::Duration::seconds(60)), 0),
            (None, 0),
            (ms(now), 0)
        ],
        "the head of each queue is its oldest due; no late count from queue_depths"
    );
    assert_eq!(
        d.into_iter()
            .map(|q| QueueDepth {
                oldest_due: None,
                ..q
            })
            .collect::<Vec<_>>(),
        vec![
            QueueDepth {
                group: 0,
                queued: 1,
                due: 0,
                claimed: 0,
                done: 1,
                ..QueueDepth::default()
            },
            QueueDepth {
                group: 1,
                queued: 0,
                due: 0,
                claimed: 0,
                done: 1,
                ..QueueDepth::default()
            },
            QueueDepth {
                group: 2,
                queued: 1,
                due: 1,
                claimed: 0,
                done: 0,
                ..QueueDepth::default()
            },
        ]
    );
}

/// The work kind travels from enqueue to the claim, across renewal and an expired
/// claim's re-queue; a device is in one place whatever its work; `queue_lag` counts the
/// queued devices due at least that long ago.
async fn work_kinds_and_queue_lag(a: Coord, b: Coord) {
    let now = Utc::now();
    let lease = a
        .try_acquire_master("m", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let ago = |s: i64| now - chrono::Duration::seconds(s);
    assert!(a
        .enqueue_as_master(&lease, 0, 1, ago(120), Work::Discover)
        .await
        .unwrap());
    assert!(a.enqueue(0, 2, ago(30), Work::Poll).await.unwrap());
    assert!(a.enqueue(0, 3, ago(100), Work::Poll).await.unwrap());
    assert!(
        !a.enqueue(0, 1, now, Work::Poll).await.unwrap(),
        "queued for discovery: not queued again as a poll"
    );
    assert!(!a.enqueue(4, 2, now, Work::Discover).await.unwrap());
    let lag = b.queue_lag(Duration::from_secs(60)).await.unwrap();
    assert_eq!(lag.len(), 1);
    assert_eq!((lag[0].queued, lag[0].due, lag[0].late), (3, 3, 2));
    assert_eq!(
        lag[0].oldest_due.map(|t| t.timestamp_millis()),
        Some(ago(120).timestamp_millis())
    );
    assert_eq!(
        b.queue_lag(Duration::from_secs(600)).await.unwrap()[0].late,
        0
    );

    let c1 = b.claim(&[0], "w", MS(400)).await.unwrap().unwrap();
    assert_eq!((c1.device_id, c1.work), (1, Work::Discover));
    assert!(
        !a.enqueue(0, 1, now, Work::Discover).await.unwrap(),
        "claimed: not queued again"
    );
    let c3 = b.claim(&[0], "w", MS(5_000)).await.unwrap().unwrap();
    assert_eq!((c3.device_id, c3.work), (3, Work::Poll));
    assert_eq!(b.renew_claim(&c3).await.unwrap().work, Work::Poll);
    assert_eq!(b.renew_claim(&c1).await.unwrap().work, Work::Discover);
    assert!(b.ack(&c3).await.unwrap());
    // c1 runs out: re-queued, it is still a discovery.
    tokio::time::sleep(MS(700)).await;
    assert_eq!(a.requeue_expired().await.unwrap(), vec![1]);
    // Device 2 was due 30 s ago, the re-queued claim when it expired: 2 comes first.
    let c2 = a.claim(&[0], "w2", MS(5_000)).await.unwrap().unwrap();
    assert_eq!((c2.device_id, c2.work), (2, Work::Poll));
    assert!(a.ack(&c2).await.unwrap());
    let c1b = a.claim(&[0], "w2", MS(5_000)).await.unwrap().unwrap();
    assert_eq!((c1b.device_id, c1b.work), (1, Work::Discover));
    assert!(a.ack(&c1b).await.unwrap());
    // Acknowledged: the same device may now be queued as a poll, and claims as one.
    assert!(a.enqueue(0, 1, now, Work::Poll).await.unwrap());
    let c = b.claim(&[0], "w", MS(5_000)).await.unwrap().unwrap();
    assert_eq!((c.device_id, c.work), (1, Work::Poll));
    let d = b.queue_depths().await.unwrap();
    assert_eq!((d[0].queued, d[0].oldest_due, d[0].late), (0, None, 0));
}

async fn idempotent_enqueue(c: Coord) {
    let now = Utc::now();
    assert!(c.enqueue(5, 42, now, Work::Poll).await.unwrap());
    assert!(!c.enqueue(5, 42, now, Work::Poll).await.unwrap());
    assert!(
        !c.enqueue(6, 42, now, Work::Poll).await.unwrap(),
        "one device, one queue"
    );
    let d = c.queue_depths().await.unwrap();
    assert_eq!(
        d.iter().map(|d| (d.group, d.queued)).collect::<Vec<_>>(),
        vec![(5, 1)]
    );
    let cl = c.claim(&[5, 6], "n", MS(5_000)).await.unwrap().unwrap();
    assert!(
        !c.enqueue(5, 42, now, Work::Poll).await.unwrap(),
        "claimed: not queued twice"
    );
    assert!(c.ack(&cl).await.unwrap());
    assert!(
        c.enqueue(5, 42, now, Work::Poll).await.unwrap(),
        "after ack the next interval may queue it"
    );
}

async fn concurrent_claims(a: Coord, b: Coord) {
    let now = Utc::now();
    for d in 0..60 {
        assert!(a.enqueue((d % 3) as i32, d, now, Work::Poll).await.unwrap());
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let c = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(cl) = c
                .claim(&[0, 1, 2], &format!("w{w}"), MS(10_000))
                .await
                .unwrap()
            {
                assert!(c.ack(&cl).await.unwrap());
                got.push((cl.device_id, cl.token));
            }
            got
        }));
    }
    let mut devices = HashSet::new();
    let mut tokens = HashSet::new();
    for t in tasks {
        for (d, tok) in t.await.unwrap() {
            assert!(devices.insert(d), "device {d} handed out twice");
            assert!(tokens.insert(tok), "token {tok} handed out twice");
        }
    }
    assert_eq!(devices.len(), 60);
    let done: u64 = b.queue_depths().await.unwrap().iter().map(|d| d.done).sum();
    assert_eq!(done, 60);
}

async fn master_fenced_scheduling(a: Coord, b: Coord) {
    let now = Utc::now();
    let old = a.try_acquire_master("old", MS(500)).await.unwrap().unwrap();
    assert!(a
        .enqueue_as_master(&old, 0, 1, now, Work::Poll)
        .await
        .unwrap());
    assert!(!a
        .enqueue_as_master(&old, 0, 1, now, Work::Poll)
        .await
        .unwrap());
    assert!(a.requeue_expired_as_master(&old).await.unwrap().is_empty());
    // "old" pauses past its lease: even before anyone takes over, it cannot schedule.
    tokio::time::sleep(MS(700)).await;
    assert!(a
        .enqueue_as_master(&old, 0, 2, now, Work::Poll)
        .await
        .unwrap_err()
        .is_lost());
    let new = b
        .try_acquire_master("new", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    match a.enqueue_as_master(&old, 0, 2, now, Work::Poll).await {
        Err(CoordError::MasterLost { node_id, token, .. }) => {
            assert_eq!((node_id.as_str(), token), ("old", old.token))
        }
        other => panic!("expected MasterLost, got {other:?}"),
    }
    assert!(a
        .requeue_expired_as_master(&old)
        .await
        .unwrap_err()
        .is_lost());
    assert!(b
        .enqueue_as_master(&new, 0, 2, now, Work::Poll)
        .await
        .unwrap());
    assert!(b.requeue_expired_as_master(&new).await.unwrap().is_empty());
    let d = b.queue_depths().await.unwrap();
    assert_eq!(
        d.iter().map(|d| (d.group, d.queued)).collect::<Vec<_>>(),
        vec![(0, 2)]
    );
}

// ---------------------------------------------------------------- backends

async fn redis_pair(lab: &Lab) -> (Proc, Coord, Coord) {
    let srv = lab.redis(None);
    let cfg = CoordConfig::Redis(RedisConfig::direct("127.0.0.1", srv.port));
    let a = Coord::connect(&cfg).await.unwrap();
    let b = Coord::connect(&cfg).await.unwrap();
    assert_eq!(a.backend_name(), "redis");
    (srv, a, b)
}

/// Web sessions: one instance stores, another reads and ends them; per-user ending; expiry.
async fn sessions(a: Coord, b: Coord) {
    let day = Duration::from_secs(86_400);
    a.session_put("k1", 7, r#"{"n":1}"#, day, day)
        .await
        .unwrap();
    a.session_put("k2", 7, r#"{"n":2}"#, day, day)
        .await
        .unwrap();
    a.session_put("k3", 8, r#"{"n":3}"#, day, day)
        .await
        .unwrap();
    a.session_put("short", 8, "x", MS(300), day).await.unwrap();
    assert_eq!(
        b.session_get("k1").await.unwrap().as_deref(),
        Some(r#"{"n":1}"#)
    );
    assert_eq!(b.session_get("nope").await.unwrap(), None);
    let mut listed = b.session_list(7).await.unwrap();
    listed.sort();
    assert_eq!(listed, vec![r#"{"n":1}"#, r#"{"n":2}"#]);

    assert!(b.session_remove("k1", 7).await.unwrap());
    assert!(!a.session_remove("k1", 7).await.unwrap());
    assert_eq!(a.session_get("k1").await.unwrap(), None);
    // Rewriting a record (a touch) keeps it one session.
    a.session_put("k2", 7, r#"{"n":22}"#, day, day)
        .await
        .unwrap();
    assert_eq!(b.session_list(7).await.unwrap(), vec![r#"{"n":22}"#]);
    assert_eq!(b.session_remove_user(7).await.unwrap(), 1);
    assert_eq!(a.session_get("k2").await.unwrap(), None);
    assert!(a.session_list(7).await.unwrap().is_empty());
    // The other user's sessions stay; the short one expires by its TTL.
    assert!(a.session_get("k3").await.unwrap().is_some());
    tokio::time::sleep(MS(500)).await;
    assert_eq!(b.session_get("short").await.unwrap(), None);
    assert_eq!(b.session_list(8).await.unwrap(), vec![r#"{"n":3}"#]);
}

fn memory_pair() -> (Coord, Coord) {
    let a = Coord::memory();
    (a.clone(), a)
}

macro_rules! contract {
    ($name:ident, one, $f:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                $f(Coord::default()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let lab = Lab::new();
                let (_srv, a, _b) = redis_pair(&lab).await;
                $f(a).await;
            }
        }
    };
    ($name:ident, two, $f:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let (a, b) = memory_pair();
                $f(a, b).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let lab = Lab::new();
                let (_srv, a, b) = redis_pair(&lab).await;
                $f(a, b).await;
            }
        }
    };
}

contract!(membership_and_death, one, membership);
contract!(master_election, two, master_race);
contract!(claims, two, claim_ack_expiry_requeue);
contract!(enqueue_is_idempotent, one, idempotent_enqueue);
contract!(work_kinds_queue_lag, two, work_kinds_and_queue_lag);
contract!(many_workers, two, concurrent_claims);
contract!(web_sessions, two, sessions);
contract!(
    scheduling_is_fenced_by_the_master_lease,
    two,
    master_fenced_scheduling
);

#[tokio::test]
async fn memory_is_the_default_config() {
    let c = Coord::connect(&CoordConfig::default()).await.unwrap();
    assert_eq!(c.backend_name(), "memory");
}

#[tokio::test]
async fn unreachable_redis_fails_fast() {
    let port = servers::free_port();
    let t = std::time::Instant::now();
    let e = Coord::connect(&CoordConfig::Redis(RedisConfig::direct("127.0.0.1", port)))
        .await
        .unwrap_err();
    assert!(matches!(e, CoordError::Connect(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_an_error_then_recovers() {
    // Kill the server under a connected Coord: calls fail with a typed error (bounded by
    // the command timeout) instead of hanging; a new server on the same port is
    // picked up by the reconnect loop.
    let lab = Lab::new();
    let mut srv = lab.redis(None);
    let port = srv.port;
    let mut rc = RedisConfig::direct("127.0.0.1", port);
    rc.command_timeout = MS(500);
    let c = Coord::connect(&CoordConfig::Redis(rc)).await.unwrap();
    c.heartbeat(&node("a", vec![0]), MS(10_000)).await.unwrap();
    srv.kill();
    let t = std::time::Instant::now();
    let e = c.nodes().await.unwrap_err();
    assert!(matches!(e, CoordError::Nodes(_)), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // A fresh (empty) server on the same port.
    let _again = lab.redis_on(port, None);
    let t = std::time::Instant::now();
    loop {
        if c.heartbeat(&node("a", vec![0]), MS(10_000)).await.is_ok() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(MS(100)).await;
    }
    assert_eq!(c.nodes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn renew_at_is_a_third_into_the_lease() {
    let c = Coord::memory();
    let l = c
        .try_acquire_master("n", Duration::from_secs(9))
        .await
        .unwrap()
        .unwrap();
    let third = l.valid_until - l.renew_at();
    assert!(third >= Duration::from_secs(6) && third <= Duration::from_secs(6) + MS(1));
    c.enqueue(0, 1, Utc::now(), Work::Poll).await.unwrap();
    let cl = c
        .claim(&[0], "n", Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cl.valid_until - cl.renew_at(), Duration::from_secs(2));
    assert!(cl.is_valid_locally());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_password_and_database() {
    let lab = Lab::new();
    let srv = lab.redis_with_password("s3cret");
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", srv.port);
    let c = Coord::connect(&CoordConfig::Redis(RedisConfig::from_url(&url).unwrap()))
        .await
        .unwrap();
    assert!(c.enqueue(0, 1, Utc::now(), Work::Poll).await.unwrap());
    let auth = ["-a", "s3cret", "--no-auth-warning"];
    let zcard = |db: &str| {
        let mut args = auth.to_vec();
        args.extend(["-n", db, "ZCARD", "lookout:q:0"]);
        servers::cli(srv.port, &args)
    };
    assert_eq!(zcard("3"), "1", "written to database 3");
    assert_eq!(zcard("0"), "0");
    let e = Coord::connect(&CoordConfig::Redis(RedisConfig::direct(
        "127.0.0.1",
        srv.port,
    )))
    .await
    .unwrap_err();
    assert!(matches!(e, CoordError::Connect(_)), "{e}");
    let mut wrong = RedisConfig::direct("127.0.0.1", srv.port);
    wrong.password = Some("nope".into());
    assert!(Coord::connect(&CoordConfig::Redis(wrong)).await.is_err());
}
