//! Fuzz target: every decoder an incoming datagram can reach (v1/v2c message, v3 envelope,
//! scoped PDU, id peeking) must return Ok or Err, never panic, and what decodes must
//! re-encode to something that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_snmp::pdu::{
    decode_community_message, encode_community_message, peek_message_id, AnyPdu,
};
use lookout_snmp::usm::{decode_scoped_pdu, decode_v3, V3Data};

fuzz_target!(|data: &[u8]| {
    let _ = peek_message_id(data);
    if let Ok(m) = decode_community_message(data) {
        if let AnyPdu::Pdu(p) = &m.pdu {
            let again = encode_community_message(m.version, &m.community, p);
            let back = decode_community_message(&again).expect("re-encoded message decodes");
            assert_eq!(back.pdu, m.pdu);
        }
    }
    if let Ok(v3) = decode_v3(data) {
        if let V3Data::Plain(s) = v3.data {
            let _ = decode_scoped_pdu(s);
        }
    }
    let _ = decode_scoped_pdu(data);
});
