//! Secrets at rest (issue #16): SNMP communities and SNMPv3 auth/priv passwords are stored
//! sealed with a key derived from `APP_KEY`, so that a copy of the database file (or a
//! `SELECT` on it) does not give them away.
//!
//! Format of a stored value: `enc:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`.
//! - AES-256-GCM (RustCrypto `aes-gcm`, audited by NCC Group; the same crate already seals
//!   the web's session cookies, so no new cipher code enters the build), a fresh random
//!   96-bit nonce per value. The nonce budget of random GCM nonces (2^32 values per key)
//!   is far beyond what a device table sees: values are sealed when a device is added and
//!   when the key is rotated.
//! - The key is HKDF-SHA256 of the `APP_KEY` bytes with a salt and info of its own, so the
//!   same `APP_KEY` never feeds two algorithms (the web derives its cookie key separately).
//! - The key id (8 hex digits, also derived by HKDF, not the key) says which `APP_KEY` sealed
//!   a value: a wrong `APP_KEY` is reported as such rather than as a corrupt value, and key
//!   rotation knows what is left to re-seal.
//! - The associated data is the column and the device's hostname: a sealed value copied to
//!   another column or another device's row (by someone with write access to the database
//!   but not the key) does not open, so it cannot make the poller send one device's
//!   community to another host.
//!
//! A value without the prefix is plaintext (a database from before this, or one imported
//! from such a dump): it is read as is, and `Store::migrate` seals it in place. Empty values
//! stay empty (nothing to hide, and "no password" stays visible).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

/// Prefix of a sealed value, with the format version.
const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// The columns of `devices` that hold secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Column {
    Community,
    AuthPass,
    CryptoPass,
}

impl Column {
    pub(crate) const ALL: [Column; 3] = [Column::Community, Column::AuthPass, Column::CryptoPass];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Column::Community => "community",
            Column::AuthPass => "authpass",
            Column::CryptoPass => "cryptopass",
        }
    }
}

/// A device's secret columns as stored (`Column::ALL` order).
#[derive(Clone, Debug)]
pub(crate) struct StoredSecrets {
    pub(crate) device_id: i64,
    pub(crate) hostname: String,
    pub(crate) values: [String; 3],
}

/// One stored value to replace, only while `old` is still what is stored.
#[derive(Clone, Debug)]
pub(crate) struct SecretUpdate {
    pub(crate) device_id: i64,
    pub(crate) column: Column,
    pub(crate) old: String,
    pub(crate) new: String,
}

/// Why a stored secret could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Sealed with a key none of ours has (another `APP_KEY`).
    UnknownKey(String),
    /// Our key, but it does not open: changed, truncated, or moved to another row/column.
    Corrupt,
    /// Sealed, and this store was given no key at all.
    NoKey,
}

/// The key that seals SNMP secrets, derived from an `APP_KEY`. Its `Debug` shows the key id
/// only.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// Derives the key from the bytes of an `APP_KEY` (any length; `APP_KEY` is 32 random
    /// bytes).
    pub fn from_app_key(app_key: &[u8]) -> SecretKey {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"lookout store secrets v1"), app_key);
        let mut key = [0u8; 32];
        let mut id = [0u8; 4];
        // Both lengths are far below HKDF-SHA256's limit (255 * 32 bytes): cannot fail.
        let _ = hk.expand(b"snmp credentials aes-256-gcm", &mut key);
        let _ = hk.expand(b"snmp credentials key id", &mut id);
        SecretKey {
            cipher: Aes256Gcm::new(&key.into()),
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// 8 hex digits naming this key in sealed values (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(column: Column, hostname: &str) -> Vec<u8> {
        format!("devices.{}\0{hostname}", column.name()).into_bytes()
    }

    /// Seals a non-empty value; empty stays empty.
    pub(crate) fn seal(&self, column: Column, hostname: &str, plain: &str) -> String {
        if plain.is_empty() {
            return String::new();
        }
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = Self::aad(column, hostname);
        let sealed = self.cipher.encrypt(
            &nonce,
            Payload {
                msg: plain.as_bytes(),
                aad: &aad,
            },
        );
        let mut bytes = nonce.to_vec();
        match sealed {
            Ok(ct) => bytes.extend_from_slice(&ct),
            // Only for messages over 64 GiB: unreachable for a password.
            Err(_) => return String::new(),
        }
        format!("{PREFIX}{}:{}", self.id, B64.encode(bytes))
    }

    fn open(&self, column: Column, hostname: &str, body: &[u8]) -> Result<String, OpenError> {
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let aad = Self::aad(column, hostname);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| OpenError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| OpenError::Corrupt)
    }
}

/// A stored value that is sealed: its key id and its decoded body (nonce ‖ ciphertext).
struct Sealed<'a> {
    key_id: &'a str,
    body: Vec<u8>,
}

/// `Some` when `text` has the sealed format (prefix, 8 hex digits, base64 of at least a
/// nonce and a tag): a plaintext that merely starts with `enc:` is not taken for one.
fn parse(text: &str) -> Option<Sealed<'_>> {
    let rest = text.strip_prefix(PREFIX)?;
    let (key_id, b64) = rest.split_once(':')?;
    if key_id.len() != 8 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let body = B64.decode(b64).ok()?;
    (body.len() >= NONCE_LEN + TAG_LEN).then_some(Sealed { key_id, body })
}

/// Whether a stored value is sealed (as opposed to plaintext or empty).
pub(crate) fn is_sealed(text: &str) -> bool {
    parse(text).is_some()
}

/// The key id of a sealed value.
pub(crate) fn key_id(text: &str) -> Option<&str> {
    parse(text).map(|s| s.key_id)
}

/// The keys of a store: the current one seals, the previous ones (during a key rotation)
/// still open what they sealed.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) current: SecretKey,
    pub(crate) previous: Vec<SecretKey>,
}

impl Keys {
    /// Reads a stored value: plaintext as is, sealed opened with the key it names.
    pub(crate) fn open(
        keys: Option<&Keys>,
        column: Column,
        hostname: &str,
        text: &str,
    ) -> Result<String, OpenError> {
        let Some(sealed) = parse(text) else {
            return Ok(text.to_string());
        };
        let Some(keys) = keys else {
            return Err(OpenError::NoKey);
        };
        let key = std::iter::once(&keys.current)
            .chain(&keys.previous)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| OpenError::UnknownKey(sealed.key_id.to_string()))?;
        key.open(column, hostname, &sealed.body)
    }

    /// What a stored value should become: `None` when it is fine as is (empty, or sealed
    /// with the current key), else the value sealed with the current key (plaintext, or
    /// sealed with a previous key).
    pub(crate) fn reseal(
        &self,
        column: Column,
        hostname: &str,
        text: &str,
    ) -> Result<Option<String>, OpenError> {
        if text.is_empty() || key_id(text) == Some(self.current.id()) {
            return Ok(None);
        }
        let plain = Keys::open(Some(self), column, hostname, text)?;
        Ok(Some(self.current.seal(column, hostname, &plain)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(app_key: &[u8]) -> Keys {
        Keys {
            current: SecretKey::from_app_key(app_key),
            previous: Vec::new(),
        }
    }

    #[test]
    fn seals_and_opens() {
        let k = keys(&[7; 32]);
        let s = k.current.seal(Column::Community, "r1", "s3cret");
        assert!(s.starts_with("enc:v1:"), "{s}");
        assert!(!s.contains("s3cret"));
        assert!(is_sealed(&s));
        assert_eq!(key_id(&s), Some(k.current.id()));
        assert_eq!(
            Keys::open(Some(&k), Column::Community, "r1", &s).unwrap(),
            "s3cret"
        );
        // A fresh nonce each time.
        assert_ne!(s, k.current.seal(Column::Community, "r1", "s3cret"));
        assert_eq!(k.current.seal(Column::Community, "r1", ""), "");
    }

    #[test]
    fn bound_to_column_and_device() {
        let k = keys(&[7; 32]);
        let s = k.current.seal(Column::AuthPass, "r1", "pw");
        assert_eq!(
            Keys::open(Some(&k), Column::CryptoPass, "r1", &s),
            Err(OpenError::Corrupt)
        );
        assert_eq!(
            Keys::open(Some(&k), Column::AuthPass, "r2", &s),
            Err(OpenError::Corrupt)
        );
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            Keys::open(Some(&k), Column::AuthPass, "r1", &tampered),
            Err(OpenError::Corrupt)
        );
    }

    #[test]
    fn another_app_key_is_named_as_such() {
        let a = keys(&[1; 32]);
        let b = keys(&[2; 32]);
        assert_ne!(a.current.id(), b.current.id());
        let s = a.current.seal(Column::Community, "r1", "x");
        assert_eq!(
            Keys::open(Some(&b), Column::Community, "r1", &s),
            Err(OpenError::UnknownKey(a.current.id().to_string()))
        );
        assert_eq!(
            Keys::open(None, Column::Community, "r1", &s),
            Err(OpenError::NoKey)
        );
        // b with a as previous key opens it, and reseals it under b.
        let ab = Keys {
            current: b.current.clone(),
            previous: vec![a.current.clone()],
        };
        let re = ab.reseal(Column::Community, "r1", &s).unwrap().unwrap();
        assert_eq!(key_id(&re), Some(b.current.id()));
        assert_eq!(ab.reseal(Column::Community, "r1", &re).unwrap(), None);
        assert_eq!(
            Keys::open(Some(&b), Column::Community, "r1", &re).unwrap(),
            "x"
        );
    }

    #[test]
    fn plaintext_passes_and_is_resealed() {
        let k = keys(&[3; 32]);
        for plain in ["public", "enc:v1:not-a-key:abc", "enc:v1:0123abcd:%%%"] {
            assert!(!is_sealed(plain), "{plain}");
            assert_eq!(
                Keys::open(Some(&k), Column::Community, "h", plain).unwrap(),
                plain
            );
            let re = k.reseal(Column::Community, "h", plain).unwrap().unwrap();
            assert_eq!(
                Keys::open(Some(&k), Column::Community, "h", &re).unwrap(),
                plain
            );
        }
        assert_eq!(k.reseal(Column::Community, "h", "").unwrap(), None);
    }

    #[test]
    fn derivation_is_stable() {
        // The key id of a fixed APP_KEY must never change: stored values name it.
        let k = SecretKey::from_app_key(&[0; 32]);
        assert_eq!(k.id(), "39f90d51");
        assert_eq!(k.id(), SecretKey::from_app_key(&[0; 32]).id());
        assert_eq!(format!("{k:?}"), format!("SecretKey({})", k.id()));
    }
}
