//! Harness: the `kefu up` wiring on ports 0 — customers and tickets on one
//! gRPC server, the gateway in front — with a manual SLA clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::{sync::Arc, time::Duration};

use kefu_kit::{
    auth::{Role, TokenSigner, TokenVerifier},
    config::ServerArgs,
    keys::{KeyEntry, parse_key_list},
};
use kefu_sla::ManualClock;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub tickets: kefu_tickets::Tickets,
    pub signing: KeyEntry,
    pub admin_password: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// 2026-03-02 09:00 in Shanghai.
pub const T0: i64 = 1_772_413_200_000;

pub async fn spawn() -> App {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut kefu_gateway::GatewayArgs)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let db = |n: &str| format!("sqlite://{}", dir.path().join(format!("{n}.db")).display());
    let signing = KeyEntry::generate("t");
    let signer = TokenSigner::from_entry(&signing).unwrap();
    let verifier = TokenVerifier::new(&parse_key_list("p", &signer.public_key()).unwrap()).unwrap();

    let args = ServerArgs::on("127.0.0.1:0".parse().unwrap());
    let listeners = kefu_kit::server::Listeners::bind(&args).await.unwrap();
    let grpc = format!("http://{}", listeners.grpc_addr());
    let cpool = kefu_kit::db::connect(&db("customers"), 1).await.unwrap();
    kefu_kit::db::migrate(&cpool, &kefu_customers::MIGRATOR).await.unwrap();
    let customers = kefu_customers::service(
        cpool,
        kefu_customers::DataKeyring::new(&[KeyEntry::generate("d")]).unwrap(),
        kefu_customers::Settings::default(),
    );
    let tpool = kefu_kit::db::connect(&db("tickets"), 1).await.unwrap();
    kefu_kit::db::migrate(&tpool, &kefu_tickets::MIGRATOR).await.unwrap();
    let clock = ManualClock::new(T0);
    let tickets = kefu_tickets::build(
        tpool,
        Arc::new(kefu_sla::MemoryLiveStore::new(2)),
        Arc::new(clock.clone()),
        kefu_tickets::SlaSettings::default(),
        grpc.clone(),
        kefu_sla::SweeperConfig { owner: "t".into(), ..Default::default() },
    )
    .await
    .unwrap();
    let server = kefu_kit::server::ServerBuilder::new()
        .add_service(customers, &kefu_customers::ACCESS)
        .add_service(tickets.service.clone(), &kefu_tickets::ACCESS)
        .serve_on(listeners, &args, verifier);
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));

    let gpool = kefu_kit::db::connect(&db("gateway"), 1).await.unwrap();
    kefu_kit::db::migrate(&gpool, &kefu_gateway::MIGRATOR).await.unwrap();
    let mut gargs = kefu_gateway::GatewayArgs {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        customers_addr: grpc.clone(),
        tickets_addr: grpc,
        token_signing_key: signing.encode(),
        token_public_keys: String::new(),
        cors_origins: "https://console.example".into(),
        rate_limit_per_key: 1000,
        rate_limit_per_addr: 1000,
        body_limit: 256 * 1024,
        http_timeout: Duration::from_secs(30),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
    };
    tweak(&mut gargs);
    let gw = Arc::new(kefu_gateway::Gateway::new(&gargs, gpool).unwrap());
    let admin_password = kefu_gateway::bootstrap_admin(&gw.auth).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(kefu_gateway::serve(listener, kefu_gateway::router(gw, &gargs), shutdown.clone()));
    App { base, http: reqwest::Client::new(), clock, tickets, signing, admin_password, shutdown, _dir: dir }
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_token(&self) -> String {
        let r: Value = self.login("admin", &self.admin_password).await.json().await.unwrap();
        r["accessToken"].as_str().unwrap().to_owned()
    }

    /// A token for `role` minted with the gateway's key (as a login would).
    pub fn token(&self, role: Role) -> String {
        TokenSigner::from_entry(&self.signing)
            .unwrap()
            .mint(&format!("{role}-1"), &[role], Duration::from_secs(600))
            .unwrap()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut rb = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, json, headers)
    }

    pub async fn sweep(&self) {
        self.tickets.sweeper.tick().await.unwrap();
    }
}

pub fn customer_body(name: &str, n: u32) -> Value {
    let uscc = kefu_customers::domain::uscc_with_check(&format!("91310000{n:09}")).unwrap();
    json!({"customer": {"companyName": name, "uscc": uscc, "taxpayerType": "TAXPAYER_TYPE_GENERAL"},
           "contacts": [{"name": "王芳", "mobile": "13800138000", "email": format!("c{n}@example.cn")}]})
}
