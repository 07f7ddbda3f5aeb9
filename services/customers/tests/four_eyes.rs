//! Four eyes on a customer's most sensitive changes, through the public
//! gRPC interface on both backends: a bank-account change and an erasure
//! are applied only when a second person approves them, a disclosure to a
//! third party is released once to the person who proposed it, and every
//! step is in the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, violations};
use kefu_kit::auth::Role;
use kefu_proto::customers::v1 as pb;
use pb::propose_change_request::Change;
use tonic::Code;

on_both_backends!(
    a_bank_account_change_needs_a_second_person_and_is_audited,
    two_approvers_racing_decide_a_proposal_once,
    proposals_are_rejected_with_a_reason_expire_and_are_withdrawn_only_by_their_proposer,
    a_disclosure_is_released_once_to_its_proposer_for_exactly_its_terms,
    an_erasure_closes_the_customers_open_proposals,
    concurrent_retries_of_a_proposal_make_one,
);

async fn create(app: &TestApp, name: &str, n: u32) -> pb::Customer {
    let req = common::new_customer(name, &common::uscc(n));
    app.agent().create_customer(req).await.unwrap().into_inner()
}

fn bank_change(customer: &str, bank: &str, account: &str) -> pb::ProposeChangeRequest {
    pb::ProposeChangeRequest {
        customer_id: customer.to_owned(),
        reason: "客户来函变更收款账户（附盖章申请书）".into(),
        change: Some(Change::BankAccount(pb::BankAccountChange {
            bank_name: bank.to_owned(),
            bank_account: account.to_owned(),
        })),
        ..Default::default()
    }
}

fn erasure(customer: &str) -> pb::ProposeChangeRequest {
    pb::ProposeChangeRequest {
        customer_id: customer.to_owned(),
        reason: "PIPL art. 47 request #31".into(),
        change: Some(Change::Erasure(pb::ErasureChange {})),
        ..Default::default()
    }
}

async fn unmasked_bank(app: &TestApp, customer: &str) -> String {
    app.client(Role::Admin)
        .get_tax_profile(pb::GetTaxProfileRequest {
            customer_id: customer.to_owned(),
            unmasked: true,
            purpose: "four-eyes test".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .bank_account
}

async fn trail(app: &TestApp, customer: &str) -> Vec<pb::AuditEntry> {
    app.client(Role::Auditor)
        .list_audit_entries(pb::ListAuditEntriesRequest { customer_id: customer.to_owned(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries
}

async fn a_bank_account_change_needs_a_second_person_and_is_audited(app: TestApp) {
    let cust = create(&app, "收款賬戶", 501).await;
    let mut agent = app.agent();
    let profile = |bank: &str, account: &str, notes: &str| pb::UpdateTaxProfileRequest {
        tax_profile: Some(pb::TaxProfile {
            customer_id: cust.id.clone(),
            bank_name: bank.into(),
            bank_account: account.into(),
            tax_status_notes: notes.into(),
            ..Default::default()
        }),
        purpose: "onboarding".into(),
    };
    // Not even the first account is written directly.
    let first = agent.update_tax_profile(profile("招商银行", "6225 8812 3456 7890", "")).await.unwrap_err();
    assert_eq!(first.code(), Code::FailedPrecondition);
    common::set_bank_account(&app, &cust.id, "招商银行", "6225 8812 3456 7890").await;
    // Changing it directly is refused, naming the way, and changes nothing.
    let direct = agent.update_tax_profile(profile("工商银行", "6222 0000 9999 1234", "")).await.unwrap_err();
    assert_eq!(direct.code(), Code::FailedPrecondition);
    assert!(direct.message().contains("ProposeChange"), "{}", direct.message());
    assert_eq!(unmasked_bank(&app, &cust.id).await, "6225 8812 3456 7890");
    // Other fields change without touching the account (left empty).
    agent.update_tax_profile(profile("", "", "2026 年度汇算清缴已完成")).await.unwrap();
    assert_eq!(unmasked_bank(&app, &cust.id).await, "6225 8812 3456 7890", "an empty account keeps the recorded one");

    // Bad proposals name the field and record nothing.
    let mut sup = app.client(Role::Supervisor);
    let bad = sup.propose_change(bank_change(&cust.id, "工商银行", "6222-ABC")).await.unwrap_err();
    assert_eq!(violations(&bad), vec!["bank_account.bank_account".to_owned()]);
    let no_reason = sup
        .propose_change(pb::ProposeChangeRequest {
            reason: String::new(), ..bank_change(&cust.id, "工商银行", "1")
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&no_reason), vec!["reason".to_owned()]);
    let no_change = sup
        .propose_change(pb::ProposeChangeRequest { change: None, ..bank_change(&cust.id, "x", "1") })
        .await
        .unwrap_err();
    assert_eq!(violations(&no_change), vec!["change".to_owned()]);
    let same = sup.propose_change(bank_change(&cust.id, "招商银行", "6225 8812 3456 7890")).await.unwrap_err();
    assert_eq!(same.code(), Code::FailedPrecondition, "the recorded account is no change");

    // Proposed by supervisor-1: pending, its summary masked.
    let proposed =
        sup.propose_change(bank_change(&cust.id, "工商银行", "6222 0000 9999 1234")).await.unwrap().into_inner();
    assert_eq!(proposed.state, pb::ApprovalState::Pending as i32);
    assert_eq!(proposed.kind, pb::ApprovalKind::BankAccountChange as i32);
    assert_eq!(proposed.requested_by, "supervisor-1");
    assert!(proposed.summary.contains("工商银行") && proposed.summary.contains("1234"), "{}", proposed.summary);
    assert!(!proposed.summary.contains("9999") && !proposed.summary.contains("8812"), "{}", proposed.summary);
    let stored: (String,) = sqlx::query_as("SELECT payload FROM kit_approvals WHERE id = $1")
        .bind(&proposed.id)
        .fetch_one(&app.raw)
        .await
        .unwrap();
    assert!(!stored.0.contains("9999") && !stored.0.contains("6222"), "the proposed account is sealed at rest");
    // A second proposal of the same change waits for the first.
    let twice = app.agent().propose_change(bank_change(&cust.id, "建设银行", "6217 1111")).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains(&proposed.id), "{}", twice.message());

    // The proposer cannot approve it; it stays pending and unapplied.
    let own = sup
        .approve_change(pb::ApproveChangeRequest { id: proposed.id.clone(), note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");
    assert!(own.message().contains("four eyes"), "{}", own.message());
    let listed = app
        .client(Role::Auditor)
        .list_approvals(pb::ListApprovalsRequest {
            state: pb::ApprovalState::Pending as i32,
            customer_id: cust.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.approvals.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec![proposed.id.as_str()]);
    assert_eq!(unmasked_bank(&app, &cust.id).await, "6225 8812 3456 7890");

    // Another person approves: applied in the same step.
    let approved = app
        .customers_for("admin-2", Role::Admin)
        .approve_change(pb::ApproveChangeRequest { id: proposed.id.clone(), note: "核对原件无误".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.state, pb::ApprovalState::Approved as i32);
    assert_eq!((approved.decided_by.as_str(), approved.decision_note.as_str()), ("admin-2", "核对原件无误"));
    assert_eq!(unmasked_bank(&app, &cust.id).await, "6222 0000 9999 1234");
    let again = app
        .customers_for("admin-3", Role::Admin)
        .approve_change(pb::ApproveChangeRequest { id: proposed.id.clone(), note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "an approval is decided once");

    let entries = trail(&app, &cust.id).await;
    let find = |action: &str| {
        entries.iter().filter(|e| e.action == action && e.detail.contains(&proposed.id)).collect::<Vec<_>>()
    };
    let propose = find("approval.propose");
    assert_eq!((propose.len(), propose[0].actor.as_str()), (1, "supervisor-1"));
    let approve = find("approval.approve");
    assert_eq!((approve.len(), approve[0].actor.as_str()), (1, "admin-2"));
    let applied: Vec<_> = find("tax_profile.write").into_iter().filter(|e| e.detail.contains(&proposed.id)).collect();
    assert_eq!(applied.len(), 1, "the change is recorded as the approver's, naming the approval: {entries:?}");
    assert_eq!(applied[0].actor, "admin-2");
    assert!(applied[0].detail.contains("supervisor-1"), "{}", applied[0].detail);
    for e in &entries {
        assert!(!e.detail.contains("9999 1234"), "no account number in the trail: {}", e.detail);
    }

    // Removed through four eyes, an account is not then re-added by one person.
    let removal = sup.propose_change(bank_change(&cust.id, "", "")).await.unwrap().into_inner();
    assert!(removal.summary.contains("删除"), "{}", removal.summary);
    app.customers_for("admin-2", Role::Admin)
        .approve_change(pb::ApproveChangeRequest { id: removal.id, note: String::new() })
        .await
        .unwrap();
    assert_eq!(unmasked_bank(&app, &cust.id).await, "");
    let readded = agent.update_tax_profile(profile("攻击者银行", "6200 0000 0000 6666", "")).await.unwrap_err();
    assert_eq!(readded.code(), Code::FailedPrecondition);
    assert_eq!(unmasked_bank(&app, &cust.id).await, "");

    // An API key with a manager's role is an integration, not a second person.
    let again =
        sup.propose_change(bank_change(&cust.id, "工商银行", "6222 0000 5555 1234")).await.unwrap().into_inner();
    let key = app.customers_for("apikey:nightly-sync", Role::Supervisor);
    let by_key =
        key.clone().approve_change(pb::ApproveChangeRequest { id: again.id.clone(), note: String::new() }).await;
    assert_eq!(by_key.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(unmasked_bank(&app, &cust.id).await, "");
}

async fn two_approvers_racing_decide_a_proposal_once(app: TestApp) {
    let cust = create(&app, "並發審批", 502).await;
    let proposed = app.client(Role::Supervisor).propose_change(erasure(&cust.id)).await.unwrap().into_inner();
    let calls = (2..10).map(|n| {
        let mut c = app.customers_for(&format!("admin-{n}"), Role::Admin);
        let id = proposed.id.clone();
        async move { c.approve_change(pb::ApproveChangeRequest { id, note: String::new() }).await }
    });
    let results = futures::future::join_all(calls).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r.code(), Code::FailedPrecondition | Code::Aborted), "{r:?}");
    }
    let entries = trail(&app, &cust.id).await;
    assert_eq!(entries.iter().filter(|e| e.action == "approval.approve").count(), 1);
    assert_eq!(entries.iter().filter(|e| e.action == "customer.erase").count(), 1, "erased once");
    let erasures = app
        .client(Role::Auditor)
        .list_erasures(pb::ListErasuresRequest::default())
        .await
        .unwrap()
        .into_inner()
        .erasures;
    assert_eq!(erasures.iter().filter(|e| e.customer_id == cust.id).count(), 1, "the feed carries it once");
}

async fn proposals_are_rejected_with_a_reason_expire_and_are_withdrawn_only_by_their_proposer(app: TestApp) {
    let cust = create(&app, "駁回撤回", 503).await;
    let mut sup = app.client(Role::Supervisor);
    let mut other = app.customers_for("admin-2", Role::Admin);
    let first = sup.propose_change(erasure(&cust.id)).await.unwrap().into_inner();
    let not_yours = other.withdraw_change(pb::WithdrawChangeRequest { id: first.id.clone() }).await.unwrap_err();
    assert_eq!(not_yours.code(), Code::PermissionDenied);
    let silent =
        other.reject_change(pb::RejectChangeRequest { id: first.id.clone(), note: String::new() }).await.unwrap_err();
    assert_eq!(violations(&silent), vec!["note".to_owned()], "a rejection says why");
    let rejected = other
        .reject_change(pb::RejectChangeRequest { id: first.id.clone(), note: "未附身份证明".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state, pb::ApprovalState::Rejected as i32);
    let late =
        other.approve_change(pb::ApproveChangeRequest { id: first.id.clone(), note: String::new() }).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "a rejected proposal cannot be approved");

    // A proposal not decided in three days expires.
    let second = sup.propose_change(erasure(&cust.id)).await.unwrap().into_inner();
    sqlx::query("UPDATE kit_approvals SET expires_at = 1 WHERE id = $1")
        .bind(&second.id)
        .execute(&app.raw)
        .await
        .unwrap();
    let read = other.get_approval(pb::GetApprovalRequest { id: second.id.clone() }).await.unwrap().into_inner();
    assert_eq!(read.state, pb::ApprovalState::Expired as i32);
    let expired = other
        .approve_change(pb::ApproveChangeRequest { id: second.id.clone(), note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition);
    assert!(expired.message().contains("expired"), "{}", expired.message());

    // An expired proposal no longer blocks a new one, which its proposer withdraws.
    let third = sup.propose_change(erasure(&cust.id)).await.unwrap().into_inner();
    let withdrawn = sup.withdraw_change(pb::WithdrawChangeRequest { id: third.id.clone() }).await.unwrap().into_inner();
    assert_eq!(withdrawn.state, pb::ApprovalState::Withdrawn as i32);
    let gone = other.approve_change(pb::ApproveChangeRequest { id: third.id, note: String::new() }).await.unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition);
    let missing = other
        .approve_change(pb::ApproveChangeRequest { id: uuid::Uuid::now_v7().to_string(), note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let customer = app
        .client(Role::Admin)
        .get_customer(pb::GetCustomerRequest { id: cust.id.clone(), omit_contacts: false })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(customer.lifecycle_status, pb::LifecycleStatus::Erased as i32, "nothing was erased");
    let entries = trail(&app, &cust.id).await;
    assert_eq!(entries.iter().filter(|e| e.action == "approval.reject").count(), 1);
    assert_eq!(entries.iter().filter(|e| e.action == "approval.withdraw").count(), 1);
    assert_eq!(entries.iter().filter(|e| e.action == "customer.erase").count(), 0);
}

async fn a_disclosure_is_released_once_to_its_proposer_for_exactly_its_terms(app: TestApp) {
    let cust = create(&app, "第三方提供", 504).await;
    let contacts = pb::DataCategory::Contacts as i32;
    let profile = pb::DataCategory::Profile as i32;
    let consent = |recipient: &str| pb::CreateConsentRequest {
        consent: Some(pb::Consent {
            customer_id: cust.id.clone(),
            purpose: "loan application".into(),
            recipient: recipient.into(),
            data_categories: vec![contacts, profile],
            evidence: "signed form #88".into(),
            ..Default::default()
        }),
    };
    let mut sup = app.client(Role::Supervisor);
    // No consent, no proposal.
    let unconsented = sup
        .propose_change(pb::ProposeChangeRequest {
            customer_id: cust.id.clone(),
            reason: "贷款申请".into(),
            change: Some(Change::Disclosure(pb::DisclosureChange {
                recipient: "招商银行".into(),
                data_categories: vec![contacts],
            })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unconsented.code(), Code::FailedPrecondition);
    app.agent().create_consent(consent("招商银行")).await.unwrap();

    let export = |approval: &str, categories: Vec<i32>| pb::ExportCustomerDataRequest {
        customer_id: cust.id.clone(),
        recipient: "招商银行".into(),
        purpose: "贷款申请".into(),
        data_categories: categories,
        approval_id: approval.into(),
    };
    let proposed = sup
        .propose_change(pb::ProposeChangeRequest {
            customer_id: cust.id.clone(),
            reason: "贷款申请".into(),
            change: Some(Change::Disclosure(pb::DisclosureChange {
                recipient: "招商银行".into(),
                data_categories: vec![contacts],
            })),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((proposed.recipient.as_str(), proposed.data_categories.clone()), ("招商银行", vec![contacts]));
    let early = sup.export_customer_data(export(&proposed.id, vec![contacts])).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("second person"), "{}", early.message());

    let mut approver = app.customers_for("admin-2", Role::Admin);
    approver.approve_change(pb::ApproveChangeRequest { id: proposed.id.clone(), note: String::new() }).await.unwrap();
    // The approver cannot use what they approved.
    let borrowed = approver.export_customer_data(export(&proposed.id, vec![contacts])).await.unwrap_err();
    assert_eq!(borrowed.code(), Code::PermissionDenied, "{borrowed:?}");
    // Nor does it cover more than it says.
    let wider = sup.export_customer_data(export(&proposed.id, vec![contacts, profile])).await.unwrap_err();
    assert_eq!(wider.code(), Code::FailedPrecondition, "{wider:?}");
    let doc = sup.export_customer_data(export(&proposed.id, vec![contacts])).await.unwrap().into_inner().document;
    assert!(doc.contains("13800138000"), "{doc}");
    let twice = sup.export_customer_data(export(&proposed.id, vec![contacts])).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains("already used"), "{}", twice.message());
    let used = sup.get_approval(pb::GetApprovalRequest { id: proposed.id.clone() }).await.unwrap().into_inner();
    assert_eq!(used.state, pb::ApprovalState::Used as i32);
    assert!(used.use_time.is_some());

    // An approval not used within a day lapses.
    let stale = common::approved_disclosure(&app, &cust.id, "招商银行", vec![profile]).await;
    sqlx::query("UPDATE kit_approvals SET decided_at = decided_at - 90000000 WHERE id = $1")
        .bind(&stale)
        .execute(&app.raw)
        .await
        .unwrap();
    let lapsed = sup.export_customer_data(export(&stale, vec![profile])).await.unwrap_err();
    assert_eq!(lapsed.code(), Code::FailedPrecondition);
    assert!(lapsed.message().contains("expired"), "{}", lapsed.message());

    let entries = trail(&app, &cust.id).await;
    assert_eq!(entries.iter().filter(|e| e.action == "customer.export").count(), 1, "one disclosure made");
    assert_eq!(entries.iter().filter(|e| e.action == "approval.use").count(), 1);
}

async fn an_erasure_closes_the_customers_open_proposals(app: TestApp) {
    let cust = create(&app, "刪除後關閉", 505).await;
    common::set_bank_account(&app, &cust.id, "招商银行", "6225 0000 1111 2222").await;
    let bank = app
        .customers_for("agent-7", Role::Agent)
        .propose_change(bank_change(&cust.id, "工商银行", "6222 3333 4444"))
        .await
        .unwrap()
        .into_inner();
    let approval = app.erase_customer(&cust.id, "PIPL art. 47 request #40").await;
    assert_eq!(approval.state, pb::ApprovalState::Approved as i32);
    let closed = app.client(Role::Auditor).get_approval(pb::GetApprovalRequest { id: bank.id.clone() }).await.unwrap();
    assert_eq!(closed.into_inner().state, pb::ApprovalState::Withdrawn as i32, "closed by the erasure");
    let payload: (String,) = sqlx::query_as("SELECT payload FROM kit_approvals WHERE id = $1")
        .bind(&bank.id)
        .fetch_one(&app.raw)
        .await
        .unwrap();
    assert!(payload.0.is_empty(), "its sealed account is dropped");
    let late = app
        .customers_for("admin-3", Role::Admin)
        .approve_change(pb::ApproveChangeRequest { id: bank.id, note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    let again = app.client(Role::Supervisor).propose_change(erasure(&cust.id)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "an erased customer takes no more proposals");
}

async fn concurrent_retries_of_a_proposal_make_one(app: TestApp) {
    let cust = create(&app, "重試提議", 506).await;
    let req = pb::ProposeChangeRequest { request_id: "retry-1".into(), ..erasure(&cust.id) };
    let calls = (0..6).map(|_| {
        let mut c = app.client(Role::Supervisor);
        let req = req.clone();
        async move { c.propose_change(req).await.map(|r| r.into_inner().id) }
    });
    let ids: Vec<String> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let all = app
        .client(Role::Auditor)
        .list_approvals(pb::ListApprovalsRequest { customer_id: cust.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.approvals.len(), 1);
    let reused = app
        .client(Role::Supervisor)
        .propose_change(pb::ProposeChangeRequest { reason: "another reason".into(), ..req })
        .await
        .unwrap_err();
    assert_eq!(violations(&reused), vec!["request_id".to_owned()], "one request id, one proposal");
}
