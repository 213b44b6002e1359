-- Neighbours (LLDP/CDP) and IPv6 addresses of ports (issue 6), mysql. Keep in step with
-- ../sqlite/0005_links_ipv6.sql (comments there). Re-runnable: IF NOT EXISTS.

CREATE TABLE IF NOT EXISTS links (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    local_port_id BIGINT NULL,
    local_device_id BIGINT NOT NULL,
    remote_port_id BIGINT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    protocol VARCHAR(11) NOT NULL,
    remote_hostname VARCHAR(128) NOT NULL,
    remote_device_id BIGINT NULL,
    remote_port VARCHAR(128) NOT NULL,
    remote_platform VARCHAR(256) NULL,
    remote_version VARCHAR(256) NULL,
    INDEX links_local_device (local_device_id),
    FOREIGN KEY (local_device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (local_port_id) REFERENCES ports (port_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS ipv6_addresses (
    ipv6_address_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    port_id BIGINT NOT NULL,
    ipv6_address VARCHAR(128) NOT NULL,
    ipv6_compressed VARCHAR(128) NOT NULL,
    ipv6_prefixlen INT NOT NULL,
    ipv6_origin VARCHAR(16) NOT NULL,
    UNIQUE KEY ipv6_addresses_port_address (port_id, ipv6_address),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (port_id) REFERENCES ports (port_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
