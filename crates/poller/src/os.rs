//! OS detection from sysObjectID and sysDescr, and hardware/version/serial extraction from
//! sysDescr, driven by a rule table.
//!
//! Rules are data (`os_rules.txt`, compiled in; the format is described at its top):
//! detection lines `os  sysObjectID-prefix|-  sysDescr-substring|-` (first match wins) and
//! extraction lines `@hardware|@version|@serial  os  regex`. OS identifiers are LibreNMS's, so
//! API consumers and users' habits carry over. Adding an OS is adding lines.

use std::sync::OnceLock;

use regex::Regex;

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

/// Which device field an extraction rule fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Hardware,
    Version,
    Serial,
}

/// One extraction rule: for devices of `os`, the first capture group of `regex` on sysDescr.
#[derive(Clone, Debug)]
pub struct ExtractRule {
    pub field: Field,
    pub os: String,
    pub regex: Regex,
}

/// A parsed rule table.
#[derive(Clone, Debug, Default)]
pub struct OsRules {
    pub detect: Vec<OsRule>,
    pub extract: Vec<ExtractRule>,
}

/// What the rules say about one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsInfo {
    pub os: String,
    pub hardware: Option<String>,
    pub version: Option<String>,
    pub serial: Option<String>,
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
pub fn parse_rules(text: &str) -> Result<OsRules, String> {
    let mut rules = OsRules::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            rules.extract.push(parse_extract(rest, n + 1)?);
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
        rules.detect.push(OsRule {
            os,
            sys_object_id: field(oid),
            sys_descr: field(descr),
        });
    }
    Ok(rules)
}

fn parse_extract(rest: &str, line: usize) -> Result<ExtractRule, String> {
    let (kind, rest) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("os rule line {line}: @field needs an OS and a regex"))?;
    let field = match kind {
        "hardware" => Field::Hardware,
        "version" => Field::Version,
        "serial" => Field::Serial,
        other => return Err(format!("os rule line {line}: unknown field @{other}")),
    };
    let (os, pattern) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("os rule line {line}: @{kind} needs an OS and a regex"))?;
    // Leading blanks separate columns; a trailing blank can be part of the pattern.
    let pattern = pattern.trim_start();
    let regex = Regex::new(pattern).map_err(|e| format!("os rule line {line}: {e}"))?;
    if regex.captures_len() < 2 {
        return Err(format!(
            "os rule line {line}: the regex needs a capture group"
        ));
    }
    Ok(ExtractRule {
        field,
        os: os.to_string(),
        regex,
    })
}

/// The compiled-in table, parsed once.
pub fn builtin_rules() -> &'static OsRules {
    static RULES_CELL: OnceLock<OsRules> = OnceLock::new();
    // The table is compiled in and a unit test parses it, so the fallback is never taken.
    RULES_CELL.get_or_init(|| parse_rules(RULES).unwrap_or_default())
}

impl OsRules {
    /// The OS of a device; `generic` when no rule matches.
    pub fn detect(&self, sys_object_id: &str, sys_descr: &str) -> String {
        self.detect
            .iter()
            .find(|r| r.matches(sys_object_id, sys_descr))
            .map(|r| r.os.clone())
            .unwrap_or_else(|| "generic".to_string())
    }

    /// OS plus what the extraction rules find in sysDescr.
    pub fn identify(&self, sys_object_id: &str, sys_descr: &str) -> OsInfo {
        let os = self.detect(sys_object_id, sys_descr);
        let find = |field: Field| {
            self.extract
                .iter()
                .filter(|r| r.field == field && r.os == os)
                .find_map(|r| {
                    let c = r.regex.captures(sys_descr)?;
                    let v = c.get(1)?.as_str().trim();
                    (!v.is_empty()).then(|| v.to_string())
                })
        };
        OsInfo {
            hardware: find(Field::Hardware),
            version: find(Field::Version),
            serial: find(Field::Serial),
            os,
        }
    }
}

/// Detects the OS of a device with the built-in rules; `generic` when no rule matches.
pub fn detect_os(sys_object_id: &str, sys_descr: &str) -> String {
    builtin_rules().detect(sys_object_id, sys_descr)
}

/// OS, hardware, version and serial from the built-in rules.
pub fn identify(sys_object_id: &str, sys_descr: &str) -> OsInfo {
    builtin_rules().identify(sys_object_id, sys_descr)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_parses() {
        let r = parse_rules(RULES).unwrap();
        assert!(r.detect.len() >= 10);
        assert!(r.extract.len() >= 10);
        assert!(parse_rules("linux").is_err());
        assert!(parse_rules("@version linux no-group").is_err());
        assert!(parse_rules("@colour linux (x)").is_err());
        assert!(parse_rules("@version linux (unclosed").is_err());
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
    fn extracts_hardware_and_version() {
        let i = identify(
            "1.3.6.1.4.1.9.1.617",
            "Cisco IOS Software, C3560 Software (C3560-IPSERVICESK9-M), Version 12.2(55)SE3, RELEASE SOFTWARE (fc1)",
        );
        assert_eq!(i.os, "ios");
        assert_eq!(i.version.as_deref(), Some("12.2(55)SE3"));
        assert_eq!(i.hardware.as_deref(), Some("C3560"));
        let i = identify(
            "1.3.6.1.4.1.318.1.3.4.6",
            "APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.7.2 PN:apc_hw05_aos_672.bin AF1:v6.7.2 AN1:apc_hw05_rpdu2g_672.bin MN:AP8641 HR:02 SN: 5A26833B4526 MD:04/16/2019)",
        );
        assert_eq!(
            (
                i.os.as_str(),
                i.hardware.as_deref(),
                i.version.as_deref(),
                i.serial.as_deref()
            ),
            ("apc", Some("AP8641"), Some("v6.7.2"), Some("5A26833B4526"))
        );
        let i = identify(
            "1.3.6.1.4.1.8072.3.2.10",
            "Linux DummySystem 3.10.0-514.el7.x86_64 #1 SMP Tue Nov 22 16:42:41 UTC 2016 x86_64",
        );
        assert_eq!(i.version.as_deref(), Some("3.10.0-514.el7.x86_64"));
        assert_eq!(i.hardware.as_deref(), Some("x86_64"));
        let i = identify(
            "1.3.6.1.4.1.2011.2.23.276",
            "S5720-36C-EI-AC \r\nHuawei Versatile Routing Platform Software \r\n VRP (R) software,Version 5.160 (S5720 V200R007C00SPC500) \r\n",
        );
        assert_eq!(
            (i.os.as_str(), i.hardware.as_deref(), i.version.as_deref()),
            ("vrp", Some("S5720-36C-EI-AC"), Some("V200R007C00SPC500"))
        );
        let i = identify("1.3.6.1.4.1.99999.1", "Some box 1.0");
        assert_eq!(
            i,
            OsInfo {
                os: "generic".into(),
                ..OsInfo::default()
            }
        );
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
