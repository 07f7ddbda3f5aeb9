//! Consents. Data categories are stored as their contract numbers, comma
//! separated.
use kefu_kit::Error;
use sqlx::AnyConnection;

use super::{now_ms, number, stored};
use crate::domain::{Consent, DataCategory};

const CONSENT_COLUMNS: &str =
    "id, customer_id, purpose, recipient, categories, granted_at, expires_at, revoked_at, recorded_by, evidence";

#[derive(sqlx::FromRow)]
struct ConsentRecord {
    id: String,
    customer_id: String,
    purpose: String,
    recipient: String,
    categories: String,
    granted_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    recorded_by: String,
    evidence: String,
}

impl ConsentRecord {
    fn into_consent(self) -> Result<Consent, Error> {
        let categories = self
            .categories
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let n = s.parse::<i64>().map_err(|_| {
                    Error::Internal(anyhow::anyhow!("consents.categories holds {s:?}, which is not a number"))
                })?;
                stored::<DataCategory>("consents.categories", n)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Consent {
            id: self.id,
            customer_id: self.customer_id,
            purpose: self.purpose,
            recipient: self.recipient,
            categories,
            granted_at: self.granted_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            recorded_by: self.recorded_by,
            evidence: self.evidence,
        })
    }
}

fn encode_categories(categories: &[DataCategory]) -> String {
    categories.iter().map(|c| number(*c).to_string()).collect::<Vec<_>>().join(",")
}

pub async fn insert_consent(conn: &mut AnyConnection, c: &Consent) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO consents (id, customer_id, purpose, recipient, categories, granted_at, expires_at, revoked_at, \
         recorded_by, evidence) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(&c.id)
    .bind(&c.customer_id)
    .bind(&c.purpose)
    .bind(&c.recipient)
    .bind(encode_categories(&c.categories))
    .bind(c.granted_at)
    .bind(c.expires_at)
    .bind(c.revoked_at)
    .bind(&c.recorded_by)
    .bind(&c.evidence)
    .execute(conn)
    .await?;
    Ok(())
}

/// A customer's consents, oldest first.
pub async fn consents(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<Consent>, Error> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE customer_id = $1 ORDER BY id");
    let rows = sqlx::query_as::<_, ConsentRecord>(&sql).bind(customer_id).fetch_all(conn).await?;
    rows.into_iter().map(ConsentRecord::into_consent).collect()
}

/// Revokes a consent now; revoking it again changes nothing.
pub async fn revoke_consent(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<Consent, Error> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE id = $1 AND customer_id = $2");
    let mut consent = sqlx::query_as::<_, ConsentRecord>(&sql)
        .bind(id)
        .bind(customer_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("consent {id}")))?
        .into_consent()?;
    if consent.revoked_at.is_some() {
        return Ok(consent);
    }
    let now = now_ms();
    let done = sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 1 {
        consent.revoked_at = Some(now);
        return Ok(consent);
    }
    // A concurrent revocation got there first: answer with its time.
    sqlx::query_as::<_, ConsentRecord>(&sql).bind(id).bind(customer_id).fetch_one(conn).await?.into_consent()
}
