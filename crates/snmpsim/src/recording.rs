//! One simulated device's MIB: a sorted table of (OID, value) built from an snmpsim
//! `.snmprec` recording (or from the synthetic IF-MIB generator), with the values pre-encoded
//! in BER so that answering is mostly a copy.
//!
//! Layout: every OID lives in one `u32` arena and every pre-encoded OID TLV and static value
//! TLV in one byte arena; an [`Entry`] holds offsets into both. A recording is shared by all
//! devices that serve it (`Arc<Recording>`); what changes with time (counters, sysUpTime,
//! `numeric` variations) is computed from the entry's parameters and the device's clock.

use std::io::Read;
use std::path::Path;

use lookout_snmp::ber::{tag, Writer};
use lookout_snmp::{Oid, Value};

use crate::SimError;

/// sysUpTime.0: served as the recorded value plus the time since the simulator started.
pub const SYS_UPTIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];

/// How a value is produced when it is served.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dynamic {
    /// The recorded value, always.
    Static,
    /// Counter32 recorded value + rate per second (wrapping at 2^32).
    Counter32 { base: u32, rate: u32 },
    /// Counter64 recorded value + rate per second (wrapping at 2^64).
    Counter64 { base: u64, rate: u64 },
    /// TimeTicks recorded value + elapsed centiseconds (sysUpTime).
    Uptime { base: u32 },
    /// snmpsim's `numeric` variation module; index into the recording's parameter table.
    Numeric(u32),
}

/// The periodic functions of snmpsim's `numeric` module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wave {
    Sin,
    Cos,
}

/// Parameters of snmpsim's `numeric` variation (`TAG:numeric|name=value,...`).
#[derive(Clone, Debug, PartialEq)]
pub struct Numeric {
    pub tag: u8,
    pub initial: f64,
    pub rate: f64,
    pub min: f64,
    pub max: f64,
    pub scale: f64,
    pub offset: f64,
    /// `sin`/`cos`: value = offset + scale * f(rate * t); otherwise initial + rate * t.
    pub function: Option<Wave>,
    pub wrap: bool,
}

impl Numeric {
    fn value_at(&self, secs: f64) -> f64 {
        let v = match self.function {
            Some(w) => {
                let x = self.rate * secs;
                self.offset + self.scale * if w == Wave::Sin { x.sin() } else { x.cos() }
            }
            None => self.initial + self.rate * secs,
        };
        if v > self.max {
            if self.wrap && self.max > self.min {
                self.min + (v - self.min) % (self.max - self.min)
            } else {
                self.max
            }
        } else if v < self.min {
            self.min
        } else {
            v
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    oid_at: u32,
    oid_len: u32,
    /// Pre-encoded OID TLV, followed (for static values) by the value TLV.
    enc_at: u32,
    oid_tlv_len: u32,
    val_tlv_len: u32,
    /// BER tag of the value (v1 never sees Counter64 or exceptions).
    vtag: u8,
    dynamic: Dynamic,
}

/// What parsing a recording found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines read (comments and blank lines included).
    pub lines: u64,
    /// Records served.
    pub records: u64,
    /// Lines that were not a usable record (logged at debug level, first few at warn).
    pub skipped: u64,
    /// Records whose OID appeared again later (the last one wins, as in snmpsim's index).
    pub duplicates: u64,
    /// Records with a variation module (`TAG:module`).
    pub variations: u64,
}

/// A device's MIB, sorted by OID.
#[derive(Debug)]
pub struct Recording {
    /// snmpsim's name for it: the path relative to the data directory without `.snmprec`.
    pub name: String,
    oids: Vec<u32>,
    enc: Vec<u8>,
    entries: Vec<Entry>,
    numerics: Vec<Numeric>,
    pub stats: ParseStats,
}

/// How a dynamic value ticks: milliseconds since the device's clock started (0 when frozen).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub elapsed_ms: u64,
}

/// Deterministic per-OID rate (FNV-1a of the sub-identifiers), so two runs and two devices
/// serving one recording see the same counters.
fn oid_hash(oid: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &n in oid {
        for b in n.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A record before it goes into the arenas.
struct Rec {
    oid: Vec<u32>,
    value: Value,
    dynamic: Dynamic,
    numeric: Option<Numeric>,
}

/// Builds a [`Recording`] from (OID, value) pairs; used by the `.snmprec` parser and the
/// synthetic generator. Counters get a rate, sysUpTime ticks, unless told otherwise.
pub struct Builder {
    name: String,
    recs: Vec<Rec>,
    stats: ParseStats,
}

impl Builder {
    pub fn new(name: impl Into<String>) -> Builder {
        Builder {
            name: name.into(),
            recs: Vec::new(),
            stats: ParseStats::default(),
        }
    }

    /// Adds a value; Counter32/Counter64 advance at a per-OID rate and sysUpTime.0 ticks.
    pub fn push(&mut self, oid: &[u32], value: Value) {
        let dynamic = default_dynamic(oid, &value);
        self.recs.push(Rec {
            oid: oid.to_vec(),
            value,
            dynamic,
            numeric: None,
        });
    }

    /// Adds a value that never changes.
    pub fn push_static(&mut self, oid: &[u32], value: Value) {
        self.recs.push(Rec {
            oid: oid.to_vec(),
            value,
            dynamic: Dynamic::Static,
            numeric: None,
        });
    }

    /// Adds a value served as `dynamic` says (e.g. a counter with a chosen rate).
    pub fn push_dynamic(&mut self, oid: &[u32], value: Value, dynamic: Dynamic) {
        self.recs.push(Rec {
            oid: oid.to_vec(),
            value,
            dynamic,
            numeric: None,
        });
    }

    fn push_numeric(&mut self, oid: Vec<u32>, n: Numeric) {
        let value = numeric_value(&n, 0.0);
        self.recs.push(Rec {
            oid,
            value,
            dynamic: Dynamic::Numeric(0),
            numeric: Some(n),
        });
    }

    pub fn build(mut self) -> Recording {
        // Stable sort: among equal OIDs the later line stays later and wins below.
        self.recs.sort_by(|a, b| a.oid.cmp(&b.oid));
        let mut stats = self.stats;
        let mut r = Recording {
            name: self.name,
            oids: Vec::new(),
            enc: Vec::new(),
            entries: Vec::with_capacity(self.recs.len()),
            numerics: Vec::new(),
            stats: ParseStats::default(),
        };
        let mut w = Writer::new();
        for rec in self.recs {
            let oid_at = r.oids.len() as u32;
            r.oids.extend_from_slice(&rec.oid);
            let enc_at = r.enc.len() as u32;
            w.buf.clear();
            push_oid(&mut w.buf, &rec.oid);
            let oid_tlv_len = w.buf.len() as u32;
            let mut dynamic = rec.dynamic;
            if let Some(num) = rec.numeric {
                dynamic = Dynamic::Numeric(r.numerics.len() as u32);
                r.numerics.push(num);
            }
            let vtag = value_tag(&rec.value);
            if dynamic == Dynamic::Static {
                push_value(&mut w, &rec.value);
            }
            let val_tlv_len = w.buf.len() as u32 - oid_tlv_len;
            r.enc.extend_from_slice(&w.buf);
            r.entries.push(Entry {
                oid_at,
                oid_len: rec.oid.len() as u32,
                enc_at,
                oid_tlv_len,
                val_tlv_len,
                vtag,
                dynamic,
            });
        }
        // Keep the last of equal OIDs (its bytes stay in the arenas unused).
        let before = r.entries.len();
        let mut kept: Vec<Entry> = Vec::with_capacity(before);
        for e in std::mem::take(&mut r.entries) {
            if let Some(last) = kept.last() {
                if r.oids[last.oid_at as usize..(last.oid_at + last.oid_len) as usize]
                    == r.oids[e.oid_at as usize..(e.oid_at + e.oid_len) as usize]
                {
                    kept.pop();
                }
            }
            kept.push(e);
        }
        stats.duplicates += (before - kept.len()) as u64;
        r.entries = kept;
        stats.records = r.entries.len() as u64;
        r.stats = stats;
        r
    }
}

fn default_dynamic(oid: &[u32], value: &Value) -> Dynamic {
    let h = oid_hash(oid);
    match value {
        // Rates like real interfaces: Counter32 up to 100 k/s, Counter64 up to 10 M/s.
        Value::Counter32(b) => Dynamic::Counter32 {
            base: *b,
            rate: 1 + (h % 100_000) as u32,
        },
        Value::Counter64(b) => Dynamic::Counter64 {
            base: *b,
            rate: 1 + h % 10_000_000,
        },
        Value::TimeTicks(b) if oid == SYS_UPTIME => Dynamic::Uptime { base: *b },
        _ => Dynamic::Static,
    }
}

fn value_tag(v: &Value) -> u8 {
    match v {
        Value::Integer(_) => tag::INTEGER,
        Value::OctetString(_) => tag::OCTET_STRING,
        Value::Null => tag::NULL,
        Value::ObjectId(_) => tag::OBJECT_IDENTIFIER,
        Value::IpAddress(_) => tag::IP_ADDRESS,
        Value::Counter32(_) => tag::COUNTER32,
        Value::Gauge32(_) => tag::GAUGE32,
        Value::TimeTicks(_) => tag::TIMETICKS,
        Value::Opaque(_) | Value::Float(_) | Value::Double(_) => tag::OPAQUE,
        Value::Counter64(_) => tag::COUNTER64,
        Value::NoSuchObject => tag::NO_SUCH_OBJECT,
        Value::NoSuchInstance => tag::NO_SUCH_INSTANCE,
        Value::EndOfMibView => tag::END_OF_MIB_VIEW,
    }
}

fn numeric_value(n: &Numeric, secs: f64) -> Value {
    let v = n.value_at(secs);
    match n.tag {
        tag::INTEGER => Value::Integer(v.round() as i64),
        tag::COUNTER32 => Value::Counter32((v.max(0.0) as u64) as u32),
        tag::GAUGE32 => Value::Gauge32(v.clamp(0.0, f64::from(u32::MAX)) as u32),
        tag::TIMETICKS => Value::TimeTicks((v.max(0.0) as u64) as u32),
        _ => Value::Counter64(v.max(0.0) as u64),
    }
}

/// Appends a BER length.
#[inline]
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len < 0x10000 {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
}

/// Bytes a BER length takes.
#[inline]
pub(crate) fn len_len(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        _ => 4,
    }
}

/// Appends an OID TLV (recordings hold OIDs of 2+ sub-identifiers starting 0, 1 or 2;
/// anything else goes through the library's general encoder).
fn push_oid(out: &mut Vec<u8>, oid: &[u32]) {
    if oid.len() < 2 || oid[0] > 2 || (oid[0] < 2 && oid[1] >= 40) {
        let mut w = Writer::new();
        w.oid(&Oid::new(oid));
        out.extend_from_slice(&w.buf);
        return;
    }
    let mut c = [0u8; 5 * 130];
    let mut n = 0;
    let mut put = |v: u64| {
        let mut tmp = [0u8; 10];
        let mut k = 0;
        let mut v = v;
        loop {
            tmp[k] = (v & 0x7f) as u8;
            k += 1;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for j in (0..k).rev() {
            c[n] = tmp[j] | if j > 0 { 0x80 } else { 0 };
            n += 1;
        }
    };
    put(u64::from(oid[0]) * 40 + u64::from(oid[1]));
    for &x in &oid[2..] {
        put(u64::from(x));
    }
    out.push(tag::OBJECT_IDENTIFIER);
    push_len(out, n);
    out.extend_from_slice(&c[..n]);
}

/// Appends a value TLV: the common types here, the rest by the library's encoder.
fn push_value(w: &mut Writer, v: &Value) {
    let out = &mut w.buf;
    match v {
        Value::OctetString(b) => {
            out.push(tag::OCTET_STRING);
            push_len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::Integer(i) => {
            let b = i.to_be_bytes();
            let mut s = 0;
            while s < 7
                && ((b[s] == 0 && b[s + 1] & 0x80 == 0) || (b[s] == 0xff && b[s + 1] & 0x80 != 0))
            {
                s += 1;
            }
            out.extend_from_slice(&[tag::INTEGER, (8 - s) as u8]);
            out.extend_from_slice(&b[s..]);
        }
        Value::Counter32(n) => push_unsigned(out, tag::COUNTER32, u64::from(*n)),
        Value::Gauge32(n) => push_unsigned(out, tag::GAUGE32, u64::from(*n)),
        Value::TimeTicks(n) => push_unsigned(out, tag::TIMETICKS, u64::from(*n)),
        Value::Counter64(n) => push_unsigned(out, tag::COUNTER64, *n),
        Value::IpAddress(a) => {
            out.extend_from_slice(&[tag::IP_ADDRESS, 4]);
            out.extend_from_slice(a);
        }
        Value::ObjectId(o) => push_oid(out, o.as_slice()),
        _ => w.value(v),
    }
}

/// Appends an unsigned value TLV (a leading zero when the top bit is set).
#[inline]
fn push_unsigned(out: &mut Vec<u8>, t: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8).min(7) as usize;
    if bytes[skip] & 0x80 != 0 {
        out.extend_from_slice(&[t, (9 - skip) as u8, 0]);
    } else {
        out.extend_from_slice(&[t, (8 - skip) as u8]);
    }
    out.extend_from_slice(&bytes[skip..]);
}

impl Recording {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The OID of record `i` (records are in OID order).
    #[inline]
    pub fn oid(&self, i: usize) -> &[u32] {
        let e = &self.entries[i];
        &self.oids[e.oid_at as usize..(e.oid_at + e.oid_len) as usize]
    }

    /// BER tag of record `i`'s value.
    #[inline]
    pub fn tag(&self, i: usize) -> u8 {
        self.entries[i].vtag
    }

    /// Index of the record with exactly this OID.
    #[inline]
    pub fn find(&self, oid: &[u32]) -> Option<usize> {
        self.entries
            .binary_search_by(|e| {
                self.oids[e.oid_at as usize..(e.oid_at + e.oid_len) as usize].cmp(oid)
            })
            .ok()
    }

    /// Index of the first record after `oid` (GETNEXT); `len()` when there is none.
    #[inline]
    pub fn next_after(&self, oid: &[u32]) -> usize {
        self.entries.partition_point(|e| {
            &self.oids[e.oid_at as usize..(e.oid_at + e.oid_len) as usize] <= oid
        })
    }

    /// Whether a GET of a missing `oid` should say noSuchInstance (the object exists: a
    /// neighbouring record shares everything but the last sub-identifier, or `oid` is a
    /// prefix of records) rather than noSuchObject. Recordings do not say where objects end,
    /// so this is net-snmp's answer for scalars and single-index table columns.
    pub fn object_exists(&self, oid: &[u32]) -> bool {
        // Shallower than 1.3.6.1.2.1.x.y is a subtree, never an object instance.
        if oid.len() < 8 {
            return false;
        }
        let parent = &oid[..oid.len() - 1];
        let i = self.next_after(oid);
        let near = |j: usize| j < self.len() && self.oid(j).starts_with(parent);
        (i < self.len() && self.oid(i).starts_with(oid)) || near(i) || (i > 0 && near(i - 1))
    }

    /// Appends the varbind SEQUENCE of record `i` as served at `clock`.
    #[inline]
    pub fn encode_varbind(&self, i: usize, clock: Clock, out: &mut Vec<u8>) {
        let e = &self.entries[i];
        let at = e.enc_at as usize;
        if e.dynamic == Dynamic::Static {
            let n = (e.oid_tlv_len + e.val_tlv_len) as usize;
            out.push(tag::SEQUENCE);
            push_len(out, n);
            out.extend_from_slice(&self.enc[at..at + n]);
            return;
        }
        let mut val: Vec<u8> = Vec::new();
        let mut small = [0u8; 16];
        let vlen = self.encode_dynamic(e, clock, &mut small, &mut val);
        let oid_tlv = &self.enc[at..at + e.oid_tlv_len as usize];
        let vbytes: &[u8] = if vlen > 0 { &small[..vlen] } else { &val };
        out.push(tag::SEQUENCE);
        push_len(out, oid_tlv.len() + vbytes.len());
        out.extend_from_slice(oid_tlv);
        out.extend_from_slice(vbytes);
    }

    /// Encodes a dynamic value into `small` (returns its length) or, for the rare value that
    /// does not fit, into `big` (returns 0).
    fn encode_dynamic(
        &self,
        e: &Entry,
        clock: Clock,
        small: &mut [u8; 16],
        big: &mut Vec<u8>,
    ) -> usize {
        let ms = clock.elapsed_ms;
        let (t, v) = match e.dynamic {
            Dynamic::Counter32 { base, rate } => (
                tag::COUNTER32,
                u64::from(base.wrapping_add((u64::from(rate) * ms / 1000) as u32)),
            ),
            Dynamic::Counter64 { base, rate } => (
                tag::COUNTER64,
                base.wrapping_add((u128::from(rate) * u128::from(ms) / 1000) as u64),
            ),
            Dynamic::Uptime { base } => (
                tag::TIMETICKS,
                u64::from(base.wrapping_add((ms / 10) as u32)),
            ),
            Dynamic::Numeric(k) => {
                let value = match self.numerics.get(k as usize) {
                    Some(n) => numeric_value(n, ms as f64 / 1000.0),
                    None => Value::Null,
                };
                let mut w = Writer::new();
                w.value(&value);
                *big = w.into_vec();
                return 0;
            }
            Dynamic::Static => return 0,
        };
        let mut tmp = Vec::with_capacity(11);
        push_unsigned(&mut tmp, t, v);
        small[..tmp.len()].copy_from_slice(&tmp);
        tmp.len()
    }

    /// Record `i`'s value as served at `clock` (decoded; for tests and tools).
    pub fn value(&self, i: usize, clock: Clock) -> Value {
        let mut buf = Vec::new();
        self.encode_varbind(i, clock, &mut buf);
        let mut r = lookout_snmp::ber::Reader::new(&buf);
        let decoded = r.read_sequence("varbind").and_then(|mut s| {
            s.read_tlv()?;
            let v = s.read_tlv()?;
            lookout_snmp::ber::decode_value(&v)
        });
        decoded.unwrap_or(Value::Null)
    }

    /// Parses `.snmprec` text. Never fails as a whole: unusable lines are counted in
    /// [`ParseStats::skipped`] and logged.
    pub fn parse_snmprec(name: impl Into<String>, text: &[u8]) -> Recording {
        let name = name.into();
        let mut b = Builder::new(name.clone());
        let mut warned = 0;
        for line in text.split(|&c| c == b'\n') {
            b.stats.lines += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            match parse_line(line) {
                Ok(Parsed::Value(oid, v, variation)) => {
                    if variation {
                        b.stats.variations += 1;
                    }
                    b.push(&oid, v)
                }
                Ok(Parsed::Numeric(oid, n)) => {
                    b.stats.variations += 1;
                    b.push_numeric(oid, n)
                }
                Err(why) => {
                    b.stats.skipped += 1;
                    if warned < 3 {
                        warned += 1;
                        tracing::warn!(recording = %name, line = %String::from_utf8_lossy(&line[..line.len().min(120)]), why, "skipped a .snmprec line");
                    } else {
                        tracing::debug!(recording = %name, why, "skipped a .snmprec line");
                    }
                }
            }
        }
        // A trailing newline is not a line.
        if text.last() == Some(&b'\n') {
            b.stats.lines -= 1;
        }
        b.build()
    }

    /// Reads and parses a `.snmprec` or `.snmprec.bz2` file.
    pub fn load(path: &Path, name: impl Into<String>) -> Result<Recording, SimError> {
        let io = |e| SimError::Io(path.display().to_string(), e);
        let raw = std::fs::read(path).map_err(io)?;
        let text = if path.extension().is_some_and(|e| e == "bz2") {
            let mut out = Vec::with_capacity(raw.len() * 8);
            bzip2::read::MultiBzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(io)?;
            out
        } else {
            raw
        };
        Ok(Recording::parse_snmprec(name, &text))
    }
}

enum Parsed {
    Value(Vec<u32>, Value, bool),
    Numeric(Vec<u32>, Numeric),
}

fn parse_oid(s: &[u8]) -> Result<Vec<u32>, &'static str> {
    let s = std::str::from_utf8(s).map_err(|_| "OID is not ASCII")?;
    let s = s.trim();
    let s = s.strip_prefix('.').unwrap_or(s);
    let mut v = Vec::with_capacity(16);
    for p in s.split('.') {
        v.push(p.parse::<u32>().map_err(|_| "bad OID")?);
    }
    if v.len() < 2 || v.len() > lookout_snmp::oid::MAX_OID_LEN {
        return Err("bad OID length");
    }
    Ok(v)
}

fn hex(s: &[u8]) -> Result<Vec<u8>, &'static str> {
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if !s.len().is_multiple_of(2) {
        return Err("odd hex length");
    }
    s.chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad hex")
        })
        .collect()
}

fn num<T: std::str::FromStr>(s: &[u8]) -> Result<T, &'static str> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or("bad number")
}

/// A value of BER tag `t` from its text (`hexed`: the tag had an `x`).
fn parse_value(t: u32, hexed: bool, v: &[u8]) -> Result<Value, &'static str> {
    let bytes = |v: &[u8]| if hexed { hex(v) } else { Ok(v.to_vec()) };
    Ok(match t {
        2 => Value::Integer(num(v)?),
        4 => Value::OctetString(bytes(v)?),
        5 => Value::Null,
        6 => Value::ObjectId(Oid::new(&parse_oid(v)?)),
        64 => {
            if hexed {
                let b = hex(v)?;
                Value::IpAddress(b.try_into().map_err(|_| "IpAddress is not 4 bytes")?)
            } else {
                let a: std::net::Ipv4Addr = num(v)?;
                Value::IpAddress(a.octets())
            }
        }
        65 => Value::Counter32(num(v)?),
        66 => Value::Gauge32(num(v)?),
        67 => Value::TimeTicks(num(v)?),
        68 => Value::Opaque(bytes(v)?),
        70 => Value::Counter64(num(v)?),
        128 => Value::NoSuchObject,
        129 => Value::NoSuchInstance,
        130 => Value::EndOfMibView,
        _ => return Err("unknown tag"),
    })
}

fn parse_line(line: &[u8]) -> Result<Parsed, &'static str> {
    let mut parts = line.splitn(3, |&c| c == b'|');
    let (Some(o), Some(t), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not OID|TAG|VALUE");
    };
    let oid = parse_oid(o)?;
    let t = std::str::from_utf8(t)
        .map_err(|_| "tag is not ASCII")?
        .trim();
    let (t, module) = match t.split_once(':') {
        Some((a, m)) => (a, Some(m)),
        None => (t, None),
    };
    let (t, hexed) = match t.strip_suffix('x') {
        Some(a) => (a, true),
        None => (t, false),
    };
    let t: u32 = t.parse().map_err(|_| "bad tag")?;
    let Some(module) = module else {
        return Ok(Parsed::Value(oid, parse_value(t, hexed, v)?, false));
    };
    let params = parse_params(v);
    let param = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_slice())
    };
    match module {
        "numeric" if matches!(t, 2 | 65 | 66 | 67 | 70) => {
            let f = |k: &str, d: f64| param(k).and_then(|v| num::<f64>(v).ok()).unwrap_or(d);
            let (lo, hi) = match t {
                2 => (f64::from(i32::MIN), f64::from(i32::MAX)),
                70 => (0.0, u64::MAX as f64),
                _ => (0.0, f64::from(u32::MAX)),
            };
            let min = f("min", lo);
            let function = match param("function") {
                Some(b"sin") => Some(Wave::Sin),
                Some(b"cos") => Some(Wave::Cos),
                _ => None,
            };
            Ok(Parsed::Numeric(
                oid,
                Numeric {
                    tag: t as u8,
                    initial: f("initial", if min > lo { min } else { 0.0 }),
                    rate: f("rate", 1.0),
                    min,
                    max: f("max", hi),
                    scale: f("scale", 1.0),
                    offset: f("offset", 0.0),
                    function,
                    wrap: matches!(t, 65 | 70) || param("wrap").is_some_and(|w| w == b"1"),
                },
            ))
        }
        _ => {
            // Other modules (writecache, sql, ...): serve their `value=` (or the raw text) as
            // a recorded value when it parses as the tag's type.
            let raw = param("value").unwrap_or(v);
            Ok(Parsed::Value(oid, parse_value(t, hexed, raw)?, true))
        }
    }
}

fn parse_params(v: &[u8]) -> Vec<(String, Vec<u8>)> {
    v.split(|&c| c == b',')
        .filter_map(|kv| {
            let eq = kv.iter().position(|&c| c == b'=')?;
            Some((
                String::from_utf8_lossy(&kv[..eq]).trim().to_string(),
                kv[eq + 1..].to_vec(),
            ))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FROZEN: Clock = Clock { elapsed_ms: 0 };

    #[test]
    fn parses_every_kind_and_skips_bad_lines() {
        let text = b"# comment\n\
1.3.6.1.2.1.1.1.0|4|Linux box\n\
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10\n\
1.3.6.1.2.1.1.3.0|67|100\n\
1.3.6.1.2.1.1.4.0|4x|00ff41\n\
1.3.6.1.2.1.2.2.1.10.1|65|4294967295\n\
1.3.6.1.2.1.4.20.1.1.10.0.0.1|64|10.0.0.1\n\
1.3.6.1.2.1.4.20.1.1.10.0.0.2|64x|0a000002\n\
1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615\n\
1.3.6.1.2.1.25.1.1.0|67:numeric|rate=100\n\
1.3.6.1.4.1.1.0|2:numeric|min=0,scale=95,deviation=2,function=cos,rate=0.001\n\
1.3.6.1.4.1.2.0|4:writecache|value=hello\n\
1.3.6.1.4.1.3.0|68x|0906\n\
1.3.6.1.4.1.4.0|5|\n\
1.3.6.1.4.1.5.0|2|not a number\n\
garbage\n\
1.3.6.1.4.1.6.0|99|x\n\
1.3.6.1.4.1.7.0|2|11.3.6.1.2.1.1.1.0|4x|00\n\
1.3.6.1.2.1.1.5.0|4|first\n\
1.3.6.1.2.1.1.5.0|4|second\n";
        let r = Recording::parse_snmprec("t", text);
        assert_eq!(r.stats.skipped, 4, "{:?}", r.stats);
        assert_eq!(r.stats.duplicates, 1);
        assert_eq!(r.stats.variations, 3);
        assert_eq!(r.len(), 14);
        let v = |o: &str| r.value(r.find(Oid::parse(o).unwrap().as_slice()).unwrap(), FROZEN);
        assert_eq!(
            v("1.3.6.1.2.1.1.1.0"),
            Value::OctetString(b"Linux box".to_vec())
        );
        assert_eq!(
            v("1.3.6.1.2.1.1.4.0"),
            Value::OctetString(vec![0, 0xff, 0x41])
        );
        assert_eq!(
            v("1.3.6.1.2.1.1.5.0"),
            Value::OctetString(b"second".to_vec())
        );
        assert_eq!(
            v("1.3.6.1.2.1.4.20.1.1.10.0.0.2"),
            Value::IpAddress([10, 0, 0, 2])
        );
        assert_eq!(v("1.3.6.1.2.1.2.2.1.10.1"), Value::Counter32(u32::MAX));
        assert_eq!(v("1.3.6.1.2.1.31.1.1.1.6.1"), Value::Counter64(u64::MAX));
        assert_eq!(v("1.3.6.1.4.1.1.0"), Value::Integer(95));
        assert_eq!(v("1.3.6.1.4.1.2.0"), Value::OctetString(b"hello".to_vec()));
        assert_eq!(v("1.3.6.1.4.1.4.0"), Value::Null);
        assert_eq!(v("1.3.6.1.2.1.25.1.1.0"), Value::TimeTicks(0));
        // OID order.
        for i in 1..r.len() {
            assert!(r.oid(i - 1) < r.oid(i));
        }
    }

    #[test]
    fn counters_advance_and_wrap() {
        let r = Recording::parse_snmprec(
            "t",
            b"1.3.6.1.2.1.1.3.0|67|500\n1.3.6.1.2.1.2.2.1.10.1|65|4294967295\n1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615\n1.3.6.1.2.1.25.1.1.0|67:numeric|rate=100\n",
        );
        let later = Clock { elapsed_ms: 2_000 };
        let at = |o: &str| r.find(Oid::parse(o).unwrap().as_slice()).unwrap();
        assert_eq!(
            r.value(at("1.3.6.1.2.1.1.3.0"), later),
            Value::TimeTicks(700)
        );
        let Value::Counter32(c) = r.value(at("1.3.6.1.2.1.2.2.1.10.1"), later) else {
            panic!()
        };
        assert!(c < 1_000_000, "wrapped: {c}");
        let Value::Counter64(c) = r.value(at("1.3.6.1.2.1.31.1.1.1.6.1"), later) else {
            panic!()
        };
        assert!(c < 100_000_000, "wrapped: {c}");
        assert_eq!(
            r.value(at("1.3.6.1.2.1.25.1.1.0"), later),
            Value::TimeTicks(200)
        );
        // Frozen: the recorded values.
        assert_eq!(
            r.value(at("1.3.6.1.2.1.2.2.1.10.1"), FROZEN),
            Value::Counter32(u32::MAX)
        );
    }

    #[test]
    fn local_encoders_match_the_library() {
        let vals = [
            Value::Integer(0),
            Value::Integer(-129),
            Value::Integer(i64::from(i32::MAX)),
            Value::OctetString(vec![7; 300]),
            Value::Counter32(u32::MAX),
            Value::Gauge32(128),
            Value::TimeTicks(0),
            Value::Counter64(u64::MAX),
            Value::IpAddress([10, 0, 0, 1]),
            Value::ObjectId(Oid::new(&[1, 3, 6, 1, 4, 1, 2_000_000_000, 0])),
            Value::ObjectId(Oid::new(&[2, 999, 3])),
            Value::Null,
        ];
        for v in vals {
            let mut a = Writer::new();
            push_value(&mut a, &v);
            let mut b = Writer::new();
            b.value(&v);
            assert_eq!(a.buf, b.buf, "{v:?}");
        }
    }

    #[test]
    fn next_and_exists() {
        let r = Recording::parse_snmprec(
            "t",
            b"1.3.6.1.2.1.1.5.0|4|a\n1.3.6.1.2.1.2.2.1.2.1|4|eth0\n1.3.6.1.2.1.2.2.1.2.2|4|eth1\n",
        );
        let o = |s: &str| Oid::parse(s).unwrap().as_slice().to_vec();
        assert_eq!(r.next_after(&o("1.3")), 0);
        assert_eq!(r.next_after(&o("1.3.6.1.2.1.1.5.0")), 1);
        assert_eq!(r.next_after(&o("1.3.6.1.2.1.2.2.1.2.2")), 3);
        assert!(r.object_exists(&o("1.3.6.1.2.1.2.2.1.2.9")));
        assert!(r.object_exists(&o("1.3.6.1.2.1.1.5")));
        assert!(!r.object_exists(&o("1.3.6.1.2.1.1.9.0")));
        assert!(!r.object_exists(&o("1.3.6.1.2.1.2.2.1.3.1")));
    }
}
