//! Poller-side CPU per varbind for bulk walks of ifTable + ifXTable, the way a poller walks
//! interfaces (one `walk` per table and device, many devices at once over one client).
//!
//! Two kinds of agent, each in its own process so that only the poller's CPU is measured:
//! - `--agent synthetic` (default): this program re-executed in agent mode, serving a
//!   synthetic IF-MIB of `--ifaces` interfaces (22 ifTable + 19 ifXTable columns each) on
//!   `--devices` UDP ports of 127.0.0.1, from pre-encoded varbinds so it stays cheap;
//! - `--agent snmpd`: a real net-snmp snmpd listening on `--devices` loopback addresses
//!   (127.0.0.2, ...), serving this machine's own interfaces.
//!
//! Run: `cargo run --release -p lookout-snmp --example walkbench -- --devices 1000 --ifaces 48`
//! (`--agent snmpd --v3` walks over SNMPv3 authPriv SHA-256/AES-256 instead of v2c;
//! `--no-batch` turns off recvmmsg/sendmmsg, for comparison).
//! It prints devices/s, PDUs/s, varbinds, poller CPU per varbind and per device, and the
//! agent's CPU (if the agent used ~100 % of a core, it was the bottleneck).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_core::SnmpConfig;
use lookout_snmp::ber::{tag, Writer};
use lookout_snmp::pdu::{decode_community_message, AnyPdu, PduType};
use lookout_snmp::{ClientOptions, Oid, SnmpClient, Value};
use tokio::net::UdpSocket;

struct Args {
    agent: String,
    devices: usize,
    ifaces: u32,
    rounds: usize,
    concurrency: usize,
    max_reps: u32,
    port_base: u16,
    v3: bool,
    batch_io: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        agent: "synthetic".into(),
        devices: 100,
        ifaces: 48,
        rounds: 3,
        concurrency: 256,
        max_reps: 50,
        port_base: 0,
        v3: false,
        batch_io: true,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--agent" => a.agent = val,
            "--devices" => a.devices = val.parse().unwrap(),
            "--ifaces" => a.ifaces = val.parse().unwrap(),
            "--rounds" => a.rounds = val.parse().unwrap(),
            "--concurrency" => a.concurrency = val.parse().unwrap(),
            "--max-reps" => a.max_reps = val.parse().unwrap(),
            "--port-base" => a.port_base = val.parse().unwrap(),
            "--v3" => {
                a.v3 = true;
                i += 1;
                continue;
            }
            "--no-batch" => {
                a.batch_io = false;
                i += 1;
                continue;
            }
            "agent-mode" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    if a.port_base == 0 {
        a.port_base = 20_000 + (std::process::id() % 20_000) as u16;
    }
    a
}

/// CPU seconds of a process. Both the poller (current_thread runtime) and the agents are
/// single-threaded, so the main thread's schedstat (ns precision) is the process's CPU;
/// /proc/PID/stat (10 ms ticks) is the fallback.
fn cpu_seconds(pid: &str) -> f64 {
    if let Some(ns) = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
    {
        return ns / 1e9;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// The synthetic IF-MIB: (oid, pre-encoded varbind) in OID order.
fn synthetic_mib(ifaces: u32) -> Vec<(Oid, Vec<u8>)> {
    let mut v = Vec::new();
    let if_entry = [1, 3, 6, 1, 2, 1, 2, 2, 1];
    let ifx_entry = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
    for col in 1..=22u32 {
        for i in 1..=ifaces {
            let val = match col {
                1 => Value::Integer(i64::from(i)),
                2 => Value::OctetString(format!("GigabitEthernet0/{i}").into_bytes()),
                3 => Value::Integer(6),
                4 => Value::Integer(1500),
                5 => Value::Gauge32(1_000_000_000),
                6 => Value::OctetString(vec![0, 0x1b, 0x21, 0x3c, (i >> 8) as u8, i as u8]),
                7 | 8 => Value::Integer(1),
                9 => Value::TimeTicks(12_345 + i),
                22 => Value::ObjectId(Oid::from([0, 0])),
                21 => Value::Gauge32(0),
                _ => Value::Counter32(i.wrapping_mul(7_919).wrapping_mul(col)),
            };
            v.push((Oid::new(&if_entry).join(&[col, i]), val));
        }
    }
    for col in 1..=19u32 {
        for i in 1..=ifaces {
            let val = match col {
                1 => Value::OctetString(format!("Gi0/{i}").into_bytes()),
                2..=5 => Value::Counter32(i * col),
                6..=13 => Value::Counter64(u64::from(i) * 1_000_000_007 * u64::from(col)),
                15 => Value::Gauge32(1000),
                18 => Value::OctetString(format!("uplink to rack {i}").into_bytes()),
                19 => Value::TimeTicks(0),
                _ => Value::Integer(1),
            };
            v.push((Oid::new(&ifx_entry).join(&[col, i]), val));
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter()
        .map(|(o, val)| {
            let mut w = Writer::new();
            let m = w.open(tag::SEQUENCE);
            w.oid(&o);
            w.value(&val);
            w.close(m);
            (o, w.into_vec())
        })
        .collect()
}

/// Agent mode: serve the synthetic MIB on `devices` ports.
fn run_agent(a: &Args) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mib = Arc::new(synthetic_mib(a.ifaces));
        for d in 0..a.devices {
            let port = a.port_base + d as u16;
            let sock = UdpSocket::bind(("127.0.0.1", port))
                .await
                .expect("agent bind");
            let mib = mib.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                        continue;
                    };
                    if let Some(resp) = answer(&mib, &buf[..n]) {
                        let _ = sock.send_to(&resp, from).await;
                    }
                }
            });
        }
        println!("ready");
        std::future::pending::<()>().await;
    });
}

fn answer(mib: &[(Oid, Vec<u8>)], req: &[u8]) -> Option<Vec<u8>> {
    let msg = decode_community_message(req).ok()?;
    let AnyPdu::Pdu(pdu) = msg.pdu else {
        return None;
    };
    let next = |o: &Oid| mib.partition_point(|(m, _)| m <= o);
    let end_of_mib = |o: &Oid| {
        let mut w = Writer::new();
        let m = w.open(tag::SEQUENCE);
        w.oid(o);
        w.value(&Value::EndOfMibView);
        w.close(m);
        w.into_vec()
    };
    let mut vbs: Vec<u8> = Vec::with_capacity(8192);
    match pdu.pdu_type {
        PduType::GetBulk | PduType::GetNext => {
            let (nr, mr) = if pdu.pdu_type == PduType::GetBulk {
                (
                    pdu.error_status.max(0) as usize,
                    pdu.error_index.max(0) as usize,
                )
            } else {
                (pdu.varbinds.len(), 0)
            };
            let mut cursors: Vec<usize> = pdu.varbinds.iter().map(|v| next(&v.oid)).collect();
            for (k, c) in cursors.iter().enumerate().take(nr) {
                match mib.get(*c) {
                    Some((_, e)) => vbs.extend_from_slice(e),
                    None => vbs.extend_from_slice(&end_of_mib(&pdu.varbinds[k].oid)),
                }
            }
            'rows: for _ in 0..mr {
                for (k, c) in cursors.iter_mut().enumerate().skip(nr) {
                    match mib.get(*c) {
                        Some((_, e)) => vbs.extend_from_slice(e),
                        None => vbs.extend_from_slice(&end_of_mib(&pdu.varbinds[k].oid)),
                    }
                    *c += 1;
                }
                if vbs.len() > 60_000 {
                    break 'rows;
                }
            }
        }
        _ => {
            for v in &pdu.varbinds {
                match mib.binary_search_by(|(m, _)| m.cmp(&v.oid)) {
                    Ok(i) => vbs.extend_from_slice(&mib[i].1),
                    Err(_) => {
                        let mut w = Writer::new();
                        let m = w.open(tag::SEQUENCE);
                        w.oid(&v.oid);
                        w.value(&Value::NoSuchObject);
                        w.close(m);
                        vbs.extend_from_slice(&w.buf);
                    }
                }
            }
        }
    }
    let mut w = Writer::new();
    let m = w.open(tag::SEQUENCE);
    w.integer(msg.version.wire());
    w.octets(&msg.community);
    let p = w.open(PduType::Response.tag());
    w.integer(i64::from(pdu.request_id));
    w.integer(0);
    w.integer(0);
    w.tlv(tag::SEQUENCE, &vbs);
    w.close(p);
    w.close(m);
    Some(w.into_vec())
}

struct AgentProc {
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_synthetic(a: &Args) -> (AgentProc, Vec<SocketAddr>) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "agent-mode",
            "--devices",
            &a.devices.to_string(),
            "--ifaces",
        ])
        .arg(a.ifaces.to_string())
        .args(["--port-base", &a.port_base.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut b = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut b).expect("agent did not start");
    let addrs = (0..a.devices)
        .map(|d| SocketAddr::from(([127, 0, 0, 1], a.port_base + d as u16)))
        .collect();
    (AgentProc { child, _dir: None }, addrs)
}

fn start_snmpd(a: &Args) -> (AgentProc, Vec<SocketAddr>) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("snmpd.conf");
    std::fs::write(
        &conf,
        "rocommunity public 127.0.0.0/8\n\
         createUser bench SHA-256 \"benchpassword\" AES-256 \"benchprivpass\"\n\
         rouser bench priv\n",
    )
    .unwrap();
    let addrs: Vec<SocketAddr> = (0..a.devices)
        .map(|d| {
            SocketAddr::from((
                [127, 0, (2 + d / 250) as u8, (2 + d % 250) as u8],
                a.port_base,
            ))
        })
        .collect();
    let listen: Vec<String> = addrs.iter().map(|s| format!("udp:{s}")).collect();
    let child = Command::new("/usr/sbin/snmpd")
        .args(["-f", "-Lf", "/dev/null", "-C", "-c"])
        .arg(&conf)
        .args(["-I", "-smux", "-p"])
        .arg(dir.path().join("pid"))
        .arg(format!("--persistentDir={}", dir.path().display()))
        .arg(listen.join(","))
        .env("MIBS", "")
        .spawn()
        .expect("snmpd (Debian package snmpd) is needed for --agent snmpd");
    std::thread::sleep(Duration::from_millis(500 + 2 * a.devices as u64));
    (
        AgentProc {
            child,
            _dir: Some(dir),
        },
        addrs,
    )
}

fn main() {
    let a = parse_args();
    if std::env::args().nth(1).as_deref() == Some("agent-mode") {
        run_agent(&a);
        return;
    }
    let (agent, addrs) = match a.agent.as_str() {
        "synthetic" => start_synthetic(&a),
        "snmpd" => start_snmpd(&a),
        other => panic!("unknown agent {other}"),
    };
    let agent_pid = agent.child.id().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = SnmpClient::bind(
            "0.0.0.0:0".parse().unwrap(),
            ClientOptions {
                max_repetitions: a.max_reps,
                batch_io: a.batch_io,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut cfg = SnmpConfig {
            timeout_ms: 5000,
            retries: 1,
            ..Default::default()
        };
        if a.v3 {
            assert_eq!(a.agent, "snmpd", "--v3 needs --agent snmpd");
            cfg.version = lookout_core::SnmpVersion::V3;
            cfg.v3 = Some(lookout_core::SnmpV3Config {
                security_level: "authPriv".into(),
                auth_user: "bench".into(),
                auth_protocol: "SHA-256".into(),
                auth_password: "benchpassword".into(),
                priv_protocol: "AES-256".into(),
                priv_password: "benchprivpass".into(),
            });
        }
        let sessions: Vec<_> = addrs
            .iter()
            .map(|ad| client.session(*ad, &cfg).unwrap())
            .collect();
        let tables = [
            Oid::parse("1.3.6.1.2.1.2.2").unwrap(),
            Oid::parse("1.3.6.1.2.1.31.1.1").unwrap(),
        ];
        // Warm-up round (not measured): first packets, allocator growth.
        let _ = walk_all(&sessions, &tables, a.concurrency).await;
        let stats0 = client.stats();
        let cpu0 = cpu_seconds("self");
        let acpu0 = cpu_seconds(&agent_pid);
        let t0 = Instant::now();
        let mut varbinds = 0usize;
        for _ in 0..a.rounds {
            varbinds += walk_all(&sessions, &tables, a.concurrency).await;
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds("self") - cpu0;
        let acpu = cpu_seconds(&agent_pid) - acpu0;
        let st = client.stats();
        let pdus = st.responses - stats0.responses;
        let walks = a.devices * a.rounds;
        println!(
            "agent={}{}{} devices={} ifaces={} rounds={} max_reps={} varbinds={} pdus={} timeouts={}",
            a.agent,
            if a.v3 { " (v3 SHA-256/AES-256)" } else { "" },
            if a.batch_io { "" } else { " (no batch I/O)" },
            a.devices,
            if a.agent == "synthetic" { a.ifaces.to_string() } else { "host's".into() },
            a.rounds,
            a.max_reps,
            varbinds,
            pdus,
            st.timeouts - stats0.timeouts
        );
        println!(
            "wall={wall:.3}s devices/s={:.0} pdus/s={:.0} varbinds/s={:.0}",
            walks as f64 / wall,
            pdus as f64 / wall,
            varbinds as f64 / wall
        );
        println!(
            "poller_cpu={cpu:.2}s cpu_per_varbind={:.3}us cpu_per_device={:.1}us cpu_s_per_1000_devices={:.3} poller_core_use={:.0}%",
            cpu * 1e6 / varbinds.max(1) as f64,
            cpu * 1e6 / walks as f64,
            cpu * 1000.0 / walks as f64,
            cpu * 100.0 / wall
        );
        println!(
            "agent_cpu={acpu:.2}s agent_core_use={:.0}%{}",
            acpu * 100.0 / wall,
            if acpu / wall > 0.9 { " (agent was the bottleneck)" } else { "" }
        );
    });
    drop(agent);
}

async fn walk_all(sessions: &[lookout_snmp::Session], tables: &[Oid], concurrency: usize) -> usize {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    for s in sessions {
        let s = s.clone();
        let tables = tables.to_vec();
        let limit = limit.clone();
        set.spawn(async move {
            let _p = limit.acquire().await;
            let mut n = 0;
            for t in &tables {
                match s.walk(t).await {
                    Ok(v) => n += v.len(),
                    Err(e) => eprintln!("{}: {e}", s.addr()),
                }
            }
            n
        });
    }
    let mut total = 0;
    while let Some(r) = set.join_next().await {
        total += r.unwrap_or(0);
    }
    total
}
