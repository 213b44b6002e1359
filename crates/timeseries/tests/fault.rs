//! Fault tests against a real rrdcached: it is killed with SIGKILL (its buffered journal loses
//! its tail) and restarted while 1,000 files get updates, or it is not there at all when
//! updates start. Afterwards every update written must be in the files, read back with
//! `/usr/bin/rrdtool`, each exactly once (one row per timestamp holding that update's value).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{aligned_past, value_at, Rrdcached, RrdtoolPipe};
use lookout_timeseries::{
    Cf, DataSource, DsKind, Rra, RrdDef, TimeSeries, TimeSeriesConfig, TimeSeriesOptions, Value,
};

const STEP: i64 = 10;

fn gauge_def() -> RrdDef {
    RrdDef {
        step_secs: STEP as u64,
        sources: vec![DataSource {
            name: "v".into(),
            kind: DsKind::Gauge,
            heartbeat_secs: 2 * STEP as u64,
            min: None,
            max: None,
        }],
        archives: vec![Rra {
            cf: Cf::Average,
            steps: 1,
            rows: 500,
        }],
    }
}

/// Spill journal files under `dir` (the backend keeps one subdirectory per rrdcached).
fn spill_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(spill_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn path(f: usize) -> String {
    format!("dev{f}/port-id{f}.rrd")
}

fn value(f: usize, k: usize) -> f64 {
    (f * 1000 + k) as f64
}

/// One round: every file gets its update for time step `k`, concurrently.
async fn round(ts: &TimeSeries, files: usize, t0: i64, k: usize) {
    let def = Arc::new(gauge_def());
    let mut set = tokio::task::JoinSet::new();
    for f in 0..files {
        let ts = ts.clone();
        let def = def.clone();
        set.spawn(async move {
            ts.update(
                &path(f),
                &def,
                t0 + STEP * k as i64,
                &[Value::Gauge(value(f, k))],
            )
            .await
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
}

/// Every (file, k) for k in `first_k..rounds` is in its file, with its own value.
fn verify(base: &std::path::Path, files: usize, t0: i64, first_k: usize, rounds: usize) {
    let mut rrdtool = RrdtoolPipe::new(base);
    let mut missing = Vec::new();
    let mut first_rows = None;
    for f in 0..files {
        // fetch prints rows from start + step on.
        let rows = rrdtool.fetch(
            &path(f),
            "AVERAGE",
            t0 - STEP,
            t0 + STEP * (rounds as i64 - 1),
        );
        for k in first_k..rounds {
            let got = value_at(&rows, t0 + STEP * k as i64, 0);
            if got != Some(value(f, k)) {
                missing.push((f, k, got));
            }
        }
        if !missing.is_empty() && first_rows.is_none() {
            first_rows = Some((f, rows));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} updates missing or wrong, first: {:?}\nt0 {t0}, rows of the first such file: {:?}",
        missing.len(),
        files * (rounds - first_k),
        &missing[..missing.len().min(10)],
        first_rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_restart_while_1000_files_update() {
    // Default flush_after (60 s): nothing is FLUSHed before the kill, all is replayed.
    kill9_scenario(TimeSeriesOptions::default().flush_after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_restart_with_frequent_flushes() {
    // FLUSHes run while updates flow and across the kill: only what was not confirmed
    // flushed is replayed.
    kill9_scenario(Duration::from_millis(100)).await;
}

async fn kill9_scenario(flush_after: Duration) {
    const FILES: usize = 1000;
    const ROUNDS: usize = 24;
    let mut d = Rrdcached::start_tcp();
    let spill = tempfile::tempdir().unwrap();
    let opts = TimeSeriesOptions {
        // Small, so that the outage also spills to the disk journal.
        queue_memory_limit: 2_000,
        spill_dir: Some(spill.path().to_path_buf()),
        flush_after,
        ..TimeSeriesOptions::default()
    };
    let ts = TimeSeries::open_with(
        &TimeSeriesConfig::Rrdcached {
            address: d.address(),
        },
        opts,
    )
    .await
    .unwrap();
    let t0 = aligned_past(STEP, 3000);
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (ts, done) = (ts.clone(), done.clone());
        tokio::spawn(async move {
            for k in 0..ROUNDS {
                round(&ts, FILES, t0, k).await;
                done.store(k + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let wait_round = |n: usize| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while done.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "writer stuck before round {n}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_round(8).await;
    d.kill9();
    let at_kill = ts.stats();
    wait_round(16).await;
    d.spawn();
    writer.await.unwrap();
    ts.flush(Duration::from_secs(120)).await.unwrap();
    let st = ts.stats();
    eprintln!("at kill: {at_kill:?}\nafter: {st:?}");
    assert_eq!(st.dropped, 0, "{st:?}");
    assert_eq!(st.rejected, 0, "{st:?}");
    assert!(st.queued >= 2_000, "the outage queued updates: {st:?}");
    assert!(
        st.replayed + st.already_written > 0 || at_kill.unflushed == 0,
        "unflushed updates were replayed: {st:?}"
    );
    assert_eq!((st.pending, st.unflushed), (0, 0), "{st:?}");
    // Each update accepted at least once; `replayed` counts the ones rrdcached had lost
    // with its journal's tail (or that were in flight at the kill), sent again. One that was
    // in flight at the kill but reached the journal is accepted only by the restarted
    // rrdcached's journal replay: its resend counts as `already_written` (the files, checked
    // below, are the proof that nothing is lost).
    let total = (FILES * ROUNDS) as u64;
    assert!(
        st.written <= total && st.written + st.replayed + st.already_written >= total,
        "{st:?}"
    );
    verify(&d.base(), FILES, t0, 0, ROUNDS);
    // Nothing left behind in the spill directory.
    assert_eq!(spill_files(spill.path()).len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_down_at_start_queue_spills_then_replays() {
    const FILES: usize = 300;
    const ROUNDS: usize = 4;
    let mut d = Rrdcached::not_started();
    let spill = tempfile::tempdir().unwrap();
    let opts = TimeSeriesOptions {
        queue_memory_limit: 100,
        spill_dir: Some(spill.path().to_path_buf()),
        ..TimeSeriesOptions::default()
    };
    let ts = TimeSeries::open_with(
        &TimeSeriesConfig::Rrdcached {
            address: d.address(),
        },
        opts,
    )
    .await
    .unwrap();
    let t0 = aligned_past(STEP, 3000);
    let started = Instant::now();
    for k in 0..ROUNDS {
        round(&ts, FILES, t0, k).await;
    }
    // Callers are not held up by the outage.
    assert!(started.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let st = ts.stats();
    assert_eq!(st.queued, (FILES * ROUNDS) as u64, "{st:?}");
    assert_eq!(st.pending, (FILES * ROUNDS) as u64, "{st:?}");
    assert!(
        !spill_files(spill.path()).is_empty(),
        "beyond 100 queued updates spill to disk"
    );
    assert!(
        ts.flush(Duration::from_millis(300)).await.is_err(),
        "flush cannot succeed while down"
    );
    // A timestamp in the past, queued during the outage: refused on replay, alone.
    ts.update(&path(7), &gauge_def(), t0 + STEP, &[Value::Gauge(-1.0)])
        .await
        .unwrap();
    d.spawn();
    ts.flush(Duration::from_secs(60)).await.unwrap();
    let st = ts.stats();
    assert_eq!(st.written, (FILES * ROUNDS) as u64, "{st:?}");
    assert_eq!(
        (st.dropped, st.rejected, st.pending, st.unflushed),
        (0, 1, 0, 0),
        "{st:?}"
    );
    verify(&d.base(), FILES, t0, 0, ROUNDS);
    assert_eq!(spill_files(spill.path()).len(), 0);
}

/// Updates spilled to disk during an outage survive the writer process: a handle that ends
/// (as a crashed poller would) leaves its spill segments; the next process adopts and replays
/// them once rrdcached is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spilled_updates_survive_the_writer_process() {
    const FILES: usize = 100;
    const ROUNDS: usize = 3;
    const IN_MEMORY: usize = 50;
    let mut d = Rrdcached::not_started();
    let spill = tempfile::tempdir().unwrap();
    let opts = TimeSeriesOptions {
        queue_memory_limit: IN_MEMORY,
        spill_dir: Some(spill.path().to_path_buf()),
        shutdown_grace: Duration::from_millis(200),
        ..TimeSeriesOptions::default()
    };
    let cfg = TimeSeriesConfig::Rrdcached {
        address: d.address(),
    };
    let t0 = aligned_past(STEP, 3000);
    let a = TimeSeries::open_with(&cfg, opts.clone()).await.unwrap();
    for k in 0..ROUNDS {
        round(&a, FILES, t0, k).await;
    }
    drop(a);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Make the segments look like those of a process that died: a pid that ran and exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let me = format!("spill-{}-", std::process::id());
    let mut renamed = 0;
    for file in spill_files(spill.path()) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if let Some(rest) = name.strip_prefix(&me) {
            std::fs::rename(&file, file.with_file_name(format!("spill-{dead}-{rest}"))).unwrap();
            renamed += 1;
        }
    }
    assert!(renamed > 0, "the ended handle left spill segments");

    d.spawn();
    let b = TimeSeries::open_with(&cfg, opts).await.unwrap();
    b.flush(Duration::from_secs(60)).await.unwrap();
    let st = b.stats();
    let spilled = (FILES * ROUNDS - IN_MEMORY) as u64;
    assert_eq!((st.queued, st.written), (spilled, spilled), "{st:?}");
    assert_eq!((st.dropped, st.rejected), (0, 0), "{st:?}");
    assert_eq!(spill_files(spill.path()).len(), 0);

    // The 50 updates held in memory (round 0's first) died with the first handle; every
    // spilled one is in the files. (With a 10 s step a new file's first row is known: it is
    // created 10 s before its first update.)
    verify(&d.base(), FILES, t0, 1, ROUNDS);
    let mut rrdtool = RrdtoolPipe::new(&d.base());
    let mut first_known = 0;
    for f in 0..FILES {
        let rows = rrdtool.fetch(&path(f), "AVERAGE", t0 - STEP, t0 + 2 * STEP);
        if let Some(v) = value_at(&rows, t0, 0) {
            assert_eq!(v, value(f, 0));
            first_known += 1;
        }
    }
    assert_eq!(first_known, FILES - IN_MEMORY);
}
