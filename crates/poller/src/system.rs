//! The core module: SNMPv2-MIB system group and OS detection.

use lookout_snmp::{Oid, Session, SnmpError, Value};

use crate::os::detect_os;

/// What the system group says about a device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemInfo {
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    /// sysUpTime in seconds.
    pub uptime_secs: Option<i64>,
    pub sys_contact: Option<String>,
    pub sys_name: Option<String>,
    pub sys_location: Option<String>,
    /// LibreNMS OS identifier.
    pub os: String,
}

const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];

fn text(v: &Value) -> Option<String> {
    match v {
        Value::OctetString(b) => {
            let s = String::from_utf8_lossy(b)
                .trim_end_matches('\0')
                .trim()
                .to_string();
            (!s.is_empty()).then_some(s)
        }
        _ => None,
    }
}

/// GETs sysDescr.0 … sysLocation.0 in one PDU.
pub async fn poll_system(session: &Session) -> Result<SystemInfo, SnmpError> {
    let base = Oid::new(&SYSTEM);
    let oids: Vec<Oid> = (1..=6).map(|i| base.join(&[i, 0])).collect();
    let vbs = session.get(&oids).await?;
    let mut info = SystemInfo::default();
    for vb in &vbs {
        let Some(rest) = vb.oid.suffix_after(&base) else {
            continue;
        };
        match rest {
            [1, 0] => info.sys_descr = text(&vb.value),
            [2, 0] => {
                if let Value::ObjectId(o) = &vb.value {
                    info.sys_object_id = Some(o.to_string());
                }
            }
            // TimeTicks are hundredths of a second.
            [3, 0] => info.uptime_secs = vb.value.as_i64().map(|t| t / 100),
            [4, 0] => info.sys_contact = text(&vb.value),
            [5, 0] => info.sys_name = text(&vb.value),
            [6, 0] => info.sys_location = text(&vb.value),
            _ => {}
        }
    }
    info.os = detect_os(
        info.sys_object_id.as_deref().unwrap_or(""),
        info.sys_descr.as_deref().unwrap_or(""),
    );
    Ok(info)
}
