//! Cycles: opened for a team, closed with a snapshot of everyone's figures,
//! calibrated under the forced distribution, finalised with promotions
//! and honours.
use std::collections::{BTreeMap, BTreeSet};

use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::ProtoEnum as _;
use kefu_proto::{
    performance::v1::{self as pb, CycleState, EvaluationState as S, PeriodKind},
    staff::v1::PersonStatus,
    training::v1::RequirementKind,
};

use super::{PerformanceApi, cycle_named, cycle_pb, cycle_state, eval_state, scheme_body, schemes, settings, totals};
use crate::{
    domain::{self, Band, HonourRule, Settings, Snapshot},
    store::{self, CycleRow, EvaluationRow},
};

/// The highest bonus base kefu accepts: ¥10,000,000.00.
const MAX_BASE_FEN: i64 = 1_000_000_000;

fn checked_settings(v: &mut Violations, c: &pb::Cycle) -> Settings {
    let grades: Vec<Band> = c
        .grades
        .iter()
        .map(|g| Band {
            grade: g.grade.trim().to_ascii_uppercase(),
            min_score: g.min_score,
            coefficient: g.coefficient,
            max_share: g.max_share,
            min_share: g.min_share,
        })
        .collect();
    domain::check_bands(v, &grades);
    if !(0..=MAX_BASE_FEN).contains(&c.bonus_base_fen) {
        v.add("cycle.bonus_base_fen", "is an amount in fen from 0 to 1,000,000,000 (¥10,000,000.00)");
    }
    let mut overrides = BTreeMap::new();
    for (k, fen) in &c.bonus_base_overrides {
        let key = k.trim().to_ascii_lowercase();
        if !(0..=MAX_BASE_FEN).contains(fen) {
            v.add(format!("cycle.bonus_base_overrides[{key}]"), "is an amount in fen from 0 to 1,000,000,000");
        }
        overrides.insert(key, *fen);
    }
    if c.honours.len() > 10 {
        v.add("cycle.honours", "at most 10 honour rules");
    }
    let mut honours = Vec::new();
    for (i, h) in c.honours.iter().enumerate() {
        let f = format!("cycle.honours[{i}]");
        let name = v.check(parse::required_line(&format!("{f}.name"), &h.name, 40)).unwrap_or_default();
        if !(1..=20).contains(&h.top) {
            v.add(format!("{f}.top"), "is 1 to 20 people");
        }
        let min_grade = h.min_grade.trim().to_ascii_uppercase();
        if !min_grade.is_empty() && domain::band(&grades, &min_grade).is_none() {
            v.add(format!("{f}.min_grade"), format!("{min_grade} is not one of the cycle's grades"));
        }
        if !(0.0..=100.0).contains(&h.min_score) {
            v.add(format!("{f}.min_score"), "is outside the scale 0–100");
        }
        honours.push(HonourRule { name, top: h.top, min_grade, min_score: h.min_score });
    }
    let d = c.step_days.unwrap_or_default();
    let mut step_days = [d.self_assessment, d.review, d.calibration, d.acknowledgement];
    for (name, days) in ["self_assessment", "review", "calibration", "acknowledgement"].iter().zip(&mut step_days) {
        if *days == 0 {
            *days = 5;
        }
        if !(1..=60).contains(days) {
            v.add(format!("cycle.step_days.{name}"), "is 1 to 60 business days (0: 5)");
        }
    }
    Settings { grades, bonus_base_fen: c.bonus_base_fen, overrides, honours, step_days }
}

pub(super) async fn open(api: &PerformanceApi, p: &Principal, r: pb::OpenCycleRequest) -> Result<pb::Cycle, Error> {
    let c = r.cycle.unwrap_or_default();
    let mut v = Violations::new();
    let kind = v.check(parse::enumeration::<PeriodKind>("cycle.kind", c.kind, None));
    let period = kind.and_then(|k| v.check(domain::period("cycle.period", k, &c.period)));
    let team = v.check(parse::required_line("cycle.team", &c.team, 64)).unwrap_or_default().to_ascii_lowercase();
    let scheme_code =
        if c.scheme_code.trim().is_empty() { None } else { v.check(domain::code("cycle.scheme_code", &c.scheme_code)) };
    let settings = checked_settings(&mut v, &c);
    if c.staff_ids.len() > 500 {
        v.add("cycle.staff_ids", "at most 500 people in one cycle");
    }
    let named: Vec<String> = c.staff_ids.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
    v.finish()?;
    let (Some(kind), Some((period, from, to))) = (kind, period) else {
        return Err(Error::invalid("cycle.period", "is required"));
    };

    // Who is evaluated, and by whom, from the directory.
    let t = api.peers.team(&team).await.map_err(|e| match e {
        Error::NotFound(_) => Error::invalid("cycle.team", format!("{team} is not a team of the staff directory")),
        e => e,
    })?;
    let leads: Vec<String> = t.members.iter().filter(|m| m.lead).map(|m| m.staff_id.clone()).collect();
    let ids: Vec<String> = if named.is_empty() {
        t.members.iter().filter(|m| !m.lead).map(|m| m.staff_id.clone()).collect()
    } else {
        named.clone()
    };
    if ids.is_empty() {
        return Err(Error::invalid("cycle.team", format!("{team} has nobody to evaluate (only leads, or no members)")));
    }
    if ids.contains(&p.subject) {
        return Err(Error::PermissionDenied(format!(
            "{} is among the people evaluated: another member of HR opens this cycle",
            p.subject
        )));
    }
    let mut v = Violations::new();
    for k in settings.overrides.keys() {
        if !ids.contains(k) {
            v.add(format!("cycle.bonus_base_overrides[{k}]"), "is not one of the people evaluated");
        }
    }
    let mut conn = api.reads.acquire().await?;
    let mut people = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let field = if named.is_empty() { format!("cycle.team ({id})") } else { format!("cycle.staff_ids[{i}]") };
        if !seen.insert(id.clone()) {
            v.add(field, format!("{id} is listed twice"));
            continue;
        }
        let Some(person) = api.peers.person(id).await? else {
            v.add(field, format!("{id} is not in the staff directory"));
            continue;
        };
        if person.status != PersonStatus::Active as i32 {
            v.add(field, format!("{}（{id}）is not an active member of staff", person.display_name));
            continue;
        }
        let scheme = match &scheme_code {
            Some(code) => store::scheme(&mut conn, code, 0).await?,
            None => schemes::for_position(&mut conn, &person.position).await?,
        };
        let Some(scheme) = scheme else {
            match &scheme_code {
                Some(code) => v.add("cycle.scheme_code", format!("scheme {code} is not defined")),
                None => v.add(
                    field,
                    format!("{}（{id}）: no scheme evaluates the position {:?}", person.display_name, person.position),
                ),
            }
            continue;
        };
        let mut reviewers: Vec<String> = Vec::new();
        for r in std::iter::once(person.manager.clone()).chain(leads.iter().cloned()) {
            if !r.is_empty() && r != person.staff_id && !reviewers.contains(&r) {
                reviewers.push(r);
            }
        }
        if reviewers.is_empty() {
            v.add(field, format!("{}（{id}）has no manager and the team no lead to review them", person.display_name));
            continue;
        }
        people.push((person, scheme, reviewers));
    }
    v.finish()?;
    let ids_found: Vec<String> = people.iter().map(|(x, _, _)| x.staff_id.clone()).collect();
    let taken = store::overlapping(&mut conn, &ids_found, &parse::format_date(from), &parse::format_date(to)).await?;
    let taken: Vec<String> = taken
        .into_iter()
        .filter(|(_, p_, t_)| !(p_ == &period && t_ == &team))
        .map(|(who, p_, t_)| format!("{who}（{t_} {p_}）"))
        .collect();
    if !taken.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "already evaluated for days of {period} in another cycle: {}",
            taken.join("、")
        )));
    }
    drop(conn);

    let now = api.now();
    let row = CycleRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: i64::from(kind as i32),
        period,
        from_date: parse::format_date(from),
        to_date: parse::format_date(to),
        team: team.clone(),
        scheme_code: scheme_code.unwrap_or_default(),
        settings: store::to_json(&settings)?,
        state: i64::from(CycleState::Open as i32),
        opened_by: p.subject.clone(),
        opened_at: now,
        closed_at: None,
        calibration_due: None,
        finalized_at: None,
        version: 0,
    };
    let mut tx = api.pool.begin().await?;
    if !store::insert_cycle(&mut tx, &row).await? {
        let e = store::cycle_of(&mut tx, &row.period, &row.team)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("cycle {} {} is taken but missing", row.period, team)))?;
        let mine = store::evaluations(&mut tx, &e.id).await?;
        let same_people: BTreeSet<&str> = mine.iter().map(|x| x.staff_id.as_str()).collect();
        let asked: BTreeSet<&str> = people.iter().map(|(x, _, _)| x.staff_id.as_str()).collect();
        if (e.kind, &e.settings, &e.scheme_code, same_people) == (row.kind, &row.settings, &row.scheme_code, asked) {
            return cycle_pb(&e, i32::try_from(mine.len()).unwrap_or(0));
        }
        return Err(Error::AlreadyExists(format!("team {} already has a cycle for {} ({})", e.team, e.period, e.id)));
    }
    for (person, scheme, reviewers) in &people {
        let e = EvaluationRow {
            id: uuid::Uuid::now_v7().to_string(),
            cycle_id: row.id.clone(),
            staff_id: person.staff_id.clone(),
            display_name: person.display_name.clone(),
            position: person.position.clone(),
            team: team.clone(),
            reviewers: store::to_json(reviewers)?,
            scheme_code: scheme.code.clone(),
            scheme_version: scheme.version,
            state: i64::from(S::Pending as i32),
            figures: store::to_json(&Snapshot::default())?,
            self_scores: "{}".into(),
            manual_scores: "{}".into(),
            self_comment: String::new(),
            review_comment: String::new(),
            reviewed_by: String::new(),
            total_centi: 0,
            computed_grade: String::new(),
            grade: String::new(),
            calibration_reason: String::new(),
            bonus_base_fen: settings.base_of(&person.staff_id),
            coefficient: 0,
            bonus_fen: 0,
            appeal_reason: String::new(),
            appeal_decision: String::new(),
            appeal_upheld: 0,
            promotion_recommended: 0,
            promotion_detail: String::new(),
            honours: "[]".into(),
            due_at: None,
            corrected: 0,
            version: 0,
        };
        store::insert_evaluation(&mut tx, &e).await?;
        let detail = format!(
            "开启 {} 考核周期：方案 {} 第 {} 版，评价人 {}，奖金基数 {}",
            row.period,
            scheme.code,
            scheme.version,
            reviewers.join("、"),
            domain::yuan(e.bonus_base_fen)
        );
        store::add_history(&mut tx, &e.id, now, &p.subject, "open", &detail).await?;
    }
    tx.commit().await?;
    cycle_pb(&row, i32::try_from(people.len()).unwrap_or(0))
}

pub(super) async fn get(api: &PerformanceApi, p: &Principal, r: pb::GetCycleRequest) -> Result<pb::Cycle, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = cycle_named(&mut conn, &r.id).await?;
    let n = store::count_evaluations(&mut conn, &c.id).await?;
    super::cycle_for(p, &c, i32::try_from(n).unwrap_or(0))
}

pub(super) async fn list(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::ListCyclesRequest,
) -> Result<pb::ListCyclesResponse, Error> {
    let mut v = Violations::new();
    let team = v.check(parse::line("team", &r.team, 64)).unwrap_or_default().to_ascii_lowercase();
    let period = v.check(parse::line("period", &r.period, 16)).unwrap_or_default().to_ascii_uppercase();
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::cycles(
        &mut conn,
        (!team.is_empty()).then_some(team.as_str()),
        (!period.is_empty()).then_some(period.as_str()),
    )
    .await?;
    let mut cycles = Vec::with_capacity(rows.len());
    for c in &rows {
        let n = store::count_evaluations(&mut conn, &c.id).await?;
        cycles.push(super::cycle_for(p, c, i32::try_from(n).unwrap_or(0))?);
    }
    Ok(pb::ListCyclesResponse { cycles })
}

/// The cycle as it now is (after a concurrent writer, or a retry), as HR
/// sees it (those who change cycles read pay).
async fn current(api: &PerformanceApi, id: &str) -> Result<pb::Cycle, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = cycle_named(&mut conn, id).await?;
    let n = store::count_evaluations(&mut conn, &c.id).await?;
    cycle_pb(&c, i32::try_from(n).unwrap_or(0))
}

pub(super) async fn close(api: &PerformanceApi, p: &Principal, r: pb::CloseCycleRequest) -> Result<pb::Cycle, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = cycle_named(&mut conn, &r.id).await?;
    if c.state != i64::from(CycleState::Open as i32) {
        drop(conn);
        return current(api, &c.id).await;
    }
    let today = api.today();
    if parse::format_date(today) <= c.to_date {
        return Err(Error::FailedPrecondition(format!(
            "the period {} runs until {}: it can be closed from the day after",
            c.period, c.to_date
        )));
    }
    let evals = store::evaluations(&mut conn, &c.id).await?;
    // Every figure is read before anything is written: a source that does
    // not answer fails the close with nothing half-written.
    let now = api.now();
    let mut pulled = Vec::with_capacity(evals.len());
    for e in &evals {
        let body = scheme_body(&mut conn, &e.scheme_code, e.scheme_version).await?;
        let mut needed: Vec<&str> = body.indicators.iter().filter_map(|i| domain::service_of(i.source())).collect();
        needed.dedup();
        let snap = api.peers.figures(&e.staff_id, &c.from_date, &c.to_date, &needed, now).await?;
        pulled.push((body, snap));
    }
    drop(conn);
    let s = settings(&c)?;
    let mut tx = api.pool.begin().await?;
    let mut cycle = c.clone();
    cycle.state = i64::from(CycleState::Review as i32);
    cycle.closed_at = Some(now);
    cycle.calibration_due = Some(api.due_in(s.step_days[0] + s.step_days[1] + s.step_days[2]));
    if !store::update_cycle(&mut tx, &cycle).await? {
        drop(tx);
        return current(api, &c.id).await;
    }
    let self_due = api.due_in(s.step_days[0]);
    for (e, (body, snap)) in evals.iter().zip(pulled) {
        let mut row = e.clone();
        row.figures = store::to_json(&snap)?;
        row.state = i64::from(S::SelfAssessment as i32);
        row.due_at = Some(self_due);
        let t = totals(&body, &row)?;
        row.total_centi = (t.total * 100.0).round() as i64;
        if !store::update_evaluation(&mut tx, &row).await? {
            return Err(Error::Aborted("an evaluation changed during the close; retry".into()));
        }
        let figures: Vec<String> = t.indicators.iter().filter(|i| i.scored).map(|i| i.explanation.clone()).collect();
        let detail =
            format!("周期关闭，数据快照：{}；自动指标合计 {:.2} 分（人工指标待评）", figures.join("；"), t.total);
        store::add_history(&mut tx, &row.id, now, &p.subject, "close", &detail).await?;
    }
    tx.commit().await?;
    current(api, &c.id).await
}

/// The people of a cycle whose evaluation is not in `state`, for an error.
fn not_in(evals: &[EvaluationRow], state: S) -> Vec<String> {
    evals
        .iter()
        .filter(|e| eval_state(e) != state)
        .map(|e| format!("{}（{}，{}）", e.display_name, e.staff_id, eval_state(e).label_zh()))
        .collect()
}

pub(super) async fn close_calibration(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::CloseCalibrationRequest,
) -> Result<pb::Cycle, Error> {
    let mut tx = api.pool.begin().await?;
    let c = cycle_named(&mut tx, &r.id).await?;
    match cycle_state(&c) {
        CycleState::Review => {}
        CycleState::Results | CycleState::Finalized => {
            drop(tx);
            return current(api, &c.id).await;
        }
        _ => return Err(Error::FailedPrecondition(format!("cycle {} has not been closed yet", c.period))),
    }
    let evals = store::evaluations(&mut tx, &c.id).await?;
    let waiting = not_in(&evals, S::Calibration);
    if !waiting.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "calibration closes once every evaluation is reviewed; not yet: {}",
            waiting.join("、")
        )));
    }
    let s = settings(&c)?;
    let grades: Vec<String> = evals.iter().map(|e| e.grade.clone()).collect();
    let breaches = domain::distribution_violations(&s.grades, &grades);
    if !breaches.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "the forced distribution is not met: {}; calibrate grades and close again",
            breaches.join("；")
        )));
    }
    let now = api.now();
    let mut cycle = c.clone();
    cycle.state = i64::from(CycleState::Results as i32);
    if !store::update_cycle(&mut tx, &cycle).await? {
        return Err(Error::Aborted("the cycle changed meanwhile; retry".into()));
    }
    let due = api.due_in(s.step_days[3]);
    for e in &evals {
        let mut row = e.clone();
        let band = domain::band(&s.grades, &row.grade)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("grade {} of {} is not a band", row.grade, row.id)))?;
        row.coefficient = i64::from(band.coefficient);
        row.bonus_fen = domain::bonus(row.bonus_base_fen, band.coefficient);
        row.state = i64::from(S::Acknowledgement as i32);
        row.due_at = Some(due);
        if !store::update_evaluation(&mut tx, &row).await? {
            return Err(Error::Aborted("an evaluation changed meanwhile; retry".into()));
        }
        let detail = format!(
            "校准结束：总分 {:.2}，等级 {}，绩效系数 {}%，奖金 {} × {}% = {}（{}）",
            row.total_centi as f64 / 100.0,
            row.grade,
            band.coefficient,
            domain::yuan(row.bonus_base_fen),
            band.coefficient,
            domain::yuan(row.bonus_fen),
            domain::ROUNDING
        );
        store::add_history(&mut tx, &row.id, now, &p.subject, "close_calibration", &detail).await?;
    }
    tx.commit().await?;
    current(api, &c.id).await
}

/// A promotion recommendation from a person's career progress and grade.
fn promotion(bands: &[Band], grade: &str, cp: &kefu_proto::training::v1::CareerProgress) -> (bool, String) {
    let Some(next) = &cp.next else {
        return (
            false,
            if cp.level.is_none() {
                "未设置职级，无法判断晋升".into()
            } else {
                "已在职业通道最高职级".into()
            },
        );
    };
    let mut missing: Vec<String> = cp
        .requirements
        .iter()
        .filter(|r| r.kind != RequirementKind::PerformanceGrade as i32 && !r.met)
        .map(|r| r.detail.clone())
        .collect();
    if !domain::at_least(bands, grade, &next.min_performance_grade) {
        missing.push(format!("本期绩效等级 {grade}，要求不低于 {}", next.min_performance_grade));
    }
    if missing.is_empty() {
        (true, format!("建议晋升为{}（{}）：培训、证书、任职年限均已满足，本期绩效等级 {grade}", next.name, next.code))
    } else {
        (false, format!("暂不建议晋升为{}（{}）：{}", next.name, next.code, missing.join("；")))
    }
}

pub(super) async fn finalize(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::FinalizeCycleRequest,
) -> Result<pb::Cycle, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = cycle_named(&mut conn, &r.id).await?;
    match cycle_state(&c) {
        CycleState::Results => {}
        CycleState::Finalized => {
            drop(conn);
            return current(api, &c.id).await;
        }
        _ => {
            return Err(Error::FailedPrecondition(format!(
                "cycle {} is finalised after calibration has closed",
                c.period
            )));
        }
    }
    let now = api.now();
    let evals = store::evaluations(&mut conn, &c.id).await?;
    let blocking: Vec<String> = evals
        .iter()
        .filter(|e| match eval_state(e) {
            S::Final => false,
            S::Acknowledgement => e.due_at.is_none_or(|d| d >= now),
            _ => true,
        })
        .map(|e| format!("{}（{}，{}）", e.display_name, e.staff_id, eval_state(e).label_zh()))
        .collect();
    if !blocking.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "the cycle is finalised once every evaluation is final (an acknowledgement past its deadline counts as given); not yet: {}",
            blocking.join("、")
        )));
    }
    let s = settings(&c)?;
    // Career standing first: if training does not answer, nothing is written.
    let mut careers = Vec::with_capacity(evals.len());
    for e in &evals {
        careers.push(api.peers.career(&e.staff_id).await?);
    }
    let mut quality = Vec::with_capacity(evals.len());
    for e in &evals {
        let body = scheme_body(&mut conn, &e.scheme_code, e.scheme_version).await?;
        let t = totals(&body, e)?;
        let q = t
            .groups
            .iter()
            .find(|(g, _, _)| *g == kefu_proto::performance::v1::IndicatorGroup::ServiceQuality)
            .map_or(0.0, |g| g.2);
        quality.push(q);
    }
    drop(conn);
    let standings: Vec<domain::Standing<'_>> = evals
        .iter()
        .zip(&quality)
        .map(|(e, q)| domain::Standing {
            staff_id: &e.staff_id,
            name: &e.display_name,
            total: e.total_centi as f64 / 100.0,
            grade: &e.grade,
            quality: *q,
        })
        .collect();
    let awarded = domain::honours(&s.honours, &s.grades, &standings);
    let mut tx = api.pool.begin().await?;
    let mut cycle = c.clone();
    cycle.state = i64::from(CycleState::Finalized as i32);
    cycle.finalized_at = Some(now);
    if !store::update_cycle(&mut tx, &cycle).await? {
        drop(tx);
        return current(api, &c.id).await;
    }
    for (e, cp) in evals.iter().zip(&careers) {
        let mut row = e.clone();
        if eval_state(e) == S::Acknowledgement {
            row.state = i64::from(S::Final as i32);
            store::add_history(&mut tx, &row.id, now, &p.subject, "acknowledge", "确认期限已过，未申诉，视为确认")
                .await?;
        }
        let (recommended, detail) = promotion(&s.grades, &row.grade, cp);
        row.promotion_recommended = i64::from(recommended);
        row.promotion_detail = detail.clone();
        let mine: Vec<(String, String)> = awarded
            .iter()
            .filter(|(_, who, _)| *who == row.staff_id)
            .map(|(ri, _, reason)| (s.honours[*ri].name.clone(), reason.clone()))
            .collect();
        row.honours = store::to_json(&mine)?;
        if !store::update_evaluation(&mut tx, &row).await? {
            return Err(Error::Aborted("an evaluation changed meanwhile; retry".into()));
        }
        let mut text = format!("周期归档：{detail}");
        for (name, reason) in &mine {
            text.push_str(&format!("；获得荣誉「{name}」：{reason}"));
        }
        store::add_history(&mut tx, &row.id, now, &p.subject, "finalize", &text).await?;
    }
    tx.commit().await?;
    current(api, &c.id).await
}
