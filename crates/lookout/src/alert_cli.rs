//! `lookout alert ...`: the alerting CLI (alerts, log, rules, transports, outbox,
//! maintenance) and the master tasks that `serve` hands the dispatcher.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use lookout_alerting::engine::{check_rule, AckRequest, Engine};
use lookout_alerting::rule::{RuleOptions, Scope, Severity};
use lookout_alerting::state::AlertState;
use lookout_alerting::transport;
use lookout_alerting::Notification;
use lookout_coord::Lease;
use lookout_dispatcher::MasterTask;
use lookout_store::{AlertTransport, Maintenance, NewAlertRule, Store};
use tokio::sync::watch;

use crate::commands::open_migrated;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Open alerts (`--all`: recovered ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert: no repeats until it recovers (or `--until`, `--until-worse`).
    Ack {
        alert_id: i64,
        #[arg(long, default_value = "")]
        note: String,
        /// Alerting again after this: RFC 3339 time or a duration (`2h`, `30m`, `1d`).
        #[arg(long)]
        until: Option<String>,
        /// Alerting again (with a notification) when it gets worse.
        #[arg(long)]
        until_worse: bool,
    },
    /// Withdraw an acknowledgement.
    Unack { alert_id: i64 },
    /// The alert log, newest first.
    Log {
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Alert rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Where notifications go.
    #[command(subcommand)]
    Transport(TransportCommand),
    /// Notifications waiting, delivered and failed (with their attempts).
    Outbox {
        /// `pending`, `sending`, `delivered` or `failed`.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Maintenance windows (no alerts, or alerts kept but not sent).
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a rule (checked first: a rule that does not parse is refused with the position).
    Add(Box<RuleArgs>),
    /// What a rule (an expression, or a stored rule's name) would alert on now.
    Test {
        /// An expression, or the name of a stored rule.
        rule: String,
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct RuleArgs {
    pub name: String,
    /// The expression, e.g. `ports.ifOperStatus == "down" && ports.ifAdminStatus == "up"`.
    #[arg(long)]
    pub rule: String,
    /// ok, warning or critical.
    #[arg(long, default_value = "critical")]
    pub severity: String,
    /// Seconds the condition must hold before alerting.
    #[arg(long, default_value_t = 0)]
    pub delay: u64,
    /// Seconds between repeat notifications (0: none).
    #[arg(long, default_value_t = 0)]
    pub interval: u64,
    /// At most this many notifications per alert (alert + repeats).
    #[arg(long)]
    pub count: Option<u32>,
    /// No recovery notification.
    #[arg(long)]
    pub no_recovery: bool,
    #[arg(long)]
    pub invert: bool,
    /// Keep alert state, send nothing.
    #[arg(long)]
    pub mute: bool,
    /// One alert per matching entity (port, disk) instead of one per device.
    #[arg(long)]
    pub per_entity: bool,
    /// Only these devices (hostnames, comma separated).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub poller_groups: Vec<i32>,
    #[arg(long, value_delimiter = ',')]
    pub os: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub locations: Vec<String>,
    /// Transports by name (none: the default transports).
    #[arg(long = "transport")]
    pub transports: Vec<String>,
    #[arg(long)]
    pub procedure: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TransportCommand {
    /// Transports (settings with secrets masked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a transport: `add NAME webhook --url URL`, `add NAME email --host H --to A`,
    /// `add NAME script --command /path/arg`, `add NAME alertmanager --url U1 --url U2`,
    /// or any kind with `--config JSON` (slack, teams, discord, telegram, pagerduty,
    /// opsgenie).
    Add(Box<TransportArgs>),
    /// Send a test notification through a transport now (from this process).
    Test {
        name: String,
    },
    Remove {
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct TransportArgs {
    pub name: String,
    /// webhook, email, script, alertmanager, slack, teams, discord, telegram, pagerduty,
    /// opsgenie.
    pub kind: String,
    /// Receives every rule that names no transport.
    #[arg(long)]
    pub default: bool,
    /// The settings as JSON (merged over the flags).
    #[arg(long)]
    pub config: Option<String>,
    /// webhook/slack/...: the URL; alertmanager: once per replica.
    #[arg(long = "url")]
    pub urls: Vec<String>,
    /// webhook: extra header `Name: value` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// email: SMTP server.
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub from: Option<String>,
    /// email: recipient (repeatable).
    #[arg(long = "to")]
    pub to: Vec<String>,
    /// email: required, opportunistic or none.
    #[arg(long)]
    pub starttls: Option<String>,
    #[arg(long)]
    pub username: Option<String>,
    /// email password (or LOOKOUT_SMTP_PASSWORD; never logged).
    #[arg(long, env = "LOOKOUT_SMTP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// script: the program and its arguments (repeatable, in order).
    #[arg(long = "command")]
    pub command: Vec<String>,
    /// Seconds before an attempt gives up.
    #[arg(long)]
    pub timeout: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    List,
    /// A one-off window from now (or `--start`) for `--duration` (or until `--end`).
    Add {
        title: String,
        /// Devices (hostnames, comma separated).
        #[arg(long, value_delimiter = ',')]
        devices: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        poller_groups: Vec<i32>,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        duration: Option<String>,
        /// Keep alert state but send nothing (default: no alerts at all, LibreNMS "skip").
        #[arg(long)]
        mute: bool,
    },
    Remove {
        id: i64,
    },
}

/// The master tasks of the alerting engine, for `run_cluster_with`.
pub fn master_tasks(engine: &Arc<Engine>) -> Vec<Arc<dyn MasterTask>> {
    vec![
        Arc::new(TimePass(engine.clone())),
        Arc::new(Delivery(engine.clone())),
    ]
}

struct TimePass(Arc<Engine>);
struct Delivery(Arc<Engine>);

type TaskFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl MasterTask for TimePass {
    fn name(&self) -> &'static str {
        "alert-time-pass"
    }
    fn run(
        self: Arc<Self>,
        master: watch::Receiver<Option<Lease>>,
        shutdown: watch::Receiver<bool>,
    ) -> TaskFuture {
        Box::pin(self.0.clone().run_time_passes(master, shutdown))
    }
}

impl MasterTask for Delivery {
    fn name(&self) -> &'static str {
        "alert-delivery"
    }
    fn run(
        self: Arc<Self>,
        master: watch::Receiver<Option<Lease>>,
        shutdown: watch::Receiver<bool>,
    ) -> TaskFuture {
        Box::pin(self.0.clone().run_delivery(master, shutdown))
    }
}

pub async fn run(cfg: Config, cmd: AlertCommand) -> Result<ExitCode> {
    let store = open_migrated(&cfg).await?;
    let engine = Engine::start(store.clone(), cfg.alerting.clone())
        .await
        .context("cannot load the alert rules")?;
    match cmd {
        AlertCommand::List { all, json } => list(&store, all, json).await?,
        AlertCommand::Ack {
            alert_id,
            note,
            until,
            until_worse,
        } => {
            let until = until.as_deref().map(parse_time).transpose()?;
            let row = engine
                .acknowledge(
                    alert_id,
                    AckRequest {
                        note,
                        by: Some(whoami()),
                        until,
                        until_worse,
                    },
                )
                .await?;
            println!("alert {} acknowledged", row.id);
        }
        AlertCommand::Unack { alert_id } => {
            engine.unacknowledge(alert_id).await?;
            println!("alert {alert_id} no longer acknowledged");
        }
        AlertCommand::Log {
            device,
            limit,
            json,
        } => log(&store, device, limit, json).await?,
        AlertCommand::Rules(c) => return rules(&engine, c).await,
        AlertCommand::Transport(c) => return transports(&store, c).await,
        AlertCommand::Outbox { state, limit, json } => outbox(&store, state, limit, json).await?,
        AlertCommand::Maintenance(c) => maintenance(&store, c).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

/// RFC 3339, or a duration from now (`90s`, `30m`, `2h`, `1d`).
fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    Ok(Utc::now() + parse_duration(text)?)
}

fn parse_duration(text: &str) -> Result<chrono::Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().with_context(|| {
        format!("{text:?} is not a time (RFC 3339) or a duration like 30m, 2h, 1d")
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("{text:?}: unknown unit {unit:?} (s, m, h, d)"),
    };
    Ok(chrono::Duration::seconds(secs))
}

async fn list(store: &Store, all: bool, json: bool) -> Result<()> {
    let rules = store.alert_rules().await?;
    let devices = store.devices().await?;
    let rows: Vec<_> = store
        .alerts()
        .await?
        .into_iter()
        .filter(|a| all || a.open)
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<6} {:<9} {:<13} {:<24} {:<32} {:<16} since",
        "id", "severity", "state", "device", "rule", "entity"
    );
    for a in &rows {
        let st = AlertState::from_json(&a.info).ok();
        let rule = rules.iter().find(|r| r.id == a.key.rule_id);
        let host = devices
            .iter()
            .find(|d| d.device_id == a.key.device_id)
            .map_or("?", |d| d.hostname.as_str());
        let state = match &st {
            Some(s) if s.is_acknowledged() => "acknowledged".to_string(),
            Some(s) => format!("{:?}", s.phase).to_lowercase(),
            None => "?".into(),
        };
        let entity = if a.key.entity_type.is_empty() {
            "-".to_string()
        } else {
            format!("{}:{}", a.key.entity_type, a.key.entity_id)
        };
        println!(
            "{:<6} {:<9} {:<13} {:<24} {:<32} {:<16} {}",
            a.id,
            st.as_ref().map_or("?", |s| s.severity.as_str()),
            state,
            host,
            rule.map_or("?", |r| r.name.as_str()),
            entity,
            st.map(|s| s.since.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn log(store: &Store, device: Option<String>, limit: u32, json: bool) -> Result<()> {
    let device_id = match device {
        Some(h) => Some(
            store
                .device_by_hostname(&h)
                .await?
                .with_context(|| format!("no device {h:?}"))?
                .device_id,
        ),
        None => None,
    };
    let rows = store.alert_log(device_id, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in rows {
        println!(
            "{} rule {} device {} {} state {} {}",
            r.time_logged.format("%Y-%m-%d %H:%M:%S"),
            r.key.rule_id,
            r.key.device_id,
            if r.key.entity_type.is_empty() {
                String::new()
            } else {
                format!("{}:{}", r.key.entity_type, r.key.entity_id)
            },
            r.state,
            r.details
        );
    }
    Ok(())
}

async fn rule_from_args(store: &Store, a: RuleArgs) -> Result<NewAlertRule> {
    let severity: Severity = a.severity.parse()?;
    let mut scope = Scope {
        poller_groups: a.poller_groups,
        os: a.os,
        locations: a.locations,
        ..Scope::default()
    };
    for h in &a.devices {
        let d = store
            .device_by_hostname(h)
            .await?
            .with_context(|| format!("no device {h:?}"))?;
        scope.devices.push(d.device_id);
    }
    let known = store.alert_transports().await?;
    let mut transport_ids = Vec::new();
    for name in &a.transports {
        let t = known
            .iter()
            .find(|t| &t.transport_name == name)
            .with_context(|| {
                format!("no transport {name:?} (see `lookout alert transport list`)")
            })?;
        transport_ids.push(t.transport_id);
    }
    let options = RuleOptions {
        severity,
        delay_secs: a.delay,
        interval_secs: a.interval,
        max_notifications: a.count,
        recovery: !a.no_recovery,
        invert: a.invert,
        mute: a.mute,
        per_entity: a.per_entity,
        scope,
        procedure_url: None,
        transports: Vec::new(),
    };
    Ok(NewAlertRule {
        name: a.name,
        rule: a.rule,
        severity: severity.as_str().to_string(),
        extra: options.extra_json(),
        disabled: false,
        builtin: false,
        proc_url: a.procedure,
        transport_ids,
    })
}

async fn rules(engine: &Engine, cmd: RulesCommand) -> Result<ExitCode> {
    let store = engine.store();
    match cmd {
        RulesCommand::List { json } => {
            let rules = store.alert_rules().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
            } else {
                println!(
                    "{:<5} {:<9} {:<8} {:<34} rule",
                    "id", "severity", "enabled", "name"
                );
                for r in rules {
                    println!(
                        "{:<5} {:<9} {:<8} {:<34} {}",
                        r.id,
                        r.severity,
                        if r.disabled { "no" } else { "yes" },
                        r.name,
                        r.rule
                    );
                }
            }
        }
        RulesCommand::Add(args) => {
            let rule = rule_from_args(store, *args).await?;
            let r = engine.add_rule(&rule).await?;
            println!("rule {:?} added (id {})", r.name, r.id);
        }
        RulesCommand::Test { rule, json } => {
            let stored = store
                .alert_rules()
                .await?
                .into_iter()
                .find(|r| r.name == rule);
            let new = match stored {
                Some(r) => NewAlertRule {
                    name: r.name,
                    rule: r.rule,
                    severity: r.severity,
                    extra: r.extra,
                    disabled: false,
                    builtin: r.builtin,
                    proc_url: r.proc_url,
                    transport_ids: r.transport_ids,
                },
                None => NewAlertRule {
                    name: "test".into(),
                    rule,
                    severity: "critical".into(),
                    extra: String::new(),
                    disabled: false,
                    builtin: false,
                    proc_url: None,
                    transport_ids: Vec::new(),
                },
            };
            let compiled = check_rule(&new)?;
            let hits = engine.test_rule(&compiled, None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
            } else if hits.is_empty() {
                println!("matches no device now");
            } else {
                for h in hits {
                    println!(
                        "{} (device {}): {} match(es)",
                        h.hostname,
                        h.device_id,
                        h.matches.len()
                    );
                    for m in h.matches {
                        println!("  {m}");
                    }
                }
            }
        }
        RulesCommand::Remove { name } => {
            let r = find_rule(store, &name).await?;
            store.remove_alert_rule(r.id).await?;
            println!("rule {name:?} removed");
        }
        RulesCommand::Disable { name } => set_disabled(engine, &name, true).await?,
        RulesCommand::Enable { name } => set_disabled(engine, &name, false).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn find_rule(store: &Store, name: &str) -> Result<lookout_store::AlertRule> {
    store
        .alert_rules()
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .with_context(|| format!("no rule {name:?} (see `lookout alert rules list`)"))
}

async fn set_disabled(engine: &Engine, name: &str, disabled: bool) -> Result<()> {
    let r = find_rule(engine.store(), name).await?;
    let new = NewAlertRule {
        name: r.name,
        rule: r.rule,
        severity: r.severity,
        extra: r.extra,
        disabled,
        builtin: r.builtin,
        proc_url: r.proc_url,
        transport_ids: r.transport_ids,
    };
    engine.update_rule(r.id, &new).await?;
    println!(
        "rule {name:?} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

fn transport_config(a: &TransportArgs) -> Result<serde_json::Value> {
    use serde_json::{json, Map, Value};
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    match a.kind.as_str() {
        "alertmanager" if !a.urls.is_empty() => put("urls", json!(a.urls)),
        _ => {
            if let Some(u) = a.urls.first() {
                put("url", json!(u));
            }
        }
    }
    if !a.headers.is_empty() {
        let mut h = Map::new();
        for line in &a.headers {
            let (k, v) = line
                .split_once(':')
                .with_context(|| format!("--header {line:?}: expected `Name: value`"))?;
            h.insert(k.trim().to_string(), json!(v.trim()));
        }
        put("headers", Value::Object(h));
    }
    for (k, v) in [
        ("host", &a.host),
        ("from", &a.from),
        ("starttls", &a.starttls),
        ("username", &a.username),
        ("password", &a.password),
    ] {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if let Some(p) = a.port {
        put("port", json!(p));
    }
    if !a.to.is_empty() {
        put("to", json!(a.to));
    }
    if !a.command.is_empty() {
        put("argv", json!(a.command));
    }
    if let Some(t) = a.timeout {
        put("timeout_secs", json!(t));
    }
    if let Some(text) = &a.config {
        let extra: Value = serde_json::from_str(text).context("--config is not JSON")?;
        let Value::Object(extra) = extra else {
            bail!("--config must be a JSON object");
        };
        m.extend(extra);
    }
    Ok(Value::Object(m))
}

async fn transports(store: &Store, cmd: TransportCommand) -> Result<ExitCode> {
    match cmd {
        TransportCommand::List { json } => {
            let ts = store.alert_transports().await?;
            let shown: Vec<serde_json::Value> = ts
                .iter()
                .map(|t| {
                    let config = serde_json::from_str(&t.transport_config).unwrap_or_default();
                    serde_json::json!({
                        "transport_id": t.transport_id,
                        "transport_name": t.transport_name,
                        "transport_type": t.transport_type,
                        "is_default": t.is_default,
                        "transport_config": transport::redact(&t.transport_type, &config),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                for t in shown {
                    println!(
                        "{:<4} {:<20} {:<13} {:<8} {}",
                        t["transport_id"],
                        t["transport_name"].as_str().unwrap_or_default(),
                        t["transport_type"].as_str().unwrap_or_default(),
                        if t["is_default"].as_bool() == Some(true) {
                            "default"
                        } else {
                            ""
                        },
                        t["transport_config"]
                    );
                }
            }
        }
        TransportCommand::Add(args) => {
            if !transport::kinds().contains(&args.kind.as_str()) {
                bail!(
                    "unknown transport kind {:?}; known: {}",
                    args.kind,
                    transport::kinds().join(", ")
                );
            }
            let config = transport_config(&args)?;
            transport::validate_config(&args.kind, &config)
                .with_context(|| format!("transport {:?} not saved", args.name))?;
            let t = store
                .add_alert_transport(&AlertTransport {
                    transport_id: 0,
                    transport_name: args.name.clone(),
                    transport_type: args.kind.clone(),
                    is_default: args.default,
                    transport_config: config.to_string(),
                })
                .await?;
            println!(
                "transport {:?} ({}) added (id {}){}",
                t.transport_name,
                t.transport_type,
                t.transport_id,
                if t.is_default { ", default" } else { "" }
            );
        }
        TransportCommand::Test { name } => {
            let t = find_transport(store, &name).await?;
            let built = transport::build(&t).with_context(|| format!("transport {name:?}"))?;
            let note = Notification::test(&crate::config::hostname(), Utc::now());
            match built.send(&note).await {
                Ok(d) => println!("test notification sent through {name:?}: {}", d.detail),
                Err(e) => {
                    println!("test notification through {name:?} failed: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        TransportCommand::Remove { name } => {
            let t = find_transport(store, &name).await?;
            store.remove_alert_transport(t.transport_id).await?;
            println!("transport {name:?} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn find_transport(store: &Store, name: &str) -> Result<AlertTransport> {
    store
        .alert_transports()
        .await?
        .into_iter()
        .find(|t| t.transport_name == name)
        .with_context(|| format!("no transport {name:?} (see `lookout alert transport list`)"))
}

async fn outbox(store: &Store, state: Option<String>, limit: u32, json: bool) -> Result<()> {
    let rows = store.outbox(state.as_deref(), limit).await?;
    if json {
        let mut out = Vec::new();
        for r in rows {
            let attempts = store.delivery_attempts(r.id).await?;
            let mut v = serde_json::to_value(&r)?;
            v["attempt_log"] = serde_json::to_value(attempts)?;
            out.push(v);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for r in rows {
        println!(
            "{:<6} {:<10} attempts {:<2} transport {:<3} {} {}",
            r.id,
            r.state,
            r.attempts,
            r.transport_id,
            r.idempotency_key,
            r.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

async fn maintenance(store: &Store, cmd: MaintenanceCommand) -> Result<()> {
    match cmd {
        MaintenanceCommand::List => {
            for m in store.maintenances().await? {
                println!(
                    "{:<4} {:<24} {} .. {} {} {:?}",
                    m.schedule_id,
                    m.title,
                    m.start.format("%Y-%m-%d %H:%M"),
                    m.end.format("%Y-%m-%d %H:%M"),
                    if m.behavior == 0 { "skip" } else { "mute" },
                    m.items
                );
            }
        }
        MaintenanceCommand::Add {
            title,
            devices,
            poller_groups,
            start,
            end,
            duration,
            mute,
        } => {
            let start = match start {
                Some(s) => parse_time(&s)?,
                None => Utc::now(),
            };
            let end = match (end, duration) {
                (Some(e), _) => parse_time(&e)?,
                (None, Some(d)) => start + parse_duration(&d)?,
                (None, None) => bail!("give --end or --duration"),
            };
            if end <= start {
                bail!("the window ends before it starts");
            }
            let mut items = Vec::new();
            for h in &devices {
                let d = store
                    .device_by_hostname(h)
                    .await?
                    .with_context(|| format!("no device {h:?}"))?;
                items.push(("device".to_string(), d.device_id));
            }
            items.extend(
                poller_groups
                    .iter()
                    .map(|g| ("poller_group".to_string(), i64::from(*g))),
            );
            if items.is_empty() {
                bail!("a window needs --devices or --poller-groups");
            }
            let m = store
                .add_maintenance(&Maintenance {
                    schedule_id: 0,
                    title,
                    notes: None,
                    start,
                    end,
                    recurring: false,
                    start_recurring_hm: None,
                    end_recurring_hm: None,
                    recurring_day: None,
                    behavior: if mute { 1 } else { 0 },
                    items,
                })
                .await?;
            println!("maintenance {} added (id {})", m.title, m.schedule_id);
        }
        MaintenanceCommand::Remove { id } => {
            if !store.remove_maintenance(id).await? {
                bail!("no maintenance window {id}");
            }
            println!("maintenance window {id} removed");
        }
    }
    Ok(())
}

/// `lookout validate`'s alerting checks: (ok, what, how to fix; ok with a fix is a
/// warning). Rules that no longer
/// compile, each transport's receiver reachable (nothing sent), failed notifications.
pub async fn validate_checks(cfg: &Config) -> Vec<(bool, String, String)> {
    let Ok(store) = crate::commands::open_store(cfg).await else {
        // The database check reports why.
        return Vec::new();
    };
    let mut out = Vec::new();
    match store.alert_rules().await {
        Ok(rules) => {
            let broken: Vec<String> = rules
                .iter()
                .filter(|r| !r.disabled)
                .filter_map(|r| lookout_alerting::engine::load_rule(r).err())
                .map(|e| e.to_string())
                .collect();
            out.push(if broken.is_empty() {
                (
                    true,
                    format!("{} alert rules compile", rules.len()),
                    String::new(),
                )
            } else {
                (
                    false,
                    format!("alert rules that do not compile: {}", broken.join("; ")),
                    "fix or disable them (`lookout alert rules disable NAME`)".into(),
                )
            });
        }
        Err(e) => out.push((
            false,
            format!("alert rules unreadable: {e}"),
            "run `lookout migrate`".into(),
        )),
    }
    let transports = store.alert_transports().await.unwrap_or_default();
    if transports.is_empty() {
        out.push((
            true,
            "no alert transport: alerts are recorded but nobody is told".into(),
            "add one, e.g. `lookout alert transport add noc webhook --url URL --default`".into(),
        ));
    }
    for t in &transports {
        out.push(match transport::check_reachable(t).await {
            Ok(what) => (
                true,
                format!(
                    "alert transport {:?} ({}): {what}",
                    t.transport_name, t.transport_type
                ),
                String::new(),
            ),
            Err(e) => (
                false,
                format!(
                    "alert transport {:?} ({}): {e}",
                    t.transport_name, t.transport_type
                ),
                "check its settings (`lookout alert transport list`) and that the receiver is up"
                    .into(),
            ),
        });
    }
    if let Ok(failed) = store.outbox(Some("failed"), 1000).await {
        if !failed.is_empty() {
            out.push((
                false,
                format!("{} alert notification(s) failed for good", failed.len()),
                "see `lookout alert outbox --state failed` for the errors".into(),
            ));
        }
    }
    out
}
