//! Training through the gateway's REST routes, on both backends: a course,
//! a plan approved by a supervisor, a session charged to it (idempotent on
//! `Idempotency-Key`), enrolment with a waitlist, check-in once, completion
//! crediting hours, and the plan's progress — the same service gRPC clients
//! reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Backend};
use kefu_kit::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn spawn(backend: Backend) -> Option<App> {
    common::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    a_session_is_planned_filled_attended_and_credited_over_rest,
    the_2027_plan_ends_in_a_four_level_report_a_due_certificate_and_a_newly_eligible_agent,
);

/// 2027-01-12 09:00 in Beijing.
const SESSION_START: i64 = 1_799_715_600_000;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

async fn a_session_is_planned_filled_attended_and_credited_over_rest(app: App) {
    let hr = app.token(Role::Hr);
    let call = |method: Method, path: String, token: String, body: Option<Value>| {
        let app = &app;
        async move { app.call(method, &path, &token, body).await }
    };
    let (s, course, _) = call(
        Method::POST,
        "/api/v1/training/courses".into(),
        hr.clone(),
        Some(json!({"course": {"code": "etq-01", "title": "电话服务礼仪", "topic": "TOPIC_SERVICE_ETIQUETTE",
                               "method": "METHOD_CLASSROOM", "hours": 2.0}})),
    )
    .await;
    assert_eq!(s, 200, "{course}");
    assert_eq!(course["code"], "ETQ-01");
    let (s, plan, _) = call(
        Method::POST,
        "/api/v1/training/plans".into(),
        hr.clone(),
        Some(json!({"plan": {"year": 2027, "team": "客服二组", "title": "2027 年度培训计划",
                             "goals": ["服务满意度 ≥ 95%"], "budgetFen": "500000", "targetHoursPerPerson": 2.0,
                             "headcount": 2, "courses": [{"courseId": "ETQ-01", "quarter": 1, "sessions": 1}]}})),
    )
    .await;
    assert_eq!(s, 200, "{plan}");
    let plan_id = plan["id"].as_str().unwrap().to_owned();
    let (s, approved, _) =
        call(Method::POST, format!("/api/v1/training/plans/{plan_id}/approve"), app.token(Role::Supervisor), None)
            .await;
    assert_eq!((s, &approved["state"]), (200, &json!("PLAN_STATE_APPROVED")), "{approved}");

    let body = json!({"session": {"courseId": course["id"], "startTime": rfc3339(SESSION_START),
                                  "endTime": rfc3339(SESSION_START + 2 * 3_600_000), "location": "线上会议 888",
                                  "trainer": "agent-trainer", "capacity": 1, "waitlistCapacity": 1,
                                  "costFen": "200000", "planId": plan_id}});
    let schedule = || {
        let app = &app;
        let (hr, body) = (hr.clone(), body.clone());
        async move {
            let resp = reqwest::Client::new()
                .post(app.url("/api/v1/training/sessions"))
                .bearer_auth(&hr)
                .header("Idempotency-Key", "sched-etq-1")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let ses = schedule().await;
    assert_eq!(schedule().await["id"], ses["id"], "the same key is the same session");
    let sid = ses["id"].as_str().unwrap().to_owned();

    // Two agents: one seat, one waitlist place.
    let a1 = app.minted("agent-1", Role::Agent);
    let a2 = app.minted("agent-2", Role::Agent);
    let (_, e1, _) =
        call(Method::POST, format!("/api/v1/training/sessions/{sid}/enrolments"), a1.clone(), Some(json!({}))).await;
    let (_, e2, _) =
        call(Method::POST, format!("/api/v1/training/sessions/{sid}/enrolments"), a2.clone(), Some(json!({}))).await;
    assert_eq!(
        (&e1["state"], &e2["state"]),
        (&json!("ENROLMENT_STATE_ENROLLED"), &json!("ENROLMENT_STATE_WAITLISTED"))
    );
    assert_eq!(e2["waitlistPosition"], 1);
    let (s, full, _) = call(
        Method::POST,
        format!("/api/v1/training/sessions/{sid}/enrolments"),
        app.minted("agent-3", Role::Agent),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 412, "seats and waitlist full: {full}");

    // Check-in ten minutes before the start, once; then completion.
    app.clock.set(SESSION_START - 10 * 60_000);
    let e1_id = e1["id"].as_str().unwrap();
    let (s, _, _) = call(Method::POST, format!("/api/v1/training/enrolments/{e1_id}/check-in"), a1.clone(), None).await;
    assert_eq!(s, 200);
    let (s, twice, _) =
        call(Method::POST, format!("/api/v1/training/enrolments/{e1_id}/check-in"), a1.clone(), None).await;
    assert_eq!(s, 412, "{twice}");
    app.clock.set(SESSION_START + 3 * 3_600_000);
    let (s, done, _) = call(
        Method::POST,
        format!("/api/v1/training/sessions/{sid}/complete"),
        app.minted("agent-trainer", Role::Agent),
        None,
    )
    .await;
    assert_eq!((s, &done["state"]), (200, &json!("SESSION_STATE_COMPLETED")), "{done}");

    let (_, progress, _) = call(Method::GET, format!("/api/v1/training/plans/{plan_id}"), hr.clone(), None).await;
    assert_eq!(progress["progress"]["hoursDelivered"], 2.0, "{progress}");
    assert_eq!(progress["progress"]["peopleTrained"], 1, "{progress}");
    assert_eq!(progress["progress"]["budgetLeftFen"], "300000", "{progress}");
    let (_, stats, _) = call(
        Method::GET,
        "/api/v1/training/staff-stats?staffId=agent-1&fromDate=2027-01-01&toDate=2027-03-31".into(),
        hr.clone(),
        None,
    )
    .await;
    assert_eq!((&stats["hours"], &stats["coursesCompleted"]), (&json!(2.0), &json!(1)), "{stats}");
    let (s, _, _) = call(Method::GET, format!("/api/v1/training/plans/{plan_id}"), a1, None).await;
    assert_eq!(s, 403, "agents do not read plans");
}

/// Beijing wall time as Unix milliseconds.
fn beijing(y: i32, m: u32, d: u32, h: u32) -> i64 {
    use chrono::TimeZone;
    chrono::FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp_millis()
}

async fn the_2027_plan_ends_in_a_four_level_report_a_due_certificate_and_a_newly_eligible_agent(app: App) {
    let hr = app.token(Role::Hr);
    let call = |method: Method, path: String, token: String, body: Option<Value>| {
        let app = &app;
        async move {
            let (s, v, _) = app.call(method.clone(), &path, &token, body).await;
            assert_eq!(s, 200, "{method} {path}: {v}");
            v
        }
    };
    let post = |path: &str, token: &str, body: Value| call(Method::POST, path.to_owned(), token.to_owned(), Some(body));
    let get = |path: String, token: &str| call(Method::GET, path, token.to_owned(), None);

    // HR: the course, its exam, the 2027 plan (a supervisor approves), a session.
    let course = post(
        "/api/v1/training/courses",
        &hr,
        json!({"course": {"code": "IIT-2027", "title": "个税汇算清缴实务", "topic": "TOPIC_TAX_POLICY",
                          "method": "METHOD_CLASSROOM", "hours": 3.0}}),
    )
    .await;
    let cid = course["id"].as_str().unwrap().to_owned();
    let mut questions = Vec::new();
    for stem in ["大病医疗可在汇算时扣除", "汇算期限为次年3月1日至6月30日"] {
        let q = post(
            "/api/v1/training/questions",
            &hr,
            json!({"question": {"kind": "QUESTION_KIND_TRUE_FALSE", "stem": stem, "correct": [0], "points": 5,
                                "tags": ["汇算"]}}),
        )
        .await;
        questions.push(q["id"].as_str().unwrap().to_owned());
    }
    let exam = post(
        "/api/v1/training/exams",
        &hr,
        json!({"exam": {"courseId": &cid, "title": "结业考试", "pools": [{"tag": "汇算", "count": 2}],
                        "timeLimitMinutes": 20, "maxAttempts": 2, "passMark": 60}}),
    )
    .await;
    let exam_id = exam["id"].as_str().unwrap().to_owned();
    let plan = post(
        "/api/v1/training/plans",
        &hr,
        json!({"plan": {"year": 2027, "team": "代账客服一组", "title": "2027 年度培训计划", "goals": ["汇算咨询一次解决"],
                        "budgetFen": "1000000", "targetHoursPerPerson": 6.0, "headcount": 3,
                        "courses": [{"courseId": "IIT-2027", "quarter": 1, "sessions": 1}]}}),
    )
    .await;
    let plan_id = plan["id"].as_str().unwrap().to_owned();
    post(&format!("/api/v1/training/plans/{plan_id}/approve"), &app.token(Role::Supervisor), json!({})).await;
    let start = beijing(2027, 1, 12, 9);
    let ses = post(
        "/api/v1/training/sessions",
        &hr,
        json!({"session": {"courseId": &cid, "startTime": rfc3339(start), "endTime": rfc3339(start + 3 * 3_600_000),
                           "location": "总部培训室", "trainer": "agent-trainer", "capacity": 2, "waitlistCapacity": 1,
                           "costFen": "300000", "planId": plan_id}}),
    )
    .await;
    let sid = ses["id"].as_str().unwrap().to_owned();

    // Three agents enrol; the third waits; the second withdraws and the third moves up.
    let agents: Vec<String> = ["agent-1", "agent-2", "agent-3"].iter().map(|a| app.minted(a, Role::Agent)).collect();
    let mut enrolments = Vec::new();
    for t in &agents {
        enrolments.push(post(&format!("/api/v1/training/sessions/{sid}/enrolments"), t, json!({})).await);
    }
    assert_eq!(enrolments[2]["state"], "ENROLMENT_STATE_WAITLISTED");
    let e2 = enrolments[1]["id"].as_str().unwrap().to_owned();
    post(&format!("/api/v1/training/enrolments/{e2}/withdraw"), &agents[1], json!({})).await;
    let roster = get(format!("/api/v1/training/enrolments?sessionId={sid}"), &hr).await;
    let seated =
        roster["enrolments"].as_array().unwrap().iter().filter(|e| e["state"] == "ENROLMENT_STATE_ENROLLED").count();
    assert_eq!(seated, 2, "{roster}");

    // They attend; the trainer completes the session.
    let trainer = app.minted("agent-trainer", Role::Agent);
    app.clock.set(start - 5 * 60_000);
    for i in [0, 2] {
        let id = enrolments[i]["id"].as_str().unwrap();
        post(&format!("/api/v1/training/enrolments/{id}/check-in"), &agents[i], json!({})).await;
    }
    app.clock.set(start + 3 * 3_600_000 + 60_000);
    post(&format!("/api/v1/training/sessions/{sid}/complete"), &trainer, json!({})).await;

    // The exam: agent-1 passes; agent-3 fails, retakes and passes.
    let sit = |who: usize, right: bool| {
        let (token, exam_id) = (agents[who].clone(), exam_id.clone());
        async move {
            let at = post(&format!("/api/v1/training/exams/{exam_id}/attempts"), &token, json!({})).await;
            let answers: Vec<Value> = at["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| json!({"questionId": i["questionId"], "chosen": [if right { 0 } else { 1 }]}))
                .collect();
            let id = at["id"].as_str().unwrap().to_owned();
            post(&format!("/api/v1/training/attempts/{id}/submit"), &token, json!({"answers": answers})).await
        }
    };
    assert_eq!(sit(0, true).await["passed"], true);
    assert!(sit(2, false).await.get("passed").is_none_or(|p| p == false));
    let retake = sit(2, true).await;
    assert_eq!((&retake["passed"], &retake["number"]), (&json!(true), &json!(2)), "{retake}");

    // Reactions; a ticket each before and after, read from tickets over gRPC.
    for i in [0, 2] {
        let id = enrolments[i]["id"].as_str().unwrap();
        post(
            "/api/v1/training/reactions",
            &agents[i],
            json!({"reaction": {"enrolmentId": id, "relevance": 5, "trainer": 5, "materials": 4, "overall": 5}}),
        )
        .await;
    }
    // agent-1 handles a ticket the week after (read back from tickets over gRPC).
    app.clock.set(beijing(2027, 1, 20, 10));
    {
        use kefu_proto::{common::v1::Channel, customers::v1 as cpb, tickets::v1 as tpb};
        let customer = app.suite.customer("培训效果客户", 931, cpb::ServiceTier::Standard).await;
        let mut tickets = app.suite.tickets_with_token(Some(&agents[0]));
        let t = tickets
            .create_ticket(tpb::CreateTicketRequest {
                ticket: Some(tpb::Ticket {
                    kind: tpb::TicketKind::Consultation as i32,
                    channel: Channel::Phone as i32,
                    subject: "汇算退税进度".into(),
                    customer_id: customer,
                    assignee: "agent-1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        tickets
            .change_status(tpb::ChangeStatusRequest {
                ticket_id: t.id,
                status: tpb::Status::Solved as i32,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // The supervisor observes agent-1's work 40 days on.
    app.clock.set(beijing(2027, 2, 21, 10));
    let e1 = enrolments[0]["id"].as_str().unwrap();
    post(
        "/api/v1/training/observations",
        &app.token(Role::Supervisor),
        json!({"observation": {"enrolmentId": e1, "observedOn": "2027-02-21", "rating": 5,
                               "notes": "汇算咨询能一次讲清"}}),
    )
    .await;
    let report = get(format!("/api/v1/training/courses/{cid}/report"), &hr).await;
    assert_eq!(report["completions"], 2, "{report}");
    assert_eq!(report["reaction"]["responses"], 2, "{report}");
    assert_eq!(report["learning"]["passRate"], 1.0, "{report}");
    assert_eq!(report["behaviour"]["observations"], 1, "{report}");
    assert_eq!(report["behaviour"]["trainees"], 2, "{report}");
    assert_eq!(report["results"]["after"]["ticketsHandled"], "1", "{report}");
    assert!(report["results"]["before"].is_object(), "{report}");
    let plan = get(format!("/api/v1/training/plans/{plan_id}"), &hr).await;
    assert_eq!(plan["progress"]["hoursDelivered"], 6.0, "{plan}");

    // agent-1's 初级会计职称 expires in 8 days: due; with the course and 13
    // months as 客服专员, agent-1 is newly eligible for 高级客服专员.
    post(
        "/api/v1/training/certificates",
        &hr,
        json!({"certificate": {"staffId": "agent-1", "name": "初级会计职称", "kind": "CERTIFICATE_KIND_PROFESSIONAL",
                               "number": "CJ-2021-88", "issuer": "财政部", "issueDate": "2021-03-01",
                               "expiryDate": "2027-03-01"}}),
    )
    .await;
    let due = get("/api/v1/training/due?withinDays=30".into(), &hr).await;
    let r = due["reminders"].as_array().unwrap().iter().find(|r| r["staffId"] == "agent-1").cloned().unwrap();
    assert_eq!((&r["kind"], &r["daysLeft"]), (&json!("REMINDER_KIND_CERTIFICATE_EXPIRING"), &json!(8)), "{due}");
    for (code, name, rank, courses) in
        [("CS-1", "客服专员", 1, json!([])), ("CS-2", "高级客服专员", 2, json!(["IIT-2027"]))]
    {
        post(
            "/api/v1/training/levels",
            &hr,
            json!({"level": {"path": "客服序列", "code": code, "name": name, "rank": rank, "courses": courses,
                             "certificates": if rank == 2 { json!(["初级会计职称"]) } else { json!([]) },
                             "monthsInLevel": if rank == 2 { 12 } else { 0 }}}),
        )
        .await;
    }
    for who in ["agent-1", "agent-3"] {
        call(
            Method::PUT,
            format!("/api/v1/training/staff/{who}/level"),
            hr.clone(),
            Some(json!({"level": "CS-1", "since": "2026-01-05"})),
        )
        .await;
    }
    let eligible = get("/api/v1/training/eligible".into(), &app.token(Role::Supervisor)).await;
    let who: Vec<&str> =
        eligible["people"].as_array().unwrap().iter().map(|p| p["staffId"].as_str().unwrap()).collect();
    assert_eq!(who, vec!["agent-1"], "agent-3 holds no certificate: {eligible}");
    let mine = get("/api/v1/training/career".into(), &agents[0]).await;
    assert_eq!((&mine["eligible"], &mine["next"]["name"]), (&json!(true), &json!("高级客服专员")), "{mine}");
}
