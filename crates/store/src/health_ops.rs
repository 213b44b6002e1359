//! Operations of the poller's health modules and per-module settings (processors, mempools,
//! storage, devices_attribs `poll_<module>`, device_module_perf, port counter reset and
//! ifIndex renumbering), written once and expanded into each dialect's ops module by
//! `define_ops!` (so `run!` finds them next to the other operations).

/// Expands inside `define_ops!`'s module: `Conn`, `Row`, `enc_u64`, `get_u64`, `enc_ts`
/// and `query_err` are that module's.
macro_rules! health_ops_body {
    () => {
        // ---------------------------------------------------------------- health

        fn processor_from_row(r: &Row) -> std::result::Result<crate::Processor, sqlx::Error> {
            Ok(crate::Processor {
                processor_id: r.try_get("processor_id")?,
                device_id: r.try_get("device_id")?,
                processor_index: r.try_get("processor_index")?,
                processor_type: r.try_get("processor_type")?,
                processor_oid: r.try_get("processor_oid")?,
                processor_descr: r.try_get("processor_descr")?,
                processor_usage: r.try_get("processor_usage")?,
                processor_precision: r.try_get("processor_precision")?,
            })
        }

        fn mempool_from_row(r: &Row) -> std::result::Result<crate::Mempool, sqlx::Error> {
            Ok(crate::Mempool {
                mempool_id: r.try_get("mempool_id")?,
                device_id: r.try_get("device_id")?,
                mempool_index: r.try_get("mempool_index")?,
                mempool_type: r.try_get("mempool_type")?,
                mempool_class: r.try_get("mempool_class")?,
                mempool_precision: r.try_get("mempool_precision")?,
                mempool_descr: r.try_get("mempool_descr")?,
                mempool_perc: r.try_get("mempool_perc")?,
                mempool_used: get_u64(r, "mempool_used")?.unwrap_or_default(),
                mempool_free: get_u64(r, "mempool_free")?.unwrap_or_default(),
                mempool_total: get_u64(r, "mempool_total")?.unwrap_or_default(),
            })
        }

        fn storage_from_row(r: &Row) -> std::result::Result<crate::Storage, sqlx::Error> {
            Ok(crate::Storage {
                storage_id: r.try_get("storage_id")?,
                device_id: r.try_get("device_id")?,
                storage_mib: r.try_get("type")?,
                storage_index: r.try_get("storage_index")?,
                storage_type: r.try_get("storage_type")?,
                storage_descr: r.try_get("storage_descr")?,
                storage_size: get_u64(r, "storage_size")?.unwrap_or_default(),
                storage_units: r.try_get("storage_units")?,
                storage_used: get_u64(r, "storage_used")?.unwrap_or_default(),
                storage_free: get_u64(r, "storage_free")?.unwrap_or_default(),
                storage_perc: r.try_get("storage_perc")?,
            })
        }

        /// `NotFound` unless the device exists; on MySQL also locks its row (see
        /// `lock_device`), so writers of one device's rows queue on it.
        async fn device_exists(c: &mut Conn, op: &'static str, id: DeviceId) -> Result<()> {
            lock_device(&mut *c, op, id).await
        }

        /// `(id, key)` of a device's rows; `key` builds the text that identifies a row
        /// from the columns after the id (done here, not in SQL: no portable CONCAT).
        async fn keyed_ids(
            c: &mut Conn,
            op: &'static str,
            sql: &'static str,
            id: DeviceId,
            key: fn(&Row) -> std::result::Result<String, sqlx::Error>,
        ) -> Result<Vec<(i64, String)>> {
            let rows = sqlx::query(sql)
                .bind(id)
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?;
            rows.iter()
                .map(|r| Ok((r.try_get::<i64, _>(0)?, key(r)?)))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err(op, e))
        }

        /// Deletes rows by primary key, `crate::sql::PORT_BATCH` ids per statement.
        /// `sql` ends in `IN`. By key rather than `WHERE device_id = ?`: on MySQL a
        /// delete by the device's secondary index gap-locks the index, and two writers of
        /// neighbouring devices that then insert into the gap deadlock.
        async fn delete_ids(
            c: &mut Conn,
            op: &'static str,
            sql: &'static str,
            ids: &[i64],
        ) -> Result<()> {
            for chunk in ids.chunks(crate::sql::PORT_BATCH) {
                let text = format!("{sql} ({})", vec!["?"; chunk.len()].join(", "));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *c).await.map_err(|e| query_err(op, e))?;
            }
            Ok(())
        }

        /// Deletes the rows `select` (a plain read of their ids by device) finds, by key
        /// (see `delete_ids`).
        async fn delete_device_rows(
            c: &mut Conn,
            op: &'static str,
            select: &'static str,
            delete: &'static str,
            id: DeviceId,
        ) -> Result<()> {
            let ids: Vec<i64> = sqlx::query_scalar(select)
                .bind(id)
                .fetch_all(&mut *c)
                .await
                .map_err(|e| query_err(op, e))?;
            delete_ids(c, op, delete, &ids).await
        }

        pub(crate) async fn sync_processors(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::ProcessorPoll],
        ) -> Result<Vec<crate::Processor>> {
            device_exists(&mut *c, "sync_processors", id).await?;
            sync_processors_locked(c, id, polled).await
        }

        /// `sync_processors` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn sync_processors_locked(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::ProcessorPoll],
        ) -> Result<Vec<crate::Processor>> {
            const OP: &str = "sync_processors";
            let existing = keyed_ids(
                &mut *c,
                OP,
                "SELECT processor_id, processor_type, processor_index \
                 FROM processors WHERE device_id = ?",
                id,
                |r| {
                    Ok(format!(
                        "{}|{}",
                        r.try_get::<String, _>(1)?,
                        r.try_get::<String, _>(2)?
                    ))
                },
            )
            .await?;
            let mut keep = Vec::new();
            for p in polled {
                let key = format!("{}|{}", p.processor_type, p.processor_index);
                match existing.iter().find(|(_, k)| *k == key) {
                    Some((pid, _)) => {
                        sqlx::query(
                            "UPDATE processors SET processor_oid = ?, processor_descr = ?, \
                             processor_usage = ? WHERE processor_id = ?",
                        )
                        .bind(&p.processor_oid)
                        .bind(&p.processor_descr)
                        .bind(p.processor_usage)
                        .bind(*pid)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                        keep.push(*pid);
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO processors (device_id, processor_index, processor_type, \
                             processor_oid, processor_descr, processor_usage, processor_precision) \
                             VALUES (?, ?, ?, ?, ?, ?, 1)",
                        )
                        .bind(id)
                        .bind(&p.processor_index)
                        .bind(&p.processor_type)
                        .bind(&p.processor_oid)
                        .bind(&p.processor_descr)
                        .bind(p.processor_usage)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                    }
                }
            }
            let gone: Vec<i64> = existing
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| !keep.contains(i))
                .collect();
            delete_ids(&mut *c, OP, "DELETE FROM processors WHERE processor_id IN", &gone).await?;
            processors(&mut *c, id).await
        }

        pub(crate) async fn rrd_inventory(c: &mut Conn) -> Result<crate::RrdInventory> {
            // One row of counts; COUNT is BIGINT on both dialects.
            let r = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM devices) AS devices, \
                 (SELECT COUNT(*) FROM devices WHERE last_polled IS NOT NULL) AS polled_devices, \
                 (SELECT COUNT(*) FROM ports WHERE deleted = 0) AS ports, \
                 (SELECT COUNT(*) FROM processors) AS processors, \
                 (SELECT COUNT(*) FROM mempools) AS mempools, \
                 (SELECT COUNT(*) FROM storage) AS storage",
            )
            .fetch_one(&mut *c)
            .await
            .map_err(|e| query_err("rrd_inventory", e))?;
            let get = |name: &str| -> Result<u64> {
                r.try_get::<i64, _>(name)
                    .map(|n| n.max(0) as u64)
                    .map_err(|e| query_err("rrd_inventory", e))
            };
            Ok(crate::RrdInventory {
                devices: get("devices")?,
                polled_devices: get("polled_devices")?,
                ports: get("ports")?,
                processors: get("processors")?,
                mempools: get("mempools")?,
                storage: get("storage")?,
            })
        }

        pub(crate) async fn processors(c: &mut Conn, id: DeviceId) -> Result<Vec<crate::Processor>> {
            let rows = sqlx::query(
                "SELECT processor_id, device_id, processor_index, processor_type, processor_oid, \
                 processor_descr, processor_usage, processor_precision FROM processors \
                 WHERE device_id = ? ORDER BY processor_type, processor_id",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("processors", e))?;
            rows.iter()
                .map(processor_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("processors", e))
        }

        pub(crate) async fn sync_mempools(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::MempoolPoll],
        ) -> Result<Vec<crate::Mempool>> {
            device_exists(&mut *c, "sync_mempools", id).await?;
            sync_mempools_locked(c, id, polled).await
        }

        /// `sync_mempools` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn sync_mempools_locked(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::MempoolPoll],
        ) -> Result<Vec<crate::Mempool>> {
            const OP: &str = "sync_mempools";
            let existing = keyed_ids(
                &mut *c,
                OP,
                "SELECT mempool_id, mempool_type, mempool_class, mempool_index \
                 FROM mempools WHERE device_id = ?",
                id,
                |r| {
                    Ok(format!(
                        "{}|{}|{}",
                        r.try_get::<String, _>(1)?,
                        r.try_get::<String, _>(2)?,
                        r.try_get::<String, _>(3)?
                    ))
                },
            )
            .await?;
            let mut keep = Vec::new();
            for p in polled {
                let key = format!("{}|{}|{}", p.mempool_type, p.mempool_class, p.mempool_index);
                match existing.iter().find(|(_, k)| *k == key) {
                    Some((mid, _)) => {
                        sqlx::query(
                            "UPDATE mempools SET mempool_descr = ?, mempool_perc = ?, \
                             mempool_used = ?, mempool_free = ?, mempool_total = ? \
                             WHERE mempool_id = ?",
                        )
                        .bind(&p.mempool_descr)
                        .bind(p.mempool_perc)
                        .bind(enc_u64(Some(p.mempool_used)))
                        .bind(enc_u64(Some(p.mempool_free)))
                        .bind(enc_u64(Some(p.mempool_total)))
                        .bind(*mid)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                        keep.push(*mid);
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO mempools (device_id, mempool_index, mempool_type, \
                             mempool_class, mempool_precision, mempool_descr, mempool_perc, \
                             mempool_used, mempool_free, mempool_total) \
                             VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
                        )
                        .bind(id)
                        .bind(&p.mempool_index)
                        .bind(&p.mempool_type)
                        .bind(&p.mempool_class)
                        .bind(&p.mempool_descr)
                        .bind(p.mempool_perc)
                        .bind(enc_u64(Some(p.mempool_used)))
                        .bind(enc_u64(Some(p.mempool_free)))
                        .bind(enc_u64(Some(p.mempool_total)))
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                    }
                }
            }
            let gone: Vec<i64> = existing
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| !keep.contains(i))
                .collect();
            delete_ids(&mut *c, OP, "DELETE FROM mempools WHERE mempool_id IN", &gone).await?;
            mempools(&mut *c, id).await
        }

        pub(crate) async fn mempools(c: &mut Conn, id: DeviceId) -> Result<Vec<crate::Mempool>> {
            let rows = sqlx::query(
                "SELECT mempool_id, device_id, mempool_index, mempool_type, mempool_class, \
                 mempool_precision, mempool_descr, mempool_perc, mempool_used, mempool_free, \
                 mempool_total FROM mempools WHERE device_id = ? ORDER BY mempool_id",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("mempools", e))?;
            rows.iter()
                .map(mempool_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("mempools", e))
        }

        pub(crate) async fn sync_storage(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::StoragePoll],
        ) -> Result<Vec<crate::Storage>> {
            device_exists(&mut *c, "sync_storage", id).await?;
            sync_storage_locked(c, id, polled).await
        }

        /// `sync_storage` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn sync_storage_locked(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::StoragePoll],
        ) -> Result<Vec<crate::Storage>> {
            const OP: &str = "sync_storage";
            let existing = keyed_ids(
                &mut *c,
                OP,
                "SELECT storage_id, type, storage_index FROM storage WHERE device_id = ?",
                id,
                |r| {
                    Ok(format!(
                        "{}|{}",
                        r.try_get::<String, _>(1)?,
                        r.try_get::<i64, _>(2)?
                    ))
                },
            )
            .await?;
            let mut keep = Vec::new();
            for p in polled {
                let key = format!("{}|{}", p.storage_mib, p.storage_index);
                match existing.iter().find(|(_, k)| *k == key) {
                    Some((sid, _)) => {
                        sqlx::query(
                            "UPDATE storage SET storage_type = ?, storage_descr = ?, \
                             storage_size = ?, storage_units = ?, storage_used = ?, \
                             storage_free = ?, storage_perc = ? WHERE storage_id = ?",
                        )
                        .bind(&p.storage_type)
                        .bind(&p.storage_descr)
                        .bind(enc_u64(Some(p.storage_size)))
                        .bind(p.storage_units)
                        .bind(enc_u64(Some(p.storage_used)))
                        .bind(enc_u64(Some(p.storage_free)))
                        .bind(p.storage_perc)
                        .bind(*sid)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                        keep.push(*sid);
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO storage (device_id, type, storage_index, storage_type, \
                             storage_descr, storage_size, storage_units, storage_used, \
                             storage_free, storage_perc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        )
                        .bind(id)
                        .bind(&p.storage_mib)
                        .bind(p.storage_index)
                        .bind(&p.storage_type)
                        .bind(&p.storage_descr)
                        .bind(enc_u64(Some(p.storage_size)))
                        .bind(p.storage_units)
                        .bind(enc_u64(Some(p.storage_used)))
                        .bind(enc_u64(Some(p.storage_free)))
                        .bind(p.storage_perc)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                    }
                }
            }
            let gone: Vec<i64> = existing
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| !keep.contains(i))
                .collect();
            delete_ids(&mut *c, OP, "DELETE FROM storage WHERE storage_id IN", &gone).await?;
            storage(&mut *c, id).await
        }

        pub(crate) async fn storage(c: &mut Conn, id: DeviceId) -> Result<Vec<crate::Storage>> {
            let rows = sqlx::query(
                "SELECT storage_id, device_id, type, storage_index, storage_type, storage_descr, \
                 storage_size, storage_units, storage_used, storage_free, storage_perc \
                 FROM storage WHERE device_id = ? ORDER BY type, storage_index",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("storage", e))?;
            rows.iter()
                .map(storage_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("storage", e))
        }

        // ------------------------------------------------------ module settings, timing

        pub(crate) async fn set_device_attrib(
            c: &mut Conn,
            id: DeviceId,
            attrib_type: &str,
            value: Option<&str>,
            now: Timestamp,
        ) -> Result<()> {
            const OP: &str = "set_device_attrib";
            device_exists(&mut *c, OP, id).await?;
            let Some(value) = value else {
                sqlx::query("DELETE FROM devices_attribs WHERE device_id = ? AND attrib_type = ?")
                    .bind(id)
                    .bind(attrib_type)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
                return Ok(());
            };
            let res = sqlx::query(
                "UPDATE devices_attribs SET attrib_value = ?, updated_at = ? \
                 WHERE device_id = ? AND attrib_type = ?",
            )
            .bind(value)
            .bind(enc_ts(now))
            .bind(id)
            .bind(attrib_type)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            if res.rows_affected() == 0 {
                sqlx::query(
                    "INSERT INTO devices_attribs (device_id, attrib_type, attrib_value, updated_at) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(id)
                .bind(attrib_type)
                .bind(value)
                .bind(enc_ts(now))
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            }
            Ok(())
        }

        pub(crate) async fn device_attribs(
            c: &mut Conn,
            id: DeviceId,
        ) -> Result<Vec<(String, String)>> {
            let rows = sqlx::query(
                "SELECT attrib_type, attrib_value FROM devices_attribs WHERE device_id = ? \
                 ORDER BY attrib_type",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("device_attribs", e))?;
            rows.iter()
                .map(|r| Ok((r.try_get("attrib_type")?, r.try_get("attrib_value")?)))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err("device_attribs", e))
        }

        pub(crate) async fn record_module_perf(
            c: &mut Conn,
            id: DeviceId,
            perf: &[crate::ModulePerf],
        ) -> Result<()> {
            device_exists(&mut *c, "record_module_perf", id).await?;
            record_module_perf_locked(c, id, perf).await
        }

        /// `record_module_perf` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn record_module_perf_locked(
            c: &mut Conn,
            id: DeviceId,
            perf: &[crate::ModulePerf],
        ) -> Result<()> {
            const OP: &str = "record_module_perf";
            if perf.is_empty() {
                return Ok(());
            }
            // One statement for all modules (a poll reports each of the six): the
            // primary key (device_id, module) turns existing rows into updates.
            let tail = if dialect::SQLITE {
                "ON CONFLICT(device_id, module) DO UPDATE SET seconds = excluded.seconds, \
                 status = excluded.status, message = excluded.message, \
                 polled_at = excluded.polled_at"
            } else {
                "ON DUPLICATE KEY UPDATE seconds = VALUES(seconds), status = VALUES(status), \
                 message = VALUES(message), polled_at = VALUES(polled_at)"
            };
            let sql = format!(
                "INSERT INTO device_module_perf \
                 (device_id, module, seconds, status, message, polled_at) VALUES {} {tail}",
                crate::sql::placeholders(perf.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in perf {
                query = query
                    .bind(id)
                    .bind(&p.module)
                    .bind(p.seconds)
                    .bind(&p.status)
                    .bind(&p.message)
                    .bind(enc_ts(crate::micros(p.polled_at)));
            }
            query.execute(&mut *c).await.map_err(|e| query_err(OP, e))?;
            Ok(())
        }

        pub(crate) async fn module_perf(
            c: &mut Conn,
            id: DeviceId,
        ) -> Result<Vec<crate::ModulePerf>> {
            let rows = sqlx::query(
                "SELECT module, seconds, status, message, polled_at FROM device_module_perf \
                 WHERE device_id = ? ORDER BY module",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("module_perf", e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::ModulePerf {
                        module: r.try_get("module")?,
                        seconds: r.try_get("seconds")?,
                        status: r.try_get("status")?,
                        message: r.try_get("message")?,
                        polled_at: r.try_get("polled_at")?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err("module_perf", e))
        }

        pub(crate) async fn mark_discovered(c: &mut Conn, id: DeviceId, at: Timestamp) -> Result<()> {
            sqlx::query("UPDATE devices SET last_discovered = ? WHERE device_id = ?")
                .bind(enc_ts(at))
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("mark_discovered", e))?;
            Ok(())
        }

        // ------------------------------------------------------ IPv4 addresses

        pub(crate) async fn sync_ipv4_addresses(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::Ipv4AddressPoll],
        ) -> Result<Vec<crate::Ipv4Address>> {
            device_exists(&mut *c, "sync_ipv4_addresses", id).await?;
            sync_ipv4_addresses_locked(c, id, polled).await
        }

        /// `sync_ipv4_addresses` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn sync_ipv4_addresses_locked(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::Ipv4AddressPoll],
        ) -> Result<Vec<crate::Ipv4Address>> {
            const OP: &str = "sync_ipv4_addresses";
            // Few rows per device: replace them all (ids are not referenced elsewhere).
            delete_device_rows(
                &mut *c,
                OP,
                "SELECT ipv4_address_id FROM ipv4_addresses WHERE device_id = ?",
                "DELETE FROM ipv4_addresses WHERE ipv4_address_id IN",
                id,
            )
            .await?;
            if polled.is_empty() {
                return ipv4_addresses(&mut *c, id).await;
            }
            // The device's ports by ifIndex in one read, the addresses in one insert per
            // batch (was a read and an insert per address).
            let ports: std::collections::HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
                "SELECT ifIndex, port_id FROM ports WHERE device_id = ? AND deleted = 0",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?
            .into_iter()
            .collect();
            // An address on an interface the ports module does not know is skipped.
            let rows: Vec<(i64, &crate::Ipv4AddressPoll)> = polled
                .iter()
                .filter_map(|a| ports.get(&a.if_index).map(|p| (*p, a)))
                .collect();
            for chunk in rows.chunks(crate::sql::PORT_BATCH) {
                let sql = format!(
                    "INSERT INTO ipv4_addresses (device_id, port_id, ipv4_address, \
                     ipv4_prefixlen) VALUES {}",
                    crate::sql::placeholders(chunk.len(), 4)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (port_id, a) in chunk {
                    query = query
                        .bind(id)
                        .bind(*port_id)
                        .bind(&a.ipv4_address)
                        .bind(a.ipv4_prefixlen);
                }
                query.execute(&mut *c).await.map_err(|e| query_err(OP, e))?;
            }
            ipv4_addresses(&mut *c, id).await
        }

        pub(crate) async fn ipv4_addresses(
            c: &mut Conn,
            id: DeviceId,
        ) -> Result<Vec<crate::Ipv4Address>> {
            let rows = sqlx::query(
                "SELECT ipv4_address_id, device_id, port_id, ipv4_address, ipv4_prefixlen \
                 FROM ipv4_addresses WHERE device_id = ? ORDER BY port_id, ipv4_address",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("ipv4_addresses", e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::Ipv4Address {
                        ipv4_address_id: r.try_get("ipv4_address_id")?,
                        device_id: r.try_get("device_id")?,
                        port_id: r.try_get("port_id")?,
                        ipv4_address: r.try_get("ipv4_address")?,
                        ipv4_prefixlen: r.try_get("ipv4_prefixlen")?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| query_err("ipv4_addresses", e))
        }

        // ------------------------------------------------------ ports: reset, renumbering

        pub(crate) async fn reset_port_counters(c: &mut Conn, id: DeviceId) -> Result<()> {
            // The 15 counters of `sql::COUNTER_COLS` (a static string: sqlx wants audited SQL).
            sqlx::query(
                "UPDATE ports SET ifInOctets = NULL, ifOutOctets = NULL, ifInUcastPkts = NULL, \
                 ifOutUcastPkts = NULL, ifInNUcastPkts = NULL, ifOutNUcastPkts = NULL, \
                 ifInErrors = NULL, ifOutErrors = NULL, ifInDiscards = NULL, \
                 ifOutDiscards = NULL, ifInUnknownProtos = NULL, ifInBroadcastPkts = NULL, \
                 ifOutBroadcastPkts = NULL, ifInMulticastPkts = NULL, ifOutMulticastPkts = NULL \
                 WHERE device_id = ?",
            )
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("reset_port_counters", e))?;
            Ok(())
        }

        pub(crate) async fn renumber_ports(
            c: &mut Conn,
            id: DeviceId,
            moves: &[(PortId, i64)],
        ) -> Result<()> {
            const OP: &str = "renumber_ports";
            // Two steps through negative ifIndexes (never used by agents), so that swaps and
            // chains do not trip UNIQUE (device_id, ifIndex) half way.
            for (port_id, _) in moves {
                sqlx::query("UPDATE ports SET ifIndex = -ifIndex - 1 WHERE port_id = ? AND device_id = ?")
                    .bind(*port_id)
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
            }
            for (port_id, if_index) in moves {
                // A deleted row holding the new ifIndex is an interface that is gone for
                // good: the index now belongs to the renumbered one.
                sqlx::query("DELETE FROM ports WHERE device_id = ? AND ifIndex = ? AND deleted = 1")
                    .bind(id)
                    .bind(*if_index)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
                sqlx::query("UPDATE ports SET ifIndex = ? WHERE port_id = ? AND device_id = ?")
                    .bind(*if_index)
                    .bind(*port_id)
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
            }
            Ok(())
        }
    };
}

pub(crate) use health_ops_body;
