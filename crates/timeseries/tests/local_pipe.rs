//! The local backend survives its `rrdtool -` processes being killed (own test binary: it
//! kills every rrdtool child of this process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{aligned_past, rrdtool_fetch, value_at};
use lookout_timeseries::{defs, TimeSeries, TimeSeriesConfig, Value};

/// PIDs of this process's children named `rrdtool`.
fn rrdtool_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid: i32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if comm == "rrdtool" && ppid == me {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_replaces_killed_rrdtool_processes() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    let def = defs::uptime(60);
    let t0 = aligned_past(60, 3600);
    let files: Vec<String> = (0..8).map(|i| format!("k{i}/uptime.rrd")).collect();
    for f in &files {
        ts.update(f, &def, t0, &[Value::Gauge(1.0)]).await.unwrap();
    }
    let victims = rrdtool_children();
    assert!(!victims.is_empty(), "the backend runs rrdtool processes");
    for pid in &victims {
        let st = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Every file's next update still lands, through new processes.
    for (i, f) in files.iter().enumerate() {
        ts.update(f, &def, t0 + 60, &[Value::Gauge(i as f64)])
            .await
            .unwrap();
    }
    let now = rrdtool_children();
    assert!(
        now.iter().all(|p| !victims.contains(p)),
        "{victims:?} {now:?}"
    );
    for (i, f) in files.iter().enumerate() {
        let rows = rrdtool_fetch(&dir.path().join(f), "AVERAGE", t0, t0 + 60);
        assert_eq!(value_at(&rows, t0 + 60, 0), Some(i as f64), "{f}: {rows:?}");
    }
    assert_eq!(ts.stats().rejected, 0);
}
