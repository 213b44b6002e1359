//! Rule bodies: what an API client (JSON) or the rule form sends, merged onto a stored rule
//! (PUT changes only the fields given) or onto the defaults (POST), checked by the
//! engine's compiler before anything is stored; and a rule as JSON.
//!
//! JSON keys are LibreNMS's where it has them (`name`, `builder`, `severity`, `delay`,
//! `interval`, `count`, `mute`, `invert`, `disabled`, `devices`, `proc`), plus Lookout's
//! (`rule`, `recovery`, `per_entity`, `device_groups`, `locations`, `invert_map`,
//! `poller_groups`, `os`, `transports`). `builder` and `rule` hold the rule expression
//! (LibreNMS's query-builder JSON has no meaning here and is refused with an example).

use std::collections::HashMap;

use lookout_alerting::engine::ops::check_rule;
use lookout_alerting::rule::{CompiledRule, RuleOptions, Severity};
use lookout_store::{AlertRule, AlertTransport, NewAlertRule, Store};
use serde_json::{json, Value};

use super::model::find_device;
use super::{parse_duration, with_expr, Failure};
use crate::view::librenms_time;

/// A device or transport as the client named it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Named {
    Id(i64),
    Name(String),
}

/// The fields a request sets; `None`: unchanged (PUT) or the default (POST).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RuleEdit {
    pub(crate) name: Option<String>,
    pub(crate) expr: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) delay: Option<u64>,
    pub(crate) interval: Option<u64>,
    /// `Some(None)`: no limit.
    pub(crate) count: Option<Option<u32>>,
    pub(crate) mute: Option<bool>,
    pub(crate) invert: Option<bool>,
    pub(crate) recovery: Option<bool>,
    pub(crate) per_entity: Option<bool>,
    pub(crate) disabled: Option<bool>,
    pub(crate) invert_map: Option<bool>,
    pub(crate) devices: Option<Vec<Named>>,
    pub(crate) device_groups: Option<Vec<i64>>,
    pub(crate) locations: Option<Vec<String>>,
    pub(crate) poller_groups: Option<Vec<i32>>,
    pub(crate) os: Option<Vec<String>>,
    pub(crate) transports: Option<Vec<Named>>,
    /// `Some(None)`: remove the procedure URL.
    pub(crate) proc_url: Option<Option<String>>,
}

/// Keys of a rule body, for the error on an unknown one.
const KEYS: &[&str] = &[
    "name",
    "rule",
    "builder",
    "severity",
    "delay",
    "interval",
    "count",
    "mute",
    "invert",
    "recovery",
    "per_entity",
    "disabled",
    "devices",
    "device_groups",
    "groups",
    "locations",
    "invert_map",
    "poller_groups",
    "os",
    "transports",
    "proc",
    "procedure_url",
];

/// Keys LibreNMS clients send that mean nothing here; accepted and ignored.
const IGNORED: &[&str] = &["rule_id", "notes", "override_query", "query", "adv_query"];

fn field_err(key: &str, expected: &str, got: &Value) -> Failure {
    Failure::bad_request(format!("{key}: expected {expected}, got {got}"))
}

fn as_bool(key: &str, v: &Value) -> Result<bool, Failure> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" | "" => Ok(false),
            _ => Err(field_err(key, "true or false", v)),
        },
        _ => Err(field_err(key, "true or false", v)),
    }
}

fn as_string(key: &str, v: &Value) -> Result<String, Failure> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| field_err(key, "a string", v))
}

fn as_secs(key: &str, v: &Value) -> Result<u64, Failure> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| field_err(key, "seconds (a number >= 0) or 5m, 1h", v)),
        Value::String(s) => {
            parse_duration(s).map_err(|e| Failure::bad_request(format!("{key}: {e}")))
        }
        _ => Err(field_err(key, "seconds (a number >= 0) or 5m, 1h", v)),
    }
}

fn as_count(v: &Value) -> Result<Option<u32>, Failure> {
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n <= 0 => Ok(None),
        Some(n) => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        None => Err(field_err("count", "a number (-1: no limit)", v)),
    }
}

fn as_list<T>(
    key: &str,
    v: &Value,
    item: impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>, Failure> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    items
        .into_iter()
        .map(|x| item(x).ok_or_else(|| field_err(key, expected, x)))
        .collect()
}

fn named(v: &Value) -> Option<Named> {
    match v {
        Value::Number(n) => n.as_i64().map(Named::Id),
        Value::String(s) if !s.trim().is_empty() => Some(Named::Name(s.trim().to_string())),
        _ => None,
    }
}

impl RuleEdit {
    /// From an API body (a JSON object).
    pub(crate) fn from_json(body: &Value) -> Result<RuleEdit, Failure> {
        let Some(obj) = body.as_object() else {
            return Err(Failure::bad_request("the body must be a JSON object"));
        };
        let mut e = RuleEdit::default();
        for (k, v) in obj {
            e.set_json(k, v)?;
        }
        Ok(e)
    }

    fn set_json(&mut self, k: &str, v: &Value) -> Result<(), Failure> {
        match k {
            "name" => self.name = Some(as_string(k, v)?),
            "rule" | "builder" => {
                if v.is_object() {
                    return Err(Failure::bad_request(format!(
                        "{k}: Lookout rules are expressions, not LibreNMS query-builder JSON; \
                         send a string such as \"macros.device_down\" or \
                         \"ports.ifOperStatus == \\\"down\\\" && ports.ifAdminStatus == \\\"up\\\"\" \
                         (docs/alerting.md)"
                    )));
                }
                self.expr = Some(as_string(k, v)?);
            }
            "severity" => self.severity = Some(as_string(k, v)?),
            "delay" => self.delay = Some(as_secs(k, v)?),
            "interval" => self.interval = Some(as_secs(k, v)?),
            "count" => self.count = Some(as_count(v)?),
            "mute" => self.mute = Some(as_bool(k, v)?),
            "invert" => self.invert = Some(as_bool(k, v)?),
            "recovery" => self.recovery = Some(as_bool(k, v)?),
            "per_entity" => self.per_entity = Some(as_bool(k, v)?),
            "disabled" => self.disabled = Some(as_bool(k, v)?),
            "invert_map" => self.invert_map = Some(as_bool(k, v)?),
            "devices" => {
                let mut d = as_list(k, v, named, "device ids or hostnames")?;
                // LibreNMS: [-1] means every device.
                d.retain(|n| *n != Named::Id(-1));
                self.devices = Some(d);
            }
            "device_groups" | "groups" => {
                self.device_groups = Some(as_list(k, v, Value::as_i64, "device group ids")?);
            }
            "locations" => {
                self.locations = Some(as_list(
                    k,
                    v,
                    |x| x.as_str().map(str::to_string),
                    "strings",
                )?);
            }
            "poller_groups" => {
                let g = |x: &Value| x.as_i64().and_then(|n| i32::try_from(n).ok());
                self.poller_groups = Some(as_list(k, v, g, "poller group numbers")?);
            }
            "os" => {
                self.os = Some(as_list(
                    k,
                    v,
                    |x| x.as_str().map(str::to_string),
                    "OS names",
                )?)
            }
            "transports" => self.transports = Some(as_list(k, v, named, "transport ids or names")?),
            "proc" | "procedure_url" => {
                self.proc_url = Some(match v {
                    Value::Null => None,
                    v => Some(as_string(k, v)?).filter(|s| !s.trim().is_empty()),
                });
            }
            k if IGNORED.contains(&k) => {}
            k => {
                return Err(Failure::bad_request(format!(
                    "unknown field {k:?}; known: {}",
                    KEYS.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// From the rule form: every field is present (unchecked boxes are absent, so false);
    /// lists are comma or whitespace separated.
    pub(crate) fn from_form(form: &[(String, String)]) -> Result<RuleEdit, Failure> {
        let get = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
        };
        let words = |k: &str| -> Vec<String> {
            get(k)
                .unwrap_or_default()
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let to_named = |s: String| match s.parse::<i64>() {
            Ok(n) => Named::Id(n),
            Err(_) => Named::Name(s),
        };
        let secs = |k: &str| -> Result<u64, Failure> {
            match get(k).filter(|s| !s.is_empty()) {
                None => Ok(0),
                Some(s) => {
                    parse_duration(&s).map_err(|e| Failure::bad_request(format!("{k}: {e}")))
                }
            }
        };
        let checked = |k: &str| get(k).is_some_and(|v| v != "0" && v != "false");
        let mut e = RuleEdit {
            name: get("name"),
            expr: get("rule"),
            severity: get("severity"),
            delay: Some(secs("delay")?),
            interval: Some(secs("interval")?),
            count: Some(as_count(&Value::String(get("count").unwrap_or_default()))?),
            mute: Some(checked("mute")),
            invert: Some(checked("invert")),
            recovery: Some(checked("recovery")),
            per_entity: Some(checked("per_entity")),
            disabled: Some(checked("disabled")),
            invert_map: Some(checked("invert_map")),
            devices: Some(words("devices").into_iter().map(to_named).collect()),
            locations: Some(
                get("locations")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            os: Some(words("os")),
            transports: Some(
                form.iter()
                    .filter(|(n, v)| n == "transport" && !v.is_empty())
                    .map(|(_, v)| to_named(v.clone()))
                    .collect(),
            ),
            proc_url: Some(get("proc").filter(|s| !s.is_empty())),
            ..RuleEdit::default()
        };
        let groups = words("poller_groups");
        e.poller_groups = Some(
            groups
                .iter()
                .map(|g| {
                    g.parse::<i32>().map_err(|_| {
                        Failure::bad_request(format!("poller_groups: {g:?} is not a number"))
                    })
                })
                .collect::<Result<_, _>>()?,
        );
        Ok(e)
    }

    /// The rule to store: `base` (the stored rule, for PUT) with these fields applied,
    /// device and transport names resolved, checked by the rule compiler.
    pub(crate) async fn resolve(
        self,
        store: &Store,
        base: Option<&AlertRule>,
    ) -> Result<(NewAlertRule, CompiledRule), Failure> {
        let mut options = base
            .and_then(|b| {
                RuleOptions::from_row(&b.severity, &b.extra, b.proc_url.as_deref(), &[]).ok()
            })
            .unwrap_or_default();
        let name = self
            .name
            .or_else(|| base.map(|b| b.name.clone()))
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Failure::bad_request("name: a rule needs a name"))?;
        let expr = self
            .expr
            .or_else(|| base.map(|b| b.rule.clone()))
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| {
                Failure::bad_request("rule: a rule needs an expression, e.g. macros.device_down")
            })?;
        if let Some(s) = &self.severity {
            options.severity = s
                .parse::<Severity>()
                .map_err(|e| Failure::bad_request(format!("severity: {e}")))?;
        }
        set(&mut options.delay_secs, self.delay);
        set(&mut options.interval_secs, self.interval);
        set(&mut options.max_notifications, self.count);
        set(&mut options.mute, self.mute);
        set(&mut options.invert, self.invert);
        set(&mut options.recovery, self.recovery);
        set(&mut options.per_entity, self.per_entity);
        set(&mut options.scope.invert_map, self.invert_map);
        set(&mut options.scope.device_groups, self.device_groups);
        set(&mut options.scope.locations, self.locations);
        set(&mut options.scope.poller_groups, self.poller_groups);
        set(&mut options.scope.os, self.os);
        if let Some(devices) = self.devices {
            options.scope.devices = device_ids(store, devices).await?;
        }
        let transport_ids = match self.transports {
            Some(t) => transport_ids(&store.alert_transports().await?, t)?,
            None => base.map(|b| b.transport_ids.clone()).unwrap_or_default(),
        };
        let proc_url = match self.proc_url {
            Some(p) => p,
            None => base.and_then(|b| b.proc_url.clone()),
        };
        let new = NewAlertRule {
            name,
            rule: expr,
            severity: options.severity.as_str().to_string(),
            extra: options.extra_json(),
            disabled: self
                .disabled
                .unwrap_or_else(|| base.is_some_and(|b| b.disabled)),
            builtin: base.is_some_and(|b| b.builtin),
            proc_url,
            transport_ids,
        };
        let compiled = check_rule(&new).map_err(|e| with_expr(e.into(), &new.rule))?;
        Ok((new, compiled))
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

async fn device_ids(store: &Store, devices: Vec<Named>) -> Result<Vec<i64>, Failure> {
    let mut ids = Vec::with_capacity(devices.len());
    for d in devices {
        let id = match d {
            Named::Id(id) => {
                store
                    .device(id)
                    .await?
                    .ok_or_else(|| Failure::bad_request(format!("devices: no device {id}")))?
                    .device_id
            }
            Named::Name(h) => {
                find_device(store, &h)
                    .await
                    .map_err(|_| Failure::bad_request(format!("devices: no device {h:?}")))?
                    .device_id
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn transport_ids(known: &[AlertTransport], wanted: Vec<Named>) -> Result<Vec<i64>, Failure> {
    wanted
        .into_iter()
        .map(|w| {
            known
                .iter()
                .find(|t| match &w {
                    Named::Id(id) => t.transport_id == *id,
                    Named::Name(n) => t.transport_name == *n,
                })
                .map(|t| t.transport_id)
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        known.iter().map(|t| t.transport_name.as_str()).collect();
                    Failure::bad_request(format!(
                        "transports: no transport {}; known: {}",
                        match &w {
                            Named::Id(id) => id.to_string(),
                            Named::Name(n) => format!("{n:?}"),
                        },
                        if names.is_empty() {
                            "none yet".to_string()
                        } else {
                            names.join(", ")
                        }
                    ))
                })
        })
        .collect()
}

/// A rule as the API shows it: LibreNMS's `alert_rules` columns (`extra` as its JSON text,
/// `disabled` 0/1) plus the options read from it and, for a rule that no longer compiles,
/// why.
pub(crate) fn rule_json(r: &AlertRule, broken: Option<&str>) -> Value {
    let o = RuleOptions::from_row(
        &r.severity,
        &r.extra,
        r.proc_url.as_deref(),
        &r.transport_ids,
    );
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "rule": r.rule,
        "builder": r.rule,
        "severity": r.severity,
        "extra": r.extra,
        "disabled": i32::from(r.disabled),
        "builtin": r.builtin,
        "proc": r.proc_url,
        "updated": librenms_time(&r.updated),
        "transports": r.transport_ids,
        "error": broken,
    });
    match o {
        Ok(o) => {
            let extra = json!({
                "delay": o.delay_secs,
                "interval": o.interval_secs,
                "count": o.max_notifications,
                "mute": o.mute,
                "invert": o.invert,
                "recovery": o.recovery,
                "per_entity": o.per_entity,
                "devices": o.scope.devices,
                "scope": o.scope,
            });
            if let (Some(m), Value::Object(x)) = (v.as_object_mut(), extra) {
                m.extend(x);
            }
        }
        Err(e) => v["error"] = json!(broken.map_or_else(|| e.to_string(), str::to_string)),
    }
    v
}

/// Why each stored rule that does not compile was skipped, from the engine's catalog (or,
/// without an engine, by compiling them here).
pub(crate) fn broken_rules(
    rules: &[AlertRule],
    engine: Option<&lookout_alerting::engine::Engine>,
) -> HashMap<i64, String> {
    match engine {
        Some(e) => e.catalog().broken.iter().cloned().collect(),
        None => rules
            .iter()
            .filter_map(|r| {
                lookout_alerting::engine::load_rule(r)
                    .err()
                    .map(|e| (r.id, e.to_string()))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_bodies_parse_with_librenms_habits() {
        let e = RuleEdit::from_json(&json!({
            "name": "x", "builder": "macros.device_down", "severity": "warning",
            "delay": "5m", "interval": 600, "count": -1, "mute": 0, "invert": "false",
            "devices": [-1], "rule_id": 3, "notes": "ignored",
        }))
        .unwrap();
        assert_eq!(e.expr.as_deref(), Some("macros.device_down"));
        assert_eq!(e.delay, Some(300));
        assert_eq!(e.interval, Some(600));
        assert_eq!(e.count, Some(None));
        assert_eq!(e.mute, Some(false));
        assert_eq!(e.invert, Some(false));
        assert_eq!(e.devices, Some(vec![]));
        let bad = RuleEdit::from_json(&json!({"nmae": "x"})).unwrap_err();
        assert!(
            bad.message.contains("unknown field \"nmae\""),
            "{}",
            bad.message
        );
        assert!(bad.message.contains("severity"), "{}", bad.message);
        let qb = RuleEdit::from_json(&json!({"builder": {"condition": "AND"}})).unwrap_err();
        assert!(qb.message.contains("expressions"), "{}", qb.message);
        assert!(RuleEdit::from_json(&json!({"delay": -3})).is_err());
        assert!(RuleEdit::from_json(&json!({"mute": "maybe"})).is_err());
        assert!(RuleEdit::from_json(&json!([1])).is_err());
    }

    #[test]
    fn forms_parse_every_field() {
        let f: Vec<(String, String)> = [
            ("name", "Disk"),
            ("rule", "storage.storage_perc > 95"),
            ("severity", "critical"),
            ("delay", "2m"),
            ("interval", ""),
            ("count", "3"),
            ("recovery", "on"),
            ("devices", "r1, 7"),
            ("poller_groups", "0 2"),
            ("transport", "4"),
            ("transport", "hook"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let e = RuleEdit::from_form(&f).unwrap();
        assert_eq!(e.delay, Some(120));
        assert_eq!(e.interval, Some(0));
        assert_eq!(e.count, Some(Some(3)));
        assert_eq!(e.recovery, Some(true));
        assert_eq!(e.mute, Some(false));
        assert_eq!(
            e.devices,
            Some(vec![Named::Name("r1".into()), Named::Id(7)])
        );
        assert_eq!(e.poller_groups, Some(vec![0, 2]));
        assert_eq!(
            e.transports,
            Some(vec![Named::Id(4), Named::Name("hook".into())])
        );
    }
}
