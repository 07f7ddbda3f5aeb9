//! Sessions and their seats (table `sessions`).
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub course_id: String,
    pub start_at: i64,
    pub end_at: i64,
    pub location: String,
    pub trainer: String,
    pub capacity: i64,
    pub waitlist_capacity: i64,
    pub cost_fen: i64,
    pub plan_id: String,
    pub state: i64,
    pub cancel_reason: String,
    pub scheduled_by: String,
    pub created_at: i64,
    pub version: i64,
}

const SESSION_COLUMNS: &str = "id, course_id, start_at, end_at, location, trainer, capacity, waitlist_capacity, \
    cost_fen, plan_id, \
    state, cancel_reason, scheduled_by, created_at, version";

pub async fn insert_session(conn: &mut AnyConnection, s: &SessionRow) -> Result<(), Error> {
    Columns::new()
        .with("id", s.id.as_str())
        .with("course_id", s.course_id.as_str())
        .with("start_at", s.start_at)
        .with("end_at", s.end_at)
        .with("location", s.location.as_str())
        .with("trainer", s.trainer.as_str())
        .with("capacity", s.capacity)
        .with("waitlist_capacity", s.waitlist_capacity)
        .with("cost_fen", s.cost_fen)
        .with("plan_id", s.plan_id.as_str())
        .with("state", s.state)
        .with("cancel_reason", s.cancel_reason.as_str())
        .with("scheduled_by", s.scheduled_by.as_str())
        .with("created_at", s.created_at)
        .with("version", s.version)
        .insert(conn, "sessions")
        .await?;
    Ok(())
}

pub async fn session(conn: &mut AnyConnection, id: &str) -> Result<Option<SessionRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Takes the session's row for an enrolment change: changes to one
/// session's enrolments queue here (seats and the waitlist stay exact).
pub async fn lock_session(conn: &mut AnyConnection, id: &str) -> Result<Option<SessionRow>, Error> {
    sqlx::query("UPDATE sessions SET version = version + 1 WHERE id = $1").bind(id).execute(&mut *conn).await?;
    session(conn, id).await
}

pub async fn set_session_state(conn: &mut AnyConnection, id: &str, state: i64, reason: &str) -> Result<(), Error> {
    sqlx::query("UPDATE sessions SET state = $1, cancel_reason = $2 WHERE id = $3")
        .bind(state)
        .bind(reason)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct SessionFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub course_id: Option<String>,
    pub after: Option<(i64, String)>,
}

pub async fn sessions(conn: &mut AnyConnection, f: &SessionFilter, limit: i64) -> Result<Vec<SessionRow>, Error> {
    let mut w = Where::new();
    if let Some(t) = f.from {
        w.and("start_at >= $?", t);
    }
    if let Some(t) = f.to {
        w.and("start_at < $?", t);
    }
    if let Some(c) = &f.course_id {
        w.and("course_id = $?", c.as_str());
    }
    if let Some((at, id)) = &f.after {
        w.and_many("(start_at, id) > ($?, $?)", [(*at).into(), id.as_str().into()]);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {clause} ORDER BY start_at, id LIMIT {limit}");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

/// Seats taken and people waiting in a session.
pub async fn seat_counts(
    conn: &mut AnyConnection,
    session_id: &str,
    seated: &[i64],
    waiting: i64,
) -> Result<(i64, i64), Error> {
    let list = seated.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let r = sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN state IN ({list}) THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN state = $2 THEN 1 ELSE 0 END), 0) AS BIGINT) FROM enrolments WHERE session_id = $1"
    ))
    .bind(session_id)
    .bind(waiting)
    .fetch_one(conn)
    .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}
