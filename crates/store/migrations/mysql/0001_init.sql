-- Lookout schema v1 (mysql). Names follow LibreNMS. Keep in step with ../sqlite/0001_init.sql:
-- tests/schema.rs compares the table and column names of both dialects.
-- Galera-safe: InnoDB, a primary key on every table, no reliance on contiguous ids.
-- Counters are BIGINT UNSIGNED so that all of u64 survives. Timestamps are UTC DATETIME(6).

CREATE TABLE IF NOT EXISTS devices (
    device_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hostname VARCHAR(128) NOT NULL,
    sysName VARCHAR(128) NULL,
    sysDescr TEXT NULL,
    sysObjectID VARCHAR(128) NULL,
    sysContact TEXT NULL,
    location TEXT NULL,
    os VARCHAR(32) NOT NULL DEFAULT 'generic',
    hardware VARCHAR(128) NULL,
    version VARCHAR(128) NULL,
    serial VARCHAR(128) NULL,
    uptime BIGINT NULL,
    status TINYINT(1) NOT NULL DEFAULT 0,
    status_reason VARCHAR(255) NOT NULL DEFAULT '',
    last_polled DATETIME(6) NULL,
    last_polled_timetaken DOUBLE NULL,
    last_discovered DATETIME(6) NULL,
    poller_group INT NOT NULL DEFAULT 0,
    disabled TINYINT(1) NOT NULL DEFAULT 0,
    snmpver VARCHAR(4) NOT NULL DEFAULT 'v2c',
    port INT NOT NULL DEFAULT 161,
    community VARCHAR(255) NULL,
    transport VARCHAR(16) NOT NULL DEFAULT 'udp',
    -- seconds, as in LibreNMS (fractions allowed: Lookout keeps milliseconds)
    timeout DOUBLE NULL,
    retries INT NULL,
    authlevel VARCHAR(16) NULL,
    authname VARCHAR(64) NULL,
    authpass VARCHAR(64) NULL,
    authalgo VARCHAR(16) NULL,
    cryptopass VARCHAR(64) NULL,
    cryptoalgo VARCHAR(16) NULL,
    inserted DATETIME(6) NOT NULL,
    UNIQUE (hostname)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS ports (
    port_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    ifIndex BIGINT NOT NULL,
    ifName VARCHAR(255) NULL,
    ifDescr VARCHAR(255) NULL,
    ifAlias VARCHAR(255) NULL,
    ifType VARCHAR(64) NULL,
    ifMtu BIGINT NULL,
    ifSpeed BIGINT UNSIGNED NULL,
    ifPhysAddress VARCHAR(64) NULL,
    ifAdminStatus VARCHAR(16) NULL,
    ifOperStatus VARCHAR(16) NULL,
    -- Lookout: 1 when the octet/packet counters came from the 64-bit ifHC* objects
    ifCountersHC TINYINT(1) NOT NULL DEFAULT 0,
    ifInOctets BIGINT UNSIGNED NULL,
    ifInOctets_prev BIGINT UNSIGNED NULL,
    ifOutOctets BIGINT UNSIGNED NULL,
    ifOutOctets_prev BIGINT UNSIGNED NULL,
    ifInUcastPkts BIGINT UNSIGNED NULL,
    ifInUcastPkts_prev BIGINT UNSIGNED NULL,
    ifOutUcastPkts BIGINT UNSIGNED NULL,
    ifOutUcastPkts_prev BIGINT UNSIGNED NULL,
    ifInNUcastPkts BIGINT UNSIGNED NULL,
    ifInNUcastPkts_prev BIGINT UNSIGNED NULL,
    ifOutNUcastPkts BIGINT UNSIGNED NULL,
    ifOutNUcastPkts_prev BIGINT UNSIGNED NULL,
    ifInErrors BIGINT UNSIGNED NULL,
    ifInErrors_prev BIGINT UNSIGNED NULL,
    ifOutErrors BIGINT UNSIGNED NULL,
    ifOutErrors_prev BIGINT UNSIGNED NULL,
    ifInDiscards BIGINT UNSIGNED NULL,
    ifInDiscards_prev BIGINT UNSIGNED NULL,
    ifOutDiscards BIGINT UNSIGNED NULL,
    ifOutDiscards_prev BIGINT UNSIGNED NULL,
    ifInUnknownProtos BIGINT UNSIGNED NULL,
    ifInUnknownProtos_prev BIGINT UNSIGNED NULL,
    ifInBroadcastPkts BIGINT UNSIGNED NULL,
    ifInBroadcastPkts_prev BIGINT UNSIGNED NULL,
    ifOutBroadcastPkts BIGINT UNSIGNED NULL,
    ifOutBroadcastPkts_prev BIGINT UNSIGNED NULL,
    ifInMulticastPkts BIGINT UNSIGNED NULL,
    ifInMulticastPkts_prev BIGINT UNSIGNED NULL,
    ifOutMulticastPkts BIGINT UNSIGNED NULL,
    ifOutMulticastPkts_prev BIGINT UNSIGNED NULL,
    ifInOctets_rate DOUBLE NULL,
    ifOutOctets_rate DOUBLE NULL,
    ifInUcastPkts_rate DOUBLE NULL,
    ifOutUcastPkts_rate DOUBLE NULL,
    ifInErrors_rate DOUBLE NULL,
    ifOutErrors_rate DOUBLE NULL,
    poll_time DATETIME(6) NULL,
    poll_prev DATETIME(6) NULL,
    poll_period DOUBLE NULL,
    deleted TINYINT(1) NOT NULL DEFAULT 0,
    UNIQUE (device_id, ifIndex),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS eventlog (
    event_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NULL,
    datetime DATETIME(6) NOT NULL,
    type VARCHAR(64) NOT NULL,
    message TEXT NOT NULL,
    -- LibreNMS: 1 ok, 2 info, 3 notice, 4 warning, 5 error; Lookout adds 6 critical
    severity INT NOT NULL,
    reference BIGINT NULL,
    -- inline so that re-running this file after a partial failure is safe (MySQL 8 has no
    -- CREATE INDEX IF NOT EXISTS; DDL is not transactional)
    INDEX eventlog_device_datetime (device_id, datetime),
    INDEX eventlog_datetime (datetime),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS users (
    user_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(255) NOT NULL,
    password VARCHAR(255) NOT NULL,
    level INT NOT NULL DEFAULT 1,
    UNIQUE (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS api_tokens (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    description VARCHAR(255) NOT NULL DEFAULT '',
    disabled TINYINT(1) NOT NULL DEFAULT 0,
    UNIQUE (token_hash),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
