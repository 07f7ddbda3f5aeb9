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
