//! Faults on a real Redis: FLUSHDB while tickets are open (database 15 of the
//! test Redis, which nothing else uses), and a Redis of the test's own that is
//! killed, restarted empty and paused under writes. Each checks from the
//! database that every committed target breaches exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Backend, Live, TestApp, cst};
use kefu_proto::{customers::v1 as cpb, tickets::v1 as pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushdb_while_tickets_are_open_loses_nothing() {
    let Ok(base) = std::env::var("KEFU_TEST_REDIS_URL") else {
        assert!(std::env::var("CI").is_err(), "KEFU_TEST_REDIS_URL must be set in CI");
        return;
    };
    let url = format!("{}/15", base.trim_end_matches('/'));
    let store = kefu_sla::RedisLiveStore::connect(&url, 8, "kefu").await.unwrap();
    let live = Live::Redis { store: Arc::new(store), url, prefix: "kefu".into() };
    live.flush().await;
    let Some(app) = common::spawn_with(Backend::Production, cst(2026, 3, 2, 9, 0), live).await else { return };
    let c = app.customer("故障測試", 1, cpb::ServiceTier::Standard).await;
    let mut ids = Vec::new();
    for ch in [
        kefu_proto::common::v1::Channel::OnlineChat,
        kefu_proto::common::v1::Channel::Wechat,
        kefu_proto::common::v1::Channel::Email,
    ] {
        for _ in 0..4 {
            ids.push((ch, app.ticket(&c, ch, pb::TicketKind::Consultation, "tax_policy").await.id));
        }
    }
    app.sweep().await;
    // Redis loses everything; meanwhile the chat and WeChat first responses fall due.
    app.live.flush().await;
    app.clock.set(cst(2026, 3, 2, 9, 30));
    let report = app.sweep().await;
    assert!(report.rebuilt.is_some());
    for (ch, id) in &ids {
        let want = i64::from(*ch != kefu_proto::common::v1::Channel::Email);
        assert_eq!(app.events(id, "breached").await, want, "{ch:?}");
    }
    // Flushed again, later: the email ones breach now, nothing repeats.
    app.live.flush().await;
    app.clock.set(cst(2026, 3, 2, 15, 0));
    app.sweep().await;
    app.sweep().await;
    for (_, id) in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "every due breach exactly once");
    }
}

/// The production backend on a Redis this test owns (killed, restarted,
/// paused); `None` outside CI when PostgreSQL is not configured.
async fn on_own_redis() -> Option<(TestApp, kefu_testkit::processes::RedisProcess)> {
    let redis = kefu_testkit::processes::RedisProcess::start().await;
    let store = kefu_sla::RedisLiveStore::connect(&redis.url(), 4, "kefu").await.unwrap();
    let live = Live::Redis { store: Arc::new(store), url: redis.url(), prefix: "kefu".into() };
    let app = common::spawn_with(Backend::Production, cst(2026, 3, 2, 9, 0), live).await?;
    Some((app, redis))
}

/// A create must answer though Redis does not: it is a cache of live state.
async fn create_within(app: &TestApp, c: &str, what: &str) -> String {
    let call = app.ticket(c, kefu_proto::common::v1::Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy");
    tokio::time::timeout(std::time::Duration::from_secs(5), call)
        .await
        .unwrap_or_else(|_| panic!("CreateTicket {what} did not answer within 5 s"))
        .id
}

async fn next_status(
    stream: &mut tonic::Streaming<pb::SlaEventMessage>,
    within: std::time::Duration,
) -> Result<pb::SlaEventMessage, tonic::Status> {
    use futures::StreamExt;
    match tokio::time::timeout(within, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => Err(tonic::Status::ok("the stream ended without a status")),
        Err(_) => Err(tonic::Status::deadline_exceeded("nothing arrived")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_empty_loses_no_deadline_and_watchers_resume() {
    use kefu_kit::auth::Role;
    let Some((app, mut redis)) = on_own_redis().await else { return };
    let c = app.customer("Redis 故障", 2, cpb::ServiceTier::Standard).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_within(&app, &c, &format!("#{i}")).await);
    }
    app.sweep().await;
    let mut watch = app
        .tickets_as(Role::Supervisor)
        .watch_sla_events(pb::WatchSlaEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    // The chat first responses warn at 48 s: the watcher sees one.
    app.advance_to(cst(2026, 3, 2, 9, 0) + 50_000).await;
    let seen = next_status(&mut watch, std::time::Duration::from_secs(10)).await.expect("a warning before the fault");
    assert_eq!(seen.kind, "warning");

    redis.kill();
    // The watcher is told (UNAVAILABLE), so it can reconnect and replay.
    let ended = loop {
        match next_status(&mut watch, std::time::Duration::from_secs(10)).await {
            Ok(ev) => assert_eq!(ev.kind, "warning", "only the other warnings may still arrive"),
            Err(s) => break s,
        }
    };
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    // Writes go on without Redis.
    for i in 3..5 {
        ids.push(create_within(&app, &c, &format!("#{i} with Redis down")).await);
    }
    // Every first response falls due while Redis is down: the database fires them.
    app.clock.set(cst(2026, 3, 2, 9, 3));
    let _ = app.try_sweep().await;
    let _ = app.try_sweep().await;
    for id in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "{id} breached once with Redis down");
    }

    // Redis comes back empty: the view is rebuilt, nothing fires twice.
    redis.restart().await;
    let report =
        kefu_testkit::wait_for("a sweep on the restarted Redis", std::time::Duration::from_secs(20), || async {
            app.try_sweep().await.ok()
        })
        .await;
    assert!(report.rebuilt.is_some(), "{report:?}");
    app.sweep().await;
    for id in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "{id}: nothing fired twice");
    }
    let dash = app
        .tickets_as(Role::Supervisor)
        .get_sla_dashboard(pb::GetSlaDashboardRequest::default())
        .await
        .unwrap()
        .into_inner();
    let total = dash.total.unwrap_or_default();
    assert_eq!(total.breached, ids.len() as i64, "the rebuilt view counts every breach: {total:?}");
    // The watcher reconnects after the last event it saw and gets what it missed.
    let mut resumed = app
        .tickets_as(Role::Supervisor)
        .watch_sla_events(pb::WatchSlaEventsRequest { since_event_id: seen.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut breached = std::collections::BTreeSet::new();
    while breached.len() < ids.len() {
        let ev = next_status(&mut resumed, std::time::Duration::from_secs(5)).await.expect("replayed events");
        if ev.kind == "breached" {
            breached.insert(ev.ticket_id);
        }
    }
    assert_eq!(breached, ids.iter().cloned().collect(), "every breach is replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stall_holds_up_no_write_and_loses_no_deadline() {
    let Some((app, redis)) = on_own_redis().await else { return };
    let c = app.customer("Redis 停頓", 3, cpb::ServiceTier::Standard).await;
    app.sweep().await;
    redis.pause(8_000).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(create_within(&app, &c, &format!("#{i} during CLIENT PAUSE")).await);
    }
    // After the stall the view catches up (rebuilt), and every deadline fires once.
    kefu_testkit::wait_for("the live view to catch up after the stall", std::time::Duration::from_secs(20), || async {
        match app.try_sweep().await {
            Ok(r) if r.rebuilt.is_some() => Some(()),
            _ => None,
        }
    })
    .await;
    for id in &ids {
        let live = app.live.store().record(id).await.unwrap();
        assert!(!live.is_empty(), "{id} is in the live view again");
    }
    app.clock.set(cst(2026, 3, 2, 9, 3));
    app.sweep().await;
    app.sweep().await;
    for id in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "{id} breached once");
    }
}
