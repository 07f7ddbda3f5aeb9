//! Who may call each RPC. The auth layer enforces this table before any
//! handler runs; finer rules (a person sees their own evaluation, their
//! reviewers their team's) are in the handlers.
use kefu_kit::{access::Access, auth::Role};

/// Everyone at the firm reads schemes and cycles.
const STAFF: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor];
/// HR runs schemes, cycles, calibration, appeals and corrections.
const HR: &[Role] = &[Role::Hr, Role::Admin];
/// The people evaluated and their reviewers act on their own evaluations.
const PEOPLE: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin];
/// Reports and recomputations: reviewers, HR and auditors.
const REPORTS: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor];
/// The export holds everyone's bonus: HR and auditors.
const EXPORT: &[Role] = &[Role::Hr, Role::Admin, Role::Auditor];

pub static ACCESS: Access = Access {
    service: "kefu.performance.v1.PerformanceService",
    rules: &[
        ("DefineScheme", HR),
        ("GetScheme", STAFF),
        ("ListSchemes", STAFF),
        ("OpenCycle", HR),
        ("GetCycle", STAFF),
        ("ListCycles", STAFF),
        ("CloseCycle", HR),
        ("CloseCalibration", HR),
        ("FinalizeCycle", HR),
        ("GetEvaluation", STAFF),
        ("ListEvaluations", STAFF),
        ("SubmitSelfAssessment", PEOPLE),
        ("SubmitReview", PEOPLE),
        ("Calibrate", HR),
        ("Acknowledge", PEOPLE),
        ("Appeal", PEOPLE),
        ("DecideAppeal", HR),
        ("CorrectResult", HR),
        ("RecomputeEvaluation", REPORTS),
        ("GetCycleReport", REPORTS),
        ("GetTrend", STAFF),
        ("ExportCycle", EXPORT),
    ],
};
