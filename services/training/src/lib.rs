//! The kefu training service (the firm's rules §4): annual plans per team,
//! the course catalogue and its sessions, enrolment with a waitlist,
//! attendance and completion, staff certificates and what is due.
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

/// Settings of `kefu serve training` beyond the common ones (none yet).
#[derive(Debug, Clone, Default, Args)]
pub struct TrainingArgs {}

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
    const CALLS: &'static [&'static str] = &[];
    type Args = TrainingArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(_args: &TrainingArgs, _embedded: bool) -> anyhow::Result<()> {
        Ok(())
    }

    async fn build(_args: TrainingArgs, ctx: Context) -> anyhow::Result<Built> {
        let overrides = ctx.embedded.as_ref().and_then(|e| e.get::<Overrides>()).unwrap_or_default();
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(kefu_sla::SystemClock));
        let api = TrainingApi::new(ctx.pool, clock);
        let svc = TrainingServiceServer::new(api);
        Ok(Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS)))
    }
}
