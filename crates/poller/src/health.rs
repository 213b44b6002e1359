//! The processors, mempools and storage modules: HOST-RESOURCES-MIB and UCD-SNMP-MIB
//! varbinds → current values, plus their RRD files (LibreNMS names and data sources).
//!
//! The parsing functions are pure (varbind lists in, rows out) so they are tested without
//! an agent; `poll_*` do the SNMP requests.
//!
//! - processors: `hrProcessorLoad` per hrDevice of type hrDeviceProcessor (type `hr`, index =
//!   hrDeviceIndex); agents without it but with UCD's `ssCpuIdle.0` get one `ucd-old` processor
//!   (index 0, usage = 100 − idle), as LibreNMS does.
//! - mempools: UCD memory (`ucd`: system 1, swap 2, buffers 3, cached 4; "system" used excludes
//!   buffers and cache, as LibreNMS) when the agent has `memTotalReal`, else hrStorage RAM
//!   (`hrstorage`, class `system`, or `buffers`/`cached` by description) and virtual memory
//!   (class `virtual`, only rows described as virtual/swap/paging memory).
//! - storage: hrStorage fixed disks (`hrstorage`), except pseudo file systems and package
//!   images (/dev, /proc, /sys, /packages, devfs, procfs) and size 0, as LibreNMS's default
//!   `ignore_mount` lists.

use std::collections::BTreeMap;

use lookout_snmp::{Oid, Session, SnmpError, Value, VarBind};
use lookout_timeseries::{defs::librenms_rras, DataSource, DsKind, RrdDef};
use serde::Serialize;

/// `HOST-RESOURCES-MIB::hrStorageEntry`.
pub const HR_STORAGE_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 25, 2, 3, 1];
/// `HOST-RESOURCES-MIB::hrStorageTypes` (hrStorageRam is `.2`, ...).
pub const HR_STORAGE_TYPES: [u32; 9] = [1, 3, 6, 1, 2, 1, 25, 2, 1];
/// `HOST-RESOURCES-MIB::hrDeviceEntry`.
pub const HR_DEVICE_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 25, 3, 2, 1];
/// `HOST-RESOURCES-MIB::hrDeviceProcessor`, the hrDeviceType of a CPU.
pub const HR_DEVICE_PROCESSOR: [u32; 10] = [1, 3, 6, 1, 2, 1, 25, 3, 1, 3];
/// `HOST-RESOURCES-MIB::hrProcessorEntry` (hrProcessorFrwID `.1`, hrProcessorLoad `.2`).
pub const HR_PROCESSOR_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 25, 3, 3, 1];
/// `UCD-SNMP-MIB::memory`.
pub const UCD_MEMORY: [u32; 8] = [1, 3, 6, 1, 4, 1, 2021, 4];
/// `UCD-SNMP-MIB::ssCpuIdle.0`.
pub const UCD_SS_CPU_IDLE: [u32; 10] = [1, 3, 6, 1, 4, 1, 2021, 11, 11, 0];

/// One processor (LibreNMS `processors` columns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Processor {
    /// `hr` or `ucd-old`.
    pub processor_type: String,
    pub processor_index: String,
    /// Numeric OID the usage was read from.
    pub processor_oid: String,
    pub processor_descr: String,
    /// Percent busy; unknown while the agent has no load figure yet (net-snmp needs a
    /// minute of samples after it starts).
    pub processor_usage: Option<f64>,
}

/// One memory pool (LibreNMS `mempools` columns); sizes in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mempool {
    /// `hrstorage` or `ucd`.
    pub mempool_type: String,
    /// `system`, `virtual`, `swap`, `buffers`, `cached`.
    pub mempool_class: String,
    pub mempool_index: String,
    pub mempool_descr: String,
    pub mempool_total: u64,
    pub mempool_used: u64,
    pub mempool_free: u64,
    pub mempool_perc: f64,
}

/// One storage entry (LibreNMS `storage` columns); sizes in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Storage {
    /// LibreNMS `type`: the MIB it came from, `hrstorage`.
    pub storage_mib: String,
    pub storage_index: i64,
    /// hrStorageType name, e.g. `hrStorageFixedDisk`.
    pub storage_type: String,
    pub storage_descr: String,
    /// hrStorageAllocationUnits (bytes per unit).
    pub storage_units: i64,
    pub storage_size: u64,
    pub storage_used: u64,
    pub storage_free: u64,
    pub storage_perc: f64,
}

/// LibreNMS's `Rrd::safeName`: every character outside `[A-Za-z0-9,._-]` becomes `_`.
pub fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Processor {
    /// The row the store keeps.
    pub fn to_store(&self) -> lookout_store::ProcessorPoll {
        lookout_store::ProcessorPoll {
            processor_type: self.processor_type.clone(),
            processor_index: self.processor_index.clone(),
            processor_oid: self.processor_oid.clone(),
            processor_descr: self.processor_descr.clone(),
            processor_usage: self.processor_usage,
        }
    }

    /// `processor-<type>-<index>.rrd`.
    pub fn rrd_file(&self) -> String {
        safe_name(&format!(
            "processor-{}-{}",
            self.processor_type, self.processor_index
        )) + ".rrd"
    }
}
impl Mempool {
    /// The row the store keeps.
    pub fn to_store(&self) -> lookout_store::MempoolPoll {
        lookout_store::MempoolPoll {
            mempool_type: self.mempool_type.clone(),
            mempool_class: self.mempool_class.clone(),
            mempool_index: self.mempool_index.clone(),
            mempool_descr: self.mempool_descr.clone(),
            mempool_perc: self.mempool_perc,
            mempool_used: self.mempool_used,
            mempool_free: self.mempool_free,
            mempool_total: self.mempool_total,
        }
    }

    /// `mempool-<type>-<class>-<index>.rrd`.
    pub fn rrd_file(&self) -> String {
        safe_name(&format!(
            "mempool-{}-{}-{}",
            self.mempool_type, self.mempool_class, self.mempool_index
        )) + ".rrd"
    }
}
impl Storage {
    /// The row the store keeps.
    pub fn to_store(&self) -> lookout_store::StoragePoll {
        lookout_store::StoragePoll {
            storage_mib: self.storage_mib.clone(),
            storage_index: self.storage_index,
            storage_type: Some(self.storage_type.clone()),
            storage_descr: self.storage_descr.clone(),
            storage_size: self.storage_size,
            storage_units: self.storage_units,
            storage_used: self.storage_used,
            storage_free: self.storage_free,
            storage_perc: self.storage_perc,
        }
    }

    /// `storage-<type>-<descr>.rrd`.
    pub fn rrd_file(&self) -> String {
        safe_name(&format!(
            "storage-{}-{}",
            self.storage_mib, self.storage_descr
        )) + ".rrd"
    }
}

fn gauge(name: &str, step: u64, min: Option<f64>, max: Option<f64>) -> DataSource {
    DataSource {
        name: name.to_string(),
        kind: DsKind::Gauge,
        heartbeat_secs: step.max(1) * 2,
        min,
        max,
    }
}

/// `processor-*.rrd`: `usage` GAUGE -273..1000, as LibreNMS.
pub fn processor_def(step_secs: u64) -> RrdDef {
    RrdDef {
        step_secs,
        sources: vec![gauge("usage", step_secs, Some(-273.0), Some(1000.0))],
        archives: librenms_rras(step_secs),
    }
}

/// `poller-perf.rrd` and `poller-perf-<module>.rrd`: `poller` GAUGE min 0 (seconds), as LibreNMS.
pub fn poller_perf_def(step_secs: u64) -> RrdDef {
    RrdDef {
        step_secs,
        sources: vec![gauge("poller", step_secs, Some(0.0), None)],
        archives: librenms_rras(step_secs),
    }
}

/// `mempool-*.rrd` and `storage-*.rrd`: `used`, `free` GAUGE min 0, as LibreNMS.
pub fn used_free_def(step_secs: u64) -> RrdDef {
    RrdDef {
        step_secs,
        sources: vec![
            gauge("used", step_secs, Some(0.0), None),
            gauge("free", step_secs, Some(0.0), None),
        ],
        archives: librenms_rras(step_secs),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::OctetString(b) => String::from_utf8_lossy(b)
            .trim_end_matches('\0')
            .trim()
            .to_string(),
        _ => String::new(),
    }
}

/// `(column, index)` of a varbind under a table entry with a one-sub-identifier index.
fn column_index(vb: &VarBind, entry: &[u32]) -> Option<(u32, u32)> {
    match vb.oid.as_slice().strip_prefix(entry)? {
        [col, idx] => Some((*col, *idx)),
        _ => None,
    }
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64 * 10_000.0).round() / 100.0
    }
}

/// Processors from walks of hrDeviceEntry (at least hrDeviceType and hrDeviceDescr) and
/// hrProcessorEntry, else from UCD ssCpuIdle.0 (`ss_cpu_idle`, a GET result).
pub fn processors_from(
    hr_device: &[VarBind],
    hr_processor: &[VarBind],
    ss_cpu_idle: Option<&Value>,
) -> Vec<Processor> {
    let mut descr: BTreeMap<u32, String> = BTreeMap::new();
    let mut is_cpu: BTreeMap<u32, bool> = BTreeMap::new();
    for vb in hr_device {
        match column_index(vb, &HR_DEVICE_ENTRY) {
            Some((2, idx)) => {
                let cpu = vb
                    .value
                    .as_oid()
                    .is_some_and(|o| o.as_slice() == HR_DEVICE_PROCESSOR);
                is_cpu.insert(idx, cpu);
            }
            Some((3, idx)) => {
                descr.insert(idx, text(&vb.value));
            }
            _ => {}
        }
    }
    // Rows of hrProcessorTable: hrProcessorFrwID says the row exists, hrProcessorLoad
    // (absent for the first minute of a net-snmp agent) gives the usage.
    let mut rows: BTreeMap<u32, Option<f64>> = BTreeMap::new();
    for vb in hr_processor {
        match column_index(vb, &HR_PROCESSOR_ENTRY) {
            Some((1, idx)) => {
                rows.entry(idx).or_insert(None);
            }
            Some((2, idx)) => {
                rows.insert(idx, vb.value.as_i64().map(|l| l as f64));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (idx, load) in rows {
        // A row whose hrDeviceType says it is not a processor is skipped; a missing
        // hrDeviceType (agents with holes) is trusted to be one.
        if is_cpu.get(&idx) == Some(&false) {
            continue;
        }
        let d = descr.get(&idx).cloned().unwrap_or_default();
        let mut oid = HR_PROCESSOR_ENTRY.to_vec();
        oid.extend([2, idx]);
        out.push(Processor {
            processor_type: "hr".into(),
            processor_index: idx.to_string(),
            processor_oid: Oid::new(&oid).to_string(),
            processor_descr: if d.is_empty() { "Processor".into() } else { d },
            processor_usage: load,
        });
    }
    if out.is_empty() {
        if let Some(idle) = ss_cpu_idle.and_then(Value::as_i64) {
            out.push(Processor {
                processor_type: "ucd-old".into(),
                processor_index: "0".into(),
                processor_oid: Oid::new(&UCD_SS_CPU_IDLE).to_string(),
                processor_descr: "CPU".into(),
                processor_usage: Some((100 - idle).clamp(0, 100) as f64),
            });
        }
    }
    out
}

/// One parsed hrStorageEntry row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HrStorageRow {
    pub index: u32,
    /// Last sub-identifier of hrStorageType under hrStorageTypes (2 = RAM, 4 = fixed disk ...).
    pub kind: Option<u32>,
    pub descr: String,
    pub units: i64,
    pub size: u64,
    pub used: u64,
}

/// Rows of a walk of hrStorageEntry.
pub fn hr_storage_rows(walk: &[VarBind]) -> Vec<HrStorageRow> {
    let mut rows: BTreeMap<u32, HrStorageRow> = BTreeMap::new();
    for vb in walk {
        let Some((col, idx)) = column_index(vb, &HR_STORAGE_ENTRY) else {
            continue;
        };
        let r = rows.entry(idx).or_insert_with(|| HrStorageRow {
            index: idx,
            ..HrStorageRow::default()
        });
        let v = &vb.value;
        match col {
            2 => {
                r.kind =
                    v.as_oid()
                        .and_then(|o| match o.suffix_after(&Oid::new(&HR_STORAGE_TYPES)) {
                            Some([k]) => Some(*k),
                            _ => None,
                        })
            }
            3 => r.descr = text(v),
            4 => r.units = v.as_i64().unwrap_or(0),
            // hrStorageSize/Used are Integer32; agents with > 2^31 units report negative
            // numbers (a known net-snmp/Windows quirk): read them as unsigned 32-bit.
            5 => r.size = v.as_i64().map_or(0, |x| u64::from(x as u32)),
            6 => r.used = v.as_i64().map_or(0, |x| u64::from(x as u32)),
            _ => {}
        }
    }
    rows.into_values().collect()
}

fn hr_type_name(kind: Option<u32>) -> String {
    match kind {
        Some(1) => "hrStorageOther",
        Some(2) => "hrStorageRam",
        Some(3) => "hrStorageVirtualMemory",
        Some(4) => "hrStorageFixedDisk",
        Some(5) => "hrStorageRemovableDisk",
        Some(6) => "hrStorageFloppyDisk",
        Some(7) => "hrStorageCompactDisc",
        Some(8) => "hrStorageRamDisk",
        Some(9) => "hrStorageFlashMemory",
        Some(10) => "hrStorageNetworkDisk",
        _ => "unknown",
    }
    .to_string()
}

/// Pseudo file systems and read-only package images, which LibreNMS ignores by default
/// (`ignore_mount`, `ignore_mount_regexp`). Agents such as JunOS's describe an entry as
/// `<device>: <text>, mounted on: <path>`: the mount point is what is checked.
fn ignored_mount(descr: &str) -> bool {
    let mount = descr
        .rsplit_once("mounted on: ")
        .map_or(descr, |(_, m)| m)
        .trim();
    let under = |p: &str| mount == p || mount.starts_with(&format!("{p}/"));
    ["/dev", "/proc", "/sys", "/packages"]
        .iter()
        .any(|p| under(p))
        || descr.starts_with("devfs")
        || descr.starts_with("procfs")
}

/// Storage entries: hrStorage fixed disks with a size.
pub fn storage_from(rows: &[HrStorageRow]) -> Vec<Storage> {
    rows.iter()
        .filter(|r| r.kind == Some(4) && r.size > 0 && r.units > 0 && !ignored_mount(&r.descr))
        .map(|r| {
            let units = r.units.max(0) as u64;
            let size = r.size.saturating_mul(units);
            let used = r.used.min(r.size).saturating_mul(units);
            Storage {
                storage_mib: "hrstorage".into(),
                storage_index: i64::from(r.index),
                storage_type: hr_type_name(r.kind),
                storage_descr: r.descr.clone(),
                storage_units: r.units,
                storage_size: size,
                storage_used: used,
                storage_free: size - used,
                storage_perc: percent(used, size),
            }
        })
        .collect()
}

fn pool(
    mempool_type: &str,
    class: &str,
    index: &str,
    descr: &str,
    total: u64,
    used: u64,
) -> Mempool {
    let used = used.min(total);
    Mempool {
        mempool_type: mempool_type.into(),
        mempool_class: class.into(),
        mempool_index: index.into(),
        mempool_descr: descr.into(),
        mempool_total: total,
        mempool_used: used,
        mempool_free: total - used,
        mempool_perc: percent(used, total),
    }
}

/// Memory pools: UCD memory (a walk of `UCD-SNMP-MIB::memory`) when it has memTotalReal,
/// else hrStorage RAM and virtual memory rows.
pub fn mempools_from(ucd_memory: &[VarBind], hr_rows: &[HrStorageRow]) -> Vec<Mempool> {
    let base = Oid::new(&UCD_MEMORY);
    let mut ucd: BTreeMap<u32, u64> = BTreeMap::new();
    for vb in ucd_memory {
        if let (Some([col, 0]), Some(v)) = (vb.oid.suffix_after(&base), vb.value.as_u64()) {
            ucd.insert(*col, v);
        }
    }
    // UCD memory values are in KiB.
    let kb = |col: u32| ucd.get(&col).map(|v| v.saturating_mul(1024));
    if let (Some(total), Some(avail)) = (kb(5), kb(6)) {
        let buffers = kb(14).unwrap_or(0);
        let cached = kb(15).unwrap_or(0);
        let mut out = vec![pool(
            "ucd",
            "system",
            "1",
            "Physical memory",
            total,
            total
                .saturating_sub(avail)
                .saturating_sub(buffers)
                .saturating_sub(cached),
        )];
        if let (Some(st), Some(sa)) = (kb(3), kb(4)) {
            if st > 0 {
                out.push(pool(
                    "ucd",
                    "swap",
                    "2",
                    "Swap space",
                    st,
                    st.saturating_sub(sa),
                ));
            }
        }
        if kb(14).is_some() {
            out.push(pool(
                "ucd",
                "buffers",
                "3",
                "Memory buffers",
                total,
                buffers,
            ));
        }
        if kb(15).is_some() {
            out.push(pool("ucd", "cached", "4", "Cached memory", total, cached));
        }
        return out;
    }
    hr_rows
        .iter()
        .filter(|r| r.size > 0 && r.units > 0)
        .filter_map(|r| {
            let d = r.descr.to_ascii_lowercase();
            let class = match r.kind {
                // RAM rows: some agents (Arista, net-snmp) split out buffers and cache.
                Some(2) if d.contains("buffer") => "buffers",
                Some(2) if d.contains("cache") => "cached",
                Some(2) => "system",
                // Only real virtual memory: some agents (Arista) type file systems as
                // hrStorageVirtualMemory.
                Some(3)
                    if ["virtual", "swap", "paging", "page file"]
                        .iter()
                        .any(|w| d.contains(w)) =>
                {
                    "virtual"
                }
                _ => return None,
            };
            let units = r.units as u64;
            Some(pool(
                "hrstorage",
                class,
                &r.index.to_string(),
                &r.descr,
                r.size.saturating_mul(units),
                r.used.saturating_mul(units),
            ))
        })
        .collect()
}

/// Walks hrStorageEntry (shared by mempools and storage). A partial walk keeps its rows and
/// reports the error.
pub async fn walk_hr_storage(session: &Session) -> (Vec<HrStorageRow>, Option<SnmpError>) {
    let (vbs, err) = session.walk_partial(&Oid::new(&HR_STORAGE_ENTRY)).await;
    (hr_storage_rows(&vbs), err)
}

/// Processors: hrDeviceType/Descr, hrProcessorLoad, and ssCpuIdle only when HR has none.
pub async fn poll_processors(session: &Session) -> Result<Vec<Processor>, SnmpError> {
    let entry = Oid::new(&HR_DEVICE_ENTRY);
    let loads = session.walk(&Oid::new(&HR_PROCESSOR_ENTRY)).await?;
    let mut devices = Vec::new();
    if !loads.is_empty() {
        devices.extend(session.walk(&entry.child(2)).await?);
        devices.extend(session.walk(&entry.child(3)).await?);
    }
    let procs = processors_from(&devices, &loads, None);
    if !procs.is_empty() {
        return Ok(procs);
    }
    let idle = match session.get(&[Oid::new(&UCD_SS_CPU_IDLE)]).await {
        Ok(vbs) => vbs.into_iter().next().map(|vb| vb.value),
        // v1 agents answer noSuchName for a missing scalar.
        Err(SnmpError::ErrorStatus { status: 2, .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(processors_from(&[], &[], idle.as_ref()))
}

/// Mempools: UCD memory scalars, else hrStorage rows (already walked).
pub async fn poll_mempools(
    session: &Session,
    hr_rows: &[HrStorageRow],
) -> Result<Vec<Mempool>, SnmpError> {
    let ucd = session.walk(&Oid::new(&UCD_MEMORY)).await?;
    Ok(mempools_from(&ucd, hr_rows))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vb(oid: &str, v: Value) -> VarBind {
        VarBind::new(Oid::parse(oid).unwrap(), v)
    }
    fn s(x: &str) -> Value {
        Value::OctetString(x.as_bytes().to_vec())
    }
    fn o(x: &str) -> Value {
        Value::ObjectId(Oid::parse(x).unwrap())
    }

    /// A net-snmp-on-Linux shaped hrStorage walk.
    fn linux_hr_storage() -> Vec<VarBind> {
        let mut v = Vec::new();
        let rows: [(u32, u32, &str, i64, i64, i64); 8] = [
            (1, 2, "Physical memory", 1024, 4_000_000, 3_000_000),
            (3, 3, "Virtual memory", 1024, 6_000_000, 3_500_000),
            (4, 3, "Root", 1024, 6_000_000, 3_500_000),
            (5, 2, "RAM (Buffers)", 1024, 4_000_000, 100_000),
            (6, 1, "Memory buffers", 1024, 4_000_000, 100_000),
            (31, 4, "/", 4096, 10_000_000, 2_500_000),
            (35, 4, "/dev/shm", 4096, 500_000, 0),
            (36, 4, "/home", 4096, 0, 0),
        ];
        for (col, f) in [(2u32, 0usize), (3, 1), (4, 2), (5, 3), (6, 4)] {
            for r in &rows {
                let oid = format!("1.3.6.1.2.1.25.2.3.1.{col}.{}", r.0);
                let val = match f {
                    0 => o(&format!("1.3.6.1.2.1.25.2.1.{}", r.1)),
                    1 => s(r.2),
                    2 => Value::Integer(r.3),
                    3 => Value::Integer(r.4),
                    _ => Value::Integer(r.5),
                };
                v.push(vb(&oid, val));
            }
        }
        v
    }

    #[test]
    fn storage_keeps_fixed_disks_only() {
        let rows = hr_storage_rows(&linux_hr_storage());
        assert_eq!(rows.len(), 8);
        let st = storage_from(&rows);
        assert_eq!(st.len(), 1, "{st:?}");
        let root = &st[0];
        assert_eq!(root.storage_descr, "/");
        assert_eq!(root.storage_size, 40_960_000_000);
        assert_eq!(root.storage_used, 10_240_000_000);
        assert_eq!(root.storage_free, 30_720_000_000);
        assert_eq!(root.storage_perc, 25.0);
        assert_eq!(root.storage_type, "hrStorageFixedDisk");
        assert_eq!(root.rrd_file(), "storage-hrstorage-_.rrd");
    }

    #[test]
    fn junos_mounts() {
        for (descr, ignored) in [
            ("/dev/ad0s1a: root file system, mounted on: /", false),
            ("/dev/ad1s1f: var file system, mounted on: /var", false),
            ("/dev/md0, mounted on: /packages/mnt/jbase", true),
            ("devfs: dev file system, mounted on: /dev", true),
            ("procfs: process file system, mounted on: /proc", true),
            ("/dev/shm", true),
            ("/", false),
            ("/devices", false),
        ] {
            assert_eq!(ignored_mount(descr), ignored, "{descr}");
        }
    }

    #[test]
    fn negative_hr_sizes_are_read_as_unsigned() {
        let walk = vec![
            vb("1.3.6.1.2.1.25.2.3.1.2.1", o("1.3.6.1.2.1.25.2.1.4")),
            vb(
                "1.3.6.1.2.1.25.2.3.1.3.1",
                s("C:\\ Label:  Serial Number 1"),
            ),
            vb("1.3.6.1.2.1.25.2.3.1.4.1", Value::Integer(4096)),
            vb("1.3.6.1.2.1.25.2.3.1.5.1", Value::Integer(-1_000_000)),
            vb("1.3.6.1.2.1.25.2.3.1.6.1", Value::Integer(5)),
        ];
        let st = storage_from(&hr_storage_rows(&walk));
        assert_eq!(st[0].storage_size, (4_294_967_296 - 1_000_000) * 4096);
        assert_eq!(
            st[0].rrd_file(),
            "storage-hrstorage-C___Label___Serial_Number_1.rrd"
        );
    }

    #[test]
    fn mempools_prefer_ucd() {
        let rows = hr_storage_rows(&linux_hr_storage());
        let hr = mempools_from(&[], &rows);
        let classes: Vec<&str> = hr.iter().map(|p| p.mempool_class.as_str()).collect();
        // "Root" typed as virtual memory (Arista) is not memory.
        assert_eq!(classes, ["system", "virtual", "buffers"]);
        assert_eq!(
            (
                hr[0].mempool_class.as_str(),
                hr[0].mempool_total,
                hr[0].mempool_used
            ),
            ("system", 4_096_000_000, 3_072_000_000)
        );
        assert_eq!(hr[1].rrd_file(), "mempool-hrstorage-virtual-3.rrd");
        let ucd = vec![
            vb("1.3.6.1.4.1.2021.4.3.0", Value::Integer(2_000_000)),
            vb("1.3.6.1.4.1.2021.4.4.0", Value::Integer(1_500_000)),
            vb("1.3.6.1.4.1.2021.4.5.0", Value::Integer(4_000_000)),
            vb("1.3.6.1.4.1.2021.4.6.0", Value::Integer(1_000_000)),
            vb("1.3.6.1.4.1.2021.4.14.0", Value::Integer(200_000)),
            vb("1.3.6.1.4.1.2021.4.15.0", Value::Integer(800_000)),
            vb("1.3.6.1.4.1.2021.4.100.0", Value::Integer(0)),
        ];
        let m = mempools_from(&ucd, &rows);
        let classes: Vec<&str> = m.iter().map(|p| p.mempool_class.as_str()).collect();
        assert_eq!(classes, ["system", "swap", "buffers", "cached"]);
        assert_eq!(m[0].mempool_used, 2_000_000 * 1024);
        assert_eq!(m[0].mempool_free, 2_000_000 * 1024);
        assert_eq!(m[0].mempool_perc, 50.0);
        assert_eq!(m[1].mempool_used, 500_000 * 1024);
        assert_eq!(m[0].rrd_file(), "mempool-ucd-system-1.rrd");
    }

    #[test]
    fn processors_from_hr_and_ucd() {
        let dev = vec![
            vb("1.3.6.1.2.1.25.3.2.1.2.196608", o("1.3.6.1.2.1.25.3.1.3")),
            vb("1.3.6.1.2.1.25.3.2.1.2.196609", o("1.3.6.1.2.1.25.3.1.3")),
            vb("1.3.6.1.2.1.25.3.2.1.2.262145", o("1.3.6.1.2.1.25.3.1.4")),
            vb(
                "1.3.6.1.2.1.25.3.2.1.3.196608",
                s("GenuineIntel: Intel(R) Xeon(R)"),
            ),
            vb("1.3.6.1.2.1.25.3.2.1.3.262145", s("network interface lo")),
        ];
        let load = vec![
            vb("1.3.6.1.2.1.25.3.3.1.1.196608", o("0.0")),
            vb("1.3.6.1.2.1.25.3.3.1.1.196609", o("0.0")),
            vb("1.3.6.1.2.1.25.3.3.1.1.196610", o("0.0")),
            vb("1.3.6.1.2.1.25.3.3.1.2.196608", Value::Integer(7)),
            vb("1.3.6.1.2.1.25.3.3.1.2.196609", Value::Integer(93)),
            vb("1.3.6.1.2.1.25.3.3.1.2.262145", Value::Integer(1)),
        ];
        let p = processors_from(&dev, &load, Some(&Value::Integer(50)));
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].processor_descr, "GenuineIntel: Intel(R) Xeon(R)");
        assert_eq!(p[1].processor_descr, "Processor");
        assert_eq!(p[1].processor_usage, Some(93.0));
        assert_eq!(p[1].processor_oid, "1.3.6.1.2.1.25.3.3.1.2.196609");
        // A row without a load yet (net-snmp's first minute) is a processor, usage unknown.
        assert_eq!(p[2].processor_usage, None);
        assert_eq!(p[0].rrd_file(), "processor-hr-196608.rrd");
        let u = processors_from(&[], &[], Some(&Value::Integer(97)));
        assert_eq!(u.len(), 1);
        assert_eq!(
            (u[0].processor_usage, u[0].rrd_file().as_str()),
            (Some(3.0), "processor-ucd-old-0.rrd")
        );
        assert!(processors_from(&[], &[], Some(&Value::NoSuchObject)).is_empty());
    }

    #[test]
    fn safe_names_follow_librenms() {
        assert_eq!(
            safe_name("storage-hrstorage-/var/log"),
            "storage-hrstorage-_var_log"
        );
        assert_eq!(safe_name("a,b.c_d-e f"), "a,b.c_d-e_f");
    }
}
