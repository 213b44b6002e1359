//! `lookout serve` (the roles this node runs: web, dispatcher, poller; all three by default) and
//! `lookout validate` (each backend checked, with what is wrong and how to fix it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use lookout_coord::Coord;
use lookout_dispatcher::ClusterConfig;
use lookout_poller::{DiscoveryMode, Poller, PollerConfig};
use lookout_store::Store;
use lookout_timeseries::TimeSeries;
use lookout_web::auth::AppKey;
use lookout_web::{router, WebState};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::commands::{generate_password, open_migrated};
use crate::config::{Config, Overrides};

/// First start: an `admin` user, password from LOOKOUT_ADMIN_PASSWORD or generated and
/// printed once.
async fn ensure_admin(cfg: &Config, store: &Store) -> Result<()> {
    if store.user_by_username("admin").await?.is_some() {
        return Ok(());
    }
    let (password, generated) = match &cfg.admin_password {
        Some(p) => (p.clone(), false),
        None => (generate_password(), true),
    };
    let hash = lookout_web::auth::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("cannot hash the admin password: {e}"))?;
    match store.add_user("admin", &hash, 10).await {
        Ok(_) => {}
        // Several nodes of a cluster starting at once: another one created it first.
        Err(lookout_store::StoreError::Duplicate { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if generated {
        // Printed on stdout once, not logged: logs are often shipped elsewhere.
        println!("Created user 'admin' with password: {password}");
        println!("(set LOOKOUT_ADMIN_PASSWORD before first start to choose it)");
    } else {
        info!("created user 'admin' with the password from LOOKOUT_ADMIN_PASSWORD");
    }
    Ok(())
}

pub async fn serve(mut cfg: Config) -> Result<()> {
    crate::config::create_data_dir(&cfg.data_dir)?;
    let app_key = crate::key::ensure_app_key(&mut cfg)?;
    let store = open_migrated(&cfg).await?;
    crate::key::check_app_key(&cfg, &store, &app_key).await?;
    ensure_admin(&cfg, &store).await?;
    let timeseries = crate::commands::open_timeseries(&cfg).await?;
    let poller = if cfg.roles.poller {
        Some(
            Poller::new(
                store.clone(),
                timeseries.clone(),
                PollerConfig {
                    step_secs: cfg.poll_interval_secs,
                    // The dispatcher's master decides when a device is discovered.
                    discovery: DiscoveryMode::Scheduled,
                    ..PollerConfig::default()
                },
            )
            .await
            .context("cannot start the poller")?,
        )
    } else {
        None
    };
    // Alerting runs where polls and the master run: the poll hook decides inside each
    // poll's commit, the master's tasks pass time and deliver; the web role acknowledges
    // and tests rules through it.
    let alerting = if cfg.roles.web || cfg.roles.dispatcher || cfg.roles.poller {
        let engine = lookout_alerting::engine::Engine::start(store.clone(), cfg.alerting.clone())
            .await
            .context("cannot start alerting (alert rules unreadable)")?;
        if let Some(p) = &poller {
            p.set_alert_hook(engine.clone());
        }
        Some(engine)
    } else {
        None
    };
    let coord = Coord::connect(&cfg.coord).await.context(
        "cannot reach the coordination backend (check REDIS_SENTINEL / REDIS_HOST / REDIS_URL)",
    )?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let web = if cfg.roles.web {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (in use? set --listen or LOOKOUT_LISTEN)",
                    cfg.listen
                )
            })?;
        // A web-only node reloads the alert catalog itself (dispatcher nodes do below).
        if let (Some(e), false) = (&alerting, cfg.roles.dispatcher || cfg.roles.poller) {
            tokio::spawn(e.clone().reload_loop(shutdown_rx.clone()));
        }
        // The web's add-device probe: this node's poller, or one only for probing.
        let probe_poller = match &poller {
            Some(p) => p.clone(),
            None => Poller::new(store.clone(), timeseries.clone(), PollerConfig::default())
                .await
                .context("cannot start the SNMP engine for device probes")?,
        };
        let state = WebState {
            store: store.clone(),
            timeseries: timeseries.clone(),
            coord: coord.clone(),
            app_key,
            poll_interval_secs: cfg.poll_interval_secs,
            node_name: cfg.node_id.clone(),
            alerting: alerting.clone(),
            security: cfg.web_security.clone(),
            prober: Some(std::sync::Arc::new(PollerProber(probe_poller))),
            rrd_disk: Some(lookout_web::rrd_disk::RrdDiskOptions {
                sizes: lookout_poller::rrd_file_sizes(
                    cfg.poll_interval_secs,
                    cfg.timeseries_options.rra_override.as_deref(),
                ),
                floor: cfg.timeseries_options.min_free,
            }),
        };
        let app = router(state);
        let mut web_shutdown = shutdown_rx.clone();
        Some(tokio::spawn(async move {
            // The peer address feeds the login throttle and the auth log.
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = web_shutdown.wait_for(|s| *s).await;
                })
                .await
        }))
    } else {
        None
    };
    let dispatcher = if cfg.roles.dispatcher || cfg.roles.poller {
        let mut cc = ClusterConfig::new(
            cfg.node_id.clone(),
            cfg.poll_interval_secs,
            cfg.poller_workers,
        );
        cc.hostname = crate::config::hostname();
        cc.version = env!("CARGO_PKG_VERSION").to_string();
        cc.roles = cfg.roles;
        cc.groups = cfg.poller_groups.clone();
        cc.group_workers = cfg.poller_group_workers.clone();
        cc.master_ttl = cfg.master_lease;
        cc.claim_ttl = cfg.claim_lease;
        cc.discovery_interval = cfg.discovery_interval;
        cc.eventlog_keep = cfg.eventlog_keep;
        let master_tasks = match &alerting {
            Some(engine) => {
                tokio::spawn(engine.clone().reload_loop(shutdown_rx.clone()));
                crate::alert_cli::master_tasks(engine)
            }
            None => Vec::new(),
        };
        Some(tokio::spawn(lookout_dispatcher::run_cluster_with(
            store,
            poller,
            coord.clone(),
            cc,
            master_tasks,
            shutdown_rx,
        )))
    } else {
        None
    };
    info!(
        listen = %cfg.listen,
        data_dir = %cfg.data_dir.display(),
        node = %cfg.node_id,
        roles = ?cfg.roles.names(),
        groups = ?cfg.poller_groups,
        coordination = coord.backend_name(),
        "lookout serving: {} (http://{})",
        cfg.roles.names().join(", "),
        cfg.listen
    );

    wait_for_signal().await;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(30), async {
        let w = match web {
            Some(w) => w.await,
            None => Ok(Ok(())),
        };
        if let Some(d) = dispatcher {
            let _ = d.await;
        }
        // Queued rrdcached updates go out (or to the spill journal) before we exit.
        if let Err(e) = timeseries.flush(Duration::from_secs(10)).await {
            warn!(error = %e, "time-series updates not flushed; they stay in the spill journal");
        }
        w
    })
    .await
    {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(e).context("web server failed"),
        Ok(Err(e)) => Err(e).context("web task panicked"),
        Err(_) => {
            warn!("polls still running after 30 s; exiting anyway");
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                error!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops lookout");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One check's outcome for `validate` (`ok` with a `fix`: a warning).
struct Check {
    ok: bool,
    what: String,
    fix: String,
}

pub async fn validate(data_dir: PathBuf, json: bool) -> Result<ExitCode> {
    let mut checks = Vec::new();
    let cfg = match Config::load(data_dir.clone(), &Overrides::default()) {
        Ok(c) => {
            checks.push(Check {
                ok: true,
                what: format!("configuration loads (data dir {})", data_dir.display()),
                fix: String::new(),
            });
            Some(c)
        }
        Err(e) => {
            checks.push(Check {
                ok: false,
                what: format!("configuration: {e:#}"),
                fix: "fix the variable named above in .env or the environment (docs/configuration.md)".into(),
            });
            None
        }
    };
    if let Some(cfg) = &cfg {
        checks.push(match &cfg.app_key {
            None => Check {
                ok: false,
                what: "APP_KEY is not set".into(),
                fix: "run `lookout serve` once (it generates one) or copy APP_KEY from another node of the cluster".into(),
            },
            Some(k) => match k.parse::<AppKey>() {
                Ok(_) => Check { ok: true, what: "APP_KEY is set and valid".into(), fix: String::new() },
                Err(e) => Check {
                    ok: false,
                    what: format!("APP_KEY is invalid: {e}"),
                    fix: "APP_KEY must be base64:<32 random bytes>; copy it from another node or remove it to generate one".into(),
                },
            },
        });
        // TLS files named by DB_SSL_* must be readable before the database check can pass.
        for (var, path) in [
            ("DB_SSL_CA", &cfg.store_tls.ca),
            ("DB_SSL_CERT", &cfg.store_tls.cert),
            ("DB_SSL_KEY", &cfg.store_tls.key),
        ] {
            if let Some(path) = path {
                checks.push(match std::fs::File::open(path) {
                    Ok(_) => Check {
                        ok: true,
                        what: format!("{var} {} is readable", path.display()),
                        fix: String::new(),
                    },
                    Err(e) => Check {
                        ok: false,
                        what: format!("{var} {}: {e}", path.display()),
                        fix: format!("point {var} at a readable PEM file"),
                    },
                });
            }
        }
        let db_checks = database_checks(cfg).await;
        // The alert checks read the database: only once it is there and migrated (opening a
        // missing SQLite file would create it).
        let db_ok = db_checks.iter().all(|c| c.ok);
        checks.extend(db_checks);
        checks.push(match TimeSeries::open_with(&cfg.timeseries, cfg.timeseries_options.clone()).await {
            Ok(ts) => match ts.check().await {
                Ok(()) => Check {
                    ok: true,
                    what: format!("time series writable ({})", describe_timeseries(cfg)),
                    fix: String::new(),
                },
                Err(e) => Check {
                    ok: false,
                    what: format!("time series: {e}"),
                    fix: "make RRD_DIR writable, or start rrdcached and check RRDCACHED=host:port"
                        .into(),
                },
            },
            Err(e) => Check {
                ok: false,
                what: format!("time series: {e}"),
                fix: "check RRD_DIR / RRDCACHED".into(),
            },
        });
        if db_ok {
            checks.extend(disk_check(cfg).await);
        }
        checks.push(match Coord::connect(&cfg.coord).await {
            Ok(coord) => match coord.current_master().await {
                Ok(m) => Check {
                    ok: true,
                    what: format!(
                        "coordination backend reachable ({}; master: {})",
                        coord.backend_name(),
                        m.map(|m| m.node_id).unwrap_or_else(|| "none".into())
                    ),
                    fix: String::new(),
                },
                Err(e) => Check {
                    ok: false,
                    what: format!("coordination backend: {e}"),
                    fix: "check REDIS_SENTINEL / REDIS_HOST / REDIS_URL and that Redis answers".into(),
                },
            },
            Err(e) => Check {
                ok: false,
                what: format!("coordination backend: {e}"),
                fix: "check REDIS_SENTINEL / REDIS_SENTINEL_SERVICE / REDIS_HOST / REDIS_URL / REDIS_PASSWORD".into(),
            },
        });
        if db_ok {
            for (ok, what, fix) in crate::alert_cli::validate_checks(cfg).await {
                checks.push(Check { ok, what, fix });
            }
        }
        let fping = lookout_icmp::PingConfig::default().fping;
        checks.push(Check {
            ok: fping.exists(),
            what: format!("fping at {}", fping.display()),
            fix: "apt-get install fping".into(),
        });
    }
    if json {
        let list: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                let state = match (c.ok, c.fix.is_empty()) {
                    (true, true) => "ok",
                    (true, false) => "warn",
                    (false, _) => "fail",
                };
                serde_json::json!({"state": state, "what": c.what, "fix": c.fix})
            })
            .collect();
        let failed = checks.iter().filter(|c| !c.ok).count();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"checks": list, "failed": failed}))?
        );
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let mut failed = 0;
    for c in &checks {
        if c.ok && !c.fix.is_empty() {
            // Works, but probably not what the operator wants: said, not counted.
            println!("[WARN] {}\n       fix: {}", c.what, c.fix);
        } else if c.ok {
            println!("[ OK ] {}", c.what);
        } else {
            failed += 1;
            println!("[FAIL] {}\n       fix: {}", c.what, c.fix);
        }
    }
    if failed == 0 {
        println!("all {} checks passed", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} checks failed", checks.len());
        Ok(ExitCode::FAILURE)
    }
}

/// The database is reachable and migrated, and its SNMP secrets are encrypted with this
/// APP_KEY. An invalid APP_KEY was reported already: the database is checked without it.
/// Nothing is created or changed: a missing SQLite file and pending migrations are reported
/// with the command that fixes them.
async fn database_checks(cfg: &Config) -> Vec<Check> {
    if let lookout_store::StoreConfig::Sqlite { path } = &cfg.store {
        if !path.exists() {
            return vec![Check {
                ok: false,
                what: format!("no database at {}", path.display()),
                fix: format!(
                    "start Lookout once (`lookout serve --data-dir {}`) or run `lookout migrate`; or point DB_DATABASE / --data-dir at the installation",
                    cfg.data_dir.display()
                ),
            }];
        }
    }
    let db_fix = "check DB_CONNECTION, DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME, DB_PASSWORD, DB_SSL_*; for SQLite, that the file's directory is writable";
    let keyless;
    let cfg_used = if crate::key::secret_keys(cfg).is_err() {
        keyless = Config {
            app_key: None,
            app_key_previous: None,
            ..cfg.clone()
        };
        &keyless
    } else {
        cfg
    };
    let store = match crate::commands::open_store(cfg_used).await {
        Ok(s) => s,
        Err(e) => {
            return vec![Check {
                ok: false,
                what: format!("database ({}): {e:#}", describe_store(cfg)),
                fix: db_fix.into(),
            }]
        }
    };
    let mut checks = Vec::new();
    match store.migrate_status().await {
        Err(e) => {
            checks.push(Check {
                ok: false,
                what: format!("database ({}): {e}", describe_store(cfg)),
                fix: db_fix.into(),
            });
            return checks;
        }
        Ok(status) => {
            let pending: Vec<String> = status
                .iter()
                .filter(|m| m.applied_at.is_none())
                .map(|m| m.name.clone())
                .collect();
            if !pending.is_empty() {
                checks.push(Check {
                    ok: false,
                    what: format!(
                        "database schema: {} migration(s) pending ({})",
                        pending.len(),
                        pending.join(", ")
                    ),
                    fix: "run `lookout migrate` (or start `lookout serve`, which migrates)".into(),
                });
                return checks;
            }
        }
    }
    checks.push(match store.ping().await {
        Ok(()) => Check {
            ok: true,
            what: format!("database reachable ({})", describe_store(cfg)),
            fix: String::new(),
        },
        Err(e) => Check {
            ok: false,
            what: format!("database: {e}"),
            fix: "check DB_* settings".into(),
        },
    });
    if let (Ok(status), Some(id)) = (store.secrets_status().await, store.secret_key_id()) {
        if status.other_keys.is_empty() && status.plaintext == 0 {
            checks.push(Check {
                ok: true,
                what: format!(
                    "SNMP secrets encrypted with APP_KEY (key id {id}; {} values)",
                    status.current
                ),
                fix: String::new(),
            });
        } else if checks.iter().all(|c| c.ok) {
            checks.push(Check {
                ok: false,
                what: format!(
                    "SNMP secrets: {} plaintext, other keys {:?} (APP_KEY has key id {id})",
                    status.plaintext, status.other_keys
                ),
                fix: "run `lookout migrate` (encrypts plaintext); for other keys set APP_KEY to the key they were written with".into(),
            });
        }
    }
    checks
}

/// Free space where the RRD files live against the projected size of every device's files
/// (`disk::assess`). Nothing is created: the walk over existing files only reads.
async fn disk_check(cfg: &Config) -> Option<Check> {
    use lookout_timeseries::disk;
    let dir = match &cfg.timeseries {
        lookout_timeseries::TimeSeriesConfig::Local { rrd_dir } => rrd_dir.clone(),
        lookout_timeseries::TimeSeriesConfig::Rrdcached { .. } => {
            match &cfg.timeseries_options.rrdcached_base_dir {
                Some(d) => d.clone(),
                None => {
                    return Some(Check {
                        ok: true,
                        what: "RRD disk space: on rrdcached's host (set RRDCACHED_BASE_DIR when it is this machine to have it checked)".into(),
                        fix: String::new(),
                    })
                }
            }
        }
    };
    let store = crate::commands::open_store(cfg).await.ok()?;
    let opts = lookout_web::rrd_disk::RrdDiskOptions {
        sizes: lookout_poller::rrd_file_sizes(
            cfg.poll_interval_secs,
            cfg.timeseries_options.rra_override.as_deref(),
        ),
        floor: cfg.timeseries_options.min_free,
    };
    Some(
        match lookout_web::rrd_disk::measure_disk(&store, opts, dir, None).await {
            Ok(r) => {
                let what = format!(
                    "{} ({} devices, {} polled, {} ports at {} s)",
                    r.assessment.summary,
                    r.inventory.devices,
                    r.inventory.polled_devices,
                    r.inventory.ports,
                    cfg.poll_interval_secs
                );
                match r.assessment.verdict {
                    disk::Verdict::Ok => Check {
                        ok: true,
                        what,
                        fix: String::new(),
                    },
                    disk::Verdict::Warn => Check {
                        ok: true,
                        what,
                        fix: r.assessment.fix,
                    },
                    disk::Verdict::Fail => Check {
                        ok: false,
                        what,
                        fix: r.assessment.fix,
                    },
                }
            }
            Err(e) => Check {
                ok: false,
                what: format!("RRD disk space: {e}"),
                fix: "make the RRD directory readable by this user; check the database".into(),
            },
        },
    )
}

fn describe_timeseries(cfg: &Config) -> String {
    match &cfg.timeseries {
        lookout_timeseries::TimeSeriesConfig::Local { rrd_dir } => {
            format!("local RRD files in {}", rrd_dir.display())
        }
        lookout_timeseries::TimeSeriesConfig::Rrdcached { address } => {
            format!("rrdcached at {address}")
        }
    }
}

fn describe_store(cfg: &Config) -> String {
    match &cfg.store {
        lookout_store::StoreConfig::Sqlite { path } => format!("sqlite {}", path.display()),
        lookout_store::StoreConfig::Mysql {
            hosts, database, ..
        } => format!(
            "mysql {} / {database}",
            hosts
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// The web's device probe through the poller's SNMP engine (the same check as `device add`).
struct PollerProber(Poller);

impl lookout_web::device_add::DeviceProber for PollerProber {
    fn probe<'a>(
        &'a self,
        hostname: &'a str,
        snmp: &'a lookout_core::SnmpConfig,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async move {
            self.0
                .probe(hostname, snmp)
                .await
                .map(|sys| sys.sys_name.unwrap_or_default())
                .map_err(|e| e.to_string())
        })
    }
}
