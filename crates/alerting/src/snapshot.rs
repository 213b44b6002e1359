//! A device's stored state as rule fields: the field catalog (one table per entity kind:
//! name, type, unit, getter) and [`Snapshot`], which borrows the stored rows so that a rule
//! reads a field through a function pointer, without copying or allocating.
//!
//! Adding an entity kind that a later poller module stores (sensors, BGP peers): add a
//! [`Kind`] variant, its table of [`FieldDef`]s, a slice in [`Snapshot`] and the arms in
//! [`Kind`]'s `match`es (marked `// kinds:`); adding a field is adding a row to a table.
//!
//! Values: numbers are `f64`, times are Unix seconds, rates per second, strings borrowed.

use chrono::{DateTime, Utc};
use lookout_core::{Device, Port};
use lookout_store::{Mempool, Processor, Storage};

/// The value of one field of one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val<'a> {
    Null,
    Num(f64),
    Str(&'a str),
    Bool(bool),
}

impl Val<'_> {
    /// The value for a template or an alert's details.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Num(n) => json_num(n),
            Val::Str(s) => serde_json::Value::from(s),
            Val::Bool(b) => serde_json::Value::from(b),
        }
    }
}

/// Integral numbers as JSON integers (`"ifIndex": 3`, not `3.0`).
fn json_num(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// The type of a field (every field may also be null: not known, not polled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Num,
    Str,
    Bool,
}

impl Ty {
    pub fn as_str(self) -> &'static str {
        match self {
            Ty::Num => "number",
            Ty::Str => "string",
            Ty::Bool => "boolean",
        }
    }
}

/// What a rule field belongs to. `Device` and `Icmp` have one row per device; the others
/// are entities, many per device, and a rule that names one is evaluated per entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Device,
    Icmp,
    Ports,
    Processors,
    Mempools,
    Storage,
}

impl Kind {
    // kinds:
    pub const ALL: [Kind; 6] = [
        Kind::Device,
        Kind::Icmp,
        Kind::Ports,
        Kind::Processors,
        Kind::Mempools,
        Kind::Storage,
    ];

    /// The name rules use (`ports.ifOperStatus`), also the alert key's `entity_type`.
    pub fn as_str(self) -> &'static str {
        // kinds:
        match self {
            Kind::Device => "device",
            Kind::Icmp => "icmp",
            Kind::Ports => "ports",
            Kind::Processors => "processors",
            Kind::Mempools => "mempools",
            Kind::Storage => "storage",
        }
    }

    /// The kind a rule names, also by LibreNMS's table names (`devices`, `device_perf`).
    pub fn parse(name: &str) -> Option<Kind> {
        let n = name.to_ascii_lowercase();
        // kinds:
        Some(match n.as_str() {
            "device" | "devices" => Kind::Device,
            "icmp" | "device_perf" => Kind::Icmp,
            "ports" | "port" => Kind::Ports,
            "processors" | "processor" => Kind::Processors,
            "mempools" | "mempool" => Kind::Mempools,
            "storage" => Kind::Storage,
            _ => return None,
        })
    }

    /// True for kinds with many rows per device (rules over them match per entity).
    pub fn is_entity(self) -> bool {
        !matches!(self, Kind::Device | Kind::Icmp)
    }

    /// Name, type and description of every field of this kind, in catalog order.
    pub fn fields(self) -> Vec<FieldInfo> {
        (0..self.field_count())
            .filter_map(|i| self.field(i))
            .collect()
    }

    fn field_count(self) -> usize {
        // kinds:
        match self {
            Kind::Device => DEVICE_FIELDS.len(),
            Kind::Icmp => ICMP_FIELDS.len(),
            Kind::Ports => PORT_FIELDS.len(),
            Kind::Processors => PROCESSOR_FIELDS.len(),
            Kind::Mempools => MEMPOOL_FIELDS.len(),
            Kind::Storage => STORAGE_FIELDS.len(),
        }
    }

    /// Field `idx` of this kind (no allocation: matches use it for their details).
    pub fn field(self, idx: usize) -> Option<FieldInfo> {
        fn info<T>(defs: &[FieldDef<T>], idx: usize) -> Option<FieldInfo> {
            defs.get(idx).map(|d| FieldInfo {
                name: d.name,
                aliases: d.aliases,
                ty: d.ty,
                doc: d.doc,
                clock: d.clock,
            })
        }
        // kinds:
        match self {
            Kind::Device => info(DEVICE_FIELDS, idx),
            Kind::Icmp => info(ICMP_FIELDS, idx),
            Kind::Ports => info(PORT_FIELDS, idx),
            Kind::Processors => info(PROCESSOR_FIELDS, idx),
            Kind::Mempools => info(MEMPOOL_FIELDS, idx),
            Kind::Storage => info(STORAGE_FIELDS, idx),
        }
    }

    /// The index of a field (by name or alias, ASCII case-insensitive).
    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| {
            f.name.eq_ignore_ascii_case(name)
                || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }
}

/// A catalog row, without its getter.
#[derive(Clone, Copy, Debug)]
pub struct FieldInfo {
    pub name: &'static str,
    /// Other names accepted for it (LibreNMS column names).
    pub aliases: &'static [&'static str],
    pub ty: Ty,
    pub doc: &'static str,
    /// Depends on the snapshot's `now`: rules using it are time-based (the master
    /// evaluates them on its pass as well as after each poll).
    pub clock: bool,
}

/// Values a getter may need besides its row.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Unix seconds of the evaluation.
    pub now: f64,
    /// The device's poll interval in seconds.
    pub interval_secs: f64,
}

/// One field of entity type `T`.
pub struct FieldDef<T> {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub ty: Ty,
    pub doc: &'static str,
    pub clock: bool,
    pub get: for<'a> fn(&'a T, &Clock) -> Val<'a>,
}

const fn f<T>(
    name: &'static str,
    ty: Ty,
    doc: &'static str,
    get: for<'a> fn(&'a T, &Clock) -> Val<'a>,
) -> FieldDef<T> {
    FieldDef {
        name,
        aliases: &[],
        ty,
        doc,
        clock: false,
        get,
    }
}

impl<T> FieldDef<T> {
    const fn alias(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
    const fn clock(mut self) -> Self {
        self.clock = true;
        self
    }
}

fn s(v: &Option<String>) -> Val<'_> {
    v.as_deref().map_or(Val::Null, Val::Str)
}
fn n<T: Into<f64> + Copy>(v: Option<T>) -> Val<'static> {
    v.map_or(Val::Null, |v| Val::Num(v.into()))
}
fn nu(v: Option<u64>) -> Val<'static> {
    v.map_or(Val::Null, |v| Val::Num(v as f64))
}
fn ni(v: Option<i64>) -> Val<'static> {
    v.map_or(Val::Null, |v| Val::Num(v as f64))
}
fn ts(v: Option<DateTime<Utc>>) -> Val<'static> {
    v.map_or(Val::Null, |t| Val::Num(unix(t)))
}

/// Unix seconds with sub-second precision.
pub fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// Seconds the device has not been polled: since its last poll, or since it was added
/// when it never was (a device that was never polled is as overdue as one that stopped).
fn last_polled_age(d: &Device, c: &Clock) -> f64 {
    let base = d.last_polled.unwrap_or(d.inserted);
    (c.now - unix(base)).max(0.0)
}

/// `device.*`.
pub static DEVICE_FIELDS: &[FieldDef<Device>] = &[
    f::<Device>("device_id", Ty::Num, "id in `devices`", |d, _| {
        Val::Num(d.device_id as f64)
    }),
    f::<Device>(
        "hostname",
        Ty::Str,
        "name or address used to reach it",
        |d, _| Val::Str(&d.hostname),
    ),
    f::<Device>("sysName", Ty::Str, "SNMP sysName", |d, _| s(&d.sys_name)),
    f::<Device>("sysDescr", Ty::Str, "SNMP sysDescr", |d, _| s(&d.sys_descr)),
    f::<Device>(
        "sysObjectID",
        Ty::Str,
        "SNMP sysObjectID (dotted)",
        |d, _| s(&d.sys_object_id),
    ),
    f::<Device>("sysContact", Ty::Str, "SNMP sysContact", |d, _| {
        s(&d.sys_contact)
    }),
    f::<Device>("location", Ty::Str, "SNMP sysLocation", |d, _| {
        s(&d.sys_location)
    })
    .alias(&["sysLocation"]),
    f::<Device>(
        "os",
        Ty::Str,
        "LibreNMS OS name (`linux`, `ios`, ...)",
        |d, _| Val::Str(&d.os),
    ),
    f::<Device>("hardware", Ty::Str, "hardware model", |d, _| s(&d.hardware)),
    f::<Device>("version", Ty::Str, "OS version", |d, _| s(&d.version)),
    f::<Device>("serial", Ty::Str, "serial number", |d, _| s(&d.serial)),
    f::<Device>("status", Ty::Str, "`up` or `down`", |d, _| {
        Val::Str(if d.status.is_up() { "up" } else { "down" })
    }),
    f::<Device>(
        "status_reason",
        Ty::Str,
        "why it is down: `snmp`, `icmp` or a message; empty when up",
        |d, _| Val::Str(&d.status_reason),
    ),
    f::<Device>(
        "uptime",
        Ty::Num,
        "seconds since the agent restarted",
        |d, _| ni(d.uptime),
    ),
    f::<Device>(
        "poll_duration",
        Ty::Num,
        "seconds the last poll took",
        |d, _| n(d.last_polled_timetaken),
    )
    .alias(&["last_polled_timetaken"]),
    f::<Device>(
        "last_polled",
        Ty::Num,
        "Unix time of the last poll",
        |d, _| ts(d.last_polled),
    ),
    f::<Device>(
        "last_polled_age",
        Ty::Num,
        "seconds since the last poll (since it was added when never polled)",
        |d, c| Val::Num(last_polled_age(d, c)),
    )
    .clock(),
    f::<Device>(
        "last_discovered",
        Ty::Num,
        "Unix time of the last discovery",
        |d, _| ts(d.last_discovered),
    ),
    f::<Device>(
        "poll_interval",
        Ty::Num,
        "the poll interval, seconds",
        |_, c| Val::Num(c.interval_secs),
    ),
    f::<Device>("poller_group", Ty::Num, "poller group number", |d, _| {
        Val::Num(f64::from(d.poller_group))
    })
    .alias(&["group"]),
    f::<Device>("disabled", Ty::Bool, "not polled nor alerted", |d, _| {
        Val::Bool(d.disabled)
    }),
];

/// ICMP facts of the device's last poll (the availability module).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IcmpFacts {
    /// Percent of echo requests unanswered.
    pub loss_pct: f64,
    /// Average round-trip time of the answered ones; `None` when none was.
    pub avg_ms: Option<f64>,
}

impl From<(f64, Option<f64>)> for IcmpFacts {
    /// The store's `(loss %, average RTT ms)`.
    fn from((loss_pct, avg_ms): (f64, Option<f64>)) -> Self {
        IcmpFacts { loss_pct, avg_ms }
    }
}

/// `icmp.*` (null when the availability module did not run).
pub static ICMP_FIELDS: &[FieldDef<IcmpFacts>] = &[
    f::<IcmpFacts>("loss_pct", Ty::Num, "percent of pings lost", |i, _| {
        Val::Num(i.loss_pct)
    })
    .alias(&["loss"]),
    f::<IcmpFacts>("avg_ms", Ty::Num, "average RTT, milliseconds", |i, _| {
        n(i.avg_ms)
    })
    .alias(&["avg"]),
];

fn bits(bytes: Option<f64>) -> Option<f64> {
    bytes.map(|b| b * 8.0)
}

/// Bit rate over speed, percent; null without a speed (or a zero one) or a rate.
fn usage(bytes: Option<f64>, speed: Option<u64>) -> Option<f64> {
    match (bits(bytes), speed) {
        (Some(b), Some(s)) if s > 0 => Some(b / s as f64 * 100.0),
        _ => None,
    }
}

fn sum(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

fn max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `ports.*`: LibreNMS's column names, plus bit rates and utilisation.
pub static PORT_FIELDS: &[FieldDef<Port>] = &[
    f::<Port>("port_id", Ty::Num, "id in `ports`", |p, _| {
        Val::Num(p.port_id as f64)
    }),
    f::<Port>("ifIndex", Ty::Num, "IF-MIB ifIndex", |p, _| {
        Val::Num(p.if_index as f64)
    }),
    f::<Port>("ifName", Ty::Str, "ifName", |p, _| s(&p.if_name)),
    f::<Port>("ifDescr", Ty::Str, "ifDescr", |p, _| s(&p.if_descr)),
    f::<Port>(
        "ifAlias",
        Ty::Str,
        "ifAlias (the description operators set)",
        |p, _| s(&p.if_alias),
    ),
    f::<Port>(
        "ifType",
        Ty::Str,
        "IANAifType name (`ethernetCsmacd`)",
        |p, _| s(&p.if_type),
    ),
    f::<Port>("ifMtu", Ty::Num, "MTU, bytes", |p, _| ni(p.if_mtu)),
    f::<Port>("ifSpeed", Ty::Num, "speed, bits per second", |p, _| {
        nu(p.if_speed)
    }),
    f::<Port>(
        "ifPhysAddress",
        Ty::Str,
        "MAC address, lowercase hex",
        |p, _| s(&p.if_phys_address),
    ),
    f::<Port>(
        "ifAdminStatus",
        Ty::Str,
        "`up`, `down`, `testing`",
        |p, _| s(&p.if_admin_status),
    ),
    f::<Port>(
        "ifOperStatus",
        Ty::Str,
        "`up`, `down`, `testing`, `unknown`, `dormant`, `notPresent`, `lowerLayerDown`",
        |p, _| s(&p.if_oper_status),
    ),
    f::<Port>("ifInOctets_rate", Ty::Num, "bytes per second in", |p, _| {
        n(p.in_octets_rate)
    }),
    f::<Port>(
        "ifOutOctets_rate",
        Ty::Num,
        "bytes per second out",
        |p, _| n(p.out_octets_rate),
    ),
    f::<Port>("in_bps", Ty::Num, "bits per second in", |p, _| {
        n(bits(p.in_octets_rate))
    }),
    f::<Port>("out_bps", Ty::Num, "bits per second out", |p, _| {
        n(bits(p.out_octets_rate))
    }),
    f::<Port>(
        "in_usage_perc",
        Ty::Num,
        "in bit rate / ifSpeed, percent",
        |p, _| n(usage(p.in_octets_rate, p.if_speed)),
    ),
    f::<Port>(
        "out_usage_perc",
        Ty::Num,
        "out bit rate / ifSpeed, percent",
        |p, _| n(usage(p.out_octets_rate, p.if_speed)),
    ),
    f::<Port>(
        "usage_perc",
        Ty::Num,
        "the larger of in_usage_perc and out_usage_perc",
        |p, _| {
            n(max(
                usage(p.in_octets_rate, p.if_speed),
                usage(p.out_octets_rate, p.if_speed),
            ))
        },
    ),
    f::<Port>(
        "ifInUcastPkts_rate",
        Ty::Num,
        "unicast packets per second in",
        |p, _| n(p.in_ucast_pkts_rate),
    ),
    f::<Port>(
        "ifOutUcastPkts_rate",
        Ty::Num,
        "unicast packets per second out",
        |p, _| n(p.out_ucast_pkts_rate),
    ),
    f::<Port>(
        "ifInErrors_rate",
        Ty::Num,
        "errors per second in",
        |p, _| n(p.in_errors_rate),
    ),
    f::<Port>(
        "ifOutErrors_rate",
        Ty::Num,
        "errors per second out",
        |p, _| n(p.out_errors_rate),
    ),
    f::<Port>(
        "errors_rate",
        Ty::Num,
        "errors per second, in + out",
        |p, _| n(sum(p.in_errors_rate, p.out_errors_rate)),
    ),
    f::<Port>(
        "poll_period",
        Ty::Num,
        "seconds between the two polls the rates come from",
        |p, _| n(p.poll_period),
    ),
    f::<Port>("deleted", Ty::Bool, "gone from the agent", |p, _| {
        Val::Bool(p.deleted)
    }),
];

/// `processors.*`.
pub static PROCESSOR_FIELDS: &[FieldDef<Processor>] = &[
    f::<Processor>("processor_id", Ty::Num, "id in `processors`", |p, _| {
        Val::Num(p.processor_id as f64)
    }),
    f::<Processor>("processor_usage", Ty::Num, "load, percent", |p, _| {
        n(p.processor_usage)
    })
    .alias(&["usage", "usage_perc"]),
    f::<Processor>("processor_descr", Ty::Str, "description", |p, _| {
        Val::Str(&p.processor_descr)
    }),
    f::<Processor>(
        "processor_type",
        Ty::Str,
        "MIB/type (`hr`, `ucd-old`, ...)",
        |p, _| Val::Str(&p.processor_type),
    ),
    f::<Processor>("processor_index", Ty::Str, "index in its MIB", |p, _| {
        Val::Str(&p.processor_index)
    }),
];

/// `mempools.*`.
pub static MEMPOOL_FIELDS: &[FieldDef<Mempool>] = &[
    f::<Mempool>("mempool_id", Ty::Num, "id in `mempools`", |m, _| {
        Val::Num(m.mempool_id as f64)
    }),
    f::<Mempool>("mempool_perc", Ty::Num, "used, percent", |m, _| {
        Val::Num(m.mempool_perc)
    })
    .alias(&["usage_perc"]),
    f::<Mempool>("mempool_used", Ty::Num, "used, bytes", |m, _| {
        Val::Num(m.mempool_used as f64)
    }),
    f::<Mempool>("mempool_free", Ty::Num, "free, bytes", |m, _| {
        Val::Num(m.mempool_free as f64)
    }),
    f::<Mempool>("mempool_total", Ty::Num, "size, bytes", |m, _| {
        Val::Num(m.mempool_total as f64)
    }),
    f::<Mempool>("mempool_descr", Ty::Str, "description", |m, _| {
        Val::Str(&m.mempool_descr)
    }),
    f::<Mempool>(
        "mempool_class",
        Ty::Str,
        "`system`, `swap`, `virtual`, `buffers`, `cached`, `shared`",
        |m, _| Val::Str(&m.mempool_class),
    ),
    f::<Mempool>(
        "mempool_type",
        Ty::Str,
        "MIB (`hrstorage`, `ucd`, ...)",
        |m, _| Val::Str(&m.mempool_type),
    ),
    f::<Mempool>("mempool_index", Ty::Str, "index in its MIB", |m, _| {
        Val::Str(&m.mempool_index)
    }),
];

/// `storage.*`.
pub static STORAGE_FIELDS: &[FieldDef<Storage>] = &[
    f::<Storage>("storage_id", Ty::Num, "id in `storage`", |x, _| {
        Val::Num(x.storage_id as f64)
    }),
    f::<Storage>("storage_perc", Ty::Num, "used, percent", |x, _| {
        Val::Num(x.storage_perc)
    })
    .alias(&["usage_perc"]),
    f::<Storage>("storage_used", Ty::Num, "used, bytes", |x, _| {
        Val::Num(x.storage_used as f64)
    }),
    f::<Storage>("storage_free", Ty::Num, "free, bytes", |x, _| {
        Val::Num(x.storage_free as f64)
    }),
    f::<Storage>("storage_size", Ty::Num, "size, bytes", |x, _| {
        Val::Num(x.storage_size as f64)
    }),
    f::<Storage>(
        "storage_descr",
        Ty::Str,
        "description (mount point)",
        |x, _| Val::Str(&x.storage_descr),
    ),
    f::<Storage>(
        "storage_type",
        Ty::Str,
        "e.g. `hrStorageFixedDisk`",
        |x, _| s(&x.storage_type),
    ),
    f::<Storage>("storage_mib", Ty::Str, "MIB (`hrstorage`, ...)", |x, _| {
        Val::Str(&x.storage_mib)
    }),
    f::<Storage>("storage_index", Ty::Num, "index in its MIB", |x, _| {
        Val::Num(x.storage_index as f64)
    }),
];

/// A device's stored state as a rule sees it (borrowed: building one copies nothing).
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    pub device: &'a Device,
    pub ports: &'a [Port],
    pub processors: &'a [Processor],
    pub mempools: &'a [Mempool],
    pub storage: &'a [Storage],
    pub icmp: Option<IcmpFacts>,
    pub now: DateTime<Utc>,
    pub interval_secs: u64,
}

/// The snapshot of one device at `now`; `interval_secs` is its poll interval (for
/// `device.poll_interval` and time-based rules).
#[allow(clippy::too_many_arguments)]
pub fn device_snapshot<'a>(
    device: &'a Device,
    ports: &'a [Port],
    processors: &'a [Processor],
    mempools: &'a [Mempool],
    storage: &'a [Storage],
    icmp: Option<IcmpFacts>,
    now: DateTime<Utc>,
    interval_secs: u64,
) -> Snapshot<'a> {
    Snapshot {
        device,
        ports,
        processors,
        mempools,
        storage,
        icmp,
        now,
        interval_secs,
    }
}

impl<'a> Snapshot<'a> {
    /// The device alone (the master's time pass, which needs no entities).
    pub fn device_only(
        device: &'a Device,
        icmp: Option<IcmpFacts>,
        now: DateTime<Utc>,
        interval_secs: u64,
    ) -> Snapshot<'a> {
        device_snapshot(device, &[], &[], &[], &[], icmp, now, interval_secs)
    }

    /// What a poll's alert hook is given (`lookout_store::AlertInput`), at its `now`.
    pub fn from_alert_input(input: &lookout_store::AlertInput<'a>, interval_secs: u64) -> Self {
        device_snapshot(
            input.device,
            input.ports,
            input.processors,
            input.mempools,
            input.storage,
            input.icmp.map(IcmpFacts::from),
            input.now,
            interval_secs,
        )
    }

    pub(crate) fn clock(&self) -> Clock {
        Clock {
            now: unix(self.now),
            interval_secs: self.interval_secs as f64,
        }
    }

    /// How many rows of `kind` there are (1 for device; icmp 0 or 1).
    pub(crate) fn rows(&self, kind: Kind) -> usize {
        // kinds:
        match kind {
            Kind::Device => 1,
            Kind::Icmp => usize::from(self.icmp.is_some()),
            Kind::Ports => self.ports.len(),
            Kind::Processors => self.processors.len(),
            Kind::Mempools => self.mempools.len(),
            Kind::Storage => self.storage.len(),
        }
    }

    /// Field `idx` of `kind` in row `row` (the row is ignored for device and icmp).
    #[inline]
    pub(crate) fn get(&self, kind: Kind, idx: usize, row: usize, c: &Clock) -> Val<'a> {
        fn at<'a, T>(
            defs: &[FieldDef<T>],
            rows: &'a [T],
            idx: usize,
            row: usize,
            c: &Clock,
        ) -> Val<'a> {
            match (defs.get(idx), rows.get(row)) {
                (Some(d), Some(r)) => (d.get)(r, c),
                _ => Val::Null,
            }
        }
        // kinds:
        match kind {
            Kind::Device => at(DEVICE_FIELDS, std::slice::from_ref(self.device), idx, 0, c),
            Kind::Icmp => match (&self.icmp, ICMP_FIELDS.get(idx)) {
                // ICMP facts are held by value, so their values cannot borrow from
                // the snapshot's rows: numbers only.
                (Some(i), Some(d)) => match (d.get)(i, c) {
                    Val::Num(n) => Val::Num(n),
                    Val::Bool(b) => Val::Bool(b),
                    Val::Str(_) | Val::Null => Val::Null,
                },
                _ => Val::Null,
            },
            Kind::Ports => at(PORT_FIELDS, self.ports, idx, row, c),
            Kind::Processors => at(PROCESSOR_FIELDS, self.processors, idx, row, c),
            Kind::Mempools => at(MEMPOOL_FIELDS, self.mempools, idx, row, c),
            Kind::Storage => at(STORAGE_FIELDS, self.storage, idx, row, c),
        }
    }

    /// The id and label of entity row `row` of `kind`.
    pub(crate) fn entity(&self, kind: Kind, row: usize) -> Option<(i64, String)> {
        // kinds:
        match kind {
            Kind::Device | Kind::Icmp => None,
            Kind::Ports => self.ports.get(row).map(|p| (p.port_id, p.label())),
            Kind::Processors => self
                .processors
                .get(row)
                .map(|p| (p.processor_id, p.processor_descr.clone())),
            Kind::Mempools => self
                .mempools
                .get(row)
                .map(|m| (m.mempool_id, m.mempool_descr.clone())),
            Kind::Storage => self
                .storage
                .get(row)
                .map(|x| (x.storage_id, x.storage_descr.clone())),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;
    use lookout_core::{DeviceStatus, PortCounters, SnmpConfig};

    pub fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    pub fn device() -> Device {
        Device {
            device_id: 7,
            hostname: "sw1.example".into(),
            sys_name: Some("sw1".into()),
            sys_descr: Some("Cisco IOS".into()),
            sys_object_id: None,
            sys_contact: None,
            sys_location: Some("DC1".into()),
            os: "ios".into(),
            hardware: None,
            version: None,
            serial: None,
            uptime: Some(86_400),
            uptime_source: None,
            status: DeviceStatus::Up,
            status_reason: String::new(),
            last_polled: Some(t(0)),
            last_polled_timetaken: Some(2.5),
            last_discovered: None,
            poller_group: 0,
            disabled: false,
            snmp: SnmpConfig::default(),
            inserted: t(-86_400),
        }
    }

    pub fn port(id: i64, oper: &str, in_bytes: f64, speed: u64) -> Port {
        Port {
            port_id: id,
            device_id: 7,
            if_index: id,
            if_name: Some(format!("Gi0/{id}")),
            if_descr: None,
            if_alias: None,
            if_type: Some("ethernetCsmacd".into()),
            if_mtu: Some(1500),
            if_speed: Some(speed),
            if_phys_address: None,
            if_admin_status: Some("up".into()),
            if_oper_status: Some(oper.into()),
            counters: PortCounters::default(),
            in_octets_rate: Some(in_bytes),
            out_octets_rate: Some(0.0),
            in_ucast_pkts_rate: None,
            out_ucast_pkts_rate: None,
            in_errors_rate: Some(1.0),
            out_errors_rate: None,
            poll_time: None,
            poll_period: Some(300.0),
            deleted: false,
        }
    }

    fn get(snap: &Snapshot, kind: Kind, name: &str, row: usize) -> Val<'static> {
        let idx = kind.field_index(name).unwrap_or(usize::MAX);
        match snap.get(kind, idx, row, &snap.clock()) {
            Val::Str(s) => Val::Str(Box::leak(s.to_string().into_boxed_str())),
            Val::Null => Val::Null,
            Val::Num(n) => Val::Num(n),
            Val::Bool(b) => Val::Bool(b),
        }
    }

    #[test]
    fn port_rates_are_bytes_and_usage_is_percent_of_speed() {
        let d = device();
        // 12.5 MB/s in = 100 Mbit/s on a 1 Gbit/s port: 10 %.
        let ports = [port(1, "up", 12_500_000.0, 1_000_000_000)];
        let snap = device_snapshot(&d, &ports, &[], &[], &[], None, t(10), 300);
        assert_eq!(
            get(&snap, Kind::Ports, "in_bps", 0),
            Val::Num(100_000_000.0)
        );
        assert_eq!(get(&snap, Kind::Ports, "in_usage_perc", 0), Val::Num(10.0));
        assert_eq!(get(&snap, Kind::Ports, "usage_perc", 0), Val::Num(10.0));
        assert_eq!(get(&snap, Kind::Ports, "out_usage_perc", 0), Val::Num(0.0));
        assert_eq!(get(&snap, Kind::Ports, "errors_rate", 0), Val::Num(1.0));
        assert_eq!(get(&snap, Kind::Ports, "IFOPERSTATUS", 0), Val::Str("up"));
        // No speed: no utilisation (not 0 %, not infinity).
        let mut p = port(2, "up", 1.0, 0);
        p.if_speed = Some(0);
        let ports = [p];
        let snap = device_snapshot(&d, &ports, &[], &[], &[], None, t(10), 300);
        assert_eq!(get(&snap, Kind::Ports, "usage_perc", 0), Val::Null);
        // Past the last row: null, not a panic.
        assert_eq!(get(&snap, Kind::Ports, "ifName", 5), Val::Null);
    }

    #[test]
    fn device_age_counts_from_the_last_poll_or_from_insertion() {
        let mut d = device();
        let snap = Snapshot::device_only(&d, None, t(900), 300);
        assert_eq!(
            get(&snap, Kind::Device, "last_polled_age", 0),
            Val::Num(900.0)
        );
        assert_eq!(
            get(&snap, Kind::Device, "poll_interval", 0),
            Val::Num(300.0)
        );
        assert_eq!(get(&snap, Kind::Device, "sysLocation", 0), Val::Str("DC1"));
        assert_eq!(get(&snap, Kind::Icmp, "avg_ms", 0), Val::Null);
        d.last_polled = None;
        let snap = Snapshot::device_only(&d, None, t(900), 300);
        assert_eq!(
            get(&snap, Kind::Device, "last_polled_age", 0),
            Val::Num(87_300.0)
        );
        assert_eq!(get(&snap, Kind::Device, "last_polled", 0), Val::Null);
    }

    #[test]
    fn a_poll_hooks_input_is_a_snapshot() {
        let d = device();
        let ports = [port(1, "up", 0.0, 1)];
        let input = lookout_store::AlertInput {
            device: &d,
            ports: &ports,
            processors: &[],
            mempools: &[],
            storage: &[],
            icmp: Some((25.0, None)),
            alerts: &[],
            now: t(60),
        };
        let snap = Snapshot::from_alert_input(&input, 300);
        assert_eq!(snap.rows(Kind::Ports), 1);
        assert_eq!(get(&snap, Kind::Icmp, "loss", 0), Val::Num(25.0));
        assert_eq!(get(&snap, Kind::Icmp, "avg_ms", 0), Val::Null);
        assert_eq!(
            get(&snap, Kind::Device, "last_polled_age", 0),
            Val::Num(60.0)
        );
    }

    #[test]
    fn catalog_names_are_unique_per_kind() {
        for kind in Kind::ALL {
            let mut names: Vec<String> = kind
                .fields()
                .iter()
                .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
                .map(|n| n.to_ascii_lowercase())
                .collect();
            let len = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), len, "{kind:?}");
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
    }
}
