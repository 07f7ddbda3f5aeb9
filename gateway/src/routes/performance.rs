//! The performance service's REST routes.
use super::{Body, Route};

pub(super) static ROUTES: &[Route] = &[
    r!(
        "POST",
        "/api/v1/performance/schemes",
        "kefu.performance.v1.PerformanceService/DefineScheme",
        Body::All,
        [],
        None,
        None,
        "Define a KPI scheme for a position (a new version when the code exists)"
    ),
    r!(
        "GET",
        "/api/v1/performance/schemes",
        "kefu.performance.v1.PerformanceService/ListSchemes",
        Body::None,
        [],
        None,
        None,
        "The KPI schemes, current versions"
    ),
    r!(
        "GET",
        "/api/v1/performance/schemes/{code}",
        "kefu.performance.v1.PerformanceService/GetScheme",
        Body::None,
        [("code", "code")],
        None,
        None,
        "A KPI scheme (?version= for an earlier one)"
    ),
    r!(
        "POST",
        "/api/v1/performance/cycles",
        "kefu.performance.v1.PerformanceService/OpenCycle",
        Body::All,
        [],
        None,
        None,
        "Open an evaluation cycle for a team"
    ),
    r!(
        "GET",
        "/api/v1/performance/cycles",
        "kefu.performance.v1.PerformanceService/ListCycles",
        Body::None,
        [],
        None,
        None,
        "Evaluation cycles, newest period first (filter by team, period)"
    ),
    r!(
        "GET",
        "/api/v1/performance/cycles/{id}",
        "kefu.performance.v1.PerformanceService/GetCycle",
        Body::None,
        [("id", "id")],
        None,
        None,
        "An evaluation cycle"
    ),
    r!(
        "POST",
        "/api/v1/performance/cycles/{id}/close",
        "kefu.performance.v1.PerformanceService/CloseCycle",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Close the period: snapshot everyone's figures and start self-assessment"
    ),
    r!(
        "POST",
        "/api/v1/performance/cycles/{id}/close-calibration",
        "kefu.performance.v1.PerformanceService/CloseCalibration",
        Body::None,
        [("id", "id")],
        None,
        None,
        "End HR calibration (the forced distribution is checked) and compute bonuses"
    ),
    r!(
        "POST",
        "/api/v1/performance/cycles/{id}/finalize",
        "kefu.performance.v1.PerformanceService/FinalizeCycle",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Finalise the cycle: promotion recommendations and honours"
    ),
    r!(
        "GET",
        "/api/v1/performance/cycles/{id}/evaluations",
        "kefu.performance.v1.PerformanceService/ListEvaluations",
        Body::None,
        [("id", "cycle_id")],
        None,
        None,
        "A cycle's evaluations the caller may see"
    ),
    r!(
        "GET",
        "/api/v1/performance/cycles/{id}/report",
        "kefu.performance.v1.PerformanceService/GetCycleReport",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A cycle's distribution per team, indicator averages and results"
    ),
    r!(
        "GET",
        "/api/v1/performance/cycles/{id}/export",
        "kefu.performance.v1.PerformanceService/ExportCycle",
        Body::None,
        [("id", "id")],
        None,
        None,
        "The cycle's results as an Excel workbook (base64 in content)"
    ),
    r!(
        "GET",
        "/api/v1/performance/evaluations/{id}",
        "kefu.performance.v1.PerformanceService/GetEvaluation",
        Body::None,
        [("id", "id")],
        None,
        None,
        "An evaluation with its scores, result and history"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/self-assessment",
        "kefu.performance.v1.PerformanceService/SubmitSelfAssessment",
        Body::All,
        [("id", "evaluation_id")],
        None,
        None,
        "The employee's self-assessment"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/review",
        "kefu.performance.v1.PerformanceService/SubmitReview",
        Body::All,
        [("id", "evaluation_id")],
        None,
        None,
        "A reviewer's scores and comments"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/calibrate",
        "kefu.performance.v1.PerformanceService/Calibrate",
        Body::All,
        [("id", "evaluation_id")],
        None,
        None,
        "HR sets the grade during calibration, with a reason"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/acknowledge",
        "kefu.performance.v1.PerformanceService/Acknowledge",
        Body::None,
        [("id", "evaluation_id")],
        None,
        None,
        "The employee accepts the result"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/appeal",
        "kefu.performance.v1.PerformanceService/Appeal",
        Body::All,
        [("id", "evaluation_id")],
        None,
        None,
        "The employee appeals the result (申诉)"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/appeal-decision",
        "kefu.performance.v1.PerformanceService/DecideAppeal",
        Body::All,
        [("id", "evaluation_id")],
        None,
        None,
        "HR decides an appeal"
    ),
    r!(
        "POST",
        "/api/v1/performance/evaluations/{id}/corrections",
        "kefu.performance.v1.PerformanceService/CorrectResult",
        Body::All,
        [("id", "evaluation_id")],
        None,
        None,
        "A correction to a finalised result (a new, recorded entry)"
    ),
    r!(
        "GET",
        "/api/v1/performance/evaluations/{id}/recompute",
        "kefu.performance.v1.PerformanceService/RecomputeEvaluation",
        Body::None,
        [("id", "evaluation_id")],
        None,
        None,
        "The figures again, beside the snapshot: what would change"
    ),
    r!(
        "GET",
        "/api/v1/performance/trend",
        "kefu.performance.v1.PerformanceService/GetTrend",
        Body::None,
        [],
        None,
        None,
        "A person's or a team's results across cycles"
    ),
];
