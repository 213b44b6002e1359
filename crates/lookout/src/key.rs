//! `APP_KEY` as the key of the stored SNMP secrets (issue #16): generating it on first use,
//! deriving the store's secret keys from it (and from `APP_KEY_PREVIOUS` during a rotation),
//! and `lookout key rotate`.
//!
//! Rotation, in an order that survives a crash at any point (the new key is on disk before
//! anything is sealed with it):
//! 1. `<data dir>/.env` is rewritten atomically with `APP_KEY=<new>` and
//!    `APP_KEY_PREVIOUS=<old>`;
//! 2. every stored secret is re-sealed with the new key (the store opens both meanwhile);
//! 3. `.env` is rewritten again without `APP_KEY_PREVIOUS`.
//!
//! Run again after an interruption, `key rotate` sees `APP_KEY_PREVIOUS` and finishes that
//! rotation instead of starting another; `lookout serve` started in between opens both keys
//! and its start-up migration finishes the re-sealing.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use lookout_store::{SecretKey, Store};
use lookout_web::auth::AppKey;
use tracing::info;

use crate::config::{append_env, rewrite_env, Config, ENV_FILE};

/// First start: an `APP_KEY` in `<data dir>/.env`. Every node of a cluster must share it
/// (sessions are sealed with it, and so are the stored SNMP secrets), so it is generated
/// only when none is set.
pub fn ensure_app_key(cfg: &mut Config) -> Result<AppKey> {
    if let Some(text) = &cfg.app_key {
        return parse("APP_KEY", text);
    }
    let key = AppKey::generate();
    append_env(&cfg.data_dir, "APP_KEY", &key.to_string())?;
    info!(
        file = %cfg.data_dir.join(ENV_FILE).display(),
        "generated APP_KEY (copy it to every node of a cluster)"
    );
    cfg.app_key = Some(key.to_string());
    Ok(key)
}

fn parse(var: &str, text: &str) -> Result<AppKey> {
    text.parse::<AppKey>().map_err(|e| {
        anyhow::anyhow!(
            "{var} is not valid ({e}); expected base64:<32 bytes>, e.g. from a fresh install's .env"
        )
    })
}

/// Refuses to run with an `APP_KEY` other than the installation's: its check value is
/// stored by the first node that starts, and every later node compares with it (a node with
/// another key would issue sessions no other instance accepts and could not open the stored
/// SNMP secrets). During a rotation the new key takes over from `APP_KEY_PREVIOUS`.
pub async fn check_app_key(cfg: &Config, store: &Store, key: &AppKey) -> Result<()> {
    let previous = match &cfg.app_key_previous {
        Some(p) => Some(parse("APP_KEY_PREVIOUS", p)?.check_value()),
        None => None,
    };
    let mine = key.check_value();
    let stored = store
        .app_key_check(&mine, previous.as_deref())
        .await
        .context("cannot read the installation's APP_KEY check value from the database")?;
    if stored != mine {
        bail!(
            "APP_KEY differs from the one this installation uses (its check value {mine} is \
             not the stored {stored}): copy APP_KEY from the .env of another node of the \
             cluster into {}; with another key this node's sessions would be refused by \
             every other web instance and the stored SNMP secrets could not be opened",
            cfg.data_dir.join(ENV_FILE).display()
        );
    }
    Ok(())
}

/// The store's secret keys from `APP_KEY` and `APP_KEY_PREVIOUS`; `None` without APP_KEY.
pub fn secret_keys(cfg: &Config) -> Result<Option<(SecretKey, Vec<SecretKey>)>> {
    let Some(current) = &cfg.app_key else {
        return Ok(None);
    };
    let current = SecretKey::from_app_key(parse("APP_KEY", current)?.as_bytes());
    let previous = match &cfg.app_key_previous {
        Some(p) => vec![SecretKey::from_app_key(
            parse("APP_KEY_PREVIOUS", p)?.as_bytes(),
        )],
        None => Vec::new(),
    };
    Ok(Some((current, previous)))
}

/// The variables of `<data dir>/.env` alone (not the environment, not `./.env`).
fn data_dir_env(cfg: &Config) -> Result<std::collections::HashMap<String, String>> {
    let path = cfg.data_dir.join(ENV_FILE);
    let mut vars = std::collections::HashMap::new();
    if !path.is_file() {
        return Ok(vars);
    }
    let iter = dotenvy::from_path_iter(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    for item in iter {
        let (k, v) = item.with_context(|| format!("malformed line in {}", path.display()))?;
        vars.insert(k, v);
    }
    Ok(vars)
}

/// `lookout key rotate`: a new APP_KEY in `<data dir>/.env` and every stored SNMP secret
/// re-sealed with it (see the module doc for the order).
pub async fn rotate(cfg: Config) -> Result<ExitCode> {
    let env_path = cfg.data_dir.join(ENV_FILE);
    // The key this command rewrites must be the one every command reads.
    if std::env::var_os("APP_KEY").is_some() || std::env::var_os("APP_KEY_PREVIOUS").is_some() {
        bail!(
            "APP_KEY is set in the environment: `key rotate` rewrites {} and cannot change \
             the environment. Unset APP_KEY/APP_KEY_PREVIOUS for this command and the service \
             (keep the key in .env), or rotate by hand (docs/configuration.md, \"Rotating APP_KEY\")",
            env_path.display()
        );
    }
    let file = data_dir_env(&cfg)?;
    let Some(in_file) = file.get("APP_KEY").filter(|k| !k.trim().is_empty()) else {
        bail!(
            "no APP_KEY in {}: nothing to rotate (the first `lookout serve` creates one)",
            env_path.display()
        );
    };
    if cfg.app_key.as_deref() != Some(in_file.as_str()) {
        bail!(
            "the APP_KEY in use does not come from {} (a ./.env in the working directory \
             overrides it): run `key rotate` from another directory, or rotate by hand",
            env_path.display()
        );
    }
    let (old, new) = match file
        .get("APP_KEY_PREVIOUS")
        .filter(|k| !k.trim().is_empty())
    {
        Some(previous) => {
            println!("finishing the interrupted rotation (APP_KEY_PREVIOUS is set)");
            (previous.clone(), in_file.clone())
        }
        None => {
            let new = AppKey::generate().to_string();
            parse("APP_KEY", in_file)?;
            rewrite_env(
                &cfg.data_dir,
                &[
                    ("APP_KEY", Some(new.as_str())),
                    ("APP_KEY_PREVIOUS", Some(in_file.as_str())),
                ],
            )?;
            (in_file.clone(), new)
        }
    };
    let old_key = SecretKey::from_app_key(parse("APP_KEY_PREVIOUS", &old)?.as_bytes());
    let new_key = SecretKey::from_app_key(parse("APP_KEY", &new)?.as_bytes());
    let (old_id, new_id) = (old_key.id().to_string(), new_key.id().to_string());
    let store = Store::open_with_tls(&cfg.store, &cfg.store_tls)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_secret_keys(new_key, vec![old_key]);
    // Migrating re-seals every value of the old key (and any plaintext) with the new one.
    store
        .migrate()
        .await
        .context("re-encrypting the SNMP secrets (APP_KEY_PREVIOUS stays in .env; run `lookout key rotate` again to finish)")?;
    let status = store.secrets_status().await?;
    if status.plaintext > 0 || !status.other_keys.is_empty() {
        bail!(
            "after re-encrypting, {} plaintext and {:?} other-key secrets remain; APP_KEY_PREVIOUS stays in .env",
            status.plaintext,
            status.other_keys
        );
    }
    store.close().await;
    rewrite_env(&cfg.data_dir, &[("APP_KEY_PREVIOUS", None)])?;
    println!(
        "APP_KEY rotated (key id {old_id} -> {new_id}); {} SNMP secrets are encrypted with the new key",
        status.current
    );
    println!(
        "copy the new APP_KEY from {} to every node of this installation and restart them; \
         web sessions signed with the old key have ended (users log in again)",
        env_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
