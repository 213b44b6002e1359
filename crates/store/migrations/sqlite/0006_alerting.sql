-- Alerting (issue 14), sqlite. Keep in step with ../mysql/0006_alerting.sql.
-- LibreNMS's table and column names where the concept is the same (alert_rules, alerts,
-- alert_log, alert_transports, alert_transport_map, alert_schedule, alert_schedulables);
-- alert_outbox, alert_delivery_attempts and alert_fence are Lookout's (durable delivery).
-- alert_rules.rule holds Lookout's rule language (LibreNMS stores SQL there); extra is the
-- options as JSON (delay, interval, count, mute, invert, recovery, scope, template).

CREATE TABLE IF NOT EXISTS alert_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    extra TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    builtin INTEGER NOT NULL DEFAULT 0,
    proc TEXT NULL,
    updated TEXT NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS alert_rules_name ON alert_rules (name);

CREATE TABLE IF NOT EXISTS alert_transports (
    transport_id INTEGER PRIMARY KEY AUTOINCREMENT,
    transport_name TEXT NOT NULL,
    transport_type TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    transport_config TEXT NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS alert_transports_name ON alert_transports (transport_name);

CREATE TABLE IF NOT EXISTS alert_transport_map (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id BIGINT NOT NULL,
    transport_id BIGINT NOT NULL,
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE,
    FOREIGN KEY (transport_id) REFERENCES alert_transports (transport_id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX IF NOT EXISTS alert_transport_map_rule ON alert_transport_map (rule_id, transport_id);

-- One row per (rule, device, entity); entity_type '' / entity_id 0 for the device itself.
-- state: LibreNMS's numbers (0 ok/recovered, 1 alert, 2 acknowledged, 3 worse, 4 better);
-- info: the alert state machine's whole state as JSON; version: bumped on every change
-- (the master's pass updates only the version it read, so it never overwrites a poll's).
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    rule_id BIGINT NOT NULL,
    entity_type TEXT NOT NULL DEFAULT '',
    entity_id BIGINT NOT NULL DEFAULT 0,
    state INTEGER NOT NULL,
    alerted INTEGER NOT NULL DEFAULT 0,
    open INTEGER NOT NULL,
    note TEXT NULL,
    timestamp TEXT NOT NULL,
    info TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX IF NOT EXISTS alerts_key ON alerts (rule_id, device_id, entity_type, entity_id);

CREATE INDEX IF NOT EXISTS alerts_device ON alerts (device_id);

CREATE TABLE IF NOT EXISTS alert_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    entity_type TEXT NOT NULL DEFAULT '',
    entity_id BIGINT NOT NULL DEFAULT 0,
    state INTEGER NOT NULL,
    details TEXT NOT NULL,
    time_logged TEXT NOT NULL,
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS alert_log_device ON alert_log (device_id, time_logged);

CREATE INDEX IF NOT EXISTS alert_log_time ON alert_log (time_logged);

-- One message per (notification, transport): written in the same transaction as the alert
-- transition it tells of; delivered only by the master holding alert_fence's token.
-- state: pending | sending | delivered | failed.
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL,
    transport_id BIGINT NOT NULL,
    alert_id BIGINT NULL,
    device_id BIGINT NULL,
    notification TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    created TEXT NOT NULL,
    last_attempt_at TEXT NULL,
    delivered_at TEXT NULL,
    last_error TEXT NULL,
    FOREIGN KEY (transport_id) REFERENCES alert_transports (transport_id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX IF NOT EXISTS alert_outbox_key ON alert_outbox (idempotency_key, transport_id);

CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (state, next_attempt_at);

CREATE TABLE IF NOT EXISTS alert_delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    token BIGINT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NULL,
    FOREIGN KEY (outbox_id) REFERENCES alert_outbox (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS alert_delivery_attempts_outbox ON alert_delivery_attempts (outbox_id);

-- The master lease token of the last master that wrote alert state or delivered: a master
-- with an older token (paused, partitioned) is refused.
CREATE TABLE IF NOT EXISTS alert_fence (
    id INTEGER PRIMARY KEY,
    token BIGINT NOT NULL,
    node_id TEXT NOT NULL
);

INSERT OR IGNORE INTO alert_fence (id, token, node_id) VALUES (1, 0, '');

-- Maintenance windows. recurring = 0: start..end once; 1: every day in recurring_day
-- (ISO weekdays "1,2,...", empty = every day) from start_recurring_hm to end_recurring_hm,
-- between start and end. behavior: 0 skip (no alert state), 1 mute (state kept, nothing sent).
CREATE TABLE IF NOT EXISTS alert_schedule (
    schedule_id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    notes TEXT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    recurring INTEGER NOT NULL DEFAULT 0,
    start_recurring_hm TEXT NULL,
    end_recurring_hm TEXT NULL,
    recurring_day TEXT NULL,
    behavior INTEGER NOT NULL DEFAULT 0
);

-- alert_schedulable_type: 'device' (id = device_id) or 'poller_group' (id = group).
CREATE TABLE IF NOT EXISTS alert_schedulables (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id BIGINT NOT NULL,
    alert_schedulable_id BIGINT NOT NULL,
    alert_schedulable_type TEXT NOT NULL,
    FOREIGN KEY (schedule_id) REFERENCES alert_schedule (schedule_id) ON DELETE CASCADE
);
