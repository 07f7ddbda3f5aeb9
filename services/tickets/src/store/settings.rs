//! Settings, SLA policies and request types: small tables read at start
//! and written by administrators.
use kefu_kit::Error;
use sqlx::{AnyConnection, Row};

pub async fn get_setting(conn: &mut AnyConnection, name: &str) -> Result<Option<String>, Error> {
    let row = sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(conn).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub async fn put_setting(conn: &mut AnyConnection, name: &str, value: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the shared configuration (policies, calendar, categories) as
/// changed, in the change's own transaction; every replica reloads it.
pub async fn bump_config_version(conn: &mut AnyConnection) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES ('config', 1) \
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The configuration's version: changes whenever an administrator changes it.
pub async fn config_version(conn: &mut AnyConnection) -> Result<i64, Error> {
    let row = sqlx::query("SELECT value FROM counters WHERE name = 'config'").fetch_optional(conn).await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0))
}

pub async fn policies(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    let rows = sqlx::query("SELECT body FROM sla_policies ORDER BY position, id").fetch_all(conn).await?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Error::from)).collect()
}

pub async fn put_policy(conn: &mut AnyConnection, id: &str, position: i64, body: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO sla_policies (id, position, body) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET position = excluded.position, body = excluded.body",
    )
    .bind(id)
    .bind(position)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_policy(conn: &mut AnyConnection, id: &str) -> Result<bool, Error> {
    Ok(sqlx::query("DELETE FROM sla_policies WHERE id = $1").bind(id).execute(conn).await?.rows_affected() == 1)
}

pub async fn request_types(conn: &mut AnyConnection) -> Result<Vec<(String, String, String, String)>, Error> {
    let rows = sqlx::query("SELECT name, category, required_materials, steps FROM request_types ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
}

pub async fn put_request_type(
    conn: &mut AnyConnection,
    name: &str,
    category: &str,
    materials: &str,
    steps: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO request_types (name, category, required_materials, steps) VALUES ($1,$2,$3,$4) \
         ON CONFLICT (name) DO UPDATE SET category = excluded.category, required_materials = excluded.required_materials, steps = excluded.steps",
    )
    .bind(name)
    .bind(category)
    .bind(materials)
    .bind(steps)
    .execute(conn)
    .await?;
    Ok(())
}
