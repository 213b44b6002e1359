//! A webhook receiver of the test's own on 127.0.0.1: records every request (headers and
//! JSON body) and answers with a status and after a delay the test can change at any time.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: serde_json::Value,
    /// When the request was read in full, relative to the receiver's start.
    pub at: Duration,
}

#[derive(Clone)]
pub struct Webhook {
    pub port: u16,
    started: Instant,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let w = Webhook {
            port,
            started: Instant::now(),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            got: Arc::default(),
        };
        let started = w.started;
        let srv = w.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let srv = srv.clone();
                std::thread::spawn(move || srv.handle(conn, started));
            }
        });
        w
    }

    fn handle(&self, mut conn: std::net::TcpStream, started: Instant) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        // A connection closed without a request (a reachability check) is not a request.
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (mut len, mut key) = (0usize, None);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
                if name == "content-length" {
                    len = value.parse().unwrap_or(0);
                } else if name == "idempotency-key" {
                    key = Some(value);
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // The delay comes before recording: a sender killed while waiting for the answer
        // has handed the message over (it counts as received).
        let rec = Received {
            path,
            idempotency_key: key,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            at: started.elapsed(),
        };
        let status = self.status.load(Ordering::SeqCst);
        if status < 300 {
            self.got.lock().unwrap().push(rec);
        }
        std::thread::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)));
        let reason = if status < 300 { "OK" } else { "Error" };
        let _ = write!(
            conn,
            "HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
        let _ = conn.flush();
    }

    /// Time since the receiver started (the clock of [`Received::at`]).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Answer with `status` from now on (requests answered >= 300 are not recorded).
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Requests whose body has `kind` and `rule_name`.
    pub fn of(&self, rule: &str, kind: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["rule_name"] == rule && r.body["kind"] == kind)
            .collect()
    }

    /// Waits until `pred` holds for what was received, up to `limit`; what was received.
    pub fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "webhook: no {what} within {limit:?}; received: {:#?}",
                got.iter()
                    .map(|r| (&r.body["rule_name"], &r.body["kind"], &r.idempotency_key))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
