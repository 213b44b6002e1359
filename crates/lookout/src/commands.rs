//! Subcommands other than `serve`: devices, SNMP queries, users, tokens, migrations and
//! `validate`. Each prints for people by default and JSON with `--json` where scripts use it.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use lookout_core::{validate_hostname, NewDevice, SnmpConfig, SnmpV3Config, SnmpVersion};
use lookout_poller::{Poller, PollerConfig};
use lookout_snmp::{Oid, SnmpClient};
use lookout_store::{Store, StoreError};
use lookout_timeseries::TimeSeries;
use serde_json::json;

use crate::cli::{Cli, Command, DeviceCommand, PollerCommand, SnmpArgs, SnmpCommand};
use crate::config::{self, Config, Overrides};
use crate::serve;

/// Refuses a data dir that holds no installation (no `.env`, no SQLite database), unless
/// `--init`. With MySQL configured the installation is that database.
fn require_installation(cfg: &Config, init: bool) -> Result<()> {
    let has_env = cfg.data_dir.join(crate::config::ENV_FILE).exists();
    let has_db = match &cfg.store {
        lookout_store::StoreConfig::Sqlite { path } => path.exists(),
        lookout_store::StoreConfig::Mysql { .. } => true,
    };
    if init || has_env || has_db {
        return Ok(());
    }
    bail!(
        "no Lookout installation at {dir} (no .env or database); start one with `lookout serve --data-dir {dir}` \
         (or pass --init to create it here), or give the right --data-dir / LOOKOUT_DATA_DIR",
        dir = cfg.data_dir.display()
    )
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = config::data_dir(cli.data_dir.clone());
    let init = cli.init;
    let load = |dir: &std::path::Path| -> Result<Config> {
        let cfg = Config::load(dir.to_path_buf(), &Overrides::default())?;
        require_installation(&cfg, init)?;
        Ok(cfg)
    };
    match cli.command {
        Command::Serve(args) => {
            let cfg = Config::load(
                data_dir,
                &Overrides {
                    listen: args.listen,
                    roles: args.roles,
                    node_id: args.node_id,
                    poller_groups: args.poller_groups,
                },
            )?;
            serve::serve(cfg).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { json } => crate::serve::validate(data_dir, json).await,
        Command::Bench(crate::cli::BenchCommand::Dispatcher(args)) => {
            crate::bench::dispatcher(args).await
        }
        Command::Bench(crate::cli::BenchCommand::Alerts(args)) => {
            crate::bench_alerts::run(args).await
        }
        Command::Db(cmd) => {
            let mut cfg = Config::load(data_dir, &Overrides::default())?;
            if !matches!(cmd, crate::cli::DbCommand::Import { .. }) {
                require_installation(&cfg, init)?;
            }
            if matches!(cmd, crate::cli::DbCommand::Import { .. }) {
                // Imported plaintext SNMP secrets are encrypted: with this key.
                crate::key::ensure_app_key(&mut cfg)?;
            }
            let store = open_migrated(&cfg).await?;
            db(&store, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Poller(PollerCommand::Status { json }) => {
            let cfg = load(&data_dir)?;
            crate::poller_status::status(&cfg, json).await
        }
        Command::Poller(PollerCommand::Forget { node_id }) => {
            let cfg = load(&data_dir)?;
            crate::poller_status::forget(&cfg, &node_id).await
        }
        Command::Migrate(args) => {
            let mut cfg = Config::load(data_dir, &Overrides::default())?;
            if !args.status {
                // Plaintext SNMP secrets are encrypted by the migration: with this key.
                crate::key::ensure_app_key(&mut cfg)?;
            }
            let store = open_store(&cfg).await?;
            if args.status {
                for m in store.migrate_status().await? {
                    match m.applied_at {
                        Some(t) => println!(
                            "applied {}  {:04} {}",
                            t.format("%Y-%m-%d %H:%M:%S"),
                            m.version,
                            m.name
                        ),
                        None => {
                            println!("pending                      {:04} {}", m.version, m.name)
                        }
                    }
                }
            } else {
                migrate(&store).await?;
                println!("migrations applied");
            }
            print_secrets_status(&store).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(crate::cli::KeyCommand::Rotate) => {
            let cfg = load(&data_dir)?;
            crate::key::rotate(cfg).await
        }
        Command::Device(cmd) => {
            let cfg = load(&data_dir)?;
            device(cfg, cmd).await
        }
        Command::Snmp(cmd) => snmp(cmd).await,
        Command::Alert(cmd) => {
            let cfg = load(&data_dir)?;
            crate::alert_cli::run(cfg, cmd).await
        }
        Command::User(cmd) => {
            let cfg = load(&data_dir)?;
            let store = open_migrated(&cfg).await?;
            crate::user_cli::user(&cfg, &store, cmd).await
        }
        Command::Token(cmd) => {
            let cfg = load(&data_dir)?;
            let store = open_migrated(&cfg).await?;
            crate::user_cli::token(&store, cmd).await
        }
    }
}

/// `device add --from-file`: each line's fields over the flags' settings, probed unless
/// forced, a result line per device.
async fn add_from_file(
    cfg: &mut Config,
    file: &std::path::Path,
    snmp: &SnmpArgs,
    poller_group: i32,
    force: bool,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let base = lookout_web::device_edit::DeviceSettings {
        snmp: snmp_config(snmp)?,
        poller_group,
        disabled: false,
    };
    crate::key::ensure_app_key(cfg)?;
    let store = open_migrated(cfg).await?;
    let poller = poller_for(cfg, store.clone()).await?;
    let (mut added, mut failed) = (0, 0);
    for (n, line) in text.lines().enumerate() {
        let Some(parsed) = lookout_web::device_add::parse_line(line) else {
            continue;
        };
        let result: Result<String, String> = async {
            let (host, changes) = parsed?;
            validate_hostname(&host).map_err(|e| e.to_string())?;
            let s = if changes.is_empty() {
                base.clone()
            } else {
                lookout_web::device_edit::apply_to(base.clone(), &changes)?
            };
            if store
                .device_by_hostname(&host)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err(format!("{host}: exists already"));
            }
            if let Err(e) = poller.probe(&host, &s.snmp).await {
                if !force {
                    return Err(format!(
                        "{host}: {e}; nothing stored (--force to add anyway)"
                    ));
                }
            }
            let d = store
                .add_device(&NewDevice {
                    hostname: host.clone(),
                    snmp: s.snmp,
                    poller_group: s.poller_group,
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("{host}: added (device_id {})", d.device_id))
        }
        .await;
        match result {
            Ok(m) => {
                added += 1;
                println!("line {}: ok: {m}", n + 1);
            }
            Err(m) => {
                failed += 1;
                println!("line {}: FAILED: {m}", n + 1);
            }
        }
    }
    println!("{added} added, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `device update` flags as the field/value pairs `device_edit::apply` takes.
fn update_changes(a: &crate::cli::DeviceUpdateArgs) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    let mut put = |field: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            out.push((field.to_string(), v));
        }
    };
    put("community", a.community.clone().map(Into::into));
    put("snmpver", a.snmp_version.clone().map(Into::into));
    put("port", a.port.map(Into::into));
    put(
        "timeout",
        a.timeout_ms.map(|ms| json!(f64::from(ms) / 1000.0)),
    );
    put("retries", a.retries.map(Into::into));
    put("authlevel", a.security_level.clone().map(Into::into));
    put("authname", a.auth_user.clone().map(Into::into));
    put("authalgo", a.auth_protocol.clone().map(Into::into));
    put("authpass", a.auth_password.clone().map(Into::into));
    put("cryptoalgo", a.priv_protocol.clone().map(Into::into));
    put("cryptopass", a.priv_password.clone().map(Into::into));
    put("poller_group", a.poller_group.map(Into::into));
    if a.disable {
        put("disabled", Some(json!(true)));
    } else if a.enable {
        put("disabled", Some(json!(false)));
    }
    out
}

/// `db export` / `db import`: moving an embedded SQLite install to MariaDB is
/// `db export dump.json` with the SQLite config, then `db import dump.json` with DB_* set.
async fn db(store: &Store, cmd: crate::cli::DbCommand) -> Result<()> {
    use crate::cli::DbCommand;
    match cmd {
        DbCommand::Export { file } => {
            let dump = store.export().await.context("cannot read the database")?;
            let json = serde_json::to_vec(&dump)?;
            if file.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&json)?;
            } else {
                std::fs::write(&file, &json)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                eprintln!(
                    "exported {} devices, {} ports, {} events, {} users, {} API tokens to {}",
                    dump.devices.len(),
                    dump.ports.len(),
                    dump.events.len(),
                    dump.users.len(),
                    dump.api_tokens.len(),
                    file.display()
                );
            }
        }
        DbCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let dump: lookout_store::Dump = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a `lookout db export` file", file.display()))?;
            store
                .import(&dump)
                .await
                .context("import failed (the target database must be empty)")?;
            eprintln!(
                "imported {} devices, {} ports, {} events, {} users",
                dump.devices.len(),
                dump.ports.len(),
                dump.events.len(),
                dump.users.len()
            );
        }
    }
    Ok(())
}

/// Opens the configured store with a message that names the file/servers, with the
/// secret keys of APP_KEY (and APP_KEY_PREVIOUS) when it is set.
pub async fn open_store(cfg: &Config) -> Result<Store> {
    let keys = crate::key::secret_keys(cfg)?;
    let store = Store::open_with_tls(&cfg.store, &cfg.store_tls)
        .await
        .map_err(|e| anyhow::anyhow!("{e}{}", store_hint(&e)))?;
    Ok(match keys {
        Some((current, previous)) => store.with_secret_keys(current, previous),
        None => store,
    })
}

/// `lookout migrate`'s last line: how the stored SNMP secrets stand.
async fn print_secrets_status(store: &Store) -> Result<()> {
    let Ok(s) = store.secrets_status().await else {
        // Not migrated yet (`--status` on a fresh database): nothing stored.
        return Ok(());
    };
    let key = store.secret_key_id().unwrap_or("none");
    println!(
        "SNMP secrets: {} encrypted with APP_KEY (key id {key}), {} plaintext{}",
        s.current,
        s.plaintext,
        if s.other_keys.is_empty() {
            String::new()
        } else {
            format!(", encrypted with other keys: {:?}", s.other_keys)
        }
    );
    Ok(())
}

pub async fn migrate(store: &Store) -> Result<()> {
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("{e}{}", store_hint(&e)))
}

pub async fn open_migrated(cfg: &Config) -> Result<Store> {
    let store = open_store(cfg).await?;
    migrate(&store).await?;
    Ok(store)
}

fn store_hint(e: &StoreError) -> &'static str {
    match e {
        StoreError::ReadOnly(_) => {
            " (make the database file and its directory writable by the user running lookout)"
        }
        StoreError::Open { .. } => {
            " (check DB_CONNECTION/DB_DATABASE/DB_HOST, see `lookout validate`)"
        }
        _ => "",
    }
}

/// Opens the configured time-series backend with this installation's options.
pub async fn open_timeseries(cfg: &Config) -> Result<TimeSeries> {
    TimeSeries::open_with(&cfg.timeseries, cfg.timeseries_options.clone())
        .await
        .context("cannot open the time-series backend (see `lookout validate`)")
}

/// Builds a device's SNMP settings from the command-line flags.
pub fn snmp_config(args: &SnmpArgs) -> Result<SnmpConfig> {
    let version: SnmpVersion = args.snmp_version.parse()?;
    let mut stdin_taken = false;
    let community = secret(
        "--community",
        &args.community,
        args.community_file.as_deref(),
        &mut stdin_taken,
    )?;
    let v3 = if version == SnmpVersion::V3 {
        Some(SnmpV3Config {
            security_level: args.security_level.clone(),
            auth_user: args.auth_user.clone(),
            auth_protocol: args.auth_protocol.clone(),
            auth_password: secret(
                "--auth-password",
                &args.auth_password,
                args.auth_password_file.as_deref(),
                &mut stdin_taken,
            )?,
            priv_protocol: args.priv_protocol.clone(),
            priv_password: secret(
                "--priv-password",
                &args.priv_password,
                args.priv_password_file.as_deref(),
                &mut stdin_taken,
            )?,
        })
    } else {
        None
    };
    if let Some(v3) = &v3 {
        if v3.auth_user.is_empty() {
            bail!("SNMPv3 needs --auth-user");
        }
        // The engine's own checks (level, protocols, 8+ character passwords): settings it
        // would refuse at every poll are refused here, --force or not.
        lookout_snmp::usm::UsmParams::from_config(v3)
            .map_err(|e| anyhow::anyhow!("SNMPv3 settings: {e}"))?;
    }
    if args.port == 0 {
        bail!("--port must be 1 to 65535");
    }
    if args.timeout_ms == 0 {
        bail!("--timeout-ms must be at least 1");
    }
    Ok(SnmpConfig {
        version,
        port: args.port,
        community,
        timeout_ms: args.timeout_ms,
        retries: args.retries,
        v3,
    })
}

/// A secret given as a value (flag or environment), `-` for stdin, or a file (its first
/// line; a trailing newline is not part of the secret). One secret at most from stdin.
fn secret(
    flag: &str,
    value: &str,
    file: Option<&std::path::Path>,
    stdin_taken: &mut bool,
) -> Result<String> {
    let first_line = |text: &str| text.lines().next().unwrap_or("").to_string();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {flag}-file {}", path.display()))?;
        let line = first_line(&text);
        if line.is_empty() {
            bail!("{flag}-file {} is empty", path.display());
        }
        return Ok(line);
    }
    if value != "-" {
        return Ok(value.to_string());
    }
    if std::mem::replace(stdin_taken, true) {
        bail!("only one secret can be read from stdin ({flag} -): give the others as files or environment variables");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("cannot read {flag} from stdin"))?;
    let line = first_line(&line);
    if line.is_empty() {
        bail!("{flag} -: nothing on stdin");
    }
    Ok(line)
}

/// A device as `device list --json` prints it: without its SNMP community and v3
/// passwords unless `show_secrets`.
fn device_json(d: &lookout_core::Device, show_secrets: bool) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(d)?;
    if !show_secrets {
        if let Some(snmp) = v.get_mut("snmp").and_then(|s| s.as_object_mut()) {
            snmp.remove("community");
            if let Some(v3) = snmp.get_mut("v3").and_then(|x| x.as_object_mut()) {
                v3.remove("auth_password");
                v3.remove("priv_password");
            }
        }
    }
    Ok(v)
}

async fn poller_for(cfg: &Config, store: Store) -> Result<Poller> {
    let ts = open_timeseries(cfg).await?;
    Poller::new(
        store,
        ts,
        PollerConfig {
            step_secs: cfg.poll_interval_secs,
            ..PollerConfig::default()
        },
    )
    .await
    .context("cannot start the poller")
}

async fn device(mut cfg: Config, cmd: DeviceCommand) -> Result<ExitCode> {
    match cmd {
        DeviceCommand::Add {
            from_file: Some(file),
            snmp,
            poller_group,
            force,
            ..
        } => add_from_file(&mut cfg, &file, &snmp, poller_group, force).await,
        DeviceCommand::Add {
            host,
            snmp,
            poller_group,
            force,
            ..
        } => {
            let host = host.context("give a hostname or --from-file")?;
            validate_hostname(&host).with_context(|| format!("cannot add {host:?}"))?;
            let snmp = snmp_config(&snmp)?;
            // The device's SNMP secrets are stored encrypted with APP_KEY: one must exist.
            crate::key::ensure_app_key(&mut cfg)?;
            let store = open_migrated(&cfg).await?;
            if store.device_by_hostname(&host).await?.is_some() {
                bail!("device {host} already exists (remove it first with `lookout device remove {host}`)");
            }
            let poller = poller_for(&cfg, store.clone()).await?;
            match poller.probe(&host, &snmp).await {
                Ok(sys) => println!(
                    "{host}: SNMP {} answered: {} ({})",
                    snmp.version,
                    sys.sys_name.as_deref().unwrap_or("-"),
                    sys.os
                ),
                Err(e) if force => println!("{host}: probe failed ({e}); adding anyway (--force)"),
                Err(e) => bail!(
                    "cannot add {host}: {e}; nothing stored (check host, port, community/credentials, or use --force)"
                ),
            }
            let d = store
                .add_device(&NewDevice {
                    hostname: host.clone(),
                    snmp,
                    poller_group,
                })
                .await?;
            println!("added device {} (device_id {})", d.hostname, d.device_id);
            Ok(ExitCode::SUCCESS)
        }
        DeviceCommand::Update {
            host,
            changes,
            force,
        } => {
            let store = open_migrated(&cfg).await?;
            let Some(d) = store.device_by_hostname(&host).await? else {
                bail!("no device {host} (`lookout device list` shows them)");
            };
            let changes = update_changes(&changes);
            let s = lookout_web::device_edit::apply(&d, &changes)
                .map_err(|e| anyhow::anyhow!("cannot update {host}: {e}; nothing changed"))?;
            if !s.disabled {
                let poller = poller_for(&cfg, store.clone()).await?;
                match poller.probe(&host, &s.snmp).await {
                    Ok(sys) => println!(
                        "{host}: SNMP {} answered with the new settings: {}",
                        s.snmp.version,
                        sys.sys_name.as_deref().unwrap_or("-")
                    ),
                    Err(e) if force => println!("{host}: probe failed ({e}); storing anyway (--force)"),
                    Err(e) => bail!(
                        "cannot update {host}: the new settings do not work ({e}); nothing changed (use --force to store them anyway)"
                    ),
                }
            }
            let updated = store
                .update_device_settings(d.device_id, &s.snmp, s.poller_group, s.disabled)
                .await?;
            let names: Vec<&str> = changes.iter().map(|(f, _)| f.as_str()).collect();
            println!(
                "updated device {} (device_id {}): {}",
                updated.hostname,
                updated.device_id,
                names.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        DeviceCommand::List { json, show_secrets } => {
            let store = open_migrated(&cfg).await?;
            let devices = store.devices().await?;
            if json {
                let out = devices
                    .iter()
                    .map(|d| device_json(d, show_secrets))
                    .collect::<Result<Vec<_>>>()?;
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{:<6} {:<28} {:<24} {:<10} {:<12} {:<20}",
                    "id", "hostname", "sysName", "os", "status", "last polled"
                );
                for d in &devices {
                    println!(
                        "{:<6} {:<28} {:<24} {:<10} {:<12} {:<20}",
                        d.device_id,
                        d.hostname,
                        d.sys_name.as_deref().unwrap_or("-"),
                        d.os,
                        if d.last_polled.is_none() {
                            "never polled"
                        } else if d.status.is_up() {
                            "up"
                        } else {
                            "down"
                        },
                        d.last_polled
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| "never".to_string())
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DeviceCommand::Remove { host } => {
            let store = open_migrated(&cfg).await?;
            let Some(d) = store.device_by_hostname(&host).await? else {
                bail!("no device {host:?}");
            };
            store.remove_device(d.device_id).await?;
            println!("removed device {host} (device_id {})", d.device_id);
            Ok(ExitCode::SUCCESS)
        }
        DeviceCommand::Discover { host, all, json } => {
            crate::discover::run(&cfg, host, all, json).await
        }
        DeviceCommand::Poll { host, json } => {
            let store = open_migrated(&cfg).await?;
            let Some(d) = store.device_by_hostname(&host).await? else {
                bail!("no device {host:?} (add it with `lookout device add {host}`)");
            };
            let ts = open_timeseries(&cfg).await?;
            let poller = Poller::new(
                store,
                ts.clone(),
                PollerConfig {
                    step_secs: cfg.poll_interval_secs,
                    ..PollerConfig::default()
                },
            )
            .await
            .context("cannot start the poller")?;
            let r = poller.poll(&d).await?;
            // Through rrdcached, make sure the updates are in the files before exiting.
            if let Err(e) = ts.flush(std::time::Duration::from_secs(30)).await {
                eprintln!("warning: time-series updates not yet flushed: {e}");
            }
            if json {
                let out = json!({
                    "device_id": r.device_id,
                    "hostname": r.hostname,
                    "status": if r.status.is_up() { 1 } else { 0 },
                    "status_reason": r.status_reason,
                    "seconds": r.seconds,
                    "system": r.system.as_ref().map(|s| json!({
                        "sysName": s.sys_name, "sysDescr": s.sys_descr,
                        "sysObjectID": s.sys_object_id, "sysContact": s.sys_contact,
                        "location": s.sys_location, "uptime": s.uptime_secs, "os": s.os,
                    })),
                    "icmp": r.ping.as_ref().map(|p| json!({
                        "xmt": p.transmitted, "rcv": p.received,
                        "loss": p.loss_percent(), "min": p.min_ms, "avg": p.avg_ms, "max": p.max_ms,
                    })),
                    "ports": r.ports,
                    "processors": r.processors,
                    "mempools": r.mempools,
                    "storage": r.storage,
                    "discovered": r.discovered,
                    "timings": r.timings.iter().map(|t| json!({"module": t.module, "seconds": t.seconds, "outcome": t.outcome})).collect::<Vec<_>>(),
                    "timeseries_errors": r.timeseries_errors,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_poll(&r);
            }
            Ok(if r.status.is_up() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

fn print_poll(r: &lookout_poller::PollReport) {
    println!(
        "{} is {} ({:.2}s){}",
        r.hostname,
        if r.status.is_up() { "UP" } else { "DOWN" },
        r.seconds,
        if r.status_reason.is_empty() {
            String::new()
        } else {
            format!(", reason: {}", r.status_reason)
        }
    );
    if let Some(p) = &r.ping {
        println!(
            "  icmp     {}/{} replies, loss {:.0}%, rtt min/avg/max {}/{}/{} ms",
            p.received,
            p.transmitted,
            p.loss_percent(),
            fmt_opt(p.min_ms),
            fmt_opt(p.avg_ms),
            fmt_opt(p.max_ms)
        );
    }
    if let Some(s) = &r.system {
        let show =
            |k: &str, v: &Option<String>| println!("  {k:<12} {}", v.as_deref().unwrap_or("-"));
        show("sysName", &s.sys_name);
        show("sysDescr", &s.sys_descr);
        show("sysObjectID", &s.sys_object_id);
        show("sysContact", &s.sys_contact);
        show("sysLocation", &s.sys_location);
        println!("  {:<12} {}", "os", s.os);
        println!(
            "  {:<12} {}",
            "uptime",
            s.uptime_secs
                .map(lookout_poller::human_secs)
                .unwrap_or_else(|| "-".into())
        );
    }
    if !r.ports.is_empty() {
        println!(
            "  {:>7} {:<20} {:<6} {:<6} {:>14} {:>20} {:>20} {:>12} {:>12}",
            "ifIndex",
            "ifName",
            "admin",
            "oper",
            "speed",
            "inOctets",
            "outOctets",
            "in bit/s",
            "out bit/s"
        );
        for p in &r.ports {
            println!(
                "  {:>7} {:<20} {:<6} {:<6} {:>14} {:>20} {:>20} {:>12} {:>12}",
                p.if_index,
                p.label(),
                p.if_admin_status.as_deref().unwrap_or("-"),
                p.if_oper_status.as_deref().unwrap_or("-"),
                p.if_speed
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.counters
                    .in_octets
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.counters
                    .out_octets
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.in_octets_rate
                    .map(|r| format!("{:.0}", r * 8.0))
                    .unwrap_or_else(|| "-".into()),
                p.out_octets_rate
                    .map(|r| format!("{:.0}", r * 8.0))
                    .unwrap_or_else(|| "-".into()),
            );
        }
    }
    for p in &r.processors {
        println!(
            "  processor {:<40} {}",
            p.processor_descr,
            p.processor_usage
                .map(|u| format!("{u:.0} %"))
                .unwrap_or_else(|| "-".into())
        );
    }
    for m in &r.mempools {
        println!(
            "  memory    {:<40} {:.0} % of {} MiB",
            m.mempool_descr,
            m.mempool_perc,
            m.mempool_total / 1_048_576
        );
    }
    for s in &r.storage {
        println!(
            "  storage   {:<40} {:.0} % of {} MiB",
            s.storage_descr,
            s.storage_perc,
            s.storage_size / 1_048_576
        );
    }
    for t in &r.timings {
        let outcome = match &t.outcome {
            lookout_poller::ModuleOutcome::Ok => String::new(),
            lookout_poller::ModuleOutcome::Disabled => " (disabled)".to_string(),
            lookout_poller::ModuleOutcome::Failed(m) => format!(" FAILED: {m}"),
        };
        println!("  module {:<12} {:.3}s{outcome}", t.module, t.seconds);
    }
    for e in &r.timeseries_errors {
        println!("  rrd error: {e}");
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into())
}

async fn snmp(cmd: SnmpCommand) -> Result<ExitCode> {
    let (host, args, json, oids, walk) = match cmd {
        SnmpCommand::Get {
            host,
            oids,
            snmp,
            json,
        } => (host, snmp, json, oids, false),
        SnmpCommand::Walk {
            host,
            oid,
            snmp,
            json,
        } => (host, snmp, json, vec![oid], true),
    };
    validate_hostname(&host)?;
    let cfg = snmp_config(&args)?;
    let oids: Vec<Oid> = oids
        .iter()
        .map(|o| {
            Oid::parse(o).with_context(|| {
                format!("bad OID {o:?} (use numeric form, e.g. 1.3.6.1.2.1.1.1.0)")
            })
        })
        .collect::<Result<_>>()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, cfg.port),
        Err(_) => tokio::net::lookup_host((bare, cfg.port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?,
    };
    let client = if addr.is_ipv6() {
        SnmpClient::bind_v6().await?
    } else {
        SnmpClient::bind_v4().await?
    };
    let session = client.session(addr, &cfg)?;
    let varbinds = if walk {
        session.walk(&oids[0]).await?
    } else {
        session.get(&oids).await?
    };
    if json {
        let arr: Vec<_> = varbinds
            .iter()
            .map(|vb| json!({"oid": vb.oid.to_string(), "type": vb.value.type_name(), "value": value_json(&vb.value)}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&arr)?);
    } else {
        for vb in &varbinds {
            println!("{} = {}", vb.oid, vb.value);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A random password for generated accounts: 20 alphanumeric characters (~119 bits).
pub fn generate_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 20)
}

/// The JSON value of a varbind: numbers as numbers (Counter64 too: serde_json keeps u64
/// exact), text as a string, anything else as net-snmp prints it.
fn value_json(v: &lookout_snmp::Value) -> serde_json::Value {
    use lookout_snmp::Value as V;
    match v {
        V::Integer(_) => v.as_i64().map_or(serde_json::Value::Null, |x| json!(x)),
        V::Counter32(_) | V::Gauge32(_) | V::TimeTicks(_) | V::Counter64(_) => {
            v.as_u64().map_or(serde_json::Value::Null, |x| json!(x))
        }
        V::OctetString(b) => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!(b
                .iter()
                .map(|x| format!("{x:02X}"))
                .collect::<Vec<_>>()
                .join(" ")),
        },
        V::Null => serde_json::Value::Null,
        _ => json!(v.to_string()),
    }
}
