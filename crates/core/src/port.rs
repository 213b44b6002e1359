//! Interfaces (`ports`) and the counters a poll reads from IF-MIB.

use serde::{Deserialize, Serialize};

use crate::{DeviceId, PortId, Timestamp};

/// IF-MIB counters of one interface at one moment. 64-bit HC counters are used where
/// the agent has them (`ifHCInOctets` ...), else the 32-bit ones; `None` when the agent
/// did not return the object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCounters {
    pub in_octets: Option<u64>,
    pub out_octets: Option<u64>,
    pub in_ucast_pkts: Option<u64>,
    pub out_ucast_pkts: Option<u64>,
    /// Non-unicast = broadcast + multicast, as LibreNMS's INNUCASTPKTS.
    pub in_nucast_pkts: Option<u64>,
    pub out_nucast_pkts: Option<u64>,
    pub in_errors: Option<u64>,
    pub out_errors: Option<u64>,
    pub in_discards: Option<u64>,
    pub out_discards: Option<u64>,
    pub in_unknown_protos: Option<u64>,
    pub in_broadcast_pkts: Option<u64>,
    pub out_broadcast_pkts: Option<u64>,
    pub in_multicast_pkts: Option<u64>,
    pub out_multicast_pkts: Option<u64>,
    /// True when the octet counters came from the 64-bit ifHC* columns.
    pub hc: bool,
}

/// What one poll read about one interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortPoll {
    pub if_index: i64,
    pub if_name: Option<String>,
    pub if_descr: Option<String>,
    pub if_alias: Option<String>,
    /// IANAifType name, e.g. `ethernetCsmacd`, or the number when unknown.
    pub if_type: Option<String>,
    pub if_mtu: Option<i64>,
    /// Bits per second; from ifHighSpeed * 1e6 when ifSpeed saturates at 2^32-1.
    pub if_speed: Option<u64>,
    /// MAC address as lowercase hex without separators (LibreNMS `ifPhysAddress`).
    pub if_phys_address: Option<String>,
    /// `up`, `down`, `testing`, ...
    pub if_admin_status: Option<String>,
    /// `up`, `down`, `testing`, `unknown`, `dormant`, `notPresent`, `lowerLayerDown`.
    pub if_oper_status: Option<String>,
    pub counters: PortCounters,
}

/// A row of `ports` as stored, with the rates the last two polls gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub port_id: PortId,
    pub device_id: DeviceId,
    pub if_index: i64,
    pub if_name: Option<String>,
    pub if_descr: Option<String>,
    pub if_alias: Option<String>,
    pub if_type: Option<String>,
    pub if_mtu: Option<i64>,
    pub if_speed: Option<u64>,
    pub if_phys_address: Option<String>,
    pub if_admin_status: Option<String>,
    pub if_oper_status: Option<String>,
    /// Counters of the last poll (LibreNMS `ifInOctets`, ...), the base for the next rate.
    pub counters: PortCounters,
    /// Bytes per second in/out (LibreNMS `ifInOctets_rate`, `ifOutOctets_rate`).
    pub in_octets_rate: Option<f64>,
    pub out_octets_rate: Option<f64>,
    /// Packets per second (`ifInUcastPkts_rate`, `ifOutUcastPkts_rate`).
    pub in_ucast_pkts_rate: Option<f64>,
    pub out_ucast_pkts_rate: Option<f64>,
    /// Errors per second (`ifInErrors_rate`, `ifOutErrors_rate`).
    pub in_errors_rate: Option<f64>,
    pub out_errors_rate: Option<f64>,
    /// When the counters were read (`poll_time`).
    pub poll_time: Option<Timestamp>,
    /// Seconds between the last two polls (`poll_period`).
    pub poll_period: Option<f64>,
    /// Set when the interface disappeared from the agent (LibreNMS `deleted`).
    pub deleted: bool,
}

impl Port {
    /// The name an engineer recognises: ifName, else ifDescr, else `ifIndex N`.
    pub fn label(&self) -> String {
        self.if_name
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.if_descr.clone().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("ifIndex {}", self.if_index))
    }
}
