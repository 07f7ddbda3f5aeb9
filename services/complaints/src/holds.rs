//! Legal holds in the customers service: placed when a complaint goes to
//! legal channels (in the step's transaction, before it commits: no
//! complaint is in legal referral without its hold), released once it
//! closes (queued in the closing transaction, delivered after commit and
//! retried until the customers service has it). The complaints service acts
//! with its own service token.
//!
//! A release is delivered while holding the complaint's row (a conditional
//! update that only matches a complaint not in legal referral), so a step
//! that refers it to legal channels again waits for the release to finish
//! and then places the hold anew; a release queued for a step whose commit
//! was reported failed but happened finds the complaint in legal referral
//! and is dropped.
use std::time::Duration;

use kefu_kit::{Error, client::CallContext, module::ServiceTokens};
use kefu_proto::customers::v1::{self as cpb, customer_service_client::CustomerServiceClient};
use sqlx::{AnyConnection, AnyPool, Row};

pub struct LegalHolds {
    pool: AnyPool,
    customers: tonic::transport::Channel,
    token: ServiceTokens,
}

impl LegalHolds {
    pub fn new(pool: AnyPool, customers: tonic::transport::Channel, token: ServiceTokens) -> Self {
        Self { pool, customers, token }
    }

    fn client(
        &self,
    ) -> Result<
        CustomerServiceClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallContext>>,
        Error,
    > {
        let token = (self.token)().map_err(Error::Internal)?;
        Ok(CustomerServiceClient::with_interceptor(self.customers.clone(), CallContext::new(Some(&token))?))
    }

    /// Places (or renews) the hold of complaint `reference` on the customer.
    pub async fn place(&self, customer_id: &str, reference: &str) -> Result<(), Error> {
        let mut c = self.client()?;
        let call = c.place_legal_hold(cpb::PlaceLegalHoldRequest {
            customer_id: customer_id.to_owned(),
            reference: reference.to_owned(),
            reason: format!("投诉 {reference} 进入法律途径"),
        });
        kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call)
            .await
            .map(drop)
            .map_err(|s| Error::from_peer("customers", &s))
    }

    /// Queues the release, in the closing transaction.
    pub async fn queue_release(
        conn: &mut AnyConnection,
        complaint_id: &str,
        customer_id: &str,
        reference: &str,
        at: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO legal_hold_releases (complaint_id, customer_id, reference, queued_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (complaint_id) DO UPDATE SET customer_id = excluded.customer_id, reference = excluded.reference, \
             queued_at = excluded.queued_at",
        )
        .bind(complaint_id)
        .bind(customer_id)
        .bind(reference)
        .bind(at)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Takes back a queued release (the complaint went to legal channels
    /// again before it was delivered).
    pub async fn unqueue_release(conn: &mut AnyConnection, complaint_id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM legal_hold_releases WHERE complaint_id = $1").bind(complaint_id).execute(conn).await?;
        Ok(())
    }

    /// Delivers queued releases (of one complaint, or all); how many went.
    pub async fn deliver(&self, only: Option<&str>) -> Result<usize, Error> {
        let mut conn = self.pool.acquire().await?;
        let rows =
            match only {
                Some(id) => {
                    sqlx::query(
                        "SELECT complaint_id, customer_id, reference FROM legal_hold_releases WHERE complaint_id = $1",
                    )
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?
                }
                None => sqlx::query(
                    "SELECT complaint_id, customer_id, reference FROM legal_hold_releases ORDER BY queued_at LIMIT 100",
                )
                .fetch_all(&mut *conn)
                .await?,
            };
        drop(conn);
        let mut n = 0;
        for r in rows {
            let (complaint, customer, reference): (String, String, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let mut tx = self.pool.begin().await?;
            // Holds the complaint's row while the release is in flight; no
            // match: the complaint is in legal referral (again), its hold stays.
            let free = sqlx::query("UPDATE complaints SET legal_hold = legal_hold WHERE id = $1 AND legal_hold = 0")
                .bind(&complaint)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if free == 1 {
                let mut c = self.client()?;
                let call = c.release_legal_hold(cpb::ReleaseLegalHoldRequest {
                    customer_id: customer,
                    reference: reference.clone(),
                    reason: format!("投诉 {reference} 已结案"),
                    generation: 0,
                });
                match kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call).await {
                    // Released, or never there (nothing to keep).
                    Ok(_) => {}
                    Err(s) if s.code() == tonic::Code::NotFound => {}
                    Err(s) => return Err(Error::from_peer("customers", &s)),
                }
            }
            sqlx::query("DELETE FROM legal_hold_releases WHERE complaint_id = $1 AND reference = $2")
                .bind(&complaint)
                .bind(&reference)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            n += 1;
        }
        Ok(n)
    }

    /// Retries queued releases every `every` until stopped.
    pub async fn run(self: std::sync::Arc<Self>, every: Duration, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(every);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => match self.deliver(None).await {
                    Ok(_) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "legal hold releases wait for the customers service");
                    }
                    Err(_) => {}
                },
            }
        }
    }
}
