//! The question bank, exams and attempts with their papers (tables `questions`, `question_tags`, `exams`, `attempts`, `attempt_items`).
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

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
