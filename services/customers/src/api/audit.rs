//! The audit trail: recording entries for the other resources, listing
//! them, and verifying the hash chain.
use kefu_kit::{Error, Result, auth::Principal, page, parse};
use kefu_proto::customers::v1 as pb;
use sqlx::AnyConnection;

use super::CustomersApi;
use crate::store::{self, AuditEvent};

const LIST: &str = "audit";

/// Appends an entry by caller `p` inside the caller's transaction.
pub(super) async fn record(
    conn: &mut AnyConnection,
    p: &Principal,
    action: &str,
    customer_id: &str,
    detail: impl Into<String>,
    purpose: &str,
) -> Result<()> {
    store::append_audit(
        conn,
        AuditEvent {
            actor: &p.subject,
            actor_role: p.primary_role(),
            action,
            customer_id,
            detail: detail.into(),
            purpose,
        },
    )
    .await
    .map(|_| ())
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
    let rows = store::list_audit(&mut conn, customer.as_deref(), after, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |(rec, _)| rec.seq.to_string());
    let entries = rows
        .into_iter()
        .map(|(r, hash)| pb::AuditEntry {
            seq: r.seq,
            time: parse::ts(r.at_ms),
            actor: r.actor,
            actor_role: r.actor_role,
            action: r.action,
            customer_id: r.customer_id,
            detail: r.detail,
            purpose: r.purpose,
            hash,
            prev_hash: r.prev_hash,
        })
        .collect();
    Ok(pb::ListAuditEntriesResponse { entries, next_page_token })
}

pub(super) async fn verify(api: &CustomersApi) -> Result<pb::VerifyAuditChainResponse> {
    let mut conn = api.pool.acquire().await?;
    let (checked, problem) = store::verify_audit(&mut conn).await?;
    Ok(match problem {
        None => pb::VerifyAuditChainResponse {
            intact: true,
            entries_checked: checked,
            first_bad_seq: 0,
            problem: String::new(),
        },
        Some(b) => {
            tracing::error!(seq = b.seq, problem = %b.problem, "audit chain verification failed");
            pb::VerifyAuditChainResponse {
                intact: false,
                entries_checked: checked,
                first_bad_seq: b.seq,
                problem: b.problem,
            }
        }
    })
}
