//! Secrets at rest through the binary (issue #16, finding 3), against real snmpd agents
//! (v2c with a community of its own, v3 authPriv): SNMP secrets given through the
//! environment, a file or stdin are stored encrypted (not in the database files, nor in
//! MySQL's rows), never printed by `device list --json` without `--show-secrets`, never
//! logged even at trace level; `key rotate` keeps the devices pollable; the old APP_KEY is
//! refused naming APP_KEY; an interrupted rotation is finished; a plaintext database is
//! encrypted by `lookout migrate`; new files are private (data dir 0700, .env and
//! database 0600).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Output, Stdio};

use common::{Install, Snmpd, SnmpdConfig};

const COMMUNITY: &str = "Lk-c0mmunity-s3cret";
const AUTH: &str = "Lk-auth-s3cret-1";
const PRIV: &str = "Lk-priv-s3cret-2";
const FILE_COMMUNITY: &str = "Lk-file-s3cret";
const ALL: [&str; 4] = [COMMUNITY, AUTH, PRIV, FILE_COMMUNITY];

/// v2c with [`COMMUNITY`] on 127.0.0.1.
fn v2_agent() -> Snmpd {
    Snmpd::start(
        SnmpdConfig::new("secrets-v2").line(&format!("rocommunity {COMMUNITY} 127.0.0.0/8")),
    )
}

/// v3 user `lkv3` (SHA/AES, [`AUTH`]/[`PRIV`]) on 127.0.0.2.
fn v3_agent() -> Snmpd {
    Snmpd::start(
        SnmpdConfig::new("secrets-v3")
            .on(std::net::Ipv4Addr::new(127, 0, 0, 2))
            .line(&format!("createUser lkv3 SHA \"{AUTH}\" AES \"{PRIV}\""))
            .line("rouser lkv3 priv"),
    )
}

/// Runs `lookout ARGS` with the key of the installation's own `.env` (not the tests'
/// shared APP_KEY), `env` added, and `stdin` fed.
fn own_key(lo: &Install, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut c = lo.cmd(args);
    c.env_remove("APP_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The plaintext secrets found in what is stored: the SQLite files' bytes (live rows, free
/// space, WAL), or the MySQL rows.
fn stored_plaintexts(lo: &Install) -> Vec<&'static str> {
    let haystack: Vec<u8> = match &lo.mysql_db {
        Some(db) => db
            .rows("SELECT community, authpass, cryptopass FROM devices")
            .concat()
            .join("\n")
            .into_bytes(),
        None => ["lookout.sqlite", "lookout.sqlite-wal"]
            .iter()
            .flat_map(|f| std::fs::read(lo.data_dir().join(f)).unwrap_or_default())
            .collect(),
    };
    ALL.into_iter()
        .filter(|s| haystack.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn env_value(lo: &Install, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(lo.data_dir().join(".env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

fn poll_status(lo: &Install, host: &str) -> serde_json::Value {
    let out = ok(
        own_key(lo, &["device", "poll", host, "--json"], &[], None),
        "device poll",
    );
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["status"].clone()
}

#[test]
fn secrets_from_env_file_and_stdin_are_stored_encrypted_and_never_shown() {
    let v2 = v2_agent();
    let v3 = v3_agent();
    let lo = Install::new();
    let v2_port = v2.port.to_string();
    let v3_port = v3.port.to_string();

    // v2c, community from the environment: the probe answering proves it was used.
    let out = own_key(
        &lo,
        &["device", "add", "127.0.0.1", "--port", &v2_port],
        &[
            ("LOOKOUT_SNMP_COMMUNITY", COMMUNITY),
            ("LOOKOUT_LOG", "trace"),
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    ok(out, "device add (env)");
    // The first command of the installation generated APP_KEY, privately.
    assert!(env_value(&lo, "APP_KEY").is_some());
    assert_eq!(mode(&lo.data_dir()), 0o700);
    assert_eq!(mode(&lo.data_dir().join(".env")), 0o600);
    if lo.mysql_db.is_none() {
        assert_eq!(mode(&lo.data_dir().join("lookout.sqlite")), 0o600);
    }

    // v3, auth password from a file, privacy password from stdin.
    let auth_file = lo.dir.path().join("auth.txt");
    std::fs::write(&auth_file, format!("{AUTH}\n")).unwrap();
    let out = own_key(
        &lo,
        &[
            "device",
            "add",
            "127.0.0.2",
            "--port",
            &v3_port,
            "--snmp-version",
            "v3",
            "--security-level",
            "authPriv",
            "--auth-user",
            "lkv3",
            "--auth-protocol",
            "SHA",
            "--auth-password-file",
            auth_file.to_str().unwrap(),
            "--priv-protocol",
            "AES",
            "--priv-password",
            "-",
        ],
        &[],
        Some(&format!("{PRIV}\n")),
    );
    let text = ok(out, "device add (v3, file + stdin)");
    assert!(text.contains("secrets-v3"), "the v3 probe answered: {text}");

    // A community from a file, for a device nobody answers (stored with --force).
    let community_file = lo.dir.path().join("community.txt");
    std::fs::write(&community_file, FILE_COMMUNITY).unwrap();
    let dead = common::free_udp_port().to_string();
    ok(
        own_key(
            &lo,
            &[
                "device",
                "add",
                "127.0.0.9",
                "--port",
                &dead,
                "--community-file",
                community_file.to_str().unwrap(),
                "--force",
                "--timeout-ms",
                "200",
                "--retries",
                "0",
            ],
            &[],
            None,
        ),
        "device add (file)",
    );

    // Stored encrypted: no plaintext in the database (files or rows).
    assert_eq!(stored_plaintexts(&lo), Vec::<&str>::new());
    if let Some(db) = &lo.mysql_db {
        for row in db.rows("SELECT community FROM devices WHERE community <> ''") {
            assert!(row[0].starts_with("enc:v1:"), "{row:?}");
        }
    }

    // `device list --json` leaves them out; --show-secrets shows them.
    let list = ok(
        own_key(&lo, &["device", "list", "--json"], &[], None),
        "list",
    );
    for s in ALL {
        assert!(!list.contains(s), "{s} in device list --json:\n{list}");
    }
    let devices: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert_eq!(devices.len(), 3);
    assert!(devices.iter().all(|d| d["snmp"].get("community").is_none()));
    let shown = ok(
        own_key(
            &lo,
            &["device", "list", "--json", "--show-secrets"],
            &[],
            None,
        ),
        "list --show-secrets",
    );
    for s in ALL {
        assert!(
            shown.contains(s),
            "{s} missing from --show-secrets:\n{shown}"
        );
    }

    // Both agents are polled with the decrypted secrets; nothing is logged, even at trace.
    let out = own_key(
        &lo,
        &["device", "poll", "127.0.0.2", "--json"],
        &[("LOOKOUT_LOG", "trace")],
        None,
    );
    let poll_log = String::from_utf8_lossy(&out.stderr).to_string();
    let poll: serde_json::Value = serde_json::from_str(&ok(out, "poll v3")).unwrap();
    assert_eq!(poll["status"], 1, "{poll}");
    assert_eq!(poll_status(&lo, "127.0.0.1"), 1);
    for s in ALL {
        assert!(!log.contains(s), "{s} in the trace log of device add");
        assert!(!poll_log.contains(s), "{s} in the trace log of device poll");
    }
    assert!(poll_log.len() > 1000, "trace logging was on: {poll_log}");

    // Two secrets from stdin at once are refused before anything is stored.
    let err = own_key(
        &lo,
        &[
            "device",
            "add",
            "127.0.0.8",
            "--force",
            "-c",
            "-",
            "--snmp-version",
            "v3",
            "--auth-user",
            "u",
            "--auth-password",
            "-",
        ],
        &[],
        Some("a\nb\n"),
    );
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("only one secret"));
}

#[test]
fn key_rotate_keeps_devices_pollable_and_the_old_key_is_refused() {
    let v2 = v2_agent();
    let lo = Install::new();
    let port = v2.port.to_string();
    ok(
        own_key(
            &lo,
            &["device", "add", "127.0.0.1", "--port", &port],
            &[("LOOKOUT_SNMP_COMMUNITY", COMMUNITY)],
            None,
        ),
        "device add",
    );
    assert_eq!(poll_status(&lo, "127.0.0.1"), 1);
    let old = env_value(&lo, "APP_KEY").unwrap();

    let out = ok(own_key(&lo, &["key", "rotate"], &[], None), "key rotate");
    assert!(out.contains("APP_KEY rotated"), "{out}");
    let new = env_value(&lo, "APP_KEY").unwrap();
    assert_ne!(new, old);
    assert_eq!(env_value(&lo, "APP_KEY_PREVIOUS"), None);
    assert_eq!(mode(&lo.data_dir().join(".env")), 0o600);
    assert_eq!(stored_plaintexts(&lo), Vec::<&str>::new());
    assert_eq!(
        poll_status(&lo, "127.0.0.1"),
        1,
        "pollable after the rotation"
    );

    // The old key: a clear error naming APP_KEY.
    let out = own_key(&lo, &["device", "list"], &[("APP_KEY", &old)], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another APP_KEY"), "{err}");
    // `key rotate` refuses a key from the environment (it can only rewrite .env).
    let out = own_key(&lo, &["key", "rotate"], &[("APP_KEY", &new)], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment"));

    // A rotation interrupted after its first step (.env holds the next key and the
    // previous one): devices stay pollable, and `key rotate` finishes it.
    let next = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = std::fs::read_to_string(lo.data_dir().join(".env")).unwrap();
    let env = env.replace(
        &format!("APP_KEY={new}"),
        &format!("APP_KEY={next}\nAPP_KEY_PREVIOUS={new}"),
    );
    std::fs::write(lo.data_dir().join(".env"), env).unwrap();
    let list = ok(
        own_key(
            &lo,
            &["device", "list", "--json", "--show-secrets"],
            &[],
            None,
        ),
        "list mid-rotation",
    );
    assert!(list.contains(COMMUNITY), "{list}");
    let out = ok(
        own_key(&lo, &["key", "rotate"], &[], None),
        "key rotate (finish)",
    );
    assert!(out.contains("finishing"), "{out}");
    assert_eq!(env_value(&lo, "APP_KEY").as_deref(), Some(next));
    assert_eq!(env_value(&lo, "APP_KEY_PREVIOUS"), None);
    assert_eq!(poll_status(&lo, "127.0.0.1"), 1);
    let out = own_key(&lo, &["device", "list"], &[("APP_KEY", &new)], None);
    assert!(!out.status.success(), "the key before is refused now");
}

/// A database written without encryption (an older Lookout, or a store without a key) is
/// encrypted in place by `lookout migrate`, leaving no plaintext in its files.
#[test]
fn migrate_encrypts_a_plaintext_database() {
    let v2 = v2_agent();
    let lo = Install::new();
    let config = match &lo.mysql_db {
        Some(db) => lookout_store::StoreConfig::Mysql {
            hosts: vec![(common::MARIADB_HOST.to_string(), common::MARIADB_PORT)],
            database: db.name.clone(),
            username: "root".into(),
            password: String::new(),
        },
        None => lookout_store::StoreConfig::Sqlite {
            path: lo.data_dir().join("lookout.sqlite"),
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = lookout_store::Store::open(&config).await.unwrap();
        store.migrate().await.unwrap();
        store
            .add_device(&lookout_core::NewDevice {
                hostname: "127.0.0.1".into(),
                snmp: lookout_core::SnmpConfig {
                    port: v2.port,
                    community: COMMUNITY.into(),
                    ..lookout_core::SnmpConfig::default()
                },
                poller_group: 0,
            })
            .await
            .unwrap();
        store.close().await;
    });
    assert_eq!(
        stored_plaintexts(&lo),
        vec![COMMUNITY],
        "written in plaintext"
    );

    let out = ok(own_key(&lo, &["migrate"], &[], None), "migrate");
    assert!(out.contains("SNMP secrets: 1 encrypted"), "{out}");
    assert!(out.contains("0 plaintext"), "{out}");
    assert_eq!(stored_plaintexts(&lo), Vec::<&str>::new());
    assert_eq!(poll_status(&lo, "127.0.0.1"), 1);
}
