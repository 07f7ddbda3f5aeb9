//! The complaints service's audit trail (`kefu_kit::audit`): reads of a
//! complainant's words and evidence in the clear with their purposes,
//! category changes and erasures applied; listed and verified by auditors.
use kefu_kit::{Error, audit, auth::Principal, parse};
use kefu_proto::complaints::v1 as pb;
use sqlx::AnyConnection;

use super::ComplaintsApi;
use crate::{domain, store};

const LIST: &str = "complaint-audit";

/// Appends an entry by caller `p` inside the caller's transaction. The
/// trail is kept for good, so identifiers in the purpose are masked.
pub(super) async fn record(
    api: &ComplaintsApi,
    conn: &mut AnyConnection,
    p: &Principal,
    action: &str,
    subject: &str,
    detail: impl Into<String>,
    purpose: &str,
) -> Result<(), Error> {
    let purpose = kefu_kit::mask::redact(purpose);
    let ev = audit::Event { detail: detail.into(), purpose: &purpose, ..audit::Event::by(p, action, subject) };
    audit::append(conn, &api.audit_keys, ev).await.map(drop)
}

pub(super) async fn list(
    api: &ComplaintsApi,
    r: pb::ListComplaintAuditEntriesRequest,
) -> Result<pb::ListComplaintAuditEntriesResponse, Error> {
    let raw = parse::line("subject", &r.subject, 64)?;
    let mut conn = api.reads.acquire().await?;
    // A complaint's number stands for its id.
    let subject = match domain::complaint_ref("subject", &raw) {
        Ok(domain::ComplaintRef::Number(n)) => match store::by_number(&mut conn, &n).await? {
            Some(c) => c.id,
            None => return Err(Error::NotFound(format!("complaint {n}"))),
        },
        _ => raw,
    };
    let (rows, next_page_token) =
        audit::page(&mut conn, LIST, (!subject.is_empty()).then_some(subject.as_str()), r.page_size, &r.page_token)
            .await?;
    let entries = rows
        .into_iter()
        .map(|e| pb::ComplaintAuditEntry {
            seq: e.seq,
            time: parse::ts(e.at),
            actor: e.actor,
            actor_role: e.actor_role,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
            purpose: e.purpose,
            hash: e.hash,
            prev_hash: e.prev_hash,
            key_id: e.key_id,
        })
        .collect();
    Ok(pb::ListComplaintAuditEntriesResponse { entries, next_page_token })
}

pub(super) async fn verify(
    api: &ComplaintsApi,
    r: pb::VerifyComplaintAuditChainRequest,
) -> Result<pb::VerifyComplaintAuditChainResponse, Error> {
    let checkpoint = audit::parse_checkpoint(r.checkpoint_seq, &r.checkpoint_hash)?;
    let mut conn = api.reads.acquire().await?;
    let v = audit::verify_logged(&mut conn, &api.audit_keys, checkpoint.as_ref()).await?;
    let (first_bad_seq, problem) = v.problem.unwrap_or((0, String::new()));
    Ok(pb::VerifyComplaintAuditChainResponse {
        intact: first_bad_seq == 0,
        entries_checked: v.entries_checked,
        first_bad_seq,
        problem,
        head_seq: v.head.seq,
        head_hash: v.head.hash,
    })
}
