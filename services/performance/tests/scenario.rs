//! §5 end to end, on SQLite + memory and PostgreSQL + Redis, over gRPC and
//! the gateway's REST routes: HR defines a KPI scheme (weights that do not
//! sum to 100 % refused), opens the 2026-Q4 cycle for a team of four whose
//! tickets, complaints and training exist; the cycle closes (not before the
//! quarter ends) and snapshots everyone's figures; self-assessment → review
//! → HR calibration, where the forced distribution is refused and then met;
//! one appeal upheld; bonuses to the fen; a promotion recommendation; an
//! honour with its reason; the Excel export read back; a recompute showing
//! a later change; a finalised cycle refusing edits but taking a correction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1 as cpb,
    customers::v1 as kpb,
    performance::v1::{self as pb, Curve, EvaluationState as S, IndicatorGroup as G, Source},
    staff::v1 as spb,
    tickets::v1 as tpb,
    training::v1 as lpb,
};
use kefu_testkit::{Backend, Suite, SuiteOptions, violations};
use serde_json::Value;
use tonic::Code;

async fn spawn(backend: Backend) -> Option<Suite> {
    Suite::spawn_with(
        backend,
        SuiteOptions { start_ms: beijing(2026, 11, 2, 9, 0), gateway: Some(Box::new(|_| {})), ..Default::default() },
    )
    .await
}

kefu_testkit::on_both_backends!(spawn;
    a_quarter_is_evaluated_calibrated_appealed_paid_honoured_and_exported,
);

fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: ms / 1000, nanos: 0 })
}

const AGENTS: [&str; 4] = ["agent-a", "agent-b", "agent-c", "agent-d"];
const NAMES: [&str; 4] = ["王芳", "李娜", "张伟", "刘洋"];
const LEAD: &str = "lead-east";

async fn directory(s: &Suite) {
    let mut hr = s.staff_as(Role::Hr);
    let person = |id: &str, name: &str, position: &str, manager: &str| spb::CreatePersonRequest {
        person: Some(spb::Person {
            staff_id: id.into(),
            name: name.into(),
            position: position.into(),
            hire_date: "2024-03-01".into(),
            manager: manager.into(),
            ..Default::default()
        }),
    };
    hr.create_person(person(LEAD, "陈静", "客服主管", "")).await.unwrap();
    for (id, name) in AGENTS.iter().zip(NAMES) {
        hr.create_person(person(id, name, "客服专员", LEAD)).await.unwrap();
    }
    hr.create_team(spb::CreateTeamRequest {
        team: Some(spb::Team {
            code: "cs-east".into(),
            name: "华东客服组".into(),
            kind: spb::TeamKind::Team as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    for id in AGENTS.iter().chain([&LEAD]) {
        hr.set_membership(spb::SetMembershipRequest {
            team: "cs-east".into(),
            staff_id: (*id).into(),
            member: true,
            lead: *id == LEAD,
        })
        .await
        .unwrap();
    }
}

/// A consultation the agent answers once; solved and rated when asked.
async fn ticket(s: &Suite, agent: &str, customer: &str, solve: bool, rating: i32) {
    let mut t = s.tickets_with_token(Some(&s.token_for(agent, Role::Agent)));
    let created = t
        .create_ticket(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                kind: tpb::TicketKind::Consultation as i32,
                channel: Channel::Phone as i32,
                subject: "季度增值税申报咨询".into(),
                customer_id: customer.into(),
                assignee: agent.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    t.add_message(tpb::AddMessageRequest {
        ticket_id: created.id.clone(),
        kind: tpb::MessageKind::PublicReply as i32,
        body: "您好，已为您核对申报表".into(),
    })
    .await
    .unwrap();
    if !solve {
        return;
    }
    t.change_status(tpb::ChangeStatusRequest {
        ticket_id: created.id.clone(),
        status: tpb::Status::Solved as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    if rating > 0 {
        s.tickets_as(Role::Service)
            .rate_ticket(tpb::RateTicketRequest { ticket_id: created.id, rating, comment: String::new() })
            .await
            .unwrap();
    }
}

async fn complaint_about(s: &Suite, staff: &str, customer: &str) {
    s.complaints_as(Role::Supervisor)
        .record_complaint(cpb::RecordComplaintRequest {
            complaint: Some(cpb::Complaint {
                source: cpb::ComplaintSource::Customer as i32,
                channel: Channel::Phone as i32,
                customer_id: customer.into(),
                subject_kind: cpb::SubjectKind::Staff as i32,
                subject: staff.into(),
                category: "service_attitude".into(),
                severity: cpb::Severity::Low as i32,
                description: "来电时语气生硬。".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

/// A 3.5-hour course in November that agents a, b and c complete.
async fn training(s: &Suite) {
    let mut hr = s.training_as(Role::Hr);
    hr.create_course(lpb::CreateCourseRequest {
        course: Some(lpb::Course {
            code: "SVC-Q4".into(),
            title: "年末关账服务规范".into(),
            topic: lpb::Topic::TaxPolicy as i32,
            method: lpb::Method::Classroom as i32,
            hours: 3.5,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let start = beijing(2026, 11, 10, 9, 0);
    let ses = hr
        .schedule_session(lpb::ScheduleSessionRequest {
            session: Some(lpb::Session {
                course_id: "SVC-Q4".into(),
                start_time: ts(start),
                end_time: ts(start + 4 * 3_600_000),
                location: "总部 3 楼培训室".into(),
                trainer: "agent-trainer".into(),
                capacity: 5,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let trainer = || s.training_with_token(Some(&s.token_for("agent-trainer", Role::Agent)));
    let mut enrolments = Vec::new();
    for a in &AGENTS[..3] {
        let e = s
            .training_with_token(Some(&s.token_for(a, Role::Agent)))
            .enrol(lpb::EnrolRequest { session_id: ses.id.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        enrolments.push(e.id);
    }
    s.clock.set(start - 10 * 60_000);
    for id in enrolments {
        trainer().check_in(lpb::CheckInRequest { id }).await.unwrap();
    }
    s.clock.set(start + 5 * 3_600_000);
    trainer().complete_session(lpb::CompleteSessionRequest { id: ses.id }).await.unwrap();
    // A career path: 客服专员 → 高级客服专员 (grade A of the last review).
    let level = |code: &str, name: &str, rank: i32, grade: &str| lpb::DefineLevelRequest {
        level: Some(lpb::Level {
            path: "客服序列".into(),
            code: code.into(),
            name: name.into(),
            rank,
            min_performance_grade: grade.into(),
            ..Default::default()
        }),
    };
    hr.define_level(level("CS-1", "客服专员", 1, "")).await.unwrap();
    hr.define_level(level("CS-2", "高级客服专员", 2, "A")).await.unwrap();
    for a in AGENTS {
        hr.set_staff_level(lpb::SetStaffLevelRequest {
            staff_id: a.into(),
            level: "CS-1".into(),
            since: "2025-01-01".into(),
        })
        .await
        .unwrap();
    }
}

fn indicator(
    code: &str,
    name: &str,
    group: G,
    source: Source,
    curve: Curve,
    (floor, target): (f64, f64),
    weight: i32,
) -> pb::Indicator {
    pb::Indicator {
        code: code.into(),
        name: name.into(),
        group: group as i32,
        source: source as i32,
        curve: curve as i32,
        floor,
        target,
        weight,
        ..Default::default()
    }
}

fn scheme(capability_weight: i32) -> pb::DefineSchemeRequest {
    let mut hours =
        indicator("hours", "培训学时", G::Capability, Source::TrainingHours, Curve::Thresholds, (0.0, 0.0), 50);
    hours.thresholds =
        vec![pb::Threshold { at_least: 2.0, score: 60.0 }, pb::Threshold { at_least: 3.5, score: 100.0 }];
    pb::DefineSchemeRequest {
        scheme: Some(pb::Scheme {
            code: "cs_agent".into(),
            name: "客服专员绩效方案".into(),
            position: "客服专员".into(),
            groups: vec![
                pb::GroupWeight { group: G::ServiceQuality as i32, weight: 50 },
                pb::GroupWeight { group: G::Capability as i32, weight: capability_weight },
                pb::GroupWeight { group: G::Attitude as i32, weight: 30 },
            ],
            indicators: vec![
                indicator(
                    "csat",
                    "客户满意度",
                    G::ServiceQuality,
                    Source::TicketsCsat,
                    Curve::Linear,
                    (60.0, 100.0),
                    50,
                ),
                indicator(
                    "resolution",
                    "解决率",
                    G::ServiceQuality,
                    Source::TicketsResolutionRate,
                    Curve::Linear,
                    (50.0, 100.0),
                    50,
                ),
                hours,
                indicator("peer", "同事互评", G::Capability, Source::ManualPeerReview, Curve::Direct, (0.0, 0.0), 50),
                indicator(
                    "complaints",
                    "被投诉次数",
                    G::Attitude,
                    Source::ComplaintsReceived,
                    Curve::Inverse,
                    (2.0, 0.0),
                    50,
                ),
                indicator(
                    "rating",
                    "主管评分",
                    G::Attitude,
                    Source::ManualSupervisorRating,
                    Curve::Direct,
                    (0.0, 0.0),
                    50,
                ),
            ],
            ..Default::default()
        }),
    }
}

fn cycle(period: &str, staff_ids: Vec<String>) -> pb::OpenCycleRequest {
    let band = |grade: &str, min_score: f64, coefficient: i32, max_share: i32, min_share: i32| pb::GradeBand {
        grade: grade.into(),
        min_score,
        coefficient,
        max_share,
        min_share,
    };
    pb::OpenCycleRequest {
        cycle: Some(pb::Cycle {
            kind: pb::PeriodKind::Quarter as i32,
            period: period.into(),
            team: "cs-east".into(),
            staff_ids,
            grades: vec![
                band("A", 90.0, 150, 20, 0),
                band("B", 75.0, 115, 0, 0),
                band("C", 60.0, 60, 0, 20),
                band("D", 0.0, 0, 0, 0),
            ],
            bonus_base_fen: 800_000,
            bonus_base_overrides: [("agent-c".to_owned(), 666_667)].into(),
            honours: vec![pb::HonourRule {
                name: "季度服务之星".into(),
                top: 1,
                min_grade: "A".into(),
                min_score: 85.0,
            }],
            ..Default::default()
        }),
    }
}

fn find<'a>(list: &'a [pb::Evaluation], staff: &str) -> &'a pb::Evaluation {
    list.iter().find(|e| e.staff_id == staff).unwrap()
}

fn value(e: &pb::Evaluation, code: &str) -> f64 {
    e.indicators.iter().find(|i| i.code == code).unwrap().value
}

/// What the scheme makes of an evaluation's figures, by hand.
fn expected_total(csat: f64, resolution: f64, hours: f64, peer: f64, complaints: f64, rating: f64) -> f64 {
    let lin = |x: f64, f: f64, t: f64| ((x - f) / (t - f) * 100.0).clamp(0.0, 100.0);
    let hours_score = if hours >= 3.5 {
        100.0
    } else if hours >= 2.0 {
        60.0
    } else {
        0.0
    };
    let quality = 0.5 * lin(csat, 60.0, 100.0) + 0.5 * lin(resolution, 50.0, 100.0);
    let capability = 0.5 * hours_score + 0.5 * peer;
    let attitude = 0.5 * ((2.0 - complaints) / 2.0 * 100.0).clamp(0.0, 100.0) + 0.5 * rating;
    ((0.5 * quality + 0.2 * capability + 0.3 * attitude) * 100.0).round() / 100.0
}

async fn rest(s: &Suite, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let base = &s.gateway.as_ref().unwrap().base;
    let mut rb = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn cell(sheet: &calamine::Range<Data>, row: usize, col: usize) -> String {
    sheet.get((row, col)).map(|d| d.to_string()).unwrap_or_default()
}

async fn a_quarter_is_evaluated_calibrated_appealed_paid_honoured_and_exported(s: Suite) {
    directory(&s).await;
    let customer = s.customer("上海某某贸易有限公司", 515, kpb::ServiceTier::Standard).await;
    // Q4 work: a answers four (rated 5, 5, 5, 4); b three (5, 4, 3); c two
    // (4, 4); d three, two solved (rated 2, 1) and one open.
    for r in [5, 5, 5, 4] {
        ticket(&s, "agent-a", &customer, true, r).await;
    }
    for r in [5, 4, 3] {
        ticket(&s, "agent-b", &customer, true, r).await;
    }
    for r in [4, 4] {
        ticket(&s, "agent-c", &customer, true, r).await;
    }
    for (solve, r) in [(true, 2), (true, 1), (false, 0)] {
        ticket(&s, "agent-d", &customer, solve, r).await;
    }
    complaint_about(&s, "agent-d", &customer).await;
    training(&s).await;

    // HR's scheme: weights that do not sum to 100 % are refused, nothing kept.
    let hr_token = s.token_for("hr-1", Role::Hr);
    let mut hr = s.performance_with_token(Some(&hr_token));
    let bad = hr.define_scheme(scheme(30)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("sum to 110%"), "{}", bad.message());
    assert!(hr.list_schemes(pb::ListSchemesRequest {}).await.unwrap().into_inner().schemes.is_empty());
    let defined = hr.define_scheme(scheme(20)).await.unwrap().into_inner();
    assert_eq!((defined.version, defined.indicators.len()), (1, 6));
    let again = hr.define_scheme(scheme(20)).await.unwrap().into_inner();
    assert_eq!(again.version, 1, "the same definition again is the same version");
    let denied = s.performance_as(Role::Agent).define_scheme(scheme(20)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Someone not in the directory cannot be evaluated; nothing is opened.
    let ghost = hr.open_cycle(cycle("2026-Q3", vec!["agent-c".into(), "ghost-9".into()])).await.unwrap_err();
    assert_eq!(violations(&ghost), vec!["cycle.staff_ids[1]".to_string()], "{}", ghost.message());
    assert!(ghost.message().contains("ghost-9 is not in the staff directory"), "{}", ghost.message());
    let opened = hr.open_cycle(cycle("2026-Q4", vec![])).await.unwrap().into_inner();
    assert_eq!(
        (opened.evaluations, opened.from_date.as_str(), opened.to_date.as_str()),
        (4, "2026-10-01", "2026-12-31")
    );
    assert_eq!(opened.state, pb::CycleState::Open as i32);
    let retry = hr.open_cycle(cycle("2026-Q4", vec![])).await.unwrap().into_inner();
    assert_eq!(retry.id, opened.id, "an identical retry is the same cycle");
    // Pay is HR's: an agent reads the cycle without anyone's bonus base.
    assert_eq!(opened.bonus_base_overrides.get("agent-c"), Some(&666_667));
    let seen = s
        .performance_for("agent-a", Role::Agent)
        .get_cycle(pb::GetCycleRequest { id: opened.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(seen.bonus_base_overrides.is_empty() && seen.bonus_base_fen == 0, "{seen:?}");
    let cycles = hr.list_cycles(pb::ListCyclesRequest::default()).await.unwrap().into_inner().cycles;
    assert_eq!(cycles.len(), 1, "the refused Q3 cycle left nothing");

    // Not before the quarter ends.
    let early = hr.close_cycle(pb::CloseCycleRequest { id: opened.id.clone() }).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("runs until 2026-12-31"), "{}", early.message());
    s.clock.set(beijing(2027, 1, 4, 9, 0));
    let closed = hr.close_cycle(pb::CloseCycleRequest { id: opened.id.clone() }).await.unwrap().into_inner();
    assert_eq!(closed.state, pb::CycleState::Review as i32);
    let again = hr.close_cycle(pb::CloseCycleRequest { id: opened.id.clone() }).await.unwrap().into_inner();
    assert_eq!(again.close_time, closed.close_time, "closing again changes nothing");

    // The snapshot: each person's figures from tickets, complaints, training.
    let list = |token: String| {
        let s = &s;
        let id = opened.id.clone();
        async move {
            s.performance_with_token(Some(&token))
                .list_evaluations(pb::ListEvaluationsRequest { cycle_id: id })
                .await
                .unwrap()
                .into_inner()
                .evaluations
        }
    };
    let all = list(hr_token.clone()).await;
    assert_eq!(all.len(), 4);
    let a = find(&all, "agent-a");
    assert_eq!(a.state, S::SelfAssessment as i32);
    assert_eq!(
        (value(a, "csat"), value(a, "resolution"), value(a, "hours"), value(a, "complaints")),
        (100.0, 100.0, 3.5, 0.0)
    );
    let b = find(&all, "agent-b");
    assert_eq!((value(b, "csat"), value(b, "hours")), (66.67, 3.5));
    let d = find(&all, "agent-d");
    assert_eq!(
        (value(d, "csat"), value(d, "resolution"), value(d, "hours"), value(d, "complaints")),
        (0.0, 66.67, 0.0, 1.0)
    );
    assert!(a.due_time.is_some() && !a.overdue);
    assert!(a.indicators.iter().any(|i| i.explanation.contains("客户满意度：100%")), "{:?}", a.indicators);
    assert_eq!(a.display_name, "王芳");
    assert_eq!(a.reviewers, vec![LEAD.to_string()]);

    // A person sees only their own evaluation; their lead the team's.
    let as_agent = |id: &str| s.performance_with_token(Some(&s.token_for(id, Role::Agent)));
    assert_eq!(list(s.token_for("agent-b", Role::Agent)).await.len(), 1);
    let hidden = as_agent("agent-b").get_evaluation(pb::GetEvaluationRequest { id: a.id.clone() }).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(list(s.token_for(LEAD, Role::Supervisor)).await.len(), 4);
    assert_eq!(list(s.token_for("supervisor-9", Role::Supervisor)).await.len(), 0, "not their team");

    // Self-assessment: out of order and out of scale refused.
    let ack_early = as_agent("agent-a").acknowledge(pb::AcknowledgeRequest { evaluation_id: a.id.clone() }).await;
    assert_eq!(ack_early.unwrap_err().code(), Code::FailedPrecondition);
    let score = |indicator: &str, score: f64| pb::ManualScore { indicator: indicator.into(), score };
    let out_of_scale = as_agent("agent-a")
        .submit_self_assessment(pb::SubmitSelfAssessmentRequest {
            evaluation_id: a.id.clone(),
            comment: "本季度完成汇算咨询".into(),
            scores: vec![score("peer", 120.0)],
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&out_of_scale), vec!["scores[0].score".to_string()]);
    let review_first = s
        .performance_with_token(Some(&s.token_for(LEAD, Role::Supervisor)))
        .submit_review(pb::SubmitReviewRequest {
            evaluation_id: a.id.clone(),
            comment: "好".into(),
            scores: vec![score("peer", 90.0), score("rating", 90.0)],
        })
        .await
        .unwrap_err();
    assert_eq!(review_first.code(), Code::FailedPrecondition, "{}", review_first.message());
    for e in &all {
        let comment = if e.staff_id == "agent-a" {
            "=HYPERLINK(\"http://evil.example\",\"点我\")".into()
        } else {
            "按时完成本季度工作".into()
        };
        let r = as_agent(&e.staff_id)
            .submit_self_assessment(pb::SubmitSelfAssessmentRequest {
                evaluation_id: e.id.clone(),
                comment,
                scores: vec![score("rating", 90.0)],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.state, S::Review as i32);
    }

    // The lead reviews: a and c both earn A (b's low satisfaction costs her).
    let manual = [("agent-a", 95.0, 96.0), ("agent-b", 92.0, 94.0), ("agent-c", 80.0, 82.0), ("agent-d", 40.0, 45.0)];
    let mut lead = s.performance_with_token(Some(&s.token_for(LEAD, Role::Supervisor)));
    for (id, peer, rating) in manual {
        let e = find(&all, id);
        let r = lead
            .submit_review(pb::SubmitReviewRequest {
                evaluation_id: e.id.clone(),
                comment: "季度表现如实评价".into(),
                scores: vec![score("peer", peer), score("rating", rating)],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.state, S::Calibration as i32);
    }
    let reviewed = list(hr_token.clone()).await;
    let totals: Vec<(String, f64, String)> =
        reviewed.iter().map(|e| (e.staff_id.clone(), e.total_score, e.grade.clone())).collect();
    let want = [
        ("agent-a", expected_total(100.0, 100.0, 3.5, 95.0, 0.0, 96.0), "A"),
        ("agent-b", expected_total(66.67, 100.0, 3.5, 92.0, 0.0, 94.0), "B"),
        ("agent-c", expected_total(100.0, 100.0, 3.5, 80.0, 0.0, 82.0), "A"),
        ("agent-d", expected_total(0.0, 66.67, 0.0, 40.0, 1.0, 45.0), "D"),
    ];
    for ((id, total, grade), (gid, gt, gg)) in want.iter().zip(&totals) {
        assert_eq!((*id, *total, *grade), (gid.as_str(), *gt, gg.as_str()), "{totals:?}");
    }

    // Calibration: two A's break "A ≤ 20 %" (1 of 4); refused, nothing changes.
    let violated = hr.close_calibration(pb::CloseCalibrationRequest { id: opened.id.clone() }).await.unwrap_err();
    assert_eq!(violated.code(), Code::FailedPrecondition);
    assert!(
        violated.message().contains("A 及以上 2 人") && violated.message().contains("最多 1 人"),
        "{}",
        violated.message()
    );
    assert!(list(hr_token.clone()).await.iter().all(|e| e.state == S::Calibration as i32 && e.bonus_fen == 0));
    let not_hr = lead
        .calibrate(pb::CalibrateRequest {
            evaluation_id: find(&all, "agent-c").id.clone(),
            grade: "B".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_hr.code(), Code::PermissionDenied);
    let own = s
        .performance_for("agent-c", Role::Hr)
        .calibrate(pb::CalibrateRequest {
            evaluation_id: find(&all, "agent-c").id.clone(),
            grade: "A".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied, "nobody calibrates their own result");
    let bad_grade = hr
        .calibrate(pb::CalibrateRequest {
            evaluation_id: find(&all, "agent-c").id.clone(),
            grade: "S".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad_grade), vec!["grade".to_string()]);
    let c = hr
        .calibrate(pb::CalibrateRequest {
            evaluation_id: find(&all, "agent-c").id.clone(),
            grade: "B".into(),
            reason: "主管评分与同事互评低于王芳，按强制分布调整".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((c.computed_grade.as_str(), c.grade.as_str()), ("A", "B"));
    assert!(c.history.last().unwrap().detail.contains("A → B"), "{:?}", c.history);
    let results =
        hr.close_calibration(pb::CloseCalibrationRequest { id: opened.id.clone() }).await.unwrap().into_inner();
    assert_eq!(results.state, pb::CycleState::Results as i32);
    let paid = list(hr_token.clone()).await;
    let money: Vec<(&str, &str, i32, i64)> =
        paid.iter().map(|e| (e.staff_id.as_str(), e.grade.as_str(), e.coefficient, e.bonus_fen)).collect();
    assert_eq!(
        money,
        vec![
            ("agent-a", "A", 150, 1_200_000),
            ("agent-b", "B", 115, 920_000),
            // 666,667 × 115 % = 766,667.05 fen, rounded half up to the fen.
            ("agent-c", "B", 115, 766_667),
            ("agent-d", "D", 0, 0),
        ]
    );
    assert!(paid.iter().all(|e| e.state == S::Acknowledgement as i32));

    // a, b, c acknowledge; d appeals and HR upholds it (D → C).
    for id in ["agent-a", "agent-b", "agent-c"] {
        as_agent(id).acknowledge(pb::AcknowledgeRequest { evaluation_id: find(&all, id).id.clone() }).await.unwrap();
    }
    let d_id = find(&all, "agent-d").id.clone();
    let appealed = as_agent("agent-d")
        .appeal(pb::AppealRequest {
            evaluation_id: d_id.clone(),
            reason: "11 月有两周病假，期间的未结工单不应计入".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(appealed.state, S::Appealed as i32);
    let self_decided = s
        .performance_with_token(Some(&s.token_for("agent-d", Role::Hr)))
        .decide_appeal(pb::DecideAppealRequest {
            evaluation_id: d_id.clone(),
            upheld: true,
            grade: "A".into(),
            decision: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(self_decided.code(), Code::PermissionDenied);
    let decided = hr
        .decide_appeal(pb::DecideAppealRequest {
            evaluation_id: d_id.clone(),
            upheld: true,
            grade: "C".into(),
            decision: "病假期间工单已核实转交他人，调整为 C".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (decided.state, decided.grade.as_str(), decided.bonus_fen, decided.appeal_upheld),
        (S::Final as i32, "C", 480_000, true)
    );
    assert!(
        decided.history.iter().any(|h| h.action == "decide_appeal" && h.actor == "hr-1" && h.detail.contains("D → C"))
    );

    // Finalised: promotion from the career path and the grade; one honour.
    let fin = hr.finalize_cycle(pb::FinalizeCycleRequest { id: opened.id.clone() }).await.unwrap().into_inner();
    assert_eq!(fin.state, pb::CycleState::Finalized as i32);
    let done = list(hr_token.clone()).await;
    let a = find(&done, "agent-a");
    assert!(a.promotion_recommended, "{}", a.promotion_detail);
    assert!(a.promotion_detail.contains("高级客服专员"), "{}", a.promotion_detail);
    let b = find(&done, "agent-b");
    assert!(!b.promotion_recommended && b.promotion_detail.contains("要求不低于 A"), "{}", b.promotion_detail);
    assert_eq!(a.honours.len(), 1);
    assert_eq!(a.honours[0].name, "季度服务之星");
    assert!(
        a.honours[0].reason.contains("等级 A") && a.honours[0].reason.contains("第 1 名"),
        "{}",
        a.honours[0].reason
    );
    assert!(done.iter().filter(|e| e.staff_id != "agent-a").all(|e| e.honours.is_empty()));
    let steps: Vec<&str> = a.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(steps, ["open", "close", "self_assessment", "review", "close_calibration", "acknowledge", "finalize"]);

    // A finalised cycle is not edited; a correction is a new entry.
    let locked = hr
        .calibrate(pb::CalibrateRequest { evaluation_id: a.id.clone(), grade: "B".into(), reason: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition);
    assert!(locked.message().contains("finalised"), "{}", locked.message());

    // The export, over REST (base64 in JSON), opened with a library.
    let (status, body) =
        rest(&s, reqwest::Method::GET, &format!("/api/v1/performance/cycles/{}/export", opened.id), &hr_token, None)
            .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["filename"].as_str().unwrap().ends_with(".xlsx"));
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(body["content"].as_str().unwrap()).unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("绩效结果").unwrap();
    let header: Vec<String> = (0..12).map(|c| cell(&sheet, 0, c)).collect();
    assert_eq!(&header[..3], ["工号", "姓名", "团队"]);
    assert_eq!((header[6].as_str(), header[8].as_str(), header[11].as_str()), ("总分", "最终等级", "奖金(元)"));
    let row_of = |id: &str| (1..=4).find(|r| cell(&sheet, *r, 0) == id).unwrap();
    let ra = row_of("agent-a");
    assert_eq!(
        (cell(&sheet, ra, 1), cell(&sheet, ra, 8), cell(&sheet, ra, 11)),
        ("王芳".into(), "A".into(), "12000".into())
    );
    assert_eq!(sheet.get((ra, 6)), Some(&Data::Float(want[0].1)));
    assert_eq!(sheet.get((row_of("agent-c"), 11)), Some(&Data::Float(7666.67)));
    assert!(
        cell(&sheet, ra, 14).starts_with("'=HYPERLINK"),
        "a formula in a comment is written as text: {}",
        cell(&sheet, ra, 14)
    );
    assert!(cell(&sheet, ra, 13).contains("季度服务之星"));
    let rd = row_of("agent-d");
    assert!(cell(&sheet, rd, 17).starts_with("申诉成立"), "{}", cell(&sheet, rd, 17));
    let detail = book.worksheet_range("指标明细").unwrap();
    assert_eq!(detail.height(), 1 + 4 * 6, "a row per person and indicator");
    let (status, _) = rest(
        &s,
        reqwest::Method::GET,
        &format!("/api/v1/performance/cycles/{}/export", opened.id),
        &s.token_for("agent-a", Role::Agent),
        None,
    )
    .await;
    assert_eq!(status, 403, "agents do not export everyone's bonus");

    // REST: the lead's team view and an agent's own.
    let (status, mine) = rest(
        &s,
        reqwest::Method::GET,
        &format!("/api/v1/performance/cycles/{}/evaluations", opened.id),
        &s.token_for("agent-c", Role::Agent),
        None,
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["evaluations"].as_array().unwrap().len(), 1);
    assert_eq!(mine["evaluations"][0]["staffId"], "agent-c");

    // The report: distribution and indicator breakdown.
    let report = hr.get_cycle_report(pb::GetCycleReportRequest { id: opened.id.clone() }).await.unwrap().into_inner();
    let team = &report.teams[0];
    let dist: Vec<(String, i32)> = team.grades.iter().map(|g| (g.grade.clone(), g.count)).collect();
    assert_eq!(dist, vec![("A".into(), 1), ("B".into(), 2), ("C".into(), 1), ("D".into(), 0)]);
    let csat = report.indicators.iter().find(|i| i.code == "csat").unwrap();
    assert_eq!(csat.average_value, ((100.0 + 66.67 + 100.0 + 0.0) / 4.0 * 100.0_f64).round() / 100.0);
    let trend = as_agent("agent-a").get_trend(pb::GetTrendRequest::default()).await.unwrap().into_inner();
    assert_eq!(trend.points.len(), 1);
    assert_eq!((trend.points[0].period.as_str(), trend.points[0].grade.as_str()), ("2026-Q4", "A"));

    // A complaint about a, recorded late for December: the snapshot stands,
    // a recompute shows what would change.
    s.clock.set(beijing(2026, 12, 30, 10, 0));
    complaint_about(&s, "agent-a", &customer).await;
    s.clock.set(beijing(2027, 1, 6, 10, 0));
    let rc = hr
        .recompute_evaluation(pb::RecomputeEvaluationRequest { evaluation_id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let c = rc.indicators.iter().find(|i| i.code == "complaints").unwrap();
    assert_eq!((c.snapshot_value, c.current_value, c.snapshot_score, c.current_score), (0.0, 1.0, 100.0, 50.0));
    assert_eq!(rc.difference, -7.5, "30 % × 50 % × 50 points");
    let still = hr.get_evaluation(pb::GetEvaluationRequest { id: a.id.clone() }).await.unwrap().into_inner();
    assert_eq!(still.total_score, want[0].1, "a recompute changes nothing");

    let corrected = hr
        .correct_result(pb::CorrectResultRequest {
            evaluation_id: a.id.clone(),
            grade: "B".into(),
            reason: "12 月 30 日投诉经核实成立，按制度更正".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(corrected.corrected);
    assert_eq!((corrected.grade.as_str(), corrected.bonus_fen), ("B", 920_000));
    let last = corrected.history.last().unwrap();
    assert_eq!(last.action, "correct");
    assert!(last.detail.contains("A → B") && last.detail.contains("¥12,000.00 → ¥9,200.00"), "{}", last.detail);
    assert!(
        corrected.history.iter().any(|h| h.action == "close_calibration" && h.detail.contains("等级 A")),
        "the original stays"
    );

    // An auditor reads everything and changes nothing.
    let mut auditor = s.performance_as(Role::Auditor);
    assert_eq!(
        auditor
            .list_evaluations(pb::ListEvaluationsRequest { cycle_id: opened.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .evaluations
            .len(),
        4
    );
    let no = auditor.finalize_cycle(pb::FinalizeCycleRequest { id: opened.id.clone() }).await.unwrap_err();
    assert_eq!(no.code(), Code::PermissionDenied);
}
