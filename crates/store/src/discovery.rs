//! Public API of the discovery tables and of the poll commit:
//! - `links`: LLDP/CDP neighbours of a device's ports (LibreNMS's table), replaced on each
//!   discovery, with the neighbour resolved to a known device (and port) where possible;
//! - `ipv6_addresses`: IPv6 addresses of ports (LibreNMS's table);
//! - [`PollCommit`]: everything one poll writes (device row, ports, health rows,
//!   addresses, neighbours, module timing, events, poll log), applied by
//!   [`Store::commit_poll`] in ONE transaction which, for a fenced poll, first checks that
//!   the poll's claim token is still the device's `poll_token`. A stale poll thus writes
//!   nothing at all, and the caller knows it before touching the RRD files.
//!
//! Operations are in `discovery_ops.rs`.

use lookout_core::{DeviceId, DevicePollUpdate, Port, PortId, PortPoll, Timestamp};
use serde::{Deserialize, Serialize};

// What `run!` (defined in lib.rs before this module) refers to.
use crate::{
    mysql, mysql_ops, now, query_err, sqlite_ops, Inner, Ipv4AddressPoll, MempoolPoll, ModulePerf,
    PollFence, PortSync, ProcessorPoll, Result, Severity, StoragePoll, Store,
};

/// A neighbour the poller found on a local interface (LLDP or CDP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPoll {
    /// ifIndex of the local port (`None` when the agent's port number maps to no interface).
    pub local_if_index: Option<i64>,
    /// `lldp` or `cdp`.
    pub protocol: String,
    /// The neighbour's name (LLDP system name, CDP device id).
    pub remote_hostname: String,
    /// The neighbour's port (LLDP port id/description, CDP device port).
    pub remote_port: String,
    /// LLDP system description's first line, CDP platform.
    pub remote_platform: Option<String>,
    /// CDP software version (LLDP system description).
    pub remote_version: Option<String>,
    /// The neighbour's management address, if it announced one (helps to find it among
    /// the known devices).
    pub remote_address: Option<String>,
}

/// A row of `links` (LibreNMS's names, as the API returns them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: i64,
    pub local_port_id: Option<PortId>,
    pub local_device_id: DeviceId,
    pub remote_port_id: Option<PortId>,
    pub active: bool,
    pub protocol: String,
    pub remote_hostname: String,
    pub remote_device_id: Option<DeviceId>,
    pub remote_port: String,
    pub remote_platform: Option<String>,
    pub remote_version: Option<String>,
}

/// An IPv6 address the poller found on an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6AddressPoll {
    pub if_index: i64,
    /// Full form, 8 groups of 4 hex digits (LibreNMS `ipv6_address`).
    pub ipv6_address: String,
    /// RFC 5952 form (LibreNMS `ipv6_compressed`).
    pub ipv6_compressed: String,
    pub ipv6_prefixlen: i32,
    /// `manual`, `dhcp`, `linklayer`, `random` or `other`.
    pub ipv6_origin: String,
}

/// A row of `ipv6_addresses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Address {
    pub ipv6_address_id: i64,
    pub device_id: DeviceId,
    pub port_id: PortId,
    pub ipv6_address: String,
    pub ipv6_compressed: String,
    pub ipv6_prefixlen: i32,
    pub ipv6_origin: String,
}

/// An event log entry to write with a poll.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub message: String,
    pub severity: Severity,
    pub reference: Option<i64>,
}

impl NewEvent {
    pub fn new(kind: &str, message: impl Into<String>, severity: Severity) -> NewEvent {
        NewEvent {
            kind: kind.to_string(),
            message: message.into(),
            severity,
            reference: None,
        }
    }
}

/// Events that follow from a port sync (added/removed/status changes), computed inside the
/// commit's transaction from the ports before the sync (after renumbering) and the sync.
pub type PortEventsFn = fn(before: &[Port], sync: &PortSync) -> Vec<NewEvent>;

/// What the ports module found, to be written by [`Store::commit_poll`].
#[derive(Clone, Debug)]
pub struct PortsStage {
    pub polled: Vec<PortPoll>,
    pub polled_at: Timestamp,
    /// The agent restarted: forget the stored counters first (no rate this poll).
    pub reset_counters: bool,
    /// `(port_id, new ifIndex)` of renumbered interfaces, applied before the sync.
    pub moves: Vec<(PortId, i64)>,
    /// Port events from the sync (`None`: none).
    pub events: Option<PortEventsFn>,
}

/// Everything one poll writes. `None` fields are left as stored (a module that did not
/// run or failed keeps its last good rows).
#[derive(Clone, Debug)]
pub struct PollCommit {
    pub update: DevicePollUpdate,
    /// The poll's claim; `None` for an unfenced (single node) poll.
    pub fence: Option<PollFence>,
    pub ports: Option<PortsStage>,
    /// Replaces the addresses (after the ports they attach to).
    pub ipv4_addresses: Option<Vec<Ipv4AddressPoll>>,
    pub ipv6_addresses: Option<Vec<Ipv6AddressPoll>>,
    pub processors: Option<Vec<ProcessorPoll>>,
    pub mempools: Option<Vec<MempoolPoll>>,
    pub storage: Option<Vec<StoragePoll>>,
    /// Replaces the device's neighbours (discovery).
    pub links: Option<Vec<LinkPoll>>,
    pub module_perf: Vec<ModulePerf>,
    /// Sets `last_discovered`.
    pub discovered_at: Option<Timestamp>,
    /// Written after the port events.
    pub events: Vec<NewEvent>,
    /// Alert decisions made inside this commit, from what it wrote (see `crate::alerts`).
    pub alerts: Option<crate::PollAlerts>,
}

impl PollCommit {
    /// A commit that writes only the device row (and the poll log when fenced).
    pub fn new(update: DevicePollUpdate, fence: Option<PollFence>) -> PollCommit {
        PollCommit {
            update,
            fence,
            ports: None,
            ipv4_addresses: None,
            ipv6_addresses: None,
            processors: None,
            mempools: None,
            storage: None,
            links: None,
            module_perf: Vec::new(),
            discovered_at: None,
            events: Vec::new(),
            alerts: None,
        }
    }
}

/// What [`Store::commit_poll`] wrote that the caller needs next (RRD files by port id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollCommitted {
    /// The port sync, when the commit had ports.
    pub ports: Option<PortSync>,
    /// Events written (port events included).
    pub events: usize,
}

impl Store {
    /// Writes one poll's results in a single transaction: for a fenced poll, first the
    /// token check (`StoreError::Fenced` and nothing written when a newer claim owns the
    /// device), then ports (counter reset, renumbering, sync, port events), addresses,
    /// health rows, neighbours, the device row, the `ok` poll log row, module timing,
    /// `last_discovered` and events. On MySQL the transaction is retried as a whole on
    /// transient errors (every step is idempotent for the same commit).
    pub async fn commit_poll(
        &self,
        device_id: DeviceId,
        commit: &PollCommit,
    ) -> Result<PollCommitted> {
        let at = now();
        // Shared: the SQLite writer may run the transaction again (`sqlite::Files::retry`).
        let commit = std::sync::Arc::new(normalised(commit));
        if let crate::Inner::Sqlite(b) = &*self.inner {
            return b
                .write_on_writer("commit_poll", move |c| {
                    let commit = commit.clone();
                    Box::pin(
                        async move { sqlite_ops::commit_poll(c, device_id, &commit, at).await },
                    )
                })
                .await;
        }
        let commit = &commit;
        run!(
            self,
            write,
            "commit_poll",
            commit_poll(device_id, commit, at)
        )
    }

    /// Replaces a device's neighbours; each is attached to the local port with its ifIndex
    /// (`local_port_id` NULL when none) and resolved to a known device by name or
    /// management address, and to that device's port by ifName/ifDescr.
    pub async fn sync_links(&self, device_id: DeviceId, polled: &[LinkPoll]) -> Result<Vec<Link>> {
        run!(self, write, "sync_links", sync_links(device_id, polled))
    }

    /// A device's neighbours, by local port.
    pub async fn links(&self, device_id: DeviceId) -> Result<Vec<Link>> {
        run!(self, read, "links", links(device_id))
    }

    /// Replaces a device's IPv6 addresses (like [`Store::sync_ipv4_addresses`]).
    pub async fn sync_ipv6_addresses(
        &self,
        device_id: DeviceId,
        polled: &[Ipv6AddressPoll],
    ) -> Result<Vec<Ipv6Address>> {
        run!(
            self,
            write,
            "sync_ipv6_addresses",
            sync_ipv6_addresses(device_id, polled)
        )
    }

    pub async fn ipv6_addresses(&self, device_id: DeviceId) -> Result<Vec<Ipv6Address>> {
        run!(self, read, "ipv6_addresses", ipv6_addresses(device_id))
    }

    /// Makes the device's next poll run discovery (clears `last_discovered`), as LibreNMS's
    /// "rediscover". `StoreError::NotFound` for an unknown device.
    pub async fn request_discovery(&self, device_id: DeviceId) -> Result<()> {
        run!(
            self,
            write,
            "request_discovery",
            request_discovery(device_id)
        )
    }
}

/// Time stamps to the microsecond, as stored (a retried transaction must write the same).
fn normalised(c: &PollCommit) -> PollCommit {
    let mut c = c.clone();
    if let Some(p) = &mut c.ports {
        p.polled_at = crate::micros(p.polled_at);
    }
    c.discovered_at = c.discovered_at.map(crate::micros);
    c
}
