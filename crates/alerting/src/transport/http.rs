//! The HTTP edge shared by the HTTP transports: one client (rustls with the ring provider
//! and the system's roots, no redirects followed, no idle connections kept), one request
//! per attempt, and the answer classified as delivered, transient or permanent.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::{Delivered, DeliveryError};
use crate::notification::Notification;

/// How much of an error answer's body is kept for the message.
const ERROR_BODY_CHARS: usize = 300;
/// How much of an answer is read at most (the rest is dropped with the connection).
const MAX_READ: usize = 64 * 1024;

fn build_client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("TLS verifier: {e}"))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        // The platform verifier is the system's trust store, not an "accept all".
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // A webhook that redirects is misconfigured (and a POST would become a GET).
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Lookout/", env!("CARGO_PKG_VERSION")))
        // A fresh connection per notification: alerts are few, and an idle pooled
        // connection the receiver has half-closed would turn into a spurious failure.
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The process's HTTP client, built on first use.
pub fn client() -> Result<&'static reqwest::Client, DeliveryError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(build_client)
        .as_ref()
        .map_err(|e| DeliveryError::Transient(e.clone()))
}

/// One request of one attempt.
pub struct Request {
    pub method: Method,
    pub url: Url,
    /// The URL as messages show it (see `config::shown_url`).
    pub shown: String,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl Request {
    /// A JSON POST with the notification's idempotency key.
    pub fn json(
        url: Url,
        shown: String,
        body: &serde_json::Value,
        n: &Notification,
        timeout: Duration,
    ) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        set_idempotency_key(&mut headers, n);
        Request {
            method: Method::POST,
            url,
            shown,
            headers,
            body: Some(body.to_string().into_bytes()),
            timeout,
        }
    }
}

/// Sets `Idempotency-Key` (replacing any configured one: it must be the notification's).
pub fn set_idempotency_key(headers: &mut HeaderMap, n: &Notification) {
    // Keys are ASCII (`lookout-alert:r1:d2:...`); one that is not is sent without it.
    if let Ok(v) = HeaderValue::from_str(&n.idempotency_key) {
        headers.insert(HeaderName::from_static("idempotency-key"), v);
    }
}

/// Sends `req` once and classifies the answer: 2xx delivered; 408, 429 and 5xx
/// transient; other 4xx and 3xx permanent; no answer (timeout, refused, reset) transient.
pub async fn send(req: Request) -> Result<Delivered, DeliveryError> {
    let client = client()?;
    let method = req.method.clone();
    let mut rb = client
        .request(req.method, req.url)
        .headers(req.headers)
        .timeout(req.timeout);
    if let Some(b) = req.body {
        rb = rb.body(b);
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| request_error(&e, &method, &req.shown, req.timeout))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(resp).await;
    let code = status.as_u16();
    if status.is_success() {
        return Ok(Delivered {
            detail: format!("HTTP {code} from {}", req.shown),
        });
    }
    let mut msg = format!("HTTP {code} from {}", req.shown);
    if status.is_redirection() {
        // The Location may hold a token too: only say there was one.
        msg.push_str(if location.is_some() {
            " (a redirect, not followed: check the URL)"
        } else {
            " (not followed)"
        });
    }
    let snippet = snippet(&body);
    if !snippet.is_empty() {
        msg.push_str(": ");
        msg.push_str(&snippet);
    }
    Err(if is_transient_status(code) {
        DeliveryError::Transient(msg)
    } else {
        DeliveryError::Permanent(msg)
    })
}

/// 408 Request Timeout, 429 Too Many Requests and 5xx are worth retrying (and 1xx,
/// which a server should never end with).
pub fn is_transient_status(code: u16) -> bool {
    matches!(code, 408 | 429 | 500..=599 | 100..=199)
}

async fn read_capped(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= MAX_READ {
            break;
        }
    }
    out
}

/// The start of an answer, on one line.
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::payload::truncate(&one_line, ERROR_BODY_CHARS)
}

fn request_error(e: &reqwest::Error, method: &Method, shown: &str, t: Duration) -> DeliveryError {
    // `without_url`: reqwest's messages carry the full URL, query string and all.
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let cause = chain.last().cloned().unwrap_or_default();
    if e.is_timeout() {
        return DeliveryError::Transient(format!(
            "{method} {shown}: no answer within {:.1} s",
            t.as_secs_f64()
        ));
    }
    if e.is_builder() {
        return DeliveryError::Permanent(format!("{method} {shown}: {cause}"));
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    DeliveryError::Transient(format!("{method} {shown}: {what}: {cause}"))
}

/// Resolves the URL's host and opens (and closes) a TCP connection to it.
pub async fn check_connect(url: &Url, timeout: Duration) -> Result<String, String> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let shown = format!("{}://{host}:{port}", url.scheme());
    // IPv6 literals come bracketed from `host_str`; lookup_host wants them bare.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let attempt = async {
        let addrs: Vec<_> = tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|e| format!("{shown}: {host} does not resolve: {e}"))?
            .collect();
        let mut last = format!("{shown}: {host} resolves to no address");
        for a in &addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(_) => return Ok(format!("{shown}: connected to {a}")),
                Err(e) => last = format!("{shown}: cannot connect to {a}: {e}"),
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{shown}: no connection within {:.1} s",
                timeout.as_secs_f64()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        for c in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(c), "{c}");
        }
        for c in [301, 400, 401, 403, 404, 410, 422] {
            assert!(!is_transient_status(c), "{c}");
        }
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(
            snippet(b"  {\"error\":\n \"bad\"}\n"),
            "{\"error\": \"bad\"}"
        );
        assert_eq!(snippet(&[b'x'; 1000]).chars().count(), ERROR_BODY_CHARS);
    }
}
