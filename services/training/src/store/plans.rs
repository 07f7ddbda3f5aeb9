//! Annual plans and what they paid and delivered (table `plans`).
use super::json;
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCourse {
    pub course_id: String,
    pub quarter: i32,
    pub sessions: i32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub id: String,
    pub year: i64,
    pub team: String,
    pub title: String,
    pub goals: String,
    pub budget_fen: i64,
    pub target_x2: i64,
    pub headcount: i64,
    pub courses: String,
    pub state: i64,
    pub created_by: String,
    pub approved_by: String,
    pub approved_at: Option<i64>,
    pub created_at: i64,
    pub version: i64,
}

impl PlanRow {
    pub fn goals(&self) -> Result<Vec<String>, Error> {
        json("plans", &self.id, &self.goals)
    }

    pub fn courses(&self) -> Result<Vec<PlannedCourse>, Error> {
        json("plans", &self.id, &self.courses)
    }
}

const PLAN_COLUMNS: &str = "id, year, team, title, goals, budget_fen, target_x2, headcount, courses, state, \
    created_by, approved_by, approved_at, created_at, version";

/// Inserts the plan unless its team has one for the year: whether it went in.
pub async fn insert_plan(conn: &mut AnyConnection, p: &PlanRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", p.id.as_str())
        .with("year", p.year)
        .with("team", p.team.as_str())
        .with("title", p.title.as_str())
        .with("goals", p.goals.as_str())
        .with("budget_fen", p.budget_fen)
        .with("target_x2", p.target_x2)
        .with("headcount", p.headcount)
        .with("courses", p.courses.as_str())
        .with("state", p.state)
        .with("created_by", p.created_by.as_str())
        .with("approved_by", p.approved_by.as_str())
        .with("approved_at", p.approved_at)
        .with("created_at", p.created_at)
        .with("version", p.version)
        .insert_unless_exists(conn, "plans", "year, team")
        .await?)
}

pub async fn plan(conn: &mut AnyConnection, id: &str) -> Result<Option<PlanRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1")).bind(id).fetch_optional(conn).await?)
}

pub async fn plan_of(conn: &mut AnyConnection, year: i64, team: &str) -> Result<Option<PlanRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE year = $1 AND team = $2"))
        .bind(year)
        .bind(team)
        .fetch_optional(conn)
        .await?)
}

/// Takes the plan's row for a charge: charges to one plan queue here.
pub async fn lock_plan(conn: &mut AnyConnection, id: &str) -> Result<Option<PlanRow>, Error> {
    sqlx::query("UPDATE plans SET version = version + 1 WHERE id = $1").bind(id).execute(&mut *conn).await?;
    plan(conn, id).await
}

pub async fn approve_plan(conn: &mut AnyConnection, id: &str, state: i64, by: &str, at: i64) -> Result<bool, Error> {
    let n =
        sqlx::query("UPDATE plans SET state = $1, approved_by = $2, approved_at = $3 WHERE id = $4 AND state <> $1")
            .bind(state)
            .bind(by)
            .bind(at)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(n == 1)
}

pub async fn plans(conn: &mut AnyConnection, year: Option<i64>) -> Result<Vec<PlanRow>, Error> {
    let mut w = Where::new();
    if let Some(y) = year {
        w.and("year = $?", y);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {PLAN_COLUMNS} FROM plans WHERE {clause} ORDER BY year DESC, team LIMIT 500");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

/// What a plan paid: the cost of its sessions not cancelled.
pub async fn plan_spent(conn: &mut AnyConnection, plan_id: &str, cancelled: i64) -> Result<i64, Error> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(cost_fen), 0) AS BIGINT) FROM sessions WHERE plan_id = $1 AND state <> $2",
    )
    .bind(plan_id)
    .bind(cancelled)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get(0)?)
}

/// What a plan delivered: hours credited and people who completed one of
/// its sessions.
pub async fn plan_delivered(conn: &mut AnyConnection, plan_id: &str, completed: i64) -> Result<(i64, i64), Error> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(e.hours_x2), 0) AS BIGINT), COUNT(DISTINCT e.staff_id) FROM enrolments e \
         JOIN sessions s ON s.id = e.session_id WHERE s.plan_id = $1 AND e.state = $2",
    )
    .bind(plan_id)
    .bind(completed)
    .fetch_one(conn)
    .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// A plan's sessions not cancelled: (course, start).
pub async fn plan_sessions(
    conn: &mut AnyConnection,
    plan_id: &str,
    cancelled: i64,
) -> Result<Vec<(String, i64)>, Error> {
    let rows = sqlx::query("SELECT course_id, start_at FROM sessions WHERE plan_id = $1 AND state <> $2")
        .bind(plan_id)
        .bind(cancelled)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}
