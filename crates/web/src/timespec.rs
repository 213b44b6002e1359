//! Time arguments of the API and the graphs, in the forms LibreNMS and rrdtool users type:
//! unix seconds (`1767225600`), `now`, relative to now (`-1d`, `now-6h`, `-90m`, `-3600`,
//! `now+1h`), and UTC dates (`2026-01-02`, `2026-01-02 22:00`, `2026-01-02T22:00:00Z`).
//! Pure: the caller passes "now". A bad value is an error saying which forms are accepted.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};

const FORMS: &str = "use unix seconds, now, a relative time such as -1d, now-6h, -90m \
                     (units s, m, h, d, w, y), or a UTC date such as 2026-01-02 or 2026-01-02 22:00";

/// Unix seconds for `text` at `now`.
pub(crate) fn parse(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    let bad = || format!("{t:?} is not a time: {FORMS}");
    if t.is_empty() {
        return Err(bad());
    }
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(rest) = t.strip_prefix("now").or_else(|| t.strip_prefix("NOW")) {
        return offset(rest).map(|o| now.saturating_add(o)).ok_or_else(bad);
    }
    if t.starts_with('-') || t.starts_with('+') {
        return offset(t).map(|o| now.saturating_add(o)).ok_or_else(bad);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|_| bad());
    }
    date(t).ok_or_else(bad)
}

/// `-1d`, `+6h`, `-3600`: signed seconds.
fn offset(s: &str) -> Option<i64> {
    let (sign, body) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => return None,
    };
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: i64 = body[..digits].parse().ok()?;
    let unit = match &body[digits..] {
        "" | "s" | "sec" | "seconds" => 1,
        "m" | "min" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "mon" | "month" | "months" => 30 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit)?.checked_mul(sign)
}

fn date(t: &str) -> Option<i64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Some(Utc.from_utc_datetime(&n).timestamp());
        }
    }
    let d = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?).timestamp())
}

/// A `from`/`to` pair with defaults, checked: `from` before `to`, and not absurdly far apart.
pub(crate) fn range(
    from: Option<&str>,
    to: Option<&str>,
    default_span: i64,
    now: i64,
) -> Result<(i64, i64), String> {
    let to = match to {
        Some(t) if !t.trim().is_empty() => parse(t, now).map_err(|e| format!("to: {e}"))?,
        _ => now,
    };
    let from = match from {
        Some(f) if !f.trim().is_empty() => parse(f, now).map_err(|e| format!("from: {e}"))?,
        _ => to - default_span,
    };
    if from >= to {
        return Err(format!("from ({from}) must be before to ({to})"));
    }
    if to - from > 20 * 365 * 86_400 {
        return Err("the range is longer than 20 years".into());
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: i64 = 1_767_225_600; // 2026-01-01 00:00:00 UTC

    #[test]
    fn accepted_forms() {
        for (text, want) in [
            ("now", NOW),
            ("NOW", NOW),
            ("-1d", NOW - 86_400),
            ("now-6h", NOW - 6 * 3600),
            ("now+1h", NOW + 3600),
            ("-90m", NOW - 5400),
            ("-3600", NOW - 3600),
            ("-2w", NOW - 14 * 86_400),
            ("-1y", NOW - 365 * 86_400),
            ("1700000000", 1_700_000_000),
            ("2026-01-02", NOW + 86_400),
            ("2026-01-02 01:00", NOW + 86_400 + 3600),
            ("2026-01-02T01:00:00Z", NOW + 86_400 + 3600),
            (" -1d ", NOW - 86_400),
        ] {
            assert_eq!(parse(text, NOW), Ok(want), "{text}");
        }
    }

    #[test]
    fn refused_forms_say_what_is_accepted() {
        for text in [
            "",
            "yesterday",
            "-1x",
            "-",
            "now-",
            "--1d",
            "1e9",
            "2026-13-01",
            "-99999999999999999y",
        ] {
            let e = parse(text, NOW).unwrap_err();
            assert!(
                e.contains("is not a time") && e.contains("-1d"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(range(None, None, 3600, NOW), Ok((NOW - 3600, NOW)));
        assert_eq!(
            range(Some("-1d"), Some("-12h"), 1, NOW),
            Ok((NOW - 86_400, NOW - 43_200))
        );
        assert!(range(Some("now"), Some("-1h"), 1, NOW)
            .unwrap_err()
            .contains("before"));
        assert!(range(Some("bad"), None, 1, NOW)
            .unwrap_err()
            .starts_with("from:"));
        assert!(range(Some("0"), None, 1, NOW)
            .unwrap_err()
            .contains("20 years"));
    }
}
