//! Erasure reaches tickets (through the kit's follower of the customers'
//! erasure feed): for each erased customer, tickets removes what it holds
//! about the person — the requester, their messages, contact details written
//! into subjects, notes and replies, the numbers and notes of their calls —
//! keeping the tickets themselves (numbers, times, SLA history) as business
//! records.
use kefu_kit::{Error, erasure::ErasureTarget};
use sqlx::AnyConnection;

use crate::store;

const CURSOR: &str = "erasure_cursor";

/// What tickets does on an erasure.
pub struct TicketsErasure;

/// The follower tickets runs.
pub type ErasureFollower = kefu_kit::erasure::ErasureFollower<TicketsErasure>;

#[async_trait::async_trait]
impl ErasureTarget for TicketsErasure {
    fn service(&self) -> &'static str {
        "tickets"
    }

    async fn redact(&self, conn: &mut AnyConnection, customer_id: &str) -> Result<usize, Error> {
        store::redact_customer(conn, customer_id).await
    }

    async fn mark_erased(&self, conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
        store::mark_erased(conn, customer_id).await
    }

    async fn erased(&self, conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
        store::erased_customers(conn).await
    }

    async fn cursor(&self, conn: &mut AnyConnection) -> Result<i64, Error> {
        Ok(store::get_setting(conn, CURSOR).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
    }

    async fn set_cursor(&self, conn: &mut AnyConnection, seq: i64) -> Result<(), Error> {
        store::put_setting(conn, CURSOR, &seq.to_string()).await
    }
}
