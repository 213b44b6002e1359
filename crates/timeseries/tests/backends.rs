//! The same scenarios against both backends (local `rrdtool -` files, and a real rrdcached
//! over TCP and over a unix socket); every file is read back with `/usr/bin/rrdtool`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{aligned_past, rrdtool_fetch, rrdtool_info, value_at, Rrdcached};
use lookout_timeseries::{
    defs, Cf, TimeSeries, TimeSeriesConfig, TimeSeriesError, TimeSeriesOptions, Value,
};

const STEP: u64 = 60;

fn port_values(in_octets: u64, out_octets: u64) -> Vec<Value> {
    let mut v = vec![Value::Unknown; 15];
    v[0] = Value::Counter(in_octets);
    v[1] = Value::Counter(out_octets);
    v
}

/// DERIVE rates from known counter steps, with counters above 2^53 (exact integers or bust).
async fn derive_rates(ts: &TimeSeries, base: &Path) {
    let def = defs::port(STEP);
    // A multiple of 120 s, for the consolidation check below.
    let t0 = aligned_past(2 * STEP as i64, 7200);
    let big = 1u64 << 60;
    let steps = [(0u64, 0u64), (6_000, 60), (18_000, 120), (18_000, 180)];
    for (k, (inc, out)) in steps.iter().enumerate() {
        ts.update(
            "h1/port-id1.rrd",
            &def,
            t0 + 60 * k as i64,
            &port_values(big + inc, *out),
        )
        .await
        .unwrap();
    }
    ts.flush(Duration::from_secs(20)).await.unwrap();
    assert!(ts.exists("h1/port-id1.rrd").await.unwrap());
    assert!(!ts.exists("h1/port-id999.rrd").await.unwrap());

    let file = base.join("h1/port-id1.rrd");
    let info = rrdtool_info(&file);
    for name in defs::PORT_DS {
        assert!(
            info.contains(&format!("ds[{name}].type = \"DERIVE\"")),
            "{name} missing in {info}"
        );
    }
    assert!(info.contains("step = 60"));
    let rows = rrdtool_fetch(&file, "AVERAGE", t0, t0 + 180);
    // 2^60 + 6000 through f64 would be off by up to 128: the rate would not be 100.
    assert_eq!(value_at(&rows, t0 + 60, 0), Some(100.0), "{rows:?}");
    assert_eq!(value_at(&rows, t0 + 120, 0), Some(200.0));
    assert_eq!(value_at(&rows, t0 + 180, 0), Some(0.0));
    assert_eq!(value_at(&rows, t0 + 120, 1), Some(1.0));
    assert_eq!(value_at(&rows, t0 + 120, 2), None, "unknown stays unknown");

    // The crate's own fetch agrees with rrdtool.
    let s = ts
        .fetch("h1/port-id1.rrd", Cf::Average, t0, t0 + 180, 60)
        .await
        .unwrap();
    assert_eq!(s.step, 60);
    assert_eq!(s.ds_names[0], "INOCTETS");
    let at = |t: i64| s.rows[((t - s.start) / 60) as usize][0];
    assert_eq!(at(t0 + 60), Some(100.0));
    assert_eq!(at(t0 + 120), Some(200.0));
    // Coarser resolution: 2 rows of 60 s consolidated into one of 120 s.
    // An IPv6 literal as host directory, as LibreNMS names them.
    let up = defs::uptime(STEP);
    for k in 0..3i64 {
        ts.update(
            "2001:db8::1/uptime.rrd",
            &up,
            t0 + 60 * k,
            &[Value::Gauge(k as f64)],
        )
        .await
        .unwrap();
    }
    let s6 = ts
        .fetch("2001:db8::1/uptime.rrd", Cf::Average, t0, t0 + 120, 60)
        .await
        .unwrap();
    let row = ((t0 + 120 - s6.start) / 60) as usize;
    assert_eq!(s6.rows[row], vec![Some(2.0)], "{s6:?}");
    let c = ts
        .fetch("h1/port-id1.rrd", Cf::Average, t0, t0 + 240, 120)
        .await
        .unwrap();
    assert_eq!(c.step, 120);
    let row = ((t0 + 120 - c.start) / 120) as usize;
    assert_eq!(c.rows[row][0], Some(150.0), "{c:?}");
}

fn is_rrd_err(r: &Result<(), TimeSeriesError>, needle: &str) -> bool {
    matches!(r, Err(TimeSeriesError::Rrd { message, .. }) if message.contains(needle))
}

/// Bad input: each a clear error; a good update sent at the same time still lands.
async fn bad_input(ts: &TimeSeries, base: &Path) {
    let def = defs::icmp_perf(STEP);
    let t0 = aligned_past(STEP as i64, 3600);
    let good = |v: f64| {
        vec![
            Value::Gauge(v),
            Value::Gauge(3.0),
            Value::Gauge(3.0),
            Value::Gauge(v),
            Value::Gauge(v),
        ]
    };
    ts.update("h2/icmp-perf.rrd", &def, t0, &good(1.0))
        .await
        .unwrap();
    ts.update("h2/icmp-perf.rrd", &def, t0 + 60, &good(2.0))
        .await
        .unwrap();

    for bad in ["/etc/x.rrd", "../x.rrd", "h2/../../x.rrd", "h 2/x.rrd"] {
        let r = ts.update(bad, &def, t0 + 120, &good(1.0)).await;
        assert!(
            matches!(r, Err(TimeSeriesError::BadPath(_))),
            "{bad}: {r:?}"
        );
    }
    let uptime = defs::uptime(STEP);
    let (v9, v4) = (good(9.0), good(4.0));
    let (past, count, nan, other_def, ok_other, ok_same) = tokio::join!(
        // At or before the last update.
        ts.update("h2/icmp-perf.rrd", &def, t0 + 60, &v9),
        ts.update("h2/icmp-perf.rrd", &def, t0 + 180, &v9[..3]),
        ts.update(
            "h2/icmp-perf.rrd",
            &def,
            t0 + 180,
            &[Value::Gauge(f64::NAN); 5]
        ),
        // icmp-perf.rrd is not an uptime file.
        ts.update("h2/icmp-perf.rrd", &uptime, t0 + 180, &[Value::Gauge(5.0)]),
        ts.update("h2/uptime.rrd", &uptime, t0 + 120, &[Value::Gauge(77.0)]),
        ts.update("h2/icmp-perf.rrd", &def, t0 + 120, &v4),
    );
    assert!(is_rrd_err(&past, "illegal attempt to update"), "{past:?}");
    assert!(
        is_rrd_err(&count, "3 values for 5 data sources"),
        "{count:?}"
    );
    assert!(is_rrd_err(&nan, "not a finite number"), "{nan:?}");
    assert!(
        is_rrd_err(&other_def, "another definition"),
        "{other_def:?}"
    );
    ok_other.unwrap();
    ok_same.unwrap();
    // Integer DS, fractional value.
    let r = ts
        .update("h1/port-id7.rrd", &defs::port(STEP), t0, &{
            let mut v = vec![Value::Unknown; 15];
            v[0] = Value::Gauge(1.5);
            v
        })
        .await;
    assert!(is_rrd_err(&r, "not an integer"), "{r:?}");
    // The files keep taking good updates.
    ts.update("h2/icmp-perf.rrd", &def, t0 + 180, &good(6.0))
        .await
        .unwrap();
    ts.update("h2/uptime.rrd", &uptime, t0 + 180, &[Value::Gauge(78.0)])
        .await
        .unwrap();
    ts.flush(Duration::from_secs(20)).await.unwrap();

    let rows = rrdtool_fetch(&base.join("h2/icmp-perf.rrd"), "AVERAGE", t0, t0 + 180);
    assert_eq!(value_at(&rows, t0 + 60, 0), Some(2.0), "{rows:?}");
    assert_eq!(value_at(&rows, t0 + 120, 0), Some(4.0));
    assert_eq!(value_at(&rows, t0 + 180, 0), Some(6.0));
    assert_eq!(value_at(&rows, t0 + 180, 1), Some(3.0));
    // A new file's first row stays unknown (created 10 s before its first update, as
    // rrdtool's default start); the next one holds the value.
    let up = rrdtool_fetch(&base.join("h2/uptime.rrd"), "AVERAGE", t0, t0 + 180);
    assert_eq!(value_at(&up, t0 + 180, 0), Some(78.0), "{up:?}");
    assert!(ts.stats().rejected >= 5, "{:?}", ts.stats());
    assert_eq!(ts.stats().dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_derive_rates_read_back_by_rrdtool() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    ts.check().await.unwrap();
    derive_rates(&ts, dir.path()).await;
    assert_eq!(ts.stats().written, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_creates_missing_rrd_dir() {
    let dir = tempfile::tempdir().unwrap();
    let rrd_dir = dir.path().join("data/rrd");
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: rrd_dir.clone(),
    })
    .await
    .unwrap();
    let t0 = aligned_past(STEP as i64, 3600);
    ts.update(
        "h/uptime.rrd",
        &defs::uptime(STEP),
        t0,
        &[Value::Gauge(1.0)],
    )
    .await
    .unwrap();
    assert!(rrd_dir.join("h/uptime.rrd").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_bad_input_is_refused_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    bad_input(&ts, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_check_fails_for_unwritable_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: file.join("rrd"),
    })
    .await
    .unwrap();
    let e = ts.check().await.unwrap_err();
    assert!(e.to_string().contains("RRD_DIR"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_tcp_derive_rates_read_back_by_rrdtool() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    ts.check().await.unwrap();
    derive_rates(&ts, &d.base()).await;
    ts.flush(Duration::from_secs(20)).await.unwrap();
    let st = ts.stats();
    assert_eq!(
        (st.written, st.dropped, st.pending, st.unflushed),
        (7, 0, 0, 0),
        "{st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_unix_socket_derive_rates() {
    let d = Rrdcached::start_unix();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    ts.check().await.unwrap();
    derive_rates(&ts, &d.base()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_bad_input_is_refused_and_isolated() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    bad_input(&ts, &d.base()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_check_fails_when_nothing_listens() {
    let d = Rrdcached::not_started();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    let e = ts.check().await.unwrap_err();
    assert!(matches!(e, TimeSeriesError::Unreachable { .. }), "{e}");
}

/// Many files updated concurrently share BATCH round trips; all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_batch_of_many_files() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    let def = defs::uptime(STEP);
    let t0 = aligned_past(STEP as i64, 3600);
    for k in 0..3i64 {
        let mut set = tokio::task::JoinSet::new();
        for f in 0..200 {
            let ts = ts.clone();
            let def = def.clone();
            set.spawn(async move {
                ts.update(
                    &format!("b{f}/uptime.rrd"),
                    &def,
                    t0 + 60 * k,
                    &[Value::Gauge((f * 10 + k) as f64)],
                )
                .await
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    }
    ts.flush(Duration::from_secs(30)).await.unwrap();
    for f in [0, 77, 199] {
        let rows = rrdtool_fetch(
            &d.base().join(format!("b{f}/uptime.rrd")),
            "AVERAGE",
            t0,
            t0 + 120,
        );
        assert_eq!(
            value_at(&rows, t0, 0),
            None,
            "first row of a new file is unknown"
        );
        for k in 1..3 {
            assert_eq!(
                value_at(&rows, t0 + 60 * k, 0),
                Some((f * 10 + k) as f64),
                "b{f} {rows:?}"
            );
        }
    }
    let st = ts.stats();
    assert_eq!(st.written, 600);
    // Concurrent updates shared BATCH round trips.
    assert!(st.round_trips > 0 && st.round_trips < 300, "{st:?}");
    eprintln!("{st:?}");
}

/// Two independent writer handles (two connections, as two pollers) update the same file,
/// racing on its creation; both writers' updates land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_two_writers_same_file() {
    let d = Rrdcached::start_tcp();
    let cfg = TimeSeriesConfig::Rrdcached {
        address: d.address(),
    };
    let a = TimeSeries::open(&cfg).await.unwrap();
    let b = TimeSeries::open(&cfg).await.unwrap();
    let def = defs::uptime(STEP);
    let t0 = aligned_past(STEP as i64, 3600);
    // Both create at once (CREATE -O: neither clobbers the other).
    let (ra, rb) = tokio::join!(
        a.update("shared/uptime.rrd", &def, t0, &[Value::Gauge(1.0)]),
        b.update("shared2/uptime.rrd", &def, t0, &[Value::Gauge(1.0)]),
    );
    ra.unwrap();
    rb.unwrap();
    let (ra, rb) = tokio::join!(
        a.update("race/uptime.rrd", &def, t0, &[Value::Gauge(1.0)]),
        b.update("race/uptime.rrd", &def, t0 + 60, &[Value::Gauge(2.0)]),
    );
    // Whoever came second in time order may be refused, never both, and nothing clobbered.
    assert!(ra.is_ok() || rb.is_ok(), "{ra:?} {rb:?}");
    for k in 1..=6i64 {
        let w = if k % 2 == 0 { &a } else { &b };
        w.update(
            "shared/uptime.rrd",
            &def,
            t0 + 60 * k,
            &[Value::Gauge(100.0 + k as f64)],
        )
        .await
        .unwrap();
    }
    a.flush(Duration::from_secs(20)).await.unwrap();
    b.flush(Duration::from_secs(20)).await.unwrap();
    let rows = rrdtool_fetch(&d.base().join("shared/uptime.rrd"), "AVERAGE", t0, t0 + 360);
    for k in 1..=6i64 {
        assert_eq!(
            value_at(&rows, t0 + 60 * k, 0),
            Some(100.0 + k as f64),
            "k={k} {rows:?}"
        );
    }
    // The race's survivor is in the file (its row may be the file's unknown first one).
    let info = rrdtool_info(&d.base().join("race/uptime.rrd"));
    let last = if rb.is_ok() { t0 + 60 } else { t0 };
    assert!(info.contains(&format!("last_update = {last}\n")), "{info}");
}

/// The per-install `rrd_rra` override shapes new files on both backends.
async fn rra_override(cfg: TimeSeriesConfig, base: &Path) {
    let opts = TimeSeriesOptions {
        rra_override: Some(defs::parse_rras("RRA:AVERAGE:0.5:1:100 RRA:MAX:0.5:10:50").unwrap()),
        ..TimeSeriesOptions::default()
    };
    let ts = TimeSeries::open_with(&cfg, opts).await.unwrap();
    let t0 = aligned_past(STEP as i64, 3600);
    ts.update(
        "o1/uptime.rrd",
        &defs::uptime(STEP),
        t0,
        &[Value::Gauge(1.0)],
    )
    .await
    .unwrap();
    ts.flush(Duration::from_secs(20)).await.unwrap();
    let info = rrdtool_info(&base.join("o1/uptime.rrd"));
    assert!(info.contains("rra[0].rows = 100\n"), "{info}");
    assert!(info.contains("rra[1].cf = \"MAX\"\n"), "{info}");
    assert!(info.contains("rra[1].pdp_per_row = 10\n"), "{info}");
    assert!(!info.contains("rra[2]"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rra_override() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    };
    rra_override(cfg, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_rra_override() {
    let d = Rrdcached::start_tcp();
    rra_override(
        TimeSeriesConfig::Rrdcached {
            address: d.address(),
        },
        &d.base(),
    )
    .await;
}

/// PNG graphs through each backend (rrdcached: `--daemon`, no local file access needed).
async fn graph(ts: &TimeSeries) {
    let def = defs::port(STEP);
    let t0 = aligned_past(STEP as i64, 7200);
    for k in 0..10u64 {
        ts.update(
            "g:1/port-id1.rrd",
            &def,
            t0 + 60 * k as i64,
            &port_values(k * 6_000, k * 3_000),
        )
        .await
        .unwrap();
    }
    let line = |ds: &str, color: &str, scale: f64| lookout_timeseries::GraphLine {
        path: "g:1/port-id1.rrd".into(),
        ds: ds.into(),
        cf: Cf::Average,
        scale,
        color: color.into(),
        legend: format!("{ds}: bits/s"),
        area: ds == "INOCTETS",
    };
    let req = lookout_timeseries::GraphRequest {
        start: t0,
        end: t0 + 600,
        width: 400,
        height: 120,
        title: "port-id1 traffic".into(),
        vertical_label: "bits/s".into(),
        lines: vec![
            line("INOCTETS", "00cc00", 8.0),
            line("OUTOCTETS", "0000ff", -8.0),
        ],
    };
    let png = ts.graph_png(&req).await.unwrap();
    if let Ok(dir) = std::env::var("LOOKOUT_GRAPH_OUT") {
        std::fs::write(Path::new(&dir).join("graph.png"), &png).unwrap();
    }
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "{} bytes",
        png.len()
    );
    let mut missing = req.clone();
    missing.lines[0].path = "g:1/port-id404.rrd".into();
    let e = ts.graph_png(&missing).await.unwrap_err();
    assert!(e.to_string().contains("No such file"), "{e}");
    assert!(e.to_string().contains("g:1/port-id404.rrd"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_graph_png() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    graph(&ts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_tcp_graph_png() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    graph(&ts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_unix_graph_png() {
    let d = Rrdcached::start_unix();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    graph(&ts).await;
}

/// `update_many` from one task: results in order, bad ones refused alone.
async fn many(ts: &TimeSeries, base: &Path) {
    let def = defs::uptime(STEP);
    let t0 = aligned_past(STEP as i64, 3600);
    let vals: Vec<[Value; 1]> = (0..50).map(|i| [Value::Gauge(i as f64)]).collect();
    let paths: Vec<String> = (0..50).map(|i| format!("m{i}/uptime.rrd")).collect();
    for k in 0..2i64 {
        let mut ups: Vec<lookout_timeseries::Update<'_>> = (0..50)
            .map(|i| lookout_timeseries::Update {
                path: &paths[i],
                def: &def,
                at: t0 + 60 * k,
                values: &vals[i],
            })
            .collect();
        let nan = [Value::Gauge(f64::NAN)];
        ups.push(lookout_timeseries::Update {
            path: "m0/uptime.rrd",
            def: &def,
            at: t0 + 60 * k + 30,
            values: &nan,
        });
        let r = ts.update_many(&ups).await;
        assert_eq!(r.len(), 51);
        assert!(r[..50].iter().all(|r| r.is_ok()), "{r:?}");
        assert!(r[50].is_err());
    }
    ts.flush(Duration::from_secs(20)).await.unwrap();
    let rows = rrdtool_fetch(&base.join("m49/uptime.rrd"), "AVERAGE", t0, t0 + 60);
    assert_eq!(value_at(&rows, t0 + 60, 0), Some(49.0), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_update_many() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    many(&ts, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_update_many() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    many(&ts, &d.base()).await;
}

/// Two writer *processes* on one file through rrdcached: this crate's handle and Debian's
/// `rrdtool update --daemon` (a separate process and connection) take turns; both land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrdcached_two_writer_processes_same_file() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    let def = defs::uptime(STEP);
    let t0 = aligned_past(STEP as i64, 3600);
    ts.update("p/uptime.rrd", &def, t0, &[Value::Gauge(1.0)])
        .await
        .unwrap();
    for k in 1..=8i64 {
        let t = t0 + 60 * k;
        if k % 2 == 0 {
            ts.update("p/uptime.rrd", &def, t, &[Value::Gauge(k as f64)])
                .await
                .unwrap();
        } else {
            let out = tokio::process::Command::new(common::RRDTOOL)
                .args(["update", "--daemon", &d.address(), "p/uptime.rrd"])
                .arg(format!("{t}:{k}"))
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    ts.flush(Duration::from_secs(20)).await.unwrap();
    let rows = rrdtool_fetch(&d.base().join("p/uptime.rrd"), "AVERAGE", t0, t0 + 480);
    for k in 1..=8i64 {
        assert_eq!(
            value_at(&rows, t0 + 60 * k, 0),
            Some(k as f64),
            "k={k} {rows:?}"
        );
    }
}

/// Over `max_unflushed`, only the oldest files get a FLUSH, until the count is under the limit
/// (not every file), and the updates of the others are still held. rrdcached runs with
/// `-w 3600`, so a file's last update is on disk only if it was FLUSHed.
#[tokio::test]
async fn rrdcached_over_max_unflushed_flushes_the_oldest_files() {
    let d = Rrdcached::start_tcp();
    let spill = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open_with(
        &TimeSeriesConfig::Rrdcached {
            address: d.address(),
        },
        TimeSeriesOptions {
            flush_after: Duration::from_secs(3600),
            max_unflushed: 10,
            spill_dir: Some(spill.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let def = defs::uptime(STEP);
    let t0 = aligned_past(STEP as i64, 3600);
    for f in 0..30 {
        ts.update(
            &format!("m{f}/uptime.rrd"),
            &def,
            t0,
            &[Value::Gauge(f as f64)],
        )
        .await
        .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ts.stats().unflushed > 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ts.stats().unflushed, 10, "{:?}", ts.stats());
    let last = |f: usize| -> i64 {
        let info = rrdtool_info(&d.base().join(format!("m{f}/uptime.rrd")));
        info.lines()
            .find_map(|l| l.strip_prefix("last_update = "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    for f in [0, 10, 19] {
        assert_eq!(last(f), t0, "file {f} (among the oldest) was flushed");
    }
    for f in [20, 29] {
        assert!(last(f) < t0, "file {f} (among the newest) is still held");
    }
    ts.flush(Duration::from_secs(30)).await.unwrap();
    assert_eq!(ts.stats().unflushed, 0);
    assert_eq!(last(29), t0);
}

/// Two definitions for one new file in one BATCH: the pipelined CREATEs make it with the first,
/// the second CREATE finds it there and its INFO shows the other definition: refused.
#[tokio::test]
async fn rrdcached_new_file_with_two_definitions_in_one_batch() {
    let d = Rrdcached::start_tcp();
    let ts = TimeSeries::open(&TimeSeriesConfig::Rrdcached {
        address: d.address(),
    })
    .await
    .unwrap();
    let (uptime, port) = (defs::uptime(STEP), defs::port(STEP));
    let t0 = aligned_past(STEP as i64, 3600);
    let (vu, vp) = ([Value::Gauge(1.0)], vec![Value::Counter(1); 15]);
    let names: Vec<String> = (0..50).map(|f| format!("two/p{f}.rrd")).collect();
    let mut ups = vec![lookout_timeseries::Update {
        path: "two/x.rrd",
        def: &uptime,
        at: t0,
        values: &vu,
    }];
    for name in &names {
        // Other new files in the same batch, so that the checks go out pipelined.
        ups.push(lookout_timeseries::Update {
            path: name,
            def: &port,
            at: t0,
            values: &vp,
        });
    }
    ups.push(lookout_timeseries::Update {
        path: "two/x.rrd",
        def: &port,
        at: t0,
        values: &vp,
    });
    let out = ts.update_many(&ups).await;
    out[0].as_ref().unwrap();
    for r in &out[1..51] {
        r.as_ref().unwrap();
    }
    assert!(is_rrd_err(&out[51], "another definition"), "{:?}", out[51]);
    ts.flush(Duration::from_secs(30)).await.unwrap();
    assert!(rrdtool_info(&d.base().join("two/x.rrd")).contains("ds[uptime].type = \"GAUGE\""));
    assert!(rrdtool_info(&d.base().join("two/p49.rrd")).contains("ds[INOCTETS].type = \"DERIVE\""));
}
