//! SMI values ([`Value`]) and variable bindings ([`VarBind`]), with net-snmp-like printing.
//!
//! `Display` of a `Value` reproduces what net-snmp's `snmpget -On -Oe` prints after the `=`
//! without MIBs loaded (`STRING: "x"`, `Hex-STRING: 00 1A `, `Timeticks: (5) 0:00:00.05`, ...),
//! so that tools built on this crate show engineers exactly what net-snmp would.

use std::fmt;

use crate::oid::Oid;

/// One SNMP value as carried in a varbind.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// INTEGER / Integer32 (kept as i64 so out-of-range agent values survive).
    Integer(i64),
    /// OCTET STRING: raw bytes, often but not always text.
    OctetString(Vec<u8>),
    Null,
    ObjectId(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    /// Gauge32 / Unsigned32 (and the obsolete UInteger32 tag).
    Gauge32(u32),
    TimeTicks(u32),
    /// Opaque contents that are not a float/double/64-bit wrapper.
    Opaque(Vec<u8>),
    Counter64(u64),
    /// net-snmp's Opaque-wrapped float.
    Float(f32),
    /// net-snmp's Opaque-wrapped double.
    Double(f64),
    /// v2c/v3 exception: the object does not exist.
    NoSuchObject,
    /// v2c/v3 exception: the object exists but not this instance.
    NoSuchInstance,
    /// v2c/v3 exception: the walk ran past the end of the agent's MIB view.
    EndOfMibView,
}

/// An OID and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct VarBind {
    pub oid: Oid,
    pub value: Value,
}

impl VarBind {
    pub fn new(oid: Oid, value: Value) -> VarBind {
        VarBind { oid, value }
    }

    /// A varbind with a NULL value, as requests carry.
    pub fn null(oid: Oid) -> VarBind {
        VarBind {
            oid,
            value: Value::Null,
        }
    }
}

/// `1.3.6.1.2.1.1.5.0 = STRING: "name"` (the OID without leading dot).
impl fmt::Display for VarBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.oid, self.value)
    }
}

impl Value {
    /// Unsigned view of numeric values (counters, gauges, ticks, non-negative integers).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Integer(i) => u64::try_from(i).ok(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(u64::from(v)),
            Value::Counter64(v) => Some(v),
            _ => None,
        }
    }

    /// Signed view of numeric values (Counter64 above i64::MAX gives `None`).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Integer(i) => Some(i),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(i64::from(v)),
            Value::Counter64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Floating-point view of numeric values, including Opaque float/double.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(f64::from(v)),
            Value::Double(v) => Some(v),
            Value::Counter64(v) => Some(v as f64),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// The bytes of an OCTET STRING or Opaque.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// An OCTET STRING as text (invalid UTF-8 replaced), e.g. for sysDescr or ifAlias.
    /// Other types give their printed value without the type prefix (`5`, `1.3.6.1`).
    pub fn as_str_lossy(&self) -> String {
        match self {
            Value::OctetString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::ObjectId(o) => o.to_string(),
            Value::IpAddress(a) => format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Value::Integer(i) => i.to_string(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => v.to_string(),
            Value::Counter64(v) => v.to_string(),
            Value::Float(v) => v.to_string(),
            Value::Double(v) => v.to_string(),
            Value::Opaque(b) => hex_string(b),
            Value::Null => String::new(),
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => String::new(),
        }
    }

    /// The OID of an OBJECT IDENTIFIER value.
    pub fn as_oid(&self) -> Option<&Oid> {
        match self {
            Value::ObjectId(o) => Some(o),
            _ => None,
        }
    }

    /// True for noSuchObject, noSuchInstance and endOfMibView.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// The type name net-snmp prints before the value: `INTEGER`, `STRING` or `Hex-STRING`
    /// (chosen by content, as net-snmp does), `NULL`, `OID`, `IpAddress`, `Counter32`,
    /// `Gauge32`, `Timeticks`, `Opaque`, `Counter64`, `Float`, `Double`, and for the
    /// exceptions `noSuchObject`, `noSuchInstance`, `endOfMibView`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "INTEGER",
            Value::OctetString(b) => {
                if is_printable(b) {
                    "STRING"
                } else {
                    "Hex-STRING"
                }
            }
            Value::Null => "NULL",
            Value::ObjectId(_) => "OID",
            Value::IpAddress(_) => "IpAddress",
            Value::Counter32(_) => "Counter32",
            Value::Gauge32(_) => "Gauge32",
            Value::TimeTicks(_) => "Timeticks",
            Value::Opaque(_) => "Opaque",
            Value::Counter64(_) => "Counter64",
            Value::Float(_) => "Float",
            Value::Double(_) => "Double",
            Value::NoSuchObject => "noSuchObject",
            Value::NoSuchInstance => "noSuchInstance",
            Value::EndOfMibView => "endOfMibView",
        }
    }
}

/// net-snmp's rule for printing an OCTET STRING as text: every byte printable or white space
/// in the C locale.
fn is_printable(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| (0x20..=0x7e).contains(&c) || (0x09..=0x0d).contains(&c))
}

/// net-snmp's hex dump: `%02X ` per byte, a newline after every 16 bytes.
fn hex_string(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3 + b.len() / 16);
    for (i, chunk) in b.chunks(16).enumerate() {
        if i > 0 {
            s.push('\n');
        }
        for c in chunk {
            s.push_str(&format!("{c:02X} "));
        }
    }
    s
}

/// net-snmp's `uptimeString`: `0:02:03.45`, `1 day, 2:03:04.05`, `3 days, ...`.
fn uptime_string(ticks: u32) -> String {
    let centis = ticks % 100;
    let mut t = ticks / 100;
    let days = t / 86_400;
    t %= 86_400;
    let (h, m, s) = (t / 3600, (t % 3600) / 60, t % 60);
    match days {
        0 => format!("{h}:{m:02}:{s:02}.{centis:02}"),
        1 => format!("1 day, {h}:{m:02}:{s:02}.{centis:02}"),
        d => format!("{d} days, {h}:{m:02}:{s:02}.{centis:02}"),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "INTEGER: {i}"),
            Value::OctetString(b) if b.is_empty() => f.write_str("\"\""),
            Value::OctetString(b) if is_printable(b) => {
                f.write_str("STRING: \"")?;
                for &c in b {
                    if c == b'"' || c == b'\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{}", c as char)?;
                }
                f.write_str("\"")
            }
            Value::OctetString(b) => write!(f, "Hex-STRING: {}", hex_string(b)),
            Value::Null => f.write_str("NULL"),
            Value::ObjectId(o) => write!(f, "OID: .{o}"),
            Value::IpAddress(a) => write!(f, "IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Value::Counter32(v) => write!(f, "Counter32: {v}"),
            Value::Gauge32(v) => write!(f, "Gauge32: {v}"),
            Value::TimeTicks(v) => write!(f, "Timeticks: ({v}) {}", uptime_string(*v)),
            Value::Opaque(b) => write!(f, "OPAQUE: {}", hex_string(b)),
            Value::Counter64(v) => write!(f, "Counter64: {v}"),
            // net-snmp prints both float and double as "Opaque: Float: %f".
            Value::Float(v) => write!(f, "Opaque: Float: {v:.6}"),
            Value::Double(v) => write!(f, "Opaque: Float: {v:.6}"),
            Value::NoSuchObject => {
                f.write_str("No Such Object available on this agent at this OID")
            }
            Value::NoSuchInstance => f.write_str("No Such Instance currently exists at this OID"),
            Value::EndOfMibView => f.write_str(
                "No more variables left in this MIB View (It is past the end of the MIB tree)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netsnmp_like_display() {
        assert_eq!(Value::Integer(-3).to_string(), "INTEGER: -3");
        assert_eq!(
            Value::OctetString(b"a\"b".to_vec()).to_string(),
            "STRING: \"a\\\"b\""
        );
        assert_eq!(Value::OctetString(vec![]).to_string(), "\"\"");
        assert_eq!(
            Value::OctetString(vec![0, 0x1a, 0xff]).to_string(),
            "Hex-STRING: 00 1A FF "
        );
        assert_eq!(Value::OctetString(vec![0; 17]).type_name(), "Hex-STRING");
        assert_eq!(
            Value::OctetString(vec![0; 17]).to_string(),
            "Hex-STRING: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \n00 "
        );
        assert_eq!(
            Value::TimeTicks(12345).to_string(),
            "Timeticks: (12345) 0:02:03.45"
        );
        assert_eq!(
            Value::TimeTicks(8_640_000 + 100).to_string(),
            "Timeticks: (8640100) 1 day, 0:00:01.00"
        );
        assert_eq!(
            Value::TimeTicks(3 * 8_640_000).to_string(),
            "Timeticks: (25920000) 3 days, 0:00:00.00"
        );
        assert_eq!(
            Value::ObjectId(Oid::from([1, 3, 6])).to_string(),
            "OID: .1.3.6"
        );
        assert_eq!(
            Value::IpAddress([127, 0, 0, 1]).to_string(),
            "IpAddress: 127.0.0.1"
        );
        assert_eq!(Value::Float(1.5).to_string(), "Opaque: Float: 1.500000");
    }

    #[test]
    fn numeric_views() {
        assert_eq!(Value::Counter64(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Value::Counter64(u64::MAX).as_i64(), None);
        assert_eq!(Value::Integer(-1).as_u64(), None);
        assert_eq!(Value::Gauge32(7).as_i64(), Some(7));
        assert_eq!(Value::OctetString(b"x".to_vec()).as_u64(), None);
        assert_eq!(Value::OctetString(b"eth0".to_vec()).as_str_lossy(), "eth0");
    }
}
