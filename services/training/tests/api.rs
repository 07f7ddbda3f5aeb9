//! The training API through a real client, on SQLite + memory and
//! PostgreSQL + Redis: HR's catalogue and 2027 plan approved by a
//! supervisor, a session charged to it within budget, three agents
//! enrolling (one waitlisted and moved up when a seat frees), attendance
//! once in its window, completion crediting hours, certificates with their
//! due list and continuing-education pace, the figures for performance
//! reviews, and bad input refused by name without changing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::training::v1::{self as pb, EnrolmentState as E};
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
    agent("agent-2")
        .withdraw_enrolment(pb::WithdrawEnrolmentRequest { id: enrolled[1].id.clone(), reason: "出差".into() })
        .await
        .unwrap();
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
    assert_eq!(soon.summary, "税务师（SW-2021-0001）将于 2026-04-15 到期，剩 44 天");
    // agent-2 needs 90 hours a year and has none by 2 March (day 61: 15.0 expected).
    let behind = due.iter().find(|r| r.kind == pb::ReminderKind::CeHoursBehind as i32).unwrap();
    assert_eq!((behind.staff_id.as_str(), behind.hours_required, behind.hours_earned), ("agent-2", 90.0, 0.0));
    assert!((behind.hours_expected - 90.0 * 61.0 / 365.0).abs() < 1e-9, "{behind:?}");
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
    assert_eq!((stats.certificates_held, stats.certificates_expired, stats.hours), (0, 1, 0.0));
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
    assert!(again.message().contains("已报名"), "{}", again.message());
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
