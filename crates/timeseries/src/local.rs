//! Local backend: RRD files under `RRD_DIR`, written by long-running `rrdtool -` processes
//! (rrdtool's pipe mode, as LibreNMS drives it). Each process runs with `RRD_DIR` as its working
//! directory, so the relative paths are used as they are. Files are sharded over the processes
//! by path hash: updates of one file stay in order, different files go in parallel. All I/O
//! with the processes is async (no blocking calls on the runtime).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::disk::DiskGuard;
use crate::format::{self, FileInfo};
use crate::{Cf, Rra, RrdDef, Series, StatsCounters, TimeSeriesError};

const RRDTOOL: &str = "/usr/bin/rrdtool";
/// Prefix of errors from the pipe itself (not from rrdtool).
const PIPE_ERROR: &str = "rrdtool pipe: ";

struct Pipe {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

pub(crate) struct LocalBackend {
    dir: PathBuf,
    pipes: Vec<Mutex<Option<Pipe>>>,
    /// Per-install RRA override for new files.
    rras: Option<Vec<Rra>>,
    /// Files known to exist with a definition compatible with this one (checked once per
    /// handle and definition).
    verified: StdMutex<HashMap<String, RrdDef>>,
    /// Refuses new files below the free-space floor.
    disk: Option<Arc<DiskGuard>>,
}

fn rrd_err(op: &'static str, path: &str, message: impl Into<String>) -> TimeSeriesError {
    TimeSeriesError::Rrd {
        op,
        path: path.to_string(),
        message: message.into(),
    }
}

impl LocalBackend {
    pub(crate) fn new(
        dir: &Path,
        processes: usize,
        rras: Option<Vec<Rra>>,
        disk: Option<Arc<DiskGuard>>,
    ) -> LocalBackend {
        LocalBackend {
            disk,
            dir: dir.to_path_buf(),
            rras,
            pipes: (0..processes.max(1)).map(|_| Mutex::new(None)).collect(),
            verified: StdMutex::new(HashMap::new()),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn spawn(&self) -> std::io::Result<Pipe> {
        if !Path::new(RRDTOOL).exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{RRDTOOL} not found: install the Debian package `rrdtool`"),
            ));
        }
        let mut child = Command::new(RRDTOOL)
            .arg("-")
            .current_dir(&self.dir)
            // The pipe must write the local files, never a daemon named by the environment.
            .env_remove("RRDCACHED_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Pipe {
            child,
            stdin: BufWriter::new(stdin),
            stdout: BufReader::new(stdout),
        })
    }

    fn shard(&self, path: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        (h.finish() % self.pipes.len() as u64) as usize
    }

    /// Runs one pipe-mode command; returns its output lines, or rrdtool's ERROR message.
    async fn run(
        &self,
        op: &'static str,
        path: &str,
        command: &str,
    ) -> Result<Vec<String>, TimeSeriesError> {
        let mut guard = self.pipes[self.shard(path)].lock().await;
        if guard.is_none() {
            // A fresh install's RRD_DIR may not exist yet; rrdtool runs inside it.
            tokio::fs::create_dir_all(&self.dir)
                .await
                .map_err(|e| rrd_err(op, path, format!("creating RRD_DIR: {e}")))?;
            *guard = Some(
                self.spawn()
                    .map_err(|e| rrd_err(op, path, format!("starting rrdtool: {e}")))?,
            );
        }
        let Some(pipe) = guard.as_mut() else {
            return Err(rrd_err(op, path, "rrdtool not running"));
        };
        let result: std::io::Result<Result<Vec<String>, String>> = async {
            pipe.stdin.write_all(command.as_bytes()).await?;
            pipe.stdin.write_all(b"\n").await?;
            pipe.stdin.flush().await?;
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if pipe.stdout.read_line(&mut line).await? == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "rrdtool exited",
                    ));
                }
                let line = line.trim_end_matches('\n');
                if line.starts_with("OK u:") {
                    return Ok(Ok(lines));
                }
                if let Some(msg) = line.strip_prefix("ERROR: ") {
                    return Ok(Err(msg.to_string()));
                }
                lines.push(line.to_string());
            }
        }
        .await;
        match result {
            Ok(Ok(lines)) => Ok(lines),
            Ok(Err(msg)) => Err(rrd_err(op, path, msg)),
            Err(e) => {
                // A dead or confused process is replaced on the next call.
                if let Some(mut p) = guard.take() {
                    let _ = p.child.start_kill();
                }
                Err(rrd_err(op, path, format!("{PIPE_ERROR}{e}")))
            }
        }
    }

    pub(crate) async fn check(&self) -> Result<(), TimeSeriesError> {
        let dir = self.dir.display().to_string();
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| rrd_err("check", &dir, format!("creating RRD_DIR: {e}")))?;
        let probe = self
            .dir
            .join(format!(".lookout-check-{}", std::process::id()));
        tokio::fs::write(&probe, b"x")
            .await
            .map_err(|e| rrd_err("check", &dir, format!("RRD_DIR is not writable: {e}")))?;
        let _ = tokio::fs::remove_file(&probe).await;
        // Proves rrdtool runs (the command itself is harmless).
        match self
            .run("check", "check.rrd", "info .lookout-check-missing.rrd")
            .await
        {
            Err(TimeSeriesError::Rrd { message, .. }) if format::is_no_such_file(&message) => {
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    async fn info(&self, path: &str) -> Result<Option<FileInfo>, TimeSeriesError> {
        match self.run("info", path, &format!("info {path}")).await {
            Ok(lines) => FileInfo::parse(lines.iter().map(String::as_str))
                .map(Some)
                .map_err(|m| rrd_err("info", path, m)),
            Err(TimeSeriesError::Rrd { message, .. }) if format::is_no_such_file(&message) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the file (and its host directory) unless it exists; checks its definition.
    async fn ensure(&self, path: &str, def: &RrdDef, at: i64) -> Result<(), TimeSeriesError> {
        if self
            .verified
            .lock()
            .map(|v| v.get(path) == Some(def))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let info = match self.info(path).await? {
            Some(info) => info,
            None => {
                if let Some(guard) = &self.disk {
                    guard.admit(path, crate::defs::file_bytes(def, self.rras.as_deref()))?;
                }
                if let Some(parent) = Path::new(path).parent() {
                    tokio::fs::create_dir_all(self.dir.join(parent))
                        .await
                        .map_err(|e| rrd_err("create", path, format!("creating directory: {e}")))?;
                }
                // Start 10 s before the first update, like rrdtool's default `now-10s`.
                let cmd = format!(
                    "create {path} -s {} -b {} -O {}",
                    def.step_secs,
                    at - 10,
                    format::ds_rra_args(def, self.rras.as_deref())
                );
                match self.run("create", path, &cmd).await {
                    Ok(_) => tracing::debug!(path, "created rrd file"),
                    // Another process created it first: check what it made.
                    Err(TimeSeriesError::Rrd { message, .. })
                        if message.contains("File exists") => {}
                    Err(e) => return Err(e),
                }
                match self.info(path).await? {
                    Some(info) => info,
                    None => return Err(self.missing_after_create(path, def)),
                }
            }
        };
        if let Some(m) = info.mismatch(def) {
            return Err(rrd_err("update", path, m));
        }
        if let Ok(mut v) = self.verified.lock() {
            v.insert(path.to_string(), def.clone());
        }
        Ok(())
    }

    /// rrdtool answered OK but wrote no file: it does so when the disk is full (the
    /// temporary file it writes is removed). Says so when free space explains it.
    fn missing_after_create(&self, path: &str, def: &RrdDef) -> TimeSeriesError {
        let need = crate::defs::file_bytes(def, self.rras.as_deref());
        match crate::disk::disk_space(&self.dir) {
            Ok(space) if space.available < need => rrd_err(
                "create",
                path,
                format!(
                    "No space left on device: {} free in {}, the file needs {} (nothing was written)",
                    crate::disk::human_bytes(space.available),
                    self.dir.display(),
                    crate::disk::human_bytes(need)
                ),
            ),
            _ => rrd_err("create", path, "file missing after create"),
        }
    }

    pub(crate) async fn update(
        &self,
        path: &str,
        def: &RrdDef,
        at: i64,
        line: &str,
        stats: &StatsCounters,
    ) -> Result<(), TimeSeriesError> {
        let cmd = format!("update {path} {line}");
        let r = async {
            let mut lock_waits = 0u64;
            let mut pipe_retried = false;
            loop {
                let started = std::time::Instant::now();
                let r = match self.ensure(path, def, at).await {
                    Ok(()) => self.run("update", path, &cmd).await,
                    Err(e) => Err(e),
                };
                stats.add_batch(started.elapsed());
                match r {
                    // Another process (a second poller on shared storage) may hold the
                    // file's lock for the moment of its own update: retry briefly.
                    Err(TimeSeriesError::Rrd { message, .. })
                        if message.contains("could not lock") && lock_waits < 5 =>
                    {
                        lock_waits += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(10 * lock_waits))
                            .await;
                    }
                    // The rrdtool process died under us: once more with a fresh one.
                    Err(TimeSeriesError::Rrd { message, .. })
                        if message.starts_with(PIPE_ERROR) && !pipe_retried =>
                    {
                        tracing::warn!(path, error = %message, "rrdtool pipe failed; retrying with a new process");
                        pipe_retried = true;
                    }
                    // ...and the dead process had written it before dying.
                    Err(TimeSeriesError::Rrd { message, .. })
                        if pipe_retried && format::is_already_written(&message) =>
                    {
                        break Ok(Vec::new());
                    }
                    other => break other,
                }
            }
        }
        .await;
        match r {
            Ok(_) => {
                stats.add_written(1);
                Ok(())
            }
            Err(e) => {
                stats.add_rejected(1);
                Err(e)
            }
        }
    }

    pub(crate) async fn fetch(
        &self,
        path: &str,
        cf: Cf,
        start: i64,
        end: i64,
        res: u64,
    ) -> Result<Series, TimeSeriesError> {
        let cmd = format!(
            "fetch {path} {} -s {start} -e {end} -r {}",
            format::cf_name(cf),
            res.max(1)
        );
        let lines = self.run("fetch", path, &cmd).await?;
        format::parse_rrdtool_fetch(&lines).map_err(|m| rrd_err("fetch", path, m))
    }

    pub(crate) async fn exists(&self, path: &str) -> Result<bool, TimeSeriesError> {
        tokio::fs::try_exists(self.dir.join(path))
            .await
            .map_err(|e| rrd_err("exists", path, e.to_string()))
    }
}
