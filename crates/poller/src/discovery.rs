//! Discovery-only tables: LLDP and CDP neighbours (`links`) and IPv6 addresses.
//!
//! - LLDP-MIB: `lldpRemTable` (neighbour name, port, description) keyed by
//!   `lldpRemLocalPortNum`, which is an LLDP port number, not an ifIndex: it is mapped to
//!   the local interface through `lldpLocPortTable` (port id of subtype interfaceName or
//!   local, else the port description, matched against ifName/ifDescr/ifAlias), falling
//!   back to the number itself when an interface has that ifIndex (net-snmp/lldpd agents).
//!   Management addresses come from `lldpRemManAddrTable`.
//! - CISCO-CDP-MIB: `cdpCacheTable`, keyed by ifIndex directly.
//! - IPv6: IP-MIB `ipAddressTable` rows of type ipv6/ipv6z (prefix length from the
//!   `ipAddressPrefix` pointer's last sub-identifier), then the deprecated IPV6-MIB
//!   `ipv6AddrTable` for agents that only have that.
//!
//! Parsing is pure (varbinds in, rows out); [`discover`] does the walks. Each table is
//! optional: a table the agent lacks gives an empty list, a walk that broke off gives
//! `None` (the stored rows stay).

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use lookout_snmp::{Oid, Session, Value, VarBind};
use lookout_store::{Ipv6AddressPoll, LinkPoll};
use serde::Serialize;
use tracing::debug;

/// `LLDP-MIB::lldpLocPortEntry`.
pub const LLDP_LOC_PORT_ENTRY: [u32; 10] = [1, 0, 8802, 1, 1, 2, 1, 3, 7, 1];
/// `LLDP-MIB::lldpRemEntry`.
pub const LLDP_REM_ENTRY: [u32; 10] = [1, 0, 8802, 1, 1, 2, 1, 4, 1, 1];
/// `LLDP-MIB::lldpRemManAddrEntry`.
pub const LLDP_REM_MAN_ADDR_ENTRY: [u32; 10] = [1, 0, 8802, 1, 1, 2, 1, 4, 2, 1];
/// `CISCO-CDP-MIB::cdpCacheEntry`.
pub const CDP_CACHE_ENTRY: [u32; 13] = [1, 3, 6, 1, 4, 1, 9, 9, 23, 1, 2, 1, 1];
/// `IP-MIB::ipAddressEntry`.
pub const IP_ADDRESS_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 4, 34, 1];
/// `IPV6-MIB::ipv6AddrEntry`.
pub const IPV6_ADDR_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 55, 1, 8, 1];

/// A local interface as discovery needs it: its ifIndex and the names it goes by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPort {
    pub if_index: i64,
    /// ifName, ifDescr, ifAlias (those the agent has).
    pub names: Vec<String>,
}

/// What discovery found. `None`: not known this time (keep the stored rows).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Discovered {
    pub links: Option<Vec<LinkPoll>>,
    pub ipv6: Option<Vec<Ipv6AddressPoll>>,
}

/// Walks a table; `Err` when the walk broke off part-way (a partial table would read as
/// vanished neighbours). An agent without the table answers with nothing, or with an
/// error before the first row: that is an empty table.
async fn walk(host: &str, session: &Session, root: &[u32]) -> Result<Vec<VarBind>, String> {
    let (rows, err) = session.walk_partial(&Oid::new(root)).await;
    match err {
        None => Ok(rows),
        Some(e) if rows.is_empty() && !e.is_timeout() => {
            debug!(device = %host, error = %e, "table absent");
            Ok(Vec::new())
        }
        Some(e) => Err(format!(
            "walk of {} stopped after {} varbinds: {e}",
            Oid::new(root),
            rows.len()
        )),
    }
}

/// Runs the discovery walks against a device whose interfaces are `ports`.
pub async fn discover(host: &str, session: &Session, ports: &[LocalPort]) -> Discovered {
    let links = async {
        let loc = walk(host, session, &LLDP_LOC_PORT_ENTRY).await?;
        let rem = walk(host, session, &LLDP_REM_ENTRY).await?;
        let man = if rem.is_empty() {
            Vec::new()
        } else {
            walk(host, session, &LLDP_REM_MAN_ADDR_ENTRY).await?
        };
        let cdp = walk(host, session, &CDP_CACHE_ENTRY).await?;
        let mut links = lldp_links(&loc, &rem, &man, ports);
        links.extend(cdp_links(&cdp));
        Ok::<_, String>(links)
    }
    .await;
    let ipv6 = async {
        let mut addrs = ip_address_table_v6(&walk(host, session, &IP_ADDRESS_ENTRY).await?);
        if addrs.is_empty() {
            addrs = ipv6_addr_table(&walk(host, session, &IPV6_ADDR_ENTRY).await?);
        }
        Ok::<_, String>(addrs)
    }
    .await;
    Discovered {
        links: links
            .map_err(|e| debug!(device = %host, "neighbours not discovered: {e}"))
            .ok(),
        ipv6: ipv6
            .map_err(|e| debug!(device = %host, "IPv6 addresses not discovered: {e}"))
            .ok(),
    }
}

/// Text of an octet string; binary content (CDP device ids and ports of some switches are
/// raw MAC addresses) as `aa:bb:...` hex, never as mojibake.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::OctetString(b) => {
            let b = b
                .iter()
                .rposition(|x| *x != 0)
                .map_or(&b[..0], |end| &b[..=end]);
            match std::str::from_utf8(b) {
                Ok(s) if !s.chars().any(|c| c.is_control() && !c.is_whitespace()) => {
                    let s = s.trim().to_string();
                    (!s.is_empty()).then_some(s)
                }
                _ => Some(
                    b.iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
            }
        }
        _ => None,
    }
}

fn hex_mac(v: &Value) -> Option<String> {
    match v {
        Value::OctetString(b) if b.len() == 6 => Some(
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        _ => None,
    }
}

/// Splits `<entry>.<column>.<index...>` into (column, index).
fn split<'a>(vb: &'a VarBind, entry: &[u32]) -> Option<(u32, &'a [u32])> {
    let (col, idx) = vb.oid.as_slice().strip_prefix(entry)?.split_first()?;
    Some((*col, idx))
}

/// LLDP neighbours. `loc`, `rem`, `man`: walks of lldpLocPortEntry, lldpRemEntry and
/// lldpRemManAddrEntry.
pub fn lldp_links(
    loc: &[VarBind],
    rem: &[VarBind],
    man: &[VarBind],
    ports: &[LocalPort],
) -> Vec<LinkPoll> {
    // lldpLocPortNum → (port id subtype, port id, port description)
    type LocPort = (Option<i64>, Option<String>, Option<String>);
    let mut loc_ports: BTreeMap<u32, LocPort> = BTreeMap::new();
    for vb in loc {
        let Some((col, [num])) = split(vb, &LLDP_LOC_PORT_ENTRY) else {
            continue;
        };
        let e = loc_ports.entry(*num).or_default();
        match col {
            2 => e.0 = vb.value.as_i64(),
            3 => e.1 = text(&vb.value),
            4 => e.2 = text(&vb.value),
            _ => {}
        }
    }
    let by_name = |name: &str| {
        ports
            .iter()
            .find(|p| p.names.iter().any(|n| n == name))
            .map(|p| p.if_index)
    };
    let local_if_index = |num: u32| -> Option<i64> {
        if let Some((subtype, id, descr)) = loc_ports.get(&num) {
            // interfaceAlias(1), interfaceName(5), local(7) name the interface.
            if let (Some(1 | 5 | 7), Some(id)) = (subtype, id) {
                if let Some(i) = by_name(id) {
                    return Some(i);
                }
                // local(7) is often the ifIndex as text.
                if let Ok(i) = id.parse::<i64>() {
                    if ports.iter().any(|p| p.if_index == i) {
                        return Some(i);
                    }
                }
            }
            if let Some(i) = descr.as_deref().and_then(by_name) {
                return Some(i);
            }
        }
        let n = i64::from(num);
        ports.iter().any(|p| p.if_index == n).then_some(n)
    };

    #[derive(Default)]
    struct Rem {
        chassis_subtype: Option<i64>,
        chassis: Option<Value>,
        port_subtype: Option<i64>,
        port_id: Option<Value>,
        port_descr: Option<String>,
        sys_name: Option<String>,
        sys_descr: Option<String>,
        address: Option<String>,
    }
    // (timeMark, localPortNum, index) → neighbour
    let mut rems: BTreeMap<(u32, u32, u32), Rem> = BTreeMap::new();
    for vb in rem {
        let Some((col, [mark, port, index])) = split(vb, &LLDP_REM_ENTRY) else {
            continue;
        };
        let r = rems.entry((*mark, *port, *index)).or_default();
        match col {
            4 => r.chassis_subtype = vb.value.as_i64(),
            5 => r.chassis = Some(vb.value.clone()),
            6 => r.port_subtype = vb.value.as_i64(),
            7 => r.port_id = Some(vb.value.clone()),
            8 => r.port_descr = text(&vb.value),
            9 => r.sys_name = text(&vb.value),
            10 => r.sys_descr = text(&vb.value),
            _ => {}
        }
    }
    for vb in man {
        // index: timeMark, localPortNum, index, addrSubtype, addr (length-prefixed)
        let Some((_, [mark, port, index, 1, 4, a, b, c, d])) = split(vb, &LLDP_REM_MAN_ADDR_ENTRY)
        else {
            continue;
        };
        if let Some(r) = rems.get_mut(&(*mark, *port, *index)) {
            r.address.get_or_insert_with(|| format!("{a}.{b}.{c}.{d}"));
        }
    }
    rems.into_iter()
        .filter_map(|((_, port, _), r)| {
            // The neighbour's name: its system name, else its chassis id (a MAC shown as
            // such, anything else as text).
            let chassis = r.chassis.as_ref().and_then(|v| match r.chassis_subtype {
                Some(4) => hex_mac(v).or_else(|| text(v)),
                _ => text(v),
            });
            let remote_hostname = r.sys_name.clone().or(chassis)?;
            // Its port: the port id when it is a name, else the description.
            let port_id = r.port_id.as_ref().and_then(|v| match r.port_subtype {
                Some(3) => hex_mac(v),
                _ => text(v),
            });
            let remote_port = match r.port_subtype {
                Some(3) => r.port_descr.clone().or(port_id),
                _ => port_id.or(r.port_descr.clone()),
            }
            .unwrap_or_default();
            Some(LinkPoll {
                local_if_index: local_if_index(port),
                protocol: "lldp".to_string(),
                remote_hostname,
                remote_port,
                remote_platform: r.sys_descr.clone(),
                remote_version: None,
                remote_address: r.address,
            })
        })
        .collect()
}

/// CDP neighbours from a walk of cdpCacheEntry (index: ifIndex, device index).
pub fn cdp_links(walk: &[VarBind]) -> Vec<LinkPoll> {
    #[derive(Default)]
    struct Cdp {
        address_type: Option<i64>,
        address: Option<Vec<u8>>,
        version: Option<String>,
        device_id: Option<String>,
        port: Option<String>,
        platform: Option<String>,
    }
    let mut rows: BTreeMap<(u32, u32), Cdp> = BTreeMap::new();
    for vb in walk {
        let Some((col, [if_index, dev])) = split(vb, &CDP_CACHE_ENTRY) else {
            continue;
        };
        let r = rows.entry((*if_index, *dev)).or_default();
        match col {
            3 => r.address_type = vb.value.as_i64(),
            4 => r.address = vb.value.as_bytes().map(<[u8]>::to_vec),
            5 => r.version = text(&vb.value),
            6 => r.device_id = text(&vb.value),
            7 => r.port = text(&vb.value),
            8 => r.platform = text(&vb.value),
            _ => {}
        }
    }
    rows.into_iter()
        .filter_map(|((if_index, _), r)| {
            let address = match (r.address_type, r.address.as_deref()) {
                (Some(1), Some([a, b, c, d])) => Some(format!("{a}.{b}.{c}.{d}")),
                _ => None,
            };
            Some(LinkPoll {
                local_if_index: Some(i64::from(if_index)),
                protocol: "cdp".to_string(),
                remote_hostname: r.device_id?,
                remote_port: r.port.unwrap_or_default(),
                remote_platform: r.platform,
                // CDP versions are multi-line banners: keep the first line.
                remote_version: r
                    .version
                    .map(|v| v.lines().next().unwrap_or_default().trim().to_string()),
                remote_address: address,
            })
        })
        .collect()
}

fn v6_row(if_index: i64, octets: &[u32], prefixlen: i32, origin: &str) -> Option<Ipv6AddressPoll> {
    let bytes: Vec<u8> = octets
        .iter()
        .map(|x| u8::try_from(*x).ok())
        .collect::<Option<_>>()?;
    let bytes: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    let addr = Ipv6Addr::from(bytes);
    let full = addr
        .segments()
        .iter()
        .map(|s| format!("{s:04x}"))
        .collect::<Vec<_>>()
        .join(":");
    Some(Ipv6AddressPoll {
        if_index,
        ipv6_address: full,
        ipv6_compressed: addr.to_string(),
        ipv6_prefixlen: prefixlen,
        ipv6_origin: origin.to_string(),
    })
}

/// IPv6 rows of IP-MIB ipAddressTable (index: addrType, length, address octets).
pub fn ip_address_table_v6(walk: &[VarBind]) -> Vec<Ipv6AddressPoll> {
    #[derive(Default)]
    struct Row {
        if_index: Option<i64>,
        prefixlen: Option<i32>,
        origin: Option<i64>,
        unicast: bool,
    }
    let mut rows: BTreeMap<Vec<u32>, Row> = BTreeMap::new();
    for vb in walk {
        let Some((col, idx)) = split(vb, &IP_ADDRESS_ENTRY) else {
            continue;
        };
        // ipv6(2) with 16 octets, ipv6z(4) with 16 + 4 (zone index)
        let addr = match idx {
            [2, 16, rest @ ..] if rest.len() == 16 => rest,
            [4, 20, rest @ ..] if rest.len() == 20 => &rest[..16],
            _ => continue,
        };
        let r = rows.entry(addr.to_vec()).or_default();
        match col {
            3 => r.if_index = vb.value.as_i64(),
            // unicast(1); anycast(2) and broadcast(3) are no interface addresses
            4 => r.unicast = vb.value.as_i64() == Some(1),
            // a pointer into ipAddressPrefixTable; its last sub-identifier is the length
            5 => {
                // zeroDotZero (0.0): the agent does not say
                r.prefixlen = vb
                    .value
                    .as_oid()
                    .filter(|o| o.as_slice().len() > 2)
                    .and_then(|o| o.as_slice().last().copied())
                    .and_then(|l| i32::try_from(l).ok())
                    .filter(|l| *l <= 128)
            }
            6 => r.origin = vb.value.as_i64(),
            _ => {}
        }
    }
    rows.into_iter()
        .filter(|(_, r)| r.unicast)
        .filter_map(|(addr, r)| {
            let origin = match r.origin {
                Some(2) => "manual",
                Some(4) => "dhcp",
                Some(5) => "linklayer",
                Some(6) => "random",
                _ => "other",
            };
            v6_row(r.if_index?, &addr, r.prefixlen.unwrap_or(128), origin)
        })
        .collect()
}

/// IPV6-MIB ipv6AddrTable (index: ifIndex, 16 address octets).
pub fn ipv6_addr_table(walk: &[VarBind]) -> Vec<Ipv6AddressPoll> {
    // (ifIndex, address) → (prefix length, address type)
    type Row = (Option<i32>, Option<i64>);
    let mut rows: BTreeMap<(u32, Vec<u32>), Row> = BTreeMap::new();
    for vb in walk {
        let Some((col, [if_index, addr @ ..])) = split(vb, &IPV6_ADDR_ENTRY) else {
            continue;
        };
        if addr.len() != 16 {
            continue;
        }
        let r = rows.entry((*if_index, addr.to_vec())).or_default();
        match col {
            2 => r.0 = vb.value.as_i64().and_then(|l| i32::try_from(l).ok()),
            3 => r.1 = vb.value.as_i64(),
            _ => {}
        }
    }
    rows.into_iter()
        .filter_map(|((if_index, addr), (len, kind))| {
            // ipv6AddrType: stateless(1), stateful(2), unknown(3)
            let origin = match kind {
                Some(1) => "linklayer",
                Some(2) => "dhcp",
                _ => "other",
            };
            v6_row(i64::from(if_index), &addr, len.unwrap_or(128), origin)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vb(prefix: &[u32], rest: &[u32], value: Value) -> VarBind {
        let mut o = prefix.to_vec();
        o.extend_from_slice(rest);
        VarBind::new(Oid::new(&o), value)
    }

    fn s(x: &str) -> Value {
        Value::OctetString(x.as_bytes().to_vec())
    }

    #[test]
    fn lldp_maps_port_numbers_to_interfaces() {
        let e = &LLDP_LOC_PORT_ENTRY;
        let loc = vec![
            // port 1: named by interfaceName; port 2: only its description matches
            vb(e, &[2, 1], Value::Integer(5)),
            vb(e, &[3, 1], s("ge-0/0/1")),
            vb(e, &[2, 2], Value::Integer(3)),
            vb(e, &[3, 2], Value::OctetString(vec![0, 1, 2, 3, 4, 5])),
            vb(e, &[4, 2], s("uplink")),
        ];
        let r = &LLDP_REM_ENTRY;
        let rem = vec![
            vb(r, &[9, 0, 1, 1], s("core-b")),
            vb(r, &[6, 0, 1, 1], Value::Integer(5)),
            vb(r, &[7, 0, 1, 1], s("Gi0/7")),
            vb(r, &[10, 0, 1, 1], s("Cisco IOS")),
            // no system name: the chassis MAC names it; port id a MAC: use the description
            vb(r, &[4, 0, 2, 3], Value::Integer(4)),
            vb(
                r,
                &[5, 0, 2, 3],
                Value::OctetString(vec![0xaa, 0xbb, 0xcc, 0, 0, 1]),
            ),
            vb(r, &[6, 0, 2, 3], Value::Integer(3)),
            vb(
                r,
                &[7, 0, 2, 3],
                Value::OctetString(vec![0xaa, 0xbb, 0xcc, 0, 0, 2]),
            ),
            vb(r, &[8, 0, 2, 3], s("eth0")),
            // port 7 is no LLDP port and no ifIndex
            vb(r, &[9, 0, 7, 1], s("ghost")),
        ];
        let man = vec![vb(
            &LLDP_REM_MAN_ADDR_ENTRY,
            &[3, 0, 1, 1, 1, 4, 192, 0, 2, 2],
            Value::Integer(2),
        )];
        let ports = vec![
            LocalPort {
                if_index: 501,
                names: vec!["ge-0/0/1".into()],
            },
            LocalPort {
                if_index: 502,
                names: vec!["ge-0/0/2".into(), "uplink".into()],
            },
        ];
        let links = lldp_links(&loc, &rem, &man, &ports);
        assert_eq!(links.len(), 3);
        let a = links
            .iter()
            .find(|l| l.remote_hostname == "core-b")
            .unwrap();
        assert_eq!(a.local_if_index, Some(501));
        assert_eq!(a.remote_port, "Gi0/7");
        assert_eq!(a.remote_platform.as_deref(), Some("Cisco IOS"));
        assert_eq!(a.remote_address.as_deref(), Some("192.0.2.2"));
        let b = links
            .iter()
            .find(|l| l.remote_hostname == "aa:bb:cc:00:00:01")
            .unwrap();
        assert_eq!(
            (b.local_if_index, b.remote_port.as_str()),
            (Some(502), "eth0")
        );
        let g = links.iter().find(|l| l.remote_hostname == "ghost").unwrap();
        assert_eq!(g.local_if_index, None);
    }

    #[test]
    fn binary_names_read_as_hex() {
        assert_eq!(
            text(&Value::OctetString(vec![
                0xe8, 0x39, 0x35, 0x1a, 0xca, 0x99
            ]))
            .as_deref(),
            Some("e8:39:35:1a:ca:99")
        );
        assert_eq!(text(&s("mgmt0\0\0\0")).as_deref(), Some("mgmt0"));
        assert_eq!(text(&s("  ")), None);
    }

    #[test]
    fn cdp_rows() {
        let e = &CDP_CACHE_ENTRY;
        let walk = vec![
            vb(e, &[3, 10101, 1], Value::Integer(1)),
            vb(e, &[4, 10101, 1], Value::OctetString(vec![10, 0, 0, 2])),
            vb(
                e,
                &[5, 10101, 1],
                s("Cisco IOS Software, C2960\nTechnical Support"),
            ),
            vb(e, &[6, 10101, 1], s("sw2.example.net")),
            vb(e, &[7, 10101, 1], s("GigabitEthernet0/1")),
            vb(e, &[8, 10101, 1], s("cisco WS-C2960-24TT-L")),
            // no device id: skipped
            vb(e, &[7, 10102, 4], s("Port 1")),
        ];
        let links = cdp_links(&walk);
        assert_eq!(links.len(), 1);
        let l = &links[0];
        assert_eq!(l.local_if_index, Some(10101));
        assert_eq!(l.remote_hostname, "sw2.example.net");
        assert_eq!(l.remote_port, "GigabitEthernet0/1");
        assert_eq!(
            l.remote_version.as_deref(),
            Some("Cisco IOS Software, C2960")
        );
        assert_eq!(l.remote_address.as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn ipv6_from_both_mibs() {
        let e = &IP_ADDRESS_ENTRY;
        let mut lo = vec![2, 16];
        lo.extend([0u32; 15]);
        lo.push(1);
        let mut doc = vec![2, 16, 0x20, 0x01, 0x0d, 0xb8];
        doc.extend([0u32; 11]);
        doc.push(0x10);
        let col = |c: u32, idx: &[u32]| {
            let mut v = vec![c];
            v.extend_from_slice(idx);
            v
        };
        let prefix = |len: u32| {
            let mut o = vec![1, 3, 6, 1, 2, 1, 4, 32, 1, 5, 1, 2, 16];
            o.extend([0u32; 16]);
            o.push(len);
            Value::ObjectId(Oid::new(&o))
        };
        let walk = vec![
            vb(e, &col(3, &lo), Value::Integer(1)),
            vb(e, &col(4, &lo), Value::Integer(1)),
            vb(e, &col(5, &lo), prefix(128)),
            vb(e, &col(6, &lo), Value::Integer(2)),
            vb(e, &col(3, &doc), Value::Integer(2)),
            vb(e, &col(4, &doc), Value::Integer(1)),
            vb(e, &col(5, &doc), prefix(64)),
            vb(e, &col(6, &doc), Value::Integer(6)),
            // an IPv4 row is not ours
            vb(e, &[3, 1, 4, 127, 0, 0, 1], Value::Integer(1)),
        ];
        let rows = ip_address_table_v6(&walk);
        assert_eq!(rows.len(), 2, "{rows:?}");
        let l = rows.iter().find(|r| r.if_index == 1).unwrap();
        assert_eq!(l.ipv6_compressed, "::1");
        assert_eq!(l.ipv6_address, "0000:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!((l.ipv6_prefixlen, l.ipv6_origin.as_str()), (128, "manual"));
        let d = rows.iter().find(|r| r.if_index == 2).unwrap();
        assert_eq!(d.ipv6_compressed, "2001:db8::10");
        assert_eq!((d.ipv6_prefixlen, d.ipv6_origin.as_str()), (64, "random"));

        let e = &IPV6_ADDR_ENTRY;
        let mut idx = vec![2, 2, 0xfe, 0x80];
        idx.extend([0u32; 13]);
        idx.push(1);
        let old = vec![vb(e, &idx, Value::Integer(64)), {
            let mut t = idx.clone();
            t[0] = 3;
            vb(e, &t, Value::Integer(1))
        }];
        let rows = ipv6_addr_table(&old);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].if_index,
                rows[0].ipv6_compressed.as_str(),
                rows[0].ipv6_prefixlen
            ),
            (2, "fe80::1", 64)
        );
        assert_eq!(rows[0].ipv6_origin, "linklayer");
    }
}
