//! SNMPv3 with the User-based Security Model (RFC 3412 message format, RFC 3414 USM,
//! RFC 3826 AES, RFC 7860 SHA-2): configuration parsing, key localisation (with a cache),
//! HMAC authentication, DES/AES privacy incl. net-snmp's key extension for AES-192/256, the
//! v3 message codec, and the per-session engine state machine (discovery, time window
//! resynchronisation, REPORT → typed errors).
//!
//! Everything but `UsmSession::request` is sans-IO; that one drives the exchanges through
//! the client's shared socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aes::cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use lookout_core::SnmpV3Config;
use sha2::Digest;

use crate::ber::{tag, DecodeError, DecodeResult, Reader, Writer};
use crate::client::{check_response, Session};
use crate::error::{AuthFailureKind, Result, SnmpError};
use crate::oid::Oid;
use crate::pdu::{decode_pdu, AnyPdu, Pdu, PduType};

/// Authentication protocols (HMAC-MD5-96, HMAC-SHA-96, and RFC 7860's HMAC-SHA-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl AuthProtocol {
    /// Parses the names net-snmp and LibreNMS use (`MD5`, `SHA`, `SHA-224` ... `SHA-512`).
    pub fn parse(s: &str) -> Option<AuthProtocol> {
        let n: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        Some(match n.as_str() {
            "MD5" => AuthProtocol::Md5,
            "SHA" | "SHA1" => AuthProtocol::Sha1,
            "SHA224" => AuthProtocol::Sha224,
            "SHA256" => AuthProtocol::Sha256,
            "SHA384" => AuthProtocol::Sha384,
            "SHA512" => AuthProtocol::Sha512,
            _ => return None,
        })
    }

    /// Length of the truncated HMAC carried in msgAuthenticationParameters.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    /// Digest length (= localised key length).
    pub fn hash_len(self) -> usize {
        match self {
            AuthProtocol::Md5 => 16,
            AuthProtocol::Sha1 => 20,
            AuthProtocol::Sha224 => 28,
            AuthProtocol::Sha256 => 32,
            AuthProtocol::Sha384 => 48,
            AuthProtocol::Sha512 => 64,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        macro_rules! h {
            ($t:ty) => {{
                let mut d = <$t>::new();
                for p in parts {
                    Digest::update(&mut d, p);
                }
                d.finalize().to_vec()
            }};
        }
        match self {
            AuthProtocol::Md5 => h!(md5::Md5),
            AuthProtocol::Sha1 => h!(sha1::Sha1),
            AuthProtocol::Sha224 => h!(sha2::Sha224),
            AuthProtocol::Sha256 => h!(sha2::Sha256),
            AuthProtocol::Sha384 => h!(sha2::Sha384),
            AuthProtocol::Sha512 => h!(sha2::Sha512),
        }
    }

    /// HMAC of `data` truncated to [`AuthProtocol::mac_len`].
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        macro_rules! m {
            ($t:ty) => {{
                match <Hmac<$t> as KeyInit>::new_from_slice(key) {
                    Ok(mut mac) => {
                        Mac::update(&mut mac, data);
                        mac.finalize().into_bytes().to_vec()
                    }
                    // HMAC takes keys of any length; unreachable in practice.
                    Err(_) => Vec::new(),
                }
            }};
        }
        let mut full = match self {
            AuthProtocol::Md5 => m!(md5::Md5),
            AuthProtocol::Sha1 => m!(sha1::Sha1),
            AuthProtocol::Sha224 => m!(sha2::Sha224),
            AuthProtocol::Sha256 => m!(sha2::Sha256),
            AuthProtocol::Sha384 => m!(sha2::Sha384),
            AuthProtocol::Sha512 => m!(sha2::Sha512),
        };
        full.truncate(self.mac_len());
        full
    }

    /// RFC 3414 A.2: the user's key Ku from a password (1 MiB of the repeated password hashed).
    pub fn password_to_key(self, password: &[u8]) -> Vec<u8> {
        macro_rules! ku {
            ($t:ty) => {{
                let mut d = <$t>::new();
                let mut buf = [0u8; 64];
                let mut idx = 0usize;
                let mut count = 0usize;
                while count < 1_048_576 {
                    for b in buf.iter_mut() {
                        *b = password[idx % password.len()];
                        idx += 1;
                    }
                    Digest::update(&mut d, buf);
                    count += 64;
                }
                d.finalize().to_vec()
            }};
        }
        if password.is_empty() {
            return Vec::new();
        }
        match self {
            AuthProtocol::Md5 => ku!(md5::Md5),
            AuthProtocol::Sha1 => ku!(sha1::Sha1),
            AuthProtocol::Sha224 => ku!(sha2::Sha224),
            AuthProtocol::Sha256 => ku!(sha2::Sha256),
            AuthProtocol::Sha384 => ku!(sha2::Sha384),
            AuthProtocol::Sha512 => ku!(sha2::Sha512),
        }
    }

    /// RFC 3414 A.2: localises Ku to an engine: `H(Ku || engineID || Ku)`.
    pub fn localize(self, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
        self.digest(&[ku, engine_id, ku])
    }
}

/// Privacy protocols. `Aes192`/`Aes256` extend short keys as net-snmp does by default
/// (draft-blumenthal-aes-usm-04); the `...Reeder` variants use the other draft's method
/// (net-snmp's `AES-192-C`/`AES-256-C`, as Cisco devices do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    Des,
    Aes128,
    Aes192,
    Aes256,
    Aes192Reeder,
    Aes256Reeder,
}

impl PrivProtocol {
    /// Parses `DES`, `AES`/`AES-128`, `AES-192`, `AES-256`, `AES-192-C`, `AES-256-C`.
    pub fn parse(s: &str) -> Option<PrivProtocol> {
        let n: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        Some(match n.as_str() {
            "DES" => PrivProtocol::Des,
            "AES" | "AES128" => PrivProtocol::Aes128,
            "AES192" => PrivProtocol::Aes192,
            "AES256" => PrivProtocol::Aes256,
            "AES192C" => PrivProtocol::Aes192Reeder,
            "AES256C" => PrivProtocol::Aes256Reeder,
            _ => return None,
        })
    }

    /// Key bytes the cipher needs (DES: 8 of key + 8 of pre-IV).
    pub fn key_len(self) -> usize {
        match self {
            PrivProtocol::Des | PrivProtocol::Aes128 => 16,
            PrivProtocol::Aes192 | PrivProtocol::Aes192Reeder => 24,
            PrivProtocol::Aes256 | PrivProtocol::Aes256Reeder => 32,
        }
    }
}

/// The localised privacy key for `priv_proto`, extended when the auth hash is too short
/// (net-snmp `netsnmp_extend_kul`): Blumenthal appends `H(key so far)`, Reeder appends the
/// localisation of `Ku(key so far)`.
pub fn localized_priv_key(
    auth: AuthProtocol,
    priv_proto: PrivProtocol,
    priv_ku: &[u8],
    engine_id: &[u8],
) -> Vec<u8> {
    let need = priv_proto.key_len();
    let mut key = auth.localize(priv_ku, engine_id);
    while key.len() < need {
        let more = match priv_proto {
            PrivProtocol::Aes192Reeder | PrivProtocol::Aes256Reeder => {
                let ku = auth.password_to_key(&key);
                auth.localize(&ku, engine_id)
            }
            _ => auth.digest(&[&key]),
        };
        let take = (need - key.len()).min(more.len());
        key.extend_from_slice(&more[..take]);
    }
    key.truncate(need);
    key
}

/// Encrypts a scoped PDU; returns the ciphertext and msgPrivacyParameters (the salt).
pub fn encrypt(
    p: PrivProtocol,
    key: &[u8],
    boots: u32,
    time: u32,
    salt_counter: u64,
    mut plain: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let bad = |_| SnmpError::BadConfig("privacy key has the wrong length".into());
    match p {
        PrivProtocol::Des => {
            let mut salt = [0u8; 8];
            salt[..4].copy_from_slice(&boots.to_be_bytes());
            salt[4..].copy_from_slice(&(salt_counter as u32).to_be_bytes());
            let mut iv = [0u8; 8];
            for i in 0..8 {
                iv[i] = key[8 + i] ^ salt[i];
            }
            let len = plain.len();
            plain.resize(len.div_ceil(8) * 8, 0);
            let padded = plain.len();
            cbc::Encryptor::<des::Des>::new_from_slices(&key[..8], &iv)
                .map_err(bad)?
                .encrypt_padded_mut::<cbc::cipher::block_padding::NoPadding>(&mut plain, padded)
                .map_err(|_| SnmpError::BadConfig("DES padding failed".into()))?;
            Ok((plain, salt.to_vec()))
        }
        _ => {
            let salt = salt_counter.to_be_bytes();
            let iv = aes_iv(boots, time, &salt);
            aes_cfb(p, key, &iv, &mut plain, true)?;
            Ok((plain, salt.to_vec()))
        }
    }
}

/// Decrypts an encrypted scoped PDU with the sender's boots/time and privacy parameters.
pub fn decrypt(
    p: PrivProtocol,
    key: &[u8],
    boots: u32,
    time: u32,
    priv_params: &[u8],
    cipher: &[u8],
) -> Result<Vec<u8>> {
    let Ok(salt) = <[u8; 8]>::try_from(priv_params) else {
        return Err(SnmpError::UnexpectedResponse(
            "privacy parameters are not 8 bytes".into(),
        ));
    };
    let mut buf = cipher.to_vec();
    match p {
        PrivProtocol::Des => {
            if !buf.len().is_multiple_of(8) {
                return Err(SnmpError::UnexpectedResponse(
                    "DES ciphertext is not a multiple of 8 bytes".into(),
                ));
            }
            let mut iv = [0u8; 8];
            for i in 0..8 {
                iv[i] = key[8 + i] ^ salt[i];
            }
            cbc::Decryptor::<des::Des>::new_from_slices(&key[..8], &iv)
                .map_err(|_| SnmpError::BadConfig("privacy key has the wrong length".into()))?
                .decrypt_padded_mut::<cbc::cipher::block_padding::NoPadding>(&mut buf)
                .map_err(|_| SnmpError::UnexpectedResponse("DES decryption failed".into()))?;
            Ok(buf)
        }
        _ => {
            let iv = aes_iv(boots, time, &salt);
            aes_cfb(p, key, &iv, &mut buf, false)?;
            Ok(buf)
        }
    }
}

fn aes_iv(boots: u32, time: u32, salt: &[u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(salt);
    iv
}

fn aes_cfb(p: PrivProtocol, key: &[u8], iv: &[u8; 16], buf: &mut [u8], enc: bool) -> Result<()> {
    let bad = |_| SnmpError::BadConfig("privacy key has the wrong length".into());
    macro_rules! run {
        ($t:ty, $n:expr) => {{
            let k = key
                .get(..$n)
                .ok_or_else(|| SnmpError::BadConfig("privacy key too short".into()))?;
            if enc {
                cfb_mode::Encryptor::<$t>::new_from_slices(k, iv)
                    .map_err(bad)?
                    .encrypt(buf);
            } else {
                cfb_mode::Decryptor::<$t>::new_from_slices(k, iv)
                    .map_err(bad)?
                    .decrypt(buf);
            }
        }};
    }
    match p {
        PrivProtocol::Aes128 => run!(aes::Aes128, 16),
        PrivProtocol::Aes192 | PrivProtocol::Aes192Reeder => run!(aes::Aes192, 24),
        PrivProtocol::Aes256 | PrivProtocol::Aes256Reeder => run!(aes::Aes256, 32),
        PrivProtocol::Des => {}
    }
    Ok(())
}

/// Parsed and validated USM settings of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsmParams {
    pub user: String,
    pub auth: Option<(AuthProtocol, String)>,
    pub privacy: Option<(PrivProtocol, String)>,
}

impl UsmParams {
    /// Validates the strings a user typed (net-snmp requires passwords of 8+ characters).
    pub fn from_config(c: &SnmpV3Config) -> Result<UsmParams> {
        let bad = |m: String| Err(SnmpError::BadConfig(m));
        if c.auth_user.is_empty() {
            return bad("SNMPv3 needs a user name".into());
        }
        let level = c.security_level.to_ascii_lowercase();
        let (want_auth, want_priv) = match level.as_str() {
            "noauthnopriv" => (false, false),
            "authnopriv" => (true, false),
            "authpriv" => (true, true),
            _ => {
                return bad(format!(
                    "unknown security level {:?} (noAuthNoPriv, authNoPriv, authPriv)",
                    c.security_level
                ))
            }
        };
        let auth = if want_auth {
            let Some(p) = AuthProtocol::parse(&c.auth_protocol) else {
                return bad(format!(
                    "unknown auth protocol {:?} (MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512)",
                    c.auth_protocol
                ));
            };
            if c.auth_password.len() < 8 {
                return bad("auth password must have at least 8 characters".into());
            }
            Some((p, c.auth_password.clone()))
        } else {
            None
        };
        let privacy = if want_priv {
            let Some(p) = PrivProtocol::parse(&c.priv_protocol) else {
                return bad(format!(
                    "unknown priv protocol {:?} (DES, AES, AES-192, AES-256)",
                    c.priv_protocol
                ));
            };
            if c.priv_password.len() < 8 {
                return bad("priv password must have at least 8 characters".into());
            }
            Some((p, c.priv_password.clone()))
        } else {
            None
        };
        Ok(UsmParams {
            user: c.auth_user.clone(),
            auth,
            privacy,
        })
    }

    fn flags(&self) -> u8 {
        REPORTABLE
            | if self.auth.is_some() { FLAG_AUTH } else { 0 }
            | if self.privacy.is_some() { FLAG_PRIV } else { 0 }
    }
}

const FLAG_AUTH: u8 = 0x01;
const FLAG_PRIV: u8 = 0x02;
const REPORTABLE: u8 = 0x04;
const USM_MODEL: i64 = 3;
const MAX_MSG_SIZE: i64 = 65_507;

/// Cache of password-derived keys shared by a client's sessions. Ku (1 MiB of hashing, a few
/// ms) is cached per protocol and password; localised keys per password and engine ID.
/// A localised (or user) key.
type Key = Arc<[u8]>;
/// (protocol, tagged password, engine ID; empty for Ku).
type CacheKey = (AuthProtocol, String, Vec<u8>);

#[derive(Default)]
pub(crate) struct KeyCache {
    map: Mutex<HashMap<CacheKey, Key>>,
}

impl KeyCache {
    fn get_or(&self, k: CacheKey, make: impl FnOnce() -> Vec<u8>) -> Key {
        if let Some(v) = self.map.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return v;
        }
        // Computed outside the lock: a Ku takes milliseconds and other sessions may need
        // other keys meanwhile; a rare duplicate computation is harmless.
        let v: Key = Arc::from(make());
        if let Ok(mut m) = self.map.lock() {
            m.insert(k, v.clone());
        }
        v
    }

    fn ku(&self, p: AuthProtocol, password: &str) -> Key {
        self.get_or((p, format!("u:{password}"), Vec::new()), || {
            p.password_to_key(password.as_bytes())
        })
    }

    /// Localised auth key and (optionally) privacy key of `params` for `engine_id`.
    fn keys(&self, params: &UsmParams, engine_id: &[u8]) -> (Option<Key>, Option<Key>) {
        let Some((ap, apw)) = &params.auth else {
            return (None, None);
        };
        let ap = *ap;
        let auth_key = self.get_or((ap, format!("a:{apw}"), engine_id.to_vec()), || {
            ap.localize(&self.ku(ap, apw), engine_id)
        });
        let priv_key = params.privacy.as_ref().map(|(pp, ppw)| {
            self.get_or((ap, format!("p:{pp:?}:{ppw}"), engine_id.to_vec()), || {
                localized_priv_key(ap, *pp, &self.ku(ap, ppw), engine_id)
            })
        });
        (Some(auth_key), priv_key)
    }
}

/// msgSecurityParameters of a v3 message (borrowed from the datagram when decoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityParams<'a> {
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub user: &'a [u8],
    pub auth: &'a [u8],
    /// Absolute offset of `auth` in the message (for digest verification).
    pub auth_offset: usize,
    pub privacy: &'a [u8],
}

/// The payload of a v3 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V3Data<'a> {
    /// A plaintext ScopedPDU (the whole SEQUENCE TLV).
    Plain(&'a [u8]),
    /// An encrypted ScopedPDU (the OCTET STRING contents).
    Encrypted(&'a [u8]),
}

/// A decoded SNMPv3 message with its parts still borrowed from the datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Message<'a> {
    pub msg_id: i32,
    pub max_size: i32,
    pub flags: u8,
    pub security_model: i32,
    pub sec: SecurityParams<'a>,
    pub data: V3Data<'a>,
}

fn derr(offset: usize, msg: &'static str) -> DecodeError {
    DecodeError { offset, msg }
}

fn read_u32(r: &mut Reader<'_>, what: &'static str) -> DecodeResult<u32> {
    let at = r.offset();
    let v = r.read_integer(what)?;
    u32::try_from(v).map_err(|_| derr(at, "value out of 0..2^32 range"))
}

/// Decodes the envelope of an SNMPv3 message (not the scoped PDU inside).
pub fn decode_v3(buf: &[u8]) -> DecodeResult<V3Message<'_>> {
    let (version, mut m) = crate::pdu::decode_header(buf)?;
    if version != crate::pdu::Version::V3 {
        return Err(derr(0, "not an SNMPv3 message"));
    }
    let mut h = m.read_sequence("expected msgGlobalData")?;
    let msg_id = h.read_i32("expected msgID")?;
    let max_size = h.read_i32("expected msgMaxSize")?;
    let ft = h.read_expect(tag::OCTET_STRING, "expected msgFlags")?;
    let [flags] = ft.content else {
        return Err(derr(ft.offset, "msgFlags is not one byte"));
    };
    let security_model = h.read_i32("expected msgSecurityModel")?;
    if security_model != USM_MODEL as i32 {
        return Err(derr(h.offset(), "security model is not USM"));
    }
    let sp = m.read_expect(tag::OCTET_STRING, "expected msgSecurityParameters")?;
    let mut s = sp
        .reader()
        .read_sequence("expected UsmSecurityParameters")?;
    let engine_id = s.read_octets("expected msgAuthoritativeEngineID")?;
    let boots = read_u32(&mut s, "expected msgAuthoritativeEngineBoots")?;
    let time = read_u32(&mut s, "expected msgAuthoritativeEngineTime")?;
    let user = s.read_octets("expected msgUserName")?;
    let at = s.read_expect(tag::OCTET_STRING, "expected msgAuthenticationParameters")?;
    let privacy = s.read_octets("expected msgPrivacyParameters")?;
    let start = m.offset();
    let d = m.read_tlv()?;
    let data = match d.tag {
        tag::SEQUENCE => V3Data::Plain(&buf[start..d.offset + d.content.len()]),
        tag::OCTET_STRING => V3Data::Encrypted(d.content),
        _ => return Err(derr(d.start, "expected a scoped PDU")),
    };
    Ok(V3Message {
        msg_id,
        max_size,
        flags: *flags,
        security_model,
        sec: SecurityParams {
            engine_id,
            boots,
            time,
            user,
            auth: at.content,
            auth_offset: at.offset,
            privacy,
        },
        data,
    })
}

/// Decodes a ScopedPDU: (contextEngineID, contextName, PDU). Trailing bytes (cipher padding)
/// are ignored.
pub fn decode_scoped_pdu(buf: &[u8]) -> DecodeResult<(Vec<u8>, Vec<u8>, AnyPdu)> {
    let mut r = Reader::new(buf);
    let mut s = r.read_sequence("expected a ScopedPDU")?;
    let ce = s.read_octets("expected contextEngineID")?.to_vec();
    let cn = s.read_octets("expected contextName")?.to_vec();
    let pdu = decode_pdu(&mut s)?;
    Ok((ce, cn, pdu))
}

/// Encodes a ScopedPDU.
pub fn encode_scoped_pdu(context_engine_id: &[u8], context_name: &[u8], pdu: &Pdu) -> Vec<u8> {
    let mut w = Writer::new();
    let m = w.open(tag::SEQUENCE);
    w.octets(context_engine_id);
    w.octets(context_name);
    pdu.encode(&mut w);
    w.close(m);
    w.into_vec()
}

/// What goes into an outgoing v3 message.
pub struct OutgoingV3<'a> {
    pub msg_id: i32,
    pub flags: u8,
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub user: &'a [u8],
    /// (protocol, localised key) when authenticating.
    pub auth: Option<(AuthProtocol, &'a [u8])>,
    pub privacy_params: &'a [u8],
    /// Plaintext ScopedPDU, or ciphertext when `encrypted`.
    pub data: &'a [u8],
    pub encrypted: bool,
}

/// Encodes (and signs) a v3 message.
pub fn encode_v3(o: &OutgoingV3<'_>) -> DecodeResult<Vec<u8>> {
    let mac_len = o.auth.map(|(p, _)| p.mac_len()).unwrap_or(0);
    let mut sec = Writer::new();
    let sm = sec.open(tag::SEQUENCE);
    sec.octets(o.engine_id);
    sec.integer(i64::from(o.boots));
    sec.integer(i64::from(o.time));
    sec.octets(o.user);
    sec.octets(&vec![0u8; mac_len]);
    sec.octets(o.privacy_params);
    sec.close(sm);

    let mut w = Writer::new();
    let m = w.open(tag::SEQUENCE);
    w.integer(3);
    let h = w.open(tag::SEQUENCE);
    w.integer(i64::from(o.msg_id));
    w.integer(MAX_MSG_SIZE);
    w.octets(&[o.flags]);
    w.integer(USM_MODEL);
    w.close(h);
    w.octets(&sec.buf);
    if o.encrypted {
        w.octets(o.data);
    } else {
        w.raw(o.data);
    }
    w.close(m);
    let mut bytes = w.into_vec();
    if let Some((p, key)) = o.auth {
        let off = decode_v3(&bytes)?.sec.auth_offset;
        let mac = p.hmac(key, &bytes);
        bytes[off..off + mac_len].copy_from_slice(&mac);
    }
    Ok(bytes)
}

/// Checks the HMAC of a received message.
pub fn verify_digest(p: AuthProtocol, key: &[u8], buf: &[u8], msg: &V3Message<'_>) -> bool {
    let n = msg.sec.auth.len();
    if n != p.mac_len() {
        return false;
    }
    let mut copy = buf.to_vec();
    let off = msg.sec.auth_offset;
    copy[off..off + n].fill(0);
    let mac = p.hmac(key, &copy);
    // Constant-time comparison: no early exit on the first differing byte.
    mac.iter()
        .zip(msg.sec.auth)
        .fold(0u8, |a, (x, y)| a | (x ^ y))
        == 0
}

/// usmStats counters a REPORT names, RFC 3414 §5.
const USM_STATS: [u32; 9] = [1, 3, 6, 1, 6, 3, 15, 1, 1];

#[derive(Clone)]
struct EngineState {
    engine_id: Arc<[u8]>,
    boots: u32,
    time: u32,
    at: Instant,
    auth_key: Option<Arc<[u8]>>,
    priv_key: Option<Arc<[u8]>>,
}

impl EngineState {
    fn time_now(&self) -> u32 {
        let elapsed = u32::try_from(self.at.elapsed().as_secs()).unwrap_or(u32::MAX);
        self.time.saturating_add(elapsed)
    }
}

/// Per-session v3 state: the agent's engine (discovered once, shared by clones).
pub(crate) struct UsmSession {
    params: UsmParams,
    state: Mutex<Option<EngineState>>,
    discovery: tokio::sync::Mutex<()>,
    salt: AtomicU64,
}

enum Outcome {
    Pdu(Pdu),
    NotInTimeWindow { boots: u32, time: u32 },
    UnknownEngine,
}

impl UsmSession {
    pub(crate) fn new(params: UsmParams) -> UsmSession {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        UsmSession {
            params,
            state: Mutex::new(None),
            discovery: tokio::sync::Mutex::new(()),
            salt: AtomicU64::new(seed),
        }
    }

    fn snapshot(&self) -> Option<EngineState> {
        self.state.lock().ok().and_then(|s| s.clone())
    }

    fn set_state(&self, st: Option<EngineState>) {
        if let Ok(mut s) = self.state.lock() {
            *s = st;
        }
    }

    /// The engine state, discovering the agent's engine ID first when unknown.
    async fn engine(&self, s: &Session, keys: &KeyCache) -> Result<EngineState> {
        if let Some(st) = self.snapshot() {
            return Ok(st);
        }
        let _g = self.discovery.lock().await;
        if let Some(st) = self.snapshot() {
            return Ok(st);
        }
        let msg_id = s.new_id();
        let scoped = encode_scoped_pdu(b"", b"", &Pdu::get(msg_id, &[]));
        let bytes = encode_v3(&OutgoingV3 {
            msg_id,
            flags: REPORTABLE,
            engine_id: b"",
            boots: 0,
            time: 0,
            user: b"",
            auth: None,
            privacy_params: b"",
            data: &scoped,
            encrypted: false,
        })?;
        let raw = s.exchange_raw(msg_id, &bytes).await?;
        let msg = decode_v3(&raw)?;
        if msg.sec.engine_id.is_empty() {
            return Err(SnmpError::UnexpectedResponse(
                "engine discovery answered without an engine ID".into(),
            ));
        }
        let (ak, pk) = keys.keys(&self.params, msg.sec.engine_id);
        let st = EngineState {
            engine_id: Arc::from(msg.sec.engine_id),
            boots: msg.sec.boots,
            time: msg.sec.time,
            at: Instant::now(),
            auth_key: ak,
            priv_key: pk,
        };
        tracing::debug!(addr = %s.addr(), boots = st.boots, time = st.time, "discovered SNMPv3 engine");
        self.set_state(Some(st.clone()));
        Ok(st)
    }

    /// Sends `pdu` with USM protection and returns the response PDU.
    pub(crate) async fn request(&self, s: &Session, keys: &KeyCache, pdu: Pdu) -> Result<Pdu> {
        let mut resynced = false;
        let mut rediscovered = false;
        loop {
            let st = self.engine(s, keys).await?;
            let msg_id = s.new_id();
            let mut req = pdu.clone();
            req.request_id = msg_id;
            let bytes = self.encode_request(&st, msg_id, &req)?;
            let raw = s.exchange_raw(msg_id, &bytes).await?;
            match self.process_response(s, &st, &raw)? {
                Outcome::Pdu(p) => return check_response(p, &req),
                Outcome::NotInTimeWindow { boots, time } if !resynced => {
                    resynced = true;
                    let mut st = st;
                    st.boots = boots;
                    st.time = time;
                    st.at = Instant::now();
                    self.set_state(Some(st));
                }
                Outcome::UnknownEngine if !rediscovered => {
                    rediscovered = true;
                    self.set_state(None);
                }
                _ => {
                    return Err(SnmpError::AuthFailure {
                        addr: s.addr(),
                        kind: AuthFailureKind::EngineMismatch,
                    })
                }
            }
        }
    }

    fn encode_request(&self, st: &EngineState, msg_id: i32, pdu: &Pdu) -> Result<Vec<u8>> {
        let scoped = encode_scoped_pdu(&st.engine_id, b"", pdu);
        let time = st.time_now();
        let (data, privacy_params, encrypted) = match (&self.params.privacy, &st.priv_key) {
            (Some((pp, _)), Some(key)) => {
                let salt = self.salt.fetch_add(1, Ordering::Relaxed);
                let (c, p) = encrypt(*pp, key, st.boots, time, salt, scoped)?;
                (c, p, true)
            }
            _ => (scoped, Vec::new(), false),
        };
        let auth = match (&self.params.auth, &st.auth_key) {
            (Some((ap, _)), Some(k)) => Some((*ap, &k[..])),
            _ => None,
        };
        Ok(encode_v3(&OutgoingV3 {
            msg_id,
            flags: self.params.flags(),
            engine_id: &st.engine_id,
            boots: st.boots,
            time,
            user: self.params.user.as_bytes(),
            auth,
            privacy_params: &privacy_params,
            data: &data,
            encrypted,
        })?)
    }

    fn process_response(&self, s: &Session, st: &EngineState, raw: &[u8]) -> Result<Outcome> {
        let msg = decode_v3(raw)?;
        let authed = msg.flags & FLAG_AUTH != 0;
        if authed {
            let (Some((ap, _)), Some(key)) = (&self.params.auth, &st.auth_key) else {
                return Err(SnmpError::UnexpectedResponse(
                    "authenticated response to an unauthenticated request".into(),
                ));
            };
            if msg.sec.user != self.params.user.as_bytes() {
                return Err(SnmpError::UnexpectedResponse(
                    "authenticated response for another user".into(),
                ));
            }
            if !verify_digest(*ap, key, raw, &msg) {
                return Err(SnmpError::AuthFailure {
                    addr: s.addr(),
                    kind: AuthFailureKind::BadResponseDigest,
                });
            }
            // An authenticated message tells the agent's current clock (RFC 3414 §3.2.7b).
            if msg.sec.engine_id == &st.engine_id[..]
                && (msg.sec.boots > st.boots
                    || (msg.sec.boots == st.boots && msg.sec.time > st.time_now()))
            {
                let mut n = st.clone();
                n.boots = msg.sec.boots;
                n.time = msg.sec.time;
                n.at = Instant::now();
                self.set_state(Some(n));
            }
        }
        let scoped = match msg.data {
            V3Data::Plain(b) => b.to_vec(),
            V3Data::Encrypted(c) => {
                let (Some((pp, _)), Some(key)) = (&self.params.privacy, &st.priv_key) else {
                    return Err(SnmpError::UnexpectedResponse(
                        "encrypted response to an unencrypted request".into(),
                    ));
                };
                if !authed {
                    return Err(SnmpError::UnexpectedResponse(
                        "encrypted but unauthenticated response".into(),
                    ));
                }
                decrypt(*pp, key, msg.sec.boots, msg.sec.time, msg.sec.privacy, c)?
            }
        };
        let (_, _, pdu) = decode_scoped_pdu(&scoped)?;
        let AnyPdu::Pdu(pdu) = pdu else {
            return Err(SnmpError::UnexpectedResponse(
                "trap where a response was expected".into(),
            ));
        };
        if pdu.pdu_type == PduType::Report {
            return self.report(s, &msg, &pdu);
        }
        // A response must be at the security level we asked for.
        if self.params.auth.is_some() && !authed
            || self.params.privacy.is_some() && !matches!(msg.data, V3Data::Encrypted(_))
        {
            return Err(SnmpError::UnexpectedResponse(
                "response at a lower security level than the request".into(),
            ));
        }
        Ok(Outcome::Pdu(pdu))
    }

    fn report(&self, s: &Session, msg: &V3Message<'_>, pdu: &Pdu) -> Result<Outcome> {
        let usm = Oid::new(&USM_STATS);
        let which = pdu
            .varbinds
            .first()
            .and_then(|vb| vb.oid.suffix_after(&usm).map(|x| x.to_vec()));
        let kind = match which.as_deref() {
            Some([1, 0]) => AuthFailureKind::UnsupportedSecurityLevel,
            Some([2, 0]) => {
                return Ok(Outcome::NotInTimeWindow {
                    boots: msg.sec.boots,
                    time: msg.sec.time,
                })
            }
            Some([3, 0]) => AuthFailureKind::UnknownUser,
            Some([4, 0]) => return Ok(Outcome::UnknownEngine),
            Some([5, 0]) => AuthFailureKind::WrongDigest,
            Some([6, 0]) => AuthFailureKind::DecryptionError,
            _ => {
                let o = pdu
                    .varbinds
                    .first()
                    .map(|v| v.oid.to_string())
                    .unwrap_or_default();
                return Err(SnmpError::UnexpectedResponse(format!("REPORT {o}")));
            }
        };
        Err(SnmpError::AuthFailure {
            addr: s.addr(),
            kind,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const ENGINE: &str = "000000000000000000000002";

    #[test]
    fn rfc3414_a3_1_md5() {
        let ku = AuthProtocol::Md5.password_to_key(b"maplesyrup");
        assert_eq!(ku, hex("9faf3283884e92834ebc9847d8edd963"));
        let kul = AuthProtocol::Md5.localize(&ku, &hex(ENGINE));
        assert_eq!(kul, hex("526f5eed9fcce26f8964c2930787d82b"));
    }

    #[test]
    fn rfc3414_a3_2_sha() {
        let ku = AuthProtocol::Sha1.password_to_key(b"maplesyrup");
        assert_eq!(ku, hex("9fb5cc0381497b3793528939ff788d5d79145211"));
        let kul = AuthProtocol::Sha1.localize(&ku, &hex(ENGINE));
        assert_eq!(kul, hex("6695febc9288e36282235fc7151f128497b38f3f"));
    }

    /// Localised keys net-snmp 5.9.3's snmpd stored in its persistent `usmUser` lines for
    /// `createUser` lines with these passwords (engine 80001f8880f037ca7e9fe3066b00000000).
    #[test]
    fn localized_keys_match_netsnmp() {
        let eid = hex("80001f8880f037ca7e9fe3066b00000000");
        let cases: [(AuthProtocol, &str, &str, PrivProtocol, &str, &str); 5] = [
            (AuthProtocol::Md5, "md5password3", "2b604e9f41fc8e9897455a7885a80bfc",
             PrivProtocol::Aes256, "aes256password3",
             "da10f9f3016111329726f1871c05a2768ccca59b31ecc5a517e05601667f2ff1"),
            (AuthProtocol::Md5, "md5password4", "3588d3aeec994c483d5916c7e3e28088",
             PrivProtocol::Aes256Reeder, "aes256password4",
             "d417a3fe186344d33417f094647e25cc9dcfb03d05b8c6bafd94e46daffa21a1"),
            (AuthProtocol::Sha1, "sha1password5", "1ce706cb92d35d7c2f102cbe9ac104306fd4bcfa",
             PrivProtocol::Aes192Reeder, "aes192password5",
             "72b1f5c7e7873f413b1e072921008f15dde44e3b8130dd84"),
            (AuthProtocol::Sha512, "sha512password",
             "65eb76c95ec32cde064fe0a2c192d0c0aa0cf577318c3805eddbae49a9415a671426f7abbefeb2b3ab3871e01bc5cc4d01cca2fec8b21a3c2e381a56bb9c952a",
             PrivProtocol::Aes256, "aes256password2",
             "957af719eb984691e3df97f476922e3b92ddf1061b867711c4ba20b9d9c42e9f"),
            (AuthProtocol::Sha224, "sha224password",
             "ea1c5808e2b2659ddf849655eadb5b780716d7240a590d68eddc939f",
             PrivProtocol::Aes128, "aespassword2", "2adcfe2b869151c7cb48967710b36f1e"),
        ];
        for (ap, apw, akey, pp, ppw, pkey) in cases {
            let ku = ap.password_to_key(apw.as_bytes());
            assert_eq!(ap.localize(&ku, &eid), hex(akey), "{ap:?} auth key");
            let pku = ap.password_to_key(ppw.as_bytes());
            assert_eq!(
                localized_priv_key(ap, pp, &pku, &eid),
                hex(pkey),
                "{ap:?}/{pp:?} priv key"
            );
        }
    }

    #[test]
    fn key_extension_lengths_and_prefix() {
        let eid = hex(ENGINE);
        let ku = AuthProtocol::Md5.password_to_key(b"maplesyrup");
        let kul = AuthProtocol::Md5.localize(&ku, &eid);
        let b = localized_priv_key(AuthProtocol::Md5, PrivProtocol::Aes256, &ku, &eid);
        assert_eq!(b.len(), 32);
        assert_eq!(&b[..16], &kul[..]);
        // Blumenthal: the next bytes are H(Kul).
        assert_eq!(&b[16..], &AuthProtocol::Md5.digest(&[&kul])[..]);
        let r = localized_priv_key(AuthProtocol::Md5, PrivProtocol::Aes256Reeder, &ku, &eid);
        assert_eq!(&r[..16], &kul[..]);
        assert_ne!(&r[16..], &b[16..]);
        // No extension when the hash is long enough.
        let ku = AuthProtocol::Sha256.password_to_key(b"maplesyrup");
        let k = localized_priv_key(AuthProtocol::Sha256, PrivProtocol::Aes192, &ku, &eid);
        assert_eq!(k, AuthProtocol::Sha256.localize(&ku, &eid)[..24]);
    }

    #[test]
    fn ciphers_round_trip() {
        let key: Vec<u8> = (0u8..32).collect();
        for p in [
            PrivProtocol::Des,
            PrivProtocol::Aes128,
            PrivProtocol::Aes192,
            PrivProtocol::Aes256,
        ] {
            let plain = b"a scoped pdu of some length".to_vec();
            let (c, salt) = encrypt(p, &key[..p.key_len()], 7, 1234, 99, plain.clone()).unwrap();
            assert_ne!(c[..plain.len()], plain[..]);
            let back = decrypt(p, &key[..p.key_len()], 7, 1234, &salt, &c).unwrap();
            assert_eq!(&back[..plain.len()], &plain[..], "{p:?}");
        }
    }

    #[test]
    fn v3_message_round_trip_and_digest() {
        let pdu = Pdu::get(42, &[Oid::from([1, 3, 6, 1, 2, 1, 1, 5, 0])]);
        let scoped = encode_scoped_pdu(b"engine", b"", &pdu);
        let key = vec![7u8; 32];
        let bytes = encode_v3(&OutgoingV3 {
            msg_id: 42,
            flags: 0x05,
            engine_id: b"engine",
            boots: 3,
            time: 77,
            user: b"bob",
            auth: Some((AuthProtocol::Sha256, &key)),
            privacy_params: b"",
            data: &scoped,
            encrypted: false,
        })
        .unwrap();
        let m = decode_v3(&bytes).unwrap();
        assert_eq!((m.msg_id, m.flags, m.sec.boots, m.sec.time), (42, 5, 3, 77));
        assert_eq!(m.sec.user, b"bob");
        assert!(verify_digest(AuthProtocol::Sha256, &key, &bytes, &m));
        assert!(!verify_digest(AuthProtocol::Sha256, &[8u8; 32], &bytes, &m));
        let V3Data::Plain(sp) = m.data else { panic!() };
        let (ce, _, p) = decode_scoped_pdu(sp).unwrap();
        assert_eq!(ce, b"engine");
        assert_eq!(p, AnyPdu::Pdu(pdu));
        assert_eq!(crate::pdu::peek_message_id(&bytes).unwrap().1, 42);
        for n in 0..bytes.len() {
            assert!(decode_v3(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn config_validation() {
        let mut c = SnmpV3Config {
            security_level: "authPriv".into(),
            auth_user: "u".into(),
            auth_protocol: "sha-256".into(),
            auth_password: "12345678".into(),
            priv_protocol: "AES256".into(),
            priv_password: "abcdefgh".into(),
        };
        let p = UsmParams::from_config(&c).unwrap();
        assert_eq!(p.auth.as_ref().unwrap().0, AuthProtocol::Sha256);
        assert_eq!(p.privacy.as_ref().unwrap().0, PrivProtocol::Aes256);
        assert_eq!(p.flags(), 0x07);
        c.auth_password = "short".into();
        assert!(matches!(
            UsmParams::from_config(&c),
            Err(SnmpError::BadConfig(_))
        ));
        c.auth_password = "12345678".into();
        c.priv_protocol = "3DES".into();
        assert!(matches!(
            UsmParams::from_config(&c),
            Err(SnmpError::BadConfig(_))
        ));
        c.security_level = "noAuthNoPriv".into();
        let p = UsmParams::from_config(&c).unwrap();
        assert!(p.auth.is_none() && p.privacy.is_none());
        assert_eq!(p.flags(), 0x04);
        c.security_level = "bogus".into();
        assert!(UsmParams::from_config(&c).is_err());
    }
}
