-- Health modules and per-module poller settings/timing (issue 6), mysql. Keep in step with
-- ../sqlite/0002_health.sql (see there for what the tables hold).
-- Re-runnable (MySQL DDL is not transactional): IF NOT EXISTS everywhere.

CREATE TABLE IF NOT EXISTS processors (
    processor_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    processor_index VARCHAR(128) NOT NULL,
    processor_type VARCHAR(64) NOT NULL,
    processor_oid VARCHAR(255) NOT NULL,
    processor_descr VARCHAR(255) NOT NULL,
    processor_usage DOUBLE NULL,
    processor_precision INT NOT NULL DEFAULT 1,
    UNIQUE KEY processors_device_type_index (device_id, processor_type, processor_index),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS mempools (
    mempool_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    mempool_index VARCHAR(128) NOT NULL,
    mempool_type VARCHAR(64) NOT NULL,
    mempool_class VARCHAR(32) NOT NULL,
    mempool_precision INT NOT NULL DEFAULT 1,
    mempool_descr VARCHAR(255) NOT NULL,
    mempool_perc DOUBLE NOT NULL,
    mempool_used BIGINT UNSIGNED NOT NULL,
    mempool_free BIGINT UNSIGNED NOT NULL,
    mempool_total BIGINT UNSIGNED NOT NULL,
    UNIQUE KEY mempools_device_type_class_index (device_id, mempool_type, mempool_class, mempool_index),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS storage (
    storage_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    type VARCHAR(32) NOT NULL,
    storage_index BIGINT NOT NULL,
    storage_type VARCHAR(64) NULL,
    storage_descr VARCHAR(255) NOT NULL,
    storage_size BIGINT UNSIGNED NOT NULL,
    storage_units BIGINT NOT NULL,
    storage_used BIGINT UNSIGNED NOT NULL,
    storage_free BIGINT UNSIGNED NOT NULL,
    storage_perc DOUBLE NOT NULL,
    UNIQUE KEY storage_device_type_index (device_id, type, storage_index),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS devices_attribs (
    attrib_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    attrib_type VARCHAR(32) NOT NULL,
    attrib_value TEXT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    UNIQUE KEY devices_attribs_device_type (device_id, attrib_type),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS device_module_perf (
    device_id BIGINT NOT NULL,
    module VARCHAR(32) NOT NULL,
    seconds DOUBLE NOT NULL,
    status VARCHAR(16) NOT NULL,
    message TEXT NULL,
    polled_at DATETIME(6) NOT NULL,
    PRIMARY KEY (device_id, module),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
