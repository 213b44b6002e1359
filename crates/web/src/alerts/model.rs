//! Alert, alert-log and outbox rows joined with their devices, rules and transports, as
//! the API and the pages show them; the filters both accept (`state`, `severity`,
//! `device`, `rule`).

use std::collections::HashMap;

use lookout_alerting::rule::Severity;
use lookout_alerting::state::{AlertState, Phase};
use lookout_core::Device;
use lookout_store::{AlertLogRow, AlertRow, AlertRule, DeliveryAttempt, OutboxRow, Store};
use serde_json::{json, Value};

use super::Failure;
use crate::view::librenms_time;

/// Which alerts to list. `states: None` means the open ones (LibreNMS's list without a
/// `state` parameter shows what is alerting; Lookout also counts alerts pending their
/// delay as open).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AlertFilter {
    /// LibreNMS state numbers (0 ok, 1 alert, 2 acknowledged, 3 worse, 4 better); `Some`
    /// of an empty list: every alert.
    pub(crate) states: Option<Vec<i32>>,
    pub(crate) severities: Vec<Severity>,
    pub(crate) device_id: Option<i64>,
    pub(crate) rule_id: Option<i64>,
}

impl AlertFilter {
    /// From query parameters: `state=1,2` (or `all`), `severity=warning,critical`,
    /// `device=<hostname or id>`, `rule=<id>`. Empty values are no filter.
    pub(crate) async fn parse(
        store: &Store,
        q: &HashMap<String, String>,
    ) -> Result<AlertFilter, Failure> {
        let mut f = AlertFilter::default();
        let param = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        if let Some(s) = param("state") {
            f.states = Some(if s.eq_ignore_ascii_case("all") {
                Vec::new()
            } else {
                list(s, "state", |v| {
                    v.parse::<i32>().ok().filter(|n| (0..=4).contains(n))
                })?
            });
        }
        if let Some(s) = param("severity") {
            f.severities = list(s, "severity", |v| v.parse::<Severity>().ok())?;
        }
        if let Some(d) = param("device") {
            f.device_id = Some(find_device(store, d).await?.device_id);
        }
        if let Some(r) = param("rule").or_else(|| param("rule_id")) {
            f.rule_id =
                Some(r.parse().map_err(|_| {
                    Failure::bad_request(format!("rule={r:?}: expected a rule id"))
                })?);
        }
        Ok(f)
    }

    fn keeps(&self, a: &AlertView) -> bool {
        let state_ok = match &self.states {
            None => a.row.open,
            Some(s) => s.is_empty() || s.contains(&a.row.state),
        };
        state_ok
            && (self.severities.is_empty()
                || a.severity
                    .parse::<Severity>()
                    .is_ok_and(|s| self.severities.contains(&s)))
            && self.device_id.is_none_or(|d| d == a.row.key.device_id)
            && self.rule_id.is_none_or(|r| r == a.row.key.rule_id)
    }
}

fn list<T>(s: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, Failure> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            parse(v).ok_or_else(|| {
                Failure::bad_request(match what {
                    "state" => format!(
                        "state={v:?}: expected 0 (ok), 1 (alert), 2 (acknowledged), 3 (worse), 4 (better) or all"
                    ),
                    _ => format!("{what}={v:?}: expected ok, warning or critical"),
                })
            })
        })
        .collect()
}

/// A device by hostname, else by numeric id (as LibreNMS's API resolves `:hostname`).
pub(crate) async fn find_device(store: &Store, key: &str) -> Result<Device, Failure> {
    if let Some(d) = store.device_by_hostname(key).await? {
        return Ok(d);
    }
    if let Ok(id) = key.parse::<i64>() {
        if let Some(d) = store.device(id).await? {
            return Ok(d);
        }
    }
    Err(Failure::not_found(format!("device {key} does not exist")))
}

/// Devices and rules by id, for naming what rows refer to.
pub(crate) struct Names {
    pub(crate) devices: HashMap<i64, Device>,
    pub(crate) rules: HashMap<i64, AlertRule>,
}

impl Names {
    pub(crate) async fn load(store: &Store) -> Result<Names, Failure> {
        Ok(Names {
            devices: store
                .devices()
                .await?
                .into_iter()
                .map(|d| (d.device_id, d))
                .collect(),
            rules: store
                .alert_rules()
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect(),
        })
    }

    pub(crate) fn hostname(&self, device_id: i64) -> String {
        self.devices
            .get(&device_id)
            .map_or_else(|| format!("device {device_id}"), |d| d.hostname.clone())
    }

    pub(crate) fn rule_name(&self, rule_id: i64) -> String {
        self.rules
            .get(&rule_id)
            .map_or_else(|| format!("rule {rule_id}"), |r| r.name.clone())
    }
}

/// One alert with what it is about.
pub(crate) struct AlertView {
    pub(crate) row: AlertRow,
    /// `None` when the stored state cannot be read (edited by hand): shown, not decided on.
    pub(crate) state: Option<AlertState>,
    pub(crate) hostname: String,
    pub(crate) sys_name: Option<String>,
    pub(crate) rule_name: String,
    /// The alert's own severity (the rule's when the state has none).
    pub(crate) severity: String,
    /// The entity's label (`eth0`, `/var`) for per-entity alerts.
    pub(crate) entity: Option<String>,
}

impl AlertView {
    fn new(row: AlertRow, names: &Names) -> AlertView {
        let state = AlertState::from_json(&row.info).ok();
        let device = names.devices.get(&row.key.device_id);
        let rule = names.rules.get(&row.key.rule_id);
        let severity = state
            .as_ref()
            .map(|s| s.severity.as_str().to_string())
            .or_else(|| rule.map(|r| r.severity.clone()))
            .unwrap_or_default();
        let entity = (!row.key.entity_type.is_empty()).then(|| {
            state
                .as_ref()
                .and_then(|s| {
                    s.faults.0.iter().find_map(|f| {
                        (f.get("entity_id").and_then(Value::as_i64) == Some(row.key.entity_id))
                            .then(|| f.get("label").and_then(Value::as_str))
                            .flatten()
                    })
                })
                .map_or_else(
                    || format!("{} {}", row.key.entity_type, row.key.entity_id),
                    str::to_string,
                )
        });
        AlertView {
            hostname: names.hostname(row.key.device_id),
            sys_name: device.and_then(|d| d.sys_name.clone()),
            rule_name: names.rule_name(row.key.rule_id),
            severity,
            entity,
            state,
            row,
        }
    }

    pub(crate) fn phase(&self) -> &'static str {
        match self.state.as_ref().map(|s| (s.phase, s.ack.is_some())) {
            Some((Phase::Triggered, true)) => "acknowledged",
            Some((Phase::Triggered, false)) => "alerting",
            Some((Phase::Pending, _)) => "pending",
            Some((Phase::Recovered, _)) => "recovered",
            None => "unknown",
        }
    }

    /// LibreNMS's `alerts` columns plus the names and Lookout's state details.
    pub(crate) fn to_json(&self) -> Value {
        let r = &self.row;
        let s = self.state.as_ref();
        let ack = s.and_then(|s| s.ack.as_ref()).map(|a| {
            json!({
                "at": librenms_time(&a.at),
                "by": a.by,
                "note": a.note,
                "until": a.until.as_ref().map(librenms_time),
                "until_clear": !a.until_worse,
            })
        });
        json!({
            "id": r.id,
            "device_id": r.key.device_id,
            "rule_id": r.key.rule_id,
            "state": r.state,
            "alerted": r.alerted,
            "open": i32::from(r.open),
            "note": r.note.clone().unwrap_or_default(),
            "timestamp": librenms_time(&r.timestamp),
            "hostname": self.hostname,
            "sysName": self.sys_name,
            "name": self.rule_name,
            "severity": self.severity,
            "entity_type": (!r.key.entity_type.is_empty()).then_some(&r.key.entity_type),
            "entity_id": (!r.key.entity_type.is_empty()).then_some(r.key.entity_id),
            "entity": self.entity,
            "phase": self.phase(),
            "since": s.map(|s| librenms_time(&s.since)),
            "triggered_at": s.and_then(|s| s.triggered_at.as_ref().map(librenms_time)),
            "recovered_at": s.and_then(|s| s.recovered_at.as_ref().map(librenms_time)),
            "acknowledged": ack,
            "faults": s.map(|s| s.faults.0.clone()).unwrap_or_default(),
        })
    }
}

/// The alerts `filter` keeps, most severe first, then newest (the API re-sorts by time).
pub(crate) async fn alerts(store: &Store, filter: &AlertFilter) -> Result<Vec<AlertView>, Failure> {
    let rows = store.alerts().await?;
    let names = Names::load(store).await?;
    let mut out: Vec<AlertView> = rows
        .into_iter()
        .map(|r| AlertView::new(r, &names))
        .filter(|a| filter.keeps(a))
        .collect();
    out.sort_by(|a, b| {
        let sev = |v: &AlertView| v.severity.parse::<Severity>().ok();
        sev(b)
            .cmp(&sev(a))
            .then(b.row.timestamp.cmp(&a.row.timestamp))
    });
    Ok(out)
}

/// One alert by id.
pub(crate) async fn alert(store: &Store, id: i64) -> Result<AlertView, Failure> {
    let row = store
        .alert(id)
        .await?
        .ok_or_else(|| Failure::not_found(format!("alert {id} does not exist")))?;
    let names = Names::load(store).await?;
    Ok(AlertView::new(row, &names))
}

/// The most alert-log rows one request may page through (the store reads from the newest).
pub(crate) const LOG_WINDOW: u32 = 100_000;

/// A page of the alert log, newest first: rows `start..start + limit`.
pub(crate) async fn log_page(
    store: &Store,
    device_id: Option<i64>,
    start: u32,
    limit: u32,
) -> Result<Vec<AlertLogRow>, Failure> {
    let upto = start.saturating_add(limit);
    if upto > LOG_WINDOW {
        return Err(Failure::bad_request(format!(
            "start + limit may not exceed {LOG_WINDOW}"
        )));
    }
    let rows = store.alert_log(device_id, upto).await?;
    Ok(rows.into_iter().skip(start as usize).collect())
}

/// An alert-log row in LibreNMS's shape (`details` parsed, not a string).
pub(crate) fn log_json(r: &AlertLogRow, names: &Names) -> Value {
    json!({
        "id": r.id,
        "device_id": r.key.device_id,
        "hostname": names.hostname(r.key.device_id),
        "rule_id": r.key.rule_id,
        "name": names.rule_name(r.key.rule_id),
        "entity_type": (!r.key.entity_type.is_empty()).then_some(&r.key.entity_type),
        "entity_id": (!r.key.entity_type.is_empty()).then_some(r.key.entity_id),
        "state": r.state,
        "time_logged": librenms_time(&r.time_logged),
        "details": serde_json::from_str::<Value>(&r.details).unwrap_or(Value::Null),
    })
}

/// The outbox states an operator looks at by default: everything not yet delivered.
pub(crate) const UNDELIVERED: [&str; 3] = ["failed", "sending", "pending"];

/// Outbox rows in `states` (newest first, at most `limit` per state).
pub(crate) async fn outbox(
    store: &Store,
    states: &[&str],
    limit: u32,
) -> Result<Vec<OutboxRow>, Failure> {
    let mut rows = Vec::new();
    for s in states {
        rows.extend(store.outbox(Some(s), limit).await?);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.id));
    rows.truncate(limit as usize);
    Ok(rows)
}

/// An outbox row with its attempts and transport name. The notification is what the
/// alert told (rule, device, faults): it holds no transport secret.
pub(crate) fn outbox_json(
    r: &OutboxRow,
    attempts: &[DeliveryAttempt],
    transports: &HashMap<i64, String>,
) -> Value {
    let t = |x: &Option<lookout_core::Timestamp>| x.as_ref().map(librenms_time);
    json!({
        "id": r.id,
        "idempotency_key": r.idempotency_key,
        "state": r.state,
        "attempts": r.attempts,
        "transport_id": r.transport_id,
        "transport_name": transports.get(&r.transport_id),
        "alert_id": r.alert_id,
        "device_id": r.device_id,
        "created": librenms_time(&r.created),
        "next_attempt_at": librenms_time(&r.next_attempt_at),
        "last_attempt_at": t(&r.last_attempt_at),
        "delivered_at": t(&r.delivered_at),
        "last_error": r.last_error,
        "notification": serde_json::from_str::<Value>(&r.notification).unwrap_or(Value::Null),
        "attempt_log": attempts.iter().map(|a| json!({
            "id": a.id,
            "node_id": a.node_id,
            "token": a.token,
            "started": librenms_time(&a.started),
            "finished": t(&a.finished),
            "outcome": a.outcome,
            "detail": a.detail,
        })).collect::<Vec<_>>(),
    })
}

/// Transport names by id.
pub(crate) async fn transport_names(store: &Store) -> Result<HashMap<i64, String>, Failure> {
    Ok(store
        .alert_transports()
        .await?
        .into_iter()
        .map(|t| (t.transport_id, t.transport_name))
        .collect())
}
