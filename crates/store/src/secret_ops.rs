//! Operations behind secrets at rest (`crate::secrets`): reading the secret columns of
//! `devices` in id order, and replacing a value only while it is still the one read (so
//! two processes sealing the same plaintext at once, e.g. two nodes migrating, leave one
//! sealed value). Expanded into each dialect's ops module by `define_ops!`.

/// Expands inside `define_ops!`'s module.
macro_rules! secret_ops_body {
    () => {
        // ---------------------------------------------------------------- secrets

        /// Up to `limit` devices with an id above `after`: id, hostname and the stored
        /// community, authpass and cryptopass (as stored: sealed or plaintext).
        pub(crate) async fn device_secrets_after(
            c: &mut Conn,
            after: DeviceId,
            limit: i64,
        ) -> Result<Vec<crate::secrets::StoredSecrets>> {
            let rows = sqlx::query(
                "SELECT device_id, hostname, community, authpass, cryptopass FROM devices \
                 WHERE device_id > ? ORDER BY device_id LIMIT ?",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("device_secrets", e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::secrets::StoredSecrets {
                        device_id: r.try_get("device_id")?,
                        hostname: r.try_get("hostname")?,
                        values: [
                            r.try_get::<Option<String>, _>("community")?
                                .unwrap_or_default(),
                            r.try_get::<Option<String>, _>("authpass")?
                                .unwrap_or_default(),
                            r.try_get::<Option<String>, _>("cryptopass")?
                                .unwrap_or_default(),
                        ],
                    })
                })
                .collect::<std::result::Result<_, sqlx::Error>>()
                .map_err(|e| query_err("device_secrets", e))
        }

        /// Writes each update whose old value is still stored; returns how many were.
        pub(crate) async fn update_device_secrets(
            c: &mut Conn,
            updates: &[crate::secrets::SecretUpdate],
        ) -> Result<u64> {
            use crate::secrets::Column;
            let mut written = 0;
            for u in updates {
                // Fixed statements per column: no column name is ever formatted into SQL.
                let sql = match u.column {
                    Column::Community => {
                        "UPDATE devices SET community = ? WHERE device_id = ? AND community = ?"
                    }
                    Column::AuthPass => {
                        "UPDATE devices SET authpass = ? WHERE device_id = ? AND authpass = ?"
                    }
                    Column::CryptoPass => {
                        "UPDATE devices SET cryptopass = ? WHERE device_id = ? AND cryptopass = ?"
                    }
                };
                let res = sqlx::query(sql)
                    .bind(&u.new)
                    .bind(u.device_id)
                    .bind(&u.old)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err("update_device_secrets", e))?;
                written += res.rows_affected();
            }
            Ok(written)
        }
    };
}

pub(crate) use secret_ops_body;
