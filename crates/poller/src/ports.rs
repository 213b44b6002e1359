//! The ports module's pure part: IF-MIB ifTable + ifXTable varbinds → one `PortPoll` per
//! interface. 64-bit ifHC* counters win over the 32-bit ones when the agent has them, and
//! ifHighSpeed (Mbit/s) wins when ifSpeed is saturated at 2^32-1.

use std::collections::BTreeMap;

use lookout_core::{Port, PortCounters, PortId, PortPoll};
use lookout_snmp::{Oid, Value, VarBind};

/// `IF-MIB::ifTable.ifEntry` (columns below it).
pub const IF_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 0];
/// `IF-MIB::ifXTable.ifXEntry`.
pub const IFX_ENTRY: [u32; 11] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 0];

/// Root of ifTable, walked as a whole.
pub fn if_table() -> Oid {
    Oid::new(&[1, 3, 6, 1, 2, 1, 2, 2])
}
/// Root of ifXTable, walked as a whole.
pub fn if_x_table() -> Oid {
    Oid::new(&[1, 3, 6, 1, 2, 1, 31, 1, 1])
}

fn entry(prefix: &[u32]) -> &[u32] {
    &prefix[..prefix.len() - 1]
}

/// Splits `<entry>.<column>.<ifIndex>` into (column, ifIndex).
fn column_and_index(oid: &Oid, entry_prefix: &[u32]) -> Option<(u32, i64)> {
    let s = oid.as_slice();
    let rest = s.strip_prefix(entry_prefix)?;
    match rest {
        [col, idx] => Some((*col, i64::from(*idx))),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::OctetString(b) => Some(
            String::from_utf8_lossy(b)
                .trim_end_matches('\0')
                .to_string(),
        ),
        _ => None,
    }
}

fn mac(v: &Value) -> Option<String> {
    match v {
        Value::OctetString(b) if !b.is_empty() => {
            Some(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        _ => None,
    }
}

fn if_status(v: &Value) -> Option<String> {
    let name = match v.as_i64()? {
        1 => "up",
        2 => "down",
        3 => "testing",
        4 => "unknown",
        5 => "dormant",
        6 => "notPresent",
        7 => "lowerLayerDown",
        _ => return None,
    };
    Some(name.to_string())
}

fn if_type(v: &Value) -> Option<String> {
    let n = v.as_i64()?;
    let name = match n {
        1 => "other",
        6 => "ethernetCsmacd",
        24 => "softwareLoopback",
        23 => "ppp",
        53 => "propVirtual",
        71 => "ieee80211",
        131 => "tunnel",
        135 => "l2vlan",
        136 => "l3ipvlan",
        161 => "ieee8023adLag",
        _ => return Some(n.to_string()),
    };
    Some(name.to_string())
}

/// `IP-MIB::ipAddrEntry` (ipAdEntIfIndex `.2`, ipAdEntNetMask `.3`; index = the address).
pub const IP_ADDR_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 4, 20, 1];

/// IPv4 addresses with their ifIndex and prefix length from a walk of ipAddrEntry.
pub fn ipv4_addresses_from(walk: &[VarBind]) -> Vec<lookout_store::Ipv4AddressPoll> {
    let mut rows: BTreeMap<[u32; 4], (Option<i64>, Option<i32>)> = BTreeMap::new();
    for vb in walk {
        let Some([col, a, b, c, d]) = vb.oid.as_slice().strip_prefix(&IP_ADDR_ENTRY[..]) else {
            continue;
        };
        let row = rows.entry([*a, *b, *c, *d]).or_default();
        match (col, &vb.value) {
            (2, v) => row.0 = v.as_i64(),
            (3, Value::IpAddress(m)) => row.1 = Some(u32::from_be_bytes(*m).count_ones() as i32),
            _ => {}
        }
    }
    rows.into_iter()
        .filter_map(|(ip, (if_index, len))| {
            Some(lookout_store::Ipv4AddressPoll {
                if_index: if_index?,
                ipv4_address: format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
                ipv4_prefixlen: len.unwrap_or(32),
            })
        })
        .collect()
}

/// Interfaces the agent renumbered: `(port_id, new ifIndex)` for each stored port whose
/// ifIndex is gone from the poll while a polled interface with a new ifIndex has its name
/// (ifName, else ifDescr). Only unambiguous pairs move: the name must be unique among the
/// stored ports that disappeared and among the polled ports that are new.
pub fn renumbered(stored: &[Port], polled: &[PortPoll]) -> Vec<(PortId, i64)> {
    fn key(name: &Option<String>, descr: &Option<String>) -> Option<String> {
        name.clone()
            .filter(|s| !s.is_empty())
            .or_else(|| descr.clone().filter(|s| !s.is_empty()))
    }
    let polled_idx: std::collections::BTreeSet<i64> = polled.iter().map(|p| p.if_index).collect();
    let stored_idx: std::collections::BTreeSet<i64> = stored.iter().map(|p| p.if_index).collect();
    let gone: Vec<&Port> = stored
        .iter()
        .filter(|p| !p.deleted && !polled_idx.contains(&p.if_index))
        .collect();
    let new: Vec<&PortPoll> = polled
        .iter()
        .filter(|p| !stored_idx.contains(&p.if_index))
        .collect();
    let mut moves = Vec::new();
    for n in &new {
        let Some(k) = key(&n.if_name, &n.if_descr) else {
            continue;
        };
        let olds: Vec<&&Port> = gone
            .iter()
            .filter(|o| key(&o.if_name, &o.if_descr).as_deref() == Some(k.as_str()))
            .collect();
        let news = new
            .iter()
            .filter(|x| key(&x.if_name, &x.if_descr).as_deref() == Some(k.as_str()))
            .count();
        if let ([old], 1) = (olds.as_slice(), news) {
            moves.push((old.port_id, n.if_index));
        }
    }
    moves
}

/// Builds the interfaces from the two table walks. Varbinds outside the tables, or with
/// exception values (noSuchObject ...), are ignored; an interface that appears only in
/// ifXTable is kept (some agents have holes in ifTable).
pub fn ports_from_walks(if_table: &[VarBind], if_x_table: &[VarBind]) -> Vec<PortPoll> {
    let mut ports: BTreeMap<i64, PortPoll> = BTreeMap::new();
    // 32-bit and 64-bit counters are gathered apart, then merged per interface.
    let mut hc: BTreeMap<i64, PortCounters> = BTreeMap::new();
    let mut speed32: BTreeMap<i64, u64> = BTreeMap::new();
    let mut high_speed: BTreeMap<i64, u64> = BTreeMap::new();

    for vb in if_table {
        let Some((col, idx)) = column_and_index(&vb.oid, entry(&IF_ENTRY)) else {
            continue;
        };
        let p = ports.entry(idx).or_insert_with(|| PortPoll {
            if_index: idx,
            ..PortPoll::default()
        });
        let v = &vb.value;
        let c = &mut p.counters;
        match col {
            2 => p.if_descr = text(v),
            3 => p.if_type = if_type(v),
            4 => p.if_mtu = v.as_i64(),
            5 => {
                if let Some(s) = v.as_u64() {
                    speed32.insert(idx, s);
                }
            }
            6 => p.if_phys_address = mac(v),
            7 => p.if_admin_status = if_status(v),
            8 => p.if_oper_status = if_status(v),
            10 => c.in_octets = v.as_u64(),
            11 => c.in_ucast_pkts = v.as_u64(),
            12 => c.in_nucast_pkts = v.as_u64(),
            13 => c.in_discards = v.as_u64(),
            14 => c.in_errors = v.as_u64(),
            15 => c.in_unknown_protos = v.as_u64(),
            16 => c.out_octets = v.as_u64(),
            17 => c.out_ucast_pkts = v.as_u64(),
            18 => c.out_nucast_pkts = v.as_u64(),
            19 => c.out_discards = v.as_u64(),
            20 => c.out_errors = v.as_u64(),
            _ => {}
        }
    }

    for vb in if_x_table {
        let Some((col, idx)) = column_and_index(&vb.oid, entry(&IFX_ENTRY)) else {
            continue;
        };
        let p = ports.entry(idx).or_insert_with(|| PortPoll {
            if_index: idx,
            ..PortPoll::default()
        });
        let v = &vb.value;
        let h = hc.entry(idx).or_default();
        match col {
            1 => p.if_name = text(v),
            2 => p.counters.in_multicast_pkts = v.as_u64(),
            3 => p.counters.in_broadcast_pkts = v.as_u64(),
            4 => p.counters.out_multicast_pkts = v.as_u64(),
            5 => p.counters.out_broadcast_pkts = v.as_u64(),
            6 => h.in_octets = v.as_u64(),
            7 => h.in_ucast_pkts = v.as_u64(),
            8 => h.in_multicast_pkts = v.as_u64(),
            9 => h.in_broadcast_pkts = v.as_u64(),
            10 => h.out_octets = v.as_u64(),
            11 => h.out_ucast_pkts = v.as_u64(),
            12 => h.out_multicast_pkts = v.as_u64(),
            13 => h.out_broadcast_pkts = v.as_u64(),
            15 => {
                if let Some(s) = v.as_u64() {
                    high_speed.insert(idx, s);
                }
            }
            18 => p.if_alias = text(v),
            _ => {}
        }
    }

    for (idx, p) in ports.iter_mut() {
        if let Some(h) = hc.get(idx) {
            let c = &mut p.counters;
            if h.in_octets.is_some() && h.out_octets.is_some() {
                c.in_octets = h.in_octets;
                c.out_octets = h.out_octets;
                c.hc = true;
            }
            c.in_ucast_pkts = h.in_ucast_pkts.or(c.in_ucast_pkts);
            c.out_ucast_pkts = h.out_ucast_pkts.or(c.out_ucast_pkts);
            c.in_multicast_pkts = h.in_multicast_pkts.or(c.in_multicast_pkts);
            c.out_multicast_pkts = h.out_multicast_pkts.or(c.out_multicast_pkts);
            c.in_broadcast_pkts = h.in_broadcast_pkts.or(c.in_broadcast_pkts);
            c.out_broadcast_pkts = h.out_broadcast_pkts.or(c.out_broadcast_pkts);
            // Non-unicast is deprecated in IF-MIB; derive it from the HC columns when absent.
            if c.in_nucast_pkts.is_none() {
                if let (Some(m), Some(b)) = (c.in_multicast_pkts, c.in_broadcast_pkts) {
                    c.in_nucast_pkts = Some(m.wrapping_add(b));
                }
            }
            if c.out_nucast_pkts.is_none() {
                if let (Some(m), Some(b)) = (c.out_multicast_pkts, c.out_broadcast_pkts) {
                    c.out_nucast_pkts = Some(m.wrapping_add(b));
                }
            }
        }
        let s32 = speed32.get(idx).copied();
        let hs = high_speed.get(idx).copied().filter(|&s| s > 0);
        p.if_speed = match (s32, hs) {
            (Some(s), Some(h)) if s >= u64::from(u32::MAX) => Some(h.saturating_mul(1_000_000)),
            (Some(s), _) => Some(s),
            (None, Some(h)) => Some(h.saturating_mul(1_000_000)),
            (None, None) => None,
        };
    }
    ports.into_values().collect()
}

/// The event log entries of a port sync: interfaces added and removed, operational status
/// changes. Run by the store inside the poll's commit (`before`: the stored ports after
/// renumbering), so a stale poll logs none of them.
pub fn port_events(
    before: &[Port],
    sync: &lookout_store::PortSync,
) -> Vec<lookout_store::NewEvent> {
    use lookout_store::{NewEvent, Severity};
    let mut out = Vec::new();
    for id in &sync.added {
        if let Some(p) = sync.ports.iter().find(|p| p.port_id == *id) {
            out.push(NewEvent::new(
                "interface",
                format!("Interface added: {}", p.label()),
                Severity::Info,
            ));
        }
    }
    for id in &sync.removed {
        if let Some(p) = before.iter().find(|p| p.port_id == *id) {
            out.push(NewEvent::new(
                "interface",
                format!("Interface removed: {}", p.label()),
                Severity::Notice,
            ));
        }
    }
    for p in &sync.ports {
        if let Some(old) = before.iter().find(|o| o.port_id == p.port_id) {
            if old.if_oper_status.is_some() && old.if_oper_status != p.if_oper_status {
                let sev = if p.if_oper_status.as_deref() == Some("up") {
                    Severity::Ok
                } else {
                    Severity::Warning
                };
                out.push(NewEvent::new(
                    "interface",
                    format!(
                        "Interface {} operational status changed: {} -> {}",
                        p.label(),
                        old.if_oper_status.as_deref().unwrap_or("?"),
                        p.if_oper_status.as_deref().unwrap_or("?")
                    ),
                    sev,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_from_ip_addr_table() {
        let vb = |oid: &str, v: Value| VarBind::new(Oid::parse(oid).unwrap(), v);
        let walk = vec![
            vb(
                "1.3.6.1.2.1.4.20.1.1.10.0.0.5",
                Value::IpAddress([10, 0, 0, 5]),
            ),
            vb(
                "1.3.6.1.2.1.4.20.1.1.127.0.0.1",
                Value::IpAddress([127, 0, 0, 1]),
            ),
            vb("1.3.6.1.2.1.4.20.1.2.10.0.0.5", Value::Integer(2)),
            vb("1.3.6.1.2.1.4.20.1.2.127.0.0.1", Value::Integer(1)),
            vb(
                "1.3.6.1.2.1.4.20.1.3.10.0.0.5",
                Value::IpAddress([255, 255, 255, 252]),
            ),
            vb(
                "1.3.6.1.2.1.4.20.1.3.127.0.0.1",
                Value::IpAddress([255, 0, 0, 0]),
            ),
        ];
        let a = ipv4_addresses_from(&walk);
        let got: Vec<(i64, &str, i32)> = a
            .iter()
            .map(|x| (x.if_index, x.ipv4_address.as_str(), x.ipv4_prefixlen))
            .collect();
        assert_eq!(got, [(2, "10.0.0.5", 30), (1, "127.0.0.1", 8)]);
    }
}
