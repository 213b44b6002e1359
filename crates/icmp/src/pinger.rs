//! The batching pinger: one long-lived task that gathers the ping requests of many
//! concurrent polls for a short window and answers them from one fping run each.
//!
//! Why: a poll's ping lasts `(count - 1) * interval` (1 s with LibreNMS's 3 × 500 ms)
//! whoever runs it, but one fping per device costs a process start, a raw socket and its
//! own copy of every echo reply on the machine; at 10,000 devices a minute that is ~170
//! processes a second. Batched, a run covers up to `max_hosts` hosts for about the CPU of
//! one (docs/benchmarks.md).
//!
//! Rules: a host already waiting in the forming batch or in a running one is not pinged
//! twice, the new request waits for that run's answer; at most `max_runs` fping
//! processes run at once (the forming batch keeps growing meanwhile); names are resolved
//! by the requester (so one slow DNS answer delays no one else's batch) and fping is given
//! addresses; a run that fails as a whole (exit status ≥ 3, a signal) is split in halves
//! until the host that broke it is alone, so one bad host never fails the others.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::batch::{batch_results, RunStatus};
use crate::{IcmpError, PingConfig, PingResult};

type Answer = Result<PingResult, IcmpError>;
/// A batch's answers, boxed because [`ping_batch`] recurses.
type BatchFuture<'a> = Pin<Box<dyn Future<Output = Vec<(String, Answer)>> + Send + 'a>>;

/// Handle to the batching task; cheap to clone. The task ends once every handle is
/// dropped and the runs it started have answered.
#[derive(Clone)]
pub struct Pinger {
    tx: mpsc::UnboundedSender<Request>,
}

struct Request {
    /// The name asked for: what identifies a request in a batch, and what errors name.
    host: String,
    /// What fping is given: an address.
    target: String,
    reply: oneshot::Sender<Answer>,
}

impl Pinger {
    /// Starts the batching task on the current tokio runtime.
    pub fn spawn(config: PingConfig) -> Pinger {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::new(config), rx));
        Pinger { tx }
    }

    /// Pings `host` in the next batch. As [`crate::ping`]: a host that does not answer is
    /// `Ok` with `received == 0`; a name that does not resolve is [`IcmpError::Resolve`].
    pub async fn ping(&self, host: &str) -> Answer {
        let target = resolve_target(host).await?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                host: host.to_string(),
                target,
                reply,
            })
            .map_err(|_| IcmpError::Stopped)?;
        rx.await.map_err(|_| IcmpError::Stopped)?
    }

    /// Starts pinging `host` now and returns a handle to await later, so that the caller
    /// can do other work (a poll's SNMP walks) while fping runs. Dropping the handle
    /// abandons the request.
    pub fn start(&self, host: &str) -> PendingPing {
        let pinger = self.clone();
        let host = host.to_string();
        let task = tokio::spawn(async move {
            let t = Instant::now();
            let r = pinger.ping(&host).await;
            (r, t.elapsed())
        });
        PendingPing { task }
    }
}

/// A ping started with [`Pinger::start`].
pub struct PendingPing {
    task: tokio::task::JoinHandle<(Answer, Duration)>,
}

impl PendingPing {
    /// The answer and how long it took from [`Pinger::start`] to the answer (not to this
    /// call).
    pub async fn finish(mut self) -> (Answer, Duration) {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => (
                Err(IcmpError::Fping {
                    status: "internal".into(),
                    message: format!("ping task ended: {e}"),
                }),
                Duration::ZERO,
            ),
        }
    }
}

impl Drop for PendingPing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What fping is given for `host`: the address itself for a literal, else the first
/// address the system resolver gives (as the SNMP session's), scope id kept for link-local.
async fn resolve_target(host: &str) -> Result<String, IcmpError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    // The resolver has its own timeouts; this bounds a hung one.
    let lookup =
        tokio::time::timeout(Duration::from_secs(15), tokio::net::lookup_host((bare, 0))).await;
    let addr = match lookup {
        Ok(Ok(mut addrs)) => addrs.next(),
        Ok(Err(e)) => {
            tracing::debug!(host, error = %e, "ping: name does not resolve");
            None
        }
        Err(_) => None,
    };
    match addr {
        Some(SocketAddr::V6(a)) if a.scope_id() != 0 => Ok(format!("{}%{}", a.ip(), a.scope_id())),
        Some(a) => Ok(a.ip().to_string()),
        None => Err(IcmpError::Resolve(host.to_string())),
    }
}

/// One host of a batch: the host asked for and the address fping is given.
#[derive(Clone)]
struct Target {
    host: String,
    target: String,
}

/// The task: gathers requests into the forming batch, starts a run when the window is
/// over (or the batch is full) and a run slot is free, and hands each run's answers to
/// every request that waits for them.
async fn run(config: Arc<PingConfig>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let b = &config.batch;
    let max_hosts = b.max_hosts.max(1);
    let max_runs = b.max_runs.max(1);
    // Requests waiting per host, whether in the forming batch or in a running one.
    let mut waiting: HashMap<String, Vec<oneshot::Sender<Answer>>> = HashMap::new();
    let mut forming: Vec<Target> = Vec::new();
    let mut window_ends: Option<tokio::time::Instant> = None;
    let mut runs: JoinSet<Vec<(String, Answer)>> = JoinSet::new();
    let mut run_hosts: HashMap<tokio::task::Id, Vec<String>> = HashMap::new();
    let mut open = true;
    loop {
        let full = forming.len() >= max_hosts;
        // Full, or no more requests coming: start as soon as a slot is free.
        let start_at = if full || !open {
            Some(tokio::time::Instant::now())
        } else {
            window_ends
        };
        let can_start = !forming.is_empty() && runs.len() < max_runs;
        tokio::select! {
            req = rx.recv(), if open && !full => match req {
                Some(r) => {
                    if let Some(w) = waiting.get_mut(&r.host) {
                        // Already in a batch: that batch's answer is this one's too.
                        w.push(r.reply);
                        continue;
                    }
                    waiting.insert(r.host.clone(), vec![r.reply]);
                    if forming.is_empty() {
                        window_ends = Some(tokio::time::Instant::now() + b.window);
                    }
                    forming.push(Target { host: r.host, target: r.target });
                }
                None => open = false,
            },
            _ = sleep_until_opt(start_at), if can_start => {
                let batch = std::mem::take(&mut forming);
                window_ends = None;
                tracing::trace!(hosts = batch.len(), running = runs.len(), "fping batch");
                let hosts = batch.iter().map(|t| t.host.clone()).collect();
                let cfg = Arc::clone(&config);
                let handle = runs.spawn(async move { ping_batch(&cfg, batch).await });
                run_hosts.insert(handle.id(), hosts);
            },
            Some(done) = runs.join_next_with_id(), if !runs.is_empty() => {
                let (id, answers) = match done {
                    Ok((id, answers)) => (id, answers),
                    Err(e) => {
                        let err = IcmpError::Fping {
                            status: "internal".into(),
                            message: format!("batch task ended: {e}"),
                        };
                        let hosts = run_hosts.get(&e.id()).cloned().unwrap_or_default();
                        (e.id(), hosts.into_iter().map(|h| (h, Err(err.clone()))).collect())
                    }
                };
                run_hosts.remove(&id);
                for (host, answer) in answers {
                    for reply in waiting.remove(&host).unwrap_or_default() {
                        // The requester may have given up (its poll was dropped).
                        let _ = reply.send(answer.clone());
                    }
                }
            },
            else => break,
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Pings every target of a batch: one fping run, split in halves (run side by side)
/// when that run failed as a whole.
fn ping_batch(config: &PingConfig, batch: Vec<Target>) -> BatchFuture<'_> {
    Box::pin(async move {
        match fping_run(config, &batch).await {
            Ok(answers) => batch.into_iter().map(|t| t.host).zip(answers).collect(),
            Err(RunError::Whole(e)) => batch
                .into_iter()
                .map(|t| (t.host, Err(e.clone())))
                .collect(),
            Err(RunError::Status(e)) if batch.len() == 1 => batch
                .into_iter()
                .map(|t| (t.host, Err(e.clone())))
                .collect(),
            Err(RunError::Status(e)) => {
                tracing::debug!(hosts = batch.len(), error = %e, "fping batch failed; splitting it");
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                let (mut a, b) =
                    tokio::join!(ping_batch(config, first), ping_batch(config, second));
                a.extend(b);
                a
            }
        }
    })
}

enum RunError {
    /// Every target's answer (fping missing, cannot start, hung): splitting cannot help.
    Whole(IcmpError),
    /// fping said the run failed (exit status ≥ 3, a signal): some target may be the cause.
    Status(IcmpError),
}

/// One fping process over `batch`; answers in the batch's order.
async fn fping_run(config: &PingConfig, batch: &[Target]) -> Result<Vec<Answer>, RunError> {
    if !config.fping.exists() {
        return Err(RunError::Whole(IcmpError::FpingMissing(
            config.fping.clone(),
        )));
    }
    let count = config.count.max(1);
    let interval = config.interval_ms.max(20);
    let timeout = config.timeout_ms.max(50);
    let spacing = config.batch.spacing_ms.max(1);
    let mut cmd = Command::new(&config.fping);
    cmd.arg("-q")
        .arg("-c")
        .arg(count.to_string())
        .arg("-p")
        .arg(interval.to_string())
        .arg("-t")
        .arg(timeout.to_string())
        .arg("-i")
        .arg(spacing.to_string())
        .arg("--")
        .args(batch.iter().map(|t| &t.target))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // fping's own timeouts bound the run (a round of N hosts takes N * spacing); this
    // guards against a hung process.
    let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    let budget = Duration::from_millis(
        u64::from(count) * (u64::from(interval) + n.saturating_mul(u64::from(spacing)))
            + u64::from(timeout)
            + 5_000,
    );
    let output = tokio::time::timeout(budget, cmd.output())
        .await
        .map_err(|_| RunError::Whole(IcmpError::Parse("fping did not finish in time".into())))?
        .map_err(|e| RunError::Whole(IcmpError::Spawn(Arc::new(e))))?;
    // fping -q writes its summaries to stderr.
    let text = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    tracing::trace!(hosts = batch.len(), ?code, output = %text, "fping");
    let hosts: Vec<&str> = batch.iter().map(|t| t.host.as_str()).collect();
    let targets: Vec<&str> = batch.iter().map(|t| t.target.as_str()).collect();
    batch_results(&text, RunStatus::from_code(code), &hosts, &targets).ok_or_else(|| {
        RunError::Status(IcmpError::Fping {
            status: code.map_or_else(
                || "killed by a signal".into(),
                |c| format!("exit status {c}"),
            ),
            message: text.trim().chars().take(500).collect(),
        })
    })
}
