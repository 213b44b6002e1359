//! TLS to MySQL/MariaDB (`DB_SSL_*` → `MysqlTls`): a MariaDB of the test's own with a
//! certificate made here by the openssl CLI (a test CA signing a server certificate for
//! IP 127.0.0.1) and `require_secure_transport=ON`, so a connection that opens at all is
//! encrypted. `verify_ca` with the right CA opens, migrates and writes; with another CA
//! it fails, naming the certificate problem; `disabled` is refused by the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lookout_store::{MysqlSslMode, MysqlTls, Store, StoreConfig};
use lookout_testkit::mariadb::Server;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl CLI missing: apt-get install openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `<name>.pem` / `<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Lookout test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
    dir.join(format!("{name}.pem"))
}

#[tokio::test]
async fn verify_ca_connects_and_a_wrong_ca_fails() {
    if std::env::var("LOOKOUT_TEST_MYSQL").as_deref() == Ok("0") {
        eprintln!("\n*** SKIPPED: LOOKOUT_TEST_MYSQL=0, MySQL TLS test not run ***\n");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    let ca = make_ca(d, "ca");
    let other_ca = make_ca(d, "other-ca");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "server.ext",
        ],
    );
    // mariadbd runs as user mysql and must read its certificate and key.
    let st = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(d)
        .status()
        .unwrap();
    assert!(st.success());
    let server = Server::start(&format!(
        "ssl-ca={d}/ca.pem\nssl-cert={d}/server.pem\nssl-key={d}/server.key\nrequire_secure_transport=ON",
        d = d.display()
    ))
    .await;
    server
        .sql_socket(
            "CREATE USER 'lookout'@'127.0.0.1' IDENTIFIED BY 'tls-test-pw'; \
             GRANT ALL ON *.* TO 'lookout'@'127.0.0.1';",
        )
        .unwrap();
    let config = StoreConfig::Mysql {
        hosts: vec![("127.0.0.1".to_string(), server.port)],
        database: "lookout_tls".to_string(),
        username: "lookout".to_string(),
        password: "tls-test-pw".to_string(),
    };

    // The right CA: opens, migrates, writes and reads back.
    let tls = MysqlTls {
        mode: MysqlSslMode::VerifyCa,
        ca: Some(ca.clone()),
        ..MysqlTls::default()
    };
    let store = Store::open_with_tls(&config, &tls).await.unwrap();
    store.migrate().await.unwrap();
    store.add_user("tls-user", "x", 1).await.unwrap();
    assert!(store.user_by_username("tls-user").await.unwrap().is_some());
    store.close().await;
    eprintln!("verify_ca with the right CA: connected, migrated, wrote");

    // verify_identity: the certificate names IP 127.0.0.1, the host connected to.
    let tls_id = MysqlTls {
        mode: MysqlSslMode::VerifyIdentity,
        ..tls.clone()
    };
    let store = Store::open_with_tls(&config, &tls_id).await.unwrap();
    assert!(store.user_by_username("tls-user").await.unwrap().is_some());
    store.close().await;

    // Another CA: refused, and the error says why.
    let wrong = MysqlTls {
        mode: MysqlSslMode::VerifyCa,
        ca: Some(other_ca),
        ..MysqlTls::default()
    };
    let err = match Store::open_with_tls(&config, &wrong).await {
        Ok(_) => panic!("verify_ca with a CA that did not sign the server certificate opened"),
        Err(e) => e.to_string(),
    };
    eprintln!("wrong CA: {err}");
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );

    // No TLS: the server refuses (so the successes above were encrypted).
    let plain = MysqlTls {
        mode: MysqlSslMode::Disabled,
        ..MysqlTls::default()
    };
    let err = match Store::open_with_tls(&config, &plain).await {
        Ok(_) => panic!("a plain connection was accepted by require_secure_transport"),
        Err(e) => e.to_string(),
    };
    eprintln!("disabled: {err}");
    // MariaDB 10.11 answers a plain login under require_secure_transport with 1045 (access
    // denied) rather than MySQL's 3159; the same user and password worked over TLS above.
    assert!(
        err.contains("1045") || err.contains("secure transport") || err.contains("3159"),
        "{err}"
    );
}
