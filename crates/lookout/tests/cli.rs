//! The walking skeleton through the CLI, against a real snmpd: add → poll → rows in the
//! store and RRD files that rrdtool reads; and every bad input the issue names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{rrdtool, start_snmpd, Install};

#[test]
fn add_poll_store_and_rrd_files() {
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();

    let out = lo.ok(&["device", "add", "127.0.0.1", "--port", &port]);
    assert!(out.contains("lookout-test-agent"), "{out}");
    let devices = lo.devices_json();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["hostname"], "127.0.0.1");

    // Three polls a few seconds apart so that (POLL_INTERVAL=10) at least one whole RRD
    // step lies between polls with known DERIVE rates.
    let mut last = String::new();
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(7));
        }
        last = lo.ok(&["device", "poll", "127.0.0.1", "--json"]);
    }
    let poll: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(poll["status"], 1, "{poll}");
    assert_eq!(poll["system"]["sysName"], "lookout-test-agent");
    assert_eq!(poll["system"]["location"], "Rack 7, Lab");
    assert_eq!(poll["system"]["os"], "linux");
    assert!(poll["icmp"]["rcv"].as_u64().unwrap() > 0, "{poll}");
    let ports = poll["ports"].as_array().unwrap();
    let lo_port = ports
        .iter()
        .find(|p| p["if_descr"] == "lo" || p["if_name"] == "lo")
        .unwrap_or_else(|| panic!("no lo interface in {ports:?}"));
    // SNMP itself runs over lo, so its counters move between polls.
    assert!(
        lo_port["in_octets_rate"].as_f64().unwrap() > 0.0,
        "{lo_port}"
    );
    assert_eq!(lo_port["if_oper_status"], "up");

    // The store has what the poll found.
    let d = &lo.devices_json()[0];
    assert_eq!(d["sys_name"], "lookout-test-agent");
    assert_eq!(d["status"], "up");
    assert!(d["last_polled"].is_string());

    // RRD files with LibreNMS's names and data sources.
    let port_id = lo_port["port_id"].as_i64().unwrap();
    let rrd = lo.rrd(&format!("127.0.0.1/port-id{port_id}.rrd"));
    let info = rrdtool(&["info", rrd.to_str().unwrap()]);
    for ds in [
        "INOCTETS",
        "OUTOCTETS",
        "INERRORS",
        "OUTERRORS",
        "INUCASTPKTS",
        "OUTUCASTPKTS",
        "INNUCASTPKTS",
        "OUTNUCASTPKTS",
        "INDISCARDS",
        "OUTDISCARDS",
        "INUNKNOWNPROTOS",
        "INBROADCASTPKTS",
        "OUTBROADCASTPKTS",
        "INMULTICASTPKTS",
        "OUTMULTICASTPKTS",
    ] {
        assert!(
            info.contains(&format!("ds[{ds}].type = \"DERIVE\"")),
            "{ds} missing in\n{info}"
        );
    }
    assert!(info.contains("step = 10"), "{info}");
    let fetch = rrdtool(&["fetch", rrd.to_str().unwrap(), "AVERAGE", "-s", "-120"]);
    let known_in_rates: Vec<f64> = fetch
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter_map(|(_, vals)| vals.split_whitespace().next()?.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .collect();
    assert!(
        known_in_rates.iter().any(|&v| v > 0.0),
        "no known INOCTETS rate in\n{fetch}"
    );
    let icmp = rrdtool(&["info", lo.rrd("127.0.0.1/icmp-perf.rrd").to_str().unwrap()]);
    for ds in ["avg", "xmt", "rcv", "min", "max"] {
        assert!(
            icmp.contains(&format!("ds[{ds}].")),
            "{ds} missing in icmp-perf.rrd"
        );
    }
    let up = rrdtool(&["info", lo.rrd("127.0.0.1/uptime.rrd").to_str().unwrap()]);
    assert!(up.contains("ds[uptime]."), "{up}");

    // remove takes the device away
    lo.ok(&["device", "remove", "127.0.0.1"]);
    assert!(lo.devices_json().is_empty());
}

#[test]
fn bad_input_is_a_clear_error_and_stores_nothing() {
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();
    let dead = common::free_udp_port().to_string();

    // unreachable: nothing listens on that port
    let err = lo.fails(&[
        "device",
        "add",
        "127.0.0.1",
        "--port",
        &dead,
        "--timeout-ms",
        "300",
        "--retries",
        "0",
    ]);
    assert!(
        err.contains("timed out") || err.contains("timeout"),
        "{err}"
    );
    assert!(err.contains("nothing stored"), "{err}");
    // wrong community: v2c agents stay silent, so it is a timeout too
    let err = lo.fails(&[
        "device",
        "add",
        "127.0.0.1",
        "--port",
        &port,
        "-c",
        "wrong",
        "--timeout-ms",
        "300",
        "--retries",
        "0",
    ]);
    assert!(err.contains("nothing stored"), "{err}");
    // malformed host names never reach the resolver or the store
    for bad in ["bad host", "a;rm -rf /", "", "x-.example", "a..b"] {
        let err = lo.fails(&["device", "add", bad]);
        assert!(err.contains("cannot add"), "{bad:?}: {err}");
    }
    assert!(lo.devices_json().is_empty());

    // duplicate
    lo.ok(&["device", "add", "127.0.0.1", "--port", &port]);
    let err = lo.fails(&["device", "add", "127.0.0.1", "--port", &port]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(lo.devices_json().len(), 1);

    // --force stores a device that does not answer, and polling it marks it down
    lo.ok(&[
        "device",
        "add",
        "127.0.0.2",
        "--port",
        &dead,
        "--timeout-ms",
        "200",
        "--retries",
        "0",
        "--force",
    ]);
    let out = lo.run(&["device", "poll", "127.0.0.2", "--json"]);
    assert_eq!(out.status.code(), Some(2), "a down device exits 2");
    let poll: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(poll["status"], 0);
    assert_eq!(poll["status_reason"], "snmp");

    // bad SNMP version and unknown device
    let err = lo.fails(&["device", "add", "127.0.0.3", "--snmp-version", "v9"]);
    assert!(err.contains("v9"), "{err}");
    let err = lo.fails(&["device", "poll", "nosuch.example"]);
    assert!(err.contains("no device"), "{err}");
}

#[test]
fn read_only_database_is_a_clear_error() {
    if common::test_db_is_mysql() {
        eprintln!("read-only SQLite file: not applicable to the MySQL leg");
        return;
    }
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();
    lo.ok(&["device", "list"]); // creates and migrates the database
    let db = lo.data_dir().join("lookout.sqlite");
    assert!(db.exists());

    // Tests run as root, which ignores file modes; an immutable file is read-only for
    // root too. As another user, a 0444 file is.
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let lock = |on: bool| {
        if is_root {
            let st = std::process::Command::new("chattr")
                .arg(if on { "+i" } else { "-i" })
                .arg(&db)
                .status()
                .unwrap();
            assert!(st.success(), "chattr needs an ext4-like file system");
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = if on { 0o444 } else { 0o644 };
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    lock(true);
    let out = lo.run(&["device", "add", "127.0.0.1", "--port", &port]);
    lock(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "add on a read-only database succeeded"
    );
    assert!(err.contains("read-only"), "{err}");
    assert!(lo.devices_json().is_empty(), "nothing half-written");
}

/// A real rrdcached on a free loopback port, killed on drop.
struct Rrdcached {
    child: std::process::Child,
    addr: String,
    base: tempfile::TempDir,
}

impl Rrdcached {
    fn start() -> Rrdcached {
        let bin = std::path::Path::new("/usr/bin/rrdcached");
        assert!(bin.exists(), "rrdcached missing: apt-get install rrdcached");
        let base = tempfile::tempdir().unwrap();
        let port = common::free_tcp_port();
        let addr = format!("127.0.0.1:{port}");
        let journal = base.path().join("journal");
        std::fs::create_dir_all(&journal).unwrap();
        let data = base.path().join("rrd");
        std::fs::create_dir_all(&data).unwrap();
        let child = std::process::Command::new(bin)
            .args(["-g", "-R", "-B", "-F", "-w", "60", "-z", "10"])
            .arg("-l")
            .arg(&addr)
            .arg("-b")
            .arg(&data)
            .arg("-j")
            .arg(&journal)
            .arg("-p")
            .arg(base.path().join("pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rrdcached did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rrdcached { child, addr, base }
    }
}

impl Drop for Rrdcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn polls_write_through_rrdcached_without_local_files() {
    let agent = start_snmpd();
    let cached = Rrdcached::start();
    let lo = Install::new();
    let port = agent.port.to_string();
    let run = |args: &[&str]| {
        let out = lo
            .cmd(args)
            .env("RRDCACHED", &cached.addr)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["device", "add", "127.0.0.1", "--port", &port]);
    let mut last = String::new();
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(7));
        }
        last = run(&["device", "poll", "127.0.0.1", "--json"]);
    }
    let poll: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert!(
        poll["timeseries_errors"].as_array().unwrap().is_empty(),
        "{poll}"
    );
    let lo_port = poll["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["if_descr"] == "lo")
        .unwrap()
        .clone();
    let rel = format!("127.0.0.1/port-id{}.rrd", lo_port["port_id"]);
    // The files live under rrdcached's base dir, none under the install's RRD_DIR.
    assert!(cached.base.path().join("rrd").join(&rel).exists());
    assert!(!lo.rrd(&rel).exists());
    let fetch = rrdtool(&[
        "fetch",
        "--daemon",
        &cached.addr,
        &rel,
        "AVERAGE",
        "-s",
        "-120",
    ]);
    let known: Vec<f64> = fetch
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter_map(|(_, v)| v.split_whitespace().next()?.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .collect();
    assert!(
        known.iter().any(|&v| v > 0.0),
        "no INOCTETS rate via rrdcached:\n{fetch}"
    );
}

#[test]
fn db_export_from_sqlite_imports_into_mariadb() {
    let agent = start_snmpd();
    let lo = Install::new();
    if lo.mysql_db.is_some() {
        eprintln!("export/import test runs in the SQLite leg only");
        return;
    }
    let port = agent.port.to_string();
    lo.ok(&["device", "add", "127.0.0.1", "--port", &port]);
    lo.ok(&["device", "poll", "127.0.0.1"]);
    let dump = lo.dir.path().join("dump.json");
    lo.ok(&["db", "export", dump.to_str().unwrap()]);

    // A fresh MariaDB database as the target.
    let db = common::TestDatabase::create("lookout_test_import");
    let to_mysql = |args: &[&str]| {
        let mut c = lo.cmd(args);
        common::use_mysql(&mut c, common::MARIADB_HOST, None, &db.name)
            .output()
            .unwrap()
    };
    let out = to_mysql(&["db", "import", dump.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let listed = to_mysql(&["device", "list", "--json"]);
    let again = to_mysql(&["db", "import", dump.to_str().unwrap()]);
    assert!(out.status.success(), "{err}");
    let mysql_devices: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let sqlite_devices = serde_json::Value::Array(lo.devices_json());
    assert_eq!(
        mysql_devices, sqlite_devices,
        "devices differ after the move"
    );
    assert!(
        !again.status.success(),
        "a second import into a non-empty database succeeded"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("must be empty"));

    // Garbage is refused with a clear message.
    std::fs::write(&dump, b"{not json").unwrap();
    let err = lo.fails(&["db", "import", dump.to_str().unwrap()]);
    assert!(err.contains("is not a `lookout db export` file"), "{err}");
}

/// `lookout device discover`: discovery now, whether due or not, with what it found.
#[test]
fn device_discover_prints_what_discovery_found() {
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();
    lo.ok(&["device", "add", "127.0.0.1", "--port", &port]);
    lo.ok(&["device", "poll", "127.0.0.1"]);
    let out = lo.ok(&["device", "discover", "127.0.0.1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &v["devices"][0];
    assert_eq!(d["hostname"], "127.0.0.1");
    assert_eq!(d["status"], 1, "{d}");
    assert_eq!(d["os"], "linux");
    assert!(d["last_discovered"].is_string(), "{d}");
    let ports: Vec<&str> = d["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(ports.contains(&"lo"), "{ports:?}");
    let ips = d["ip_addresses"].as_array().unwrap();
    assert!(
        ips.iter()
            .any(|a| a["port"] == "lo" && a["address"] == "127.0.0.1/8"),
        "{ips:?}"
    );
    assert!(!d["storage"].as_array().unwrap().is_empty(), "{d}");
    assert_eq!(
        d["neighbours"],
        serde_json::json!([]),
        "net-snmp has no LLDP/CDP"
    );

    let text = lo.ok(&["device", "discover", "--all"]);
    assert!(text.contains("127.0.0.1 is UP"), "{text}");
    assert!(text.contains("neighbours"), "{text}");
    assert!(text.contains("127.0.0.1/8"), "{text}");

    let err = lo.fails(&["device", "discover"]);
    assert!(err.contains("--all"), "{err}");
    let err = lo.fails(&["device", "discover", "nosuch.example"]);
    assert!(err.contains("no device"), "{err}");
}

#[test]
fn users_levels_grants_and_tokens_from_the_shell() {
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();
    lo.ok(&[
        "device",
        "add",
        "127.0.0.1",
        "--port",
        &port,
        "-c",
        "public",
    ]);

    let out = lo.ok(&["user", "add", "noc", "--level", "1"]);
    assert!(
        out.contains("password: "),
        "generated password printed: {out}"
    );
    let err = lo.fails(&["user", "add", "short", "--password", "abc"]);
    assert!(err.contains("at least 8"), "{err}");
    let err = lo.fails(&["user", "level", "noc", "7"]);
    assert!(err.contains("not one of"), "{err}");

    lo.ok(&["user", "grant", "noc", "127.0.0.1"]);
    let err = lo.fails(&["user", "grant", "noc", "no-such-device"]);
    assert!(err.contains("no device"), "{err}");
    let list: serde_json::Value =
        serde_json::from_str(&lo.ok(&["user", "list", "--json"])).unwrap();
    let noc = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "noc")
        .unwrap();
    assert_eq!(noc["level"], 1);
    assert_eq!(noc["devices_granted"], 1);

    let out = lo.ok(&["user", "revoke", "noc", "127.0.0.1"]);
    assert!(out.contains("revoked"), "{out}");
    lo.ok(&["user", "level", "noc", "5"]);
    let out = lo.ok(&["user", "passwd", "noc", "--password", "a long password"]);
    assert!(out.contains("0 session(s) ended"), "{out}");

    let created = lo.ok(&[
        "token",
        "create",
        "--user",
        "noc",
        "--description",
        "grafana",
    ]);
    let token = created.lines().last().unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    let listed = lo.ok(&["token", "list"]);
    assert!(
        listed.contains("grafana") && !listed.contains(&token),
        "{listed}"
    );
    let tokens: serde_json::Value =
        serde_json::from_str(&lo.ok(&["token", "list", "--json"])).unwrap();
    let id = tokens[0]["id"].as_i64().unwrap().to_string();
    lo.ok(&["token", "revoke", &id]);
    let err = lo.fails(&["token", "revoke", &id]);
    assert!(err.contains("no API token"), "{err}");

    lo.ok(&["user", "remove", "noc"]);
    let err = lo.fails(&["user", "remove", "noc"]);
    assert!(err.contains("no user"), "{err}");
}

#[test]
fn device_update_keeps_the_device_id_and_probes_first() {
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();
    let out = lo.ok(&[
        "device",
        "add",
        "127.0.0.1",
        "--port",
        &port,
        "-c",
        "public",
    ]);
    assert!(out.contains("device_id 1"), "{out}");

    // A wrong community is probed and refused: nothing changes.
    let err = lo.fails(&[
        "device",
        "update",
        "127.0.0.1",
        "-c",
        "wrong",
        "--timeout-ms",
        "300",
        "--retries",
        "0",
    ]);
    assert!(err.contains("nothing changed"), "{err}");
    let err = lo.fails(&["device", "update", "127.0.0.1", "--snmp-version", "v4"]);
    assert!(err.contains("snmpver"), "{err}");
    // A dead port stored with --force; the poll fails, then fixing the port brings it back.
    let dead = common::free_udp_port().to_string();
    lo.ok(&[
        "device",
        "update",
        "127.0.0.1",
        "--port",
        &dead,
        "--timeout-ms",
        "300",
        "--retries",
        "0",
        "--force",
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&lo.ok(&["device", "list", "--json"])).unwrap();
    assert_eq!(list[0]["snmp"]["port"].as_u64().unwrap().to_string(), dead);
    let out = lo.ok(&["device", "update", "127.0.0.1", "--port", &port]);
    assert!(out.contains("device_id 1"), "{out}");
    let polled = lo.ok(&["device", "poll", "127.0.0.1"]);
    assert!(!polled.is_empty());
    let list: serde_json::Value =
        serde_json::from_str(&lo.ok(&["device", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["device_id"], 1);
    assert_eq!(list[0]["snmp"]["port"].as_u64().unwrap().to_string(), port);
    // Disabled without a probe.
    lo.ok(&["device", "update", "127.0.0.1", "--disable"]);
    let list: serde_json::Value =
        serde_json::from_str(&lo.ok(&["device", "list", "--json"])).unwrap();
    assert_eq!(list[0]["disabled"], true, "{list}");
}

#[test]
fn device_add_from_file_reports_each_line() {
    let agent = start_snmpd();
    let lo = Install::new();
    let port = agent.port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("devices.txt");
    // Spellings of 127.0.0.1 the resolver accepts, so one agent answers for all of them.
    std::fs::write(
        &list,
        format!(
            "# lab\n127.0.0.1\n127.0.0.01,public,{port}\n127.0.0.001,wrong\nbad host!\n127.0.0.1\n"
        ),
    )
    .unwrap();
    let out = lo.run(&[
        "device",
        "add",
        "--from-file",
        list.to_str().unwrap(),
        "--port",
        &port,
        "--timeout-ms",
        "300",
        "--retries",
        "0",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a failed line makes the exit code 1: {stdout}"
    );
    assert!(stdout.contains("2 added, 3 failed"), "{stdout}");
    assert!(
        stdout.contains("line 4: FAILED") && stdout.contains("nothing stored"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 6: FAILED: 127.0.0.1: exists already"),
        "{stdout}"
    );
    let devices: serde_json::Value =
        serde_json::from_str(&lo.ok(&["device", "list", "--json"])).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 2);
    // Added, not polled yet: said so, not "down".
    let table = lo.ok(&["device", "list"]);
    assert_eq!(table.matches("never polled").count(), 2, "{table}");
    assert!(!table.contains(" down "), "{table}");
}
