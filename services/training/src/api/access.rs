//! Who may call each RPC. The auth layer enforces this table before any
//! handler runs; finer rules (agents see and change only their own
//! records, a session's trainer marks its attendance) are in the handlers.
use kefu_kit::{access::Access, auth::Role};

/// Everyone at the firm who reads the catalogue and the timetable.
const STAFF: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor, Role::Service];
/// HR keeps the catalogue, the plans and the certificates.
const HR: &[Role] = &[Role::Hr, Role::Admin];
/// Supervisors manage their teams' training; HR everyone's.
const MANAGERS: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin];
/// Staff take part (agents for themselves, or as a session's trainer).
const PARTICIPANTS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin];
/// Exams are sat by agents: those who keep the bank do not sit them.
const TAKERS: &[Role] = &[Role::Agent];
/// Records of people: their own for agents; auditors read all.
const RECORD_READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor];
/// A person's standing on their career path: their own for agents; the
/// performance service reads it for promotion recommendations.
const CAREER_READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor, Role::Service];
/// Plans, the question bank with its answers, item analysis: managers and auditors.
const PLAN_READERS: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor];
/// Per-person figures feed performance reviews.
const STAFF_FIGURES: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Service];

pub static ACCESS: Access = Access {
    service: "kefu.training.v1.TrainingService",
    rules: &[
        ("CreateCourse", HR),
        ("GetCourse", STAFF),
        ("ListCourses", STAFF),
        ("ScheduleSession", MANAGERS),
        ("GetSession", STAFF),
        ("ListSessions", STAFF),
        ("CancelSession", MANAGERS),
        ("CompleteSession", PARTICIPANTS),
        ("Enrol", PARTICIPANTS),
        ("ApproveEnrolment", MANAGERS),
        ("WithdrawEnrolment", PARTICIPANTS),
        ("CheckIn", PARTICIPANTS),
        ("ListEnrolments", RECORD_READERS),
        ("CreatePlan", HR),
        ("ApprovePlan", MANAGERS),
        ("GetPlan", PLAN_READERS),
        ("ListPlans", PLAN_READERS),
        ("RecordCertificate", HR),
        ("ListCertificates", RECORD_READERS),
        ("ListDueReminders", RECORD_READERS),
        ("GetStaffTrainingStats", STAFF_FIGURES),
        ("AddQuestion", MANAGERS),
        ("ListQuestions", PLAN_READERS),
        ("CreateExam", MANAGERS),
        ("ListExams", RECORD_READERS),
        ("StartAttempt", TAKERS),
        ("GetAttempt", RECORD_READERS),
        ("ListAttempts", RECORD_READERS),
        ("SubmitAttempt", TAKERS),
        ("MarkAnswer", PARTICIPANTS),
        ("GetItemAnalysis", PLAN_READERS),
        ("SubmitReaction", PARTICIPANTS),
        ("RecordObservation", MANAGERS),
        ("GetCourseReport", PLAN_READERS),
        ("DefineLevel", HR),
        ("ListLevels", RECORD_READERS),
        ("SetStaffLevel", HR),
        ("GetCareerProgress", CAREER_READERS),
        ("ListEligible", PLAN_READERS),
    ],
};
