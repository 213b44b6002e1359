-- Access control and sessions (issue #15), sqlite. Keep in step with ../mysql/0008_access.sql.
-- LibreNMS names where LibreNMS has the table (devices_perms, authlog).

-- Devices a normal user (level 1) may see, with their ports.
CREATE TABLE IF NOT EXISTS devices_perms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    UNIQUE (user_id, device_id),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS devices_perms_device ON devices_perms (device_id);

-- Server-side session records; the sealed cookie carries the session id, the table its
-- SHA-256, so a read of the table gives no usable session. Times are unix seconds.
CREATE TABLE IF NOT EXISTS user_sessions (
    session_hash TEXT NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS user_sessions_user ON user_sessions (user_id);
CREATE INDEX IF NOT EXISTS user_sessions_expires ON user_sessions (expires);

-- Every login attempt: result is ok, failure or throttled. The login throttle counts from it.
CREATE TABLE IF NOT EXISTS authlog (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    datetime BIGINT NOT NULL,
    user TEXT NOT NULL,
    address TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS authlog_user ON authlog (user, datetime);
CREATE INDEX IF NOT EXISTS authlog_address ON authlog (address, datetime);
CREATE INDEX IF NOT EXISTS authlog_datetime ON authlog (datetime);

-- One row: the check value of the installation's APP_KEY, so an instance with another key
-- refuses to serve instead of issuing cookies no other instance accepts.
CREATE TABLE IF NOT EXISTS app_key_check (
    id INTEGER PRIMARY KEY,
    check_value TEXT NOT NULL
);
