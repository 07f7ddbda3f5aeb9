//! Enrolments, completions and absences (table `enrolments`).
use kefu_kit::{
    Error,
    db::{Columns, Where},
};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrolmentRow {
    pub id: String,
    pub session_id: String,
    pub staff_id: String,
    pub state: i64,
    pub assigned_by: String,
    pub approved_by: String,
    pub enrolled_at: i64,
    pub check_in_at: Option<i64>,
    pub complete_at: Option<i64>,
    pub hours_x2: i64,
}

const ENROLMENT_COLUMNS: &str =
    "id, session_id, staff_id, state, assigned_by, approved_by, enrolled_at, check_in_at, complete_at, hours_x2";

pub async fn insert_enrolment(conn: &mut AnyConnection, e: &EnrolmentRow) -> Result<(), Error> {
    Columns::new()
        .with("id", e.id.as_str())
        .with("session_id", e.session_id.as_str())
        .with("staff_id", e.staff_id.as_str())
        .with("state", e.state)
        .with("assigned_by", e.assigned_by.as_str())
        .with("approved_by", e.approved_by.as_str())
        .with("enrolled_at", e.enrolled_at)
        .with("check_in_at", e.check_in_at)
        .with("complete_at", e.complete_at)
        .with("hours_x2", e.hours_x2)
        .insert(conn, "enrolments")
        .await?;
    Ok(())
}

/// Writes an enrolment's changing columns.
pub async fn save_enrolment(conn: &mut AnyConnection, e: &EnrolmentRow) -> Result<(), Error> {
    sqlx::query(
        "UPDATE enrolments SET state = $1, assigned_by = $2, approved_by = $3, enrolled_at = $4, check_in_at = $5, \
         complete_at = $6, hours_x2 = $7 WHERE id = $8",
    )
    .bind(e.state)
    .bind(&e.assigned_by)
    .bind(&e.approved_by)
    .bind(e.enrolled_at)
    .bind(e.check_in_at)
    .bind(e.complete_at)
    .bind(e.hours_x2)
    .bind(&e.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn enrolment(conn: &mut AnyConnection, id: &str) -> Result<Option<EnrolmentRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {ENROLMENT_COLUMNS} FROM enrolments WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn enrolment_of(
    conn: &mut AnyConnection,
    session_id: &str,
    staff_id: &str,
) -> Result<Option<EnrolmentRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {ENROLMENT_COLUMNS} FROM enrolments WHERE session_id = $1 AND staff_id = $2"))
        .bind(session_id)
        .bind(staff_id)
        .fetch_optional(conn)
        .await?)
}

/// A session's enrolments in enrolment order (the waitlist's order).
pub async fn enrolments_of_session(conn: &mut AnyConnection, session_id: &str) -> Result<Vec<EnrolmentRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENROLMENT_COLUMNS} FROM enrolments WHERE session_id = $1 ORDER BY enrolled_at, id"
    ))
    .bind(session_id)
    .fetch_all(conn)
    .await?)
}

/// A person's enrolments, newest first.
pub async fn enrolments_of_staff(conn: &mut AnyConnection, staff_id: &str) -> Result<Vec<EnrolmentRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENROLMENT_COLUMNS} FROM enrolments WHERE staff_id = $1 ORDER BY enrolled_at DESC, id DESC LIMIT 1000"
    ))
    .bind(staff_id)
    .fetch_all(conn)
    .await?)
}

/// Completed training of people in a window: (staff, course, hours, when).
pub async fn completions(
    conn: &mut AnyConnection,
    staff_id: Option<&str>,
    from: i64,
    to: i64,
    completed: i64,
) -> Result<Vec<(String, String, i64, i64)>, Error> {
    let mut w = Where::new();
    w.and("e.state = $?", completed);
    w.and("e.complete_at >= $?", from);
    w.and("e.complete_at < $?", to);
    if let Some(s) = staff_id {
        w.and("e.staff_id = $?", s);
    }
    let (clause, binds) = w.build();
    let sql = format!(
        "SELECT e.staff_id, s.course_id, e.hours_x2, e.complete_at FROM enrolments e \
         JOIN sessions s ON s.id = e.session_id WHERE {clause} ORDER BY e.complete_at"
    );
    let rows = kefu_kit::db::fetch_rows(conn, &sql, binds).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
}

/// Sessions a person was absent from in a window (by the session's end).
pub async fn absences(conn: &mut AnyConnection, staff_id: &str, from: i64, to: i64, absent: i64) -> Result<i64, Error> {
    let r = sqlx::query(
        "SELECT COUNT(*) FROM enrolments e JOIN sessions s ON s.id = e.session_id \
         WHERE e.staff_id = $1 AND e.state = $2 AND s.end_at >= $3 AND s.end_at < $4",
    )
    .bind(staff_id)
    .bind(absent)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get(0)?)
}
