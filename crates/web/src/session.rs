//! Session cookies and CSRF tokens.
//!
//! The session cookie is a small JSON payload (session id, user id, expiry, CSRF token) sealed
//! with AES-256-GCM (the `cookie` crate's private jar: encrypted and authenticated, the cookie
//! name bound as associated data) under a key derived from `APP_KEY`, so every web instance
//! that shares `APP_KEY` can open it. The session itself is a server-side record (see
//! `sessions`) found by the id: logout, a password change or the user's removal end it on
//! every instance at once, and a copied cookie dies with it. The expiry travels inside the
//! sealed payload too, so a client cannot extend it by editing cookie attributes.
//!
//! CSRF: every form carries the session's CSRF token, compared in constant time. The login
//! form has no session yet, so it gets its own short-lived sealed cookie holding the token.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::auth::{random_hex, AppKey};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "lookout_session";
/// Name of the pre-login cookie that carries the login form's CSRF token.
pub const LOGIN_COOKIE: &str = "lookout_login";
/// How long a session lasts from login by default (`LOOKOUT_SESSION_LIFETIME`).
pub const SESSION_TTL_SECS: i64 = 12 * 3600;
/// How long a login form stays valid.
pub const LOGIN_TTL_SECS: i64 = 3600;

/// What the session cookie holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    /// The server-side record's id (random, 256 bits); the store keeps only its SHA-256.
    pub sid: String,
    /// `users.user_id`
    pub uid: i64,
    /// Unix seconds after which the session is refused.
    pub exp: i64,
    /// CSRF token bound to this session.
    pub csrf: String,
}

/// What the login cookie holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LoginData {
    exp: i64,
    csrf: String,
}

/// Seals and opens the cookies with a key derived from `APP_KEY`.
#[derive(Clone)]
pub struct CookieSealer {
    key: Key,
}

impl CookieSealer {
    pub fn new(app_key: &AppKey) -> CookieSealer {
        // `derive` gives 32 uniformly random bytes, the length `derive_from` requires.
        CookieSealer {
            key: Key::derive_from(&app_key.derive("session cookie")),
        }
    }

    /// A fresh session for `uid` issued at `now` (unix seconds), valid for `ttl` seconds.
    pub fn new_session(uid: i64, now: i64, ttl: i64) -> SessionData {
        SessionData {
            sid: random_hex(32),
            uid,
            exp: now + ttl,
            csrf: random_hex(32),
        }
    }

    /// The `Set-Cookie` value for a session; `secure` adds the `Secure` attribute (set it when
    /// the client reached us over HTTPS, see [`client_uses_https`]).
    pub fn session_cookie(
        &self,
        data: &SessionData,
        max_age: i64,
        secure: bool,
    ) -> Option<HeaderValue> {
        let json = serde_json::to_string(data).ok()?;
        // The browser keeps it for the session's lifetime; the server record decides.
        self.sealed_cookie(SESSION_COOKIE, json, max_age, secure)
    }

    /// The valid, unexpired session in the request's cookies, if any. A cookie that was
    /// tampered with, sealed under another key, or has expired counts as absent.
    pub fn session(&self, headers: &HeaderMap, now: i64) -> Option<SessionData> {
        let json = self.open(headers, SESSION_COOKIE)?;
        let data: SessionData = serde_json::from_str(&json).ok()?;
        (data.exp > now).then_some(data)
    }

    /// A new login-form CSRF token and the `Set-Cookie` value that carries it.
    pub fn new_login_token(&self, now: i64, secure: bool) -> Option<(String, HeaderValue)> {
        let data = LoginData {
            exp: now + LOGIN_TTL_SECS,
            csrf: random_hex(32),
        };
        let json = serde_json::to_string(&data).ok()?;
        let cookie = self.sealed_cookie(LOGIN_COOKIE, json, LOGIN_TTL_SECS, secure)?;
        Some((data.csrf, cookie))
    }

    /// True when the request's login cookie is valid and holds `submitted`.
    pub fn check_login_token(&self, headers: &HeaderMap, submitted: &str, now: i64) -> bool {
        let Some(json) = self.open(headers, LOGIN_COOKIE) else {
            return false;
        };
        let Ok(data) = serde_json::from_str::<LoginData>(&json) else {
            return false;
        };
        data.exp > now && tokens_equal(&data.csrf, submitted)
    }

    fn sealed_cookie(
        &self,
        name: &'static str,
        value: String,
        ttl: i64,
        secure: bool,
    ) -> Option<HeaderValue> {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(
            Cookie::build((name, value))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(secure)
                .max_age(cookie::time::Duration::seconds(ttl))
                .build(),
        );
        let sealed = jar.get(name)?;
        HeaderValue::from_str(&sealed.encoded().to_string()).ok()
    }

    fn open(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        let mut jar = CookieJar::new();
        for header in headers.get_all(COOKIE) {
            let Ok(s) = header.to_str() else { continue };
            for c in Cookie::split_parse_encoded(s.to_owned()).flatten() {
                jar.add_original(c.into_owned());
            }
        }
        let c = jar.private(&self.key).get(name)?;
        Some(c.value().to_owned())
    }
}

/// True when the client reached us over HTTPS through a TLS-terminating proxy or load
/// balancer (`X-Forwarded-Proto: https` or `Forwarded: proto=https`). Trusting the header is
/// safe here: it only adds `Secure` to the client's own cookies.
pub fn client_uses_https(headers: &HeaderMap) -> bool {
    let xfp = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let fwd = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([';', ',']).any(|kv| {
                kv.trim().split_once('=').is_some_and(|(k, p)| {
                    k.eq_ignore_ascii_case("proto")
                        && p.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    xfp || fwd
}

/// A `Set-Cookie` value that deletes cookie `name` in the browser.
pub fn removal_cookie(name: &'static str) -> HeaderValue {
    let c = Cookie::build((name, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    HeaderValue::from_str(&c.encoded().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("lookout_session=; Path=/; Max-Age=0"))
}

/// Appends a `Set-Cookie` header.
pub fn set_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

/// Constant-time comparison of two CSRF tokens; empty never matches.
pub fn tokens_equal(expected: &str, submitted: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn request_with(cookie: &HeaderValue) -> HeaderMap {
        // A browser sends back only `name=value`.
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        h
    }

    #[test]
    fn session_round_trip_and_attributes() {
        let s = CookieSealer::new(&AppKey::generate());
        let data = CookieSealer::new_session(7, 1000, SESSION_TTL_SECS);
        let c = s.session_cookie(&data, SESSION_TTL_SECS, false).unwrap();
        let text = c.to_str().unwrap();
        assert!(text.starts_with("lookout_session="), "{text}");
        assert!(text.contains("HttpOnly"), "{text}");
        assert!(text.contains("SameSite=Lax"), "{text}");
        assert!(
            !text.contains("csrf"),
            "payload must not be readable: {text}"
        );
        assert_eq!(s.session(&request_with(&c), 1001), Some(data.clone()));
        // Expired per the sealed payload.
        assert_eq!(s.session(&request_with(&c), data.exp), None);
    }

    #[test]
    fn other_key_and_tampering_are_refused() {
        let key = AppKey::generate();
        let s = CookieSealer::new(&key);
        let c = s
            .session_cookie(
                &CookieSealer::new_session(1, 0, SESSION_TTL_SECS),
                SESSION_TTL_SECS,
                false,
            )
            .unwrap();
        assert!(CookieSealer::new(&AppKey::generate())
            .session(&request_with(&c), 1)
            .is_none());
        // Same APP_KEY on another instance: accepted.
        assert!(CookieSealer::new(&key)
            .session(&request_with(&c), 1)
            .is_some());
        let text = c.to_str().unwrap();
        let eq = text.find('=').unwrap();
        let mut bytes = text.as_bytes().to_vec();
        // Flip one character of the sealed value.
        bytes[eq + 5] = if bytes[eq + 5] == b'A' { b'B' } else { b'A' };
        let forged = HeaderValue::from_bytes(&bytes).unwrap();
        assert!(s.session(&request_with(&forged), 1).is_none());
    }

    #[test]
    fn login_token_checks() {
        let s = CookieSealer::new(&AppKey::generate());
        let (tok, c) = s.new_login_token(0, false).unwrap();
        let h = request_with(&c);
        assert!(s.check_login_token(&h, &tok, 1));
        assert!(!s.check_login_token(&h, "nope", 1));
        assert!(!s.check_login_token(&h, "", 1));
        assert!(!s.check_login_token(&h, &tok, LOGIN_TTL_SECS + 1));
        assert!(!s.check_login_token(&HeaderMap::new(), &tok, 1));
    }

    #[test]
    fn secure_behind_https_proxies() {
        let s = CookieSealer::new(&AppKey::generate());
        let c = s
            .session_cookie(
                &CookieSealer::new_session(1, 0, SESSION_TTL_SECS),
                SESSION_TTL_SECS,
                true,
            )
            .unwrap();
        assert!(c.to_str().unwrap().contains("Secure"));
        let mut h = HeaderMap::new();
        assert!(!client_uses_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(client_uses_https(&h));
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.1;proto=https;by=x"),
        );
        assert!(client_uses_https(&h));
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.1;proto=http"),
        );
        assert!(!client_uses_https(&h));
    }

    #[test]
    fn token_compare() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "ab"));
        assert!(!tokens_equal("", ""));
    }
}
