//! kefu's test kit. Every API test of every service runs through it:
//!
//! - [`Backend`]: the embedded backend (SQLite + in-memory SLA state) or the
//!   production one (PostgreSQL + Redis, from `KEFU_TEST_DATABASE_URL` and
//!   `KEFU_TEST_REDIS_URL`; each test gets a fresh database and key prefix);
//! - [`Suite`]: customers and tickets on one real gRPC server on port 0, as
//!   `kefu up` runs them, optionally with the REST gateway in front, and a
//!   manual SLA clock;
//! - tokens per role, field-violation helpers, waiting for a condition with a
//!   deadline;
//! - [`access`]: the descriptor-coverage check of an access table and the
//!   live role matrix (every RPC × every role over real gRPC).
//!
//! Under CI (`CI` set) a missing PostgreSQL or Redis fails the test instead
//! of skipping it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod access;
pub mod processes;
pub mod raw;
mod suite;

use std::{future::Future, time::Duration};

use chrono::TimeZone;
pub use suite::{
    ComplaintsClient, CustomersClient, EmbeddedTweak, GatewayHandle, GatewayTweak, Live, PerformanceClient, STAFF,
    ServerTweak, StaffClient, Suite, SuiteOptions, TicketsClient, TrainingClient,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + in-memory live state (`kefu up`).
    Embedded,
    /// PostgreSQL + Redis (`kefu serve`).
    Production,
}

/// The value of `var`; `None` (test skipped) only outside CI.
pub fn env_or_skip(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "{var} must be set in CI: the production-backend suite may not be skipped"
            );
            eprintln!("{var} is not set: skipping the PostgreSQL + Redis run of this test");
            None
        }
    }
}

/// A fresh database for one service of one test.
pub async fn database(backend: Backend, dir: &std::path::Path, name: &str) -> Option<String> {
    match backend {
        Backend::Embedded => Some(format!("sqlite://{}", dir.join(format!("{name}.db")).display())),
        Backend::Production => {
            let admin = env_or_skip("KEFU_TEST_DATABASE_URL")?;
            let db = format!("kefu_test_{}", uuid::Uuid::now_v7().simple());
            Some(kefu_kit::db::create_postgres_database(&admin, &db).await.expect("create test database"))
        }
    }
}

/// Local time in the firm's zone (Asia/Shanghai) as Unix ms.
pub fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
}

/// A set timestamp as Unix ms.
pub fn ms_of(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("timestamp set");
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

/// The fields named by a status's `BadRequest` details.
pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Polls `check` until it yields a value or `deadline` passes (then panics
/// naming `what`). For waiting on something another task does; never a
/// fixed sleep.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Turns on debug logs for a test run when `TEST_LOG` is set.
pub fn init_test_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = kefu_kit::telemetry::init(
            "test",
            &kefu_kit::config::TelemetryArgs { log_format: kefu_kit::config::LogFormat::Pretty, log: "debug".into() },
        );
    }
}

/// Generates `mod embedded` and `mod production`, one test per scenario and
/// backend. Each scenario is `async fn name(app: T)` in the calling module,
/// and `$spawn` is an `async fn(Backend) -> Option<T>` (None: skipped
/// outside CI).
#[macro_export]
macro_rules! on_both_backends {
    ($spawn:path; $($name:ident),* $(,)?) => {
        mod embedded {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $spawn($crate::Backend::Embedded).await.expect("the embedded backend always runs");
                    super::$name(app).await;
                }
            )*
        }
        mod production {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $spawn($crate::Backend::Production).await else { return };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// `GET url` over plain HTTP/1.1: the status and body (admin ports in tests).
pub async fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A TCP port free on 127.0.0.1 now (for a process a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
