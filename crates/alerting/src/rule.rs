//! Rules: an expression with its options, compiled once ([`CompiledRule`]), evaluated over a
//! [`Snapshot`] ([`evaluate`]: the matching rows; [`outcomes`]: the alerts they make after
//! `invert` and the per-device/per-entity grouping), and the scope check ([`in_scope`]).
//!
//! How the engine uses it, for one device and one rule:
//! 1. `in_scope(&rule, &DeviceFacts::of(&device, &groups))`, else skip (and leave any
//!    existing alert rows of the rule for the device to `on_evaluation(prev, None, ..)`).
//! 2. `outcomes(&rule, &snapshot)`: each is an alert subject (the device, or one entity
//!    when `per_entity`) with its faults: call [`crate::state::on_evaluation`] with
//!    `Some(faults)` for each, and with `None` for each existing open alert of this
//!    (rule, device) that is not among them.

use std::str::FromStr;

use lookout_core::Device;
use serde::{Deserialize, Deserializer, Serialize};

use crate::lang::{CompiledExpr, RuleError};
use crate::snapshot::{Kind, Snapshot};
use crate::EntityRef;

/// How bad an alert is (LibreNMS's severities), ordered `Ok < Warning < Critical`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    #[default]
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A severity that is not `ok`, `warning` or `critical`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected ok, warning or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ok" => Ok(Severity::Ok),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

/// Which devices a rule applies to. The *map* (LibreNMS's: devices, device groups,
/// locations) selects the devices in any of its lists (all devices when the three are
/// empty; `invert_map` selects the others instead); `poller_groups` and `os`, when not
/// empty, then keep only devices in one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scope {
    pub devices: Vec<i64>,
    pub device_groups: Vec<i64>,
    /// sysLocation values, compared ASCII case-insensitively.
    pub locations: Vec<String>,
    pub invert_map: bool,
    pub poller_groups: Vec<i32>,
    /// LibreNMS OS names (`ios`, `linux`).
    pub os: Vec<String>,
}

impl Scope {
    pub fn is_all(&self) -> bool {
        *self == Scope::default()
    }

    pub fn contains(&self, d: &DeviceFacts<'_>) -> bool {
        let map_empty =
            self.devices.is_empty() && self.device_groups.is_empty() && self.locations.is_empty();
        let mapped = map_empty || {
            let hit = self.devices.contains(&d.device_id)
                || self
                    .device_groups
                    .iter()
                    .any(|g| d.device_groups.contains(g))
                || d.location
                    .is_some_and(|l| self.locations.iter().any(|x| x.eq_ignore_ascii_case(l)));
            hit != self.invert_map
        };
        mapped
            && (self.poller_groups.is_empty() || self.poller_groups.contains(&d.poller_group))
            && (self.os.is_empty() || self.os.iter().any(|o| o.eq_ignore_ascii_case(d.os)))
    }
}

/// What the scope check needs to know of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceFacts<'a> {
    pub device_id: i64,
    pub poller_group: i32,
    pub os: &'a str,
    pub location: Option<&'a str>,
    /// The device groups it is a member of.
    pub device_groups: &'a [i64],
}

impl<'a> DeviceFacts<'a> {
    pub fn of(device: &'a Device, device_groups: &'a [i64]) -> Self {
        DeviceFacts {
            device_id: device.device_id,
            poller_group: device.poller_group,
            os: &device.os,
            location: device.sys_location.as_deref(),
            device_groups,
        }
    }
}

/// A rule's options. Serialised, the keys are LibreNMS's `alert_rules.extra` keys
/// (`delay`, `interval`, `count`, `recovery`, `invert`, `mute`) plus Lookout's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleOptions {
    pub severity: Severity,
    /// Seconds the condition must hold before the first notification.
    #[serde(rename = "delay")]
    pub delay_secs: u64,
    /// Seconds between repeat notifications while triggered and not acknowledged; 0: none.
    #[serde(rename = "interval")]
    pub interval_secs: u64,
    /// Most notifications (the alert and its repeats) per episode; `None`: no limit
    /// (LibreNMS's `count`, where -1 means no limit).
    #[serde(rename = "count", deserialize_with = "count_de")]
    pub max_notifications: Option<u32>,
    /// Send a recovery notification (else an alert recovers silently).
    pub recovery: bool,
    /// Alert when the condition is false (device level: when no row matches).
    pub invert: bool,
    /// Keep state, send nothing.
    pub mute: bool,
    /// One alert per matching entity instead of one per device with the entities as its
    /// faults (LibreNMS's way: the alert gets worse/better as faults come and go).
    pub per_entity: bool,
    pub scope: Scope,
    /// LibreNMS `proc`: the procedure to follow.
    #[serde(rename = "proc")]
    pub procedure_url: Option<String>,
    /// Transport ids; empty: the default transports.
    pub transports: Vec<i64>,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            severity: Severity::Critical,
            delay_secs: 0,
            interval_secs: 0,
            max_notifications: None,
            recovery: true,
            invert: false,
            mute: false,
            per_entity: false,
            scope: Scope::default(),
            procedure_url: None,
            transports: Vec::new(),
        }
    }
}

fn count_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v: Option<i64> = Option::deserialize(d)?;
    Ok(v.filter(|n| *n > 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}

/// Options that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(transparent)]
    Severity(#[from] UnknownSeverity),
    #[error("rule options: {0}")]
    Json(#[from] serde_json::Error),
}

/// Keys that live in `alert_rules` columns of their own, not in `extra`.
const COLUMN_KEYS: [&str; 3] = ["severity", "proc", "transports"];

impl RuleOptions {
    /// The options of an `alert_rules` row: its `severity` column, `extra` JSON (missing
    /// keys take their defaults; unknown keys are ignored), `proc` and transports.
    pub fn from_row(
        severity: &str,
        extra: &str,
        procedure_url: Option<&str>,
        transports: &[i64],
    ) -> Result<RuleOptions, OptionsError> {
        let mut o: RuleOptions = if extra.trim().is_empty() {
            RuleOptions::default()
        } else {
            serde_json::from_str(extra)?
        };
        o.severity = severity.parse()?;
        o.procedure_url = procedure_url.filter(|s| !s.is_empty()).map(str::to_string);
        o.transports = transports.to_vec();
        Ok(o)
    }

    /// The `extra` JSON of these options (without what has columns of its own).
    pub fn extra_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            for k in COLUMN_KEYS {
                m.remove(k);
            }
        }
        v.to_string()
    }
}

/// A rule as stored, before compilation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: i64,
    pub name: String,
    pub expr: String,
    pub options: RuleOptions,
}

/// A rule ready to evaluate.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub id: i64,
    pub name: String,
    pub expr: CompiledExpr,
    pub options: RuleOptions,
}

impl CompiledRule {
    pub fn new(id: i64, name: &str, expr: &str, options: RuleOptions) -> Result<Self, RuleError> {
        Ok(CompiledRule {
            id,
            name: name.to_string(),
            expr: CompiledExpr::compile(expr)?,
            options,
        })
    }

    pub fn compile(rule: &Rule) -> Result<Self, RuleError> {
        CompiledRule::new(rule.id, &rule.name, &rule.expr, rule.options.clone())
    }

    /// Whether the master's time pass must evaluate this rule (it reads the clock).
    pub fn is_time_based(&self) -> bool {
        self.expr.uses_clock()
    }
}

/// The rule applies to this device.
pub fn in_scope(rule: &CompiledRule, device: &DeviceFacts<'_>) -> bool {
    rule.options.scope.contains(device)
}

/// The device, or one entity, for which the rule's condition holds, with the values of
/// the fields the rule reads (entity fields by their bare name, `device.*`/`icmp.*`
/// qualified).
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub entity: Option<EntityRef>,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Match {
    /// The match as one fault of an alert (for templates and the alert log): the
    /// fields plus `entity_type`, `entity_id` and `label` of an entity.
    pub fn to_fault(&self) -> serde_json::Value {
        let mut m = self.fields.clone();
        if let Some(e) = &self.entity {
            m.insert("entity_type".into(), e.kind.clone().into());
            m.insert("entity_id".into(), e.id.into());
            m.insert("label".into(), e.label.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

/// The rows of `snap` for which `rule` holds: one match per entity row, or the device.
/// The rule is not checked against its scope here (see [`in_scope`]).
pub fn evaluate(rule: &CompiledRule, snap: &Snapshot<'_>) -> Vec<Match> {
    let c = snap.clock();
    let mut out = Vec::new();
    match rule.expr.entity_kind() {
        Some(kind) => {
            for row in 0..snap.rows(kind) {
                if rule.expr.test(snap, row, &c) {
                    out.push(matched(rule, snap, Some(kind), row));
                }
            }
        }
        None => {
            if rule.expr.test(snap, 0, &c) {
                out.push(matched(rule, snap, None, 0));
            }
        }
    }
    out
}

fn matched(rule: &CompiledRule, snap: &Snapshot<'_>, kind: Option<Kind>, row: usize) -> Match {
    let c = snap.clock();
    let mut fields = serde_json::Map::new();
    for &(k, idx) in rule.expr.fields() {
        if kind.is_none() && k.is_entity() {
            continue;
        }
        let name = k.field(idx).map_or("?", |f| f.name);
        let key = if k.is_entity() {
            name.to_string()
        } else {
            format!("{}.{name}", k.as_str())
        };
        fields.insert(key, rule.expr.value(snap, (k, idx), row, &c).to_json());
    }
    let entity = kind.and_then(|k| {
        snap.entity(k, row).map(|(id, label)| EntityRef {
            kind: k.as_str().to_string(),
            id,
            label,
        })
    });
    Match { entity, fields }
}

/// What an alert is about and why: the matching rows, as faults (JSON objects).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults(pub Vec<serde_json::Value>);

impl Faults {
    /// How many faults (at least 1: a device-level match is one fault).
    pub fn count(&self) -> usize {
        self.0.len().max(1)
    }
}

/// One alert subject of a rule on a device: the device itself (`entity` `None`) or one
/// entity (rules with `per_entity`).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub entity: Option<EntityRef>,
    pub faults: Faults,
}

impl Outcome {
    /// The alert key's (`entity_type`, `entity_id`): `("", 0)` for the device.
    pub fn entity_key(&self) -> (&str, i64) {
        self.entity
            .as_ref()
            .map_or(("", 0), |e| (e.kind.as_str(), e.id))
    }
}

/// The alerts `rule` raises on this snapshot now (empty: none holds). Applies `invert`
/// (device level: the rule alerts when no row matches; `per_entity`: each entity that does
/// not match) and groups matches into one device alert unless `per_entity`.
pub fn outcomes(rule: &CompiledRule, snap: &Snapshot<'_>) -> Vec<Outcome> {
    let o = &rule.options;
    if o.invert {
        if let (true, Some(kind)) = (o.per_entity, rule.expr.entity_kind()) {
            let c = snap.clock();
            return (0..snap.rows(kind))
                .filter(|&row| !rule.expr.test(snap, row, &c))
                .map(|row| {
                    let m = matched(rule, snap, Some(kind), row);
                    Outcome {
                        faults: Faults(vec![m.to_fault()]),
                        entity: m.entity,
                    }
                })
                .collect();
        }
        if evaluate(rule, snap).is_empty() {
            let m = matched(rule, snap, None, 0);
            return vec![Outcome {
                entity: None,
                faults: Faults(vec![m.to_fault()]),
            }];
        }
        return Vec::new();
    }
    let matches = evaluate(rule, snap);
    if o.per_entity {
        return matches
            .into_iter()
            .map(|m| Outcome {
                faults: Faults(vec![m.to_fault()]),
                entity: m.entity,
            })
            .collect();
    }
    if matches.is_empty() {
        return Vec::new();
    }
    vec![Outcome {
        entity: None,
        faults: Faults(matches.iter().map(Match::to_fault).collect()),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{device, port, t};
    use crate::snapshot::{device_snapshot, Snapshot};

    fn rule(expr: &str, options: RuleOptions) -> CompiledRule {
        match CompiledRule::new(1, "r", expr, options) {
            Ok(r) => r,
            Err(e) => panic!("{}", e.render(expr)),
        }
    }

    #[test]
    fn entity_rules_match_per_row_with_the_fields_they_read() {
        let d = device();
        let ports = [
            port(1, "up", 0.0, 1_000_000_000),
            port(2, "down", 0.0, 1_000_000_000),
            port(3, "down", 0.0, 1_000_000_000),
        ];
        let snap = device_snapshot(&d, &ports, &[], &[], &[], None, t(0), 300);
        let r = rule(
            r#"macros.port_down && device.os == "IOS""#,
            RuleOptions::default(),
        );
        let m = evaluate(&r, &snap);
        assert_eq!(m.len(), 2);
        let e = m[0].entity.clone().unwrap_or_else(|| panic!("entity"));
        assert_eq!(
            (e.kind.as_str(), e.id, e.label.as_str()),
            ("ports", 2, "Gi0/2")
        );
        assert_eq!(m[0].fields["ifOperStatus"], "down");
        assert_eq!(m[0].fields["ifAdminStatus"], "up");
        assert_eq!(m[0].fields["device.os"], "ios");
        assert_eq!(m[0].fields["deleted"], false);
        let fault = m[1].to_fault();
        assert_eq!(fault["entity_id"], 3);
        assert_eq!(fault["label"], "Gi0/3");

        // Grouped by default: one device alert with two faults.
        let o = outcomes(&r, &snap);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].entity_key(), o[0].faults.count()), (("", 0), 2));
        // per_entity: one alert per port.
        let per = RuleOptions {
            per_entity: true,
            ..RuleOptions::default()
        };
        let r = rule("macros.port_down", per);
        let keys: Vec<_> = outcomes(&r, &snap)
            .iter()
            .map(|o| o.entity_key().1)
            .collect();
        assert_eq!(keys, [2, 3]);
    }

    #[test]
    fn device_rules_and_invert() {
        let mut d = device();
        let snap = Snapshot::device_only(&d, None, t(0), 300);
        let r = rule("device.uptime < 300", RuleOptions::default());
        assert!(evaluate(&r, &snap).is_empty());
        let inv = rule(
            "device.uptime < 300",
            RuleOptions {
                invert: true,
                ..RuleOptions::default()
            },
        );
        let o = outcomes(&inv, &snap);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].faults.0[0]["device.uptime"], 86_400);
        d.uptime = Some(42);
        let snap = Snapshot::device_only(&d, None, t(0), 300);
        let m = evaluate(&r, &snap);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].entity, None);
        assert_eq!(m[0].fields["device.uptime"], 42);
        assert!(outcomes(&inv, &snap).is_empty());

        // Inverted per entity: the ports that do not match.
        let ports = [port(1, "up", 0.0, 1), port(2, "down", 0.0, 1)];
        let snap = device_snapshot(&d, &ports, &[], &[], &[], None, t(0), 300);
        let r = rule(
            "macros.port_up",
            RuleOptions {
                invert: true,
                per_entity: true,
                ..RuleOptions::default()
            },
        );
        let o = outcomes(&r, &snap);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].entity_key(), ("ports", 2));
    }

    #[test]
    fn scope_maps_then_filters() {
        let d = device(); // id 7, group 0, ios, DC1
        let groups = [3];
        let f = DeviceFacts::of(&d, &groups);
        let scope = |s: Scope| s.contains(&f);
        assert!(scope(Scope::default()));
        assert!(scope(Scope {
            devices: vec![1, 7],
            ..Scope::default()
        }));
        assert!(!scope(Scope {
            devices: vec![1],
            ..Scope::default()
        }));
        assert!(scope(Scope {
            devices: vec![1],
            device_groups: vec![3],
            ..Scope::default()
        }));
        assert!(scope(Scope {
            locations: vec!["dc1".into()],
            ..Scope::default()
        }));
        assert!(!scope(Scope {
            locations: vec!["dc1".into()],
            invert_map: true,
            ..Scope::default()
        }));
        assert!(!scope(Scope {
            os: vec!["linux".into()],
            ..Scope::default()
        }));
        assert!(scope(Scope {
            os: vec!["IOS".into()],
            poller_groups: vec![0, 2],
            ..Scope::default()
        }));
        assert!(!scope(Scope {
            devices: vec![7],
            poller_groups: vec![2],
            ..Scope::default()
        }));
        let r = rule(
            "macros.device_down",
            RuleOptions {
                scope: Scope {
                    devices: vec![8],
                    ..Scope::default()
                },
                ..RuleOptions::default()
            },
        );
        assert!(!in_scope(&r, &f));
    }

    #[test]
    fn options_round_trip_through_librenms_columns() {
        let o = RuleOptions::from_row(
            "warning",
            r#"{"delay":300,"interval":1800,"count":-1,"mute":false,"invert":false,"recovery":true,"template":7}"#,
            Some("https://wiki/proc"),
            &[4],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.severity, Severity::Warning);
        assert_eq!(
            (o.delay_secs, o.interval_secs, o.max_notifications),
            (300, 1800, None)
        );
        assert_eq!(o.procedure_url.as_deref(), Some("https://wiki/proc"));
        assert_eq!(o.transports, [4]);
        let extra = o.extra_json();
        assert!(
            !extra.contains("severity") && !extra.contains("proc"),
            "{extra}"
        );
        let back = RuleOptions::from_row("warning", &extra, Some("https://wiki/proc"), &[4])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, o);
        let o = RuleOptions::from_row("critical", r#"{"count": 3}"#, None, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.max_notifications, Some(3));
        assert!(o.recovery);
        assert!(RuleOptions::from_row("bad", "{}", None, &[]).is_err());
        assert!(RuleOptions::from_row("ok", "{\"delay\": \"x\"}", None, &[]).is_err());
        assert!(RuleOptions::from_row("ok", "", None, &[]).is_ok());
    }
}
