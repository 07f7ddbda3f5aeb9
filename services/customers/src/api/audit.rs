//! The audit trail: recording entries for the other resources, listing
//! them, and verifying the chain (`kefu_kit::audit`).
use kefu_kit::{Result, audit, auth::Principal, parse};
use kefu_proto::customers::v1 as pb;
use sqlx::AnyConnection;

use super::CustomersApi;

const LIST: &str = "audit";

/// Appends an entry by caller `p` (under the role that allowed the call)
/// inside the caller's transaction.
pub(super) async fn record(
    api: &CustomersApi,
    conn: &mut AnyConnection,
    p: &Principal,
    action: &str,
    customer_id: &str,
    detail: impl Into<String>,
    purpose: &str,
) -> Result<()> {
    let ev = audit::Event { detail: detail.into(), purpose, ..audit::Event::by(p, action, customer_id) };
    audit::append(conn, &api.audit_keys, ev).await.map(|_| ())
}

pub(super) async fn list(api: &CustomersApi, r: pb::ListAuditEntriesRequest) -> Result<pb::ListAuditEntriesResponse> {
    let customer = parse::opt_id("customer_id", &r.customer_id)?;
    let mut conn = api.pool.acquire().await?;
    let (rows, next_page_token) = audit::page(&mut conn, LIST, customer.as_deref(), r.page_size, &r.page_token).await?;
    let entries = rows
        .into_iter()
        .map(|e| pb::AuditEntry {
            seq: e.seq,
            time: parse::ts(e.at),
            actor: e.actor,
            actor_role: e.actor_role,
            action: e.action,
            customer_id: e.subject,
            detail: e.detail,
            purpose: e.purpose,
            hash: e.hash,
            prev_hash: e.prev_hash,
            key_id: e.key_id,
        })
        .collect();
    Ok(pb::ListAuditEntriesResponse { entries, next_page_token })
}

pub(super) async fn verify(api: &CustomersApi, r: pb::VerifyAuditChainRequest) -> Result<pb::VerifyAuditChainResponse> {
    let checkpoint = audit::parse_checkpoint(r.checkpoint_seq, &r.checkpoint_hash)?;
    let mut conn = api.pool.acquire().await?;
    let v = audit::verify_logged(&mut conn, &api.audit_keys, checkpoint.as_ref()).await?;
    let (first_bad_seq, problem) = v.problem.unwrap_or((0, String::new()));
    Ok(pb::VerifyAuditChainResponse {
        intact: first_bad_seq == 0,
        entries_checked: v.entries_checked,
        first_bad_seq,
        problem,
        head_seq: v.head.seq,
        head_hash: v.head.hash,
    })
}
