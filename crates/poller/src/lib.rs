//! Lookout poller: runs the polling modules for one device and writes what they found.
//!
//! Modules (each timed; issue 6 makes them individually switchable):
//! - `availability`: ICMP loss and RTT (fping) → `icmp-perf.rrd`;
//! - `core`: system group (sysDescr, sysObjectID, sysUpTime, sysName, ...), OS detection,
//!   reboot detection → `uptime.rrd`, `devices` row;
//! - `ports`: IF-MIB ifTable + ifXTable → `ports` rows with rates, `port-id<N>.rrd`.
//!
//! The poller has no sockets of its own: SNMP goes through `lookout-snmp`, ICMP through
//! `lookout-icmp`, results through `lookout-store` and `lookout-timeseries`.

pub mod os;
pub mod ports;
mod system;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use lookout_core::{Device, DevicePollUpdate, DeviceStatus, Port, SnmpConfig};
use lookout_icmp::{PingConfig, PingResult};
use lookout_snmp::{Session, SnmpClient, SnmpError};
use lookout_store::{Severity, Store, StoreError};
use lookout_timeseries::{defs, TimeSeries, TimeSeriesError, Update, Value};
use tracing::{debug, info, warn};

pub use system::SystemInfo;

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

/// Time one module took, for the UI/API's "where does poll time go".
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleTiming {
    pub module: &'static str,
    pub seconds: f64,
}

/// What one poll did.
#[derive(Clone, Debug)]
pub struct PollReport {
    pub device_id: i64,
    pub hostname: String,
    pub status: DeviceStatus,
    pub status_reason: String,
    pub system: Option<SystemInfo>,
    pub ping: Option<PingResult>,
    pub ports: Vec<Port>,
    pub timings: Vec<ModuleTiming>,
    pub seconds: f64,
    /// RRD writes that failed (logged; the poll itself still counts).
    pub timeseries_errors: Vec<String>,
}

/// Settings of the poller.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// RRD step and expected seconds between polls.
    pub step_secs: u64,
    pub ping: PingConfig,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            step_secs: 300,
            ping: PingConfig::default(),
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
    config: PollerConfig,
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
                config,
            }),
        })
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
    /// successful poll that marks it down.
    pub async fn poll(&self, device: &Device) -> Result<PollReport, PollError> {
        let started = Instant::now();
        let polled_at = Utc::now();
        let at = polled_at.timestamp();
        let step = self.inner.config.step_secs;
        let host = device.hostname.clone();
        let mut timings = Vec::new();
        let mut ts_errors = Vec::new();

        // availability and the SNMP system group run side by side: fping takes
        // count * interval, SNMP answers in milliseconds.
        let ping_fut = async {
            let t = Instant::now();
            let r = lookout_icmp::ping(&self.inner.config.ping, &host).await;
            (r, t.elapsed().as_secs_f64())
        };
        let snmp_fut = async {
            let t = Instant::now();
            let r = match self.session(&host, &device.snmp).await {
                Ok(s) => system::poll_system(&s)
                    .await
                    .map(|sys| (s, sys))
                    .map_err(|source| PollError::Snmp {
                        host: host.clone(),
                        source,
                    }),
                Err(e) => Err(e),
            };
            (r, t.elapsed().as_secs_f64())
        };
        let ((ping, ping_secs), (snmp, core_secs)) = tokio::join!(ping_fut, snmp_fut);
        timings.push(ModuleTiming {
            module: "availability",
            seconds: ping_secs,
        });
        timings.push(ModuleTiming {
            module: "core",
            seconds: core_secs,
        });

        let ping = match ping {
            Ok(p) => Some(p),
            Err(e) => {
                warn!(device = %host, error = %e, "ping failed");
                None
            }
        };
        if let Some(p) = &ping {
            let values = [
                p.avg_ms.map_or(Value::Unknown, Value::Gauge),
                Value::Gauge(f64::from(p.transmitted)),
                Value::Gauge(f64::from(p.received)),
                p.min_ms.map_or(Value::Unknown, Value::Gauge),
                p.max_ms.map_or(Value::Unknown, Value::Gauge),
            ];
            self.write_rrd(
                &host,
                "icmp-perf.rrd",
                &defs::icmp_perf(step),
                at,
                &values,
                &mut ts_errors,
            )
            .await;
        }

        let (status, reason, system, ports) = match snmp {
            Ok((session, sys)) => {
                let t = Instant::now();
                let ports = self
                    .poll_ports(device, &session, polled_at, &mut ts_errors)
                    .await;
                timings.push(ModuleTiming {
                    module: "ports",
                    seconds: t.elapsed().as_secs_f64(),
                });
                if let Some(up) = sys.uptime_secs {
                    self.write_rrd(
                        &host,
                        "uptime.rrd",
                        &defs::uptime(step),
                        at,
                        &[Value::Gauge(up as f64)],
                        &mut ts_errors,
                    )
                    .await;
                    if let Some(prev) = device.uptime {
                        if up < prev {
                            self.event(
                                device,
                                "reboot",
                                &format!("Device rebooted after {}", human_secs(prev)),
                                Severity::Warning,
                            )
                            .await;
                        }
                    }
                }
                match ports {
                    Ok(p) => (DeviceStatus::Up, String::new(), Some(sys), p),
                    Err(e) => {
                        warn!(device = %host, error = %e, "ports module failed");
                        (DeviceStatus::Up, String::new(), Some(sys), Vec::new())
                    }
                }
            }
            Err(e) => {
                let reason = match (&e, &ping) {
                    (_, Some(p)) if !p.is_up() => "icmp".to_string(),
                    (PollError::Resolve { .. }, _) => "dns".to_string(),
                    _ => "snmp".to_string(),
                };
                info!(device = %host, error = %e, reason, "device not answering");
                (DeviceStatus::Down, reason, None, Vec::new())
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
            hardware: None,
            version: None,
            serial: None,
            uptime: system.as_ref().and_then(|s| s.uptime_secs),
            status,
            status_reason: reason.clone(),
            last_polled: polled_at,
            last_polled_timetaken: seconds,
        };
        self.inner
            .store
            .update_device_poll(device.device_id, &update)
            .await?;
        if status != device.status {
            let (msg, sev) = match status {
                DeviceStatus::Up => ("Device status changed to Up".to_string(), Severity::Ok),
                DeviceStatus::Down => (
                    format!("Device status changed to Down from {reason} check"),
                    Severity::Error,
                ),
            };
            self.event(device, "system", &msg, sev).await;
        }
        debug!(device = %host, seconds, ports = ports.len(), ?status, "polled");
        Ok(PollReport {
            device_id: device.device_id,
            hostname: host,
            status,
            status_reason: reason,
            system,
            ping,
            ports,
            timings,
            seconds,
            timeseries_errors: ts_errors,
        })
    }

    async fn poll_ports(
        &self,
        device: &Device,
        session: &Session,
        polled_at: chrono::DateTime<Utc>,
        ts_errors: &mut Vec<String>,
    ) -> Result<Vec<Port>, PollError> {
        let snmp_err = |source| PollError::Snmp {
            host: device.hostname.clone(),
            source,
        };
        let if_table = session.walk(&ports::if_table()).await.map_err(snmp_err)?;
        // ifXTable is optional (v1-only or very old agents lack it).
        let if_x_table = match session.walk(&ports::if_x_table()).await {
            Ok(v) => v,
            Err(e) => {
                debug!(device = %device.hostname, error = %e, "no ifXTable");
                Vec::new()
            }
        };
        let polled = ports::ports_from_walks(&if_table, &if_x_table);
        let before = self.inner.store.ports(device.device_id).await?;
        let sync = self
            .inner
            .store
            .sync_ports(device.device_id, &polled, polled_at)
            .await?;
        for id in &sync.added {
            if let Some(p) = sync.ports.iter().find(|p| p.port_id == *id) {
                self.event(
                    device,
                    "interface",
                    &format!("Interface added: {}", p.label()),
                    Severity::Info,
                )
                .await;
            }
        }
        for id in &sync.removed {
            if let Some(p) = before.iter().find(|p| p.port_id == *id) {
                self.event(
                    device,
                    "interface",
                    &format!("Interface removed: {}", p.label()),
                    Severity::Notice,
                )
                .await;
            }
        }
        for p in &sync.ports {
            if let Some(old) = before.iter().find(|o| o.port_id == p.port_id) {
                if old.if_oper_status.is_some() && old.if_oper_status != p.if_oper_status {
                    let sev = if p.if_oper_status.as_deref() == Some("up") {
                        Severity::Ok
                    } else {
                        Severity::Warning
                    };
                    let msg = format!(
                        "Interface {} operational status changed: {} -> {}",
                        p.label(),
                        old.if_oper_status.as_deref().unwrap_or("?"),
                        p.if_oper_status.as_deref().unwrap_or("?")
                    );
                    self.event(device, "interface", &msg, sev).await;
                }
            }
        }
        let def = defs::port(self.inner.config.step_secs);
        let at = polled_at.timestamp();
        let v = |x: Option<u64>| x.map_or(Value::Unknown, Value::Counter);
        // Values in `defs::PORT_DS` order.
        let rows: Vec<(String, [Value; 15])> = sync
            .ports
            .iter()
            .map(|p| {
                let c = &p.counters;
                (
                    rrd_path(&device.hostname, &format!("port-id{}.rrd", p.port_id)),
                    [
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
                    ],
                )
            })
            .collect();
        // One call for all ports: through rrdcached they share BATCH round trips.
        let updates: Vec<Update<'_>> = rows
            .iter()
            .map(|(path, values)| Update {
                path,
                def: &def,
                at,
                values,
            })
            .collect();
        let results = self.inner.timeseries.update_many(&updates).await;
        for (u, r) in updates.iter().zip(results) {
            if let Err(e) = r {
                log_ts_error(u.path, &e);
                ts_errors.push(format!("{}: {e}", u.path));
            }
        }
        Ok(sync.ports)
    }

    async fn write_rrd(
        &self,
        host: &str,
        file: &str,
        def: &lookout_timeseries::RrdDef,
        at: i64,
        values: &[Value],
        errors: &mut Vec<String>,
    ) {
        let path = rrd_path(host, file);
        if let Err(e) = self.inner.timeseries.update(&path, def, at, values).await {
            log_ts_error(&path, &e);
            errors.push(format!("{path}: {e}"));
        }
    }

    async fn event(&self, device: &Device, kind: &str, message: &str, severity: Severity) {
        info!(device = %device.hostname, kind, "{message}");
        if let Err(e) = self
            .inner
            .store
            .log_event(Some(device.device_id), kind, message, severity, None)
            .await
        {
            warn!(device = %device.hostname, error = %e, "cannot write event log");
        }
    }
}

fn log_ts_error(path: &str, e: &TimeSeriesError) {
    warn!(path, error = %e, "time-series write failed");
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
