//! Complaint deadlines through the gateway: their REST views, the one SLA
//! board with tickets, and the one live event stream (resumed across both
//! services with `Last-Event-ID`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Backend, customer_body};
use futures::StreamExt;
use kefu_kit::auth::Role;
use reqwest::Method;
use serde_json::json;

async fn spawn(backend: Backend) -> Option<App> {
    common::spawn(backend).await
}

kefu_testkit::on_both_backends!(spawn; complaint_deadlines_show_on_the_sla_board_and_stream_with_tickets_events);

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
