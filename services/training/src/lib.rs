//! The kefu training service (the firm's rules §4): annual plans per team,
//! the course catalogue and its sessions, enrolment with a waitlist,
//! attendance and completion, exams, the training's effect on the four
//! Kirkpatrick levels (with trainees' figures from tickets and complaints),
//! staff certificates and what is due.
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;

use clap::Args;
use kefu_kit::module::{Built, Context, Module};
use kefu_proto::training::v1::training_service_server::TrainingServiceServer;

pub use api::{ACCESS, TrainingApi};

/// The service's schema migrations (portable SQL).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve training` beyond the common ones.
#[derive(Debug, Clone, Args)]
pub struct TrainingArgs {
    /// Address of the tickets service (trainees' ticket figures).
    #[arg(long, env = "KEFU_TICKETS_ADDR", default_value = "http://tickets:50051")]
    pub tickets_addr: String,
    /// Address of the complaints service (complaints about trainees).
    #[arg(long, env = "KEFU_COMPLAINTS_ADDR", default_value = "http://complaints:50051")]
    pub complaints_addr: String,
    /// Address of the staff directory (trainers, people enrolled by others).
    #[arg(long, env = "KEFU_STAFF_ADDR", default_value = "http://staff:50051")]
    pub staff_addr: String,
    /// The training service's own token, to read those figures
    /// (`KEFU_SERVICE_TOKEN_FILE`).
    #[command(flatten)]
    pub token: kefu_kit::module::ServiceTokenArgs,
}

/// What the token is for, in the error when it is missing.
const TOKEN_FOR: &str = "training reads trainees' figures from tickets and complaints";

/// What an embedding host (a test) may give the training service instead
/// of its own parts, through [`kefu_kit::module::Embedded::overrides`].
#[derive(Clone, Default)]
pub struct Overrides {
    /// The clock dates, check-in windows and years are read from.
    pub clock: Option<Arc<dyn kefu_sla::Clock>>,
}

/// The training service as a kefu [`Module`].
pub struct Training;

impl Module for Training {
    const NAME: &'static str = "training";
    const CALLS: &'static [&'static str] = &["staff", "tickets", "complaints"];
    type Args = TrainingArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(args: &TrainingArgs, embedded: bool) -> anyhow::Result<()> {
        if !embedded {
            args.token.source(TOKEN_FOR)?;
        }
        Ok(())
    }

    async fn build(args: TrainingArgs, ctx: Context) -> anyhow::Result<Built> {
        let overrides = ctx.embedded.as_ref().and_then(|e| e.get::<Overrides>()).unwrap_or_default();
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(kefu_sla::SystemClock));
        let (tickets, complaints, staff) = match &ctx.embedded {
            Some(e) => (e.self_addr.clone(), e.self_addr.clone(), e.self_addr.clone()),
            None => (args.tickets_addr.clone(), args.complaints_addr.clone(), args.staff_addr.clone()),
        };
        let token = match ctx.embedded.as_ref().and_then(|e| e.service_token.clone()) {
            Some(t) => t,
            None => args.token.source(TOKEN_FOR)?,
        };
        let peers = api::Peers {
            tickets: kefu_kit::client::channel(&tickets)?,
            complaints: kefu_kit::client::channel(&complaints)?,
            directory: kefu_kit::directory::Directory::new(&staff)?,
            token,
        };
        let api = TrainingApi::new(ctx.pool, clock, peers);
        let svc = TrainingServiceServer::new(api);
        Ok(Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS)))
    }
}
