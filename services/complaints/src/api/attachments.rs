//! Evidence attachments: kept sealed in the file store, read for a stated
//! purpose with every read recorded; contents never reach a log.
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    db,
    error::Violations,
    parse::{self, ts},
};
use kefu_proto::complaints::v1 as pb;
use sha2::{Digest, Sha256};

use super::{ComplaintsApi, SEES_ALL, find, handles, is_about};
use crate::{
    domain,
    store::{self, AttachmentRow},
};

const SCOPE: &str = "complaints.attachment";

async fn attachment_pb(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    a: AttachmentRow,
) -> Result<pb::Attachment, Error> {
    let reads = if p.has_any(&[Role::Auditor, Role::Admin]) {
        store::reads(conn, &a.id)
            .await?
            .into_iter()
            .map(|(reader, role, purpose, at)| pb::AttachmentRead { reader, role, purpose, time: ts(at) })
            .collect()
    } else {
        Vec::new()
    };
    Ok(pb::Attachment {
        id: a.id,
        complaint_id: a.complaint_id,
        file_name: super::masked_text(p, &a.file_name),
        content_type: a.content_type,
        size_bytes: a.size_bytes,
        sha256: a.sha256,
        note: super::masked_text(p, &a.note),
        uploaded_by: a.uploaded_by,
        upload_time: ts(a.uploaded_at),
        erased: a.erased_at.is_some(),
        reads,
    })
}

fn file_name(v: &mut Violations, raw: &str) -> String {
    let name = v.check(parse::required_line("file_name", raw, 200)).unwrap_or_default();
    if name.contains(['/', '\\']) || name.starts_with('.') {
        v.add("file_name", "give the file's name without a path (and not starting with a dot)");
    }
    name
}

pub(super) async fn add(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::AddComplaintAttachmentRequest,
) -> Result<pb::Attachment, Error> {
    let mut v = Violations::new();
    let name = file_name(&mut v, &r.file_name);
    let note = v.check(parse::text("note", &r.note, 2000)).unwrap_or_default();
    let request_id = v.check(parse::line("request_id", &r.request_id, 128)).unwrap_or_default();
    let declared = v.check(parse::line("content_type", &r.content_type, 128)).unwrap_or_default();
    let mut kind = None;
    if r.content.is_empty() {
        v.add("content", "the file is empty");
    } else if r.content.len() > domain::ATTACHMENT_MAX_BYTES {
        v.add(
            "content",
            format!(
                "{} bytes is more than the {} MiB an attachment may have",
                r.content.len(),
                domain::ATTACHMENT_MAX_BYTES >> 20
            ),
        );
    } else {
        match domain::sniff(&r.content, &name) {
            None => v.add(
                "content",
                "is not a kind of file kept as evidence: PDF, PNG, JPEG, GIF, WebP, UTF-8 text, or a docx/xlsx/pptx document",
            ),
            Some(t) if !declared.is_empty() && !declared.eq_ignore_ascii_case(t) => {
                v.add("content_type", format!("the file is {t}, not {declared}"));
            }
            Some(t) => kind = Some(t),
        }
    }
    v.finish()?;
    let Some(kind) = kind else { return Err(Error::invalid("content", "is not valid")) };
    // The complaint, checked before anything is stored.
    let complaint = {
        let mut conn = api.pool.acquire().await?;
        find(&mut conn, p, "complaint_id", &r.complaint_id, true).await?
    };
    let fingerprint = db::fingerprint_of(&pb::AddComplaintAttachmentRequest { request_id: String::new(), ..r.clone() });
    let id = uuid::Uuid::now_v7().to_string();
    let row = AttachmentRow {
        id: id.clone(),
        complaint_id: complaint.id.clone(),
        file_name: name,
        content_type: kind.to_owned(),
        size_bytes: i64::try_from(r.content.len()).unwrap_or(i64::MAX),
        sha256: hex::encode(Sha256::digest(&r.content)),
        note,
        uploaded_by: p.subject.clone(),
        uploaded_at: api.now(),
        blob_key: format!("{}/{id}", complaint.id),
        erased_at: None,
    };
    // The file first: a row never names contents that are not there.
    api.blobs.put(&row.blob_key, &r.content).await.map_err(|e| {
        tracing::error!(error = %e, "the file store did not take an attachment");
        Error::Unavailable("the file store is unavailable; try again".into())
    })?;
    // Any failure from here on takes the file back out of the store.
    let written: Result<Option<String>, Error> = async {
        let mut tx = api.pool.begin().await?;
        if !complaint.customer_id.is_empty() && store::is_erased(&mut tx, &complaint.customer_id).await? {
            return Err(Error::FailedPrecondition("the customer's data was erased; no new evidence is kept".into()));
        }
        if !request_id.is_empty()
            && let db::Claim::Existing(existing) =
                db::claim_request_id(&mut tx, &format!("{SCOPE}:{}", p.subject), &request_id, &row.id, &fingerprint)
                    .await?
        {
            return Ok(Some(existing));
        }
        store::insert_attachment(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(None)
    }
    .await;
    let first = match written {
        Ok(None) => {
            let mut conn = api.pool.acquire().await?;
            return attachment_pb(&mut conn, p, row).await;
        }
        Ok(Some(first)) => first,
        Err(e) => {
            if let Err(d) = api.blobs.delete(&row.blob_key).await {
                tracing::warn!(error = %d, "an attachment whose row was not written stays in the file store");
            }
            return Err(e);
        }
    };
    // A retry: the first upload stands, this copy goes.
    if let Err(e) = api.blobs.delete(&row.blob_key).await {
        tracing::warn!(error = %e, "a retried upload's copy stays in the file store");
    }
    let mut conn = api.pool.acquire().await?;
    let first = store::get_attachment(&mut conn, &first)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("attachment {first} of a claimed request id is missing")))?;
    attachment_pb(&mut conn, p, first).await
}

/// Evidence is for those who handle the complaint and those who see every
/// complaint — never for the person it is about, whatever their role.
fn may_read_evidence(p: &Principal, c: &crate::store::ComplaintRow) -> Result<(), Error> {
    if is_about(p, c) || !(p.has_any(SEES_ALL) || handles(p, c)) {
        return Err(Error::PermissionDenied("the evidence is read by those who handle the complaint".into()));
    }
    Ok(())
}

pub(super) async fn list(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::ListComplaintAttachmentsRequest,
) -> Result<pb::ListComplaintAttachmentsResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = find(&mut conn, p, "complaint_id", &r.complaint_id, false).await?;
    may_read_evidence(p, &c)?;
    let mut out = Vec::new();
    for a in store::attachments(&mut conn, &c.id).await? {
        out.push(attachment_pb(&mut conn, p, a).await?);
    }
    Ok(pb::ListComplaintAttachmentsResponse { attachments: out })
}

pub(super) async fn get(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::GetComplaintAttachmentRequest,
) -> Result<pb::AttachmentContent, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::id("id", &r.id)).unwrap_or_default();
    let purpose = v.check(parse::required_line("purpose", &r.purpose, 200)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let a = store::get_attachment(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("attachment {id}")))?;
    let c = find(&mut tx, p, "id", &a.complaint_id, false).await?;
    // The staff member a complaint is about reads its finding, not its evidence.
    may_read_evidence(p, &c)?;
    if a.erased_at.is_some() {
        return Err(Error::FailedPrecondition("the attachment was destroyed with the customer's data".into()));
    }
    let content = api
        .blobs
        .get(&a.blob_key)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, attachment = %a.id, "an attachment could not be read from the file store");
            Error::Unavailable("the file store is unavailable; try again".into())
        })?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("attachment {} has no contents in the file store", a.id)))?;
    // A purpose is kept for good: identifiers in it are masked first.
    let purpose = kefu_kit::mask::redact(&purpose);
    store::record_read(&mut tx, &a.id, &p.subject, p.primary_role(), &purpose, api.now()).await?;
    super::audit::record(
        api,
        &mut tx,
        p,
        "complaint.attachment.read",
        &c.id,
        format!("{}: attachment {} ({}, {} bytes)", c.number, a.id, a.content_type, a.size_bytes),
        &purpose,
    )
    .await?;
    // The answer is built before the read is committed as done.
    let attachment = attachment_pb(&mut tx, p, a).await?;
    tx.commit().await?;
    Ok(pb::AttachmentContent { attachment: Some(attachment), content })
}
