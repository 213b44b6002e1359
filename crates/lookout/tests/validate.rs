//! `lookout validate` says what is wrong and how to fix it, and passes on a good install.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Install;

#[test]
fn validate_names_the_problem_and_the_fix() {
    let lo = Install::new();
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
    assert!(text.contains("[ OK ] database reachable"), "{text}");

    // A valid key: everything passes.
    let key = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
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
