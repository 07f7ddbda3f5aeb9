//! Reactions and observations, and what a course report reads (tables `reactions`, `observations`).
use kefu_kit::{Error, db::Columns};
use sqlx::{AnyConnection, Row};

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
