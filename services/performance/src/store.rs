//! All SQL of the performance service (portable: SQLite and PostgreSQL).
//! Rows become domain values here; JSON columns are read and written once.
use kefu_kit::{Error, db::Columns};
use sqlx::AnyConnection;

/// JSON columns, read and written once (the kit's).
pub use kefu_kit::db::{from_json as json, to_json};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SchemeRow {
    pub code: String,
    pub version: i64,
    pub name: String,
    pub position: String,
    pub body: String,
    pub defined_by: String,
    pub defined_at: i64,
}

const SCHEME: &str = "code, version, name, position, body, defined_by, defined_at";

pub async fn insert_scheme(conn: &mut AnyConnection, s: &SchemeRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("code", s.code.as_str())
        .with("version", s.version)
        .with("name", s.name.as_str())
        .with("position", s.position.as_str())
        .with("body", s.body.as_str())
        .with("defined_by", s.defined_by.as_str())
        .with("defined_at", s.defined_at)
        .insert_unless_exists(conn, "schemes", "code, version")
        .await?)
}

/// A version of a scheme (0: the newest).
pub async fn scheme(conn: &mut AnyConnection, code: &str, version: i64) -> Result<Option<SchemeRow>, Error> {
    let q = if version == 0 {
        format!("SELECT {SCHEME} FROM schemes WHERE code = $1 ORDER BY version DESC LIMIT 1")
    } else {
        format!("SELECT {SCHEME} FROM schemes WHERE code = $1 AND version = $2")
    };
    Ok(sqlx::query_as(&q).bind(code).bind(version).fetch_optional(conn).await?)
}

/// The newest version of every scheme.
pub async fn schemes(conn: &mut AnyConnection) -> Result<Vec<SchemeRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SCHEME} FROM schemes s WHERE version = (SELECT MAX(version) FROM schemes x WHERE x.code = s.code) \
         ORDER BY code LIMIT 1000"
    ))
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CycleRow {
    pub id: String,
    pub kind: i64,
    pub period: String,
    pub from_date: String,
    pub to_date: String,
    pub team: String,
    pub scheme_code: String,
    pub settings: String,
    pub state: i64,
    pub opened_by: String,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub calibration_due: Option<i64>,
    pub finalized_at: Option<i64>,
    pub version: i64,
}

const CYCLE: &str = "id, kind, period, from_date, to_date, team, scheme_code, settings, state, opened_by, opened_at, \
    closed_at, calibration_due, finalized_at, version";

/// Inserts the cycle unless its period and team have one: whether it went in.
pub async fn insert_cycle(conn: &mut AnyConnection, c: &CycleRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", c.id.as_str())
        .with("kind", c.kind)
        .with("period", c.period.as_str())
        .with("from_date", c.from_date.as_str())
        .with("to_date", c.to_date.as_str())
        .with("team", c.team.as_str())
        .with("scheme_code", c.scheme_code.as_str())
        .with("settings", c.settings.as_str())
        .with("opened_by", c.opened_by.as_str())
        .with("opened_at", c.opened_at)
        .with("version", c.version)
        .and(cycle_changing(c))
        .insert_unless_exists(conn, "cycles", "period, team")
        .await?)
}

fn cycle_changing(c: &CycleRow) -> Columns {
    Columns::new()
        .with("state", c.state)
        .with("closed_at", c.closed_at)
        .with("calibration_due", c.calibration_due)
        .with("finalized_at", c.finalized_at)
}

/// Writes the cycle's state if its version holds (false: changed meanwhile).
pub async fn update_cycle(conn: &mut AnyConnection, c: &CycleRow) -> Result<bool, Error> {
    Ok(cycle_changing(c).update_versioned(conn, "cycles", &c.id, c.version).await?)
}

pub async fn cycle(conn: &mut AnyConnection, id: &str) -> Result<Option<CycleRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {CYCLE} FROM cycles WHERE id = $1")).bind(id).fetch_optional(conn).await?)
}

pub async fn cycle_of(conn: &mut AnyConnection, period: &str, team: &str) -> Result<Option<CycleRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {CYCLE} FROM cycles WHERE period = $1 AND team = $2"))
        .bind(period)
        .bind(team)
        .fetch_optional(conn)
        .await?)
}

/// Cycles, newest period first, filtered by team and period.
pub async fn cycles(
    conn: &mut AnyConnection,
    team: Option<&str>,
    period: Option<&str>,
) -> Result<Vec<CycleRow>, Error> {
    let mut w = kefu_kit::db::Where::new();
    if let Some(t) = team {
        w.and("team = $?", t);
    }
    if let Some(p) = period {
        w.and("period = $?", p);
    }
    let (cond, binds) = w.build();
    Ok(kefu_kit::db::fetch_all_as(
        conn,
        &format!("SELECT {CYCLE} FROM cycles WHERE {cond} ORDER BY from_date DESC, to_date DESC, team LIMIT 500"),
        binds,
    )
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvaluationRow {
    pub id: String,
    pub cycle_id: String,
    pub staff_id: String,
    pub display_name: String,
    pub position: String,
    pub team: String,
    pub reviewers: String,
    pub scheme_code: String,
    pub scheme_version: i64,
    pub state: i64,
    pub figures: String,
    pub self_scores: String,
    pub manual_scores: String,
    pub self_comment: String,
    pub review_comment: String,
    pub reviewed_by: String,
    pub total_centi: i64,
    pub computed_grade: String,
    pub grade: String,
    pub calibration_reason: String,
    pub bonus_base_fen: i64,
    pub coefficient: i64,
    pub bonus_fen: i64,
    pub appeal_reason: String,
    pub appeal_decision: String,
    pub appeal_upheld: i64,
    pub promotion_recommended: i64,
    pub promotion_detail: String,
    pub honours: String,
    pub due_at: Option<i64>,
    pub corrected: i64,
    pub version: i64,
}

const EVALUATION: &str = "id, cycle_id, staff_id, display_name, position, team, reviewers, scheme_code, \
    scheme_version, state, figures, self_scores, manual_scores, self_comment, review_comment, reviewed_by, \
    total_centi, computed_grade, grade, calibration_reason, bonus_base_fen, coefficient, bonus_fen, appeal_reason, \
    appeal_decision, appeal_upheld, promotion_recommended, promotion_detail, honours, due_at, corrected, version";

fn evaluation_changing(e: &EvaluationRow) -> Columns {
    Columns::new()
        .with("state", e.state)
        .with("figures", e.figures.as_str())
        .with("self_scores", e.self_scores.as_str())
        .with("manual_scores", e.manual_scores.as_str())
        .with("self_comment", e.self_comment.as_str())
        .with("review_comment", e.review_comment.as_str())
        .with("reviewed_by", e.reviewed_by.as_str())
        .with("total_centi", e.total_centi)
        .with("computed_grade", e.computed_grade.as_str())
        .with("grade", e.grade.as_str())
        .with("calibration_reason", e.calibration_reason.as_str())
        .with("bonus_base_fen", e.bonus_base_fen)
        .with("coefficient", e.coefficient)
        .with("bonus_fen", e.bonus_fen)
        .with("appeal_reason", e.appeal_reason.as_str())
        .with("appeal_decision", e.appeal_decision.as_str())
        .with("appeal_upheld", e.appeal_upheld)
        .with("promotion_recommended", e.promotion_recommended)
        .with("promotion_detail", e.promotion_detail.as_str())
        .with("honours", e.honours.as_str())
        .with("due_at", e.due_at)
        .with("corrected", e.corrected)
}

pub async fn insert_evaluation(conn: &mut AnyConnection, e: &EvaluationRow) -> Result<(), Error> {
    Ok(Columns::new()
        .with("id", e.id.as_str())
        .with("cycle_id", e.cycle_id.as_str())
        .with("staff_id", e.staff_id.as_str())
        .with("display_name", e.display_name.as_str())
        .with("position", e.position.as_str())
        .with("team", e.team.as_str())
        .with("reviewers", e.reviewers.as_str())
        .with("scheme_code", e.scheme_code.as_str())
        .with("scheme_version", e.scheme_version)
        .with("version", e.version)
        .and(evaluation_changing(e))
        .insert(conn, "evaluations")
        .await?)
}

/// Writes the evaluation if its version holds (false: changed meanwhile).
pub async fn update_evaluation(conn: &mut AnyConnection, e: &EvaluationRow) -> Result<bool, Error> {
    Ok(evaluation_changing(e).update_versioned(conn, "evaluations", &e.id, e.version).await?)
}

pub async fn evaluation(conn: &mut AnyConnection, id: &str) -> Result<Option<EvaluationRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {EVALUATION} FROM evaluations WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// How many evaluations a cycle has.
pub async fn count_evaluations(conn: &mut AnyConnection, cycle: &str) -> Result<i64, Error> {
    use sqlx::Row;
    Ok(sqlx::query("SELECT COUNT(*) FROM evaluations WHERE cycle_id = $1")
        .bind(cycle)
        .fetch_one(conn)
        .await?
        .try_get(0)?)
}

/// Which of `staff` are evaluated in a cycle whose days overlap
/// `from..=to`: (staff id, period, team).
pub async fn overlapping(
    conn: &mut AnyConnection,
    staff: &[String],
    from: &str,
    to: &str,
) -> Result<Vec<(String, String, String)>, Error> {
    use sqlx::Row;
    let mut w = kefu_kit::db::Where::new();
    w.any_of("e.staff_id", staff.iter().map(String::as_str));
    w.and("c.from_date <= $?", to);
    w.and("c.to_date >= $?", from);
    let (cond, binds) = w.build();
    let rows = kefu_kit::db::fetch_rows(
        conn,
        &format!(
            "SELECT e.staff_id, c.period, c.team FROM evaluations e JOIN cycles c ON c.id = e.cycle_id WHERE {cond} \
             ORDER BY e.staff_id LIMIT 100"
        ),
        binds,
    )
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
}

/// A cycle's evaluations by staff id.
pub async fn evaluations(conn: &mut AnyConnection, cycle: &str) -> Result<Vec<EvaluationRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {EVALUATION} FROM evaluations WHERE cycle_id = $1 ORDER BY staff_id LIMIT 5000"
    ))
    .bind(cycle)
    .fetch_all(conn)
    .await?)
}

/// A person's evaluations, or a team's, in every cycle.
pub async fn evaluations_of(
    conn: &mut AnyConnection,
    staff: Option<&str>,
    team: Option<&str>,
) -> Result<Vec<EvaluationRow>, Error> {
    let mut w = kefu_kit::db::Where::new();
    if let Some(s) = staff {
        w.and("staff_id = $?", s);
    }
    if let Some(t) = team {
        w.and("team = $?", t);
    }
    let (cond, binds) = w.build();
    Ok(kefu_kit::db::fetch_all_as(
        conn,
        &format!("SELECT {EVALUATION} FROM evaluations WHERE {cond} ORDER BY cycle_id, staff_id LIMIT 20000"),
        binds,
    )
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: String,
    pub evaluation_id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

pub async fn add_history(
    conn: &mut AnyConnection,
    evaluation: &str,
    at: i64,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), Error> {
    Ok(Columns::new()
        .with("id", uuid::Uuid::now_v7().to_string())
        .with("evaluation_id", evaluation)
        .with("at", at)
        .with("actor", actor)
        .with("action", action)
        .with("detail", detail)
        .insert(conn, "evaluation_history")
        .await?)
}

pub async fn history(conn: &mut AnyConnection, evaluation: &str) -> Result<Vec<HistoryRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, evaluation_id, at, actor, action, detail FROM evaluation_history \
         WHERE evaluation_id = $1 ORDER BY at, id LIMIT 1000",
    )
    .bind(evaluation)
    .fetch_all(conn)
    .await?)
}
