//! The kefu complaints service (the firm's rules §7, after ISO 10002):
//! complaints recorded from any channel, referrals from regulators and
//! hotlines, tickets escalated into complaints; numbered, acknowledged,
//! answered and decided through a workflow whose every step has a reason.
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod erasure;
pub mod store;

use std::sync::Arc;

use clap::Args;
use kefu_kit::module::{Built, Context, Module};
use kefu_proto::complaints::v1::complaint_service_server::ComplaintServiceServer;

pub use api::{ACCESS, ComplaintsApi};

/// The service's schema migrations (portable SQL).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve complaints` beyond the common ones.
#[derive(Debug, Clone, Args)]
pub struct ComplaintsArgs {
    /// Address of the customers service.
    #[arg(long, env = "KEFU_CUSTOMERS_ADDR", default_value = "http://customers:50051")]
    pub customers_addr: String,
    /// Address of the tickets service (tickets escalated into complaints).
    #[arg(long, env = "KEFU_TICKETS_ADDR", default_value = "http://tickets:50051")]
    pub tickets_addr: String,
    /// Following the customers' erasures (`KEFU_SERVICE_TOKEN_FILE`, `KEFU_ERASURE_POLL`).
    #[command(flatten)]
    pub erasure: kefu_kit::erasure::ErasureArgs,
}

/// What the complaints module hands its host (tests drive the follower).
pub struct ComplaintsHandle {
    pub erasures: Arc<erasure::ErasureFollower>,
}

/// What an embedding host (a test) may give the complaints service instead
/// of its own parts, through [`kefu_kit::module::Embedded::overrides`].
#[derive(Clone, Default)]
pub struct Overrides {
    /// The clock deadlines and dates are read from.
    pub clock: Option<Arc<dyn kefu_sla::Clock>>,
}

/// The complaints service as a kefu [`Module`].
pub struct Complaints;

impl Module for Complaints {
    const NAME: &'static str = "complaints";
    const CALLS: &'static [&'static str] = &["customers", "tickets"];
    type Args = ComplaintsArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(args: &ComplaintsArgs, embedded: bool) -> anyhow::Result<()> {
        if !embedded {
            args.erasure.token_source("complaints")?;
        }
        Ok(())
    }

    async fn build(args: ComplaintsArgs, ctx: Context) -> anyhow::Result<Built> {
        let (customers, tickets) = match &ctx.embedded {
            Some(e) => (e.self_addr.clone(), e.self_addr.clone()),
            None => (args.customers_addr.clone(), args.tickets_addr.clone()),
        };
        let clock = ctx
            .embedded
            .as_ref()
            .and_then(|e| e.get::<Overrides>())
            .and_then(|o| o.clock)
            .unwrap_or_else(|| Arc::new(kefu_sla::SystemClock));
        let token = match ctx.embedded.as_ref().and_then(|e| e.service_token.clone()) {
            Some(t) => t,
            None => args.erasure.token_source("complaints")?,
        };
        let erasures = Arc::new(erasure::ErasureFollower::new(
            ctx.pool.clone(),
            kefu_kit::client::channel(&customers)?,
            token,
            erasure::ComplaintsErasure,
        ));
        let svc = ComplaintServiceServer::new(ComplaintsApi::new(ctx.pool, &customers, &tickets, clock)?);
        let mut built = Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS));
        built.tasks.push(Box::pin(erasures.clone().run(args.erasure.erasure_poll, ctx.shutdown.clone())));
        built.handle = Box::new(ComplaintsHandle { erasures });
        Ok(built)
    }
}
