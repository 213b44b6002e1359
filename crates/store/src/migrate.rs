//! Embedded schema migrations, one SQL file set per dialect under `migrations/`, and how
//! they are split into statements. The runner itself is `Store::migrate`.
//!
//! Bookkeeping: `migrations` (version, name, applied_at) records what was applied;
//! `migrations_lock` holds at most one row (id 1) while a process migrates. The lock is an
//! INSERT on a primary key, so two processes (on two Galera nodes, where `GET_LOCK` would
//! be per node) cannot both hold it: one of the inserts fails with a duplicate key or a
//! certification conflict. A holder that died is detected by the age of its row and the
//! row is taken over after `STALE_LOCK`.
//!
//! MySQL DDL is not transactional, so every statement of a MySQL migration must be safe to
//! run again (`CREATE TABLE IF NOT EXISTS`, indexes declared inside the table); SQLite
//! applies each migration in one transaction.

use std::time::Duration;

use lookout_core::Timestamp;
use serde::{Deserialize, Serialize};

/// Primary key of the single lock row.
pub(crate) const LOCK_ROW: i64 = 1;
/// A lock row older than this is from a process that died while migrating.
pub(crate) const STALE_LOCK: Duration = Duration::from_secs(600);
/// How long a process waits for another one to finish migrating.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(300);

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_health",
        sql: include_str!("../migrations/sqlite/0002_health.sql"),
    },
    Migration {
        version: 3,
        name: "0003_poll_fencing",
        sql: include_str!("../migrations/sqlite/0003_poll_fencing.sql"),
    },
    Migration {
        version: 4,
        name: "0004_ipv4_addresses",
        sql: include_str!("../migrations/sqlite/0004_ipv4_addresses.sql"),
    },
    Migration {
        version: 5,
        name: "0005_links_ipv6",
        sql: include_str!("../migrations/sqlite/0005_links_ipv6.sql"),
    },
    Migration {
        version: 6,
        name: "0006_alerting",
        sql: include_str!("../migrations/sqlite/0006_alerting.sql"),
    },
    Migration {
        version: 7,
        name: "0007_sealed_secrets",
        sql: include_str!("../migrations/sqlite/0007_sealed_secrets.sql"),
    },
    Migration {
        version: 8,
        name: "0008_access",
        sql: include_str!("../migrations/sqlite/0008_access.sql"),
    },
    Migration {
        version: 9,
        name: "0009_uptime_source",
        sql: include_str!("../migrations/sqlite/0009_uptime_source.sql"),
    },
];

pub(crate) const MYSQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/mysql/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_health",
        sql: include_str!("../migrations/mysql/0002_health.sql"),
    },
    Migration {
        version: 3,
        name: "0003_poll_fencing",
        sql: include_str!("../migrations/mysql/0003_poll_fencing.sql"),
    },
    Migration {
        version: 4,
        name: "0004_ipv4_addresses",
        sql: include_str!("../migrations/mysql/0004_ipv4_addresses.sql"),
    },
    Migration {
        version: 5,
        name: "0005_links_ipv6",
        sql: include_str!("../migrations/mysql/0005_links_ipv6.sql"),
    },
    Migration {
        version: 6,
        name: "0006_alerting",
        sql: include_str!("../migrations/mysql/0006_alerting.sql"),
    },
    Migration {
        version: 7,
        name: "0007_sealed_secrets",
        sql: include_str!("../migrations/mysql/0007_sealed_secrets.sql"),
    },
    Migration {
        version: 8,
        name: "0008_access",
        sql: include_str!("../migrations/mysql/0008_access.sql"),
    },
    Migration {
        version: 9,
        name: "0009_uptime_source",
        sql: include_str!("../migrations/mysql/0009_uptime_source.sql"),
    },
];

pub(crate) const SQLITE_BOOKKEEPING: &str = "\
CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS migrations_lock (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, \
acquired_at TEXT NOT NULL);
";

pub(crate) const MYSQL_BOOKKEEPING: &str = "\
CREATE TABLE IF NOT EXISTS migrations (version BIGINT NOT NULL PRIMARY KEY, \
name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS migrations_lock (id BIGINT NOT NULL PRIMARY KEY, \
owner VARCHAR(255) NOT NULL, acquired_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
";

/// A row of `migrations`.
pub(crate) struct AppliedMigration {
    pub(crate) version: i64,
    pub(crate) name: String,
    pub(crate) applied_at: Timestamp,
}

/// One migration known to this build and whether the database has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    /// `None` while pending.
    pub applied_at: Option<Timestamp>,
}

/// Splits a migration file into statements: a statement ends at a line ending in `;`
/// (the files are written that way; no `;` ends a line inside a string literal).
/// Comment-only chunks are dropped.
pub(crate) fn statements(sql: &'static str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in sql.split_inclusive('\n') {
        pos += line.len();
        let t = line.trim();
        if t.ends_with(';') && !t.starts_with("--") {
            push_statement(&mut out, &sql[start..pos]);
            start = pos;
        }
    }
    push_statement(&mut out, &sql[start..]);
    out
}

fn push_statement(out: &mut Vec<&'static str>, chunk: &'static str) {
    let has_code = chunk
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"));
    if has_code {
        out.push(chunk.trim());
    }
}

/// Identifies this process in the lock row, for the message of whoever waits for it.
pub(crate) fn lock_owner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "unknown-host".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host} pid {} #{nanos:09}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements() {
        let s = statements("-- head; comment\nCREATE TABLE a (x INT);\n\n-- c\nCREATE TABLE b (\n  y INT -- z; w\n);\n-- tail\n");
        assert_eq!(
            s,
            vec![
                "-- head; comment\nCREATE TABLE a (x INT);",
                "-- c\nCREATE TABLE b (\n  y INT -- z; w\n);"
            ]
        );
    }

    #[test]
    fn every_migration_file_splits_into_ddl_statements() {
        for m in SQLITE.iter().chain(MYSQL) {
            let st = statements(m.sql);
            assert!(!st.is_empty());
            for s in st {
                // Re-runnable statements only: CREATE ... IF NOT EXISTS, (0003) ALTER TABLE ...
                // IF NOT EXISTS, (0007) ALTER TABLE ... MODIFY, (0006) a seed row through
                // INSERT IGNORE / INSERT OR IGNORE, or (0007 on SQLite, nothing to change)
                // the no-op SELECT 1.
                assert!(
                    s.contains("CREATE ")
                        || s.contains("ALTER TABLE ")
                        || s.contains("INSERT IGNORE ")
                        || s.contains("INSERT OR IGNORE ")
                        || s.ends_with("\nSELECT 1;"),
                    "{}: {s}",
                    m.name
                );
                assert!(s.ends_with(';'));
            }
        }
        assert_eq!(statements(SQLITE_BOOKKEEPING).len(), 2);
        assert_eq!(statements(MYSQL_BOOKKEEPING).len(), 2);
    }

    #[test]
    fn dialects_have_the_same_migrations() {
        let s: Vec<_> = SQLITE.iter().map(|m| (m.version, m.name)).collect();
        let m: Vec<_> = MYSQL.iter().map(|m| (m.version, m.name)).collect();
        assert_eq!(s, m);
    }
}
