//! The kefu performance service (the firm's rules §5): KPI schemes per
//! position, evaluation cycles whose figures are pulled from tickets,
//! complaints and training at close and kept as a snapshot, the
//! self-assessment → review → HR calibration → acknowledgement or appeal
//! workflow with business-day deadlines, and results (grade, bonus,
//! promotion recommendation, honours) with reports and an Excel export.
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;

use clap::Args;
use kefu_kit::module::{Built, Context, Module};
use kefu_proto::performance::v1::performance_service_server::PerformanceServiceServer;

pub use api::{ACCESS, PerformanceApi};

/// The service's schema migrations (portable SQL).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve performance` beyond the common ones.
#[derive(Debug, Clone, Args)]
pub struct PerformanceArgs {
    /// Address of the staff directory (who is evaluated, by whom).
    #[arg(long, env = "KEFU_STAFF_ADDR", default_value = "http://staff:50051")]
    pub staff_addr: String,
    /// Address of the tickets service (ticket figures).
    #[arg(long, env = "KEFU_TICKETS_ADDR", default_value = "http://tickets:50051")]
    pub tickets_addr: String,
    /// Address of the complaints service (complaint figures).
    #[arg(long, env = "KEFU_COMPLAINTS_ADDR", default_value = "http://complaints:50051")]
    pub complaints_addr: String,
    /// Address of the training service (training figures, career paths).
    #[arg(long, env = "KEFU_TRAINING_ADDR", default_value = "http://training:50051")]
    pub training_addr: String,
    /// The performance service's own token, to read those
    /// (`KEFU_SERVICE_TOKEN_FILE`).
    #[command(flatten)]
    pub token: kefu_kit::module::ServiceTokenArgs,
}

/// What the token is for, in the error when it is missing.
const TOKEN_FOR: &str = "performance reads the directory and people's figures from tickets, complaints and training";

/// What an embedding host (a test) may give the performance service
/// instead of its own parts, through [`kefu_kit::module::Embedded::overrides`].
#[derive(Clone, Default)]
pub struct Overrides {
    /// The clock periods, deadlines and closes are read from.
    pub clock: Option<Arc<dyn kefu_sla::Clock>>,
    /// Where the tickets service is, instead of the host's own address
    /// (a test puts a connection it can cut in between).
    pub tickets_addr: Option<String>,
}

/// The performance service as a kefu [`Module`].
pub struct Performance;

impl Module for Performance {
    const NAME: &'static str = "performance";
    const CALLS: &'static [&'static str] = &["staff", "tickets", "complaints", "training"];
    type Args = PerformanceArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(args: &PerformanceArgs, embedded: bool) -> anyhow::Result<()> {
        if !embedded {
            args.token.source(TOKEN_FOR)?;
        }
        Ok(())
    }

    async fn build(args: PerformanceArgs, ctx: Context) -> anyhow::Result<Built> {
        let overrides = ctx.embedded.as_ref().and_then(|e| e.get::<Overrides>()).unwrap_or_default();
        let clock = overrides.clock.clone().unwrap_or_else(|| Arc::new(kefu_sla::SystemClock));
        let addrs = match &ctx.embedded {
            Some(e) => [
                e.self_addr.clone(),
                overrides.tickets_addr.clone().unwrap_or_else(|| e.self_addr.clone()),
                e.self_addr.clone(),
                e.self_addr.clone(),
            ],
            None => [
                args.staff_addr.clone(),
                args.tickets_addr.clone(),
                args.complaints_addr.clone(),
                args.training_addr.clone(),
            ],
        };
        let token = match ctx.embedded.as_ref().and_then(|e| e.service_token.clone()) {
            Some(t) => t,
            None => args.token.source(TOKEN_FOR)?,
        };
        let peers = api::Peers {
            staff: kefu_kit::client::channel(&addrs[0])?,
            tickets: kefu_kit::client::channel(&addrs[1])?,
            complaints: kefu_kit::client::channel(&addrs[2])?,
            training: kefu_kit::client::channel(&addrs[3])?,
            token,
        };
        let api = PerformanceApi::new(ctx.pool, clock, peers)?;
        let svc = PerformanceServiceServer::new(api);
        Ok(Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS)))
    }
}
