//! The live store contract, run on memory and on a real Redis: claims are
//! atomic and exactly-once across sweepers, crashed claims are re-taken, the
//! dashboard counts, and a lost live view is rebuilt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use kefu_sla::{
    Claimed, DueHandler, DueKind, LiveEntry, LiveStore, ManualClock, Metric, SlaEvent, Sweeper, SweeperConfig,
    TargetKey, TargetState, live::shard_of,
};

const T0: i64 = 1_780_000_000_000;

/// The live store of a test: memory, or Redis under a fresh key prefix (the
/// test kit's, which fails under CI when Redis is not configured).
type Backend = kefu_testkit::Live;

async fn backend(redis: bool) -> Option<Backend> {
    kefu_testkit::Live::new(if redis { kefu_testkit::Backend::Production } else { kefu_testkit::Backend::Embedded })
        .await
}

fn key(i: usize) -> TargetKey {
    TargetKey { record_id: format!("ticket-{i}"), metric: Metric::Resolution, cycle: 1 }
}

fn entry(i: usize, due: i64, warn: Option<i64>) -> LiveEntry {
    LiveEntry {
        key: key(i),
        state: TargetState::Active,
        due_at: Some(due),
        warn_at: warn,
        queue: if i.is_multiple_of(2) { "tax".into() } else { "bookkeeping".into() },
        assignee: format!("agent-{}", i % 3),
    }
}

/// Stands in for the service's database: a record of which transitions
/// happened, written once per target, and the source of rebuilds.
#[derive(Default)]
struct Ledger {
    open: Mutex<HashMap<TargetKey, LiveEntry>>,
    events: Mutex<Vec<String>>,
    handled: Mutex<usize>,
}

#[async_trait]
impl DueHandler for Ledger {
    async fn handle(&self, c: &Claimed, _now: i64) -> anyhow::Result<()> {
        *self.handled.lock().unwrap() += 1;
        let kind = match c.kind {
            DueKind::Breach => "breached",
            DueKind::Warning => "warning",
        };
        let id = format!("{}:{kind}", c.key.member());
        let mut ev = self.events.lock().unwrap();
        // The durable write is conditional: a second delivery changes nothing.
        if !ev.contains(&id) {
            ev.push(id);
            if c.kind == DueKind::Breach
                && let Some(e) = self.open.lock().unwrap().get_mut(&c.key)
            {
                e.state = TargetState::Breached;
            }
        }
        Ok(())
    }

    async fn rebuild(&self, store: &dyn LiveStore) -> anyhow::Result<usize> {
        let open: Vec<LiveEntry> = self.open.lock().unwrap().values().cloned().collect();
        for e in &open {
            store.put(e).await?;
        }
        Ok(open.len())
    }
}

fn sweeper(store: Arc<dyn LiveStore>, ledger: Arc<Ledger>, clock: &ManualClock, owner: &str) -> Sweeper {
    Sweeper::new(
        store,
        ledger,
        Arc::new(clock.clone()),
        SweeperConfig {
            owner: owner.into(),
            lease_ttl: Duration::from_millis(300),
            claim_ttl: Duration::from_secs(60),
            batch: 7,
            concurrency: 4,
            interval: Duration::from_millis(10),
            safety_net_grace: Duration::from_secs(2),
        },
    )
}

macro_rules! on_both {
    ($($name:ident),*) => {
        mod memory { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::backend(false).await.unwrap()).await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(b) = super::backend(true).await { super::$name(b).await } } )* }
    };
}

on_both!(
    claims_are_due_ordered_and_taken_once,
    crashed_claims_are_retaken_after_their_lease,
    two_sweepers_emit_each_breach_once,
    shards_are_shared_fairly_and_a_dead_sweepers_are_taken_over,
    dashboard_counts_without_scanning,
    a_lost_view_is_rebuilt_and_due_breaches_fire_once,
    events_reach_subscribers,
    fulfilled_targets_leave_the_view
);

async fn claims_are_due_ordered_and_taken_once(b: Backend) {
    let s = b.store();
    // An empty store answers an empty dashboard (no error).
    assert_eq!(s.dashboard(T0, 1000).await.unwrap(), kefu_sla::Dashboard::default());
    for i in 0..10 {
        s.put(&entry(i, T0 + i as i64 * 1000, Some(T0 + i as i64 * 1000 - 500))).await.unwrap();
    }
    let mut got = Vec::new();
    for shard in 0..s.shards() {
        got.extend(s.claim(shard, T0 + 4_000, 100, T0 + 60_000).await.unwrap());
    }
    let breaches = got.iter().filter(|c| c.kind == DueKind::Breach).count();
    let warnings = got.iter().filter(|c| c.kind == DueKind::Warning).count();
    assert_eq!((breaches, warnings), (5, 5), "due at or before now: 0..=4 (and their warnings)");
    for shard in 0..s.shards() {
        assert!(s.claim(shard, T0 + 4_000, 100, T0 + 60_000).await.unwrap().is_empty(), "nothing twice");
    }
    for c in &got {
        assert_eq!(c.shard, shard_of(&c.key.record_id, s.shards()));
        s.ack(c).await.unwrap();
    }
    let rec = s.record("ticket-7").await.unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].due_at, Some(T0 + 7000));
}

async fn crashed_claims_are_retaken_after_their_lease(b: Backend) {
    let s = b.store();
    s.put(&entry(1, T0, None)).await.unwrap();
    let shard = shard_of("ticket-1", s.shards());
    let first = s.claim(shard, T0 + 1, 10, T0 + 30_000).await.unwrap();
    assert_eq!(first.len(), 1);
    // The claimer dies without acknowledging. Before its lease ends nobody else gets it...
    assert!(s.claim(shard, T0 + 29_000, 10, T0 + 59_000).await.unwrap().is_empty());
    // ...after, another sweeper re-takes it.
    let retaken = s.claim(shard, T0 + 30_001, 10, T0 + 60_000).await.unwrap();
    assert_eq!(retaken, first);
    s.ack(&retaken[0]).await.unwrap();
    assert!(s.claim(shard, T0 + 90_000, 10, T0 + 120_000).await.unwrap().is_empty());
}

async fn two_sweepers_emit_each_breach_once(b: Backend) {
    let s = b.store();
    let ledger = Arc::new(Ledger::default());
    for i in 0..200 {
        let e = entry(i, T0 + (i as i64 % 17) * 100, None);
        ledger.open.lock().unwrap().insert(e.key.clone(), e.clone());
        s.put(&e).await.unwrap();
    }
    s.set_epoch("test").await.unwrap();
    let clock = ManualClock::new(T0 + 10_000);
    let a = Arc::new(sweeper(s.clone(), ledger.clone(), &clock, "a"));
    let bb = Arc::new(sweeper(s.clone(), ledger.clone(), &clock, "b"));
    let (ra, rb) = tokio::join!(a.tick(), bb.tick());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.shards_held + rb.shards_held, s.shards(), "each shard swept by one sweeper");
    assert_eq!(ra.handled + rb.handled, 200);
    let events = ledger.events.lock().unwrap().clone();
    let mut unique = events.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((events.len(), unique.len()), (200, 200), "every breach exactly once");
}

async fn shards_are_shared_fairly_and_a_dead_sweepers_are_taken_over(b: Backend) {
    let s = b.store();
    s.set_epoch("test").await.unwrap();
    let ledger = Arc::new(Ledger::default());
    let clock = ManualClock::new(T0);
    let a = sweeper(s.clone(), ledger.clone(), &clock, "a");
    let bb = sweeper(s.clone(), ledger.clone(), &clock, "b");
    let shards = s.shards();
    assert_eq!(a.tick().await.unwrap().shards_held, shards, "alone, a sweeper takes every shard");
    // A second replica starts: the first hands back what is beyond its share.
    bb.tick().await.unwrap();
    let a_held = a.tick().await.unwrap().shards_held;
    let b_held = bb.tick().await.unwrap().shards_held;
    assert_eq!((a_held, b_held), (shards / 2, shards - shards / 2), "shared out over the two");
    // b dies (stops ticking): its heartbeat and leases lapse (300 ms here), a takes all.
    kefu_testkit::wait_for("a to take over the dead sweeper's shards", Duration::from_secs(5), || async {
        (a.tick().await.unwrap().shards_held == shards).then_some(())
    })
    .await;
}

async fn dashboard_counts_without_scanning(b: Backend) {
    let s = b.store();
    for i in 0..6 {
        s.put(&entry(i, T0 + i as i64 * 60_000, None)).await.unwrap();
    }
    let mut breached = entry(6, T0 - 1, None);
    breached.state = TargetState::Breached;
    s.put(&breached).await.unwrap();
    let mut paused = entry(8, T0, None);
    paused.state = TargetState::Paused;
    paused.due_at = None;
    s.put(&paused).await.unwrap();
    let d = s.dashboard(T0, 2 * 60_000).await.unwrap();
    assert_eq!(d.total.open, 8);
    assert_eq!(d.total.at_risk, 3, "due within 2 minutes: 0, 1, 2");
    assert_eq!(d.total.breached, 1);
    assert_eq!(d.by_queue["tax"].open, 5, "0, 2, 4, 6, 8");
    assert_eq!(d.by_queue["tax"].breached, 1);
    assert_eq!(d.by_assignee["agent-0"].open, 3, "0, 3, 6");
    // Moving a target to another queue moves its count.
    let mut moved = entry(0, T0, None);
    moved.queue = "vip".into();
    s.put(&moved).await.unwrap();
    let d = s.dashboard(T0, 2 * 60_000).await.unwrap();
    assert_eq!(d.by_queue["tax"].open, 4);
    assert_eq!(d.by_queue["vip"].open, 1);
    assert_eq!(d.total.open, 8);
}

async fn a_lost_view_is_rebuilt_and_due_breaches_fire_once(b: Backend) {
    let s = b.store();
    let ledger = Arc::new(Ledger::default());
    for i in 0..30 {
        let e = entry(i, T0 + i as i64 * 1000, None);
        ledger.open.lock().unwrap().insert(e.key.clone(), e);
    }
    let clock = ManualClock::new(T0 - 1);
    let sw = sweeper(s.clone(), ledger.clone(), &clock, "a");
    let first = sw.tick().await.unwrap();
    assert_eq!(first.rebuilt, Some(30), "first start builds the view");
    assert_eq!(first.handled, 0);
    // Ten fall due, then the live state is lost.
    clock.set(T0 + 9_500);
    b.flush().await;
    assert!(s.epoch().await.unwrap().is_none());
    let after = sw.tick().await.unwrap();
    assert_eq!(after.rebuilt, Some(30));
    assert_eq!(after.handled, 10, "breaches that fell due meanwhile, emitted late, not lost");
    assert_eq!(
        sw.tick().await.unwrap(),
        kefu_sla::sweeper::TickReport { rebuilt: None, handled: 0, failed: 0, shards_held: s.shards(), recovered: 0 }
    );
    // Another loss: breached targets are rebuilt as breached and not emitted again.
    b.flush().await;
    let again = sw.tick().await.unwrap();
    assert_eq!(again.handled, 0);
    assert_eq!(ledger.events.lock().unwrap().len(), 10);
}

async fn events_reach_subscribers(b: Backend) {
    let s = b.store();
    let mut rx = s.subscribe();
    // Redis subscriptions are asynchronous: publish until one arrives.
    let ev = SlaEvent {
        id: "ticket-1:resolution:1:breached".into(),
        key: key(1),
        kind: kefu_sla::EventKind::Breached,
        at_ms: T0,
        due_at_ms: Some(T0),
        queue: "tax".into(),
        assignee: "agent-1".into(),
    };
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            s.publish(&ev).await.unwrap();
            if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                return e;
            }
        }
    })
    .await
    .expect("event delivered");
    assert_eq!(got, ev);
}

async fn fulfilled_targets_leave_the_view(b: Backend) {
    let s = b.store();
    s.put(&entry(3, T0, Some(T0 - 10))).await.unwrap();
    let mut done = entry(3, T0, None);
    done.state = TargetState::Fulfilled;
    s.put(&done).await.unwrap();
    assert!(s.record("ticket-3").await.unwrap().is_empty());
    for shard in 0..s.shards() {
        assert!(s.claim(shard, T0 + 1, 10, T0 + 100).await.unwrap().is_empty());
    }
    assert_eq!(s.dashboard(T0, 1000).await.unwrap().total.open, 0);
}

/// A Redis written by the first layout (a JSON hash per record, four sorted
/// sets per target) is cleared of it and rebuilt: its epoch does not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_in_the_first_layout_is_removed_and_rebuilt() {
    let Some(url) = kefu_testkit::env_or_skip("KEFU_TEST_REDIS_URL") else { return };
    let prefix = format!("kefu-test-{}", uuid::Uuid::now_v7().simple());
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let old = [
        format!("{prefix}:{{r:ticket-1}}:sla"),
        format!("{prefix}:{{dash}}:open:q:tax"),
        format!("{prefix}:{{s0}}:due"),
        format!("{prefix}:{{s0}}:warn"),
    ];
    let _: () = ::redis::cmd("HSET").arg(&old[0]).arg("resolution|1").arg("{}").query_async(&mut con).await.unwrap();
    for k in &old[1..] {
        let _: () =
            ::redis::cmd("ZADD").arg(k).arg(1).arg("ticket-1|resolution|1").query_async(&mut con).await.unwrap();
    }
    let _: () =
        ::redis::cmd("SET").arg(format!("{prefix}:{{meta}}:epoch")).arg("old").query_async(&mut con).await.unwrap();
    let s = kefu_sla::RedisLiveStore::connect(&url, 4, &prefix).await.unwrap();
    assert_eq!(s.epoch().await.unwrap(), None, "the first layout's epoch does not stand for this one");
    kefu_testkit::wait_for("the first layout's keys to go", Duration::from_secs(5), || {
        let mut con = con.clone();
        let old = old.clone();
        async move {
            let left: i64 = ::redis::cmd("EXISTS").arg(&old[..]).query_async(&mut con).await.unwrap();
            (left == 0).then_some(())
        }
    })
    .await;
}

/// Replicas restarted with another shard count find no epoch for it: the old
/// view is cleared before the rebuild, so no target is counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_another_shard_count_is_cleared_before_the_rebuild() {
    let Some(url) = kefu_testkit::env_or_skip("KEFU_TEST_REDIS_URL") else { return };
    let prefix = format!("kefu-test-{}", uuid::Uuid::now_v7().simple());
    let ledger = Arc::new(Ledger::default());
    for i in 0..10 {
        let e = entry(i, T0 + 3_600_000, None);
        ledger.open.lock().unwrap().insert(e.key.clone(), e);
    }
    let clock = ManualClock::new(T0);
    let four: Arc<dyn LiveStore> = Arc::new(kefu_sla::RedisLiveStore::connect(&url, 4, &prefix).await.unwrap());
    assert_eq!(sweeper(four.clone(), ledger.clone(), &clock, "a").tick().await.unwrap().rebuilt, Some(10));
    assert_eq!(four.dashboard(T0, 1000).await.unwrap().total.open, 10);
    let eight: Arc<dyn LiveStore> = Arc::new(kefu_sla::RedisLiveStore::connect(&url, 8, &prefix).await.unwrap());
    assert_eq!(eight.epoch().await.unwrap(), None, "the epoch names the shard count");
    assert_eq!(sweeper(eight.clone(), ledger.clone(), &clock, "b").tick().await.unwrap().rebuilt, Some(10));
    let d = eight.dashboard(T0, 2 * 3_600_000).await.unwrap();
    assert_eq!((d.total.open, d.total.at_risk), (10, 10), "each target once: {d:?}");
}
