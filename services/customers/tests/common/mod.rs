//! The customers tests' view of the shared test kit: the suite on a chosen
//! backend, reached through real clients with real tokens.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use kefu_kit::auth::Role;
use kefu_proto::customers::v1 as pb;
use kefu_testkit::Suite;
pub use kefu_testkit::{Backend, CustomersClient as Client, violations};
use sqlx::AnyPool;

pub struct TestApp {
    pub suite: Suite,
    /// A separate pool on the customers database, for what a DBA could do by hand.
    pub raw: AnyPool,
}

impl std::ops::Deref for TestApp {
    type Target = Suite;
    fn deref(&self) -> &Suite {
        &self.suite
    }
}

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    let suite = Suite::spawn(backend).await?;
    let raw = suite.customers_raw.clone();
    Some(TestApp { suite, raw })
}

impl TestApp {
    pub fn client_with_token(&self, token: Option<&str>) -> Client {
        self.suite.customers_with_token(token)
    }

    pub fn client(&self, role: Role) -> Client {
        self.suite.customers_as(role)
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

/// One test per scenario and backend (`mod embedded`, `mod production`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        kefu_testkit::on_both_backends!($crate::common::spawn; $($name),*);
    };
}

/// A disclosure of `categories` of customer `id` to `recipient`, proposed
/// by `supervisor-1` and approved by `admin-2`; its approval id, for
/// `supervisor-1` to export with.
pub async fn approved_disclosure(app: &TestApp, id: &str, recipient: &str, categories: Vec<i32>) -> String {
    let proposed = app
        .client(Role::Supervisor)
        .propose_change(pb::ProposeChangeRequest {
            customer_id: id.to_owned(),
            reason: "客户书面同意".into(),
            change: Some(pb::propose_change_request::Change::Disclosure(pb::DisclosureChange {
                recipient: recipient.to_owned(),
                data_categories: categories,
            })),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.customers_for("admin-2", Role::Admin)
        .approve_change(pb::ApproveChangeRequest { id: proposed.id.clone(), note: String::new() })
        .await
        .unwrap();
    proposed.id
}

/// Sets customer `id`'s bank account as the firm must: proposed by
/// `agent-1`, approved by `admin-2`.
pub async fn set_bank_account(app: &TestApp, id: &str, bank: &str, account: &str) {
    let proposed = app
        .agent()
        .propose_change(pb::ProposeChangeRequest {
            customer_id: id.to_owned(),
            reason: "客户开户资料".into(),
            change: Some(pb::propose_change_request::Change::BankAccount(pb::BankAccountChange {
                bank_name: bank.to_owned(),
                bank_account: account.to_owned(),
            })),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.customers_for("admin-2", Role::Admin)
        .approve_change(pb::ApproveChangeRequest { id: proposed.id, note: String::new() })
        .await
        .unwrap();
}
