//! The audit trail: recording entries for the other resources, listing
//! them, and verifying the chain (`kefu_kit::audit`).
use kefu_kit::{Error, Result, audit, auth::Principal, page, parse};
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
    let size = parse::page_size("page_size", r.page_size, 100, 1000)?;
    let after = match page::after(LIST, &r.page_token)? {
        Some(seq) => {
            seq.parse::<i64>().map_err(|_| Error::invalid("page_token", "is not a page token returned by this list"))?
        }
        None => 0,
    };
    let mut conn = api.pool.acquire().await?;
    let rows = audit::list(&mut conn, customer.as_deref(), after, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |e| e.seq.to_string());
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
    let checkpoint = match (r.checkpoint_seq, r.checkpoint_hash.trim()) {
        (0, "") => None,
        (seq, hash) if seq > 0 && hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some(audit::Checkpoint { seq, hash: hash.to_ascii_lowercase() })
        }
        (seq, _) if seq <= 0 => return Err(Error::invalid("checkpoint_seq", "must be a positive entry number")),
        _ => return Err(Error::invalid("checkpoint_hash", "must be the 64 hex digits logged with the checkpoint")),
    };
    let mut conn = api.pool.acquire().await?;
    let v = audit::verify(&mut conn, &api.audit_keys, checkpoint.as_ref()).await?;
    let (first_bad_seq, problem) = v.problem.unwrap_or((0, String::new()));
    if first_bad_seq != 0 {
        tracing::error!(seq = first_bad_seq, %problem, "audit chain verification failed");
    }
    Ok(pb::VerifyAuditChainResponse {
        intact: first_bad_seq == 0,
        entries_checked: v.entries_checked,
        first_bad_seq,
        problem,
        head_seq: v.head.seq,
        head_hash: v.head.hash,
    })
}
