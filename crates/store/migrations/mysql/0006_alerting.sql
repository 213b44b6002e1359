-- Alerting (issue 14), mysql. Keep in step with ../sqlite/0006_alerting.sql (comments there).
-- Re-runnable: IF NOT EXISTS, INSERT IGNORE.

CREATE TABLE IF NOT EXISTS alert_rules (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    rule TEXT NOT NULL,
    severity VARCHAR(16) NOT NULL,
    extra TEXT NOT NULL,
    disabled TINYINT(1) NOT NULL DEFAULT 0,
    builtin TINYINT(1) NOT NULL DEFAULT 0,
    proc VARCHAR(1024) NULL,
    updated DATETIME(6) NOT NULL,
    UNIQUE KEY alert_rules_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_transports (
    transport_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    transport_name VARCHAR(255) NOT NULL,
    transport_type VARCHAR(64) NOT NULL,
    is_default TINYINT(1) NOT NULL DEFAULT 0,
    transport_config TEXT NOT NULL,
    UNIQUE KEY alert_transports_name (transport_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_transport_map (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    rule_id BIGINT NOT NULL,
    transport_id BIGINT NOT NULL,
    UNIQUE KEY alert_transport_map_rule (rule_id, transport_id),
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE,
    FOREIGN KEY (transport_id) REFERENCES alert_transports (transport_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alerts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    rule_id BIGINT NOT NULL,
    entity_type VARCHAR(32) NOT NULL DEFAULT '',
    entity_id BIGINT NOT NULL DEFAULT 0,
    state INT NOT NULL,
    alerted INT NOT NULL DEFAULT 0,
    open INT NOT NULL,
    note TEXT NULL,
    timestamp DATETIME(6) NOT NULL,
    info TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    UNIQUE KEY alerts_key (rule_id, device_id, entity_type, entity_id),
    INDEX alerts_device (device_id),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    rule_id BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    entity_type VARCHAR(32) NOT NULL DEFAULT '',
    entity_id BIGINT NOT NULL DEFAULT 0,
    state INT NOT NULL,
    details TEXT NOT NULL,
    time_logged DATETIME(6) NOT NULL,
    INDEX alert_log_device (device_id, time_logged),
    INDEX alert_log_time (time_logged),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    idempotency_key VARCHAR(255) NOT NULL,
    transport_id BIGINT NOT NULL,
    alert_id BIGINT NULL,
    device_id BIGINT NULL,
    notification MEDIUMTEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6) NOT NULL,
    created DATETIME(6) NOT NULL,
    last_attempt_at DATETIME(6) NULL,
    delivered_at DATETIME(6) NULL,
    last_error TEXT NULL,
    UNIQUE KEY alert_outbox_key (idempotency_key, transport_id),
    INDEX alert_outbox_due (state, next_attempt_at),
    FOREIGN KEY (transport_id) REFERENCES alert_transports (transport_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_delivery_attempts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    node_id VARCHAR(255) NOT NULL,
    token BIGINT NOT NULL,
    started DATETIME(6) NOT NULL,
    finished DATETIME(6) NULL,
    outcome VARCHAR(16) NOT NULL,
    detail TEXT NULL,
    INDEX alert_delivery_attempts_outbox (outbox_id),
    FOREIGN KEY (outbox_id) REFERENCES alert_outbox (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_fence (
    id INT NOT NULL PRIMARY KEY,
    token BIGINT NOT NULL,
    node_id VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO alert_fence (id, token, node_id) VALUES (1, 0, '');

CREATE TABLE IF NOT EXISTS alert_schedule (
    schedule_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title VARCHAR(255) NOT NULL,
    notes TEXT NULL,
    start DATETIME(6) NOT NULL,
    end DATETIME(6) NOT NULL,
    recurring TINYINT(1) NOT NULL DEFAULT 0,
    start_recurring_hm VARCHAR(5) NULL,
    end_recurring_hm VARCHAR(5) NULL,
    recurring_day VARCHAR(32) NULL,
    behavior INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS alert_schedulables (
    item_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    schedule_id BIGINT NOT NULL,
    alert_schedulable_id BIGINT NOT NULL,
    alert_schedulable_type VARCHAR(32) NOT NULL,
    FOREIGN KEY (schedule_id) REFERENCES alert_schedule (schedule_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
