//! The `Store` side of secrets at rest (`crate::secrets`): the keys a store is given, the
//! devices' SNMP secrets sealed on the way in and opened on the way out, and re-sealing
//! stored values in place (plaintext from older databases or dumps, values of a previous
//! key after `lookout key rotate`).

use std::sync::Arc;

use lookout_core::{Device, NewDevice};

use crate::secrets::{Column, Keys, OpenError, SecretKey, SecretUpdate};
use crate::{mysql, mysql_ops, query_err, sqlite_ops, Inner, Result, Store, StoreError};

/// Devices read per round of [`Store::reseal_secrets`] (one write transaction each).
const RESEAL_BATCH: i64 = 500;

/// What [`Store::reseal_secrets`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Plaintext values now sealed.
    pub sealed_plaintext: u64,
    /// Values of a previous key now sealed with the current one.
    pub resealed: u64,
    /// Devices looked at.
    pub devices: u64,
}

/// How the stored secrets stand (for `lookout validate`); counts of non-empty values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretsStatus {
    pub plaintext: u64,
    /// Sealed with the current key.
    pub current: u64,
    /// Sealed with another key (a previous one, or an unknown `APP_KEY`), by key id.
    pub other_keys: std::collections::BTreeMap<String, u64>,
}

impl Store {
    /// This store seals SNMP secrets with `current` (derived from `APP_KEY`) and opens
    /// values sealed with `current` or any of `previous` (the old key during a rotation).
    /// Without keys a store writes secrets as given and cannot read sealed ones.
    pub fn with_secret_keys(mut self, current: SecretKey, previous: Vec<SecretKey>) -> Store {
        self.keys = Some(Arc::new(Keys { current, previous }));
        self
    }

    /// The id of the key that seals new values, if the store has one.
    pub fn secret_key_id(&self) -> Option<&str> {
        self.keys.as_deref().map(|k| k.current.id())
    }

    fn secrets_error(&self, hostname: &str, column: Column, e: OpenError) -> StoreError {
        let ours = match self.secret_key_id() {
            Some(id) => format!("this APP_KEY has key id {id}"),
            None => "no APP_KEY is configured".to_string(),
        };
        StoreError::Secrets(match e {
            OpenError::UnknownKey(id) => format!(
                "the SNMP secrets of device {hostname} were encrypted with another APP_KEY \
                 (key id {id}; {ours}): set APP_KEY to the key this database was written \
                 with (see docs/configuration.md, \"Secrets and APP_KEY\")"
            ),
            OpenError::NoKey => format!(
                "the SNMP secrets of device {hostname} are encrypted but {ours}: set APP_KEY \
                 (e.g. in <data dir>/.env) to the key this database was written with"
            ),
            OpenError::Corrupt => format!(
                "the stored {} of device {hostname} does not decrypt with this APP_KEY ({ours}): \
                 it was changed or copied from another row; remove and add the device again",
                column.name()
            ),
        })
    }

    /// The device with its secrets readable (as the poller needs them).
    pub(crate) fn open_device(&self, mut d: Device) -> Result<Device> {
        let keys = self.keys.as_deref();
        let host = d.hostname.clone();
        let open = |column: Column, text: &mut String| -> Result<()> {
            *text = Keys::open(keys, column, &host, text)
                .map_err(|e| self.secrets_error(&host, column, e))?;
            Ok(())
        };
        open(Column::Community, &mut d.snmp.community)?;
        if let Some(v3) = d.snmp.v3.as_mut() {
            open(Column::AuthPass, &mut v3.auth_password)?;
            open(Column::CryptoPass, &mut v3.priv_password)?;
        }
        Ok(d)
    }

    pub(crate) fn open_devices(&self, devices: Vec<Device>) -> Result<Vec<Device>> {
        devices.into_iter().map(|d| self.open_device(d)).collect()
    }

    /// The new device as it is stored: its secrets sealed (when the store has a key).
    pub(crate) fn seal_new_device(&self, new: &NewDevice) -> NewDevice {
        let mut sealed = new.clone();
        if let Some(keys) = self.keys.as_deref() {
            let k = &keys.current;
            let host = &new.hostname;
            sealed.snmp.community = k.seal(Column::Community, host, &new.snmp.community);
            if let Some(v3) = sealed.snmp.v3.as_mut() {
                v3.auth_password = k.seal(Column::AuthPass, host, &v3.auth_password);
                v3.priv_password = k.seal(Column::CryptoPass, host, &v3.priv_password);
            }
        }
        sealed
    }

    /// Seals every stored plaintext secret with the current key and re-seals values of a
    /// previous key, in place (batches of 500 devices, one transaction each; a value is
    /// replaced only while it is still the one read, so concurrent runs are harmless).
    /// Called by [`Store::migrate`] and [`Store::import`]. A value sealed with an unknown
    /// key fails with `StoreError::Secrets` naming APP_KEY, before anything of its batch
    /// is written. Without a key: nothing to do.
    pub async fn reseal_secrets(&self) -> Result<ResealReport> {
        let mut report = ResealReport::default();
        let Some(keys) = self.keys.clone() else {
            return Ok(report);
        };
        let mut after = 0;
        loop {
            let rows = run!(
                self,
                read,
                "reseal_secrets",
                device_secrets_after(after, RESEAL_BATCH)
            )?;
            let Some(last) = rows.last() else {
                if report.sealed_plaintext + report.resealed > 0 {
                    self.scrub_sqlite().await?;
                }
                return Ok(report);
            };
            after = last.device_id;
            report.devices += rows.len() as u64;
            let mut updates = Vec::new();
            for row in &rows {
                for (column, old) in Column::ALL.iter().zip(&row.values) {
                    let new = keys
                        .reseal(*column, &row.hostname, old)
                        .map_err(|e| self.secrets_error(&row.hostname, *column, e))?;
                    if let Some(new) = new {
                        if crate::secrets::is_sealed(old) {
                            report.resealed += 1;
                        } else {
                            report.sealed_plaintext += 1;
                        }
                        updates.push(SecretUpdate {
                            device_id: row.device_id,
                            column: *column,
                            old: old.clone(),
                            new,
                        });
                    }
                }
            }
            if !updates.is_empty() {
                if matches!(&*self.inner, Inner::Sqlite(b) if b.read_only) {
                    tracing::warn!(
                        values = updates.len(),
                        "the database is read-only: SNMP secrets stay as stored (run `lookout migrate` on a writable copy)"
                    );
                    return Ok(report);
                }
                let updates = &updates;
                run!(
                    self,
                    write,
                    "reseal_secrets",
                    update_device_secrets(updates)
                )?;
            }
        }
    }

    /// After values were replaced in place: SQLite keeps the old bytes (plaintext, or
    /// ciphertext of the old key) in free space of pages, freed pages and WAL frames until
    /// they are reused. `VACUUM` rewrites the database from its live rows and a TRUNCATE
    /// checkpoint empties the WAL, so a copy of the files taken afterwards holds only the
    /// sealed values. Once per migration that sealed something (it rewrites the whole file).
    /// A reader in another process can keep the WAL from being truncated: said, not failed.
    /// MySQL/InnoDB purges old row versions itself; its files are not scrubbed here.
    async fn scrub_sqlite(&self) -> Result<()> {
        let Inner::Sqlite(b) = &*self.inner else {
            return Ok(());
        };
        let _writer = b.write_gate.lock().await;
        let res: Result<(i64, i64, i64)> = async {
            let mut c = b.pool.acquire().await.map_err(|e| query_err("vacuum", e))?;
            sqlx::raw_sql("VACUUM")
                .execute(&mut *c)
                .await
                .map_err(|e| query_err("vacuum", e))?;
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *c)
                .await
                .map_err(|e| query_err("wal_checkpoint", e))
        }
        .await;
        let (busy, _, _) = res.map_err(|e| b.explain(e))?;
        if busy != 0 {
            tracing::warn!(path = %b.path.display(), "the WAL could not be emptied (another process is reading the database); old values stay in it until it is reused");
        }
        Ok(())
    }

    /// Counts stored secrets by state (plaintext, sealed with the current key, with another
    /// key) without changing anything.
    pub async fn secrets_status(&self) -> Result<SecretsStatus> {
        let mut status = SecretsStatus::default();
        let current = self.secret_key_id().map(str::to_string);
        let mut after = 0;
        loop {
            let rows = run!(
                self,
                read,
                "secrets_status",
                device_secrets_after(after, RESEAL_BATCH)
            )?;
            let Some(last) = rows.last() else {
                return Ok(status);
            };
            after = last.device_id;
            for v in rows.iter().flat_map(|r| r.values.iter()) {
                match crate::secrets::key_id(v) {
                    _ if v.is_empty() => {}
                    None => status.plaintext += 1,
                    Some(id) if Some(id) == current.as_deref() => status.current += 1,
                    Some(id) => *status.other_keys.entry(id.to_string()).or_default() += 1,
                }
            }
        }
    }
}
