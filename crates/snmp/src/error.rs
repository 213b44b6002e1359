//! The engine's error type, [`SnmpError`], shaped so that a poller can tell "device down"
//! (`Timeout`) from "wrong credentials" (`AuthFailure`) from "agent bug" (`Decode`,
//! `NonIncreasingOid`, `UnexpectedResponse`) from "our configuration" (`BadConfig`).

use std::net::SocketAddr;

use crate::ber::DecodeError;
use crate::oid::Oid;
use crate::pdu::error_status_name;

/// Why an SNMPv3 exchange was refused (from the agent's REPORT, RFC 3414 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailureKind {
    /// usmStatsUnknownUserNames: the agent has no such user.
    UnknownUser,
    /// usmStatsWrongDigests: wrong authentication password or protocol.
    WrongDigest,
    /// usmStatsDecryptionErrors: wrong privacy password or protocol.
    DecryptionError,
    /// usmStatsUnsupportedSecLevels: the user cannot be used at this security level.
    UnsupportedSecurityLevel,
    /// usmStatsUnknownEngineIDs after discovery, or usmStatsNotInTimeWindows after resync.
    EngineMismatch,
    /// The response's own digest did not verify (reply forged, or keys wrong on our side).
    BadResponseDigest,
}

impl std::fmt::Display for AuthFailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailureKind::UnknownUser => "unknown user name",
            AuthFailureKind::WrongDigest => "wrong digest (authentication password or protocol)",
            AuthFailureKind::DecryptionError => "decryption error (privacy password or protocol)",
            AuthFailureKind::UnsupportedSecurityLevel => "unsupported security level for user",
            AuthFailureKind::EngineMismatch => "engine id or time window not accepted",
            AuthFailureKind::BadResponseDigest => "response failed authentication",
        })
    }
}

/// Errors of the SNMP engine.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    /// No (valid) response after all retries: device down, unreachable, or (v1/v2c) wrong community.
    #[error("request to {addr} timed out after {attempts} attempts")]
    Timeout { addr: SocketAddr, attempts: u32 },
    /// The agent rejected our SNMPv3 credentials.
    #[error("authentication failed at {addr}: {kind}")]
    AuthFailure {
        addr: SocketAddr,
        kind: AuthFailureKind,
    },
    /// The response could not be decoded (agent bug or garbage).
    #[error("decoding a response failed at byte {offset}: {msg}")]
    Decode { offset: usize, msg: String },
    /// The agent answered with a non-zero error-status.
    #[error("agent returned error-status {status} ({}) at index {index}", error_status_name(*status))]
    ErrorStatus { status: i32, index: i32 },
    /// A walk got an OID that is not greater than the previous one (agent bug; loop avoided).
    #[error("walk got non-increasing OID {next} after {previous}")]
    NonIncreasingOid { previous: Oid, next: Oid },
    /// The response did not fit the request (wrong PDU type, varbind count, report OID ...).
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
    /// The operation is not possible with this version or configuration.
    #[error("bad configuration: {0}")]
    BadConfig(String),
    /// Socket error.
    #[error("socket i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The client's receive task is gone (client dropped or runtime shutting down).
    #[error("snmp client is closed")]
    Closed,
}

impl SnmpError {
    /// True for errors that mean "no answer" rather than "a wrong answer".
    pub fn is_timeout(&self) -> bool {
        matches!(self, SnmpError::Timeout { .. })
    }

    /// True for SNMPv3 credential problems.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, SnmpError::AuthFailure { .. })
    }
}

impl From<DecodeError> for SnmpError {
    fn from(e: DecodeError) -> Self {
        SnmpError::Decode {
            offset: e.offset,
            msg: e.msg.to_string(),
        }
    }
}

pub type Result<T, E = SnmpError> = std::result::Result<T, E>;
