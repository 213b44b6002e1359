//! Sans-IO text shared by both backends: path validation, rrdtool `create` arguments, update
//! lines (`at:v1:v2...`, counters written as exact integers), input validation that rrdcached
//! itself would only report at flush time, and parsers for `info`/`fetch` output.

use crate::{Cf, DsKind, Rra, RrdDef, Series, TimeSeriesError, Value};

/// Rejects absolute paths, `..`, empty components and characters that the rrdcached text
/// protocol and `rrdtool -` split on (whitespace, control characters) or quote (`"`, `'`, `\`).
/// `:` is allowed: LibreNMS keeps IPv6 literals as host directory names (graphs escape it).
pub(crate) fn validate_path(path: &str) -> Result<(), TimeSeriesError> {
    let bad = || TimeSeriesError::BadPath(path.to_string());
    if path.is_empty() || path.starts_with('/') || path.ends_with('/') || !path.ends_with(".rrd") {
        return Err(bad());
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(bad());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad());
    }
    Ok(())
}

pub(crate) fn kind_name(kind: DsKind) -> &'static str {
    match kind {
        DsKind::Gauge => "GAUGE",
        DsKind::Counter => "COUNTER",
        DsKind::Derive => "DERIVE",
        DsKind::Absolute => "ABSOLUTE",
    }
}

pub(crate) fn cf_name(cf: Cf) -> &'static str {
    match cf {
        Cf::Average => "AVERAGE",
        Cf::Min => "MIN",
        Cf::Max => "MAX",
        Cf::Last => "LAST",
    }
}

fn limit(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "U".to_string(),
    }
}

/// `DS:... RRA:...` arguments, space separated (identical for `rrdtool create` and rrdcached).
/// `archives` (the per-install `rrd_rra` override) replaces the definition's RRAs.
pub(crate) fn ds_rra_args(def: &RrdDef, archives: Option<&[Rra]>) -> String {
    let mut out = Vec::with_capacity(def.sources.len() + def.archives.len());
    for s in &def.sources {
        out.push(format!(
            "DS:{}:{}:{}:{}:{}",
            s.name,
            kind_name(s.kind),
            s.heartbeat_secs,
            limit(s.min),
            limit(s.max)
        ));
    }
    for r in archives.unwrap_or(&def.archives) {
        out.push(format!("RRA:{}:0.5:{}:{}", cf_name(r.cf), r.steps, r.rows));
    }
    out.join(" ")
}

/// Parses `ds_rra_args` output back (spill journal lines carry their definition this way).
pub(crate) fn parse_def(step: u64, args: &str) -> Result<RrdDef, String> {
    let mut def = RrdDef {
        step_secs: step,
        sources: Vec::new(),
        archives: Vec::new(),
    };
    let limit = |s: &str| -> Result<Option<f64>, String> {
        if s == "U" {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| format!("bad DS limit {s:?}"))
    };
    for tok in args.split_whitespace() {
        if tok.starts_with("RRA:") {
            def.archives
                .extend(crate::defs::parse_rras(tok).map_err(|e| e.to_string())?);
            continue;
        }
        let f: Vec<&str> = tok.split(':').collect();
        if f.len() != 6 || f[0] != "DS" {
            return Err(format!("bad DS {tok:?}"));
        }
        let kind = match f[2] {
            "GAUGE" => DsKind::Gauge,
            "COUNTER" => DsKind::Counter,
            "DERIVE" => DsKind::Derive,
            "ABSOLUTE" => DsKind::Absolute,
            _ => return Err(format!("bad DS type in {tok:?}")),
        };
        def.sources.push(crate::DataSource {
            name: f[1].to_string(),
            kind,
            heartbeat_secs: f[3]
                .parse()
                .map_err(|_| format!("bad heartbeat in {tok:?}"))?,
            min: limit(f[4])?,
            max: limit(f[5])?,
        });
    }
    validate_def(&def)?;
    Ok(def)
}

/// Checks that `def` is something rrdtool will accept (names, at least one DS and RRA).
pub(crate) fn validate_def(def: &RrdDef) -> Result<(), String> {
    if def.step_secs == 0 {
        return Err("step must be at least 1 second".into());
    }
    if def.sources.is_empty() || def.archives.is_empty() {
        return Err("a definition needs at least one data source and one archive".into());
    }
    for s in &def.sources {
        let ok = !s.name.is_empty()
            && s.name.len() <= 19
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "bad data source name {:?} (1-19 of [A-Za-z0-9_])",
                s.name
            ));
        }
    }
    Ok(())
}

/// Builds `at:v1:v2:...` after checking what rrdtool would reject later: one value per data
/// source, finite numbers only, integers for COUNTER/DERIVE. Counters are written as their exact
/// decimal integer (never through f64).
pub(crate) fn update_line(def: &RrdDef, at: i64, values: &[Value]) -> Result<String, String> {
    if values.len() != def.sources.len() {
        return Err(format!(
            "{} values for {} data sources",
            values.len(),
            def.sources.len()
        ));
    }
    if at <= 0 {
        return Err(format!("timestamp {at} is not a positive unix time"));
    }
    let mut line = at.to_string();
    for (v, ds) in values.iter().zip(&def.sources) {
        line.push(':');
        match *v {
            Value::Unknown => line.push('U'),
            Value::Counter(n) => line.push_str(&n.to_string()),
            Value::Gauge(x) => {
                if !x.is_finite() {
                    return Err(format!("value {x} for {} is not a finite number", ds.name));
                }
                match ds.kind {
                    DsKind::Counter | DsKind::Derive => {
                        // rrdtool wants "a simple (signed) integer" here.
                        if x.fract() != 0.0 || x.abs() >= 9.007_199_254_740_992e15 {
                            return Err(format!(
                                "value {x} for {} ({}) is not an integer",
                                ds.name,
                                kind_name(ds.kind)
                            ));
                        }
                        if ds.kind == DsKind::Counter && x < 0.0 {
                            return Err(format!("negative value {x} for COUNTER {}", ds.name));
                        }
                        line.push_str(&(x as i64).to_string());
                    }
                    DsKind::Gauge | DsKind::Absolute => line.push_str(&format!("{x}")),
                }
            }
        }
    }
    Ok(line)
}

/// What Lookout compares between an existing file and the definition it is asked to write.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FileInfo {
    pub step: u64,
    pub last_update: i64,
    /// (name, kind) in index order.
    pub sources: Vec<(String, String)>,
}

impl FileInfo {
    /// Step, DS names and DS types must match; RRAs may differ (a per-install `rrd_rra`
    /// override must not make old files unusable).
    pub(crate) fn mismatch(&self, def: &RrdDef) -> Option<String> {
        let want: Vec<(String, String)> = def
            .sources
            .iter()
            .map(|s| (s.name.clone(), kind_name(s.kind).to_string()))
            .collect();
        if self.step != def.step_secs || self.sources != want {
            return Some(format!(
                "file has another definition: step {} DS {:?}, wanted step {} DS {:?}",
                self.step, self.sources, def.step_secs, want
            ));
        }
        None
    }

    /// Parses `info` output: rrdtool's `key = value` or rrdcached's `key <type> value`.
    pub(crate) fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<FileInfo, String> {
        let mut info = FileInfo::default();
        let mut ds: Vec<(usize, String, String)> = Vec::new();
        let mut seen_step = false;
        for line in lines {
            let (key, value) = if let Some((k, v)) = line.split_once(" = ") {
                (k.trim(), v.trim().trim_matches('"'))
            } else {
                let mut it = line.splitn(3, ' ');
                match (it.next(), it.next(), it.next()) {
                    (Some(k), Some(_), Some(v)) => (k, v.trim()),
                    _ => continue,
                }
            };
            if key == "step" {
                info.step = value.parse().map_err(|_| format!("bad step {value:?}"))?;
                seen_step = true;
            } else if key == "last_update" {
                info.last_update = value.parse().unwrap_or(0);
            } else if let Some(rest) = key.strip_prefix("ds[") {
                if let Some((name, field)) = rest.split_once("].") {
                    let entry = match ds.iter_mut().position(|d| d.1 == name) {
                        Some(i) => i,
                        None => {
                            ds.push((usize::MAX, name.to_string(), String::new()));
                            ds.len() - 1
                        }
                    };
                    match field {
                        "index" => ds[entry].0 = value.parse().unwrap_or(usize::MAX),
                        "type" => ds[entry].2 = value.to_string(),
                        _ => {}
                    }
                }
            }
        }
        if !seen_step {
            return Err("info output without a step".into());
        }
        ds.sort_by_key(|d| d.0);
        info.sources = ds.into_iter().map(|(_, n, k)| (n, k)).collect();
        Ok(info)
    }
}

fn parse_number(s: &str) -> Result<Option<f64>, String> {
    let v: f64 = s.parse().map_err(|_| format!("bad number {s:?}"))?;
    Ok(if v.is_nan() { None } else { Some(v) })
}

/// Parses one `timestamp: v1 v2 ...` row of fetch output.
pub(crate) fn parse_fetch_row(
    line: &str,
    ds_count: usize,
) -> Result<(i64, Vec<Option<f64>>), String> {
    let (ts, rest) = line
        .split_once(':')
        .ok_or_else(|| format!("bad fetch row {line:?}"))?;
    let ts: i64 = ts
        .trim()
        .parse()
        .map_err(|_| format!("bad fetch time in {line:?}"))?;
    let values = rest
        .split_whitespace()
        .map(parse_number)
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() != ds_count {
        return Err(format!(
            "fetch row with {} values for {ds_count} DS",
            values.len()
        ));
    }
    Ok((ts, values))
}

/// Builds a `Series` from rows that must be evenly spaced by `step`.
pub(crate) fn series_from_rows(
    ds_names: Vec<String>,
    step: u64,
    rows: Vec<(i64, Vec<Option<f64>>)>,
) -> Result<Series, String> {
    let start = rows.first().map(|r| r.0).unwrap_or(0);
    for (i, (ts, _)) in rows.iter().enumerate() {
        if *ts != start + i as i64 * step as i64 {
            return Err(format!("fetch rows not evenly spaced at {ts}"));
        }
    }
    Ok(Series {
        start,
        step,
        ds_names,
        rows: rows.into_iter().map(|r| r.1).collect(),
    })
}

/// Parses `rrdtool fetch` output (pipe mode, without the final OK line): a header of DS names,
/// a blank line, then rows.
pub(crate) fn parse_rrdtool_fetch(lines: &[String]) -> Result<Series, String> {
    let mut it = lines.iter().filter(|l| !l.trim().is_empty());
    let header = it.next().ok_or("empty fetch output")?;
    let ds_names: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let rows = it
        .map(|l| parse_fetch_row(l, ds_names.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let step = if rows.len() >= 2 {
        (rows[1].0 - rows[0].0).max(1) as u64
    } else {
        1
    };
    series_from_rows(ds_names, step, rows)
}

/// Consolidates rows to at least `resolution` seconds per row with `cf` (rrdtool's RRA choice
/// stops at the finest archive that covers the range; graphs may want coarser rows, and
/// rrdcached's FETCH has no resolution argument). Row groups are aligned to multiples of the
/// new step, as rrdtool aligns its archives; a group's value is unknown when all its rows are.
pub(crate) fn consolidate(series: Series, cf: Cf, resolution: u64) -> Series {
    if resolution <= series.step || series.rows.is_empty() || series.step == 0 {
        return series;
    }
    let factor = resolution.div_ceil(series.step);
    let new_step = factor * series.step;
    let ds = series.ds_names.len();
    let mut out: Vec<(i64, Vec<Vec<f64>>)> = Vec::new();
    for (i, row) in series.rows.iter().enumerate() {
        let ts = series.start + i as i64 * series.step as i64;
        // Row `ts` covers (ts-step, ts]; its group ends at the next multiple of new_step.
        let group_end = (ts + new_step as i64 - 1).div_euclid(new_step as i64) * new_step as i64;
        if out.last().map(|g| g.0) != Some(group_end) {
            out.push((group_end, vec![Vec::new(); ds]));
        }
        if let Some(g) = out.last_mut() {
            for (d, v) in row.iter().enumerate() {
                if let (Some(v), Some(bucket)) = (v, g.1.get_mut(d)) {
                    bucket.push(*v);
                }
            }
        }
    }
    let start = out.first().map(|g| g.0).unwrap_or(series.start);
    let rows = out
        .into_iter()
        .map(|(_, groups)| {
            groups
                .into_iter()
                .map(|vals| {
                    if vals.is_empty() {
                        return None;
                    }
                    Some(match cf {
                        Cf::Average => vals.iter().sum::<f64>() / vals.len() as f64,
                        Cf::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                        Cf::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        Cf::Last => vals[vals.len() - 1],
                    })
                })
                .collect()
        })
        .collect();
    Series {
        start,
        step: new_step,
        ds_names: series.ds_names,
        rows,
    }
}

/// True for rrdtool's/rrdcached's "illegal attempt to update using time X when last update
/// time is Y" with X <= Y: on a replay that update is already in the file.
pub(crate) fn is_already_written(message: &str) -> bool {
    let Some(rest) = message
        .split("illegal attempt to update using time ")
        .nth(1)
    else {
        return false;
    };
    let mut parts = rest.split(" when last update time is ");
    let x = parts.next().and_then(|s| s.trim().parse::<f64>().ok());
    let y = parts
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok());
    matches!((x, y), (Some(x), Some(y)) if x <= y)
}

pub(crate) fn is_no_such_file(message: &str) -> bool {
    message.contains("No such file")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::DataSource;

    fn def2() -> RrdDef {
        RrdDef {
            step_secs: 60,
            sources: vec![
                DataSource {
                    name: "x".into(),
                    kind: DsKind::Derive,
                    heartbeat_secs: 120,
                    min: Some(0.0),
                    max: None,
                },
                DataSource {
                    name: "y".into(),
                    kind: DsKind::Gauge,
                    heartbeat_secs: 120,
                    min: None,
                    max: None,
                },
            ],
            archives: vec![Rra {
                cf: Cf::Average,
                steps: 1,
                rows: 10,
            }],
        }
    }

    #[test]
    fn paths() {
        assert!(validate_path("host/port-id1.rrd").is_ok());
        assert!(validate_path("uptime.rrd").is_ok());
        assert!(validate_path("2001:db8::1/uptime.rrd").is_ok());
        for bad in [
            "/etc/x.rrd",
            "../x.rrd",
            "a/../x.rrd",
            "a//x.rrd",
            "a b.rrd",
            "",
            "a/x",
            "a\n.rrd",
            "./x.rrd",
        ] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn update_lines() {
        let d = def2();
        assert_eq!(
            update_line(&d, 100, &[Value::Counter(u64::MAX), Value::Gauge(1.5)]).unwrap(),
            "100:18446744073709551615:1.5"
        );
        assert_eq!(
            update_line(&d, 100, &[Value::Unknown, Value::Unknown]).unwrap(),
            "100:U:U"
        );
        assert_eq!(
            update_line(&d, 100, &[Value::Gauge(7.0), Value::Gauge(-2.0)]).unwrap(),
            "100:7:-2"
        );
        assert!(update_line(&d, 100, &[Value::Unknown])
            .unwrap_err()
            .contains("1 values for 2"));
        assert!(update_line(&d, 100, &[Value::Unknown, Value::Gauge(f64::NAN)]).is_err());
        assert!(update_line(&d, 100, &[Value::Unknown, Value::Gauge(f64::INFINITY)]).is_err());
        assert!(update_line(&d, 100, &[Value::Gauge(1.5), Value::Unknown]).is_err());
        assert!(update_line(&d, 0, &[Value::Unknown, Value::Unknown]).is_err());
    }

    #[test]
    fn args() {
        assert_eq!(
            ds_rra_args(&def2(), None),
            "DS:x:DERIVE:120:0:U DS:y:GAUGE:120:U:U RRA:AVERAGE:0.5:1:10"
        );
    }

    #[test]
    fn def_round_trip() {
        for def in [def2(), crate::defs::port(300), crate::defs::icmp_perf(60)] {
            let back = parse_def(def.step_secs, &ds_rra_args(&def, None)).unwrap();
            assert_eq!(back, def);
        }
        assert!(parse_def(60, "DS:x:BOGUS:1:U:U RRA:AVERAGE:0.5:1:1").is_err());
    }

    #[test]
    fn info_both_syntaxes() {
        let rrdtool = [
            "filename = \"h1/a.rrd\"",
            "step = 60",
            "last_update = 1000",
            "ds[x].index = 0",
            "ds[x].type = \"DERIVE\"",
            "ds[y].index = 1",
            "ds[y].type = \"GAUGE\"",
        ];
        let cached = [
            "filename 2 /b/h1/a.rrd",
            "step 1 60",
            "last_update 1 1000",
            "ds[y].index 1 1",
            "ds[y].type 2 GAUGE",
            "ds[x].index 1 0",
            "ds[x].type 2 DERIVE",
        ];
        let a = FileInfo::parse(rrdtool).unwrap();
        let b = FileInfo::parse(cached).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.last_update, 1000);
        assert!(a.mismatch(&def2()).is_none());
        let mut other = def2();
        other.sources.pop();
        assert!(a.mismatch(&other).is_some());
    }

    #[test]
    fn fetch_output() {
        let lines: Vec<String> = [
            "                 x     y",
            "",
            "120: -nan 2.0000000000e+00",
            "180: 1.0e+02 nan",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = parse_rrdtool_fetch(&lines).unwrap();
        assert_eq!(s.ds_names, vec!["x", "y"]);
        assert_eq!((s.start, s.step), (120, 60));
        assert_eq!(s.rows, vec![vec![None, Some(2.0)], vec![Some(100.0), None]]);
    }

    #[test]
    fn consolidation() {
        let s = Series {
            start: 60,
            step: 60,
            ds_names: vec!["a".into()],
            rows: vec![
                vec![Some(1.0)],
                vec![Some(3.0)],
                vec![None],
                vec![Some(5.0)],
            ],
        };
        let c = consolidate(s.clone(), Cf::Average, 120);
        assert_eq!((c.start, c.step), (120, 120));
        assert_eq!(c.rows, vec![vec![Some(2.0)], vec![Some(5.0)]]);
        let m = consolidate(s, Cf::Max, 240);
        assert_eq!(m.rows, vec![vec![Some(5.0)]]);
    }

    #[test]
    fn already_written() {
        assert!(is_already_written("illegal attempt to update using time 1000000020.000000 when last update time is 1000000020.000000 (minimum one second step)"));
        assert!(is_already_written("h1/a.rrd: illegal attempt to update using time 10 when last update time is 20 (minimum one second step)"));
        assert!(!is_already_written("No such file: x"));
    }
}
