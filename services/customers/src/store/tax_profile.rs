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

/// A customer's wrapped data key: (key-encryption key id, nonce, wrapped).
pub async fn customer_key(
    conn: &mut AnyConnection,
    customer_id: &str,
) -> Result<Option<(String, String, String)>, Error> {
    Ok(sqlx::query_as("SELECT kek_id, nonce, wrapped FROM customer_keys WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(conn)
        .await?)
}

/// Stores a customer's wrapped data key unless one exists (the caller then
/// reads the one that won).
pub async fn insert_customer_key(
    conn: &mut AnyConnection,
    customer_id: &str,
    kek_id: &str,
    nonce: &str,
    wrapped: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO customer_keys (customer_id, kek_id, nonce, wrapped, created_at) VALUES ($1,$2,$3,$4,$5) \
         ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer_id)
    .bind(kek_id)
    .bind(nonce)
    .bind(wrapped)
    .bind(super::now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a customer's wrapped data key (rewrapping).
pub async fn update_customer_key(
    conn: &mut AnyConnection,
    customer_id: &str,
    kek_id: &str,
    nonce: &str,
    wrapped: &str,
) -> Result<(), Error> {
    sqlx::query("UPDATE customer_keys SET kek_id = $1, nonce = $2, wrapped = $3 WHERE customer_id = $4")
        .bind(kek_id)
        .bind(nonce)
        .bind(wrapped)
        .bind(customer_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Destroys a customer's data key and what it sealed (crypto-shredding).
pub async fn shred_customer_key(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM tax_profiles WHERE customer_id = $1").bind(customer_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM customer_keys WHERE customer_id = $1").bind(customer_id).execute(conn).await?;
    Ok(())
}

/// Customers whose data key is wrapped by another key than `active`, or
/// whose tax profile is still sealed directly by a key-encryption key, after
/// `after_id`, at most `limit`.
pub async fn customers_to_rewrap(
    conn: &mut AnyConnection,
    active: &str,
    after_id: &str,
    limit: i64,
) -> Result<Vec<String>, Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT customer_id FROM customer_keys WHERE kek_id <> $1 AND customer_id > $2 \
         UNION SELECT customer_id FROM tax_profiles WHERE key_id <> $3 AND customer_id > $2 \
         ORDER BY customer_id LIMIT $4",
    )
    .bind(active)
    .bind(after_id)
    .bind(crate::crypto::CUSTOMER_KEY)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
