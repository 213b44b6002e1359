//! Standard RRD definitions with LibreNMS's data source names and LibreNMS's default RRA set
//! (`rrd_rra`), scaled to the poll interval so that a 60 s install keeps the same time spans
//! as LibreNMS's 300 s default. See docs/timeseries.md.

use crate::{Cf, DataSource, DsKind, Rra, RrdDef, TimeSeriesError};

/// Names of the port DSes in the order `port` defines them.
pub const PORT_DS: [&str; 15] = [
    "INOCTETS",
    "OUTOCTETS",
    "INERRORS",
    "OUTERRORS",
    "INUCASTPKTS",
    "OUTUCASTPKTS",
    "INNUCASTPKTS",
    "OUTNUCASTPKTS",
    "INDISCARDS",
    "OUTDISCARDS",
    "INUNKNOWNPROTOS",
    "INBROADCASTPKTS",
    "OUTBROADCASTPKTS",
    "INMULTICASTPKTS",
    "OUTMULTICASTPKTS",
];

/// LibreNMS's port DS maximum: 12.5 GB/s (100 Gbit/s) per step second.
const PORT_DS_MAX: f64 = 12_500_000_000.0;

/// Most raw (one-step) rows an archive keeps: 1 day at a 30 s step, 2 days at 60 s. LibreNMS
/// keeps a week of raw rows (2016 at its 300 s step); a week of raw rows at 30 s would be
/// 20,160 rows per CF, an 11 MB port file (issue #16). Graphs of more than a day or two read
/// consolidated rows anyway.
pub const RAW_ROWS_MAX: u64 = 2_880;

/// LibreNMS's `rrd_rra` default, written for a 300 s step:
/// `RRA:{AVERAGE,MIN,MAX}:0.5:1:2016 ...:6:1440 ...:24:1440 ...:288:1440` and `RRA:LAST:0.5:1:2016`,
/// i.e. 1 week at 5 min, 30 days at 30 min, 120 days at 2 h, 1440 days at 1 day.
///
/// For another step the consolidation *time spans* are kept, with the raw rows bounded:
/// raw rows for a week but at most [`RAW_ROWS_MAX`]; when that is less than a week, 5-minute
/// rows for the week (what LibreNMS keeps raw, so week graphs are as fine as LibreNMS's);
/// then 1440 rows of 30 min, 2 h and 1 day (steps rounded up, at least 1). At 300 s that is
/// exactly LibreNMS's list; below ~210 s every port file has the same size (3.5 MiB), see
/// docs/timeseries.md.
pub fn librenms_rras(step_secs: u64) -> Vec<Rra> {
    const WEEK: u64 = 7 * 86_400;
    let step = step_secs.max(1);
    let raw_rows = WEEK.div_ceil(step).min(RAW_ROWS_MAX);
    // (steps per row, rows) per tier.
    let mut tiers: Vec<(u64, u64)> = vec![(1, raw_rows)];
    if raw_rows * step < WEEK {
        let steps = 300u64.div_ceil(step).max(1);
        tiers.push((steps, WEEK.div_ceil(steps * step)));
    }
    for span in [1_800u64, 7_200, 86_400] {
        tiers.push((span.div_ceil(step).max(1), 1_440));
    }
    let mut out = Vec::with_capacity(3 * tiers.len() + 1);
    for cf in [Cf::Average, Cf::Min, Cf::Max] {
        for &(steps, rows) in &tiers {
            out.push(Rra { cf, steps, rows });
        }
    }
    out.push(Rra {
        cf: Cf::Last,
        steps: 1,
        rows: raw_rows,
    });
    out
}

/// Size in bytes of the file rrdtool creates for `def` (with `rra_override` instead of its
/// archives when given): rrdtool's fixed headers, per-DS and per-RRA headers and 8 bytes per
/// value (`rrd_format.h` on 64-bit Linux; checked against real files in tests/sizes.rs).
/// Files are allocated whole at creation and never grow.
pub fn file_bytes(def: &RrdDef, rra_override: Option<&[Rra]>) -> u64 {
    let rras = rra_override.unwrap_or(&def.archives);
    file_bytes_for(def.sources.len() as u64, rras)
}

/// [`file_bytes`] for `ds` data sources and these archives.
pub fn file_bytes_for(ds: u64, rras: &[Rra]) -> u64 {
    // stat_head 128, live_head 16; per DS: ds_def 120 + pdp_prep 112; per RRA: rra_def 120
    // + rra_ptr 8, and cdp_prep 80 per RRA and DS.
    let rra = rras.len() as u64;
    let rows: u64 = rras.iter().map(|r| r.rows).sum();
    128 + 16 + 232 * ds + 128 * rra + 80 * rra * ds + 8 * ds * rows
}

/// Parses a LibreNMS-style `rrd_rra` setting: `RRA:CF:0.5:steps:rows` items separated by
/// whitespace. Only xff 0.5 is accepted (the value every LibreNMS RRA uses, and `Rra` has
/// no xff field).
pub fn parse_rras(text: &str) -> Result<Vec<Rra>, TimeSeriesError> {
    let bad = |item: &str, why: &str| TimeSeriesError::BadRras(format!("{item:?}: {why}"));
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        let f: Vec<&str> = item.split(':').collect();
        if f.len() != 5 || f[0] != "RRA" {
            return Err(bad(item, "expected RRA:CF:xff:steps:rows"));
        }
        let cf = match f[1] {
            "AVERAGE" => Cf::Average,
            "MIN" => Cf::Min,
            "MAX" => Cf::Max,
            "LAST" => Cf::Last,
            _ => return Err(bad(item, "CF must be AVERAGE, MIN, MAX or LAST")),
        };
        if f[2].parse::<f64>().ok() != Some(0.5) {
            return Err(bad(item, "only xff 0.5 is supported"));
        }
        let steps: u64 = f[3]
            .parse()
            .map_err(|_| bad(item, "steps must be a positive integer"))?;
        let rows: u64 = f[4]
            .parse()
            .map_err(|_| bad(item, "rows must be a positive integer"))?;
        if steps == 0 || rows == 0 {
            return Err(bad(item, "steps and rows must be at least 1"));
        }
        out.push(Rra { cf, steps, rows });
    }
    if out.is_empty() {
        return Err(TimeSeriesError::BadRras("no RRA given".into()));
    }
    Ok(out)
}

fn ds(name: &str, kind: DsKind, step: u64, min: Option<f64>, max: Option<f64>) -> DataSource {
    DataSource {
        name: name.to_string(),
        kind,
        // LibreNMS's rrd.heartbeat default is 600 for its 300 s step: two steps.
        heartbeat_secs: step.max(1) * 2,
        min,
        max,
    }
}

/// `port-id<N>.rrd`: the 15 `PORT_DS` (DERIVE, min 0, max 12500000000, as LibreNMS).
pub fn port(step_secs: u64) -> RrdDef {
    RrdDef {
        step_secs,
        sources: PORT_DS
            .iter()
            .map(|n| ds(n, DsKind::Derive, step_secs, Some(0.0), Some(PORT_DS_MAX)))
            .collect(),
        archives: librenms_rras(step_secs),
    }
}

/// `icmp-perf.rrd`: avg, xmt, rcv, min, max (GAUGE, 0..65535, as LibreNMS).
pub fn icmp_perf(step_secs: u64) -> RrdDef {
    RrdDef {
        step_secs,
        sources: ["avg", "xmt", "rcv", "min", "max"]
            .iter()
            .map(|n| ds(n, DsKind::Gauge, step_secs, Some(0.0), Some(65_535.0)))
            .collect(),
        archives: librenms_rras(step_secs),
    }
}

/// `uptime.rrd`: uptime (GAUGE, min 0, as LibreNMS).
pub fn uptime(step_secs: u64) -> RrdDef {
    RrdDef {
        step_secs,
        sources: vec![ds("uptime", DsKind::Gauge, step_secs, Some(0.0), None)],
        archives: librenms_rras(step_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rras_at_300s_equal_librenms_default() {
        let text: Vec<String> = librenms_rras(300)
            .iter()
            .map(|r| format!("{:?}:{}:{}", r.cf, r.steps, r.rows))
            .collect();
        assert_eq!(
            text.join(" "),
            "Average:1:2016 Average:6:1440 Average:24:1440 Average:288:1440 \
             Min:1:2016 Min:6:1440 Min:24:1440 Min:288:1440 \
             Max:1:2016 Max:6:1440 Max:24:1440 Max:288:1440 Last:1:2016"
        );
    }

    fn rra_text(step: u64) -> String {
        let text: Vec<String> = librenms_rras(step)
            .iter()
            .map(|r| format!("{:?}:{}:{}", r.cf, r.steps, r.rows))
            .collect();
        text.join(" ")
    }

    #[test]
    fn rras_at_60s_keep_the_spans_with_two_days_raw() {
        // 2 days raw, a week of 5 min, then 30 days of 30 min, 120 days of 2 h, 1440 of 1 day.
        assert_eq!(
            rra_text(60),
            "Average:1:2880 Average:5:2016 Average:30:1440 Average:120:1440 Average:1440:1440 \
             Min:1:2880 Min:5:2016 Min:30:1440 Min:120:1440 Min:1440:1440 \
             Max:1:2880 Max:5:2016 Max:30:1440 Max:120:1440 Max:1440:1440 Last:1:2880"
        );
    }

    #[test]
    fn raw_rows_are_bounded_and_spans_kept_at_any_step() {
        for step in [
            10u64, 15, 20, 30, 45, 60, 90, 120, 200, 240, 300, 600, 3600, 86_400,
        ] {
            let r = librenms_rras(step);
            let avg: Vec<&Rra> = r.iter().filter(|a| a.cf == Cf::Average).collect();
            assert!(avg[0].steps == 1 && avg[0].rows <= RAW_ROWS_MAX, "{step}");
            // Together the AVERAGE archives reach back a week, and the last one 1440 days.
            let reach = |a: &Rra| a.steps * a.rows * step;
            assert!(avg.iter().any(|a| reach(a) >= 7 * 86_400), "{step}");
            assert!(reach(avg[avg.len() - 1]) >= 1_440 * 86_400, "{step}");
            let bytes = file_bytes(&port(step), None);
            assert!(bytes <= 4 * 1024 * 1024, "{step}: {bytes}");
        }
    }

    #[test]
    fn parse_librenms_rrd_rra() {
        let text = "RRA:AVERAGE:0.5:1:2016 RRA:AVERAGE:0.5:6:1440 RRA:AVERAGE:0.5:24:1440 \
            RRA:AVERAGE:0.5:288:1440  RRA:MIN:0.5:1:2016 RRA:MIN:0.5:6:1440     RRA:MIN:0.5:24:1440 \
            RRA:MIN:0.5:288:1440 RRA:MAX:0.5:1:2016 RRA:MAX:0.5:6:1440 RRA:MAX:0.5:24:1440 \
            RRA:MAX:0.5:288:1440 RRA:LAST:0.5:1:2016 ";
        assert_eq!(parse_rras(text).ok(), Some(librenms_rras(300)));
        for bad in [
            "",
            "RRA:AVG:0.5:1:2",
            "RRA:MAX:0.9:1:2",
            "RRA:MAX:0.5:0:2",
            "DS:x:GAUGE:1:U:U",
        ] {
            assert!(parse_rras(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_def_has_librenms_names() {
        let d = port(300);
        let names: Vec<&str> = d.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, PORT_DS.to_vec());
        assert!(d
            .sources
            .iter()
            .all(|s| s.kind == DsKind::Derive && s.heartbeat_secs == 600));
    }
}
