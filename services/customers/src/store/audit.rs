//! The hash-chained audit trail.
use kefu_kit::{
    Error,
    db::{Bind, Where, fetch_all_as},
};
use sqlx::{AnyConnection, Row};

use super::now_ms;
use crate::domain::{AuditRecord, ChainBreak, ChainVerifier};

/// What one audit entry records.
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub actor_role: &'a str,
    pub action: &'a str,
    pub customer_id: &'a str,
    pub detail: String,
    pub purpose: &'a str,
}

/// Appends an entry to the hash chain inside the caller's transaction. The
/// head row is updated first, so concurrent appenders queue on its lock.
pub async fn append_audit(conn: &mut AnyConnection, ev: AuditEvent<'_>) -> Result<i64, Error> {
    sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1").execute(&mut *conn).await?;
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *conn).await?;
    let seq: i64 = head.try_get(0)?;
    let prev_hash: String = head.try_get(1)?;
    let rec = AuditRecord {
        seq,
        at_ms: now_ms(),
        actor: ev.actor.to_owned(),
        actor_role: ev.actor_role.to_owned(),
        action: ev.action.to_owned(),
        customer_id: ev.customer_id.to_owned(),
        detail: ev.detail,
        purpose: ev.purpose.to_owned(),
        prev_hash,
    };
    let hash = rec.hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, actor_role, action, customer_id, detail, purpose, prev_hash, hash) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(rec.seq)
    .bind(rec.at_ms)
    .bind(&rec.actor)
    .bind(&rec.actor_role)
    .bind(&rec.action)
    .bind(&rec.customer_id)
    .bind(&rec.detail)
    .bind(&rec.purpose)
    .bind(&rec.prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&hash).execute(conn).await?;
    Ok(seq)
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    at: i64,
    actor: String,
    actor_role: String,
    action: String,
    customer_id: String,
    detail: String,
    purpose: String,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    fn into_record(self) -> (AuditRecord, String) {
        (
            AuditRecord {
                seq: self.seq,
                at_ms: self.at,
                actor: self.actor,
                actor_role: self.actor_role,
                action: self.action,
                customer_id: self.customer_id,
                detail: self.detail,
                purpose: self.purpose,
                prev_hash: self.prev_hash,
            },
            self.hash,
        )
    }
}

/// Entries after `after_seq` (of one customer, or all), in order, at most
/// `limit`, each with its stored hash.
pub async fn list_audit(
    conn: &mut AnyConnection,
    customer_id: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(AuditRecord, String)>, Error> {
    let mut w = Where::new();
    if let Some(c) = customer_id {
        w.and("customer_id = $?", c);
    }
    w.and("seq > $?", after_seq);
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(Bind::Int(limit));
    let sql = format!(
        "SELECT seq, at, actor, actor_role, action, customer_id, detail, purpose, prev_hash, hash \
         FROM audit_log WHERE {clause} ORDER BY seq LIMIT ${limit_at}"
    );
    let rows: Vec<AuditRow> = fetch_all_as(conn, &sql, binds).await?;
    Ok(rows.into_iter().map(AuditRow::into_record).collect())
}

/// Walks the whole chain page by page: how many entries held, and the first
/// problem found.
pub async fn verify_audit(conn: &mut AnyConnection) -> Result<(i64, Option<ChainBreak>), Error> {
    let mut v = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = list_audit(conn, None, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        for (rec, hash) in &page {
            if let Err(b) = v.push(rec, hash) {
                return Ok((v.checked, Some(b)));
            }
            after = rec.seq;
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *conn).await?;
    let (head_seq, head_hash): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
    Ok((v.checked, v.finish(head_seq, &head_hash).err()))
}
