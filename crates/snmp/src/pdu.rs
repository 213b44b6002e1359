//! Sans-IO SNMP PDUs and community-based (v1/v2c) messages: building requests and decoding
//! whatever an agent or a trap sender may send (RESPONSE, REPORT, TRAP v1/v2, INFORM).
//!
//! SNMPv3 messages wrap the same [`Pdu`] in a scoped PDU; see [`crate::usm`].

use crate::ber::{decode_value, tag, DecodeError, DecodeResult, Reader, Writer};
use crate::oid::Oid;
use crate::value::{Value, VarBind};

/// The PDU kinds of SNMPv1/v2c/v3 (context-specific constructed tags 0xA0..0xA8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PduType {
    Get,
    GetNext,
    Response,
    Set,
    TrapV1,
    GetBulk,
    Inform,
    TrapV2,
    Report,
}

impl PduType {
    pub fn tag(self) -> u8 {
        match self {
            PduType::Get => 0xa0,
            PduType::GetNext => 0xa1,
            PduType::Response => 0xa2,
            PduType::Set => 0xa3,
            PduType::TrapV1 => 0xa4,
            PduType::GetBulk => 0xa5,
            PduType::Inform => 0xa6,
            PduType::TrapV2 => 0xa7,
            PduType::Report => 0xa8,
        }
    }

    pub fn from_tag(t: u8) -> Option<PduType> {
        Some(match t {
            0xa0 => PduType::Get,
            0xa1 => PduType::GetNext,
            0xa2 => PduType::Response,
            0xa3 => PduType::Set,
            0xa4 => PduType::TrapV1,
            0xa5 => PduType::GetBulk,
            0xa6 => PduType::Inform,
            0xa7 => PduType::TrapV2,
            0xa8 => PduType::Report,
            _ => return None,
        })
    }
}

/// SNMP message version field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Version {
    pub fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }

    pub fn from_wire(v: i64) -> Option<Version> {
        match v {
            0 => Some(Version::V1),
            1 => Some(Version::V2c),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

/// Name of an SNMP error-status value (RFC 3416 §3), e.g. `noSuchName`.
pub fn error_status_name(status: i32) -> &'static str {
    match status {
        0 => "noError",
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        7 => "wrongType",
        8 => "wrongLength",
        9 => "wrongEncoding",
        10 => "wrongValue",
        11 => "noCreation",
        12 => "inconsistentValue",
        13 => "resourceUnavailable",
        14 => "commitFailed",
        15 => "undoFailed",
        16 => "authorizationError",
        17 => "notWritable",
        18 => "inconsistentName",
        _ => "unknown",
    }
}

/// A request/response-shaped PDU (everything except the v1 trap).
/// For GETBULK, `error_status` is non-repeaters and `error_index` is max-repetitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Pdu {
    pub pdu_type: PduType,
    pub request_id: i32,
    pub error_status: i32,
    pub error_index: i32,
    pub varbinds: Vec<VarBind>,
}

/// An SNMPv1 Trap-PDU (RFC 1157 §4.1.6).
#[derive(Clone, Debug, PartialEq)]
pub struct TrapV1 {
    pub enterprise: Oid,
    pub agent_addr: [u8; 4],
    pub generic_trap: i32,
    pub specific_trap: i32,
    pub time_stamp: u32,
    pub varbinds: Vec<VarBind>,
}

/// Any PDU a message can carry.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyPdu {
    Pdu(Pdu),
    TrapV1(TrapV1),
}

/// A decoded v1/v2c message.
#[derive(Clone, Debug, PartialEq)]
pub struct CommunityMessage {
    pub version: Version,
    pub community: Vec<u8>,
    pub pdu: AnyPdu,
}

impl Pdu {
    fn request(pdu_type: PduType, request_id: i32, oids: &[Oid]) -> Pdu {
        Pdu {
            pdu_type,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: oids.iter().map(|o| VarBind::null(o.clone())).collect(),
        }
    }

    pub fn get(request_id: i32, oids: &[Oid]) -> Pdu {
        Pdu::request(PduType::Get, request_id, oids)
    }

    pub fn get_next(request_id: i32, oids: &[Oid]) -> Pdu {
        Pdu::request(PduType::GetNext, request_id, oids)
    }

    pub fn get_bulk(
        request_id: i32,
        non_repeaters: i32,
        max_repetitions: i32,
        oids: &[Oid],
    ) -> Pdu {
        let mut p = Pdu::request(PduType::GetBulk, request_id, oids);
        p.error_status = non_repeaters;
        p.error_index = max_repetitions;
        p
    }

    pub fn set(request_id: i32, varbinds: Vec<VarBind>) -> Pdu {
        Pdu {
            pdu_type: PduType::Set,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds,
        }
    }

    /// Appends this PDU's BER encoding.
    pub fn encode(&self, w: &mut Writer) {
        let m = w.open(self.pdu_type.tag());
        w.integer(i64::from(self.request_id));
        w.integer(i64::from(self.error_status));
        w.integer(i64::from(self.error_index));
        encode_varbinds(w, &self.varbinds);
        w.close(m);
    }
}

fn encode_varbinds(w: &mut Writer, vbs: &[VarBind]) {
    let list = w.open(tag::SEQUENCE);
    for vb in vbs {
        let m = w.open(tag::SEQUENCE);
        w.oid(&vb.oid);
        w.value(&vb.value);
        w.close(m);
    }
    w.close(list);
}

/// Decodes a VarBindList from its SEQUENCE reader.
pub fn decode_varbinds(mut r: Reader<'_>) -> DecodeResult<Vec<VarBind>> {
    // A varbind is rarely shorter than ~12 bytes; reserving avoids regrowth on bulk replies.
    let mut out = Vec::with_capacity(r.remaining().len() / 16 + 1);
    while !r.is_empty() {
        let mut vb = r.read_sequence("expected a varbind SEQUENCE")?;
        let oid = vb.read_oid("expected the varbind's OID")?;
        let vt = vb.read_tlv()?;
        let value = decode_value(&vt)?;
        if !vb.is_empty() {
            return Err(DecodeError {
                offset: vb.offset(),
                msg: "trailing data in varbind",
            });
        }
        out.push(VarBind { oid, value });
    }
    Ok(out)
}

/// Decodes a PDU from its TLV-carrying reader position (the tag must be a PDU tag).
pub fn decode_pdu(r: &mut Reader<'_>) -> DecodeResult<AnyPdu> {
    let tlv = r.read_tlv()?;
    let Some(pdu_type) = PduType::from_tag(tlv.tag) else {
        return Err(DecodeError {
            offset: tlv.start,
            msg: "unknown PDU type",
        });
    };
    let mut p = tlv.reader();
    if pdu_type == PduType::TrapV1 {
        let enterprise = p.read_oid("expected the trap's enterprise OID")?;
        let at = p.read_tlv()?;
        let agent_addr = match (at.tag, <[u8; 4]>::try_from(at.content)) {
            (tag::IP_ADDRESS, Ok(a)) => a,
            _ => {
                return Err(DecodeError {
                    offset: at.start,
                    msg: "expected the trap's agent address",
                })
            }
        };
        let generic_trap = p.read_i32("expected generic-trap")?;
        let specific_trap = p.read_i32("expected specific-trap")?;
        let ts = p.read_tlv()?;
        let time_stamp = match decode_value(&ts)? {
            Value::TimeTicks(t) if ts.tag == tag::TIMETICKS => t,
            _ => {
                return Err(DecodeError {
                    offset: ts.start,
                    msg: "expected the trap's time-stamp",
                })
            }
        };
        let varbinds = decode_varbinds(p.read_sequence("expected the varbind list")?)?;
        return Ok(AnyPdu::TrapV1(TrapV1 {
            enterprise,
            agent_addr,
            generic_trap,
            specific_trap,
            time_stamp,
            varbinds,
        }));
    }
    let request_id = p.read_i32("expected request-id")?;
    let error_status = p.read_i32("expected error-status")?;
    let error_index = p.read_i32("expected error-index")?;
    let varbinds = decode_varbinds(p.read_sequence("expected the varbind list")?)?;
    Ok(AnyPdu::Pdu(Pdu {
        pdu_type,
        request_id,
        error_status,
        error_index,
        varbinds,
    }))
}

/// Encodes a v1/v2c message.
pub fn encode_community_message(version: Version, community: &[u8], pdu: &Pdu) -> Vec<u8> {
    let mut w = Writer::new();
    let m = w.open(tag::SEQUENCE);
    w.integer(version.wire());
    w.octets(community);
    pdu.encode(&mut w);
    w.close(m);
    w.into_vec()
}

/// Reads the outer SEQUENCE and version of any SNMP message; returns the version and a reader
/// positioned after it.
pub fn decode_header(buf: &[u8]) -> DecodeResult<(Version, Reader<'_>)> {
    let mut r = Reader::new(buf);
    let mut m = r.read_sequence("expected the message SEQUENCE")?;
    let at = m.offset();
    let v = m.read_integer("expected the message version")?;
    let Some(version) = Version::from_wire(v) else {
        return Err(DecodeError {
            offset: at,
            msg: "unsupported SNMP version",
        });
    };
    Ok((version, m))
}

/// Decodes a v1/v2c message (a v3 message is an error here; see [`crate::usm`]).
pub fn decode_community_message(buf: &[u8]) -> DecodeResult<CommunityMessage> {
    let (version, mut m) = decode_header(buf)?;
    if version == Version::V3 {
        return Err(DecodeError {
            offset: 0,
            msg: "SNMPv3 message where v1/v2c was expected",
        });
    }
    let community = m.read_octets("expected the community")?.to_vec();
    let pdu = decode_pdu(&mut m)?;
    Ok(CommunityMessage {
        version,
        community,
        pdu,
    })
}

/// The id a response is matched by, found without decoding the varbinds: the request-id for
/// v1/v2c, the msgID for v3.
pub fn peek_message_id(buf: &[u8]) -> DecodeResult<(Version, i32)> {
    let (version, mut m) = decode_header(buf)?;
    if version == Version::V3 {
        let mut hdr = m.read_sequence("expected the v3 header")?;
        return Ok((version, hdr.read_i32("expected msgID")?));
    }
    m.read_octets("expected the community")?;
    let pdu = m.read_tlv()?;
    let mut p = pdu.reader();
    Ok((version, p.read_i32("expected request-id")?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `snmpget -v2c -c public HOST 1.3.6.1.2.1.1.1.0` as captured from net-snmp 5.9
    /// (request-id 0x176d3ed0), captured from its socket.
    const NETSNMP_GET: [u8; 43] = [
        0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x1c,
        0x02, 0x04, 0x17, 0x6d, 0x3e, 0xd0, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30,
        0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
    ];

    #[test]
    fn encodes_like_netsnmp() {
        let oid = Oid::parse("1.3.6.1.2.1.1.1.0").unwrap();
        let pdu = Pdu::get(0x176d3ed0, &[oid]);
        assert_eq!(
            encode_community_message(Version::V2c, b"public", &pdu),
            NETSNMP_GET
        );
        assert_eq!(
            peek_message_id(&NETSNMP_GET).unwrap(),
            (Version::V2c, 0x176d3ed0)
        );
    }

    #[test]
    fn decodes_a_response_with_exceptions_and_counter64() {
        let pdu = Pdu {
            pdu_type: PduType::Response,
            request_id: 7,
            error_status: 0,
            error_index: 0,
            varbinds: vec![
                VarBind::new(
                    Oid::from([1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1]),
                    Value::Counter64(1 << 40),
                ),
                VarBind::new(
                    Oid::from([1, 3, 6, 1, 2, 1, 1, 9, 0]),
                    Value::NoSuchInstance,
                ),
                VarBind::new(Oid::from([1, 3, 6, 1, 9]), Value::EndOfMibView),
            ],
        };
        let bytes = encode_community_message(Version::V2c, b"c", &pdu);
        let m = decode_community_message(&bytes).unwrap();
        assert_eq!(m.community, b"c");
        assert_eq!(m.pdu, AnyPdu::Pdu(pdu));
    }

    #[test]
    fn decodes_a_v1_trap() {
        // A v1 coldStart trap from 10.0.0.1, enterprise 1.3.6.1.4.1.8072.
        let mut w = Writer::new();
        let m = w.open(tag::SEQUENCE);
        w.integer(0);
        w.octets(b"public");
        let t = w.open(0xa4);
        w.oid(&Oid::from([1, 3, 6, 1, 4, 1, 8072]));
        w.tlv(tag::IP_ADDRESS, &[10, 0, 0, 1]);
        w.integer(0);
        w.integer(0);
        w.unsigned(tag::TIMETICKS, 4242);
        let l = w.open(tag::SEQUENCE);
        w.close(l);
        w.close(t);
        w.close(m);
        let msg = decode_community_message(&w.buf).unwrap();
        assert_eq!(msg.version, Version::V1);
        match msg.pdu {
            AnyPdu::TrapV1(t) => {
                assert_eq!(t.agent_addr, [10, 0, 0, 1]);
                assert_eq!(t.time_stamp, 4242);
                assert_eq!(t.enterprise.to_string(), "1.3.6.1.4.1.8072");
            }
            other => panic!("not a trap: {other:?}"),
        }
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        for n in 0..NETSNMP_GET.len() {
            assert!(
                decode_community_message(&NETSNMP_GET[..n]).is_err(),
                "prefix {n}"
            );
        }
        let mut bad = NETSNMP_GET;
        bad[13] = 0xbf; // not a PDU tag
        let e = decode_community_message(&bad).unwrap_err();
        assert_eq!(e.offset, 13);
    }
}
