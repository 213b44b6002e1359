//! SQL text and column lists shared by both dialects. Generated once from the column lists
//! below (kept by hand since); both SQLite and MySQL take `?` placeholders, so only the
//! row-locking suffix differs between dialects.

/// The `ports` columns `port_from_row` reads, as one literal for `concat!`.
macro_rules! port_columns {
    () => {
        "port_id, device_id, ifIndex, ifName, ifDescr, ifAlias, ifType, ifMtu, ifSpeed, \
     ifPhysAddress, ifAdminStatus, ifOperStatus, ifCountersHC, ifInOctets, ifOutOctets, \
     ifInUcastPkts, ifOutUcastPkts, ifInNUcastPkts, ifOutNUcastPkts, ifInErrors, ifOutErrors, \
     ifInDiscards, ifOutDiscards, ifInUnknownProtos, ifInBroadcastPkts, ifOutBroadcastPkts, \
     ifInMulticastPkts, ifOutMulticastPkts, ifInOctets_rate, ifOutOctets_rate, \
     ifInUcastPkts_rate, ifOutUcastPkts_rate, ifInErrors_rate, ifOutErrors_rate, poll_time, \
     poll_period, deleted"
    };
}

/// The `devices` columns `device_from_row` reads, as one literal for `concat!`.
macro_rules! device_columns {
    () => {
        "device_id, hostname, sysName, sysDescr, sysObjectID, sysContact, location, os, \
     hardware, version, serial, uptime, uptime_source, status, status_reason, last_polled, \
     last_polled_timetaken, last_discovered, poller_group, disabled, snmpver, port, community, \
     transport, timeout, retries, authlevel, authname, authpass, authalgo, cryptopass, \
     cryptoalgo, inserted"
    };
}

/// The IF-MIB counter columns, in the order of [`counter_values`].
pub(crate) const COUNTER_COLS: [&str; 15] = [
    "ifInOctets",
    "ifOutOctets",
    "ifInUcastPkts",
    "ifOutUcastPkts",
    "ifInNUcastPkts",
    "ifOutNUcastPkts",
    "ifInErrors",
    "ifOutErrors",
    "ifInDiscards",
    "ifOutDiscards",
    "ifInUnknownProtos",
    "ifInBroadcastPkts",
    "ifOutBroadcastPkts",
    "ifInMulticastPkts",
    "ifOutMulticastPkts",
];

/// Counter values in the order of [`COUNTER_COLS`].
pub(crate) fn counter_values(c: &lookout_core::PortCounters) -> [Option<u64>; 15] {
    [
        c.in_octets,
        c.out_octets,
        c.in_ucast_pkts,
        c.out_ucast_pkts,
        c.in_nucast_pkts,
        c.out_nucast_pkts,
        c.in_errors,
        c.out_errors,
        c.in_discards,
        c.out_discards,
        c.in_unknown_protos,
        c.in_broadcast_pkts,
        c.out_broadcast_pkts,
        c.in_multicast_pkts,
        c.out_multicast_pkts,
    ]
}

/// Builds counters from values in the order of [`COUNTER_COLS`].
pub(crate) fn counters_from_values(v: [Option<u64>; 15], hc: bool) -> lookout_core::PortCounters {
    lookout_core::PortCounters {
        in_octets: v[0],
        out_octets: v[1],
        in_ucast_pkts: v[2],
        out_ucast_pkts: v[3],
        in_nucast_pkts: v[4],
        out_nucast_pkts: v[5],
        in_errors: v[6],
        out_errors: v[7],
        in_discards: v[8],
        out_discards: v[9],
        in_unknown_protos: v[10],
        in_broadcast_pkts: v[11],
        out_broadcast_pkts: v[12],
        in_multicast_pkts: v[13],
        out_multicast_pkts: v[14],
        hc,
    }
}

pub(crate) const DEVICE_BY_ID: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices WHERE device_id = ?"
);

pub(crate) const DEVICE_BY_HOSTNAME: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices WHERE hostname = ?"
);

pub(crate) const DEVICES_ALL: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices ORDER BY hostname"
);

pub(crate) const PORT_BY_ID: &str =
    concat!("SELECT ", port_columns!(), " FROM ports WHERE port_id = ?");

pub(crate) const PORTS_OF_DEVICE: &str = concat!(
    "SELECT ",
    port_columns!(),
    " FROM ports WHERE device_id = ? AND deleted = 0 ORDER BY ifIndex"
);

/// Every current port of every device, paged by port id (the API's `/ports`).
pub(crate) const PORTS_ALL: &str = concat!(
    "SELECT ",
    port_columns!(),
    " FROM ports WHERE deleted = 0 AND port_id > ? ORDER BY port_id LIMIT ?"
);

/// The busiest current ports by in + out octets/s (the dashboard's top interfaces).
pub(crate) const PORTS_TOP: &str = concat!(
    "SELECT ",
    port_columns!(),
    " FROM ports WHERE deleted = 0 AND ifInOctets_rate IS NOT NULL \
     ORDER BY COALESCE(ifInOctets_rate, 0) + COALESCE(ifOutOctets_rate, 0) DESC LIMIT ?"
);

/// What `sync_ports` reads of the existing rows: all of them, deleted too, every column
/// (the non-deleted ones are also the "before" of the port events). Not a locking read:
/// the device row lock taken first serialises the writers of one device, and a
/// `FOR UPDATE` here took gap locks on MySQL that deadlocked concurrent first polls of
/// neighbouring devices (both lock the empty gap, then both insert into it).
pub(crate) const PORT_SYNC_SELECT: &str = concat!(
    "SELECT ",
    port_columns!(),
    " FROM ports WHERE device_id = ? ORDER BY ifIndex"
);

/// The device row, locked on MySQL (a record lock on the primary key: no gap lock, as the
/// row exists). Taken before any plain read of the transaction, so that the InnoDB
/// snapshot those reads use is made after the previous writer of the device committed.
pub(crate) const DEVICE_LOCK_FOR_UPDATE: &str =
    "SELECT device_id FROM devices WHERE device_id = ? FOR UPDATE";

/// SQLite: `BEGIN IMMEDIATE` already excludes other writers.
pub(crate) const DEVICE_LOCK: &str = "SELECT device_id FROM devices WHERE device_id = ?";

/// Columns of the batched port write, in bind order: the key, the descriptive columns,
/// HC, each counter with its `_prev`, the rates and the poll times. `_prev` values are
/// bound from what the transaction read, not written as `x_prev = x`: MySQL evaluates
/// SET left to right with the new values, SQLite with the old ones.
pub(crate) const PORT_UPSERT_COLS: [&str; 52] = [
    "port_id",
    "device_id",
    "ifIndex",
    "ifName",
    "ifDescr",
    "ifAlias",
    "ifType",
    "ifMtu",
    "ifSpeed",
    "ifPhysAddress",
    "ifAdminStatus",
    "ifOperStatus",
    "ifCountersHC",
    "ifInOctets",
    "ifInOctets_prev",
    "ifOutOctets",
    "ifOutOctets_prev",
    "ifInUcastPkts",
    "ifInUcastPkts_prev",
    "ifOutUcastPkts",
    "ifOutUcastPkts_prev",
    "ifInNUcastPkts",
    "ifInNUcastPkts_prev",
    "ifOutNUcastPkts",
    "ifOutNUcastPkts_prev",
    "ifInErrors",
    "ifInErrors_prev",
    "ifOutErrors",
    "ifOutErrors_prev",
    "ifInDiscards",
    "ifInDiscards_prev",
    "ifOutDiscards",
    "ifOutDiscards_prev",
    "ifInUnknownProtos",
    "ifInUnknownProtos_prev",
    "ifInBroadcastPkts",
    "ifInBroadcastPkts_prev",
    "ifOutBroadcastPkts",
    "ifOutBroadcastPkts_prev",
    "ifInMulticastPkts",
    "ifInMulticastPkts_prev",
    "ifOutMulticastPkts",
    "ifOutMulticastPkts_prev",
    "ifInOctets_rate",
    "ifOutOctets_rate",
    "ifInUcastPkts_rate",
    "ifOutUcastPkts_rate",
    "ifInErrors_rate",
    "ifOutErrors_rate",
    "poll_time",
    "poll_prev",
    "poll_period",
];

/// Rows per batched port statement: 52 parameters each keeps a statement far below
/// SQLite's 32,766 and MySQL's 65,535 placeholders, and a Galera write set small.
pub(crate) const PORT_BATCH: usize = 100;

/// `rows` rows of `cols` placeholders each: `(?, ?), (?, ?)`.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}

/// A multi-row write of polled ports that already have a row (matched by `port_id`, so
/// the insert branch is never taken). `upsert_tail` is the dialect's conflict clause
/// (SQLite `ON CONFLICT(port_id) DO UPDATE SET c = excluded.c`, MySQL `ON DUPLICATE KEY
/// UPDATE c = VALUES(c)`); `deleted` is reset as a polled port exists again.
pub(crate) fn port_upsert(rows: usize, sqlite: bool) -> String {
    let cols = PORT_UPSERT_COLS;
    let sets: Vec<String> = cols[1..]
        .iter()
        .map(|c| {
            if sqlite {
                format!("{c} = excluded.{c}")
            } else {
                format!("{c} = VALUES({c})")
            }
        })
        .chain(std::iter::once("deleted = 0".to_string()))
        .collect();
    let tail = if sqlite {
        "ON CONFLICT(port_id) DO UPDATE SET"
    } else {
        "ON DUPLICATE KEY UPDATE"
    };
    format!(
        "INSERT INTO ports ({}) VALUES {} {tail} {}",
        cols.join(", "),
        placeholders(rows, cols.len()),
        sets.join(", ")
    )
}

/// New ports, `rows` at a time (`deleted` takes its default, 0).
pub(crate) fn port_insert(rows: usize) -> String {
    format!(
        "INSERT INTO ports (device_id, ifIndex, ifName, ifDescr, ifAlias, ifType, ifMtu, \
         ifSpeed, ifPhysAddress, ifAdminStatus, ifOperStatus, ifCountersHC, ifInOctets, \
         ifOutOctets, ifInUcastPkts, ifOutUcastPkts, ifInNUcastPkts, ifOutNUcastPkts, \
         ifInErrors, ifOutErrors, ifInDiscards, ifOutDiscards, ifInUnknownProtos, \
         ifInBroadcastPkts, ifOutBroadcastPkts, ifInMulticastPkts, ifOutMulticastPkts, \
         poll_time) VALUES {}",
        placeholders(rows, 28)
    )
}

/// Marks `rows` ports deleted by id.
pub(crate) fn ports_mark_deleted(rows: usize) -> String {
    format!(
        "UPDATE ports SET deleted = 1 WHERE port_id IN ({})",
        vec!["?"; rows].join(", ")
    )
}

/// A replay of a poll already stored (same `poll_time`): only the descriptive columns,
/// so that a retried transaction does not turn the rates into a zero-second period.
pub(crate) const PORT_UPDATE_DESCR: &str =
    "UPDATE ports SET ifName = ?, ifDescr = ?, ifAlias = ?, ifType = ?, ifMtu = ?, ifSpeed = ?, \
     ifPhysAddress = ?, ifAdminStatus = ?, ifOperStatus = ?, deleted = 0 WHERE port_id = ?";

/// Newest first; the id breaks ties within one timestamp.
pub(crate) const EVENTS_ALL: &str =
    "SELECT event_id, device_id, datetime, type, message, severity, reference FROM eventlog ORDER \
     BY datetime DESC, event_id DESC LIMIT ?";

pub(crate) const EVENTS_OF_DEVICE: &str =
    "SELECT event_id, device_id, datetime, type, message, severity, reference FROM eventlog WHERE \
     device_id = ? ORDER BY datetime DESC, event_id DESC LIMIT ?";

// --- export/import: every row, ids kept

pub(crate) const DEVICES_EXPORT: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices ORDER BY device_id"
);

/// Deleted ports too.
pub(crate) const PORTS_EXPORT: &str =
    concat!("SELECT ", port_columns!(), " FROM ports ORDER BY port_id");

pub(crate) const DEVICE_IMPORT: &str =
    "INSERT INTO devices (device_id, hostname, sysName, sysDescr, sysObjectID, sysContact, \
     location, os, hardware, version, serial, uptime, uptime_source, status, status_reason, last_polled, \
     last_polled_timetaken, last_discovered, poller_group, disabled, snmpver, port, community, \
     transport, timeout, retries, authlevel, authname, authpass, authalgo, cryptopass, \
     cryptoalgo, inserted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
     ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

pub(crate) const PORT_IMPORT: &str =
    "INSERT INTO ports (port_id, device_id, ifIndex, ifName, ifDescr, ifAlias, ifType, ifMtu, \
     ifSpeed, ifPhysAddress, ifAdminStatus, ifOperStatus, ifCountersHC, ifInOctets, ifOutOctets, \
     ifInUcastPkts, ifOutUcastPkts, ifInNUcastPkts, ifOutNUcastPkts, ifInErrors, ifOutErrors, \
     ifInDiscards, ifOutDiscards, ifInUnknownProtos, ifInBroadcastPkts, ifOutBroadcastPkts, \
     ifInMulticastPkts, ifOutMulticastPkts, ifInOctets_rate, ifOutOctets_rate, \
     ifInUcastPkts_rate, ifOutUcastPkts_rate, ifInErrors_rate, ifOutErrors_rate, poll_time, \
     poll_period, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
     ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
