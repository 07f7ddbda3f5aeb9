//! Legal holds (table `legal_holds`).
use kefu_kit::Error;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct HoldRow {
    pub customer_id: String,
    pub reference: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: i64,
    pub released_by: String,
    pub released_at: Option<i64>,
    /// How many times it was placed (renewals included).
    pub generation: i64,
}

const COLUMNS: &str = "customer_id, reference, reason, placed_by, placed_at, released_by, released_at, generation";

fn row(r: &sqlx::any::AnyRow) -> Result<HoldRow, Error> {
    Ok(HoldRow {
        customer_id: r.try_get("customer_id")?,
        reference: r.try_get("reference")?,
        reason: r.try_get("reason")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
        generation: r.try_get("generation")?,
    })
}

pub async fn holds(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<HoldRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM legal_holds WHERE customer_id = $1 ORDER BY placed_at, reference");
    sqlx::query(&sql).bind(customer_id).fetch_all(conn).await?.iter().map(row).collect()
}

pub async fn get_hold(conn: &mut AnyConnection, customer_id: &str, reference: &str) -> Result<Option<HoldRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM legal_holds WHERE customer_id = $1 AND reference = $2");
    sqlx::query(&sql).bind(customer_id).bind(reference).fetch_optional(conn).await?.as_ref().map(row).transpose()
}

/// Inserts the hold, or starts a released one again (its generation goes up).
pub async fn put_hold(conn: &mut AnyConnection, h: &HoldRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO legal_holds (customer_id, reference, reason, placed_by, placed_at, released_by, released_at, \
         generation) VALUES ($1, $2, $3, $4, $5, '', NULL, 1) ON CONFLICT (customer_id, reference) DO UPDATE SET \
         reason = excluded.reason, placed_by = excluded.placed_by, placed_at = excluded.placed_at, \
         released_by = '', released_at = NULL, generation = legal_holds.generation + 1",
    )
    .bind(&h.customer_id)
    .bind(&h.reference)
    .bind(&h.reason)
    .bind(&h.placed_by)
    .bind(h.placed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews a hold that lasts: its generation goes up.
pub async fn renew_hold(conn: &mut AnyConnection, customer_id: &str, reference: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE legal_holds SET generation = generation + 1 \
         WHERE customer_id = $1 AND reference = $2 AND released_at IS NULL",
    )
    .bind(customer_id)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn release_hold(
    conn: &mut AnyConnection,
    customer_id: &str,
    reference: &str,
    by: &str,
    at: i64,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE legal_holds SET released_by = $1, released_at = $2 \
         WHERE customer_id = $3 AND reference = $4 AND released_at IS NULL",
    )
    .bind(by)
    .bind(at)
    .bind(customer_id)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// References of the holds that last.
pub async fn active_holds(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT reference FROM legal_holds WHERE customer_id = $1 AND released_at IS NULL ORDER BY reference",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await?)
}
