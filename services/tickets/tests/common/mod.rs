//! Test harness: customers and tickets on one real server (as `kefu up`
//! runs them), over fresh databases, with the SLA live state in memory or in
//! a real Redis, and a manual clock so that no test sleeps through an SLA.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::{sync::Arc, time::Duration};

use chrono::TimeZone;
use kefu_kit::{
    auth::{Role, TokenSigner, TokenVerifier},
    client::CallContext,
    config::ServerArgs,
    keys::{KeyEntry, parse_key_list},
};
use kefu_proto::{
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
use kefu_sla::{LiveStore, ManualClock, MemoryLiveStore, RedisLiveStore, SweeperConfig};
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub type Tickets = TicketServiceClient<InterceptedService<Channel, CallContext>>;
pub type Customers = CustomerServiceClient<InterceptedService<Channel, CallContext>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + in-memory live state (`kefu up`).
    Embedded,
    /// PostgreSQL + Redis (`kefu serve`).
    Production,
}

pub enum Live {
    Memory(Arc<MemoryLiveStore>),
    Redis { store: Arc<RedisLiveStore>, url: String, prefix: String },
}

pub struct TestApp {
    pub addr: String,
    pub signer: TokenSigner,
    pub clock: ManualClock,
    pub tickets: kefu_tickets::Tickets,
    pub raw: AnyPool,
    /// The service's own pool (a second replica in one process shares it:
    /// SQLite has one writer).
    pub pool: AnyPool,
    pub live: Live,
    pub tickets_url: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn env_or_skip(var: &str) -> Option<String> {
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

/// Local time in the firm's zone (Asia/Shanghai) as Unix ms.
pub fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
}

pub fn ms_of(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("timestamp set");
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

async fn database(backend: Backend, dir: &std::path::Path, name: &str) -> Option<String> {
    match backend {
        Backend::Embedded => Some(format!("sqlite://{}", dir.join(format!("{name}.db")).display())),
        Backend::Production => {
            let admin = env_or_skip("KEFU_TEST_DATABASE_URL")?;
            let db = format!("kefu_test_{}", uuid::Uuid::now_v7().simple());
            Some(kefu_kit::db::create_postgres_database(&admin, &db).await.expect("create test database"))
        }
    }
}

pub async fn live_store(backend: Backend) -> Option<Live> {
    Some(match backend {
        Backend::Embedded => Live::Memory(Arc::new(MemoryLiveStore::new(4))),
        Backend::Production => {
            let url = env_or_skip("KEFU_TEST_REDIS_URL")?;
            let prefix = format!("kefu-test-{}", uuid::Uuid::now_v7().simple());
            Live::Redis {
                store: Arc::new(RedisLiveStore::connect(&url, 4, &prefix).await.expect("redis")),
                url,
                prefix,
            }
        }
    })
}

impl Live {
    pub fn store(&self) -> Arc<dyn LiveStore> {
        match self {
            Live::Memory(m) => m.clone(),
            Live::Redis { store, .. } => store.clone(),
        }
    }

    /// Loses all live state, as a Redis restart or FLUSHALL would.
    pub async fn flush(&self) {
        match self {
            Live::Memory(m) => m.clear(),
            Live::Redis { url, prefix, .. } if prefix == "kefu" => {
                // A dedicated database: a real FLUSHDB.
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut con = client.get_multiplexed_async_connection().await.unwrap();
                let _: () = redis::cmd("FLUSHDB").query_async(&mut con).await.unwrap();
            }
            Live::Redis { url, prefix, .. } => {
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut con = client.get_multiplexed_async_connection().await.unwrap();
                let keys: Vec<String> =
                    redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut con).await.unwrap();
                if !keys.is_empty() {
                    let _: () = redis::cmd("DEL").arg(keys).query_async(&mut con).await.unwrap();
                }
            }
        }
    }
}

pub const START: (i32, u32, u32, u32, u32) = (2026, 3, 2, 9, 0);

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_at(backend, cst(START.0, START.1, START.2, START.3, START.4)).await
}

pub async fn spawn_at(backend: Backend, start_ms: i64) -> Option<TestApp> {
    let live = live_store(backend).await?;
    spawn_with(backend, start_ms, live).await
}

pub async fn spawn_with(backend: Backend, start_ms: i64, live: Live) -> Option<TestApp> {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = kefu_kit::telemetry::init(
            "test",
            &kefu_kit::config::TelemetryArgs { log_format: kefu_kit::config::LogFormat::Pretty, log: "debug".into() },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let customers_url = database(backend, dir.path(), "customers").await?;
    let tickets_url = database(backend, dir.path(), "tickets").await?;

    let customers_pool = kefu_kit::db::connect(&customers_url, 5).await.unwrap();
    kefu_kit::db::migrate(&customers_pool, &kefu_customers::MIGRATOR).await.unwrap();
    let tickets_pool = kefu_kit::db::connect(&tickets_url, 5).await.unwrap();
    kefu_kit::db::migrate(&tickets_pool, &kefu_tickets::MIGRATOR).await.unwrap();
    let raw = kefu_kit::db::connect(&tickets_url, 1).await.unwrap();

    let signer = TokenSigner::from_entry(&KeyEntry::generate("test")).unwrap();
    let verifier = TokenVerifier::new(&parse_key_list("pub", &signer.public_key()).unwrap()).unwrap();
    let args = ServerArgs::on("127.0.0.1:0".parse().unwrap());
    let listeners = kefu_kit::server::Listeners::bind(&args).await.unwrap();
    let addr = format!("http://{}", listeners.grpc_addr());
    let clock = ManualClock::new(start_ms);
    let tickets = kefu_tickets::build(
        tickets_pool.clone(),
        live.store(),
        Arc::new(clock.clone()),
        kefu_tickets::SlaSettings::default(),
        addr.clone(),
        SweeperConfig {
            owner: "test".into(),
            lease_ttl: Duration::from_secs(5),
            claim_ttl: Duration::from_secs(60),
            batch: 100,
            concurrency: 8,
            interval: Duration::from_millis(50),
        },
    )
    .await
    .unwrap();
    let customers = kefu_customers::service(
        customers_pool,
        kefu_customers::DataKeyring::new(&[KeyEntry::generate("d")]).unwrap(),
        kefu_customers::Settings::default(),
    );
    let server = kefu_kit::server::ServerBuilder::new()
        .add_service(customers, &kefu_customers::ACCESS)
        .add_service(tickets.service.clone(), &kefu_tickets::ACCESS)
        .serve_on(listeners, &args, verifier);
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    Some(TestApp { addr, signer, clock, tickets, raw, pool: tickets_pool, live, tickets_url, shutdown, _dir: dir })
}

impl TestApp {
    pub fn token(&self, role: Role) -> String {
        self.signer.mint(&format!("{role}-1"), &[role], Duration::from_secs(3600)).unwrap()
    }

    pub fn tickets_as(&self, role: Role) -> Tickets {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        TicketServiceClient::with_interceptor(ch, CallContext::new(Some(&self.token(role))).unwrap())
    }

    pub fn agent(&self) -> Tickets {
        self.tickets_as(Role::Agent)
    }

    pub fn customers(&self) -> Customers {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        CustomerServiceClient::with_interceptor(ch, CallContext::new(Some(&self.token(Role::Agent))).unwrap())
    }

    /// Moves the clock and runs the sweeper once, as its loop would.
    pub async fn advance_to(&self, ms: i64) -> kefu_sla::sweeper::TickReport {
        self.clock.set(ms);
        self.sweep().await
    }

    pub async fn sweep(&self) -> kefu_sla::sweeper::TickReport {
        self.tickets.sweeper.tick().await.unwrap()
    }

    pub async fn customer(&self, name: &str, n: u32, tier: cpb::ServiceTier) -> String {
        let uscc = kefu_customers::domain::uscc_with_check(&format!("91310000{n:09}")).unwrap();
        self.customers()
            .create_customer(cpb::CreateCustomerRequest {
                customer: Some(cpb::Customer {
                    company_name: name.into(),
                    uscc,
                    taxpayer_type: cpb::TaxpayerType::General as i32,
                    service_tier: tier as i32,
                    ..Default::default()
                }),
                contacts: vec![cpb::Contact {
                    name: "王芳".into(),
                    email: format!("cfo{n}@example.cn"),
                    mobile: "13800138000".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .id
    }

    pub async fn ticket(
        &self,
        customer_id: &str,
        channel: kefu_proto::common::v1::Channel,
        kind: pb::TicketKind,
        category: &str,
    ) -> pb::Ticket {
        self.agent()
            .create_ticket(pb::CreateTicketRequest {
                ticket: Some(pb::Ticket {
                    kind: kind as i32,
                    channel: channel as i32,
                    subject: "增值稅申報問題".into(),
                    category: category.into(),
                    customer_id: customer_id.into(),
                    ..Default::default()
                }),
                description: "請問本月的申報期限是哪天？".into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn targets(&self, ticket_id: &str) -> Vec<pb::SlaTarget> {
        self.agent()
            .get_ticket_sla(pb::GetTicketSlaRequest { ticket_id: ticket_id.into() })
            .await
            .unwrap()
            .into_inner()
            .targets
    }

    pub async fn target(&self, ticket_id: &str, metric: &str) -> pb::SlaTarget {
        self.targets(ticket_id).await.into_iter().filter(|t| t.metric == metric).max_by_key(|t| t.cycle).expect(metric)
    }

    pub async fn events(&self, record_id: &str, kind: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM sla_events WHERE record_id = $1 AND kind = $2")
            .bind(record_id)
            .bind(kind)
            .fetch_one(&self.raw)
            .await
            .unwrap()
            .get::<i64, _>(0)
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

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::spawn($crate::common::Backend::Embedded).await.unwrap();
                    super::$name(app).await;
                }
            )*
        }
        mod production {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::common::spawn($crate::common::Backend::Production).await else { return };
                    super::$name(app).await;
                }
            )*
        }
    };
}
