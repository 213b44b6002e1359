-- Distributed polling (issue 7), mysql. Keep in step with ../sqlite/0003_poll_fencing.sql.
-- devices.poll_token: the fencing token of the newest claim that started polling the
-- device. A worker registers its claim token before polling (only a larger token
-- replaces a smaller one) and writes its results only while the token is still its own,
-- so a paused or partitioned node whose claim was handed to another node cannot
-- overwrite the newer poll. device_poll_log: one row per finished (or discarded) poll.
-- Re-runnable (MySQL DDL is not transactional): IF NOT EXISTS everywhere (MariaDB syntax).

ALTER TABLE devices ADD COLUMN IF NOT EXISTS poll_token BIGINT NULL;

CREATE TABLE IF NOT EXISTS device_poll_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    node_id VARCHAR(255) NOT NULL,
    token BIGINT NOT NULL,
    started DATETIME(6) NOT NULL,
    finished DATETIME(6) NOT NULL,
    -- 'ok' (results written), 'failed' (the poll errored), 'stale' (results discarded:
    -- a newer claim owns the device)
    status VARCHAR(16) NOT NULL,
    duration DOUBLE NOT NULL,
    INDEX device_poll_log_device_started (device_id, started),
    INDEX device_poll_log_started (started),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
