//! The core module: SNMPv2-MIB system group, OS detection, and hardware/version/serial from
//! the OS rules and the ENTITY-MIB chassis entry.

use lookout_snmp::{Oid, Session, SnmpError, Value};

use crate::os::identify;

/// What the system group says about a device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemInfo {
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    /// Seconds since the device started: hrSystemUptime when the agent has it, else
    /// sysUpTime (LibreNMS's preference: restarting the agent resets sysUpTime, not the
    /// host's uptime, and must not look like a reboot).
    pub uptime_secs: Option<i64>,
    /// `hrSystemUptime` or `sysUpTime`: where `uptime_secs` came from.
    pub uptime_source: Option<&'static str>,
    /// sysUpTime in seconds (the agent's own uptime).
    pub sys_uptime_secs: Option<i64>,
    pub sys_contact: Option<String>,
    pub sys_name: Option<String>,
    pub sys_location: Option<String>,
    /// LibreNMS OS identifier.
    pub os: String,
    /// Model, from ENTITY-MIB's chassis entPhysicalModelName or the OS rules.
    pub hardware: Option<String>,
    /// Software version, from the OS rules or the chassis entPhysicalSoftwareRev.
    pub version: Option<String>,
    /// Serial number, from the chassis entPhysicalSerialNum or the OS rules.
    pub serial: Option<String>,
}

const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];
/// HOST-RESOURCES-MIB::hrSystemUptime.0
const HR_SYSTEM_UPTIME: [u32; 10] = [1, 3, 6, 1, 2, 1, 25, 1, 1, 0];

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

/// GETs sysDescr.0 … sysLocation.0 and hrSystemUptime.0 in one PDU (SNMPv1: hrSystemUptime
/// in a second one, since a v1 agent without it would fail the whole request).
pub async fn poll_system(session: &Session) -> Result<SystemInfo, SnmpError> {
    let base = Oid::new(&SYSTEM);
    let hr = Oid::new(&HR_SYSTEM_UPTIME);
    let mut oids: Vec<Oid> = (1..=6).map(|i| base.join(&[i, 0])).collect();
    let v1 = session.version() == lookout_snmp::pdu::Version::V1;
    if !v1 {
        oids.push(hr.clone());
    }
    let mut vbs = session.get(&oids).await?;
    if v1 {
        // Absent (noSuchName) or failing: sysUpTime it is.
        if let Ok(more) = session.get(std::slice::from_ref(&hr)).await {
            vbs.extend(more);
        }
    }
    let mut info = SystemInfo::default();
    let mut hr_uptime = None;
    for vb in &vbs {
        if vb.oid == hr {
            hr_uptime = vb.value.as_i64().map(|t| t / 100);
            continue;
        }
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
            [3, 0] => info.sys_uptime_secs = vb.value.as_i64().map(|t| t / 100),
            [4, 0] => info.sys_contact = text(&vb.value),
            [5, 0] => info.sys_name = text(&vb.value),
            [6, 0] => info.sys_location = text(&vb.value),
            _ => {}
        }
    }
    (info.uptime_secs, info.uptime_source) = choose_uptime(hr_uptime, info.sys_uptime_secs);
    let os = identify(
        info.sys_object_id.as_deref().unwrap_or(""),
        info.sys_descr.as_deref().unwrap_or(""),
    );
    info.os = os.os;
    info.hardware = os.hardware;
    info.version = os.version;
    info.serial = os.serial;
    Ok(info)
}

/// hrSystemUptime when the agent gives one above zero, else sysUpTime.
fn choose_uptime(hr: Option<i64>, sys: Option<i64>) -> (Option<i64>, Option<&'static str>) {
    match (hr, sys) {
        (Some(h), _) if h > 0 => (Some(h), Some("hrSystemUptime")),
        (_, Some(s)) => (Some(s), Some("sysUpTime")),
        _ => (None, None),
    }
}

/// `ENTITY-MIB::entPhysicalEntry`.
const ENT_PHYSICAL_ENTRY: [u32; 11] = [1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1];

/// The chassis entry of ENTITY-MIB, when the agent has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chassis {
    pub index: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub software_rev: Option<String>,
}

/// The first entPhysicalClass row that is `chassis(3)`, from a walk of entPhysicalClass.
pub fn chassis_index(ent_physical_class: &[lookout_snmp::VarBind]) -> Option<u32> {
    let col = Oid::new(&ENT_PHYSICAL_ENTRY).child(5);
    ent_physical_class
        .iter()
        .find_map(|vb| match vb.oid.suffix_after(&col) {
            Some([idx]) if vb.value.as_i64() == Some(3) => Some(*idx),
            _ => None,
        })
}

/// Walks entPhysicalClass and GETs the chassis' model, serial and software revision.
/// Agents without ENTITY-MIB give `Ok(None)`.
pub async fn poll_chassis(session: &Session) -> Result<Option<Chassis>, SnmpError> {
    let entry = Oid::new(&ENT_PHYSICAL_ENTRY);
    let classes = session.walk(&entry.child(5)).await?;
    let Some(index) = chassis_index(&classes) else {
        return Ok(None);
    };
    let oids = [
        entry.join(&[13, index]),
        entry.join(&[11, index]),
        entry.join(&[10, index]),
    ];
    let vbs = session.get(&oids).await?;
    let get = |i: usize| vbs.get(i).and_then(|vb| text(&vb.value));
    Ok(Some(Chassis {
        index,
        model: get(0),
        serial: get(1),
        software_rev: get(2),
    }))
}

impl SystemInfo {
    /// Merges the chassis entry: ENTITY-MIB model and serial win over sysDescr guesses
    /// (they are what the device reports about itself); the version from the OS rules wins
    /// over entPhysicalSoftwareRev (often a ROM or board revision).
    pub fn merge_chassis(&mut self, c: &Chassis) {
        if c.model.is_some() {
            self.hardware = c.model.clone();
        }
        if c.serial.is_some() {
            self.serial = c.serial.clone();
        }
        if self.version.is_none() {
            self.version = c.software_rev.clone();
        }
    }
}

#[cfg(test)]
mod uptime_tests {
    use super::choose_uptime;

    #[test]
    fn host_uptime_first_then_the_agents() {
        assert_eq!(
            choose_uptime(Some(500), Some(3)),
            (Some(500), Some("hrSystemUptime"))
        );
        // Absent or zero (some agents answer 0): the agent's own.
        assert_eq!(choose_uptime(None, Some(3)), (Some(3), Some("sysUpTime")));
        assert_eq!(
            choose_uptime(Some(0), Some(3)),
            (Some(3), Some("sysUpTime"))
        );
        assert_eq!(choose_uptime(None, None), (None, None));
    }
}
