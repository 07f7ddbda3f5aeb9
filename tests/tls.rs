//! TLS on the gRPC listeners, through the `kefu` binary as operators run it:
//! plaintext refused off loopback, mutual TLS demanded when a client CA is
//! set, and a renewed certificate taken up without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const KEFU: &str = env!("CARGO_BIN_EXE_kefu");

use kefu_testkit::free_port;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keys() -> Vec<(String, String)> {
    let line = |kind: &str, var: &str| {
        let out = Command::new(KEFU).args(["admin", "keygen", kind]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().find_map(|l| l.strip_prefix(&format!("{var}="))).unwrap().to_owned()
    };
    vec![
        ("KEFU_TOKEN_PUBLIC_KEYS".into(), line("token", "KEFU_TOKEN_PUBLIC_KEYS")),
        ("KEFU_DATA_KEYS".into(), line("data", "KEFU_DATA_KEYS")),
        ("KEFU_AUDIT_KEYS".into(), line("audit", "KEFU_AUDIT_KEYS")),
    ]
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `kefu health` against `addr` with the given TLS settings: its exit code.
fn health(addr: &str, env: &[(&str, &str)]) -> i32 {
    let mut c = Command::new(KEFU);
    c.args(["health", addr, "--timeout", "2s"]).env_remove("KEFU_TLS_CA").env_remove("KEFU_TLS_CERT");
    c.env_remove("KEFU_TLS_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().code().unwrap_or(-1)
}

#[test]
fn plaintext_is_refused_off_loopback_unless_the_network_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(KEFU)
        .args(["serve", "customers", "--listen", &format!("0.0.0.0:{}", free_port())])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .envs(keys())
        .env("KEFU_DATABASE_URL", format!("sqlite://{}", dir.path().join("c.db").display()))
        .env_remove("KEFU_ALLOW_PLAINTEXT")
        .env_remove("KEFU_TLS_CERT")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a plaintext listener on 0.0.0.0 must not start");
    assert!(err.contains("would be plaintext") && err.contains("KEFU_TLS_CERT"), "{err}");

    let out = Command::new(KEFU)
        .args(["serve", "customers", "--listen", &format!("127.0.0.1:{}", free_port())])
        .envs(keys())
        .env("KEFU_TLS_CLIENT_CA", "/nonexistent/ca.pem")
        .env("KEFU_DATABASE_URL", format!("sqlite://{}", dir.path().join("c.db").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("KEFU_TLS_CLIENT_CA needs KEFU_TLS_CERT"), "{err}");
}

#[test]
fn mutual_tls_is_demanded_and_a_renewed_certificate_is_used_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["customers".to_owned(), "gateway".to_owned()];
    let first = kefu_kit::tls::dev_certs("kefu test CA 1", &names, 2).unwrap();
    let ca1 = write(dir.path(), "ca1.pem", &first.ca_cert);
    let cert = write(dir.path(), "server.pem", &first.certs[0].1);
    let key = write(dir.path(), "server-key.pem", &first.certs[0].2);
    // The gateway's certificate is the client identity.
    let client_cert = write(dir.path(), "client.pem", &first.certs[1].1);
    let client_key = write(dir.path(), "client-key.pem", &first.certs[1].2);

    let port = free_port();
    let _server = Proc(
        Command::new(KEFU)
            .args(["serve", "customers", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
            .envs(keys())
            .env("KEFU_DATABASE_URL", format!("sqlite://{}", dir.path().join("c.db").display()))
            .env("KEFU_MIGRATE", "true")
            .env("KEFU_TLS_CERT", &cert)
            .env("KEFU_TLS_KEY", &key)
            .env("KEFU_TLS_CLIENT_CA", &ca1)
            .env("KEFU_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("https://127.0.0.1:{port}");
    let with_identity = |ca: &str| {
        health(&addr, &[("KEFU_TLS_CA", ca), ("KEFU_TLS_CERT", &client_cert), ("KEFU_TLS_KEY", &client_key)])
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while with_identity(&ca1) != 0 {
        assert!(Instant::now() < deadline, "the TLS server did not answer health with a client certificate");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(health(&addr, &[("KEFU_TLS_CA", &ca1)]), 0, "a client without a certificate is refused");
    assert_ne!(health(&format!("http://127.0.0.1:{port}"), &[]), 0, "plaintext is refused");
    let stranger = kefu_kit::tls::dev_certs("someone else's CA", &["gateway".to_owned()], 2).unwrap();
    let stranger_cert = write(dir.path(), "stranger.pem", &stranger.certs[0].1);
    let stranger_key = write(dir.path(), "stranger-key.pem", &stranger.certs[0].2);
    assert_ne!(
        health(&addr, &[("KEFU_TLS_CA", &ca1), ("KEFU_TLS_CERT", &stranger_cert), ("KEFU_TLS_KEY", &stranger_key)]),
        0,
        "a client certificate from another CA is refused"
    );

    // The certificate is renewed (here by another CA) in place.
    let renewed = kefu_kit::tls::dev_certs("kefu test CA 2", &names, 2).unwrap();
    let ca2 = write(dir.path(), "ca2.pem", &renewed.ca_cert);
    write(dir.path(), "server-key.pem", &renewed.certs[0].2);
    write(dir.path(), "server.pem", &renewed.certs[0].1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while with_identity(&ca2) != 0 {
        assert!(Instant::now() < deadline, "the renewed certificate was not taken up");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_ne!(with_identity(&ca1), 0, "the old certificate is no longer served");
}
