//! A web instance with made-up data, to look at (or click through) the UI without SNMP or a
//! poller: `cargo run -p lookout-web --example demo -- [ADDR:PORT]` (default 127.0.0.1:8001),
//! log in as `admin` / `demo-password`. Everything lives in a temporary directory that is
//! removed on exit. Two days of synthetic traffic are written to the RRD files.
//! `DEMO_EXTRA_DEVICES=N` adds N more devices (each with 24 ports, no RRD files) to look at
//! how the pages scale.

use std::error::Error;
use std::f64::consts::PI;

use lookout_core::{DevicePollUpdate, DeviceStatus, NewDevice, PortCounters, PortPoll, SnmpConfig};
use lookout_store::{Severity, Store, StoreConfig};
use lookout_timeseries::{defs, TimeSeries, TimeSeriesConfig, Value};
use lookout_web::{hash_password, router, AppKey, WebState};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_string());
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.path().join("lookout.sqlite"),
    })
    .await?;
    store.migrate().await?;
    let rrd_dir = dir.path().join("rrd");
    std::fs::create_dir_all(&rrd_dir)?;
    let ts = TimeSeries::open(&TimeSeriesConfig::Local { rrd_dir }).await?;
    store
        .add_user("admin", &hash_password("demo-password")?, 10)
        .await?;

    let now = chrono::Utc::now();
    for (host, up) in [("core1.demo", true), ("edge2.demo", false)] {
        let d = store
            .add_device(&NewDevice {
                hostname: host.to_string(),
                snmp: SnmpConfig::default(),
                poller_group: 0,
            })
            .await?;
        store
            .update_device_poll(
                d.device_id,
                &DevicePollUpdate {
                    sys_name: Some(host.replace(".demo", "")),
                    sys_descr: Some("Linux demo 6.1.0-13-amd64 #1 SMP x86_64".into()),
                    sys_object_id: Some("1.3.6.1.4.1.8072.3.2.10".into()),
                    sys_contact: Some("noc@example.net".into()),
                    sys_location: Some("DC1, rack 4".into()),
                    os: Some("linux".into()),
                    hardware: Some("x86_64".into()),
                    version: Some("6.1.0".into()),
                    serial: None,
                    uptime: Some(1_234_567),
                    uptime_source: None,
                    status: if up {
                        DeviceStatus::Up
                    } else {
                        DeviceStatus::Down
                    },
                    status_reason: if up { String::new() } else { "icmp".into() },
                    last_polled: now,
                    last_polled_timetaken: 0.42,
                },
            )
            .await?;
        let ports = |k: u64| {
            vec![
                port("eth0", 2, k * 300 * 1_250_000, k * 300 * 125_000),
                port("eth1", 3, k * 300 * 10_000, k * 300 * 40_000),
            ]
        };
        store
            .sync_ports(d.device_id, &ports(0), now - chrono::Duration::seconds(300))
            .await?;
        let synced = store.sync_ports(d.device_id, &ports(1), now).await?;
        store
            .log_event(
                Some(d.device_id),
                "system",
                "device added",
                Severity::Info,
                None,
            )
            .await?;
        // Two days of traffic: a daily sine wave.
        let def = defs::port(300);
        let start = (now.timestamp() / 300) * 300 - 2 * 86_400;
        for p in &synced.ports {
            let path = format!("{host}/port-id{}.rrd", p.port_id);
            let (mut cin, mut cout) = (0u64, 0u64);
            for k in 0..=(2 * 86_400 / 300) {
                let t = start + k * 300;
                let phase = (t % 86_400) as f64 / 86_400.0 * 2.0 * PI;
                let rate = 1_000_000.0 * (1.2 + phase.sin());
                cin += (rate * 300.0) as u64;
                cout += (rate * 0.3 * 300.0) as u64;
                let mut values = vec![Value::Unknown; def.sources.len()];
                values[0] = Value::Counter(cin);
                values[1] = Value::Counter(cout);
                ts.update(&path, &def, t, &values).await?;
            }
        }
    }

    let extra: u32 = std::env::var("DEMO_EXTRA_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for i in 0..extra {
        let d = store
            .add_device(&NewDevice {
                hostname: format!("sw{i:05}.demo"),
                snmp: SnmpConfig::default(),
                poller_group: 0,
            })
            .await?;
        let ports: Vec<PortPoll> = (1..=24)
            .map(|k| port(&format!("ge-0/0/{k}"), k, 0, 0))
            .collect();
        store.sync_ports(d.device_id, &ports, now).await?;
    }

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "demo web UI on http://{}/ (admin / demo-password); Ctrl-C to stop",
        listener.local_addr()?
    );
    let app = router(WebState {
        coord: lookout_coord::Coord::memory(),
        store,
        timeseries: ts,
        app_key: AppKey::generate(),
        poll_interval_secs: 300,
        node_name: "demo".to_string(),
        alerting: None,
        security: Default::default(),
        prober: None,
        rrd_disk: None,
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    drop(dir);
    Ok(())
}

fn port(name: &str, if_index: i64, in_octets: u64, out_octets: u64) -> PortPoll {
    PortPoll {
        if_index,
        if_name: Some(name.into()),
        if_descr: Some(name.into()),
        if_alias: Some(format!("{name} demo link")),
        if_type: Some("ethernetCsmacd".into()),
        if_mtu: Some(1500),
        if_speed: Some(1_000_000_000),
        if_phys_address: None,
        if_admin_status: Some("up".into()),
        if_oper_status: Some("up".into()),
        counters: PortCounters {
            in_octets: Some(in_octets),
            out_octets: Some(out_octets),
            hc: true,
            ..PortCounters::default()
        },
    }
}
