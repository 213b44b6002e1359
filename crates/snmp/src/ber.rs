//! Sans-IO BER (X.690) encoding and decoding of the subset SNMP uses, and of SMI values.
//!
//! The decoder works on borrowed slices and never panics on any input: every failure is a
//! [`DecodeError`] carrying the absolute byte offset where it was found, so a malformed PDU
//! from an agent can be reported precisely. The encoder appends to a `Vec<u8>`; constructed
//! types are written with a placeholder-free "open, write, close" pattern that inserts the
//! length once the contents are known (messages we send are small, so the shift is cheap).

use std::fmt;

use crate::oid::{Oid, MAX_OID_LEN};
use crate::value::Value;

/// Universal and SNMP application tags.
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIMETICKS: u8 = 0x43;
    pub const OPAQUE: u8 = 0x44;
    pub const NSAP_ADDRESS: u8 = 0x45;
    pub const COUNTER64: u8 = 0x46;
    pub const UINTEGER32: u8 = 0x47;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
}

/// A BER decoding failure at `offset` bytes into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub msg: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.msg, self.offset)
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

fn err<T>(offset: usize, msg: &'static str) -> DecodeResult<T> {
    Err(DecodeError { offset, msg })
}

/// A cursor over BER bytes; `base` is the absolute offset of `buf[0]` in the whole message.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

/// One decoded TLV: its tag, contents and the absolute offset of the contents.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub offset: usize,
    /// Absolute offset of the tag byte.
    pub start: usize,
}

impl<'a> Tlv<'a> {
    /// A reader over this TLV's contents (for constructed types).
    pub fn reader(&self) -> Reader<'a> {
        Reader {
            buf: self.content,
            pos: 0,
            base: self.offset,
        }
    }
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Reads one tag-length-value.
    pub fn read_tlv(&mut self) -> DecodeResult<Tlv<'a>> {
        let start = self.offset();
        let Some(&t) = self.buf.get(self.pos) else {
            return err(start, "unexpected end of data, expected a tag");
        };
        if t & 0x1f == 0x1f {
            return err(start, "multi-byte tags are not used by SNMP");
        }
        self.pos += 1;
        let len = self.read_length()?;
        let off = self.offset();
        let Some(content) = self
            .pos
            .checked_add(len)
            .and_then(|end| self.buf.get(self.pos..end))
        else {
            return err(start, "length exceeds the data");
        };
        self.pos += len;
        Ok(Tlv {
            tag: t,
            content,
            offset: off,
            start,
        })
    }

    fn read_length(&mut self) -> DecodeResult<usize> {
        let at = self.offset();
        let Some(&first) = self.buf.get(self.pos) else {
            return err(at, "unexpected end of data, expected a length");
        };
        self.pos += 1;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return err(at, "indefinite length is not allowed");
        }
        if n > 4 {
            return err(at, "length of length too large");
        }
        let Some(bytes) = self.buf.get(self.pos..self.pos + n) else {
            return err(at, "unexpected end of data in a length");
        };
        self.pos += n;
        Ok(bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)))
    }

    /// Reads a TLV and checks its tag; `what` names the expected item in the error.
    pub fn read_expect(&mut self, tag: u8, what: &'static str) -> DecodeResult<Tlv<'a>> {
        let tlv = self.read_tlv()?;
        if tlv.tag != tag {
            return err(tlv.start, what);
        }
        Ok(tlv)
    }

    /// Reads a SEQUENCE and returns a reader over its contents.
    pub fn read_sequence(&mut self, what: &'static str) -> DecodeResult<Reader<'a>> {
        Ok(self.read_expect(tag::SEQUENCE, what)?.reader())
    }

    /// Reads an INTEGER.
    pub fn read_integer(&mut self, what: &'static str) -> DecodeResult<i64> {
        let tlv = self.read_expect(tag::INTEGER, what)?;
        decode_i64(tlv.content, tlv.offset)
    }

    /// Reads an INTEGER that must fit an i32 (request ids, error status ...).
    pub fn read_i32(&mut self, what: &'static str) -> DecodeResult<i32> {
        let at = self.offset();
        let v = self.read_integer(what)?;
        i32::try_from(v).or_else(|_| err(at, "integer out of 32-bit range"))
    }

    /// Reads an OCTET STRING.
    pub fn read_octets(&mut self, what: &'static str) -> DecodeResult<&'a [u8]> {
        Ok(self.read_expect(tag::OCTET_STRING, what)?.content)
    }

    /// Reads an OBJECT IDENTIFIER.
    pub fn read_oid(&mut self, what: &'static str) -> DecodeResult<Oid> {
        let tlv = self.read_expect(tag::OBJECT_IDENTIFIER, what)?;
        decode_oid(tlv.content, tlv.offset)
    }
}

/// Two's-complement INTEGER contents to i64.
pub fn decode_i64(c: &[u8], offset: usize) -> DecodeResult<i64> {
    if c.is_empty() {
        return err(offset, "empty integer");
    }
    if c.len() > 8 {
        return err(offset, "integer too large");
    }
    let mut v: i64 = if c[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in c {
        v = (v << 8) | i64::from(b);
    }
    Ok(v)
}

/// Unsigned contents (Counter64 and friends) to u64; a leading zero byte is allowed.
pub fn decode_u64(c: &[u8], offset: usize) -> DecodeResult<u64> {
    let c = match c {
        [] => return err(offset, "empty integer"),
        [0, rest @ ..] if c.len() == 9 => rest,
        _ if c.len() > 8 => return err(offset, "unsigned integer too large"),
        _ => c,
    };
    Ok(c.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

/// Unsigned32 contents to u32. Like net-snmp, a value some agents wrongly send in
/// two's-complement form (0xFF.. with 4 bytes) is read as its low 32 bits.
pub fn decode_u32(c: &[u8], offset: usize) -> DecodeResult<u32> {
    let c = match c {
        [] => return err(offset, "empty integer"),
        [0, rest @ ..] if c.len() == 5 => rest,
        _ if c.len() > 4 => return err(offset, "unsigned 32-bit integer too large"),
        _ => c,
    };
    Ok(c.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
}

/// OBJECT IDENTIFIER contents to an [`Oid`].
pub fn decode_oid(c: &[u8], offset: usize) -> DecodeResult<Oid> {
    let mut out = [0u32; MAX_OID_LEN];
    let mut n = 0usize;
    let mut acc: u64 = 0;
    let mut in_subid = false;
    for (i, &b) in c.iter().enumerate() {
        if !in_subid && b == 0x80 {
            return err(offset + i, "non-minimal OID sub-identifier");
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        in_subid = true;
        if acc > u64::from(u32::MAX) + 80 {
            return err(offset + i, "OID sub-identifier too large");
        }
        if b & 0x80 == 0 {
            if n == 0 {
                // The first sub-identifier packs two arcs: 40 * x + y.
                let (x, y) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                out[0] = x;
                out[1] = u32::try_from(y).or_else(|_| err(offset + i, "OID arc too large"))?;
                n = 2;
            } else {
                if n >= MAX_OID_LEN {
                    return err(offset + i, "OID has more than 128 sub-identifiers");
                }
                out[n] = u32::try_from(acc).or_else(|_| err(offset + i, "OID arc too large"))?;
                n += 1;
            }
            acc = 0;
            in_subid = false;
        }
    }
    if in_subid {
        return err(offset + c.len(), "truncated OID sub-identifier");
    }
    Ok(Oid::new(&out[..n]))
}

/// Decodes a varbind value from its TLV.
pub fn decode_value(tlv: &Tlv<'_>) -> DecodeResult<Value> {
    let c = tlv.content;
    let o = tlv.offset;
    Ok(match tlv.tag {
        tag::INTEGER => Value::Integer(decode_i64(c, o)?),
        tag::OCTET_STRING => Value::OctetString(c.to_vec()),
        tag::NULL => {
            if !c.is_empty() {
                return err(o, "NULL with contents");
            }
            Value::Null
        }
        tag::OBJECT_IDENTIFIER => Value::ObjectId(decode_oid(c, o)?),
        tag::IP_ADDRESS => match <[u8; 4]>::try_from(c) {
            Ok(a) => Value::IpAddress(a),
            Err(_) => return err(o, "IpAddress is not 4 bytes"),
        },
        tag::COUNTER32 => Value::Counter32(decode_u32(c, o)?),
        tag::GAUGE32 | tag::UINTEGER32 => Value::Gauge32(decode_u32(c, o)?),
        tag::TIMETICKS => Value::TimeTicks(decode_u32(c, o)?),
        tag::COUNTER64 => Value::Counter64(decode_u64(c, o)?),
        tag::OPAQUE => decode_opaque(c, o),
        tag::NSAP_ADDRESS => Value::Opaque(c.to_vec()),
        tag::NO_SUCH_OBJECT => Value::NoSuchObject,
        tag::NO_SUCH_INSTANCE => Value::NoSuchInstance,
        tag::END_OF_MIB_VIEW => Value::EndOfMibView,
        _ => return err(tlv.start, "unknown value type"),
    })
}

/// net-snmp wraps float/double/64-bit integers in an Opaque as `9F 78..7B len bytes`;
/// anything else stays an opaque byte string.
fn decode_opaque(c: &[u8], o: usize) -> Value {
    if let [0x9f, t, len, rest @ ..] = c {
        if usize::from(*len) == rest.len() {
            match (*t, rest.len()) {
                (0x78, 4) => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(rest);
                    return Value::Float(f32::from_be_bytes(a));
                }
                (0x79, 8) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(rest);
                    return Value::Double(f64::from_be_bytes(a));
                }
                (0x76 | 0x7b, 1..=9) => {
                    if let Ok(v) = decode_u64(rest, o + 3) {
                        return Value::Counter64(v);
                    }
                }
                (0x7a, 1..=8) => {
                    if let Ok(v) = decode_i64(rest, o + 3) {
                        return Value::Integer(v);
                    }
                }
                _ => {}
            }
        }
    }
    Value::Opaque(c.to_vec())
}

/// Appends BER to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

/// Position of an open constructed value (see [`Writer::open`]).
#[must_use]
pub struct Mark(usize);

impl Writer {
    pub fn new() -> Writer {
        Writer {
            buf: Vec::with_capacity(128),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    fn push_length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (8 - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }

    /// Starts a constructed value with `tag`; close it with [`Writer::close`].
    pub fn open(&mut self, tag: u8) -> Mark {
        self.buf.push(tag);
        Mark(self.buf.len())
    }

    /// Ends a constructed value: inserts its length before the contents.
    pub fn close(&mut self, mark: Mark) {
        let len = self.buf.len() - mark.0;
        // Length bytes built on the stack: this runs for every SEQUENCE of every request.
        let mut l = [0u8; 9];
        let n = if len < 0x80 {
            l[0] = len as u8;
            1
        } else {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            l[0] = 0x80 | (8 - skip) as u8;
            l[1..1 + 8 - skip].copy_from_slice(&bytes[skip..]);
            1 + 8 - skip
        };
        self.buf.splice(mark.0..mark.0, l[..n].iter().copied());
    }

    /// A primitive value.
    pub fn tlv(&mut self, tag: u8, content: &[u8]) {
        self.buf.push(tag);
        Self::push_length(&mut self.buf, content.len());
        self.buf.extend_from_slice(content);
    }

    /// Pre-encoded BER, appended as is.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A two's-complement integer with any tag.
    pub fn integer_tagged(&mut self, tag: u8, v: i64) {
        let bytes = v.to_be_bytes();
        let mut start = 0;
        // Drop leading bytes that only repeat the sign.
        while start < 7 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        self.tlv(tag, &bytes[start..]);
    }

    pub fn integer(&mut self, v: i64) {
        self.integer_tagged(tag::INTEGER, v);
    }

    /// An unsigned integer with any tag (a leading zero is added when the top bit is set).
    pub fn unsigned(&mut self, tag: u8, v: u64) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
        if bytes[skip] & 0x80 != 0 {
            let mut c = Vec::with_capacity(9);
            c.push(0);
            c.extend_from_slice(&bytes[skip..]);
            self.tlv(tag, &c);
        } else {
            self.tlv(tag, &bytes[skip..]);
        }
    }

    pub fn octets(&mut self, v: &[u8]) {
        self.tlv(tag::OCTET_STRING, v);
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&[tag::NULL, 0]);
    }

    pub fn oid(&mut self, oid: &Oid) {
        // The zero-length OID stays zero-length, so that what decodes re-encodes the same
        // (found by the fuzzer).
        if oid.is_empty() {
            self.tlv(tag::OBJECT_IDENTIFIER, &[]);
            return;
        }
        let mut c = Vec::with_capacity(oid.len() + 4);
        let s = oid.as_slice();
        let first: u64 = match s {
            [] => 0,
            [a] => u64::from(*a) * 40,
            [a, b, ..] => u64::from(*a) * 40 + u64::from(*b),
        };
        push_base128(&mut c, first);
        for &n in s.iter().skip(2) {
            push_base128(&mut c, u64::from(n));
        }
        self.tlv(tag::OBJECT_IDENTIFIER, &c);
    }

    /// A varbind value.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Integer(i) => self.integer(*i),
            Value::OctetString(b) => self.octets(b),
            Value::Null => self.null(),
            Value::ObjectId(o) => self.oid(o),
            Value::IpAddress(a) => self.tlv(tag::IP_ADDRESS, a),
            Value::Counter32(n) => self.unsigned(tag::COUNTER32, u64::from(*n)),
            Value::Gauge32(n) => self.unsigned(tag::GAUGE32, u64::from(*n)),
            Value::TimeTicks(n) => self.unsigned(tag::TIMETICKS, u64::from(*n)),
            Value::Opaque(b) => self.tlv(tag::OPAQUE, b),
            Value::Counter64(n) => self.unsigned(tag::COUNTER64, *n),
            Value::Float(f) => {
                let mut c = vec![0x9f, 0x78, 4];
                c.extend_from_slice(&f.to_be_bytes());
                self.tlv(tag::OPAQUE, &c);
            }
            Value::Double(f) => {
                let mut c = vec![0x9f, 0x79, 8];
                c.extend_from_slice(&f.to_be_bytes());
                self.tlv(tag::OPAQUE, &c);
            }
            Value::NoSuchObject => self.tlv(tag::NO_SUCH_OBJECT, &[]),
            Value::NoSuchInstance => self.tlv(tag::NO_SUCH_INSTANCE, &[]),
            Value::EndOfMibView => self.tlv(tag::END_OF_MIB_VIEW, &[]),
        }
    }
}

fn push_base128(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8 | if i == tmp.len() - 1 { 0 } else { 0x80 };
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut w = Writer::new();
        w.value(v);
        w.into_vec()
    }

    fn dec(b: &[u8]) -> DecodeResult<Value> {
        let mut r = Reader::new(b);
        let tlv = r.read_tlv()?;
        decode_value(&tlv)
    }

    #[test]
    fn integers_are_minimal() {
        assert_eq!(enc(&Value::Integer(0)), [2, 1, 0]);
        assert_eq!(enc(&Value::Integer(127)), [2, 1, 0x7f]);
        assert_eq!(enc(&Value::Integer(128)), [2, 2, 0, 0x80]);
        assert_eq!(enc(&Value::Integer(-1)), [2, 1, 0xff]);
        assert_eq!(enc(&Value::Integer(-129)), [2, 2, 0xff, 0x7f]);
        assert_eq!(
            enc(&Value::Counter32(u32::MAX)),
            [0x41, 5, 0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(enc(&Value::Counter64(0)), [0x46, 1, 0]);
        assert_eq!(
            enc(&Value::Counter64(u64::MAX)),
            [0x46, 9, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Integer(i64::MIN),
            Value::Integer(i64::MAX),
            Value::Integer(-5),
            Value::OctetString(b"hello".to_vec()),
            Value::Null,
            Value::ObjectId(Oid::from([1, 3, 6, 1, 4, 1, 8072, 3, 2, 10])),
            Value::ObjectId(Oid::from([2, 999, 3])),
            Value::ObjectId(Oid::new(&[])),
            Value::IpAddress([10, 0, 0, 1]),
            Value::Counter32(123_456),
            Value::Gauge32(u32::MAX),
            Value::TimeTicks(99),
            Value::Opaque(vec![1, 2, 3]),
            Value::Counter64(u64::MAX - 1),
            Value::Float(1.25),
            Value::Double(-2.5e100),
            Value::NoSuchObject,
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ] {
            assert_eq!(dec(&enc(&v)).unwrap(), v, "{v:?}");
        }
    }

    #[test]
    fn known_oid_bytes() {
        // sysDescr.0 as net-snmp sends it.
        let b = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00];
        let mut w = Writer::new();
        w.oid(&Oid::parse("1.3.6.1.2.1.1.1.0").unwrap());
        assert_eq!(w.buf, b);
        assert_eq!(
            dec(&b).unwrap(),
            Value::ObjectId(Oid::parse("1.3.6.1.2.1.1.1.0").unwrap())
        );
        // Multi-byte arc: 1.3.6.1.4.1.8072 (8072 = 0xBF 0x08).
        let mut w = Writer::new();
        w.oid(&Oid::parse("1.3.6.1.4.1.8072").unwrap());
        assert_eq!(w.buf, [0x06, 0x07, 0x2b, 6, 1, 4, 1, 0xbf, 0x08]);
    }

    #[test]
    fn lenient_unsigned_and_errors_with_offsets() {
        // Counter32 sent as 4 bytes with the top bit set (a common agent bug).
        assert_eq!(
            dec(&[0x41, 4, 0xff, 0xff, 0xff, 0xfe]).unwrap(),
            Value::Counter32(0xffff_fffe)
        );
        assert_eq!(
            dec(&[0x41, 5, 1, 0, 0, 0, 0]),
            Err(DecodeError {
                offset: 2,
                msg: "unsigned 32-bit integer too large"
            })
        );
        assert_eq!(dec(&[0x02, 5, 1]).unwrap_err().offset, 0);
        assert_eq!(
            dec(&[0x06, 2, 0x2b, 0x86]).unwrap_err().msg,
            "truncated OID sub-identifier"
        );
        assert_eq!(
            dec(&[0x40, 3, 1, 2, 3]).unwrap_err().msg,
            "IpAddress is not 4 bytes"
        );
        assert_eq!(
            dec(&[0x02, 0x80]).unwrap_err().msg,
            "indefinite length is not allowed"
        );
        assert_eq!(
            dec(&[0x02]).unwrap_err().msg,
            "unexpected end of data, expected a length"
        );
        assert!(dec(&[0x02, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(dec(&[0x06, 6, 0x8f, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn long_lengths() {
        let s = vec![b'x'; 300];
        let e = enc(&Value::OctetString(s.clone()));
        assert_eq!(&e[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(dec(&e).unwrap(), Value::OctetString(s));
        let mut w = Writer::new();
        let m = w.open(0x30);
        w.octets(&[0u8; 200]);
        w.close(m);
        assert_eq!(&w.buf[..6], &[0x30, 0x81, 0xcb, 0x04, 0x81, 0xc8]);
    }
}
