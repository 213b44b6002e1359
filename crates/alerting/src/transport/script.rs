//! `script`: runs a program with the notification as JSON on its stdin.
//!
//! Config: `argv` (the program — an absolute path — and its arguments; no shell),
//! `env` (extra variables: secrets, all values redacted), `timeout_secs` (30).
//!
//! The program gets a clean environment: `PATH`, `LANG=C.UTF-8`, the `env` of its config
//! and `LOOKOUT_IDEMPOTENCY_KEY`, `LOOKOUT_STATE`, `LOOKOUT_ALERT_ID`, `LOOKOUT_RULE_ID`,
//! `LOOKOUT_RULE`, `LOOKOUT_SEVERITY`, `LOOKOUT_DEVICE_ID`, `LOOKOUT_HOSTNAME`,
//! `LOOKOUT_SEQUENCE`, `LOOKOUT_TIMESTAMP` and `LOOKOUT_TITLE` (the default subject) —
//! never the server's own environment (database URLs, keys). Exit status 0 is delivered;
//! anything else is transient, with the tail of its stderr. Past its timeout the whole
//! process group (the script and whatever it started) is killed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::config::{self, field_error};
use super::{
    CheckFuture, Delivered, DeliveryError, Kind, SendFuture, Transport, TransportConfigError,
};
use crate::notification::Notification;

pub(crate) static KIND: Kind = Kind {
    name: "script",
    build: |c| Ok(Arc::new(Script::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Script::parse(c).map(drop),
    secrets: &[],
    redact: Some(redact),
};

fn redact(m: &mut Map<String, Value>) {
    config::redact_map_values(m, "env");
}

/// Bytes of stderr kept for the error message (the end: where the error usually is).
const STDERR_TAIL: usize = 2048;
/// Bytes of stdout kept for the delivery detail (its first line).
const STDOUT_HEAD: usize = 512;
/// How long pipes may stay open after the script exited (a child it left running).
const PIPE_GRACE: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    argv: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    timeout_secs: Option<f64>,
}

struct Script {
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

impl Script {
    fn parse(v: &Value) -> Result<Script, TransportConfigError> {
        let c: Config = config::parse(v)?;
        let Some((program, args)) = c.argv.split_first() else {
            return Err(field_error("argv", "the program to run is needed"));
        };
        let program = PathBuf::from(program);
        if !program.is_absolute() {
            return Err(field_error(
                "argv[0]",
                format!("`{}` is not an absolute path", program.display()),
            ));
        }
        for k in c.env.keys() {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(field_error(&format!("env.{k}"), "not a variable name"));
            }
        }
        Ok(Script {
            program,
            args: args.to_vec(),
            env: c.env,
            timeout: config::timeout(c.timeout_secs, 30)?,
        })
    }

    fn shown(&self) -> String {
        format!("script {}", self.program.display())
    }

    fn command(&self, n: &Notification) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("LANG", "C.UTF-8")
            .envs(&self.env)
            .envs(notification_env(n))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let shown = self.shown();
        let mut child = self
            .command(n)
            .spawn()
            .map_err(|e| DeliveryError::Permanent(format!("{shown}: cannot run: {e}")))?;
        let input = serde_json::to_vec(n).unwrap_or_default();
        let stdin = child.stdin.take();
        // Written on the side: a script that never reads stdin must not block its wait.
        let writer = tokio::spawn(async move {
            if let Some(mut s) = stdin {
                let _ = s.write_all(&input).await;
            }
        });
        let out = child
            .stdout
            .take()
            .map(|s| tokio::spawn(read_capped(s, STDOUT_HEAD, false)));
        let err = child
            .stderr
            .take()
            .map(|s| tokio::spawn(read_capped(s, STDERR_TAIL, true)));
        let waited = tokio::time::timeout(self.timeout, child.wait()).await;
        writer.abort();
        let status = match waited {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(DeliveryError::Transient(format!(
                    "{shown}: waiting for it: {e}"
                )))
            }
            Err(_) => {
                kill_group(&mut child).await;
                let tail = collect(err).await;
                return Err(DeliveryError::Transient(format!(
                    "{shown}: no exit within {:.1} s, killed{}",
                    self.timeout.as_secs_f64(),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; stderr: {tail}")
                    }
                )));
            }
        };
        let (stdout, stderr) = (collect(out).await, collect(err).await);
        if status.success() {
            let first = stdout.lines().next().unwrap_or("").trim().to_owned();
            return Ok(Delivered {
                detail: if first.is_empty() {
                    format!("{shown} exited 0")
                } else {
                    format!("{shown} exited 0: {first}")
                },
            });
        }
        let how = match status.code() {
            Some(c) => format!("exited {c}"),
            None => "was killed by a signal".to_owned(),
        };
        Err(DeliveryError::Transient(if stderr.is_empty() {
            format!("{shown} {how}")
        } else {
            format!("{shown} {how}: {stderr}")
        }))
    }
}

fn notification_env(n: &Notification) -> Vec<(&'static str, String)> {
    vec![
        ("LOOKOUT_IDEMPOTENCY_KEY", n.idempotency_key.clone()),
        ("LOOKOUT_STATE", n.kind.as_str().to_owned()),
        ("LOOKOUT_ALERT_ID", n.alert_id.to_string()),
        ("LOOKOUT_RULE_ID", n.rule_id.to_string()),
        ("LOOKOUT_RULE", n.rule_name.clone()),
        ("LOOKOUT_SEVERITY", n.severity.clone()),
        ("LOOKOUT_DEVICE_ID", n.device_id.to_string()),
        ("LOOKOUT_HOSTNAME", n.hostname.clone()),
        ("LOOKOUT_SEQUENCE", n.sequence.to_string()),
        ("LOOKOUT_TIMESTAMP", crate::template::rfc3339(n.timestamp)),
        ("LOOKOUT_TITLE", crate::template::title(n)),
    ]
    .into_iter()
    // A NUL cannot be in the environment; such a value is left out, not the whole run.
    .filter(|(_, v)| !v.contains('\0'))
    .collect()
}

/// Kills the script's process group (the script and its children), then reaps it.
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        // The group's id is the script's pid (process_group(0)); it exists while the
        // unreaped script does, so this cannot hit another group.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

/// Reads `r` to its end, keeping its first (or, with `tail`, last) `keep` bytes.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, keep: usize, tail: bool) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > keep {
                    if tail {
                        kept.drain(..kept.len() - keep);
                    } else {
                        kept.truncate(keep);
                    }
                }
            }
        }
    }
    kept
}

/// What a reader kept, waiting briefly: a child the script left behind may hold the pipe.
async fn collect(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> String {
    let Some(mut t) = task else {
        return String::new();
    };
    let bytes = match tokio::time::timeout(PIPE_GRACE, &mut t).await {
        Ok(Ok(b)) => b,
        _ => {
            t.abort();
            Vec::new()
        }
    };
    let s = String::from_utf8_lossy(&bytes);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Transport for Script {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(self.run(n))
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let shown = self.shown();
            let meta = tokio::fs::metadata(&self.program)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
            if !meta.is_file() {
                return Err(format!("{shown}: not a file"));
            }
            if meta.permissions().mode() & 0o111 == 0 {
                return Err(format!("{shown}: not executable"));
            }
            Ok(format!("{shown}: present and executable"))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transport::{redact, validate_config, REDACTED};
    use serde_json::json;

    #[test]
    fn config_checks_and_redaction() {
        let e = |c: Value| validate_config("script", &c).unwrap_err().to_string();
        assert_eq!(
            e(json!({"argv": []})),
            "`argv`: the program to run is needed"
        );
        assert_eq!(
            e(json!({"argv": ["notify.sh"]})),
            "`argv[0]`: `notify.sh` is not an absolute path"
        );
        assert!(e(json!({"argv": "/bin/true"})).starts_with("`argv`: invalid type"));
        let r = redact("script", &json!({"argv": ["/x"], "env": {"TOKEN": "t"}}));
        assert_eq!(r["env"]["TOKEN"], REDACTED);
        assert_eq!(r["argv"][0], "/x");
    }

    #[test]
    fn env_carries_the_notification() {
        let env = notification_env(&crate::template::example());
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("LOOKOUT_IDEMPOTENCY_KEY"),
            "lookout-alert:r7:d3:ports:12:alert:0"
        );
        assert_eq!(get("LOOKOUT_STATE"), "alert");
        assert_eq!(get("LOOKOUT_HOSTNAME"), "core1.example.net");
        assert_eq!(get("LOOKOUT_TIMESTAMP"), "2026-01-02T03:09:05Z");
    }
}
