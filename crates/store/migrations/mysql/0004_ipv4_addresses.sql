-- IPv4 addresses of ports (issue 6, IP-MIB ipAddrTable), mysql. Keep in step with
-- ../sqlite/0004_ipv4_addresses.sql. Re-runnable: IF NOT EXISTS.

CREATE TABLE IF NOT EXISTS ipv4_addresses (
    ipv4_address_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id BIGINT NOT NULL,
    port_id BIGINT NOT NULL,
    ipv4_address VARCHAR(32) NOT NULL,
    ipv4_prefixlen INT NOT NULL,
    UNIQUE KEY ipv4_addresses_port_address (port_id, ipv4_address),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (port_id) REFERENCES ports (port_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
