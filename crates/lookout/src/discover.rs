//! `lookout device discover HOST|--all`: runs discovery now (a full poll with the
//! discovery-only work forced: OS, hardware, ports, processors, memory, storage, IP
//! addresses, LLDP/CDP neighbours) and prints what it found, as stored.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use lookout_core::Device;
use lookout_poller::{Poller, PollerConfig};
use lookout_store::Store;
use serde_json::json;

use crate::commands::{open_migrated, open_timeseries};
use crate::config::Config;

pub async fn run(cfg: &Config, host: Option<String>, all: bool, json: bool) -> Result<ExitCode> {
    let store = open_migrated(cfg).await?;
    let devices: Vec<Device> = match (host, all) {
        (Some(_), true) => bail!("give a HOST or --all, not both"),
        (None, false) => bail!("give a HOST or --all"),
        (None, true) => store.devices().await?,
        (Some(h), false) => match store.device_by_hostname(&h).await? {
            Some(d) => vec![d],
            None => bail!("no device {h:?} (add it with `lookout device add {h}`)"),
        },
    };
    let ts = open_timeseries(cfg).await?;
    let poller = Poller::new(
        store.clone(),
        ts.clone(),
        PollerConfig {
            step_secs: cfg.poll_interval_secs,
            ..PollerConfig::default()
        },
    )
    .await
    .context("cannot start the poller")?;
    let mut out = Vec::new();
    let mut all_up = true;
    for d in devices.iter().filter(|d| !d.disabled) {
        let r = poller.discover(d).await?;
        all_up &= r.status.is_up();
        let found = found(&store, d.device_id, &r).await?;
        if json {
            out.push(found);
        } else {
            print(&found);
        }
    }
    // Through rrdcached, make sure the updates are in the files before exiting.
    if let Err(e) = ts.flush(std::time::Duration::from_secs(30)).await {
        eprintln!("warning: time-series updates not yet flushed: {e}");
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "devices": out }))?
        );
    }
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// What discovery found, read back from the store (port names resolved).
async fn found(
    store: &Store,
    id: i64,
    r: &lookout_poller::PollReport,
) -> Result<serde_json::Value> {
    let d = store
        .device(id)
        .await?
        .context("device removed meanwhile")?;
    let ports = store.ports(id).await?;
    let name = |pid: Option<i64>| {
        pid.and_then(|pid| ports.iter().find(|p| p.port_id == pid))
            .map(|p| p.label())
    };
    let mut ips: Vec<serde_json::Value> = store
        .ipv4_addresses(id)
        .await?
        .iter()
        .map(|a| json!({"port": name(Some(a.port_id)), "address": format!("{}/{}", a.ipv4_address, a.ipv4_prefixlen)}))
        .collect();
    ips.extend(store.ipv6_addresses(id).await?.iter().map(|a| {
        json!({"port": name(Some(a.port_id)), "address": format!("{}/{}", a.ipv6_compressed, a.ipv6_prefixlen)})
    }));
    let links: Vec<serde_json::Value> = store
        .links(id)
        .await?
        .iter()
        .map(|l| {
            json!({
                "local_port": name(l.local_port_id), "protocol": l.protocol,
                "remote_hostname": l.remote_hostname, "remote_port": l.remote_port,
                "remote_platform": l.remote_platform, "remote_device_id": l.remote_device_id,
            })
        })
        .collect();
    Ok(json!({
        "hostname": d.hostname,
        "status": if r.status.is_up() { 1 } else { 0 },
        "status_reason": r.status_reason,
        "os": d.os,
        "hardware": d.hardware,
        "version": d.version,
        "serial": d.serial,
        "last_discovered": d.last_discovered,
        "ports": ports.iter().map(|p| p.label()).collect::<Vec<_>>(),
        "processors": r.processors.iter().map(|p| &p.processor_descr).collect::<Vec<_>>(),
        "mempools": r.mempools.iter().map(|m| &m.mempool_descr).collect::<Vec<_>>(),
        "storage": r.storage.iter().map(|s| &s.storage_descr).collect::<Vec<_>>(),
        "ip_addresses": ips,
        "neighbours": links,
    }))
}

fn print(f: &serde_json::Value) {
    let s = |k: &str| match &f[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        v => v.to_string(),
    };
    let list = |k: &str| -> Vec<String> {
        f[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    println!(
        "{} is {}{}",
        s("hostname"),
        if f["status"] == 1 { "UP" } else { "DOWN" },
        match s("status_reason").as_str() {
            "" => String::new(),
            r => format!(", reason: {r}"),
        }
    );
    println!(
        "  os {}  hardware {}  version {}  serial {}",
        s("os"),
        s("hardware"),
        s("version"),
        s("serial")
    );
    for (k, title) in [
        ("ports", "ports"),
        ("processors", "processors"),
        ("mempools", "mempools"),
        ("storage", "storage"),
    ] {
        let l = list(k);
        println!("  {title:<11} {:>3}  {}", l.len(), l.join(", "));
    }
    let ips = f["ip_addresses"].as_array().cloned().unwrap_or_default();
    println!("  {:<11} {:>3}", "ips", ips.len());
    for a in &ips {
        println!(
            "    {:<20} {}",
            a["port"].as_str().unwrap_or("-"),
            a["address"].as_str().unwrap_or("-")
        );
    }
    let links = f["neighbours"].as_array().cloned().unwrap_or_default();
    println!("  {:<11} {:>3}", "neighbours", links.len());
    for l in &links {
        println!(
            "    {:<20} {:<4} {} {}",
            l["local_port"].as_str().unwrap_or("-"),
            l["protocol"].as_str().unwrap_or("-"),
            l["remote_hostname"].as_str().unwrap_or("-"),
            l["remote_port"].as_str().unwrap_or("-")
        );
    }
}
