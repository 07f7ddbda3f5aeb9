//! Erasure reaches every service that holds customers' data: a loop
//! follows the customers service's erasure feed (`ListErasures`) and, for
//! each erased customer, has the service remove what it holds about the
//! person ([`ErasureTarget::redact`]), keeping its business records.
//!
//! The feed position is kept in the service's own database and moves in
//! the same transaction as the redaction, so a restart neither skips nor
//! repeats an erasure. The follower calls with the service's own token;
//! every hundredth round it redacts erased customers' records again (what
//! was written since: a note, a reply).
use std::{sync::Arc, time::Duration};

use kefu_proto::customers::v1::{self as cpb, customer_service_client::CustomerServiceClient};
use sqlx::{AnyConnection, AnyPool};
use tokio_util::sync::CancellationToken;

use crate::{Error, client::CallContext, module::ServiceTokens};

/// Settings of a service that follows erasures (flattened into its args).
#[derive(Debug, Clone, clap::Args)]
pub struct ErasureArgs {
    /// The service's own token, to follow erasures on its own behalf.
    #[command(flatten)]
    pub token: crate::module::ServiceTokenArgs,
    /// How often the service checks for customers erased since it last looked.
    #[arg(long, env = "KEFU_ERASURE_POLL", default_value = "10s", value_parser = crate::config::parse_duration)]
    pub erasure_poll: Duration,
}

impl ErasureArgs {
    /// The token source from `KEFU_SERVICE_TOKEN_FILE` (read once now, to
    /// fail at start when it cannot be).
    pub fn token_source(&self, service: &str) -> anyhow::Result<ServiceTokens> {
        self.token.source(&format!("erasures reach {service}"))
    }
}

/// What a service does when a customer is erased, and where it keeps its
/// place in the feed. Each call runs inside the erasure's transaction.
#[async_trait::async_trait]
pub trait ErasureTarget: Send + Sync + 'static {
    /// The service's name (for logs).
    fn service(&self) -> &'static str;
    /// Removes what the service holds about the customer; rows changed.
    async fn redact(&self, conn: &mut AnyConnection, customer_id: &str) -> Result<usize, Error>;
    /// Remembers the customer was erased (for [`ErasureFollower::resweep`]).
    async fn mark_erased(&self, conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error>;
    /// Every customer erased so far.
    async fn erased(&self, conn: &mut AnyConnection) -> Result<Vec<String>, Error>;
    /// The feed position handled last (0 at first).
    async fn cursor(&self, conn: &mut AnyConnection) -> Result<i64, Error>;
    async fn set_cursor(&self, conn: &mut AnyConnection, seq: i64) -> Result<(), Error>;
}

pub struct ErasureFollower<T: ErasureTarget> {
    pool: AnyPool,
    customers: tonic::transport::Channel,
    token: ServiceTokens,
    target: T,
}

impl<T: ErasureTarget> ErasureFollower<T> {
    pub fn new(pool: AnyPool, customers: tonic::transport::Channel, token: ServiceTokens, target: T) -> Self {
        Self { pool, customers, token, target }
    }

    /// Handles every erasure not yet handled; returns how many.
    pub async fn follow_once(&self) -> Result<usize, Error> {
        let mut handled = 0;
        loop {
            let after = {
                let mut conn = self.pool.acquire().await?;
                self.target.cursor(&mut conn).await?
            };
            let token = (self.token)().map_err(Error::Internal)?;
            let mut client =
                CustomerServiceClient::with_interceptor(self.customers.clone(), CallContext::new(Some(&token))?);
            let call = client.list_erasures(cpb::ListErasuresRequest { after_seq: after, page_size: 100 });
            let page = crate::client::within(crate::client::PEER_DEADLINE, call)
                .await
                .map_err(|s| Error::from_peer("customers", &s))?;
            if page.erasures.is_empty() {
                break;
            }
            for e in page.erasures {
                let mut tx = self.pool.begin().await?;
                let rows = self.target.redact(&mut tx, &e.customer_id).await?;
                self.target.mark_erased(&mut tx, &e.customer_id).await?;
                self.target.set_cursor(&mut tx, e.seq).await?;
                tx.commit().await?;
                tracing::info!(customer_id = %e.customer_id, rows, service = self.target.service(), "erasure applied");
                handled += 1;
            }
        }
        if handled > 0 {
            self.scrub().await;
        }
        Ok(handled)
    }

    /// Redacts again whatever was written about erased customers since;
    /// returns how many rows changed.
    pub async fn resweep(&self) -> Result<usize, Error> {
        let customers = {
            let mut conn = self.pool.acquire().await?;
            self.target.erased(&mut conn).await?
        };
        let mut changed = 0;
        for id in customers {
            let mut tx = self.pool.begin().await?;
            changed += self.target.redact(&mut tx, &id).await?;
            tx.commit().await?;
        }
        if changed > 0 {
            self.scrub().await;
        }
        Ok(changed)
    }

    async fn scrub(&self) {
        if let Err(e) = crate::db::scrub(&self.pool).await {
            tracing::warn!(error = %e, "erased data may linger in the database's journal until its next checkpoint");
        }
    }

    /// Follows the feed every `every` until `shutdown`, and redacts erased
    /// customers' records again every hundredth round.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut round: u64 = 0;
        loop {
            // First a pause: a starting process has other calls to make.
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(e) = self.follow_once().await {
                tracing::warn!(error = %e, service = self.target.service(), "could not follow the customers' erasures; retrying");
            }
            round += 1;
            if round.is_multiple_of(100)
                && let Err(e) = self.resweep().await
            {
                tracing::warn!(error = %e, service = self.target.service(), "could not redact erased customers' records again");
            }
        }
    }
}
