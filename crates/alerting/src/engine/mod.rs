//! The alerting engine: the edges between the pure rule/state code and the store.
//!
//! - [`Engine`] keeps a [`Catalog`] (compiled rules, transports, maintenance windows)
//!   reloaded from the store every few seconds on every node, so a rule saved through any
//!   web instance is in force everywhere shortly after.
//! - As the store's [`lookout_store::AlertHook`] ([`hook`]) it decides, inside each poll's
//!   fenced commit, what that poll changes: a stale poll opens no alert and clears none.
//! - On the dispatcher master only ([`timepass`], [`delivery`]): the time-based pass
//!   (not polled for N intervals, delays, repeats, acknowledgement and maintenance ends)
//!   and the outbox delivery, both fenced by the master's lease token.
//! - Operator actions ([`ops`]): acknowledge, test a rule against now, seed the defaults.

pub mod delivery;
pub mod hook;
pub mod maintenance;
pub mod ops;
pub mod timepass;

pub use ops::{check_rule, seed_default_rules, AckRequest, RuleTestHit};
pub use timepass::PassStats;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lookout_store::{AlertRule, AlertTransport, Maintenance, Store, StoreError};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::lang::RuleError;
use crate::rule::{CompiledRule, OptionsError, RuleOptions};
use crate::state::StateError;

/// How the engine runs (defaults suit a 300 s LibreNMS-like interval and a 60 s one alike).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The poll interval (for `device.poll_interval` and "not polled for N intervals").
    pub interval_secs: u64,
    /// How often every node reloads rules, transports and maintenance windows.
    pub reload_every: Duration,
    /// How often the master runs the time-based pass.
    pub time_pass_every: Duration,
    /// How often the master looks for due outbox messages.
    pub deliver_every: Duration,
    /// Attempts before a message ends as failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled per attempt up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Messages in flight at once.
    pub max_in_flight: usize,
    /// Upper bound of one attempt, whatever the transport's own timeout.
    pub attempt_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interval_secs: 300,
            reload_every: Duration::from_secs(5),
            time_pass_every: Duration::from_secs(10),
            deliver_every: Duration::from_millis(500),
            max_attempts: 8,
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(600),
            max_in_flight: 16,
            attempt_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rule {name:?}: {source}")]
    Rule {
        name: String,
        #[source]
        source: RuleError,
    },
    #[error("rule {name:?}: {source}")]
    Options {
        name: String,
        #[source]
        source: OptionsError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("alert {0} not found")]
    AlertNotFound(i64),
    #[error("rule {0} of alert not found (removed?)")]
    RuleNotFound(i64),
    #[error("alert {0} has no readable state: {1}")]
    BadState(i64, String),
    #[error("the alert changed meanwhile; try again")]
    Conflict,
}

/// A stored rule ready to use.
#[derive(Clone, Debug)]
pub struct LoadedRule {
    pub compiled: CompiledRule,
    pub disabled: bool,
}

/// What every decision reads: loaded once per reload, shared read-only.
#[derive(Debug, Default)]
pub struct Catalog {
    /// By rule id (enabled and disabled; a disabled rule decides nothing).
    pub rules: Vec<LoadedRule>,
    /// Rules that no longer compile (edited in the database directly): logged, skipped.
    pub broken: Vec<(i64, String)>,
    pub transports: HashMap<i64, AlertTransport>,
    /// Transports that receive every rule naming none of its own.
    pub default_transports: Vec<i64>,
    pub maintenances: Vec<Maintenance>,
}

impl Catalog {
    pub fn rule(&self, id: i64) -> Option<&LoadedRule> {
        self.rules.iter().find(|r| r.compiled.id == id)
    }

    /// The transports a notification of `rule` goes to.
    pub fn transports_of(&self, rule: &CompiledRule) -> Vec<i64> {
        if rule.options.transports.is_empty() {
            self.default_transports.clone()
        } else {
            rule.options
                .transports
                .iter()
                .copied()
                .filter(|id| self.transports.contains_key(id))
                .collect()
        }
    }
}

/// Compiles a stored rule.
pub fn load_rule(r: &AlertRule) -> Result<LoadedRule, EngineError> {
    let options = RuleOptions::from_row(
        &r.severity,
        &r.extra,
        r.proc_url.as_deref(),
        &r.transport_ids,
    )
    .map_err(|source| EngineError::Options {
        name: r.name.clone(),
        source,
    })?;
    let compiled =
        CompiledRule::new(r.id, &r.name, &r.rule, options).map_err(|source| EngineError::Rule {
            name: r.name.clone(),
            source,
        })?;
    Ok(LoadedRule {
        compiled,
        disabled: r.disabled,
    })
}

/// The alerting engine of one process (cheap to share: `Arc<Engine>`).
pub struct Engine {
    store: Store,
    cfg: EngineConfig,
    catalog: RwLock<Arc<Catalog>>,
}

impl Engine {
    /// Seeds the built-in rules that are missing and loads the catalog.
    pub async fn start(store: Store, cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        ops::seed_default_rules(&store).await?;
        let engine = Arc::new(Engine {
            store,
            cfg,
            catalog: RwLock::new(Arc::new(Catalog::default())),
        });
        engine.reload().await?;
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The catalog in force (a snapshot: later reloads do not change it).
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads rules, transports and maintenance windows again.
    pub async fn reload(&self) -> Result<(), EngineError> {
        let rows = self.store.alert_rules().await?;
        let transports = self.store.alert_transports().await?;
        let maintenances = self.store.maintenances().await?;
        let mut cat = Catalog {
            default_transports: transports
                .iter()
                .filter(|t| t.is_default)
                .map(|t| t.transport_id)
                .collect(),
            transports: transports
                .into_iter()
                .map(|t| (t.transport_id, t))
                .collect(),
            maintenances,
            ..Catalog::default()
        };
        let old = self.catalog();
        for r in &rows {
            match load_rule(r) {
                Ok(l) => cat.rules.push(l),
                Err(e) => {
                    if !old.broken.iter().any(|(id, _)| *id == r.id) {
                        warn!(rule_id = r.id, error = %e, "alert rule does not compile; skipped until fixed");
                    }
                    cat.broken.push((r.id, e.to_string()));
                }
            }
        }
        let cat = Arc::new(cat);
        match self.catalog.write() {
            Ok(mut c) => *c = cat,
            Err(poisoned) => *poisoned.into_inner() = cat,
        }
        Ok(())
    }

    /// Reloads the catalog every `reload_every` until `shutdown` turns true.
    pub async fn reload_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.reload_every) => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
            if *shutdown.borrow() {
                return;
            }
            match self.reload().await {
                Ok(()) => {
                    if failing {
                        debug!("alert rules reloaded again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, "cannot reload alert rules; keeping the ones loaded");
                    }
                    failing = true;
                }
            }
        }
    }
}
