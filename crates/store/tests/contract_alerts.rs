//! The store contract for alerting (migration 0006): rules and transports, alert changes
//! with the version check, the alert fence and the outbox, and alert decisions inside a
//! poll's fenced commit. Each function runs against SQLite and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use lookout_core::{DevicePollUpdate, DeviceStatus, NewDevice, SnmpConfig, Timestamp};
use lookout_store::{
    AlertChange, AlertHook, AlertInput, AlertKey, AlertRowNew, AlertTransport, AttemptOutcome,
    MasterFence, NewAlertRule, OutboxNew, PollAlerts, PollCommit, PollFence, Store, StoreError,
};

contract_tests!(
    rules_and_transports,
    changes_are_version_checked,
    fence_and_outbox,
    poll_commit_decides_alerts,
    stale_poll_decides_nothing,
);

fn t(secs: i64) -> Timestamp {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

async fn device(store: &Store, host: &str) -> i64 {
    store
        .add_device(&NewDevice {
            hostname: host.to_string(),
            snmp: SnmpConfig::default(),
            poller_group: 0,
        })
        .await
        .unwrap()
        .device_id
}

async fn webhook(store: &Store, name: &str) -> i64 {
    store
        .add_alert_transport(&AlertTransport {
            transport_id: 0,
            transport_name: name.into(),
            transport_type: "webhook".into(),
            is_default: true,
            transport_config: r#"{"url":"http://127.0.0.1:9/"}"#.into(),
        })
        .await
        .unwrap()
        .transport_id
}

fn new_rule(name: &str, transports: Vec<i64>) -> NewAlertRule {
    NewAlertRule {
        name: name.into(),
        rule: "device.status == \"down\"".into(),
        severity: "critical".into(),
        extra: r#"{"delay":0}"#.into(),
        disabled: false,
        builtin: false,
        proc_url: None,
        transport_ids: transports,
    }
}

fn key(rule_id: i64, device_id: i64) -> AlertKey {
    AlertKey {
        rule_id,
        device_id,
        entity_type: String::new(),
        entity_id: 0,
    }
}

fn row(state: i32, info: &str) -> AlertRowNew {
    AlertRowNew {
        state,
        alerted: 1,
        open: state != 0,
        note: None,
        info: info.into(),
    }
}

async fn rules_and_transports(store: Store) {
    let tr = webhook(&store, "hook").await;
    let r = store
        .add_alert_rule(&new_rule("down", vec![tr]))
        .await
        .unwrap();
    assert_eq!(r.transport_ids, vec![tr]);
    assert!(matches!(
        store.add_alert_rule(&new_rule("down", vec![])).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        store
            .add_alert_rule(&new_rule("other", vec![tr + 100]))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let mut changed = new_rule("down", vec![]);
    changed.severity = "warning".into();
    let u = store.update_alert_rule(r.id, &changed).await.unwrap();
    assert_eq!((u.severity.as_str(), u.transport_ids.len()), ("warning", 0));
    let all = store.alert_rules().await.unwrap();
    assert_eq!(
        all.len(),
        1,
        "the rule refused for its transport was not kept"
    );
    assert!(store.remove_alert_rule(r.id).await.unwrap());
    assert!(!store.remove_alert_rule(r.id).await.unwrap());
    assert!(store.remove_alert_transport(tr).await.unwrap());
    assert!(store.alert_transports().await.unwrap().is_empty());
}

async fn changes_are_version_checked(store: Store) {
    let dev = device(&store, "r1").await;
    let tr = webhook(&store, "hook").await;
    let rule = store
        .add_alert_rule(&new_rule("down", vec![]))
        .await
        .unwrap();
    let msg = OutboxNew {
        idempotency_key: "k1".into(),
        transport_id: tr,
        notification: r#"{"kind":"alert"}"#.into(),
    };
    let open = AlertChange {
        key: key(rule.id, dev),
        expect_version: None,
        new: Some(row(1, "{}")),
        log: Some((1, r#"{"faults":1}"#.into())),
        outbox: vec![msg.clone()],
    };
    let r = store
        .apply_alert_changes(dev, std::slice::from_ref(&open))
        .await
        .unwrap();
    assert_eq!((r.applied, r.skipped), (1, 0));
    // The same decision again (a stale reader) is skipped and writes nothing.
    let r = store.apply_alert_changes(dev, &[open]).await.unwrap();
    assert_eq!((r.applied, r.skipped), (0, 1));
    let alerts = store.alerts().await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].state, alerts[0].version, alerts[0].open),
        (1, 1, true)
    );
    let out = store.outbox(None, 10).await.unwrap();
    assert_eq!(out.len(), 1, "one message for one transition");
    let n: serde_json::Value = serde_json::from_str(&out[0].notification).unwrap();
    assert_eq!(
        n["alert_id"], alerts[0].id,
        "the store set the new alert's id"
    );
    assert_eq!(store.alert_log(Some(dev), 10).await.unwrap().len(), 1);

    let recover = AlertChange {
        key: key(rule.id, dev),
        expect_version: Some(1),
        new: Some(row(0, "{}")),
        log: Some((0, "{}".into())),
        outbox: vec![],
    };
    let r = store
        .apply_alert_changes(dev, std::slice::from_ref(&recover))
        .await
        .unwrap();
    assert_eq!(r.applied, 1);
    let a = store.alert(alerts[0].id).await.unwrap().unwrap();
    assert_eq!((a.state, a.version, a.open), (0, 2, false));
    assert_eq!(
        store
            .apply_alert_changes(dev, &[recover])
            .await
            .unwrap()
            .skipped,
        1
    );
    // Deleting the device removes its alerts, log and nothing else breaks.
    assert!(store.remove_device(dev).await.unwrap());
    assert!(store.alerts().await.unwrap().is_empty());
}

async fn fence_and_outbox(store: Store) {
    let dev = device(&store, "r1").await;
    let tr = webhook(&store, "hook").await;
    let rule = store
        .add_alert_rule(&new_rule("down", vec![]))
        .await
        .unwrap();
    let a = MasterFence {
        node_id: "a".into(),
        token: 500,
    };
    let b = MasterFence {
        node_id: "b".into(),
        token: 700,
    };
    assert!(store.alert_fence_claim(&a).await.unwrap());
    let change = AlertChange {
        key: key(rule.id, dev),
        expect_version: None,
        new: Some(row(1, "{}")),
        log: None,
        outbox: vec![OutboxNew {
            idempotency_key: "k1".into(),
            transport_id: tr,
            notification: "{}".into(),
        }],
    };
    store
        .apply_alert_changes_fenced(&a, dev, std::slice::from_ref(&change))
        .await
        .unwrap();
    let due = store.outbox_due(Utc::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let attempt = store
        .outbox_begin_attempt(&a, due[0].id)
        .await
        .unwrap()
        .unwrap();
    // Master b takes over while a's attempt is in flight.
    assert!(store.alert_fence_claim(&b).await.unwrap());
    assert!(
        !store.alert_fence_claim(&a).await.unwrap(),
        "an older token cannot claim back"
    );
    let err = store
        .outbox_finish_attempt(
            &a,
            due[0].id,
            attempt,
            &AttemptOutcome::Delivered {
                detail: "200".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AlertFenced {
                token: 500,
                current: 700
            }
        ),
        "{err}"
    );
    assert!(matches!(
        store.apply_alert_changes_fenced(&a, dev, &[change]).await,
        Err(StoreError::AlertFenced { .. })
    ));
    assert!(matches!(
        store.outbox_begin_attempt(&a, due[0].id).await,
        Err(StoreError::AlertFenced { .. })
    ));
    // The message whose outcome is unknown is due again, for the new master.
    let due = store.outbox_due(Utc::now(), 10).await.unwrap();
    assert_eq!((due.len(), due[0].state.as_str()), (1, "sending"));
    let attempt = store
        .outbox_begin_attempt(&b, due[0].id)
        .await
        .unwrap()
        .unwrap();
    store
        .outbox_finish_attempt(
            &b,
            due[0].id,
            attempt,
            &AttemptOutcome::Retry {
                error: "HTTP 500".into(),
                next_at: Utc::now() + Duration::seconds(3600),
            },
        )
        .await
        .unwrap();
    assert!(
        store.outbox_due(Utc::now(), 10).await.unwrap().is_empty(),
        "retry not due yet"
    );
    let later = Utc::now() + Duration::seconds(3601);
    assert_eq!(store.outbox_due(later, 10).await.unwrap().len(), 1);
    let attempt = store
        .outbox_begin_attempt(&b, due[0].id)
        .await
        .unwrap()
        .unwrap();
    store
        .outbox_finish_attempt(
            &b,
            due[0].id,
            attempt,
            &AttemptOutcome::Delivered {
                detail: "200".into(),
            },
        )
        .await
        .unwrap();
    assert!(store.outbox_due(later, 10).await.unwrap().is_empty());
    assert_eq!(
        store.outbox_begin_attempt(&b, due[0].id).await.unwrap(),
        None
    );
    let attempts = store.delivery_attempts(due[0].id).await.unwrap();
    let outcomes: Vec<(&str, u64)> = attempts
        .iter()
        .map(|x| (x.outcome.as_str(), x.token))
        .collect();
    assert_eq!(
        outcomes,
        vec![("sending", 500), ("retry", 700), ("delivered", 700)]
    );
    let row = &store.outbox(Some("delivered"), 10).await.unwrap()[0];
    assert_eq!((row.attempts, row.last_error.as_deref()), (3, None));
}

/// Opens an alert while the device is down, recovers it when up: from what the commit saw.
struct DownHook {
    rule_id: i64,
    transport_id: i64,
}

impl AlertHook for DownHook {
    fn decide(&self, input: &AlertInput<'_>) -> Vec<AlertChange> {
        let k = key(self.rule_id, input.device.device_id);
        let prev = input.alerts.iter().find(|a| a.key == k);
        let down = input.device.status == DeviceStatus::Down;
        let open = prev.is_some_and(|a| a.open);
        if down == open {
            return vec![];
        }
        let state = i32::from(down);
        vec![AlertChange {
            key: k,
            expect_version: prev.map(|a| a.version),
            new: Some(row(state, &format!("{{\"ports\":{}}}", input.ports.len()))),
            log: Some((state, "{}".into())),
            outbox: vec![OutboxNew {
                idempotency_key: format!("{}-{}", self.rule_id, prev.map_or(0, |a| a.version)),
                transport_id: self.transport_id,
                notification: "{}".into(),
            }],
        }]
    }
}

fn update(status: DeviceStatus, secs: i64) -> DevicePollUpdate {
    DevicePollUpdate {
        sys_name: Some("r1".into()),
        sys_descr: None,
        sys_object_id: None,
        sys_contact: None,
        sys_location: None,
        os: Some("linux".into()),
        hardware: None,
        version: None,
        serial: None,
        uptime: Some(1000),
        uptime_source: None,
        status,
        status_reason: String::new(),
        last_polled: t(secs),
        last_polled_timetaken: 0.25,
    }
}

async fn commit_with_hook(
    store: &Store,
    id: i64,
    hook: &Arc<DownHook>,
    status: DeviceStatus,
    fence: Option<PollFence>,
) -> Result<(), StoreError> {
    let mut device = store.device(id).await.unwrap().unwrap();
    device.status = status;
    let mut commit = PollCommit::new(update(status, 0), fence);
    commit.alerts = Some(PollAlerts {
        hook: hook.clone(),
        device,
        icmp: None,
    });
    store.commit_poll(id, &commit).await.map(|_| ())
}

async fn poll_commit_decides_alerts(store: Store) {
    let id = device(&store, "r1").await;
    let tr = webhook(&store, "hook").await;
    let rule = store
        .add_alert_rule(&new_rule("down", vec![]))
        .await
        .unwrap();
    let hook = Arc::new(DownHook {
        rule_id: rule.id,
        transport_id: tr,
    });
    commit_with_hook(&store, id, &hook, DeviceStatus::Up, None)
        .await
        .unwrap();
    assert!(store.alerts().await.unwrap().is_empty());
    commit_with_hook(&store, id, &hook, DeviceStatus::Down, None)
        .await
        .unwrap();
    commit_with_hook(&store, id, &hook, DeviceStatus::Down, None)
        .await
        .unwrap();
    let a = store.alerts().await.unwrap();
    assert_eq!(
        (a.len(), a[0].state, a[0].version),
        (1, 1, 1),
        "opened once"
    );
    commit_with_hook(&store, id, &hook, DeviceStatus::Up, None)
        .await
        .unwrap();
    let a = store.alerts().await.unwrap();
    assert_eq!((a[0].state, a[0].open), (0, false), "recovered");
    assert_eq!(store.outbox(None, 10).await.unwrap().len(), 2);
    assert_eq!(store.alert_log(Some(id), 10).await.unwrap().len(), 2);
}

async fn stale_poll_decides_nothing(store: Store) {
    let id = device(&store, "r1").await;
    let tr = webhook(&store, "hook").await;
    let rule = store
        .add_alert_rule(&new_rule("down", vec![]))
        .await
        .unwrap();
    let hook = Arc::new(DownHook {
        rule_id: rule.id,
        transport_id: tr,
    });
    assert!(store.register_poll_token(id, 100).await.unwrap());
    assert!(store.register_poll_token(id, 200).await.unwrap());
    let stale = PollFence {
        node_id: "a".into(),
        token: 100,
        started: Utc::now(),
    };
    let err = commit_with_hook(&store, id, &hook, DeviceStatus::Down, Some(stale))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    assert!(
        store.alerts().await.unwrap().is_empty(),
        "a stale poll creates no alert"
    );
    assert!(store.outbox(None, 10).await.unwrap().is_empty());
    let current = PollFence {
        node_id: "b".into(),
        token: 200,
        started: Utc::now(),
    };
    commit_with_hook(&store, id, &hook, DeviceStatus::Down, Some(current))
        .await
        .unwrap();
    assert_eq!(store.alerts().await.unwrap().len(), 1);
}
