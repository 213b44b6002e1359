//! Which maintenance window covers a device at a time (sans-IO): one-off windows by their
//! start/end, recurring ones by date range, weekday and time of day (UTC, as stored).

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use lookout_core::Device;
use lookout_store::Maintenance;

use crate::state::MaintenanceMode;

/// The maintenance `device` is under at `now`: `Skip` when any covering window skips,
/// else `Mute` when one mutes, else `Off`.
pub fn mode_at(windows: &[Maintenance], device: &Device, now: DateTime<Utc>) -> MaintenanceMode {
    let mut mode = MaintenanceMode::Off;
    for w in windows
        .iter()
        .filter(|w| covers(w, device) && active_at(w, now))
    {
        match MaintenanceMode::from_behavior(Some(w.behavior)) {
            MaintenanceMode::Skip => return MaintenanceMode::Skip,
            m => mode = m,
        }
    }
    mode
}

fn covers(w: &Maintenance, device: &Device) -> bool {
    w.items.iter().any(|(kind, id)| match kind.as_str() {
        "device" => *id == device.device_id,
        "poller_group" => *id == i64::from(device.poller_group),
        _ => false,
    })
}

/// Whether the window is on at `now`.
pub fn active_at(w: &Maintenance, now: DateTime<Utc>) -> bool {
    if now < w.start || now >= w.end {
        return false;
    }
    if !w.recurring {
        return true;
    }
    let weekday = now.weekday().number_from_monday();
    let day_ok = w.recurring_day.as_deref().is_none_or(|days| {
        let days = days.trim();
        days.is_empty()
            || days
                .split(',')
                .any(|d| d.trim().parse::<u32>().ok() == Some(weekday))
    });
    if !day_ok {
        return false;
    }
    let hm = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| NaiveTime::parse_from_str(s.trim(), "%H:%M").ok())
    };
    match (hm(&w.start_recurring_hm), hm(&w.end_recurring_hm)) {
        (Some(a), Some(b)) => {
            let t = now.time();
            if a <= b {
                a <= t && t < b
            } else {
                // Over midnight (22:00–02:00).
                t >= a || t < b
            }
        }
        // A recurring window without times covers whole days.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{device, t};
    use chrono::TimeZone;

    fn window(behavior: i32, items: Vec<(&str, i64)>) -> Maintenance {
        Maintenance {
            schedule_id: 1,
            title: "w".into(),
            notes: None,
            start: t(1_000),
            end: t(2_000),
            recurring: false,
            start_recurring_hm: None,
            end_recurring_hm: None,
            recurring_day: None,
            behavior,
            items: items.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    #[test]
    fn one_off_window_covers_its_devices_between_start_and_end() {
        let d = device();
        let w = [window(1, vec![("device", d.device_id)])];
        assert_eq!(mode_at(&w, &d, t(999)), MaintenanceMode::Off);
        assert_eq!(mode_at(&w, &d, t(1_000)), MaintenanceMode::Mute);
        assert_eq!(mode_at(&w, &d, t(2_000)), MaintenanceMode::Off);
        let other = [window(1, vec![("device", d.device_id + 1)])];
        assert_eq!(mode_at(&other, &d, t(1_500)), MaintenanceMode::Off);
    }

    #[test]
    fn poller_group_windows_and_skip_wins() {
        let d = device();
        let w = [
            window(1, vec![("device", d.device_id)]),
            window(0, vec![("poller_group", i64::from(d.poller_group))]),
        ];
        assert_eq!(mode_at(&w, &d, t(1_500)), MaintenanceMode::Skip);
    }

    #[test]
    fn recurring_window_by_weekday_and_time_of_day() {
        let d = device();
        let mut w = window(1, vec![("device", d.device_id)]);
        w.recurring = true;
        w.start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        w.end = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        w.start_recurring_hm = Some("22:00".into());
        w.end_recurring_hm = Some("02:00".into());
        w.recurring_day = Some("3".into()); // Wednesdays
        let ws = [w];
        // 2026-12-02 is a Wednesday.
        let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 2, h, m, 0).unwrap();
        assert_eq!(mode_at(&ws, &d, at(23, 0)), MaintenanceMode::Mute);
        assert_eq!(mode_at(&ws, &d, at(1, 30)), MaintenanceMode::Mute);
        assert_eq!(mode_at(&ws, &d, at(12, 0)), MaintenanceMode::Off);
        let thursday = Utc.with_ymd_and_hms(2026, 12, 3, 23, 0, 0).unwrap();
        assert_eq!(mode_at(&ws, &d, thursday), MaintenanceMode::Off);
    }
}
