//! The complaints API through a real client, on SQLite + memory and
//! PostgreSQL + Redis: recording from a referral, a ticket escalation and
//! anonymously; numbers; repeats; the workflow with reasons; who sees what.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1::{self as pb, ComplaintAction as A, ComplaintState as S},
    customers::v1 as cpb,
    tickets::v1 as tpb,
};
use kefu_testkit::{Backend, Suite, violations};
use tonic::Code;

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    a_regulator_referral_is_recorded_numbered_and_walked_to_closure_with_reasons,
    a_ticket_escalated_into_a_complaint_keeps_the_link_and_the_customer,
    repeats_anonymous_complaints_and_bad_input,
    agents_see_their_own_complaints_and_concurrent_retries_record_one,
    investigation_capa_decision_rating_and_the_figures_they_make,
    a_legal_referral_holds_the_customer_from_erasure_until_closure_then_erasure_reaches_complaints,
);

async fn customer(s: &Suite, name: &str, n: u32) -> String {
    s.customer(name, n, cpb::ServiceTier::Standard).await
}

/// The suite clock's date in the firm's zone, formatted.
fn suite_date(s: &Suite, format: &str) -> String {
    use chrono::TimeZone;
    use kefu_sla::Clock;
    chrono_tz::Asia::Shanghai.timestamp_millis_opt(s.clock.now_ms()).unwrap().format(format).to_string()
}

/// An instant `days` from the suite's (manual) clock.
fn in_days(s: &Suite, days: i64) -> Option<prost_types::Timestamp> {
    use kefu_sla::Clock;
    Some(prost_types::Timestamp { seconds: s.clock.now_ms() / 1000 + days * 86_400, nanos: 0 })
}

fn referral(s: &Suite, customer: &str) -> pb::RecordComplaintRequest {
    pb::RecordComplaintRequest {
        complaint: Some(pb::Complaint {
            source: pb::ComplaintSource::RegulatorReferral as i32,
            channel: Channel::Phone as i32,
            customer_id: customer.into(),
            subject_kind: pb::SubjectKind::Staff as i32,
            subject: "agent-7".into(),
            category: "service_attitude".into(),
            severity: pb::Severity::High as i32,
            description: "客户致电12366反映代账会计态度恶劣，多次催要凭证。".into(),
            demand: Some(pb::Demand {
                kind: pb::DemandKind::Apology as i32, amount_fen: 0, detail: "书面道歉".into()
            }),
            referral: Some(pb::Referral {
                referred_by: "国家税务总局12366纳税缴费服务热线".into(),
                reference: "12366-2026-88123".into(),
                reply_due_time: in_days(s, 5),
            }),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn step(s: &Suite, role: Role, id: &str, action: A, text: &str) -> Result<pb::Complaint, tonic::Status> {
    s.complaints_as(role)
        .transition_complaint(pb::TransitionComplaintRequest {
            id: id.into(),
            action: action as i32,
            reason: format!("{action:?}"),
            text: text.into(),
            mediator: if action == A::StartMediation {
                "上海市税务师协会调解委员会".into()
            } else {
                String::new()
            },
            etag: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_regulator_referral_is_recorded_numbered_and_walked_to_closure_with_reasons(s: Suite) {
    let c = customer(&s, "投诉测试有限公司", 501).await;
    let mut sup = s.complaints_as(Role::Supervisor);
    let rec = sup.record_complaint(referral(&s, &c)).await.unwrap().into_inner();
    let year = suite_date(&s, "%Y");
    assert_eq!(rec.number, format!("TS-{year}-000001"));
    assert_eq!(rec.state, S::Received as i32);
    assert_eq!(rec.category_label, "服务态度");
    assert_eq!(rec.referral.as_ref().unwrap().reference, "12366-2026-88123");
    assert_eq!(rec.handler, "supervisor-1", "the recorder handles it unless someone is named");

    // A step out of order names the allowed ones and changes nothing.
    let wrong = step(&s, Role::Supervisor, &rec.id, A::Close, "").await.unwrap_err();
    assert_eq!(wrong.code(), Code::FailedPrecondition);
    assert!(wrong.message().contains("COMPLAINT_ACTION_ACKNOWLEDGE"), "{}", wrong.message());
    // Text only where a step takes it.
    let stray = step(&s, Role::Supervisor, &rec.id, A::Acknowledge, "多余").await.unwrap_err();
    assert_eq!(violations(&stray), vec!["text".to_string()]);
    // An opinion needs its text.
    let err = step(&s, Role::Supervisor, &rec.id, A::GivePreliminaryOpinion, "").await.unwrap_err();
    assert_eq!(violations(&err), vec!["text".to_string()]);

    let mut now = rec.clone();
    for (action, text) in [
        (A::Acknowledge, ""),
        (A::GivePreliminaryOpinion, "初步意见：已暂停该会计对接，由主管跟进。"),
        (A::StartInvestigation, ""),
        (A::ProposeResponse, "经核实属实，向客户书面道歉并更换对接会计。"),
        (A::CustomerRejects, ""),
        (A::StartMediation, ""),
        (A::Close, ""),
    ] {
        now = step(&s, Role::Supervisor, &rec.id, action, text).await.unwrap();
    }
    assert_eq!(now.state, S::Closed as i32);
    assert_eq!(now.preliminary_opinion, "初步意见：已暂停该会计对接，由主管跟进。");
    assert_eq!(now.mediator, "上海市税务师协会调解委员会");
    assert!(now.close_time.is_some());
    let reopened = step(&s, Role::Supervisor, &now.number, A::Reopen, "").await.unwrap();
    assert_eq!((reopened.state, reopened.reopen_count), (S::Investigating as i32, 1));
    assert!(reopened.close_time.is_none());

    let history = sup
        .list_complaint_history(pb::ListComplaintHistoryRequest { id: rec.number.clone() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(history.len(), 9, "recorded + 8 steps");
    assert_eq!((history[1].from_state, history[1].to_state), (S::Received as i32, S::Acknowledged as i32));
    assert!(history.iter().skip(1).all(|h| !h.reason.is_empty() && h.actor == "supervisor-1"));
    // A stale etag is refused.
    let stale = sup
        .transition_complaint(pb::TransitionComplaintRequest {
            id: rec.id.clone(),
            action: A::ProposeResponse as i32,
            reason: "x".into(),
            text: "y".into(),
            etag: rec.etag.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let cats = s
        .complaints_as(Role::Hr)
        .list_complaint_categories(pb::ListComplaintCategoriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(cats.categories.iter().any(|c| c.code == "fee_dispute" && c.label == "收费争议"));

    // The firm edits its taxonomy: a label renamed reaches the complaints
    // filed under it; a retired code is refused for new complaints but kept.
    let mut list: Vec<pb::ComplaintCategory> =
        cats.categories.iter().filter(|c| c.code != "communication").cloned().collect();
    for c in &mut list {
        if c.code == "service_attitude" {
            c.label = "服务态度与礼仪".into();
        }
    }
    list.push(pb::ComplaintCategory { code: "data_privacy".into(), label: "个人信息保护".into(), active: true });
    let set = |list: Vec<pb::ComplaintCategory>, etag: &str, role: Role| {
        let mut client = s.complaints_as(role);
        let req =
            pb::SetComplaintCategoriesRequest { categories: list, etag: etag.into(), reason: "年度修订".into() };
        async move { client.set_complaint_categories(req).await }
    };
    assert_eq!(set(list.clone(), &cats.etag, Role::Agent).await.unwrap_err().code(), Code::PermissionDenied);
    let mut twice = list.clone();
    twice.push(pb::ComplaintCategory { code: "timeliness".into(), label: "又一个".into(), active: true });
    let err = set(twice, &cats.etag, Role::Supervisor).await.unwrap_err();
    assert_eq!(violations(&err), vec![format!("categories[{}].code", list.len())]);
    let after = set(list.clone(), &cats.etag, Role::Supervisor).await.unwrap().into_inner();
    assert!(after.categories.iter().any(|c| c.code == "data_privacy"));
    assert!(!after.categories.iter().any(|c| c.code == "communication"));
    let stale = set(list, &cats.etag, Role::Supervisor).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "an old etag changes nothing");
    let renamed = sup
        .get_complaint(pb::GetComplaintRequest { id: rec.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.category_label, "服务态度与礼仪", "the label follows the taxonomy");
    let mut retired = referral(&s, &c);
    retired.complaint.as_mut().unwrap().category = "communication".into();
    let err = sup.record_complaint(retired).await.unwrap_err();
    assert_eq!(violations(&err), vec!["complaint.category".to_string()]);
    let all = s
        .complaints_as(Role::Hr)
        .list_complaint_categories(pb::ListComplaintCategoriesRequest { include_retired: true })
        .await
        .unwrap()
        .into_inner();
    assert!(all.categories.iter().any(|c| c.code == "communication" && !c.active && c.label == "沟通不畅"));
}

async fn a_ticket_escalated_into_a_complaint_keeps_the_link_and_the_customer(s: Suite) {
    let c = customer(&s, "升级投诉", 502).await;
    let t = s
        .tickets_as(Role::Agent)
        .create_ticket(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                kind: tpb::TicketKind::Consultation as i32,
                channel: Channel::Email as i32,
                subject: "发票开错了".into(),
                category: "invoice_application".into(),
                customer_id: c.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rec = s
        .complaints_as(Role::Agent)
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::TicketEscalation as i32,
                channel: Channel::Email as i32,
                ticket_id: t.number.clone(),
                category: "professional_error".into(),
                severity: pb::Severity::Medium as i32,
                description: "发票抬头两次开错，客户要求赔偿损失。".into(),
                demand: Some(pb::Demand {
                    kind: pb::DemandKind::Compensation as i32,
                    amount_fen: 50_000,
                    detail: String::new(),
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rec.ticket_id, t.id, "the link is kept (by id)");
    assert_eq!(rec.customer_id, c, "the ticket's customer");
    assert_eq!(rec.demand.unwrap().amount_fen, 50_000);
    // Escalated once while its complaint is open.
    let again = s
        .complaints_as(Role::Agent)
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::TicketEscalation as i32,
                channel: Channel::Email as i32,
                ticket_id: t.id.clone(),
                category: "professional_error".into(),
                severity: pb::Severity::Medium as i32,
                description: "又一次".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains(&rec.number), "{}", again.message());
    let err = s
        .complaints_as(Role::Agent)
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::TicketEscalation as i32,
                channel: Channel::Email as i32,
                ticket_id: "KF-999999".into(),
                category: "other".into(),
                severity: pb::Severity::Low as i32,
                description: "x".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["complaint.ticket_id".to_string()]);
}

async fn repeats_anonymous_complaints_and_bad_input(s: Suite) {
    let c = customer(&s, "重复投诉", 503).await;
    let mut agent = s.complaints_as(Role::Agent);
    let direct = |category: &str| pb::RecordComplaintRequest {
        complaint: Some(pb::Complaint {
            source: pb::ComplaintSource::Customer as i32,
            channel: Channel::Wechat as i32,
            customer_id: c.clone(),
            category: category.into(),
            severity: pb::Severity::Low as i32,
            description: "收费比合同多了".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let first = agent.record_complaint(direct("fee_dispute")).await.unwrap().into_inner();
    assert!(first.repeat_of.is_empty());
    let second = agent.record_complaint(direct("fee_dispute")).await.unwrap().into_inner();
    assert_eq!(second.repeat_of, first.number, "same customer, same matter within 90 days");
    let other = agent.record_complaint(direct("timeliness")).await.unwrap().into_inner();
    assert!(other.repeat_of.is_empty());
    let anon = agent
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::Customer as i32,
                channel: Channel::Letter as i32,
                anonymous: true,
                category: "information_security".into(),
                severity: pb::Severity::Critical as i32,
                description: "匿名来信：贵所员工在群里泄露客户报表。".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(anon.anonymous && anon.customer_id.is_empty());

    // Every bad field at once, and nothing recorded.
    let bad = agent
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                source: pb::ComplaintSource::HotlineReferral as i32,
                channel: 99,
                customer_id: "not-an-id".into(),
                category: "Rude!".into(),
                severity: 0,
                description: String::new(),
                demand: Some(pb::Demand { kind: 1, amount_fen: -5, detail: String::new() }),
                referral: Some(pb::Referral {
                    referred_by: "12345".into(),
                    reference: String::new(),
                    reply_due_time: in_days(&s, -1),
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    let mut fields = violations(&bad);
    fields.sort();
    for f in [
        "complaint.category",
        "complaint.channel",
        "complaint.customer_id",
        "complaint.demand.amount_fen",
        "complaint.description",
        "complaint.referral.reply_due_time",
        "complaint.severity",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} in {fields:?}");
    }
    let unknown = agent
        .record_complaint(pb::RecordComplaintRequest {
            complaint: Some(pb::Complaint {
                customer_id: uuid::Uuid::now_v7().to_string(),
                ..direct("other").complaint.unwrap()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&unknown), vec!["complaint.customer_id".to_string()]);
    let all = s.complaints_as(Role::Auditor).list_complaints(pb::ListComplaintsRequest::default()).await.unwrap();
    assert_eq!(all.into_inner().complaints.len(), 4, "refused requests recorded nothing");
}

async fn agents_see_their_own_complaints_and_concurrent_retries_record_one(s: Suite) {
    let c = customer(&s, "可见性", 504).await;
    let mine = s.complaints_with_token(Some(&s.token_for("agent-a", Role::Agent)));
    let theirs = s.complaints_with_token(Some(&s.token_for("agent-b", Role::Agent)));
    let mut req = referral(&s, &c);
    req.request_id = "once-1".into();
    let calls = (0..6).map(|_| {
        let mut client = mine.clone();
        let req = req.clone();
        async move { client.record_complaint(req).await.map(|r| r.into_inner().id) }
    });
    let ids: Vec<String> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one complaint for one request id: {ids:?}");
    let id = ids[0].clone();
    assert_eq!(
        theirs
            .clone()
            .get_complaint(pb::GetComplaintRequest { id: id.clone(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "another agent's complaint is not shown"
    );
    assert!(
        theirs
            .clone()
            .list_complaints(pb::ListComplaintsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .complaints
            .is_empty()
    );
    assert_eq!(
        mine.clone().list_complaints(pb::ListComplaintsRequest::default()).await.unwrap().into_inner().complaints.len(),
        1
    );
    assert_eq!(
        theirs
            .clone()
            .transition_complaint(pb::TransitionComplaintRequest {
                id: id.clone(),
                action: A::Acknowledge as i32,
                reason: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // HR reads statistics, not complaints; auditors read everything.
    assert_eq!(
        s.complaints_as(Role::Hr)
            .get_complaint(pb::GetComplaintRequest { id: id.clone(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    s.complaints_as(Role::Auditor).get_complaint(pb::GetComplaintRequest { id, ..Default::default() }).await.unwrap();
}

async fn investigation_capa_decision_rating_and_the_figures_they_make(s: Suite) {
    let c = customer(&s, "调查测试", 505).await;
    let rec = s.complaints_as(Role::Supervisor).record_complaint(referral(&s, &c)).await.unwrap().into_inner();
    for (a, t) in [(A::Acknowledge, ""), (A::GivePreliminaryOpinion, "先行致歉"), (A::StartInvestigation, "")] {
        step(&s, Role::Supervisor, &rec.id, a, t).await.unwrap();
    }
    let mut sup = s.complaints_as(Role::Supervisor);
    // The staff member complained about cannot handle it, nor be made its handler.
    let about_self = s
        .complaints_with_token(Some(&s.token_for("agent-7", Role::Agent)))
        .record_complaint(referral(&s, &c))
        .await
        .unwrap_err();
    assert_eq!(violations(&about_self), vec!["complaint.handler".to_string()]);
    // A cause in a person names the person.
    let err = sup
        .record_finding(pb::RecordFindingRequest {
            id: rec.id.clone(),
            finding: Some(pb::Finding {
                findings: "录音证实态度恶劣".into(),
                root_cause: pb::RootCause::Person as i32,
                ..Default::default()
            }),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["finding.responsible_staff".to_string()]);
    let found = sup
        .record_finding(pb::RecordFindingRequest {
            id: rec.id.clone(),
            finding: Some(pb::Finding {
                findings: "录音证实态度恶劣".into(),
                root_cause: pb::RootCause::Person as i32,
                responsible_staff: "agent-7".into(),
                responsible_department: "代账一部".into(),
                upheld: true,
                ..Default::default()
            }),
            etag: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let f = found.finding.unwrap();
    assert!(f.upheld && f.recorded_by == "supervisor-1");
    // The staff member held responsible reads it, but does not change the complaint.
    let responsible = s.complaints_with_token(Some(&s.token_for("agent-7", Role::Agent)));
    let seen = responsible
        .clone()
        .get_complaint(pb::GetComplaintRequest { id: rec.id.clone(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(seen.into_inner().finding.unwrap().responsible_staff, "agent-7");
    let denied = responsible
        .clone()
        .transition_complaint(pb::TransitionComplaintRequest {
            id: rec.id.clone(),
            action: A::ProposeResponse as i32,
            reason: "x".into(),
            text: "y".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // CAPA: owned by agent-9, completed by its owner, verified by someone else once due.
    let tomorrow = {
        use chrono::TimeZone;
        use kefu_sla::Clock;
        chrono_tz::Asia::Shanghai
            .timestamp_millis_opt(s.clock.now_ms() + 7 * 86_400_000)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let action = |days: i32| pb::AddCorrectiveActionRequest {
        complaint_id: rec.number.clone(),
        action: Some(pb::CorrectiveAction {
            kind: pb::ActionKind::Corrective as i32,
            description: "服务礼仪复训并考核".into(),
            owner: "agent-9".into(),
            due_date: tomorrow.clone(),
            verify_after_days: days,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let past = sup
        .add_corrective_action(pb::AddCorrectiveActionRequest {
            action: Some(pb::CorrectiveAction { due_date: "2020-01-01".into(), ..action(0).action.unwrap() }),
            ..action(0)
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&past), vec!["action.due_date".to_string()]);
    let now_due = sup.add_corrective_action(action(1)).await.unwrap().into_inner();
    let later = sup.add_corrective_action(action(1)).await.unwrap().into_inner();
    let monthly = sup
        .add_corrective_action(pb::AddCorrectiveActionRequest {
            action: Some(pb::CorrectiveAction { verify_after_days: 0, ..action(0).action.unwrap() }),
            ..action(0)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(monthly.verify_after_days, 30, "a month by default");
    let owner = s.complaints_with_token(Some(&s.token_for("agent-9", Role::Agent)));
    let other = s.complaints_with_token(Some(&s.token_for("agent-8", Role::Agent)));
    let complete = |id: &str| pb::CompleteCorrectiveActionRequest {
        id: id.into(),
        evidence: "培训签到表及考核成绩".into(),
        etag: String::new(),
    };
    assert_eq!(
        other.clone().complete_corrective_action(complete(&now_due.id)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let done = owner.clone().complete_corrective_action(complete(&now_due.id)).await.unwrap().into_inner();
    assert_eq!(done.status, pb::ActionStatus::Done as i32);
    owner.clone().complete_corrective_action(complete(&monthly.id)).await.unwrap();
    let verify = |id: &str| pb::VerifyCorrectiveActionRequest {
        id: id.into(),
        effective: true,
        note: "复查录音，态度改善".into(),
        etag: String::new(),
    };
    // Its owner cannot verify it (a supervisor who owns one cannot either).
    let sup_owned = sup
        .add_corrective_action(pb::AddCorrectiveActionRequest {
            action: Some(pb::CorrectiveAction { owner: "supervisor-1".into(), ..action(1).action.unwrap() }),
            ..action(1)
        })
        .await
        .unwrap()
        .into_inner();
    sup.complete_corrective_action(complete(&sup_owned.id)).await.unwrap();
    assert_eq!(sup.verify_corrective_action(verify(&sup_owned.id)).await.unwrap_err().code(), Code::PermissionDenied);
    // Nor can whoever completed it (a supervisor completing an agent's action).
    let completed_by_sup = sup.add_corrective_action(action(1)).await.unwrap().into_inner();
    sup.complete_corrective_action(complete(&completed_by_sup.id)).await.unwrap();
    assert_eq!(
        sup.verify_corrective_action(verify(&completed_by_sup.id)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let early = sup.verify_corrective_action(verify(&now_due.id)).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "verified a day after completion");
    s.clock.advance(chrono::Duration::days(2));
    let monthly_early = sup.verify_corrective_action(verify(&monthly.id)).await.unwrap_err();
    assert!(monthly_early.message().contains("30 day(s) after completion"), "{}", monthly_early.message());
    assert_eq!(sup.verify_corrective_action(verify(&later.id)).await.unwrap_err().code(), Code::FailedPrecondition);
    let verified = sup.verify_corrective_action(verify(&now_due.id)).await.unwrap().into_inner();
    assert_eq!((verified.status, verified.verified_by.as_str()), (pb::ActionStatus::Effective as i32, "supervisor-1"));
    let listed = sup
        .list_corrective_actions(pb::ListCorrectiveActionsRequest { complaint_id: rec.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .actions;
    assert_eq!(listed.len(), 5);

    // The response, the decision as sent (not before a response), the rating.
    let too_early = sup
        .record_decision_sent(pb::RecordDecisionSentRequest {
            id: rec.id.clone(),
            channel: Channel::Email as i32,
            summary: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(too_early.code(), Code::FailedPrecondition);
    step(&s, Role::Supervisor, &rec.id, A::ProposeResponse, "书面道歉，更换会计，减免当月服务费").await.unwrap();
    let sent = sup
        .record_decision_sent(pb::RecordDecisionSentRequest {
            id: rec.id.clone(),
            channel: Channel::Email as i32,
            summary: "已书面道歉并减免当月服务费".into(),
            compensation_paid_fen: 30_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(sent.decision_time.is_some());
    // A second payment (after mediation, say) adds to the first.
    let more = sup
        .record_decision_sent(pb::RecordDecisionSentRequest {
            id: rec.id.clone(),
            channel: Channel::Phone as i32,
            summary: "补偿差额".into(),
            compensation_paid_fen: 20_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(more.compensation_paid_fen, 50_000);
    assert_eq!(
        sup.rate_complaint_handling(pb::RateComplaintHandlingRequest {
            id: rec.id.clone(),
            rating: 4,
            comment: String::new()
        })
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied,
        "ratings come from the customer channels"
    );
    let mut channel = s.complaints_as(Role::Service);
    assert_eq!(
        violations(
            &channel
                .rate_complaint_handling(pb::RateComplaintHandlingRequest {
                    id: rec.id.clone(),
                    rating: 9,
                    comment: String::new()
                })
                .await
                .unwrap_err()
        ),
        vec!["rating".to_string()]
    );
    channel
        .rate_complaint_handling(pb::RateComplaintHandlingRequest {
            id: rec.id.clone(),
            rating: 4,
            comment: "满意".into(),
        })
        .await
        .unwrap();
    step(&s, Role::Supervisor, &rec.id, A::CustomerAccepts, "").await.unwrap();
    // Not closed while an action is still open.
    let open = step(&s, Role::Supervisor, &rec.id, A::Close, "").await.unwrap_err();
    assert_eq!(open.code(), Code::FailedPrecondition);
    assert!(open.message().contains("1 corrective action"), "{}", open.message());
    owner.clone().complete_corrective_action(complete(&later.id)).await.unwrap();
    step(&s, Role::Supervisor, &rec.id, A::Close, "").await.unwrap();

    // The figures.
    let today = suite_date(&s, "%Y-%m-%d");
    let first_of_year = suite_date(&s, "%Y-01-01");
    let stats = s
        .complaints_as(Role::Hr)
        .get_complaint_stats(pb::GetComplaintStatsRequest { from_date: first_of_year.clone(), to_date: today.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.received, 1);
    assert_eq!(stats.by_category[0].label, "服务态度");
    assert_eq!(stats.by_root_cause[0].label, "人员");
    assert_eq!(stats.by_department[0].key, "代账一部");
    assert_eq!(stats.by_staff[0].key, "agent-7");
    assert_eq!(stats.by_channel[0].label, "电话");
    assert_eq!(stats.by_severity[0].label, "高");
    assert!((stats.upheld_rate - 1.0).abs() < 1e-9);
    assert_eq!(stats.compensation_paid_fen, 50_000);
    assert_eq!(stats.to_acknowledgement.unwrap().count, 1);
    assert_eq!(stats.to_closure.unwrap().count, 1);
    assert_eq!((stats.open, stats.ratings), (0, 1));
    assert!((stats.average_satisfaction - 4.0).abs() < 1e-9);
    let staff = s
        .complaints_as(Role::Hr)
        .get_staff_complaint_stats(pb::GetStaffComplaintStatsRequest {
            staff: "agent-7".into(),
            from_date: first_of_year.clone(),
            to_date: today.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((staff.received, staff.upheld, staff.about_attitude), (1, 1, 1));
    let bad = s
        .complaints_as(Role::Hr)
        .get_complaint_stats(pb::GetComplaintStatsRequest { from_date: today.clone(), to_date: "2000-01-01".into() })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), vec!["to_date".to_string()]);
    assert_eq!(
        s.complaints_as(Role::Agent)
            .get_complaint_stats(pb::GetComplaintStatsRequest { from_date: first_of_year, to_date: today })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

async fn a_legal_referral_holds_the_customer_from_erasure_until_closure_then_erasure_reaches_complaints(s: Suite) {
    let c = customer(&s, "删除测试", 506).await;
    let mut sup = s.complaints_as(Role::Supervisor);
    let open = sup.record_complaint(referral(&s, &c)).await.unwrap().into_inner();
    let held = sup.record_complaint(referral(&s, &c)).await.unwrap().into_inner();
    for (a, t) in [
        (A::Acknowledge, ""),
        (A::GivePreliminaryOpinion, "先行致歉"),
        (A::StartInvestigation, ""),
        (A::ProposeResponse, "书面道歉"),
        (A::CustomerRejects, ""),
        (A::ReferToLegal, ""),
    ] {
        step(&s, Role::Supervisor, &held.id, a, t).await.unwrap();
    }
    // The customers service holds the customer's data for the complaint.
    let holds = |s: &Suite| {
        let mut auditor = s.customers_as(Role::Auditor);
        let c = c.clone();
        async move {
            auditor.list_legal_holds(cpb::ListLegalHoldsRequest { customer_id: c }).await.unwrap().into_inner().holds
        }
    };
    let h = holds(&s).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h[0].active && h[0].reference == held.number, "{h:?}");
    let erase = cpb::ProposeChangeRequest {
        customer_id: c.clone(),
        reason: "PIPL 删除请求 2026-200".into(),
        change: Some(cpb::propose_change_request::Change::Erasure(cpb::ErasureChange {})),
        ..Default::default()
    };
    let refused = s.customers_as(Role::Supervisor).propose_change(erase.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains(&held.number), "the hold is named: {}", refused.message());
    // Agents cannot place or lift holds; only the service and admins.
    let agent_try = s
        .customers_as(Role::Agent)
        .release_legal_hold(cpb::ReleaseLegalHoldRequest {
            customer_id: c.clone(),
            reference: held.number.clone(),
            reason: "x".into(),
            generation: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(agent_try.code(), Code::PermissionDenied);

    // Closing the complaint ends the hold; then the erasure goes through.
    step(&s, Role::Supervisor, &held.id, A::Close, "").await.unwrap();
    let h = holds(&s).await;
    assert!(!h[0].active && h[0].release_time.is_some(), "{h:?}");
    // An admin's own hold, placed after an erasure was proposed, stops its approval.
    let proposed = s.customers_as(Role::Supervisor).propose_change(erase.clone()).await.unwrap().into_inner();
    s.customers_as(Role::Admin)
        .place_legal_hold(cpb::PlaceLegalHoldRequest {
            customer_id: c.clone(),
            reference: "（2026）沪0101民初123号".into(),
            reason: "诉讼保全".into(),
        })
        .await
        .unwrap();
    let blocked = s
        .customers_for("admin-2", Role::Admin)
        .approve_change(cpb::ApproveChangeRequest { id: proposed.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(blocked.code(), Code::FailedPrecondition, "{blocked:?}");
    s.customers_as(Role::Admin)
        .release_legal_hold(cpb::ReleaseLegalHoldRequest {
            customer_id: c.clone(),
            reference: "（2026）沪0101民初123号".into(),
            reason: "诉讼终结".into(),
            generation: 0,
        })
        .await
        .unwrap();
    s.customers_for("admin-2", Role::Admin)
        .approve_change(cpb::ApproveChangeRequest { id: proposed.id.clone(), ..Default::default() })
        .await
        .unwrap();

    let follower = s.complaints.erasures.clone();
    assert_eq!(follower.follow_once().await.unwrap(), 1, "one erasure handled");
    assert_eq!(follower.follow_once().await.unwrap(), 0, "and not again");
    let gone = sup
        .get_complaint(pb::GetComplaintRequest { id: open.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.description, "[已删除]");
    assert_eq!(gone.demand.unwrap().detail, "[已删除]");
    assert_eq!(gone.number, open.number, "the complaint stays as a business record");
    let history = sup
        .list_complaint_history(pb::ListComplaintHistoryRequest { id: open.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(history.iter().all(|h| h.reason == "recorded" || h.reason == "[已删除]" || h.actor_role == "sla"));
    let after = sup
        .get_complaint(pb::GetComplaintRequest { id: held.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(!after.legal_hold && after.description == "[已删除]" && after.response == "[已删除]");
}
