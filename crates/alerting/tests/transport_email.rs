//! The email transport against a real SMTP server on 127.0.0.1: Debian's
//! `python3-aiosmtpd`, with a handler of the test's own that writes each message it
//! accepts to a directory and refuses recipients whose address starts with `refused`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lookout_alerting::transport::check_reachable;
use serde_json::json;
use tokio::io::AsyncReadExt;
use transport_common::*;

const PYTHON: &str = "/usr/bin/python3";
const AIOSMTPD: &str = "/usr/lib/python3/dist-packages/aiosmtpd/__init__.py";

const HANDLER: &str = r#"
import json, os

class Recorder:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tmp = os.path.join(self.outdir, "%d.tmp" % self.n)
        with open(tmp, "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "helo": session.host_name,
                       "content": envelope.content.decode("utf-8", "replace")}, f)
        os.rename(tmp, os.path.join(self.outdir, "%d.json" % self.n))
        return "250 2.0.0 queued as %d" % self.n
"#;

struct Smtpd {
    addr: SocketAddr,
    out: PathBuf,
    _daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Smtpd {
    async fn start() -> Option<Smtpd> {
        if !require(PYTHON, "python3") || !require(AIOSMTPD, "python3-aiosmtpd") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("recorder.py"), HANDLER).unwrap();
        let out = dir.path().join("mail");
        std::fs::create_dir(&out).unwrap();
        let port = closed_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut daemon = Daemon::spawn(
            "aiosmtpd",
            Command::new(PYTHON)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(addr.to_string())
                .args(["-c", "recorder.Recorder"])
                .arg(&out)
                .env("PYTHONPATH", dir.path())
                .env_remove("PYTHONHOME"),
            dir.path().join("smtpd.log"),
        );
        let start = std::time::Instant::now();
        while greeting(addr).await.is_none() {
            daemon.assert_running();
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "aiosmtpd did not greet on {addr} within 60 s:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Smtpd {
            addr,
            out,
            _daemon: daemon,
            _dir: dir,
        })
    }

    fn config(&self, to: serde_json::Value) -> serde_json::Value {
        json!({
            "host": "127.0.0.1", "port": self.addr.port(), "starttls": "none",
            "from": "Lookout <lookout@example.net>", "to": to, "helo_name": "lookout.test",
            "timeout_secs": 20,
        })
    }

    /// The messages accepted so far, in order.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort_by_key(|p| number(p));
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

fn number(p: &Path) -> u64 {
    p.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

async fn greeting(addr: SocketAddr) -> Option<()> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut buf = [0u8; 3];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    (&buf == b"220").then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_arrives_with_subject_body_and_message_id() {
    let Some(smtpd) = Smtpd::start().await else {
        return;
    };
    let t = build(
        "email",
        smtpd.config(json!("noc@example.net, oncall@example.net")),
    );
    let n = notification();
    let d = send(&t, &n).await.unwrap();
    assert_eq!(
        d.detail,
        format!(
            "SMTP 250 from {} for 2 recipient(s): 2.0.0 queued as 1",
            smtpd.addr
        )
    );
    let m = smtpd.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["mail_from"], "lookout@example.net");
    assert_eq!(
        m[0]["rcpt_tos"],
        json!(["noc@example.net", "oncall@example.net"])
    );
    assert_eq!(m[0]["helo"], "lookout.test");
    let content = m[0]["content"].as_str().unwrap();
    let (head, body) = content.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Subject: CRITICAL alert: Port status up/down on core1.example.net\r\n"),
        "{head}"
    );
    assert!(
        head.contains("From: Lookout <lookout@example.net>\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Message-ID: <lookout-alert.r7.d3.ports.12.alert.0@lookout>\r\n"),
        "{head}"
    );
    assert!(
        head.contains("X-Lookout-Idempotency-Key: lookout-alert:r7:d3:ports:12:alert:0\r\n"),
        "{head}"
    );
    let body = body.replace("\r\n", "\n");
    assert!(
        body.starts_with(
            "CRITICAL alert: Port status up/down on core1.example.net\nSeverity: critical\n"
        ),
        "{body}"
    );
    assert!(body.contains("  #1: xe-0/0/1 "), "{body}");

    // Templates of the transport's own.
    let mut c = smtpd.config(json!(["noc@example.net"]));
    c["subject"] = json!("[{{ state }}] {{ hostname }}");
    c["body"] = json!("{{ rule }} since {{ elapsed }}\n");
    let t = build("email", c);
    send(&t, &n).await.unwrap();
    let m = smtpd.messages();
    let content = m[1]["content"].as_str().unwrap();
    assert!(
        content.contains("Subject: [alert] core1.example.net\r\n"),
        "{content}"
    );
    // (The last CRLF is SMTP's, before the terminating dot.)
    assert!(
        content.ends_with("\r\n\r\nPort status up/down since 5m 0s\r\n\r\n"),
        "{content:?}"
    );

    let ok = check_reachable(&row("email", smtpd.config(json!("noc@example.net"))))
        .await
        .unwrap();
    assert_eq!(ok, format!("SMTP {}: EHLO answered, no TLS", smtpd.addr));
    assert_eq!(smtpd.messages().len(), 2, "a check sends no mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_a_permanent_error_that_says_so() {
    let Some(smtpd) = Smtpd::start().await else {
        return;
    };
    let t = build(
        "email",
        smtpd.config(json!(["noc@example.net", "refused@example.net"])),
    );
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "SMTP {}: permanent error (550): 5.1.1 <refused@example.net>: mailbox unavailable",
            smtpd.addr
        )
    );
    assert!(smtpd.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_against_a_server_without_it_sends_nothing() {
    let Some(smtpd) = Smtpd::start().await else {
        return;
    };
    let mut c = smtpd.config(json!("noc@example.net"));
    c["starttls"] = json!("required");
    let t = build("email", c.clone());
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(
        e.message().starts_with(&format!("SMTP {}: ", smtpd.addr)),
        "{e}"
    );
    assert!(
        e.message()
            .ends_with("STARTTLS is not supported on this server"),
        "{e}"
    );
    assert!(smtpd.messages().is_empty());
    let e = check_reachable(&row("email", c)).await.unwrap_err();
    assert!(e.to_ascii_lowercase().contains("starttls"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_transient() {
    let port = closed_port();
    let t = build(
        "email",
        json!({"host": "127.0.0.1", "port": port, "starttls": "none", "from": "a@example.net", "to": "b@example.net"}),
    );
    let e = send(&t, &notification()).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.message().starts_with(&format!("SMTP 127.0.0.1:{port}: ")),
        "{e}"
    );
}
