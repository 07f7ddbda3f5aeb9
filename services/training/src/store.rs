//! All SQL of the training service (portable: SQLite and PostgreSQL). Rows
//! come back as the row types below; JSON columns (materials, goals,
//! planned courses) are read into their types here.
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

// ------------------------------------------------------------------ courses

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CourseRow {
    pub id: String,
    pub code: String,
    pub title: String,
    pub topic: i64,
    pub method: i64,
    pub hours_x2: i64,
    pub description: String,
    pub materials: String,
    pub requires_approval: i64,
    pub created_by: String,
    pub created_at: i64,
}

impl CourseRow {
    pub fn materials(&self) -> Result<Vec<Material>, Error> {
        json("courses", &self.id, &self.materials)
    }
}

const COURSE_COLUMNS: &str =
    "id, code, title, topic, method, hours_x2, description, materials, requires_approval, created_by, created_at";

/// Inserts the course unless its code is taken: whether it went in.
pub async fn insert_course(conn: &mut AnyConnection, c: &CourseRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", c.id.as_str())
        .with("code", c.code.as_str())
        .with("title", c.title.as_str())
        .with("topic", c.topic)
        .with("method", c.method)
        .with("hours_x2", c.hours_x2)
        .with("description", c.description.as_str())
        .with("materials", c.materials.as_str())
        .with("requires_approval", c.requires_approval)
        .with("created_by", c.created_by.as_str())
        .with("created_at", c.created_at)
        .insert_unless_exists(conn, "courses", "code")
        .await?)
}

pub async fn course(conn: &mut AnyConnection, id_or_code: &str) -> Result<Option<CourseRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {COURSE_COLUMNS} FROM courses WHERE id = $1 OR code = $2"))
        .bind(id_or_code)
        .bind(id_or_code.to_ascii_uppercase())
        .fetch_optional(conn)
        .await?)
}

pub async fn courses(
    conn: &mut AnyConnection,
    topic: Option<i64>,
    after_code: Option<&str>,
    limit: i64,
) -> Result<Vec<CourseRow>, Error> {
    let mut w = Where::new();
    if let Some(t) = topic {
        w.and("topic = $?", t);
    }
    if let Some(a) = after_code {
        w.and("code > $?", a);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {COURSE_COLUMNS} FROM courses WHERE {clause} ORDER BY code LIMIT {limit}");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

// ----------------------------------------------------------------- sessions

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

// --------------------------------------------------------------- enrolments

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

// -------------------------------------------------------------------- plans

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

// ------------------------------------------------------------- certificates

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    pub id: String,
    pub staff_id: String,
    pub name: String,
    pub kind: i64,
    pub number: String,
    pub issuer: String,
    pub issue_date: String,
    pub expiry_date: Option<String>,
    pub ce_x2: i64,
    pub recorded_by: String,
    pub recorded_at: i64,
}

const CERTIFICATE_COLUMNS: &str =
    "id, staff_id, name, kind, number, issuer, issue_date, expiry_date, ce_x2, recorded_by, recorded_at";

/// Inserts the certificate unless its name and number are recorded: whether
/// it went in.
pub async fn insert_certificate(conn: &mut AnyConnection, c: &CertificateRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", c.id.as_str())
        .with("staff_id", c.staff_id.as_str())
        .with("name", c.name.as_str())
        .with("kind", c.kind)
        .with("number", c.number.as_str())
        .with("issuer", c.issuer.as_str())
        .with("issue_date", c.issue_date.as_str())
        .with("expiry_date", c.expiry_date.as_deref())
        .with("ce_x2", c.ce_x2)
        .with("recorded_by", c.recorded_by.as_str())
        .with("recorded_at", c.recorded_at)
        .insert_unless_exists(conn, "certificates", "name, number")
        .await?)
}

pub async fn certificate_by_number(
    conn: &mut AnyConnection,
    name: &str,
    number: &str,
) -> Result<Option<CertificateRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE name = $1 AND number = $2"))
        .bind(name)
        .bind(number)
        .fetch_optional(conn)
        .await?)
}

pub async fn certificates(conn: &mut AnyConnection, staff_id: Option<&str>) -> Result<Vec<CertificateRow>, Error> {
    let mut w = Where::new();
    if let Some(s) = staff_id {
        w.and("staff_id = $?", s);
    }
    let (clause, binds) = w.build();
    let sql = format!(
        "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE {clause} ORDER BY staff_id, issue_date, id LIMIT 5000"
    );
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

// -------------------------------------------------------------------- exams

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuestionRow {
    pub id: String,
    pub kind: i64,
    pub stem: String,
    pub options: String,
    pub correct: String,
    pub answer_guide: String,
    pub points: i64,
    pub tags: String,
    pub created_by: String,
    pub created_at: i64,
}

/// A JSON column read into its type.
pub fn json<T: serde::de::DeserializeOwned>(table: &str, id: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Internal(anyhow::anyhow!("{table} {id} holds invalid JSON: {e}")))
}

/// A value as its JSON column text.
pub fn to_json<T: Serialize>(x: &T) -> Result<String, Error> {
    serde_json::to_string(x).map_err(|e| Error::Internal(e.into()))
}

const QUESTION_COLUMNS: &str = "id, kind, stem, options, correct, answer_guide, points, tags, created_by, created_at";

pub async fn insert_question(conn: &mut AnyConnection, q: &QuestionRow, tags: &[String]) -> Result<(), Error> {
    Columns::new()
        .with("id", q.id.as_str())
        .with("kind", q.kind)
        .with("stem", q.stem.as_str())
        .with("options", q.options.as_str())
        .with("correct", q.correct.as_str())
        .with("answer_guide", q.answer_guide.as_str())
        .with("points", q.points)
        .with("tags", q.tags.as_str())
        .with("created_by", q.created_by.as_str())
        .with("created_at", q.created_at)
        .insert(&mut *conn, "questions")
        .await?;
    for t in tags {
        sqlx::query("INSERT INTO question_tags (tag, question_id) VALUES ($1, $2)")
            .bind(t)
            .bind(&q.id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Questions with a tag (or all), oldest first.
pub async fn questions(conn: &mut AnyConnection, tag: Option<&str>) -> Result<Vec<QuestionRow>, Error> {
    let cols: String = QUESTION_COLUMNS.split(", ").map(|c| format!("q.{c}")).collect::<Vec<_>>().join(", ");
    Ok(match tag {
        Some(t) => {
            sqlx::query_as(&format!(
                "SELECT {cols} FROM questions q JOIN question_tags t ON t.question_id = q.id \
                 WHERE t.tag = $1 ORDER BY q.created_at, q.id LIMIT 5000"
            ))
            .bind(t)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query_as(&format!("SELECT {cols} FROM questions q ORDER BY q.created_at, q.id LIMIT 5000"))
                .fetch_all(conn)
                .await?
        }
    })
}

/// How many questions carry a tag.
pub async fn tag_count(conn: &mut AnyConnection, tag: &str) -> Result<i64, Error> {
    let r = sqlx::query("SELECT COUNT(*) FROM question_tags WHERE tag = $1").bind(tag).fetch_one(conn).await?;
    Ok(r.try_get(0)?)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub tag: String,
    pub count: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExamRow {
    pub id: String,
    pub course_id: String,
    pub title: String,
    pub pools: String,
    pub time_limit_minutes: i64,
    pub max_attempts: i64,
    pub pass_mark: i64,
    pub pre_test: i64,
    pub created_by: String,
    pub created_at: i64,
}

const EXAM_COLUMNS: &str =
    "id, course_id, title, pools, time_limit_minutes, max_attempts, pass_mark, pre_test, created_by, created_at";

pub async fn insert_exam(conn: &mut AnyConnection, e: &ExamRow) -> Result<(), Error> {
    Columns::new()
        .with("id", e.id.as_str())
        .with("course_id", e.course_id.as_str())
        .with("title", e.title.as_str())
        .with("pools", e.pools.as_str())
        .with("time_limit_minutes", e.time_limit_minutes)
        .with("max_attempts", e.max_attempts)
        .with("pass_mark", e.pass_mark)
        .with("pre_test", e.pre_test)
        .with("created_by", e.created_by.as_str())
        .with("created_at", e.created_at)
        .insert(conn, "exams")
        .await?;
    Ok(())
}

pub async fn exam(conn: &mut AnyConnection, id: &str) -> Result<Option<ExamRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {EXAM_COLUMNS} FROM exams WHERE id = $1")).bind(id).fetch_optional(conn).await?)
}

pub async fn exams(conn: &mut AnyConnection, course_id: Option<&str>) -> Result<Vec<ExamRow>, Error> {
    let mut w = Where::new();
    if let Some(c) = course_id {
        w.and("course_id = $?", c);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {EXAM_COLUMNS} FROM exams WHERE {clause} ORDER BY created_at, id LIMIT 1000");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: String,
    pub exam_id: String,
    pub staff_id: String,
    pub number: i64,
    pub state: i64,
    pub started_at: i64,
    pub deadline_at: i64,
    pub submitted_at: Option<i64>,
    pub points_total: i64,
    pub points_awarded: i64,
}

const ATTEMPT_COLUMNS: &str =
    "id, exam_id, staff_id, number, state, started_at, deadline_at, submitted_at, points_total, points_awarded";

/// Inserts the attempt unless the person has one with its number: whether
/// it went in.
pub async fn insert_attempt(conn: &mut AnyConnection, a: &AttemptRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", a.id.as_str())
        .with("exam_id", a.exam_id.as_str())
        .with("staff_id", a.staff_id.as_str())
        .with("number", a.number)
        .with("state", a.state)
        .with("started_at", a.started_at)
        .with("deadline_at", a.deadline_at)
        .with("submitted_at", a.submitted_at)
        .with("points_total", a.points_total)
        .with("points_awarded", a.points_awarded)
        .insert_unless_exists(conn, "attempts", "exam_id, staff_id, number")
        .await?)
}

pub async fn attempt(conn: &mut AnyConnection, id: &str) -> Result<Option<AttemptRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// A person's attempts of an exam, first first.
pub async fn attempts_of(conn: &mut AnyConnection, exam_id: &str, staff_id: &str) -> Result<Vec<AttemptRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE exam_id = $1 AND staff_id = $2 ORDER BY number"
    ))
    .bind(exam_id)
    .bind(staff_id)
    .fetch_all(conn)
    .await?)
}

/// An exam's attempts in a state.
pub async fn attempts_in(conn: &mut AnyConnection, exam_id: &str, state: i64) -> Result<Vec<AttemptRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE exam_id = $1 AND state = $2 ORDER BY started_at, id LIMIT 10000"
    ))
    .bind(exam_id)
    .bind(state)
    .fetch_all(conn)
    .await?)
}

/// A person's finished attempts (scored or expired) of exams that are not
/// pre-tests, submitted or expired in `[from, to)`.
pub async fn finished_attempts(
    conn: &mut AnyConnection,
    staff_id: &str,
    from: i64,
    to: i64,
    finished: &[i64],
) -> Result<Vec<AttemptRow>, Error> {
    let list = finished.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let cols: String = ATTEMPT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ");
    Ok(sqlx::query_as(&format!(
        "SELECT {cols} FROM attempts a JOIN exams e ON e.id = a.exam_id \
         WHERE a.staff_id = $1 AND e.pre_test = 0 AND a.state IN ({list}) \
         AND COALESCE(a.submitted_at, a.deadline_at) >= $2 AND COALESCE(a.submitted_at, a.deadline_at) < $3"
    ))
    .bind(staff_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

/// Writes an attempt's state, submission and points if it is still in
/// `from` (false: someone else moved it first).
pub async fn finish_attempt(conn: &mut AnyConnection, a: &AttemptRow, from: i64) -> Result<bool, Error> {
    let n = sqlx::query(
        "UPDATE attempts SET state = $1, submitted_at = $2, points_awarded = $3 WHERE id = $4 AND state = $5",
    )
    .bind(a.state)
    .bind(a.submitted_at)
    .bind(a.points_awarded)
    .bind(&a.id)
    .bind(from)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub attempt_id: String,
    pub position: i64,
    pub question_id: String,
    pub kind: i64,
    pub stem: String,
    pub options: String,
    pub correct: String,
    pub answer_guide: String,
    pub points: i64,
    pub answered: i64,
    pub chosen: String,
    pub answer_text: String,
    pub points_awarded: i64,
    pub marked: i64,
    pub marked_by: String,
}

const ITEM_COLUMNS: &str = "attempt_id, position, question_id, kind, stem, options, correct, answer_guide, points, answered, \
    chosen, answer_text, points_awarded, marked, marked_by";

pub async fn insert_item(conn: &mut AnyConnection, i: &ItemRow) -> Result<(), Error> {
    Columns::new()
        .with("attempt_id", i.attempt_id.as_str())
        .with("position", i.position)
        .with("question_id", i.question_id.as_str())
        .with("kind", i.kind)
        .with("stem", i.stem.as_str())
        .with("options", i.options.as_str())
        .with("correct", i.correct.as_str())
        .with("answer_guide", i.answer_guide.as_str())
        .with("points", i.points)
        .with("answered", i.answered)
        .with("chosen", i.chosen.as_str())
        .with("answer_text", i.answer_text.as_str())
        .with("points_awarded", i.points_awarded)
        .with("marked", i.marked)
        .with("marked_by", i.marked_by.as_str())
        .insert(conn, "attempt_items")
        .await?;
    Ok(())
}

pub async fn items(conn: &mut AnyConnection, attempt_id: &str) -> Result<Vec<ItemRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {ITEM_COLUMNS} FROM attempt_items WHERE attempt_id = $1 ORDER BY position"))
        .bind(attempt_id)
        .fetch_all(conn)
        .await?)
}

/// Writes an item's answer and points.
pub async fn save_item(conn: &mut AnyConnection, i: &ItemRow) -> Result<(), Error> {
    sqlx::query(
        "UPDATE attempt_items SET answered = $1, chosen = $2, answer_text = $3, points_awarded = $4, marked = $5, \
         marked_by = $6 WHERE attempt_id = $7 AND position = $8",
    )
    .bind(i.answered)
    .bind(&i.chosen)
    .bind(&i.answer_text)
    .bind(i.points_awarded)
    .bind(i.marked)
    .bind(&i.marked_by)
    .bind(&i.attempt_id)
    .bind(i.position)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `trainer` trains a session of the course, not cancelled, that
/// `taker` was enrolled in (and so marks the taker's answers).
pub async fn trains_taker(
    conn: &mut AnyConnection,
    course_id: &str,
    trainer: &str,
    taker: &str,
    cancelled: i64,
) -> Result<bool, Error> {
    let r = sqlx::query(
        "SELECT COUNT(*) FROM sessions s JOIN enrolments e ON e.session_id = s.id \
         WHERE s.course_id = $1 AND s.trainer = $2 AND s.state <> $3 AND e.staff_id = $4",
    )
    .bind(course_id)
    .bind(trainer)
    .bind(cancelled)
    .bind(taker)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get::<i64, _>(0)? > 0)
}

/// A person's enrolments in a course's sessions: (state, session start,
/// session state).
pub async fn course_enrolments_of(
    conn: &mut AnyConnection,
    course_id: &str,
    staff: &str,
) -> Result<Vec<(i64, i64, i64)>, Error> {
    let rows = sqlx::query(
        "SELECT e.state, s.start_at, s.state FROM enrolments e JOIN sessions s ON s.id = e.session_id \
         WHERE s.course_id = $1 AND e.staff_id = $2",
    )
    .bind(course_id)
    .bind(staff)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
}

/// Takes an attempt's row for a change: submissions and marks of one
/// attempt queue here.
pub async fn lock_attempt(conn: &mut AnyConnection, id: &str) -> Result<Option<AttemptRow>, Error> {
    sqlx::query("UPDATE attempts SET state = state WHERE id = $1").bind(id).execute(&mut *conn).await?;
    attempt(conn, id).await
}

/// An exam's attempts (a person's, or all) in a state, oldest first.
pub async fn attempts_list(
    conn: &mut AnyConnection,
    exam_id: &str,
    staff: Option<&str>,
    state: Option<i64>,
) -> Result<Vec<AttemptRow>, Error> {
    let mut w = Where::new();
    w.and("exam_id = $?", exam_id);
    if let Some(s) = staff {
        w.and("staff_id = $?", s);
    }
    if let Some(s) = state {
        w.and("state = $?", s);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE {clause} ORDER BY started_at, id LIMIT 1000");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

// ------------------------------------------------------------ effectiveness

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReactionRow {
    pub enrolment_id: String,
    pub relevance: i64,
    pub trainer: i64,
    pub materials: i64,
    pub overall: i64,
    pub comment: String,
    pub submitted_at: i64,
}

/// Inserts the reaction unless the enrolment has one: whether it went in.
pub async fn insert_reaction(conn: &mut AnyConnection, r: &ReactionRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("enrolment_id", r.enrolment_id.as_str())
        .with("relevance", r.relevance)
        .with("trainer", r.trainer)
        .with("materials", r.materials)
        .with("overall", r.overall)
        .with("comment", r.comment.as_str())
        .with("submitted_at", r.submitted_at)
        .insert_unless_exists(conn, "reactions", "enrolment_id")
        .await?)
}

/// Reactions to the sessions of a course.
pub async fn reactions_of_course(conn: &mut AnyConnection, course_id: &str) -> Result<Vec<ReactionRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT r.enrolment_id, r.relevance, r.trainer, r.materials, r.overall, r.comment, r.submitted_at \
         FROM reactions r JOIN enrolments e ON e.id = r.enrolment_id JOIN sessions s ON s.id = e.session_id \
         WHERE s.course_id = $1",
    )
    .bind(course_id)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ObservationRow {
    pub enrolment_id: String,
    pub observer: String,
    pub observed_on: String,
    pub days_after: i64,
    pub rating: i64,
    pub notes: String,
    pub recorded_at: i64,
}

/// Inserts the observation unless the enrolment has one: whether it went in.
pub async fn insert_observation(conn: &mut AnyConnection, o: &ObservationRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("enrolment_id", o.enrolment_id.as_str())
        .with("observer", o.observer.as_str())
        .with("observed_on", o.observed_on.as_str())
        .with("days_after", o.days_after)
        .with("rating", o.rating)
        .with("notes", o.notes.as_str())
        .with("recorded_at", o.recorded_at)
        .insert_unless_exists(conn, "observations", "enrolment_id")
        .await?)
}

pub async fn observation(conn: &mut AnyConnection, enrolment_id: &str) -> Result<Option<ObservationRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT enrolment_id, observer, observed_on, days_after, rating, notes, recorded_at FROM observations \
         WHERE enrolment_id = $1",
    )
    .bind(enrolment_id)
    .fetch_optional(conn)
    .await?)
}

/// Observations of a course's trainees.
pub async fn observations_of_course(conn: &mut AnyConnection, course_id: &str) -> Result<Vec<ObservationRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT o.enrolment_id, o.observer, o.observed_on, o.days_after, o.rating, o.notes, o.recorded_at \
         FROM observations o JOIN enrolments e ON e.id = o.enrolment_id JOIN sessions s ON s.id = e.session_id \
         WHERE s.course_id = $1",
    )
    .bind(course_id)
    .fetch_all(conn)
    .await?)
}

/// Completions of a course: (staff, completed at), in order.
pub async fn course_completions(
    conn: &mut AnyConnection,
    course_id: &str,
    completed: i64,
) -> Result<Vec<(String, i64)>, Error> {
    let rows = sqlx::query(
        "SELECT e.staff_id, e.complete_at FROM enrolments e JOIN sessions s ON s.id = e.session_id \
         WHERE s.course_id = $1 AND e.state = $2 AND e.complete_at IS NOT NULL ORDER BY e.complete_at, e.id LIMIT 10000",
    )
    .bind(course_id)
    .bind(completed)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// Finished attempts of a course's exams, in the order they were started:
/// (staff, pre-test?, awarded, total, pass mark).
pub async fn course_attempts(
    conn: &mut AnyConnection,
    course_id: &str,
    finished: &[i64],
) -> Result<Vec<(String, bool, i64, i64, i64)>, Error> {
    let list = finished.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let rows = sqlx::query(&format!(
        "SELECT a.staff_id, e.pre_test, a.points_awarded, a.points_total, e.pass_mark FROM attempts a \
         JOIN exams e ON e.id = a.exam_id WHERE e.course_id = $1 AND a.state IN ({list}) \
         ORDER BY a.started_at, a.id LIMIT 100000"
    ))
    .bind(course_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let pre: i64 = r.try_get(1)?;
            Ok((r.try_get(0)?, pre == 1, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?))
        })
        .collect()
}

// ------------------------------------------------------------- career paths

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
