//! Shared test helpers: net-snmp tools, the snmpsim-data venv, fixtures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lookout_snmpsim::{Clock, Recording};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// snmpsim-data's recordings directory: from `LOOKOUT_SNMPSIM_VENV`, else the shared venv
/// that `scripts/snmpsim-venv.sh` makes (once, locked) under the target dir. `None` (with a
/// loud message) when `LOOKOUT_TEST_SNMPSIM=0`.
pub fn snmpsim_data() -> Option<PathBuf> {
    if std::env::var("LOOKOUT_TEST_SNMPSIM").as_deref() == Ok("0") {
        eprintln!("LOOKOUT_TEST_SNMPSIM=0: skipping the snmpsim-data recordings");
        return None;
    }
    let venv = match std::env::var_os("LOOKOUT_SNMPSIM_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            let venv = target_dir().join("snmpsim-venv");
            let out = Command::new("bash")
                .arg(repo_root().join("scripts/snmpsim-venv.sh"))
                .arg(&venv)
                .output()
                .expect("run scripts/snmpsim-venv.sh");
            assert!(
                out.status.success(),
                "scripts/snmpsim-venv.sh failed (needs python3-venv and PyPI access): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            venv
        }
    };
    let lib = venv.join("lib");
    for e in std::fs::read_dir(&lib).expect("venv lib dir") {
        let d = e.unwrap().path().join("site-packages/snmpsim_data/data");
        if d.is_dir() {
            return Some(d);
        }
    }
    panic!("no snmpsim_data/data in {}", lib.display());
}

/// Runs a net-snmp tool (no MIBs loaded) and returns (success, stdout, stderr).
pub fn tool(bin: &str, args: &[&str]) -> (bool, String, String) {
    let path = format!("/usr/bin/{bin}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install the Debian package `snmp`"
    );
    let out = Command::new(&path)
        .args(args)
        .env("MIBS", "")
        .env("MIBDIRS", "")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `snmpbulkwalk -On -Oe` prints for a recording with frozen counters, in order
/// (`v1`: without the Counter64 values v1 cannot carry).
pub fn expected_walk(rec: &Recording, v1: bool) -> Vec<String> {
    (0..rec.len())
        .filter(|&i| !v1 || rec.tag(i) != 0x46)
        .map(|i| {
            let o: Vec<String> = rec.oid(i).iter().map(|n| n.to_string()).collect();
            format!(
                ".{} = {}",
                o.join("."),
                rec.value(i, Clock { elapsed_ms: 0 })
            )
        })
        .collect()
}

/// Output lines of a walk, without net-snmp's "End of MIB" trailer lines. Values that span
/// lines (strings with newlines) are joined back.
pub fn walk_lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    // Split on \n only: values may hold \r\n, which lines() would eat.
    for l in out.strip_suffix('\n').unwrap_or(out).split('\n') {
        if l == "End of MIB" {
            continue;
        }
        if l.starts_with('.') {
            v.push(l.to_string());
        } else if let Some(last) = v.last_mut() {
            last.push('\n');
            last.push_str(l);
        }
    }
    v.retain(|l| {
        !l.ends_with(
            "= No more variables left in this MIB View (It is past the end of the MIB tree)",
        )
    });
    v
}

/// Asserts two listings are equal, naming the first difference (the lists can be long).
pub fn assert_same(a: &[String], b: &[String], what: &str) {
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!(
            "{what}: line {i} differs:\n  {}\n  {}\n(lengths {} and {})",
            a[i],
            b[i],
            a.len(),
            b.len()
        );
    }
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
}
