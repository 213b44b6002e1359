//! Shared by the transport tests: a recording HTTP receiver (axum on 127.0.0.1), a
//! server that accepts and never answers, a raw HTTP GET, daemons run by the test
//! (killed on drop, their log printed when the test fails), and the rule for missing
//! binaries (fail, unless `LOOKOUT_TEST_ALLOW_SKIP=1`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use lookout_alerting::transport::{self, Delivered, DeliveryError, Transport};
use lookout_alerting::Notification;
use lookout_store::AlertTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// An HTTP server on 127.0.0.1 that records every request and answers with the status
/// it is set to (200 at first) and a small JSON body.
pub struct Receiver {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (rq, st) = (requests.clone(), status.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (rq, st) = (rq.clone(), st.clone());
                async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
                        .collect();
                    rq.lock().unwrap().push(Recorded {
                        method: method.to_string(),
                        uri: uri.to_string(),
                        headers,
                        body: body.to_vec(),
                    });
                    let code = StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap();
                    (code, format!("{{\"answered\": {}}}", code.as_u16()))
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            requests,
            status,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    /// Every request so far (a transport's `send` returns after the answer, so the
    /// request it made is recorded by then).
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> Recorded {
        let r = self.requests();
        assert_eq!(r.len(), 1, "expected one request, got {r:#?}");
        r.into_iter().next().unwrap()
    }

    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers (holding them
/// until it is dropped).
pub struct Silent {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    pub async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        Silent { addr, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A 127.0.0.1 port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    lookout_testkit::snmpd::free_tcp_port()
}

/// A transport row of `kind` with `config`.
pub fn row(kind: &str, config: serde_json::Value) -> AlertTransport {
    AlertTransport {
        transport_id: 1,
        transport_name: format!("test {kind}"),
        transport_type: kind.into(),
        is_default: false,
        transport_config: config.to_string(),
    }
}

pub fn build(kind: &str, config: serde_json::Value) -> Arc<dyn Transport> {
    transport::build(&row(kind, config)).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

pub async fn send(t: &Arc<dyn Transport>, n: &Notification) -> Result<Delivered, DeliveryError> {
    // Generous bound: a transport that never returns fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(120), t.send(n))
        .await
        .expect("send did not return within 120 s")
}

pub fn notification() -> Notification {
    lookout_alerting::template::example()
}

/// Whether `path` exists; if not, the test fails with what to install, unless
/// `LOOKOUT_TEST_ALLOW_SKIP=1` (then it says so and the caller returns early).
pub fn require(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var("LOOKOUT_TEST_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {path} is missing (Debian package {package}; scripts/install-deps.sh)");
        return false;
    }
    panic!("{path} is missing: install the Debian package {package} (scripts/install-deps.sh), or set LOOKOUT_TEST_ALLOW_SKIP=1 to skip locally");
}

/// A server process run by a test: killed on drop, its log printed if the test failed.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon {
            name: name.into(),
            child,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails (with the log) if the process already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

/// Polls `f` until it returns Some, failing after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` over HTTP/1.0 on `addr`: the status and the body, or None if there was no
/// complete answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}
