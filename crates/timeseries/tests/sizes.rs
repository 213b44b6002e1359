//! RRD file sizes (issue #16): files created at 30 s, 60 s and 300 s steps have the archives
//! `defs::librenms_rras` promises (`rrdtool info`: `rra[N].rows`, `rra[N].pdp_per_row`), the
//! size `defs::file_bytes` computes, stay within a few MB, and are the sizes that
//! docs/timeseries.md lists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use lookout_timeseries::{defs, RrdDef, TimeSeries, TimeSeriesConfig, Value};

/// `rra[N].rows` and `rra[N].pdp_per_row` of a file, by N.
fn info_rras(path: &std::path::Path) -> BTreeMap<usize, (u64, u64)> {
    let out = std::process::Command::new("/usr/bin/rrdtool")
        .arg("info")
        .arg(path)
        .env_remove("RRDCACHED_ADDRESS")
        .output()
        .unwrap();
    assert!(out.status.success(), "rrdtool info {}", path.display());
    let mut rras: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("rra[") else {
            continue;
        };
        let (n, rest) = rest.split_once(']').unwrap();
        let n: usize = n.parse().unwrap();
        if let Some(v) = rest.strip_prefix(".rows = ") {
            rras.entry(n).or_default().0 = v.trim().parse().unwrap();
        } else if let Some(v) = rest.strip_prefix(".pdp_per_row = ") {
            rras.entry(n).or_default().1 = v.trim().parse().unwrap();
        }
    }
    rras
}

/// The numbers of the size table in docs/timeseries.md: step → column values (bytes).
fn doc_table() -> BTreeMap<u64, Vec<u64>> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/timeseries.md"
    ))
    .unwrap();
    let start = doc
        .find("<!-- sizes: checked by crates/timeseries/tests/sizes.rs -->")
        .expect("size table marker in docs/timeseries.md");
    let mut out = BTreeMap::new();
    for line in doc[start..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            if out.is_empty() {
                continue;
            }
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(step) = cells[0]
            .strip_suffix(" s")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        // Byte counts are the first number of a cell, written with thousands separators.
        let nums = cells[2..]
            .iter()
            .map(|c| {
                let first = c.split_whitespace().next().unwrap_or("");
                first.replace(',', "").parse::<u64>().unwrap_or_else(|_| {
                    panic!("docs/timeseries.md size table: {c:?} is not a byte count")
                })
            })
            .collect();
        out.insert(step, nums);
    }
    out
}

async fn create(ts: &TimeSeries, dir: &std::path::Path, path: &str, def: &RrdDef) -> u64 {
    let values = vec![Value::Counter(1); def.sources.len()];
    let values: Vec<Value> = if def.sources[0].kind == lookout_timeseries::DsKind::Gauge {
        vec![Value::Gauge(1.0); def.sources.len()]
    } else {
        values
    };
    ts.update(path, def, 1_700_000_000, &values).await.unwrap();
    let file = dir.join(path);
    let rras = info_rras(&file);
    let want: Vec<(u64, u64)> = def.archives.iter().map(|r| (r.rows, r.steps)).collect();
    assert_eq!(
        rras.values().copied().collect::<Vec<_>>(),
        want,
        "{path}: rra[N].rows / pdp_per_row as defs::librenms_rras({})",
        def.step_secs
    );
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(
        size,
        defs::file_bytes(def, None),
        "{path}: defs::file_bytes"
    );
    size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sizes_at_30_60_300_s_match_defs_and_docs() {
    let dir = tempfile::tempdir().unwrap();
    let ts = TimeSeries::open(&TimeSeriesConfig::Local {
        rrd_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    let table = doc_table();
    for step in [30u64, 60, 300] {
        let port = create(
            &ts,
            dir.path(),
            &format!("s{step}/port-id1.rrd"),
            &defs::port(step),
        )
        .await;
        let icmp = create(
            &ts,
            dir.path(),
            &format!("s{step}/icmp-perf.rrd"),
            &defs::icmp_perf(step),
        )
        .await;
        let one = create(
            &ts,
            dir.path(),
            &format!("s{step}/uptime.rrd"),
            &defs::uptime(step),
        )
        .await;
        // A port file within a few MB at any step (it was 11.25 MB at 30 s).
        assert!(port <= 4 * 1024 * 1024, "{step} s: port file {port} bytes");
        // 48 ports, icmp-perf, uptime, poller-perf.rrd and one poller-perf-<module>.rrd per
        // module (6): the files every device has.
        let device = 48 * port + icmp + 8 * one;
        let got = vec![port, icmp, one, device];
        println!("| {step} s | {got:?}");
        assert_eq!(
            table.get(&step),
            Some(&got),
            "docs/timeseries.md size table row for {step} s (port, icmp-perf, 1-DS file, 48-port device)"
        );
    }
    // At 300 s the port file is LibreNMS's.
    assert_eq!(defs::port(300).archives.len(), 13);
}
