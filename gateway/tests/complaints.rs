//! Complaint deadlines through the gateway: their REST views, the one SLA
//! board with tickets, and the one live event stream (resumed across both
//! services with `Last-Event-ID`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Backend, customer_body};
use futures::StreamExt;
use kefu_kit::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn spawn(backend: Backend) -> Option<App> {
    common::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn;
    complaint_deadlines_show_on_the_sla_board_and_stream_with_tickets_events,
    a_12366_referral_walks_from_a_breached_opinion_through_evidence_capa_rejection_and_mediation_to_closure,
);

/// Reads the stream until `until` appears (or 30 s pass).
async fn read_until(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    until: &str,
) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !seen.contains(until) && tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(chunk))) = tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    seen
}

/// 2026-03-02 18:01 and 2026-03-03 11:01 in Shanghai (the opinion's breach,
/// and two business hours after it).
const MONDAY_1801: i64 = common::T0 + (9 * 60 + 1) * 60_000;
const TUESDAY_1101: i64 = common::T0 + 24 * 3_600_000 + (2 * 60 + 1) * 60_000;

async fn complaint_deadlines_show_on_the_sla_board_and_stream_with_tickets_events(app: App) {
    let sup = app.token(Role::Supervisor);
    let (s, customer, _) =
        app.call(Method::POST, "/api/v1/customers", &sup, Some(customer_body("投诉看板测试", 901))).await;
    assert_eq!(s, 200, "{customer}");
    let cid = customer["id"].as_str().unwrap().to_owned();

    let sse = app.http.get(app.url("/api/v1/events")).bearer_auth(&sup).send().await.unwrap();
    assert_eq!(sse.status(), 200);
    let mut events = sse.bytes_stream();
    let body = json!({"complaint": {
        "source": "COMPLAINT_SOURCE_CUSTOMER", "channel": "CHANNEL_PHONE", "customerId": cid,
        "subjectKind": "SUBJECT_KIND_SERVICE_ITEM", "subject": "月度代理记账", "category": "timeliness",
        "severity": "SEVERITY_MEDIUM", "description": "报表迟迟未交付。"}});
    let (s, complaint, _) = app.call(Method::POST, "/api/v1/complaints", &sup, Some(body)).await;
    assert_eq!(s, 200, "{complaint}");
    let id = complaint["id"].as_str().unwrap().to_owned();
    let (s, d, _) = app.call(Method::GET, &format!("/api/v1/complaints/{id}/deadlines"), &sup, None).await;
    assert_eq!(s, 200, "{d}");
    let metrics: Vec<&str> = d["deadlines"].as_array().unwrap().iter().map(|x| x["metric"].as_str().unwrap()).collect();
    assert_eq!(metrics.len(), 3, "{d}");
    assert!(metrics.contains(&"preliminary_opinion"), "{d}");
    let ack = json!({"action": "COMPLAINT_ACTION_ACKNOWLEDGE", "reason": "已致电客户确认收到"});
    let (s, acked, _) = app.call(Method::POST, &format!("/api/v1/complaints/{id}/transitions"), &sup, Some(ack)).await;
    assert_eq!(s, 200, "{acked}");

    // The opinion's day runs out: a complaint event in the common stream.
    app.clock.set(MONDAY_1801);
    app.suite.sweep_complaints().await;
    let seen = read_until(&mut events, "event: breached").await;
    assert!(seen.contains("event: breached") && seen.contains(&id), "{seen}");
    assert!(seen.contains("\"record\":\"complaint\"") && seen.contains("\"complaintId\""), "{seen}");
    let last_id = seen.lines().filter_map(|l| l.strip_prefix("id: ")).next_back().unwrap().to_owned();
    assert!(last_id.starts_with('|') && last_id.len() > 1, "the stream position names the complaint event: {last_id}");

    // One board: tickets' queues and the complaint queues together.
    let (s, board, _) = app.call(Method::GET, "/api/v1/sla/overview", &sup, None).await;
    assert_eq!(s, 200, "{board}");
    assert_eq!(board["byQueue"]["complaints"]["breached"], 1, "{board}");
    assert_eq!(board["byPerson"]["supervisor-1"]["open"], 2, "opinion and resolution: {board}");
    assert!(board["total"]["open"].as_i64().unwrap() >= 2, "{board}");
    let (s, own, _) = app.call(Method::GET, "/api/v1/complaints-sla/dashboard", &sup, None).await;
    assert_eq!(s, 200, "{own}");
    assert_eq!(own["byQueue"]["complaints"]["breached"], "1", "{own}");
    // Auditors do not watch the board.
    let (s, _, _) = app.call(Method::GET, "/api/v1/sla/overview", &app.token(Role::Auditor), None).await;
    assert_eq!(s, 403);

    // The second-level escalation fires while nobody watches; reconnecting
    // from the last position replays it and nothing before.
    drop(events);
    app.clock.set(TUESDAY_1101);
    app.suite.sweep_complaints().await;
    let again = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&sup)
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .unwrap();
    let mut stream = again.bytes_stream();
    let replay = read_until(&mut stream, "event: escalated").await;
    assert!(replay.contains("event: escalated") && replay.contains(&id), "nothing was replayed: {replay}");
    assert!(!replay.contains("event: breached"), "events before Last-Event-ID came again: {replay}");

    // The complaint's history says what happened, in Chinese.
    let (s, h, _) = app.call(Method::GET, &format!("/api/v1/complaints/{id}/history"), &sup, None).await;
    assert_eq!(s, 200);
    let reasons: Vec<&str> =
        h["entries"].as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect::<Vec<_>>();
    assert!(reasons.iter().any(|r| r.starts_with("时限超时：初步处理意见")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("二级升级")), "{reasons:?}");
    let (_, c, _) = app.call(Method::GET, &format!("/api/v1/complaints/{id}"), &sup, None).await;
    assert_eq!(c["escalationLevel"], 2, "{c}");
}

/// Unix ms of a wall-clock time in Shanghai in March 2026.
fn march(day: u32, h: u32, m: u32) -> i64 {
    common::T0 + (i64::from(day) - 2) * 86_400_000 + ((i64::from(h) - 9) * 60 + i64::from(m)) * 60_000
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .timestamp_millis()
}

async fn a_12366_referral_walks_from_a_breached_opinion_through_evidence_capa_rejection_and_mediation_to_closure(
    app: App,
) {
    let sup = app.token(Role::Supervisor);
    let verifier = app.minted("supervisor-2", Role::Supervisor);
    let owner = app.minted("agent-9", Role::Agent);
    let post = |path: String, token: String, body: Value| {
        let app = &app;
        async move {
            let (s, v, _) = app.call(Method::POST, &path, &token, Some(body)).await;
            assert_eq!(s, 200, "POST {path}: {v}");
            v
        }
    };
    let get = |path: String, token: String| {
        let app = &app;
        async move {
            let (s, v, _) = app.call(Method::GET, &path, &token, None).await;
            assert_eq!(s, 200, "GET {path}: {v}");
            v
        }
    };
    let customer = post("/api/v1/customers".into(), sup.clone(), customer_body("转办全流程测试", 902)).await;
    let cid = customer["id"].as_str().unwrap().to_owned();

    // Monday 09:00: the 12366 hotline refers a complaint, to be answered by Friday 18:00.
    let reply_due = march(6, 18, 0);
    let rec = post(
        "/api/v1/complaints".into(),
        sup.clone(),
        json!({"complaint": {
            "source": "COMPLAINT_SOURCE_REGULATOR_REFERRAL", "channel": "CHANNEL_PHONE", "customerId": cid,
            "subjectKind": "SUBJECT_KIND_STAFF", "subject": "agent-7", "category": "professional_error",
            "severity": "SEVERITY_HIGH", "description": "增值税申报表填错导致滞纳金，客户向12366反映。",
            "demand": {"kind": "DEMAND_KIND_COMPENSATION", "amountFen": "80000", "detail": "赔偿滞纳金"},
            "referral": {"referredBy": "国家税务总局12366纳税缴费服务热线", "reference": "12366-2026-31415",
                         "replyDueTime": chrono::DateTime::from_timestamp_millis(reply_due).unwrap().to_rfc3339()}},
              "requestId": "referral-31415"}),
    )
    .await;
    let id = rec["id"].as_str().unwrap().to_owned();
    assert!(rec["number"].as_str().unwrap().starts_with("TS-2026-"), "{rec}");
    let d = get(format!("/api/v1/complaints/{id}/deadlines"), sup.clone()).await;
    let deadline = |d: &Value, metric: &str| -> Value {
        d["deadlines"].as_array().unwrap().iter().find(|x| x["metric"] == metric).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(ms(&deadline(&d, "resolution")["dueTime"]), reply_due, "the referral's deadline caps the resolution");
    assert_eq!(ms(&deadline(&d, "acknowledgement")["dueTime"]), march(2, 10, 0));

    let step = |action: &str, extra: Value| {
        let mut body = json!({"action": action, "reason": format!("{action} 的理由")});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        post(format!("/api/v1/complaints/{id}/transitions"), sup.clone(), body)
    };
    app.clock.set(march(2, 9, 20));
    step("COMPLAINT_ACTION_ACKNOWLEDGE", json!({})).await;

    // Nobody gives the preliminary opinion on Monday: it breaches at 18:00,
    // and the complaint is escalated, once.
    app.clock.set(march(2, 18, 1));
    app.suite.sweep_complaints().await;
    app.suite.sweep_complaints().await;
    let d = get(format!("/api/v1/complaints/{id}/deadlines"), sup.clone()).await;
    assert_eq!(deadline(&d, "preliminary_opinion")["state"], "DEADLINE_STATE_BREACHED", "{d}");
    let c = get(format!("/api/v1/complaints/{id}"), sup.clone()).await;
    assert_eq!(c["escalationLevel"], 1, "{c}");

    // Tuesday: the opinion, late; the investigation with evidence and a finding.
    app.clock.set(march(3, 9, 30));
    step("COMPLAINT_ACTION_GIVE_PRELIMINARY_OPINION", json!({"text": "先行致歉，核查申报记录。"})).await;
    step("COMPLAINT_ACTION_START_INVESTIGATION", json!({})).await;
    let evidence = b"%PDF-1.4\n\xe6\xbb\x9e\xe7\xba\xb3\xe9\x87\x91\xe9\x80\x9a\xe7\x9f\xa5\n%%EOF\n".to_vec();
    use base64::Engine as _;
    let att = post(
        format!("/api/v1/complaints/{id}/attachments"),
        sup.clone(),
        json!({"fileName": "滞纳金通知.pdf", "content": base64::engine::general_purpose::STANDARD.encode(&evidence),
               "note": "税务局滞纳金通知"}),
    )
    .await;
    assert_eq!(att["contentType"], "application/pdf", "{att}");
    let aid = att["id"].as_str().unwrap().to_owned();
    let read = get(
        format!("/api/v1/complaint-attachments/{aid}?purpose=%E6%A0%B8%E5%AE%9E%E6%BB%9E%E7%BA%B3%E9%87%91"),
        sup.clone(),
    )
    .await;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(read["content"].as_str().unwrap()).unwrap(), evidence);
    let finding = json!({"finding": {"findings": "申报时进项税额录入错误。", "rootCause": "ROOT_CAUSE_PROCESS",
                                     "responsibleStaff": "agent-7", "responsibleDepartment": "代账一部", "upheld": true}});
    let (s, found, _) = app.call(Method::PUT, &format!("/api/v1/complaints/{id}/finding"), &sup, Some(finding)).await;
    assert_eq!(s, 200, "{found}");

    // A corrective action, due Wednesday, done by its owner and verified by
    // someone else a day later.
    let action = post(
        format!("/api/v1/complaints/{id}/actions"),
        sup.clone(),
        json!({"action": {"kind": "ACTION_KIND_CORRECTIVE", "description": "申报前增加复核环节",
                          "owner": "agent-9", "dueDate": "2026-03-04", "verifyAfterDays": 1}}),
    )
    .await;
    let act = action["id"].as_str().unwrap().to_owned();
    app.clock.set(march(3, 10, 0));
    post(format!("/api/v1/corrective-actions/{act}/complete"), owner.clone(), json!({"evidence": "复核清单已启用"}))
        .await;
    let (s, early, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/corrective-actions/{act}/verify"),
            &verifier,
            Some(json!({"effective": true, "note": "过早"})),
        )
        .await;
    assert_eq!(s, 412, "verified only after its day: {early}");
    app.clock.set(march(4, 10, 30));
    let verified = post(
        format!("/api/v1/corrective-actions/{act}/verify"),
        verifier.clone(),
        json!({"effective": true, "note": "本周申报无差错"}),
    )
    .await;
    assert_eq!(verified["status"], "ACTION_STATUS_EFFECTIVE", "{verified}");

    // The response waits on the customer; they reject it; mediation settles it.
    app.clock.set(march(4, 11, 0));
    step("COMPLAINT_ACTION_PROPOSE_RESPONSE", json!({"text": "承担滞纳金并书面致歉。"})).await;
    let d = get(format!("/api/v1/complaints/{id}/deadlines"), sup.clone()).await;
    assert_eq!(deadline(&d, "resolution")["state"], "DEADLINE_STATE_PAUSED", "{d}");
    post(
        format!("/api/v1/complaints/{id}/decision"),
        sup.clone(),
        json!({"channel": "CHANNEL_LETTER", "summary": "承担滞纳金800元并致歉", "compensationPaidFen": "80000"}),
    )
    .await;
    app.clock.set(march(5, 11, 0));
    step("COMPLAINT_ACTION_CUSTOMER_REJECTS", json!({})).await;
    step("COMPLAINT_ACTION_START_MEDIATION", json!({"mediator": "上海市税务师协会调解委员会"})).await;
    app.clock.set(march(5, 15, 0));
    let closed = step("COMPLAINT_ACTION_CLOSE", json!({})).await;
    assert_eq!(closed["state"], "COMPLAINT_STATE_CLOSED", "{closed}");
    // The customer's rating arrives from the survey channel, over gRPC.
    app.suite
        .complaints_as(Role::Service)
        .rate_complaint_handling(kefu_proto::complaints::v1::RateComplaintHandlingRequest {
            id: id.clone(),
            rating: 4,
            comment: "调解及时".into(),
        })
        .await
        .unwrap();

    // Every deadline as it should be.
    let d = get(format!("/api/v1/complaints/{id}/deadlines"), sup.clone()).await;
    assert_eq!(deadline(&d, "acknowledgement")["state"], "DEADLINE_STATE_FULFILLED");
    assert_eq!(deadline(&d, "preliminary_opinion")["state"], "DEADLINE_STATE_FULFILLED_LATE");
    assert_eq!(
        deadline(&d, "resolution")["state"],
        "DEADLINE_STATE_FULFILLED",
        "closed before the referral's deadline"
    );
    assert_eq!(deadline(&d, "corrective_action")["state"], "DEADLINE_STATE_FULFILLED");
    // The history: who, when, why — and the deadline notes.
    let h = get(format!("/api/v1/complaints/{id}/history"), app.token(Role::Auditor)).await;
    let entries = h["entries"].as_array().unwrap();
    for action in [
        "ACKNOWLEDGE",
        "GIVE_PRELIMINARY_OPINION",
        "START_INVESTIGATION",
        "PROPOSE_RESPONSE",
        "CUSTOMER_REJECTS",
        "START_MEDIATION",
        "CLOSE",
    ] {
        let e = entries.iter().find(|e| e["action"] == format!("COMPLAINT_ACTION_{action}"));
        let e = e.unwrap_or_else(|| panic!("no {action} in {h}"));
        assert!(e["actor"] == "supervisor-1" && e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    }
    assert!(
        entries.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("时限超时：初步处理意见"))),
        "{h}"
    );
    // The evidence's read is on record for the auditor.
    let atts = get(format!("/api/v1/complaints/{id}/attachments"), app.token(Role::Auditor)).await;
    assert_eq!(atts["attachments"][0]["reads"][0]["reader"], "supervisor-1", "{atts}");
    // The complainant's words: masked to read, clear for a purpose, and both
    // clear reads (the words, the evidence) in the complaints audit trail.
    let masked = get(format!("/api/v1/complaints/{id}"), sup.clone()).await;
    assert_eq!(masked["personalData"], "PERSONAL_DATA_MASKED", "{masked}");
    let (s, refused, _) = app.call(Method::GET, &format!("/api/v1/complaints/{id}?unmasked=true"), &sup, None).await;
    assert_eq!(s, 400, "{refused}");
    let clear =
        get(format!("/api/v1/complaints/{id}?unmasked=true&purpose=%E5%9B%9E%E5%A4%8D12366"), sup.clone()).await;
    assert_eq!(clear["personalData"], "PERSONAL_DATA_CLEAR", "{clear}");
    assert_eq!(clear["description"], "增值税申报表填错导致滞纳金，客户向12366反映。");
    let number = rec["number"].as_str().unwrap();
    let trail = get(format!("/api/v1/complaint-audit-entries?subject={number}"), app.token(Role::Auditor)).await;
    let actions: Vec<(&str, &str)> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or(""), e["purpose"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(actions, vec![("complaint.attachment.read", "核实滞纳金"), ("complaint.read", "回复12366")], "{trail}");
    let (s, verdict, _) =
        app.call(Method::POST, "/api/v1/complaint-audit-entries/verify", &app.token(Role::Auditor), None).await;
    assert_eq!((s, &verdict["intact"]), (200, &Value::Bool(true)), "{verdict}");
    let (s, _, _) = app.call(Method::GET, "/api/v1/complaint-audit-entries", &sup, None).await;
    assert_eq!(s, 403, "supervisors do not read the trail");

    // The month's figures (gRPC and REST read the same).
    let stats = get("/api/v1/complaints-stats?fromDate=2026-03-01&toDate=2026-03-31".into(), sup.clone()).await;
    assert_eq!(stats["received"], "1", "{stats}");
    assert_eq!(stats["upheldRate"], 1.0, "{stats}");
    assert_eq!(stats["compensationPaidFen"], "80000", "{stats}");
    assert_eq!(stats["toAcknowledgement"]["count"], "1", "{stats}");
    assert!((stats["toAcknowledgement"]["medianHours"].as_f64().unwrap() - 20.0 / 60.0).abs() < 1e-6, "{stats}");
    assert_eq!(stats["averageSatisfaction"], 4.0, "{stats}");
    assert_eq!(stats["byRootCause"][0]["key"], "ROOT_CAUSE_PROCESS", "{stats}");
    assert_eq!(stats["bySource"][0]["label"], "监管部门转办", "{stats}");
    assert_eq!(stats["referralsAnsweredInTime"], "1", "the decision went out before Friday 18:00: {stats}");
    assert!(stats.get("referralsOverdue").is_none_or(|v| v == "0"), "{stats}");
    let staff = app
        .suite
        .complaints_as(Role::Hr)
        .get_staff_complaint_stats(kefu_proto::complaints::v1::GetStaffComplaintStatsRequest {
            staff: "agent-7".into(),
            from_date: "2026-03-01".into(),
            to_date: "2026-03-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((staff.received, staff.upheld, staff.about_attitude), (1, 1, 0));
    let grpc = app
        .suite
        .complaints_as(Role::Supervisor)
        .get_complaint_deadlines(kefu_proto::complaints::v1::GetComplaintDeadlinesRequest {
            id: rec["number"].as_str().unwrap().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grpc.deadlines.len(), 4, "the same deadlines over gRPC, by number");
}
