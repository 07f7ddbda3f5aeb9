//! The training API through a real client, on SQLite + memory and
//! PostgreSQL + Redis: HR's catalogue and 2027 plan approved by a
//! supervisor, a session charged to it within budget, three agents
//! enrolling (one waitlisted and moved up when a seat frees), attendance
//! once in its window, completion crediting hours, certificates with their
//! due list and continuing-education pace, the figures for performance
//! reviews, and bad input refused by name without changing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    customers::v1 as cpb,
    tickets::v1 as tpb,
    training::v1::{self as pb, EnrolmentState as E},
};
use kefu_testkit::{Backend, Suite, violations};
use tonic::Code;

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    a_planned_session_fills_waitlists_checks_in_once_and_credits_hours_to_the_plan,
    certificates_expire_after_issue_and_the_due_list_names_expiry_and_hours_behind,
    bad_input_and_wrong_callers_are_refused_and_change_nothing,
    concurrent_retries_of_a_create_return_the_same_resource,
    exams_draw_papers_keep_time_score_exactly_are_marked_and_analysed,
    enrolments_hold_under_concurrency_and_stop_changing_when_the_session_starts,
    the_course_report_shows_all_four_levels_with_the_trainees_ticket_figures,
    a_career_path_computes_eligibility_from_training_records,
);

/// Beijing wall time as Unix milliseconds.
fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: ms / 1000, nanos: 0 })
}

async fn course(s: &Suite, code: &str, requires_approval: bool) -> pb::Course {
    s.training_as(Role::Hr)
        .create_course(pb::CreateCourseRequest {
            course: Some(pb::Course {
                code: code.into(),
                title: "个人所得税汇算清缴实务".into(),
                topic: pb::Topic::TaxPolicy as i32,
                method: pb::Method::Classroom as i32,
                hours: 3.5,
                description: "2026 年度汇算要点与常见问题".into(),
                materials: vec![pb::Material {
                    title: "课件".into(),
                    url: "https://intranet.example.cn/training/iit-2026.pdf".into(),
                }],
                requires_approval,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
}

fn session(
    course_id: &str,
    start: i64,
    capacity: i32,
    waitlist: i32,
    cost_fen: i64,
    plan: &str,
) -> pb::ScheduleSessionRequest {
    pb::ScheduleSessionRequest {
        session: Some(pb::Session {
            course_id: course_id.into(),
            start_time: ts(start),
            end_time: ts(start + 3 * 3_600_000 + 1_800_000),
            location: "总部 3 楼培训室".into(),
            trainer: "agent-trainer".into(),
            capacity,
            waitlist_capacity: waitlist,
            cost_fen,
            plan_id: plan.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn plan(year: i32, team: &str, course_id: &str) -> pb::CreatePlanRequest {
    pb::CreatePlanRequest {
        plan: Some(pb::Plan {
            year,
            team: team.into(),
            title: format!("{year} 年度客服培训计划"),
            goals: vec!["汇算清缴咨询一次解决率 ≥ 90%".into(), "全员完成个人信息保护培训".into()],
            budget_fen: 1_000_000,
            target_hours_per_person: 7.0,
            headcount: 3,
            courses: vec![pb::PlannedCourse {
                course_id: course_id.into(),
                quarter: 1,
                sessions: 2,
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

async fn a_planned_session_fills_waitlists_checks_in_once_and_credits_hours_to_the_plan(s: Suite) {
    let c = course(&s, "IIT-2027-01", false).await;
    assert_eq!((c.hours, c.code.as_str()), (3.5, "IIT-2027-01"));
    let mut hr = s.training_as(Role::Hr);
    // HR draws up the 2027 plan; a supervisor (not its author) approves it.
    let p = hr.create_plan(plan(2027, "代账客服一组", &c.code)).await.unwrap().into_inner();
    assert_eq!(p.state, pb::PlanState::Draft as i32);
    assert_eq!(p.courses[0].course_id, c.id, "planned courses are kept by id");
    let own = hr.approve_plan(pb::ApprovePlanRequest { id: p.id.clone() }).await.unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    // A plan pays once approved.
    let start = beijing(2027, 1, 12, 9, 0);
    let early = hr.schedule_session(session(&c.id, start, 2, 1, 300_000, &p.id)).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    let approved = s
        .training_as(Role::Supervisor)
        .approve_plan(pb::ApprovePlanRequest { id: p.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((approved.state, approved.approved_by.as_str()), (pb::PlanState::Approved as i32, "supervisor-1"));

    // Two seats, one waitlist place, ¥3,000 of the ¥10,000 budget.
    let mut req = session(&c.id, start, 2, 1, 300_000, &p.id);
    req.request_id = "sched-iit-1".into();
    let ses = hr.schedule_session(req.clone()).await.unwrap().into_inner();
    let again = hr.schedule_session(req).await.unwrap().into_inner();
    assert_eq!(again.id, ses.id, "a retried schedule is the same session");
    // Over budget: ¥8,000 more does not fit in the ¥7,000 left.
    let over = hr.schedule_session(session(&c.id, start + 86_400_000, 10, 0, 800_000, &p.id)).await.unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert!(over.message().contains("¥7,000.00"), "{}", over.message());

    // Three agents enrol themselves; the third waits; a fourth is refused.
    let agent = |n: &str| s.training_with_token(Some(&s.token_for(n, Role::Agent)));
    let mut enrolled = Vec::new();
    for n in ["agent-1", "agent-2", "agent-3"] {
        let e = agent(n).enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() }).await.unwrap();
        enrolled.push(e.into_inner());
    }
    let states: Vec<i32> = enrolled.iter().map(|e| e.state).collect();
    assert_eq!(states, vec![E::Enrolled as i32, E::Enrolled as i32, E::Waitlisted as i32]);
    assert_eq!(enrolled[2].waitlist_position, 1);
    let retry = agent("agent-1").enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() }).await;
    assert_eq!(retry.unwrap().into_inner().id, enrolled[0].id, "enrolling twice is one enrolment");
    let full = agent("agent-4").enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() }).await;
    let full = full.unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition);
    assert!(full.message().contains("full"), "{}", full.message());
    // An agent cannot assign someone else.
    let assign = agent("agent-1")
        .enrol(pb::EnrolRequest { session_id: ses.id.clone(), staff_id: "agent-5".into() })
        .await
        .unwrap_err();
    assert_eq!(assign.code(), Code::PermissionDenied);

    // agent-2 withdraws: agent-3 moves up from the waitlist.
    agent("agent-2").withdraw_enrolment(pb::WithdrawEnrolmentRequest { id: enrolled[1].id.clone() }).await.unwrap();
    let roster = hr
        .list_enrolments(pb::ListEnrolmentsRequest { session_id: ses.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .enrolments;
    let by = |who: &str| roster.iter().find(|e| e.staff_id == who).unwrap().state;
    assert_eq!(
        (by("agent-1"), by("agent-2"), by("agent-3")),
        (E::Enrolled as i32, E::Withdrawn as i32, E::Enrolled as i32)
    );
    let ses_now = hr.get_session(pb::GetSessionRequest { id: ses.id.clone() }).await.unwrap().into_inner();
    assert_eq!((ses_now.enrolled, ses_now.waitlisted), (2, 0));
    // HR assigns agent-2 back: no seat is free, the waitlist place is.
    let back = hr
        .enrol(pb::EnrolRequest { session_id: ses.id.clone(), staff_id: "agent-2".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((back.state, back.assigned_by.as_str()), (E::Waitlisted as i32, "hr-1"));

    // Check-in opens 30 minutes before the start, once.
    s.clock.set(start - 3_600_000);
    let shut = agent("agent-1").check_in(pb::CheckInRequest { id: enrolled[0].id.clone() }).await.unwrap_err();
    assert_eq!(shut.code(), Code::FailedPrecondition);
    s.clock.set(start - 10 * 60_000);
    let e1 = agent("agent-1").check_in(pb::CheckInRequest { id: enrolled[0].id.clone() }).await.unwrap().into_inner();
    assert_eq!(e1.state, E::Attended as i32);
    let twice = agent("agent-1").check_in(pb::CheckInRequest { id: enrolled[0].id.clone() }).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains("already checked in at 2027-01-12 08:50"), "{}", twice.message());
    // The trainer checks agent-3 in; another agent cannot.
    let stranger = agent("agent-9").check_in(pb::CheckInRequest { id: enrolled[2].id.clone() }).await.unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
    agent("agent-trainer").check_in(pb::CheckInRequest { id: enrolled[2].id.clone() }).await.unwrap();

    // The trainer completes it: attendees credited 3.5 hours, the waitlist cancelled.
    s.clock.set(start + 4 * 3_600_000);
    let done = agent("agent-trainer")
        .complete_session(pb::CompleteSessionRequest { id: ses.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, pb::SessionState::Completed as i32);
    let mine = agent("agent-1")
        .list_enrolments(pb::ListEnrolmentsRequest { staff_id: "agent-1".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .enrolments;
    assert_eq!((mine[0].state, mine[0].hours_credited), (E::Completed as i32, 3.5));
    let theirs = agent("agent-1")
        .list_enrolments(pb::ListEnrolmentsRequest { staff_id: "agent-3".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::PermissionDenied, "agents see their own records");
    let roster = hr
        .list_enrolments(pb::ListEnrolmentsRequest { session_id: ses.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .enrolments;
    assert_eq!(roster.iter().find(|e| e.staff_id == "agent-2").unwrap().state, E::Cancelled as i32);

    // The plan's progress: 7 hours delivered to 2 people, ¥3,000 spent of ¥10,000.
    let progress = hr.get_plan(pb::GetPlanRequest { id: p.id.clone() }).await.unwrap().into_inner();
    let pr = progress.progress.unwrap();
    assert_eq!((pr.hours_delivered, pr.people_trained), (7.0, 2));
    assert_eq!((pr.budget_spent_fen, pr.budget_left_fen), (300_000, 700_000));
    assert!((pr.hours_share - 7.0 / 21.0).abs() < 1e-12, "{pr:?}");
    assert_eq!((progress.courses[0].sessions, progress.courses[0].sessions_scheduled), (2, 1));

    // For performance reviews: agent-1's January.
    let stats = s
        .training_as(Role::Service)
        .get_staff_training_stats(pb::GetStaffTrainingStatsRequest {
            staff_id: "agent-1".into(),
            from_date: "2027-01-01".into(),
            to_date: "2027-01-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.hours, stats.courses_completed, stats.sessions_absent), (3.5, 1, 0));

    // One plan per team and year; a completed session takes no enrolments.
    let same = hr.create_plan(plan(2027, "代账客服一组", &c.id)).await.unwrap().into_inner();
    assert_eq!(same.id, p.id, "the same plan again is the plan");
    let mut other = plan(2027, "代账客服一组", &c.id);
    other.plan.as_mut().unwrap().budget_fen = 2_000_000;
    let dup = hr.create_plan(other).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let late = agent("agent-7").enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() }).await;
    assert_eq!(late.unwrap_err().code(), Code::FailedPrecondition);
}

async fn certificates_expire_after_issue_and_the_due_list_names_expiry_and_hours_behind(s: Suite) {
    let mut hr = s.training_as(Role::Hr);
    let cert =
        |staff: &str, name: &str, number: &str, issue: &str, expiry: &str, ce: f64| pb::RecordCertificateRequest {
            certificate: Some(pb::Certificate {
                staff_id: staff.into(),
                name: name.into(),
                kind: pb::CertificateKind::Professional as i32,
                number: number.into(),
                issuer: "财政部".into(),
                issue_date: issue.into(),
                expiry_date: expiry.into(),
                annual_ce_hours: ce,
                ..Default::default()
            }),
        };
    // The suite's clock: 2026-03-02 in Beijing.
    let near = hr.record_certificate(cert("agent-1", "税务师", "SW-2021-0001", "2021-04-01", "2026-04-15", 0.0)).await;
    assert!(!near.unwrap().into_inner().expired);
    hr.record_certificate(cert("agent-2", "初级会计职称", "CJ-2019-0042", "2019-05-01", "", 90.0)).await.unwrap();
    let gone = hr.record_certificate(cert("agent-3", "内部讲师", "NB-2024-7", "2024-01-01", "2026-02-01", 0.0)).await;
    assert!(gone.unwrap().into_inner().expired);
    let dup = hr.record_certificate(cert("agent-4", "税务师", "SW-2021-0001", "2021-04-01", "", 0.0)).await;
    assert_eq!(dup.unwrap_err().code(), Code::AlreadyExists);
    let bad = hr.record_certificate(cert("agent-1", "注册会计师", "CPA-1", "2026-05-01", "2026-01-01", 0.0)).await;
    assert_eq!(
        violations(&bad.unwrap_err()),
        vec!["certificate.issue_date".to_string(), "certificate.expiry_date".to_string()]
    );

    let due = hr.list_due_reminders(pb::ListDueRemindersRequest::default()).await.unwrap().into_inner().reminders;
    let kinds: Vec<(i32, &str)> = due.iter().map(|r| (r.kind, r.staff_id.as_str())).collect();
    assert!(kinds.contains(&(pb::ReminderKind::CertificateExpired as i32, "agent-3")), "{due:?}");
    let soon = due.iter().find(|r| r.kind == pb::ReminderKind::CertificateExpiring as i32).unwrap();
    assert_eq!((soon.staff_id.as_str(), soon.days_left, soon.due_date.as_str()), ("agent-1", 44, "2026-04-15"));
    assert_eq!(soon.summary, "税务师证书将于 2026-04-15 到期，剩 44 天");
    // agent-2 needs 90 hours a year and has none by 2 March (day 61: 15.0 expected).
    let behind = due.iter().find(|r| r.kind == pb::ReminderKind::CeHoursBehind as i32).unwrap();
    assert_eq!((behind.staff_id.as_str(), behind.hours_required, behind.hours_earned), ("agent-2", 90.0, 0.0));
    assert!((behind.hours_expected - 90.0 * 61.0 / 365.0).abs() < 1e-9, "{behind:?}");
    // Renewed: the expired certificate is no longer due.
    hr.record_certificate(cert("agent-3", "内部讲师", "NB-2026-1", "2026-02-15", "", 0.0)).await.unwrap();
    let due = hr.list_due_reminders(pb::ListDueRemindersRequest::default()).await.unwrap().into_inner().reminders;
    assert!(!due.iter().any(|r| r.staff_id == "agent-3"), "{due:?}");
    // A narrower window leaves the April expiry out.
    let narrow = hr
        .list_due_reminders(pb::ListDueRemindersRequest { within_days: 30, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .reminders;
    assert!(!narrow.iter().any(|r| r.kind == pb::ReminderKind::CertificateExpiring as i32));
    // Agents see their own.
    let mine = s
        .training_with_token(Some(&s.token_for("agent-1", Role::Agent)))
        .list_due_reminders(pb::ListDueRemindersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .reminders;
    assert!(mine.iter().all(|r| r.staff_id == "agent-1") && mine.len() == 1, "{mine:?}");
    let certs = s
        .training_with_token(Some(&s.token_for("agent-1", Role::Agent)))
        .list_certificates(pb::ListCertificatesRequest { staff_id: "agent-2".into() })
        .await
        .unwrap_err();
    assert_eq!(certs.code(), Code::PermissionDenied);
    let stats = hr
        .get_staff_training_stats(pb::GetStaffTrainingStatsRequest {
            staff_id: "agent-3".into(),
            from_date: "2026-01-01".into(),
            to_date: "2026-03-01".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stats.certificates_held, stats.certificates_expired, stats.hours),
        (1, 1, 0.0),
        "renewed, and the old one"
    );
    let agents_cannot = s
        .training_as(Role::Agent)
        .get_staff_training_stats(pb::GetStaffTrainingStatsRequest {
            staff_id: "agent-3".into(),
            from_date: "2026-01-01".into(),
            to_date: "2026-03-01".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(agents_cannot.code(), Code::PermissionDenied);
}

async fn bad_input_and_wrong_callers_are_refused_and_change_nothing(s: Suite) {
    let mut hr = s.training_as(Role::Hr);
    let bad = hr
        .create_course(pb::CreateCourseRequest {
            course: Some(pb::Course {
                code: "税务".into(),
                hours: 1.25,
                materials: vec![pb::Material { title: "x".into(), url: "javascript:alert(1)".into() }],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&bad),
        vec![
            "course.code".to_string(),
            "course.title".to_string(),
            "course.topic".to_string(),
            "course.method".to_string(),
            "course.hours".to_string(),
            "course.materials[0].url".to_string()
        ]
    );
    let listed = hr.list_courses(pb::ListCoursesRequest::default()).await.unwrap().into_inner().courses;
    assert!(listed.is_empty(), "nothing was created");
    let agent = s.training_as(Role::Agent).create_course(pb::CreateCourseRequest::default()).await.unwrap_err();
    assert_eq!(agent.code(), Code::PermissionDenied);
    let c = course(&s, "PIPL-01", true).await;
    let dup = s
        .training_as(Role::Admin)
        .create_course(pb::CreateCourseRequest {
            course: Some(pb::Course {
                code: "pipl-01".into(),
                title: "重复".into(),
                topic: 4,
                method: 2,
                hours: 1.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "codes are compared in upper case");

    // Sessions: in the past, ending before they start, no seats; unknown course.
    let now = {
        use kefu_sla::Clock;
        s.clock.now_ms()
    };
    let mut req = session(&c.id, now - 86_400_000, 0, -1, -5, "");
    req.session.as_mut().unwrap().end_time = ts(now - 2 * 86_400_000);
    let err = hr.schedule_session(req).await.unwrap_err();
    assert_eq!(
        violations(&err),
        vec![
            "session.end_time".to_string(),
            "session.start_time".to_string(),
            "session.capacity".to_string(),
            "session.waitlist_capacity".to_string(),
            "session.cost_fen".to_string()
        ]
    );
    let unknown = hr.schedule_session(session("NOPE-1", now + 86_400_000, 5, 0, 0, "")).await.unwrap_err();
    assert_eq!(violations(&unknown), vec!["session.course_id".to_string()]);
    let none = hr.list_sessions(pb::ListSessionsRequest::default()).await.unwrap().into_inner().sessions;
    assert!(none.is_empty());

    // A course that needs approval: the self-enrolment waits; nobody approves their own.
    let ses = hr.schedule_session(session(&c.id, now + 86_400_000, 1, 0, 0, "")).await.unwrap().into_inner();
    let sup = s.token_for("supervisor-2", Role::Supervisor);
    let waits = s
        .training_with_token(Some(&sup))
        .enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(waits.state, E::PendingApproval as i32);
    let own = s
        .training_with_token(Some(&sup))
        .approve_enrolment(pb::ApproveEnrolmentRequest { id: waits.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    let ok = hr.approve_enrolment(pb::ApproveEnrolmentRequest { id: waits.id.clone() }).await.unwrap().into_inner();
    assert_eq!((ok.state, ok.approved_by.as_str()), (E::Enrolled as i32, "hr-1"));
    let again = hr.approve_enrolment(pb::ApproveEnrolmentRequest { id: waits.id }).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("is enrolled"), "{}", again.message());
    // Cancelled with a reason: its enrolments end.
    let no_reason = hr.cancel_session(pb::CancelSessionRequest { id: ses.id.clone(), reason: String::new() }).await;
    assert_eq!(violations(&no_reason.unwrap_err()), vec!["reason".to_string()]);
    let cancelled = hr
        .cancel_session(pb::CancelSessionRequest { id: ses.id.clone(), reason: "讲师临时出差".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cancelled.state, cancelled.enrolled), (pb::SessionState::Cancelled as i32, 0));
    // Plans: bad fields named at once.
    let mut p = plan(2020, "", "NOPE-9");
    let plan_in = p.plan.as_mut().unwrap();
    plan_in.goals.clear();
    plan_in.headcount = 0;
    plan_in.budget_fen = -1;
    plan_in.courses[0].quarter = 5;
    let err = hr.create_plan(p).await.unwrap_err();
    assert_eq!(
        violations(&err),
        vec![
            "plan.year".to_string(),
            "plan.team".to_string(),
            "plan.goals".to_string(),
            "plan.budget_fen".to_string(),
            "plan.headcount".to_string(),
            "plan.courses[0].quarter".to_string()
        ]
    );
    let unknown = hr.create_plan(plan(2027, "二组", "NOPE-9")).await.unwrap_err();
    assert_eq!(violations(&unknown), vec!["plan.courses[0].course_id".to_string()]);
    let plans = hr.list_plans(pb::ListPlansRequest::default()).await.unwrap().into_inner().plans;
    assert!(plans.is_empty(), "nothing was created");
}

async fn concurrent_retries_of_a_create_return_the_same_resource(s: Suite) {
    let tries = (0..4).map(|_| {
        let mut hr = s.training_as(Role::Hr);
        async move {
            hr.create_course(pb::CreateCourseRequest {
                course: Some(pb::Course {
                    code: "SYS-01".into(),
                    title: "金税四期系统操作".into(),
                    topic: pb::Topic::Systems as i32,
                    method: pb::Method::Online as i32,
                    hours: 2.0,
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.into_inner().id)
        }
    });
    let ids: Vec<String> = futures::future::join_all(tries).await.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let plans = (0..3).map(|_| {
        let mut hr = s.training_as(Role::Hr);
        async move { hr.create_plan(plan(2027, "并发组", "SYS-01")).await.map(|r| r.into_inner().id) }
    });
    let ids: Vec<String> = futures::future::join_all(plans).await.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let listed = s.training_as(Role::Hr).list_plans(pb::ListPlansRequest { year: 2027 }).await.unwrap().into_inner();
    assert_eq!(listed.plans.len(), 1);
}

async fn question(
    s: &Suite,
    kind: pb::QuestionKind,
    tag: &str,
    stem: &str,
    options: &[&str],
    correct: &[i32],
    points: i32,
) -> pb::Question {
    s.training_as(Role::Hr)
        .add_question(pb::AddQuestionRequest {
            question: Some(pb::Question {
                kind: kind as i32,
                stem: stem.into(),
                options: options.iter().map(|o| (*o).to_owned()).collect(),
                correct: correct.to_vec(),
                answer_guide: if kind == pb::QuestionKind::ShortAnswer {
                    "提到专项附加扣除与汇算时间".into()
                } else {
                    String::new()
                },
                points,
                tags: vec![tag.into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn exams_draw_papers_keep_time_score_exactly_are_marked_and_analysed(s: Suite) {
    use pb::{AttemptState as A, QuestionKind as Q};
    let c = course(&s, "IIT-EXAM", false).await;
    let mut bank = Vec::new();
    for i in 0..3 {
        bank.push(
            question(&s, Q::SingleChoice, "个税", &format!("综合所得税率第{i}题"), &["3%", "10%", "20%"], &[i % 3], 2)
                .await,
        );
    }
    for i in 0..2 {
        bank.push(question(&s, Q::TrueFalse, "礼仪", &format!("接听电话礼仪第{i}题"), &[], &[0], 1).await);
    }
    bank.push(question(&s, Q::ShortAnswer, "简答", "简述个税汇算清缴的要点", &[], &[], 5).await);
    assert_eq!(bank[3].options, vec!["正确".to_string(), "错误".to_string()]);
    // Bad questions are refused by field.
    let mut hr = s.training_as(Role::Hr);
    let bad = hr
        .add_question(pb::AddQuestionRequest {
            question: Some(pb::Question {
                kind: Q::SingleChoice as i32,
                stem: "x".into(),
                options: vec!["a".into(), "b".into()],
                correct: vec![0, 1],
                points: 0,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&bad),
        vec!["question.points".to_string(), "question.tags".to_string(), "question.correct".to_string()]
    );
    // The bank's answers are for managers and auditors only.
    let peek = s.training_as(Role::Agent).list_questions(pb::ListQuestionsRequest::default()).await.unwrap_err();
    assert_eq!(peek.code(), Code::PermissionDenied);

    let exam = |pools: Vec<(&str, i32)>| pb::CreateExamRequest {
        exam: Some(pb::Exam {
            course_id: c.id.clone(),
            title: "个税汇算结业考试".into(),
            pools: pools.into_iter().map(|(t, n)| pb::Pool { tag: t.into(), count: n }).collect(),
            time_limit_minutes: 30,
            max_attempts: 2,
            pass_mark: 60,
            ..Default::default()
        }),
    };
    let short = hr.create_exam(exam(vec![("个税", 4)])).await.unwrap_err();
    assert_eq!(violations(&short), vec!["exam.pools[0].count".to_string()]);
    let ex = hr.create_exam(exam(vec![("个税", 2), ("礼仪", 1), ("简答", 1)])).await.unwrap().into_inner();
    let taker = |n: &str| s.training_with_token(Some(&s.token_for(n, Role::Agent)));
    // The final exam is for those who completed the course.
    let early = taker("agent-1").start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    let keeper =
        s.training_as(Role::Supervisor).start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await;
    assert_eq!(keeper.unwrap_err().code(), Code::PermissionDenied, "who keeps the bank does not sit its exams");
    let now = {
        use kefu_sla::Clock;
        s.clock.now_ms()
    };
    let start = now + 86_400_000;
    let ses = hr.schedule_session(session(&c.id, start, 10, 0, 0, "")).await.unwrap().into_inner();
    let mut enrolled = Vec::new();
    for who in ["agent-1", "agent-2"] {
        let e = hr.enrol(pb::EnrolRequest { session_id: ses.id.clone(), staff_id: who.into() }).await.unwrap();
        enrolled.push(e.into_inner());
    }
    s.clock.set(start);
    for e in &enrolled {
        hr.check_in(pb::CheckInRequest { id: e.id.clone() }).await.unwrap();
    }
    s.clock.set(start + 4 * 3_600_000);
    hr.complete_session(pb::CompleteSessionRequest { id: ses.id.clone() }).await.unwrap();

    // agent-1's paper: four questions drawn, ten points, no answers shown.
    let a1 =
        taker("agent-1").start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await.unwrap().into_inner();
    assert_eq!((a1.items.len(), a1.points_total, a1.number, a1.state), (4, 10, 1, A::InProgress as i32));
    assert!(a1.items.iter().all(|i| i.correct.is_empty()), "no answers on an open paper");
    assert_eq!(a1.deadline.as_ref().unwrap().seconds - a1.start_time.as_ref().unwrap().seconds, 30 * 60);
    let again = taker("agent-1").start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await.unwrap();
    assert_eq!(again.into_inner().id, a1.id, "one open attempt at a time");
    let key = |qid: &str| bank.iter().find(|q| q.id == qid).unwrap().correct.clone();
    let right: Vec<pb::Answer> = a1
        .items
        .iter()
        .map(|i| {
            if i.kind == Q::ShortAnswer as i32 {
                pb::Answer {
                    question_id: i.question_id.clone(),
                    text: "专项附加扣除；次年3月至6月办理".into(),
                    ..Default::default()
                }
            } else {
                pb::Answer { question_id: i.question_id.clone(), chosen: key(&i.question_id), ..Default::default() }
            }
        })
        .collect();
    // An answer to a question not on the paper: refused, nothing kept.
    let not_on_paper = bank.iter().find(|q| !a1.items.iter().any(|i| i.question_id == q.id)).unwrap();
    let mut stray = right.clone();
    stray.push(pb::Answer { question_id: not_on_paper.id.clone(), chosen: vec![0], ..Default::default() });
    let err = taker("agent-1")
        .submit_attempt(pb::SubmitAttemptRequest { id: a1.id.clone(), answers: stray })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec![format!("answers[{}].question_id", right.len())]);
    let still = taker("agent-1").get_attempt(pb::GetAttemptRequest { id: a1.id.clone() }).await.unwrap().into_inner();
    assert_eq!(still.state, A::InProgress as i32);
    let sub = taker("agent-1")
        .submit_attempt(pb::SubmitAttemptRequest { id: a1.id.clone(), answers: right.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sub.state, A::AwaitingMarking as i32, "the short answer waits for a marker");
    let twice = taker("agent-1")
        .submit_attempt(pb::SubmitAttemptRequest { id: a1.id.clone(), answers: right })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    // Marking: not by the taker, not by an agent who does not train the course; 4 of 5.
    let short_q = a1.items.iter().find(|i| i.kind == Q::ShortAnswer as i32).unwrap().question_id.clone();
    let mark = |points: i32| pb::MarkAnswerRequest { id: a1.id.clone(), question_id: short_q.clone(), points };
    assert_eq!(taker("agent-1").mark_answer(mark(5)).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(taker("agent-5").mark_answer(mark(5)).await.unwrap_err().code(), Code::NotFound);
    let over = s.training_as(Role::Supervisor).mark_answer(mark(6)).await.unwrap_err();
    assert_eq!(violations(&over), vec!["points".to_string()]);
    // The trainer of the session agent-1 attended marks it.
    let scored = taker("agent-trainer").mark_answer(mark(4)).await.unwrap().into_inner();
    assert_eq!(scored.items.iter().find(|i| i.question_id == short_q).unwrap().marked_by, "agent-trainer");
    assert_eq!((scored.state, scored.points_awarded, scored.passed), (A::Scored as i32, 9, true));
    assert!((scored.score - 90.0).abs() < 1e-9);
    assert!(scored.items.iter().all(|i| !i.correct.is_empty() || i.kind == Q::ShortAnswer as i32));

    // agent-2 runs out of time, then retakes and fails; no third attempt.
    let a2 =
        taker("agent-2").start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await.unwrap().into_inner();
    s.clock.advance(chrono::Duration::minutes(31));
    let late = taker("agent-2").submit_attempt(pb::SubmitAttemptRequest { id: a2.id.clone(), answers: vec![] }).await;
    let late = late.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(late.message().contains("time allowed ran out"), "{}", late.message());
    let expired = taker("agent-2").get_attempt(pb::GetAttemptRequest { id: a2.id.clone() }).await.unwrap().into_inner();
    assert_eq!((expired.state, expired.points_awarded), (A::Expired as i32, 0));
    assert!(expired.items.iter().all(|i| i.correct.is_empty()), "no key while a retake remains");
    let retake =
        taker("agent-2").start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await.unwrap().into_inner();
    assert_eq!(retake.number, 2);
    let wrong: Vec<pb::Answer> = retake
        .items
        .iter()
        .filter(|i| i.kind != Q::ShortAnswer as i32)
        .map(|i| {
            let k = key(&i.question_id)[0];
            pb::Answer { question_id: i.question_id.clone(), chosen: vec![(k + 1) % 2], ..Default::default() }
        })
        .collect();
    let failed = taker("agent-2")
        .submit_attempt(pb::SubmitAttemptRequest { id: retake.id.clone(), answers: wrong })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((failed.state, failed.passed), (A::Scored as i32, false), "a blank short answer needs no marker");
    assert_eq!(failed.points_awarded, 0, "{failed:?}");
    assert!(failed.items.iter().any(|i| !i.correct.is_empty()), "the key once no attempt is left");
    let third = taker("agent-2").start_attempt(pb::StartAttemptRequest { exam_id: ex.id.clone() }).await.unwrap_err();
    assert_eq!(third.code(), Code::FailedPrecondition);
    // Others' attempts are not found for agents.
    let peek = taker("agent-2").get_attempt(pb::GetAttemptRequest { id: a1.id.clone() }).await.unwrap_err();
    assert_eq!(peek.code(), Code::NotFound);

    // Item analysis of the two scored attempts; agent-1's figures.
    let ia = s
        .training_as(Role::Auditor)
        .get_item_analysis(pb::GetItemAnalysisRequest { exam_id: ex.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ia.attempts_scored, 2);
    assert!((ia.pass_rate - 0.5).abs() < 1e-12);
    let expected_avg = (90.0 + domain_percent(failed.points_awarded, failed.points_total)) / 2.0;
    assert!((ia.average_score - expected_avg).abs() < 1e-9, "{ia:?}");
    assert!(!ia.items.is_empty());
    assert!(ia.items.iter().all(|i| (0.0..=1.0).contains(&i.difficulty) && (-1.0..=1.0).contains(&i.discrimination)));
    let st = s
        .training_as(Role::Service)
        .get_staff_training_stats(pb::GetStaffTrainingStatsRequest {
            staff_id: "agent-1".into(),
            from_date: "2026-01-01".into(),
            to_date: "2026-12-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.exams_taken, 1);
    assert!((st.average_exam_score - 90.0).abs() < 1e-9);
}

fn domain_percent(awarded: i32, total: i32) -> f64 {
    f64::from(awarded) * 100.0 / f64::from(total)
}

async fn enrolments_hold_under_concurrency_and_stop_changing_when_the_session_starts(s: Suite) {
    let c = course(&s, "ETQ-RACE", true).await;
    let now = {
        use kefu_sla::Clock;
        s.clock.now_ms()
    };
    let start = now + 2 * 86_400_000;
    let mut hr = s.training_as(Role::Hr);
    let ses = hr.schedule_session(session(&c.id, start, 1, 1, 0, "")).await.unwrap().into_inner();
    // Four assignments at once for one seat and one waitlist place.
    let tries = (1..=4).map(|i| {
        let mut hr = s.training_as(Role::Hr);
        let sid = ses.id.clone();
        async move { hr.enrol(pb::EnrolRequest { session_id: sid, staff_id: format!("agent-{i}") }).await }
    });
    let results = futures::future::join_all(tries).await;
    let states: Vec<i32> = results.iter().filter_map(|r| r.as_ref().ok().map(|e| e.get_ref().state)).collect();
    let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.code() == Code::FailedPrecondition)).count();
    assert_eq!(states.iter().filter(|s| **s == E::Enrolled as i32).count(), 1, "{results:?}");
    assert_eq!(states.iter().filter(|s| **s == E::Waitlisted as i32).count(), 1, "{results:?}");
    assert_eq!(refused, 2, "{results:?}");
    let got = hr.get_session(pb::GetSessionRequest { id: ses.id.clone() }).await.unwrap().into_inner();
    assert_eq!((got.enrolled, got.waitlisted), (1, 1));

    // The trainer does not enrol in their own session; another agent's
    // enrolment is not found for withdrawal.
    let trainer = s.training_with_token(Some(&s.token_for("agent-trainer", Role::Agent)));
    let own = trainer.clone().enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() }).await;
    assert_eq!(violations(&own.unwrap_err()), vec!["staff_id".to_string()]);
    let seated =
        results.iter().find_map(|r| r.as_ref().ok().filter(|e| e.get_ref().state == E::Enrolled as i32)).unwrap();
    let other = s
        .training_with_token(Some(&s.token_for("agent-9", Role::Agent)))
        .withdraw_enrolment(pb::WithdrawEnrolmentRequest { id: seated.get_ref().id.clone() })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);

    // A self-enrolment approved later waits behind those already waiting.
    let ses2 = hr.schedule_session(session(&c.id, start, 1, 5, 0, "")).await.unwrap().into_inner();
    let asker = s.training_with_token(Some(&s.token_for("agent-7", Role::Agent)));
    let pending = asker.clone().enrol(pb::EnrolRequest { session_id: ses2.id.clone(), ..Default::default() }).await;
    let pending = pending.unwrap().into_inner();
    for who in ["agent-5", "agent-6"] {
        hr.enrol(pb::EnrolRequest { session_id: ses2.id.clone(), staff_id: who.into() }).await.unwrap();
    }
    s.clock.advance(chrono::Duration::minutes(5));
    let approved =
        hr.approve_enrolment(pb::ApproveEnrolmentRequest { id: pending.id.clone() }).await.unwrap().into_inner();
    assert_eq!((approved.state, approved.waitlist_position), (E::Waitlisted as i32, 2));

    // Once the session starts: no enrolling, withdrawing or cancelling; it
    // is completed only once it has ended.
    s.clock.set(start + 60_000);
    let late = hr.enrol(pb::EnrolRequest { session_id: ses.id.clone(), staff_id: "agent-8".into() }).await.unwrap_err();
    assert!(late.message().contains("has started"), "{}", late.message());
    let wd = s
        .training_as(Role::Hr)
        .withdraw_enrolment(pb::WithdrawEnrolmentRequest { id: seated.get_ref().id.clone() })
        .await
        .unwrap_err();
    assert_eq!(wd.code(), Code::FailedPrecondition);
    let cancel = hr.cancel_session(pb::CancelSessionRequest { id: ses.id.clone(), reason: "太晚了".into() }).await;
    assert_eq!(cancel.unwrap_err().code(), Code::FailedPrecondition);
    let early = trainer.clone().complete_session(pb::CompleteSessionRequest { id: ses.id.clone() }).await.unwrap_err();
    assert!(early.message().contains("not ended"), "{}", early.message());
    // Another agent does not complete a session they do not train.
    s.clock.set(start + 4 * 3_600_000);
    let stranger = s
        .training_with_token(Some(&s.token_for("agent-9", Role::Agent)))
        .complete_session(pb::CompleteSessionRequest { id: ses.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let done = trainer.clone().complete_session(pb::CompleteSessionRequest { id: ses.id.clone() }).await.unwrap();
    assert_eq!(done.into_inner().state, pb::SessionState::Completed as i32);
    let roster = hr
        .list_enrolments(pb::ListEnrolmentsRequest { session_id: ses.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .enrolments;
    let absent = roster.iter().filter(|e| e.state == E::Absent as i32).count();
    let cancelled = roster.iter().filter(|e| e.state == E::Cancelled as i32).count();
    assert_eq!((absent, cancelled), (1, 1), "the seated one did not check in; the waiting one never got a seat");
}

/// A ticket agent-1 handles at the suite clock's time: solved and rated.
async fn handled_ticket(s: &Suite, customer: &str, rating: i32) {
    let mut agent = s.tickets_with_token(Some(&s.token_for("agent-1", Role::Agent)));
    let t = agent
        .create_ticket(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                kind: tpb::TicketKind::Consultation as i32,
                channel: Channel::Phone as i32,
                subject: "个税专项附加扣除咨询".into(),
                customer_id: customer.into(),
                assignee: "agent-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    agent
        .add_message(tpb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: tpb::MessageKind::PublicReply as i32,
            body: "您好，已为您核对".into(),
        })
        .await
        .unwrap();
    agent
        .change_status(tpb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: tpb::Status::Solved as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    s.tickets_as(Role::Service)
        .rate_ticket(tpb::RateTicketRequest { ticket_id: t.id, rating, comment: String::new() })
        .await
        .unwrap();
}

async fn the_course_report_shows_all_four_levels_with_the_trainees_ticket_figures(s: Suite) {
    use pb::QuestionKind as Q;
    let c = course(&s, "IIT-KP", false).await;
    let q = question(&s, Q::TrueFalse, "柯氏", "专项附加扣除可在汇算时补报", &[], &[0], 10).await;
    let mut hr = s.training_as(Role::Hr);
    let exam = |pre: bool| pb::CreateExamRequest {
        exam: Some(pb::Exam {
            course_id: c.id.clone(),
            title: if pre { "课前测试".into() } else { "结业考试".into() },
            pools: vec![pb::Pool { tag: "柯氏".into(), count: 1 }],
            time_limit_minutes: 10,
            max_attempts: 3,
            pass_mark: 60,
            pre_test: pre,
            ..Default::default()
        }),
    };
    let pre = hr.create_exam(exam(true)).await.unwrap().into_inner();
    let fin = hr.create_exam(exam(false)).await.unwrap().into_inner();
    let start = beijing(2026, 3, 10, 9, 0);
    let ses = hr.schedule_session(session(&c.id, start, 5, 0, 0, "")).await.unwrap().into_inner();
    let agent = |n: &str| s.training_with_token(Some(&s.token_for(n, Role::Agent)));
    let mut enrolments = Vec::new();
    for n in ["agent-1", "agent-2"] {
        let e = agent(n).enrol(pb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() }).await.unwrap();
        enrolments.push(e.into_inner());
    }
    let customer = s.customer("柯氏评估客户", 880, cpb::ServiceTier::Standard).await;
    let take = |exam_id: String, chosen: i32| {
        let mut a = agent("agent-1");
        let qid = q.id.clone();
        async move {
            let at = a.start_attempt(pb::StartAttemptRequest { exam_id }).await.unwrap().into_inner();
            a.submit_attempt(pb::SubmitAttemptRequest {
                id: at.id,
                answers: vec![pb::Answer { question_id: qid, chosen: vec![chosen], ..Default::default() }],
            })
            .await
            .unwrap()
            .into_inner()
        }
    };

    // Before: agent-1 gets the pre-test wrong and handles a ticket rated 2.
    s.clock.set(beijing(2026, 3, 4, 10, 0));
    assert_eq!(take(pre.id.clone(), 1).await.score, 0.0);
    handled_ticket(&s, &customer, 2).await;
    let not_yet = agent("agent-1").start_attempt(pb::StartAttemptRequest { exam_id: fin.id.clone() }).await;
    assert_eq!(not_yet.unwrap_err().code(), Code::FailedPrecondition, "the final exam follows the course");
    // The session: both attend; the trainer completes it.
    s.clock.set(start - 10 * 60_000);
    for e in &enrolments {
        agent("agent-trainer").check_in(pb::CheckInRequest { id: e.id.clone() }).await.unwrap();
    }
    s.clock.set(start + 4 * 3_600_000);
    agent("agent-trainer").complete_session(pb::CompleteSessionRequest { id: ses.id.clone() }).await.unwrap();
    // Reaction, once; the final exam passed.
    let reaction = |overall: i32| pb::SubmitReactionRequest {
        reaction: Some(pb::Reaction {
            enrolment_id: enrolments[0].id.clone(),
            relevance: 5,
            trainer: 4,
            materials: 3,
            overall,
            comment: "案例很实用".into(),
            ..Default::default()
        }),
    };
    agent("agent-1").submit_reaction(reaction(4)).await.unwrap();
    let again = agent("agent-1").submit_reaction(reaction(5)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let not_theirs = agent("agent-2").submit_reaction(reaction(1)).await.unwrap_err();
    assert_eq!(not_theirs.code(), Code::NotFound);
    assert_eq!(take(fin.id.clone(), 0).await.score, 100.0);
    // After: a ticket rated 5.
    s.clock.set(beijing(2026, 3, 12, 10, 0));
    handled_ticket(&s, &customer, 5).await;

    // Behaviour: observed 36 days after, by a supervisor (not too early, once).
    s.clock.set(beijing(2026, 4, 15, 10, 0));
    let observe = |on: &str| pb::RecordObservationRequest {
        observation: Some(pb::Observation {
            enrolment_id: enrolments[0].id.clone(),
            observed_on: on.into(),
            rating: 4,
            notes: "来电解答时能主动提示专项附加扣除".into(),
            ..Default::default()
        }),
    };
    let mut sup = s.training_as(Role::Supervisor);
    let early = sup.record_observation(observe("2026-03-20")).await.unwrap_err();
    assert_eq!(violations(&early), vec!["observation.observed_on".to_string()]);
    let o = sup.record_observation(observe("2026-04-15")).await.unwrap().into_inner();
    assert_eq!((o.days_after, o.staff_id.as_str(), o.observer.as_str()), (36, "agent-1", "supervisor-1"));
    assert_eq!(sup.record_observation(observe("2026-04-15")).await.unwrap_err().code(), Code::FailedPrecondition);

    let withheld = s
        .training_as(Role::Auditor)
        .get_course_report(pb::GetCourseReportRequest { course_id: "iit-kp".into(), window_days: 7 })
        .await
        .unwrap()
        .into_inner();
    assert!(withheld.figures_unavailable.contains("fewer than 3"), "{withheld:?}");
    assert!(withheld.results.unwrap().before.is_none());
    let report = s
        .training_as(Role::Hr)
        .get_course_report(pb::GetCourseReportRequest { course_id: "iit-kp".into(), window_days: 7 })
        .await
        .unwrap()
        .into_inner();
    assert!(report.figures_unavailable.is_empty(), "{report:?}");
    assert_eq!(report.completions, 2);
    let r = report.reaction.unwrap();
    assert_eq!((r.responses, r.average_overall, r.average_materials), (1, 4.0, 3.0));
    let l = report.learning.unwrap();
    assert_eq!((l.people_compared, l.pre_test_average, l.final_average, l.gain), (1, 0.0, 100.0, 100.0));
    assert_eq!(l.pass_rate, 0.5, "one of the two who completed the course passed the final");
    let b = report.behaviour.unwrap();
    assert_eq!((b.observations, b.average_rating, b.trainees), (1, 4.0, 2));
    let res = report.results.unwrap();
    let (before, after) = (res.before.unwrap(), res.after.unwrap());
    assert_eq!((before.tickets_handled, before.ratings, before.csat), (1, 1, 0.0), "{before:?}");
    assert_eq!((after.tickets_handled, after.ratings, after.csat), (1, 1, 100.0), "{after:?}");
    assert_eq!(after.complaints_per_100_tickets, 0.0);
    let bad = s
        .training_as(Role::Hr)
        .get_course_report(pb::GetCourseReportRequest { course_id: c.id.clone(), window_days: 3 })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), vec!["window_days".to_string()]);
}

async fn a_career_path_computes_eligibility_from_training_records(s: Suite) {
    let c = course(&s, "ETQ-C", false).await;
    let mut hr = s.training_as(Role::Hr);
    let level =
        |code: &str, name: &str, rank: i32, courses: Vec<String>, certs: Vec<&str>, months: i32, grade: &str| {
            pb::DefineLevelRequest {
                level: Some(pb::Level {
                    path: "客服序列".into(),
                    code: code.into(),
                    name: name.into(),
                    rank,
                    courses,
                    certificates: certs.into_iter().map(str::to_owned).collect(),
                    months_in_level: months,
                    min_performance_grade: grade.into(),
                    ..Default::default()
                }),
            }
        };
    // Bad levels: requirements on the entry level, an unknown course.
    let bad = hr.define_level(level("CS-0", "见习", 1, vec![], vec!["税务师"], 0, "")).await.unwrap_err();
    assert_eq!(violations(&bad), vec!["level.rank".to_string()]);
    let unknown = hr.define_level(level("CS-9", "x", 5, vec!["NOPE-1".into()], vec![], 0, "")).await.unwrap_err();
    assert_eq!(violations(&unknown), vec!["level.courses[0]".to_string()]);
    hr.define_level(level("CS-1", "客服专员", 1, vec![], vec![], 0, "")).await.unwrap();
    let cs2 = level("CS-2", "高级客服专员", 2, vec!["etq-c".into()], vec!["初级会计职称"], 12, "");
    let l2 = hr.define_level(cs2.clone()).await.unwrap().into_inner();
    assert_eq!(l2.courses, vec![c.id.clone()], "courses are kept by id");
    assert_eq!(hr.define_level(cs2).await.unwrap().into_inner().id, l2.id, "the same level again is the level");
    hr.define_level(level("CS-3", "客服主管", 3, vec![], vec![], 12, "B")).await.unwrap();
    let taken = hr.define_level(level("CS-X", "另一个", 2, vec![], vec![], 0, "")).await.unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "rank 2 of the path is taken");

    // agent-1 a specialist for 14 months, agent-2 for 3.
    let set = |staff: &str, lvl: &str, since: &str| pb::SetStaffLevelRequest {
        staff_id: staff.into(),
        level: lvl.into(),
        since: since.into(),
    };
    let p1 = hr.set_staff_level(set("agent-1", "CS-1", "2025-01-01")).await.unwrap().into_inner();
    assert!(!p1.eligible);
    let missing: Vec<i32> = p1.requirements.iter().filter(|r| !r.met).map(|r| r.kind).collect();
    assert_eq!(missing, vec![pb::RequirementKind::Course as i32, pb::RequirementKind::Certificate as i32]);
    hr.set_staff_level(set("agent-2", "CS-1", "2025-12-01")).await.unwrap();
    let future = hr.set_staff_level(set("agent-2", "CS-1", "2027-01-01")).await.unwrap_err();
    assert_eq!(violations(&future), vec!["since".to_string()]);

    // agent-1 completes the course and holds the certificate: newly eligible.
    let now = {
        use kefu_sla::Clock;
        s.clock.now_ms()
    };
    let start = now + 86_400_000;
    let ses = hr.schedule_session(session(&c.id, start, 5, 0, 0, "")).await.unwrap().into_inner();
    let mut enrolled = Vec::new();
    for staff in ["agent-1", "agent-2"] {
        let e = hr.enrol(pb::EnrolRequest { session_id: ses.id.clone(), staff_id: staff.into() }).await.unwrap();
        enrolled.push(e.into_inner());
    }
    s.clock.set(start);
    for e in &enrolled {
        hr.check_in(pb::CheckInRequest { id: e.id.clone() }).await.unwrap();
    }
    s.clock.set(start + 4 * 3_600_000);
    hr.complete_session(pb::CompleteSessionRequest { id: ses.id.clone() }).await.unwrap();
    for staff in ["agent-1", "agent-2"] {
        hr.record_certificate(pb::RecordCertificateRequest {
            certificate: Some(pb::Certificate {
                staff_id: staff.into(),
                name: "初级会计职称".into(),
                kind: pb::CertificateKind::Professional as i32,
                number: format!("CJ-{staff}"),
                issuer: "财政部".into(),
                issue_date: "2024-05-20".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    }
    let mine = s
        .training_with_token(Some(&s.token_for("agent-1", Role::Agent)))
        .get_career_progress(pb::GetCareerProgressRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(mine.eligible, "{mine:?}");
    assert_eq!((mine.level.unwrap().code.as_str(), mine.next.unwrap().code.as_str()), ("CS-1", "CS-2"));
    assert!(
        mine.requirements.iter().any(|r| r.detail == "在客服专员岗位已满 14 个月，要求 12 个月"),
        "{:?}",
        mine.requirements
    );
    let theirs = s
        .training_with_token(Some(&s.token_for("agent-1", Role::Agent)))
        .get_career_progress(pb::GetCareerProgressRequest { staff_id: "agent-2".into() })
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::PermissionDenied);
    // agent-2 has it all but the months: not eligible.
    let eligible = s.training_as(Role::Supervisor).list_eligible(pb::ListEligibleRequest::default()).await.unwrap();
    let who: Vec<String> = eligible.into_inner().people.into_iter().map(|p| p.staff_id).collect();
    assert_eq!(who, vec!["agent-1".to_string()]);
    // Promoted: the next step asks a grade kefu cannot confirm yet, so not eligible.
    let today = {
        use chrono::TimeZone;
        use kefu_sla::Clock;
        chrono_tz::Asia::Shanghai.timestamp_millis_opt(s.clock.now_ms()).unwrap().format("%Y-%m-%d").to_string()
    };
    let up = hr.set_staff_level(set("agent-1", "CS-2", &today)).await.unwrap().into_inner();
    assert_eq!(up.next.unwrap().code, "CS-3");
    assert!(!up.eligible);
    let grade = up.requirements.iter().find(|r| r.kind == pb::RequirementKind::PerformanceGrade as i32).unwrap();
    assert!(!grade.met && grade.what == "B", "{grade:?}");
}
