//! The sans-IO agent: one datagram in, at most one datagram out.
//!
//! [`Agent`] is shared (read-only) by all server threads: devices per port, devices by
//! community / context name, the SNMPv3 engine and users, and the global counters. Each
//! thread owns a [`Handler`] with its reusable buffers and local counters (flushed into the
//! shared ones in batches, so counting costs no contended atomics per datagram).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lookout_snmp::ber::{decode_oid, tag, Reader};
use lookout_snmp::pdu::{decode_header, Pdu, PduType, Version};
use lookout_snmp::usm::{
    decode_v3, decrypt, encode_scoped_pdu, encode_v3, encrypt, localized_priv_key, verify_digest,
    AuthProtocol, OutgoingV3, PrivProtocol, V3Data, V3Message,
};
use lookout_snmp::{Oid, Value, VarBind};

use crate::recording::{len_len, push_len, Clock, Recording};
use crate::SimError;

/// One simulated device: a shared recording and the device's own clock offset.
#[derive(Debug)]
pub struct Device {
    pub rec: Arc<Recording>,
    /// Added to the simulator's elapsed time, so devices sharing a recording differ.
    pub offset_ms: u64,
}

/// An SNMPv3 user as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3User {
    pub name: String,
    pub auth: Option<(AuthProtocol, String)>,
    pub privacy: Option<(PrivProtocol, String)>,
}

impl V3User {
    /// Parses `NAME`, `NAME:AUTHPROTO:AUTHPASS` or `NAME:AUTHPROTO:AUTHPASS:PRIVPROTO:PRIVPASS`.
    pub fn parse(s: &str) -> Result<V3User, SimError> {
        let bad = |m: &str| SimError::Config(format!("--v3-user {s:?}: {m}"));
        let p: Vec<&str> = s.splitn(5, ':').collect();
        if p[0].is_empty() {
            return Err(bad("empty user name"));
        }
        let auth = match p.len() {
            1 => None,
            3 | 5 => {
                let ap = AuthProtocol::parse(p[1])
                    .ok_or_else(|| bad("unknown auth protocol (MD5, SHA, SHA-224..SHA-512)"))?;
                if p[2].len() < 8 {
                    return Err(bad("auth password needs at least 8 characters"));
                }
                Some((ap, p[2].to_string()))
            }
            _ => return Err(bad("expected NAME:AUTHPROTO:AUTHPASS[:PRIVPROTO:PRIVPASS]")),
        };
        let privacy = if p.len() == 5 {
            let pp = PrivProtocol::parse(p[3])
                .ok_or_else(|| bad("unknown priv protocol (DES, AES, AES-192, AES-256)"))?;
            if p[4].len() < 8 {
                return Err(bad("priv password needs at least 8 characters"));
            }
            Some((pp, p[4].to_string()))
        } else {
            None
        };
        Ok(V3User {
            name: p[0].to_string(),
            auth,
            privacy,
        })
    }
}

/// A user with keys localised to the simulator's engine ID.
struct UserKeys {
    auth: Option<(AuthProtocol, Vec<u8>)>,
    privacy: Option<(PrivProtocol, Vec<u8>)>,
}

/// Counters of a running simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Requests answered with a response PDU.
    pub responses: u64,
    /// Varbinds in those responses.
    pub varbinds: u64,
    /// Undecodable or unsupported datagrams (truncated, garbage, v1 GETBULK, ...), dropped.
    pub malformed: u64,
    /// v1/v2c requests for an unknown community, dropped (as agents do).
    pub unknown_community: u64,
    /// SNMPv3 REPORTs sent (discovery, unknown user, wrong digest, time window ...).
    pub reports: u64,
    /// Responses that were cut to fit the message size (GETBULK) or answered tooBig.
    pub truncated: u64,
    /// CPU time of the server threads in µs (added when a thread stops: final after
    /// [`crate::SimHandle::stop`]).
    pub server_cpu_us: u64,
}

#[derive(Default)]
struct AtomicStats {
    datagrams: AtomicU64,
    responses: AtomicU64,
    varbinds: AtomicU64,
    malformed: AtomicU64,
    unknown_community: AtomicU64,
    reports: AtomicU64,
    truncated: AtomicU64,
    server_cpu_us: AtomicU64,
}

/// usmStats (RFC 3414) counters a REPORT names.
mod usm_stats {
    pub const UNSUPPORTED_SEC_LEVELS: u32 = 1;
    pub const NOT_IN_TIME_WINDOWS: u32 = 2;
    pub const UNKNOWN_USER_NAMES: u32 = 3;
    pub const UNKNOWN_ENGINE_IDS: u32 = 4;
    pub const WRONG_DIGESTS: u32 = 5;
    pub const DECRYPTION_ERRORS: u32 = 6;
}

/// What the agent serves; built by [`crate::Simulator`].
pub struct Agent {
    /// The device each listening socket answers for with [`Agent::community`] / an empty
    /// context (`None`: only named devices).
    pub(crate) port_devices: Vec<Option<Arc<Device>>>,
    /// Devices by community (v1/v2c) and context name (v3): the recording paths.
    pub(crate) named: HashMap<Vec<u8>, Arc<Device>>,
    pub(crate) community: Vec<u8>,
    pub(crate) freeze: bool,
    pub(crate) start: Instant,
    /// Largest response for v1/v2c (v3: the smaller of this and the request's msgMaxSize).
    pub(crate) max_msg_size: usize,
    engine_id: Vec<u8>,
    boots: u32,
    users: HashMap<Vec<u8>, UserKeys>,
    stats: AtomicStats,
    usm_counters: [AtomicU64; 7],
}

impl Agent {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        port_devices: Vec<Option<Arc<Device>>>,
        named: HashMap<Vec<u8>, Arc<Device>>,
        community: Vec<u8>,
        freeze: bool,
        max_msg_size: usize,
        engine_id: Vec<u8>,
        users: &[V3User],
    ) -> Agent {
        let mut keys = HashMap::new();
        for u in users {
            let auth = u.auth.as_ref().map(|(ap, pw)| {
                let ku = ap.password_to_key(pw.as_bytes());
                (*ap, ap.localize(&ku, &engine_id))
            });
            let privacy = match (&u.auth, &u.privacy) {
                (Some((ap, _)), Some((pp, pw))) => {
                    let ku = ap.password_to_key(pw.as_bytes());
                    Some((*pp, localized_priv_key(*ap, *pp, &ku, &engine_id)))
                }
                _ => None,
            };
            keys.insert(u.name.as_bytes().to_vec(), UserKeys { auth, privacy });
        }
        Agent {
            port_devices,
            named,
            community,
            freeze,
            start: Instant::now(),
            max_msg_size,
            engine_id,
            boots: 1,
            users: keys,
            stats: AtomicStats::default(),
            usm_counters: Default::default(),
        }
    }

    /// The SNMPv3 engine ID.
    pub fn engine_id(&self) -> &[u8] {
        &self.engine_id
    }

    pub fn stats(&self) -> Stats {
        let s = &self.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            datagrams: l(&s.datagrams),
            responses: l(&s.responses),
            varbinds: l(&s.varbinds),
            malformed: l(&s.malformed),
            unknown_community: l(&s.unknown_community),
            reports: l(&s.reports),
            truncated: l(&s.truncated),
            server_cpu_us: l(&s.server_cpu_us),
        }
    }

    /// Adds a server thread's CPU time (called as the thread ends).
    pub(crate) fn add_server_cpu(&self, us: u64) {
        self.stats.server_cpu_us.fetch_add(us, Ordering::Relaxed);
    }

    fn clock(&self, dev: &Device) -> Clock {
        if self.freeze {
            return Clock { elapsed_ms: 0 };
        }
        Clock {
            elapsed_ms: self.start.elapsed().as_millis() as u64 + dev.offset_ms,
        }
    }

    fn engine_time(&self) -> u32 {
        self.start.elapsed().as_secs() as u32
    }
}

/// A request PDU with its varbind list still in the datagram.
struct RawPdu<'a> {
    pdu_type: PduType,
    request_id: i32,
    /// error-status, or non-repeaters for GETBULK.
    f1: i32,
    /// error-index, or max-repetitions for GETBULK.
    f2: i32,
    /// Contents of the VarBindList (echoed in error responses).
    vbl: &'a [u8],
}

fn read_pdu<'a>(r: &mut Reader<'a>, oids: &mut Vec<Oid>) -> Option<RawPdu<'a>> {
    let tlv = r.read_tlv().ok()?;
    let pdu_type = PduType::from_tag(tlv.tag)?;
    let mut p = tlv.reader();
    let request_id = p.read_i32("request-id").ok()?;
    let f1 = p.read_i32("error-status").ok()?;
    let f2 = p.read_i32("error-index").ok()?;
    let vl = p.read_expect(tag::SEQUENCE, "varbinds").ok()?;
    let mut list = vl.reader();
    oids.clear();
    while !list.is_empty() {
        let mut vb = list.read_sequence("varbind").ok()?;
        let o = vb.read_expect(tag::OBJECT_IDENTIFIER, "oid").ok()?;
        oids.push(decode_oid(o.content, o.offset).ok()?);
        vb.read_tlv().ok()?;
    }
    Some(RawPdu {
        pdu_type,
        request_id,
        f1,
        f2,
        vbl: vl.content,
    })
}

/// Appends an INTEGER TLV.
fn push_int(out: &mut Vec<u8>, v: i64) {
    let b = v.to_be_bytes();
    let mut s = 0;
    while s < 7 && ((b[s] == 0 && b[s + 1] & 0x80 == 0) || (b[s] == 0xff && b[s + 1] & 0x80 != 0)) {
        s += 1;
    }
    out.extend_from_slice(&[tag::INTEGER, (8 - s) as u8]);
    out.extend_from_slice(&b[s..]);
}

fn int_len(v: i64) -> usize {
    let mut o = Vec::with_capacity(10);
    push_int(&mut o, v);
    o.len()
}

fn exception_vb(out: &mut Vec<u8>, oid: &Oid, t: u8) {
    let mut w = lookout_snmp::ber::Writer::new();
    w.oid(oid);
    out.push(tag::SEQUENCE);
    push_len(out, w.buf.len() + 2);
    out.extend_from_slice(&w.buf);
    out.extend_from_slice(&[t, 0]);
}

const NO_SUCH_NAME: i32 = 2;
const TOO_BIG: i32 = 1;
const READ_ONLY: i32 = 4;
const NOT_WRITABLE: i32 = 17;

/// v1 cannot carry Counter64 or exception values: such records are invisible to it.
fn v1_visible(t: u8) -> bool {
    t != tag::COUNTER64 && t < 0x80
}

/// Per-thread request processing.
pub struct Handler {
    agent: Arc<Agent>,
    oids: Vec<Oid>,
    vbs: Vec<u8>,
    local: Stats,
    salt: u64,
    /// The last reply was a REPORT (counted apart from responses).
    reported: bool,
}

/// How a PDU was answered.
enum Answer {
    /// error-status, error-index; `vbs` holds the varbinds.
    Pdu(i32, i32),
    Drop,
}

impl Handler {
    pub fn new(agent: Arc<Agent>) -> Handler {
        let salt = agent.start.elapsed().as_nanos() as u64 ^ (std::process::id() as u64) << 32;
        Handler {
            agent,
            oids: Vec::with_capacity(16),
            vbs: Vec::with_capacity(65_536),
            local: Stats::default(),
            salt,
            reported: false,
        }
    }

    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Adds this thread's counts to the shared counters.
    pub fn flush_stats(&mut self) {
        let s = &self.agent.stats;
        let l = std::mem::take(&mut self.local);
        for (a, v) in [
            (&s.datagrams, l.datagrams),
            (&s.responses, l.responses),
            (&s.varbinds, l.varbinds),
            (&s.malformed, l.malformed),
            (&s.unknown_community, l.unknown_community),
            (&s.reports, l.reports),
            (&s.truncated, l.truncated),
        ] {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    /// Handles one datagram that arrived on listening socket `port`; returns whether `out`
    /// holds a reply.
    pub fn handle(&mut self, port: usize, req: &[u8], out: &mut Vec<u8>) -> bool {
        self.local.datagrams += 1;
        self.reported = false;
        out.clear();
        let ok = match decode_header(req) {
            Ok((Version::V3, _)) => self.handle_v3(port, req, out),
            Ok((version, m)) => self.handle_community(port, version, m, out),
            Err(_) => {
                self.local.malformed += 1;
                false
            }
        };
        if ok && !self.reported {
            self.local.responses += 1;
        }
        ok
    }

    fn handle_community(
        &mut self,
        port: usize,
        version: Version,
        mut m: Reader<'_>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(community) = m.read_octets("community") else {
            self.local.malformed += 1;
            return false;
        };
        let agent = self.agent.clone();
        let dev = match agent.port_devices.get(port).and_then(|d| d.as_ref()) {
            Some(d) if community == agent.community.as_slice() => d,
            _ => match agent.named.get(community) {
                Some(d) => d,
                None => {
                    self.local.unknown_community += 1;
                    return false;
                }
            },
        };
        let Some(pdu) = read_pdu(&mut m, &mut self.oids) else {
            self.local.malformed += 1;
            return false;
        };
        let overhead = community.len() + 48;
        let limit = agent.max_msg_size.saturating_sub(overhead);
        let (status, index) = match self.process(version == Version::V1, &agent, dev, &pdu, limit) {
            Answer::Pdu(s, i) => (s, i),
            Answer::Drop => {
                self.local.malformed += 1;
                return false;
            }
        };
        // Message: SEQUENCE { version, community, Response-PDU { id, status, index, vbs } }.
        let vbl = 1 + len_len(self.vbs.len()) + self.vbs.len();
        let pdu_len = int_len(i64::from(pdu.request_id))
            + int_len(i64::from(status))
            + int_len(i64::from(index))
            + vbl;
        let msg_len =
            3 + 1 + len_len(community.len()) + community.len() + 1 + len_len(pdu_len) + pdu_len;
        out.reserve(msg_len + 6);
        out.push(tag::SEQUENCE);
        push_len(out, msg_len);
        push_int(out, version.wire());
        out.push(tag::OCTET_STRING);
        push_len(out, community.len());
        out.extend_from_slice(community);
        out.push(PduType::Response.tag());
        push_len(out, pdu_len);
        push_int(out, i64::from(pdu.request_id));
        push_int(out, i64::from(status));
        push_int(out, i64::from(index));
        out.push(tag::SEQUENCE);
        push_len(out, self.vbs.len());
        out.extend_from_slice(&self.vbs);
        true
    }

    /// Answers a PDU into `self.vbs` (at most `limit` bytes of varbinds).
    fn process(
        &mut self,
        v1: bool,
        agent: &Agent,
        dev: &Device,
        pdu: &RawPdu<'_>,
        limit: usize,
    ) -> Answer {
        let rec = &*dev.rec;
        let clock = agent.clock(dev);
        self.vbs.clear();
        let echo = |vbs: &mut Vec<u8>| {
            vbs.clear();
            vbs.extend_from_slice(pdu.vbl);
        };
        match pdu.pdu_type {
            PduType::Get => {
                for (k, oid) in self.oids.iter().enumerate() {
                    let o = oid.as_slice();
                    match rec.find(o) {
                        Some(i) if !v1 || v1_visible(rec.tag(i)) => {
                            rec.encode_varbind(i, clock, &mut self.vbs)
                        }
                        _ if v1 => {
                            echo(&mut self.vbs);
                            return Answer::Pdu(NO_SUCH_NAME, k as i32 + 1);
                        }
                        _ => {
                            let t = if rec.object_exists(o) {
                                tag::NO_SUCH_INSTANCE
                            } else {
                                tag::NO_SUCH_OBJECT
                            };
                            exception_vb(&mut self.vbs, oid, t);
                        }
                    }
                }
                self.local.varbinds += self.oids.len() as u64;
                self.fit_or_too_big(v1, pdu, limit)
            }
            PduType::GetNext => {
                for (k, oid) in self.oids.iter().enumerate() {
                    let mut i = rec.next_after(oid.as_slice());
                    if v1 {
                        while i < rec.len() && !v1_visible(rec.tag(i)) {
                            i += 1;
                        }
                    }
                    if i < rec.len() {
                        rec.encode_varbind(i, clock, &mut self.vbs);
                    } else if v1 {
                        echo(&mut self.vbs);
                        return Answer::Pdu(NO_SUCH_NAME, k as i32 + 1);
                    } else {
                        exception_vb(&mut self.vbs, oid, tag::END_OF_MIB_VIEW);
                    }
                }
                self.local.varbinds += self.oids.len() as u64;
                self.fit_or_too_big(v1, pdu, limit)
            }
            PduType::GetBulk if !v1 => {
                let n = self.oids.len();
                let nr = (pdu.f1.max(0) as usize).min(n);
                let mr = pdu.f2.max(0) as usize;
                let mut served = 0u64;
                let mut full = false;
                for oid in &self.oids[..nr] {
                    let mark = self.vbs.len();
                    let i = rec.next_after(oid.as_slice());
                    if i < rec.len() {
                        rec.encode_varbind(i, clock, &mut self.vbs);
                    } else {
                        exception_vb(&mut self.vbs, oid, tag::END_OF_MIB_VIEW);
                    }
                    if self.vbs.len() > limit {
                        self.vbs.truncate(mark);
                        full = true;
                        break;
                    }
                    served += 1;
                }
                if !full && n > nr && mr > 0 {
                    // Cursors: the next record index of each repeater; rec.len() = past the end.
                    let mut cur: Vec<usize> = self.oids[nr..]
                        .iter()
                        .map(|o| rec.next_after(o.as_slice()))
                        .collect();
                    let start = cur.clone();
                    'reps: for _ in 0..mr {
                        let mut all_end = true;
                        for (j, c) in cur.iter_mut().enumerate() {
                            let mark = self.vbs.len();
                            if *c < rec.len() {
                                all_end = false;
                                rec.encode_varbind(*c, clock, &mut self.vbs);
                                *c += 1;
                            } else {
                                // Named after the last record this column returned (as
                                // net-snmp does), or the request's OID if it had none.
                                let name = if start[j] < rec.len() {
                                    Oid::new(rec.oid(rec.len() - 1))
                                } else {
                                    self.oids[nr + j].clone()
                                };
                                exception_vb(&mut self.vbs, &name, tag::END_OF_MIB_VIEW);
                            }
                            if self.vbs.len() > limit {
                                self.vbs.truncate(mark);
                                full = true;
                                break 'reps;
                            }
                            served += 1;
                        }
                        // Past the end for every repeater: further repetitions say nothing new.
                        if all_end {
                            break;
                        }
                    }
                }
                if full {
                    self.local.truncated += 1;
                }
                self.local.varbinds += served;
                Answer::Pdu(0, 0)
            }
            PduType::Set => {
                echo(&mut self.vbs);
                Answer::Pdu(if v1 { READ_ONLY } else { NOT_WRITABLE }, 1)
            }
            _ => Answer::Drop,
        }
    }

    fn fit_or_too_big(&mut self, v1: bool, pdu: &RawPdu<'_>, limit: usize) -> Answer {
        if self.vbs.len() <= limit {
            return Answer::Pdu(0, 0);
        }
        self.local.truncated += 1;
        self.vbs.clear();
        if v1 {
            self.vbs.extend_from_slice(pdu.vbl);
        }
        Answer::Pdu(TOO_BIG, 0)
    }

    fn handle_v3(&mut self, port: usize, req: &[u8], out: &mut Vec<u8>) -> bool {
        let agent = self.agent.clone();
        let Ok(msg) = decode_v3(req) else {
            self.local.malformed += 1;
            return false;
        };
        let (want_auth, want_priv) = (msg.flags & 1 != 0, msg.flags & 2 != 0);
        if want_priv && !want_auth {
            self.local.malformed += 1;
            return false;
        }
        let reportable = msg.flags & 4 != 0;
        // The request-id of a plaintext PDU (reports echo it); the msgID otherwise.
        let plain_id = match msg.data {
            V3Data::Plain(b) => scoped_request_id(b).unwrap_or(msg.msg_id),
            V3Data::Encrypted(_) => msg.msg_id,
        };
        if msg.sec.engine_id != agent.engine_id.as_slice() {
            return self.report(
                &agent,
                &msg,
                plain_id,
                usm_stats::UNKNOWN_ENGINE_IDS,
                None,
                b"",
                reportable,
                out,
            );
        }
        let Some(user) = agent.users.get(msg.sec.user) else {
            return self.report(
                &agent,
                &msg,
                plain_id,
                usm_stats::UNKNOWN_USER_NAMES,
                None,
                b"",
                reportable,
                out,
            );
        };
        if (want_auth && user.auth.is_none()) || (want_priv && user.privacy.is_none()) {
            return self.report(
                &agent,
                &msg,
                plain_id,
                usm_stats::UNSUPPORTED_SEC_LEVELS,
                None,
                b"",
                reportable,
                out,
            );
        }
        let auth = if want_auth { user.auth.as_ref() } else { None };
        if let Some((ap, key)) = auth {
            if !verify_digest(*ap, key, req, &msg) {
                return self.report(
                    &agent,
                    &msg,
                    plain_id,
                    usm_stats::WRONG_DIGESTS,
                    None,
                    b"",
                    reportable,
                    out,
                );
            }
            let now = agent.engine_time();
            if msg.sec.boots != agent.boots || msg.sec.time.abs_diff(now) > 150 {
                return self.report(
                    &agent,
                    &msg,
                    plain_id,
                    usm_stats::NOT_IN_TIME_WINDOWS,
                    auth,
                    b"",
                    reportable,
                    out,
                );
            }
        }
        let privacy = if want_priv {
            user.privacy.as_ref()
        } else {
            None
        };
        let plain: Vec<u8>;
        let scoped: &[u8] = match (msg.data.clone(), privacy) {
            (V3Data::Plain(b), None) => b,
            (V3Data::Encrypted(c), Some((pp, key))) => {
                match decrypt(*pp, key, msg.sec.boots, msg.sec.time, msg.sec.privacy, c) {
                    Ok(p) => {
                        plain = p;
                        &plain
                    }
                    Err(_) => {
                        return self.report(
                            &agent,
                            &msg,
                            msg.msg_id,
                            usm_stats::DECRYPTION_ERRORS,
                            None,
                            b"",
                            reportable,
                            out,
                        )
                    }
                }
            }
            _ => {
                self.local.malformed += 1;
                return false;
            }
        };
        let mut r = Reader::new(scoped);
        let parsed = r.read_sequence("scoped PDU").ok().and_then(|mut s| {
            let _ce = s.read_octets("contextEngineID").ok()?;
            let cn = s.read_octets("contextName").ok()?;
            let pdu = read_pdu(&mut s, &mut self.oids)?;
            Some((cn, pdu))
        });
        let Some((context, pdu)) = parsed else {
            if want_priv {
                // Wrong privacy key: the plaintext is garbage.
                return self.report(
                    &agent,
                    &msg,
                    msg.msg_id,
                    usm_stats::DECRYPTION_ERRORS,
                    None,
                    b"",
                    reportable,
                    out,
                );
            }
            self.local.malformed += 1;
            return false;
        };
        let dev = if context.is_empty() {
            agent.port_devices.get(port).and_then(|d| d.as_ref())
        } else {
            agent.named.get(context)
        };
        let Some(dev) = dev else {
            // snmpUnknownContexts.0 (SNMP-TARGET-MIB): the context names no recording.
            let oid = Oid::new(&[1, 3, 6, 1, 6, 3, 12, 1, 5, 0]);
            return self.report_oid(
                &agent,
                &msg,
                pdu.request_id,
                oid,
                1,
                auth,
                context,
                reportable,
                out,
            );
        };
        let mac = auth.map(|(ap, _)| ap.mac_len()).unwrap_or(0);
        let overhead = 140 + 2 * agent.engine_id.len() + msg.sec.user.len() + mac + context.len();
        let max = agent.max_msg_size.min(msg.max_size.max(484) as usize);
        let limit = max.saturating_sub(overhead);
        let (status, index) = match self.process(false, &agent, dev, &pdu, limit) {
            Answer::Pdu(s, i) => (s, i),
            Answer::Drop => {
                self.local.malformed += 1;
                return false;
            }
        };
        // Scoped PDU of the response, built around the varbinds already encoded.
        let mut sp = Vec::with_capacity(self.vbs.len() + 64 + context.len());
        {
            let vbl = 1 + len_len(self.vbs.len()) + self.vbs.len();
            let pdu_len = int_len(i64::from(pdu.request_id))
                + int_len(i64::from(status))
                + int_len(i64::from(index))
                + vbl;
            let eid = &agent.engine_id;
            let sp_len = 1
                + len_len(eid.len())
                + eid.len()
                + 1
                + len_len(context.len())
                + context.len()
                + 1
                + len_len(pdu_len)
                + pdu_len;
            sp.push(tag::SEQUENCE);
            push_len(&mut sp, sp_len);
            sp.push(tag::OCTET_STRING);
            push_len(&mut sp, eid.len());
            sp.extend_from_slice(eid);
            sp.push(tag::OCTET_STRING);
            push_len(&mut sp, context.len());
            sp.extend_from_slice(context);
            sp.push(PduType::Response.tag());
            push_len(&mut sp, pdu_len);
            push_int(&mut sp, i64::from(pdu.request_id));
            push_int(&mut sp, i64::from(status));
            push_int(&mut sp, i64::from(index));
            sp.push(tag::SEQUENCE);
            push_len(&mut sp, self.vbs.len());
            sp.extend_from_slice(&self.vbs);
        }
        self.seal(&agent, &msg, msg.flags & 3, auth, privacy, sp, out)
    }

    /// Wraps a scoped PDU in a v3 message (encrypting and signing as asked) into `out`.
    #[allow(clippy::too_many_arguments)]
    fn seal(
        &mut self,
        agent: &Agent,
        msg: &V3Message<'_>,
        flags: u8,
        auth: Option<&(AuthProtocol, Vec<u8>)>,
        privacy: Option<&(PrivProtocol, Vec<u8>)>,
        scoped: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> bool {
        let time = agent.engine_time();
        let (data, priv_params, encrypted) = match privacy {
            Some((pp, key)) => {
                self.salt = self.salt.wrapping_add(1);
                match encrypt(*pp, key, agent.boots, time, self.salt, scoped) {
                    Ok((c, p)) => (c, p, true),
                    Err(_) => return false,
                }
            }
            None => (scoped, Vec::new(), false),
        };
        let bytes = encode_v3(&OutgoingV3 {
            msg_id: msg.msg_id,
            flags,
            engine_id: &agent.engine_id,
            boots: agent.boots,
            time,
            user: msg.sec.user,
            auth: auth.map(|(p, k)| (*p, k.as_slice())),
            privacy_params: &priv_params,
            data: &data,
            encrypted,
        });
        match bytes {
            Ok(b) => {
                *out = b;
                true
            }
            Err(_) => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        agent: &Agent,
        msg: &V3Message<'_>,
        request_id: i32,
        which: u32,
        auth: Option<&(AuthProtocol, Vec<u8>)>,
        context: &[u8],
        reportable: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let n = agent.usm_counters[which as usize].fetch_add(1, Ordering::Relaxed) + 1;
        let oid = Oid::new(&[1, 3, 6, 1, 6, 3, 15, 1, 1, which, 0]);
        self.report_oid(
            agent, msg, request_id, oid, n, auth, context, reportable, out,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn report_oid(
        &mut self,
        agent: &Agent,
        msg: &V3Message<'_>,
        request_id: i32,
        oid: Oid,
        count: u64,
        auth: Option<&(AuthProtocol, Vec<u8>)>,
        context: &[u8],
        reportable: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        if !reportable {
            return false;
        }
        self.local.reports += 1;
        let pdu = Pdu {
            pdu_type: PduType::Report,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: vec![VarBind::new(oid, Value::Counter32(count as u32))],
        };
        let scoped = encode_scoped_pdu(&agent.engine_id, context, &pdu);
        let flags = if auth.is_some() { 1 } else { 0 };
        self.reported = true;
        self.seal(agent, msg, flags, auth, None, scoped, out)
    }
}

/// request-id of the PDU in a plaintext ScopedPDU.
fn scoped_request_id(b: &[u8]) -> Option<i32> {
    let mut r = Reader::new(b);
    let mut s = r.read_sequence("scoped").ok()?;
    s.read_octets("ce").ok()?;
    s.read_octets("cn").ok()?;
    let p = s.read_tlv().ok()?;
    p.reader().read_i32("id").ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_parsing() {
        let u = V3User::parse("bob:SHA:password1:AES:password2").unwrap();
        assert_eq!(u.auth.unwrap().0, AuthProtocol::Sha1);
        assert_eq!(u.privacy.unwrap().0, PrivProtocol::Aes128);
        assert!(V3User::parse("bob").unwrap().auth.is_none());
        assert!(V3User::parse("bob:MD5:short").is_err());
        assert!(V3User::parse("bob:XXX:password1").is_err());
        assert!(V3User::parse("bob:MD5").is_err());
        assert!(V3User::parse(":MD5:password1").is_err());
    }

    #[test]
    fn ints() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
        ] {
            let mut o = Vec::new();
            push_int(&mut o, v);
            let mut r = Reader::new(&o);
            assert_eq!(r.read_integer("x").unwrap(), v);
        }
    }
}
