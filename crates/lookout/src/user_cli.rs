//! `lookout user ...` and `lookout token ...`: users, levels, device grants, sessions and API
//! tokens from the shell, the same operations as the web's users pages (so an installation
//! with no admin left can be repaired on the command line).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use lookout_store::{Store, User};
use serde_json::json;

use crate::cli::{TokenCommand, UserCommand};
use crate::commands::generate_password;
use crate::config::Config;

const LEVELS: [i32; 4] = [1, 5, 10, 11];

fn check_level(level: i32) -> Result<()> {
    if !LEVELS.contains(&level) {
        bail!("level {level} is not one of 1 (normal), 5 (global read), 10 (admin), 11 (demo)");
    }
    Ok(())
}

async fn find_user(store: &Store, username: &str) -> Result<User> {
    store
        .user_by_username(username)
        .await?
        .with_context(|| format!("no user {username:?} (`lookout user list` shows them)"))
}

/// The password given, or a generated one (then printed); checked against the policy.
fn password_or_generated(cfg: &Config, given: Option<String>) -> Result<(String, bool)> {
    let (password, generated) = match given {
        Some(p) if !p.is_empty() => (p, false),
        _ => (generate_password(), true),
    };
    lookout_web::security::check_password_policy(&password, &cfg.web_security)
        .map_err(|m| anyhow::anyhow!("{m} (PASSWORD_MIN_LENGTH)"))?;
    Ok((password, generated))
}

fn hash(password: &str) -> Result<String> {
    lookout_web::auth::hash_password(password)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// A device by hostname, else by id.
async fn find_device(store: &Store, key: &str) -> Result<lookout_core::Device> {
    if let Some(d) = store.device_by_hostname(key).await? {
        return Ok(d);
    }
    if let Ok(id) = key.parse::<i64>() {
        if let Some(d) = store.device(id).await? {
            return Ok(d);
        }
    }
    bail!("no device {key:?} (give its hostname or id; `lookout device list` shows them)")
}

/// Ends a user's sessions wherever they live: the store, and Redis when it is configured
/// (the web keeps them there then).
async fn end_sessions(cfg: &Config, store: &Store, user_id: i64) -> Result<u64> {
    let mut n = store.remove_user_sessions(user_id).await?;
    let coord = lookout_coord::Coord::connect(&cfg.coord)
        .await
        .context("cannot reach Redis to end the user's sessions (REDIS_* settings)")?;
    if coord.backend_name() == "redis" {
        n += coord.session_remove_user(user_id).await?;
    }
    Ok(n)
}

pub async fn user(cfg: &Config, store: &Store, cmd: UserCommand) -> Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            username,
            password,
            level,
        } => {
            check_level(level)?;
            let (password, generated) = password_or_generated(cfg, password)?;
            store
                .add_user(&username, &hash(&password)?, level)
                .await
                .with_context(|| format!("cannot add user {username:?}"))?;
            println!("user {username} added (level {level})");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List { json } => list(store, json).await?,
        UserCommand::Remove { username } => {
            let u = find_user(store, &username).await?;
            end_sessions(cfg, store, u.user_id).await?;
            store.remove_user(u.user_id).await?;
            println!("user {username} removed, with their tokens, sessions and grants");
        }
        UserCommand::Passwd { username, password } => {
            let u = find_user(store, &username).await?;
            let (password, generated) = password_or_generated(cfg, password)?;
            store.set_password(u.user_id, &hash(&password)?).await?;
            let ended = end_sessions(cfg, store, u.user_id).await?;
            println!("password of {username} changed; {ended} session(s) ended");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Level { username, level } => {
            check_level(level)?;
            let u = find_user(store, &username).await?;
            store.set_user_level(u.user_id, level).await?;
            println!("{username} is now level {level}");
        }
        UserCommand::Grant { username, devices } => {
            let u = find_user(store, &username).await?;
            for key in devices {
                let d = find_device(store, &key).await?;
                store.grant_device(u.user_id, d.device_id).await?;
                println!("{username} may see {} (device {})", d.hostname, d.device_id);
            }
            if u.level >= 5 {
                println!(
                    "note: level {} sees every device; grants matter for level 1",
                    u.level
                );
            }
        }
        UserCommand::Revoke { username, devices } => {
            let u = find_user(store, &username).await?;
            for key in devices {
                let d = find_device(store, &key).await?;
                let had = store.revoke_device(u.user_id, d.device_id).await?;
                println!(
                    "{}: {}",
                    d.hostname,
                    if had { "revoked" } else { "was not granted" }
                );
            }
        }
        UserCommand::Logout { username } => {
            let u = find_user(store, &username).await?;
            let ended = end_sessions(cfg, store, u.user_id).await?;
            println!("{ended} session(s) of {username} ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &Store, as_json: bool) -> Result<()> {
    let mut rows = Vec::new();
    for u in store.users().await? {
        let devices = store.device_perms(u.user_id).await?.len();
        let sessions = store.user_sessions(u.user_id).await?.len();
        rows.push((u, devices, sessions));
    }
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(u, devices, sessions)| {
                json!({"user_id": u.user_id, "username": u.username, "level": u.level,
                       "devices_granted": devices, "sessions": sessions})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "{:<6} {:<24} {:>5} {:>8} {:>8}",
        "ID", "USER", "LEVEL", "DEVICES", "SESSIONS"
    );
    for (u, devices, sessions) in rows {
        let devices = if u.level >= 5 {
            "all".to_string()
        } else {
            devices.to_string()
        };
        println!(
            "{:<6} {:<24} {:>5} {:>8} {:>8}",
            u.user_id, u.username, u.level, devices, sessions
        );
    }
    Ok(())
}

pub async fn token(store: &Store, cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create { user, description } => {
            let Some(u) = store.user_by_username(&user).await? else {
                bail!("no user {user:?} (add one with `lookout user add {user}`)");
            };
            let (token, sha) = lookout_web::auth::new_api_token();
            store.add_api_token(u.user_id, &sha, &description).await?;
            println!("API token for {user} (send it as header X-Auth-Token):");
            println!("{token}");
        }
        TokenCommand::List { json } => {
            let tokens = store.api_tokens().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                println!("{:<6} {:<24} {:<9} DESCRIPTION", "ID", "USER", "STATE");
                for t in tokens {
                    let state = if t.disabled { "disabled" } else { "enabled" };
                    println!(
                        "{:<6} {:<24} {:<9} {}",
                        t.id, t.username, state, t.description
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.remove_api_token(id).await? {
                bail!("no API token {id} (`lookout token list` shows them)");
            }
            println!("API token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
