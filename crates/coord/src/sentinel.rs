//! Sentinel watch: ask the sentinels which server is the primary, and make the Redis
//! client reconnect when they name another one than it is connected to.
//!
//! Why: the client re-asks the sentinels only when its connection breaks. After a
//! `SENTINEL FAILOVER` (maintenance) or a partition, the old primary stays up and keeps
//! answering as a primary until a sentinel reconfigures it, which can take ~10 s (the
//! sentinels poll replicas' INFO every 10 s); writes in that window land on the old
//! primary and are wiped when it resyncs. Polling the sentinels every second closes it.
//!
//! The protocol part (encode one command, decode the reply of
//! `SENTINEL get-master-addr-by-name`) is sans-IO; the IO is one short TCP exchange.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Encode a command as a RESP array of bulk strings.
pub(crate) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What a (possibly partial) reply to `get-master-addr-by-name` says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AddrReply {
    /// More bytes needed.
    Incomplete,
    /// The sentinel does not know the service.
    Unknown,
    Addr(String, u16),
    /// An error reply or bytes that are not this reply.
    Bad(String),
}

fn line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..i], &buf[i + 2..]))
}

fn bulk(buf: &[u8]) -> Result<Option<(String, &[u8])>, String> {
    let Some((head, rest)) = line(buf) else {
        return Ok(None);
    };
    let n: usize = head
        .strip_prefix(b"$")
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            format!(
                "bulk string expected, got {:?}",
                String::from_utf8_lossy(head)
            )
        })?;
    if rest.len() < n.saturating_add(2) {
        return Ok(None);
    }
    let s = String::from_utf8_lossy(&rest[..n]).into_owned();
    Ok(Some((s, &rest[n + 2..])))
}

/// Decode the reply: `*2 $host $port`, or a null (`*-1` / `$-1`) for an unknown service.
pub(crate) fn parse_addr(buf: &[u8]) -> AddrReply {
    let Some((head, rest)) = line(buf) else {
        return AddrReply::Incomplete;
    };
    match head {
        b"*-1" | b"$-1" => return AddrReply::Unknown,
        b"*2" => {}
        h if h.starts_with(b"-") => {
            return AddrReply::Bad(String::from_utf8_lossy(&h[1..]).into_owned())
        }
        h => return AddrReply::Bad(format!("unexpected reply {:?}", String::from_utf8_lossy(h))),
    }
    let (host, rest) = match bulk(rest) {
        Ok(Some(x)) => x,
        Ok(None) => return AddrReply::Incomplete,
        Err(e) => return AddrReply::Bad(e),
    };
    let port = match bulk(rest) {
        Ok(Some((p, _))) => p,
        Ok(None) => return AddrReply::Incomplete,
        Err(e) => return AddrReply::Bad(e),
    };
    match port.parse() {
        Ok(p) => AddrReply::Addr(host, p),
        Err(_) => AddrReply::Bad(format!("bad port {port:?}")),
    }
}

/// Ask one sentinel where the primary of `service` is.
pub(crate) async fn ask(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> Option<(String, u16)> {
    let exchange = async {
        let mut s = TcpStream::connect((host, port)).await.ok()?;
        s.write_all(&encode(&["SENTINEL", "get-master-addr-by-name", service]))
            .await
            .ok()?;
        let mut buf = Vec::with_capacity(128);
        let mut chunk = [0u8; 256];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() > 4096 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            match parse_addr(&buf) {
                AddrReply::Incomplete => continue,
                AddrReply::Addr(h, p) => return Some((h, p)),
                AddrReply::Unknown => return None,
                AddrReply::Bad(e) => {
                    tracing::debug!(sentinel = %format!("{host}:{port}"), error = %e, "bad sentinel reply");
                    return None;
                }
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// The primary a majority of `sentinels` name, if there is such a majority. A single
/// stale sentinel must not send the client back to a demoted primary.
pub(crate) async fn majority_primary(
    sentinels: &[(String, u16)],
    service: &str,
    timeout: Duration,
) -> Option<(String, u16)> {
    // Ask all at once: one black-holed sentinel must not delay the answer by its timeout
    // per round.
    let mut set = tokio::task::JoinSet::new();
    for (h, p) in sentinels.iter().cloned() {
        let service = service.to_owned();
        set.spawn(async move { ask(&h, p, &service, timeout).await });
    }
    let mut answers: Vec<(String, u16)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(Some(a)) = r {
            answers.push(a);
        }
    }
    pick_majority(&answers, sentinels.len())
}

/// The answer given by more than half of `total` sentinels.
pub(crate) fn pick_majority(answers: &[(String, u16)], total: usize) -> Option<(String, u16)> {
    answers
        .iter()
        .find(|a| answers.iter().filter(|b| b == a).count() * 2 > total)
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_resp_array() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode(&["SENTINEL", "get-master-addr-by-name", "mymaster"]),
            b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$8\r\nmymaster\r\n"
                .to_vec()
        );
    }

    #[test]
    fn parses_address_in_pieces() {
        let full = b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6390\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse_addr(&full[..cut]),
                AddrReply::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(parse_addr(full), AddrReply::Addr("127.0.0.1".into(), 6390));
    }

    #[test]
    fn parses_null_error_and_junk() {
        assert_eq!(parse_addr(b"*-1\r\n"), AddrReply::Unknown);
        assert_eq!(parse_addr(b"$-1\r\n"), AddrReply::Unknown);
        assert_eq!(
            parse_addr(b"-ERR no such\r\n"),
            AddrReply::Bad("ERR no such".into())
        );
        assert!(matches!(parse_addr(b"+OK\r\n"), AddrReply::Bad(_)));
        assert!(matches!(parse_addr(b"*2\r\n:1\r\n"), AddrReply::Bad(_)));
        assert!(matches!(
            parse_addr(b"*2\r\n$1\r\nh\r\n$2\r\nxx\r\n"),
            AddrReply::Bad(_)
        ));
        assert!(matches!(
            parse_addr(b"*2\r\n$99999999999999999999\r\n"),
            AddrReply::Bad(_)
        ));
    }

    #[test]
    fn majority_needs_more_than_half_of_all_sentinels() {
        let a = ("h".to_string(), 1);
        let b = ("h".to_string(), 2);
        assert_eq!(
            pick_majority(&[a.clone(), a.clone(), b.clone()], 3),
            Some(a.clone())
        );
        assert_eq!(pick_majority(&[a.clone(), b.clone()], 3), None);
        assert_eq!(pick_majority(std::slice::from_ref(&a), 1), Some(a.clone()));
        assert_eq!(
            pick_majority(&[a.clone(), a.clone()], 4),
            None,
            "2 of 4 is no majority"
        );
        assert_eq!(pick_majority(&[], 3), None);
    }
}
