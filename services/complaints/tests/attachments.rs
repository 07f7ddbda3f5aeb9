//! Evidence attachments through the public API, on SQLite + a directory and
//! PostgreSQL + S3-compatible storage: kept sealed, read for a purpose with
//! every read recorded, refused by kind and size, once per request id, and
//! destroyed with the customer's data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1::{self as pb},
    customers::v1 as cpb,
};
use kefu_testkit::{Backend, Suite, violations};
use tonic::Code;

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    evidence_is_kept_sealed_read_for_a_purpose_and_every_read_recorded,
    bad_files_are_refused_by_name_and_change_nothing,
    evidence_leaves_with_the_customers_erased_data,
);

/// A small PDF whose text is personal: it must not be readable in the store.
fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj<<>>stream\n\xe5\xae\xa2\xe6\x88\xb7\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81 310101199001011234\nendstream\nendobj\n%%EOF\n"
        .to_vec()
}

async fn complaint(s: &Suite, handler_token: &str, n: u32) -> (String, pb::Complaint) {
    let c = s.customer("证据测试有限公司", n, cpb::ServiceTier::Standard).await;
    let rec = s
        .complaints_with_token(Some(handler_token))
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::Customer as i32,
                channel: Channel::Email as i32,
                customer_id: c.clone(),
                subject_kind: pb::SubjectKind::Staff as i32,
                subject: "agent-7".into(),
                category: "professional_error".into(),
                severity: pb::Severity::High as i32,
                description: "申报表数据错误导致滞纳金。".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    (c, rec)
}

fn upload(id: &str, name: &str, content: Vec<u8>) -> pb::AddComplaintAttachmentRequest {
    pb::AddComplaintAttachmentRequest {
        complaint_id: id.into(),
        file_name: name.into(),
        content_type: String::new(),
        content,
        note: "客户提供的税务局通知书".into(),
        request_id: String::new(),
    }
}

async fn evidence_is_kept_sealed_read_for_a_purpose_and_every_read_recorded(s: Suite) {
    let handler = s.token_for("agent-9", Role::Agent);
    let (_, rec) = complaint(&s, &handler, 701).await;
    let mut agent = s.complaints_with_token(Some(&handler));
    let a = agent.add_complaint_attachment(upload(&rec.number, "税务局通知书.pdf", pdf())).await.unwrap().into_inner();
    assert_eq!(a.content_type, "application/pdf");
    assert_eq!(a.size_bytes, pdf().len() as i64);
    assert_eq!(a.sha256.len(), 64);
    assert_eq!((a.uploaded_by.as_str(), a.erased), ("agent-9", false));

    // What the store holds is sealed: neither the bytes nor the text show.
    let key = format!("{}/{}", rec.id, a.id);
    let raw = s.complaint_files.get(&key).await.unwrap().expect("the sealed file");
    assert!(raw.len() > pdf().len(), "sealed with a nonce and a tag");
    assert!(!raw.windows(18).any(|w| w == b"310101199001011234"), "the file is readable in the store");
    assert!(!raw.starts_with(b"%PDF"));

    // Read for a purpose; the purpose is required.
    let no_purpose = agent
        .get_complaint_attachment(pb::GetComplaintAttachmentRequest { id: a.id.clone(), purpose: String::new() })
        .await
        .unwrap_err();
    assert_eq!(violations(&no_purpose), vec!["purpose".to_string()]);
    let got = agent
        .get_complaint_attachment(pb::GetComplaintAttachmentRequest {
            id: a.id.clone(),
            purpose: "核对通知书日期".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.content, pdf());
    assert!(got.attachment.unwrap().reads.is_empty(), "agents do not see the read log");
    // The staff member the complaint is about, and other agents, do not read it.
    let about = s.complaints_with_token(Some(&s.token_for("agent-7", Role::Agent)));
    let denied = about
        .clone()
        .get_complaint_attachment(pb::GetComplaintAttachmentRequest { id: a.id.clone(), purpose: "看看".into() })
        .await
        .unwrap_err();
    assert!(matches!(denied.code(), Code::PermissionDenied | Code::NotFound), "{denied:?}");
    let other = s.complaints_with_token(Some(&s.token_for("agent-3", Role::Agent)));
    assert!(other.clone().add_complaint_attachment(upload(&rec.id, "x.pdf", pdf())).await.is_err());
    // HR reads no evidence at all.
    let hr = s
        .complaints_as(Role::Hr)
        .list_complaint_attachments(pb::ListComplaintAttachmentsRequest { complaint_id: rec.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(hr.code(), Code::PermissionDenied);

    // Auditors see who read it, when and why.
    let listed = s
        .complaints_as(Role::Auditor)
        .list_complaint_attachments(pb::ListComplaintAttachmentsRequest { complaint_id: rec.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .attachments;
    assert_eq!(listed.len(), 1);
    let reads = &listed[0].reads;
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!((reads[0].reader.as_str(), reads[0].purpose.as_str()), ("agent-9", "核对通知书日期"));

    // Concurrent retries of one upload keep one attachment.
    let mut req = upload(&rec.id, "通话记录.txt", "2026-03-02 10:00 客户来电，要求书面解释。".as_bytes().to_vec());
    req.request_id = "upload-1".into();
    let (mut one, mut two) = (agent.clone(), agent.clone());
    let (x, y) = tokio::join!(one.add_complaint_attachment(req.clone()), two.add_complaint_attachment(req.clone()));
    let (x, y) = (x.unwrap().into_inner(), y.unwrap().into_inner());
    assert_eq!(x.id, y.id);
    assert_eq!(x.content_type, "text/plain");
    let all = agent
        .list_complaint_attachments(pb::ListComplaintAttachmentsRequest { complaint_id: rec.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .attachments;
    assert_eq!(all.len(), 2);
}

async fn bad_files_are_refused_by_name_and_change_nothing(s: Suite) {
    let handler = s.token_for("agent-9", Role::Agent);
    let (_, rec) = complaint(&s, &handler, 702).await;
    let mut agent = s.complaints_with_token(Some(&handler));
    let refused = |content: Vec<u8>, name: &str, declared: &str| {
        let mut r = upload(&rec.id, name, content);
        r.content_type = declared.into();
        let mut agent = agent.clone();
        async move { agent.add_complaint_attachment(r).await.unwrap_err() }
    };
    let exe = refused(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec(), "发票.pdf", "").await;
    assert_eq!(violations(&exe), vec!["content".to_string()]);
    let lied = refused(pdf(), "a.pdf", "image/png").await;
    assert_eq!(violations(&lied), vec!["content_type".to_string()]);
    assert!(lied.message().contains("application/pdf"), "{}", lied.message());
    let big = refused(vec![b'a'; 2 * 1024 * 1024 + 1], "big.txt", "").await;
    assert_eq!(violations(&big), vec!["content".to_string()]);
    let empty = refused(Vec::new(), "e.txt", "").await;
    assert_eq!(violations(&empty), vec!["content".to_string()]);
    let path = refused(pdf(), "../../etc/passwd", "").await;
    assert_eq!(violations(&path), vec!["file_name".to_string()]);
    let missing = agent.add_complaint_attachment(upload("TS-2026-999999", "a.pdf", pdf())).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown = agent
        .get_complaint_attachment(pb::GetComplaintAttachmentRequest {
            id: uuid::Uuid::now_v7().to_string(),
            purpose: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let none = agent
        .list_complaint_attachments(pb::ListComplaintAttachmentsRequest { complaint_id: rec.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .attachments;
    assert!(none.is_empty(), "nothing was kept: {none:?}");
}

async fn evidence_leaves_with_the_customers_erased_data(s: Suite) {
    let handler = s.token_for("agent-9", Role::Agent);
    let (c, rec) = complaint(&s, &handler, 703).await;
    let mut agent = s.complaints_with_token(Some(&handler));
    let a = agent.add_complaint_attachment(upload(&rec.id, "身份证复印件.pdf", pdf())).await.unwrap().into_inner();
    s.erase_customer(&c, "PIPL 删除请求 2026-301").await;
    assert_eq!(s.complaints.erasures.follow_once().await.unwrap(), 1);
    let listed = agent
        .list_complaint_attachments(pb::ListComplaintAttachmentsRequest { complaint_id: rec.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .attachments;
    assert!(listed[0].erased && listed[0].file_name == "[已删除]", "{listed:?}");
    assert!(listed[0].sha256.is_empty() && !a.sha256.is_empty(), "not even the file's hash stays");
    assert_eq!(listed[0].size_bytes, a.size_bytes, "the record that a file was held stays");
    let upload_after = agent.add_complaint_attachment(upload(&rec.id, "新证据.pdf", pdf())).await.unwrap_err();
    assert_eq!(upload_after.code(), Code::FailedPrecondition, "no new evidence of an erased customer");
    let gone = agent
        .get_complaint_attachment(pb::GetComplaintAttachmentRequest { id: a.id.clone(), purpose: "复核".into() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition);
    assert!(s.complaint_files.get(&format!("{}/{}", rec.id, a.id)).await.unwrap().is_none(), "the file is gone");
}
