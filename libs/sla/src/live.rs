//! The live view of open SLA targets, behind one trait: Redis in production
//! (`redis_live`), memory in the all-in-one mode. The database holds the
//! durable record; this view is rebuilt from it whenever it is lost.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::target::{SlaEvent, TargetKey, TargetState};

/// What the live view keeps of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEntry {
    pub key: TargetKey,
    pub state: TargetState,
    pub due_at: Option<i64>,
    pub warn_at: Option<i64>,
    #[serde(default)]
    pub queue: String,
    #[serde(default)]
    pub assignee: String,
}

impl LiveEntry {
    /// A target as the live view keeps it, routed to `queue` and `assignee`.
    pub fn of(t: &crate::target::Target, queue: &str, assignee: &str) -> Self {
        Self {
            key: t.key.clone(),
            state: t.state(),
            due_at: t.due_at,
            warn_at: t.warn_at,
            queue: queue.to_owned(),
            assignee: assignee.to_owned(),
        }
    }

    fn finished(&self) -> bool {
        matches!(self.state, TargetState::Fulfilled | TargetState::FulfilledLate)
    }
}

/// A change to a record that watchers follow besides SLA events (a ticket
/// created, updated, assigned, answered, solved…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    /// Stable per change: `record:version`.
    pub id: String,
    pub record_id: String,
    /// e.g. `ticket_created`, `ticket_updated`.
    pub kind: String,
    pub at_ms: i64,
    pub queue: String,
    pub assignee: String,
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DueKind {
    Warning,
    Breach,
}

impl DueKind {
    pub fn prefix(self) -> &'static str {
        match self {
            DueKind::Warning => "w",
            DueKind::Breach => "b",
        }
    }
}

/// A due entry a sweeper has claimed; acknowledge it when handled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claimed {
    pub shard: u32,
    pub key: TargetKey,
    pub kind: DueKind,
}

impl Claimed {
    pub fn claim_member(&self) -> String {
        format!("{}|{}", self.kind.prefix(), self.key.member())
    }

    pub fn parse(shard: u32, claim_member: &str) -> Option<Self> {
        let (p, rest) = claim_member.split_once('|')?;
        let kind = match p {
            "w" => DueKind::Warning,
            "b" => DueKind::Breach,
            _ => return None,
        };
        Some(Self { shard, key: TargetKey::parse_member(rest)?, kind })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    /// Open targets (running, paused or breached, not yet fulfilled).
    pub open: i64,
    /// Running targets due within the asked window (not yet breached).
    pub at_risk: i64,
    pub breached: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    pub total: GroupCounts,
    pub by_queue: BTreeMap<String, GroupCounts>,
    pub by_assignee: BTreeMap<String, GroupCounts>,
}

/// The widest at-risk window a dashboard or list may ask for, in minutes (a
/// week): the count reads each target due in it.
pub const MAX_AT_RISK_MINUTES: i32 = 7 * 24 * 60;

/// An at-risk window in milliseconds from the minutes a caller gave (0: an
/// Where a paged rebuild stands: the last target written (record, metric,
/// cycle), empty before the first page.
pub type RebuildCursor = (String, String, i64);

/// Rebuilds a live view from a service's database: `page(after)` reads the
/// next page of open targets (in key order, after the cursor) as live
/// entries; pages are read in order and written up to eight at a time. The
/// number of entries written.
pub async fn rebuild_in_pages<F, Fut>(live: &dyn LiveStore, mut page: F) -> anyhow::Result<usize>
where
    F: FnMut(RebuildCursor) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<LiveEntry>>>,
{
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut after: RebuildCursor = (String::new(), String::new(), 0);
    let mut n = 0;
    let mut writes = FuturesUnordered::new();
    loop {
        let entries = page(after.clone()).await?;
        let Some(last) = entries.last() else { break };
        after = (last.key.record_id.clone(), last.key.metric.as_str().to_owned(), last.key.cycle);
        n += entries.len();
        writes.push(async move { live.put_many(&entries).await });
        if writes.len() >= 8
            && let Some(r) = writes.next().await
        {
            r?;
        }
    }
    while let Some(r) = writes.next().await {
        r?;
    }
    Ok(n)
}

/// hour), or what is wrong with them.
pub fn at_risk_window(minutes: i32) -> Result<i64, String> {
    match minutes {
        0 => Ok(60 * 60_000),
        n if n < 0 => Err("must not be negative".into()),
        n if n > MAX_AT_RISK_MINUTES => Err(format!("{n} is more than a week; use at most {MAX_AT_RISK_MINUTES}")),
        n => Ok(i64::from(n) * 60_000),
    }
}

/// Stable shard of a record (FNV-1a), the same in every replica.
pub fn shard_of(record_id: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in record_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards.max(1))) as u32
}

#[async_trait]
pub trait LiveStore: Send + Sync {
    fn shards(&self) -> u32;

    /// Writes (or, for a fulfilled target, removes) a target's live state.
    async fn put(&self, entry: &LiveEntry) -> anyhow::Result<()>;
    /// Writes many entries; stores override it to batch round trips.
    async fn put_many(&self, entries: &[LiveEntry]) -> anyhow::Result<()> {
        for e in entries {
            self.put(e).await?;
        }
        Ok(())
    }
    async fn remove(&self, key: &TargetKey) -> anyhow::Result<()>;
    /// The live targets of one record.
    async fn record(&self, record_id: &str) -> anyhow::Result<Vec<LiveEntry>>;

    /// Atomically claims up to `limit` entries of `shard` whose warning or
    /// due time is at or before `now`, and claims whose lease ran out
    /// (a crashed sweeper's). Claims last until `lease_until`.
    async fn claim(&self, shard: u32, now: i64, limit: usize, lease_until: i64) -> anyhow::Result<Vec<Claimed>>;
    async fn ack(&self, claimed: &Claimed) -> anyhow::Result<()>;
    /// Takes or renews the shard's sweeper lease for `owner`.
    async fn try_lease(&self, shard: u32, owner: &str, ttl_ms: u64) -> anyhow::Result<bool>;
    async fn release_lease(&self, shard: u32, owner: &str) -> anyhow::Result<()>;
    /// Announces `owner` as a live sweeper for `ttl_ms` and returns how many
    /// sweepers are live (for sharing the shards out fairly).
    async fn heartbeat(&self, owner: &str, ttl_ms: u64) -> anyhow::Result<u32>;
    /// Takes `owner` off the sweepers' roll (it is stopping).
    async fn leave(&self, owner: &str) -> anyhow::Result<()>;

    /// Counts for dashboards, without scanning records.
    async fn dashboard(&self, now: i64, within_ms: i64) -> anyhow::Result<Dashboard>;

    /// Removes every target, due entry, count and claim (not the leases),
    /// before a view that was lost is rebuilt.
    async fn clear_view(&self) -> anyhow::Result<()>;

    /// A marker that disappears with the live state (restart, flush,
    /// failover): when it is gone the view is rebuilt.
    async fn epoch(&self) -> anyhow::Result<Option<String>>;
    async fn set_epoch(&self, epoch: &str) -> anyhow::Result<()>;

    /// Fans an event out to every replica's watchers.
    async fn publish(&self, event: &SlaEvent) -> anyhow::Result<()>;
    fn subscribe(&self) -> broadcast::Receiver<SlaEvent>;
    /// Changes each time the fan-out was interrupted (events published
    /// meanwhile did not reach [`LiveStore::subscribe`]); `None` when it
    /// cannot be (memory).
    fn interruptions(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Fans a record change out to every replica's watchers.
    async fn publish_change(&self, change: &RecordChange) -> anyhow::Result<()>;
    fn subscribe_changes(&self) -> broadcast::Receiver<RecordChange>;
}

/// One target as the memory store keeps it: small, because the live view of
/// `kefu up` holds every open target. Queue and agent names are shared.
struct MemEntry {
    state: TargetState,
    due_at: Option<i64>,
    warn_at: Option<i64>,
    queue: Arc<str>,
    assignee: Arc<str>,
}

impl MemEntry {
    fn to_live(&self, member: &str) -> Option<LiveEntry> {
        Some(LiveEntry {
            key: TargetKey::parse_member(member)?,
            state: self.state,
            due_at: self.due_at,
            warn_at: self.warn_at,
            queue: self.queue.to_string(),
            assignee: self.assignee.to_string(),
        })
    }

    fn running(&self) -> bool {
        matches!(self.state, TargetState::Active | TargetState::Warning)
    }

    /// The time the target waits for next: its warning, else its due time.
    fn next_at(&self) -> Option<i64> {
        match self.state {
            TargetState::Active => match (self.warn_at, self.due_at) {
                (Some(w), Some(d)) => Some(w.min(d)),
                (w, d) => w.or(d),
            },
            TargetState::Warning => self.due_at,
            _ => None,
        }
    }
}

#[derive(Default)]
struct MemInner {
    /// By member (`record|metric|cycle`).
    entries: HashMap<Arc<str>, MemEntry>,
    /// Running targets by the time they wait for next, per shard.
    due: BTreeMap<u32, BTreeSet<(i64, Arc<str>)>>,
    names: HashSet<Arc<str>>,
    claims: BTreeMap<u32, HashMap<String, i64>>,
    leases: HashMap<u32, (String, std::time::Instant)>,
    sweepers: HashMap<String, std::time::Instant>,
    epoch: Option<String>,
}

/// The live store of `kefu up`: the same semantics, in one process.
pub struct MemoryLiveStore {
    shards: u32,
    inner: Mutex<MemInner>,
    events: broadcast::Sender<SlaEvent>,
    changes: broadcast::Sender<RecordChange>,
}

impl MemoryLiveStore {
    pub fn new(shards: u32) -> Self {
        Self {
            shards: shards.max(1),
            inner: Mutex::new(MemInner::default()),
            events: broadcast::channel(4096).0,
            changes: broadcast::channel(4096).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets everything, as a Redis flush would (for tests).
    pub fn clear(&self) {
        *self.lock() = MemInner::default();
    }
}

impl MemInner {
    fn name(&mut self, n: &str) -> Arc<str> {
        if let Some(have) = self.names.get(n) {
            return have.clone();
        }
        let new: Arc<str> = Arc::from(n);
        self.names.insert(new.clone());
        new
    }

    /// Takes a target out of the view; answers its member's shared name.
    fn take(&mut self, shard: u32, member: &str) -> Option<Arc<str>> {
        let (name, old) = self.entries.remove_entry(member)?;
        if let Some(t) = old.next_at() {
            self.due.entry(shard).or_default().remove(&(t, name.clone()));
        }
        Some(name)
    }

    fn put(&mut self, shard: u32, entry: &LiveEntry) {
        let member = entry.key.member();
        let name = self.take(shard, &member).unwrap_or_else(|| Arc::from(member.as_str()));
        if entry.finished() {
            return;
        }
        let e = MemEntry {
            state: entry.state,
            due_at: entry.due_at,
            warn_at: entry.warn_at,
            queue: self.name(&entry.queue),
            assignee: self.name(&entry.assignee),
        };
        if let Some(t) = e.next_at() {
            self.due.entry(shard).or_default().insert((t, name.clone()));
        }
        self.entries.insert(name, e);
    }
}

#[async_trait]
impl LiveStore for MemoryLiveStore {
    fn shards(&self) -> u32 {
        self.shards
    }

    async fn put(&self, entry: &LiveEntry) -> anyhow::Result<()> {
        let shard = shard_of(&entry.key.record_id, self.shards);
        self.lock().put(shard, entry);
        Ok(())
    }

    async fn put_many(&self, entries: &[LiveEntry]) -> anyhow::Result<()> {
        let mut g = self.lock();
        for e in entries {
            g.put(shard_of(&e.key.record_id, self.shards), e);
        }
        Ok(())
    }

    async fn remove(&self, key: &TargetKey) -> anyhow::Result<()> {
        let shard = shard_of(&key.record_id, self.shards);
        self.lock().take(shard, &key.member());
        Ok(())
    }

    async fn record(&self, record_id: &str) -> anyhow::Result<Vec<LiveEntry>> {
        let g = self.lock();
        let mut v: Vec<LiveEntry> =
            g.entries.iter().filter_map(|(m, e)| e.to_live(m)).filter(|e| e.key.record_id == record_id).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(v)
    }

    async fn claim(&self, shard: u32, now: i64, limit: usize, lease_until: i64) -> anyhow::Result<Vec<Claimed>> {
        let mut g = self.lock();
        let mut out = Vec::new();
        let claims = g.claims.entry(shard).or_default();
        let stale: Vec<String> =
            claims.iter().filter(|(_, until)| **until <= now).map(|(m, _)| m.clone()).take(limit).collect();
        for m in stale {
            claims.insert(m.clone(), lease_until);
            if let Some(c) = Claimed::parse(shard, &m) {
                out.push(c);
            }
        }
        let room = limit.saturating_sub(out.len());
        let set = g.due.entry(shard).or_default();
        let ready: Vec<(i64, Arc<str>)> = set.iter().take_while(|(t, _)| *t <= now).take(room).cloned().collect();
        for item in &ready {
            set.remove(item);
        }
        for (_, member) in ready {
            let (Some(e), Some(key)) = (g.entries.get(&member), TargetKey::parse_member(&member)) else {
                continue;
            };
            let mut kinds = Vec::new();
            if e.state == TargetState::Active && e.warn_at.is_some_and(|w| w <= now) {
                kinds.push(DueKind::Warning);
            }
            if e.running() && e.due_at.is_some_and(|d| d <= now) {
                kinds.push(DueKind::Breach);
            }
            let claims = g.claims.entry(shard).or_default();
            for kind in kinds {
                let c = Claimed { shard, key: key.clone(), kind };
                claims.insert(c.claim_member(), lease_until);
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn ack(&self, claimed: &Claimed) -> anyhow::Result<()> {
        self.lock().claims.entry(claimed.shard).or_default().remove(&claimed.claim_member());
        Ok(())
    }

    async fn try_lease(&self, shard: u32, owner: &str, ttl_ms: u64) -> anyhow::Result<bool> {
        let mut g = self.lock();
        let now = std::time::Instant::now();
        let until = now + std::time::Duration::from_millis(ttl_ms);
        match g.leases.get(&shard) {
            Some((o, exp)) if o != owner && *exp > now => Ok(false),
            _ => {
                g.leases.insert(shard, (owner.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, shard: u32, owner: &str) -> anyhow::Result<()> {
        let mut g = self.lock();
        if g.leases.get(&shard).is_some_and(|(o, _)| o == owner) {
            g.leases.remove(&shard);
        }
        Ok(())
    }

    async fn heartbeat(&self, owner: &str, ttl_ms: u64) -> anyhow::Result<u32> {
        let mut g = self.lock();
        let now = std::time::Instant::now();
        g.sweepers.insert(owner.to_owned(), now + std::time::Duration::from_millis(ttl_ms));
        g.sweepers.retain(|_, until| *until > now);
        Ok(u32::try_from(g.sweepers.len()).unwrap_or(u32::MAX))
    }

    async fn leave(&self, owner: &str) -> anyhow::Result<()> {
        self.lock().sweepers.remove(owner);
        Ok(())
    }

    async fn dashboard(&self, now: i64, within_ms: i64) -> anyhow::Result<Dashboard> {
        let g = self.lock();
        let mut d = Dashboard::default();
        let horizon = now.saturating_add(within_ms);
        for e in g.entries.values() {
            let breached = e.state == TargetState::Breached;
            let at_risk = e.running() && e.due_at.is_some_and(|due| due <= horizon);
            for c in [
                &mut d.total,
                d.by_queue.entry(e.queue.to_string()).or_default(),
                d.by_assignee.entry(e.assignee.to_string()).or_default(),
            ] {
                c.open += 1;
                c.at_risk += i64::from(at_risk);
                c.breached += i64::from(breached);
            }
        }
        Ok(d)
    }

    async fn clear_view(&self) -> anyhow::Result<()> {
        let mut g = self.lock();
        g.entries.clear();
        g.due.clear();
        g.claims.clear();
        g.names.clear();
        Ok(())
    }

    async fn epoch(&self) -> anyhow::Result<Option<String>> {
        Ok(self.lock().epoch.clone())
    }

    async fn set_epoch(&self, epoch: &str) -> anyhow::Result<()> {
        self.lock().epoch = Some(epoch.to_owned());
        Ok(())
    }

    async fn publish(&self, event: &SlaEvent) -> anyhow::Result<()> {
        // No receivers is not an error: nobody is watching.
        let _ = self.events.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<SlaEvent> {
        self.events.subscribe()
    }

    async fn publish_change(&self, change: &RecordChange) -> anyhow::Result<()> {
        let _ = self.changes.send(change.clone());
        Ok(())
    }

    fn subscribe_changes(&self) -> broadcast::Receiver<RecordChange> {
        self.changes.subscribe()
    }
}
