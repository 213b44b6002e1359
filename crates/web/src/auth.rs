//! Credentials: the application key (`APP_KEY`, LibreNMS/Laravel format), argon2id password
//! hashes and API tokens. No I/O; the session cookie built on the key lives in `session`.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Errors of credential handling, named after what failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Callers name the setting (`APP_KEY`) and the fix; this says what is wrong with it.
    #[error("app key {0}")]
    ParseAppKey(&'static str),
    #[error("password hashing failed: {0}")]
    HashPassword(String),
    #[error("stored password hash is malformed: {0}")]
    ParseHash(String),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// The application key shared by every web instance of an installation (`APP_KEY`). Session
/// cookies are sealed with a key derived from it, so any instance sharing `APP_KEY` accepts a
/// session issued by another one (a user keeps the session when an instance dies).
#[derive(Clone, PartialEq, Eq)]
pub struct AppKey([u8; 32]);

impl AppKey {
    /// A fresh random key (from the OS-seeded CSPRNG).
    pub fn generate() -> AppKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        AppKey(bytes)
    }

    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Key material for one purpose, so the same `APP_KEY` never feeds two algorithms the same
    /// bytes (it may also be shared with a LibreNMS install that uses it for AES-CBC).
    pub(crate) fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"lookout app key derivation v1\0");
        h.update(purpose.as_bytes());
        h.update([0u8]);
        h.update(self.0);
        h.finalize().into()
    }
}

impl From<[u8; 32]> for AppKey {
    fn from(bytes: [u8; 32]) -> Self {
        AppKey(bytes)
    }
}

impl FromStr for AppKey {
    type Err = AuthError;

    /// Accepts Laravel's two forms: `base64:<44 chars>` (what LibreNMS writes) and a raw
    /// 32-character string.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bytes = if let Some(b64) = s.strip_prefix("base64:") {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| {
                    AuthError::ParseAppKey("has a part after \"base64:\" that is not base64")
                })?
        } else if s.is_empty() {
            return Err(AuthError::ParseAppKey("is empty"));
        } else {
            s.as_bytes().to_vec()
        };
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuthError::ParseAppKey("is not 32 bytes long"))?;
        Ok(AppKey(arr))
    }
}

impl fmt::Display for AppKey {
    /// `base64:<key>`, the format `.env` stores.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

impl fmt::Debug for AppKey {
    // Never print the secret in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(REDACTED)")
    }
}

/// Hashes a password as an argon2id PHC string (`$argon2id$v=19$...`) with a random salt and
/// the crate's default cost (19 MiB, t=2, p=1: OWASP's recommendation). CPU-heavy: call it
/// from a blocking context.
pub fn hash_password(password: &str) -> Result<String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| AuthError::HashPassword(e.to_string()))?;
    Ok(hash.to_string())
}

/// Checks `password` against a PHC string made by [`hash_password`]. `Ok(false)` on a wrong
/// password, `Err` only when the stored hash cannot be parsed. CPU-heavy.
pub fn verify_password(password: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| AuthError::ParseHash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A PHC hash of a random password, verified against when the user name is unknown so that a
/// login attempt takes as long for an unknown user as for a known one (no user enumeration by
/// timing).
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 16];
        rand::rng().fill_bytes(&mut pw);
        hash_password(&hex::encode(pw)).unwrap_or_default()
    })
}

/// A new API token: `(token, sha256_hex)`. The token (32 random bytes as 64 hex characters) is
/// shown to the user once; the store keeps only its SHA-256 hex digest.
pub fn new_api_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let digest = token_sha256(&token);
    (token, digest)
}

/// SHA-256 hex digest of a token as presented in `X-Auth-Token`, the store's lookup key.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Random URL-safe token (hex) for CSRF.
pub(crate) fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn app_key_round_trips_through_display() {
        let k = AppKey::generate();
        let s = k.to_string();
        assert!(s.starts_with("base64:"));
        assert_eq!(s.parse::<AppKey>().unwrap(), k);
        assert_ne!(AppKey::generate(), k);
        assert_eq!(format!("{k:?}"), "AppKey(REDACTED)");
    }

    #[test]
    fn app_key_parses_librenms_format() {
        // A key as LibreNMS's `php artisan key:generate` writes it.
        let k: AppKey = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            .parse()
            .unwrap();
        assert_eq!(k.as_bytes()[31], 31);
        let raw: AppKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
        assert_eq!(raw.as_bytes()[0], b'0');
    }

    #[test]
    fn app_key_rejects_bad_input() {
        for bad in [
            "",
            "base64:",
            "base64:!!!",
            "base64:AAEC",
            "short",
            "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",
        ] {
            assert!(bad.parse::<AppKey>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let k = AppKey::generate();
        assert_ne!(k.derive("a"), k.derive("b"));
        assert_eq!(k.derive("a"), k.derive("a"));
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("correct horse", &h).unwrap());
        assert!(!verify_password("wrong horse", &h).unwrap());
        assert!(verify_password("x", "not a phc string").is_err());
        assert_ne!(hash_password("correct horse").unwrap(), h, "salt is random");
    }

    #[test]
    fn api_tokens_are_random_and_digested() {
        let (t, d) = new_api_token();
        assert_eq!(t.len(), 64);
        assert_eq!(d.len(), 64);
        assert_eq!(token_sha256(&t), d);
        assert_ne!(t, d);
        assert_ne!(new_api_token().0, t);
        // Known vector: sha256("abc").
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
