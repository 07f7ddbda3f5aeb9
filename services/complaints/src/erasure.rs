//! Erasure reaches complaints (through the kit's follower of the customers'
//! erasure feed): an erased customer's words leave their complaints, which
//! stay as business records; a complaint under a legal hold waits for the
//! hold to end (the follower redacts erased customers' complaints again
//! now and then).
use kefu_kit::{Error, erasure::ErasureTarget};
use sqlx::AnyConnection;

use crate::store;

const CURSOR: &str = "erasure_cursor";

/// What complaints does on an erasure (attachments' contents leave the
/// file store too).
pub struct ComplaintsErasure {
    pub blobs: kefu_kit::blob::Blobs,
    /// Each applied erasure goes into the audit trail.
    pub audit_keys: kefu_kit::audit::AuditKeys,
}

/// The follower complaints runs.
pub type ErasureFollower = kefu_kit::erasure::ErasureFollower<ComplaintsErasure>;

#[async_trait::async_trait]
impl ErasureTarget for ComplaintsErasure {
    fn service(&self) -> &'static str {
        "complaints"
    }

    async fn redact(&self, conn: &mut AnyConnection, customer_id: &str) -> Result<usize, Error> {
        let n = store::redact_customer(conn, customer_id).await?;
        let now = chrono::Utc::now().timestamp_millis();
        // Deleting a file twice is no error: a resweep deletes again what
        // a rolled-back pass may have left.
        let keys = store::erase_attachments(conn, customer_id, now).await?;
        for key in &keys {
            self.blobs.delete(key).await.map_err(|e| Error::Unavailable(format!("the file store: {e}")))?;
        }
        Ok(n + keys.len())
    }

    async fn mark_erased(&self, conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
        store::mark_erased(conn, customer_id, chrono::Utc::now().timestamp_millis()).await?;
        let ev = kefu_kit::audit::Event {
            actor: "complaints",
            actor_role: "service",
            action: "complaints.erasure.apply",
            subject: customer_id,
            detail: "complainant's words and evidence removed (complaints under legal hold wait for its end)".into(),
            purpose: "customer erasure",
        };
        kefu_kit::audit::append(conn, &self.audit_keys, ev).await.map(drop)
    }

    async fn erased(&self, conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
        store::erased_customers(conn).await
    }

    async fn cursor(&self, conn: &mut AnyConnection) -> Result<i64, Error> {
        store::counter(conn, CURSOR).await
    }

    async fn set_cursor(&self, conn: &mut AnyConnection, seq: i64) -> Result<(), Error> {
        store::set_counter(conn, CURSOR, seq).await
    }
}
