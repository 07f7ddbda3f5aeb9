//! SLA configuration a firm edits: business calendars and ticket categories.
use kefu_kit::Error;
use sqlx::{AnyConnection, Row};

/// A stored calendar: its JSON form and who changed it last.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CalendarRow {
    pub id: String,
    pub body: String,
    pub is_default: i64,
    pub version: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

const CALENDAR_COLUMNS: &str = "id, body, is_default, version, updated_at, updated_by";

pub async fn calendars(conn: &mut AnyConnection) -> Result<Vec<CalendarRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {CALENDAR_COLUMNS} FROM sla_calendars ORDER BY id")).fetch_all(conn).await?)
}

pub async fn get_calendar(conn: &mut AnyConnection, id: &str) -> Result<Option<CalendarRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {CALENDAR_COLUMNS} FROM sla_calendars WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The default calendar's id, if any calendar is stored.
pub async fn default_calendar_id(conn: &mut AnyConnection) -> Result<Option<String>, Error> {
    let row = sqlx::query("SELECT id FROM sla_calendars WHERE is_default = 1 ORDER BY id LIMIT 1")
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Inserts a calendar unless one with its id exists; true when inserted.
pub async fn insert_calendar(conn: &mut AnyConnection, c: &CalendarRow) -> Result<bool, Error> {
    let n = sqlx::query(
        "INSERT INTO sla_calendars (id, body, is_default, version, updated_at, updated_by) VALUES ($1,$2,$3,$4,$5,$6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.body)
    .bind(c.is_default)
    .bind(c.version)
    .bind(c.updated_at)
    .bind(&c.updated_by)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Replaces a calendar at `c.version - 1`; false when someone changed it first.
pub async fn update_calendar(conn: &mut AnyConnection, c: &CalendarRow) -> Result<bool, Error> {
    let n = sqlx::query(
        "UPDATE sla_calendars SET body = $2, is_default = $3, version = $4, updated_at = $5, updated_by = $6 \
         WHERE id = $1 AND version = $7",
    )
    .bind(&c.id)
    .bind(&c.body)
    .bind(c.is_default)
    .bind(c.version)
    .bind(c.updated_at)
    .bind(&c.updated_by)
    .bind(c.version - 1)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Makes `id` the only default calendar.
pub async fn make_default(conn: &mut AnyConnection, id: &str) -> Result<(), Error> {
    // The calendar that stops being the default changes: its version moves.
    sqlx::query(
        "UPDATE sla_calendars SET version = version + CASE WHEN is_default = 1 AND id <> $1 THEN 1 ELSE 0 END,          is_default = CASE WHEN id = $1 THEN 1 ELSE 0 END",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Holds a calendar's row until the transaction ends (a policy naming it,
/// or its deletion, waits for the other); false when there is none.
pub async fn lock_calendar(conn: &mut AnyConnection, id: &str) -> Result<bool, Error> {
    let n = sqlx::query("UPDATE sla_calendars SET version = version WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn delete_calendar(conn: &mut AnyConnection, id: &str, version: i64) -> Result<bool, Error> {
    let n = sqlx::query("DELETE FROM sla_calendars WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(version)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// A ticket category: its code, its label, whether it is still offered.
pub type CategoryRow = kefu_kit::taxonomy::Entry;

const CATEGORIES: kefu_kit::taxonomy::Taxonomy = kefu_kit::taxonomy::Taxonomy { table: "ticket_categories" };

pub async fn categories(conn: &mut AnyConnection, include_retired: bool) -> Result<Vec<CategoryRow>, Error> {
    CATEGORIES.entries(conn, include_retired).await
}

/// The active category codes, read at the moment of use.
pub async fn active_category_codes(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    CATEGORIES.active_codes(conn).await
}

/// Code → label of every category, retired ones included.
pub async fn category_labels(conn: &mut AnyConnection) -> Result<std::collections::HashMap<String, String>, Error> {
    CATEGORIES.labels(conn).await
}

/// Makes `list` the active categories in its order; codes left out are retired.
pub async fn replace_categories(conn: &mut AnyConnection, list: &[(String, String)]) -> Result<(), Error> {
    CATEGORIES.replace(conn, list).await
}

/// A named counter's value (0 when never bumped): the version behind an
/// etag of a small settings resource.
pub async fn counter(conn: &mut AnyConnection, name: &str) -> Result<i64, Error> {
    let row = sqlx::query("SELECT value FROM counters WHERE name = $1").bind(name).fetch_optional(conn).await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0))
}

pub async fn bump_counter(conn: &mut AnyConnection, name: &str) -> Result<i64, Error> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    counter(conn, name).await
}
