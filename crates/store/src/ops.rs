//! The store's operations, written once and instantiated per dialect by `define_ops!`.
//!
//! Each operation takes a plain connection (the caller decides whether it runs inside a
//! transaction and retries it). SQL is portable between SQLite and MySQL/MariaDB; the few
//! differences (how u64 and timestamps are bound, `FOR UPDATE`) come from the dialect
//! module passed to the macro. A macro rather than generic functions because sqlx's
//! per-database trait bounds would have to be repeated on every function.

/// Defines module `$m` with every operation for database `$db`; `$d` is the dialect module
/// providing `enc_u64`, `get_u64`, `enc_ts` and the constant `FOR_UPDATE`.
macro_rules! define_ops {
    ($m:ident, $db:ty, $d:path) => {
        pub(crate) mod $m {
            #![allow(clippy::too_many_arguments)]

            use lookout_core::{
                Device, DeviceId, DevicePollUpdate, DeviceStatus, NewDevice, Port, PortId,
                PortPoll, SnmpConfig, SnmpV3Config, SnmpVersion, Timestamp,
            };
            use sqlx::Row as _;

            use $d as dialect;
            use dialect::{enc_ts, enc_u64, get_u64};

            use crate::migrate::{AppliedMigration, LOCK_ROW};
            use crate::rates::{counter_rate, Width};
            use crate::sql::{self as q, COUNTER_COLS};
            use crate::dump::{Dump, DumpApiToken, DumpUser, DUMP_FORMAT};
            use crate::{query_err, Event, PortSync, Result, Severity, StoreError, User};

            type Conn = <$db as sqlx::Database>::Connection;
            type Row = <$db as sqlx::Database>::Row;

            // The health modules' operations (processors, mempools, storage, ...).
            crate::health_ops::health_ops_body!();
            // Neighbours, IPv6 addresses and the one-transaction poll commit.
            crate::discovery_ops::discovery_ops_body!();
            // Alert rules, alerts, outbox and the alert fence.
            crate::alert_ops::alert_ops_body!();
            // The secret columns of devices (secrets at rest).
            crate::secret_ops::secret_ops_body!();
            // Users, device grants, API tokens, sessions, authlog (`crate::access`).
            crate::access_ops::access_ops_body!();

            fn is_unique(e: &sqlx::Error) -> bool {
                e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation())
            }

            fn is_fk(e: &sqlx::Error) -> bool {
                e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation())
            }

            // ---------------------------------------------------------------- devices

            fn device_from_row(r: &Row) -> std::result::Result<Device, sqlx::Error> {
                let version: String = r.try_get("snmpver")?;
                let version = version
                    .parse::<SnmpVersion>()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                let authlevel: Option<String> = r.try_get("authlevel")?;
                let v3 = match authlevel {
                    Some(security_level) => Some(SnmpV3Config {
                        security_level,
                        auth_user: r.try_get::<Option<String>, _>("authname")?.unwrap_or_default(),
                        auth_protocol: r
                            .try_get::<Option<String>, _>("authalgo")?
                            .unwrap_or_default(),
                        auth_password: r
                            .try_get::<Option<String>, _>("authpass")?
                            .unwrap_or_default(),
                        priv_protocol: r
                            .try_get::<Option<String>, _>("cryptoalgo")?
                            .unwrap_or_default(),
                        priv_password: r
                            .try_get::<Option<String>, _>("cryptopass")?
                            .unwrap_or_default(),
                    }),
                    None => None,
                };
                let timeout_s: Option<f64> = r.try_get("timeout")?;
                let defaults = SnmpConfig::default();
                let port: i32 = r.try_get("port")?;
                let retries: Option<i32> = r.try_get("retries")?;
                let status: bool = r.try_get("status")?;
                Ok(Device {
                    device_id: r.try_get("device_id")?,
                    hostname: r.try_get("hostname")?,
                    sys_name: r.try_get("sysName")?,
                    sys_descr: r.try_get("sysDescr")?,
                    sys_object_id: r.try_get("sysObjectID")?,
                    sys_contact: r.try_get("sysContact")?,
                    sys_location: r.try_get("location")?,
                    os: r.try_get("os")?,
                    hardware: r.try_get("hardware")?,
                    version: r.try_get("version")?,
                    serial: r.try_get("serial")?,
                    uptime: r.try_get("uptime")?,
                    uptime_source: r.try_get("uptime_source")?,
                    status: if status {
                        DeviceStatus::Up
                    } else {
                        DeviceStatus::Down
                    },
                    status_reason: r.try_get("status_reason")?,
                    last_polled: r.try_get("last_polled")?,
                    last_polled_timetaken: r.try_get("last_polled_timetaken")?,
                    last_discovered: r.try_get("last_discovered")?,
                    poller_group: r.try_get("poller_group")?,
                    disabled: r.try_get("disabled")?,
                    snmp: SnmpConfig {
                        version,
                        port: u16::try_from(port).unwrap_or(defaults.port),
                        community: r
                            .try_get::<Option<String>, _>("community")?
                            .unwrap_or_default(),
                        timeout_ms: timeout_s
                            .map(|s| (s * 1000.0).round() as u32)
                            .unwrap_or(defaults.timeout_ms),
                        retries: retries
                            .and_then(|r| u32::try_from(r).ok())
                            .unwrap_or(defaults.retries),
                        v3,
                    },
                    inserted: r.try_get("inserted")?,
                })
            }

            pub(crate) async fn device(c: &mut Conn, id: DeviceId) -> Result<Option<Device>> {
                let row = sqlx::query(q::DEVICE_BY_ID)
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err("device", e))?;
                row.map(|r| device_from_row(&r))
                    .transpose()
                    .map_err(|e| query_err("device", e))
            }

            pub(crate) async fn device_by_hostname(
                c: &mut Conn,
                hostname: &str,
            ) -> Result<Option<Device>> {
                let row = sqlx::query(q::DEVICE_BY_HOSTNAME)
                    .bind(hostname)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err("device_by_hostname", e))?;
                row.map(|r| device_from_row(&r))
                    .transpose()
                    .map_err(|e| query_err("device_by_hostname", e))
            }

            pub(crate) async fn devices(c: &mut Conn) -> Result<Vec<Device>> {
                let rows = sqlx::query(q::DEVICES_ALL)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err("devices", e))?;
                rows.iter()
                    .map(device_from_row)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| query_err("devices", e))
            }

            pub(crate) async fn add_device(
                c: &mut Conn,
                new: &NewDevice,
                now: Timestamp,
            ) -> Result<Device> {
                let s = &new.snmp;
                let v3 = s.v3.as_ref();
                let res = sqlx::query(
                    "INSERT INTO devices (hostname, os, status, status_reason, poller_group, \
                     disabled, snmpver, port, community, transport, timeout, retries, \
                     authlevel, authname, authpass, authalgo, cryptopass, cryptoalgo, inserted) \
                     VALUES (?, 'generic', 0, '', ?, 0, ?, ?, ?, 'udp', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&new.hostname)
                .bind(new.poller_group)
                .bind(s.version.as_str())
                .bind(i32::from(s.port))
                .bind(&s.community)
                .bind(f64::from(s.timeout_ms) / 1000.0)
                .bind(i32::try_from(s.retries).unwrap_or(i32::MAX))
                .bind(v3.map(|v| v.security_level.as_str()))
                .bind(v3.map(|v| v.auth_user.as_str()))
                .bind(v3.map(|v| v.auth_password.as_str()))
                .bind(v3.map(|v| v.auth_protocol.as_str()))
                .bind(v3.map(|v| v.priv_password.as_str()))
                .bind(v3.map(|v| v.priv_protocol.as_str()))
                .bind(enc_ts(now))
                .execute(&mut *c)
                .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique(&e) => {
                        // Our own row, committed by an attempt whose acknowledgement was lost
                        // (same `inserted` to the microsecond): the retry succeeds with it.
                        if let Some(d) = device_by_hostname(c, &new.hostname).await? {
                            if d.inserted == now && d.snmp == new.snmp {
                                return Ok(d);
                            }
                        }
                        return Err(StoreError::Duplicate {
                            what: "device",
                            key: new.hostname.clone(),
                        });
                    }
                    Err(e) => return Err(query_err("add_device", e)),
                }
                // Read back by the unique key rather than trusting last-insert-id: portable,
                // and auto-increment values are not contiguous on Galera anyway.
                device_by_hostname(c, &new.hostname)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        what: "device",
                        key: new.hostname.clone(),
                    })
            }

            /// Replaces a device's settings (SNMP credentials and transport, poller group,
            /// disabled); the id, hostname, ports and history stay. `NotFound` when unknown.
            pub(crate) async fn update_device_settings(
                c: &mut Conn,
                id: DeviceId,
                s: &SnmpConfig,
                poller_group: i32,
                disabled: bool,
            ) -> Result<()> {
                let v3 = s.v3.as_ref();
                let res = sqlx::query(
                    "UPDATE devices SET poller_group = ?, disabled = ?, snmpver = ?, port = ?, \
                     community = ?, timeout = ?, retries = ?, authlevel = ?, authname = ?, \
                     authpass = ?, authalgo = ?, cryptopass = ?, cryptoalgo = ? \
                     WHERE device_id = ?",
                )
                .bind(poller_group)
                .bind(disabled)
                .bind(s.version.as_str())
                .bind(i32::from(s.port))
                .bind(&s.community)
                .bind(f64::from(s.timeout_ms) / 1000.0)
                .bind(i32::try_from(s.retries).unwrap_or(i32::MAX))
                .bind(v3.map(|v| v.security_level.as_str()))
                .bind(v3.map(|v| v.auth_user.as_str()))
                .bind(v3.map(|v| v.auth_password.as_str()))
                .bind(v3.map(|v| v.auth_protocol.as_str()))
                .bind(v3.map(|v| v.priv_password.as_str()))
                .bind(v3.map(|v| v.priv_protocol.as_str()))
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("update_device_settings", e))?;
                // MySQL counts changed rows: an edit that changes nothing is not "unknown".
                if res.rows_affected() == 0 && device(c, id).await?.is_none() {
                    return Err(StoreError::NotFound {
                        what: "device",
                        key: id.to_string(),
                    });
                }
                Ok(())
            }

            pub(crate) async fn remove_device(c: &mut Conn, id: DeviceId) -> Result<bool> {
                // Explicit deletes (not only ON DELETE CASCADE) so the outcome does not depend
                // on foreign keys being enforced (SQLite needs a pragma for that).
                for sql in [
                    "DELETE FROM eventlog WHERE device_id = ?",
                    "DELETE FROM links WHERE local_device_id = ?",
                    // Other devices' neighbour rows keep the name, lose the reference.
                    "UPDATE links SET remote_device_id = NULL, remote_port_id = NULL \
                     WHERE remote_device_id = ?",
                    "DELETE FROM ipv4_addresses WHERE device_id = ?",
                    "DELETE FROM ipv6_addresses WHERE device_id = ?",
                    "DELETE FROM ports WHERE device_id = ?",
                ] {
                    sqlx::query(sql)
                        .bind(id)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err("remove_device", e))?;
                }
                let res = sqlx::query("DELETE FROM devices WHERE device_id = ?")
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("remove_device", e))?;
                Ok(res.rows_affected() > 0)
            }

            pub(crate) async fn update_device_poll(
                c: &mut Conn,
                id: DeviceId,
                u: &DevicePollUpdate,
            ) -> Result<()> {
                // COALESCE: a value the poll did not learn (None) keeps what is stored, so a
                // failed poll does not blank the device's system information.
                let res = sqlx::query(
                    "UPDATE devices SET sysName = COALESCE(?, sysName), \
                     sysDescr = COALESCE(?, sysDescr), sysObjectID = COALESCE(?, sysObjectID), \
                     sysContact = COALESCE(?, sysContact), location = COALESCE(?, location), \
                     os = COALESCE(?, os), hardware = COALESCE(?, hardware), \
                     version = COALESCE(?, version), serial = COALESCE(?, serial), \
                     uptime = COALESCE(?, uptime), uptime_source = COALESCE(?, uptime_source), \
                     status = ?, status_reason = ?, \
                     last_polled = ?, last_polled_timetaken = ? WHERE device_id = ?",
                )
                .bind(&u.sys_name)
                .bind(&u.sys_descr)
                .bind(&u.sys_object_id)
                .bind(&u.sys_contact)
                .bind(&u.sys_location)
                .bind(&u.os)
                .bind(&u.hardware)
                .bind(&u.version)
                .bind(&u.serial)
                .bind(u.uptime)
                .bind(&u.uptime_source)
                .bind(u.status.is_up())
                .bind(&u.status_reason)
                .bind(enc_ts(crate::micros(u.last_polled)))
                .bind(u.last_polled_timetaken)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("update_device_poll", e))?;
                // Both drivers report matched rows (sqlx sets CLIENT_FOUND_ROWS on MySQL).
                if res.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        what: "device",
                        key: id.to_string(),
                    });
                }
                Ok(())
            }

            // ---------------------------------------------------- poll fencing (0003)

            fn token_i64(token: u64) -> i64 {
                // Coordination tokens are microsecond-floored counters, far below 2^63.
                i64::try_from(token).unwrap_or(i64::MAX)
            }

            pub(crate) async fn register_poll_token(
                c: &mut Conn,
                id: DeviceId,
                token: u64,
            ) -> Result<bool> {
                let t = token_i64(token);
                // `<=`: the same claim registering again (a retried transaction) is fine.
                let res = sqlx::query(
                    "UPDATE devices SET poll_token = ? WHERE device_id = ? \
                     AND (poll_token IS NULL OR poll_token <= ?)",
                )
                .bind(t)
                .bind(id)
                .bind(t)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("register_poll_token", e))?;
                if res.rows_affected() > 0 {
                    return Ok(true);
                }
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT device_id FROM devices WHERE device_id = ?")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(|e| query_err("register_poll_token", e))?;
                match exists {
                    Some(_) => Ok(false),
                    None => Err(StoreError::NotFound {
                        what: "device",
                        key: id.to_string(),
                    }),
                }
            }

            /// The device's current poll token (None: never claimed, or no such device).
            pub(crate) async fn poll_token(c: &mut Conn, id: DeviceId) -> Result<Option<u64>> {
                let t: Option<Option<i64>> =
                    sqlx::query_scalar("SELECT poll_token FROM devices WHERE device_id = ?")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(|e| query_err("poll_token", e))?;
                Ok(t.flatten().and_then(|t| u64::try_from(t).ok()))
            }

            pub(crate) async fn insert_poll_log(
                c: &mut Conn,
                e: &crate::PollLogEntry,
            ) -> Result<()> {
                // A retried transaction whose commit landed must not log the poll twice.
                // `started` makes it a lookup in the (device_id, started) index instead of a
                // scan of the device's day of rows (1,440 at a 60 s interval).
                let dup: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM device_poll_log WHERE device_id = ? AND started = ? \
                     AND token = ? AND node_id = ? AND status = ?",
                )
                .bind(e.device_id)
                .bind(enc_ts(crate::micros(e.started)))
                .bind(token_i64(e.token))
                .bind(&e.node_id)
                .bind(e.status.as_str())
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err("log_poll", e))?;
                if dup.is_some() {
                    return Ok(());
                }
                sqlx::query(
                    "INSERT INTO device_poll_log \
                     (device_id, node_id, token, started, finished, status, duration) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(e.device_id)
                .bind(&e.node_id)
                .bind(token_i64(e.token))
                .bind(enc_ts(crate::micros(e.started)))
                .bind(enc_ts(crate::micros(e.finished)))
                .bind(e.status.as_str())
                .bind(e.duration)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("log_poll", e))?;
                Ok(())
            }

            pub(crate) async fn update_device_poll_fenced(
                c: &mut Conn,
                id: DeviceId,
                u: &DevicePollUpdate,
                fence: &crate::PollFence,
                finished: Timestamp,
            ) -> Result<()> {
                check_fence(&mut *c, id, fence).await?;
                update_device_poll(&mut *c, id, u).await?;
                insert_poll_log(
                    &mut *c,
                    &crate::PollLogEntry {
                        device_id: id,
                        node_id: fence.node_id.clone(),
                        token: fence.token,
                        started: fence.started,
                        finished,
                        status: crate::PollOutcome::Ok,
                        duration: u.last_polled_timetaken,
                    },
                )
                .await
            }

            /// `StoreError::Fenced` unless `fence.token` is the device's poll token.
            pub(crate) async fn check_fence(
                c: &mut Conn,
                id: DeviceId,
                fence: &crate::PollFence,
            ) -> Result<()> {
                // A no-op update that matches only while the token is ours: it takes the
                // row lock (MySQL) for the rest of the transaction, so the token cannot
                // change between this check and the writes below. Matched rows are counted
                // on both drivers (sqlx sets CLIENT_FOUND_ROWS on MySQL).
                let t = token_i64(fence.token);
                let res = sqlx::query(
                    "UPDATE devices SET poll_token = ? WHERE device_id = ? AND poll_token = ?",
                )
                .bind(t)
                .bind(id)
                .bind(t)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("update_device_poll_fenced", e))?;
                if res.rows_affected() == 0 {
                    let current: Option<Option<i64>> =
                        sqlx::query_scalar("SELECT poll_token FROM devices WHERE device_id = ?")
                            .bind(id)
                            .fetch_optional(&mut *c)
                            .await
                            .map_err(|e| query_err("update_device_poll_fenced", e))?;
                    let Some(current) = current else {
                        return Err(StoreError::NotFound {
                            what: "device",
                            key: id.to_string(),
                        });
                    };
                    return Err(StoreError::Fenced {
                        device_id: id,
                        token: fence.token,
                        current: current.and_then(|t| u64::try_from(t).ok()),
                    });
                }
                Ok(())
            }

            pub(crate) async fn prune_poll_log(c: &mut Conn, before: Timestamp) -> Result<u64> {
                let res = sqlx::query("DELETE FROM device_poll_log WHERE started < ?")
                    .bind(enc_ts(crate::micros(before)))
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("prune_poll_log", e))?;
                Ok(res.rows_affected())
            }

            /// Deletes at most `batch` events older than `before`, oldest first; returns how
            /// many. The batch is bounded by the id of its last row (found with LIMIT/OFFSET,
            /// which both dialects have) because SQLite has no `DELETE ... LIMIT` and MySQL no
            /// `LIMIT` in an `IN` subquery.
            pub(crate) async fn purge_events_batch(
                c: &mut Conn,
                before: Timestamp,
                batch: u32,
            ) -> Result<u64> {
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT event_id FROM eventlog WHERE datetime < ? \
                     ORDER BY event_id LIMIT 1 OFFSET ?",
                )
                .bind(enc_ts(crate::micros(before)))
                .bind(i64::from(batch.max(1)) - 1)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err("purge_events", e))?;
                let res = match last {
                    Some(last) => {
                        sqlx::query("DELETE FROM eventlog WHERE datetime < ? AND event_id <= ?")
                            .bind(enc_ts(crate::micros(before)))
                            .bind(last)
                            .execute(&mut *c)
                            .await
                    }
                    // Fewer than `batch` rows are old enough: all of them.
                    None => {
                        sqlx::query("DELETE FROM eventlog WHERE datetime < ?")
                            .bind(enc_ts(crate::micros(before)))
                            .execute(&mut *c)
                            .await
                    }
                }
                .map_err(|e| query_err("purge_events", e))?;
                Ok(res.rows_affected())
            }

            pub(crate) async fn poll_log(
                c: &mut Conn,
                since: Timestamp,
            ) -> Result<Vec<crate::PollLogEntry>> {
                let rows = sqlx::query(
                    "SELECT device_id, node_id, token, started, finished, status, duration \
                     FROM device_poll_log WHERE started >= ? ORDER BY started, id",
                )
                .bind(enc_ts(crate::micros(since)))
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err("poll_log", e))?;
                rows.iter()
                    .map(|r| {
                        let status: String = r.try_get("status")?;
                        let token: i64 = r.try_get("token")?;
                        Ok(crate::PollLogEntry {
                            device_id: r.try_get("device_id")?,
                            node_id: r.try_get("node_id")?,
                            token: u64::try_from(token).unwrap_or_default(),
                            started: r.try_get("started")?,
                            finished: r.try_get("finished")?,
                            status: crate::PollOutcome::parse(&status),
                            duration: r.try_get("duration")?,
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                    .map_err(|e| query_err("poll_log", e))
            }

            // ---------------------------------------------------------------- ports

            fn port_from_row(r: &Row) -> std::result::Result<Port, sqlx::Error> {
                let mut values = [None; 15];
                for (v, col) in values.iter_mut().zip(COUNTER_COLS) {
                    *v = get_u64(r, col)?;
                }
                let hc: bool = r.try_get("ifCountersHC")?;
                Ok(Port {
                    port_id: r.try_get("port_id")?,
                    device_id: r.try_get("device_id")?,
                    if_index: r.try_get("ifIndex")?,
                    if_name: r.try_get("ifName")?,
                    if_descr: r.try_get("ifDescr")?,
                    if_alias: r.try_get("ifAlias")?,
                    if_type: r.try_get("ifType")?,
                    if_mtu: r.try_get("ifMtu")?,
                    if_speed: get_u64(r, "ifSpeed")?,
                    if_phys_address: r.try_get("ifPhysAddress")?,
                    if_admin_status: r.try_get("ifAdminStatus")?,
                    if_oper_status: r.try_get("ifOperStatus")?,
                    counters: q::counters_from_values(values, hc),
                    in_octets_rate: r.try_get("ifInOctets_rate")?,
                    out_octets_rate: r.try_get("ifOutOctets_rate")?,
                    in_ucast_pkts_rate: r.try_get("ifInUcastPkts_rate")?,
                    out_ucast_pkts_rate: r.try_get("ifOutUcastPkts_rate")?,
                    in_errors_rate: r.try_get("ifInErrors_rate")?,
                    out_errors_rate: r.try_get("ifOutErrors_rate")?,
                    poll_time: r.try_get("poll_time")?,
                    poll_period: r.try_get("poll_period")?,
                    deleted: r.try_get("deleted")?,
                })
            }

            pub(crate) async fn ports(c: &mut Conn, device_id: DeviceId) -> Result<Vec<Port>> {
                let rows = sqlx::query(q::PORTS_OF_DEVICE)
                    .bind(device_id)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err("ports", e))?;
                rows.iter()
                    .map(port_from_row)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| query_err("ports", e))
            }

            pub(crate) async fn ports_after(
                c: &mut Conn,
                after: PortId,
                limit: i64,
            ) -> Result<Vec<Port>> {
                let rows = sqlx::query(q::PORTS_ALL)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err("ports_after", e))?;
                rows.iter()
                    .map(port_from_row)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| query_err("ports_after", e))
            }

            pub(crate) async fn top_ports(c: &mut Conn, limit: i64) -> Result<Vec<Port>> {
                let rows = sqlx::query(q::PORTS_TOP)
                    .bind(limit)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err("top_ports", e))?;
                rows.iter()
                    .map(port_from_row)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| query_err("top_ports", e))
            }

            pub(crate) async fn port_if_indexes(c: &mut Conn, device_id: DeviceId) -> Result<Vec<i64>> {
                sqlx::query_scalar::<_, i64>(
                    "SELECT ifIndex FROM ports WHERE device_id = ?",
                )
                .bind(device_id)
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err("port_if_indexes", e))
            }

            pub(crate) async fn port(c: &mut Conn, port_id: PortId) -> Result<Option<Port>> {
                let row = sqlx::query(q::PORT_BY_ID)
                    .bind(port_id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err("port", e))?;
                row.map(|r| port_from_row(&r))
                    .transpose()
                    .map_err(|e| query_err("port", e))
            }

            /// What sync_ports needs of an existing row.
            struct Existing {
                port_id: PortId,
                if_index: i64,
                if_speed: Option<u64>,
                hc: bool,
                counters: [Option<u64>; 15],
                poll_time: Option<Timestamp>,
                deleted: bool,
            }

            fn existing_from_row(r: &Row) -> std::result::Result<Existing, sqlx::Error> {
                let mut counters = [None; 15];
                for (v, col) in counters.iter_mut().zip(COUNTER_COLS) {
                    *v = get_u64(r, col)?;
                }
                Ok(Existing {
                    port_id: r.try_get("port_id")?,
                    if_index: r.try_get("ifIndex")?,
                    if_speed: get_u64(r, "ifSpeed")?,
                    hc: r.try_get("ifCountersHC")?,
                    counters,
                    poll_time: r.try_get("poll_time")?,
                    deleted: r.try_get("deleted")?,
                })
            }

            /// Binds the descriptive columns of a polled port, in the order of the `ifName .. ifOperStatus` columns of the `sql` texts.
            macro_rules! bind_descr {
                ($query:expr, $p:expr) => {
                    $query
                        .bind(&$p.if_name)
                        .bind(&$p.if_descr)
                        .bind(&$p.if_alias)
                        .bind(&$p.if_type)
                        .bind($p.if_mtu)
                        .bind(enc_u64($p.if_speed))
                        .bind(&$p.if_phys_address)
                        .bind(&$p.if_admin_status)
                        .bind(&$p.if_oper_status)
                };
            }

            pub(crate) async fn sync_ports(
                c: &mut Conn,
                device_id: DeviceId,
                polled: &[PortPoll],
                polled_at: Timestamp,
            ) -> Result<PortSync> {
                lock_device(&mut *c, "sync_ports", device_id).await?;
                sync_ports_locked(c, device_id, polled, polled_at).await.map(|(_, s)| s)
            }

            /// Locks the device row (MySQL; SQLite's write transaction excludes other
            /// writers anyway) or fails with `NotFound`. Must come before any plain read of
            /// the transaction: InnoDB makes the snapshot at the first plain read, which
            /// then sees what the device's previous writer committed.
            pub(crate) async fn lock_device(
                c: &mut Conn,
                op: &'static str,
                device_id: DeviceId,
            ) -> Result<()> {
                let exists = sqlx::query(dialect::DEVICE_LOCK)
                    .bind(device_id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(op, e))?;
                if exists.is_none() {
                    return Err(StoreError::NotFound {
                        what: "device",
                        key: device_id.to_string(),
                    });
                }
                Ok(())
            }

            /// The row of a known port after `port_upsert` wrote `p` into it: what
            /// `port_from_row` would read back (timestamps at the database's microseconds).
            fn polled_port_row(
                device_id: DeviceId,
                old: &Existing,
                p: &PortPoll,
                counters: [Option<u64>; 15],
                rates: [Option<f64>; 6],
                polled_at: Timestamp,
                period: Option<f64>,
            ) -> Port {
                let [in_octets_rate, out_octets_rate, in_ucast_pkts_rate, out_ucast_pkts_rate, in_errors_rate, out_errors_rate] =
                    rates;
                Port {
                    port_id: old.port_id,
                    device_id,
                    if_index: old.if_index,
                    if_name: p.if_name.clone(),
                    if_descr: p.if_descr.clone(),
                    if_alias: p.if_alias.clone(),
                    if_type: p.if_type.clone(),
                    if_mtu: p.if_mtu,
                    if_speed: p.if_speed,
                    if_phys_address: p.if_phys_address.clone(),
                    if_admin_status: p.if_admin_status.clone(),
                    if_oper_status: p.if_oper_status.clone(),
                    counters: q::counters_from_values(counters, p.counters.hc),
                    in_octets_rate,
                    out_octets_rate,
                    in_ucast_pkts_rate,
                    out_ucast_pkts_rate,
                    in_errors_rate,
                    out_errors_rate,
                    poll_time: Some(crate::micros(polled_at)),
                    poll_period: period,
                    deleted: false,
                }
            }

            /// `sync_ports` once the device row is locked (by `lock_device`, or by the
            /// fence check of `commit_poll`). Returns the ports before the sync (not
            /// deleted, by ifIndex) too, for the port events. Statements: one read, one
            /// multi-row upsert per `PORT_BATCH` known ports, one multi-row insert per
            /// batch of new ones, one update for the ports gone, and the read of the result;
            /// a replayed port (same `polled_at`) is one update of its descriptive columns.
            pub(crate) async fn sync_ports_locked(
                c: &mut Conn,
                device_id: DeviceId,
                polled: &[PortPoll],
                polled_at: Timestamp,
            ) -> Result<(Vec<Port>, PortSync)> {
                let op = "sync_ports";
                let rows = sqlx::query(q::PORT_SYNC_SELECT)
                    .bind(device_id)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err(op, e))?;
                let mut existing = Vec::with_capacity(rows.len());
                let mut before = Vec::with_capacity(rows.len());
                for r in &rows {
                    let e = existing_from_row(r).map_err(|e| query_err(op, e))?;
                    if !e.deleted {
                        before.push(port_from_row(r).map_err(|e| query_err(op, e))?);
                    }
                    existing.push(e);
                }
                let by_index: std::collections::HashMap<i64, &Existing> =
                    existing.iter().map(|e| (e.if_index, e)).collect();

                /// A known port's new values: its row, the poll, counters and rates.
                struct Update<'a> {
                    old: &'a Existing,
                    p: &'a PortPoll,
                    new: [Option<u64>; 15],
                    rates: [Option<f64>; 6],
                    period: Option<f64>,
                }
                let mut sync = PortSync::default();
                let mut seen = std::collections::HashSet::new();
                let mut updates: Vec<Update<'_>> = Vec::new();
                let mut inserts: Vec<&PortPoll> = Vec::new();
                // Replayed ports keep counters this function did not read in full: the
                // result is then read back rather than built here.
                let mut replayed = false;
                for p in polled {
                    if !seen.insert(p.if_index) {
                        // An agent listing an ifIndex twice: keep the first, as a row can only
                        // hold one reading.
                        tracing::warn!(device_id, if_index = p.if_index, "duplicate ifIndex in poll ignored");
                        continue;
                    }
                    let new_counters = q::counter_values(&p.counters);
                    match by_index.get(&p.if_index) {
                        Some(old) if old.poll_time == Some(polled_at) => {
                            replayed = true;
                            // Replay of a stored poll (a retried transaction): idempotent.
                            // Rare, so one statement per port.
                            bind_descr!(sqlx::query(q::PORT_UPDATE_DESCR), p)
                                .bind(old.port_id)
                                .execute(&mut *c)
                                .await
                                .map_err(|e| query_err(op, e))?;
                        }
                        Some(old) => {
                            let period = old.poll_time.map(|t| {
                                (polled_at - t).num_microseconds().unwrap_or(i64::MAX) as f64
                                    / 1e6
                            });
                            // Rates need two readings of the same counters in a row: not across
                            // HC and 32-bit counters, nor across a time the port was gone.
                            let comparable = old.hc == p.counters.hc && !old.deleted;
                            let data_width = if p.counters.hc { Width::Bits64 } else { Width::Bits32 };
                            let max_octets = p.if_speed.or(old.if_speed).filter(|s| *s > 0).map(|s| s as f64 / 8.0);
                            // Rate columns: octets, ucast pkts and errors, in and out.
                            let rate = |i: usize, width: Width, max: Option<f64>| {
                                if !comparable {
                                    return None;
                                }
                                counter_rate(old.counters[i], new_counters[i], period?, width, max)
                            };
                            let rates = [
                                rate(0, data_width, max_octets),
                                rate(1, data_width, max_octets),
                                rate(2, data_width, None),
                                rate(3, data_width, None),
                                // IF-MIB has only 32-bit error counters.
                                rate(6, Width::Bits32, None),
                                rate(7, Width::Bits32, None),
                            ];
                            if old.deleted {
                                // Back from the dead: report it like a new port.
                                sync.added.push(old.port_id);
                            }
                            updates.push(Update { old, p, new: new_counters, rates, period });
                        }
                        None => inserts.push(p),
                    }
                }
                for chunk in updates.chunks(q::PORT_BATCH) {
                    let sql = q::port_upsert(chunk.len(), dialect::SQLITE);
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for u in chunk {
                        query = bind_descr!(
                            query.bind(u.old.port_id).bind(device_id).bind(u.p.if_index),
                            u.p
                        )
                        .bind(u.p.counters.hc);
                        for (new, prev) in u.new.iter().zip(u.old.counters.iter()) {
                            query = query.bind(enc_u64(*new)).bind(enc_u64(*prev));
                        }
                        for r in u.rates {
                            query = query.bind(r);
                        }
                        query = query
                            .bind(enc_ts(polled_at))
                            .bind(u.old.poll_time.map(enc_ts))
                            .bind(u.period);
                    }
                    query.execute(&mut *c).await.map_err(|e| query_err(op, e))?;
                }
                // New ports in ifIndex order, so that concurrent writers (of the same
                // device, after a lost lock) insert in one order.
                inserts.sort_by_key(|p| p.if_index);
                for chunk in inserts.chunks(q::PORT_BATCH) {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(q::port_insert(chunk.len())));
                    for p in chunk {
                        query = bind_descr!(query.bind(device_id).bind(p.if_index), p)
                            .bind(p.counters.hc);
                        for v in q::counter_values(&p.counters) {
                            query = query.bind(enc_u64(v));
                        }
                        query = query.bind(enc_ts(polled_at));
                    }
                    query.execute(&mut *c).await.map_err(|e| query_err(op, e))?;
                }
                for old in &existing {
                    if !old.deleted && !seen.contains(&old.if_index) {
                        sync.removed.push(old.port_id);
                    }
                }
                for chunk in sync.removed.chunks(q::PORT_BATCH) {
                    let mut query =
                        sqlx::query(sqlx::AssertSqlSafe(q::ports_mark_deleted(chunk.len())));
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.execute(&mut *c).await.map_err(|e| query_err(op, e))?;
                }
                if inserts.is_empty() && !replayed {
                    // The steady poll: every polled port had a row, so the rows now hold
                    // exactly what was bound above. Built here instead of read back (the
                    // read was a tenth of a 24-port commit); `PORTS_OF_DEVICE` order.
                    let mut now: Vec<Port> = updates
                        .iter()
                        .map(|u| polled_port_row(device_id, u.old, u.p, u.new, u.rates, polled_at, u.period))
                        .collect();
                    now.sort_by_key(|p| p.if_index);
                    sync.ports = now;
                } else {
                    sync.ports = ports(c, device_id).await?;
                }
                if !inserts.is_empty() {
                    // New ids from the read above (auto-increment values have gaps on
                    // Galera), in the order the agent listed the ports.
                    let ids: std::collections::HashMap<i64, PortId> =
                        sync.ports.iter().map(|p| (p.if_index, p.port_id)).collect();
                    for p in polled.iter().filter(|p| !by_index.contains_key(&p.if_index)) {
                        if let Some(id) = ids.get(&p.if_index) {
                            if !sync.added.contains(id) {
                                sync.added.push(*id);
                            }
                        }
                    }
                }
                Ok((before, sync))
            }

            // ---------------------------------------------------------------- events

            pub(crate) async fn log_event(
                c: &mut Conn,
                device_id: Option<DeviceId>,
                kind: &str,
                message: &str,
                severity: Severity,
                reference: Option<i64>,
                now: Timestamp,
            ) -> Result<()> {
                // Idempotent: a retried transaction whose first commit landed (acknowledgement
                // lost with a node) finds its event, same device, type, message and
                // microsecond, and does not log it twice.
                let existing: Option<i64> = sqlx::query_scalar(
                    "SELECT event_id FROM eventlog WHERE (device_id = ? OR (device_id IS NULL \
                     AND ? IS NULL)) AND datetime = ? AND type = ? AND message = ?",
                )
                .bind(device_id)
                .bind(device_id)
                .bind(enc_ts(now))
                .bind(kind)
                .bind(message)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err("log_event", e))?;
                if existing.is_some() {
                    return Ok(());
                }
                let res = sqlx::query(
                    "INSERT INTO eventlog (device_id, datetime, type, message, severity, reference) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(device_id)
                .bind(enc_ts(now))
                .bind(kind)
                .bind(message)
                .bind(severity.level())
                .bind(reference)
                .execute(&mut *c)
                .await;
                match res {
                    Ok(_) => Ok(()),
                    Err(e) if is_fk(&e) => Err(StoreError::NotFound {
                        what: "device",
                        key: device_id.map(|d| d.to_string()).unwrap_or_default(),
                    }),
                    Err(e) => Err(query_err("log_event", e)),
                }
            }

            fn event_from_row(r: &Row) -> std::result::Result<Event, sqlx::Error> {
                let level: i32 = r.try_get("severity")?;
                Ok(Event {
                    event_id: r.try_get("event_id")?,
                    device_id: r.try_get("device_id")?,
                    datetime: r.try_get("datetime")?,
                    kind: r.try_get("type")?,
                    message: r.try_get("message")?,
                    severity: Severity::from_level(level),
                    reference: r.try_get("reference")?,
                })
            }

            pub(crate) async fn events(
                c: &mut Conn,
                device_id: Option<DeviceId>,
                limit: u32,
            ) -> Result<Vec<Event>> {
                let rows = match device_id {
                    Some(id) => sqlx::query(q::EVENTS_OF_DEVICE)
                        .bind(id)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *c)
                        .await,
                    None => sqlx::query(q::EVENTS_ALL)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *c)
                        .await,
                }
                .map_err(|e| query_err("events", e))?;
                rows.iter()
                    .map(event_from_row)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| query_err("events", e))
            }

            /// Newest first, paged; `device_id` 0 (no device) is not a filter value: `None`
            /// lists the events of all devices. `from` inclusive, `until` exclusive.
            pub(crate) async fn events_page(
                c: &mut Conn,
                device_id: Option<DeviceId>,
                from: Timestamp,
                to: Timestamp,
                start: i64,
                limit: i64,
            ) -> Result<Vec<Event>> {
                let rows = match device_id {
                    Some(id) => sqlx::query(
                        "SELECT event_id, device_id, datetime, type, message, severity, reference \
                         FROM eventlog WHERE device_id = ? AND datetime >= ? AND datetime <= ? \
                         ORDER BY datetime DESC, event_id DESC LIMIT ? OFFSET ?",
                    )
                    .bind(id)
                    .bind(enc_ts(from))
                    .bind(enc_ts(to))
                    .bind(limit)
                    .bind(start)
                    .fetch_all(&mut *c)
                    .await,
                    None => sqlx::query(
                        "SELECT event_id, device_id, datetime, type, message, severity, reference \
                         FROM eventlog WHERE datetime >= ? AND datetime <= ? \
                         ORDER BY datetime DESC, event_id DESC LIMIT ? OFFSET ?",
                    )
                    .bind(enc_ts(from))
                    .bind(enc_ts(to))
                    .bind(limit)
                    .bind(start)
                    .fetch_all(&mut *c)
                    .await,
                }
                .map_err(|e| query_err("events_page", e))?;
                rows.iter()
                    .map(event_from_row)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| query_err("events_page", e))
            }

            // ---------------------------------------------------------------- users

            fn user_from_row(r: &Row) -> std::result::Result<User, sqlx::Error> {
                Ok(User {
                    user_id: r.try_get("user_id")?,
                    username: r.try_get("username")?,
                    password_hash: r.try_get("password")?,
                    level: r.try_get("level")?,
                })
            }

            pub(crate) async fn user(c: &mut Conn, user_id: i64) -> Result<Option<User>> {
                let row = sqlx::query(
                    "SELECT user_id, username, password, level FROM users WHERE user_id = ?",
                )
                .bind(user_id)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err("user", e))?;
                row.map(|r| user_from_row(&r))
                    .transpose()
                    .map_err(|e| query_err("user", e))
            }

            pub(crate) async fn user_by_username(
                c: &mut Conn,
                username: &str,
            ) -> Result<Option<User>> {
                let row = sqlx::query(
                    "SELECT user_id, username, password, level FROM users WHERE username = ?",
                )
                .bind(username)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err("user_by_username", e))?;
                row.map(|r| user_from_row(&r))
                    .transpose()
                    .map_err(|e| query_err("user_by_username", e))
            }

            pub(crate) async fn add_user(
                c: &mut Conn,
                username: &str,
                password_hash: &str,
                level: i32,
            ) -> Result<User> {
                let res = sqlx::query("INSERT INTO users (username, password, level) VALUES (?, ?, ?)")
                    .bind(username)
                    .bind(password_hash)
                    .bind(level)
                    .execute(&mut *c)
                    .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique(&e) => {
                        return Err(StoreError::Duplicate {
                            what: "user",
                            key: username.to_string(),
                        })
                    }
                    Err(e) => return Err(query_err("add_user", e)),
                }
                user_by_username(c, username)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        what: "user",
                        key: username.to_string(),
                    })
            }

            pub(crate) async fn set_password(
                c: &mut Conn,
                user_id: i64,
                password_hash: &str,
            ) -> Result<()> {
                let res = sqlx::query("UPDATE users SET password = ? WHERE user_id = ?")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("set_password", e))?;
                if res.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        what: "user",
                        key: user_id.to_string(),
                    });
                }
                Ok(())
            }

            pub(crate) async fn add_api_token(
                c: &mut Conn,
                user_id: i64,
                token_sha256: &str,
                description: &str,
            ) -> Result<()> {
                // Checked first: SQLite enforces the foreign key only with the pragma on.
                if user(c, user_id).await?.is_none() {
                    return Err(StoreError::NotFound {
                        what: "user",
                        key: user_id.to_string(),
                    });
                }
                let res = sqlx::query(
                    "INSERT INTO api_tokens (user_id, token_hash, description, disabled) \
                     VALUES (?, ?, ?, 0)",
                )
                .bind(user_id)
                .bind(token_sha256)
                .bind(description)
                .execute(&mut *c)
                .await;
                match res {
                    Ok(_) => Ok(()),
                    // The key in the message is the digest, never a usable token.
                    Err(e) if is_unique(&e) => Err(StoreError::Duplicate {
                        what: "api token",
                        key: token_sha256.to_string(),
                    }),
                    Err(e) if is_fk(&e) => Err(StoreError::NotFound {
                        what: "user",
                        key: user_id.to_string(),
                    }),
                    Err(e) => Err(query_err("add_api_token", e)),
                }
            }

            pub(crate) async fn user_by_api_token(
                c: &mut Conn,
                token_sha256: &str,
            ) -> Result<Option<User>> {
                let row = sqlx::query(
                    "SELECT u.user_id, u.username, u.password, u.level FROM users u \
                     JOIN api_tokens t ON t.user_id = u.user_id \
                     WHERE t.token_hash = ? AND t.disabled = 0",
                )
                .bind(token_sha256)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err("user_by_api_token", e))?;
                row.map(|r| user_from_row(&r))
                    .transpose()
                    .map_err(|e| query_err("user_by_api_token", e))
            }

            // ---------------------------------------------------------------- export/import

            /// Every row; run in one transaction so the copy is consistent.
            pub(crate) async fn export_all(c: &mut Conn) -> Result<Dump> {
                let op = "export";
                let devices = sqlx::query(q::DEVICES_EXPORT)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err(op, e))?
                    .iter()
                    .map(device_from_row)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| query_err(op, e))?;
                let ports = sqlx::query(q::PORTS_EXPORT)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err(op, e))?
                    .iter()
                    .map(port_from_row)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| query_err(op, e))?;
                let events = sqlx::query(
                    "SELECT event_id, device_id, datetime, type, message, severity, reference \
                     FROM eventlog ORDER BY event_id",
                )
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?
                .iter()
                .map(event_from_row)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| query_err(op, e))?;
                let users = sqlx::query(
                    "SELECT user_id, username, password, level FROM users ORDER BY user_id",
                )
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?
                .iter()
                .map(|r| {
                    Ok(DumpUser {
                        user_id: r.try_get("user_id")?,
                        username: r.try_get("username")?,
                        password_hash: r.try_get("password")?,
                        level: r.try_get("level")?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err(op, e))?;
                let api_tokens = sqlx::query(
                    "SELECT id, user_id, token_hash, description, disabled FROM api_tokens \
                     ORDER BY id",
                )
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?
                .iter()
                .map(|r| {
                    Ok(DumpApiToken {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        token_hash: r.try_get("token_hash")?,
                        description: r.try_get("description")?,
                        disabled: r.try_get("disabled")?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err(op, e))?;
                let mut dump = Dump {
                    format: DUMP_FORMAT,
                    devices,
                    ports,
                    events,
                    users,
                    api_tokens,
                    processors: Vec::new(),
                    mempools: Vec::new(),
                    storage: Vec::new(),
                    ipv4_addresses: Vec::new(),
                    ipv6_addresses: Vec::new(),
                    links: Vec::new(),
                };
                export_modules(&mut *c, &mut dump).await?;
                Ok(dump)
            }

            /// Rows in the tables an import writes, by table (empty when all are zero).
            pub(crate) async fn non_empty_tables(c: &mut Conn) -> Result<Vec<(&'static str, i64)>> {
                let mut out = Vec::new();
                for (table, sql) in [
                    ("devices", "SELECT COUNT(*) FROM devices"),
                    ("ports", "SELECT COUNT(*) FROM ports"),
                    ("eventlog", "SELECT COUNT(*) FROM eventlog"),
                    ("users", "SELECT COUNT(*) FROM users"),
                    ("api_tokens", "SELECT COUNT(*) FROM api_tokens"),
                    ("processors", "SELECT COUNT(*) FROM processors"),
                    ("mempools", "SELECT COUNT(*) FROM mempools"),
                    ("storage", "SELECT COUNT(*) FROM storage"),
                    ("ipv4_addresses", "SELECT COUNT(*) FROM ipv4_addresses"),
                    ("ipv6_addresses", "SELECT COUNT(*) FROM ipv6_addresses"),
                    ("links", "SELECT COUNT(*) FROM links"),
                ] {
                    let n: i64 = sqlx::query_scalar(sql)
                        .fetch_one(&mut *c)
                        .await
                        .map_err(|e| query_err("import", e))?;
                    if n > 0 {
                        out.push((table, n));
                    }
                }
                Ok(out)
            }

            pub(crate) async fn import_users(c: &mut Conn, rows: &[DumpUser]) -> Result<()> {
                for u in rows {
                    sqlx::query("INSERT INTO users (user_id, username, password, level) VALUES (?, ?, ?, ?)")
                        .bind(u.user_id)
                        .bind(&u.username)
                        .bind(&u.password_hash)
                        .bind(u.level)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err("import users", e))?;
                }
                Ok(())
            }

            pub(crate) async fn import_api_tokens(c: &mut Conn, rows: &[DumpApiToken]) -> Result<()> {
                for t in rows {
                    sqlx::query(
                        "INSERT INTO api_tokens (id, user_id, token_hash, description, disabled) \
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(t.id)
                    .bind(t.user_id)
                    .bind(&t.token_hash)
                    .bind(&t.description)
                    .bind(t.disabled)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("import api_tokens", e))?;
                }
                Ok(())
            }

            pub(crate) async fn import_devices(c: &mut Conn, rows: &[Device]) -> Result<()> {
                for d in rows {
                    let s = &d.snmp;
                    let v3 = s.v3.as_ref();
                    sqlx::query(q::DEVICE_IMPORT)
                        .bind(d.device_id)
                        .bind(&d.hostname)
                        .bind(&d.sys_name)
                        .bind(&d.sys_descr)
                        .bind(&d.sys_object_id)
                        .bind(&d.sys_contact)
                        .bind(&d.sys_location)
                        .bind(&d.os)
                        .bind(&d.hardware)
                        .bind(&d.version)
                        .bind(&d.serial)
                        .bind(d.uptime)
                        .bind(&d.uptime_source)
                        .bind(d.status.is_up())
                        .bind(&d.status_reason)
                        .bind(d.last_polled.map(enc_ts))
                        .bind(d.last_polled_timetaken)
                        .bind(d.last_discovered.map(enc_ts))
                        .bind(d.poller_group)
                        .bind(d.disabled)
                        .bind(s.version.as_str())
                        .bind(i32::from(s.port))
                        .bind(&s.community)
                        .bind("udp")
                        .bind(f64::from(s.timeout_ms) / 1000.0)
                        .bind(i32::try_from(s.retries).unwrap_or(i32::MAX))
                        .bind(v3.map(|v| v.security_level.as_str()))
                        .bind(v3.map(|v| v.auth_user.as_str()))
                        .bind(v3.map(|v| v.auth_password.as_str()))
                        .bind(v3.map(|v| v.auth_protocol.as_str()))
                        .bind(v3.map(|v| v.priv_password.as_str()))
                        .bind(v3.map(|v| v.priv_protocol.as_str()))
                        .bind(enc_ts(d.inserted))
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err("import devices", e))?;
                }
                Ok(())
            }

            pub(crate) async fn import_ports(c: &mut Conn, rows: &[Port]) -> Result<()> {
                for p in rows {
                    let mut query = bind_descr!(
                        sqlx::query(q::PORT_IMPORT)
                            .bind(p.port_id)
                            .bind(p.device_id)
                            .bind(p.if_index),
                        p
                    )
                    .bind(p.counters.hc);
                    for v in q::counter_values(&p.counters) {
                        query = query.bind(enc_u64(v));
                    }
                    query
                        .bind(p.in_octets_rate)
                        .bind(p.out_octets_rate)
                        .bind(p.in_ucast_pkts_rate)
                        .bind(p.out_ucast_pkts_rate)
                        .bind(p.in_errors_rate)
                        .bind(p.out_errors_rate)
                        .bind(p.poll_time.map(enc_ts))
                        .bind(p.poll_period)
                        .bind(p.deleted)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err("import ports", e))?;
                }
                Ok(())
            }

            pub(crate) async fn import_events(c: &mut Conn, rows: &[Event]) -> Result<()> {
                for e in rows {
                    sqlx::query(
                        "INSERT INTO eventlog (event_id, device_id, datetime, type, message, \
                         severity, reference) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(e.event_id)
                    .bind(e.device_id)
                    .bind(enc_ts(e.datetime))
                    .bind(&e.kind)
                    .bind(&e.message)
                    .bind(e.severity.level())
                    .bind(e.reference)
                    .execute(&mut *c)
                    .await
                    .map_err(|err| query_err("import eventlog", err))?;
                }
                Ok(())
            }

            // ---------------------------------------------------------------- migrations

            pub(crate) async fn exec(c: &mut Conn, op: &'static str, sql: &'static str) -> Result<()> {
                sqlx::raw_sql(sql)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(op, e))?;
                Ok(())
            }

            pub(crate) async fn applied_migrations(c: &mut Conn) -> Result<Vec<AppliedMigration>> {
                let rows = sqlx::query(
                    "SELECT version, name, applied_at FROM migrations ORDER BY version",
                )
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err("migrate_status", e))?;
                rows.iter()
                    .map(|r| {
                        Ok(AppliedMigration {
                            version: r.try_get("version")?,
                            name: r.try_get("name")?,
                            applied_at: r.try_get("applied_at")?,
                        })
                    })
                    .collect::<std::result::Result<_, sqlx::Error>>()
                    .map_err(|e| query_err("migrate_status", e))
            }

            /// Runs the statements of one migration and records it; a version recorded already
            /// (a retried transaction whose commit had landed) is skipped.
            pub(crate) async fn apply_migration(
                c: &mut Conn,
                statements: &[&'static str],
                version: i64,
                name: &str,
                now: Timestamp,
            ) -> Result<()> {
                let done: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM migrations WHERE version = ?")
                        .bind(version)
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(|e| query_err("migrate", e))?;
                if done.is_some() {
                    return Ok(());
                }
                for sql in statements {
                    exec(c, "migrate", sql).await?;
                }
                record_migration(c, version, name, now).await
            }

            async fn record_migration(
                c: &mut Conn,
                version: i64,
                name: &str,
                now: Timestamp,
            ) -> Result<()> {
                sqlx::query("INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)")
                    .bind(version)
                    .bind(name)
                    .bind(enc_ts(now))
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("migrate", e))?;
                Ok(())
            }

            /// Inserts the lock row; false when another process holds it. An INSERT on a
            /// primary key is a lock that Galera certifies across nodes (GET_LOCK is per node).
            pub(crate) async fn try_lock(c: &mut Conn, owner: &str, now: Timestamp) -> Result<bool> {
                let res = sqlx::query("INSERT INTO migrations_lock (id, owner, acquired_at) VALUES (?, ?, ?)")
                    .bind(LOCK_ROW)
                    .bind(owner)
                    .bind(enc_ts(now))
                    .execute(&mut *c)
                    .await;
                match res {
                    Ok(_) => Ok(true),
                    Err(e) if is_unique(&e) => Ok(false),
                    Err(e) => Err(query_err("migration lock", e)),
                }
            }

            /// Who holds the lock and since when.
            pub(crate) async fn lock_holder(c: &mut Conn) -> Result<Option<(String, Timestamp)>> {
                let row = sqlx::query("SELECT owner, acquired_at FROM migrations_lock WHERE id = ?")
                    .bind(LOCK_ROW)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err("migration lock", e))?;
                row.map(|r| Ok((r.try_get("owner")?, r.try_get("acquired_at")?)))
                    .transpose()
                    .map_err(|e: sqlx::Error| query_err("migration lock", e))
            }

            pub(crate) async fn unlock(c: &mut Conn, owner: &str) -> Result<()> {
                sqlx::query("DELETE FROM migrations_lock WHERE id = ? AND owner = ?")
                    .bind(LOCK_ROW)
                    .bind(owner)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("migration lock", e))?;
                Ok(())
            }
        }
    };
}

pub(crate) use define_ops;
