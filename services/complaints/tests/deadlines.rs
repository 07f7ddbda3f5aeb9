//! Complaint deadlines through the public API, on SQLite + memory and
//! PostgreSQL + Redis: acknowledgement, preliminary opinion and resolution
//! in the firm's business time; warnings, breaches and escalations once,
//! also across a lost live store; a referral's reply deadline as a cap;
//! corrective actions' due dates; the firm's complaint policies from the
//! SLA configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::TimeZone;
use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1::{self as pb, ComplaintAction as A, DeadlineState as D},
    customers::v1 as cpb,
    tickets::v1 as tpb,
};
use kefu_testkit::{Backend, Suite};

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    deadlines_run_in_business_time_and_warn_breach_and_escalate_once,
    a_referral_reply_deadline_caps_the_deadlines_and_corrective_actions_are_due_on_their_date,
    complaint_deadlines_follow_the_firms_complaint_policies_by_severity_and_source,
);

/// Unix ms of a wall-clock time in Shanghai.
fn cst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp_millis()
}

fn ms(t: Option<&prost_types::Timestamp>) -> i64 {
    let t = t.expect("a time");
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

fn complaint(customer: &str, severity: pb::Severity, source: pb::ComplaintSource) -> pb::RecordComplaintRequest {
    pb::RecordComplaintRequest {
        complaint: Some(pb::Complaint {
            source: source as i32,
            channel: Channel::Phone as i32,
            customer_id: customer.into(),
            subject_kind: pb::SubjectKind::ServiceItem as i32,
            subject: "月度代理记账".into(),
            category: "timeliness".into(),
            severity: severity as i32,
            description: "凭证交付后一周仍未收到报表。".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn step(s: &Suite, id: &str, action: A, text: &str) -> pb::Complaint {
    s.complaints_as(Role::Supervisor)
        .transition_complaint(pb::TransitionComplaintRequest {
            id: id.into(),
            action: action as i32,
            reason: format!("{action:?}"),
            text: text.into(),
            mediator: String::new(),
            etag: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn deadlines(s: &Suite, id: &str) -> Vec<pb::Deadline> {
    s.complaints_as(Role::Supervisor)
        .get_complaint_deadlines(pb::GetComplaintDeadlinesRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .deadlines
}

fn of<'a>(list: &'a [pb::Deadline], metric: &str) -> &'a pb::Deadline {
    list.iter().find(|d| d.metric == metric).unwrap_or_else(|| panic!("no {metric} deadline in {list:?}"))
}

async fn notes(s: &Suite, id: &str) -> Vec<String> {
    s.complaints_as(Role::Auditor)
        .list_complaint_history(pb::ListComplaintHistoryRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .filter(|e| e.actor_role == "sla")
        .map(|e| e.reason)
        .collect()
}

async fn next_event(stream: &mut tonic::Streaming<pb::DeadlineEvent>) -> pb::DeadlineEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message()).await.expect("an event").unwrap().unwrap()
}

async fn deadlines_run_in_business_time_and_warn_breach_and_escalate_once(s: Suite) {
    // Monday 2 March 2026, 09:00 in Shanghai; working hours 09–12, 13–18.
    let c = s.customer("时限测试有限公司", 801, cpb::ServiceTier::Standard).await;
    let mut watch = s
        .complaints_as(Role::Supervisor)
        .watch_complaint_deadlines(pb::WatchComplaintDeadlinesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let rec = s
        .complaints_as(Role::Supervisor)
        .record_complaint(complaint(&c, pb::Severity::Medium, pb::ComplaintSource::Customer))
        .await
        .unwrap()
        .into_inner();
    let d = deadlines(&s, &rec.id).await;
    assert_eq!(d.len(), 3, "{d:?}");
    // SLA.md: acknowledgement 1 business hour, opinion 1 business day,
    // resolution 7 business days.
    assert_eq!(ms(of(&d, "acknowledgement").due_time.as_ref()), cst(2026, 3, 2, 10, 0));
    assert_eq!(ms(of(&d, "preliminary_opinion").due_time.as_ref()), cst(2026, 3, 2, 18, 0));
    assert_eq!(ms(of(&d, "resolution").due_time.as_ref()), cst(2026, 3, 10, 18, 0));
    assert!(d.iter().all(|x| x.state == D::Active as i32 && x.clock == "business"));
    assert_eq!(of(&d, "resolution").policy_id, "default-complaint");

    // Acknowledged in time.
    s.clock.set(cst(2026, 3, 2, 9, 30));
    step(&s, &rec.id, A::Acknowledge, "").await;
    assert_eq!(of(&deadlines(&s, &rec.id).await, "acknowledgement").state, D::Fulfilled as i32);
    let ev = next_event(&mut watch).await;
    assert_eq!(
        (ev.kind.as_str(), ev.metric.as_str(), ev.complaint_id.as_str()),
        ("fulfilled", "acknowledgement", rec.id.as_str())
    );

    // The opinion warns at 80 % of its day (16:24) and breaches at 18:00.
    s.advance_to(cst(2026, 3, 2, 16, 30)).await;
    let ev = next_event(&mut watch).await;
    assert_eq!((ev.kind.as_str(), ev.metric.as_str()), ("warning", "preliminary_opinion"));
    assert_eq!(ev.handler, "supervisor-1");
    assert_eq!(of(&deadlines(&s, &rec.id).await, "preliminary_opinion").state, D::Warning as i32);
    s.advance_to(cst(2026, 3, 2, 18, 1)).await;
    let ev = next_event(&mut watch).await;
    assert_eq!((ev.kind.as_str(), ev.metric.as_str()), ("breached", "preliminary_opinion"));
    assert_eq!(ms(ev.due_time.as_ref()), cst(2026, 3, 2, 18, 0));
    let got = s
        .complaints_as(Role::Supervisor)
        .get_complaint(pb::GetComplaintRequest { id: rec.id.clone(), ..Default::default() })
        .await;
    assert_eq!(got.unwrap().into_inner().escalation_level, 1, "a breach escalates the complaint");
    let board = s
        .complaints_as(Role::Supervisor)
        .get_complaint_sla_dashboard(pb::GetComplaintSlaDashboardRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.by_queue["complaints"].breached, 1, "{board:?}");
    assert_eq!(board.by_handler["supervisor-1"].open, 2, "opinion and resolution are open: {board:?}");

    // Exactly once: more sweeps, a lost live store rebuilt from the database.
    s.sweep_complaints().await;
    s.complaints_live.flush().await;
    let report = s.sweep_complaints().await;
    assert_eq!(report.rebuilt, Some(2), "the two open deadlines are put back");
    s.sweep_complaints().await;
    let n = notes(&s, &rec.id).await;
    assert_eq!(n.iter().filter(|x| x.starts_with("时限预警：初步处理意见")).count(), 1, "{n:?}");
    assert_eq!(n.iter().filter(|x| x.starts_with("时限超时：初步处理意见")).count(), 1, "{n:?}");
    assert!(n.iter().any(|x| x.contains("2026-03-02 18:00（北京时间）") && x.contains("投诉主管")), "{n:?}");

    // Still open two business hours after the breach: the manager is told.
    s.advance_to(cst(2026, 3, 3, 11, 1)).await;
    let ev = next_event(&mut watch).await;
    assert_eq!((ev.kind.as_str(), ev.metric.as_str()), ("escalated", "preliminary_opinion"));
    s.advance_to(cst(2026, 3, 3, 11, 30)).await;
    let n = notes(&s, &rec.id).await;
    assert_eq!(n.iter().filter(|x| x.starts_with("二级升级")).count(), 1, "{n:?}");
    assert!(n.iter().any(|x| x.contains("客服经理")), "{n:?}");
    let got = s
        .complaints_as(Role::Supervisor)
        .get_complaint(pb::GetComplaintRequest { id: rec.id.clone(), ..Default::default() })
        .await;
    assert_eq!(got.unwrap().into_inner().escalation_level, 2);

    // The opinion comes late; the response waits on the customer (the
    // resolution clock stops) until they answer.
    step(&s, &rec.id, A::GivePreliminaryOpinion, "已安排专人核对报表。").await;
    assert_eq!(of(&deadlines(&s, &rec.id).await, "preliminary_opinion").state, D::FulfilledLate as i32);
    step(&s, &rec.id, A::StartInvestigation, "").await;
    step(&s, &rec.id, A::ProposeResponse, "补发报表并减免当月服务费。").await;
    let before = of(&deadlines(&s, &rec.id).await, "resolution").clone();
    assert_eq!(before.state, D::Paused as i32);
    s.clock.set(cst(2026, 3, 4, 11, 30));
    step(&s, &rec.id, A::CustomerAccepts, "").await;
    let after = of(&deadlines(&s, &rec.id).await, "resolution").clone();
    assert_eq!(after.state, D::Active as i32);
    assert_eq!(
        ms(after.due_time.as_ref()),
        cst(2026, 3, 11, 18, 0),
        "the business day spent waiting on the customer moves the due time by a day"
    );
    step(&s, &rec.id, A::Close, "").await;
    let done = deadlines(&s, &rec.id).await;
    assert_eq!(of(&done, "resolution").state, D::Fulfilled as i32);
    // Closed: nothing is open on the board.
    let board = s
        .complaints_as(Role::Supervisor)
        .get_complaint_sla_dashboard(pb::GetComplaintSlaDashboardRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.total.unwrap().open, 0, "{board:?}");
    // Agents watch only their own deadlines; bad windows are named.
    let err = s
        .complaints_as(Role::Supervisor)
        .get_complaint_sla_dashboard(pb::GetComplaintSlaDashboardRequest { within_minutes: -1 })
        .await
        .unwrap_err();
    assert_eq!(kefu_testkit::violations(&err), vec!["within_minutes".to_string()]);
}

async fn a_referral_reply_deadline_caps_the_deadlines_and_corrective_actions_are_due_on_their_date(s: Suite) {
    let c = s.customer("转办测试有限公司", 802, cpb::ServiceTier::Standard).await;
    let mut req = complaint(&c, pb::Severity::High, pb::ComplaintSource::RegulatorReferral);
    let reply_due = cst(2026, 3, 4, 12, 0);
    req.complaint.as_mut().unwrap().referral = Some(pb::Referral {
        referred_by: "国家税务总局12366纳税缴费服务热线".into(),
        reference: "12366-2026-00042".into(),
        reply_due_time: Some(prost_types::Timestamp { seconds: reply_due / 1000, nanos: 0 }),
    });
    let mut sup = s.complaints_as(Role::Supervisor);
    let rec = sup.record_complaint(req).await.unwrap().into_inner();
    let d = deadlines(&s, &rec.id).await;
    let resolution = of(&d, "resolution");
    assert_eq!(ms(resolution.due_time.as_ref()), reply_due, "the referral's reply deadline comes first");
    assert_eq!(ms(resolution.cap_time.as_ref()), reply_due);
    assert_eq!(ms(of(&d, "acknowledgement").due_time.as_ref()), cst(2026, 3, 2, 10, 0), "sooner than the cap");

    // A corrective action is due at the close of business of its date.
    step(&s, &rec.id, A::GivePreliminaryOpinion, "先行致歉并核查。").await;
    step(&s, &rec.id, A::StartInvestigation, "").await;
    let action = |due: &str, owner: &str| pb::AddCorrectiveActionRequest {
        complaint_id: rec.id.clone(),
        action: Some(pb::CorrectiveAction {
            kind: pb::ActionKind::Corrective as i32,
            description: "复核当月报表交付流程".into(),
            owner: owner.into(),
            due_date: due.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let soon = sup.add_corrective_action(action("2026-03-03", "agent-9")).await.unwrap().into_inner();
    let later = sup.add_corrective_action(action("2026-03-06", "agent-9")).await.unwrap().into_inner();
    let d = deadlines(&s, &rec.id).await;
    let capa: Vec<&pb::Deadline> = d.iter().filter(|x| x.metric == "corrective_action").collect();
    assert_eq!(capa.len(), 2, "{d:?}");
    let soon_d = capa.iter().find(|x| x.action_id == soon.id).unwrap();
    assert_eq!(ms(soon_d.due_time.as_ref()), cst(2026, 3, 3, 18, 0));
    let board =
        sup.get_complaint_sla_dashboard(pb::GetComplaintSlaDashboardRequest::default()).await.unwrap().into_inner();
    assert_eq!(board.by_queue["corrective_actions"].open, 2, "{board:?}");
    assert_eq!(board.by_handler["agent-9"].open, 2, "the owner's board shows both: {board:?}");

    // The later one is done in time; the sooner one is missed.
    let owner = s.complaints_with_token(Some(&s.token_for("agent-9", Role::Agent)));
    owner
        .clone()
        .complete_corrective_action(pb::CompleteCorrectiveActionRequest {
            id: later.id.clone(),
            evidence: "流程已修订".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    s.advance_to(cst(2026, 3, 3, 18, 5)).await;
    let d = deadlines(&s, &rec.id).await;
    let state_of = |id: &str| d.iter().find(|x| x.action_id == id).unwrap().state;
    assert_eq!(state_of(&later.id), D::Fulfilled as i32);
    assert_eq!(state_of(&soon.id), D::Breached as i32);
    let n = notes(&s, &rec.id).await;
    assert_eq!(n.iter().filter(|x| x.starts_with("时限超时：纠正措施")).count(), 1, "{n:?}");
    assert!(n.iter().any(|x| x.starts_with("时限超时：纠正措施") && x.contains("投诉主管")), "{n:?}");
    // The owner watches the deadlines routed to them, and only those.
    let mut mine = owner
        .clone()
        .watch_complaint_deadlines(pb::WatchComplaintDeadlinesRequest {
            handler: "supervisor-1".into(),
            since_event_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let second = sup.add_corrective_action(action("2026-03-05", "agent-9")).await.unwrap().into_inner();
    owner
        .clone()
        .complete_corrective_action(pb::CompleteCorrectiveActionRequest {
            id: second.id.clone(),
            evidence: "已完成".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let ev = next_event(&mut mine).await;
    assert_eq!(
        (ev.kind.as_str(), ev.action_id.as_str(), ev.handler.as_str()),
        ("fulfilled", second.id.as_str(), "agent-9")
    );
    assert_eq!(ev.complaint_id, rec.id);
}

async fn complaint_deadlines_follow_the_firms_complaint_policies_by_severity_and_source(s: Suite) {
    let c = s.customer("策略测试有限公司", 803, cpb::ServiceTier::Standard).await;
    // The firm answers critical referrals faster: a complaint policy in the
    // one SLA configuration (tickets owns it).
    let policy = tpb::SlaPolicy {
        id: "critical-referrals".into(),
        name: "重大转办投诉".into(),
        position: 5,
        record_kinds: vec!["complaint".into()],
        priorities: vec!["critical".into()],
        sources: vec!["regulator_referral".into(), "hotline_referral".into()],
        metrics: vec![
            tpb::SlaMetricRule { metric: "acknowledgement".into(), duration_seconds: 1800, ..Default::default() },
            tpb::SlaMetricRule {
                metric: "preliminary_opinion".into(),
                duration_seconds: 4 * 3600,
                ..Default::default()
            },
            tpb::SlaMetricRule { metric: "resolution".into(), duration_seconds: 3 * 8 * 3600, ..Default::default() },
        ],
        ..Default::default()
    };
    let mut sup_t = s.tickets_as(Role::Supervisor);
    let bad = sup_t
        .upsert_sla_policy(tpb::UpsertSlaPolicyRequest {
            policy: Some(tpb::SlaPolicy { sources: vec!["walk_in".into()], ..policy.clone() }),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(kefu_testkit::violations(&bad), vec!["policy.sources[0]".to_string()]);
    sup_t
        .upsert_sla_policy(tpb::UpsertSlaPolicyRequest { policy: Some(policy), reason: "重大转办从严".into() })
        .await
        .unwrap();
    assert!(s.complaints.deadlines.refresh().await.unwrap(), "the new configuration is read");
    assert!(!s.complaints.deadlines.refresh().await.unwrap(), "and not read again while unchanged");

    let mut sup = s.complaints_as(Role::Supervisor);
    let mut referral = complaint(&c, pb::Severity::Critical, pb::ComplaintSource::HotlineReferral);
    referral.complaint.as_mut().unwrap().referral = Some(pb::Referral {
        referred_by: "12345政务服务便民热线".into(),
        reference: "12345-0001".into(),
        reply_due_time: Some(prost_types::Timestamp { seconds: cst(2026, 3, 20, 18, 0) / 1000, nanos: 0 }),
    });
    let critical = sup.record_complaint(referral).await.unwrap().into_inner();
    let d = deadlines(&s, &critical.id).await;
    assert_eq!(ms(of(&d, "acknowledgement").due_time.as_ref()), cst(2026, 3, 2, 9, 30));
    assert_eq!(ms(of(&d, "preliminary_opinion").due_time.as_ref()), cst(2026, 3, 2, 14, 0), "lunch is not counted");
    assert_eq!(of(&d, "resolution").policy_id, "critical-referrals");
    // A critical complaint from the customer directly keeps the default.
    let direct = sup
        .record_complaint(complaint(&c, pb::Severity::Critical, pb::ComplaintSource::Customer))
        .await
        .unwrap()
        .into_inner();
    let d = deadlines(&s, &direct.id).await;
    assert_eq!(ms(of(&d, "acknowledgement").due_time.as_ref()), cst(2026, 3, 2, 10, 0));
    assert_eq!(of(&d, "resolution").policy_id, "default-complaint");
}
