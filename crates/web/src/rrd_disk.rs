//! "RRD disk" on the poller status page and in `GET /api/v0/poller`: free space where the
//! RRD files live against the projected size of every known device's files (the same
//! `disk::assess` as `lookout validate`). The walk that measures existing files is cached
//! for a few minutes: at 240,000 files it takes about a second.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lookout_timeseries::disk::{self, DiskAssessment, FileSizes, FreeSpaceFloor, Verdict};
use serde_json::{json, Value};

use crate::Shared;

/// What the web tier needs to project the files' size (the poller's definitions).
#[derive(Clone, Copy, Debug)]
pub struct RrdDiskOptions {
    pub sizes: FileSizes,
    pub floor: FreeSpaceFloor,
}

/// How long a measurement of the existing files is reused.
const EXISTING_TTL: Duration = Duration::from_secs(300);

/// Last measurement of the bytes the existing files take.
#[derive(Default)]
pub(crate) struct ExistingCache(Mutex<Option<(Instant, u64)>>);

/// One assessment with its numbers, for the page and the API.
pub struct RrdDiskReport {
    pub dir: PathBuf,
    pub space: disk::DiskSpace,
    /// All files once every known device was polled (never-polled devices estimated).
    pub projected: u64,
    /// What the files under `dir` take now.
    pub existing: u64,
    pub floor: u64,
    pub inventory: lookout_store::RrdInventory,
    pub assessment: DiskAssessment,
}

impl RrdDiskReport {
    pub fn state(&self) -> &'static str {
        match self.assessment.verdict {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "dir": self.dir.display().to_string(),
            "state": self.state(),
            "free_bytes": self.space.available,
            "total_bytes": self.space.total,
            "floor_bytes": self.floor,
            "projected_bytes": self.projected,
            "existing_bytes": self.existing,
            "summary": self.assessment.summary,
            "fix": self.assessment.fix,
        })
    }
}

/// `None` when the files are not on this machine (rrdcached elsewhere) or not configured.
pub(crate) async fn report(ctx: &Shared) -> Option<Result<RrdDiskReport, String>> {
    let opts = ctx.state.rrd_disk?;
    let dir = ctx.state.timeseries.files_dir()?.to_path_buf();
    Some(measure(ctx, opts, dir).await)
}

async fn measure(
    ctx: &Shared,
    opts: RrdDiskOptions,
    dir: PathBuf,
) -> Result<RrdDiskReport, String> {
    let cached = ctx
        .rrd_existing
        .0
        .lock()
        .ok()
        .and_then(|c| *c)
        .filter(|(at, _)| at.elapsed() < EXISTING_TTL)
        .map(|(_, b)| b);
    let report = measure_disk(&ctx.state.store, opts, dir, cached).await?;
    if cached.is_none() {
        if let Ok(mut c) = ctx.rrd_existing.0.lock() {
            *c = Some((Instant::now(), report.existing));
        }
    }
    Ok(report)
}

/// Free space at `dir` against the projected files of every device in `store`
/// (`existing`: the bytes the files take now, measured here when `None`). Shared with
/// `lookout validate`.
pub async fn measure_disk(
    store: &lookout_store::Store,
    opts: RrdDiskOptions,
    dir: PathBuf,
    existing: Option<u64>,
) -> Result<RrdDiskReport, String> {
    let inventory = store
        .rrd_inventory()
        .await
        .map_err(|e| format!("cannot count devices: {e}"))?;
    let inv = inventory.estimated();
    let projected = opts.sizes.projected(
        inv.devices,
        inv.ports,
        inv.processors,
        inv.mempools + inv.storage,
    );
    let walked = dir.clone();
    let (space, existing) = tokio::task::spawn_blocking(move || {
        let space = disk::disk_space(&walked)?;
        let existing = match existing {
            Some(b) => b,
            None => disk::bytes_under(&walked)?,
        };
        Ok::<_, std::io::Error>((space, existing))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let assessment = disk::assess(&dir, space, opts.floor, projected, existing);
    Ok(RrdDiskReport {
        floor: opts.floor.bytes(space.total),
        dir,
        space,
        projected,
        existing,
        inventory,
        assessment,
    })
}
