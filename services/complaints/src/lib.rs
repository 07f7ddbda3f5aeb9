//! The kefu complaints service (the firm's rules §7, after ISO 10002):
//! complaints recorded from any channel, referrals from regulators and
//! hotlines, tickets escalated into complaints; numbered, acknowledged,
//! answered and decided through a workflow whose every step has a reason.
#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod erasure;
pub mod holds;
pub mod sla;
pub mod store;

use std::{sync::Arc, time::Duration};

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
    /// Address of the staff directory (handlers, action owners, staff complained about).
    #[arg(long, env = "KEFU_STAFF_ADDR", default_value = "http://staff:50051")]
    pub staff_addr: String,
    /// The live deadline store (`KEFU_REDIS_URL`, under its own prefix)
    /// and the sweeper's pace.
    #[command(flatten)]
    pub live: kefu_sla::args::LiveArgs,
    /// Where evidence attachments are kept, sealed (`KEFU_BLOB_URL`,
    /// `KEFU_S3_*`, `KEFU_BLOB_KEYS`).
    #[command(flatten)]
    pub blobs: kefu_kit::blob::BlobArgs,
    /// Following the customers' erasures (`KEFU_SERVICE_TOKEN_FILE`, `KEFU_ERASURE_POLL`).
    #[command(flatten)]
    pub erasure: kefu_kit::erasure::ErasureArgs,
    /// The audit trail of reads of complaints' personal data and evidence,
    /// category changes and erasures (`KEFU_AUDIT_KEYS`).
    #[command(flatten)]
    pub audit: kefu_kit::audit::AuditArgs,
}

/// The live store's key prefix: the complaints sweeper claims only
/// complaint deadlines.
pub const LIVE_PREFIX: &str = "kefu-complaints";
/// How often the SLA configuration is read from tickets.
const CONFIG_POLL: Duration = Duration::from_secs(5);
/// How often legal-hold releases the customers service has not taken are retried.
const HOLD_RETRY: Duration = Duration::from_secs(10);

/// What the complaints module hands its host (tests drive the follower).
pub struct ComplaintsHandle {
    pub erasures: Arc<erasure::ErasureFollower>,
    pub deadlines: Arc<sla::Deadlines>,
    pub sweeper: Arc<kefu_sla::Sweeper>,
}

/// What an embedding host (a test) may give the complaints service instead
/// of its own parts, through [`kefu_kit::module::Embedded::overrides`].
#[derive(Clone, Default)]
pub struct Overrides {
    /// The clock deadlines and dates are read from.
    pub clock: Option<Arc<dyn kefu_sla::Clock>>,
    pub live: Option<Arc<dyn kefu_sla::LiveStore>>,
    pub sweep: Option<kefu_sla::SweeperConfig>,
    /// The file store of attachments.
    pub blobs: Option<kefu_kit::blob::Blobs>,
}

/// The complaints service as a kefu [`Module`].
pub struct Complaints;

impl Module for Complaints {
    const NAME: &'static str = "complaints";
    const CALLS: &'static [&'static str] = &["staff", "customers", "tickets"];
    type Args = ComplaintsArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(args: &ComplaintsArgs, embedded: bool) -> anyhow::Result<()> {
        args.live.check(embedded)?;
        args.blobs.check(embedded)?;
        args.audit.check(embedded)?;
        if !embedded {
            args.erasure.token_source("complaints")?;
        }
        Ok(())
    }

    async fn build(args: ComplaintsArgs, ctx: Context) -> anyhow::Result<Built> {
        let (customers, tickets, staff) = match &ctx.embedded {
            Some(e) => (e.self_addr.clone(), e.self_addr.clone(), e.self_addr.clone()),
            None => (args.customers_addr.clone(), args.tickets_addr.clone(), args.staff_addr.clone()),
        };
        let overrides = ctx.embedded.as_ref().and_then(|e| e.get::<Overrides>()).unwrap_or_default();
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(kefu_sla::SystemClock));
        let live = match overrides.live {
            Some(live) => live,
            None => args.live.store(ctx.embedded.is_some(), LIVE_PREFIX).await?,
        };
        let sweep = overrides.sweep.unwrap_or_else(|| kefu_sla::SweeperConfig {
            owner: ctx.instance.clone(),
            interval: args.live.sla_sweep_interval,
            ..Default::default()
        });
        let token = match ctx.embedded.as_ref().and_then(|e| e.service_token.clone()) {
            Some(t) => t,
            None => args.erasure.token_source("complaints")?,
        };
        let blobs = match overrides.blobs {
            Some(b) => b,
            None => args.blobs.blobs(ctx.embedded.as_ref(), "complaints")?,
        };
        let token_for_holds = token.clone();
        let audit_keys = args.audit.keys(ctx.embedded.as_ref())?;
        kefu_kit::audit::sign_unsigned(&ctx.pool, &audit_keys).await?;
        let checkpoints = kefu_kit::audit::checkpoints(
            "complaints",
            ctx.pool.clone(),
            args.audit.audit_checkpoint_every,
            ctx.shutdown.clone(),
        );
        let erasures = Arc::new(erasure::ErasureFollower::new(
            ctx.pool.clone(),
            kefu_kit::client::channel(&customers)?,
            token.clone(),
            erasure::ComplaintsErasure { blobs: blobs.clone(), audit_keys: audit_keys.clone() },
        ));
        let deadlines = Arc::new(
            sla::Deadlines::load(
                ctx.pool.clone(),
                live.clone(),
                clock.clone(),
                kefu_kit::client::channel(&tickets)?,
                token,
            )
            .await?,
        );
        let sweeper = Arc::new(
            kefu_sla::Sweeper::new(live, deadlines.clone(), clock, sweep)
                .with_rebuild_flag(deadlines.rebuild_flag.clone()),
        );
        if ctx.embedded.is_some() {
            // In memory the view starts empty: build it before serving.
            sweeper.ensure_live_view().await?;
        }
        let holds =
            Arc::new(holds::LegalHolds::new(ctx.pool.clone(), kefu_kit::client::channel(&customers)?, token_for_holds));
        let api = ComplaintsApi::new(
            ctx.pool,
            api::Peers { customers: &customers, tickets: &tickets, staff: &staff },
            deadlines.clone(),
            holds.clone(),
            blobs,
            audit_keys,
            ctx.shutdown.clone(),
        )?;
        let probe_deadlines = deadlines.clone();
        // Redis is a cache of live state: its loss degrades, never fails, readiness.
        let live_check = kefu_kit::server::Check {
            name: "live deadline store".into(),
            required: false,
            probe: Arc::new(move || {
                let healthy = probe_deadlines.live_healthy();
                Box::pin(async move {
                    if healthy { Ok(()) } else { Err("writes fail; deadlines fire from the database".into()) }
                })
            }),
        };
        let svc = ComplaintServiceServer::new(api);
        let mut built =
            Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS).check(live_check));
        built.tasks.push(Box::pin(erasures.clone().run(args.erasure.erasure_poll, ctx.shutdown.clone())));
        built.tasks.push(Box::pin(sweeper.clone().run(ctx.shutdown.clone())));
        built.tasks.push(Box::pin(deadlines.clone().follow(CONFIG_POLL, ctx.shutdown.clone())));
        built.tasks.push(Box::pin(holds.run(HOLD_RETRY, ctx.shutdown.clone())));
        built.tasks.push(Box::pin(checkpoints));
        let flush = deadlines.clone();
        built.finally.push(Box::pin(async move {
            if !flush.flush_live(Duration::from_secs(2)).await {
                tracing::warn!("live deadline changes still queued at exit; the next process rebuilds them");
            }
        }));
        built.handle = Box::new(ComplaintsHandle { erasures, deadlines, sweeper });
        Ok(built)
    }
}
