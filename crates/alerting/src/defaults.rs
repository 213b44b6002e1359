//! The built-in rules, named as LibreNMS's defaults where one applies. The engine
//! creates the missing ones at start-up (`alert_rules.builtin`); operators may edit or
//! disable them. docs/alerting.md has them as a table.

use crate::rule::{RuleOptions, Severity};

/// A built-in rule (stored like any other: name, expression, options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRule {
    pub name: &'static str,
    pub expr: &'static str,
    pub options: RuleOptions,
    /// Why it is there, for `lookout alert rule list` and the docs.
    pub doc: &'static str,
}

fn opts(severity: Severity, delay_secs: u64, recovery: bool) -> RuleOptions {
    RuleOptions {
        severity,
        delay_secs,
        recovery,
        ..RuleOptions::default()
    }
}

/// Every built-in rule.
pub fn default_rules() -> Vec<DefaultRule> {
    use Severity::{Critical, Warning};
    vec![
        DefaultRule {
            name: "Devices up/down",
            expr: "macros.device_down",
            options: opts(Critical, 0, true),
            doc: "the device does not answer SNMP or ping (device.status_reason says which)",
        },
        DefaultRule {
            name: "Device rebooted",
            expr: "device.uptime < 300 && macros.device_up",
            options: opts(Warning, 0, false),
            doc: "the agent restarted in the last 5 minutes",
        },
        DefaultRule {
            name: "Port status up/down",
            expr: "macros.port_down",
            options: opts(Warning, 0, true),
            doc:
                "a port is down though administratively up (one alert per device, a fault per port)",
        },
        DefaultRule {
            name: "Port utilisation over threshold",
            expr: "macros.port_usage_perc >= 80 && macros.port_up",
            options: opts(Warning, 300, true),
            doc: "a port carries 80 % of its speed or more, in or out, for 5 minutes",
        },
        DefaultRule {
            name: "Ping Latency",
            expr: "icmp.avg_ms > 150 && macros.device_up",
            options: opts(Warning, 300, true),
            doc: "average ping round trip above 150 ms",
        },
        DefaultRule {
            name: "Ping packet loss",
            expr: "icmp.loss_pct >= 20 && icmp.loss_pct < 100 && macros.device_up",
            options: opts(Warning, 300, true),
            doc: "a fifth of the pings or more are lost (all lost is Devices up/down)",
        },
        DefaultRule {
            name: "Processor usage over 85%",
            expr: "processors.processor_usage >= 85 && macros.device_up",
            options: opts(Warning, 300, true),
            doc: "a processor is 85 % busy or more for 5 minutes",
        },
        DefaultRule {
            name: "Memory usage over 90%",
            expr: r#"mempools.mempool_perc >= 90 && mempools.mempool_class !~ "^(buffers|cached|shared|virtual)$" && macros.device_up"#,
            options: opts(Warning, 300, true),
            doc: "a memory pool is 90 % used or more (buffers, cache and virtual memory excluded)",
        },
        DefaultRule {
            name: "Storage usage over 90%",
            expr: r#"storage.storage_perc >= 90 && storage.storage_type !~ "CompactDisc|RemovableDisk" && macros.device_up"#,
            options: opts(Warning, 0, true),
            doc: "a file system is 90 % full or more (optical and removable media excluded)",
        },
        DefaultRule {
            name: "Device not polled",
            expr: "macros.device && device.last_polled_age > 3 * device.poll_interval",
            options: opts(Critical, 0, true),
            doc: "no poll finished for 3 intervals (time-based: the master evaluates it)",
        },
    ]
}
