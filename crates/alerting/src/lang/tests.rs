//! Compilation (resolution, types, errors) and evaluation of the rule language.

use super::CompiledExpr;
use crate::defaults::default_rules;
use crate::lang::macros::MACROS;
use crate::snapshot::tests::{device, port, t};
use crate::snapshot::{device_snapshot, IcmpFacts, Kind, Snapshot};

fn compile(src: &str) -> CompiledExpr {
    CompiledExpr::compile(src).unwrap_or_else(|e| panic!("{}", e.render(src)))
}

fn error(src: &str) -> String {
    match CompiledExpr::compile(src) {
        Ok(_) => panic!("{src} compiled"),
        Err(e) => e.to_string(),
    }
}

/// Whether `src` holds for the device (or for any of its ports) of the test snapshot.
fn holds(src: &str, snap: &Snapshot<'_>) -> bool {
    let e = compile(src);
    let c = snap.clock();
    match e.entity_kind() {
        Some(k) => (0..snap.rows(k)).any(|r| e.test(snap, r, &c)),
        None => e.test(snap, 0, &c),
    }
}

#[test]
fn every_macro_and_default_rule_compiles() {
    for (name, _, _) in MACROS {
        // Value macros (port_usage_perc, past_5m) are numbers: compare them.
        let as_bool = CompiledExpr::compile(&format!("macros.{name}"));
        let as_num = CompiledExpr::compile(&format!("macros.{name} > 0"));
        assert!(as_bool.is_ok() || as_num.is_ok(), "macro {name}");
    }
    for r in default_rules() {
        let e = compile(r.expr);
        assert_eq!(
            e.uses_clock(),
            r.name == "Device not polled",
            "{}: time-based",
            r.name
        );
    }
    let names: Vec<_> = default_rules().iter().map(|r| r.name).collect();
    let mut dedup = names.clone();
    dedup.dedup();
    assert_eq!(names, dedup);
}

#[test]
fn fields_resolve_with_librenms_spellings() {
    let e = compile(
        r#"%devices.status = "up" && ports.IFOPERSTATUS == 'down' && %macros.device_up = 1"#,
    );
    assert_eq!(e.entity_kind(), Some(Kind::Ports));
    assert_eq!(
        e.field_names(),
        ["device.status", "ports.ifOperStatus", "device.disabled"]
    );
    assert!(!e.uses_clock());
    // A quoted number against a number field, as LibreNMS writes them.
    assert_eq!(
        compile(r#"storage.usage_perc >= "90""#).entity_kind(),
        Some(Kind::Storage)
    );
    assert!(compile("device.last_polled < past_10m").uses_clock());
    assert!(compile("device.last_polled < macros.past_2h").uses_clock());
    assert_eq!(compile("device.uptime < 300").entity_kind(), None);
}

#[test]
fn refusals_say_where_and_what_is_known() {
    let e = error(r#"ports.ifOperStatu == "down""#);
    assert!(
        e.starts_with(
            "column 1: unknown field `ports.ifOperStatu`; known: ports.port_id, ports.ifIndex"
        ),
        "{e}"
    );
    assert!(e.contains("ports.ifOperStatus"), "{e}");
    let e = error("device.uptime < 300 && portz.x == 1");
    assert!(e.starts_with("column 24: unknown entity `portz`"), "{e}");
    assert!(
        e.contains("known: device, icmp, ports, processors, mempools, storage, macros"),
        "{e}"
    );
    let e = error("macros.nope");
    assert!(
        e.starts_with("column 1: unknown macro `nope`; known: macros.device,"),
        "{e}"
    );
    let e = error("device_dwn");
    assert!(e.contains("unknown name `device_dwn`"), "{e}");
    assert_eq!(
        error(r#"device.uptime == "up""#),
        "column 15: cannot compare `device.uptime` (number) with a string"
    );
    assert_eq!(
        error(r#"device.os > "a""#),
        "column 11: `>` needs numbers, this is `device.os` (string)"
    );
    assert_eq!(
        error("device.uptime ~ '^1'"),
        "column 1: `~` needs a string, this is `device.uptime` (number)"
    );
    assert_eq!(
        error("device.os ~ device.hostname"),
        "column 13: `~` needs a quoted regular expression on its right"
    );
    assert!(error("device.os ~ '('").starts_with("column 13: bad regular expression"));
    assert_eq!(
        error("device.uptime"),
        "column 1: a rule must be a condition (true or false), this is a number: compare it, e.g. `> 90`"
    );
    assert_eq!(
        error("device.uptime < null"),
        "column 15: `<` with null: use `== null` or `!= null`"
    );
    assert_eq!(
        error("device.disabled && device.uptime"),
        "column 20: `&&` needs a boolean, this is `device.uptime` (number)"
    );
    let e = error("ports.ifName == 'x' || storage.storage_perc > 1");
    assert!(
        e.starts_with("column 24: a rule looks at one kind of entity"),
        "{e}"
    );
    // Macros over entities count too.
    assert!(
        error("macros.port_down && storage.storage_perc > 1").contains("names ports and storage")
    );
}

#[test]
fn evaluation_semantics() {
    let mut d = device();
    d.uptime = Some(120);
    let mut p2 = port(2, "down", 125_000_000.0, 1_000_000_000);
    p2.if_alias = None;
    let ports = [port(1, "up", 0.0, 1_000_000_000), p2];
    let icmp = Some(IcmpFacts {
        loss_pct: 0.0,
        avg_ms: Some(12.5),
    });
    let snap = device_snapshot(&d, &ports, &[], &[], &[], icmp, t(600), 300);
    let cases = [
        ("device.uptime < 300", true),
        ("device.uptime < 300 && !macros.device_up", false),
        ("not (device.uptime >= 300) and device_up", true),
        (r#"device.os == "IOS""#, true),
        (r#"device.os != "ios""#, false),
        (r#"device.hostname ~ "\.example$""#, true),
        (r#"device.hostname !~ "^SW1""#, false),
        (r#"device.hostname ~ "(?-i)^SW1""#, false),
        ("device.serial == null", true),
        ("device.serial != null", false),
        ("device.serial ~ 'x'", false),
        ("device.serial !~ 'x'", true),
        ("device.serial != 'x'", true),
        ("device.last_polled_age == 600", true),
        ("device.last_polled_age > 3 * device.poll_interval", false),
        ("device.last_polled < past_5m", true),
        ("device.last_polled < macros.past_15m", false),
        ("icmp.avg_ms > 10 && icmp.loss_pct == 0", true),
        ("-icmp.avg_ms < -12", true),
        ("(1 + 2) * 3 == 9 && 10 / 4 == 2.5", true),
        ("device.uptime / 0 > 1 || device.uptime / 0 <= 1", false),
        ("ports.usage_perc >= 100 && macros.port_down", true),
        (r#"ports.ifAlias == null && ports.ifName == "Gi0/2""#, true),
        ("macros.port_usage_perc >= 80", true),
        ("macros.port_up && ports.in_bps > 0", false),
        ("true || device.uptime > 0", true),
        ("false", false),
    ];
    for (src, want) in cases {
        assert_eq!(holds(src, &snap), want, "{src}");
    }
    // A missing ICMP fact is null: comparisons with it do not hold.
    let snap = device_snapshot(&d, &ports, &[], &[], &[], None, t(600), 300);
    assert!(!holds("icmp.avg_ms > 10", &snap));
    assert!(!holds("icmp.avg_ms <= 10", &snap));
    assert!(holds("icmp.avg_ms == null", &snap));
}

#[test]
fn the_documented_examples_compile() {
    for src in [
        "macros.device_down",
        "device.uptime < 300 && macros.device_up",
        r#"ports.ifOperStatus == "down" && ports.ifAdminStatus == "up""#,
        r#"storage.usage_perc > 90 && storage.storage_descr !~ "^/(run|dev)""#,
        "device.last_polled_age > 3 * device.poll_interval",
        "%macros.device_down = 1",
        "device.last_polled < macros.past_15m",
    ] {
        compile(src);
    }
    let e = CompiledExpr::compile(r#"ports.ifOperStatu == "down""#)
        .err()
        .map(|e| e.render(r#"ports.ifOperStatu == "down""#))
        .unwrap_or_default();
    assert!(
        e.starts_with("ports.ifOperStatu == \"down\"\n^\ncolumn 1: unknown field"),
        "{e}"
    );
}
