//! SQL for the customers service. Portable across SQLite and PostgreSQL
//! (sqlx `Any`): `$n` placeholders, BIGINT flags and instants, TEXT dates.
use kefu_kit::Error;
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::domain::{AuditRecord, ChainBreak, ChainVerifier};

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub company_name: String,
    pub uscc: String,
    pub uscc_check_failed: i64,
    pub taxpayer_type: i64,
    pub tax_credit_rating: i64,
    pub business_scope: String,
    pub industry: String,
    pub region: String,
    pub service_tier: i64,
    pub account_manager: String,
    pub preferred_channel: i64,
    pub language: String,
    pub greeting_opt_in: i64,
    pub lifecycle_status: i64,
    pub live: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const CUSTOMER_COLUMNS: &str = "id, company_name, uscc, uscc_check_failed, taxpayer_type, tax_credit_rating, \
    business_scope, industry, region, service_tier, account_manager, preferred_channel, language, \
    greeting_opt_in, lifecycle_status, live, version, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub role: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub wechat_id: Option<String>,
    pub is_primary: i64,
}

const CONTACT_COLUMNS: &str = "id, customer_id, name, role, mobile, email, wechat_id, is_primary";

pub use kefu_kit::db::Bind;

pub async fn get_customer(conn: &mut AnyConnection, id: &str) -> Result<Option<CustomerRow>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1");
    Ok(sqlx::query_as::<_, CustomerRow>(&sql).bind(id).fetch_optional(conn).await?)
}

pub async fn require_customer(conn: &mut AnyConnection, id: &str) -> Result<CustomerRow, Error> {
    get_customer(conn, id).await?.ok_or_else(|| Error::NotFound(format!("customer {id}")))
}

pub async fn customer_by_request_id(conn: &mut AnyConnection, request_id: &str) -> Result<Option<CustomerRow>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE request_id = $1");
    Ok(sqlx::query_as::<_, CustomerRow>(&sql).bind(request_id).fetch_optional(conn).await?)
}

pub async fn live_customer_by_uscc(conn: &mut AnyConnection, uscc: &str) -> Result<Option<CustomerRow>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE uscc = $1 AND live = 1");
    Ok(sqlx::query_as::<_, CustomerRow>(&sql).bind(uscc).fetch_optional(conn).await?)
}

pub async fn insert_customer(conn: &mut AnyConnection, c: &CustomerRow, request_id: Option<&str>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO customers (id, company_name, company_name_lower, uscc, uscc_check_failed, taxpayer_type, \
         tax_credit_rating, business_scope, industry, region, service_tier, account_manager, preferred_channel, \
         language, greeting_opt_in, lifecycle_status, live, version, request_id, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)",
    )
    .bind(&c.id)
    .bind(&c.company_name)
    .bind(c.company_name.to_lowercase())
    .bind(&c.uscc)
    .bind(c.uscc_check_failed)
    .bind(c.taxpayer_type)
    .bind(c.tax_credit_rating)
    .bind(&c.business_scope)
    .bind(&c.industry)
    .bind(&c.region)
    .bind(c.service_tier)
    .bind(&c.account_manager)
    .bind(c.preferred_channel)
    .bind(&c.language)
    .bind(c.greeting_opt_in)
    .bind(c.lifecycle_status)
    .bind(c.live)
    .bind(c.version)
    .bind(request_id)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await
    .map_err(uscc_conflict)?;
    Ok(())
}

fn uscc_conflict(e: sqlx::Error) -> Error {
    match Error::from(e) {
        Error::AlreadyExists(_) => Error::AlreadyExists("a live customer with this USCC already exists".into()),
        other => other,
    }
}

/// Writes every mutable column when `expected_version` still holds.
pub async fn update_customer(conn: &mut AnyConnection, c: &CustomerRow, expected_version: i64) -> Result<(), Error> {
    let done = sqlx::query(
        "UPDATE customers SET company_name = $1, company_name_lower = $2, uscc = $3, uscc_check_failed = $4, \
         taxpayer_type = $5, tax_credit_rating = $6, business_scope = $7, industry = $8, region = $9, \
         service_tier = $10, account_manager = $11, preferred_channel = $12, language = $13, greeting_opt_in = $14, \
         lifecycle_status = $15, live = $16, version = version + 1, updated_at = $17 \
         WHERE id = $18 AND version = $19",
    )
    .bind(&c.company_name)
    .bind(c.company_name.to_lowercase())
    .bind(&c.uscc)
    .bind(c.uscc_check_failed)
    .bind(c.taxpayer_type)
    .bind(c.tax_credit_rating)
    .bind(&c.business_scope)
    .bind(&c.industry)
    .bind(&c.region)
    .bind(c.service_tier)
    .bind(&c.account_manager)
    .bind(c.preferred_channel)
    .bind(&c.language)
    .bind(c.greeting_opt_in)
    .bind(c.lifecycle_status)
    .bind(c.live)
    .bind(c.updated_at)
    .bind(&c.id)
    .bind(expected_version)
    .execute(conn)
    .await
    .map_err(uscc_conflict)?;
    if done.rows_affected() == 0 {
        return Err(Error::Aborted(
            "the customer was changed by someone else; reload it and retry with its new etag".into(),
        ));
    }
    Ok(())
}

/// Bumps the version (etag) after a change to a sub-resource.
pub async fn touch_customer(conn: &mut AnyConnection, id: &str) -> Result<(), Error> {
    sqlx::query("UPDATE customers SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn tags(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<String>, Error> {
    let rows = sqlx::query("SELECT tag FROM customer_tags WHERE customer_id = $1 ORDER BY tag")
        .bind(customer_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Error::from)).collect()
}

pub async fn set_tags(conn: &mut AnyConnection, customer_id: &str, tags: &[String]) -> Result<(), Error> {
    sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1").bind(customer_id).execute(&mut *conn).await?;
    for t in tags {
        sqlx::query("INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2)")
            .bind(customer_id)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn contacts(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<ContactRow>, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id = $1 ORDER BY is_primary DESC, id");
    Ok(sqlx::query_as::<_, ContactRow>(&sql).bind(customer_id).fetch_all(conn).await?)
}

pub async fn get_contact(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<ContactRow, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1 AND customer_id = $2");
    sqlx::query_as::<_, ContactRow>(&sql)
        .bind(id)
        .bind(customer_id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("contact {id}")))
}

pub async fn contact_by_id(conn: &mut AnyConnection, id: &str) -> Result<ContactRow, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1");
    sqlx::query_as::<_, ContactRow>(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("contact {id}")))
}

pub async fn upsert_contact(conn: &mut AnyConnection, c: &ContactRow, insert: bool) -> Result<(), Error> {
    let now = now_ms();
    if c.is_primary == 1 {
        sqlx::query("UPDATE contacts SET is_primary = 0 WHERE customer_id = $1 AND id <> $2")
            .bind(&c.customer_id)
            .bind(&c.id)
            .execute(&mut *conn)
            .await?;
    }
    let email_lower = c.email.as_ref().map(|e| e.to_lowercase());
    if insert {
        sqlx::query(
            "INSERT INTO contacts (id, customer_id, name, role, mobile, email, email_lower, wechat_id, is_primary, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
        )
        .bind(&c.id)
        .bind(&c.customer_id)
        .bind(&c.name)
        .bind(&c.role)
        .bind(&c.mobile)
        .bind(&c.email)
        .bind(&email_lower)
        .bind(&c.wechat_id)
        .bind(c.is_primary)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(
            "UPDATE contacts SET name = $1, role = $2, mobile = $3, email = $4, email_lower = $5, wechat_id = $6, \
             is_primary = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&c.name)
        .bind(&c.role)
        .bind(&c.mobile)
        .bind(&c.email)
        .bind(&email_lower)
        .bind(&c.wechat_id)
        .bind(c.is_primary)
        .bind(now)
        .bind(&c.id)
        .execute(&mut *conn)
        .await?;
    }
    ensure_primary(conn, &c.customer_id).await
}

/// Keeps exactly one primary contact while any contact exists.
pub async fn ensure_primary(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    let primaries: i64 = sqlx::query("SELECT COUNT(*) FROM contacts WHERE customer_id = $1 AND is_primary = 1")
        .bind(customer_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if primaries == 0 {
        let first: Option<String> = sqlx::query("SELECT id FROM contacts WHERE customer_id = $1 ORDER BY id LIMIT 1")
            .bind(customer_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(id) = first {
            sqlx::query("UPDATE contacts SET is_primary = 1 WHERE id = $1").bind(id).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

pub async fn delete_contact(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<(), Error> {
    let done = sqlx::query("DELETE FROM contacts WHERE id = $1 AND customer_id = $2")
        .bind(id)
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("contact {id}")));
    }
    ensure_primary(conn, customer_id).await
}

/// Lists customers matching `where_sql` (with `binds`), after `after_id`, in id order.
pub async fn list_customers(
    conn: &mut AnyConnection,
    where_sql: &str,
    binds: Vec<Bind>,
    limit: i64,
) -> Result<Vec<CustomerRow>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE {where_sql} ORDER BY c.id LIMIT {limit}");
    Ok(kefu_kit::db::fetch_all_as(conn, &sql, binds).await?)
}

// ---------------------------------------------------------------- tax profile

pub struct TaxProfileRow {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
    pub updated_at: i64,
}

pub async fn get_tax_profile(conn: &mut AnyConnection, customer_id: &str) -> Result<Option<TaxProfileRow>, Error> {
    let row = sqlx::query("SELECT key_id, nonce, ciphertext, updated_at FROM tax_profiles WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(TaxProfileRow {
            key_id: r.try_get(0)?,
            nonce: r.try_get(1)?,
            ciphertext: r.try_get(2)?,
            updated_at: r.try_get(3)?,
        })
    })
    .transpose()
}

pub async fn put_tax_profile(
    conn: &mut AnyConnection,
    customer_id: &str,
    row: &TaxProfileRow,
    by: &str,
) -> Result<(), Error> {
    sqlx::query("DELETE FROM tax_profiles WHERE customer_id = $1").bind(customer_id).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO tax_profiles (customer_id, key_id, nonce, ciphertext, updated_at, updated_by) VALUES ($1,$2,$3,$4,$5,$6)",
    )
    .bind(customer_id)
    .bind(&row.key_id)
    .bind(&row.nonce)
    .bind(&row.ciphertext)
    .bind(row.updated_at)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn has_tax_profile(conn: &mut AnyConnection, customer_id: &str) -> Result<bool, Error> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM tax_profiles WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(conn)
        .await?
        .try_get(0)?;
    Ok(n > 0)
}

// ---------------------------------------------------------------- consents

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub id: String,
    pub customer_id: String,
    pub purpose: String,
    pub recipient: String,
    pub categories: String,
    pub granted_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub recorded_by: String,
    pub evidence: String,
}

impl ConsentRow {
    pub fn category_values(&self) -> Vec<i32> {
        self.categories.split(',').filter_map(|s| s.parse().ok()).collect()
    }
    pub fn is_live(&self, at_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > at_ms)
    }
}

const CONSENT_COLUMNS: &str =
    "id, customer_id, purpose, recipient, categories, granted_at, expires_at, revoked_at, recorded_by, evidence";

pub async fn insert_consent(conn: &mut AnyConnection, c: &ConsentRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO consents (id, customer_id, purpose, recipient, categories, granted_at, expires_at, revoked_at, recorded_by, evidence) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(&c.id)
    .bind(&c.customer_id)
    .bind(&c.purpose)
    .bind(&c.recipient)
    .bind(&c.categories)
    .bind(c.granted_at)
    .bind(c.expires_at)
    .bind(c.revoked_at)
    .bind(&c.recorded_by)
    .bind(&c.evidence)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn consents(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<ConsentRow>, Error> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE customer_id = $1 ORDER BY id");
    Ok(sqlx::query_as::<_, ConsentRow>(&sql).bind(customer_id).fetch_all(conn).await?)
}

pub async fn revoke_consent(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<ConsentRow, Error> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE id = $1 AND customer_id = $2");
    let mut row = sqlx::query_as::<_, ConsentRow>(&sql)
        .bind(id)
        .bind(customer_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("consent {id}")))?;
    if row.revoked_at.is_some() {
        return Ok(row);
    }
    let now = now_ms();
    sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2").bind(now).bind(id).execute(conn).await?;
    row.revoked_at = Some(now);
    Ok(row)
}

// ---------------------------------------------------------------- audit

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

pub fn audit_from_row(r: &AnyRow) -> Result<(AuditRecord, String), Error> {
    Ok((
        AuditRecord {
            seq: r.try_get("seq")?,
            at_ms: r.try_get("at")?,
            actor: r.try_get("actor")?,
            actor_role: r.try_get("actor_role")?,
            action: r.try_get("action")?,
            customer_id: r.try_get("customer_id")?,
            detail: r.try_get("detail")?,
            purpose: r.try_get("purpose")?,
            prev_hash: r.try_get("prev_hash")?,
        },
        r.try_get("hash")?,
    ))
}

const AUDIT_COLUMNS: &str = "seq, at, actor, actor_role, action, customer_id, detail, purpose, prev_hash, hash";

pub async fn list_audit(
    conn: &mut AnyConnection,
    customer_id: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(AuditRecord, String)>, Error> {
    let rows = match customer_id {
        Some(c) => {
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE customer_id = $1 AND seq > $2 ORDER BY seq LIMIT {limit}"
            );
            sqlx::query(&sql).bind(c).bind(after_seq).fetch_all(conn).await?
        }
        None => {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {limit}");
            sqlx::query(&sql).bind(after_seq).fetch_all(conn).await?
        }
    };
    rows.iter().map(audit_from_row).collect()
}

/// Walks the whole chain page by page.
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
    let (hs, hh): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
    Ok((v.checked, v.finish(hs, &hh).err()))
}

// ---------------------------------------------------------------- follow-ups

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub customer_id: String,
    pub owner: String,
    pub cycle_days: i64,
    pub next_due: String,
    pub active: i64,
    pub last_visit: Option<String>,
    pub company_name: String,
}

const PLAN_SELECT: &str = "SELECT p.customer_id, p.owner, p.cycle_days, p.next_due, p.active, p.last_visit, c.company_name \
    FROM follow_up_plans p JOIN customers c ON c.id = p.customer_id";

pub async fn get_plan(conn: &mut AnyConnection, customer_id: &str) -> Result<Option<PlanRow>, Error> {
    let sql = format!("{PLAN_SELECT} WHERE p.customer_id = $1");
    Ok(sqlx::query_as::<_, PlanRow>(&sql).bind(customer_id).fetch_optional(conn).await?)
}

pub async fn put_plan(conn: &mut AnyConnection, p: &PlanRow) -> Result<(), Error> {
    sqlx::query("DELETE FROM follow_up_plans WHERE customer_id = $1").bind(&p.customer_id).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO follow_up_plans (customer_id, owner, cycle_days, next_due, active, last_visit) VALUES ($1,$2,$3,$4,$5,$6)",
    )
    .bind(&p.customer_id)
    .bind(&p.owner)
    .bind(p.cycle_days)
    .bind(&p.next_due)
    .bind(p.active)
    .bind(&p.last_visit)
    .execute(conn)
    .await?;
    Ok(())
}

/// Active plans of live customers due on or before `due_by`, after the
/// `(next_due, customer_id)` cursor.
pub async fn due_plans(
    conn: &mut AnyConnection,
    due_by: &str,
    owner: Option<&str>,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<PlanRow>, Error> {
    let mut sql = format!("{PLAN_SELECT} WHERE p.active = 1 AND c.live = 1 AND p.next_due <= $1");
    let mut binds = vec![Bind::Text(due_by.to_owned())];
    if let Some(o) = owner {
        binds.push(Bind::Text(o.to_owned()));
        sql.push_str(&format!(" AND p.owner = ${}", binds.len()));
    }
    if let Some((d, id)) = after {
        binds.push(Bind::Text(d.clone()));
        let a = binds.len();
        binds.push(Bind::Text(d));
        let b = binds.len();
        binds.push(Bind::Text(id));
        let c = binds.len();
        sql.push_str(&format!(" AND (p.next_due > ${a} OR (p.next_due = ${b} AND p.customer_id > ${c}))"));
    }
    sql.push_str(&format!(" ORDER BY p.next_due, p.customer_id LIMIT {limit}"));
    Ok(kefu_kit::db::fetch_all_as(conn, &sql, binds).await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VisitRow {
    pub id: String,
    pub customer_id: String,
    pub visit_date: String,
    pub channel: i64,
    pub outcome: String,
    pub satisfaction: i64,
    pub notes: String,
    pub visited_by: String,
    pub next_due: String,
}

pub async fn insert_visit(conn: &mut AnyConnection, v: &VisitRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO follow_up_visits (id, customer_id, visit_date, channel, outcome, satisfaction, notes, visited_by, next_due, created_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(&v.id)
    .bind(&v.customer_id)
    .bind(&v.visit_date)
    .bind(v.channel)
    .bind(&v.outcome)
    .bind(v.satisfaction)
    .bind(&v.notes)
    .bind(&v.visited_by)
    .bind(&v.next_due)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn visits(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<VisitRow>, Error> {
    Ok(sqlx::query_as::<_, VisitRow>(
        "SELECT id, customer_id, visit_date, channel, outcome, satisfaction, notes, visited_by, next_due \
         FROM follow_up_visits WHERE customer_id = $1 ORDER BY visit_date, id",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await?)
}

// ---------------------------------------------------------------- greetings

/// Live, opted-in customers (active or dormant) after `after_id`, with
/// whether the greeting was already sent.
pub async fn greeting_candidates(
    conn: &mut AnyConnection,
    festival: i64,
    year: i64,
    pending_only: bool,
    after_id: &str,
    limit: i64,
) -> Result<Vec<(CustomerRow, Option<i64>)>, Error> {
    let cols: String = CUSTOMER_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
    let pending = if pending_only { " AND g.customer_id IS NULL" } else { "" };
    let sql = format!(
        "SELECT {cols}, g.sent_at AS sent_at FROM customers c \
         LEFT JOIN greetings_sent g ON g.customer_id = c.id AND g.festival = $1 AND g.year = $2 \
         WHERE c.live = 1 AND c.greeting_opt_in = 1 AND c.lifecycle_status IN (2, 3) AND c.id > $3{pending} \
         ORDER BY c.id LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(festival).bind(year).bind(after_id).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            use sqlx::FromRow;
            Ok((CustomerRow::from_row(r)?, r.try_get::<Option<i64>, _>("sent_at")?))
        })
        .collect()
}

/// Records a greeting once; returns (newly marked, sent_at).
pub async fn mark_greeting(
    conn: &mut AnyConnection,
    customer_id: &str,
    festival: i64,
    year: i64,
    channel: i64,
    by: &str,
) -> Result<(bool, i64), Error> {
    let existing =
        sqlx::query("SELECT sent_at FROM greetings_sent WHERE customer_id = $1 AND festival = $2 AND year = $3")
            .bind(customer_id)
            .bind(festival)
            .bind(year)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(r) = existing {
        return Ok((false, r.try_get(0)?));
    }
    let now = now_ms();
    sqlx::query("INSERT INTO greetings_sent (customer_id, festival, year, channel, sent_at, sent_by) VALUES ($1,$2,$3,$4,$5,$6)")
        .bind(customer_id)
        .bind(festival)
        .bind(year)
        .bind(channel)
        .bind(now)
        .bind(by)
        .execute(conn)
        .await?;
    Ok((true, now))
}

pub async fn greetings_of(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<(i64, i64, i64, i64)>, Error> {
    let rows = sqlx::query(
        "SELECT festival, year, channel, sent_at FROM greetings_sent WHERE customer_id = $1 ORDER BY year, festival",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
}

// ---------------------------------------------------------------- erasure

/// Purges personal fields; keeps the company record, tax profile and
/// processing records that accounting law requires.
pub async fn erase_personal_data(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE contacts SET name = '[erased]', role = '', mobile = NULL, email = NULL, email_lower = NULL, wechat_id = NULL, updated_at = $1 \
         WHERE customer_id = $2",
    )
    .bind(now_ms())
    .bind(customer_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1").bind(customer_id).execute(&mut *conn).await?;
    sqlx::query("UPDATE follow_up_visits SET notes = '', outcome = '' WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE follow_up_plans SET active = 0 WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE customers SET lifecycle_status = 5, live = 0, greeting_opt_in = 0, preferred_channel = 0, business_scope = '', \
         version = version + 1, updated_at = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(customer_id)
    .execute(conn)
    .await?;
    Ok(())
}
