//! A complainant's personal data through the public API, on SQLite + memory
//! and PostgreSQL + Redis: their words masked in every answer, read in the
//! clear one complaint at a time for a stated purpose that the audit trail
//! keeps, withheld with their identity from the staff member complained
//! about; the trail (reads, evidence reads, category changes) listed and
//! verified; and a legal hold renewed by a second referral that a release
//! queued before it cannot end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1::{self as pb, ComplaintAction as A, PersonalData},
    customers::v1 as cpb,
};
use kefu_testkit::{Backend, Suite, violations};
use tonic::Code;

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    a_complainants_words_are_masked_and_read_in_the_clear_only_for_a_purpose_on_the_record,
    the_staff_member_complained_about_never_sees_the_complainant_or_their_words,
    evidence_reads_and_category_changes_are_in_a_verifiable_audit_trail,
    a_release_queued_before_a_second_legal_referral_does_not_end_the_renewed_hold,
);

const WORDS: &str = "请回电13912345678，身份证110101199003071234，邮箱 zhao.li@example.cn，2026-11-28 逾期申报被罚。";
const MASKED: &str = "请回电*******5678，身份证********1234，邮箱 z***@example.cn，2026-11-28 逾期申报被罚。";
const DEMAND: &str = "退款至 6222 0212 3456 7890";

async fn record(s: &Suite, handler_token: &str, n: u32) -> pb::Complaint {
    let c = s.customer("隐私测试有限公司", n, cpb::ServiceTier::Standard).await;
    s.complaints_with_token(Some(handler_token))
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::Customer as i32,
                channel: Channel::Phone as i32,
                customer_id: c,
                subject_kind: pb::SubjectKind::Staff as i32,
                subject: "agent-7".into(),
                category: "service_attitude".into(),
                severity: pb::Severity::High as i32,
                description: WORDS.into(),
                demand: Some(pb::Demand {
                    kind: pb::DemandKind::Refund as i32,
                    amount_fen: 50_000,
                    detail: DEMAND.into(),
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn unmasked(id: &str, purpose: &str) -> pb::GetComplaintRequest {
    pb::GetComplaintRequest { id: id.into(), unmasked: true, purpose: purpose.into() }
}

async fn trail(s: &Suite, subject: &str) -> Vec<pb::ComplaintAuditEntry> {
    s.complaints_as(Role::Auditor)
        .list_complaint_audit_entries(pb::ListComplaintAuditEntriesRequest {
            subject: subject.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

async fn a_complainants_words_are_masked_and_read_in_the_clear_only_for_a_purpose_on_the_record(s: Suite) {
    let handler = s.token_for("agent-9", Role::Agent);
    let rec = record(&s, &handler, 801).await;
    // What the recorder gets back is masked already.
    assert_eq!((rec.description.as_str(), rec.personal_data), (MASKED, PersonalData::Masked as i32));
    assert_eq!(rec.demand.as_ref().unwrap().detail, "退款至 ********7890");
    assert_eq!(rec.demand.as_ref().unwrap().amount_fen, 50_000, "amounts are not personal");

    // Lists and plain reads are masked for people, in the clear for systems.
    let mut sup = s.complaints_as(Role::Supervisor);
    let listed = sup
        .list_complaints(pb::ListComplaintsRequest { customer_id: rec.customer_id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .complaints;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].description, MASKED);
    let plain = sup
        .get_complaint(pb::GetComplaintRequest { id: rec.number.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((plain.description.as_str(), plain.personal_data), (MASKED, PersonalData::Masked as i32));
    let system = s
        .complaints_as(Role::Service)
        .list_complaints(pb::ListComplaintsRequest { customer_id: rec.customer_id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .complaints;
    assert_eq!((system[0].description.as_str(), system[0].personal_data), (WORDS, PersonalData::Clear as i32));
    assert!(trail(&s, &rec.id).await.is_empty(), "masked reads are not personal-data reads");

    // The clear text needs a purpose; a purpose without asking for it is refused too.
    let no_purpose = sup.get_complaint(unmasked(&rec.id, "  ")).await.unwrap_err();
    assert_eq!(violations(&no_purpose), vec!["purpose".to_string()]);
    let stray = sup
        .get_complaint(pb::GetComplaintRequest { id: rec.id.clone(), unmasked: false, purpose: "核实".into() })
        .await;
    assert_eq!(violations(&stray.unwrap_err()), vec!["purpose".to_string()]);
    assert!(trail(&s, &rec.id).await.is_empty(), "a refused read leaves no entry");

    // The handler reads it in the clear, and the trail says who, why and what.
    let clear = s
        .complaints_with_token(Some(&handler))
        .get_complaint(unmasked(&rec.number, "回电核实客户诉求"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((clear.description.as_str(), clear.personal_data), (WORDS, PersonalData::Clear as i32));
    assert_eq!(clear.demand.unwrap().detail, DEMAND);
    let entries = trail(&s, &rec.number).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (e.action.as_str(), e.actor.as_str(), e.actor_role.as_str(), e.purpose.as_str(), e.subject.as_str()),
        ("complaint.read", "agent-9", "agent", "回电核实客户诉求", rec.id.as_str())
    );
    assert!(!e.detail.contains("13912345678") && e.detail.contains(&rec.number), "{}", e.detail);
    assert_eq!(e.hash.len(), 64);

    // Another agent does not learn it exists; HR reads figures, not complaints;
    // only auditors and admins read the trail.
    let other = s.complaints_with_token(Some(&s.token_for("agent-3", Role::Agent)));
    assert_eq!(other.clone().get_complaint(unmasked(&rec.id, "好奇")).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        s.complaints_as(Role::Hr).get_complaint(unmasked(&rec.id, "绩效")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    for role in [Role::Agent, Role::Supervisor, Role::Hr] {
        let denied = s
            .complaints_as(role)
            .list_complaint_audit_entries(pb::ListComplaintAuditEntriesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    assert_eq!(trail(&s, &rec.id).await.len(), 1, "refused reads leave no entry");
}

async fn the_staff_member_complained_about_never_sees_the_complainant_or_their_words(s: Suite) {
    let rec = record(&s, &s.token_for("agent-9", Role::Agent), 802).await;
    let mut sup = s.complaints_as(Role::Supervisor);
    for (a, t) in [(A::Acknowledge, ""), (A::GivePreliminaryOpinion, "先行致歉"), (A::StartInvestigation, "")] {
        sup.transition_complaint(pb::TransitionComplaintRequest {
            id: rec.id.clone(),
            action: a as i32,
            reason: "处理".into(),
            text: t.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    sup.record_finding(pb::RecordFindingRequest {
        id: rec.id.clone(),
        finding: Some(pb::Finding {
            findings: "录音证实态度生硬".into(),
            root_cause: pb::RootCause::Person as i32,
            responsible_staff: "agent-7".into(),
            responsible_department: "代账一部".into(),
            upheld: true,
            ..Default::default()
        }),
        etag: String::new(),
    })
    .await
    .unwrap();
    let about = s.complaints_with_token(Some(&s.token_for("agent-7", Role::Agent)));
    let seen = about
        .clone()
        .get_complaint(pb::GetComplaintRequest { id: rec.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.personal_data, PersonalData::Withheld as i32);
    assert!(seen.customer_id.is_empty() && seen.description.is_empty(), "{seen:?}");
    assert!(seen.demand.unwrap().detail.is_empty());
    assert_eq!(seen.finding.unwrap().findings, "录音证实态度生硬", "the finding about them is theirs to read");
    let refused = about.clone().get_complaint(unmasked(&rec.id, "了解情况")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let listed =
        about.clone().list_complaints(pb::ListComplaintsRequest::default()).await.unwrap().into_inner().complaints;
    for c in listed.iter().filter(|c| c.id == rec.id) {
        assert!(c.description.is_empty() && c.customer_id.is_empty(), "{c:?}");
    }
    assert!(trail(&s, &rec.id).await.is_empty());

    // A supervisor complained about, listing that customer's complaints,
    // does not find the one about them (it would name who complained).
    let about_sup = record(&s, &s.token_for("agent-9", Role::Agent), 805).await;
    let c2 = s
        .complaints_with_token(Some(&s.token_for("agent-9", Role::Agent)))
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::Customer as i32,
                channel: Channel::Phone as i32,
                customer_id: about_sup.customer_id.clone(),
                subject_kind: pb::SubjectKind::Staff as i32,
                subject: "supervisor-1".into(),
                category: "service_attitude".into(),
                severity: pb::Severity::Medium as i32,
                description: "主管接电话时不耐烦".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let of_customer = sup
        .list_complaints(pb::ListComplaintsRequest { customer_id: about_sup.customer_id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .complaints;
    let ids: Vec<&str> = of_customer.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec![about_sup.id.as_str()], "the complaint about supervisor-1 is left out");
    let all = sup.list_complaints(pb::ListComplaintsRequest::default()).await.unwrap().into_inner().complaints;
    let theirs = all.iter().find(|c| c.id == c2.id).expect("listed without the customer filter");
    assert_eq!(theirs.personal_data, PersonalData::Withheld as i32);
    assert!(theirs.customer_id.is_empty() && theirs.description.is_empty());
    // Reasons in the history are masked too.
    sup.transition_complaint(pb::TransitionComplaintRequest {
        id: about_sup.id.clone(),
        action: A::Acknowledge as i32,
        reason: "已致电13912345678确认".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let h = sup
        .list_complaint_history(pb::ListComplaintHistoryRequest { id: about_sup.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(h.iter().any(|e| e.reason == "已致电*******5678确认"), "{h:?}");
}

async fn evidence_reads_and_category_changes_are_in_a_verifiable_audit_trail(s: Suite) {
    let handler = s.token_for("agent-9", Role::Agent);
    let rec = record(&s, &handler, 803).await;
    let mut agent = s.complaints_with_token(Some(&handler));
    let a = agent
        .add_complaint_attachment(pb::AddComplaintAttachmentRequest {
            complaint_id: rec.id.clone(),
            file_name: "通话记录.txt".into(),
            content: "客户来电记录：电话13912345678".as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    agent
        .get_complaint_attachment(pb::GetComplaintAttachmentRequest {
            id: a.id.clone(), purpose: "核对通话".into()
        })
        .await
        .unwrap();
    let entries = trail(&s, &rec.id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].action.as_str(), entries[0].purpose.as_str()), ("complaint.attachment.read", "核对通话"));
    assert!(entries[0].detail.contains(&a.id) && !entries[0].detail.contains("13912345678"));

    // A category change: what changed and why.
    let mut sup = s.complaints_as(Role::Supervisor);
    let cats = sup.list_complaint_categories(pb::ListComplaintCategoriesRequest::default()).await.unwrap().into_inner();
    let mut list = cats.categories.clone();
    list.push(pb::ComplaintCategory { code: "invoice".into(), label: "发票问题".into(), active: true });
    sup.set_complaint_categories(pb::SetComplaintCategoriesRequest {
        categories: list,
        etag: cats.etag,
        reason: "增设发票类投诉".into(),
    })
    .await
    .unwrap();
    let changes = trail(&s, "categories").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].action.as_str(), changes[0].actor.as_str(), changes[0].purpose.as_str()),
        ("complaints.categories.set", "supervisor-1", "增设发票类投诉")
    );
    assert!(changes[0].detail.starts_with("added invoice=发票问题"), "{}", changes[0].detail);

    // The chain holds, also against the head kept as a checkpoint.
    let mut auditor = s.complaints_as(Role::Auditor);
    let v = auditor
        .verify_complaint_audit_chain(pb::VerifyComplaintAuditChainRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact && v.entries_checked >= 2, "{v:?}");
    let again = auditor
        .verify_complaint_audit_chain(pb::VerifyComplaintAuditChainRequest {
            checkpoint_seq: v.head_seq,
            checkpoint_hash: v.head_hash.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.intact, "{again:?}");
    let forged = auditor
        .verify_complaint_audit_chain(pb::VerifyComplaintAuditChainRequest {
            checkpoint_seq: v.head_seq,
            checkpoint_hash: "0".repeat(64),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!forged.intact && forged.first_bad_seq == v.head_seq, "{forged:?}");
    let bad = auditor
        .verify_complaint_audit_chain(pb::VerifyComplaintAuditChainRequest {
            checkpoint_seq: 1,
            checkpoint_hash: "xyz".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), vec!["checkpoint_hash".to_string()]);
    // Paging through the whole trail.
    let first = auditor
        .list_complaint_audit_entries(pb::ListComplaintAuditEntriesRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = auditor
        .list_complaint_audit_entries(pb::ListComplaintAuditEntriesRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(second.entries[0].seq > first.entries[0].seq);
}

async fn a_release_queued_before_a_second_legal_referral_does_not_end_the_renewed_hold(s: Suite) {
    let rec = record(&s, &s.token_for("agent-9", Role::Agent), 804).await;
    let customer = rec.customer_id.clone();
    let step = |a: A, t: &'static str| {
        let mut sup = s.complaints_as(Role::Supervisor);
        let id = rec.id.clone();
        async move {
            sup.transition_complaint(pb::TransitionComplaintRequest {
                id,
                action: a as i32,
                reason: format!("{a:?}"),
                text: t.into(),
                ..Default::default()
            })
            .await
            .unwrap()
        }
    };
    for (a, t) in [
        (A::Acknowledge, ""),
        (A::GivePreliminaryOpinion, "先行致歉"),
        (A::StartInvestigation, ""),
        (A::ProposeResponse, "退还部分费用"),
        (A::CustomerRejects, ""),
        (A::ReferToLegal, ""),
    ] {
        step(a, t).await;
    }
    let holds = || {
        let mut auditor = s.customers_as(Role::Auditor);
        let customer = customer.clone();
        async move {
            auditor
                .list_legal_holds(cpb::ListLegalHoldsRequest { customer_id: customer })
                .await
                .unwrap()
                .into_inner()
                .holds
        }
    };
    let first = holds().await;
    assert_eq!((first.len(), first[0].active, first[0].generation), (1, true, 1), "{first:?}");
    // Closed: released. Reopened and referred again: placed again, generation 2.
    step(A::Close, "").await;
    assert!(!holds().await[0].active);
    step(A::Reopen, "").await;
    for (a, t) in [(A::ProposeResponse, "全额退费"), (A::CustomerRejects, ""), (A::ReferToLegal, "")] {
        step(a, t).await;
    }
    let renewed = holds().await;
    assert_eq!((renewed[0].active, renewed[0].generation), (true, 2), "{renewed:?}");
    // The first closing's release, arriving late, names generation 1: refused, the hold stays.
    let late = s
        .customers_as(Role::Service)
        .release_legal_hold(cpb::ReleaseLegalHoldRequest {
            customer_id: customer.clone(),
            reference: rec.number.clone(),
            reason: format!("投诉 {} 已结案", rec.number),
            generation: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(late.message().contains("generation 2"), "{}", late.message());
    assert!(holds().await[0].active, "the renewed hold stays");
    // Placing it again while it lasts renews it; a release naming no
    // generation ends whatever placing is current.
    let again = s
        .customers_as(Role::Admin)
        .place_legal_hold(cpb::PlaceLegalHoldRequest {
            customer_id: customer.clone(),
            reference: rec.number.clone(),
            reason: "诉讼保全".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.active, again.generation), (true, 3));
    let bad = s
        .customers_as(Role::Admin)
        .release_legal_hold(cpb::ReleaseLegalHoldRequest {
            customer_id: customer.clone(),
            reference: rec.number.clone(),
            reason: "x".into(),
            generation: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), vec!["generation".to_string()]);
    assert!(holds().await[0].active, "a refused release changes nothing");
    // The complaint's closing ends the hold named after it.
    step(A::Close, "").await;
    assert!(!holds().await[0].active);
    let entries = trail(&s, &rec.id).await;
    assert!(entries.is_empty(), "holds are in the customers' trail: {entries:?}");
}
