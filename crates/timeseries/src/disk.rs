//! Free space where the RRD files live, and the floor below which no new file is created
//! (`RRD_MIN_FREE`). RRD files are allocated whole when created and never grow, so only a
//! creation can fill the disk: refusing creations below the floor keeps every existing file
//! updated while the operator makes room, instead of every poll failing on a full disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::TimeSeriesError;

/// Space on the file system holding a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes an unprivileged process may still write.
    pub available: u64,
    /// Size of the file system.
    pub total: u64,
}

/// Space on the file system of `dir`, or of its nearest existing ancestor (a fresh
/// install's RRD dir may not exist yet).
pub fn disk_space(dir: &Path) -> std::io::Result<DiskSpace> {
    let mut at = dir;
    loop {
        match rustix::fs::statvfs(at) {
            Ok(s) => {
                let unit = if s.f_frsize > 0 {
                    s.f_frsize
                } else {
                    s.f_bsize
                };
                return Ok(DiskSpace {
                    available: s.f_bavail.saturating_mul(unit),
                    total: s.f_blocks.saturating_mul(unit),
                });
            }
            Err(rustix::io::Errno::NOENT) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => return Err(std::io::Error::from(rustix::io::Errno::NOENT)),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// The least free space to leave: bytes, or a share of the file system.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FreeSpaceFloor {
    Bytes(u64),
    /// Percent of the file system's size (0–100).
    Percent(f64),
}

impl Default for FreeSpaceFloor {
    /// 1 GiB: room for the store, logs and an operator's shell on the same disk.
    fn default() -> Self {
        FreeSpaceFloor::Bytes(1 << 30)
    }
}

impl FreeSpaceFloor {
    /// Parses `0`, `512M`, `2G`, `1.5T`, `5%` (K/M/G/T are powers of 1024; a plain number
    /// is bytes).
    pub fn parse(text: &str) -> Result<FreeSpaceFloor, String> {
        let t = text.trim();
        let bad = || format!("{text:?}: expected a size such as 0, 512M, 2G or a share such as 5%");
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("{text:?}: a share must be between 0% and 100%"));
            }
            return Ok(FreeSpaceFloor::Percent(p));
        }
        let (num, mult) = match t.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let shift = match c.to_ascii_uppercase() {
                    'K' => 10,
                    'M' => 20,
                    'G' => 30,
                    'T' => 40,
                    'B' => 0,
                    _ => return Err(bad()),
                };
                (&t[..i], (1u64 << shift) as f64)
            }
            _ => (t, 1.0),
        };
        let n: f64 = num.trim().parse().map_err(|_| bad())?;
        if !n.is_finite() || n < 0.0 {
            return Err(bad());
        }
        Ok(FreeSpaceFloor::Bytes((n * mult) as u64))
    }

    /// The floor in bytes on a file system of `total` bytes.
    pub fn bytes(&self, total: u64) -> u64 {
        match *self {
            FreeSpaceFloor::Bytes(b) => b,
            FreeSpaceFloor::Percent(p) => (total as f64 * p / 100.0) as u64,
        }
    }
}

impl std::fmt::Display for FreeSpaceFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            FreeSpaceFloor::Bytes(b) => f.write_str(&human_bytes(b)),
            FreeSpaceFloor::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `3.5 MiB`, `917.2 GiB`: binary units with one decimal, as `df -h` users read them.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Sizes of the files each kind of polled thing has (the poller's definitions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileSizes {
    pub per_device: u64,
    pub per_port: u64,
    pub per_processor: u64,
    /// Per mempool and per storage entry.
    pub per_pool: u64,
}

impl FileSizes {
    /// Bytes of all files for these counts.
    pub fn projected(&self, devices: u64, ports: u64, processors: u64, pools: u64) -> u64 {
        devices * self.per_device
            + ports * self.per_port
            + processors * self.per_processor
            + pools * self.per_pool
    }
}

/// Bytes the files under `dir` take on disk (allocated blocks; 0 for a missing dir).
pub fn bytes_under(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.io_error().map(|io| io.kind()) == Some(std::io::ErrorKind::NotFound) => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        if entry.file_type().is_file() {
            total += entry.metadata().map_err(std::io::Error::from)?.blocks() * 512;
        }
    }
    Ok(total)
}

/// Whether the projected files fit, for `validate` and the status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskAssessment {
    /// `Ok`, `Warn` or `Fail`.
    pub verdict: Verdict,
    /// One line: free space, floor, projected size and what is still to be created.
    pub summary: String,
    /// What to do about it (empty when `Ok`).
    pub fix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// Compares what is still to be created (`projected` minus what `existing` files already
/// take) with the free space above the floor. Fails when it does not fit or free space is
/// already under the floor; warns when less than a quarter of the room would be left.
pub fn assess(
    dir: &Path,
    space: DiskSpace,
    floor: FreeSpaceFloor,
    projected: u64,
    existing: u64,
) -> DiskAssessment {
    let floor_bytes = floor.bytes(space.total);
    let room = space.available.saturating_sub(floor_bytes);
    let to_create = projected.saturating_sub(existing);
    let summary = format!(
        "RRD disk at {}: {} free of {}, floor {} (RRD_MIN_FREE); projected {} for the devices known, {} of it not created yet",
        dir.display(),
        human_bytes(space.available),
        human_bytes(space.total),
        floor,
        human_bytes(projected),
        human_bytes(to_create),
    );
    let (verdict, fix) = if space.available < floor_bytes {
        (
            Verdict::Fail,
            "free space is below RRD_MIN_FREE: new RRD files are not being created; free space or grow the file system".to_string(),
        )
    } else if to_create > room {
        (
            Verdict::Fail,
            format!(
                "the files still to be created need {} more than the {} above the floor: grow the file system, poll less often (POLL_INTERVAL), or use a smaller RRD_RRA",
                human_bytes(to_create - room),
                human_bytes(room)
            ),
        )
    } else if to_create.saturating_mul(4) > room.saturating_mul(3) {
        (
            Verdict::Warn,
            format!(
                "less than a quarter of the room above the floor would be left ({} of {}): plan more space before adding devices",
                human_bytes(room - to_create),
                human_bytes(room)
            ),
        )
    } else {
        (Verdict::Ok, String::new())
    };
    DiskAssessment {
        verdict,
        summary,
        fix,
    }
}

/// How often free space is read again; between reads each admitted file is subtracted from
/// the last reading, so a burst of creations cannot overshoot the floor.
const RECHECK: Duration = Duration::from_secs(1);

struct Reading {
    at: Instant,
    space: DiskSpace,
    /// Largest file refused since the low state began: it ends when that would fit
    /// again, so that small files squeezing in between big refused ones do not make the
    /// state (and its log lines) flap.
    largest_refused: u64,
}

/// Admits or refuses new files against the floor; logs once when it starts refusing and
/// once when it stops.
pub(crate) struct DiskGuard {
    dir: PathBuf,
    floor: FreeSpaceFloor,
    last: Mutex<Option<Reading>>,
    low: AtomicBool,
    refused: AtomicU64,
    recheck: Duration,
}

impl DiskGuard {
    pub(crate) fn new(dir: &Path, floor: FreeSpaceFloor) -> DiskGuard {
        DiskGuard {
            dir: dir.to_path_buf(),
            floor,
            last: Mutex::new(None),
            low: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            recheck: RECHECK,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// New files refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether the last check found free space below the floor.
    pub(crate) fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// May a new file of `bytes` be created for `path`?
    pub(crate) fn admit(&self, path: &str, bytes: u64) -> Result<(), TimeSeriesError> {
        if self.floor == FreeSpaceFloor::Bytes(0) {
            return Ok(());
        }
        let Ok(mut last) = self.last.lock() else {
            return Ok(());
        };
        let stale = last.as_ref().is_none_or(|r| r.at.elapsed() >= self.recheck);
        if stale {
            match disk_space(&self.dir) {
                Ok(space) => {
                    let largest_refused = last.as_ref().map_or(0, |r| r.largest_refused);
                    *last = Some(Reading {
                        at: Instant::now(),
                        space,
                        largest_refused,
                    })
                }
                // Cannot tell: let rrdtool try (and report what it finds).
                Err(e) => {
                    tracing::debug!(dir = %self.dir.display(), error = %e, "free space unknown");
                    return Ok(());
                }
            }
        }
        let Some(reading) = last.as_mut() else {
            return Ok(());
        };
        let floor = self.floor.bytes(reading.space.total);
        let available = reading.space.available;
        if available.saturating_sub(bytes) < floor {
            self.refused.fetch_add(1, Ordering::Relaxed);
            reading.largest_refused = reading.largest_refused.max(bytes);
            if !self.low.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    dir = %self.dir.display(),
                    free = %human_bytes(available),
                    floor = %self.floor,
                    "free space where the RRD files live is below RRD_MIN_FREE: new RRD files \
                     are not created (existing files keep being updated) until space is freed; \
                     make room or grow the file system (RRD_MIN_FREE sets the floor, 0 disables it)"
                );
            }
            return Err(TimeSeriesError::DiskFloor {
                path: path.to_string(),
                free: available,
                floor,
            });
        }
        reading.space.available = available - bytes;
        let recovered = reading.space.available >= floor.saturating_add(reading.largest_refused);
        if recovered && self.low.swap(false, Ordering::Relaxed) {
            reading.largest_refused = 0;
            tracing::info!(
                dir = %self.dir.display(),
                free = %human_bytes(available),
                "free space for RRD files is above RRD_MIN_FREE again: creating new files"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn floors_parse() {
        assert_eq!(FreeSpaceFloor::parse("0"), Ok(FreeSpaceFloor::Bytes(0)));
        assert_eq!(
            FreeSpaceFloor::parse("4096"),
            Ok(FreeSpaceFloor::Bytes(4096))
        );
        assert_eq!(
            FreeSpaceFloor::parse("512M"),
            Ok(FreeSpaceFloor::Bytes(512 << 20))
        );
        assert_eq!(
            FreeSpaceFloor::parse("2g"),
            Ok(FreeSpaceFloor::Bytes(2 << 30))
        );
        assert_eq!(
            FreeSpaceFloor::parse("1.5T"),
            Ok(FreeSpaceFloor::Bytes(3 << 39))
        );
        assert_eq!(
            FreeSpaceFloor::parse(" 5% "),
            Ok(FreeSpaceFloor::Percent(5.0))
        );
        for bad in ["", "x", "5Q", "-1G", "101%", "G", "1e400"] {
            assert!(FreeSpaceFloor::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(FreeSpaceFloor::Percent(10.0).bytes(1000), 100);
        assert_eq!(FreeSpaceFloor::Bytes(7).bytes(1000), 7);
    }

    #[test]
    fn assessment_fails_warns_and_passes() {
        let dir = Path::new("/rrd");
        let space = DiskSpace {
            available: 100 << 20,
            total: 1 << 30,
        };
        let floor = FreeSpaceFloor::Bytes(20 << 20);
        // 80 MiB of room: 10 to create is fine, 70 leaves under a quarter, 90 does not fit.
        let a = assess(dir, space, floor, 30 << 20, 20 << 20);
        assert_eq!(a.verdict, Verdict::Ok, "{a:?}");
        assert!(
            a.summary.contains("100.0 MiB free of 1.0 GiB"),
            "{}",
            a.summary
        );
        assert_eq!(
            assess(dir, space, floor, 70 << 20, 0).verdict,
            Verdict::Warn
        );
        let no = assess(dir, space, floor, 90 << 20, 0);
        assert_eq!(no.verdict, Verdict::Fail);
        assert!(no.fix.contains("10.0 MiB more"), "{}", no.fix);
        let below = DiskSpace {
            available: 10 << 20,
            ..space
        };
        assert_eq!(assess(dir, below, floor, 0, 0).verdict, Verdict::Fail);
    }

    #[test]
    fn bytes_under_counts_allocated_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("host")).unwrap();
        std::fs::write(dir.path().join("host/a.rrd"), vec![1u8; 100_000]).unwrap();
        let n = bytes_under(dir.path()).unwrap();
        assert!((100_000..200_000).contains(&n), "{n}");
        assert_eq!(bytes_under(&dir.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn human_bytes_reads_like_df() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3_688_232), "3.5 MiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }

    #[test]
    fn space_of_a_missing_dir_is_its_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let there = disk_space(dir.path()).unwrap();
        let below = disk_space(&dir.path().join("not/yet")).unwrap();
        assert!(there.total > 0 && there.total == below.total);
    }

    #[test]
    fn guard_refuses_below_the_floor_and_admits_again() {
        let dir = tempfile::tempdir().unwrap();
        // A fixed reading (never re-read during the test): 100 MiB free of 1 GiB.
        let mut guard = DiskGuard::new(dir.path(), FreeSpaceFloor::Bytes(30 << 20));
        guard.recheck = Duration::from_secs(3600);
        *guard.last.lock().unwrap() = Some(Reading {
            at: Instant::now(),
            space: DiskSpace {
                available: 100 << 20,
                total: 1 << 30,
            },
            largest_refused: 0,
        });
        // Each admitted file is subtracted: 3 × 20 MiB fit above 30 MiB, the 4th does not.
        for f in ["a", "b", "c"] {
            assert!(guard.admit(f, 20 << 20).is_ok(), "{f}");
        }
        let refused = guard.admit("d.rrd", 20 << 20);
        assert!(
            matches!(refused, Err(TimeSeriesError::DiskFloor { free, floor, .. })
                if free == 40 << 20 && floor == 30 << 20),
            "{refused:?}"
        );
        assert!(guard.is_low());
        assert_eq!(guard.refused(), 1);
        // A small file that still fits is created, but the state stays low until the
        // refused 20 MiB would fit again.
        assert!(guard.admit("e.rrd", 1 << 20).is_ok());
        assert!(guard.is_low());
        if let Some(r) = guard.last.lock().unwrap().as_mut() {
            r.space.available = 100 << 20;
        }
        assert!(guard.admit("e2.rrd", 1 << 20).is_ok());
        assert!(!guard.is_low());
        // A share of the file system: 10 % of 1 GiB is above the 99 MiB left.
        guard.floor = FreeSpaceFloor::Percent(10.0);
        assert!(guard.admit("f.rrd", 1).is_err());
        let off = DiskGuard::new(dir.path(), FreeSpaceFloor::Bytes(0));
        assert!(off.admit("g.rrd", u64::MAX).is_ok());
    }
}
