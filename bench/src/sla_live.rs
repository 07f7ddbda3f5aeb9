//! SLA live-state benchmark: with N live targets in Redis, measures insert
//! rate, Redis memory per target, dashboard query time, sweep latency from
//! due time to handled event, and rebuild time from PostgreSQL.
//!
//! `sla-live [N]` with KEFU_BENCH_REDIS_URL (a database it may FLUSHDB,
//! default redis://127.0.0.1:6379/14) and KEFU_BENCH_DATABASE_URL (a
//! PostgreSQL admin URL; a fresh database is created).
#![allow(clippy::print_stdout)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures::{StreamExt, stream};
use kefu_sla::{
    Claimed, DueHandler, LiveEntry, LiveStore, Metric, RedisLiveStore, Sweeper, SweeperConfig, SystemClock, TargetKey,
    TargetState,
};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn entry(i: u64, due: i64) -> LiveEntry {
    LiveEntry {
        key: TargetKey { record_id: format!("01900000-0000-7000-8000-{i:012}"), metric: Metric::Resolution, cycle: 1 },
        state: TargetState::Active,
        due_at: Some(due),
        warn_at: Some(due - 3_600_000),
        queue: format!("queue-{}", i % 20),
        assignee: format!("agent-{}", i % 200),
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Records how late each claimed entry was handled.
struct LagMeter {
    due: i64,
    lags: Mutex<Vec<f64>>,
}

#[async_trait]
impl DueHandler for LagMeter {
    async fn handle(&self, _c: &Claimed, _now: i64) -> anyhow::Result<()> {
        let lag = (now_ms() - self.due) as f64;
        self.lags.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(lag);
        Ok(())
    }
    async fn rebuild(&self, _store: &dyn LiveStore) -> anyhow::Result<usize> {
        Ok(0)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let redis_url = std::env::var("KEFU_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/14".into());
    let pg_admin = std::env::var("KEFU_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let shards = 16;

    let client = redis::Client::open(redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("FLUSHDB").arg("ASYNC").query_async(&mut con).await?;
    let store = Arc::new(RedisLiveStore::connect(&redis_url, shards, "kefu").await?);
    let base_mem = store.used_memory().await?;

    // 1. Insert N live targets, due in thirty days and spread over that day
    //    (a live set's due times spread over days), batches of 1000, 8 at once.
    let far = now_ms() + 30 * 86_400_000;
    let t0 = Instant::now();
    let batches: Vec<Vec<LiveEntry>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|c| c.iter().map(|i| entry(*i, far + (*i as i64 * 86_400_000 / n as i64))).collect())
        .collect();
    stream::iter(batches)
        .map(|b| {
            let s = store.clone();
            async move { s.put_many(&b).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let insert = t0.elapsed();
    let mem = store.used_memory().await?.saturating_sub(base_mem);
    println!("live targets:            {n}");
    println!(
        "insert:                  {:.1} s, {:.0} targets/s (batches of 1000, 8 in flight)",
        insert.as_secs_f64(),
        n as f64 / insert.as_secs_f64()
    );
    println!("redis memory:            {:.1} MiB, {:.0} bytes/target", mem as f64 / 1048576.0, mem as f64 / n as f64);

    // 2. Dashboard (counts per queue and agent, no scan).
    let mut dash = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let d = store.dashboard(now_ms(), 3_600_000).await?;
        dash.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(d.total.open as u64, n);
    }
    println!(
        "dashboard query:         p50 {:.1} ms, p99 {:.1} ms (20 queues, 200 agents)",
        pct(&mut dash.clone(), 0.5),
        pct(&mut dash, 0.99)
    );

    // 3. Sweep latency: 10,000 targets fall due together among the N.
    let k = 10_000u64;
    let due = now_ms() + 3_000;
    let soon: Vec<LiveEntry> = (n..n + k).map(|i| LiveEntry { warn_at: None, ..entry(i, due) }).collect();
    for b in soon.chunks(1000) {
        store.put_many(b).await?;
    }
    store.set_epoch("bench").await?;
    let meter = Arc::new(LagMeter { due, lags: Mutex::new(Vec::new()) });
    let sweeper = Arc::new(Sweeper::new(
        store.clone(),
        meter.clone(),
        Arc::new(SystemClock),
        SweeperConfig { owner: "bench".into(), interval: Duration::from_millis(100), batch: 500, ..Default::default() },
    ));
    let cancel = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(sweeper.clone().run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while meter.lags.lock().map_or(0, |l| l.len()) < k as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    run.await?;
    let mut lags = meter.lags.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    println!(
        "sweep lag (due → event): {} of {k} handled; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (tick 100 ms)",
        lags.len(),
        pct(&mut lags.clone(), 0.5),
        pct(&mut lags.clone(), 0.99),
        pct(&mut lags, 1.0)
    );

    // 4. Rebuild from PostgreSQL after a flush.
    sqlx::any::install_default_drivers();
    let db = format!("kefu_bench_{}", std::process::id());
    let url = kefu_kit::db::create_postgres_database(&pg_admin, &db).await?;
    let pool = kefu_kit::db::connect(&url, 4).await?;
    kefu_kit::db::migrate(&pool, &kefu_tickets::MIGRATOR).await?;
    let t = Instant::now();
    sqlx::query(&format!(
        "INSERT INTO sla_targets (record_id, metric, cycle, policy_id, clock, duration_ms, warn_percent, started_at, consumed_ms, \
         running_since, due_at, warn_at, open) \
         SELECT '01900000-0000-7000-8000-' || lpad(g::text, 12, '0'), 'resolution', 1, 'default', 'business', 57600000, 80, {now}, 0, \
         {now}, {far} + (g % 86400000), {far} - 3600000, 1 FROM generate_series(0, {last}) g",
        now = now_ms(),
        last = n - 1
    ))
    .execute(&pool)
    .await?;
    // A bulk load leaves no planner statistics; autovacuum would gather them soon after.
    sqlx::query("ANALYZE sla_targets").execute(&pool).await?;
    println!("postgres seed:           {n} open targets in {:.1} s", t.elapsed().as_secs_f64());
    let _: () = redis::cmd("FLUSHDB").arg("ASYNC").query_async(&mut con).await?;
    let live: Arc<dyn LiveStore> = store.clone();
    let engine =
        kefu_tickets::SlaEngine::load(pool.clone(), live.clone(), Arc::new(SystemClock), Default::default()).await?;
    let t = Instant::now();
    let rebuilt = engine.rebuild(live.as_ref()).await?;
    let took = t.elapsed();
    println!(
        "rebuild from postgres:   {rebuilt} targets in {:.1} s ({:.0} targets/s)",
        took.as_secs_f64(),
        rebuilt as f64 / took.as_secs_f64()
    );
    pool.close().await;
    let admin = kefu_kit::db::connect(&pg_admin, 1).await?;
    sqlx::query(&format!("DROP DATABASE {db}")).execute(&admin).await?;
    let _: () = redis::cmd("FLUSHDB").arg("ASYNC").query_async(&mut con).await?;
    Ok(())
}
