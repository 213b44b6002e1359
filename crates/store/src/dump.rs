//! The whole store as one serialisable value, to move an installation between backends
//! (`lookout db export` on SQLite, `lookout db import` into MariaDB). Ids are kept, so
//! references between rows and from RRD file names (`port-id<port_id>.rrd`) stay valid.
//!
//! Format 2 adds what the poller's modules found (processors, mempools, storage, IPv4/IPv6
//! addresses, neighbours); a format 1 dump imports with those empty (the next discovery
//! and poll fill them).
//!
//! Not carried: the `*_prev` counters and `poll_prev` of ports (inputs of the rate already
//! stored; the next poll rates from the current counters) and the migration bookkeeping
//! (the target has its own).

use lookout_core::{Device, Port};
use serde::{Deserialize, Serialize};

use crate::{Event, Ipv4Address, Ipv6Address, Link, Mempool, Processor, Storage};

/// Version of the [`Dump`] layout; bumped when a field changes meaning.
pub const DUMP_FORMAT: u32 = 2;

/// Every row of every table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    /// [`DUMP_FORMAT`] of the writer.
    pub format: u32,
    pub devices: Vec<Device>,
    /// Deleted ports included.
    pub ports: Vec<Port>,
    pub events: Vec<Event>,
    pub users: Vec<DumpUser>,
    pub api_tokens: Vec<DumpApiToken>,
    #[serde(default)]
    pub processors: Vec<Processor>,
    #[serde(default)]
    pub mempools: Vec<Mempool>,
    #[serde(default)]
    pub storage: Vec<Storage>,
    #[serde(default)]
    pub ipv4_addresses: Vec<Ipv4Address>,
    #[serde(default)]
    pub ipv6_addresses: Vec<Ipv6Address>,
    #[serde(default)]
    pub links: Vec<Link>,
}

/// A user with the password hash (which `User` never serialises).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpUser {
    pub user_id: i64,
    pub username: String,
    pub password_hash: String,
    pub level: i32,
}

/// A row of `api_tokens` (the SHA-256 digest, never a usable token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpApiToken {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub description: String,
    pub disabled: bool,
}

/// Rows written per transaction on import: short transactions (Galera certifies each
/// write set as a whole and large ones stall the cluster).
pub(crate) const IMPORT_CHUNK: usize = 500;

/// The module tables of `dump` (processors ... links) as partial dumps of at most
/// [`IMPORT_CHUNK`] rows each, parents first, one import transaction each.
pub(crate) fn module_parts(dump: &Dump) -> Vec<Dump> {
    let empty = || Dump {
        format: dump.format,
        devices: Vec::new(),
        ports: Vec::new(),
        events: Vec::new(),
        users: Vec::new(),
        api_tokens: Vec::new(),
        processors: Vec::new(),
        mempools: Vec::new(),
        storage: Vec::new(),
        ipv4_addresses: Vec::new(),
        ipv6_addresses: Vec::new(),
        links: Vec::new(),
    };
    let mut parts = Vec::new();
    for c in dump.processors.chunks(IMPORT_CHUNK) {
        parts.push(Dump {
            processors: c.to_vec(),
            ..empty()
        });
    }
    for c in dump.mempools.chunks(IMPORT_CHUNK) {
        parts.push(Dump {
            mempools: c.to_vec(),
            ..empty()
        });
    }
    for c in dump.storage.chunks(IMPORT_CHUNK) {
        parts.push(Dump {
            storage: c.to_vec(),
            ..empty()
        });
    }
    for c in dump.ipv4_addresses.chunks(IMPORT_CHUNK) {
        parts.push(Dump {
            ipv4_addresses: c.to_vec(),
            ..empty()
        });
    }
    for c in dump.ipv6_addresses.chunks(IMPORT_CHUNK) {
        parts.push(Dump {
            ipv6_addresses: c.to_vec(),
            ..empty()
        });
    }
    for c in dump.links.chunks(IMPORT_CHUNK) {
        parts.push(Dump {
            links: c.to_vec(),
            ..empty()
        });
    }
    parts
}
