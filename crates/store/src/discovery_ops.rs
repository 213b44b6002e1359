//! Operations of the discovery tables (`links`, `ipv6_addresses`) and the poll commit,
//! written once and expanded into each dialect's ops module by `define_ops!` (so `run!`
//! finds them next to the other operations, and the commit can call them all inside its
//! one transaction).

/// Expands inside `define_ops!`'s module: `Conn`, `Row`, `enc_ts`, `query_err` and the
/// other operations are that module's.
macro_rules! discovery_ops_body {
    () => {
        // ---------------------------------------------------------------- poll commit

        pub(crate) async fn commit_poll(
            c: &mut Conn,
            id: DeviceId,
            k: &crate::PollCommit,
            at: Timestamp,
        ) -> Result<crate::PollCommitted> {
            // First, so that a stale poll writes nothing; on MySQL the check's no-op UPDATE
            // holds the device row lock until commit, so the token cannot move under us.
            // (Unfenced: the device row lock instead.) Either comes before any plain read,
            // see `lock_device`.
            match &k.fence {
                Some(f) => check_fence(&mut *c, id, f).await?,
                None => lock_device(&mut *c, "commit_poll", id).await?,
            }
            let mut out = crate::PollCommitted::default();
            let mut events: Vec<crate::NewEvent> = Vec::new();
            let mut synced = PollSynced::default();
            if let Some(p) = &k.ports {
                if p.reset_counters {
                    reset_port_counters(&mut *c, id).await?;
                }
                if !p.moves.is_empty() {
                    renumber_ports(&mut *c, id, &p.moves).await?;
                }
                let (before, sync) =
                    sync_ports_locked(&mut *c, id, &p.polled, p.polled_at).await?;
                if let Some(f) = p.events {
                    events.extend(f(&before, &sync));
                }
                if k.alerts.is_some() {
                    synced.ports = Some(sync.ports.clone());
                }
                out.ports = Some(sync);
            }
            if let Some(a) = &k.ipv4_addresses {
                sync_ipv4_addresses_locked(&mut *c, id, a).await?;
            }
            if let Some(a) = &k.ipv6_addresses {
                sync_ipv6_addresses_locked(&mut *c, id, a).await?;
            }
            if let Some(p) = &k.processors {
                synced.processors = Some(sync_processors_locked(&mut *c, id, p).await?);
            }
            if let Some(m) = &k.mempools {
                synced.mempools = Some(sync_mempools_locked(&mut *c, id, m).await?);
            }
            if let Some(s) = &k.storage {
                synced.storage = Some(sync_storage_locked(&mut *c, id, s).await?);
            }
            if let Some(l) = &k.links {
                sync_links_locked(&mut *c, id, l).await?;
            }
            update_device_poll(&mut *c, id, &k.update).await?;
            if let Some(f) = &k.fence {
                insert_poll_log(
                    &mut *c,
                    &crate::PollLogEntry {
                        device_id: id,
                        node_id: f.node_id.clone(),
                        token: f.token,
                        started: f.started,
                        finished: at,
                        status: crate::PollOutcome::Ok,
                        duration: k.update.last_polled_timetaken,
                    },
                )
                .await?;
            }
            if !k.module_perf.is_empty() {
                record_module_perf_locked(&mut *c, id, &k.module_perf).await?;
            }
            if let Some(t) = k.discovered_at {
                mark_discovered(&mut *c, id, t).await?;
            }
            events.extend(k.events.iter().cloned());
            for e in &events {
                log_event(&mut *c, Some(id), &e.kind, &e.message, e.severity, e.reference, at)
                    .await?;
            }
            out.events = events.len();
            if let Some(a) = &k.alerts {
                commit_poll_alerts(&mut *c, id, a, synced, at).await?;
            }
            Ok(out)
        }

        pub(crate) async fn request_discovery(c: &mut Conn, id: DeviceId) -> Result<()> {
            let res = sqlx::query("UPDATE devices SET last_discovered = NULL WHERE device_id = ?")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("request_discovery", e))?;
            if res.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    what: "device",
                    key: id.to_string(),
                });
            }
            Ok(())
        }

        // ---------------------------------------------------------------- export/import

        /// The module tables into `dump` (inside `export_all`'s transaction).
        pub(crate) async fn export_modules(c: &mut Conn, dump: &mut crate::Dump) -> Result<()> {
            const OP: &str = "export";
            async fn all<T>(
                c: &mut Conn,
                sql: &'static str,
                f: fn(&Row) -> std::result::Result<T, sqlx::Error>,
            ) -> Result<Vec<T>> {
                sqlx::query(sql)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?
                    .iter()
                    .map(f)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| query_err(OP, e))
            }
            dump.processors = all(
                &mut *c,
                "SELECT processor_id, device_id, processor_index, processor_type, processor_oid, \
                 processor_descr, processor_usage, processor_precision FROM processors \
                 ORDER BY processor_id",
                processor_from_row,
            )
            .await?;
            dump.mempools = all(
                &mut *c,
                "SELECT mempool_id, device_id, mempool_index, mempool_type, mempool_class, \
                 mempool_precision, mempool_descr, mempool_perc, mempool_used, mempool_free, \
                 mempool_total FROM mempools ORDER BY mempool_id",
                mempool_from_row,
            )
            .await?;
            dump.storage = all(
                &mut *c,
                "SELECT storage_id, device_id, type, storage_index, storage_type, storage_descr, \
                 storage_size, storage_units, storage_used, storage_free, storage_perc \
                 FROM storage ORDER BY storage_id",
                storage_from_row,
            )
            .await?;
            dump.ipv4_addresses = all(
                &mut *c,
                "SELECT ipv4_address_id, device_id, port_id, ipv4_address, ipv4_prefixlen \
                 FROM ipv4_addresses ORDER BY ipv4_address_id",
                |r| {
                    Ok(crate::Ipv4Address {
                        ipv4_address_id: r.try_get("ipv4_address_id")?,
                        device_id: r.try_get("device_id")?,
                        port_id: r.try_get("port_id")?,
                        ipv4_address: r.try_get("ipv4_address")?,
                        ipv4_prefixlen: r.try_get("ipv4_prefixlen")?,
                    })
                },
            )
            .await?;
            dump.ipv6_addresses = all(
                &mut *c,
                "SELECT ipv6_address_id, device_id, port_id, ipv6_address, ipv6_compressed, \
                 ipv6_prefixlen, ipv6_origin FROM ipv6_addresses ORDER BY ipv6_address_id",
                ipv6_from_row,
            )
            .await?;
            dump.links = all(
                &mut *c,
                "SELECT id, local_port_id, local_device_id, remote_port_id, active, protocol, \
                 remote_hostname, remote_device_id, remote_port, remote_platform, \
                 remote_version FROM links ORDER BY id",
                link_from_row,
            )
            .await?;
            Ok(())
        }

        /// The module tables of a dump, ids kept (after devices and ports).
        pub(crate) async fn import_modules(c: &mut Conn, d: &crate::Dump) -> Result<()> {
            const OP: &str = "import modules";
            let e = |e| query_err(OP, e);
            for p in &d.processors {
                sqlx::query(
                    "INSERT INTO processors (processor_id, device_id, processor_index, \
                     processor_type, processor_oid, processor_descr, processor_usage, \
                     processor_precision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(p.processor_id)
                .bind(p.device_id)
                .bind(&p.processor_index)
                .bind(&p.processor_type)
                .bind(&p.processor_oid)
                .bind(&p.processor_descr)
                .bind(p.processor_usage)
                .bind(p.processor_precision)
                .execute(&mut *c)
                .await
                .map_err(e)?;
            }
            for m in &d.mempools {
                sqlx::query(
                    "INSERT INTO mempools (mempool_id, device_id, mempool_index, mempool_type, \
                     mempool_class, mempool_precision, mempool_descr, mempool_perc, \
                     mempool_used, mempool_free, mempool_total) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(m.mempool_id)
                .bind(m.device_id)
                .bind(&m.mempool_index)
                .bind(&m.mempool_type)
                .bind(&m.mempool_class)
                .bind(m.mempool_precision)
                .bind(&m.mempool_descr)
                .bind(m.mempool_perc)
                .bind(enc_u64(Some(m.mempool_used)))
                .bind(enc_u64(Some(m.mempool_free)))
                .bind(enc_u64(Some(m.mempool_total)))
                .execute(&mut *c)
                .await
                .map_err(e)?;
            }
            for s in &d.storage {
                sqlx::query(
                    "INSERT INTO storage (storage_id, device_id, type, storage_index, \
                     storage_type, storage_descr, storage_size, storage_units, storage_used, \
                     storage_free, storage_perc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(s.storage_id)
                .bind(s.device_id)
                .bind(&s.storage_mib)
                .bind(s.storage_index)
                .bind(&s.storage_type)
                .bind(&s.storage_descr)
                .bind(enc_u64(Some(s.storage_size)))
                .bind(s.storage_units)
                .bind(enc_u64(Some(s.storage_used)))
                .bind(enc_u64(Some(s.storage_free)))
                .bind(s.storage_perc)
                .execute(&mut *c)
                .await
                .map_err(e)?;
            }
            for a in &d.ipv4_addresses {
                sqlx::query(
                    "INSERT INTO ipv4_addresses (ipv4_address_id, device_id, port_id, \
                     ipv4_address, ipv4_prefixlen) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(a.ipv4_address_id)
                .bind(a.device_id)
                .bind(a.port_id)
                .bind(&a.ipv4_address)
                .bind(a.ipv4_prefixlen)
                .execute(&mut *c)
                .await
                .map_err(e)?;
            }
            for a in &d.ipv6_addresses {
                sqlx::query(
                    "INSERT INTO ipv6_addresses (ipv6_address_id, device_id, port_id, \
                     ipv6_address, ipv6_compressed, ipv6_prefixlen, ipv6_origin) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(a.ipv6_address_id)
                .bind(a.device_id)
                .bind(a.port_id)
                .bind(&a.ipv6_address)
                .bind(&a.ipv6_compressed)
                .bind(a.ipv6_prefixlen)
                .bind(&a.ipv6_origin)
                .execute(&mut *c)
                .await
                .map_err(e)?;
            }
            for l in &d.links {
                sqlx::query(
                    "INSERT INTO links (id, local_port_id, local_device_id, remote_port_id, \
                     active, protocol, remote_hostname, remote_device_id, remote_port, \
                     remote_platform, remote_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(l.id)
                .bind(l.local_port_id)
                .bind(l.local_device_id)
                .bind(l.remote_port_id)
                .bind(l.active)
                .bind(&l.protocol)
                .bind(&l.remote_hostname)
                .bind(l.remote_device_id)
                .bind(&l.remote_port)
                .bind(&l.remote_platform)
                .bind(&l.remote_version)
                .execute(&mut *c)
                .await
                .map_err(e)?;
            }
            Ok(())
        }

        // ---------------------------------------------------------------- links

        fn link_from_row(r: &Row) -> std::result::Result<crate::Link, sqlx::Error> {
            Ok(crate::Link {
                id: r.try_get("id")?,
                local_port_id: r.try_get("local_port_id")?,
                local_device_id: r.try_get("local_device_id")?,
                remote_port_id: r.try_get("remote_port_id")?,
                active: r.try_get("active")?,
                protocol: r.try_get("protocol")?,
                remote_hostname: r.try_get("remote_hostname")?,
                remote_device_id: r.try_get("remote_device_id")?,
                remote_port: r.try_get("remote_port")?,
                remote_platform: r.try_get("remote_platform")?,
                remote_version: r.try_get("remote_version")?,
            })
        }

        pub(crate) async fn sync_links(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::LinkPoll],
        ) -> Result<Vec<crate::Link>> {
            device_exists(&mut *c, "sync_links", id).await?;
            sync_links_locked(c, id, polled).await
        }

        /// `sync_links` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn sync_links_locked(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::LinkPoll],
        ) -> Result<Vec<crate::Link>> {
            const OP: &str = "sync_links";
            // Few rows per device, referenced by nothing: replace them all.
            delete_device_rows(
                &mut *c,
                OP,
                "SELECT id FROM links WHERE local_device_id = ?",
                "DELETE FROM links WHERE id IN",
                id,
            )
            .await?;
            for l in polled {
                let local_port: Option<i64> = match l.local_if_index {
                    Some(idx) => sqlx::query_scalar(
                        "SELECT port_id FROM ports WHERE device_id = ? AND ifIndex = ? \
                         AND deleted = 0",
                    )
                    .bind(id)
                    .bind(idx)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?,
                    None => None,
                };
                // The neighbour among the known devices: by hostname or sysName (LLDP and
                // CDP announce the system name), else by its management address. Not the
                // device itself (an agent may list its own ports when cabled in a loop).
                let name = l.remote_hostname.trim();
                let remote_device: Option<i64> = if name.is_empty() {
                    None
                } else {
                    sqlx::query_scalar(
                        "SELECT device_id FROM devices WHERE device_id <> ? AND \
                         (LOWER(hostname) = LOWER(?) OR LOWER(sysName) = LOWER(?)) \
                         ORDER BY device_id LIMIT 1",
                    )
                    .bind(id)
                    .bind(name)
                    .bind(name)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?
                };
                let remote_device = match (remote_device, &l.remote_address) {
                    (None, Some(addr)) if !addr.is_empty() => sqlx::query_scalar(
                        "SELECT device_id FROM devices WHERE device_id <> ? AND hostname = ? \
                         ORDER BY device_id LIMIT 1",
                    )
                    .bind(id)
                    .bind(addr)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?,
                    (d, _) => d,
                };
                let remote_port: Option<i64> = match remote_device {
                    Some(d) if !l.remote_port.is_empty() => sqlx::query_scalar(
                        "SELECT port_id FROM ports WHERE device_id = ? AND deleted = 0 AND \
                         (ifName = ? OR ifDescr = ?) ORDER BY port_id LIMIT 1",
                    )
                    .bind(d)
                    .bind(&l.remote_port)
                    .bind(&l.remote_port)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?,
                    _ => None,
                };
                sqlx::query(
                    "INSERT INTO links (local_port_id, local_device_id, remote_port_id, active, \
                     protocol, remote_hostname, remote_device_id, remote_port, remote_platform, \
                     remote_version) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                )
                .bind(local_port)
                .bind(id)
                .bind(remote_port)
                .bind(&l.protocol)
                .bind(name)
                .bind(remote_device)
                .bind(&l.remote_port)
                .bind(&l.remote_platform)
                .bind(&l.remote_version)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            }
            links(&mut *c, id).await
        }

        pub(crate) async fn links(c: &mut Conn, id: DeviceId) -> Result<Vec<crate::Link>> {
            let rows = sqlx::query(
                "SELECT id, local_port_id, local_device_id, remote_port_id, active, protocol, \
                 remote_hostname, remote_device_id, remote_port, remote_platform, \
                 remote_version FROM links WHERE local_device_id = ? \
                 ORDER BY local_port_id, protocol, remote_hostname, id",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("links", e))?;
            rows.iter()
                .map(link_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("links", e))
        }

        // ---------------------------------------------------------------- IPv6 addresses

        fn ipv6_from_row(r: &Row) -> std::result::Result<crate::Ipv6Address, sqlx::Error> {
            Ok(crate::Ipv6Address {
                ipv6_address_id: r.try_get("ipv6_address_id")?,
                device_id: r.try_get("device_id")?,
                port_id: r.try_get("port_id")?,
                ipv6_address: r.try_get("ipv6_address")?,
                ipv6_compressed: r.try_get("ipv6_compressed")?,
                ipv6_prefixlen: r.try_get("ipv6_prefixlen")?,
                ipv6_origin: r.try_get("ipv6_origin")?,
            })
        }

        pub(crate) async fn sync_ipv6_addresses(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::Ipv6AddressPoll],
        ) -> Result<Vec<crate::Ipv6Address>> {
            device_exists(&mut *c, "sync_ipv6_addresses", id).await?;
            sync_ipv6_addresses_locked(c, id, polled).await
        }

        /// `sync_ipv6_addresses` inside a transaction that holds the device row lock (`commit_poll`).
        pub(crate) async fn sync_ipv6_addresses_locked(
            c: &mut Conn,
            id: DeviceId,
            polled: &[crate::Ipv6AddressPoll],
        ) -> Result<Vec<crate::Ipv6Address>> {
            const OP: &str = "sync_ipv6_addresses";
            delete_device_rows(
                &mut *c,
                OP,
                "SELECT ipv6_address_id FROM ipv6_addresses WHERE device_id = ?",
                "DELETE FROM ipv6_addresses WHERE ipv6_address_id IN",
                id,
            )
            .await?;
            let mut seen = std::collections::HashSet::new();
            for a in polled {
                let port: Option<i64> = sqlx::query_scalar(
                    "SELECT port_id FROM ports WHERE device_id = ? AND ifIndex = ? AND deleted = 0",
                )
                .bind(id)
                .bind(a.if_index)
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
                // An address on an interface the ports module does not know is skipped; one
                // listed twice (by both MIBs) is kept once.
                let Some(port_id) = port else { continue };
                if !seen.insert((port_id, a.ipv6_address.clone())) {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO ipv6_addresses (device_id, port_id, ipv6_address, \
                     ipv6_compressed, ipv6_prefixlen, ipv6_origin) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(port_id)
                .bind(&a.ipv6_address)
                .bind(&a.ipv6_compressed)
                .bind(a.ipv6_prefixlen)
                .bind(&a.ipv6_origin)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            }
            ipv6_addresses(&mut *c, id).await
        }

        pub(crate) async fn ipv6_addresses(
            c: &mut Conn,
            id: DeviceId,
        ) -> Result<Vec<crate::Ipv6Address>> {
            let rows = sqlx::query(
                "SELECT ipv6_address_id, device_id, port_id, ipv6_address, ipv6_compressed, \
                 ipv6_prefixlen, ipv6_origin FROM ipv6_addresses WHERE device_id = ? \
                 ORDER BY port_id, ipv6_address",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("ipv6_addresses", e))?;
            rows.iter()
                .map(ipv6_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("ipv6_addresses", e))
        }
    };
}

pub(crate) use discovery_ops_body;
