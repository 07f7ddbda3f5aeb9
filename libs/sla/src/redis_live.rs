//! The live store on Redis, laid out to stay small at millions of targets.
//! Every key of a shard carries the shard's hash tag, so a script touches
//! one slot of a Redis Cluster (the scripts derive some key names from the
//! shard prefix they are given; all share that tag):
//!
//! - `kefu:{s<n>}:t:<b>` — the targets' states, one hash field per target
//!   (`record|metric|cycle` → a short text of state, due and warning time,
//!   queue and agent), in 2,048 buckets per shard by record so that each
//!   bucket stays small enough for Redis's compact encoding;
//! - `kefu:{s<n>}:d:<minute>` — the next pending time (warning, else due) of
//!   each running target, one sorted set per minute, and `kefu:{s<n>}:dir`
//!   the minutes that have one: the sweeper claims from the oldest minutes;
//! - `kefu:{s<n>}:n` — open and breached counts per queue and agent, kept
//!   exact by the script that writes a target (it reads the previous state
//!   in the same atomic step);
//! - `kefu:{s<n>}:claims` — claimed entries scored by lease expiry;
//! - `kefu:{s<n>}:lease` — the shard's sweeper lease;
//! - `kefu:{meta}:epoch2:<shards>x<buckets>` — gone after a flush or
//!   restart, or when the layout or shard count changed: clear and rebuild;
//! - channels `kefu:sla:events` and `kefu:records:changes`.
//!
//! (`kefu` is the default prefix; deployments sharing a Redis pick their own.)
use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::StreamExt;
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use tokio::sync::broadcast;

use crate::{
    live::{Claimed, Dashboard, GroupCounts, LiveEntry, LiveStore, RecordChange, shard_of},
    target::{SlaEvent, TargetKey, TargetState},
};

/// State buckets per shard. At 2,048 a shard's buckets keep under Redis's
/// default 128 entries for a compact hash up to about four million targets.
const BUCKETS: u32 = 2048;

/// Functions every script shares: the bucket of a member (the same hash as
/// [`bucket_of`]), the parse of a state text (see [`encode`]) and the time a
/// running target waits for next.
const LUA_COMMON: &str = r"
local p = ARGV[1]
local nb = tonumber(ARGV[2])
local function bucket(m)
  local rid = string.match(m, '^(.*)|[^|]*|[^|]*$') or m
  local h = 0
  for i = 1, #rid do h = (h * 31 + string.byte(rid, i)) % 1000003 end
  return p .. 't:' .. (h % nb)
end
local function parse(v)
  if not v then return nil end
  local s, d, w, ql, pos = string.match(v, '^(%a)(%w*),(%w*),(%d+),()')
  if not s then return nil end
  ql = tonumber(ql)
  return { s = s, d = tonumber(d, 36), w = tonumber(w, 36),
           q = string.sub(v, pos, pos + ql - 1), a = string.sub(v, pos + ql) }
end
local function next_at(e)
  if e.s == 'a' then
    if e.w and e.d then return math.min(e.w, e.d) end
    return e.w or e.d
  elseif e.s == 'w' then
    return e.d
  end
  return nil
end
local function minute(t) return math.floor(t / 60000) end
";

/// KEYS: dir, counts. ARGV: prefix, buckets, then pairs of member and state
/// text (empty: remove).
const PUT_LUA: &str = r"
local function bump(f, by)
  if redis.call('HINCRBY', KEYS[2], f, by) <= 0 then redis.call('HDEL', KEYS[2], f) end
end
local function count(e, by)
  bump('oq:' .. e.q, by)
  bump('oa:' .. e.a, by)
  if e.s == 'b' then
    bump('bq:' .. e.q, by)
    bump('ba:' .. e.a, by)
  end
end
for i = 3, #ARGV, 2 do
  local m, v = ARGV[i], ARGV[i + 1]
  local bk = bucket(m)
  local old = parse(redis.call('HGET', bk, m))
  if old then
    local t = next_at(old)
    if t then
      local mi = minute(t)
      local ik = p .. 'd:' .. mi
      redis.call('ZREM', ik, m)
      if redis.call('EXISTS', ik) == 0 then redis.call('ZREM', KEYS[1], mi) end
    end
    count(old, -1)
  end
  local e = parse(v)
  if e then
    redis.call('HSET', bk, m, v)
    local t = next_at(e)
    if t then
      local mi = minute(t)
      redis.call('ZADD', p .. 'd:' .. mi, t, m)
      redis.call('ZADD', KEYS[1], mi, mi)
    end
    count(e, 1)
  elseif old then
    redis.call('HDEL', bk, m)
  end
end
return 0
";

/// KEYS: dir, claims. ARGV: prefix, buckets, now, limit, lease until.
/// Re-takes lapsed claims, then claims running targets whose warning or due
/// time has come: `w|member` and/or `b|member`.
const CLAIM_LUA: &str = r"
local now = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local out = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, n)
for _, c in ipairs(stale) do
  redis.call('ZADD', KEYS[2], ARGV[5], c)
  table.insert(out, c)
end
n = n - #stale
if n > 0 then
  local mins = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', minute(now))
  for _, mi in ipairs(mins) do
    if n <= 0 then break end
    local ik = p .. 'd:' .. mi
    local ready = redis.call('ZRANGEBYSCORE', ik, '-inf', ARGV[3], 'LIMIT', 0, n)
    for _, m in ipairs(ready) do
      redis.call('ZREM', ik, m)
      local e = parse(redis.call('HGET', bucket(m), m))
      if e then
        if e.s == 'a' and e.w and e.w <= now then
          redis.call('ZADD', KEYS[2], ARGV[5], 'w|' .. m)
          table.insert(out, 'w|' .. m)
        end
        if (e.s == 'a' or e.s == 'w') and e.d and e.d <= now then
          redis.call('ZADD', KEYS[2], ARGV[5], 'b|' .. m)
          table.insert(out, 'b|' .. m)
        end
      end
      n = n - 1
    end
    if redis.call('EXISTS', ik) == 0 then redis.call('ZREM', KEYS[1], mi) end
  end
end
return out
";

/// KEYS: dir, claims, counts. ARGV: prefix, buckets, horizon. Answers the
/// shard's counts and, as `rq:`/`ra:` fields, its running targets due by
/// the horizon per queue and agent (those waiting and those claimed).
const DASHBOARD_LUA: &str = r"
local horizon = tonumber(ARGV[3])
local risk = {}
local seen = {}
local function consider(m)
  if seen[m] then return end
  seen[m] = true
  local e = parse(redis.call('HGET', bucket(m), m))
  if e and (e.s == 'a' or e.s == 'w') and e.d and e.d <= horizon then
    risk['rq:' .. e.q] = (risk['rq:' .. e.q] or 0) + 1
    risk['ra:' .. e.a] = (risk['ra:' .. e.a] or 0) + 1
  end
end
for _, mi in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', minute(horizon))) do
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', p .. 'd:' .. mi, '-inf', ARGV[3])) do consider(m) end
end
for _, c in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do consider(string.sub(c, 3)) end
local out = redis.call('HGETALL', KEYS[3])
for f, c in pairs(risk) do
  table.insert(out, f)
  table.insert(out, tostring(c))
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
    put: Script,
    claim: Script,
    dashboard: Script,
    lease: Script,
    release: Script,
    heartbeat: Script,
}

/// Key names under one prefix (`kefu` unless several deployments share a Redis).
#[derive(Clone)]
struct Keys(String);

impl Keys {
    /// The prefix of a shard's keys, `kefu:{s<n>}:`.
    fn shard_prefix(&self, shard: u32) -> String {
        format!("{}:{{s{shard}}}:", self.0)
    }
    fn shard(&self, shard: u32, what: &str) -> String {
        format!("{}{what}", self.shard_prefix(shard))
    }
    /// Named for the layout and the shard count: a view written in another
    /// layout, or over another number of shards, has no epoch under this
    /// name, so it is cleared and rebuilt. (Every replica must run with the
    /// same `KEFU_SLA_SHARDS`.)
    fn epoch(&self, shards: u32) -> String {
        format!("{}:{{meta}}:epoch2:{shards}x{BUCKETS}", self.0)
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

/// The state bucket of a record (the scripts compute the same).
fn bucket_of(record_id: &str) -> u32 {
    let mut h: u32 = 0;
    for b in record_id.as_bytes() {
        h = (h * 31 + u32::from(*b)) % 1_000_003;
    }
    h % BUCKETS
}

fn base36(n: i64) -> String {
    let mut n = u64::try_from(n).unwrap_or(0);
    let mut out = Vec::new();
    loop {
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A target's state as the scripts read it: the state's letter, due and
/// warning times in base 36 (Unix ms; empty when none), the queue's length,
/// then the queue and the agent — `a1a2b3c4d,1a2b3c4,3,taxagent-7`. `None`
/// for a finished target (it leaves the view).
fn encode(e: &LiveEntry) -> Option<String> {
    let s = match e.state {
        TargetState::Active => 'a',
        TargetState::Warning => 'w',
        TargetState::Breached => 'b',
        TargetState::Paused => 'p',
        TargetState::Fulfilled | TargetState::FulfilledLate => return None,
    };
    let t = |v: Option<i64>| v.map(base36).unwrap_or_default();
    Some(format!("{s}{},{},{},{}{}", t(e.due_at), t(e.warn_at), e.queue.len(), e.queue, e.assignee))
}

fn decode(member: &str, v: &str) -> Option<LiveEntry> {
    let key = TargetKey::parse_member(member)?;
    let mut chars = v.chars();
    let state = match chars.next()? {
        'a' => TargetState::Active,
        'w' => TargetState::Warning,
        'b' => TargetState::Breached,
        'p' => TargetState::Paused,
        _ => return None,
    };
    let mut parts = chars.as_str().splitn(4, ',');
    let time = |s: &str| if s.is_empty() { Some(None) } else { i64::from_str_radix(s, 36).ok().map(Some) };
    let due_at = time(parts.next()?)?;
    let warn_at = time(parts.next()?)?;
    let qlen: usize = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let (queue, assignee) = (rest.get(..qlen)?, rest.get(qlen..)?);
    Some(LiveEntry { key, state, due_at, warn_at, queue: queue.to_owned(), assignee: assignee.to_owned() })
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

/// Deletes the keys matching `pattern` that `keep_going` accepts, a
/// thousand at a time (SCAN, then UNLINK); answers how many.
async fn unlink_matching(
    con: &mut ConnectionManager,
    pattern: &str,
    doomed: impl Fn(&str) -> bool,
) -> redis::RedisResult<usize> {
    let (mut cursor, mut removed) = (0_u64, 0_usize);
    loop {
        let (next, found): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000).query_async(con).await?;
        let chosen: Vec<&String> = found.iter().filter(|k| doomed(k)).collect();
        if !chosen.is_empty() {
            removed += chosen.len();
            let _: i64 = redis::cmd("UNLINK").arg(&chosen).query_async(con).await?;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

/// Deletes what the first layout (a JSON hash per record, four sorted sets
/// per target) left, once: its epoch key says it is there. Runs in the
/// background; the view itself is rebuilt in the current layout.
async fn retire_first_layout(mut con: ConnectionManager, keys: Keys) {
    let old_epoch = format!("{}:{{meta}}:epoch", keys.0);
    match con.exists::<_, bool>(&old_epoch).await {
        Ok(true) => {}
        _ => return,
    }
    let mut removed = 0_usize;
    for pattern in [
        format!("{}:{{r:*}}:sla", keys.0),
        format!("{}:{{dash}}:*", keys.0),
        format!("{}:{{s*}}:due", keys.0),
        format!("{}:{{s*}}:warn", keys.0),
    ] {
        match unlink_matching(&mut con, &pattern, |_| true).await {
            Ok(n) => removed += n,
            Err(_) => {
                tracing::warn!("could not finish removing the first SLA live layout's keys; the next start retries");
                return;
            }
        }
    }
    let _: redis::RedisResult<i64> = con.del(&old_epoch).await;
    tracing::info!(keys = removed, "removed the first SLA live layout's keys");
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
        tokio::spawn(retire_first_layout(con.clone(), keys.clone()));
        Ok(Self {
            con,
            keys,
            shards: shards.max(1),
            events,
            changes,
            interrupted,
            _relay: stop.drop_guard(),
            put: Script::new(&format!("{LUA_COMMON}{PUT_LUA}")),
            claim: Script::new(&format!("{LUA_COMMON}{CLAIM_LUA}")),
            dashboard: Script::new(&format!("{LUA_COMMON}{DASHBOARD_LUA}")),
            lease: Script::new(LEASE_LUA),
            release: Script::new(RELEASE_LUA),
            heartbeat: Script::new(HEARTBEAT_LUA),
        })
    }

    fn con(&self) -> ConnectionManager {
        self.con.clone()
    }

    /// Writes (state text) or removes (`None`) targets of one shard in one
    /// atomic step.
    async fn write_shard(&self, shard: u32, items: &[(String, Option<String>)]) -> anyhow::Result<()> {
        let mut inv = self.put.prepare_invoke();
        inv.key(self.keys.shard(shard, "dir")).key(self.keys.shard(shard, "n"));
        inv.arg(self.keys.shard_prefix(shard)).arg(BUCKETS);
        for (member, state) in items {
            inv.arg(member).arg(state.as_deref().unwrap_or(""));
        }
        let mut con = self.con();
        let _: i64 = inv.invoke_async(&mut con).await?;
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
        let mut by_shard: BTreeMap<u32, Vec<(String, Option<String>)>> = BTreeMap::new();
        for e in entries {
            by_shard.entry(shard_of(&e.key.record_id, self.shards)).or_default().push((e.key.member(), encode(e)));
        }
        // One script call per shard, sent together (the connection pipelines them).
        futures::future::try_join_all(by_shard.iter().map(|(shard, items)| self.write_shard(*shard, items))).await?;
        Ok(())
    }

    async fn remove(&self, key: &TargetKey) -> anyhow::Result<()> {
        self.write_shard(shard_of(&key.record_id, self.shards), &[(key.member(), None)]).await
    }

    async fn record(&self, record_id: &str) -> anyhow::Result<Vec<LiveEntry>> {
        let mut con = self.con();
        let shard = shard_of(record_id, self.shards);
        let bucket = self.keys.shard(shard, &format!("t:{}", bucket_of(record_id)));
        let all: Vec<(String, String)> = con.hgetall(bucket).await?;
        let mut v: Vec<LiveEntry> =
            all.iter().filter_map(|(m, s)| decode(m, s)).filter(|e| e.key.record_id == record_id).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(v)
    }

    async fn claim(&self, shard: u32, now: i64, limit: usize, lease_until: i64) -> anyhow::Result<Vec<Claimed>> {
        let mut con = self.con();
        let members: Vec<String> = self
            .claim
            .key(self.keys.shard(shard, "dir"))
            .key(self.keys.shard(shard, "claims"))
            .arg(self.keys.shard_prefix(shard))
            .arg(BUCKETS)
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
        let horizon = now.saturating_add(within_ms);
        let per_shard = futures::future::try_join_all((0..self.shards).map(|shard| async move {
            let mut con = self.con();
            self.dashboard
                .key(self.keys.shard(shard, "dir"))
                .key(self.keys.shard(shard, "claims"))
                .key(self.keys.shard(shard, "n"))
                .arg(self.keys.shard_prefix(shard))
                .arg(BUCKETS)
                .arg(horizon)
                .invoke_async::<Vec<String>>(&mut con)
                .await
        }))
        .await?;
        let mut queues: BTreeMap<String, GroupCounts> = BTreeMap::new();
        let mut agents: BTreeMap<String, GroupCounts> = BTreeMap::new();
        for flat in per_shard {
            for pair in flat.chunks_exact(2) {
                let (Some((kind, name)), Ok(n)) = (pair[0].split_at_checked(2), pair[1].parse::<i64>()) else {
                    continue;
                };
                let Some(name) = name.strip_prefix(':') else { continue };
                let (group, field) = match kind {
                    "oq" => (&mut queues, 0),
                    "oa" => (&mut agents, 0),
                    "rq" => (&mut queues, 1),
                    "ra" => (&mut agents, 1),
                    "bq" => (&mut queues, 2),
                    "ba" => (&mut agents, 2),
                    _ => continue,
                };
                let c = group.entry(name.to_owned()).or_default();
                match field {
                    0 => c.open += n,
                    1 => c.at_risk += n,
                    _ => c.breached += n,
                }
            }
        }
        let mut d = Dashboard::default();
        for (name, c) in queues {
            if c.open > 0 {
                d.total.open += c.open;
                d.total.at_risk += c.at_risk;
                d.total.breached += c.breached;
                d.by_queue.insert(name, c);
            }
        }
        d.by_assignee = agents.into_iter().filter(|(_, c)| c.open > 0).collect();
        Ok(d)
    }

    async fn clear_view(&self) -> anyhow::Result<()> {
        let mut con = self.con();
        let pattern = format!("{}:{{s*}}:*", self.keys.0);
        unlink_matching(&mut con, &pattern, |k| !k.ends_with(":lease")).await?;
        Ok(())
    }

    async fn epoch(&self) -> anyhow::Result<Option<String>> {
        let mut con = self.con();
        Ok(con.get(self.keys.epoch(self.shards)).await?)
    }

    async fn set_epoch(&self, epoch: &str) -> anyhow::Result<()> {
        let mut con = self.con();
        let _: () = con.set(self.keys.epoch(self.shards), epoch).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Metric;

    #[test]
    fn state_texts_round_trip_with_any_queue_or_agent_text() {
        let e = LiveEntry {
            key: TargetKey { record_id: "a|b".into(), metric: Metric::Resolution, cycle: 2 },
            state: TargetState::Warning,
            due_at: Some(1_764_000_000_123),
            warn_at: None,
            queue: "税务,queue|1".into(),
            assignee: "agent,7".into(),
        };
        let text = encode(&e).unwrap();
        assert_eq!(decode(&e.key.member(), &text), Some(e.clone()));
        let done = LiveEntry { state: TargetState::Fulfilled, ..e };
        assert_eq!(encode(&done), None, "a finished target leaves the view");
        assert_eq!(decode("x|resolution|1", "z,,0,"), None, "an unknown state letter");
    }

    #[test]
    fn buckets_stay_in_range_and_follow_the_record() {
        assert!(bucket_of("01900000-0000-7000-8000-000000000001") < BUCKETS);
        assert_eq!(bucket_of("t-1"), bucket_of("t-1"));
    }
}
