//! Domain types shared by every Lookout crate: devices, their SNMP settings, ports and
//! the values a poll produces. Pure data and validation: no I/O, no clock.
//!
//! Field names follow Rust conventions; where a LibreNMS column exists the doc names it,
//! and the store and the API map to those names (`sysName`, `ifInOctets_rate`, ...).

pub mod device;
pub mod port;

pub use device::{
    validate_hostname, Device, DevicePollUpdate, DeviceStatus, HostnameError, NewDevice,
    SnmpConfig, SnmpV3Config, SnmpVersion, UnknownSnmpVersion,
};
pub use port::{Port, PortCounters, PortPoll};

/// Identifier of a row in `devices` (LibreNMS `device_id`).
pub type DeviceId = i64;
/// Identifier of a row in `ports` (LibreNMS `port_id`).
pub type PortId = i64;
/// Time stamps are UTC everywhere; the web UI renders them.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
