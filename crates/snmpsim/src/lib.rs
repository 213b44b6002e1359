//! lookout-snmpsim: a fast SNMP agent simulator for tests and benchmarks (not a production
//! agent).
//!
//! - [`recording`]: snmpsim `.snmprec` recordings (plain or `.bz2`) parsed into a sorted,
//!   pre-encoded table per recording, shared by every device that serves it; counters,
//!   sysUpTime and snmpsim's `numeric` variations advance with time unless frozen.
//! - [`synthetic`]: a generated IF-MIB device (system, ifTable, ifXTable with N interfaces).
//! - [`agent`]: the sans-IO agent: GET / GETNEXT / GETBULK / SET over v1, v2c and v3 (USM
//!   noAuthNoPriv, authNoPriv, authPriv with engine discovery and REPORTs), devices chosen
//!   by port, community or v3 context.
//! - [`server`]: the UDP edge: thousands of sockets on a few blocking threads (epoll,
//!   recvmmsg/sendmmsg), started by [`Simulator::start`].
//!
//! ```no_run
//! use lookout_snmpsim::{Config, Simulator};
//! let sim = Simulator::start(Config {
//!     synthetic_ifmib: Some(48),
//!     devices: Some(100),
//!     ..Config::default()
//! })?;
//! println!("first device at {}", sim.addr(0));
//! # Ok::<(), lookout_snmpsim::SimError>(())
//! ```

pub mod agent;
pub mod recording;
pub mod server;
pub mod synthetic;

pub use agent::{Stats, V3User};
pub use recording::{Clock, ParseStats, Recording};
pub use server::{find_recordings, Config, SimHandle, Simulator};

/// Errors of starting a simulator (serving never fails: bad datagrams are counted).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("{0}")]
    Config(String),
}
