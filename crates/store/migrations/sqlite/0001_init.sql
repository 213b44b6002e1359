-- Lookout schema v1 (sqlite). Names follow LibreNMS. Keep in step with ../mysql/0001_init.sql:
-- tests/schema.rs compares the table and column names of both dialects.
-- Counters and ifSpeed are u64 stored as INTEGER in two's complement (a value above 2^63
-- reads as negative in raw SQL; the store maps it back to u64 exactly). Timestamps are UTC
-- TEXT 'YYYY-MM-DD HH:MM:SS.ffffff', fixed width so that text order is time order.

CREATE TABLE IF NOT EXISTS devices (
    device_id INTEGER PRIMARY KEY AUTOINCREMENT,
    hostname TEXT NOT NULL,
    sysName TEXT NULL,
    sysDescr TEXT NULL,
    sysObjectID TEXT NULL,
    sysContact TEXT NULL,
    location TEXT NULL,
    os TEXT NOT NULL DEFAULT 'generic',
    hardware TEXT NULL,
    version TEXT NULL,
    serial TEXT NULL,
    uptime BIGINT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    status_reason TEXT NOT NULL DEFAULT '',
    last_polled TEXT NULL,
    last_polled_timetaken REAL NULL,
    last_discovered TEXT NULL,
    poller_group INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    snmpver TEXT NOT NULL DEFAULT 'v2c',
    port INTEGER NOT NULL DEFAULT 161,
    community TEXT NULL,
    transport TEXT NOT NULL DEFAULT 'udp',
    -- seconds, as in LibreNMS (fractions allowed: Lookout keeps milliseconds)
    timeout REAL NULL,
    retries INTEGER NULL,
    authlevel TEXT NULL,
    authname TEXT NULL,
    authpass TEXT NULL,
    authalgo TEXT NULL,
    cryptopass TEXT NULL,
    cryptoalgo TEXT NULL,
    inserted TEXT NOT NULL,
    UNIQUE (hostname)
);

CREATE TABLE IF NOT EXISTS ports (
    port_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    ifIndex BIGINT NOT NULL,
    ifName TEXT NULL,
    ifDescr TEXT NULL,
    ifAlias TEXT NULL,
    ifType TEXT NULL,
    ifMtu BIGINT NULL,
    ifSpeed INTEGER NULL,
    ifPhysAddress TEXT NULL,
    ifAdminStatus TEXT NULL,
    ifOperStatus TEXT NULL,
    -- Lookout: 1 when the octet/packet counters came from the 64-bit ifHC* objects
    ifCountersHC INTEGER NOT NULL DEFAULT 0,
    ifInOctets INTEGER NULL,
    ifInOctets_prev INTEGER NULL,
    ifOutOctets INTEGER NULL,
    ifOutOctets_prev INTEGER NULL,
    ifInUcastPkts INTEGER NULL,
    ifInUcastPkts_prev INTEGER NULL,
    ifOutUcastPkts INTEGER NULL,
    ifOutUcastPkts_prev INTEGER NULL,
    ifInNUcastPkts INTEGER NULL,
    ifInNUcastPkts_prev INTEGER NULL,
    ifOutNUcastPkts INTEGER NULL,
    ifOutNUcastPkts_prev INTEGER NULL,
    ifInErrors INTEGER NULL,
    ifInErrors_prev INTEGER NULL,
    ifOutErrors INTEGER NULL,
    ifOutErrors_prev INTEGER NULL,
    ifInDiscards INTEGER NULL,
    ifInDiscards_prev INTEGER NULL,
    ifOutDiscards INTEGER NULL,
    ifOutDiscards_prev INTEGER NULL,
    ifInUnknownProtos INTEGER NULL,
    ifInUnknownProtos_prev INTEGER NULL,
    ifInBroadcastPkts INTEGER NULL,
    ifInBroadcastPkts_prev INTEGER NULL,
    ifOutBroadcastPkts INTEGER NULL,
    ifOutBroadcastPkts_prev INTEGER NULL,
    ifInMulticastPkts INTEGER NULL,
    ifInMulticastPkts_prev INTEGER NULL,
    ifOutMulticastPkts INTEGER NULL,
    ifOutMulticastPkts_prev INTEGER NULL,
    ifInOctets_rate REAL NULL,
    ifOutOctets_rate REAL NULL,
    ifInUcastPkts_rate REAL NULL,
    ifOutUcastPkts_rate REAL NULL,
    ifInErrors_rate REAL NULL,
    ifOutErrors_rate REAL NULL,
    poll_time TEXT NULL,
    poll_prev TEXT NULL,
    poll_period REAL NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device_id, ifIndex),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS eventlog (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NULL,
    datetime TEXT NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,
    -- LibreNMS: 1 ok, 2 info, 3 notice, 4 warning, 5 error; Lookout adds 6 critical
    severity INTEGER NOT NULL,
    reference BIGINT NULL,
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS eventlog_device_datetime ON eventlog (device_id, datetime);

CREATE INDEX IF NOT EXISTS eventlog_datetime ON eventlog (datetime);

CREATE TABLE IF NOT EXISTS users (
    user_id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    level INTEGER NOT NULL DEFAULT 1,
    UNIQUE (username)
);

CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    token_hash TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    UNIQUE (token_hash),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE
);
