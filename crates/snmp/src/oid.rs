//! Object identifiers: the [`Oid`] type (parse, print, compare, prefix tests).
//!
//! An `Oid` is an immutable, reference-counted list of sub-identifiers, so cloning one (into a
//! varbind, a table key, a walk cursor) is a counter increment rather than a copy.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Most sub-identifiers an OID may have (RFC 2578 §3.5 limits OIDs to 128).
pub const MAX_OID_LEN: usize = 128;

/// An SNMP object identifier such as `1.3.6.1.2.1.1.1.0`.
///
/// Ordering is lexicographic over the sub-identifiers, which is the order agents walk in.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Arc<[u32]>);

/// Why a dotted OID string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidParseError {
    #[error("empty OID")]
    Empty,
    #[error("bad sub-identifier {0:?} in OID")]
    BadComponent(String),
    #[error("OID has more than {MAX_OID_LEN} sub-identifiers")]
    TooLong,
}

impl Oid {
    /// An OID from its sub-identifiers.
    pub fn new(subids: &[u32]) -> Oid {
        Oid(Arc::from(subids))
    }

    /// Parses `1.3.6.1...` or `.1.3.6.1...` (net-snmp's numeric form with a leading dot).
    pub fn parse(s: &str) -> Result<Oid, OidParseError> {
        let s = s.trim();
        let s = s.strip_prefix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(OidParseError::Empty);
        }
        let mut v = Vec::with_capacity(16);
        for part in s.split('.') {
            let n: u32 = part
                .parse()
                .map_err(|_| OidParseError::BadComponent(part.to_string()))?;
            v.push(n);
            if v.len() > MAX_OID_LEN {
                return Err(OidParseError::TooLong);
            }
        }
        Ok(Oid::new(&v))
    }

    /// The sub-identifiers.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Number of sub-identifiers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the zero-length OID (which BER can carry, though no agent should send it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `prefix` is this OID or one of its ancestors.
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The sub-identifiers after `prefix`, or `None` when `prefix` is not a prefix.
    /// For a table column this is the row index.
    pub fn suffix_after(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(&*prefix.0)
    }

    /// This OID with `subids` appended (e.g. a column plus an index).
    pub fn join(&self, subids: &[u32]) -> Oid {
        let mut v = Vec::with_capacity(self.0.len() + subids.len());
        v.extend_from_slice(&self.0);
        v.extend_from_slice(subids);
        Oid::new(&v)
    }

    /// This OID with one more sub-identifier, e.g. `sysDescr.child(0)`.
    pub fn child(&self, subid: u32) -> Oid {
        self.join(&[subid])
    }
}

impl FromStr for Oid {
    type Err = OidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Oid::parse(s)
    }
}

impl From<&[u32]> for Oid {
    fn from(s: &[u32]) -> Self {
        Oid::new(s)
    }
}

impl From<Vec<u32>> for Oid {
    fn from(v: Vec<u32>) -> Self {
        Oid(Arc::from(v))
    }
}

impl<const N: usize> From<[u32; N]> for Oid {
    fn from(a: [u32; N]) -> Self {
        Oid::new(&a)
    }
}

impl AsRef<[u32]> for Oid {
    fn as_ref(&self) -> &[u32] {
        &self.0
    }
}

/// Dotted form without a leading dot: `1.3.6.1.2.1.1.1.0`.
impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for n in self.0.iter() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let a = Oid::parse("1.3.6.1.2.1.1.1.0").unwrap();
        let b: Oid = ".1.3.6.1.2.1.1.1.0".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "1.3.6.1.2.1.1.1.0");
        assert_eq!(a.len(), 9);
        assert_eq!(Oid::parse(""), Err(OidParseError::Empty));
        assert_eq!(Oid::parse("."), Err(OidParseError::Empty));
        assert!(matches!(
            Oid::parse("1..3"),
            Err(OidParseError::BadComponent(_))
        ));
        assert!(matches!(
            Oid::parse("1.x"),
            Err(OidParseError::BadComponent(_))
        ));
        assert!(matches!(
            Oid::parse("1.4294967296"),
            Err(OidParseError::BadComponent(_))
        ));
        assert_eq!(
            Oid::parse("1.4294967295").unwrap().as_slice(),
            &[1, u32::MAX]
        );
        let long = vec!["1"; 129].join(".");
        assert_eq!(Oid::parse(&long), Err(OidParseError::TooLong));
    }

    #[test]
    fn prefixes_and_order() {
        let sys = Oid::from([1, 3, 6, 1, 2, 1, 1]);
        let descr = sys.join(&[1, 0]);
        assert!(descr.starts_with(&sys));
        assert!(sys.starts_with(&sys));
        assert!(!sys.starts_with(&descr));
        assert_eq!(descr.suffix_after(&sys), Some(&[1u32, 0][..]));
        assert_eq!(sys.suffix_after(&descr), None);
        assert!(sys < descr);
        assert!(Oid::from([1, 3, 6, 1, 2]) > Oid::from([1, 3, 6, 1, 1, 9, 9]));
        assert_eq!(sys.child(5).to_string(), "1.3.6.1.2.1.1.5");
    }
}
