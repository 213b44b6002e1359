//! Macros: named sub-expressions, named like LibreNMS's (`%macros.device_down`). A rule
//! writes `macros.NAME`, `%macros.NAME` or the bare `NAME`; the body is compiled in place.

/// (name, body, what it means).
pub static MACROS: &[(&str, &str, &str)] = &[
    (
        "device",
        "device.disabled == false",
        "the device is monitored",
    ),
    (
        "device_up",
        r#"device.status == "up" && macros.device"#,
        "a monitored device that is up",
    ),
    (
        "device_down",
        r#"device.status == "down" && macros.device"#,
        "a monitored device that is down (SNMP or ICMP: see device.status_reason)",
    ),
    (
        "port",
        "ports.deleted == false",
        "a port still present on the agent",
    ),
    (
        "port_up",
        r#"ports.ifOperStatus == "up" && ports.ifAdminStatus == "up" && macros.port"#,
        "a port that is up and meant to be",
    ),
    (
        "port_down",
        r#"ports.ifOperStatus == "down" && ports.ifAdminStatus == "up" && macros.port"#,
        "a port that is down though administratively up",
    ),
    (
        "port_usage_perc",
        "ports.usage_perc",
        "a port's utilisation, percent: the larger of in and out",
    ),
    (
        "port_in_usage_perc",
        "ports.in_usage_perc",
        "a port's inbound utilisation, percent (LibreNMS's port_usage_perc)",
    ),
    (
        "port_out_usage_perc",
        "ports.out_usage_perc",
        "a port's outbound utilisation, percent",
    ),
    (
        "past_5m",
        "now - 300",
        "Unix time 5 minutes ago (any past_<N>s|m|h|d works)",
    ),
    ("past_10m", "now - 600", "Unix time 10 minutes ago"),
    ("past_15m", "now - 900", "Unix time 15 minutes ago"),
    ("past_30m", "now - 1800", "Unix time 30 minutes ago"),
    ("past_60m", "now - 3600", "Unix time an hour ago"),
];

/// The body of macro `name` (ASCII case-insensitive), including the `past_<N><unit>` family.
pub(crate) fn body(name: &str) -> Option<String> {
    if let Some((_, b, _)) = MACROS.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)) {
        return Some((*b).to_string());
    }
    let rest = name.strip_prefix("past_")?;
    let unit = rest.chars().last()?;
    let mult: u64 = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let count: u64 = rest[..rest.len() - 1].parse().ok()?;
    Some(format!("now - {}", count.checked_mul(mult)?))
}

/// Names of every macro (for error messages).
pub(crate) fn names() -> Vec<String> {
    MACROS
        .iter()
        .map(|(n, _, _)| format!("macros.{n}"))
        .collect()
}
