//! Measurement, not run by default (`cargo test -p lookout-store --test throughput --
//! --ignored --nocapture`): how long `sync_ports` takes for a poll cycle of many devices
//! with 24 ports each, on SQLite and on the local MariaDB, with 8 concurrent writers (as a
//! poller would), and the same through `commit_poll` (a whole poll: fenced device row,
//! ports, two IPv4 addresses, a processor, a storage row, the poll log and timing of two
//! modules in one transaction). Asserts that every port got its rate. Statements are
//! counted from sqlx's per-statement `sqlx::query` events (MySQL: BEGIN and COMMIT too), in
//! separate rounds, so the counting does not slow the timed ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use common::Fixture;
use lookout_core::PortPoll;
use tracing_subscriber::layer::SubscriberExt as _;

const DEVICES: usize = 100;
const PORTS: i64 = 24;

static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Counts sqlx's statement events while `COUNTING` is set.
struct StatementCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.target() == "sqlx::query" {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        meta.target() == "sqlx::query" && COUNTING.load(Ordering::Relaxed)
    }

    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        if std::env::var_os("LOOKOUT_STMT_LOG").is_some() {
            // Which statements: `LOOKOUT_STMT_LOG=1` prints each one's summary.
            struct Summary;
            impl tracing::field::Visit for Summary {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "summary" {
                        eprintln!("stmt: {v:?}");
                    }
                }
            }
            e.record(&mut Summary);
        }
    }
}

fn install_counter() {
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(StatementCounter),
    );
}

async fn cycle(fx: &Fixture, label: &str, commit: bool) {
    let store = fx.store().await;
    let ids = common::add_devices(&store, "dev", DEVICES, commit.then_some(7)).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    // Round 0: first polls (ports inserted), counted; 1 and 2: timed; 3: counted.
    for round in 0..4u64 {
        let counted = round == 0 || round == 3;
        COUNTING.store(counted, Ordering::Relaxed);
        let before = STATEMENTS.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for chunk in ids.chunks(DEVICES / 8) {
            let store = store.clone();
            let chunk = chunk.to_vec();
            tasks.push(tokio::spawn(async move {
                for id in chunk {
                    let polled = common::port_polls(PORTS, round * 300_000, Some(round * 600_000));
                    let at = t0 + Duration::seconds(round as i64 * 300);
                    if commit {
                        store
                            .commit_poll(id, &whole_poll(polled, at))
                            .await
                            .unwrap();
                    } else {
                        store.sync_ports(id, &polled, at).await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = started.elapsed();
        COUNTING.store(false, Ordering::Relaxed);
        if counted {
            let n = STATEMENTS.load(Ordering::Relaxed) - before;
            eprintln!(
                "{label}: round {round} ({}): {:.1} statements/device",
                if round == 0 { "first poll" } else { "steady" },
                n as f64 / DEVICES as f64
            );
        } else {
            eprintln!(
                "{label}: round {round}: {DEVICES} devices x {PORTS} ports in {el:?} ({:.1} ms/device)",
                el.as_secs_f64() * 1000.0 / DEVICES as f64
            );
        }
    }
    for id in ids {
        let ports = store.ports(id).await.unwrap();
        assert_eq!(ports.len(), PORTS as usize);
        assert!(ports.iter().all(|p| p.in_octets_rate == Some(1000.0)));
    }
    store.close().await;
}

/// A poll as the poller commits it (fenced with token 7), with the timing of two modules.
fn whole_poll(polled: Vec<PortPoll>, at: chrono::DateTime<Utc>) -> lookout_store::PollCommit {
    let mut c = common::whole_poll(at, 7, polled, 2);
    c.module_perf = ["ports", "processors"]
        .into_iter()
        .map(|m| lookout_store::ModulePerf {
            module: m.into(),
            seconds: 0.1,
            status: "ok".into(),
            message: None,
            polled_at: at,
        })
        .collect();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn sync_ports_throughput() {
    install_counter();
    cycle(&Fixture::sqlite(), "sqlite", false).await;
    if let Some(my) = Fixture::mysql() {
        cycle(&my, "mariadb", false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn commit_poll_throughput() {
    install_counter();
    cycle(&Fixture::sqlite(), "sqlite commit_poll", true).await;
    if let Some(my) = Fixture::mysql() {
        cycle(&my, "mariadb commit_poll", true).await;
    }
}
