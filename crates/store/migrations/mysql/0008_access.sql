-- Access control and sessions (issue #15), mysql. Keep in step with ../sqlite/0008_access.sql
-- (comments there). Re-runnable: IF NOT EXISTS.

CREATE TABLE IF NOT EXISTS devices_perms (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    UNIQUE KEY devices_perms_user_device (user_id, device_id),
    KEY devices_perms_device (device_id),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS user_sessions (
    session_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    address VARCHAR(64) NOT NULL DEFAULT '',
    user_agent VARCHAR(255) NOT NULL DEFAULT '',
    KEY user_sessions_user (user_id),
    KEY user_sessions_expires (expires),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS authlog (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    datetime BIGINT NOT NULL,
    user VARCHAR(255) NOT NULL,
    address VARCHAR(64) NOT NULL,
    result VARCHAR(16) NOT NULL,
    KEY authlog_user (user, datetime),
    KEY authlog_address (address, datetime),
    KEY authlog_datetime (datetime)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS app_key_check (
    id BIGINT NOT NULL PRIMARY KEY,
    check_value VARCHAR(128) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
