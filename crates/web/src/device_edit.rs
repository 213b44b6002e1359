//! Editing a device's settings without touching its identity: the new settings are the
//! current ones with the submitted fields applied and checked (LibreNMS column names:
//! `community`, `snmpver`, `port`, `timeout` (seconds), `retries`, `authlevel`, `authname`,
//! `authpass`, `authalgo`, `cryptopass`, `cryptoalgo`, `poller_group`, `disabled`). Pure: the
//! API's PATCH, the edit form and tests share it; the store then keeps `device_id`, ports and
//! history. Values arrive as JSON (API) or text (form), so both are accepted.

use lookout_core::{Device, SnmpConfig, SnmpV3Config, SnmpVersion};
use serde_json::Value;

/// What an edit sets.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSettings {
    pub snmp: SnmpConfig,
    pub poller_group: i32,
    pub disabled: bool,
}

/// The fields an edit may set.
pub const FIELDS: [&str; 13] = [
    "community",
    "snmpver",
    "port",
    "timeout",
    "retries",
    "authlevel",
    "authname",
    "authpass",
    "authalgo",
    "cryptopass",
    "cryptoalgo",
    "poller_group",
    "disabled",
];

fn text(field: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{field}: expected a string or a number")),
    }
}

fn number<T: std::str::FromStr>(field: &str, v: &Value, range: &str) -> Result<T, String> {
    text(field, v)?
        .parse::<T>()
        .map_err(|_| format!("{field}: expected a number ({range})"))
}

fn flag(field: &str, v: &Value) -> Result<bool, String> {
    match text(field, v)?.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" | "" => Ok(false),
        other => Err(format!(
            "{field}: {other:?} is not a boolean (true/false, 1/0)"
        )),
    }
}

/// `current` with `changes` applied; an unknown field or a bad value is an error naming it.
pub fn apply(current: &Device, changes: &[(String, Value)]) -> Result<DeviceSettings, String> {
    if changes.is_empty() {
        return Err(format!(
            "nothing to change: give one of {}",
            FIELDS.join(", ")
        ));
    }
    apply_to(
        DeviceSettings {
            snmp: current.snmp.clone(),
            poller_group: current.poller_group,
            disabled: current.disabled,
        },
        changes,
    )
}

/// `base` with `changes` applied and checked (also the settings of a device being added).
pub fn apply_to(
    base: DeviceSettings,
    changes: &[(String, Value)],
) -> Result<DeviceSettings, String> {
    let mut snmp = base.snmp;
    let mut poller_group = base.poller_group;
    let mut disabled = base.disabled;
    let mut v3 = snmp.v3.clone().unwrap_or(SnmpV3Config {
        security_level: "noAuthNoPriv".into(),
        auth_user: String::new(),
        auth_protocol: "SHA".into(),
        auth_password: String::new(),
        priv_protocol: "AES".into(),
        priv_password: String::new(),
    });
    for (field, v) in changes {
        match field.as_str() {
            "community" => snmp.community = text(field, v)?,
            "snmpver" => {
                snmp.version = text(field, v)?
                    .parse::<SnmpVersion>()
                    .map_err(|_| "snmpver: use v1, v2c or v3".to_string())?
            }
            "port" => {
                snmp.port = number::<u16>(field, v, "1 to 65535")?;
                if snmp.port == 0 {
                    return Err("port: use 1 to 65535".into());
                }
            }
            "timeout" => {
                let secs = number::<f64>(field, v, "seconds, 0.1 to 60")?;
                if !(0.1..=60.0).contains(&secs) {
                    return Err("timeout: use 0.1 to 60 seconds".into());
                }
                snmp.timeout_ms = (secs * 1000.0).round() as u32;
            }
            "retries" => {
                snmp.retries = number::<u32>(field, v, "0 to 10")?;
                if snmp.retries > 10 {
                    return Err("retries: use 0 to 10".into());
                }
            }
            "authlevel" => v3.security_level = text(field, v)?,
            "authname" => v3.auth_user = text(field, v)?,
            "authpass" => v3.auth_password = text(field, v)?,
            "authalgo" => v3.auth_protocol = text(field, v)?,
            "cryptopass" => v3.priv_password = text(field, v)?,
            "cryptoalgo" => v3.priv_protocol = text(field, v)?,
            "poller_group" => {
                poller_group = number::<i32>(field, v, "0 or more")?;
                if poller_group < 0 {
                    return Err("poller_group: use 0 or more".into());
                }
            }
            "disabled" => disabled = flag(field, v)?,
            other => {
                return Err(format!(
                    "{other:?} cannot be changed here: give one of {}",
                    FIELDS.join(", ")
                ))
            }
        }
    }
    if snmp.version == SnmpVersion::V3 {
        lookout_snmp::usm::UsmParams::from_config(&v3).map_err(|e| e.to_string())?;
        snmp.v3 = Some(v3);
    } else {
        if snmp.community.is_empty() {
            return Err("community: SNMP v1/v2c needs a community".into());
        }
        snmp.v3 = None;
    }
    Ok(DeviceSettings {
        snmp,
        poller_group,
        disabled,
    })
}

/// The changes of an API body: LibreNMS's `{"field": ..., "data": ...}` (one name and value,
/// or two arrays of the same length) or a plain object of field names and values.
pub fn changes_of(body: &Value) -> Result<Vec<(String, Value)>, String> {
    let Some(obj) = body.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    match (obj.get("field"), obj.get("data")) {
        (Some(Value::String(f)), Some(d)) if obj.len() == 2 => Ok(vec![(f.clone(), d.clone())]),
        (Some(Value::Array(fs)), Some(Value::Array(ds))) if obj.len() == 2 => {
            if fs.len() != ds.len() {
                return Err("field and data must have the same length".into());
            }
            fs.iter()
                .zip(ds)
                .map(|(f, d)| match f {
                    Value::String(f) => Ok((f.clone(), d.clone())),
                    _ => Err("field must hold names (strings)".to_string()),
                })
                .collect()
        }
        (Some(_), _) | (_, Some(_)) if obj.len() == 2 => {
            Err("field and data must both be strings/values or both arrays".into())
        }
        _ => Ok(obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn device() -> Device {
        let mut d: Device = serde_json::from_value(json!({
            "device_id": 7, "hostname": "r1", "sys_name": null, "sys_descr": null,
            "sys_object_id": null, "sys_contact": null, "sys_location": null, "os": "generic",
            "hardware": null, "version": null, "serial": null, "uptime": null,
            "status": "up", "status_reason": "", "last_polled": null,
            "last_polled_timetaken": null, "last_discovered": null, "poller_group": 0,
            "disabled": false, "snmp": SnmpConfig::default(),
            "inserted": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        d.snmp.community = "old".into();
        d
    }

    fn ch(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn applies_fields_and_keeps_the_rest() {
        let s = apply(
            &device(),
            &ch(&[
                ("community", json!("new")),
                ("port", json!(1161)),
                ("timeout", json!("2.5")),
            ]),
        )
        .unwrap();
        assert_eq!(s.snmp.community, "new");
        assert_eq!(s.snmp.port, 1161);
        assert_eq!(s.snmp.timeout_ms, 2500);
        assert_eq!(s.snmp.retries, 2);
        assert!(!s.disabled);
        let s = apply(
            &device(),
            &ch(&[("disabled", json!(1)), ("poller_group", json!("2"))]),
        )
        .unwrap();
        assert!(s.disabled);
        assert_eq!(s.poller_group, 2);
    }

    #[test]
    fn v3_is_validated_and_v2c_drops_it() {
        let v3 = ch(&[
            ("snmpver", json!("v3")),
            ("authlevel", json!("authPriv")),
            ("authname", json!("ops")),
            ("authpass", json!("auth secret")),
            ("authalgo", json!("SHA-256")),
            ("cryptopass", json!("priv secret")),
            ("cryptoalgo", json!("AES-256")),
        ]);
        let s = apply(&device(), &v3).unwrap();
        assert_eq!(s.snmp.v3.as_ref().unwrap().auth_protocol, "SHA-256");
        let mut bad = v3.clone();
        bad.push(("authalgo".into(), json!("SHA-3")));
        assert!(apply(&device(), &bad)
            .unwrap_err()
            .contains("auth protocol"));
        let mut short = v3;
        short.push(("authpass".into(), json!("short")));
        assert!(apply(&device(), &short)
            .unwrap_err()
            .contains("8 characters"));
    }

    #[test]
    fn bad_values_name_the_field() {
        for (field, value, needle) in [
            ("port", json!(0), "port"),
            ("port", json!(70000), "port"),
            ("timeout", json!(600), "timeout"),
            ("retries", json!("x"), "retries"),
            ("snmpver", json!("v4"), "snmpver"),
            ("disabled", json!("maybe"), "disabled"),
            ("community", json!(""), "community"),
            ("hostname", json!("x"), "cannot be changed"),
            ("community", json!([1]), "community"),
        ] {
            let e = apply(&device(), &ch(&[(field, value)])).unwrap_err();
            assert!(e.contains(needle), "{field}: {e}");
        }
        assert!(apply(&device(), &[])
            .unwrap_err()
            .contains("nothing to change"));
    }

    #[test]
    fn librenms_and_plain_bodies() {
        assert_eq!(
            changes_of(&json!({"field": "community", "data": "x"})).unwrap(),
            ch(&[("community", json!("x"))])
        );
        assert_eq!(
            changes_of(&json!({"field": ["port", "retries"], "data": [1161, 1]})).unwrap(),
            ch(&[("port", json!(1161)), ("retries", json!(1))])
        );
        assert_eq!(
            changes_of(&json!({"port": 162})).unwrap(),
            ch(&[("port", json!(162))])
        );
        assert!(changes_of(&json!({"field": ["a"], "data": []})).is_err());
        assert!(changes_of(&json!([1])).is_err());
    }
}
