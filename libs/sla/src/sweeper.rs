//! The sweeper turns due times into events. Every replica runs one; per
//! shard, whoever holds the shard's lease claims due entries atomically,
//! hands each to the owning service (which records the transition durably,
//! once), and acknowledges it. Claims of a sweeper that died are re-taken
//! when their lease runs out. When the live view has been lost (its epoch is
//! gone) the service rebuilds it from the database first.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    live::{Claimed, LiveStore},
};

/// What the service that owns the targets does with due entries.
#[async_trait]
pub trait DueHandler: Send + Sync {
    /// Applies a claimed warning or breach. Must be idempotent: the same
    /// claim may arrive twice (a re-taken claim), the event must not.
    async fn handle(&self, claimed: &Claimed, now: i64) -> anyhow::Result<()>;
    /// Puts every open target from the database back into the live store.
    async fn rebuild(&self, store: &dyn LiveStore) -> anyhow::Result<usize>;
    /// Work due by time that is not a target (e.g. second-level
    /// escalations); run once per tick by the holder of shard 0's lease.
    async fn periodic(&self, _now: i64) -> anyhow::Result<usize> {
        Ok(0)
    }
    /// The safety net: up to `limit` warnings and breaches due at or before
    /// `before` that the database says have not fired, whatever the live
    /// view holds. The sweeper hands each to [`DueHandler::handle`].
    async fn overdue(&self, _before: i64, _limit: usize) -> anyhow::Result<Vec<Claimed>> {
        Ok(Vec::new())
    }
}

#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// Identifies this replica in leases.
    pub owner: String,
    /// How long a shard lease lasts without renewal (real time).
    pub lease_ttl: Duration,
    /// How long a claim lasts before another sweeper may re-take it (clock time).
    pub claim_ttl: Duration,
    pub batch: usize,
    /// Claimed entries handled at once.
    pub concurrency: usize,
    pub interval: Duration,
    /// The safety net fires what is this much overdue and still unfired in
    /// the database (the live view normally fires it first).
    pub safety_net_grace: Duration,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            owner: format!("sweeper-{}", std::process::id()),
            lease_ttl: Duration::from_secs(3),
            claim_ttl: Duration::from_secs(30),
            batch: 500,
            concurrency: 16,
            interval: Duration::from_millis(500),
            safety_net_grace: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub rebuilt: Option<usize>,
    pub handled: usize,
    pub failed: usize,
    pub shards_held: u32,
    /// Warnings and breaches the live view had missed, fired by the safety net.
    pub recovered: usize,
}

pub struct Sweeper {
    store: Arc<dyn LiveStore>,
    handler: Arc<dyn DueHandler>,
    clock: Arc<dyn Clock>,
    cfg: SweeperConfig,
    rebuild: Arc<AtomicBool>,
    /// The shards this replica held after its last tick.
    held: std::sync::Mutex<Vec<u32>>,
}

impl Sweeper {
    pub fn new(
        store: Arc<dyn LiveStore>,
        handler: Arc<dyn DueHandler>,
        clock: Arc<dyn Clock>,
        cfg: SweeperConfig,
    ) -> Self {
        Self { store, handler, clock, cfg, rebuild: Arc::new(AtomicBool::new(false)), held: Default::default() }
    }

    /// Shares a flag that, when set (e.g. a live-store write failed), makes
    /// the next tick rebuild the live view from the database.
    #[must_use]
    pub fn with_rebuild_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.rebuild = flag;
        self
    }

    /// Rebuilds the live view if it was lost. Returns how many targets were put back.
    pub async fn ensure_live_view(&self) -> anyhow::Result<Option<usize>> {
        let requested = self.rebuild.swap(false, Ordering::SeqCst);
        let result = async {
            let lost = self.store.epoch().await?.is_none();
            if !requested && !lost {
                return Ok(None);
            }
            if lost {
                // Whatever is left (a view of another layout or shard count,
                // or half a view) goes first, so counts start from zero.
                self.store.clear_view().await?;
            }
            tracing::warn!(
                "SLA live state is missing or behind (first start, restart, flush or failed writes): rebuilding from the database"
            );
            let n = self.handler.rebuild(self.store.as_ref()).await?;
            self.store.set_epoch(&format!("{}@{}", self.cfg.owner, self.clock.now_ms())).await?;
            tracing::info!(targets = n, "SLA live state rebuilt");
            Ok(Some(n))
        }
        .await;
        if result.is_err() && requested {
            // Not done: ask again next tick.
            self.rebuild.store(true, Ordering::SeqCst);
        }
        result
    }

    /// One pass: the live view's due entries of every shard this replica can
    /// lease and, beside it (so a stalled or lost live store cannot hold it
    /// up), the database's safety net.
    pub async fn tick(&self) -> anyhow::Result<TickReport> {
        let (live, net) = tokio::join!(self.tick_live(), self.safety_net());
        let mut report = match live {
            Ok(r) => r,
            Err(e) => {
                // The live store is failing: the safety net still fired what was due.
                net?;
                return Err(e);
            }
        };
        report.recovered = net?;
        report.handled += report.recovered;
        Ok(report)
    }

    /// Fires what the database says is overdue and unfired; returns how many.
    async fn safety_net(&self) -> anyhow::Result<usize> {
        let now = self.clock.now_ms();
        let grace = i64::try_from(self.cfg.safety_net_grace.as_millis()).unwrap_or(i64::MAX / 4);
        let missed = self.handler.overdue(now.saturating_sub(grace), self.cfg.batch).await?;
        let mut n = 0;
        for c in missed {
            match self.handler.handle(&c, now).await {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::error!(error = %e, member = %c.key.member(), "the safety net could not fire an overdue SLA entry; retrying")
                }
            }
        }
        if n > 0 {
            tracing::warn!(fired = n, "the safety net fired SLA entries the live view had missed");
        }
        Ok(n)
    }

    async fn tick_live(&self) -> anyhow::Result<TickReport> {
        let mut report = TickReport { rebuilt: self.ensure_live_view().await?, ..Default::default() };
        let lease_ms = u64::try_from(self.cfg.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let claim_ms = i64::try_from(self.cfg.claim_ttl.as_millis()).unwrap_or(i64::MAX / 4);
        // Shards are shared out fairly over the live sweepers: this one
        // keeps (renews) its own first, takes free ones up to its share, and
        // hands back what is beyond it. A dead replica's heartbeat and leases
        // lapse within `lease_ttl`; the others then take its shards.
        let shards = self.store.shards();
        let sweepers = self.store.heartbeat(&self.cfg.owner, lease_ms).await?.max(1);
        let share = shards.div_ceil(sweepers);
        let mine: Vec<u32> = self.held.lock().map(|h| h.clone()).unwrap_or_default();
        let order: Vec<u32> = mine.iter().copied().chain((0..shards).filter(|s| !mine.contains(s))).collect();
        let mut held = Vec::new();
        for shard in order {
            if u32::try_from(held.len()).unwrap_or(u32::MAX) >= share {
                if mine.contains(&shard) {
                    self.store.release_lease(shard, &self.cfg.owner).await?;
                }
                continue;
            }
            if !self.store.try_lease(shard, &self.cfg.owner, lease_ms).await? {
                continue;
            }
            held.push(shard);
            report.shards_held += 1;
            if shard == 0 {
                match self.handler.periodic(self.clock.now_ms()).await {
                    Ok(n) => report.handled += n,
                    Err(e) => tracing::error!(error = %e, "periodic SLA work failed; retrying"),
                }
            }
            loop {
                let now = self.clock.now_ms();
                let claims = self.store.claim(shard, now, self.cfg.batch, now.saturating_add(claim_ms)).await?;
                let n = claims.len();
                // Records are handled concurrently; the entries of one record
                // in order (its warning before its breach), so that the live
                // state written last is the newest. The owning service's
                // durable, conditional write keeps each event single.
                let mut by_record: std::collections::BTreeMap<String, Vec<Claimed>> = std::collections::BTreeMap::new();
                for c in claims {
                    by_record.entry(c.key.record_id.clone()).or_default().push(c);
                }
                let (handler, store) = (self.handler.clone(), self.store.clone());
                let outcomes: Vec<(Claimed, anyhow::Result<()>)> = futures::stream::iter(by_record.into_values())
                    .map(|mut group| {
                        let (handler, store) = (handler.clone(), store.clone());
                        group.sort_by(|a, b| (&a.key, a.kind).cmp(&(&b.key, b.kind)));
                        async move {
                            let mut out = Vec::with_capacity(group.len());
                            for c in group {
                                let r = match handler.handle(&c, now).await {
                                    Ok(()) => store.ack(&c).await,
                                    Err(e) => Err(e),
                                };
                                out.push((c, r));
                            }
                            out
                        }
                    })
                    .buffer_unordered(self.cfg.concurrency.max(1))
                    .flat_map(futures::stream::iter)
                    .collect()
                    .await;
                for (c, r) in outcomes {
                    match r {
                        Ok(()) => report.handled += 1,
                        // Left claimed: re-taken when the claim lease ends.
                        Err(e) => {
                            report.failed += 1;
                            tracing::error!(error = %e, member = %c.key.member(), "handling a due SLA entry failed; it will be retried");
                        }
                    }
                }
                if n < self.cfg.batch {
                    break;
                }
            }
        }
        if let Ok(mut h) = self.held.lock() {
            *h = held;
        }
        Ok(report)
    }

    /// Sweeps every `interval` until cancelled, then releases its leases and
    /// leaves the sweepers' roll (so the others take its shards at once).
    /// The live view and the safety net run as two loops: a stalled or lost
    /// live store cannot hold up the database's safety net.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let net = {
            let (me, cancel) = (self.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(me.cfg.interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = ticker.tick() => {
                            if let Err(e) = me.safety_net().await {
                                tracing::error!(error = %e, "SLA safety net failed; retrying");
                            }
                        }
                    }
                }
            })
        };
        let mut ticker = tokio::time::interval(self.cfg.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticker.tick() => {
                    if let Err(e) = self.tick_live().await {
                        tracing::error!(error = %e, "SLA sweep failed; retrying");
                    }
                }
            }
        }
        let _ = net.await;
        for shard in 0..self.store.shards() {
            let _ = self.store.release_lease(shard, &self.cfg.owner).await;
        }
        let _ = self.store.leave(&self.cfg.owner).await;
    }
}
