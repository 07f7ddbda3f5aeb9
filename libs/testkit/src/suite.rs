//! The suite as `kefu up` runs it, on ports 0 and a chosen backend.
use std::{collections::HashMap, sync::Arc, time::Duration};

use kefu_kit::{
    auth::{Role, TokenSigner, TokenVerifier},
    client::CallContext,
    config::ServerArgs,
    keys::{KeyEntry, parse_key_list},
    module::Embedded,
};
use kefu_proto::{
    complaints::v1::complaint_service_client::ComplaintServiceClient, customers::v1 as cpb,
    customers::v1::customer_service_client::CustomerServiceClient,
    performance::v1::performance_service_client::PerformanceServiceClient,
    staff::v1::staff_service_client::StaffServiceClient, tickets::v1::ticket_service_client::TicketServiceClient,
    training::v1::training_service_client::TrainingServiceClient,
};
use kefu_sla::{LiveStore, ManualClock, MemoryLiveStore, RedisLiveStore, SweeperConfig};
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{Backend, database, env_or_skip};

pub type TicketsClient = TicketServiceClient<InterceptedService<Channel, CallContext>>;
pub type ComplaintsClient = ComplaintServiceClient<InterceptedService<Channel, CallContext>>;
pub type CustomersClient = CustomerServiceClient<InterceptedService<Channel, CallContext>>;
pub type TrainingClient = TrainingServiceClient<InterceptedService<Channel, CallContext>>;
pub type StaffClient = StaffServiceClient<InterceptedService<Channel, CallContext>>;
pub type PerformanceClient = PerformanceServiceClient<InterceptedService<Channel, CallContext>>;

/// The live SLA state of a test.
pub enum Live {
    Memory(Arc<MemoryLiveStore>),
    Redis { store: Arc<RedisLiveStore>, url: String, prefix: String },
}

impl Live {
    /// The backend's live store: memory, or Redis under a fresh key prefix.
    pub async fn new(backend: Backend) -> Option<Self> {
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

/// Changes to the gRPC server's settings before it starts.
pub type ServerTweak = Box<dyn FnOnce(&mut ServerArgs) + Send>;

/// Changes to the gateway's settings before it starts.
pub type GatewayTweak = Box<dyn FnOnce(&mut kefu_gateway::GatewayArgs) + Send>;

/// How to start a suite.
pub struct SuiteOptions {
    /// The manual SLA clock's start (Unix ms).
    pub start_ms: i64,
    /// The live store; by default the backend's.
    pub live: Option<Live>,
    /// Also start the REST gateway in front of the services.
    pub gateway: Option<GatewayTweak>,
    /// Changes to the gRPC server's settings (limits, timeouts, drain).
    pub server: Option<ServerTweak>,
    /// Put the people tests act as ([`STAFF`]) and the expert group
    /// `tax-expert` in the staff directory (false: an empty directory).
    pub seed_staff: bool,
    /// Changes to what the modules are given in place of their own parts
    /// (after the suite's own overrides).
    pub embedded: Option<EmbeddedTweak>,
}

/// Changes to the modules' overrides before they are built.
pub type EmbeddedTweak = Box<dyn FnOnce(&mut Embedded) + Send>;

/// The people a suite's directory holds from the start: the subjects tests
/// mint tokens for (`{role}-N`), the trainer, and the REST tests' agent.
pub const STAFF: &[(&str, &str, &str)] = &[
    ("agent-1", "赵敏", "客服专员"),
    ("agent-2", "钱进", "客服专员"),
    ("agent-3", "孙丽", "客服专员"),
    ("agent-4", "李强", "客服专员"),
    ("agent-5", "周洁", "客服专员"),
    ("agent-6", "吴昊", "客服专员"),
    ("agent-7", "郑爽", "客服专员"),
    ("agent-8", "王磊", "客服专员"),
    ("agent-9", "冯静", "客服专员"),
    ("agent-trainer", "陈老师", "培训讲师"),
    ("agent.li", "李娜", "客服专员"),
    ("supervisor-1", "褚主管", "客服主管"),
    ("supervisor-2", "卫主管", "客服主管"),
    ("hr-1", "蒋人事", "人力资源专员"),
    ("admin-1", "沈管理", "系统管理员"),
    ("admin-2", "韩管理", "系统管理员"),
    ("auditor-1", "杨审计", "内审专员"),
];

impl Default for SuiteOptions {
    fn default() -> Self {
        // 2026-03-02 09:00 in Shanghai, a Monday morning.
        Self { start_ms: 1_772_413_200_000, live: None, gateway: None, server: None, seed_staff: true, embedded: None }
    }
}

/// The gateway of a suite started with one.
pub struct GatewayHandle {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The password of `admin`, set by them after the one `bootstrap_admin`
    /// printed.
    pub admin_password: String,
    /// The key the gateway signs tokens with.
    pub signing: KeyEntry,
    /// The gateway's admin port (`/metrics`, `/healthz`, `/readyz`).
    pub admin_addr: String,
    /// A separate pool on the gateway's database, for what a DBA could do.
    pub raw: AnyPool,
}

/// Customers and tickets on one gRPC server, over fresh databases.
pub struct Suite {
    pub backend: Backend,
    /// `http://127.0.0.1:PORT` of the gRPC server.
    pub addr: String,
    /// The server's admin port (`/metrics`, `/healthz`, `/readyz`).
    pub admin_addr: String,
    pub signer: TokenSigner,
    pub clock: ManualClock,
    pub tickets: kefu_tickets::Tickets,
    /// The complaints module's handle (its erasure follower).
    pub complaints: kefu_complaints::ComplaintsHandle,
    /// The tickets service's own pool.
    pub tickets_pool: AnyPool,
    /// Separate pools on each service's database, for what a DBA could do.
    pub tickets_raw: AnyPool,
    pub customers_raw: AnyPool,
    pub tickets_url: String,
    pub customers_url: String,
    pub live: Live,
    /// The live store of complaint deadlines.
    pub complaints_live: Live,
    /// The complaints' file store as it is (sealed files), for what an
    /// attacker with the bucket or the directory would see.
    pub complaint_files: Arc<dyn kefu_kit::blob::BlobStore>,
    pub gateway: Option<GatewayHandle>,
    pub shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Suite {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Suite {
    /// The suite on `backend` with default options; `None` when the
    /// production backend is not configured (outside CI).
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, SuiteOptions::default()).await
    }

    pub async fn spawn_with(backend: Backend, opts: SuiteOptions) -> Option<Self> {
        crate::init_test_logs();
        let live = match opts.live {
            Some(l) => l,
            None => Live::new(backend).await?,
        };
        let dir = tempfile::tempdir().unwrap();
        let signing = KeyEntry::generate("test");
        let signer = TokenSigner::from_entry(&signing).unwrap();
        let verifier = TokenVerifier::new(&parse_key_list("pub", &signer.public_key()).unwrap()).unwrap();
        let mut args = ServerArgs::on("127.0.0.1:0".parse().unwrap());
        if let Some(tweak) = opts.server {
            tweak(&mut args);
        }
        let listeners = kefu_kit::server::Listeners::bind(&args).await.unwrap();
        let addr = format!("http://{}", listeners.grpc_addr());
        let clock = ManualClock::new(opts.start_ms);

        // Every module of the suite, as `kefu up` builds them, each on a
        // fresh database of the chosen backend.
        let mut urls = HashMap::new();
        let mut pools = HashMap::new();
        let mut modules = Vec::new();
        for module in kefu_suite::MODULES {
            let url = database(backend, dir.path(), module.name()).await?;
            let pool = kefu_kit::db::connect(&url, 5).await.unwrap();
            kefu_kit::db::migrate(&pool, module.migrator()).await.unwrap();
            urls.insert(module.name(), url);
            pools.insert(module.name(), pool.clone());
            modules.push((*module, pool));
        }
        let mut embedded = Embedded {
            data_dir: dir.path().to_owned(),
            self_addr: addr.clone(),
            overrides: Default::default(),
            service_token: Some(kefu_kit::module::service_tokens(
                Arc::new(TokenSigner::from_entry(&signing).unwrap()),
                "test-host",
            )),
        };
        let sweep = SweeperConfig {
            owner: "test".into(),
            lease_ttl: Duration::from_secs(5),
            claim_ttl: Duration::from_secs(60),
            batch: 100,
            concurrency: 8,
            interval: Duration::from_millis(50),
            safety_net_grace: Duration::from_secs(2),
        };
        // Complaint deadlines live apart from tickets' targets (their own
        // Redis prefix, or their own memory store), as in production.
        let complaints_live = Live::new(backend).await?;
        // Attachments: a directory under the data directory embedded, an
        // S3-compatible store (its own prefix) in production.
        let (blobs, complaint_files): (_, Arc<dyn kefu_kit::blob::BlobStore>) = match backend {
            Backend::Embedded => {
                (None, Arc::new(kefu_kit::blob::FileBlobs::new(dir.path().join("blobs").join("complaints"))))
            }
            Backend::Production => {
                let endpoint = env_or_skip("KEFU_TEST_S3_URL")?;
                let prefix = format!("t-{}", uuid::Uuid::now_v7().simple());
                let s3 = kefu_kit::blob::S3Blobs::new(&endpoint, "kefu-test", &prefix, "us-east-1", "test", "test")
                    .expect("S3 settings");
                s3.create_bucket().await.expect("the test bucket");
                let s3: Arc<dyn kefu_kit::blob::BlobStore> = Arc::new(s3);
                (Some(kefu_kit::blob::Blobs::new(s3.clone(), &[KeyEntry::generate("blob")]).unwrap()), s3)
            }
        };
        embedded.overrides.insert(kefu_complaints::Overrides {
            clock: Some(Arc::new(clock.clone())),
            live: Some(complaints_live.store()),
            sweep: Some(sweep.clone()),
            blobs,
        });
        embedded.overrides.insert(kefu_training::Overrides { clock: Some(Arc::new(clock.clone())) });
        embedded
            .overrides
            .insert(kefu_performance::Overrides { clock: Some(Arc::new(clock.clone())), tickets_addr: None });
        embedded.overrides.insert(kefu_tickets::Overrides {
            clock: Some(Arc::new(clock.clone())),
            live: Some(live.store()),
            sweep: Some(sweep),
        });
        if let Some(tweak) = opts.embedded {
            tweak(&mut embedded);
        }
        let shutdown = CancellationToken::new();
        let mut assembly = kefu_kit::module::build_all(modules, "test", &shutdown, &embedded).await.unwrap();
        let tickets: kefu_tickets::Tickets = assembly.take_handle("tickets").expect("the tickets module's handle");
        let complaints: kefu_complaints::ComplaintsHandle =
            assembly.take_handle("complaints").expect("the complaints module's handle");
        // Background tasks are not started: tests drive the sweeper
        // themselves (`sweep`, `advance_to`) on the manual clock.
        drop(assembly.tasks);
        let server = assembly.services.serve_on(listeners, &args, verifier);
        let admin_addr = format!("http://{}", server.admin_addr());
        tokio::spawn(server.run(shutdown.clone()));

        if opts.seed_staff {
            seed_staff(&addr, &signer).await;
        }
        let gateway = match opts.gateway {
            None => None,
            Some(tweak) => Some(spawn_gateway(backend, dir.path(), &addr, &signing, tweak, &shutdown).await?),
        };
        let tickets_url = urls.remove("tickets").unwrap();
        let customers_url = urls.remove("customers").unwrap();
        let tickets_raw = kefu_kit::db::connect(&tickets_url, 1).await.unwrap();
        let customers_raw = kefu_kit::db::connect(&customers_url, 1).await.unwrap();
        Some(Suite {
            backend,
            addr,
            admin_addr,
            signer,
            clock,
            tickets,
            complaints,
            tickets_pool: pools.remove("tickets").unwrap(),
            tickets_raw,
            customers_raw,
            tickets_url,
            customers_url,
            live,
            complaints_live,
            complaint_files,
            gateway,
            shutdown,
            _dir: dir,
        })
    }

    /// A token for one role, as `{role}-1`.
    pub fn token(&self, role: Role) -> String {
        self.signer.mint(&format!("{role}-1"), &[role], Duration::from_secs(3600)).unwrap()
    }

    pub fn tickets_with_token(&self, token: Option<&str>) -> TicketsClient {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        TicketServiceClient::with_interceptor(ch, CallContext::new(token).unwrap())
    }

    /// A customer of `tier` named `name`, its USCC made from `n` (unique
    /// per test), with one contact; its id.
    pub async fn customer(&self, name: &str, n: u32, tier: cpb::ServiceTier) -> String {
        let uscc = kefu_customers::domain::uscc_with_check(&format!("91310000{n:09}")).unwrap();
        self.customers_as(Role::Agent)
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

    pub fn complaints_with_token(&self, token: Option<&str>) -> ComplaintsClient {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        ComplaintServiceClient::with_interceptor(ch, CallContext::new(token).unwrap())
    }

    pub fn complaints_as(&self, role: Role) -> ComplaintsClient {
        self.complaints_with_token(Some(&self.token(role)))
    }

    pub fn training_with_token(&self, token: Option<&str>) -> TrainingClient {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        TrainingServiceClient::with_interceptor(ch, CallContext::new(token).unwrap())
    }

    pub fn training_as(&self, role: Role) -> TrainingClient {
        self.training_with_token(Some(&self.token(role)))
    }

    pub fn staff_with_token(&self, token: Option<&str>) -> StaffClient {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        StaffServiceClient::with_interceptor(ch, CallContext::new(token).unwrap())
    }

    pub fn staff_as(&self, role: Role) -> StaffClient {
        self.staff_with_token(Some(&self.token(role)))
    }

    pub fn performance_with_token(&self, token: Option<&str>) -> PerformanceClient {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        PerformanceServiceClient::with_interceptor(ch, CallContext::new(token).unwrap())
    }

    pub fn performance_as(&self, role: Role) -> PerformanceClient {
        self.performance_with_token(Some(&self.token(role)))
    }

    /// The performance service as the person `subject` in `role`.
    pub fn performance_for(&self, subject: &str, role: Role) -> PerformanceClient {
        self.performance_with_token(Some(&self.token_for(subject, role)))
    }

    pub fn tickets_as(&self, role: Role) -> TicketsClient {
        self.tickets_with_token(Some(&self.token(role)))
    }

    pub fn customers_with_token(&self, token: Option<&str>) -> CustomersClient {
        let ch = kefu_kit::client::channel(&self.addr).unwrap();
        CustomerServiceClient::with_interceptor(ch, CallContext::new(token).unwrap())
    }

    pub fn customers_as(&self, role: Role) -> CustomersClient {
        self.customers_with_token(Some(&self.token(role)))
    }

    /// A token for the person `subject` in `role`.
    pub fn token_for(&self, subject: &str, role: Role) -> String {
        self.signer.mint(subject, &[role], Duration::from_secs(3600)).unwrap()
    }

    /// The customers service as the person `subject` in `role`.
    pub fn customers_for(&self, subject: &str, role: Role) -> CustomersClient {
        self.customers_with_token(Some(&self.token_for(subject, role)))
    }

    /// Erases a customer as the firm must: proposed by one supervisor
    /// (`supervisor-1`), approved by another person (`admin-2`). Returns the
    /// approval.
    pub async fn erase_customer(&self, id: &str, reason: &str) -> cpb::Approval {
        let proposed = self
            .customers_as(Role::Supervisor)
            .propose_change(cpb::ProposeChangeRequest {
                customer_id: id.to_owned(),
                reason: reason.to_owned(),
                change: Some(cpb::propose_change_request::Change::Erasure(cpb::ErasureChange {})),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        self.customers_for("admin-2", Role::Admin)
            .approve_change(cpb::ApproveChangeRequest { id: proposed.id, note: String::new() })
            .await
            .unwrap()
            .into_inner()
    }

    /// Runs the SLA sweeper once, as its loop would.
    pub async fn sweep(&self) -> kefu_sla::sweeper::TickReport {
        self.tickets.sweeper.tick().await.unwrap()
    }

    /// One sweep that may fail (the live store is down); the safety net runs
    /// either way.
    pub async fn try_sweep(&self) -> anyhow::Result<kefu_sla::sweeper::TickReport> {
        self.tickets.sweeper.tick().await
    }

    /// Moves the clock and sweeps (tickets' report; complaints' sweeper
    /// runs too).
    pub async fn advance_to(&self, ms: i64) -> kefu_sla::sweeper::TickReport {
        self.clock.set(ms);
        let report = self.sweep().await;
        self.sweep_complaints().await;
        report
    }

    /// One sweep of complaint deadlines.
    pub async fn sweep_complaints(&self) -> kefu_sla::sweeper::TickReport {
        self.complaints.sweeper.tick().await.unwrap()
    }
}

/// The directory's standard people and the expert group tickets escalate to.
async fn seed_staff(addr: &str, signer: &TokenSigner) {
    use kefu_proto::staff::v1 as spb;
    // HR's work, as a system would load it (not held to a person's rate).
    let token = signer.mint("test-seed", &[Role::Hr, Role::Service], Duration::from_secs(600)).unwrap();
    let ch = kefu_kit::client::channel(addr).unwrap();
    let mut staff = StaffServiceClient::with_interceptor(ch, CallContext::new(Some(&token)).unwrap());
    for (id, name, position) in STAFF {
        staff
            .create_person(spb::CreatePersonRequest {
                person: Some(spb::Person {
                    staff_id: (*id).into(),
                    name: (*name).into(),
                    position: (*position).into(),
                    hire_date: "2024-01-02".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("a seeded person");
    }
    staff
        .create_team(spb::CreateTeamRequest {
            team: Some(spb::Team {
                code: "tax-expert".into(),
                name: "税务专家组".into(),
                kind: spb::TeamKind::ExpertGroup as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("the seeded expert group");
}

async fn spawn_gateway(
    backend: Backend,
    dir: &std::path::Path,
    grpc: &str,
    signing: &KeyEntry,
    tweak: GatewayTweak,
    shutdown: &CancellationToken,
) -> Option<GatewayHandle> {
    let url = database(backend, dir, "gateway").await?;
    let pool = kefu_kit::db::connect(&url, 5).await.unwrap();
    kefu_kit::db::migrate(&pool, &kefu_gateway::MIGRATOR).await.unwrap();
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin_listener.local_addr().unwrap();
    let mut args =
        kefu_gateway::GatewayArgs::all_in_one(grpc, signing.encode(), "127.0.0.1:0".parse().unwrap(), admin_addr);
    args.cors_origins = "https://console.example".into();
    args.rate_limit_per_key = 1000;
    args.rate_limit_per_addr = 1000;
    args.body_limit = 256 * 1024;
    args.audit.audit_keys = Some(KeyEntry::generate("audit").encode());
    tweak(&mut args);
    kefu_gateway::openapi::set_rpc_roles(kefu_suite::MODULES.iter().flat_map(|m| m.access().iter().copied()));
    let gw = Arc::new(kefu_gateway::Gateway::new(&args, pool.clone()).unwrap());
    let first_password = kefu_gateway::bootstrap_admin(&gw.auth).await.unwrap().unwrap();
    // The printed password opens no session: the first admin sets their own
    // (refused if the first start did not ask for it).
    let admin_password = format!("{first_password}.own");
    gw.auth.change_first_password("admin", &first_password, &admin_password).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = kefu_gateway::router(gw.clone(), &args);
    let stop = shutdown.clone();
    tokio::spawn(async move { kefu_gateway::serve_public(listener, app, &gw, &args, stop).await });
    tokio::spawn(kefu_gateway::serve(
        admin_listener,
        kefu_gateway::admin_router(pool, shutdown.clone()),
        shutdown.clone(),
    ));
    let raw = kefu_kit::db::connect(&url, 2).await.unwrap();
    Some(GatewayHandle {
        base,
        admin_password,
        signing: signing.clone(),
        admin_addr: format!("http://{admin_addr}"),
        raw,
    })
}
