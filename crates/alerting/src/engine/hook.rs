//! Decisions about one device's alerts, from a snapshot of its state: the poll hook (inside
//! the poll's fenced commit) and the master's time pass share them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use lookout_core::Device;
use lookout_store::{
    AlertChange, AlertHook, AlertInput, AlertKey, AlertRow, AlertRowNew, OutboxNew,
};
use tracing::warn;

use super::{maintenance, Catalog, Engine};
use crate::notification::{EntityRef, Notification};
use crate::rule::{in_scope, outcomes, CompiledRule, DeviceFacts};
use crate::snapshot::{Kind, Snapshot};
use crate::state::{self, AlertState, Decision, EvalContext, MaintenanceMode, Notify};

impl AlertHook for Engine {
    fn decide(&self, input: &AlertInput<'_>) -> Vec<AlertChange> {
        let cat = self.catalog();
        let snap = Snapshot::from_alert_input(input, self.cfg.interval_secs);
        let ev = DeviceEval::new(&cat, input.device, input.alerts, input.now);
        // A device that does not answer leaves its entities as last stored: rules over
        // them would decide from stale rows (recover a port alert, say), so only
        // device-level rules are evaluated until it answers again.
        let answering = input.device.status.is_up();
        let mut out = Vec::new();
        for lr in cat.rules.iter().filter(|r| !r.disabled) {
            let rule = &lr.compiled;
            if !answering && rule.expr.entity_kind().is_some() {
                continue;
            }
            ev.evaluate(rule, &snap, &mut out);
        }
        out
    }
}

/// Whether the master's time pass can evaluate `rule` from the device row alone: it reads
/// the clock and nothing but device fields.
pub(crate) fn evaluable_without_poll(rule: &CompiledRule) -> bool {
    rule.is_time_based() && rule.expr.fields().iter().all(|(k, _)| *k == Kind::Device)
}

/// One device's alerts being decided.
pub(crate) struct DeviceEval<'a> {
    pub cat: &'a Catalog,
    pub device: &'a Device,
    /// This device's alert rows.
    pub alerts: &'a [AlertRow],
    pub ctx: EvalContext,
}

impl<'a> DeviceEval<'a> {
    pub fn new(
        cat: &'a Catalog,
        device: &'a Device,
        alerts: &'a [AlertRow],
        now: DateTime<Utc>,
    ) -> Self {
        DeviceEval {
            cat,
            device,
            alerts,
            ctx: EvalContext {
                now,
                maintenance: maintenance::mode_at(&cat.maintenances, device, now),
            },
        }
    }

    /// Evaluates `rule` on `snap`: every subject it matches, and every alert of it on this
    /// device that it no longer matches (out of scope counts as not matching).
    pub fn evaluate(&self, rule: &CompiledRule, snap: &Snapshot<'_>, out: &mut Vec<AlertChange>) {
        let facts = DeviceFacts::of(self.device, &[]);
        let found = if in_scope(rule, &facts) {
            outcomes(rule, snap)
        } else {
            Vec::new()
        };
        let mut seen = HashSet::new();
        for o in found {
            let (etype, eid) = o.entity_key();
            let key = self.key(rule.id, etype, eid);
            seen.insert((etype.to_string(), eid));
            let row = self.row(&key);
            let Ok(prev) = parse(row) else { continue };
            let d = state::on_evaluation(prev.as_ref(), Some(o.faults), &rule.options, &self.ctx);
            out.extend(self.change(rule, key, row, o.entity, d));
        }
        for row in self.alerts.iter().filter(|r| r.key.rule_id == rule.id) {
            if seen.contains(&(row.key.entity_type.clone(), row.key.entity_id)) {
                continue;
            }
            let Ok(Some(prev)) = parse(Some(row)) else {
                continue;
            };
            let d = state::on_evaluation(Some(&prev), None, &rule.options, &self.ctx);
            out.extend(self.change(rule, row.key.clone(), Some(row), None, d));
        }
    }

    /// Time passed for every alert of `rule` on this device (delays, repeats, ack ends).
    pub fn tick(&self, rule: &CompiledRule, out: &mut Vec<AlertChange>) {
        for row in self.alerts.iter().filter(|r| r.key.rule_id == rule.id) {
            let Ok(Some(prev)) = parse(Some(row)) else {
                continue;
            };
            let d = state::on_tick(&prev, &rule.options, &self.ctx);
            out.extend(self.change(rule, row.key.clone(), Some(row), None, d));
        }
    }

    fn key(&self, rule_id: i64, etype: &str, eid: i64) -> AlertKey {
        AlertKey {
            rule_id,
            device_id: self.device.device_id,
            entity_type: etype.to_string(),
            entity_id: eid,
        }
    }

    fn row(&self, key: &AlertKey) -> Option<&'a AlertRow> {
        self.alerts.iter().find(|r| &r.key == key)
    }

    /// The store change of a decision, with its log row and one message per transport.
    pub fn change(
        &self,
        rule: &CompiledRule,
        key: AlertKey,
        row: Option<&AlertRow>,
        entity: Option<EntityRef>,
        d: Decision,
    ) -> Option<AlertChange> {
        if !d.changed && d.notify.is_none() && d.log.is_none() {
            return None;
        }
        let outbox = match (d.notify, d.state.as_ref()) {
            (Some(n), Some(s)) if self.ctx.maintenance != MaintenanceMode::Mute => {
                let entity = entity.or_else(|| entity_of(&key, s));
                let note = self.notification(rule, &key, entity, s, n);
                self.cat
                    .transports_of(rule)
                    .into_iter()
                    .map(|transport_id| OutboxNew {
                        idempotency_key: note.idempotency_key.clone(),
                        transport_id,
                        notification: serde_json::to_string(&note).unwrap_or_default(),
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Some(AlertChange {
            expect_version: row.map(|r| r.version),
            new: d.state.as_ref().map(|s| AlertRowNew {
                state: s.librenms_state(),
                alerted: i32::try_from(s.sent).unwrap_or(i32::MAX),
                open: s.is_open(),
                note: s.note().map(str::to_string),
                info: s.to_json(),
            }),
            log: d.log.map(|l| (l.state, l.details.to_string())),
            outbox,
            key,
        })
    }

    fn notification(
        &self,
        rule: &CompiledRule,
        key: &AlertKey,
        entity: Option<EntityRef>,
        s: &AlertState,
        n: Notify,
    ) -> Notification {
        let d = self.device;
        let entity_key = entity.as_ref().map(|e| (e.kind.as_str(), e.id));
        Notification {
            idempotency_key: state::idempotency_key(
                rule.id,
                key.device_id,
                entity_key,
                n.kind,
                n.sequence,
            ),
            kind: n.kind,
            // Set by the store to the row's id when it writes the message.
            alert_id: 0,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            severity: s.severity.as_str().to_string(),
            device_id: d.device_id,
            hostname: d.hostname.clone(),
            sys_name: d.sys_name.clone(),
            os: Some(d.os.clone()),
            hardware: d.hardware.clone(),
            location: d.sys_location.clone(),
            uptime_secs: d.uptime.and_then(|u| u64::try_from(u).ok()),
            entity,
            faults: s.faults.0.clone(),
            triggered_at: s.triggered_at.unwrap_or(s.since),
            timestamp: self.ctx.now,
            procedure_url: rule.options.procedure_url.clone(),
            sequence: n.sequence,
        }
    }
}

/// The state of a stored row; `Err` (logged) when it cannot be read: such a row is left
/// alone rather than replaced by a fresh alert (which would notify again).
fn parse(row: Option<&AlertRow>) -> Result<Option<AlertState>, ()> {
    match row {
        None => Ok(None),
        Some(r) => AlertState::from_json(&r.info).map(Some).map_err(|e| {
            warn!(alert_id = r.id, error = %e, "alert state unreadable; alert left as it is");
        }),
    }
}

/// The entity of a stored alert, labelled from its faults.
fn entity_of(key: &AlertKey, s: &AlertState) -> Option<EntityRef> {
    if key.entity_type.is_empty() {
        return None;
    }
    let label = s
        .faults
        .0
        .first()
        .and_then(|f| f.get("label"))
        .and_then(|l| l.as_str())
        .unwrap_or_default()
        .to_string();
    Some(EntityRef {
        kind: key.entity_type.clone(),
        id: key.entity_id,
        label,
    })
}
