//! The kefu tickets service: consultations, business requests and feedback
//! over phone, chat, email, WeChat and in person, with SLA targets that run
//! in business time (the SLA engine is `kefu-sla`).
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod erasure;
pub mod sla;
pub mod store;

use std::{sync::Arc, time::Duration};

use clap::Args;
use kefu_kit::module::{Built, Context, Module};
use kefu_proto::tickets::v1::ticket_service_server::TicketServiceServer;
use kefu_sla::{Clock, LiveStore, Sweeper, SweeperConfig, SystemClock};
use sqlx::AnyPool;

pub use api::{ACCESS, TicketsApi};
pub use sla::{EscalationRules, SlaEngine, SlaSettings};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve tickets` beyond the common ones.
#[derive(Debug, Clone, Args)]
pub struct TicketsArgs {
    /// The live SLA store and the sweeper's pace.
    #[command(flatten)]
    pub live: kefu_sla::args::LiveArgs,
    /// Address of the customers service.
    #[arg(long, env = "KEFU_CUSTOMERS_ADDR", default_value = "http://customers:50051")]
    pub customers_addr: String,
    /// Address of the staff directory (assignees, escalation targets, teams).
    #[arg(long, env = "KEFU_STAFF_ADDR", default_value = "http://staff:50051")]
    pub staff_addr: String,
    /// Following the customers' erasures (`KEFU_SERVICE_TOKEN_FILE`, `KEFU_ERASURE_POLL`).
    #[command(flatten)]
    pub erasure: kefu_kit::erasure::ErasureArgs,
    /// The audit trail of SLA configuration changes (calendars, policies,
    /// escalation rules, categories).
    #[command(flatten)]
    pub audit: kefu_kit::audit::AuditArgs,
}

/// How often each replica looks for configuration changed through another.
const CONFIG_POLL: Duration = Duration::from_secs(1);

/// What an embedding host (a test) may give the tickets service instead of
/// its own parts, through [`kefu_kit::module::Embedded::overrides`].
#[derive(Clone, Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub live: Option<Arc<dyn LiveStore>>,
    pub sweep: Option<SweeperConfig>,
}

impl Module for Tickets {
    const NAME: &'static str = "tickets";
    const CALLS: &'static [&'static str] = &["staff", "customers"];
    type Args = TicketsArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(args: &TicketsArgs, embedded: bool) -> anyhow::Result<()> {
        args.live.check(embedded)?;
        if !embedded {
            args.erasure.token_source("tickets")?;
        }
        args.audit.check(embedded)
    }

    async fn build(args: TicketsArgs, ctx: Context) -> anyhow::Result<Built> {
        let overrides = ctx.embedded.as_ref().and_then(|e| e.get::<Overrides>()).unwrap_or_default();
        let live = match overrides.live {
            Some(live) => live,
            None => args.live.store(ctx.embedded.is_some(), "kefu").await?,
        };
        let (customers_addr, staff_addr) = match &ctx.embedded {
            Some(embedded) => (embedded.self_addr.clone(), embedded.self_addr.clone()),
            None => (args.customers_addr.clone(), args.staff_addr.clone()),
        };
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let sweep = overrides.sweep.unwrap_or_else(|| SweeperConfig {
            owner: ctx.instance.clone(),
            interval: args.live.sla_sweep_interval,
            ..Default::default()
        });
        let token = match ctx.embedded.as_ref().and_then(|e| e.service_token.clone()) {
            Some(t) => t,
            None => args.erasure.token_source("tickets")?,
        };
        let erasures = Arc::new(erasure::ErasureFollower::new(
            ctx.pool.clone(),
            kefu_kit::client::channel(&customers_addr)?,
            token,
            erasure::TicketsErasure,
        ));
        let audit_keys = args.audit.keys(ctx.embedded.as_ref())?;
        kefu_kit::audit::sign_unsigned(&ctx.pool, &audit_keys).await?;
        let checkpoints = kefu_kit::audit::checkpoints(
            "tickets",
            ctx.pool.clone(),
            args.audit.audit_checkpoint_every,
            ctx.shutdown.clone(),
        );
        let settings = SlaSettings { audit_keys: Some(audit_keys), ..SlaSettings::default() };
        let mut tickets = build(
            ctx.pool,
            live,
            clock,
            settings,
            PeerAddrs { customers: customers_addr, staff: staff_addr },
            sweep,
            ctx.shutdown.clone(),
        )
        .await?;
        tickets.erasures = Some(erasures.clone());
        let sweeper = tickets.sweeper.clone();
        if ctx.embedded.is_some() {
            // In memory the view starts empty: build it before the process
            // says it is ready, so the dashboard and the first sweep see
            // every open target. (A Redis view survives restarts; a replica
            // rebuilds it in its sweeper when it was lost.)
            let started = std::time::Instant::now();
            let n = sweeper.ensure_live_view().await?.unwrap_or(0);
            tracing::info!(targets = n, ms = started.elapsed().as_millis() as u64, "SLA live view built");
            tickets.live_view_built = Some(n);
        }
        let shutdown = ctx.shutdown.clone();
        let engine = tickets.engine.clone();
        // Redis is a cache of live state: its loss degrades, never fails, readiness.
        let live_store = kefu_kit::server::Check {
            name: "live SLA store".into(),
            required: false,
            probe: Arc::new(move || {
                let healthy = engine.live_healthy();
                Box::pin(async move {
                    if healthy { Ok(()) } else { Err("writes fail; deadlines fire from the database".into()) }
                })
            }),
        };
        let config = tickets.engine.clone().follow_config(CONFIG_POLL, shutdown.clone());
        let flush_engine = tickets.engine.clone();
        Ok(Built {
            services: kefu_kit::server::ServerBuilder::new()
                .add_service(tickets.service.clone(), &ACCESS)
                .check(live_store),
            tasks: vec![
                Box::pin(sweeper.run(shutdown.clone())),
                Box::pin(config),
                Box::pin(erasures.run(args.erasure.erasure_poll, shutdown)),
                Box::pin(checkpoints),
            ],
            finally: vec![Box::pin(async move {
                if !flush_engine.flush_live(Duration::from_secs(2)).await {
                    tracing::warn!("live SLA changes still queued at exit; the next process rebuilds them");
                }
            })],
            handle: Box::new(tickets),
        })
    }
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

/// Where the services tickets calls are.
pub struct PeerAddrs {
    pub customers: String,
    pub staff: String,
}

/// Everything the tickets service runs: the gRPC service and its sweeper.
pub struct Tickets {
    pub service: TicketServiceServer<TicketsApi>,
    pub engine: Arc<SlaEngine>,
    pub sweeper: Arc<Sweeper>,
    /// Follows the customers' erasures (set when built as a module).
    pub erasures: Option<Arc<erasure::ErasureFollower>>,
    /// Open targets put in the live view before serving (`kefu up`).
    pub live_view_built: Option<usize>,
}

pub async fn build(
    pool: AnyPool,
    live: Arc<dyn LiveStore>,
    clock: Arc<dyn Clock>,
    settings: SlaSettings,
    peers: PeerAddrs,
    sweep: SweeperConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Tickets> {
    store::prepare(&pool).await?;
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
    let engine = Arc::new(SlaEngine::load(pool.clone(), live.clone(), clock.clone(), settings).await?);
    let sweeper =
        Arc::new(Sweeper::new(live, engine.clone(), clock, sweep).with_rebuild_flag(engine.rebuild_flag.clone()));
    let service =
        TicketServiceServer::new(TicketsApi::new(pool, engine.clone(), &peers.customers, &peers.staff, shutdown)?);
    Ok(Tickets { service, engine, sweeper, erasures: None, live_view_built: None })
}
