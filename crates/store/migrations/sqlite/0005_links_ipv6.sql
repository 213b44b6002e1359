-- Neighbours (LLDP/CDP) and IPv6 addresses of ports (issue 6), sqlite. Keep in step with
-- ../mysql/0005_links_ipv6.sql. LibreNMS's table and column names.
-- links: one row per neighbour seen on a local port by discovery (LLDP-MIB lldpRemTable,
-- CISCO-CDP-MIB cdpCacheTable); remote_device_id / remote_port_id are set when the
-- neighbour is a device (and port) Lookout knows. Replaced on each discovery.
-- ipv6_addresses: IP-MIB ipAddressTable (ipv6 rows) or IPV6-MIB ipv6AddrTable; device_id
-- is Lookout's addition (LibreNMS reaches the device through the port).

CREATE TABLE IF NOT EXISTS links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    local_port_id BIGINT NULL,
    local_device_id BIGINT NOT NULL,
    remote_port_id BIGINT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    -- 'lldp' or 'cdp'
    protocol TEXT NOT NULL,
    remote_hostname TEXT NOT NULL,
    remote_device_id BIGINT NULL,
    remote_port TEXT NOT NULL,
    remote_platform TEXT NULL,
    remote_version TEXT NULL,
    FOREIGN KEY (local_device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (local_port_id) REFERENCES ports (port_id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS links_local_device ON links (local_device_id);

CREATE TABLE IF NOT EXISTS ipv6_addresses (
    ipv6_address_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id BIGINT NOT NULL,
    port_id BIGINT NOT NULL,
    -- full form, 8 groups of 4 hex digits (LibreNMS)
    ipv6_address TEXT NOT NULL,
    -- RFC 5952 text
    ipv6_compressed TEXT NOT NULL,
    ipv6_prefixlen INTEGER NOT NULL,
    -- IP-MIB ipAddressOrigin / IPV6-MIB: 'manual', 'dhcp', 'linklayer', 'random', 'other'
    ipv6_origin TEXT NOT NULL,
    UNIQUE (port_id, ipv6_address),
    FOREIGN KEY (device_id) REFERENCES devices (device_id) ON DELETE CASCADE,
    FOREIGN KEY (port_id) REFERENCES ports (port_id) ON DELETE CASCADE
);
