//! Public API of the poller's health modules and per-module settings: `processors`,
//! `mempools`, `storage` (LibreNMS tables, current values), per-device module overrides in
//! `devices_attribs` (`poll_<module>`, as LibreNMS), per-module poll timing in
//! `device_module_perf`, IPv4 addresses of ports (`ipv4_addresses`), and the port helpers the poller needs around a reboot or an ifIndex
//! renumbering. Operations are in `health_ops.rs`.

use lookout_core::{DeviceId, PortId, Timestamp};
use serde::{Deserialize, Serialize};

// What `run!` (defined in lib.rs before this module) refers to.
use crate::{mysql, mysql_ops, now, query_err, sqlite_ops, Inner, Result, Store};

/// A processor as the poller found it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessorPoll {
    pub processor_type: String,
    pub processor_index: String,
    pub processor_oid: String,
    pub processor_descr: String,
    /// Percent; `None` while the agent has no figure.
    pub processor_usage: Option<f64>,
}

/// A row of `processors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    pub processor_id: i64,
    pub device_id: DeviceId,
    pub processor_index: String,
    pub processor_type: String,
    pub processor_oid: String,
    pub processor_descr: String,
    pub processor_usage: Option<f64>,
    pub processor_precision: i32,
}

/// A memory pool as the poller found it (bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MempoolPoll {
    pub mempool_type: String,
    pub mempool_class: String,
    pub mempool_index: String,
    pub mempool_descr: String,
    pub mempool_perc: f64,
    pub mempool_used: u64,
    pub mempool_free: u64,
    pub mempool_total: u64,
}

/// A row of `mempools` (bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mempool {
    pub mempool_id: i64,
    pub device_id: DeviceId,
    pub mempool_index: String,
    pub mempool_type: String,
    pub mempool_class: String,
    pub mempool_precision: i32,
    pub mempool_descr: String,
    pub mempool_perc: f64,
    pub mempool_used: u64,
    pub mempool_free: u64,
    pub mempool_total: u64,
}

/// A storage entry as the poller found it (bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoragePoll {
    /// LibreNMS column `type`: the MIB, e.g. `hrstorage`.
    pub storage_mib: String,
    pub storage_index: i64,
    /// e.g. `hrStorageFixedDisk`.
    pub storage_type: Option<String>,
    pub storage_descr: String,
    pub storage_size: u64,
    pub storage_units: i64,
    pub storage_used: u64,
    pub storage_free: u64,
    pub storage_perc: f64,
}

/// A row of `storage` (bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    pub storage_id: i64,
    pub device_id: DeviceId,
    pub storage_mib: String,
    pub storage_index: i64,
    pub storage_type: Option<String>,
    pub storage_descr: String,
    pub storage_size: u64,
    pub storage_units: i64,
    pub storage_used: u64,
    pub storage_free: u64,
    pub storage_perc: f64,
}

/// An IPv4 address the poller found on an interface (IP-MIB ipAddrTable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ipv4AddressPoll {
    pub if_index: i64,
    pub ipv4_address: String,
    pub ipv4_prefixlen: i32,
}

/// A row of `ipv4_addresses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ipv4Address {
    pub ipv4_address_id: i64,
    pub device_id: DeviceId,
    pub port_id: PortId,
    pub ipv4_address: String,
    pub ipv4_prefixlen: i32,
}

/// What one poller module did in a device's last poll (`device_module_perf`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModulePerf {
    pub module: String,
    pub seconds: f64,
    /// `ok`, `failed` or `disabled`.
    pub status: String,
    pub message: Option<String>,
    pub polled_at: Timestamp,
}

/// How many of each thing with RRD files the store knows (for the projected disk use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RrdInventory {
    pub devices: u64,
    /// Devices polled at least once (the others have no ports or health rows yet).
    pub polled_devices: u64,
    /// Current (not deleted) ports.
    pub ports: u64,
    pub processors: u64,
    pub mempools: u64,
    pub storage: u64,
}

impl RrdInventory {
    /// These counts with the never-polled devices given the average ports and health
    /// entries of the polled ones: what the files will be once every device was polled.
    pub fn estimated(&self) -> RrdInventory {
        let polled = self.polled_devices.min(self.devices);
        if polled == 0 || polled == self.devices {
            return *self;
        }
        let scale = |n: u64| n + (n * (self.devices - polled)).div_ceil(polled);
        RrdInventory {
            devices: self.devices,
            polled_devices: self.devices,
            ports: scale(self.ports),
            processors: scale(self.processors),
            mempools: scale(self.mempools),
            storage: scale(self.storage),
        }
    }
}

impl Store {
    /// Counts of devices, current ports, processors, mempools and storage entries.
    pub async fn rrd_inventory(&self) -> Result<RrdInventory> {
        run!(self, read, "rrd_inventory", rrd_inventory())
    }

    /// Replaces a device's processors with what the poll found (matched by type and index;
    /// rows not found any more are deleted) and returns the rows.
    pub async fn sync_processors(
        &self,
        device_id: DeviceId,
        polled: &[ProcessorPoll],
    ) -> Result<Vec<Processor>> {
        run!(
            self,
            write,
            "sync_processors",
            sync_processors(device_id, polled)
        )
    }

    pub async fn processors(&self, device_id: DeviceId) -> Result<Vec<Processor>> {
        run!(self, read, "processors", processors(device_id))
    }

    /// Like [`Store::sync_processors`], matched by type, class and index.
    pub async fn sync_mempools(
        &self,
        device_id: DeviceId,
        polled: &[MempoolPoll],
    ) -> Result<Vec<Mempool>> {
        run!(
            self,
            write,
            "sync_mempools",
            sync_mempools(device_id, polled)
        )
    }

    pub async fn mempools(&self, device_id: DeviceId) -> Result<Vec<Mempool>> {
        run!(self, read, "mempools", mempools(device_id))
    }

    /// Like [`Store::sync_processors`], matched by `type` (MIB) and index.
    pub async fn sync_storage(
        &self,
        device_id: DeviceId,
        polled: &[StoragePoll],
    ) -> Result<Vec<Storage>> {
        run!(self, write, "sync_storage", sync_storage(device_id, polled))
    }

    pub async fn storage(&self, device_id: DeviceId) -> Result<Vec<Storage>> {
        run!(self, read, "storage", storage(device_id))
    }

    /// Turns a poller module on or off for one device (`Some`), or back to the global
    /// setting (`None`): LibreNMS's `devices_attribs` row `poll_<module>` = `1`/`0`.
    pub async fn set_module_override(
        &self,
        device_id: DeviceId,
        module: &str,
        enabled: Option<bool>,
    ) -> Result<()> {
        let attrib = format!("poll_{module}");
        let value = enabled.map(|on| if on { "1" } else { "0" });
        let at = now();
        run!(
            self,
            write,
            "set_device_attrib",
            set_device_attrib(device_id, &attrib, value, at)
        )
    }

    /// The device's module overrides: `(module, enabled)` from `poll_<module>` attribs.
    pub async fn module_overrides(&self, device_id: DeviceId) -> Result<Vec<(String, bool)>> {
        let attribs: Vec<(String, String)> =
            run!(self, read, "device_attribs", device_attribs(device_id))?;
        Ok(attribs
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("poll_")?.to_string(), v != "0")))
            .collect())
    }

    /// Records what each module took in the device's latest poll (one row per module,
    /// replaced each poll).
    pub async fn record_module_perf(&self, device_id: DeviceId, perf: &[ModulePerf]) -> Result<()> {
        run!(
            self,
            write,
            "record_module_perf",
            record_module_perf(device_id, perf)
        )
    }

    /// Per-module timing of the device's latest poll, by module name.
    pub async fn module_perf(&self, device_id: DeviceId) -> Result<Vec<ModulePerf>> {
        run!(self, read, "module_perf", module_perf(device_id))
    }

    /// Replaces a device's IPv4 addresses; each is attached to the (non-deleted) port with
    /// its ifIndex, addresses on unknown interfaces are skipped. Sync ports first.
    pub async fn sync_ipv4_addresses(
        &self,
        device_id: DeviceId,
        polled: &[Ipv4AddressPoll],
    ) -> Result<Vec<Ipv4Address>> {
        run!(
            self,
            write,
            "sync_ipv4_addresses",
            sync_ipv4_addresses(device_id, polled)
        )
    }

    pub async fn ipv4_addresses(&self, device_id: DeviceId) -> Result<Vec<Ipv4Address>> {
        run!(self, read, "ipv4_addresses", ipv4_addresses(device_id))
    }

    /// Sets `devices.last_discovered` (the poller's discovery-only work ran).
    pub async fn mark_discovered(&self, device_id: DeviceId, at: Timestamp) -> Result<()> {
        let at = crate::micros(at);
        run!(
            self,
            write,
            "mark_discovered",
            mark_discovered(device_id, at)
        )
    }

    /// Forgets the device's port counters, so that the next `sync_ports` computes no rates:
    /// after an agent restart the old readings are no base for a difference (a 32-bit
    /// counter that restarted would otherwise look like a wrap).
    pub async fn reset_port_counters(&self, device_id: DeviceId) -> Result<()> {
        run!(
            self,
            write,
            "reset_port_counters",
            reset_port_counters(device_id)
        )
    }

    /// Gives existing ports new ifIndexes (`(port_id, new ifIndex)`), for an agent that
    /// renumbered its interfaces: the poller matches them by ifName/ifDescr first, so that
    /// port ids, RRD files and history stay with the interface.
    pub async fn renumber_ports(&self, device_id: DeviceId, moves: &[(PortId, i64)]) -> Result<()> {
        if moves.is_empty() {
            return Ok(());
        }
        run!(
            self,
            write,
            "renumber_ports",
            renumber_ports(device_id, moves)
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn never_polled_devices_get_the_average() {
        let inv = RrdInventory {
            devices: 10,
            polled_devices: 2,
            ports: 48,
            processors: 4,
            mempools: 2,
            storage: 3,
        };
        let e = inv.estimated();
        assert_eq!(
            (e.ports, e.processors, e.mempools, e.storage),
            (240, 20, 10, 15)
        );
        let none = RrdInventory {
            polled_devices: 0,
            ..inv
        };
        assert_eq!(none.estimated(), none);
    }
}
