//! SNMPv3 User-based Security Model (RFC 3414): configuration parsing, engine discovery,
//! key localisation, authentication and privacy. (Being built: phase 2.)

use std::sync::Mutex;

use lookout_core::SnmpV3Config;

use crate::client::Session;
use crate::error::{Result, SnmpError};
use crate::pdu::Pdu;

/// Authentication protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// Privacy protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    Des,
    Aes128,
    Aes192,
    Aes256,
}

/// Parsed and validated USM settings of a session.
#[derive(Clone, Debug)]
pub struct UsmParams {
    pub user: String,
    pub auth: Option<(AuthProtocol, String)>,
    pub privacy: Option<(PrivProtocol, String)>,
}

impl UsmParams {
    pub fn from_config(_c: &SnmpV3Config) -> Result<UsmParams> {
        Err(SnmpError::BadConfig("SNMPv3 is not supported yet".into()))
    }
}

/// Cache of localised keys.
#[derive(Default)]
pub(crate) struct KeyCache {
    _m: Mutex<()>,
}

/// Per-session v3 state.
pub(crate) struct UsmSession {
    _params: UsmParams,
}

impl UsmSession {
    pub(crate) fn new(params: UsmParams) -> UsmSession {
        UsmSession { _params: params }
    }

    pub(crate) async fn request(&self, _s: &Session, _k: &KeyCache, _pdu: Pdu) -> Result<Pdu> {
        Err(SnmpError::BadConfig("SNMPv3 is not supported yet".into()))
    }
}
