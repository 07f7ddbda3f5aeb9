//! Festival greetings sent. The festival is stored as its contract number.
use kefu_kit::Error;
use sqlx::{AnyConnection, FromRow, Row};

use super::{
    customers::{CUSTOMER_COLUMNS, CustomerRecord},
    flag, now_ms, number, stored,
};
use crate::domain::{Channel, Customer, Festival, GREETED_STATUSES, SentGreeting};

/// Live, opted-in customers in a greeted status whose id sorts after
/// `after_id` (empty: from the start), in id order, at most `limit`, each
/// with whether the greeting for `festival` of `year` was already sent;
/// with `pending_only`, only those not yet greeted.
pub async fn greeting_candidates(
    conn: &mut AnyConnection,
    festival: Festival,
    year: i32,
    pending_only: bool,
    after_id: &str,
    limit: i64,
) -> Result<Vec<(Customer, bool)>, Error> {
    let [first_status, second_status] = GREETED_STATUSES;
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS}, g.sent_at AS sent_at FROM customers c \
         LEFT JOIN greetings_sent g ON g.customer_id = c.id AND g.festival = $1 AND g.year = $2 \
         WHERE c.live = 1 AND c.greeting_opt_in = 1 AND c.lifecycle_status IN ($3, $4) AND c.id > $5 \
         AND (g.customer_id IS NULL OR $6 = 0) \
         ORDER BY c.id LIMIT $7"
    );
    let rows = sqlx::query(&sql)
        .bind(number(festival.to_pb()))
        .bind(i64::from(year))
        .bind(number(first_status))
        .bind(number(second_status))
        .bind(after_id)
        .bind(flag(pending_only))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            let sent: Option<i64> = r.try_get("sent_at")?;
            Ok((CustomerRecord::from_row(r)?.into_customer()?, sent.is_some()))
        })
        .collect()
}

/// Records a greeting once: whether this call recorded it, and when it was
/// sent. Concurrent marks of one greeting record it once.
pub async fn mark_greeting(
    conn: &mut AnyConnection,
    customer_id: &str,
    festival: Festival,
    year: i32,
    channel: Channel,
    by: &str,
) -> Result<(bool, i64), Error> {
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO greetings_sent (customer_id, festival, year, channel, sent_at, sent_by) \
         VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (customer_id, festival, year) DO NOTHING",
    )
    .bind(customer_id)
    .bind(number(festival.to_pb()))
    .bind(i64::from(year))
    .bind(number(channel))
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok((true, now));
    }
    let sent_at: i64 =
        sqlx::query("SELECT sent_at FROM greetings_sent WHERE customer_id = $1 AND festival = $2 AND year = $3")
            .bind(customer_id)
            .bind(number(festival.to_pb()))
            .bind(i64::from(year))
            .fetch_one(conn)
            .await?
            .try_get(0)?;
    Ok((false, sent_at))
}

/// The greetings sent to a customer, by year and festival.
pub async fn greetings_of(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<SentGreeting>, Error> {
    let rows = sqlx::query(
        "SELECT festival, year, channel, sent_at FROM greetings_sent WHERE customer_id = $1 ORDER BY year, festival",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let festival = stored("greetings_sent.festival", r.try_get(0)?)?;
            let year: i64 = r.try_get(1)?;
            Ok(SentGreeting {
                festival: Festival::from_pb(festival).ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("greetings_sent.festival holds FESTIVAL_UNSPECIFIED"))
                })?,
                year: i32::try_from(year)
                    .map_err(|_| Error::Internal(anyhow::anyhow!("greetings_sent.year holds {year}")))?,
                channel: stored("greetings_sent.channel", r.try_get(2)?)?,
                sent_at: r.try_get(3)?,
            })
        })
        .collect()
}
