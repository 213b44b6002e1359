//! Test support shared by Lookout's integration tests (a dev-dependency only, never
//! published): launchers for real servers on 127.0.0.0/8, started and killed by the test.
//!
//! - [`galera`]: a 3-node MariaDB Galera cluster (Debian `mariadb-server` + `galera-4`) on
//!   random loopback ports with its own data dirs, and HAProxy in TCP mode in front of it.
//! - [`logs`]: the log lines of the code under test, captured for assertions.
//! - [`mariadb`]: `LOOKOUT_TEST_DB=mysql` (the CI's MariaDB leg) and a fresh database per
//!   test on the MariaDB at 127.0.0.1:3306, dropped afterwards.
//! - [`snmpd`]: a net-snmp `snmpd` on 127.0.0.1, or on 127.0.0.2 .. 127.0.0.(1+n) as n
//!   devices, and waiting for any SNMP agent to answer.
//! - [`tmpfs`]: a small tmpfs of the test's own (root only) and filling it, for disk-full
//!   tests.
//!
//! Failures panic with the server's log tail: this crate only runs inside tests, where a
//! panic is how a fixture reports that it could not be set up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod galera;
pub mod logs;
pub mod mariadb;
pub mod snmpd;
pub mod tmpfs;
