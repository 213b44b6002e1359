//! `GET /`: the dashboard an engineer opens first. What is broken comes first: devices down
//! now (with since when and why), open alerts by severity, the poller cluster's health; then
//! the device counts, recent events and the busiest interfaces. A normal user sees only their
//! devices' rows and no cluster-wide panels.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use lookout_store::{Event, Severity};

use crate::device_list::{state_of, ListState};
use crate::error::WebError;
use crate::pages::{Layout, PageUser};
use crate::{view, Shared};

/// Rows in each list.
const DOWN_ROWS: usize = 50;
const EVENT_ROWS: u32 = 20;
const TOP_PORTS: usize = 10;

struct DownRow {
    id: i64,
    hostname: String,
    reason: String,
    since: String,
    since_at: String,
}

struct EventRow {
    at: String,
    hostname: String,
    device_id: Option<i64>,
    kind: String,
    message: String,
    /// CSS class of the severity (as on the device page).
    class: &'static str,
}

struct TopPort {
    device_id: i64,
    hostname: String,
    port_id: i64,
    name: String,
    alias: String,
    in_rate: String,
    out_rate: String,
}

struct AlertCounts {
    critical: usize,
    warning: usize,
    other: usize,
    acknowledged: usize,
}

struct Cluster {
    error: String,
    master: String,
    alive: usize,
    dead: usize,
    due: u64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    total: usize,
    up: usize,
    down: usize,
    pending: usize,
    disabled: usize,
    down_rows: Vec<DownRow>,
    more_down: usize,
    /// Cluster-wide panels: global read and admin only.
    sees_all: bool,
    alerts: Option<AlertCounts>,
    cluster: Option<Cluster>,
    events: Vec<EventRow>,
    top: Vec<TopPort>,
}

/// When the device went down: its newest "status changed to Down" event, if any is kept.
fn down_since(events: &[Event]) -> Option<i64> {
    events
        .iter()
        .find(|e| e.message.contains("changed to Down"))
        .map(|e| e.datetime.timestamp())
}

async fn cluster(ctx: &Shared) -> Cluster {
    let coord = &ctx.state.coord;
    let snapshot = async {
        Ok::<_, lookout_coord::CoordError>((
            coord.current_master().await?,
            coord.nodes().await?,
            coord.queue_depths().await?,
        ))
    };
    match snapshot.await {
        Ok((master, nodes, queues)) => Cluster {
            error: String::new(),
            master: master.map(|m| m.node_id).unwrap_or_default(),
            alive: nodes.iter().filter(|n| n.alive).count(),
            dead: nodes.iter().filter(|n| !n.alive).count(),
            due: queues.iter().map(|q| q.due).sum(),
        },
        Err(e) => Cluster {
            error: e.to_string(),
            master: String::new(),
            alive: 0,
            dead: 0,
            due: 0,
        },
    }
}

/// `None` when the alerts cannot be read (the panel says so; the rest of the page stands).
async fn alert_counts(ctx: &Shared) -> Option<AlertCounts> {
    let open = match crate::alerts::model::alerts(&ctx.state.store, &Default::default()).await {
        Ok(open) => open,
        Err(f) => {
            tracing::warn!(error = %f.message, "dashboard: alerts unreadable");
            return None;
        }
    };
    let mut c = AlertCounts {
        critical: 0,
        warning: 0,
        other: 0,
        acknowledged: 0,
    };
    for a in &open {
        match (a.phase(), a.severity.as_str()) {
            ("acknowledged", _) => c.acknowledged += 1,
            ("alerting", "critical") => c.critical += 1,
            ("alerting", "warning") => c.warning += 1,
            ("alerting", _) => c.other += 1,
            _ => {}
        }
    }
    Some(c)
}

/// `GET /`
pub(crate) async fn page(u: PageUser, State(ctx): State<Shared>) -> Result<Response, WebError> {
    let store = &ctx.state.store;
    let devices = u.access.visible(store.devices().await?);
    let now = Utc::now().timestamp();
    let count = |s: ListState| devices.iter().filter(|d| state_of(d) == s).count();
    let hostnames: HashMap<i64, String> = devices
        .iter()
        .map(|d| (d.device_id, d.hostname.clone()))
        .collect();

    let mut down: Vec<_> = devices
        .iter()
        .filter(|d| state_of(d) == ListState::Down)
        .collect();
    down.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    let mut down_rows = Vec::new();
    for d in down.iter().take(DOWN_ROWS) {
        let since = down_since(&store.events(Some(d.device_id), 50).await?)
            .or_else(|| d.last_polled.map(|t| t.timestamp()));
        down_rows.push(DownRow {
            id: d.device_id,
            hostname: d.hostname.clone(),
            reason: d.status_reason.clone(),
            since: since.map(|t| view::ago(now - t)).unwrap_or_default(),
            since_at: since
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| view::librenms_time(&t))
                .unwrap_or_default(),
        });
    }

    let events = store
        .events(None, EVENT_ROWS * 5)
        .await?
        .into_iter()
        .filter(|e| {
            e.device_id
                .map_or(u.access.sees_all(), |d| u.access.can_see(d))
        })
        .take(EVENT_ROWS as usize)
        .map(|e| EventRow {
            at: view::librenms_time(&e.datetime),
            hostname: e
                .device_id
                .and_then(|d| hostnames.get(&d).cloned())
                .unwrap_or_default(),
            device_id: e.device_id,
            kind: e.kind,
            class: match e.severity {
                Severity::Ok => "up",
                Severity::Warning => "warn",
                Severity::Error | Severity::Critical => "down",
                Severity::Info | Severity::Notice => "",
            },
            message: e.message,
        })
        .collect();

    let top = store
        .top_ports(200)
        .await?
        .into_iter()
        .filter(|p| u.access.can_see(p.device_id))
        .take(TOP_PORTS)
        .map(|p| TopPort {
            device_id: p.device_id,
            hostname: hostnames.get(&p.device_id).cloned().unwrap_or_default(),
            port_id: p.port_id,
            name: p.if_name.clone().or(p.if_descr.clone()).unwrap_or_default(),
            alias: p.if_alias.clone().unwrap_or_default(),
            in_rate: p
                .in_octets_rate
                .map(|r| view::bits_per_sec(r * 8.0))
                .unwrap_or_default(),
            out_rate: p
                .out_octets_rate
                .map(|r| view::bits_per_sec(r * 8.0))
                .unwrap_or_default(),
        })
        .collect();

    let (alerts, cluster) = if u.access.sees_all() {
        (alert_counts(&ctx).await, Some(cluster(&ctx).await))
    } else {
        (None, None)
    };
    let page = DashboardPage {
        layout: Layout::new(&ctx, &u),
        total: devices.len(),
        up: count(ListState::Up),
        down: down.len(),
        pending: count(ListState::Pending),
        disabled: count(ListState::Disabled),
        more_down: down.len().saturating_sub(DOWN_ROWS),
        down_rows,
        sees_all: u.access.sees_all(),
        alerts,
        cluster,
        events,
        top,
    };
    Ok(Html(page.render()?).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn ev(t: i64, msg: &str) -> Event {
        Event {
            event_id: t,
            device_id: Some(1),
            datetime: Utc.timestamp_opt(t, 0).unwrap(),
            kind: "system".into(),
            message: msg.into(),
            severity: Severity::Warning,
            reference: None,
        }
    }

    #[test]
    fn down_since_is_the_newest_down_event() {
        // Newest first, as the store lists them.
        let events = [
            ev(300, "eth0 went up"),
            ev(200, "Device status changed to Down from icmp"),
            ev(100, "Device status changed to Down from snmp"),
        ];
        assert_eq!(down_since(&events), Some(200));
        assert_eq!(down_since(&events[..1]), None);
    }
}
