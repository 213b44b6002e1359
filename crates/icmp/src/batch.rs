//! One fping run over many hosts, read without I/O: which summary line belongs to which
//! target, and what fping's exit status means for the targets without one.
//!
//! fping prints one line per target in the order the targets were given, the name
//! padded to the longest one: `127.0.0.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = ...` with
//! `-c`, `127.0.0.1 : 0.05 - 0.07` with `-C` (a `-` per lost probe). The same target may be
//! given twice (two devices with one address); its lines are then taken in order. With
//! `-q` a name that does not resolve prints nothing at all; its only trace is exit status 2.
//! Other lines (warnings, ICMP errors of a run without `-q`) are not results and are skipped.

use std::collections::{HashMap, VecDeque};

use crate::{parse_fping_summary, IcmpError, PingResult};

/// fping's exit status (`None`: killed by a signal) as far as a batch is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// 0: every target answered; 1: some did not (normal, their lines say 0 received).
    Finished,
    /// 2: some name did not resolve (those targets have no line).
    SomeUnresolved,
    /// 3 (bad arguments), 4 (a system call failed), any other code, or a signal: the run
    /// as a whole failed; which target caused it is unknown.
    Failed,
}

impl RunStatus {
    pub fn from_code(code: Option<i32>) -> RunStatus {
        match code {
            Some(0 | 1) => RunStatus::Finished,
            Some(2) => RunStatus::SomeUnresolved,
            _ => RunStatus::Failed,
        }
    }
}

/// The result lines of one fping run, matched to `targets` by position: `None` for a
/// target fping printed no result line for.
pub fn parse_batch_output(
    text: &str,
    targets: &[&str],
) -> Vec<Option<Result<PingResult, IcmpError>>> {
    let mut slots: HashMap<&str, VecDeque<usize>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        slots.entry(*t).or_default().push_back(i);
    }
    let mut out: Vec<Option<Result<PingResult, IcmpError>>> = vec![None; targets.len()];
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(" : ") else {
            continue;
        };
        let Some(queue) = slots.get_mut(name.trim()) else {
            continue;
        };
        let Some(result) = parse_result_line(rest) else {
            continue;
        };
        if let Some(i) = queue.pop_front() {
            out[i] = Some(result);
        }
    }
    out
}

/// The part after `name : ` of a result line, `None` when it is no result line at all.
/// A line that starts like a `-c` summary but does not parse is a result: an error.
fn parse_result_line(rest: &str) -> Option<Result<PingResult, IcmpError>> {
    let rest = rest.trim();
    if rest.starts_with("xmt/rcv/%loss") {
        return Some(parse_fping_summary(rest));
    }
    parse_vcount(rest).map(Ok)
}

/// `-C` form: one field per probe, the round-trip time in ms or `-` when lost.
fn parse_vcount(rest: &str) -> Option<PingResult> {
    let mut transmitted = 0u32;
    let mut times = Vec::new();
    for field in rest.split_whitespace() {
        transmitted += 1;
        if field != "-" {
            let ms: f64 = field.parse().ok()?;
            if !ms.is_finite() || ms < 0.0 {
                return None;
            }
            times.push(ms);
        }
    }
    if transmitted == 0 {
        return None;
    }
    let received = u32::try_from(times.len()).ok()?;
    let (min_ms, avg_ms, max_ms) = if times.is_empty() {
        (None, None, None)
    } else {
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = times.iter().sum::<f64>() / times.len() as f64;
        (Some(min), Some(avg), Some(max))
    };
    Some(PingResult {
        transmitted,
        received,
        min_ms,
        avg_ms,
        max_ms,
    })
}

/// Every target's answer from one run, or `None` when the run failed as a whole
/// ([`RunStatus::Failed`]: the caller splits the batch to find the target that broke it).
/// `hosts[i]` is the name asked for (what an error names), `targets[i]` what fping was given.
pub fn batch_results(
    text: &str,
    status: RunStatus,
    hosts: &[&str],
    targets: &[&str],
) -> Option<Vec<Result<PingResult, IcmpError>>> {
    if status == RunStatus::Failed {
        return None;
    }
    let parsed = parse_batch_output(text, targets);
    Some(
        parsed
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let host = hosts.get(i).or(targets.get(i)).copied().unwrap_or("");
                r.unwrap_or_else(|| match status {
                    RunStatus::SomeUnresolved => Err(IcmpError::Resolve(host.to_string())),
                    _ => Err(IcmpError::Parse(format!(
                        "no result line for {host} in fping's output"
                    ))),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Real output of `fping -q -c 3 127.0.0.1 bad.invalid 127.0.0.1 ::1 fe80::1`
    /// (fping 5.1; the unresolvable name printed nothing).
    const MIXED: &str = "127.0.0.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.050/0.055/0.059\n\
127.0.0.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.035/0.043/0.051\n\
::1       : xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.046/0.053/0.060\n\
fe80::1   : xmt/rcv/%loss = 3/0/100%\n";

    #[test]
    fn matches_lines_to_targets_with_duplicates_ipv6_and_unresolvable() {
        let targets = ["127.0.0.1", "bad.invalid", "127.0.0.1", "::1", "fe80::1"];
        let r = batch_results(MIXED, RunStatus::SomeUnresolved, &targets, &targets).unwrap();
        assert_eq!(r.len(), 5);
        let first = r[0].as_ref().unwrap();
        let second = r[2].as_ref().unwrap();
        // Duplicates get their own line each, in order.
        assert_eq!(first.avg_ms, Some(0.055));
        assert_eq!(second.avg_ms, Some(0.043));
        assert!(matches!(&r[1], Err(IcmpError::Resolve(h)) if h == "bad.invalid"));
        assert_eq!(r[3].as_ref().unwrap().received, 3);
        let lost = r[4].as_ref().unwrap();
        assert_eq!((lost.transmitted, lost.received, lost.avg_ms), (3, 0, None));
    }

    #[test]
    fn vcount_lines_with_lost_probes() {
        let text = "127.0.0.1 : 0.016 - 0.042\n10.0.0.9  : - - -\n::1       : 0.061 0.039 0.049\n";
        let targets = ["127.0.0.1", "10.0.0.9", "::1"];
        let r = parse_batch_output(text, &targets);
        let a = r[0].clone().unwrap().unwrap();
        assert_eq!((a.transmitted, a.received), (3, 2));
        assert_eq!((a.min_ms, a.max_ms), (Some(0.016), Some(0.042)));
        assert!((a.avg_ms.unwrap() - 0.029).abs() < 1e-9);
        let b = r[1].clone().unwrap().unwrap();
        assert_eq!((b.transmitted, b.received, b.min_ms), (3, 0, None));
        assert!(!b.is_up());
        assert_eq!(b.loss_percent(), 100.0);
        assert_eq!(r[2].clone().unwrap().unwrap().received, 3);
    }

    #[test]
    fn skips_lines_that_are_not_results() {
        let text = "ICMP Host Unreachable from 127.0.0.1 for ICMP Echo sent to 127.0.0.9\n\
127.0.0.1 : duplicate for [0], 64 bytes, 0.10 ms\n\
other.host : xmt/rcv/%loss = 1/1/0%, min/avg/max = 1/1/1\n\
127.0.0.1 : xmt/rcv/%loss = 1/1/0%, min/avg/max = 0.1/0.2/0.3\n";
        let r = parse_batch_output(text, &["127.0.0.1"]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].clone().unwrap().unwrap().avg_ms, Some(0.2));
    }

    #[test]
    fn broken_summary_is_an_error_for_its_target_only() {
        let text = "a : xmt/rcv/%loss = x/y/z%\nb : xmt/rcv/%loss = 2/2/0%, min/avg/max = 1/2/3\n";
        let r = batch_results(text, RunStatus::Finished, &["a", "b"], &["a", "b"]).unwrap();
        assert!(matches!(r[0], Err(IcmpError::Parse(_))));
        assert_eq!(r[1].as_ref().unwrap().max_ms, Some(3.0));
    }

    #[test]
    fn missing_line_names_the_host_not_the_address() {
        let r = batch_results("", RunStatus::Finished, &["router1"], &["192.0.2.1"]).unwrap();
        assert!(matches!(&r[0], Err(IcmpError::Parse(m)) if m.contains("router1")));
        let r = batch_results("", RunStatus::SomeUnresolved, &["router1"], &["192.0.2.1"]).unwrap();
        assert!(matches!(&r[0], Err(IcmpError::Resolve(h)) if h == "router1"));
    }

    #[test]
    fn exit_status_meanings() {
        assert_eq!(RunStatus::from_code(Some(0)), RunStatus::Finished);
        assert_eq!(RunStatus::from_code(Some(1)), RunStatus::Finished);
        assert_eq!(RunStatus::from_code(Some(2)), RunStatus::SomeUnresolved);
        assert_eq!(RunStatus::from_code(Some(3)), RunStatus::Failed);
        assert_eq!(RunStatus::from_code(Some(4)), RunStatus::Failed);
        assert_eq!(RunStatus::from_code(None), RunStatus::Failed);
        // A failed run yields nothing even when some lines came out: the batch is split.
        assert!(batch_results(MIXED, RunStatus::Failed, &["::1"], &["::1"]).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            " : ",
            "::1 : ",
            "::1 : - x -",
            "::1 : NaN",
            "::1 : -1.0",
            "::1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = 1/2",
            "\u{0} : \u{0}",
        ] {
            let r = parse_batch_output(text, &["::1"]);
            assert_eq!(r.len(), 1);
            assert!(!matches!(r[0], Some(Ok(_))), "{text:?} gave a result");
        }
    }
}
