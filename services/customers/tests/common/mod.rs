//! Test harness: a real customers server on port 0 over a fresh database
//! (a new SQLite file, or a new PostgreSQL database), reached through a real
//! tonic client with real tokens.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use kefu_customers::{DataKeyring, Settings};
use kefu_kit::{
    auth::{Role, TokenSigner, TokenVerifier},
    client::CallContext,
    config::ServerArgs,
    keys::{KeyEntry, parse_key_list},
};
use kefu_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub type Client = CustomerServiceClient<InterceptedService<Channel, CallContext>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: String,
    pub signer: TokenSigner,
    /// A separate pool on the same database, for what a DBA could do by hand.
    pub raw: AnyPool,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The PostgreSQL admin URL for the suite. Unset: PostgreSQL tests are
/// skipped locally, but fail under CI (a missing database is not a pass).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("KEFU_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "KEFU_TEST_DATABASE_URL must be set in CI: the PostgreSQL suite may not be skipped"
            );
            eprintln!("KEFU_TEST_DATABASE_URL is not set: skipping the PostgreSQL run of this test");
            None
        }
    }
}

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = kefu_kit::telemetry::init(
            "test",
            &kefu_kit::config::TelemetryArgs { log_format: kefu_kit::config::LogFormat::Pretty, log: "debug".into() },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("customers.db").display()),
        Backend::Postgres => {
            let admin = postgres_admin_url()?;
            let name = format!("kefu_test_{}", uuid::Uuid::now_v7().simple());
            kefu_kit::db::create_postgres_database(&admin, &name).await.expect("create test database")
        }
    };
    let pool = kefu_kit::db::connect(&url, 5).await.expect("connect");
    kefu_kit::db::migrate(&pool, &kefu_customers::MIGRATOR).await.expect("migrate");
    let raw = kefu_kit::db::connect(&url, 1).await.expect("raw connect");

    let signer = TokenSigner::from_entry(&KeyEntry::generate("test")).unwrap();
    let verifier = TokenVerifier::new(&parse_key_list("pub", &signer.public_key()).unwrap()).unwrap();
    let keyring = DataKeyring::new(&[KeyEntry::generate("data")]).unwrap();
    let svc = kefu_customers::service(pool, keyring, Settings { follow_up_cycle_days: 30 });
    let args = ServerArgs::on("127.0.0.1:0".parse().unwrap());
    let server = kefu_kit::server::ServerBuilder::new().add_service(svc, &kefu_customers::ACCESS).bind(&args, verifier).await.unwrap();
    let addr = format!("http://{}", server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    Some(TestApp { addr, signer, raw, shutdown, _dir: dir })
}

impl TestApp {
    pub fn token(&self, role: Role) -> String {
        self.signer.mint(&format!("{role}-1"), &[role], Duration::from_secs(600)).unwrap()
    }

    pub fn client_with_token(&self, token: Option<&str>) -> Client {
        let channel = kefu_kit::client::channel(&self.addr).unwrap();
        CustomerServiceClient::with_interceptor(channel, CallContext::new(token).unwrap())
    }

    pub fn client(&self, role: Role) -> Client {
        self.client_with_token(Some(&self.token(role)))
    }

    pub fn agent(&self) -> Client {
        self.client(Role::Agent)
    }
}

/// 17 characters + computed check character.
pub fn uscc(n: u32) -> String {
    kefu_customers::domain::uscc_with_check(&format!("91310000{n:09}")).unwrap()
}

pub fn new_customer(name: &str, uscc: &str) -> pb::CreateCustomerRequest {
    pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            company_name: name.into(),
            uscc: uscc.into(),
            taxpayer_type: pb::TaxpayerType::General as i32,
            tax_credit_rating: pb::TaxCreditRating::A as i32,
            industry: "software".into(),
            region: "上海".into(),
            service_tier: pb::ServiceTier::Vip as i32,
            account_manager: "staff-9".into(),
            tags: vec!["monthly-filing".into()],
            preferences: Some(pb::Preferences {
                preferred_channel: kefu_proto::common::v1::Channel::Wechat as i32,
                language: "zh-CN".into(),
                greeting_opt_in: true,
            }),
            ..Default::default()
        }),
        contacts: vec![pb::Contact {
            name: "王芳".into(),
            role: "財務主管".into(),
            mobile: "+86 138 0013 8000".into(),
            email: "wang@example.cn".into(),
            wechat_id: "wangfang_cfo".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Generates `mod sqlite` and `mod postgres` with one test per scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::spawn($crate::common::Backend::Sqlite).await.unwrap();
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::common::spawn($crate::common::Backend::Postgres).await else { return };
                    super::$name(app).await;
                }
            )*
        }
    };
}
