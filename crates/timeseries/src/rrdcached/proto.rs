//! Sans-IO rrdcached text protocol: encodes commands and decodes replies. Every reply starts
//! with a status line `<n> <message>`: negative n is an error, n >= 0 announces n more lines.
//! BATCH replies list failed commands as `<1-based index> <message>` lines.

use crate::format::{self, FileInfo};
use crate::{Cf, Rra, RrdDef, Series};

/// One complete reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Negative for errors.
    pub status: i64,
    pub message: String,
    pub lines: Vec<String>,
}

impl Reply {
    pub(crate) fn is_err(&self) -> bool {
        self.status < 0
    }
}

/// Feeds lines (without the trailing newline) until a reply is complete.
#[derive(Debug, Default)]
pub(crate) struct ReplyDecoder {
    head: Option<(i64, String)>,
    lines: Vec<String>,
}

impl ReplyDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Returns the reply once its status line and announced lines have arrived.
    pub(crate) fn push_line(&mut self, line: &str) -> Result<Option<Reply>, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        match &self.head {
            None => {
                let (n, msg) = line.split_once(' ').unwrap_or((line, ""));
                let status: i64 = n
                    .parse()
                    .map_err(|_| format!("bad rrdcached status line {line:?}"))?;
                self.head = Some((status, msg.to_string()));
            }
            Some(_) => self.lines.push(line.to_string()),
        }
        match &self.head {
            Some((status, _)) if *status < 0 || self.lines.len() as i64 >= *status => {
                let (status, message) = self.head.take().unwrap_or_default();
                Ok(Some(Reply {
                    status,
                    message,
                    lines: std::mem::take(&mut self.lines),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// rrdcached's default TCP port.
pub(crate) const DEFAULT_PORT: u16 = 42217;

/// Spells an `RRDCACHED` setting as the client connects to it: `unix:/path` (a bare `/path`
/// is a unix socket too, as for rrdtool), `host:port`, or `host` on the default port.
pub(crate) fn normalize_address(address: &str) -> String {
    let a = address.trim();
    if a.starts_with('/') {
        return format!("unix:{a}");
    }
    if a.starts_with("unix:") {
        return a.to_string();
    }
    let has_port = match a.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => a.contains(':'),
    };
    if has_port {
        a.to_string()
    } else {
        format!("{a}:{DEFAULT_PORT}")
    }
}

/// A file-name-safe form of an address (spill journal subdirectory).
pub(crate) fn address_dir_name(address: &str) -> String {
    address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn ping() -> String {
    "PING\n".to_string()
}

pub(crate) fn info(path: &str) -> String {
    format!("INFO {path}\n")
}

pub(crate) fn flush(path: &str) -> String {
    format!("FLUSH {path}\n")
}

/// `CREATE` with `-O` (never overwrite: two pollers may race to create the same file).
pub(crate) fn create(path: &str, def: &RrdDef, archives: Option<&[Rra]>, begin: i64) -> String {
    format!(
        "CREATE {path} -b {begin} -s {} -O {}\n",
        def.step_secs,
        format::ds_rra_args(def, archives)
    )
}

/// One UPDATE command line (also used inside BATCH); `line` is `at:v1:v2...`.
pub(crate) fn update(path: &str, line: &str) -> String {
    format!("UPDATE {path} {line}\n")
}

pub(crate) fn fetch(path: &str, cf: Cf, start: i64, end: i64) -> String {
    format!("FETCH {path} {} {start} {end}\n", format::cf_name(cf))
}

/// The whole BATCH exchange as one write: `BATCH`, the commands, `.`. The server answers
/// with a "go ahead" reply, then one reply whose lines are the failed commands.
pub(crate) fn batch<'a>(commands: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("BATCH\n");
    for c in commands {
        out.push_str(c);
        if !c.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str(".\n");
    out
}

/// Failed commands of a BATCH: (0-based index, message).
pub(crate) fn batch_errors(reply: &Reply) -> Result<Vec<(usize, String)>, String> {
    if reply.is_err() {
        return Err(format!("batch failed: {}", reply.message));
    }
    reply
        .lines
        .iter()
        .map(|l| {
            let (n, msg) = l.split_once(' ').unwrap_or((l, ""));
            let n: usize = n
                .parse()
                .map_err(|_| format!("bad batch error line {l:?}"))?;
            if n == 0 {
                return Err(format!("bad batch error index in {l:?}"));
            }
            Ok((n - 1, msg.to_string()))
        })
        .collect()
}

/// Parses a FETCH reply: `FlushVersion`, `Start`, `End`, `Step`, `DSCount`, `DSName` headers,
/// then `timestamp: v1 v2 ...` rows.
pub(crate) fn parse_fetch(reply: &Reply) -> Result<Series, String> {
    if reply.is_err() {
        return Err(reply.message.clone());
    }
    let mut step = 0u64;
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in &reply.lines {
        if let Some(v) = line.strip_prefix("Step: ") {
            step = v.trim().parse().map_err(|_| format!("bad step {v:?}"))?;
        } else if let Some(v) = line.strip_prefix("DSName: ") {
            names = v.split_whitespace().map(str::to_string).collect();
        } else if line.starts_with(|c: char| c.is_ascii_digit()) {
            rows.push(format::parse_fetch_row(line, names.len())?);
        }
    }
    if step == 0 {
        return Err("fetch reply without a step".into());
    }
    format::series_from_rows(names, step, rows)
}

pub(crate) fn parse_info(reply: &Reply) -> Result<FileInfo, String> {
    if reply.is_err() {
        return Err(reply.message.clone());
    }
    FileInfo::parse(reply.lines.iter().map(String::as_str))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Vec<Reply> {
        let mut d = ReplyDecoder::new();
        text.lines()
            .filter_map(|l| d.push_line(l).unwrap())
            .collect()
    }

    #[test]
    fn status_and_lines() {
        let r = decode("0 PONG\n-1 No such file: /b/x.rrd\n2 updates pending\na\nb\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].message, "PONG");
        assert!(r[1].is_err());
        assert_eq!(r[2].lines, vec!["a", "b"]);
        assert!(ReplyDecoder::new().push_line("garbage").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(normalize_address("127.0.0.1:42217"), "127.0.0.1:42217");
        assert_eq!(normalize_address("localhost"), "localhost:42217");
        assert_eq!(normalize_address("[::1]"), "[::1]:42217");
        assert_eq!(normalize_address("[::1]:1"), "[::1]:1");
        assert_eq!(
            normalize_address("/run/rrdcached.sock"),
            "unix:/run/rrdcached.sock"
        );
        assert_eq!(normalize_address("unix:/run/x.sock"), "unix:/run/x.sock");
        assert_eq!(address_dir_name("unix:/run/x.sock"), "unix__run_x.sock");
        assert_eq!(address_dir_name("127.0.0.1:42217"), "127.0.0.1_42217");
    }

    #[test]
    fn batch_reply() {
        let r = decode("2 errors\n1 illegal attempt\n7 Unknown command: BOGUS\n");
        assert_eq!(
            batch_errors(&r[0]).unwrap(),
            vec![
                (0, "illegal attempt".to_string()),
                (6, "Unknown command: BOGUS".to_string())
            ]
        );
        assert_eq!(batch(["UPDATE a.rrd 1:2"]), "BATCH\nUPDATE a.rrd 1:2\n.\n");
    }

    #[test]
    fn fetch_reply() {
        let r = decode(
            "5 Success\nFlushVersion: 1\nStep: 60\nDSName: x y\n1020: -nan 2.0000000000e+00\n1080: 1.0e+02 -nan\n",
        );
        let s = parse_fetch(&r[0]).unwrap();
        assert_eq!((s.start, s.step), (1020, 60));
        assert_eq!(s.rows, vec![vec![None, Some(2.0)], vec![Some(100.0), None]]);
    }
}
