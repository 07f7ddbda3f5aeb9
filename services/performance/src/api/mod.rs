//! The `kefu.performance.v1.PerformanceService` gRPC API: thin handlers,
//! one module per resource, that parse requests into domain values, run the
//! rule, read and write through `store` in one transaction, and convert back.
mod access;
mod cycles;
mod evaluations;
mod peers;
mod reports;
mod schemes;

use std::{collections::BTreeMap, sync::Arc};

pub use access::ACCESS;
use chrono::{NaiveDate, TimeZone};
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    db, parse,
    rpc::{Res, answer, call},
};
use kefu_proto::performance::v1::{self as pb, EvaluationState, performance_service_server::PerformanceService};
pub use peers::Peers;
use sqlx::AnyPool;
use tonic::Request;

use crate::{
    domain::{self, SchemeBody, Settings, Snapshot},
    store::{self, CycleRow, EvaluationRow},
};

/// Who sees every evaluation.
const SEES_ALL: &[Role] = &[Role::Hr, Role::Admin, Role::Auditor, Role::Service];

pub struct PerformanceApi {
    pub(crate) pool: AnyPool,
    pub(crate) reads: AnyPool,
    zone: chrono_tz::Tz,
    calendar: kefu_sla::Calendar,
    clock: Arc<dyn kefu_sla::Clock>,
    peers: Peers,
}

impl PerformanceApi {
    pub fn new(pool: AnyPool, clock: Arc<dyn kefu_sla::Clock>, peers: Peers) -> anyhow::Result<Self> {
        let calendar = kefu_sla::Calendar::china_default()?;
        Ok(Self { reads: db::readers(&pool), pool, zone: calendar.time_zone(), calendar, clock, peers })
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Today in the firm's zone.
    pub(crate) fn today(&self) -> NaiveDate {
        self.zone
            .timestamp_millis_opt(self.now())
            .single()
            .map_or_else(|| chrono::Utc::now().date_naive(), |t| t.date_naive())
    }

    /// Close of business on the `days`-th working day from today.
    pub(crate) fn due_in(&self, days: i32) -> i64 {
        let d = domain::nth_working_day(&self.calendar, self.today(), days);
        self.calendar.close_of_business(d).map_or_else(|| self.now(), |t| t.timestamp_millis())
    }
}

/// Whether the caller may see this evaluation: their own, one they review,
/// or any for HR, admins, auditors and services.
pub(crate) fn sees(p: &Principal, e: &EvaluationRow) -> bool {
    p.has_any(SEES_ALL) || e.staff_id == p.subject || reviewers(e).contains(&p.subject)
}

pub(crate) fn reviewers(e: &EvaluationRow) -> Vec<String> {
    store::json("evaluations", &e.id, &e.reviewers).unwrap_or_default()
}

pub(crate) fn settings(c: &CycleRow) -> Result<Settings, Error> {
    store::json("cycles", &c.id, &c.settings)
}

pub(crate) async fn scheme_body(conn: &mut sqlx::AnyConnection, code: &str, version: i64) -> Result<SchemeBody, Error> {
    let s = store::scheme(conn, code, version)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("scheme {code} v{version} is missing")))?;
    store::json("schemes", &s.code, &s.body)
}

pub(crate) fn cycle_state(c: &CycleRow) -> pb::CycleState {
    pb::CycleState::try_from(i32::try_from(c.state).unwrap_or(0)).unwrap_or(pb::CycleState::Unspecified)
}

pub(crate) fn eval_state(e: &EvaluationRow) -> EvaluationState {
    EvaluationState::try_from(i32::try_from(e.state).unwrap_or(0)).unwrap_or(EvaluationState::Unspecified)
}

/// Who reads pay (bonus bases): HR, admins and auditors.
const READS_PAY: &[Role] = &[Role::Hr, Role::Admin, Role::Auditor];

/// A cycle as `p` may see it: bonus bases (people's pay) only for those
/// who read pay.
pub(crate) fn cycle_for(p: &Principal, c: &CycleRow, evaluations: i32) -> Result<pb::Cycle, Error> {
    let mut out = cycle_pb(c, evaluations)?;
    if !p.has_any(READS_PAY) {
        out.bonus_base_fen = 0;
        out.bonus_base_overrides.clear();
    }
    Ok(out)
}

pub(crate) fn cycle_pb(c: &CycleRow, evaluations: i32) -> Result<pb::Cycle, Error> {
    let s = settings(c)?;
    Ok(pb::Cycle {
        id: c.id.clone(),
        kind: i32::try_from(c.kind).unwrap_or(0),
        period: c.period.clone(),
        from_date: c.from_date.clone(),
        to_date: c.to_date.clone(),
        team: c.team.clone(),
        staff_ids: Vec::new(),
        scheme_code: c.scheme_code.clone(),
        grades: s
            .grades
            .iter()
            .map(|b| pb::GradeBand {
                grade: b.grade.clone(),
                min_score: b.min_score,
                coefficient: b.coefficient,
                max_share: b.max_share,
                min_share: b.min_share,
            })
            .collect(),
        bonus_base_fen: s.bonus_base_fen,
        bonus_base_overrides: s.overrides.clone().into_iter().collect(),
        honours: s
            .honours
            .iter()
            .map(|h| pb::HonourRule {
                name: h.name.clone(),
                top: h.top,
                min_grade: h.min_grade.clone(),
                min_score: h.min_score,
            })
            .collect(),
        step_days: Some(pb::StepDays {
            self_assessment: s.step_days[0],
            review: s.step_days[1],
            calibration: s.step_days[2],
            acknowledgement: s.step_days[3],
        }),
        state: c.state as i32,
        evaluations,
        close_time: parse::ts_opt(c.closed_at),
        calibration_due_time: parse::ts_opt(c.calibration_due),
        opened_by: c.opened_by.clone(),
        open_time: parse::ts(c.opened_at),
        rounding: domain::ROUNDING.to_owned(),
    })
}

/// The scores of an evaluation as they stand (snapshot, manual scores).
pub(crate) fn totals(body: &SchemeBody, e: &EvaluationRow) -> Result<domain::Totals, Error> {
    let snap: Snapshot = store::json("evaluations", &e.id, &e.figures)?;
    let manual: BTreeMap<String, f64> = store::json("evaluations", &e.id, &e.manual_scores)?;
    let self_scores: BTreeMap<String, f64> = store::json("evaluations", &e.id, &e.self_scores)?;
    Ok(domain::score(body, &domain::Inputs { figures: &snap.figures, manual: &manual, self_scores: &self_scores }))
}

pub(crate) async fn evaluation_pb(
    api: &PerformanceApi,
    conn: &mut sqlx::AnyConnection,
    e: &EvaluationRow,
    period: &str,
) -> Result<pb::Evaluation, Error> {
    let body = scheme_body(conn, &e.scheme_code, e.scheme_version).await?;
    let t = totals(&body, e)?;
    let history = store::history(conn, &e.id).await?;
    let honours: Vec<(String, String)> = store::json("evaluations", &e.id, &e.honours)?;
    let state = eval_state(e);
    let open_step = !matches!(state, EvaluationState::Final | EvaluationState::Pending);
    Ok(pb::Evaluation {
        id: e.id.clone(),
        cycle_id: e.cycle_id.clone(),
        period: period.to_owned(),
        staff_id: e.staff_id.clone(),
        display_name: e.display_name.clone(),
        position: e.position.clone(),
        team: e.team.clone(),
        reviewers: reviewers(e),
        scheme_code: e.scheme_code.clone(),
        scheme_version: i32::try_from(e.scheme_version).unwrap_or(0),
        state: state as i32,
        indicators: body
            .indicators
            .iter()
            .zip(&t.indicators)
            .map(|(i, s)| pb::IndicatorResult {
                code: i.code.clone(),
                name: i.name.clone(),
                group: i.group,
                source: i.source,
                weight: i.weight,
                value: s.value,
                score: s.score,
                self_score: s.self_score,
                scored: s.scored,
                explanation: s.explanation.clone(),
            })
            .collect(),
        groups: t.groups.iter().map(|(g, w, s)| pb::GroupResult { group: *g as i32, weight: *w, score: *s }).collect(),
        total_score: e.total_centi as f64 / 100.0,
        computed_grade: e.computed_grade.clone(),
        grade: e.grade.clone(),
        bonus_base_fen: e.bonus_base_fen,
        coefficient: i32::try_from(e.coefficient).unwrap_or(0),
        bonus_fen: e.bonus_fen,
        self_comment: e.self_comment.clone(),
        review_comment: e.review_comment.clone(),
        reviewed_by: e.reviewed_by.clone(),
        calibration_reason: e.calibration_reason.clone(),
        appeal_reason: e.appeal_reason.clone(),
        appeal_decision: e.appeal_decision.clone(),
        appeal_upheld: e.appeal_upheld != 0,
        promotion_recommended: e.promotion_recommended != 0,
        promotion_detail: e.promotion_detail.clone(),
        honours: honours.into_iter().map(|(name, reason)| pb::Honour { name, reason }).collect(),
        due_time: if open_step { parse::ts_opt(e.due_at) } else { None },
        overdue: open_step && e.due_at.is_some_and(|d| d < api.now()),
        history: history
            .into_iter()
            .map(|h| pb::HistoryEntry { action: h.action, actor: h.actor, time: parse::ts(h.at), detail: h.detail })
            .collect(),
        corrected: e.corrected != 0,
    })
}

/// The evaluation a request names, if the caller may see it (one they may
/// not see is NOT_FOUND: its existence is not told).
pub(crate) async fn visible(conn: &mut sqlx::AnyConnection, p: &Principal, raw: &str) -> Result<EvaluationRow, Error> {
    let id = parse::id("evaluation_id", raw)?;
    let e = store::evaluation(conn, &id).await?.filter(|e| sees(p, e));
    e.ok_or_else(|| Error::NotFound(format!("evaluation {id}")))
}

pub(crate) async fn cycle_named(conn: &mut sqlx::AnyConnection, raw: &str) -> Result<CycleRow, Error> {
    let id = parse::id("id", raw)?;
    store::cycle(conn, &id).await?.ok_or_else(|| Error::NotFound(format!("cycle {id}")))
}

#[tonic::async_trait]
impl PerformanceService for PerformanceApi {
    async fn define_scheme(&self, req: Request<pb::DefineSchemeRequest>) -> Res<pb::Scheme> {
        let c = call(req)?;
        answer(schemes::define(self, &c.p, c.r).await)
    }

    async fn get_scheme(&self, req: Request<pb::GetSchemeRequest>) -> Res<pb::Scheme> {
        let c = call(req)?;
        answer(schemes::get(self, c.r).await)
    }

    async fn list_schemes(&self, req: Request<pb::ListSchemesRequest>) -> Res<pb::ListSchemesResponse> {
        let _ = call(req)?;
        answer(schemes::list(self).await)
    }

    async fn open_cycle(&self, req: Request<pb::OpenCycleRequest>) -> Res<pb::Cycle> {
        let c = call(req)?;
        answer(cycles::open(self, &c.p, c.r).await)
    }

    async fn get_cycle(&self, req: Request<pb::GetCycleRequest>) -> Res<pb::Cycle> {
        let c = call(req)?;
        answer(cycles::get(self, &c.p, c.r).await)
    }

    async fn list_cycles(&self, req: Request<pb::ListCyclesRequest>) -> Res<pb::ListCyclesResponse> {
        let c = call(req)?;
        answer(cycles::list(self, &c.p, c.r).await)
    }

    async fn close_cycle(&self, req: Request<pb::CloseCycleRequest>) -> Res<pb::Cycle> {
        let c = call(req)?;
        answer(cycles::close(self, &c.p, c.r).await)
    }

    async fn close_calibration(&self, req: Request<pb::CloseCalibrationRequest>) -> Res<pb::Cycle> {
        let c = call(req)?;
        answer(cycles::close_calibration(self, &c.p, c.r).await)
    }

    async fn finalize_cycle(&self, req: Request<pb::FinalizeCycleRequest>) -> Res<pb::Cycle> {
        let c = call(req)?;
        answer(cycles::finalize(self, &c.p, c.r).await)
    }

    async fn get_evaluation(&self, req: Request<pb::GetEvaluationRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::get(self, &c.p, c.r).await)
    }

    async fn list_evaluations(&self, req: Request<pb::ListEvaluationsRequest>) -> Res<pb::ListEvaluationsResponse> {
        let c = call(req)?;
        answer(evaluations::list(self, &c.p, c.r).await)
    }

    async fn submit_self_assessment(&self, req: Request<pb::SubmitSelfAssessmentRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::self_assessment(self, &c.p, c.r).await)
    }

    async fn submit_review(&self, req: Request<pb::SubmitReviewRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::review(self, &c.p, c.r).await)
    }

    async fn calibrate(&self, req: Request<pb::CalibrateRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::calibrate(self, &c.p, c.r).await)
    }

    async fn acknowledge(&self, req: Request<pb::AcknowledgeRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::acknowledge(self, &c.p, c.r).await)
    }

    async fn appeal(&self, req: Request<pb::AppealRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::appeal(self, &c.p, c.r).await)
    }

    async fn decide_appeal(&self, req: Request<pb::DecideAppealRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::decide_appeal(self, &c.p, c.r).await)
    }

    async fn correct_result(&self, req: Request<pb::CorrectResultRequest>) -> Res<pb::Evaluation> {
        let c = call(req)?;
        answer(evaluations::correct(self, &c.p, c.r).await)
    }

    async fn recompute_evaluation(&self, req: Request<pb::RecomputeEvaluationRequest>) -> Res<pb::Recomputation> {
        let c = call(req)?;
        answer(evaluations::recompute(self, &c.p, c.r).await)
    }

    async fn get_cycle_report(&self, req: Request<pb::GetCycleReportRequest>) -> Res<pb::CycleReport> {
        let c = call(req)?;
        answer(reports::cycle_report(self, &c.p, c.r).await)
    }

    async fn get_trend(&self, req: Request<pb::GetTrendRequest>) -> Res<pb::Trend> {
        let c = call(req)?;
        answer(reports::trend(self, &c.p, c.r).await)
    }

    async fn export_cycle(&self, req: Request<pb::ExportCycleRequest>) -> Res<pb::ExportCycleResponse> {
        let c = call(req)?;
        answer(reports::export(self, c.r).await)
    }
}
