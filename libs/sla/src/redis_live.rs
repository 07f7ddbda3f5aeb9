//! The live store on Redis. Keys are hash-tagged so that every multi-key
//! script touches one slot of a Redis Cluster:
//!
//! - `kefu:{r:<record>}:sla` — hash, one field per target (JSON);
//! - `kefu:{s<n>}:due`, `kefu:{s<n>}:warn` — sorted sets by due / warning time;
//! - `kefu:{s<n>}:claims` — claimed entries scored by lease expiry;
//! - `kefu:{s<n>}:lease` — the shard's sweeper lease;
//! - `kefu:{dash}:open:q:<queue>` / `:a:<agent>` — open targets scored by
//!   pending due time (+inf when paused or breached), `kefu:{dash}:breached:…`
//!   — breached targets, and `kefu:{dash}:queues` / `:agents` — the groups;
//! - `kefu:{meta}:epoch` — gone after a flush or restart: rebuild;
//! - channel `kefu:sla:events`.
//!
//! (`kefu` is the default prefix; deployments sharing a Redis pick their own.)
use async_trait::async_trait;
use futures::StreamExt;
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use tokio::sync::broadcast;

use crate::{
    live::{Claimed, Dashboard, GroupCounts, LiveEntry, LiveStore, RecordChange, shard_of},
    target::{SlaEvent, TargetKey, TargetState},
};

const CLAIM_LUA: &str = r"
local out = {}
local n = tonumber(ARGV[2])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, n)
for _, m in ipairs(stale) do
  redis.call('ZADD', KEYS[3], ARGV[3], m)
  table.insert(out, m)
end
n = n - #stale
local sets = { {KEYS[1], 'b|'}, {KEYS[2], 'w|'} }
for _, s in ipairs(sets) do
  if n > 0 then
    local ready = redis.call('ZRANGEBYSCORE', s[1], '-inf', ARGV[1], 'LIMIT', 0, n)
    for _, m in ipairs(ready) do
      redis.call('ZREM', s[1], m)
      redis.call('ZADD', KEYS[3], ARGV[3], s[2] .. m)
      table.insert(out, s[2] .. m)
    end
    n = n - #ready
  end
end
return out
";

const LEASE_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

const HEARTBEAT_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
";

const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

pub struct RedisLiveStore {
    con: ConnectionManager,
    keys: Keys,
    shards: u32,
    events: broadcast::Sender<SlaEvent>,
    changes: broadcast::Sender<RecordChange>,
    /// Bumped each time the pub/sub relay lost its subscription.
    interrupted: tokio::sync::watch::Sender<u64>,
    /// Stops the relay when the store is dropped.
    _relay: tokio_util::sync::DropGuard,
    claim: Script,
    lease: Script,
    release: Script,
    heartbeat: Script,
}

/// Key names under one prefix (`kefu` unless several deployments share a Redis).
#[derive(Clone)]
struct Keys(String);

impl Keys {
    fn record(&self, record_id: &str) -> String {
        format!("{}:{{r:{record_id}}}:sla", self.0)
    }
    fn shard(&self, shard: u32, what: &str) -> String {
        format!("{}:{{s{shard}}}:{what}", self.0)
    }
    fn open(&self, group: char, name: &str) -> String {
        format!("{}:{{dash}}:open:{group}:{name}", self.0)
    }
    fn breached(&self, group: char, name: &str) -> String {
        format!("{}:{{dash}}:breached:{group}:{name}", self.0)
    }
    fn groups(&self, group: &str) -> String {
        format!("{}:{{dash}}:{group}", self.0)
    }
    fn epoch(&self) -> String {
        format!("{}:{{meta}}:epoch", self.0)
    }
    fn sweepers(&self) -> String {
        format!("{}:{{meta}}:sweepers", self.0)
    }
    fn channel(&self) -> String {
        format!("{}:sla:events", self.0)
    }
    fn changes_channel(&self) -> String {
        format!("{}:records:changes", self.0)
    }
}

fn field(key: &TargetKey) -> String {
    format!("{}|{}", key.metric.as_str(), key.cycle)
}

async fn subscribe(client: &redis::Client, keys: &Keys) -> anyhow::Result<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| anyhow::anyhow!("Redis pub/sub: {e}"))?;
    pubsub.subscribe(keys.channel()).await?;
    pubsub.subscribe(keys.changes_channel()).await?;
    Ok(pubsub)
}

/// Relays the channels to local subscribers for as long as the process
/// lives: when the subscription ends (Redis restarted, connection lost) it
/// tells the watchers (they end with UNAVAILABLE and replay from the
/// database) and subscribes again, backing off up to five seconds.
async fn relay(
    client: redis::Client,
    keys: Keys,
    mut pubsub: redis::aio::PubSub,
    events: broadcast::Sender<SlaEvent>,
    changes: broadcast::Sender<RecordChange>,
    interrupted: tokio::sync::watch::Sender<u64>,
    stop: tokio_util::sync::CancellationToken,
) {
    let changes_channel = keys.changes_channel();
    loop {
        {
            let mut stream = pubsub.on_message();
            loop {
                let msg = tokio::select! {
                    () = stop.cancelled() => return,
                    msg = stream.next() => msg,
                };
                let Some(msg) = msg else { break };
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if msg.get_channel_name() == changes_channel {
                    if let Ok(c) = serde_json::from_str::<RecordChange>(&payload) {
                        let _ = changes.send(c);
                    }
                    continue;
                }
                match serde_json::from_str::<SlaEvent>(&payload) {
                    Ok(ev) => {
                        let _ = events.send(ev);
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed SLA event on the channel"),
                }
            }
        }
        interrupted.send_modify(|n| *n += 1);
        tracing::warn!("the Redis event subscription ended; watchers reconnect and replay; subscribing again");
        let mut backoff = std::time::Duration::from_millis(100);
        pubsub = loop {
            if stop.is_cancelled() {
                return;
            }
            match subscribe(&client, &keys).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::debug!(error = %e, "Redis pub/sub not back yet");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
            }
        };
        // Anything published while the subscription was down is in the
        // database; watchers that reconnected replay it.
        interrupted.send_modify(|n| *n += 1);
        tracing::info!("the Redis event subscription is back");
    }
}

impl RedisLiveStore {
    /// Connects and starts relaying the event channel to local subscribers.
    pub async fn connect(url: &str, shards: u32, prefix: &str) -> anyhow::Result<Self> {
        let keys = Keys(prefix.to_owned());
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("KEFU_REDIS_URL is not a Redis URL: {e}"))?;
        // Large pipelines (rebuilds) and a busy server (a FLUSHDB of a big
        // data set) need more than the client's 500 ms default.
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(10)))
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)));
        let con = client
            .get_connection_manager_with_config(cfg)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
        let (events, _) = broadcast::channel(4096);
        let (changes, _) = broadcast::channel(4096);
        let (interrupted, _) = tokio::sync::watch::channel(0_u64);
        // The first subscription is made here so a bad setting fails at start.
        let first = subscribe(&client, &keys).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(relay(
            client.clone(),
            keys.clone(),
            first,
            events.clone(),
            changes.clone(),
            interrupted.clone(),
            stop.clone(),
        ));
        Ok(Self {
            con,
            keys,
            shards: shards.max(1),
            events,
            changes,
            interrupted,
            _relay: stop.drop_guard(),
            claim: Script::new(CLAIM_LUA),
            lease: Script::new(LEASE_LUA),
            release: Script::new(RELEASE_LUA),
            heartbeat: Script::new(HEARTBEAT_LUA),
        })
    }

    fn con(&self) -> ConnectionManager {
        self.con.clone()
    }

    async fn old_entry(&self, key: &TargetKey) -> anyhow::Result<Option<LiveEntry>> {
        let mut con = self.con();
        let raw: Option<String> = con.hget(self.keys.record(&key.record_id), field(key)).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    fn unindex(&self, pipe: &mut redis::Pipeline, shard: u32, e: &LiveEntry) {
        let k = &self.keys;
        let member = e.key.member();
        pipe.zrem(k.shard(shard, "due"), &member).ignore();
        pipe.zrem(k.shard(shard, "warn"), &member).ignore();
        pipe.zrem(k.open('q', &e.queue), &member).ignore();
        pipe.zrem(k.open('a', &e.assignee), &member).ignore();
        pipe.srem(k.breached('q', &e.queue), &member).ignore();
        pipe.srem(k.breached('a', &e.assignee), &member).ignore();
    }

    fn index(&self, pipe: &mut redis::Pipeline, shard: u32, e: &LiveEntry) -> anyhow::Result<()> {
        let k = &self.keys;
        let member = e.key.member();
        if matches!(e.state, TargetState::Fulfilled | TargetState::FulfilledLate) {
            pipe.hdel(k.record(&e.key.record_id), field(&e.key)).ignore();
            return Ok(());
        }
        pipe.hset(k.record(&e.key.record_id), field(&e.key), serde_json::to_string(e)?).ignore();
        let pending_due = matches!(e.state, TargetState::Active | TargetState::Warning).then_some(e.due_at).flatten();
        if let Some(d) = pending_due {
            pipe.zadd(k.shard(shard, "due"), &member, d).ignore();
        }
        if e.state == TargetState::Active
            && let Some(w) = e.warn_at
        {
            pipe.zadd(k.shard(shard, "warn"), &member, w).ignore();
        }
        let score = pending_due.map_or("+inf".to_owned(), |d| d.to_string());
        pipe.cmd("ZADD").arg(k.open('q', &e.queue)).arg(&score).arg(&member).ignore();
        pipe.cmd("ZADD").arg(k.open('a', &e.assignee)).arg(&score).arg(&member).ignore();
        pipe.sadd(k.groups("queues"), &e.queue).ignore();
        pipe.sadd(k.groups("agents"), &e.assignee).ignore();
        if e.state == TargetState::Breached {
            pipe.sadd(k.breached('q', &e.queue), &member).ignore();
            pipe.sadd(k.breached('a', &e.assignee), &member).ignore();
        }
        Ok(())
    }

    /// Bytes Redis uses in all (benchmarks).
    pub async fn used_memory(&self) -> anyhow::Result<u64> {
        let mut con = self.con();
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut con).await?;
        Ok(info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0))
    }
}

#[async_trait]
impl LiveStore for RedisLiveStore {
    fn shards(&self) -> u32 {
        self.shards
    }

    async fn put(&self, e: &LiveEntry) -> anyhow::Result<()> {
        self.put_many(std::slice::from_ref(e)).await
    }

    async fn put_many(&self, entries: &[LiveEntry]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut con = self.con();
        // One round trip for the previous states, one for the writes.
        let mut reads = redis::pipe();
        for e in entries {
            reads.hget(self.keys.record(&e.key.record_id), field(&e.key));
        }
        let olds: Vec<Option<String>> = reads.query_async(&mut con).await?;
        let mut pipe = redis::pipe();
        for (e, old) in entries.iter().zip(olds) {
            let shard = shard_of(&e.key.record_id, self.shards);
            if let Some(old) = old.and_then(|o| serde_json::from_str::<LiveEntry>(&o).ok()) {
                self.unindex(&mut pipe, shard, &old);
            }
            self.index(&mut pipe, shard, e)?;
        }
        pipe.query_async::<()>(&mut con).await?;
        Ok(())
    }

    async fn remove(&self, key: &TargetKey) -> anyhow::Result<()> {
        let Some(old) = self.old_entry(key).await? else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        self.unindex(&mut pipe, shard_of(&key.record_id, self.shards), &old);
        pipe.hdel(self.keys.record(&key.record_id), field(key)).ignore();
        let mut con = self.con();
        pipe.query_async::<()>(&mut con).await?;
        Ok(())
    }

    async fn record(&self, record_id: &str) -> anyhow::Result<Vec<LiveEntry>> {
        let mut con = self.con();
        let all: Vec<(String, String)> = con.hgetall(self.keys.record(record_id)).await?;
        let mut v: Vec<LiveEntry> = all.iter().filter_map(|(_, j)| serde_json::from_str(j).ok()).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(v)
    }

    async fn claim(&self, shard: u32, now: i64, limit: usize, lease_until: i64) -> anyhow::Result<Vec<Claimed>> {
        let mut con = self.con();
        let members: Vec<String> = self
            .claim
            .key(self.keys.shard(shard, "due"))
            .key(self.keys.shard(shard, "warn"))
            .key(self.keys.shard(shard, "claims"))
            .arg(now)
            .arg(limit)
            .arg(lease_until)
            .invoke_async(&mut con)
            .await?;
        Ok(members.iter().filter_map(|m| Claimed::parse(shard, m)).collect())
    }

    async fn ack(&self, c: &Claimed) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: i64 = con.zrem(self.keys.shard(c.shard, "claims"), c.claim_member()).await?;
        Ok(())
    }

    async fn try_lease(&self, shard: u32, owner: &str, ttl_ms: u64) -> anyhow::Result<bool> {
        let mut con = self.con();
        let got: i64 =
            self.lease.key(self.keys.shard(shard, "lease")).arg(owner).arg(ttl_ms).invoke_async(&mut con).await?;
        Ok(got == 1)
    }

    async fn release_lease(&self, shard: u32, owner: &str) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: i64 = self.release.key(self.keys.shard(shard, "lease")).arg(owner).invoke_async(&mut con).await?;
        Ok(())
    }

    async fn heartbeat(&self, owner: &str, ttl_ms: u64) -> anyhow::Result<u32> {
        let mut con = self.con();
        let n: i64 = self.heartbeat.key(self.keys.sweepers()).arg(owner).arg(ttl_ms).invoke_async(&mut con).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn leave(&self, owner: &str) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: i64 = con.zrem(self.keys.sweepers(), owner).await?;
        Ok(())
    }

    async fn dashboard(&self, now: i64, within_ms: i64) -> anyhow::Result<Dashboard> {
        let mut con = self.con();
        let queues: Vec<String> = con.smembers(self.keys.groups("queues")).await?;
        let agents: Vec<String> = con.smembers(self.keys.groups("agents")).await?;
        if queues.is_empty() && agents.is_empty() {
            return Ok(Dashboard::default());
        }
        let horizon = now.saturating_add(within_ms);
        let mut pipe = redis::pipe();
        for (g, names) in [('q', &queues), ('a', &agents)] {
            for n in names {
                pipe.zcard(self.keys.open(g, n));
                pipe.zcount(self.keys.open(g, n), "-inf", horizon);
                pipe.scard(self.keys.breached(g, n));
            }
        }
        let counts: Vec<i64> = pipe.query_async(&mut con).await?;
        let mut d = Dashboard::default();
        let mut it = counts.chunks(3);
        for n in &queues {
            if let Some([open, at_risk, breached]) = it.next() {
                let c = GroupCounts { open: *open, at_risk: *at_risk, breached: *breached };
                d.total.open += c.open;
                d.total.at_risk += c.at_risk;
                d.total.breached += c.breached;
                if c.open > 0 {
                    d.by_queue.insert(n.clone(), c);
                }
            }
        }
        for n in &agents {
            if let Some([open, at_risk, breached]) = it.next()
                && *open > 0
            {
                d.by_assignee.insert(n.clone(), GroupCounts { open: *open, at_risk: *at_risk, breached: *breached });
            }
        }
        Ok(d)
    }

    async fn epoch(&self) -> anyhow::Result<Option<String>> {
        let mut con = self.con();
        Ok(con.get(self.keys.epoch()).await?)
    }

    async fn set_epoch(&self, epoch: &str) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: () = con.set(self.keys.epoch(), epoch).await?;
        Ok(())
    }

    async fn publish(&self, event: &SlaEvent) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: i64 = con.publish(self.keys.channel(), serde_json::to_string(event)?).await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<SlaEvent> {
        self.events.subscribe()
    }

    fn interruptions(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.interrupted.subscribe())
    }

    async fn publish_change(&self, change: &RecordChange) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: i64 = con.publish(self.keys.changes_channel(), serde_json::to_string(change)?).await?;
        Ok(())
    }

    fn subscribe_changes(&self) -> broadcast::Receiver<RecordChange> {
        self.changes.subscribe()
    }
}
