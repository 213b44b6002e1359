//! lookout-snmp: Lookout's SNMP engine.
//!
//! - [`ber`] and [`pdu`]: a sans-IO BER codec for SNMP v1/v2c messages and all SMI types
//!   (decoding never panics; errors carry the byte offset).
//! - [`usm`]: SNMPv3 USM (engine discovery, key localisation, auth and privacy).
//! - [`client`]: the tokio edge: [`SnmpClient`] owns one UDP socket and a receive task shared
//!   by any number of [`Session`]s (one per agent and credential), which offer `get`,
//!   `get_next`, `get_bulk`, `set`, `walk` and the table helper `walk_columns`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lookout_snmp::SnmpError> {
//! use lookout_snmp::{Oid, SnmpClient};
//! let client = SnmpClient::bind_v4().await?;
//! let cfg = lookout_core::SnmpConfig::default();
//! let s = client.session("127.0.0.1:161".parse().unwrap(), &cfg)?;
//! let sys = s.get(&[Oid::parse("1.3.6.1.2.1.1.5.0").unwrap()]).await?;
//! println!("{}", sys[0]);
//! let rows = s.walk_columns(&[Oid::parse("1.3.6.1.2.1.2.2.1.2").unwrap()]).await?;
//! # let _ = rows; Ok(()) }
//! ```

pub mod ber;
pub mod client;
pub mod error;
pub mod oid;
pub mod pdu;
pub mod usm;
pub mod value;

pub use client::{ClientOptions, ClientStats, Session, SnmpClient, TableRows};
pub use error::{AuthFailureKind, Result, SnmpError};
pub use oid::{Oid, OidParseError};
pub use pdu::Version;
pub use value::{Value, VarBind};
