//! Lookout poller: runs the polling modules for one device and writes what they found.
//!
//! Modules (each timed, each switchable globally and per device, see [`modules`] and
//! docs/modules.md):
//! - `availability`: ICMP loss and RTT (fping) → `icmp-perf.rrd`; the ping runs beside the
//!   SNMP modules, batched with other polls' pings by the shared `lookout_icmp::Pinger`;
//! - `core`: system group (sysDescr, sysObjectID, sysUpTime, sysName, ...), OS detection,
//!   hardware/version/serial (OS rules + ENTITY-MIB chassis), reboot detection → `uptime.rrd`,
//!   `devices` row;
//! - `ports`: IF-MIB ifTable + ifXTable → `ports` rows with rates, `port-id<N>.rrd`;
//! - `processors`, `mempools`, `storage`: HOST-RESOURCES-MIB / UCD-SNMP-MIB → current values
//!   and `processor-*.rrd`, `mempool-*.rrd`, `storage-*.rrd` (see [`health`]).
//!
//! - discovery-only work (first poll, every `discovery_interval_secs`, after a reboot, or on
//!   demand with [`Poller::discover`]): ENTITY-MIB chassis, LLDP/CDP neighbours and IPv6
//!   addresses (see [`discovery`]). Under the dispatcher ([`DiscoveryMode::Scheduled`]) the
//!   master decides when a device is discovered and the worker calls
//!   [`Poller::discover_fenced`]; the poller then only adds the chassis walk after a reboot.
//!
//! Nothing is written while the modules run: the store rows and events of a poll go into one
//! `Store::commit_poll` transaction at the end (checked against the claim token for a
//! distributed poll, so a stale poll writes nothing), and RRD updates are written only after
//! that commit succeeded.
//!
//! The poller has no sockets of its own: SNMP goes through `lookout-snmp`, ICMP through
//! `lookout-icmp`, results through `lookout-store` and `lookout-timeseries`.

pub mod discovery;
pub mod health;
pub mod modules;
pub mod os;
pub mod ports;
mod system;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use lookout_core::{Device, DevicePollUpdate, DeviceStatus, Port, SnmpConfig};
use lookout_icmp::{PingConfig, PingResult, Pinger};
use lookout_snmp::{Session, SnmpClient, SnmpError};
use lookout_store::{Severity, Store, StoreError};
use lookout_timeseries::{defs, RrdDef, TimeSeries, TimeSeriesError, Update, Value};
use tracing::{debug, info, warn};

pub use health::{Mempool, Processor, Storage};
pub use modules::{Module, ModuleOutcome, ModuleSet, ModuleTiming};
pub use system::{Chassis, SystemInfo};

/// Errors that stop a poll or a probe.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot resolve {host:?}: {message}")]
    Resolve { host: String, message: String },
    #[error("SNMP to {host} failed: {source}")]
    Snmp {
        host: String,
        #[source]
        source: SnmpError,
    },
    #[error("cannot open an SNMP socket: {0}")]
    Socket(#[source] SnmpError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What one poll did.
#[derive(Clone, Debug)]
pub struct PollReport {
    pub device_id: i64,
    pub hostname: String,
    pub status: DeviceStatus,
    pub status_reason: String,
    /// Discovery-only work ran in this poll (first poll, interval passed, or reboot).
    pub discovered: bool,
    pub system: Option<SystemInfo>,
    pub ping: Option<PingResult>,
    pub ports: Vec<Port>,
    pub processors: Vec<Processor>,
    pub mempools: Vec<Mempool>,
    pub storage: Vec<Storage>,
    /// What discovery-only work found (neighbours, IPv6 addresses), when it ran.
    pub discovery: Option<discovery::Discovered>,
    /// One entry per module, disabled ones included (0 s).
    pub timings: Vec<ModuleTiming>,
    /// Collecting (SNMP, ICMP): what `last_polled_timetaken` shows, as in LibreNMS.
    pub seconds: f64,
    /// Writing the results to the store (the one commit), seconds.
    pub commit_secs: f64,
    /// Handing the RRD updates to the time-series backend, seconds.
    pub rrd_secs: f64,
    /// RRD writes that failed (logged; the poll itself still counts).
    pub timeseries_errors: Vec<String>,
}

/// Who decides when a device's discovery-only work runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// The poller itself: on the first poll and whenever `last_discovered` is
    /// `discovery_interval_secs` old (standalone `lookout device poll`, embedding).
    #[default]
    Inline,
    /// The dispatcher's master: it queues the device as a discovery
    /// (`lookout_coord::Work::Discover`) and the worker calls
    /// [`Poller::discover_fenced`]; a plain poll never discovers on its own (only the
    /// chassis walk after a reboot stays, in both modes).
    Scheduled,
}

/// Settings of the poller.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// RRD step and expected seconds between polls.
    pub step_secs: u64,
    pub ping: PingConfig,
    /// Modules that run unless a device overrides them.
    pub modules: ModuleSet,
    /// Seconds between discoveries (ENTITY-MIB model/serial), LibreNMS's 6 hours
    /// ([`DiscoveryMode::Inline`] only; the dispatcher has its own setting).
    pub discovery_interval_secs: u64,
    /// Whether the poller decides on discovery itself or leaves it to the dispatcher.
    pub discovery: DiscoveryMode,
    /// How long one device's poll may take before its remaining SNMP modules give up
    /// (`None`: the poll interval, `step_secs`).
    pub poll_budget: Option<std::time::Duration>,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            step_secs: 300,
            ping: PingConfig::default(),
            modules: ModuleSet::all(),
            discovery_interval_secs: 6 * 3600,
            discovery: DiscoveryMode::Inline,
            poll_budget: None,
        }
    }
}

/// Polls devices; cheap to clone, share one per process.
#[derive(Clone)]
pub struct Poller {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    timeseries: TimeSeries,
    snmp_v4: SnmpClient,
    snmp_v6: tokio::sync::OnceCell<SnmpClient>,
    /// One batching pinger for every poll of this process (lookout_icmp::Pinger).
    pinger: Pinger,
    config: PollerConfig,
    defs: Defs,
    /// See [`Poller::stale_rrd_updates_dropped`].
    stale_rrd_dropped: std::sync::atomic::AtomicU64,
    /// Decides alert changes inside each poll's commit (set once, by the alerting engine).
    alert_hook: std::sync::OnceLock<Arc<dyn lookout_store::AlertHook>>,
}

/// The RRD definitions of the poller's files, built once for the configured step.
struct Defs {
    icmp_perf: Arc<RrdDef>,
    uptime: Arc<RrdDef>,
    port: Arc<RrdDef>,
    processor: Arc<RrdDef>,
    used_free: Arc<RrdDef>,
    poller_perf: Arc<RrdDef>,
}

impl Defs {
    fn new(step: u64) -> Defs {
        Defs {
            icmp_perf: Arc::new(defs::icmp_perf(step)),
            uptime: Arc::new(defs::uptime(step)),
            port: Arc::new(defs::port(step)),
            processor: Arc::new(health::processor_def(step)),
            used_free: Arc::new(health::used_free_def(step)),
            poller_perf: Arc::new(health::poller_perf_def(step)),
        }
    }
}

/// Sizes of the RRD files a device, a port and a health entry have at a `step` seconds
/// interval (with the `rras` override when set): per device `icmp-perf.rrd`, `uptime.rrd`,
/// `poller-perf.rrd` and one `poller-perf-<module>.rrd` per module; a `port-id<N>.rrd` per
/// port; a 1-DS file per processor and a 2-DS file per mempool and storage entry. Files are
/// allocated whole, so this is what they take on disk.
pub fn rrd_file_sizes(
    step: u64,
    rras: Option<&[lookout_timeseries::Rra]>,
) -> lookout_timeseries::disk::FileSizes {
    let d = Defs::new(step);
    let size = |def: &RrdDef| defs::file_bytes(def, rras);
    lookout_timeseries::disk::FileSizes {
        per_device: size(&d.icmp_perf)
            + size(&d.uptime)
            + size(&d.poller_perf) * (1 + Module::ALL.len() as u64),
        per_port: size(&d.port),
        per_processor: size(&d.processor),
        per_pool: size(&d.used_free),
    }
}

impl Poller {
    pub async fn new(
        store: Store,
        timeseries: TimeSeries,
        config: PollerConfig,
    ) -> Result<Poller, PollError> {
        let snmp_v4 = SnmpClient::bind_v4().await.map_err(PollError::Socket)?;
        Ok(Poller {
            inner: Arc::new(Inner {
                store,
                timeseries,
                snmp_v4,
                snmp_v6: tokio::sync::OnceCell::new(),
                pinger: Pinger::spawn(config.ping.clone()),
                defs: Defs::new(config.step_secs),
                stale_rrd_dropped: std::sync::atomic::AtomicU64::new(0),
                alert_hook: std::sync::OnceLock::new(),
                config,
            }),
        })
    }

    /// Lets `hook` decide alert changes inside every later poll's commit. Set once per
    /// process; `false` when a hook was already set (the first one stays).
    pub fn set_alert_hook(&self, hook: Arc<dyn lookout_store::AlertHook>) -> bool {
        self.inner.alert_hook.set(hook).is_ok()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    async fn session(&self, hostname: &str, snmp: &SnmpConfig) -> Result<Session, PollError> {
        let addr = resolve(hostname, snmp.port).await?;
        let client = if addr.is_ipv6() {
            self.inner
                .snmp_v6
                .get_or_try_init(SnmpClient::bind_v6)
                .await
                .map_err(PollError::Socket)?
        } else {
            &self.inner.snmp_v4
        };
        client
            .session(addr, snmp)
            .map_err(|source| PollError::Snmp {
                host: hostname.to_string(),
                source,
            })
    }

    /// Checks that a device answers SNMP with these settings (used before adding it).
    pub async fn probe(&self, hostname: &str, snmp: &SnmpConfig) -> Result<SystemInfo, PollError> {
        let session = self.session(hostname, snmp).await?;
        system::poll_system(&session)
            .await
            .map_err(|source| PollError::Snmp {
                host: hostname.to_string(),
                source,
            })
    }

    /// Polls one device and writes the results to the store and the time series.
    /// Only an unreachable store is an error: a device that does not answer is a
    /// successful poll that marks it down, and a module whose walk broke off is reported
    /// in the device's `status_reason` (the device stays up, the module writes nothing).
    pub async fn poll(&self, device: &Device) -> Result<PollReport, PollError> {
        self.poll_fenced(device, None).await
    }

    /// [`Poller::poll`] under a distributed claim: the device row is written only while
    /// `fence.token` is still the device's poll token (with a `device_poll_log` row, in one
    /// transaction); a stale poll fails with `PollError::Store(StoreError::Fenced)`.
    pub async fn poll_fenced(
        &self,
        device: &Device,
        fence: Option<&lookout_store::PollFence>,
    ) -> Result<PollReport, PollError> {
        self.run_poll(device, fence, false, None).await
    }

    /// [`Poller::poll_fenced`] (or, with `discover`, [`Poller::discover_fenced`]) that
    /// says when only the ping is left: `snmp_done` fires once every SNMP module has
    /// finished and the poll waits only for its batched ping (fping takes ~1 s with
    /// LibreNMS's settings, SNMP milliseconds). The dispatcher then hands the worker to
    /// the next device while this poll, still holding its claim, waits and commits: a
    /// worker is an SNMP slot, not a second spent asleep on fping. Dropped unsent when
    /// the poll ends first.
    pub async fn poll_releasing(
        &self,
        device: &Device,
        fence: Option<&lookout_store::PollFence>,
        discover: bool,
        snmp_done: tokio::sync::oneshot::Sender<()>,
    ) -> Result<PollReport, PollError> {
        self.run_poll(device, fence, discover, Some(snmp_done))
            .await
    }

    /// On-demand discovery (`lookout device discover`): a full poll of the device with
    /// the discovery-only work (ENTITY-MIB, neighbours, IPv6 addresses) run whether due or
    /// not. Unfenced: for the CLI on a single node or an operator's explicit request.
    pub async fn discover(&self, device: &Device) -> Result<PollReport, PollError> {
        self.run_poll(device, None, true, None).await
    }

    /// [`Poller::discover`] under a distributed claim (the master queued the device as a
    /// discovery): written only while `fence.token` is still the device's poll token, as
    /// [`Poller::poll_fenced`].
    pub async fn discover_fenced(
        &self,
        device: &Device,
        fence: Option<&lookout_store::PollFence>,
    ) -> Result<PollReport, PollError> {
        self.run_poll(device, fence, true, None).await
    }

    async fn run_poll(
        &self,
        device: &Device,
        fence: Option<&lookout_store::PollFence>,
        force_discovery: bool,
        snmp_done: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<PollReport, PollError> {
        let started = Instant::now();
        let polled_at = Utc::now();
        let at = polled_at.timestamp();
        let step = self.inner.config.step_secs;
        let host = device.hostname.clone();
        let mods = self.modules_for(device).await;
        let budget_secs = self
            .inner
            .config
            .poll_budget
            .map_or(step as f64, |d| d.as_secs_f64());
        let budget = Budget {
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs_f64(budget_secs),
            secs: budget_secs,
        };
        // Discovery-only work (the ENTITY-MIB chassis walk) runs on the first poll, every
        // `discovery_interval_secs`, and after a reboot. Scheduled: only when asked (the
        // dispatcher's master spreads discoveries; deciding here too would discover a
        // device twice or bunch them up again).
        let discovery_due = force_discovery
            || (self.inner.config.discovery == DiscoveryMode::Inline
                && device.last_discovered.is_none_or(|t| {
                    (polled_at - t).num_seconds()
                        >= self.inner.config.discovery_interval_secs as i64
                }));
        let mut timings = Vec::new();
        // Nothing is written while the modules run: store rows and events go into one
        // commit at the end (checked against the claim token when fenced), RRD updates
        // are staged and written only after that commit succeeded.
        let mut stage = Stage::default();

        // availability runs beside every SNMP module, in a batch of the shared pinger with
        // other polls' pings: fping takes (count - 1) * interval (1 s with LibreNMS's
        // settings), SNMP milliseconds, so a poll lasts the longer of the two, not the sum.
        let pending_ping = mods
            .is_enabled(Module::Availability)
            .then(|| self.inner.pinger.start(&host));
        let snmp_fut = async {
            let t = Instant::now();
            let r = match self.session(&host, &device.snmp).await {
                Ok(s) => match system::poll_system(&s).await {
                    Ok(mut sys) => {
                        // Uptime going down (a reboot) may mean new hardware or software.
                        let rebooted = matches!((sys.uptime_secs, device.uptime), (Some(up), Some(prev)) if up < prev);
                        if discovery_due || rebooted {
                            // ENTITY-MIB is optional: its absence or failure costs only the
                            // model/serial.
                            match system::poll_chassis(&s).await {
                                Ok(Some(c)) => sys.merge_chassis(&c),
                                Ok(None) => {}
                                Err(e) => {
                                    debug!(device = %host, error = %e, "no ENTITY-MIB chassis")
                                }
                            }
                        } else {
                            // Between discoveries the stored model/serial (which ENTITY-MIB
                            // may have given) stand.
                            if device.hardware.is_some() {
                                sys.hardware = device.hardware.clone();
                            }
                            if device.serial.is_some() {
                                sys.serial = device.serial.clone();
                            }
                        }
                        Ok((s, sys))
                    }
                    Err(source) => Err(PollError::Snmp {
                        host: host.clone(),
                        source,
                    }),
                },
                Err(e) => Err(e),
            };
            (r, t.elapsed().as_secs_f64())
        };
        let (snmp, core_secs) = snmp_fut.await;
        let core_timing = timing(
            Module::Core,
            core_secs,
            match &snmp {
                Ok(_) => ModuleOutcome::Ok,
                Err(e) => ModuleOutcome::Failed(e.to_string()),
            },
        );

        let mut found = Found::default();
        let mut ports_failed = false;
        let mut discovery = None;
        let (status, reason, system, snmp_err) = match snmp {
            Ok((session, sys)) => {
                let mut problems: Vec<String> = Vec::new();
                // Uptime going backwards is a restart (of the host when hrSystemUptime is
                // the source): counters started again.
                let rebooted =
                    matches!((sys.uptime_secs, device.uptime), (Some(up), Some(prev)) if up < prev);
                if let Some(up) = sys.uptime_secs {
                    stage.rrd(
                        &host,
                        "uptime.rrd",
                        &self.inner.defs.uptime,
                        vec![Value::Gauge(up as f64)],
                    );
                    if let (true, Some(prev)) = (rebooted, device.uptime) {
                        stage.event(
                            device,
                            "reboot",
                            format!("Device rebooted after {}", human_secs(prev)),
                            Severity::Warning,
                        );
                    }
                }

                if mods.is_enabled(Module::Ports) {
                    let t = Instant::now();
                    let outcome = match self
                        .poll_ports(device, &session, polled_at, rebooted, &budget, &mut stage)
                        .await?
                    {
                        Ok(()) => ModuleOutcome::Ok,
                        Err(msg) => {
                            warn!(device = %host, "ports module: {msg}");
                            problems.push(format!("ports: {msg}"));
                            ports_failed = true;
                            ModuleOutcome::Failed(msg)
                        }
                    };
                    timings.push(timing(Module::Ports, t.elapsed().as_secs_f64(), outcome));
                } else {
                    timings.push(timing(Module::Ports, 0.0, ModuleOutcome::Disabled));
                }

                self.poll_health(
                    &device.hostname,
                    &session,
                    &mods,
                    &budget,
                    &mut found,
                    &mut timings,
                    &mut problems,
                    &mut stage,
                )
                .await;

                if discovery_due {
                    // Neighbours and IPv6 addresses: discovery only (LibreNMS discovers
                    // them too), and optional: a table the agent lacks or a walk that
                    // broke off keeps what is stored.
                    let local = self.local_ports(device, stage.ports.as_ref()).await?;
                    let d = budget
                        .run(discovery::discover(&device.hostname, &session, &local))
                        .await
                        .unwrap_or_else(|msg| {
                            debug!(device = %host, "discovery: {msg}");
                            discovery::Discovered::default()
                        });
                    stage.commit_links = d.links.clone();
                    stage.commit_ipv6 = d.ipv6.clone();
                    discovery = Some(d);
                }
                (DeviceStatus::Up, problems.join("; "), Some(sys), None)
            }
            Err(e) => {
                for m in [
                    Module::Ports,
                    Module::Processors,
                    Module::Mempools,
                    Module::Storage,
                ] {
                    let outcome = if mods.is_enabled(m) {
                        ModuleOutcome::Failed("device not answering SNMP".into())
                    } else {
                        ModuleOutcome::Disabled
                    };
                    timings.push(timing(m, 0.0, outcome));
                }
                (DeviceStatus::Down, String::new(), None, Some(e))
            }
        };
        if let Some(done) = snmp_done {
            // The caller may be gone (its worker shut down): nothing to tell then.
            let _ = done.send(());
        }
        // The ping ran meanwhile; its answer also says why a device that does not answer
        // SNMP is down.
        let (ping, ping_timing) = self.finish_ping(&host, pending_ping, &mut stage).await;
        timings.splice(0..0, [ping_timing, core_timing]);
        let reason = match &snmp_err {
            None => reason,
            Some(e) => {
                let reason = match (e, &ping) {
                    (_, Some(p)) if !p.is_up() => "icmp".to_string(),
                    (PollError::Resolve { .. }, _) => "dns".to_string(),
                    _ => "snmp".to_string(),
                };
                info!(device = %host, error = %e, reason, "device not answering");
                reason
            }
        };

        let seconds = started.elapsed().as_secs_f64();
        let update = DevicePollUpdate {
            sys_name: system.as_ref().and_then(|s| s.sys_name.clone()),
            sys_descr: system.as_ref().and_then(|s| s.sys_descr.clone()),
            sys_object_id: system.as_ref().and_then(|s| s.sys_object_id.clone()),
            sys_contact: system.as_ref().and_then(|s| s.sys_contact.clone()),
            sys_location: system.as_ref().and_then(|s| s.sys_location.clone()),
            os: system.as_ref().map(|s| s.os.clone()),
            hardware: system.as_ref().and_then(|s| s.hardware.clone()),
            version: system.as_ref().and_then(|s| s.version.clone()),
            serial: system.as_ref().and_then(|s| s.serial.clone()),
            uptime: system.as_ref().and_then(|s| s.uptime_secs),
            uptime_source: system
                .as_ref()
                .and_then(|s| s.uptime_source.map(str::to_string)),
            status,
            status_reason: reason.clone(),
            last_polled: polled_at,
            last_polled_timetaken: seconds,
        };
        let discovered = system.is_some() && discovery_due;
        self.stage_timings(device, polled_at, seconds, &timings, &mut stage);
        if status != device.status {
            let (msg, sev) = match status {
                DeviceStatus::Up => ("Device status changed to Up".to_string(), Severity::Ok),
                DeviceStatus::Down => (
                    format!("Device status changed to Down from {reason} check"),
                    Severity::Error,
                ),
            };
            stage.event(device, "system", msg, sev);
        }

        let mut commit = lookout_store::PollCommit::new(update, fence.cloned());
        commit.ports = stage.ports.take();
        commit.ipv4_addresses = stage.ipv4.take();
        commit.ipv6_addresses = stage.commit_ipv6.take();
        commit.processors = stage.processors.take();
        commit.mempools = stage.mempools.take();
        commit.storage = stage.storage.take();
        commit.links = stage.commit_links.take();
        commit.module_perf = std::mem::take(&mut stage.module_perf);
        commit.discovered_at = discovered.then_some(polled_at);
        commit.events = std::mem::take(&mut stage.events);
        // Alerts that follow from this poll are decided inside its own (fenced) commit: a
        // stale poll opens no alert and clears none.
        commit.alerts = self
            .inner
            .alert_hook
            .get()
            .map(|hook| lookout_store::PollAlerts {
                hook: hook.clone(),
                device: commit.update.applied_to(device),
                icmp: ping.as_ref().map(|p| (p.loss_percent(), p.avg_ms)),
            });
        let commit_started = Instant::now();
        let committed = match self
            .inner
            .store
            .commit_poll(device.device_id, &commit)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                // A stale poll (or a store failure) writes no RRD either: the files belong
                // to whoever owns the device now.
                let ports = commit.ports.as_ref().map_or(0, |p| p.polled.len());
                let dropped = (stage.rrd.len() + ports) as u64;
                if matches!(e, StoreError::Fenced { .. }) {
                    self.inner
                        .stale_rrd_dropped
                        .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
                    warn!(device = %host, dropped, error = %e, "stale poll: results and RRD updates discarded");
                }
                return Err(PollError::Store(e));
            }
        };
        // Committed events in the log too; a device going down (or anything else of warning
        // severity and above) at WARN, so that it stands out of the routine lines.
        for e in &commit.events {
            if e.severity.level() >= Severity::Warning.level() {
                warn!(device = %host, kind = %e.kind, "{}", e.message);
            } else {
                info!(device = %host, kind = %e.kind, "{}", e.message);
            }
        }
        match committed.ports {
            Some(sync) => {
                stage.port_rrds(&device.hostname, &self.inner.defs.port, &sync.ports);
                found.ports = sync.ports;
            }
            None if ports_failed || !mods.is_enabled(Module::Ports) => {
                // What the store had stays as it was: show that.
                found.ports = self.inner.store.ports(device.device_id).await?;
            }
            None => {}
        }
        let commit_secs = commit_started.elapsed().as_secs_f64();
        let rrd_started = Instant::now();
        let ts_errors = self.write_staged(&stage.rrd, at).await;
        let rrd_secs = rrd_started.elapsed().as_secs_f64();
        debug!(device = %host, seconds, commit_secs, rrd_secs, ports = found.ports.len(), ?status, "polled");
        Ok(PollReport {
            device_id: device.device_id,
            hostname: host,
            status,
            status_reason: reason,
            discovered,
            system,
            ping,
            ports: found.ports,
            processors: found.processors,
            mempools: found.mempools,
            storage: found.storage,
            discovery,
            timings,
            seconds,
            commit_secs,
            rrd_secs,
            timeseries_errors: ts_errors,
        })
    }

    /// Waits for the availability module's ping (started with the poll) and stages its
    /// `icmp-perf.rrd` update; the module's timing is the ping's own time.
    async fn finish_ping(
        &self,
        host: &str,
        pending: Option<lookout_icmp::PendingPing>,
        stage: &mut Stage,
    ) -> (Option<PingResult>, ModuleTiming) {
        let Some(pending) = pending else {
            return (
                None,
                timing(Module::Availability, 0.0, ModuleOutcome::Disabled),
            );
        };
        let (r, took) = pending.finish().await;
        let secs = took.as_secs_f64();
        let p = match r {
            Ok(p) => p,
            Err(e) => {
                warn!(device = %host, error = %e, "ping failed");
                let failed = ModuleOutcome::Failed(e.to_string());
                return (None, timing(Module::Availability, secs, failed));
            }
        };
        stage.rrd(
            host,
            "icmp-perf.rrd",
            &self.inner.defs.icmp_perf,
            vec![
                p.avg_ms.map_or(Value::Unknown, Value::Gauge),
                Value::Gauge(f64::from(p.transmitted)),
                Value::Gauge(f64::from(p.received)),
                p.min_ms.map_or(Value::Unknown, Value::Gauge),
                p.max_ms.map_or(Value::Unknown, Value::Gauge),
            ],
        );
        (
            Some(p),
            timing(Module::Availability, secs, ModuleOutcome::Ok),
        )
    }

    /// RRD updates staged but dropped because their poll turned out stale (its claim had
    /// passed to a newer poll), since this poller started.
    pub fn stale_rrd_updates_dropped(&self) -> u64 {
        self.inner
            .stale_rrd_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The device's interfaces for discovery: as this poll found them, else as stored.
    async fn local_ports(
        &self,
        device: &Device,
        polled: Option<&lookout_store::PortsStage>,
    ) -> Result<Vec<discovery::LocalPort>, PollError> {
        let names = |n: [&Option<String>; 3]| -> Vec<String> {
            n.into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect()
        };
        Ok(match polled {
            Some(p) => p
                .polled
                .iter()
                .map(|p| discovery::LocalPort {
                    if_index: p.if_index,
                    names: names([&p.if_name, &p.if_descr, &p.if_alias]),
                })
                .collect(),
            None => self
                .inner
                .store
                .ports(device.device_id)
                .await?
                .iter()
                .map(|p| discovery::LocalPort {
                    if_index: p.if_index,
                    names: names([&p.if_name, &p.if_descr, &p.if_alias]),
                })
                .collect(),
        })
    }

    /// The global module set with this device's overrides.
    async fn modules_for(&self, device: &Device) -> ModuleSet {
        match self.inner.store.module_overrides(device.device_id).await {
            Ok(o) => self
                .inner
                .config
                .modules
                .with_overrides(o.iter().map(|(m, on)| (m.as_str(), *on))),
            Err(e) => {
                warn!(device = %device.hostname, error = %e, "cannot read module overrides; using the global set");
                self.inner.config.modules.clone()
            }
        }
    }

    /// Stages per-module times for the UI/API: LibreNMS's `poller-perf-<module>.rrd` and
    /// `poller-perf.rrd` (DS `poller`, seconds) for the modules that ran, and the
    /// `device_module_perf` rows.
    fn stage_timings(
        &self,
        device: &Device,
        polled_at: chrono::DateTime<Utc>,
        total_secs: f64,
        timings: &[ModuleTiming],
        stage: &mut Stage,
    ) {
        for t in timings
            .iter()
            .filter(|t| t.outcome != ModuleOutcome::Disabled)
        {
            stage.rrd(
                &device.hostname,
                &format!("poller-perf-{}.rrd", t.module),
                &self.inner.defs.poller_perf,
                vec![Value::Gauge(t.seconds)],
            );
        }
        stage.rrd(
            &device.hostname,
            "poller-perf.rrd",
            &self.inner.defs.poller_perf,
            vec![Value::Gauge(total_secs)],
        );
        stage.module_perf = timings
            .iter()
            .map(|t| {
                let (status, message) = match &t.outcome {
                    ModuleOutcome::Ok => ("ok", None),
                    ModuleOutcome::Disabled => ("disabled", None),
                    ModuleOutcome::Failed(m) => ("failed", Some(m.clone())),
                };
                lookout_store::ModulePerf {
                    module: t.module.to_string(),
                    seconds: t.seconds,
                    status: status.to_string(),
                    message,
                    polled_at,
                }
            })
            .collect();
    }

    /// Writes staged RRD updates in one call (through rrdcached they share BATCH round
    /// trips); failures are logged and returned, the poll itself still counts.
    async fn write_staged(&self, rows: &[StagedRrd], at: i64) -> Vec<String> {
        let updates: Vec<Update<'_>> = rows
            .iter()
            .map(|r| Update {
                path: &r.path,
                def: &r.def,
                at,
                values: &r.values,
            })
            .collect();
        let results = self.inner.timeseries.update_many(&updates).await;
        let mut errors = Vec::new();
        for (u, r) in updates.iter().zip(results) {
            if let Err(e) = r {
                log_ts_error(u.path, &e);
                errors.push(format!("{}: {e}", u.path));
            }
        }
        errors
    }

    /// processors, mempools and storage. hrStorage is walked once for both mempools and
    /// storage (its time counts for mempools when that runs, else for storage). Only
    /// modules that ran to completion stage their rows (a failed walk keeps the last good
    /// values).
    #[allow(clippy::too_many_arguments)]
    async fn poll_health(
        &self,
        host: &str,
        session: &Session,
        mods: &ModuleSet,
        budget: &Budget,
        found: &mut Found,
        timings: &mut Vec<ModuleTiming>,
        problems: &mut Vec<String>,
        stage: &mut Stage,
    ) {
        if mods.is_enabled(Module::Processors) {
            let t = Instant::now();
            let outcome = match budget
                .run(health::poll_processors(session))
                .await
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(p) => {
                    for x in &p {
                        stage.rrd(
                            host,
                            &x.rrd_file(),
                            &self.inner.defs.processor,
                            vec![x.processor_usage.map_or(Value::Unknown, Value::Gauge)],
                        );
                    }
                    stage.processors = Some(p.iter().map(health::Processor::to_store).collect());
                    found.processors = p;
                    ModuleOutcome::Ok
                }
                Err(e) => {
                    problems.push(format!("processors: {e}"));
                    ModuleOutcome::Failed(e.to_string())
                }
            };
            timings.push(timing(
                Module::Processors,
                t.elapsed().as_secs_f64(),
                outcome,
            ));
        } else {
            timings.push(timing(Module::Processors, 0.0, ModuleOutcome::Disabled));
        }

        let want_mem = mods.is_enabled(Module::Mempools);
        let want_storage = mods.is_enabled(Module::Storage);
        let mut hr: Result<Vec<health::HrStorageRow>, String> = Ok(Vec::new());
        let mut hr_secs = 0.0;
        if want_mem || want_storage {
            let t = Instant::now();
            let walked = budget.run(health::walk_hr_storage(session)).await;
            hr = match walked {
                Err(msg) => Err(msg),
                Ok((rows, err)) => match err {
                    // A walk that broke off would make disks look removed: use none of it.
                    Some(e) => Err(format!(
                        "hrStorage walk stopped after {} rows: {e}",
                        rows.len()
                    )),
                    None => Ok(rows),
                },
            };
            hr_secs = t.elapsed().as_secs_f64();
        }

        if want_mem {
            let t = Instant::now();
            let outcome = match &hr {
                Err(msg) => {
                    problems.push(format!("mempools: {msg}"));
                    ModuleOutcome::Failed(msg.clone())
                }
                Ok(rows) => match budget
                    .run(health::poll_mempools(session, rows))
                    .await
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    Ok(m) => {
                        for x in &m {
                            stage.rrd(
                                host,
                                &x.rrd_file(),
                                &self.inner.defs.used_free,
                                vec![
                                    Value::Gauge(x.mempool_used as f64),
                                    Value::Gauge(x.mempool_free as f64),
                                ],
                            );
                        }
                        stage.mempools = Some(m.iter().map(health::Mempool::to_store).collect());
                        found.mempools = m;
                        ModuleOutcome::Ok
                    }
                    Err(e) => {
                        problems.push(format!("mempools: {e}"));
                        ModuleOutcome::Failed(e.to_string())
                    }
                },
            };
            let secs = t.elapsed().as_secs_f64() + std::mem::take(&mut hr_secs);
            timings.push(timing(Module::Mempools, secs, outcome));
        } else {
            timings.push(timing(Module::Mempools, 0.0, ModuleOutcome::Disabled));
        }

        if want_storage {
            let t = Instant::now();
            let outcome = match &hr {
                Err(msg) => {
                    problems.push(format!("storage: {msg}"));
                    ModuleOutcome::Failed(msg.clone())
                }
                Ok(rows) => {
                    let st = health::storage_from(rows);
                    for x in &st {
                        stage.rrd(
                            host,
                            &x.rrd_file(),
                            &self.inner.defs.used_free,
                            vec![
                                Value::Gauge(x.storage_used as f64),
                                Value::Gauge(x.storage_free as f64),
                            ],
                        );
                    }
                    stage.storage = Some(st.iter().map(health::Storage::to_store).collect());
                    found.storage = st;
                    ModuleOutcome::Ok
                }
            };
            timings.push(timing(
                Module::Storage,
                t.elapsed().as_secs_f64() + hr_secs,
                outcome,
            ));
        } else {
            timings.push(timing(Module::Storage, 0.0, ModuleOutcome::Disabled));
        }
    }

    /// The ports module: walks and stages the ports (and their IPv4 addresses) for the
    /// commit. `Ok(Err(message))` is a walk that broke off (timeout mid-walk,
    /// non-increasing OID, error status): nothing is staged, because a partial table would
    /// read as removed interfaces and missing counters.
    async fn poll_ports(
        &self,
        device: &Device,
        session: &Session,
        polled_at: chrono::DateTime<Utc>,
        rebooted: bool,
        budget: &Budget,
        stage: &mut Stage,
    ) -> Result<Result<(), String>, PollError> {
        let walks = budget.run(walk_ports(&device.hostname, session)).await;
        let (if_table, if_x_table) = match walks {
            Ok(Ok(w)) => w,
            Ok(Err(msg)) | Err(msg) => return Ok(Err(msg)),
        };
        let polled = ports::ports_from_walks(&if_table, &if_x_table);
        // Renumbering is decided on the stored ports read now; the commit applies it in
        // its transaction (a stale poll's decision is discarded with the rest).
        // Only an interface with an ifIndex never stored can be a renumbered one; the
        // whole rows are read only then (a steady poll saves reading every port row).
        let known: std::collections::HashSet<i64> = self
            .inner
            .store
            .port_if_indexes(device.device_id)
            .await?
            .into_iter()
            .collect();
        let before = if polled.iter().all(|p| known.contains(&p.if_index)) {
            Vec::new()
        } else {
            self.inner.store.ports(device.device_id).await?
        };
        let moves = ports::renumbered(&before, &polled);
        for (port_id, new_index) in &moves {
            if let Some(p) = before.iter().find(|p| p.port_id == *port_id) {
                stage.event(
                    device,
                    "interface",
                    format!(
                        "Interface {} moved from ifIndex {} to {new_index}",
                        p.label(),
                        p.if_index
                    ),
                    Severity::Info,
                );
            }
        }
        stage.ports = Some(lookout_store::PortsStage {
            polled,
            polled_at,
            // Counters restarted with the agent: no rate from the old readings.
            reset_counters: rebooted,
            moves,
            events: Some(ports::port_events),
        });
        // IPv4 addresses of the interfaces (IP-MIB ipAddrTable). Optional: an agent
        // without the table, or a walk that broke off, keeps the stored addresses.
        match budget
            .run(session.walk_partial(&lookout_snmp::Oid::new(&ports::IP_ADDR_ENTRY)))
            .await
        {
            Ok((walk, None)) => stage.ipv4 = Some(ports::ipv4_addresses_from(&walk)),
            Ok((_, Some(e))) => {
                debug!(device = %device.hostname, error = %e, "ipAddrTable walk failed")
            }
            Err(msg) => debug!(device = %device.hostname, "ipAddrTable: {msg}"),
        }
        Ok(Ok(()))
    }
}

/// ifTable and ifXTable. `Err` is a walk that broke off.
async fn walk_ports(
    host: &str,
    session: &Session,
) -> Result<(Vec<lookout_snmp::VarBind>, Vec<lookout_snmp::VarBind>), String> {
    let (if_table, err) = session.walk_partial(&ports::if_table()).await;
    if let Some(e) = err {
        return Err(format!(
            "ifTable walk stopped after {} varbinds: {e}",
            if_table.len()
        ));
    }
    // ifXTable is optional (v1-only or very old agents lack it), but an agent that
    // stops answering in the middle of it is a broken poll, not a missing table.
    let (if_x_table, err) = session.walk_partial(&ports::if_x_table()).await;
    let if_x_table = match err {
        None => if_x_table,
        Some(e) if if_x_table.is_empty() && !e.is_timeout() => {
            debug!(device = %host, error = %e, "no ifXTable");
            Vec::new()
        }
        Some(e) => {
            return Err(format!(
                "ifXTable walk stopped after {} varbinds: {e}",
                if_x_table.len()
            ))
        }
    };
    Ok((if_table, if_x_table))
}

/// The time a poll's SNMP modules may take together: a slow agent fails the modules that
/// do not fit (with a clear message) instead of holding the worker past the next poll.
struct Budget {
    deadline: tokio::time::Instant,
    secs: f64,
}

impl Budget {
    async fn run<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, String> {
        tokio::time::timeout_at(self.deadline, f)
            .await
            .map_err(|_| format!("poll took longer than its {} s budget", self.secs))
    }
}

/// What the SNMP modules found in one poll.
#[derive(Default)]
struct Found {
    ports: Vec<Port>,
    processors: Vec<Processor>,
    mempools: Vec<Mempool>,
    storage: Vec<Storage>,
}

/// What a poll will write: store rows and events for the one commit, RRD updates for
/// after it.
#[derive(Default)]
struct Stage {
    rrd: Vec<StagedRrd>,
    events: Vec<lookout_store::NewEvent>,
    ports: Option<lookout_store::PortsStage>,
    ipv4: Option<Vec<lookout_store::Ipv4AddressPoll>>,
    commit_ipv6: Option<Vec<lookout_store::Ipv6AddressPoll>>,
    processors: Option<Vec<lookout_store::ProcessorPoll>>,
    mempools: Option<Vec<lookout_store::MempoolPoll>>,
    storage: Option<Vec<lookout_store::StoragePoll>>,
    commit_links: Option<Vec<lookout_store::LinkPoll>>,
    module_perf: Vec<lookout_store::ModulePerf>,
}

struct StagedRrd {
    path: String,
    def: Arc<RrdDef>,
    values: Vec<Value>,
}

impl Stage {
    fn rrd(&mut self, host: &str, file: &str, def: &Arc<RrdDef>, values: Vec<Value>) {
        self.rrd.push(StagedRrd {
            path: rrd_path(host, file),
            def: Arc::clone(def),
            values,
        });
    }

    fn event(&mut self, device: &Device, kind: &str, message: String, severity: Severity) {
        debug!(device = %device.hostname, kind, "{message} (with the poll's commit)");
        self.events
            .push(lookout_store::NewEvent::new(kind, message, severity));
    }

    /// `port-id<N>.rrd` of the committed ports (ids known only after the commit).
    fn port_rrds(&mut self, host: &str, def: &Arc<RrdDef>, ports: &[Port]) {
        let v = |x: Option<u64>| x.map_or(Value::Unknown, Value::Counter);
        for p in ports {
            let c = &p.counters;
            // Values in `defs::PORT_DS` order.
            let values = vec![
                v(c.in_octets),
                v(c.out_octets),
                v(c.in_errors),
                v(c.out_errors),
                v(c.in_ucast_pkts),
                v(c.out_ucast_pkts),
                v(c.in_nucast_pkts),
                v(c.out_nucast_pkts),
                v(c.in_discards),
                v(c.out_discards),
                v(c.in_unknown_protos),
                v(c.in_broadcast_pkts),
                v(c.out_broadcast_pkts),
                v(c.in_multicast_pkts),
                v(c.out_multicast_pkts),
            ];
            self.rrd(host, &format!("port-id{}.rrd", p.port_id), def, values);
        }
    }
}

fn timing(m: Module, seconds: f64, outcome: ModuleOutcome) -> ModuleTiming {
    ModuleTiming {
        module: m.name(),
        seconds,
        outcome,
    }
}

fn log_ts_error(path: &str, e: &TimeSeriesError) {
    match e {
        // Said once, loudly, by the time series when it started refusing new files.
        TimeSeriesError::DiskFloor { .. } => debug!(path, error = %e, "rrd file not created"),
        _ => warn!(path, error = %e, "time-series write failed"),
    }
}

/// `<hostname>/<file>`, the LibreNMS layout under RRD_DIR. Hostnames were validated when
/// the device was added; an IPv6 literal's `:` is kept as LibreNMS does.
pub fn rrd_path(hostname: &str, file: &str) -> String {
    let host = hostname.trim_start_matches('[').trim_end_matches(']');
    format!("{host}/{file}")
}

async fn resolve(hostname: &str, port: u16) -> Result<SocketAddr, PollError> {
    let bare = hostname
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hostname);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs =
        tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| PollError::Resolve {
                host: hostname.to_string(),
                message: e.to_string(),
            })?;
    addrs.next().ok_or_else(|| PollError::Resolve {
        host: hostname.to_string(),
        message: "no address".to_string(),
    })
}

/// `3d 4h 5m` style duration for event messages.
pub fn human_secs(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn file_sizes_match_the_documented_48_port_device() {
        // docs/timeseries.md: a 48-port device is 180,249,432 bytes at 30 s and 60 s and
        // 124,320,168 at 300 s (48 port files, icmp-perf, uptime, poller-perf and 6 module files).
        for (step, device) in [(30, 180_249_432u64), (60, 180_249_432), (300, 124_320_168)] {
            let sizes = rrd_file_sizes(step, None);
            assert_eq!(sizes.projected(1, 48, 0, 0), device, "{step}");
        }
        let small = lookout_timeseries::defs::parse_rras("RRA:AVERAGE:0.5:1:10").unwrap();
        assert!(rrd_file_sizes(60, Some(&small)).per_port < 10_000);
    }
}
