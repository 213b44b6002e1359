//! Fault injection with scripted fake agents on loopback: replies from the wrong source or with
//! unknown ids are dropped and counted, looping agents are caught, garbage replies are decode
//! errors; and net-snmp's own request bytes are decoded and re-encoded identically.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use lookout_core::SnmpConfig;
use lookout_snmp::ber::Writer;
use lookout_snmp::pdu::{
    decode_community_message, encode_community_message, AnyPdu, Pdu, PduType, Version,
};
use lookout_snmp::{Oid, SnmpClient, SnmpError, Value, VarBind};
use tokio::net::UdpSocket;

type Script = dyn Fn(&Pdu) -> Vec<Vec<u8>> + Send + Sync;

/// A fake agent: for each request, `script` returns the datagrams to answer with.
/// `reply_from` optionally answers from another socket (wrong source).
async fn fake_agent(script: Arc<Script>, wrong_source: bool) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(msg) = decode_community_message(&buf[..n]) else {
                continue;
            };
            let AnyPdu::Pdu(pdu) = msg.pdu else { continue };
            for d in script(&pdu) {
                let s = if wrong_source { &other } else { &sock };
                let _ = s.send_to(&d, from).await;
            }
        }
    });
    addr
}

fn response(req: &Pdu, id_delta: i32, vbs: Vec<VarBind>) -> Vec<u8> {
    let p = Pdu {
        pdu_type: PduType::Response,
        request_id: req.request_id.wrapping_add(id_delta),
        error_status: 0,
        error_index: 0,
        varbinds: vbs,
    };
    encode_community_message(Version::V2c, b"public", &p)
}

fn cfg(addr: SocketAddr) -> SnmpConfig {
    SnmpConfig {
        port: addr.port(),
        timeout_ms: 150,
        retries: 1,
        ..Default::default()
    }
}

fn oid(s: &str) -> Oid {
    Oid::parse(s).unwrap()
}

#[tokio::test]
async fn wrong_source_and_unknown_ids_are_dropped_and_counted() {
    let echo = |req: &Pdu| {
        req.varbinds
            .iter()
            .map(|v| VarBind::new(v.oid.clone(), Value::Integer(1)))
            .collect::<Vec<_>>()
    };
    let client = SnmpClient::bind_v4().await.unwrap();
    let wrong = fake_agent(Arc::new(move |r| vec![response(r, 0, echo(r))]), true).await;
    let s = client.session(wrong, &cfg(wrong)).unwrap();
    let e = s.get(&[oid("1.3.6.1.2.1.1.1.0")]).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let st = client.stats();
    assert_eq!(st.dropped_wrong_source, 2, "{st:?}");

    // Unknown id first, then garbage, then the right answer: the request still succeeds.
    let mixed = fake_agent(
        Arc::new(move |r| {
            vec![
                response(r, 1000, echo(r)),
                b"\x30\x03junk".to_vec(),
                response(r, 0, echo(r)),
            ]
        }),
        false,
    )
    .await;
    let s = client.session(mixed, &cfg(mixed)).unwrap();
    let vbs = s.get(&[oid("1.3.6.1.2.1.1.1.0")]).await.unwrap();
    assert_eq!(vbs[0].value, Value::Integer(1));
    let st = client.stats();
    assert_eq!(st.dropped_unknown_id, 1, "{st:?}");
    assert_eq!(st.dropped_undecodable, 1, "{st:?}");
}

#[tokio::test]
async fn looping_agent_is_non_increasing_oid() {
    // Always answers the same OID, whatever is asked: a walk must not loop forever.
    let agent = fake_agent(
        Arc::new(|r| {
            vec![response(
                r,
                0,
                vec![VarBind::new(
                    oid("1.3.6.1.2.1.2.2.1.2.1"),
                    Value::OctetString(b"eth0".to_vec()),
                )],
            )]
        }),
        false,
    )
    .await;
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client.session(agent, &cfg(agent)).unwrap();
    let (got, err) = s.walk_partial(&oid("1.3.6.1.2.1.2.2.1.2")).await;
    // Like net-snmp's snmpbulkwalk: the response that shows the loop is still printed.
    assert_eq!(got.len(), 2, "kept what came before the loop was seen");
    assert_eq!(got[0], got[1]);
    match err {
        Some(SnmpError::NonIncreasingOid { previous, next }) => {
            assert_eq!(previous, next);
        }
        other => panic!("{other:?}"),
    }
    let e = s
        .walk_columns(&[oid("1.3.6.1.2.1.2.2.1.2")])
        .await
        .unwrap_err();
    assert!(matches!(e, SnmpError::NonIncreasingOid { .. }), "{e}");
}

#[tokio::test]
async fn malformed_response_is_a_decode_error_with_offset() {
    // A well-formed header and request-id, then a truncated varbind list.
    let sent_len = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let len2 = sent_len.clone();
    let agent = fake_agent(
        Arc::new(move |r| {
            let mut w = Writer::new();
            let m = w.open(0x30);
            w.integer(1);
            w.octets(b"public");
            let p = w.open(0xa2);
            w.integer(i64::from(r.request_id));
            w.integer(0);
            w.integer(0);
            w.buf
                .extend_from_slice(&[0x30, 0x10, 0x30, 0x0e, 0x06, 0x03, 0x2b, 0x06]);
            w.close(p);
            w.close(m);
            len2.store(w.buf.len(), std::sync::atomic::Ordering::SeqCst);
            vec![w.into_vec()]
        }),
        false,
    )
    .await;
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client.session(agent, &cfg(agent)).unwrap();
    match s.get(&[oid("1.3.6.1.2.1.1.1.0")]).await {
        Err(SnmpError::Decode { offset, msg }) => {
            // The varbind list (8 bytes from the end) claims more bytes than there are.
            let len = sent_len.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(offset, len - 8, "{msg}");
            assert_eq!(msg, "length exceeds the data");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_varbind_count_is_unexpected_response() {
    let agent = fake_agent(Arc::new(|r| vec![response(r, 0, vec![])]), false).await;
    let client = SnmpClient::bind_v4().await.unwrap();
    let s = client.session(agent, &cfg(agent)).unwrap();
    let e = s.get(&[oid("1.3.6.1.2.1.1.1.0")]).await.unwrap_err();
    assert!(matches!(e, SnmpError::UnexpectedResponse(_)), "{e}");
}

/// Captures the datagram a net-snmp tool sends to a silent socket.
fn capture(tool: &str, opts: &[&str], oids: &[&str]) -> Vec<u8> {
    common::require(&format!("/usr/bin/{tool}"), "snmp");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let mut child = std::process::Command::new(format!("/usr/bin/{tool}"))
        .args(opts)
        .args(["-r0", "-t", "1", "-On", &addr])
        .args(oids)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    buf[..n].to_vec()
}

#[test]
fn netsnmp_requests_decode_and_reencode_byte_for_byte() {
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], PduType);
    let cases: [Case; 3] = [
        (
            "snmpget",
            &["-v2c", "-c", "public"],
            &["1.3.6.1.2.1.1.1.0", "1.3.6.1.4.1.2021.4.5.0"],
            PduType::Get,
        ),
        (
            "snmpgetnext",
            &["-v1", "-c", "s3cr3t"],
            &["1.3.6.1.2.1.2.2.1.10"],
            PduType::GetNext,
        ),
        (
            "snmpbulkget",
            &["-v2c", "-c", "public", "-Cn1", "-Cr30"],
            &["1.3.6.1.2.1.1.3", "1.3.6.1.2.1.31.1.1.1.6"],
            PduType::GetBulk,
        ),
    ];
    for (tool, opts, oids, ty) in cases {
        let bytes = capture(tool, opts, oids);
        let msg = decode_community_message(&bytes).unwrap();
        let AnyPdu::Pdu(pdu) = &msg.pdu else { panic!() };
        assert_eq!(pdu.pdu_type, ty);
        if ty == PduType::GetBulk {
            assert_eq!((pdu.error_status, pdu.error_index), (1, 30));
            assert_eq!(pdu.varbinds[1].oid, oid("1.3.6.1.2.1.31.1.1.1.6"));
        }
        let again = encode_community_message(msg.version, &msg.community, pdu);
        assert_eq!(again, bytes, "{tool}");
    }
}

#[tokio::test]
async fn in_flight_requests_per_agent_are_limited() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // An agent that answers each request after 30 ms and records how many it held at once.
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    let held = Arc::new(AtomicUsize::new(0));
    let max_held = Arc::new(AtomicUsize::new(0));
    {
        let (sock, held, max_held) = (sock.clone(), held.clone(), max_held.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(msg) = decode_community_message(&buf[..n]) else {
                    continue;
                };
                let AnyPdu::Pdu(pdu) = msg.pdu else { continue };
                let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                max_held.fetch_max(now, Ordering::SeqCst);
                let (sock, held) = (sock.clone(), held.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                    let vbs = pdu
                        .varbinds
                        .iter()
                        .map(|v| VarBind::new(v.oid.clone(), Value::Integer(7)))
                        .collect();
                    held.fetch_sub(1, Ordering::SeqCst);
                    let _ = sock.send_to(&response(&pdu, 0, vbs), from).await;
                });
            }
        });
    }
    let client = SnmpClient::bind(
        "0.0.0.0:0".parse().unwrap(),
        lookout_snmp::ClientOptions {
            max_in_flight_per_agent: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut c = cfg(addr);
    c.timeout_ms = 2000;
    // Two sessions to the same agent share its limit.
    let a = client.session(addr, &c).unwrap();
    let b = client.session(addr, &c).unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.get(&[oid("1.3.6.1.2.1.1.3.0")]).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap()[0].value, Value::Integer(7));
    }
    let m = max_held.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&m),
        "agent saw {m} requests in flight at once"
    );
}

/// A datagram the kernel refuses (port 0: EINVAL) fails its own request with an I/O error
/// at once, while the requests queued with it (one sendmmsg on Linux) are sent and
/// answered; many replies arriving together are all read (full recvmmsg batches). On the
/// batched and on the portable path.
#[tokio::test]
async fn send_errors_fail_only_their_request_on_both_io_paths() {
    let agent = fake_agent(
        Arc::new(|r: &Pdu| {
            let vbs = r
                .varbinds
                .iter()
                .map(|v| {
                    let last = v.oid.as_slice().last().copied().unwrap_or(0);
                    VarBind::new(v.oid.clone(), Value::Integer(i64::from(last)))
                })
                .collect();
            vec![response(r, 0, vbs)]
        }),
        false,
    )
    .await;
    let bad: SocketAddr = "127.0.0.1:0".parse().unwrap();
    for batch_io in [true, false] {
        let client = SnmpClient::bind(
            "0.0.0.0:0".parse().unwrap(),
            lookout_snmp::ClientOptions {
                batch_io,
                max_in_flight_per_agent: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut c = cfg(agent);
        c.timeout_ms = 10_000;
        let good = client.session(agent, &c).unwrap();
        let refused = client.session(bad, &c).unwrap();
        let mut tasks = Vec::new();
        for i in 0..220 {
            let s = if i % 11 == 5 {
                refused.clone()
            } else {
                good.clone()
            };
            tasks.push(tokio::spawn(async move {
                s.get(&[oid(&format!("1.3.6.1.2.1.1.3.{i}"))]).await
            }));
        }
        let (mut ok, mut io) = (0, 0);
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(vbs) if i % 11 != 5 => {
                    // The agent echoes the OID's last number: each answer reached the
                    // request that asked.
                    assert_eq!(vbs[0].value, Value::Integer(i as i64), "request {i}");
                    ok += 1;
                }
                Err(SnmpError::Io(_)) if i % 11 == 5 => io += 1,
                other => panic!("batch_io={batch_io} request {i}: {other:?}"),
            }
        }
        assert_eq!((ok, io), (200, 20), "batch_io={batch_io}");
        let st = client.stats();
        assert_eq!(st.responses, 200, "batch_io={batch_io} {st:?}");
        assert_eq!(st.requests_sent, 200, "batch_io={batch_io} {st:?}");
        assert_eq!(st.timeouts, 0, "batch_io={batch_io} {st:?}");
    }
}
