//! The kefu staff directory: the firm's people, teams, queues and expert
//! groups, the reporting line and skills. At the bottom of the call graph:
//! it calls no other service.
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod store;

use clap::Args;
use kefu_kit::module::{Built, Context, Module};
use kefu_proto::staff::v1::staff_service_server::StaffServiceServer;

pub use api::{ACCESS, StaffApi};

/// The service's schema migrations (portable SQL).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve staff` beyond the common ones (none).
#[derive(Debug, Clone, Default, Args)]
pub struct StaffArgs {}

/// The staff directory as a kefu [`Module`].
pub struct Staff;

impl Module for Staff {
    const NAME: &'static str = "staff";
    const CALLS: &'static [&'static str] = &[];
    type Args = StaffArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(_args: &StaffArgs, _embedded: bool) -> anyhow::Result<()> {
        Ok(())
    }

    async fn build(_args: StaffArgs, ctx: Context) -> anyhow::Result<Built> {
        let svc = StaffServiceServer::new(StaffApi::new(ctx.pool));
        Ok(Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS)))
    }
}
