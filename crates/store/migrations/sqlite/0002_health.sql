-- Health modules and per-module poller settings/timing (issue 6), sqlite. Keep in step with
-- ../mysql/0002_health.sql: tests/mysql.rs compares the table and column names of both.
-- processors / mempools / storage: LibreNMS's tables and column names, current values
-- (the history is in the RRD files). Byte sizes are u64 in two's complement, like counters.
-- devices_attribs: LibreNMS's per-device settings; `poll_<module>` = '0'/'1' overrides the
-- global poller module setting. device_module_perf: what each module took in the last poll.

CREATE TABLE IF NOT EXISTS processors (
    processor_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    processor_index TEXT NOT NULL,
    processor_type TEXT NOT NULL,
    processor_oid TEXT NOT NULL,
    processor_descr TEXT NOT NULL,
    -- percent; NULL while the agent has no figure yet
    processor_usage REAL NULL,
    processor_precision INTEGER NOT NULL DEFAULT 1,
    UNIQUE (device_id, processor_type, processor_index),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS mempools (
    mempool_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    mempool_index TEXT NOT NULL,
    mempool_type TEXT NOT NULL,
    mempool_class TEXT NOT NULL,
    mempool_precision INTEGER NOT NULL DEFAULT 1,
    mempool_descr TEXT NOT NULL,
    mempool_perc REAL NOT NULL,
    mempool_used INTEGER NOT NULL,
    mempool_free INTEGER NOT NULL,
    mempool_total INTEGER NOT NULL,
    UNIQUE (device_id, mempool_type, mempool_class, mempool_index),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS storage (
    storage_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    -- the MIB the entry came from, e.g. 'hrstorage'
    type TEXT NOT NULL,
    storage_index BIGINT NOT NULL,
    storage_type TEXT NULL,
    storage_descr TEXT NOT NULL,
    storage_size INTEGER NOT NULL,
    storage_units BIGINT NOT NULL,
    storage_used INTEGER NOT NULL,
    storage_free INTEGER NOT NULL,
    storage_perc REAL NOT NULL,
    UNIQUE (device_id, type, storage_index),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS devices_attribs (
    attrib_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    attrib_type TEXT NOT NULL,
    attrib_value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (device_id, attrib_type),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS device_module_perf (
    device_id BIGINT NOT NULL,
    module TEXT NOT NULL,
    seconds REAL NOT NULL,
    -- 'ok', 'failed' or 'disabled'
    status TEXT NOT NULL,
    message TEXT NULL,
    polled_at TEXT NOT NULL,
    PRIMARY KEY (device_id, module),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);
