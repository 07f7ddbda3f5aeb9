//! The sealed tax and financial profile: ciphertext only.
use kefu_kit::Error;
use sqlx::{AnyConnection, Row};

/// A tax profile as stored: AES-256-GCM ciphertext with the key id that
/// sealed it and its nonce.
#[derive(Debug, Clone)]
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

/// Stores a customer's profile, replacing any earlier one; concurrent writers
/// do not clash, the last to commit wins.
pub async fn put_tax_profile(
    conn: &mut AnyConnection,
    customer_id: &str,
    row: &TaxProfileRow,
    by: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO tax_profiles (customer_id, key_id, nonce, ciphertext, updated_at, updated_by) \
         VALUES ($1,$2,$3,$4,$5,$6) \
         ON CONFLICT (customer_id) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
         ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
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
