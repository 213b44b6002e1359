//! What operators do through the CLI, the API and the web pages: seed and save rules
//! (checked before they are stored), acknowledge alerts, test a rule against now.

use chrono::{DateTime, Utc};
use lookout_core::Device;
use lookout_store::{AlertChange, AlertRow, AlertRule, NewAlertRule, Store, StoreError};
use serde::Serialize;
use tracing::info;

use super::hook::DeviceEval;
use super::{load_rule, Engine, EngineError};
use crate::defaults::default_rules;
use crate::rule::{in_scope, outcomes, CompiledRule, DeviceFacts, Outcome, RuleOptions};
use crate::snapshot::device_snapshot;
use crate::state::{self, Ack, AlertState, Decision, EvalContext};

/// Creates the built-in rules that are missing (by name). Safe on many nodes at once.
pub async fn seed_default_rules(store: &Store) -> Result<usize, EngineError> {
    let have: Vec<String> = store
        .alert_rules()
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut added = 0;
    for d in default_rules() {
        if have.iter().any(|n| n == d.name) {
            continue;
        }
        let rule = NewAlertRule {
            name: d.name.to_string(),
            rule: d.expr.to_string(),
            severity: d.options.severity.as_str().to_string(),
            extra: d.options.extra_json(),
            disabled: false,
            builtin: true,
            proc_url: None,
            transport_ids: Vec::new(),
        };
        match store.add_alert_rule(&rule).await {
            Ok(_) => added += 1,
            // Another node seeded it first.
            Err(StoreError::Duplicate { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if added > 0 {
        info!(added, "built-in alert rules created");
    }
    Ok(added)
}

/// Checks a rule as it would be stored (expression, severity, options): the error names
/// the position and the known fields.
pub fn check_rule(rule: &NewAlertRule) -> Result<CompiledRule, EngineError> {
    let row = AlertRule {
        id: 0,
        name: rule.name.clone(),
        rule: rule.rule.clone(),
        severity: rule.severity.clone(),
        extra: rule.extra.clone(),
        disabled: rule.disabled,
        builtin: rule.builtin,
        proc_url: rule.proc_url.clone(),
        updated: Utc::now(),
        transport_ids: rule.transport_ids.clone(),
    };
    load_rule(&row).map(|l| l.compiled)
}

/// What an operator sends to acknowledge.
#[derive(Clone, Debug, Default)]
pub struct AckRequest {
    pub note: String,
    pub by: Option<String>,
    /// Back to alerting at this time.
    pub until: Option<DateTime<Utc>>,
    /// Back to alerting (with a notification) when it gets worse.
    pub until_worse: bool,
}

/// One device a rule would alert on now.
#[derive(Clone, Debug, Serialize)]
pub struct RuleTestHit {
    pub device_id: i64,
    pub hostname: String,
    /// The subjects (device or entities) and their faults.
    pub matches: Vec<serde_json::Value>,
}

impl Engine {
    /// Saves a new rule after checking it.
    pub async fn add_rule(&self, rule: &NewAlertRule) -> Result<AlertRule, EngineError> {
        check_rule(rule)?;
        let r = self.store.add_alert_rule(rule).await?;
        self.reload().await?;
        Ok(r)
    }

    /// Replaces a rule after checking it.
    pub async fn update_rule(
        &self,
        id: i64,
        rule: &NewAlertRule,
    ) -> Result<AlertRule, EngineError> {
        check_rule(rule)?;
        let r = self.store.update_alert_rule(id, rule).await?;
        self.reload().await?;
        Ok(r)
    }

    /// Acknowledges a triggered alert: no repeats while acknowledged.
    pub async fn acknowledge(
        &self,
        alert_id: i64,
        req: AckRequest,
    ) -> Result<AlertRow, EngineError> {
        let now = Utc::now();
        let ack = Ack {
            at: now,
            by: req.by,
            note: req.note,
            until: req.until,
            until_worse: req.until_worse,
        };
        self.operator_change(alert_id, |prev, opts, ctx| {
            state::on_ack(prev, ack.clone(), opts, ctx)
        })
        .await
    }

    /// Withdraws an acknowledgement: alerting again, repeats count from now.
    pub async fn unacknowledge(&self, alert_id: i64) -> Result<AlertRow, EngineError> {
        self.operator_change(alert_id, state::on_unack).await
    }

    async fn operator_change<F>(&self, alert_id: i64, decide: F) -> Result<AlertRow, EngineError>
    where
        F: Fn(&AlertState, &RuleOptions, &EvalContext) -> Result<Decision, state::StateError>,
    {
        let row = self
            .store
            .alert(alert_id)
            .await?
            .ok_or(EngineError::AlertNotFound(alert_id))?;
        let cat = self.catalog();
        let rule = cat
            .rule(row.key.rule_id)
            .ok_or(EngineError::RuleNotFound(row.key.rule_id))?;
        let device = self
            .store
            .device(row.key.device_id)
            .await?
            .ok_or(EngineError::AlertNotFound(alert_id))?;
        let prev = AlertState::from_json(&row.info)
            .map_err(|e| EngineError::BadState(alert_id, e.to_string()))?;
        let rows = [row.clone()];
        let ev = DeviceEval::new(&cat, &device, &rows, Utc::now());
        let d = decide(&prev, &rule.compiled.options, &ev.ctx)?;
        let changes: Vec<AlertChange> = ev
            .change(&rule.compiled, row.key.clone(), Some(&row), None, d)
            .into_iter()
            .collect();
        let applied = self
            .store
            .apply_alert_changes(row.key.device_id, &changes)
            .await?;
        if applied.skipped > 0 {
            return Err(EngineError::Conflict);
        }
        self.store
            .alert(alert_id)
            .await?
            .ok_or(EngineError::AlertNotFound(alert_id))
    }

    /// What `rule` would alert on now, over every enabled device (or those listed):
    /// nothing is written.
    pub async fn test_rule(
        &self,
        rule: &CompiledRule,
        only: Option<&[i64]>,
    ) -> Result<Vec<RuleTestHit>, EngineError> {
        let now = Utc::now();
        let mut hits = Vec::new();
        for device in self.store.devices().await? {
            if device.disabled || only.is_some_and(|o| !o.contains(&device.device_id)) {
                continue;
            }
            let found = self.outcomes_now(rule, &device, now).await?;
            if !found.is_empty() {
                hits.push(RuleTestHit {
                    device_id: device.device_id,
                    hostname: device.hostname.clone(),
                    matches: found
                        .into_iter()
                        .map(|o| serde_json::json!({"entity": o.entity, "faults": o.faults}))
                        .collect(),
                });
            }
        }
        Ok(hits)
    }

    async fn outcomes_now(
        &self,
        rule: &CompiledRule,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, EngineError> {
        if !in_scope(rule, &DeviceFacts::of(device, &[])) {
            return Ok(Vec::new());
        }
        let id = device.device_id;
        let ports = self.store.ports(id).await?;
        let processors = self.store.processors(id).await?;
        let mempools = self.store.mempools(id).await?;
        let storage = self.store.storage(id).await?;
        let snap = device_snapshot(
            device,
            &ports,
            &processors,
            &mempools,
            &storage,
            None,
            now,
            self.cfg.interval_secs,
        );
        Ok(outcomes(rule, &snap))
    }
}
