//! The tickets tests' view of the shared test kit: customers and tickets on
//! one real server (as `kefu up` runs them), over fresh databases, with the
//! SLA live state in memory or in a real Redis, and a manual clock so that no
//! test sleeps through an SLA.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use kefu_kit::auth::Role;
use kefu_proto::tickets::v1 as pb;
#[allow(unused_imports)]
pub use kefu_testkit::{Backend, Live, Suite, cst, ms_of, violations};
use kefu_testkit::{CustomersClient as Customers, SuiteOptions, TicketsClient as Tickets};
use sqlx::AnyPool;

pub struct TestApp {
    pub suite: Suite,
    /// A separate pool on the tickets database, for what a DBA could do by hand.
    pub raw: AnyPool,
    /// The tickets service's own pool (a second replica in one process shares
    /// it: SQLite has one writer).
    pub pool: AnyPool,
}

impl std::ops::Deref for TestApp {
    type Target = Suite;
    fn deref(&self) -> &Suite {
        &self.suite
    }
}

pub const START: (i32, u32, u32, u32, u32) = (2026, 3, 2, 9, 0);

pub async fn live_store(backend: Backend) -> Option<Live> {
    Live::new(backend).await
}

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_at(backend, cst(START.0, START.1, START.2, START.3, START.4)).await
}

pub async fn spawn_at(backend: Backend, start_ms: i64) -> Option<TestApp> {
    let live = live_store(backend).await?;
    spawn_with(backend, start_ms, live).await
}

pub async fn spawn_with(backend: Backend, start_ms: i64, live: Live) -> Option<TestApp> {
    let suite = Suite::spawn_with(backend, SuiteOptions { start_ms, live: Some(live), ..Default::default() }).await?;
    let (raw, pool) = (suite.tickets_raw.clone(), suite.tickets_pool.clone());
    Some(TestApp { suite, raw, pool })
}

impl TestApp {
    pub fn agent(&self) -> Tickets {
        self.tickets_as(Role::Agent)
    }

    pub fn customers(&self) -> Customers {
        self.suite.customers_as(Role::Agent)
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

/// One test per scenario and backend (`mod embedded`, `mod production`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        kefu_testkit::on_both_backends!($crate::common::spawn; $($name),*);
    };
}
