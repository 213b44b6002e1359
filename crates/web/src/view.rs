//! Pure formatting for pages and the API: ages, uptimes, bit rates, LibreNMS time stamps.
//! No clock is read here; callers pass `now`.

use lookout_core::Timestamp;

/// LibreNMS's time stamp format (`YYYY-MM-DD HH:MM:SS`, UTC).
pub fn librenms_time(t: &Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "in the future" for clock skew.
pub fn ago(secs: i64) -> String {
    match secs {
        s if s < 0 => "in the future".to_string(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 2 * 3600 => format!("{} min ago", s / 60),
        s if s < 2 * 86400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86400),
    }
}

/// Uptime as "12d 3h 4m" (seconds dropped above one minute).
pub fn duration(secs: i64) -> String {
    if secs < 0 {
        return "-".to_string();
    }
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// A rate in SI units with three significant digits: "0 bps", "950 bps", "1.23 Mbps".
pub fn bits_per_sec(bps: f64) -> String {
    si(bps, "bps")
}

/// An interface speed: "100 Mbps", "10 Gbps".
pub fn speed(bps: u64) -> String {
    // Precision loss above 2^53 bit/s is irrelevant for display.
    #[allow(clippy::cast_precision_loss)]
    si(bps as f64, "bps")
}

fn si(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    const PREFIXES: [&str; 6] = ["", "k", "M", "G", "T", "P"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1000.0 && i < PREFIXES.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if i == 0 || v.abs() >= 100.0 || v.fract() == 0.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {}{unit}", PREFIXES[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn formats() {
        assert_eq!(ago(5), "5 s ago");
        assert_eq!(ago(600), "10 min ago");
        assert_eq!(ago(3 * 3600), "3 h ago");
        assert_eq!(ago(3 * 86400), "3 d ago");
        assert_eq!(ago(-3), "in the future");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(duration(86400 * 12 + 3 * 3600 + 4 * 60), "12d 3h 4m");
        assert_eq!(bits_per_sec(0.0), "0 bps");
        assert_eq!(bits_per_sec(950.4), "950 bps");
        assert_eq!(bits_per_sec(1_234_567.0), "1.23 Mbps");
        assert_eq!(bits_per_sec(12_345_678.0), "12.3 Mbps");
        assert_eq!(bits_per_sec(f64::NAN), "-");
        assert_eq!(speed(100_000_000), "100 Mbps");
        assert_eq!(speed(10_000_000_000), "10 Gbps");
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single();
        assert_eq!(
            t.map(|t| librenms_time(&t)).as_deref(),
            Some("2026-01-02 03:04:05")
        );
    }
}
