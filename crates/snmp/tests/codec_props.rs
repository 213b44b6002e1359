//! Property tests of the codec: any message we encode decodes to itself, and no byte string
//! (random, truncated or bit-flipped valid messages) makes the decoder panic.
#![allow(clippy::unwrap_used)]

use lookout_snmp::pdu::{
    decode_community_message, encode_community_message, peek_message_id, AnyPdu, Pdu, PduType,
    Version,
};
use lookout_snmp::{Oid, Value, VarBind};
use proptest::prelude::*;

fn arb_oid() -> impl Strategy<Value = Oid> {
    (
        0u32..3,
        0u32..40,
        prop::collection::vec(any::<u32>(), 0..20),
    )
        .prop_map(|(a, b, rest)| {
            let mut v = vec![a, b];
            v.extend(rest);
            Oid::from(v)
        })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::OctetString),
        Just(Value::Null),
        arb_oid().prop_map(Value::ObjectId),
        any::<[u8; 4]>().prop_map(Value::IpAddress),
        any::<u32>().prop_map(Value::Counter32),
        any::<u32>().prop_map(Value::Gauge32),
        any::<u32>().prop_map(Value::TimeTicks),
        // Opaque contents that do not look like net-snmp's float wrapper.
        prop::collection::vec(0u8..0x9f, 0..20).prop_map(Value::Opaque),
        any::<u64>().prop_map(Value::Counter64),
        any::<f32>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(Value::Float),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(Value::Double),
        Just(Value::NoSuchObject),
        Just(Value::NoSuchInstance),
        Just(Value::EndOfMibView),
    ]
}

fn arb_pdu() -> impl Strategy<Value = Pdu> {
    (
        prop_oneof![
            Just(PduType::Get),
            Just(PduType::GetNext),
            Just(PduType::Response),
            Just(PduType::Set),
            Just(PduType::GetBulk),
            Just(PduType::Inform),
            Just(PduType::TrapV2),
            Just(PduType::Report),
        ],
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        prop::collection::vec((arb_oid(), arb_value()), 0..30),
    )
        .prop_map(|(t, id, es, ei, vbs)| Pdu {
            pdu_type: t,
            request_id: id,
            error_status: es,
            error_index: ei,
            varbinds: vbs.into_iter().map(|(o, v)| VarBind::new(o, v)).collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn messages_round_trip(pdu in arb_pdu(), v1 in any::<bool>(), community in prop::collection::vec(any::<u8>(), 0..40)) {
        let version = if v1 { Version::V1 } else { Version::V2c };
        let bytes = encode_community_message(version, &community, &pdu);
        let m = decode_community_message(&bytes).unwrap();
        prop_assert_eq!(m.version, version);
        prop_assert_eq!(&m.community, &community);
        prop_assert_eq!(peek_message_id(&bytes).unwrap(), (version, pdu.request_id));
        prop_assert_eq!(m.pdu, AnyPdu::Pdu(pdu));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_community_message(&bytes);
        let _ = peek_message_id(&bytes);
    }

    #[test]
    fn damaged_messages_never_panic(pdu in arb_pdu(), cut in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let bytes = encode_community_message(Version::V2c, b"public", &pdu);
        let n = cut.index(bytes.len() + 1);
        if n < bytes.len() {
            prop_assert!(decode_community_message(&bytes[..n]).is_err());
        }
        let mut b = bytes.clone();
        for (i, x) in flips {
            let i = i.index(b.len());
            b[i] ^= x;
        }
        if let Err(e) = decode_community_message(&b) {
            prop_assert!(e.offset <= b.len());
        }
    }
}

/// The fuzz seeds are real net-snmp traffic (tool requests and snmpd responses captured on
/// loopback); they must all decode.
#[test]
fn fuzz_seeds_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.contains("v3") {
            let m = lookout_snmp::usm::decode_v3(&b).unwrap();
            assert_eq!(m.flags & 0x04, 0x04, "{name}: discovery is reportable");
        } else {
            let m = decode_community_message(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.starts_with("snmpd_response") {
                let AnyPdu::Pdu(p) = m.pdu else { panic!() };
                assert_eq!(p.pdu_type, PduType::Response);
                assert!(!p.varbinds.is_empty());
            }
        }
        n += 1;
    }
    assert!(n >= 6);
}
