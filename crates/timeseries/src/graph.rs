//! PNG graphs rendered by `rrdtool graph`, for both backends: locally it runs in `RRD_DIR`;
//! through rrdcached it reads with `--daemon` (rrdcached FLUSHes each file before serving it),
//! so the web node needs no files. Over a unix socket rrdtool resolves relative paths on the
//! local disk, so there the file's absolute path inside rrdcached's base directory is asked
//! from rrdcached (`INFO` names it) first. The argument building is sans-IO.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::format::{self, cf_name};
use crate::{Cf, TimeSeriesError};

const RRDTOOL: &str = "/usr/bin/rrdtool";
const GRAPH_TIMEOUT: Duration = Duration::from_secs(30);

/// One plotted data source.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphLine {
    /// Relative RRD path, as for `update`.
    pub path: String,
    /// Data source name in that file.
    pub ds: String,
    pub cf: Cf,
    /// Multiplier applied before plotting (8 turns octets/s into bits/s; -1 mirrors).
    pub scale: f64,
    /// `RRGGBB` or `RRGGBBAA`.
    pub color: String,
    pub legend: String,
    /// A filled area instead of a line.
    pub area: bool,
}

/// A graph of one or more lines over `start..end` (unix seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct GraphRequest {
    pub start: i64,
    pub end: i64,
    /// Canvas size in pixels (rrdtool adds axes and legend around it).
    pub width: u32,
    pub height: u32,
    pub title: String,
    pub vertical_label: String,
    pub lines: Vec<GraphLine>,
}

fn bad(message: impl Into<String>) -> TimeSeriesError {
    TimeSeriesError::Rrd {
        op: "graph",
        path: String::new(),
        message: message.into(),
    }
}

/// rrdtool's graph syntax separates fields by `:`; a literal one is `\:`.
fn escape_colon(s: &str) -> String {
    s.replace('\\', "").replace(':', "\\:")
}

fn plain_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Checks a request; each line's path must already be valid (`validate_path`).
pub(crate) fn validate(req: &GraphRequest) -> Result<(), TimeSeriesError> {
    if req.lines.is_empty() {
        return Err(bad("a graph needs at least one line"));
    }
    if req.start >= req.end {
        return Err(bad(format!(
            "start {} is not before end {}",
            req.start, req.end
        )));
    }
    if !(10..=4000).contains(&req.width) || !(10..=4000).contains(&req.height) {
        return Err(bad("width and height must be 10..=4000 pixels"));
    }
    for l in &req.lines {
        format::validate_path(&l.path)?;
        let ds_ok = !l.ds.is_empty()
            && l.ds.len() <= 19
            && l.ds.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ds_ok {
            return Err(bad(format!("bad data source name {:?}", l.ds)));
        }
        let color_ok =
            matches!(l.color.len(), 6 | 8) && l.color.chars().all(|c| c.is_ascii_hexdigit());
        if !color_ok {
            return Err(bad(format!("bad color {:?} (RRGGBB or RRGGBBAA)", l.color)));
        }
        if !l.scale.is_finite() {
            return Err(bad("scale must be a finite number"));
        }
    }
    Ok(())
}

/// `rrdtool graph -` arguments (after `graph -`); `files[i]` is where line i's file is read
/// from (relative, or absolute for a unix-socket rrdcached); `daemon` adds `--daemon`.
pub(crate) fn args(req: &GraphRequest, files: &[String], daemon: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--imgformat".into(),
        "PNG".into(),
        "--start".into(),
        req.start.to_string(),
        "--end".into(),
        req.end.to_string(),
        "--width".into(),
        req.width.to_string(),
        "--height".into(),
        req.height.to_string(),
    ];
    if !req.title.is_empty() {
        a.push("--title".into());
        a.push(plain_text(&req.title));
    }
    if !req.vertical_label.is_empty() {
        a.push("--vertical-label".into());
        a.push(plain_text(&req.vertical_label));
    }
    if let Some(d) = daemon {
        a.push("--daemon".into());
        a.push(d.to_string());
    }
    for (i, (l, file)) in req.lines.iter().zip(files).enumerate() {
        a.push(format!(
            "DEF:d{i}={}:{}:{}",
            escape_colon(file),
            l.ds,
            cf_name(l.cf)
        ));
        a.push(format!("CDEF:s{i}=d{i},{},*", l.scale));
        let kind = if l.area { "AREA" } else { "LINE1" };
        a.push(format!(
            "{kind}:s{i}#{}:{}",
            l.color,
            escape_colon(&plain_text(&l.legend))
        ));
    }
    a
}

/// Runs `rrdtool graph -` (async; killed when the timeout passes) and returns the PNG.
pub(crate) async fn render(
    cwd: Option<&Path>,
    args: &[String],
) -> Result<Vec<u8>, TimeSeriesError> {
    if !Path::new(RRDTOOL).exists() {
        return Err(bad(format!(
            "{RRDTOOL} not found: install the Debian package `rrdtool`"
        )));
    }
    let mut cmd = tokio::process::Command::new(RRDTOOL);
    cmd.arg("graph")
        .arg("-")
        .args(args)
        .env_remove("RRDCACHED_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = tokio::time::timeout(GRAPH_TIMEOUT, cmd.output())
        .await
        .map_err(|_| bad("rrdtool graph timed out"))?
        .map_err(|e| bad(format!("running rrdtool graph: {e}")))?;
    let png_magic: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !out.status.success() || !out.stdout.starts_with(png_magic) {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(bad(err.trim().trim_start_matches("ERROR: ").to_string()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> GraphRequest {
        GraphRequest {
            start: 1000,
            end: 2000,
            width: 400,
            height: 100,
            title: "Traffic".into(),
            vertical_label: "bits/s".into(),
            lines: vec![GraphLine {
                path: "2001:db8::1/port-id1.rrd".into(),
                ds: "INOCTETS".into(),
                cf: Cf::Average,
                scale: 8.0,
                color: "00ff00".into(),
                legend: "In: a".into(),
                area: true,
            }],
        }
    }

    #[test]
    fn graph_args_escape_colons() {
        let r = req();
        let a = args(
            &r,
            &["2001:db8::1/port-id1.rrd".to_string()],
            Some("127.0.0.1:1"),
        );
        assert!(
            a.contains(&"DEF:d0=2001\\:db8\\:\\:1/port-id1.rrd:INOCTETS:AVERAGE".to_string()),
            "{a:?}"
        );
        assert!(a.contains(&"CDEF:s0=d0,8,*".to_string()));
        assert!(a.contains(&"AREA:s0#00ff00:In\\: a".to_string()), "{a:?}");
        assert!(a
            .windows(2)
            .any(|w| w[0] == "--daemon" && w[1] == "127.0.0.1:1"));
    }

    #[test]
    fn graph_validation() {
        assert!(validate(&req()).is_ok());
        let mut r = req();
        r.lines[0].color = "green".into();
        assert!(validate(&r).is_err());
        let mut r = req();
        r.lines[0].ds = "IN:OCTETS".into();
        assert!(validate(&r).is_err());
        let mut r = req();
        r.lines[0].path = "../x.rrd".into();
        assert!(matches!(validate(&r), Err(TimeSeriesError::BadPath(_))));
        let mut r = req();
        r.end = r.start;
        assert!(validate(&r).is_err());
    }
}
