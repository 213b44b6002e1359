-- IPv4 addresses of ports (issue 6, IP-MIB ipAddrTable), sqlite. Keep in step with
-- ../mysql/0004_ipv4_addresses.sql. LibreNMS's table and column names; device_id is
-- Lookout's addition (LibreNMS reaches the device through the port).

CREATE TABLE IF NOT EXISTS ipv4_addresses (
    ipv4_address_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    port_id BIGINT NOT NULL,
    ipv4_address TEXT NOT NULL,
    ipv4_prefixlen INTEGER NOT NULL,
    UNIQUE (port_id, ipv4_address),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (port_id) REFERENCES ports (port_id) ON DELETE CASCADE
);
