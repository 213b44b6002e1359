//! The simulator against net-snmp's own tools on loopback: walks return exactly the
//! recording, GETs of missing OIDs give the right exceptions, v1 error semantics, SET is
//! refused, SNMPv3 USM with several auth/priv protocols, wrong passwords fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{expected_walk, fixtures, tool, walk_lines};
use lookout_snmpsim::{Config, Recording, SimHandle, Simulator, V3User};

fn fixture() -> Arc<Recording> {
    let path = fixtures().join("lab/fixture.snmprec");
    Arc::new(Recording::load(&path, "lab/fixture").unwrap())
}

/// An SNMPv3 USM user: name, (auth protocol, password), (privacy protocol, password), as
/// net-snmp's tools spell the protocols.
type Usm = (
    &'static str,
    Option<(&'static str, &'static str)>,
    Option<(&'static str, &'static str)>,
);

/// The simulator's v3 users: one per auth/priv combination the walks cover.
const USERS: &[Usm] = &[
    (
        "shaaes",
        Some(("SHA", "shapassword")),
        Some(("AES", "aespassword")),
    ),
    (
        "md5des",
        Some(("MD5", "md5password")),
        Some(("DES", "despassword")),
    ),
    (
        "sha256aes256",
        Some(("SHA-256", "sha256password")),
        Some(("AES-256", "aes256password")),
    ),
    ("authonly", Some(("SHA-512", "sha512password")), None),
    ("noauth", None, None),
];

/// The simulator's `--v3-user` spec of `u`: `name[:AUTH:pass[:PRIV:pass]]`.
fn user_spec((name, auth, privacy): &Usm) -> String {
    let mut parts = vec![*name];
    for (proto, pass) in [auth, privacy].into_iter().flatten() {
        parts.extend([*proto, *pass]);
    }
    parts.join(":")
}

/// net-snmp's `-l level -u name [-a -A [-x -X]]` options for `u`.
fn usm_args((name, auth, privacy): &Usm) -> Vec<&'static str> {
    let level = match (auth, privacy) {
        (None, _) => "noAuthNoPriv",
        (Some(_), None) => "authNoPriv",
        (Some(_), Some(_)) => "authPriv",
    };
    let mut args = vec!["-l", level, "-u", name];
    if let Some((proto, pass)) = auth {
        args.extend(["-a", proto, "-A", pass]);
    }
    if let Some((proto, pass)) = privacy {
        args.extend(["-x", proto, "-X", pass]);
    }
    args
}

/// A v2c GET of sysName.0 at `host` for `community`, one try of 0.5 s, value only:
/// (succeeded, stdout, stderr).
fn get_sys_name(host: &str, community: &str) -> (bool, String, String) {
    tool(
        "snmpget",
        &[
            "-v2c",
            "-c",
            community,
            "-Oqv",
            "-t",
            "0.5",
            "-r",
            "0",
            host,
            ".1.3.6.1.2.1.1.5.0",
        ],
    )
}

fn start(recs: Vec<Arc<Recording>>, devices: Option<usize>) -> SimHandle {
    Simulator::start(Config {
        recordings: recs,
        devices,
        community: "portdev".into(),
        freeze_counters: true,
        v3_users: USERS
            .iter()
            .map(|u| V3User::parse(&user_spec(u)).unwrap())
            .collect(),
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn fixture_parses_as_written() {
    let r = fixture();
    // Skipped: a Counter32 that is not a number, a negative Gauge32.
    assert_eq!(r.stats.skipped, 2, "{:?}", r.stats);
    assert_eq!(r.stats.duplicates, 1);
    assert_eq!(r.stats.variations, 2);
    assert_eq!(r.len(), 38);
}

#[test]
fn walks_equal_the_recording() {
    let rec = fixture();
    let sim = start(vec![rec.clone()], None);
    let host = format!("127.0.0.1:{}", sim.addr(0).port());
    let want = expected_walk(&rec, false);
    for extra in [&["-Cr1"][..], &["-Cr10"], &["-Cr200"]] {
        let mut args = vec!["-v2c", "-c", "lab/fixture", "-On", "-Oe", "-t", "3"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&host, ".1"]);
        let (ok, out, err) = tool("snmpbulkwalk", &args);
        assert!(ok, "{err}");
        assert_eq!(walk_lines(&out), want, "snmpbulkwalk {extra:?}");
    }
    // v1: GETNEXT walk; Counter64 values are invisible to v1, as with net-snmp's snmpd.
    let (ok, out, err) = tool(
        "snmpwalk",
        &["-v1", "-c", "lab/fixture", "-On", "-Oe", &host, ".1"],
    );
    assert!(ok, "{err}");
    assert_eq!(walk_lines(&out), expected_walk(&rec, true));
    assert!(sim.stats().varbinds > 3 * want.len() as u64);
}

#[test]
fn get_exceptions_and_errors() {
    let sim = start(vec![fixture()], None);
    let host = format!("127.0.0.1:{}", sim.addr(0).port());
    let (ok, out, err) = tool(
        "snmpget",
        &[
            "-v2c",
            "-c",
            "lab/fixture",
            "-On",
            &host,
            ".1.3.6.1.2.1.1.5.0",
            ".1.3.6.1.2.1.1.99.0",
            ".1.3.6.1.2.1.2.2.1.2.7",
            ".1.3.6.1.2.1.1.5",
            ".1.4",
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            ".1.3.6.1.2.1.1.5.0 = STRING: \"lab-router-1\"",
            ".1.3.6.1.2.1.1.99.0 = No Such Object available on this agent at this OID",
            ".1.3.6.1.2.1.2.2.1.2.7 = No Such Instance currently exists at this OID",
            ".1.3.6.1.2.1.1.5 = No Such Instance currently exists at this OID",
            ".1.4 = No Such Object available on this agent at this OID",
        ]
    );
    // GETNEXT past the end: endOfMibView.
    let (_, out, _) = tool(
        "snmpgetnext",
        &["-v2c", "-c", "lab/fixture", "-On", &host, ".1.4"],
    );
    assert!(
        out.contains("No more variables left in this MIB View"),
        "{out}"
    );

    // v1: noSuchName with the index of the first missing varbind; Counter64 is invisible.
    let (ok, out, err) = tool(
        "snmpget",
        &[
            "-v1",
            "-c",
            "lab/fixture",
            "-On",
            &host,
            ".1.3.6.1.2.1.1.5.0",
            ".1.3.6.1.2.1.31.1.1.1.6.1",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("noSuchName") && err.contains(".1.3.6.1.2.1.31.1.1.1.6.1"),
        "{out} {err}"
    );
    let (_, out, err) = tool(
        "snmpgetnext",
        &["-v1", "-c", "lab/fixture", "-On", &host, ".1.4"],
    );
    assert!(
        err.contains("noSuchName") || out.contains("End of MIB"),
        "{out} {err}"
    );

    // SET: notWritable (v2c), readOnly (v1).
    for (version, reason) in [("-v2c", "notWritable"), ("-v1", "readOnly")] {
        let (ok, _, err) = tool(
            "snmpset",
            &[
                version,
                "-c",
                "lab/fixture",
                &host,
                ".1.3.6.1.2.1.1.5.0",
                "s",
                "x",
            ],
        );
        assert!(!ok && err.contains(reason), "{version}: {err}");
    }

    // Unknown community: no answer (a timeout), counted.
    let (ok, _, err) = get_sys_name(&host, "nope");
    assert!(!ok && err.contains("Timeout"), "{err}");
    assert!(sim.stats().unknown_community >= 1);
}

#[test]
fn port_devices_and_communities() {
    let rec = fixture();
    let other = Arc::new(Recording::parse_snmprec(
        "other/box",
        b"1.3.6.1.2.1.1.5.0|4|other-box\n",
    ));
    let sim = start(vec![rec, other], Some(3));
    assert_eq!(sim.devices(), 3);
    let get = |port: u16, community: &str| {
        let (_, out, _) = get_sys_name(&format!("127.0.0.1:{port}"), community);
        out.trim().to_string()
    };
    // Round robin: port 0 fixture, port 1 other, port 2 fixture again.
    assert_eq!(get(sim.addr(0).port(), "portdev"), "\"lab-router-1\"");
    assert_eq!(get(sim.addr(1).port(), "portdev"), "\"other-box\"");
    assert_eq!(get(sim.addr(2).port(), "portdev"), "\"lab-router-1\"");
    // Any port: community = recording path.
    assert_eq!(get(sim.addr(0).port(), "other/box"), "\"other-box\"");
}

#[test]
fn snmpv3_usm() {
    let rec = fixture();
    let sim = start(vec![rec.clone()], Some(1));
    let host = format!("127.0.0.1:{}", sim.addr(0).port());
    let want = expected_walk(&rec, false);
    for u in USERS {
        // Empty context: the port's device; context = recording path: that recording.
        for ctx in [&[][..], &["-n", "lab/fixture"][..]] {
            let mut args = vec!["-v3", "-On", "-Oe", "-t", "3"];
            args.extend(usm_args(u));
            args.extend_from_slice(ctx);
            args.extend_from_slice(&[&host, ".1"]);
            let (ok, out, err) = tool("snmpbulkwalk", &args);
            assert!(ok, "{u:?} {ctx:?}: {err}");
            assert_eq!(walk_lines(&out), want, "{u:?} {ctx:?}");
        }
    }
    // Refused, each with net-snmp's own reason (lower case), and a report counted.
    let refused: &[(Usm, &[&str], &str)] = &[
        // Wrong auth password: wrongDigest.
        (
            (
                "shaaes",
                Some(("SHA", "wrongpassword")),
                Some(("AES", "aespassword")),
            ),
            &[],
            "authentication failure",
        ),
        (
            ("nobody", Some(("SHA", "somepassword")), None),
            &[],
            "unknown user name",
        ),
        // A level the user does not have.
        (
            (
                "authonly",
                Some(("SHA-512", "sha512password")),
                Some(("AES", "aespassword")),
            ),
            &[],
            "unsupported security level",
        ),
        (("noauth", None, None), &["-n", "no/such"], "context"),
    ];
    for (u, extra, reason) in refused {
        let mut args = vec!["-v3"];
        args.extend(usm_args(u));
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-t", "2", "-r", "0", &host, ".1.3.6.1.2.1.1.5.0"]);
        let (ok, out, err) = tool("snmpget", &args);
        assert!(!ok, "{u:?} {extra:?} answered: {out}");
        assert!(
            err.to_lowercase().contains(reason),
            "{u:?} {extra:?}: {err}"
        );
    }
    assert!(sim.stats().reports >= 4);
}

#[test]
fn data_dir_with_plain_and_bz2_recordings() {
    // A data dir: the fixture as is and a .bz2 recording in a subdirectory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lab")).unwrap();
    std::fs::copy(
        fixtures().join("lab/fixture.snmprec"),
        dir.path().join("lab/fixture.snmprec"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("net/sw")).unwrap();
    let f = std::fs::File::create(dir.path().join("net/sw/packed.snmprec.bz2")).unwrap();
    let mut enc = bzip2::write::BzEncoder::new(f, bzip2::Compression::default());
    std::io::Write::write_all(&mut enc, b"1.3.6.1.2.1.1.5.0|4|packed-switch\n").unwrap();
    enc.finish().unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a recording").unwrap();

    let sim = Simulator::start(Config {
        data_dir: Some(dir.path().to_path_buf()),
        freeze_counters: true,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(sim.devices(), 2);
    let host = format!("127.0.0.1:{}", sim.addr(0).port());
    for (community, want) in [
        ("lab/fixture", "\"lab-router-1\""),
        ("net/sw/packed", "\"packed-switch\""),
    ] {
        let (ok, out, err) = tool(
            "snmpget",
            &["-v2c", "-c", community, "-Oqv", &host, ".1.3.6.1.2.1.1.5.0"],
        );
        assert!(ok, "{err}");
        assert_eq!(out.trim(), want);
    }
    // No port device without --devices: the default community is unknown here.
    let (ok, _, _) = get_sys_name(&host, "public");
    assert!(!ok);
    // An empty data dir is a clear error.
    let empty = tempfile::tempdir().unwrap();
    let e = Simulator::start(Config {
        data_dir: Some(empty.path().to_path_buf()),
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("no .snmprec files"), "{e}");
}
