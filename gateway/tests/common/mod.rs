//! Harness: the suite from the test kit — customers and tickets on one gRPC
//! server, the gateway in front — on either backend, with a manual SLA clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use kefu_kit::{
    auth::{Role, TokenSigner},
    keys::KeyEntry,
};
use kefu_sla::ManualClock;
use serde_json::{Value, json};

pub use kefu_testkit::Backend;
use kefu_testkit::{Suite, SuiteOptions};

pub struct App {
    pub suite: Suite,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub signing: KeyEntry,
    pub admin_password: String,
    /// The gateway's admin port.
    pub admin_base: String,
    /// A separate pool on the gateway's database, for what a DBA could do.
    pub raw: sqlx::AnyPool,
}

/// 2026-03-02 09:00 in Shanghai.
pub const T0: i64 = 1_772_413_200_000;

/// The suite with the gateway in front, on `backend`.
pub async fn spawn(backend: Backend) -> Option<App> {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(
    backend: Backend,
    tweak: impl FnOnce(&mut kefu_gateway::GatewayArgs) + Send + 'static,
) -> Option<App> {
    let suite =
        Suite::spawn_with(backend, SuiteOptions { start_ms: T0, gateway: Some(Box::new(tweak)), ..Default::default() })
            .await?;
    let gw = suite.gateway.as_ref().expect("started with a gateway");
    let (base, admin_password, signing, admin_base, raw) =
        (gw.base.clone(), gw.admin_password.clone(), gw.signing.clone(), gw.admin_addr.clone(), gw.raw.clone());
    let clock = suite.clock.clone();
    Some(App { suite, base, http: reqwest::Client::new(), clock, signing, admin_password, admin_base, raw })
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

    /// A token for `subject` minted outside a login, as `kefu admin token`
    /// does.
    pub fn minted(&self, subject: &str, role: Role) -> String {
        TokenSigner::from_entry(&self.signing).unwrap().mint(subject, &[role], Duration::from_secs(600)).unwrap()
    }

    /// GET `path` with an API key.
    pub async fn get_with_key(&self, path: &str, key: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).header("X-API-Key", key).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// An agent account made by `admin` with the password `correct horse
    /// battery`; its id.
    pub async fn agent_account(&self, admin: &str, username: &str, staff_id: &str) -> String {
        self.person(admin, staff_id, username).await;
        let body =
            json!({"username": username, "password": "correct horse battery", "roles": ["agent"], "staffId": staff_id});
        let (s, made, _) = self.call(reqwest::Method::POST, "/api/v1/accounts", admin, Some(body)).await;
        assert_eq!(s, 201, "{made}");
        self.approve_roles(&made).await;
        made["id"].as_str().unwrap().to_owned()
    }

    /// `staff_id` in the staff directory (an account speaks for a person
    /// there), named `name` — unless the suite's directory has them already.
    pub async fn person(&self, admin: &str, staff_id: &str, name: &str) {
        let (s, _, _) = self.call(reqwest::Method::GET, &format!("/api/v1/staff/people/{staff_id}"), admin, None).await;
        if s == 200 {
            return;
        }
        let body =
            json!({"person": {"staffId": staff_id, "name": name, "position": "客服专员", "hireDate": "2024-03-01"}});
        let (s, made, _) = self.call(reqwest::Method::POST, "/api/v1/staff/people", admin, Some(body)).await;
        assert_eq!(s, 200, "{made}");
    }

    /// Approves the role grant an account creation (or role change)
    /// answered with, as a second admin.
    pub async fn approve_roles(&self, answer: &Value) {
        let grant = answer["pendingRoleGrant"]["id"].as_str().unwrap_or_else(|| panic!("no role grant in {answer}"));
        let second = self.minted("admin-2", Role::Admin);
        let (s, body, _) =
            self.call(reqwest::Method::POST, &format!("/api/v1/role-grants/{grant}/approve"), &second, None).await;
        assert_eq!(s, 200, "{body}");
    }

    pub async fn sweep(&self) {
        self.suite.sweep().await;
    }
}

pub fn customer_body(name: &str, n: u32) -> Value {
    let uscc = kefu_customers::domain::uscc_with_check(&format!("91310000{n:09}")).unwrap();
    json!({"customer": {"companyName": name, "uscc": uscc, "taxpayerType": "TAXPAYER_TYPE_GENERAL"},
           "contacts": [{"name": "王芳", "mobile": "13800138000", "email": format!("c{n}@example.cn")}]})
}
