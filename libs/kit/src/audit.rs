//! The audit trail every service keeps the same way: an append-only chain in
//! the service's own database where each entry carries an HMAC-SHA256 over
//! its content and the previous entry's MAC, under an audit key that is not
//! stored in the database (`KEFU_AUDIT_KEYS`; `kefu up` keeps one under its
//! data directory).
//!
//! Someone who can write the database but does not hold the key cannot
//! change, insert or re-link an entry without the verifier naming it. What
//! the key alone cannot show is a chain cut short at its end (the last
//! entries deleted and the head moved back) or replaced whole by an older
//! copy; for that the service logs a checkpoint — `(seq, head)` — at a
//! regular interval for an outside system to keep, and the verifier takes a
//! checkpoint and checks the chain still holds it.
//!
//! Tables ([`SCHEMA`], applied by `kit::db::migrate` after a service's own
//! migrations; services that kept the trail before created them in their
//! own): `audit_head (id, seq, hash)` with the single row `id = 1`, and
//! `audit_log (seq, at, actor, actor_role, action, subject, detail, purpose,
//! prev_hash, hash, key_id)`. Entries written before the chain was keyed
//! (empty `key_id`, plain SHA-256) are signed once at start-up by
//! [`sign_unsigned`] if their chain is intact; the verifier accepts no
//! unsigned entry.
use std::{collections::HashMap, time::Duration};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::{
    Error,
    auth::Principal,
    db::{Bind, Where, fetch_all_as},
    keys::{KeyEntry, parse_key_list},
};

/// The trail's tables, for every service (existing ones are left as they are).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '') ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS audit_log (\
    seq         BIGINT PRIMARY KEY,\
    at          BIGINT NOT NULL,\
    actor       TEXT NOT NULL,\
    actor_role  TEXT NOT NULL,\
    action      TEXT NOT NULL,\
    subject     TEXT NOT NULL,\
    detail      TEXT NOT NULL,\
    purpose     TEXT NOT NULL,\
    prev_hash   TEXT NOT NULL,\
    hash        TEXT NOT NULL,\
    key_id      TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject, seq)",
];

/// Settings of the audit trail, flattened into a service's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Audit keys `KID:BASE64URL[,...]`: the first signs new entries, all
    /// verify. Keep them out of the database's reach (a separate Secret).
    /// Required by `kefu serve`; `kefu up` keeps its own under the data
    /// directory.
    #[arg(long, env = "KEFU_AUDIT_KEYS", hide_env_values = true)]
    pub audit_keys: Option<String>,
    /// How often the audit head is logged as a checkpoint
    /// (`audit checkpoint ... seq head`) for an outside system to keep.
    #[arg(long, env = "KEFU_AUDIT_CHECKPOINT_EVERY", default_value = "1h", value_parser = crate::config::parse_duration)]
    pub audit_checkpoint_every: Duration,
}

impl Default for AuditArgs {
    fn default() -> Self {
        Self { audit_keys: None, audit_checkpoint_every: Duration::from_secs(3600) }
    }
}

impl AuditArgs {
    /// The keys given, or (embedded) the data directory's own.
    pub fn keys(&self, embedded: Option<&crate::module::Embedded>) -> anyhow::Result<AuditKeys> {
        match (&self.audit_keys, embedded) {
            (Some(text), _) => AuditKeys::parse(text),
            (None, Some(e)) => AuditKeys::parse(&e.key_file("audit.keys")?),
            (None, None) => {
                anyhow::bail!("set KEFU_AUDIT_KEYS (--audit-keys): `kefu admin keygen audit` makes one")
            }
        }
    }

    /// Checks a given key parses; an embedded host brings its own.
    pub fn check(&self, embedded: bool) -> anyhow::Result<()> {
        match &self.audit_keys {
            None if embedded => Ok(()),
            None => self.keys(None).map(drop),
            Some(text) => AuditKeys::parse(text).map(drop),
        }
    }
}

/// The keys that sign (the first) and verify (all) audit entries.
#[derive(Clone)]
pub struct AuditKeys {
    active: String,
    keys: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys").field("active", &self.active).finish_non_exhaustive()
    }
}

impl AuditKeys {
    pub fn new(entries: &[KeyEntry]) -> anyhow::Result<Self> {
        let first = entries.first().ok_or_else(|| anyhow::anyhow!("KEFU_AUDIT_KEYS: no key given"))?;
        Ok(Self { active: first.kid.clone(), keys: entries.iter().map(|e| (e.kid.clone(), e.bytes)).collect() })
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::new(&parse_key_list("KEFU_AUDIT_KEYS", text)?)
    }

    /// A fresh key, for tests.
    pub fn generate() -> Self {
        Self::new(&[KeyEntry::generate("audit")]).unwrap_or_else(|_| unreachable!("one key given"))
    }
}

/// What one entry records.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub actor_role: &'a str,
    /// e.g. `customer.create`, `account.disable`.
    pub action: &'a str,
    /// What the entry is about: a customer id, an account id.
    pub subject: &'a str,
    /// What was touched (field names); never sensitive values.
    pub detail: String,
    pub purpose: &'a str,
}

impl<'a> Event<'a> {
    /// An entry by caller `p`, under the role that allowed the call.
    pub fn by(p: &'a Principal, action: &'a str, subject: &'a str) -> Self {
        Self { actor: &p.subject, actor_role: p.primary_role(), action, subject, detail: String::new(), purpose: "" }
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub actor_role: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub purpose: String,
    pub prev_hash: String,
    pub hash: String,
    /// The key that signed it; empty for entries from before keying.
    pub key_id: String,
}

impl Entry {
    /// The MAC the entry should carry, or `None` when its key is unknown.
    fn expected(&self, keys: &AuditKeys) -> Option<String> {
        let fields =
            [&self.actor, &self.actor_role, &self.action, &self.subject, &self.detail, &self.purpose, &self.prev_hash];
        if self.key_id.is_empty() {
            // Before keying: plain SHA-256 (anyone could recompute it).
            let mut h = Sha256::new();
            h.update(b"kefu.audit.v1");
            h.update(self.seq.to_be_bytes());
            h.update(self.at.to_be_bytes());
            for f in fields {
                h.update((f.len() as u64).to_be_bytes());
                h.update(f.as_bytes());
            }
            return Some(hex::encode(h.finalize()));
        }
        let key = keys.keys.get(&self.key_id)?;
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
        m.update(b"kefu.audit.v2");
        m.update(&(self.key_id.len() as u64).to_be_bytes());
        m.update(self.key_id.as_bytes());
        m.update(&self.seq.to_be_bytes());
        m.update(&self.at.to_be_bytes());
        for f in fields {
            m.update(&(f.len() as u64).to_be_bytes());
            m.update(f.as_bytes());
        }
        Some(hex::encode(m.finalize().into_bytes()))
    }
}

/// A point of the chain an outside system keeps: entry `seq` has MAC `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
}

/// Appends an entry inside the caller's transaction. The head row is
/// updated first, so concurrent appenders queue on its lock.
pub async fn append(conn: &mut AnyConnection, keys: &AuditKeys, ev: Event<'_>) -> Result<i64, Error> {
    sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1").execute(&mut *conn).await?;
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *conn).await?;
    let mut e = Entry {
        seq: head.try_get(0)?,
        at: chrono::Utc::now().timestamp_millis(),
        actor: ev.actor.to_owned(),
        actor_role: ev.actor_role.to_owned(),
        action: ev.action.to_owned(),
        subject: ev.subject.to_owned(),
        detail: ev.detail,
        purpose: ev.purpose.to_owned(),
        prev_hash: head.try_get(1)?,
        hash: String::new(),
        key_id: keys.active.clone(),
    };
    e.hash = e.expected(keys).ok_or_else(|| Error::Internal(anyhow::anyhow!("the active audit key is missing")))?;
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, actor_role, action, subject, detail, purpose, prev_hash, hash, key_id) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
    )
    .bind(e.seq)
    .bind(e.at)
    .bind(&e.actor)
    .bind(&e.actor_role)
    .bind(&e.action)
    .bind(&e.subject)
    .bind(&e.detail)
    .bind(&e.purpose)
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .bind(&e.key_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&e.hash).execute(conn).await?;
    Ok(e.seq)
}

/// Entries after `after_seq` (about one subject, or all) in order, at most
/// `limit`.
pub async fn list(
    conn: &mut AnyConnection,
    subject: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Entry>, Error> {
    let mut w = Where::new();
    if let Some(s) = subject {
        w.and("subject = $?", s);
    }
    w.and("seq > $?", after_seq);
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(Bind::Int(limit));
    let sql = format!(
        "SELECT seq, at, actor, actor_role, action, subject, detail, purpose, prev_hash, hash, key_id \
         FROM audit_log WHERE {clause} ORDER BY seq LIMIT ${limit_at}"
    );
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

/// One page of the trail (about one subject, or all) for a list RPC named
/// `list`: the entries and the next page's token (empty at the end).
pub async fn page(
    conn: &mut AnyConnection,
    list: &str,
    subject: Option<&str>,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<Entry>, String), Error> {
    let mut v = crate::error::Violations::new();
    let size = v.check(crate::parse::page_size("page_size", page_size, 100, 1000)).unwrap_or(100);
    let after = v.check(crate::page::after(list, page_token)).flatten();
    v.finish()?;
    let after_seq = match after {
        Some(s) => {
            s.parse::<i64>().map_err(|_| Error::invalid("page_token", "is not a page token returned by this list"))?
        }
        None => 0,
    };
    let rows = self::list(conn, subject, after_seq, size + 1).await?;
    let (rows, more) = crate::page::split(rows, size);
    let next = crate::page::next(list, &rows, more, |e| e.seq.to_string());
    Ok((rows, next))
}

/// The checkpoint a verify request names (`seq` 0 and no hash: none).
pub fn parse_checkpoint(seq: i64, hash: &str) -> Result<Option<Checkpoint>, Error> {
    match (seq, hash.trim()) {
        (0, "") => Ok(None),
        (seq, hash) if seq > 0 && hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(Some(Checkpoint { seq, hash: hash.to_ascii_lowercase() }))
        }
        (seq, _) if seq <= 0 => Err(Error::invalid("checkpoint_seq", "must be a positive entry number")),
        _ => Err(Error::invalid("checkpoint_hash", "must be the 64 hex digits logged with the checkpoint")),
    }
}

/// Verifies the chain (against a kept checkpoint, if given) and logs a
/// failure: what a verify RPC answers.
pub async fn verify_logged(
    conn: &mut AnyConnection,
    keys: &AuditKeys,
    checkpoint: Option<&Checkpoint>,
) -> Result<Verdict, Error> {
    let v = verify(conn, keys, checkpoint).await?;
    if let Some((seq, problem)) = &v.problem {
        tracing::error!(seq, %problem, "audit chain verification failed");
    }
    Ok(v)
}

/// The head: the last entry's sequence number and MAC.
pub async fn head(conn: &mut AnyConnection) -> Result<Checkpoint, Error> {
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(conn).await?;
    Ok(Checkpoint { seq: r.try_get(0)?, hash: r.try_get(1)? })
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub entries_checked: i64,
    /// The head as found.
    pub head: Checkpoint,
    /// The first problem: the sequence number it concerns, and what it is.
    pub problem: Option<(i64, String)>,
}

/// Walks the whole chain, checking every entry's MAC and link, the head,
/// and (if given) that the chain still holds `checkpoint`.
pub async fn verify(
    conn: &mut AnyConnection,
    keys: &AuditKeys,
    checkpoint: Option<&Checkpoint>,
) -> Result<Verdict, Error> {
    let head = head(&mut *conn).await?;
    let mut v = Verdict { entries_checked: 0, head: head.clone(), problem: None };
    let (mut expected_seq, mut prev_hash) = (1_i64, String::new());
    let mut checkpoint_seen = false;
    let mut after = 0;
    'walk: loop {
        let page = list(&mut *conn, None, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        // Entries appended after the head was read are for the next check.
        for e in page.into_iter().filter(|e| e.seq <= head.seq) {
            let problem = if e.seq != expected_seq {
                Some((expected_seq, format!("entry {expected_seq} is missing (the next entry found is {})", e.seq)))
            } else if e.prev_hash != prev_hash {
                Some((
                    e.seq,
                    format!(
                        "entry {} does not link to entry {}: the earlier entry was altered or replaced",
                        e.seq,
                        e.seq - 1
                    ),
                ))
            } else if e.key_id.is_empty() {
                // Entries from before keying are signed at start-up
                // (`sign_unsigned`); an unsigned one now is a forgery.
                Some((e.seq, format!("entry {} is not signed", e.seq)))
            } else {
                match e.expected(keys) {
                    None => Some((
                        e.seq,
                        format!("entry {} is signed with audit key {:?}, which is not configured", e.seq, e.key_id),
                    )),
                    Some(mac) if mac != e.hash => {
                        Some((e.seq, format!("entry {} was altered: its content does not match its signature", e.seq)))
                    }
                    Some(_) => None,
                }
            };
            if let Some(p) = problem {
                v.problem = Some(p);
                break 'walk;
            }
            if let Some(c) = checkpoint
                && c.seq == e.seq
            {
                if c.hash != e.hash {
                    v.problem = Some((e.seq, format!("entry {} differs from the checkpoint kept for it", e.seq)));
                    break 'walk;
                }
                checkpoint_seen = true;
            }
            v.entries_checked += 1;
            expected_seq += 1;
            prev_hash = e.hash;
            after = e.seq;
        }
    }
    if v.problem.is_none() {
        let last = expected_seq - 1;
        if head.seq != last || head.hash != prev_hash {
            v.problem = Some((
                last + 1,
                format!(
                    "the chain ends at entry {last} but the head says {} entries were written: entries from {} on were removed",
                    head.seq,
                    last + 1
                ),
            ));
        } else if let Some(c) = checkpoint
            && !checkpoint_seen
            && c.seq > 0
        {
            v.problem = Some((
                c.seq,
                format!(
                    "the chain ends at entry {last}, before the checkpoint kept for entry {}: entries were removed",
                    c.seq
                ),
            ));
        }
    }
    Ok(v)
}

/// Signs the entries written before the chain was keyed: walks the chain,
/// checks each unsigned entry against its plain hash and link, and rewrites
/// the chain from the first of them with MACs under the active key. Does
/// nothing when every entry is signed, and refuses (leaving the chain for
/// the verifier to report) when an unsigned entry does not check out.
/// Returns how many entries were rewritten.
pub async fn sign_unsigned(pool: &AnyPool, keys: &AuditKeys) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let first: Option<i64> =
        sqlx::query("SELECT MIN(seq) FROM audit_log WHERE key_id = ''").fetch_one(&mut *tx).await?.try_get(0)?;
    let Some(first) = first else { return Ok(0) };
    // Appends wait on the head row until this is done.
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut *tx).await?;
    let (mut prev_old, mut prev_new) = (String::new(), String::new());
    let mut after = 0;
    let mut rewritten = 0;
    loop {
        let page = list(&mut tx, None, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        for mut e in page {
            let genuine = e.prev_hash == prev_old && e.expected(keys).as_deref() == Some(e.hash.as_str());
            if !genuine {
                tracing::error!(seq = e.seq, "audit entry does not check out; the chain is left unsigned for review");
                return Ok(0);
            }
            prev_old = e.hash.clone();
            after = e.seq;
            if e.seq < first {
                prev_new = e.hash.clone();
                continue;
            }
            e.prev_hash = prev_new.clone();
            e.key_id = keys.active.clone();
            e.hash = e.expected(keys).ok_or_else(|| Error::Internal(anyhow::anyhow!("no active audit key")))?;
            sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2, key_id = $3 WHERE seq = $4")
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .bind(&e.key_id)
                .bind(e.seq)
                .execute(&mut *tx)
                .await?;
            prev_new = e.hash;
            rewritten += 1;
        }
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev_new).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(entries = rewritten, "audit entries from before keying signed");
    Ok(rewritten)
}

/// Logs the head as a checkpoint every `every` (an `info` line with the
/// service, `seq` and `head`, for the log pipeline to keep), and an error
/// if the chain ever moves backwards or an entry already checkpointed
/// changes. Ends with `shutdown`.
pub async fn checkpoints(
    service: &'static str,
    pool: AnyPool,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut last: Option<Checkpoint> = None;
    loop {
        match checkpoint_once(&pool, last.as_ref()).await {
            Ok(Ok(c)) => {
                tracing::info!(service, seq = c.seq, head = %c.hash, "audit checkpoint");
                last = Some(c);
            }
            Ok(Err(problem)) => tracing::error!(service, %problem, "audit chain moved backwards"),
            Err(e) => tracing::warn!(service, error = %e, "audit checkpoint could not be read"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn checkpoint_once(pool: &AnyPool, last: Option<&Checkpoint>) -> Result<Result<Checkpoint, String>, Error> {
    let mut conn = pool.acquire().await?;
    let now = head(&mut conn).await?;
    if let Some(prev) = last.filter(|p| p.seq > 0) {
        if now.seq < prev.seq {
            return Ok(Err(format!("the head is at entry {} after a checkpoint at entry {}", now.seq, prev.seq)));
        }
        let held: Option<String> = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(prev.seq)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if held.as_deref() != Some(prev.hash.as_str()) {
            return Ok(Err(format!("entry {} no longer matches its checkpoint", prev.seq)));
        }
    }
    Ok(Ok(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key_id: &str) -> Entry {
        Entry {
            seq: 7,
            at: 1_772_413_200_000,
            actor: "s-1".into(),
            actor_role: "supervisor".into(),
            action: "tax_profile.read".into(),
            subject: "c-1".into(),
            detail: "tax_profile unmasked".into(),
            purpose: "filing".into(),
            prev_hash: "ab".into(),
            hash: String::new(),
            key_id: key_id.into(),
        }
    }

    #[test]
    fn a_keyed_mac_depends_on_the_key_and_every_field() {
        let (k1, k2) = (AuditKeys::generate(), AuditKeys::generate());
        let e = entry(&k1.active);
        let mac = e.expected(&k1).unwrap();
        assert_eq!(e.expected(&k1).unwrap(), mac, "deterministic");
        let other = AuditKeys::new(&[KeyEntry { kid: k1.active.clone(), bytes: k2.keys[&k2.active] }]).unwrap();
        assert_ne!(e.expected(&other).unwrap(), mac, "another key with the same id gives another MAC");
        let relabelled = Entry { action: "customer.update".into(), ..e.clone() };
        assert_ne!(relabelled.expected(&k1).unwrap(), mac);
        assert!(entry("unknown").expected(&k1).is_none(), "an unknown key id cannot be checked");
    }

    async fn chain_db() -> (tempfile::TempDir, AnyPool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::connect(&format!("sqlite://{}", dir.path().join("a.db").display()), 1).await.unwrap();
        for sql in [
            "CREATE TABLE audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')",
            "CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, \
             actor_role TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL, \
             purpose TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, key_id TEXT NOT NULL)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        (dir, pool)
    }

    #[tokio::test]
    async fn entries_from_before_keying_are_signed_once_and_never_accepted_unsigned() {
        let (_dir, pool) = chain_db().await;
        let keys = AuditKeys::generate();
        // Three entries as an unkeyed chain wrote them.
        let mut prev = String::new();
        for seq in 1..=3 {
            let mut e = Entry { seq, prev_hash: prev.clone(), ..entry("") };
            e.hash = e.expected(&keys).unwrap();
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, actor_role, action, subject, detail, purpose, prev_hash, hash, key_id) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'')",
            )
            .bind(e.seq).bind(e.at).bind(&e.actor).bind(&e.actor_role).bind(&e.action).bind(&e.subject)
            .bind(&e.detail).bind(&e.purpose).bind(&e.prev_hash).bind(&e.hash)
            .execute(&pool)
            .await
            .unwrap();
            prev = e.hash;
        }
        sqlx::query("UPDATE audit_head SET seq = 3, hash = $1").bind(&prev).execute(&pool).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let before = verify(&mut conn, &keys, None).await.unwrap();
        assert_eq!(before.problem.map(|p| p.0), Some(1), "unsigned entries are not accepted");
        drop(conn);

        assert_eq!(sign_unsigned(&pool, &keys).await.unwrap(), 3);
        assert_eq!(sign_unsigned(&pool, &keys).await.unwrap(), 0, "once");
        let mut conn = pool.acquire().await.unwrap();
        append(&mut conn, &keys, Event::by(&crate::auth::Principal { subject: "s".into(), roles: vec![] }, "x", "c"))
            .await
            .unwrap();
        let after = verify(&mut conn, &keys, None).await.unwrap();
        assert_eq!((after.problem, after.entries_checked), (None, 4));

        // Downgrading an entry to the unkeyed form is caught without a checkpoint.
        sqlx::query("UPDATE audit_log SET key_id = '' WHERE seq = 2").execute(&mut *conn).await.unwrap();
        let downgraded = verify(&mut conn, &keys, None).await.unwrap();
        assert_eq!(downgraded.problem.map(|p| p.0), Some(2));
    }

    #[test]
    fn fields_are_length_prefixed_so_shifting_text_between_them_changes_the_mac() {
        let k = AuditKeys::generate();
        let a = Entry { actor: "ab".into(), actor_role: "c".into(), ..entry(&k.active) };
        let b = Entry { actor: "a".into(), actor_role: "bc".into(), ..entry(&k.active) };
        assert_ne!(a.expected(&k), b.expected(&k));
    }
}
