//! Faults on a real Redis: FLUSHDB while tickets are open. Runs against
//! database 15 of the test Redis, which nothing else uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Backend, Live, cst};
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
