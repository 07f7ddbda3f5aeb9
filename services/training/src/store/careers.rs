//! Career levels and people's levels (tables `career_levels`, `staff_levels`).
use kefu_kit::{
    Error,
    db::{Where, fetch_all_as},
};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LevelRow {
    pub id: String,
    pub path: String,
    pub code: String,
    pub name: String,
    pub step: i64,
    pub courses: String,
    pub certificates: String,
    pub months_in_level: i64,
    pub min_grade: String,
    pub created_by: String,
    pub created_at: i64,
}

const LEVEL_COLUMNS: &str =
    "id, path, code, name, step, courses, certificates, months_in_level, min_grade, created_by, created_at";

/// Inserts the level unless its code or its place on the path is taken:
/// whether it went in.
pub async fn insert_level(conn: &mut AnyConnection, l: &LevelRow) -> Result<bool, Error> {
    let sql = format!(
        "INSERT INTO career_levels ({LEVEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT DO NOTHING"
    );
    let n = sqlx::query(&sql)
        .bind(&l.id)
        .bind(&l.path)
        .bind(&l.code)
        .bind(&l.name)
        .bind(l.step)
        .bind(&l.courses)
        .bind(&l.certificates)
        .bind(l.months_in_level)
        .bind(&l.min_grade)
        .bind(&l.created_by)
        .bind(l.created_at)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn level_by_code(conn: &mut AnyConnection, code: &str) -> Result<Option<LevelRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {LEVEL_COLUMNS} FROM career_levels WHERE code = $1"))
        .bind(code)
        .fetch_optional(conn)
        .await?)
}

pub async fn level_at(conn: &mut AnyConnection, path: &str, step: i64) -> Result<Option<LevelRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {LEVEL_COLUMNS} FROM career_levels WHERE path = $1 AND step = $2"))
        .bind(path)
        .bind(step)
        .fetch_optional(conn)
        .await?)
}

pub async fn levels(conn: &mut AnyConnection, path: Option<&str>) -> Result<Vec<LevelRow>, Error> {
    let mut w = Where::new();
    if let Some(p) = path {
        w.and("path = $?", p);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {LEVEL_COLUMNS} FROM career_levels WHERE {clause} ORDER BY path, step LIMIT 1000");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

/// Sets a person's level from a date (a second setting for the same date
/// replaces the first).
pub async fn set_staff_level(
    conn: &mut AnyConnection,
    staff: &str,
    level_id: &str,
    since: &str,
    by: &str,
    at: i64,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO staff_levels (staff_id, level_id, since, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (staff_id, since) DO UPDATE SET level_id = excluded.level_id, recorded_by = excluded.recorded_by, \
         recorded_at = excluded.recorded_at",
    )
    .bind(staff)
    .bind(level_id)
    .bind(since)
    .bind(by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A person's current level and since when, as of `today` (YYYY-MM-DD).
pub async fn staff_level(
    conn: &mut AnyConnection,
    staff: &str,
    today: &str,
) -> Result<Option<(LevelRow, String)>, Error> {
    let row = sqlx::query(
        "SELECT level_id, since FROM staff_levels WHERE staff_id = $1 AND since <= $2 ORDER BY since DESC LIMIT 1",
    )
    .bind(staff)
    .bind(today)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (level_id, since): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    let level: Option<LevelRow> = sqlx::query_as(&format!("SELECT {LEVEL_COLUMNS} FROM career_levels WHERE id = $1"))
        .bind(&level_id)
        .fetch_optional(conn)
        .await?;
    Ok(level.map(|l| (l, since)))
}

/// Everyone with a level.
pub async fn staff_with_levels(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar("SELECT DISTINCT staff_id FROM staff_levels ORDER BY staff_id LIMIT 10000")
        .fetch_all(conn)
        .await?)
}

/// Course ids a person completed.
pub async fn completed_courses(conn: &mut AnyConnection, staff: &str, completed: i64) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT s.course_id FROM enrolments e JOIN sessions s ON s.id = e.session_id \
         WHERE e.staff_id = $1 AND e.state = $2",
    )
    .bind(staff)
    .bind(completed)
    .fetch_all(conn)
    .await?)
}
