//! The directory as the other services see it, on SQLite + memory and
//! PostgreSQL + Redis: tickets refuse an assignee or escalation target that
//! is nobody, someone who left, or (for an assignee) a queue; tickets
//! waiting on an expert group are found by it; complaints and training
//! check their people the same way; an agent's live events are their own
//! and their team's, a supervisor's everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1 as cpb,
    customers::v1 as kpb,
    staff::v1::{self as pb, PersonStatus, TeamKind},
    tickets::v1 as tpb,
    training::v1 as lpb,
};
use kefu_testkit::{Backend, Suite, violations};

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    tickets_take_only_active_people_and_teams_and_list_by_escalation_target,
    complaints_and_training_check_their_people_in_the_directory,
    an_agent_watches_their_own_and_their_teams_events_only,
);

fn new_ticket(customer: &str, assignee: &str, queue: &str) -> tpb::CreateTicketRequest {
    tpb::CreateTicketRequest {
        ticket: Some(tpb::Ticket {
            kind: tpb::TicketKind::Consultation as i32,
            channel: Channel::Phone as i32,
            subject: "出口退税进度".into(),
            customer_id: customer.into(),
            assignee: assignee.into(),
            queue: queue.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn leave(s: &Suite, id: &str) {
    let mut hr = s.staff_as(Role::Hr);
    let mut p = hr.get_person(pb::GetPersonRequest { staff_id: id.into() }).await.unwrap().into_inner();
    p.status = PersonStatus::Left as i32;
    let etag = p.etag.clone();
    hr.update_person(pb::UpdatePersonRequest { person: Some(p), etag }).await.unwrap();
}

async fn tickets_take_only_active_people_and_teams_and_list_by_escalation_target(s: Suite) {
    let c = s.customer("宁波某某进出口有限公司", 701, kpb::ServiceTier::Standard).await;
    let mut agent = s.tickets_as(Role::Agent);
    let before = agent.list_tickets(tpb::ListTicketsRequest::default()).await.unwrap().into_inner().tickets.len();
    // Nobody by that name: refused, nothing created.
    let e = agent.create_ticket(new_ticket(&c, "不存在的人", "")).await.unwrap_err();
    assert_eq!(violations(&e), vec!["ticket.assignee".to_string()], "{}", e.message());
    assert!(e.message().contains("not a person of the staff directory"), "{}", e.message());
    // A queue is not a person.
    let e = agent.create_ticket(new_ticket(&c, "tax-expert", "")).await.unwrap_err();
    assert!(e.message().contains("is a team or queue"), "{}", e.message());
    assert_eq!(
        agent.list_tickets(tpb::ListTicketsRequest::default()).await.unwrap().into_inner().tickets.len(),
        before
    );

    let t = agent.create_ticket(new_ticket(&c, "agent-2", "")).await.unwrap().into_inner();
    // Someone who left is not assigned work.
    leave(&s, "agent-6").await;
    let e = agent
        .assign_ticket(tpb::AssignTicketRequest {
            ticket_id: t.id.clone(),
            assignee: "agent-6".into(),
            queue: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&e), vec!["assignee".to_string()]);
    assert!(e.message().contains("not an active member of staff"), "{}", e.message());
    let e = agent
        .assign_ticket(tpb::AssignTicketRequest {
            ticket_id: t.id.clone(),
            assignee: "不存在的人".into(),
            queue: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let still = agent.get_ticket(tpb::GetTicketRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!(still.assignee, "agent-2", "a refused assignment changes nothing");
    agent
        .assign_ticket(tpb::AssignTicketRequest {
            ticket_id: t.id.clone(),
            assignee: "AGENT-3".into(),
            queue: String::new(),
        })
        .await
        .unwrap();
    let moved = agent.get_ticket(tpb::GetTicketRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!(moved.assignee, "agent-3", "kept as the directory writes it (figures count by it)");

    // Escalation: to nobody refused; to the expert group kept and listed.
    let pending = |to: &str| tpb::ChangeStatusRequest {
        ticket_id: t.id.clone(),
        status: tpb::Status::PendingInternal as i32,
        reason: "请税务专家确认出口退税率".into(),
        escalated_to: to.into(),
        reopen: false,
    };
    let e = agent.change_status(pending("不存在的组")).await.unwrap_err();
    assert_eq!(violations(&e), vec!["escalated_to".to_string()]);
    assert!(e.message().contains("neither a person nor a team"), "{}", e.message());
    let waiting = agent.change_status(pending("tax-expert")).await.unwrap().into_inner();
    assert_eq!(waiting.escalated_to, "tax-expert");
    agent.create_ticket(new_ticket(&c, "agent-2", "")).await.unwrap();
    let listed = agent
        .list_tickets(tpb::ListTicketsRequest { escalated_to: "tax-expert".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), vec![t.id.as_str()]);
}

async fn complaints_and_training_check_their_people_in_the_directory(s: Suite) {
    let c = s.customer("杭州某某软件有限公司", 702, kpb::ServiceTier::Standard).await;
    let complaint = |handler: &str, about: &str| cpb::RecordComplaintRequest {
        complaint: Some(cpb::Complaint {
            source: cpb::ComplaintSource::Customer as i32,
            channel: Channel::Phone as i32,
            customer_id: c.clone(),
            subject_kind: cpb::SubjectKind::Staff as i32,
            subject: about.into(),
            category: "service_attitude".into(),
            severity: cpb::Severity::Low as i32,
            description: "电话中态度冷淡。".into(),
            handler: handler.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let mut sup = s.complaints_as(Role::Supervisor);
    let e = sup.record_complaint(complaint("不存在的人", "也不存在")).await.unwrap_err();
    assert_eq!(violations(&e), vec!["complaint.handler".to_string(), "complaint.subject".to_string()]);
    assert!(
        sup.list_complaints(cpb::ListComplaintsRequest::default()).await.unwrap().into_inner().complaints.is_empty(),
        "nothing recorded"
    );
    // Someone who has left may still be complained about.
    leave(&s, "agent-5").await;
    let made = sup.record_complaint(complaint("supervisor-2", "agent-5")).await.unwrap().into_inner();
    assert_eq!(made.handler, "supervisor-2");

    let mut hr = s.training_as(Role::Hr);
    hr.create_course(lpb::CreateCourseRequest {
        course: Some(lpb::Course {
            code: "DIR-1".into(),
            title: "电子税务局操作".into(),
            topic: lpb::Topic::TaxPolicy as i32,
            method: lpb::Method::Classroom as i32,
            hours: 1.0,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    // A week after the suite's clock starts (2026-03-02 09:00 in Beijing).
    let start = 1_772_413_200_000 + 7 * 86_400_000;
    let session = |trainer: &str| lpb::ScheduleSessionRequest {
        session: Some(lpb::Session {
            course_id: "DIR-1".into(),
            start_time: Some(prost_types::Timestamp { seconds: start / 1000, nanos: 0 }),
            end_time: Some(prost_types::Timestamp { seconds: start / 1000 + 3600, nanos: 0 }),
            location: "总部 2 楼".into(),
            trainer: trainer.into(),
            capacity: 10,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let e = hr.schedule_session(session("外部讲师")).await.unwrap_err();
    assert_eq!(violations(&e), vec!["session.trainer".to_string()]);
    let ses = hr.schedule_session(session("agent-trainer")).await.unwrap().into_inner();
    let e = hr.enrol(lpb::EnrolRequest { session_id: ses.id.clone(), staff_id: "agent-5".into() }).await.unwrap_err();
    assert!(e.message().contains("not an active member of staff"), "{}", e.message());
    hr.enrol(lpb::EnrolRequest { session_id: ses.id, staff_id: "agent-4".into() }).await.unwrap();
}

/// The tickets created that a watcher was told of, until it goes quiet.
async fn created(stream: &mut tonic::Streaming<tpb::SlaEventMessage>) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_millis(1500), stream.next()).await {
        if ev.kind == "ticket_created" {
            ids.push(ev.ticket_id);
        }
    }
    ids
}

async fn an_agent_watches_their_own_and_their_teams_events_only(s: Suite) {
    let mut sup = s.staff_as(Role::Supervisor);
    sup.create_team(pb::CreateTeamRequest {
        team: Some(pb::Team {
            code: "east".into(),
            name: "华东组".into(),
            kind: TeamKind::Team as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    for id in ["agent-1", "agent-2"] {
        sup.set_membership(pb::SetMembershipRequest {
            team: "east".into(),
            staff_id: id.into(),
            member: true,
            lead: false,
        })
        .await
        .unwrap();
    }
    let c = s.customer("苏州某某制造有限公司", 703, kpb::ServiceTier::Standard).await;
    let watch = |subject: &str, role: Role| {
        let mut t = s.tickets_with_token(Some(&s.token_for(subject, role)));
        async move { t.watch_sla_events(tpb::WatchSlaEventsRequest::default()).await.unwrap().into_inner() }
    };
    let mut agent1 = watch("agent-1", Role::Agent).await;
    let mut agent3 = watch("agent-3", Role::Agent).await;
    let mut boss = watch("supervisor-1", Role::Supervisor).await;
    let mut make = s.tickets_as(Role::Agent);
    let other = make.create_ticket(new_ticket(&c, "agent-3", "")).await.unwrap().into_inner();
    let mate = make.create_ticket(new_ticket(&c, "agent-2", "")).await.unwrap().into_inner();
    let queued = make.create_ticket(new_ticket(&c, "", "east")).await.unwrap().into_inner();
    assert_eq!(
        created(&mut agent1).await,
        vec![mate.id.clone(), queued.id.clone()],
        "a teammate's and the team queue's"
    );
    assert_eq!(created(&mut agent3).await, vec![other.id.clone()], "their own only");
    assert_eq!(created(&mut boss).await, vec![other.id, mate.id, queued.id], "a supervisor sees everything");
}
