//! The kefu tickets service: consultations, business requests and feedback
//! over phone, chat, email, WeChat and in person, with SLA targets that run
//! in business time (the SLA engine is `kefu-sla`).
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod sla;
pub mod store;

use std::{sync::Arc, time::Duration};

use clap::Args;
use kefu_proto::tickets::v1::ticket_service_server::TicketServiceServer;
use kefu_sla::{Clock, LiveStore, Sweeper, SweeperConfig};
use sqlx::AnyPool;

pub use api::{ACCESS, TicketsApi};
pub use sla::{EscalationRules, SlaEngine, SlaSettings};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve tickets` beyond the common ones.
#[derive(Debug, Clone, Args)]
pub struct TicketsArgs {
    /// Redis for the live SLA state (`redis://host:6379`).
    #[arg(long, env = "KEFU_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// Shards of the live SLA state (sweeper parallelism across replicas).
    #[arg(long, env = "KEFU_SLA_SHARDS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub sla_shards: u32,
    /// Address of the customers service.
    #[arg(long, env = "KEFU_CUSTOMERS_ADDR", default_value = "http://customers:50051")]
    pub customers_addr: String,
    /// How often the sweeper looks for due targets.
    #[arg(long, env = "KEFU_SLA_SWEEP_INTERVAL", default_value = "500ms", value_parser = kefu_kit::config::parse_duration)]
    pub sla_sweep_interval: Duration,
}

/// Request types a firm starts with (seed §3(三)); editable.
const DEFAULT_REQUEST_TYPES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "tax_registration",
        "tax_registration",
        &["business licence copy", "legal representative ID", "lease contract", "bank account licence"],
        &["collect materials", "submit to the tax bureau", "receive registration confirmation"],
    ),
    (
        "invoice_application",
        "invoice_application",
        &["invoice application form", "tax control device or digital certificate"],
        &["check invoice quota", "submit application", "deliver invoices to the customer"],
    ),
    (
        "monthly_tax_filing",
        "tax_filing",
        &["bank statements", "sales invoices", "purchase invoices", "payroll"],
        &["bookkeeping closed", "returns prepared", "customer confirmed", "returns filed", "tax paid"],
    ),
    (
        "bookkeeping",
        "bookkeeping",
        &["vouchers", "bank statements"],
        &["vouchers entered", "ledger reconciled", "reports sent"],
    ),
];

/// Everything the tickets service runs: the gRPC service and its sweeper.
pub struct Tickets {
    pub service: TicketServiceServer<TicketsApi>,
    pub engine: Arc<SlaEngine>,
    pub sweeper: Arc<Sweeper>,
}

pub async fn build(
    pool: AnyPool,
    live: Arc<dyn LiveStore>,
    clock: Arc<dyn Clock>,
    settings: SlaSettings,
    customers_addr: String,
    sweep: SweeperConfig,
) -> anyhow::Result<Tickets> {
    {
        let mut conn = pool.acquire().await?;
        if store::request_types(&mut conn).await?.is_empty() {
            for (name, category, mats, steps) in DEFAULT_REQUEST_TYPES {
                store::put_request_type(
                    &mut conn,
                    name,
                    category,
                    &serde_json::to_string(mats)?,
                    &serde_json::to_string(steps)?,
                )
                .await?;
            }
        }
    }
    let categories: Vec<String> = {
        let mut conn = pool.acquire().await?;
        match store::get_setting(&mut conn, "categories").await? {
            Some(json) => serde_json::from_str(&json)?,
            None => {
                let list: Vec<String> = domain::DEFAULT_CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
                store::put_setting(&mut conn, "categories", &serde_json::to_string(&list)?).await?;
                list
            }
        }
    };
    let engine = Arc::new(SlaEngine::load(pool.clone(), live.clone(), clock.clone(), settings).await?);
    let sweeper =
        Arc::new(Sweeper::new(live, engine.clone(), clock, sweep).with_rebuild_flag(engine.rebuild_flag.clone()));
    let service = TicketServiceServer::new(TicketsApi::new(pool, engine.clone(), customers_addr, categories));
    Ok(Tickets { service, engine, sweeper })
}
