//! Erasure reaches tickets: a loop follows the customers service's erasure
//! feed (`ListErasures`) and, for each erased customer, removes what tickets
//! hold about the person — the requester, their messages, contact details
//! written into subjects, notes and replies — keeping the tickets themselves
//! (numbers, times, SLA history) as business records.
//!
//! The feed position is kept in the tickets database and moves in the same
//! transaction as the redaction, so a restart neither skips nor repeats an
//! erasure. The follower calls with its own service token.
use std::{sync::Arc, time::Duration};

use kefu_kit::{Error, client::CallContext};
use kefu_proto::customers::v1::{self as cpb, customer_service_client::CustomerServiceClient};
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

use crate::store;

/// Where the follower gets the token it calls the customers service with.
pub type TokenSource = kefu_kit::module::ServiceTokens;

const CURSOR: &str = "erasure_cursor";

pub struct ErasureFollower {
    pool: AnyPool,
    customers: tonic::transport::Channel,
    token: TokenSource,
}

impl ErasureFollower {
    pub fn new(pool: AnyPool, customers: tonic::transport::Channel, token: TokenSource) -> Self {
        Self { pool, customers, token }
    }

    /// Handles every erasure not yet handled; returns how many.
    pub async fn follow_once(&self) -> Result<usize, Error> {
        let mut handled = 0;
        loop {
            let after = {
                let mut conn = self.pool.acquire().await?;
                store::get_setting(&mut conn, CURSOR).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
            };
            let token = (self.token)().map_err(Error::Internal)?;
            let mut client =
                CustomerServiceClient::with_interceptor(self.customers.clone(), CallContext::new(Some(&token))?);
            let call = client.list_erasures(cpb::ListErasuresRequest { after_seq: after, page_size: 100 });
            let page = kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call)
                .await
                .map_err(|s| Error::from_peer("customers", &s))?;
            if page.erasures.is_empty() {
                break;
            }
            for e in page.erasures {
                let mut tx = self.pool.begin().await?;
                let rows = store::redact_customer(&mut tx, &e.customer_id).await?;
                store::mark_erased(&mut tx, &e.customer_id).await?;
                store::put_setting(&mut tx, CURSOR, &e.seq.to_string()).await?;
                tx.commit().await?;
                tracing::info!(customer_id = %e.customer_id, rows, "erasure applied to tickets");
                handled += 1;
            }
        }
        if handled > 0
            && let Err(e) = kefu_kit::db::scrub(&self.pool).await
        {
            tracing::warn!(error = %e, "erased data may linger in the database's journal until its next checkpoint");
        }
        Ok(handled)
    }

    /// Redacts again whatever was written to erased customers' tickets since
    /// (a note added, a reply sent); returns how many rows changed.
    pub async fn resweep(&self) -> Result<usize, Error> {
        let customers = {
            let mut conn = self.pool.acquire().await?;
            store::erased_customers(&mut conn).await?
        };
        let mut changed = 0;
        for id in customers {
            let mut tx = self.pool.begin().await?;
            changed += store::redact_customer(&mut tx, &id).await?;
            tx.commit().await?;
        }
        if changed > 0
            && let Err(e) = kefu_kit::db::scrub(&self.pool).await
        {
            tracing::warn!(error = %e, "erased data may linger in the database's journal until its next checkpoint");
        }
        Ok(changed)
    }

    /// Follows the feed every `every` until `shutdown`, and redacts erased
    /// customers' tickets again every hundredth round.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut round: u64 = 0;
        loop {
            // First a pause: a starting process has other calls to make.
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(e) = self.follow_once().await {
                tracing::warn!(error = %e, "could not follow the customers' erasures; retrying");
            }
            round += 1;
            if round.is_multiple_of(100)
                && let Err(e) = self.resweep().await
            {
                tracing::warn!(error = %e, "could not redact erased customers' tickets again");
            }
        }
    }
}
