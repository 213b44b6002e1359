//! `lookout validate` says what is wrong and how to fix it, and passes on a good install.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Install;

#[test]
fn validate_names_the_problem_and_the_fix() {
    let lo = Install::bare();
    // Fresh install: no APP_KEY yet.
    let out = lo
        .cmd(&["validate"])
        .env_remove("APP_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("[FAIL] APP_KEY is not set"), "{text}");
    assert!(text.contains("fix: run `lookout serve` once"), "{text}");
    // validate checks and never creates: no database yet is a failure that names the fix,
    // and the check leaves no database behind.
    if common::test_db_is_mysql() {
        assert!(text.contains("migration(s) pending"), "{text}");
    } else {
        assert!(text.contains("[FAIL] no database at"), "{text}");
        assert!(
            !lo.data_dir().join("lookout.sqlite").exists(),
            "validate created the database"
        );
    }
    assert!(text.contains("lookout migrate"), "{text}");
    assert!(!text.contains("Local {"), "no Rust debug text: {text}");

    // Migrated, with a valid key: everything passes, in text and in JSON.
    let key = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let out = lo.cmd(&["migrate"]).env("APP_KEY", key).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lo
        .cmd(&["validate", "--json"])
        .env("APP_KEY", key)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["what"]
            .as_str()
            .unwrap()
            .starts_with("database reachable")));
    let out = lo.cmd(&["validate"]).env("APP_KEY", key).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("checks passed"), "{text}");

    // A broken key and an unreachable rrdcached are each named, with a fix.
    let port = common::free_tcp_port().to_string();
    let out = lo
        .cmd(&["validate"])
        .env("APP_KEY", "base64:short")
        .env("RRDCACHED", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("[FAIL] APP_KEY is invalid"), "{text}");
    assert!(text.contains("[FAIL] time series"), "{text}");
    assert!(text.contains("start rrdcached"), "{text}");

    // A TLS CA file that cannot be read is named with its variable (checked before the
    // database; SQLite ignores TLS, so only this check fails).
    let missing = lo.dir.path().join("no-such-ca.pem");
    let out = lo
        .cmd(&["validate"])
        .env("APP_KEY", key)
        .env("DB_SSL_MODE", "verify_ca")
        .env("DB_SSL_CA", &missing)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("[FAIL] DB_SSL_CA {}", missing.display())),
        "{text}"
    );
    assert!(text.contains("readable PEM file"), "{text}");

    // Bad configuration values are a failed check, not a crash.
    let out = lo
        .cmd(&["validate"])
        .env("POLL_INTERVAL", "soon")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("POLL_INTERVAL"), "{text}");
}

/// A mistyped --data-dir is refused instead of silently starting an empty installation.
#[test]
fn commands_refuse_a_data_dir_without_an_installation() {
    if common::test_db_is_mysql() {
        return; // the installation is the MySQL database there, whatever the data dir
    }
    let lo = Install::bare();
    for args in [
        &["device", "list"][..],
        &["device", "add", "127.0.0.1"],
        &["user", "list"],
        &["token", "list"],
        &["alert", "rules", "list"],
        &["poller", "status"],
    ] {
        let err = lo.fails(args);
        assert!(
            err.contains("no Lookout installation at"),
            "{args:?}: {err}"
        );
        assert!(err.contains("lookout serve --data-dir"), "{args:?}: {err}");
    }
    assert!(
        !lo.data_dir().join("lookout.sqlite").exists(),
        "nothing was created"
    );
    // --init says "start one here".
    lo.ok(&["--init", "user", "list"]);
    assert!(lo.data_dir().join("lookout.sqlite").exists());
    lo.ok(&["device", "list"]);

    // On a single node (in-process coordination) `poller status` cannot see the running
    // node: it says where the state is, with a non-zero exit, instead of an empty table.
    let out = lo.run(&["poller", "status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/api/v0/poller") && err.contains("REDIS_SENTINEL"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no empty table");
}

#[test]
fn validate_compares_free_space_with_the_projected_rrd_files() {
    let lo = Install::new();
    // Floor 0: the verdict must not depend on how full the test machine's disk is (nothing
    // is projected for an empty installation, so it is ok whatever is free).
    let out = lo
        .cmd(&["validate", "--json"])
        .env("RRD_MIN_FREE", "0")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let disk = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"].as_str().unwrap().starts_with("RRD disk at"))
        .unwrap_or_else(|| panic!("no RRD disk check: {report}"))
        .clone();
    assert_eq!(disk["state"], "ok", "{disk}");
    assert!(
        disk["what"].as_str().unwrap().contains("projected"),
        "{disk}"
    );
    // A floor of the whole file system: free space is below it, with the fix.
    let out = lo
        .cmd(&["validate"])
        .env("RRD_MIN_FREE", "100%")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("[FAIL] RRD disk at"), "{text}");
    assert!(
        text.contains("new RRD files are not being created"),
        "{text}"
    );
    // A floor that is not a size is a configuration error naming the forms.
    let out = lo
        .cmd(&["validate"])
        .env("RRD_MIN_FREE", "lots")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("RRD_MIN_FREE is not valid"), "{text}");
    assert!(text.contains("512M"), "{text}");
}
