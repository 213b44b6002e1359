//! OS detection from sysObjectID and sysDescr, driven by a rule table.
//!
//! Rules are data (`os_rules.txt`, compiled in), one per line, first match wins:
//! `os  sysObjectID-prefix|-  sysDescr-substring|-` (tab or spaces separated; the substring
//! may contain spaces when it is the last field). OS identifiers are LibreNMS's, so API
//! consumers and users' habits carry over. Adding an OS is adding a line.

/// The compiled-in rule table.
const RULES: &str = include_str!("os_rules.txt");

/// One detection rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsRule {
    pub os: String,
    /// Numeric OID prefix without leading dot; matched on whole sub-identifiers.
    pub sys_object_id: Option<String>,
    /// Case-insensitive substring of sysDescr.
    pub sys_descr: Option<String>,
}

impl OsRule {
    fn matches(&self, sys_object_id: &str, sys_descr: &str) -> bool {
        let oid_ok = self.sys_object_id.as_deref().is_none_or(|p| {
            let oid = sys_object_id.trim_start_matches('.');
            oid == p
                || oid
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        let descr_ok = self.sys_descr.as_deref().is_none_or(|d| {
            sys_descr
                .to_ascii_lowercase()
                .contains(&d.to_ascii_lowercase())
        });
        oid_ok && descr_ok
    }
}

/// Parses a rule table; malformed lines are reported with their line number.
pub fn parse_rules(text: &str) -> Result<Vec<OsRule>, String> {
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let os = fields.next().unwrap_or_default().to_string();
        let oid = fields.next().unwrap_or("-");
        // The sysDescr substring is the rest of the line and may contain spaces.
        let rest: Vec<&str> = fields.collect();
        let descr = if rest.is_empty() {
            "-".to_string()
        } else {
            rest.join(" ")
        };
        let descr = descr.as_str();
        if os.is_empty() || (oid == "-" && descr == "-") {
            return Err(format!(
                "os rule line {}: needs an OS and a sysObjectID or sysDescr",
                n + 1
            ));
        }
        let field = |s: &str| (s != "-" && !s.is_empty()).then(|| s.to_string());
        rules.push(OsRule {
            os,
            sys_object_id: field(oid),
            sys_descr: field(descr),
        });
    }
    Ok(rules)
}

/// Detects the OS of a device; `generic` when no rule matches.
pub fn detect_os(sys_object_id: &str, sys_descr: &str) -> String {
    // The table is compiled in and covered by a test, so it always parses.
    let rules = parse_rules(RULES).unwrap_or_default();
    rules
        .iter()
        .find(|r| r.matches(sys_object_id, sys_descr))
        .map(|r| r.os.clone())
        .unwrap_or_else(|| "generic".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_parses() {
        assert!(parse_rules(RULES).unwrap().len() >= 10);
        assert!(parse_rules("linux").is_err());
    }

    #[test]
    fn detects_common_systems() {
        let cases = [
            ("1.3.6.1.4.1.8072.3.2.10", "Linux probe 6.1.0-18-amd64 #1 SMP", "linux"),
            ("1.3.6.1.4.1.9.1.1208", "Cisco IOS Software, C3750E Software (C3750E-UNIVERSALK9-M), Version 15.0(2)SE", "ios"),
            ("1.3.6.1.4.1.9.1.2494", "Cisco IOS Software [Fuji], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 16.9.4", "iosxe"),
            ("1.3.6.1.4.1.9.12.3.1.3.1084", "Cisco NX-OS(tm) n5000, Software (n5000-uk9)", "nxos"),
            ("1.3.6.1.4.1.2636.1.1.1.2.25", "Juniper Networks, Inc. mx960 internet router, kernel JUNOS 13.3R6", "junos"),
            ("1.3.6.1.4.1.30065.1.3011.7150.3282.64", "Arista Networks EOS version 4.14.2F", "arista_eos"),
            ("1.3.6.1.4.1.14988.1", "RouterOS CCR1036-12G-4S", "routeros"),
            ("1.3.6.1.4.1.11.2.3.7.11.87", "HP J9280A ProCurve Switch 2510G-48", "procurve"),
            ("1.3.6.1.4.1.311.1.1.3.1.2", "Hardware: Intel64 Family 6 - Software: Windows Version 6.3", "windows"),
            ("1.3.6.1.4.1.8072.3.2.8", "FreeBSD fw1 13.2-RELEASE", "freebsd"),
            ("1.3.6.1.4.1.99999.1", "Some box", "generic"),
        ];
        for (oid, descr, os) in cases {
            assert_eq!(detect_os(oid, descr), os, "{oid} {descr}");
        }
    }

    #[test]
    fn oid_prefix_matches_whole_subids() {
        let r = OsRule {
            os: "x".into(),
            sys_object_id: Some("1.3.6.1.4.1.9".into()),
            sys_descr: None,
        };
        assert!(r.matches("1.3.6.1.4.1.9.1.5", ""));
        assert!(r.matches(".1.3.6.1.4.1.9", ""));
        assert!(!r.matches("1.3.6.1.4.1.99.1", ""));
    }
}
