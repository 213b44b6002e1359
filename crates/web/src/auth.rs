//! Credentials: the application key (`APP_KEY`, LibreNMS/Laravel format), argon2id password
//! hashes and API tokens. No I/O; the session cookie built on the key lives in `session`.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

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

impl AppKey {
    /// A value that identifies the key without revealing it (64 bits of a one-way derivation),
    /// stored once per installation so an instance with another key can refuse to serve.
    pub fn check_value(&self) -> String {
        hex::encode(&self.derive("key check value")[..8])
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

/// Largest argon2 memory cost accepted from a stored hash (KiB), so that a hash edited in
/// the database cannot make a login allocate gigabytes.
const MAX_VERIFY_M_COST_KIB: u32 = 256 * 1024;

thread_local! {
    /// argon2 working memory, kept per thread between verifications. Allocating and freeing
    /// 19 MiB (64-byte aligned) per login fragments glibc's heap: measured RSS grew to
    /// ~680 MB after 40 sequential verifications in one thread; with this buffer it stays at
    /// one buffer per thread that ever verified.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks `password` against a PHC string made by [`hash_password`] (any argon2 variant and
/// cost). `Ok(false)` on a wrong password, `Err` only when the stored hash cannot be used.
/// CPU-heavy: call it from a blocking context.
pub fn verify_password(password: &str, phc: &str) -> Result<bool> {
    let bad = |e: &dyn fmt::Display| AuthError::ParseHash(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(|e| bad(&e))?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(AuthError::ParseHash("no salt or hash in it".to_string()));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| bad(&e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| bad(&e))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| bad(&e))?;
    if params.m_cost() > MAX_VERIFY_M_COST_KIB {
        return Err(AuthError::ParseHash(format!(
            "memory cost {} KiB is above the {MAX_VERIFY_M_COST_KIB} KiB limit",
            params.m_cost()
        )));
    }
    let n_blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    BLOCKS
        .with_borrow_mut(|blocks| {
            if blocks.len() < n_blocks {
                blocks.resize(n_blocks, argon2::Block::default());
            }
            argon.hash_password_into_with_memory(
                password.as_bytes(),
                salt.as_ref(),
                &mut out,
                &mut blocks[..n_blocks],
            )
        })
        .map_err(|e| bad(&e))?;
    Ok(bool::from(out.ct_eq(expected.as_bytes())))
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
    fn verifies_other_argon2_variants_and_costs() {
        use argon2::password_hash::{CustomizedPasswordHasher, PasswordVerifier};
        // Hashes made with other parameters (e.g. by another tool) still verify, and agree
        // with argon2's own verifier.
        for (alg, m, t) in [
            (Algorithm::Argon2i, 4096, 3),
            (Algorithm::Argon2id, 8192, 1),
            (Algorithm::Argon2d, 1024, 2),
        ] {
            let params = Params::new(m, t, 1, None).unwrap();
            let h = Argon2::new(alg, Version::V0x13, params.clone())
                .hash_password_with_params(b"pw", b"saltsaltsalt", params)
                .unwrap();
            let s = h.to_string();
            assert!(verify_password("pw", &s).unwrap(), "{s}");
            assert!(!verify_password("pW", &s).unwrap(), "{s}");
            assert!(Argon2::default().verify_password(b"pw", &h).is_ok());
        }
        // A hash asking for 1 TiB of memory is refused, not attempted.
        let huge =
            "$argon2id$v=19$m=1073741824,t=2,p=1$c2FsdHNhbHQ$QWxhZGRpbjpvcGVuIHNlc2FtZSBvcGVu";
        assert!(verify_password("x", huge).is_err());
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
