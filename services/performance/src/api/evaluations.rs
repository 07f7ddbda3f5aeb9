//! An evaluation's steps: self-assessment, review, calibration,
//! acknowledgement or appeal, and corrections after the cycle is final.
use std::collections::BTreeMap;

use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::performance::v1::{self as pb, CycleState, EvaluationState as S};

use super::{PerformanceApi, eval_state, evaluation_pb, reviewers, scheme_body, sees, settings, totals, visible};
use crate::{
    domain::{self, SchemeBody},
    store::{self, CycleRow, EvaluationRow},
};

async fn answer_with(
    api: &PerformanceApi,
    conn: &mut sqlx::AnyConnection,
    e: &EvaluationRow,
) -> Result<pb::Evaluation, Error> {
    let c = store::cycle(conn, &e.cycle_id).await?.map(|c| c.period).unwrap_or_default();
    evaluation_pb(api, conn, e, &c).await
}

pub(super) async fn get(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::GetEvaluationRequest,
) -> Result<pb::Evaluation, Error> {
    let mut conn = api.reads.acquire().await?;
    let e = visible(&mut conn, p, &r.id).await?;
    answer_with(api, &mut conn, &e).await
}

pub(super) async fn list(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::ListEvaluationsRequest,
) -> Result<pb::ListEvaluationsResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = super::cycle_named(&mut conn, &r.cycle_id).await.map_err(|e| e.within("cycle_id"))?;
    let rows = store::evaluations(&mut conn, &c.id).await?;
    let mut evaluations = Vec::new();
    for e in rows.iter().filter(|e| sees(p, e)) {
        evaluations.push(evaluation_pb(api, &mut conn, e, &c.period).await?);
    }
    Ok(pb::ListEvaluationsResponse { evaluations })
}

/// Manual scores for a scheme's manual indicators, 0–100, each once.
fn manual_scores(
    v: &mut Violations,
    body: &SchemeBody,
    scores: &[pb::ManualScore],
    all: bool,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (i, s) in scores.iter().enumerate() {
        let code = s.indicator.trim();
        let Some(ind) = body.indicators.iter().find(|x| x.code == code) else {
            v.add(format!("scores[{i}].indicator"), format!("{code:?} is not an indicator of the scheme"));
            continue;
        };
        if !domain::is_manual(ind.source()) {
            v.add(
                format!("scores[{i}].indicator"),
                format!("{}（{code}）is scored from its figures, not by hand", ind.name),
            );
            continue;
        }
        if !s.score.is_finite() || !(0.0..=100.0).contains(&s.score) {
            v.add(format!("scores[{i}].score"), format!("{} is outside the scale 0–100", s.score));
            continue;
        }
        if out.insert(code.to_owned(), domain::round2(s.score)).is_some() {
            v.add(format!("scores[{i}].indicator"), format!("{code} is scored twice"));
        }
    }
    if all {
        for ind in body.indicators.iter().filter(|x| domain::is_manual(x.source())) {
            if !out.contains_key(&ind.code) {
                v.add("scores", format!("{}（{}）needs a score", ind.name, ind.code));
            }
        }
    }
    out
}

/// The evaluation and its cycle for a change, in the transaction; refuses
/// anything once the cycle is finalised (corrections excepted).
async fn for_change(
    tx: &mut sqlx::AnyConnection,
    p: &Principal,
    raw: &str,
) -> Result<(EvaluationRow, CycleRow), Error> {
    let e = visible(tx, p, raw).await?;
    let c = store::cycle(tx, &e.cycle_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("evaluation {} has no cycle", e.id)))?;
    Ok((e, c))
}

fn closed(c: &CycleRow) -> bool {
    c.state == i64::from(CycleState::Finalized as i32)
}

fn refuse_closed(c: &CycleRow) -> Result<(), Error> {
    if closed(c) {
        return Err(Error::FailedPrecondition(format!(
            "cycle {} is finalised and is not edited; HR records a correction (CorrectResult) instead",
            c.period
        )));
    }
    Ok(())
}

async fn save(
    api: &PerformanceApi,
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    row: &EvaluationRow,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<pb::Evaluation, Error> {
    if !store::update_evaluation(&mut tx, row).await? {
        return Err(Error::Aborted("the evaluation was changed by someone else; reload and retry".into()));
    }
    store::add_history(&mut tx, &row.id, api.now(), actor, action, detail).await?;
    let mut fresh = row.clone();
    fresh.version += 1;
    let out = answer_with(api, &mut tx, &fresh).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn self_assessment(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::SubmitSelfAssessmentRequest,
) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    refuse_closed(&c)?;
    if e.staff_id != p.subject {
        return Err(Error::PermissionDenied("only the person evaluated assesses themselves".into()));
    }
    if !domain::allowed("self_assessment", eval_state(&e)) {
        return Err(domain::out_of_order("self-assessment", eval_state(&e)));
    }
    let body = scheme_body(&mut tx, &e.scheme_code, e.scheme_version).await?;
    let mut v = Violations::new();
    let comment = v.check(parse::required_text("comment", &r.comment, 2000)).unwrap_or_default();
    let scores = manual_scores(&mut v, &body, &r.scores, false);
    v.finish()?;
    let s = settings(&c)?;
    let mut row = e.clone();
    row.self_comment = comment;
    row.self_scores = store::to_json(&scores)?;
    row.state = i64::from(S::Review as i32);
    row.due_at = Some(api.due_in(s.step_days[1]));
    let shown: Vec<String> = scores.iter().map(|(k, v)| format!("{k} 自评 {v}")).collect();
    let detail =
        format!("提交自评{}", if shown.is_empty() { String::new() } else { format!("：{}", shown.join("，")) });
    save(api, tx, &row, &p.subject, "self_assessment", &detail).await
}

pub(super) async fn review(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::SubmitReviewRequest,
) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    refuse_closed(&c)?;
    if !reviewers(&e).contains(&p.subject) {
        return Err(Error::PermissionDenied(format!(
            "{}'s reviewers are {}: their manager and their team's leads",
            e.display_name,
            reviewers(&e).join(", ")
        )));
    }
    let state = eval_state(&e);
    if !domain::allowed("review", state) {
        return Err(domain::out_of_order("review", state));
    }
    if state == S::SelfAssessment && e.due_at.is_none_or(|d| d >= api.now()) {
        return Err(Error::FailedPrecondition(
            "review: the employee's self-assessment comes first (a reviewer goes on without it once its deadline has passed)"
                .into(),
        ));
    }
    let body = scheme_body(&mut tx, &e.scheme_code, e.scheme_version).await?;
    let mut v = Violations::new();
    let comment = v.check(parse::required_text("comment", &r.comment, 2000)).unwrap_or_default();
    let scores = manual_scores(&mut v, &body, &r.scores, true);
    v.finish()?;
    let s = settings(&c)?;
    let mut row = e.clone();
    row.manual_scores = store::to_json(&scores)?;
    row.review_comment = comment;
    row.reviewed_by = p.subject.clone();
    let t = totals(&body, &row)?;
    row.total_centi = (t.total * 100.0).round() as i64;
    row.computed_grade = domain::grade_for(&s.grades, t.total);
    row.grade = row.computed_grade.clone();
    row.state = i64::from(S::Calibration as i32);
    row.due_at = c.calibration_due;
    let shown: Vec<String> = scores.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let late = if state == S::SelfAssessment { "（员工逾期未自评）" } else { "" };
    let detail = format!("主管评价{late}：{}；总分 {:.2}，等级 {}", shown.join("，"), t.total, row.computed_grade);
    save(api, tx, &row, &p.subject, "review", &detail).await
}

/// A grade of the cycle's bands.
fn grade_of(c: &CycleRow, field: &str, raw: &str) -> Result<String, Error> {
    let s = settings(c)?;
    let g = raw.trim().to_ascii_uppercase();
    if domain::band(&s.grades, &g).is_none() {
        let all: Vec<&str> = s.grades.iter().map(|b| b.grade.as_str()).collect();
        return Err(Error::invalid(field, format!("{g:?} is not a grade of this cycle ({})", all.join(", "))));
    }
    Ok(g)
}

pub(super) async fn calibrate(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::CalibrateRequest,
) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    refuse_closed(&c)?;
    if !domain::allowed("calibrate", eval_state(&e)) || c.state != i64::from(CycleState::Review as i32) {
        return Err(domain::out_of_order("calibration", eval_state(&e)));
    }
    if e.staff_id == p.subject {
        return Err(Error::PermissionDenied("nobody calibrates their own result".into()));
    }
    let mut v = Violations::new();
    let grade = v.check(grade_of(&c, "grade", &r.grade));
    let reason = v.check(parse::required_text("reason", &r.reason, 1000)).unwrap_or_default();
    v.finish()?;
    let grade = grade.unwrap_or_default();
    let mut row = e.clone();
    let before = std::mem::replace(&mut row.grade, grade.clone());
    row.calibration_reason = reason.clone();
    let detail = format!("人力资源校准：等级 {before} → {grade}；理由：{reason}");
    save(api, tx, &row, &p.subject, "calibrate", &detail).await
}

pub(super) async fn acknowledge(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::AcknowledgeRequest,
) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    refuse_closed(&c)?;
    if e.staff_id != p.subject {
        return Err(Error::PermissionDenied("only the person evaluated acknowledges their result".into()));
    }
    if !domain::allowed("acknowledge", eval_state(&e)) {
        return Err(domain::out_of_order("acknowledgement", eval_state(&e)));
    }
    let mut row = e.clone();
    row.state = i64::from(S::Final as i32);
    row.due_at = None;
    let detail = format!("员工确认结果：等级 {}，奖金 {}", row.grade, domain::yuan(row.bonus_fen));
    save(api, tx, &row, &p.subject, "acknowledge", &detail).await
}

pub(super) async fn appeal(api: &PerformanceApi, p: &Principal, r: pb::AppealRequest) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    refuse_closed(&c)?;
    if e.staff_id != p.subject {
        return Err(Error::PermissionDenied("only the person evaluated appeals their result".into()));
    }
    if !domain::allowed("appeal", eval_state(&e)) {
        return Err(domain::out_of_order("appeal", eval_state(&e)));
    }
    if e.due_at.is_some_and(|d| d < api.now()) {
        return Err(Error::FailedPrecondition(
            "the acknowledgement deadline has passed: the result stands as acknowledged".into(),
        ));
    }
    let reason = parse::required_text("reason", &r.reason, 2000)?;
    let s = settings(&c)?;
    let mut row = e.clone();
    row.appeal_reason = reason.clone();
    row.state = i64::from(S::Appealed as i32);
    row.due_at = Some(api.due_in(s.step_days[3]));
    save(api, tx, &row, &p.subject, "appeal", &format!("员工申诉：{reason}")).await
}

fn apply_grade(c: &CycleRow, row: &mut EvaluationRow, grade: &str) -> Result<(), Error> {
    let s = settings(c)?;
    let band = domain::band(&s.grades, grade).ok_or_else(|| Error::invalid("grade", "is not a grade of this cycle"))?;
    row.grade = grade.to_owned();
    row.coefficient = i64::from(band.coefficient);
    row.bonus_fen = domain::bonus(row.bonus_base_fen, band.coefficient);
    Ok(())
}

pub(super) async fn decide_appeal(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::DecideAppealRequest,
) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    refuse_closed(&c)?;
    if !domain::allowed("decide_appeal", eval_state(&e)) {
        return Err(domain::out_of_order("an appeal decision", eval_state(&e)));
    }
    if e.staff_id == p.subject {
        return Err(Error::PermissionDenied("nobody decides their own appeal".into()));
    }
    let mut v = Violations::new();
    let decision = v.check(parse::required_text("decision", &r.decision, 2000)).unwrap_or_default();
    let grade = if r.upheld {
        let g = v.check(grade_of(&c, "grade", &r.grade));
        if g.as_deref() == Some(e.grade.as_str()) {
            v.add("grade", format!("an upheld appeal changes the grade; it is {} already", e.grade));
        }
        g
    } else {
        if !r.grade.trim().is_empty() {
            v.add("grade", "a rejected appeal keeps the grade (leave grade empty)");
        }
        None
    };
    v.finish()?;
    let mut row = e.clone();
    let before = (row.grade.clone(), row.bonus_fen);
    if let Some(g) = &grade {
        apply_grade(&c, &mut row, g)?;
    }
    row.appeal_upheld = i64::from(r.upheld);
    row.appeal_decision = decision.clone();
    row.state = i64::from(S::Final as i32);
    row.due_at = None;
    let detail = if r.upheld {
        format!(
            "申诉成立：等级 {} → {}，奖金 {} → {}；决定：{decision}",
            before.0,
            row.grade,
            domain::yuan(before.1),
            domain::yuan(row.bonus_fen)
        )
    } else {
        format!("申诉不成立，维持等级 {}；决定：{decision}", row.grade)
    };
    save(api, tx, &row, &p.subject, "decide_appeal", &detail).await
}

pub(super) async fn correct(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::CorrectResultRequest,
) -> Result<pb::Evaluation, Error> {
    let mut tx = api.pool.begin().await?;
    let (e, c) = for_change(&mut tx, p, &r.evaluation_id).await?;
    if !closed(&c) {
        return Err(Error::FailedPrecondition(format!(
            "cycle {} is not finalised: change the result through its workflow, not a correction",
            c.period
        )));
    }
    if e.staff_id == p.subject {
        return Err(Error::PermissionDenied("nobody corrects their own result".into()));
    }
    let mut v = Violations::new();
    let grade = v.check(grade_of(&c, "grade", &r.grade));
    let reason = v.check(parse::required_text("reason", &r.reason, 2000)).unwrap_or_default();
    if grade.as_deref() == Some(e.grade.as_str()) {
        v.add("grade", format!("is {} already", e.grade));
    }
    v.finish()?;
    let mut row = e.clone();
    let before = (row.grade.clone(), row.bonus_fen);
    apply_grade(&c, &mut row, &grade.unwrap_or_default())?;
    row.corrected = 1;
    let detail = format!(
        "归档后更正：等级 {} → {}，奖金 {} → {}；理由：{reason}（原结果保留在此记录之前）",
        before.0,
        row.grade,
        domain::yuan(before.1),
        domain::yuan(row.bonus_fen)
    );
    save(api, tx, &row, &p.subject, "correct", &detail).await
}

pub(super) async fn recompute(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::RecomputeEvaluationRequest,
) -> Result<pb::Recomputation, Error> {
    let mut conn = api.reads.acquire().await?;
    let e = visible(&mut conn, p, &r.evaluation_id).await?;
    let c = store::cycle(&mut conn, &e.cycle_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("evaluation {} has no cycle", e.id)))?;
    if c.closed_at.is_none() {
        return Err(Error::FailedPrecondition("the cycle has not been closed: there is no snapshot to compare".into()));
    }
    let body = scheme_body(&mut conn, &e.scheme_code, e.scheme_version).await?;
    drop(conn);
    let before = totals(&body, &e)?;
    let mut needed: Vec<&str> = body.indicators.iter().filter_map(|i| domain::service_of(i.source())).collect();
    needed.dedup();
    let live = api.peers.figures(&e.staff_id, &c.from_date, &c.to_date, &needed, api.now()).await?;
    let mut now_row = e.clone();
    now_row.figures = store::to_json(&live)?;
    let after = totals(&body, &now_row)?;
    Ok(pb::Recomputation {
        evaluation_id: e.id.clone(),
        snapshot_total: before.total,
        current_total: after.total,
        difference: domain::round2(after.total - before.total),
        indicators: body
            .indicators
            .iter()
            .zip(before.indicators.iter().zip(&after.indicators))
            .map(|(i, (b, a))| pb::IndicatorDifference {
                code: i.code.clone(),
                name: i.name.clone(),
                snapshot_value: b.value,
                current_value: a.value,
                snapshot_score: b.score,
                current_score: a.score,
            })
            .collect(),
    })
}
