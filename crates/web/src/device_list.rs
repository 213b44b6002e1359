//! `GET /devices`: the device list with search (hostname, sysName, location, hardware, OS,
//! version), filters (state, OS, location, poller group), sortable columns and paging. Down
//! devices come first by default, so the few that matter are not buried among the many that
//! are fine. The selection is pure ([`select`]) and unit-tested; the handler renders it.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use lookout_core::Device;

use crate::error::WebError;
use crate::pages::{Layout, PageUser};
use crate::{view, Shared};

/// Page sizes offered.
pub(crate) const PAGE_SIZES: [usize; 4] = [50, 100, 250, 500];
const DEFAULT_PAGE_SIZE: usize = 100;

/// What the list was asked for (all optional; unknown values fall back to the defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub(crate) q: String,
    pub(crate) state: String,
    pub(crate) os: String,
    pub(crate) location: String,
    pub(crate) group: Option<i32>,
    pub(crate) sort: String,
    pub(crate) desc: bool,
    pub(crate) page: usize,
    pub(crate) per: usize,
}

impl ListQuery {
    pub(crate) fn from_map(m: &HashMap<String, String>) -> ListQuery {
        let get = |k: &str| m.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
        let per = get("per").parse().ok().filter(|p| PAGE_SIZES.contains(p));
        ListQuery {
            q: get("q"),
            state: get("state"),
            os: get("os"),
            location: get("location"),
            group: get("group").parse().ok(),
            sort: get("sort"),
            desc: get("dir") == "desc",
            page: get("page").parse().unwrap_or(1).max(1),
            per: per.unwrap_or(DEFAULT_PAGE_SIZE),
        }
    }

    /// The query string for this query with `changes` applied (`""` removes a key).
    pub(crate) fn url(&self, changes: &[(&str, &str)]) -> String {
        let group = self.group.map(|g| g.to_string()).unwrap_or_default();
        let page = self.page.to_string();
        let per = self.per.to_string();
        let dir = if self.desc { "desc" } else { "" };
        let mut pairs: Vec<(&str, &str)> = vec![
            ("q", &self.q),
            ("state", &self.state),
            ("os", &self.os),
            ("location", &self.location),
            ("group", &group),
            ("sort", &self.sort),
            ("dir", dir),
            ("page", &page),
            ("per", &per),
        ];
        for (k, v) in changes {
            if let Some(p) = pairs.iter_mut().find(|(pk, _)| pk == k) {
                p.1 = v;
            }
        }
        let parts: Vec<String> = pairs
            .iter()
            // Empty values and the defaults (page 1, 100 per page) stay out of the URL.
            .filter(|(k, v)| {
                let default = (*k == "page" && *v == "1") || (*k == "per" && *v == "100");
                !v.is_empty() && !default
            })
            .map(|(k, v)| format!("{k}={}", crate::alerts::pages::url_encode(v)))
            .collect();
        if parts.is_empty() {
            "/devices".into()
        } else {
            format!("/devices?{}", parts.join("&"))
        }
    }
}

/// A device's state as the list shows and filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ListState {
    Down,
    Pending,
    Up,
    Disabled,
}

pub(crate) fn state_of(d: &Device) -> ListState {
    if d.disabled {
        ListState::Disabled
    } else if d.last_polled.is_none() {
        ListState::Pending
    } else if d.status.is_up() {
        ListState::Up
    } else {
        ListState::Down
    }
}

/// The page of devices asked for, with how many matched in all.
pub(crate) struct Selection<'a> {
    pub(crate) rows: Vec<&'a Device>,
    pub(crate) matched: usize,
    /// The page actually shown (clamped to the last one).
    pub(crate) page: usize,
    pub(crate) pages: usize,
}

fn contains(hay: Option<&str>, needle: &str) -> bool {
    hay.is_some_and(|h| h.to_lowercase().contains(needle))
}

fn matches(d: &Device, q: &ListQuery, needle: &str, now: i64, stale_after: i64) -> bool {
    if !needle.is_empty()
        && !(contains(Some(&d.hostname), needle)
            || contains(d.sys_name.as_deref(), needle)
            || contains(d.sys_location.as_deref(), needle)
            || contains(d.hardware.as_deref(), needle)
            || contains(Some(&d.os), needle)
            || contains(d.version.as_deref(), needle)
            || contains(d.serial.as_deref(), needle))
    {
        return false;
    }
    let state_ok = match q.state.as_str() {
        "up" => state_of(d) == ListState::Up,
        "down" => state_of(d) == ListState::Down,
        "pending" => state_of(d) == ListState::Pending,
        "disabled" => state_of(d) == ListState::Disabled,
        "stale" => {
            !d.disabled && now - d.last_polled.unwrap_or(d.inserted).timestamp() > stale_after
        }
        _ => true,
    };
    state_ok
        && (q.os.is_empty() || d.os.eq_ignore_ascii_case(&q.os))
        && (q.location.is_empty() || d.sys_location.as_deref() == Some(q.location.as_str()))
        && q.group.is_none_or(|g| d.poller_group == g)
}

fn by(sort: &str, a: &Device, b: &Device) -> Ordering {
    let s = |v: &Option<String>| v.as_deref().unwrap_or("").to_lowercase();
    match sort {
        "hostname" => a.hostname.cmp(&b.hostname),
        "sysname" => s(&a.sys_name).cmp(&s(&b.sys_name)),
        "os" => a.os.cmp(&b.os),
        "location" => s(&a.sys_location).cmp(&s(&b.sys_location)),
        "hardware" => s(&a.hardware).cmp(&s(&b.hardware)),
        "uptime" => a.uptime.cmp(&b.uptime),
        "last_polled" => a.last_polled.cmp(&b.last_polled),
        "poll_time" => a
            .last_polled_timetaken
            .partial_cmp(&b.last_polled_timetaken)
            .unwrap_or(Ordering::Equal),
        // Default and "status": down, then never polled, then up, then disabled.
        _ => state_of(a).cmp(&state_of(b)),
    }
}

/// Filters, sorts (ties by hostname) and pages `devices`.
pub(crate) fn select<'a>(
    devices: &'a [Device],
    q: &ListQuery,
    now: i64,
    stale_after: i64,
) -> Selection<'a> {
    let needle = q.q.to_lowercase();
    let mut rows: Vec<&Device> = devices
        .iter()
        .filter(|d| matches(d, q, &needle, now, stale_after))
        .collect();
    rows.sort_by(|a, b| {
        let o = by(&q.sort, a, b);
        let o = if q.desc { o.reverse() } else { o };
        o.then_with(|| a.hostname.cmp(&b.hostname))
    });
    let matched = rows.len();
    let pages = matched.div_ceil(q.per).max(1);
    let page = q.page.min(pages);
    let rows = rows
        .into_iter()
        .skip((page - 1) * q.per)
        .take(q.per)
        .collect();
    Selection {
        rows,
        matched,
        page,
        pages,
    }
}

// ------------------------------------------------------------------ the page

struct Row {
    id: i64,
    hostname: String,
    sys_name: String,
    os: String,
    location: String,
    hardware: String,
    state: &'static str,
    reason: String,
    uptime: String,
    last_polled: String,
    last_polled_at: String,
    stale: bool,
    poll_time: String,
}

struct SortLink {
    name: &'static str,
    url: String,
    mark: &'static str,
    num: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    layout: Layout,
    q: ListQuery,
    rows: Vec<Row>,
    total: usize,
    up: usize,
    down: usize,
    pending: usize,
    disabled: usize,
    stale: usize,
    stale_after: String,
    matched: usize,
    first: usize,
    last: usize,
    page: usize,
    pages: usize,
    prev: String,
    next: String,
    oses: Vec<String>,
    groups: Vec<i32>,
    columns: Vec<SortLink>,
    group_value: String,
    down_url: String,
}

const COLUMNS: [(&str, &str, bool); 9] = [
    ("Hostname", "hostname", false),
    ("sysName", "sysname", false),
    ("OS", "os", false),
    ("Location", "location", false),
    ("Hardware", "hardware", false),
    ("Status", "status", false),
    ("Uptime", "uptime", false),
    ("Last polled", "last_polled", false),
    ("Poll time", "poll_time", true),
];

fn row(d: &Device, now: i64, after: i64) -> Row {
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    Row {
        id: d.device_id,
        hostname: d.hostname.clone(),
        sys_name: opt(&d.sys_name),
        os: d.os.clone(),
        location: opt(&d.sys_location),
        hardware: opt(&d.hardware),
        state: match state_of(d) {
            ListState::Up => "up",
            ListState::Down => "down",
            ListState::Pending => "pending",
            ListState::Disabled => "disabled",
        },
        reason: d.status_reason.clone(),
        uptime: d.uptime.map(view::duration).unwrap_or_default(),
        last_polled: d
            .last_polled
            .map_or_else(|| "never".to_string(), |t| view::ago(now - t.timestamp())),
        last_polled_at: d
            .last_polled
            .as_ref()
            .map(view::librenms_time)
            .unwrap_or_default(),
        stale: !d.disabled && now - d.last_polled.unwrap_or(d.inserted).timestamp() > after,
        poll_time: d
            .last_polled_timetaken
            .map(|s| format!("{s:.2} s"))
            .unwrap_or_default(),
    }
}

/// `GET /devices`
pub(crate) async fn page(
    u: PageUser,
    State(ctx): State<Shared>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let q = ListQuery::from_map(&query.map(|Query(m)| m).unwrap_or_default());
    let devices = u.access.visible(ctx.state.store.devices().await?);
    let now = chrono::Utc::now().timestamp();
    let after = i64::try_from(ctx.state.poll_interval_secs.saturating_mul(2)).unwrap_or(i64::MAX);
    let count = |s: ListState| devices.iter().filter(|d| state_of(d) == s).count();
    let stale = devices
        .iter()
        .filter(|d| !d.disabled && now - d.last_polled.unwrap_or(d.inserted).timestamp() > after)
        .count();
    let oses: BTreeSet<String> = devices.iter().map(|d| d.os.clone()).collect();
    let groups: BTreeSet<i32> = devices.iter().map(|d| d.poller_group).collect();
    let sel = select(&devices, &q, now, after);
    let first = if sel.matched == 0 {
        0
    } else {
        (sel.page - 1) * q.per + 1
    };
    let columns = COLUMNS
        .iter()
        .map(|&(name, key, num)| {
            let current = q.sort == key || (q.sort.is_empty() && key == "status");
            let desc = current && !q.desc;
            SortLink {
                name,
                url: q.url(&[
                    ("sort", key),
                    ("dir", if desc { "desc" } else { "" }),
                    ("page", "1"),
                ]),
                mark: match (current, q.desc) {
                    (true, false) => " ▲",
                    (true, true) => " ▼",
                    _ => "",
                },
                num,
            }
        })
        .collect();
    let page_str = |p: usize| p.to_string();
    let page = DevicesPage {
        layout: Layout::new(&ctx, &u),
        total: devices.len(),
        up: count(ListState::Up),
        down: count(ListState::Down),
        pending: count(ListState::Pending),
        disabled: count(ListState::Disabled),
        stale,
        stale_after: view::duration(after),
        matched: sel.matched,
        first,
        last: first + sel.rows.len().saturating_sub(1),
        prev: if sel.page > 1 {
            q.url(&[("page", &page_str(sel.page - 1))])
        } else {
            String::new()
        },
        next: if sel.page < sel.pages {
            q.url(&[("page", &page_str(sel.page + 1))])
        } else {
            String::new()
        },
        page: sel.page,
        pages: sel.pages,
        rows: sel.rows.iter().map(|d| row(d, now, after)).collect(),
        oses: oses.into_iter().collect(),
        groups: groups.into_iter().collect(),
        columns,
        group_value: q.group.map(|g| g.to_string()).unwrap_or_default(),
        down_url: q.url(&[("state", "down"), ("page", "1")]),
        q,
    };
    match page.render() {
        Ok(html) => Ok(axum::response::Html(html).into_response()),
        Err(e) => Err(WebError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;
    use lookout_core::{DeviceStatus, SnmpConfig};

    fn dev(id: i64, host: &str, status: Option<DeviceStatus>, os: &str, loc: &str) -> Device {
        let t = chrono::Utc.timestamp_opt(1_000, 0).unwrap();
        Device {
            device_id: id,
            hostname: host.into(),
            sys_name: Some(format!("{host}-sys")),
            sys_descr: None,
            sys_object_id: None,
            sys_contact: None,
            sys_location: Some(loc.into()),
            os: os.into(),
            hardware: Some("MX480".into()),
            version: None,
            serial: None,
            uptime: Some(id * 10),
            uptime_source: None,
            status: status.unwrap_or(DeviceStatus::Down),
            status_reason: String::new(),
            last_polled: status.map(|_| t),
            last_polled_timetaken: Some(id as f64),
            last_discovered: None,
            poller_group: (id % 2) as i32,
            disabled: false,
            snmp: SnmpConfig::default(),
            inserted: t,
        }
    }

    fn fleet() -> Vec<Device> {
        vec![
            dev(1, "core1", Some(DeviceStatus::Up), "junos", "DC1"),
            dev(2, "edge9", Some(DeviceStatus::Down), "ios", "DC2"),
            dev(3, "acc1", Some(DeviceStatus::Up), "ios", "DC1"),
            dev(4, "new1", None, "generic", ""),
            dev(5, "down2", Some(DeviceStatus::Down), "junos", "DC1"),
        ]
    }

    fn hosts(s: &Selection) -> Vec<String> {
        s.rows.iter().map(|d| d.hostname.clone()).collect()
    }

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery::from_map(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn down_first_by_default_then_hostname() {
        let f = fleet();
        let s = select(&f, &q(&[]), 2000, 600);
        assert_eq!(hosts(&s), ["down2", "edge9", "new1", "acc1", "core1"]);
        assert_eq!(s.matched, 5);
    }

    #[test]
    fn search_and_filters() {
        let f = fleet();
        assert_eq!(hosts(&select(&f, &q(&[("q", "EDGE")]), 0, 600)), ["edge9"]);
        assert_eq!(
            hosts(&select(&f, &q(&[("q", "dc1")]), 0, 600)).len(),
            3,
            "location"
        );
        assert_eq!(
            hosts(&select(&f, &q(&[("q", "mx480")]), 0, 600)).len(),
            5,
            "hardware"
        );
        assert_eq!(
            hosts(&select(&f, &q(&[("state", "down")]), 0, 600)),
            ["down2", "edge9"]
        );
        assert_eq!(
            hosts(&select(&f, &q(&[("state", "pending")]), 0, 600)),
            ["new1"]
        );
        assert_eq!(
            hosts(&select(
                &f,
                &q(&[("os", "ios"), ("sort", "hostname")]),
                0,
                600
            )),
            ["acc1", "edge9"]
        );
        assert_eq!(
            hosts(&select(&f, &q(&[("location", "DC2")]), 0, 600)),
            ["edge9"]
        );
        assert_eq!(select(&f, &q(&[("group", "1")]), 0, 600).matched, 3);
        // Stale: last polled at 1000, now 2000, limit 600 (never polled counts from insertion).
        assert_eq!(select(&f, &q(&[("state", "stale")]), 2000, 600).matched, 5);
        assert_eq!(select(&f, &q(&[("state", "stale")]), 1500, 600).matched, 0);
    }

    #[test]
    fn sorting_and_paging() {
        let f = fleet();
        let s = select(&f, &q(&[("sort", "uptime"), ("dir", "desc")]), 0, 600);
        assert_eq!(hosts(&s)[0], "down2");
        let many: Vec<Device> = (1..=230)
            .map(|i| dev(i, &format!("h{i:04}"), Some(DeviceStatus::Up), "linux", ""))
            .collect();
        let s = select(
            &many,
            &q(&[("sort", "hostname"), ("per", "100"), ("page", "3")]),
            0,
            600,
        );
        assert_eq!((s.page, s.pages, s.rows.len()), (3, 3, 30));
        assert_eq!(s.rows[0].hostname, "h0201");
        // Past the end: the last page; a bad size: the default.
        let s = select(&many, &q(&[("page", "99"), ("per", "7")]), 0, 600);
        assert_eq!((s.page, s.rows.len()), (3, 30));
    }

    #[test]
    fn urls_keep_the_other_parameters() {
        let lq = q(&[("q", "dc 1"), ("state", "down"), ("page", "2")]);
        assert_eq!(lq.url(&[]), "/devices?q=dc%201&state=down&page=2");
        assert_eq!(lq.url(&[("page", "1")]), "/devices?q=dc%201&state=down");
        assert_eq!(q(&[]).url(&[]), "/devices");
    }
}
