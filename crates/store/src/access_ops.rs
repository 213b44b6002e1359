//! Operations behind `crate::access` (users, device grants, API tokens, sessions, authlog,
//! the APP_KEY check value), expanded into each dialect's ops module by `define_ops!`.

/// Expands inside `define_ops!`'s module.
macro_rules! access_ops_body {
    () => {
        // ---------------------------------------------------------------- users, grants

        pub(crate) async fn users(c: &mut Conn) -> Result<Vec<User>> {
            let rows = sqlx::query(
                "SELECT user_id, username, password, level FROM users ORDER BY username",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("users", e))?;
            rows.iter()
                .map(user_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("users", e))
        }

        pub(crate) async fn remove_user(c: &mut Conn, user_id: i64) -> Result<bool> {
            const OP: &str = "remove_user";
            // Explicit, not only by cascade: the foreign keys of a database restored from a
            // dump without them must not leave a removed user's tokens usable.
            for sql in [
                "DELETE FROM api_tokens WHERE user_id = ?",
                "DELETE FROM user_sessions WHERE user_id = ?",
                "DELETE FROM devices_perms WHERE user_id = ?",
            ] {
                sqlx::query(sql)
                    .bind(user_id)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
            }
            let res = sqlx::query("DELETE FROM users WHERE user_id = ?")
                .bind(user_id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err(OP, e))?;
            Ok(res.rows_affected() > 0)
        }

        pub(crate) async fn set_user_level(c: &mut Conn, user_id: i64, level: i32) -> Result<()> {
            let res = sqlx::query("UPDATE users SET level = ? WHERE user_id = ?")
                .bind(level)
                .bind(user_id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("set_user_level", e))?;
            // MySQL counts changed rows only: an unchanged level is 0 rows but not missing.
            if res.rows_affected() == 0 && user(c, user_id).await?.is_none() {
                return Err(StoreError::NotFound {
                    what: "user",
                    key: user_id.to_string(),
                });
            }
            Ok(())
        }

        pub(crate) async fn device_perms(c: &mut Conn, user_id: i64) -> Result<Vec<DeviceId>> {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT device_id FROM devices_perms WHERE user_id = ? ORDER BY device_id",
            )
            .bind(user_id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("device_perms", e))?;
            Ok(rows.into_iter().map(|(d,)| d).collect())
        }

        pub(crate) async fn grant_device(
            c: &mut Conn,
            user_id: i64,
            device_id: DeviceId,
        ) -> Result<()> {
            const OP: &str = "grant_device";
            if user(c, user_id).await?.is_none() {
                return Err(StoreError::NotFound {
                    what: "user",
                    key: user_id.to_string(),
                });
            }
            let known: Option<(i64,)> =
                sqlx::query_as("SELECT device_id FROM devices WHERE device_id = ?")
                    .bind(device_id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
            if known.is_none() {
                return Err(StoreError::NotFound {
                    what: "device",
                    key: device_id.to_string(),
                });
            }
            let res = sqlx::query("INSERT INTO devices_perms (user_id, device_id) VALUES (?, ?)")
                .bind(user_id)
                .bind(device_id)
                .execute(&mut *c)
                .await;
            match res {
                Ok(_) => Ok(()),
                Err(e) if is_unique(&e) => Ok(()),
                Err(e) => Err(query_err(OP, e)),
            }
        }

        pub(crate) async fn revoke_device(
            c: &mut Conn,
            user_id: i64,
            device_id: DeviceId,
        ) -> Result<bool> {
            let res = sqlx::query("DELETE FROM devices_perms WHERE user_id = ? AND device_id = ?")
                .bind(user_id)
                .bind(device_id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("revoke_device", e))?;
            Ok(res.rows_affected() > 0)
        }

        // ---------------------------------------------------------------- API tokens

        pub(crate) async fn api_tokens(c: &mut Conn) -> Result<Vec<crate::ApiTokenInfo>> {
            let rows = sqlx::query(
                "SELECT t.id, t.user_id, u.username, t.description, t.disabled \
                 FROM api_tokens t JOIN users u ON u.user_id = t.user_id ORDER BY t.id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("api_tokens", e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::ApiTokenInfo {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        username: r.try_get("username")?,
                        description: r.try_get("description")?,
                        disabled: r.try_get("disabled")?,
                    })
                })
                .collect::<std::result::Result<_, sqlx::Error>>()
                .map_err(|e| query_err("api_tokens", e))
        }

        pub(crate) async fn remove_api_token(c: &mut Conn, id: i64) -> Result<bool> {
            let res = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("remove_api_token", e))?;
            Ok(res.rows_affected() > 0)
        }

        // ---------------------------------------------------------------- sessions

        fn session_from_row(r: &Row) -> std::result::Result<crate::SessionRecord, sqlx::Error> {
            Ok(crate::SessionRecord {
                user_id: r.try_get("user_id")?,
                created: r.try_get("created")?,
                last_seen: r.try_get("last_seen")?,
                expires: r.try_get("expires")?,
                address: r.try_get("address")?,
                user_agent: r.try_get("user_agent")?,
            })
        }

        pub(crate) async fn add_session(
            c: &mut Conn,
            session_hash: &str,
            s: &crate::SessionRecord,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO user_sessions \
                 (session_hash, user_id, created, last_seen, expires, address, user_agent) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(session_hash)
            .bind(s.user_id)
            .bind(s.created)
            .bind(s.last_seen)
            .bind(s.expires)
            .bind(&s.address)
            .bind(&s.user_agent)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err("add_session", e))?;
            Ok(())
        }

        pub(crate) async fn session(
            c: &mut Conn,
            session_hash: &str,
        ) -> Result<Option<crate::SessionRecord>> {
            let row = sqlx::query(
                "SELECT user_id, created, last_seen, expires, address, user_agent \
                 FROM user_sessions WHERE session_hash = ?",
            )
            .bind(session_hash)
            .fetch_optional(&mut *c)
            .await
            .map_err(|e| query_err("session", e))?;
            row.map(|r| session_from_row(&r))
                .transpose()
                .map_err(|e| query_err("session", e))
        }

        pub(crate) async fn touch_session(
            c: &mut Conn,
            session_hash: &str,
            last_seen: i64,
        ) -> Result<()> {
            sqlx::query(
                "UPDATE user_sessions SET last_seen = ? WHERE session_hash = ? AND last_seen < ?",
            )
            .bind(last_seen)
            .bind(session_hash)
            .bind(last_seen)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err("touch_session", e))?;
            Ok(())
        }

        pub(crate) async fn remove_session(c: &mut Conn, session_hash: &str) -> Result<bool> {
            let res = sqlx::query("DELETE FROM user_sessions WHERE session_hash = ?")
                .bind(session_hash)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("remove_session", e))?;
            Ok(res.rows_affected() > 0)
        }

        pub(crate) async fn remove_user_sessions(c: &mut Conn, user_id: i64) -> Result<u64> {
            let res = sqlx::query("DELETE FROM user_sessions WHERE user_id = ?")
                .bind(user_id)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("remove_user_sessions", e))?;
            Ok(res.rows_affected())
        }

        pub(crate) async fn user_sessions(
            c: &mut Conn,
            user_id: i64,
        ) -> Result<Vec<crate::SessionRecord>> {
            let rows = sqlx::query(
                "SELECT user_id, created, last_seen, expires, address, user_agent \
                 FROM user_sessions WHERE user_id = ? ORDER BY created DESC",
            )
            .bind(user_id)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("user_sessions", e))?;
            rows.iter()
                .map(session_from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| query_err("user_sessions", e))
        }

        pub(crate) async fn prune_sessions(c: &mut Conn, now: i64, idle_secs: i64) -> Result<u64> {
            let res = sqlx::query("DELETE FROM user_sessions WHERE expires <= ? OR last_seen <= ?")
                .bind(now)
                .bind(now - idle_secs)
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("prune_sessions", e))?;
            Ok(res.rows_affected())
        }

        // ---------------------------------------------------------------- authlog

        pub(crate) async fn add_authlog(
            c: &mut Conn,
            datetime: i64,
            user: &str,
            address: &str,
            result: &str,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO authlog (datetime, user, address, result) VALUES (?, ?, ?, ?)",
            )
            .bind(datetime)
            .bind(user)
            .bind(address)
            .bind(result)
            .execute(&mut *c)
            .await
            .map_err(|e| query_err("add_authlog", e))?;
            Ok(())
        }

        pub(crate) async fn authlog(
            c: &mut Conn,
            start: i64,
            limit: i64,
        ) -> Result<Vec<crate::AuthlogRow>> {
            let rows = sqlx::query(
                "SELECT id, datetime, user, address, result FROM authlog \
                 ORDER BY id DESC LIMIT ? OFFSET ?",
            )
            .bind(limit)
            .bind(start)
            .fetch_all(&mut *c)
            .await
            .map_err(|e| query_err("authlog", e))?;
            rows.iter()
                .map(|r| {
                    Ok(crate::AuthlogRow {
                        id: r.try_get("id")?,
                        datetime: r.try_get("datetime")?,
                        user: r.try_get("user")?,
                        address: r.try_get("address")?,
                        result: r.try_get("result")?,
                    })
                })
                .collect::<std::result::Result<_, sqlx::Error>>()
                .map_err(|e| query_err("authlog", e))
        }

        pub(crate) async fn login_failures(
            c: &mut Conn,
            user: &str,
            address: &str,
            since: i64,
        ) -> Result<crate::LoginFailures> {
            const OP: &str = "login_failures";
            let last_ok: Option<(Option<i64>,)> = sqlx::query_as(
                "SELECT MAX(datetime) FROM authlog WHERE user = ? AND result = 'ok'",
            )
            .bind(user)
            .fetch_optional(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            let user_since = last_ok
                .and_then(|(t,)| t)
                .map_or(since, |ok| ok.saturating_add(1).max(since));
            let (user_failures, user_last): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(datetime) FROM authlog \
                 WHERE user = ? AND result = 'failure' AND datetime >= ?",
            )
            .bind(user)
            .bind(user_since)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            let (address_failures, address_last): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(datetime) FROM authlog \
                 WHERE address = ? AND result = 'failure' AND datetime >= ?",
            )
            .bind(address)
            .bind(since)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| query_err(OP, e))?;
            Ok(crate::LoginFailures {
                user_failures: u32::try_from(user_failures).unwrap_or(u32::MAX),
                user_last,
                address_failures: u32::try_from(address_failures).unwrap_or(u32::MAX),
                address_last,
            })
        }

        // ---------------------------------------------------------------- APP_KEY check

        pub(crate) async fn app_key_check(
            c: &mut Conn,
            check: &str,
            previous: Option<&str>,
        ) -> Result<String> {
            const OP: &str = "app_key_check";
            let stored: Option<(String,)> =
                sqlx::query_as("SELECT check_value FROM app_key_check WHERE id = 1")
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(|e| query_err(OP, e))?;
            if let Some((v,)) = stored {
                // A rotation: the instance holding the new key (and the old one as previous)
                // moves the check value on.
                if previous == Some(v.as_str()) && v != check {
                    sqlx::query("UPDATE app_key_check SET check_value = ? WHERE id = 1")
                        .bind(check)
                        .execute(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                    return Ok(check.to_string());
                }
                return Ok(v);
            }
            let res = sqlx::query("INSERT INTO app_key_check (id, check_value) VALUES (1, ?)")
                .bind(check)
                .execute(&mut *c)
                .await;
            match res {
                Ok(_) => Ok(check.to_string()),
                // Another instance stored its value first: that one counts. On MySQL the
                // plain SELECT above fixed this transaction's snapshot without the row, so
                // only a locking read sees it now (found by a Galera test: two nodes
                // starting at once, one got "no rows" here).
                Err(e) if is_unique(&e) => {
                    let sql = if dialect::SQLITE {
                        "SELECT check_value FROM app_key_check WHERE id = 1"
                    } else {
                        "SELECT check_value FROM app_key_check WHERE id = 1 FOR UPDATE"
                    };
                    let (v,): (String,) = sqlx::query_as(sql)
                        .fetch_one(&mut *c)
                        .await
                        .map_err(|e| query_err(OP, e))?;
                    Ok(v)
                }
                Err(e) => Err(query_err(OP, e)),
            }
        }
    };
}

pub(crate) use access_ops_body;
