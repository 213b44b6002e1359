//! Devices and how to reach them over SNMP.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DeviceId, Timestamp};

/// SNMP protocol version of a device (LibreNMS `snmpver`: `v1`, `v2c`, `v3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpVersion {
    V1,
    #[default]
    V2c,
    V3,
}

impl SnmpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SnmpVersion::V1 => "v1",
            SnmpVersion::V2c => "v2c",
            SnmpVersion::V3 => "v3",
        }
    }
}

impl fmt::Display for SnmpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an SNMP version string that is not `v1`, `v2c` or `v3`.
#[derive(Debug, thiserror::Error)]
#[error("unknown SNMP version {0:?} (expected v1, v2c or v3)")]
pub struct UnknownSnmpVersion(pub String);

impl FromStr for SnmpVersion {
    type Err = UnknownSnmpVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "v1" | "1" => Ok(SnmpVersion::V1),
            "v2c" | "2c" | "v2" | "2" => Ok(SnmpVersion::V2c),
            "v3" | "3" => Ok(SnmpVersion::V3),
            _ => Err(UnknownSnmpVersion(s.to_string())),
        }
    }
}

/// SNMPv3 USM settings, kept as the strings users type (LibreNMS columns `authlevel`,
/// `authname`, `authpass`, `authalgo`, `cryptopass`, `cryptoalgo`). The SNMP engine
/// parses and validates them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnmpV3Config {
    /// `noAuthNoPriv`, `authNoPriv` or `authPriv`.
    pub security_level: String,
    pub auth_user: String,
    /// `MD5`, `SHA`, `SHA-224`, `SHA-256`, `SHA-384`, `SHA-512`.
    pub auth_protocol: String,
    pub auth_password: String,
    /// `DES`, `AES`, `AES-192`, `AES-256`.
    pub priv_protocol: String,
    pub priv_password: String,
}

/// How to reach a device's SNMP agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnmpConfig {
    pub version: SnmpVersion,
    /// UDP port of the agent (LibreNMS `port`), default 161.
    pub port: u16,
    /// Community for v1/v2c (LibreNMS `community`).
    pub community: String,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u32,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Present for v3.
    pub v3: Option<SnmpV3Config>,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        SnmpConfig {
            version: SnmpVersion::V2c,
            port: 161,
            community: "public".to_string(),
            timeout_ms: 1000,
            retries: 2,
            v3: None,
        }
    }
}

/// Up/down as LibreNMS stores it (`status` 1/0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Up,
    Down,
}

impl DeviceStatus {
    pub fn is_up(self) -> bool {
        self == DeviceStatus::Up
    }
}

/// A monitored device (a row of `devices`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: DeviceId,
    /// Name or IP address used to reach the device; unique.
    pub hostname: String,
    /// `sysName`
    pub sys_name: Option<String>,
    /// `sysDescr`
    pub sys_descr: Option<String>,
    /// `sysObjectID`, numeric dotted form.
    pub sys_object_id: Option<String>,
    /// `sysContact`
    pub sys_contact: Option<String>,
    /// `location` in LibreNMS (from sysLocation).
    pub sys_location: Option<String>,
    /// LibreNMS OS identifier (`linux`, `ios`, ... or `generic`).
    pub os: String,
    pub hardware: Option<String>,
    pub version: Option<String>,
    pub serial: Option<String>,
    /// Seconds since the device (re)started: hrSystemUptime when the agent has it (an
    /// agent restart does not reset it), else sysUpTime (see `uptime_source`).
    pub uptime: Option<i64>,
    /// `hrSystemUptime` or `sysUpTime`: where `uptime` came from.
    #[serde(default)]
    pub uptime_source: Option<String>,
    pub status: DeviceStatus,
    /// Why the device is down (LibreNMS `status_reason`: `snmp`, `icmp`, or a message).
    pub status_reason: String,
    pub last_polled: Option<Timestamp>,
    /// Seconds the last poll took (`last_polled_timetaken`).
    pub last_polled_timetaken: Option<f64>,
    pub last_discovered: Option<Timestamp>,
    pub poller_group: i32,
    pub disabled: bool,
    pub snmp: SnmpConfig,
    /// When the device was added (`inserted`).
    pub inserted: Timestamp,
}

/// What `device add` stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDevice {
    pub hostname: String,
    pub snmp: SnmpConfig,
    pub poller_group: i32,
}

/// What one poll learned about the device itself; written in one statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevicePollUpdate {
    pub sys_name: Option<String>,
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    pub sys_contact: Option<String>,
    pub sys_location: Option<String>,
    pub os: Option<String>,
    pub hardware: Option<String>,
    pub version: Option<String>,
    pub serial: Option<String>,
    pub uptime: Option<i64>,
    /// Where `uptime` came from (`hrSystemUptime` / `sysUpTime`).
    #[serde(default)]
    pub uptime_source: Option<String>,
    pub status: DeviceStatus,
    pub status_reason: String,
    pub last_polled: Timestamp,
    pub last_polled_timetaken: f64,
}

impl DevicePollUpdate {
    /// The device row as the store writes it with this update: a value the poll did not
    /// learn (`None`) keeps what was stored, as the store's `COALESCE` does.
    pub fn applied_to(&self, device: &Device) -> Device {
        fn keep<T: Clone>(new: &Option<T>, old: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        Device {
            sys_name: keep(&self.sys_name, &device.sys_name),
            sys_descr: keep(&self.sys_descr, &device.sys_descr),
            sys_object_id: keep(&self.sys_object_id, &device.sys_object_id),
            sys_contact: keep(&self.sys_contact, &device.sys_contact),
            sys_location: keep(&self.sys_location, &device.sys_location),
            os: self.os.clone().unwrap_or_else(|| device.os.clone()),
            hardware: keep(&self.hardware, &device.hardware),
            version: keep(&self.version, &device.version),
            serial: keep(&self.serial, &device.serial),
            uptime: self.uptime.or(device.uptime),
            uptime_source: keep(&self.uptime_source, &device.uptime_source),
            status: self.status,
            status_reason: self.status_reason.clone(),
            last_polled: Some(self.last_polled),
            last_polled_timetaken: Some(self.last_polled_timetaken),
            ..device.clone()
        }
    }
}

/// A hostname that cannot be a device address.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("hostname is empty")]
    Empty,
    #[error("hostname is longer than 253 characters")]
    TooLong,
    #[error("hostname {0:?} contains {1:?}, which is not allowed in a DNS name or IP address")]
    BadCharacter(String, char),
    #[error("hostname {0:?} has an empty or over-long label")]
    BadLabel(String),
}

/// Checks that `host` is an IP address (v4, or v6 optionally in brackets) or a DNS name,
/// so that nothing malformed reaches the store or a resolver.
pub fn validate_hostname(host: &str) -> Result<(), HostnameError> {
    if host.is_empty() {
        return Err(HostnameError::Empty);
    }
    if host.len() > 253 {
        return Err(HostnameError::TooLong);
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_'))
    {
        return Err(HostnameError::BadCharacter(host.to_string(), c));
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed
        .split('.')
        .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(HostnameError::BadLabel(host.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_print() {
        for v in [SnmpVersion::V1, SnmpVersion::V2c, SnmpVersion::V3] {
            assert_eq!(v.as_str().parse::<SnmpVersion>().ok(), Some(v));
        }
        assert!("v4".parse::<SnmpVersion>().is_err());
    }

    #[test]
    fn hostnames() {
        for ok in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "router1.example.net",
            "sw-01",
            "a_b",
        ] {
            assert_eq!(validate_hostname(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_hostname(""), Err(HostnameError::Empty));
        assert!(matches!(
            validate_hostname("bad host"),
            Err(HostnameError::BadCharacter(_, ' '))
        ));
        assert!(matches!(
            validate_hostname("a;rm -rf"),
            Err(HostnameError::BadCharacter(_, ';'))
        ));
        assert!(matches!(
            validate_hostname("a..b"),
            Err(HostnameError::BadLabel(_))
        ));
        assert!(matches!(
            validate_hostname("-a.b"),
            Err(HostnameError::BadLabel(_))
        ));
        assert_eq!(
            validate_hostname(&"a".repeat(254)),
            Err(HostnameError::TooLong)
        );
    }
}
