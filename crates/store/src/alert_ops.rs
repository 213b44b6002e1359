//! Operations of the alerting tables, written once and expanded into each dialect's ops
//! module by `define_ops!` (so `run!` finds them, and `commit_poll` can apply a poll's alert
//! changes inside its one transaction).

/// Expands inside `define_ops!`'s module: `Conn`, `Row`, `enc_ts`, `enc_u64`, `query_err`
/// and the other operations are that module's.
macro_rules! alert_ops_body {
    () => {
        // ---------------------------------------------------------------- rules

        fn alert_rule_from_row(r: &Row) -> std::result::Result<crate::AlertRule, sqlx::Error> {
            Ok(crate::AlertRule {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                rule: r.try_get("rule")?,
                severity: r.try_get("severity")?,
                extra: r.try_get("extra")?,
                disabled: r.try_get("disabled")?,
                builtin: r.try_get("builtin")?,
                proc_url: r.try_get("proc")?,
                updated: r.try_get("updated")?,
                transport_ids: Vec::new(),
            })
        }

        pub(crate) async fn alert_rules(c: &mut Conn) -> Result<Vec<crate::AlertRule>> {
            const OP: &str = "alert_rules";
            let mut rules = sqlx::query(
                "SELECT id, name, rule, severity, extra, disabled, builtin, proc, updated \
                 FROM alert_rules ORDER BY id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?
            .iter()
            .map(alert_rule_from_row)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| query_err(OP, e))?;
            let map: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT rule_id, transport_id FROM alert_transport_map ORDER BY rule_id, transport_id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            for (rule_id, transport_id) in map {
                if let Some(r) = rules.iter_mut().find(|r| r.id == rule_id) {
                    r.transport_ids.push(transport_id);
                }
            }
            Ok(rules)
        }

        async fn alert_rule_by_id(c: &mut Conn, id: i64) -> Result<crate::AlertRule> {
            alert_rules(c)
                .await?
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| StoreError::NotFound {
                    what: "alert rule",
                    key: id.to_string(),
                })
        }

        async fn set_rule_transports(c: &mut Conn, id: i64, transports: &[i64]) -> Result<()> {
            const OP: &str = "set_rule_transports";
            sqlx::query("DELETE FROM alert_transport_map WHERE rule_id = ?")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            for t in transports {
                let res = sqlx::query(
                    "INSERT INTO alert_transport_map (rule_id, transport_id) VALUES (?, ?)",
                )
                .bind(id)
                .bind(*t)
                .execute(&mut *c)
                .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_fk(&e) => {
                        return Err(StoreError::NotFound {
                            what: "alert transport",
                            key: t.to_string(),
                        })
                    }
                    Err(e) if is_unique(&e) => {}
                    Err(e) => return Err(query_err(OP, e)),
                }
            }
            Ok(())
        }

        pub(crate) async fn add_alert_rule(
            c: &mut Conn,
            rule: &crate::NewAlertRule,
            at: Timestamp,
        ) -> Result<crate::AlertRule> {
            const OP: &str = "add_alert_rule";
            let res = sqlx::query(
                "INSERT INTO alert_rules (name, rule, severity, extra, disabled, builtin, proc, updated) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&rule.name)
            .bind(&rule.rule)
            .bind(&rule.severity)
            .bind(&rule.extra)
            .bind(rule.disabled)
            .bind(rule.builtin)
            .bind(&rule.proc_url)
            .bind(enc_ts(at))
            .execute(&mut *c)
            .await;
            match res {
                Ok(_) => {}
                Err(e) if is_unique(&e) => {
                    return Err(StoreError::Duplicate {
                        what: "alert rule",
                        key: rule.name.clone(),
                    })
                }
                Err(e) => return Err(query_err(OP, e)),
            }
            let id: i64 = sqlx::query_scalar("SELECT id FROM alert_rules WHERE name = ?")
                .bind(&rule.name)
                .fetch_one(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            set_rule_transports(c, id, &rule.transport_ids).await?;
            alert_rule_by_id(c, id).await
        }

        pub(crate) async fn update_alert_rule(
            c: &mut Conn,
            id: i64,
            rule: &crate::NewAlertRule,
            at: Timestamp,
        ) -> Result<crate::AlertRule> {
            const OP: &str = "update_alert_rule";
            let res = sqlx::query(
                "UPDATE alert_rules SET name = ?, rule = ?, severity = ?, extra = ?, disabled = ?, \
                 builtin = ?, proc = ?, updated = ? WHERE id = ?",
            )
            .bind(&rule.name)
            .bind(&rule.rule)
            .bind(&rule.severity)
            .bind(&rule.extra)
            .bind(rule.disabled)
            .bind(rule.builtin)
            .bind(&rule.proc_url)
            .bind(enc_ts(at))
            .bind(id)
            .execute(&mut *c)
            .await;
            match res {
                Ok(r) if r.rows_affected() == 0 => {
                    return Err(StoreError::NotFound {
                        what: "alert rule",
                        key: id.to_string(),
                    })
                }
                Ok(_) => {}
                Err(e) if is_unique(&e) => {
                    return Err(StoreError::Duplicate {
                        what: "alert rule",
                        key: rule.name.clone(),
                    })
                }
                Err(e) => return Err(query_err(OP, e)),
            }
            set_rule_transports(c, id, &rule.transport_ids).await?;
            alert_rule_by_id(c, id).await
        }

        pub(crate) async fn remove_alert_rule(c: &mut Conn, id: i64) -> Result<bool> {
            let res = sqlx::query("DELETE FROM alert_rules WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("remove_alert_rule", e))?;
            Ok(res.rows_affected() > 0)
        }

        // ---------------------------------------------------------------- transports

        fn transport_from_row(r: &Row) -> std::result::Result<crate::AlertTransport, sqlx::Error> {
            Ok(crate::AlertTransport {
                transport_id: r.try_get("transport_id")?,
                transport_name: r.try_get("transport_name")?,
                transport_type: r.try_get("transport_type")?,
                is_default: r.try_get("is_default")?,
                transport_config: r.try_get("transport_config")?,
            })
        }

        pub(crate) async fn alert_transports(c: &mut Conn) -> Result<Vec<crate::AlertTransport>> {
            const OP: &str = "alert_transports";
            sqlx::query(
                "SELECT transport_id, transport_name, transport_type, is_default, transport_config \
                 FROM alert_transports ORDER BY transport_id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?
            .iter()
            .map(transport_from_row)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| query_err(OP, e))
        }

        pub(crate) async fn add_alert_transport(
            c: &mut Conn,
            t: &crate::AlertTransport,
        ) -> Result<crate::AlertTransport> {
            const OP: &str = "add_alert_transport";
            let res = sqlx::query(
                "INSERT INTO alert_transports (transport_name, transport_type, is_default, transport_config) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&t.transport_name)
            .bind(&t.transport_type)
            .bind(t.is_default)
            .bind(&t.transport_config)
            .execute(&mut *c)
            .await;
            match res {
                Ok(_) => {}
                Err(e) if is_unique(&e) => {
                    return Err(StoreError::Duplicate {
                        what: "alert transport",
                        key: t.transport_name.clone(),
                    })
                }
                Err(e) => return Err(query_err(OP, e)),
            }
            alert_transports(c)
                .await?
                .into_iter()
                .find(|x| x.transport_name == t.transport_name)
                .ok_or_else(|| StoreError::NotFound {
                    what: "alert transport",
                    key: t.transport_name.clone(),
                })
        }

        pub(crate) async fn remove_alert_transport(c: &mut Conn, id: i64) -> Result<bool> {
            let res = sqlx::query("DELETE FROM alert_transports WHERE transport_id = ?")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("remove_alert_transport", e))?;
            Ok(res.rows_affected() > 0)
        }

        // ---------------------------------------------------------------- alerts

        const ALERT_COLS: &str = "id, device_id, rule_id, entity_type, entity_id, state, alerted, \
                                  open, note, timestamp, info, version";

        fn alert_from_row(r: &Row) -> std::result::Result<crate::AlertRow, sqlx::Error> {
            Ok(crate::AlertRow {
                id: r.try_get("id")?,
                key: crate::AlertKey {
                    rule_id: r.try_get("rule_id")?,
                    device_id: r.try_get("device_id")?,
                    entity_type: r.try_get("entity_type")?,
                    entity_id: r.try_get("entity_id")?,
                },
                state: r.try_get("state")?,
                alerted: r.try_get("alerted")?,
                open: r.try_get::<i32, _>("open")? != 0,
                note: r.try_get("note")?,
                timestamp: r.try_get("timestamp")?,
                info: r.try_get("info")?,
                version: r.try_get("version")?,
            })
        }

        async fn alerts_where(
            c: &mut Conn,
            op: &'static str,
            filter: &'static str,
            arg: Option<i64>,
        ) -> Result<Vec<crate::AlertRow>> {
            let text = format!("SELECT {ALERT_COLS} FROM alerts {filter} ORDER BY id");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
            if let Some(a) = arg {
                q = q.bind(a);
            }
            q.fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?
                .iter()
                .map(alert_from_row)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| query_err(op, e))
        }

        pub(crate) async fn alerts_all(c: &mut Conn) -> Result<Vec<crate::AlertRow>> {
            alerts_where(c, "alerts", "", None).await
        }

        pub(crate) async fn alert_by_id(c: &mut Conn, id: i64) -> Result<Option<crate::AlertRow>> {
            Ok(alerts_where(c, "alert", "WHERE id = ?", Some(id))
                .await?
                .into_iter()
                .next())
        }

        pub(crate) async fn device_alerts(
            c: &mut Conn,
            device_id: DeviceId,
        ) -> Result<Vec<crate::AlertRow>> {
            alerts_where(c, "device_alerts", "WHERE device_id = ?", Some(device_id)).await
        }

        /// The alert fence's current (token, node); the row is locked on MySQL.
        async fn alert_fence_read(c: &mut Conn, op: &'static str) -> Result<(u64, String)> {
            let sql = if dialect::SQLITE {
                "SELECT token, node_id FROM alert_fence WHERE id = 1"
            } else {
                "SELECT token, node_id FROM alert_fence WHERE id = 1 FOR UPDATE"
            };
            let row = sqlx::query(sql)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?;
            match row {
                Some(r) => {
                    let token: i64 = r.try_get("token").map_err(|e| query_err(op, e))?;
                    let node: String = r.try_get("node_id").map_err(|e| query_err(op, e))?;
                    Ok((u64::try_from(token).unwrap_or(0), node))
                }
                None => Ok((0, String::new())),
            }
        }

        /// `AlertFenced` unless `fence` holds the alert fence.
        async fn check_alert_fence(
            c: &mut Conn,
            op: &'static str,
            fence: &crate::MasterFence,
        ) -> Result<()> {
            let (token, node) = alert_fence_read(c, op).await?;
            if token != fence.token || node != fence.node_id {
                return Err(StoreError::AlertFenced {
                    token: fence.token,
                    current: token,
                });
            }
            Ok(())
        }

        pub(crate) async fn alert_fence_claim(
            c: &mut Conn,
            fence: &crate::MasterFence,
        ) -> Result<bool> {
            const OP: &str = "alert_fence_claim";
            let (token, node) = alert_fence_read(c, OP).await?;
            if token > fence.token || (token == fence.token && node != fence.node_id && token != 0) {
                return Ok(false);
            }
            let t = i64::try_from(fence.token).unwrap_or(i64::MAX);
            sqlx::query("UPDATE alert_fence SET token = ?, node_id = ? WHERE id = 1")
                .bind(t)
                .bind(&fence.node_id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            Ok(true)
        }

        /// Applies alert changes (under the device row lock, and the alert fence when
        /// given): each change only if its row is still at the version it was decided from.
        pub(crate) async fn apply_alert_changes(
            c: &mut Conn,
            fence: Option<&crate::MasterFence>,
            device_id: DeviceId,
            changes: &[crate::AlertChange],
            at: Timestamp,
        ) -> Result<crate::AppliedChanges> {
            const OP: &str = "apply_alert_changes";
            if let Some(f) = fence {
                check_alert_fence(&mut *c, OP, f).await?;
            }
            lock_device(&mut *c, OP, device_id).await?;
            let mut out = crate::AppliedChanges::default();
            for ch in changes {
                if ch.key.device_id != device_id {
                    continue;
                }
                if apply_alert_change(&mut *c, ch, at).await? {
                    out.applied += 1;
                } else {
                    out.skipped += 1;
                }
            }
            Ok(out)
        }

        /// One change inside a transaction that holds the device row lock; false when the
        /// row was not at the expected version (nothing written).
        pub(crate) async fn apply_alert_change(
            c: &mut Conn,
            ch: &crate::AlertChange,
            at: Timestamp,
        ) -> Result<bool> {
            const OP: &str = "apply_alert_change";
            let k = &ch.key;
            let current: Option<(i64, i64)> = sqlx::query_as(
                "SELECT id, version FROM alerts WHERE rule_id = ? AND device_id = ? \
                 AND entity_type = ? AND entity_id = ?",
            )
            .bind(k.rule_id)
            .bind(k.device_id)
            .bind(&k.entity_type)
            .bind(k.entity_id)
            .fetch_optional(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            if current.map(|(_, v)| v) != ch.expect_version {
                return Ok(false);
            }
            let alert_id = match (&ch.new, current) {
                (None, Some((id, _))) => {
                    sqlx::query("DELETE FROM alerts WHERE id = ?")
                        .bind(id)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                    Some(id)
                }
                (None, None) => None,
                (Some(n), Some((id, v))) => {
                    sqlx::query(
                        "UPDATE alerts SET state = ?, alerted = ?, open = ?, note = ?, timestamp = ?, \
                         info = ?, version = ? WHERE id = ?",
                    )
                    .bind(n.state)
                    .bind(n.alerted)
                    .bind(i32::from(n.open))
                    .bind(&n.note)
                    .bind(enc_ts(at))
                    .bind(&n.info)
                    .bind(v + 1)
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
                    Some(id)
                }
                (Some(n), None) => {
                    sqlx::query(
                        "INSERT INTO alerts (device_id, rule_id, entity_type, entity_id, state, alerted, \
                         open, note, timestamp, info, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    )
                    .bind(k.device_id)
                    .bind(k.rule_id)
                    .bind(&k.entity_type)
                    .bind(k.entity_id)
                    .bind(n.state)
                    .bind(n.alerted)
                    .bind(i32::from(n.open))
                    .bind(&n.note)
                    .bind(enc_ts(at))
                    .bind(&n.info)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
                    let id: i64 = sqlx::query_scalar(
                        "SELECT id FROM alerts WHERE rule_id = ? AND device_id = ? \
                         AND entity_type = ? AND entity_id = ?",
                    )
                    .bind(k.rule_id)
                    .bind(k.device_id)
                    .bind(&k.entity_type)
                    .bind(k.entity_id)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
                    Some(id)
                }
            };
            if let Some((state, details)) = &ch.log {
                sqlx::query(
                    "INSERT INTO alert_log (rule_id, device_id, entity_type, entity_id, state, details, \
                     time_logged) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(k.rule_id)
                .bind(k.device_id)
                .bind(&k.entity_type)
                .bind(k.entity_id)
                .bind(*state)
                .bind(details)
                .bind(enc_ts(at))
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            }
            for m in &ch.outbox {
                outbox_insert(&mut *c, m, alert_id, Some(k.device_id), at).await?;
            }
            Ok(true)
        }

        pub(crate) async fn alert_log(
            c: &mut Conn,
            device_id: Option<DeviceId>,
            limit: u32,
        ) -> Result<Vec<crate::AlertLogRow>> {
            const OP: &str = "alert_log";
            let rows = sqlx::query(
                "SELECT id, rule_id, device_id, entity_type, entity_id, state, details, time_logged \
                 FROM alert_log WHERE (? IS NULL OR device_id = ?) ORDER BY id DESC LIMIT ?",
            )
            .bind(device_id)
            .bind(device_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::AlertLogRow {
                        id: r.try_get("id")?,
                        key: crate::AlertKey {
                            rule_id: r.try_get("rule_id")?,
                            device_id: r.try_get("device_id")?,
                            entity_type: r.try_get("entity_type")?,
                            entity_id: r.try_get("entity_id")?,
                        },
                        state: r.try_get("state")?,
                        details: r.try_get("details")?,
                        time_logged: r.try_get("time_logged")?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err(OP, e))
        }

        // ---------------------------------------------------------------- outbox

        /// Inserts a message unless one with its key and transport exists (a retried
        /// transaction whose first commit landed writes it once).
        async fn outbox_insert(
            c: &mut Conn,
            m: &crate::OutboxNew,
            alert_id: Option<i64>,
            device_id: Option<DeviceId>,
            at: Timestamp,
        ) -> Result<()> {
            const OP: &str = "outbox_insert";
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM alert_outbox WHERE idempotency_key = ? AND transport_id = ?",
            )
            .bind(&m.idempotency_key)
            .bind(m.transport_id)
            .fetch_optional(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            if exists.is_some() {
                return Ok(());
            }
            let notification = crate::alerts::with_alert_id(&m.notification, alert_id);
            let res = sqlx::query(
                "INSERT INTO alert_outbox (idempotency_key, transport_id, alert_id, device_id, \
                 notification, state, attempts, next_attempt_at, created) \
                 VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            )
            .bind(&m.idempotency_key)
            .bind(m.transport_id)
            .bind(alert_id)
            .bind(device_id)
            .bind(notification)
            .bind(enc_ts(at))
            .bind(enc_ts(at))
            .execute(&mut *c)
            .await;
            match res {
                Ok(_) => Ok(()),
                // The transport was removed meanwhile: nobody to deliver to.
                Err(e) if is_fk(&e) => Ok(()),
                Err(e) => Err(query_err(OP, e)),
            }
        }

        pub(crate) async fn outbox_insert_all(
            c: &mut Conn,
            messages: &[crate::OutboxNew],
            at: Timestamp,
        ) -> Result<()> {
            for m in messages {
                outbox_insert(&mut *c, m, None, None, at).await?;
            }
            Ok(())
        }

        const OUTBOX_COLS: &str = "id, idempotency_key, transport_id, alert_id, device_id, notification, \
             state, attempts, next_attempt_at, created, last_attempt_at, delivered_at, last_error";

        fn outbox_from_row(r: &Row) -> std::result::Result<crate::OutboxRow, sqlx::Error> {
            Ok(crate::OutboxRow {
                id: r.try_get("id")?,
                idempotency_key: r.try_get("idempotency_key")?,
                transport_id: r.try_get("transport_id")?,
                alert_id: r.try_get("alert_id")?,
                device_id: r.try_get("device_id")?,
                notification: r.try_get("notification")?,
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                created: r.try_get("created")?,
                last_attempt_at: r.try_get("last_attempt_at")?,
                delivered_at: r.try_get("delivered_at")?,
                last_error: r.try_get("last_error")?,
            })
        }

        pub(crate) async fn outbox_due(
            c: &mut Conn,
            at: Timestamp,
            limit: u32,
        ) -> Result<Vec<crate::OutboxRow>> {
            const OP: &str = "outbox_due";
            let text = format!(
                "SELECT {OUTBOX_COLS} FROM alert_outbox WHERE state IN ('pending', 'sending') \
                 AND next_attempt_at <= ? ORDER BY id LIMIT ?"
            );
            sqlx::query(sqlx::AssertSqlSafe(text))
                .bind(enc_ts(at))
                .bind(i64::from(limit))
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?
                .iter()
                .map(outbox_from_row)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| query_err(OP, e))
        }

        pub(crate) async fn outbox_list(
            c: &mut Conn,
            state: Option<&str>,
            limit: u32,
        ) -> Result<Vec<crate::OutboxRow>> {
            const OP: &str = "outbox";
            let text = format!(
                "SELECT {OUTBOX_COLS} FROM alert_outbox WHERE (? IS NULL OR state = ?) \
                 ORDER BY id DESC LIMIT ?"
            );
            sqlx::query(sqlx::AssertSqlSafe(text))
                .bind(state)
                .bind(state)
                .bind(i64::from(limit))
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?
                .iter()
                .map(outbox_from_row)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| query_err(OP, e))
        }

        pub(crate) async fn outbox_begin_attempt(
            c: &mut Conn,
            fence: &crate::MasterFence,
            outbox_id: i64,
            at: Timestamp,
        ) -> Result<Option<i64>> {
            const OP: &str = "outbox_begin_attempt";
            check_alert_fence(&mut *c, OP, fence).await?;
            let res = sqlx::query(
                "UPDATE alert_outbox SET state = 'sending', attempts = attempts + 1, \
                 last_attempt_at = ? WHERE id = ? AND state IN ('pending', 'sending')",
            )
            .bind(enc_ts(at))
            .bind(outbox_id)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            if res.rows_affected() == 0 {
                return Ok(None);
            }
            let t = i64::try_from(fence.token).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO alert_delivery_attempts (outbox_id, node_id, token, started, outcome) \
                 VALUES (?, ?, ?, ?, 'sending')",
            )
            .bind(outbox_id)
            .bind(&fence.node_id)
            .bind(t)
            .bind(enc_ts(at))
            .execute(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            let id: i64 = sqlx::query_scalar(
                "SELECT MAX(id) FROM alert_delivery_attempts WHERE outbox_id = ? AND token = ?",
            )
            .bind(outbox_id)
            .bind(t)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            Ok(Some(id))
        }

        pub(crate) async fn outbox_finish_attempt(
            c: &mut Conn,
            fence: &crate::MasterFence,
            outbox_id: i64,
            attempt_id: i64,
            outcome: &crate::AttemptOutcome,
            at: Timestamp,
        ) -> Result<()> {
            const OP: &str = "outbox_finish_attempt";
            check_alert_fence(&mut *c, OP, fence).await?;
            let (state, attempt, detail, next, delivered) = match outcome {
                crate::AttemptOutcome::Delivered { detail } => {
                    ("delivered", "delivered", detail.as_str(), at, Some(at))
                }
                crate::AttemptOutcome::Retry { error, next_at } => {
                    ("pending", "retry", error.as_str(), *next_at, None)
                }
                crate::AttemptOutcome::Failed { error } => ("failed", "failed", error.as_str(), at, None),
            };
            let error = (state != "delivered").then_some(detail);
            sqlx::query(
                "UPDATE alert_outbox SET state = ?, next_attempt_at = ?, delivered_at = ?, \
                 last_error = ? WHERE id = ? AND state = 'sending'",
            )
            .bind(state)
            .bind(enc_ts(next))
            .bind(delivered.map(enc_ts))
            .bind(error)
            .bind(outbox_id)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            sqlx::query(
                "UPDATE alert_delivery_attempts SET finished = ?, outcome = ?, detail = ? WHERE id = ?",
            )
            .bind(enc_ts(at))
            .bind(attempt)
            .bind(detail)
            .bind(attempt_id)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            Ok(())
        }

        pub(crate) async fn delivery_attempts(
            c: &mut Conn,
            outbox_id: i64,
        ) -> Result<Vec<crate::DeliveryAttempt>> {
            const OP: &str = "delivery_attempts";
            let rows = sqlx::query(
                "SELECT id, outbox_id, node_id, token, started, finished, outcome, detail \
                 FROM alert_delivery_attempts WHERE outbox_id = ? ORDER BY id",
            )
            .bind(outbox_id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::DeliveryAttempt {
                        id: r.try_get("id")?,
                        outbox_id: r.try_get("outbox_id")?,
                        node_id: r.try_get("node_id")?,
                        token: u64::try_from(r.try_get::<i64, _>("token")?).unwrap_or(0),
                        started: r.try_get("started")?,
                        finished: r.try_get("finished")?,
                        outcome: r.try_get("outcome")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err(OP, e))
        }

        // ---------------------------------------------------------------- maintenance

        pub(crate) async fn maintenances(c: &mut Conn) -> Result<Vec<crate::Maintenance>> {
            const OP: &str = "maintenances";
            let rows = sqlx::query(
                "SELECT schedule_id, title, notes, start, end, recurring, start_recurring_hm, \
                 end_recurring_hm, recurring_day, behavior FROM alert_schedule ORDER BY schedule_id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            let mut out = rows
                .iter()
                .map(|r| {
                    Ok(crate::Maintenance {
                        schedule_id: r.try_get("schedule_id")?,
                        title: r.try_get("title")?,
                        notes: r.try_get("notes")?,
                        start: r.try_get("start")?,
                        end: r.try_get("end")?,
                        recurring: r.try_get("recurring")?,
                        start_recurring_hm: r.try_get("start_recurring_hm")?,
                        end_recurring_hm: r.try_get("end_recurring_hm")?,
                        recurring_day: r.try_get("recurring_day")?,
                        behavior: r.try_get("behavior")?,
                        items: Vec::new(),
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err(OP, e))?;
            let items: Vec<(i64, i64, String)> = sqlx::query_as(
                "SELECT schedule_id, alert_schedulable_id, alert_schedulable_type \
                 FROM alert_schedulables ORDER BY item_id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            for (sid, id, kind) in items {
                if let Some(m) = out.iter_mut().find(|m| m.schedule_id == sid) {
                    m.items.push((kind, id));
                }
            }
            Ok(out)
        }

        pub(crate) async fn add_maintenance(
            c: &mut Conn,
            m: &crate::Maintenance,
        ) -> Result<crate::Maintenance> {
            const OP: &str = "add_maintenance";
            sqlx::query(
                "INSERT INTO alert_schedule (title, notes, start, end, recurring, start_recurring_hm, \
                 end_recurring_hm, recurring_day, behavior) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&m.title)
            .bind(&m.notes)
            .bind(enc_ts(crate::micros(m.start)))
            .bind(enc_ts(crate::micros(m.end)))
            .bind(m.recurring)
            .bind(&m.start_recurring_hm)
            .bind(&m.end_recurring_hm)
            .bind(&m.recurring_day)
            .bind(m.behavior)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            let id: i64 = sqlx::query_scalar("SELECT MAX(schedule_id) FROM alert_schedule")
                .fetch_one(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            for (kind, item) in &m.items {
                sqlx::query(
                    "INSERT INTO alert_schedulables (schedule_id, alert_schedulable_id, \
                     alert_schedulable_type) VALUES (?, ?, ?)",
                )
                .bind(id)
                .bind(*item)
                .bind(kind)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            }
            maintenances(c)
                .await?
                .into_iter()
                .find(|x| x.schedule_id == id)
                .ok_or_else(|| StoreError::NotFound {
                    what: "maintenance",
                    key: id.to_string(),
                })
        }

        pub(crate) async fn remove_maintenance(c: &mut Conn, id: i64) -> Result<bool> {
            let res = sqlx::query("DELETE FROM alert_schedule WHERE schedule_id = ?")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("remove_maintenance", e))?;
            Ok(res.rows_affected() > 0)
        }

        // ---------------------------------------------------------------- in the poll commit

        /// Decides and applies a poll's alert changes inside `commit_poll`'s transaction
        /// (which holds the device row lock): entities not synced by this poll are read as
        /// stored.
        pub(crate) async fn commit_poll_alerts(
            c: &mut Conn,
            id: DeviceId,
            a: &crate::PollAlerts,
            synced: PollSynced,
            at: Timestamp,
        ) -> Result<()> {
            let ports = match synced.ports {
                Some(p) => p,
                None => ports(&mut *c, id).await?,
            };
            let processors = match synced.processors {
                Some(p) => p,
                None => processors(&mut *c, id).await?,
            };
            let mempools = match synced.mempools {
                Some(p) => p,
                None => mempools(&mut *c, id).await?,
            };
            let storage = match synced.storage {
                Some(p) => p,
                None => storage(&mut *c, id).await?,
            };
            let alerts = device_alerts(&mut *c, id).await?;
            let changes = a.hook.decide(&crate::AlertInput {
                device: &a.device,
                ports: &ports,
                processors: &processors,
                mempools: &mempools,
                storage: &storage,
                icmp: a.icmp,
                alerts: &alerts,
                now: at,
            });
            for ch in changes.iter().filter(|ch| ch.key.device_id == id) {
                apply_alert_change(&mut *c, ch, at).await?;
            }
            Ok(())
        }

        /// What `commit_poll` synced, handed to `commit_poll_alerts`.
        #[derive(Default)]
        pub(crate) struct PollSynced {
            pub(crate) ports: Option<Vec<Port>>,
            pub(crate) processors: Option<Vec<crate::Processor>>,
            pub(crate) mempools: Option<Vec<crate::Mempool>>,
            pub(crate) storage: Option<Vec<crate::Storage>>,
        }
    };
}

pub(crate) use alert_ops_body;
