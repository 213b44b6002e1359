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

/// LibreNMS's `rrd_rra` default, written for a 300 s step:
/// `RRA:{AVERAGE,MIN,MAX}:0.5:1:2016 ...:6:1440 ...:24:1440 ...:288:1440` and `RRA:LAST:0.5:1:2016`,
/// i.e. 1 week at 5 min, 30 days at 30 min, 120 days at 2 h, 1440 days at 1 day.
/// For another step the consolidation *time spans* are kept: 1 week of raw rows, then 1440
/// rows of 30 min, 2 h and 1 day (steps rounded up, at least 1).
pub fn librenms_rras(step_secs: u64) -> Vec<Rra> {
    let step = step_secs.max(1);
    let raw_rows = (7 * 86_400u64).div_ceil(step);
    let spans: [(u64, u64); 4] = [
        (step, raw_rows),
        (1_800, 1_440),
        (7_200, 1_440),
        (86_400, 1_440),
    ];
    let mut out = Vec::with_capacity(13);
    for cf in [Cf::Average, Cf::Min, Cf::Max] {
        for (i, (span, rows)) in spans.iter().enumerate() {
            let steps = if i == 0 {
                1
            } else {
                span.div_ceil(step).max(1)
            };
            out.push(Rra {
                cf,
                steps,
                rows: *rows,
            });
        }
    }
    out.push(Rra {
        cf: Cf::Last,
        steps: 1,
        rows: raw_rows,
    });
    out
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

    #[test]
    fn rras_at_60s_keep_the_spans() {
        let r = librenms_rras(60);
        assert_eq!((r[0].steps, r[0].rows), (1, 10_080));
        assert_eq!((r[1].steps, r[1].rows), (30, 1_440));
        assert_eq!((r[3].steps, r[3].rows), (1_440, 1_440));
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
