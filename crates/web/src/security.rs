//! Login and session policy: time-outs, the login throttle (a pure decision over the failure
//! counts the store keeps in `authlog`, so every instance throttles alike), the minimum
//! password length, and the client address (`X-Forwarded-For` believed only from trusted
//! proxies, so a client cannot pick the address the throttle and the auth log see).

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use lookout_store::LoginFailures;

/// Settings of the web tier's security (from `.env`/environment in the binary).
#[derive(Clone, Debug)]
pub struct SecurityOptions {
    /// A session ends this long after login, whatever its activity.
    pub session_lifetime_secs: i64,
    /// A session ends after this long without a request.
    pub session_idle_secs: i64,
    /// Failed logins of one account before it is throttled (the back-off doubles with each
    /// further failure).
    pub max_failures_per_user: u32,
    /// Failed logins from one client address (any account) before it is throttled.
    pub max_failures_per_address: u32,
    /// Proxies (load balancers) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Shortest password accepted when one is set.
    pub min_password_len: usize,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        SecurityOptions {
            session_lifetime_secs: crate::session::SESSION_TTL_SECS,
            session_idle_secs: 2 * 3600,
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            trusted_proxies: Vec::new(),
            min_password_len: 8,
        }
    }
}

/// How far back failures count.
pub const FAILURE_WINDOW_SECS: i64 = 3600;
/// The first back-off once the limit is reached; doubled per further failure.
pub const BASE_BACKOFF_SECS: i64 = 60;
/// The longest back-off.
pub const MAX_BACKOFF_SECS: i64 = 900;

/// Seconds until another login attempt is allowed, `None` when it is allowed now.
pub fn throttled_for(f: &LoginFailures, opts: &SecurityOptions, now: i64) -> Option<i64> {
    let wait = |count: u32, last: Option<i64>, limit: u32| -> Option<i64> {
        let last = last?;
        if limit == 0 || count < limit {
            return None;
        }
        let doublings = (count - limit).min(16);
        let backoff = (BASE_BACKOFF_SECS << doublings).min(MAX_BACKOFF_SECS);
        let left = last + backoff - now;
        (left > 0).then_some(left)
    };
    let user = wait(f.user_failures, f.user_last, opts.max_failures_per_user);
    let address = wait(
        f.address_failures,
        f.address_last,
        opts.max_failures_per_address,
    );
    user.max(address)
}

/// Refuses a password shorter than the policy's minimum, saying so.
pub fn check_password_policy(password: &str, opts: &SecurityOptions) -> Result<(), String> {
    if password.chars().count() < opts.min_password_len {
        return Err(format!(
            "the password must have at least {} characters",
            opts.min_password_len
        ));
    }
    Ok(())
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
/// in `X-Forwarded-For` that is not itself a trusted proxy. Empty when unknown (a request
/// served without connection info, as in unit tests).
pub fn client_address(parts: &Parts, opts: &SecurityOptions) -> String {
    // `MockConnectInfo` is what tests (and embedders without a socket) layer in instead.
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .or_else(|| {
            parts
                .extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|MockConnectInfo(a)| a.ip())
        });
    client_address_from(peer, &parts.headers, &opts.trusted_proxies)
}

/// The request's client address (see [`client_address`]) as an extractor.
pub(crate) struct ClientAddress(pub(crate) String);

impl axum::extract::FromRequestParts<crate::Shared> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &crate::Shared,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts, &ctx.state.security)))
    }
}

pub fn client_address_from(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> String {
    let Some(peer) = peer else {
        return String::new();
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    // Right to left: each trusted hop appended the address it saw; the first untrusted one
    // is the client (anything left of it is the client's own claim).
    let mut client = peer;
    for v in headers.get_all("x-forwarded-for") {
        let Ok(s) = v.to_str() else { continue };
        for hop in s.split(',').rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return client.to_string();
            };
            client = ip;
            if !is_trusted(&ip) {
                return ip.to_string();
            }
        }
    }
    client.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn failures(user: u32, user_last: i64, address: u32, address_last: i64) -> LoginFailures {
        LoginFailures {
            user_failures: user,
            user_last: Some(user_last),
            address_failures: address,
            address_last: Some(address_last),
        }
    }

    #[test]
    fn throttle_starts_at_the_limit_and_backs_off() {
        let o = SecurityOptions::default();
        assert_eq!(throttled_for(&failures(4, 100, 4, 100), &o, 101), None);
        assert_eq!(throttled_for(&failures(5, 100, 5, 100), &o, 101), Some(59));
        assert_eq!(throttled_for(&failures(5, 100, 5, 100), &o, 160), None);
        // One more failure after the wait: twice as long.
        assert_eq!(throttled_for(&failures(6, 200, 6, 200), &o, 200), Some(120));
        // Capped.
        assert_eq!(throttled_for(&failures(40, 0, 0, 0), &o, 0), Some(900));
        // The address limit is separate and higher.
        assert_eq!(throttled_for(&failures(0, 0, 19, 50), &o, 50), None);
        assert_eq!(throttled_for(&failures(0, 0, 20, 50), &o, 50), Some(60));
        assert_eq!(throttled_for(&LoginFailures::default(), &o, 0), None);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        let lb: IpAddr = "127.0.0.5".parse().unwrap();
        let outsider: IpAddr = "198.51.100.7".parse().unwrap();
        // From the proxy: the hop it saw (10.1.1.1), not what the client claimed before it.
        assert_eq!(client_address_from(Some(lb), &h, &trusted), "10.1.1.1");
        // From anyone else: the peer, whatever the header says.
        assert_eq!(
            client_address_from(Some(outsider), &h, &trusted),
            "198.51.100.7"
        );
        assert_eq!(
            client_address_from(Some(lb), &HeaderMap::new(), &trusted),
            "127.0.0.5"
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_address_from(Some(lb), &bad, &trusted), "127.0.0.5");
        assert_eq!(client_address_from(None, &h, &trusted), "");
    }

    #[test]
    fn short_passwords_are_refused() {
        let o = SecurityOptions::default();
        assert!(check_password_policy("1234567", &o).is_err());
        assert!(check_password_policy("12345678", &o).is_ok());
    }
}
