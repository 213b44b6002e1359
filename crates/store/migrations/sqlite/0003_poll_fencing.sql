-- Distributed polling (issue 7), sqlite. Keep in step with ../mysql/0003_poll_fencing.sql.
-- devices.poll_token: the fencing token of the newest claim that started polling the
-- device. A worker registers its claim token before polling (only a larger token
-- replaces a smaller one) and writes its results only while the token is still its own,
-- so a paused or partitioned node whose claim was handed to another node cannot
-- overwrite the newer poll. device_poll_log: one row per finished (or discarded) poll.

ALTER TABLE devices ADD COLUMN poll_token BIGINT NULL;

CREATE TABLE IF NOT EXISTS device_poll_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    token BIGINT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    -- 'ok' (results written), 'failed' (the poll errored), 'stale' (results discarded:
    -- a newer claim owns the device)
    status TEXT NOT NULL,
    duration REAL NOT NULL,
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS device_poll_log_device_started ON device_poll_log (device_id, started);

CREATE INDEX IF NOT EXISTS device_poll_log_started ON device_poll_log (started);
