//! Throughput of the coordination backends: enqueue, and claim+ack by concurrent workers,
//! against the memory backend and a redis-server this program starts on a free loopback
//! port (killed on exit).
//!
//! `cargo run -p lookout-coord --release --example coordbench -- [devices] [workers]`

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use lookout_coord::{Coord, CoordConfig, RedisConfig, Work};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(dir: &std::path::Path) -> Result<(Server, u16)> {
    let bin = "/usr/bin/redis-server";
    if !std::path::Path::new(bin).exists() {
        bail!("{bin} missing: install the Debian package `redis-server`");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start redis-server")?;
    let server = Server(child);
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(5) {
            bail!("redis-server did not come up on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, port))
}

async fn run(name: &str, make: impl Fn() -> Coord, devices: i64, workers: usize) -> Result<()> {
    let c = make();
    let now = Utc::now();
    let t = Instant::now();
    for d in 0..devices {
        c.enqueue((d % 4) as i32, d, now, Work::Poll).await?;
    }
    let enq = t.elapsed();

    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        // One handle (one connection for Redis) per worker, as on separate nodes.
        let c = make();
        tasks.push(tokio::spawn(async move {
            let me = format!("w{w}");
            let mut n = 0u64;
            while let Some(cl) = c.claim(&[0, 1, 2, 3], &me, Duration::from_secs(60)).await? {
                if !c.ack(&cl).await? {
                    bail!("ack refused for device {}", cl.device_id);
                }
                n += 1;
            }
            Ok::<u64, anyhow::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let claim = t.elapsed();
    if total != devices as u64 {
        bail!("{name}: {total} claims for {devices} devices");
    }
    println!(
        "{name:>6}: enqueue {:>9.0}/s (one task)   claim+ack {:>9.0}/s ({workers} workers, {devices} devices, {:.2} s)",
        devices as f64 / enq.as_secs_f64(),
        devices as f64 / claim.as_secs_f64(),
        claim.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let devices: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let workers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);

    let mem = Coord::memory();
    run("memory", || mem.clone(), devices, workers).await?;

    let dir = tempfile::tempdir()?;
    let (_server, port) = start_redis(dir.path())?;
    let cfg = CoordConfig::Redis(RedisConfig::direct("127.0.0.1", port));
    let mut handles = Vec::new();
    for _ in 0..=workers {
        handles.push(Coord::connect(&cfg).await?);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    run(
        "redis",
        || handles[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % handles.len()].clone(),
        devices,
        workers,
    )
    .await?;
    Ok(())
}
