//! The RRD directory on a 64 MB file system of the test's own (a tmpfs, as root; skipped
//! loudly otherwise) that fills up while real snmpd devices are polled:
//!
//! - with the free-space floor (`RRD_MIN_FREE`): the projection said beforehand that the
//!   files would not fit; below the floor no new file is created, every poll still succeeds
//!   and the existing files keep being updated; it is said once (one ERROR line), and once
//!   space is freed the missing files are created at the next poll (one INFO line);
//! - without a floor, on a completely full disk: rrdtool's own failure is reported for the
//!   files it could not create, no half-written file is left behind, and the next poll after
//!   space is freed creates them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::test_store_config;
use lookout_core::{Device, DeviceStatus, NewDevice, SnmpConfig};
use lookout_poller::{ModuleSet, Poller, PollerConfig};
use lookout_store::Store;
use lookout_testkit::logs::Captured;
use lookout_testkit::mariadb::TestDatabase;
use lookout_testkit::snmpd::{Snmpd, SnmpdConfig};
use lookout_testkit::tmpfs::{fill, fill_up_to, Tmpfs};
use lookout_timeseries::disk::{self, FreeSpaceFloor, Verdict};
use lookout_timeseries::{TimeSeries, TimeSeriesConfig, TimeSeriesOptions};

const STEP: u64 = 300;

/// One subscriber for the whole binary (both tests log through it).
fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| Captured::install_global(tracing::Level::INFO))
}

struct Setup {
    poller: Poller,
    store: Store,
    ts: TimeSeries,
    rrd_dir: PathBuf,
    devices: Vec<Device>,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

/// Store outside the small file system (its own disk-full test is the store's), RRD files
/// inside it; `n` devices of one snmpd.
async fn setup(rrd_dir: &Path, floor: FreeSpaceFloor, snmpd: &Snmpd, n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (store_config, db) = test_store_config(dir.path());
    let store = Store::open(&store_config).await.unwrap();
    store.migrate().await.unwrap();
    let ts = TimeSeries::open_with(
        &TimeSeriesConfig::Local {
            rrd_dir: rrd_dir.to_path_buf(),
        },
        TimeSeriesOptions {
            min_free: floor,
            ..TimeSeriesOptions::default()
        },
    )
    .await
    .unwrap();
    let mut modules = ModuleSet::all();
    modules.apply_list("-availability").unwrap();
    let poller = Poller::new(
        store.clone(),
        ts.clone(),
        PollerConfig {
            step_secs: STEP,
            modules,
            ..PollerConfig::default()
        },
    )
    .await
    .unwrap();
    let mut devices = Vec::new();
    for addr in snmpd.addrs.iter().take(n) {
        devices.push(
            store
                .add_device(&NewDevice {
                    hostname: addr.to_string(),
                    snmp: SnmpConfig {
                        port: snmpd.port,
                        community: "public".into(),
                        timeout_ms: 2000,
                        retries: 1,
                        ..SnmpConfig::default()
                    },
                    poller_group: 0,
                })
                .await
                .unwrap(),
        );
    }
    Setup {
        poller,
        store,
        ts,
        rrd_dir: rrd_dir.to_path_buf(),
        devices,
        _dir: dir,
        _db: db,
    }
}

impl Setup {
    /// Polls every device once (as stored now); each poll must succeed with the device up.
    /// Returns the time-series errors of the round.
    async fn round(&self) -> Vec<String> {
        self.round_of(&self.devices).await
    }

    async fn round_of(&self, devices: &[Device]) -> Vec<String> {
        // rrdtool refuses two updates of a file in the same second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut errors = Vec::new();
        for d in devices {
            let d = self.store.device(d.device_id).await.unwrap().unwrap();
            let r = self.poller.poll(&d).await.unwrap();
            assert_eq!(
                r.status,
                DeviceStatus::Up,
                "{}: {}",
                d.hostname,
                r.status_reason
            );
            errors.extend(r.timeseries_errors);
        }
        errors
    }

    /// Every file each device should have: its port files and the per-device files.
    async fn missing_files(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for d in &self.devices {
            let mut files = vec!["uptime.rrd".to_string(), "poller-perf.rrd".to_string()];
            for p in self.store.ports(d.device_id).await.unwrap() {
                files.push(format!("port-id{}.rrd", p.port_id));
            }
            for f in files {
                let path = self.rrd_dir.join(&d.hostname).join(&f);
                if !path.exists() {
                    missing.push(format!("{}/{f}", d.hostname));
                }
            }
        }
        missing
    }

    async fn assessment(&self, floor: FreeSpaceFloor) -> disk::DiskAssessment {
        let inv = self.store.rrd_inventory().await.unwrap().estimated();
        let projected = lookout_poller::rrd_file_sizes(STEP, None).projected(
            inv.devices,
            inv.ports,
            inv.processors,
            inv.mempools + inv.storage,
        );
        let space = disk::disk_space(&self.rrd_dir).unwrap();
        let existing = disk::bytes_under(&self.rrd_dir).unwrap();
        disk::assess(&self.rrd_dir, space, floor, projected, existing)
    }
}

/// Every `.rrd` file under `dir` is whole: `rrdtool info` reads it.
fn all_files_whole(dir: &Path) -> usize {
    let mut n = 0;
    for e in walk(dir) {
        if e.extension().is_some_and(|x| x == "rrd") {
            let out = Command::new("/usr/bin/rrdtool")
                .arg("info")
                .arg(&e)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} is not a whole RRD file: {}",
                e.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        } else if e.is_file() && !e.ends_with("filler") {
            panic!("left behind: {}", e.display());
        }
    }
    n
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn last_update(path: &Path) -> i64 {
    let out = Command::new("/usr/bin/rrdtool")
        .arg("last")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_floor_no_new_file_is_created_and_polls_go_on() {
    let log = log();
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let floor_bytes = 16u64 << 20;
    let floor = FreeSpaceFloor::Bytes(floor_bytes);
    let snmpd = Snmpd::start(SnmpdConfig::new("disk-full-agent").devices(8));
    let rrd_dir = fs.mnt.join("rrd");

    // What one device's files take here (ports, processors and storage entries are the
    // host's), to size the test: as many devices as fit once the filler is gone.
    let probe = setup(&rrd_dir, floor, &snmpd, 1).await;
    assert!(probe.round().await.is_empty());
    let per_device = disk::bytes_under(&rrd_dir).unwrap();
    drop(probe);
    std::fs::remove_dir_all(&rrd_dir).unwrap();
    let room = disk::disk_space(&fs.mnt).unwrap().available - floor_bytes;
    let n = ((room * 9 / 10) / per_device) as usize;
    assert!(
        n >= 2,
        "one device's RRD files take {per_device} bytes: too big for this test's 64 MB"
    );
    let n = n.min(8);
    let s = setup(&rrd_dir, floor, &snmpd, n).await;
    // A filler leaves room above the floor for about one and a half devices.
    let filler = fs.mnt.join("filler");
    let free = disk::disk_space(&fs.mnt).unwrap().available;
    fill_up_to(&filler, free - floor_bytes - per_device * 3 / 2);

    // The first device polled: the projection for all of them already says it will not fit.
    assert!(s.round_of(&s.devices[..1]).await.is_empty());
    let a = s.assessment(floor).await;
    assert_eq!(a.verdict, Verdict::Fail, "{a:?}");
    assert!(a.fix.contains("more than"), "{}", a.fix);

    // Two rounds over all: every poll succeeds, creations stop at the floor.
    let port_file = s.rrd_dir.join(&s.devices[0].hostname).join(format!(
        "port-id{}.rrd",
        s.store.ports(s.devices[0].device_id).await.unwrap()[0].port_id
    ));
    let before = last_update(&port_file);
    let errors = s.round().await;
    let errors2 = s.round().await;
    assert!(!errors.is_empty() && !errors2.is_empty());
    assert!(
        errors
            .iter()
            .chain(&errors2)
            .all(|e| e.contains("below RRD_MIN_FREE")),
        "{errors:?}"
    );
    let stats = s.ts.stats();
    assert!(stats.disk_low && stats.new_files_refused > 0, "{stats:?}");
    assert!(disk::disk_space(&fs.mnt).unwrap().available >= floor_bytes);
    assert!(
        last_update(&port_file) > before,
        "existing files stopped being updated"
    );
    assert!(!s.missing_files().await.is_empty());
    let said = log.lines_with("is below RRD_MIN_FREE");
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("ERROR"), "{}", said[0]);

    // Space freed: the next round creates what was missing; said once.
    std::fs::remove_file(&filler).unwrap();
    let errors = s.round().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.missing_files().await, Vec::<String>::new());
    assert!(!s.ts.stats().disk_low);
    assert_eq!(log.lines_with("above RRD_MIN_FREE again").len(), 1);
    assert_eq!(log.lines_with("is below RRD_MIN_FREE").len(), 1);
    assert!(all_files_whole(&s.rrd_dir) > n * 3);
    assert_eq!(s.assessment(floor).await.verdict, Verdict::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_without_floor_leaves_no_half_written_file() {
    log();
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let snmpd = Snmpd::start(SnmpdConfig::new("disk-full-agent-2").devices(1));
    let rrd_dir = fs.mnt.join("rrd");
    let s = setup(&rrd_dir, FreeSpaceFloor::Bytes(0), &snmpd, 1).await;
    std::fs::create_dir_all(&rrd_dir).unwrap();
    let filler = fs.mnt.join("filler");
    fill(&filler);

    let errors = s.round().await;
    assert!(!errors.is_empty(), "nothing failed on a full disk");
    assert!(
        errors.iter().any(|e| e.contains("No space left")),
        "{errors:?}"
    );
    all_files_whole(&s.rrd_dir);

    std::fs::remove_file(&filler).unwrap();
    let errors = s.round().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.missing_files().await, Vec::<String>::new());
    assert!(all_files_whole(&s.rrd_dir) >= 3);
}
