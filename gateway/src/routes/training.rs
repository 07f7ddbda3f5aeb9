//! The training service's REST routes.
use super::{Body, Route};

pub(super) static ROUTES: &[Route] = &[
    r!(
        "POST",
        "/api/v1/training/courses",
        "kefu.training.v1.TrainingService/CreateCourse",
        Body::All,
        [],
        None,
        None,
        "Add a course to the catalogue"
    ),
    r!(
        "GET",
        "/api/v1/training/courses",
        "kefu.training.v1.TrainingService/ListCourses",
        Body::None,
        [],
        None,
        None,
        "The course catalogue, by code"
    ),
    r!(
        "GET",
        "/api/v1/training/courses/{id}",
        "kefu.training.v1.TrainingService/GetCourse",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A course by id or code"
    ),
    r!(
        "POST",
        "/api/v1/training/sessions",
        "kefu.training.v1.TrainingService/ScheduleSession",
        Body::All,
        [],
        None,
        Some("request_id"),
        "Schedule a session of a course (charged to a plan within its budget)"
    ),
    r!(
        "GET",
        "/api/v1/training/sessions",
        "kefu.training.v1.TrainingService/ListSessions",
        Body::None,
        [],
        None,
        None,
        "Sessions starting in a window, soonest first"
    ),
    r!(
        "GET",
        "/api/v1/training/sessions/{id}",
        "kefu.training.v1.TrainingService/GetSession",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A session with its seats and waitlist"
    ),
    r!(
        "POST",
        "/api/v1/training/sessions/{id}/cancel",
        "kefu.training.v1.TrainingService/CancelSession",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Cancel a session with a reason"
    ),
    r!(
        "POST",
        "/api/v1/training/sessions/{id}/complete",
        "kefu.training.v1.TrainingService/CompleteSession",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Complete a session: attendees credited, the others absent"
    ),
    r!(
        "POST",
        "/api/v1/training/sessions/{id}/enrolments",
        "kefu.training.v1.TrainingService/Enrol",
        Body::All,
        [("id", "session_id")],
        None,
        None,
        "Enrol (oneself, or assign someone)"
    ),
    r!(
        "GET",
        "/api/v1/training/enrolments",
        "kefu.training.v1.TrainingService/ListEnrolments",
        Body::None,
        [],
        None,
        None,
        "A session's or a person's enrolments"
    ),
    r!(
        "POST",
        "/api/v1/training/enrolments/{id}/approve",
        "kefu.training.v1.TrainingService/ApproveEnrolment",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Approve a self-enrolment"
    ),
    r!(
        "POST",
        "/api/v1/training/enrolments/{id}/withdraw",
        "kefu.training.v1.TrainingService/WithdrawEnrolment",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Withdraw (the seat goes to the first on the waitlist)"
    ),
    r!(
        "POST",
        "/api/v1/training/enrolments/{id}/check-in",
        "kefu.training.v1.TrainingService/CheckIn",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Check in to a session (once)"
    ),
    r!(
        "POST",
        "/api/v1/training/plans",
        "kefu.training.v1.TrainingService/CreatePlan",
        Body::All,
        [],
        None,
        None,
        "Draw up a team's annual training plan"
    ),
    r!(
        "GET",
        "/api/v1/training/plans",
        "kefu.training.v1.TrainingService/ListPlans",
        Body::None,
        [],
        None,
        None,
        "Plans of a year with their progress"
    ),
    r!(
        "GET",
        "/api/v1/training/plans/{id}",
        "kefu.training.v1.TrainingService/GetPlan",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A plan with its progress"
    ),
    r!(
        "POST",
        "/api/v1/training/plans/{id}/approve",
        "kefu.training.v1.TrainingService/ApprovePlan",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Approve a plan (not one's own)"
    ),
    r!(
        "POST",
        "/api/v1/training/certificates",
        "kefu.training.v1.TrainingService/RecordCertificate",
        Body::All,
        [],
        None,
        None,
        "Record a staff certificate"
    ),
    r!(
        "GET",
        "/api/v1/training/certificates",
        "kefu.training.v1.TrainingService/ListCertificates",
        Body::None,
        [],
        None,
        None,
        "Staff certificates (agents: their own)"
    ),
    r!(
        "GET",
        "/api/v1/training/due",
        "kefu.training.v1.TrainingService/ListDueReminders",
        Body::None,
        [],
        None,
        None,
        "Certificates expiring or expired, continuing-education hours behind"
    ),
    r!(
        "GET",
        "/api/v1/training/staff-stats",
        "kefu.training.v1.TrainingService/GetStaffTrainingStats",
        Body::None,
        [],
        None,
        None,
        "One person's training in a period (for performance reviews)"
    ),
    r!(
        "POST",
        "/api/v1/training/questions",
        "kefu.training.v1.TrainingService/AddQuestion",
        Body::All,
        [],
        None,
        None,
        "Add a question to the bank"
    ),
    r!(
        "GET",
        "/api/v1/training/questions",
        "kefu.training.v1.TrainingService/ListQuestions",
        Body::None,
        [],
        None,
        None,
        "The question bank with its answers"
    ),
    r!(
        "POST",
        "/api/v1/training/exams",
        "kefu.training.v1.TrainingService/CreateExam",
        Body::All,
        [],
        None,
        None,
        "Create an exam of a course (pools, time limit, attempts, pass mark)"
    ),
    r!(
        "GET",
        "/api/v1/training/exams",
        "kefu.training.v1.TrainingService/ListExams",
        Body::None,
        [],
        None,
        None,
        "Exams of a course, or all"
    ),
    r!(
        "POST",
        "/api/v1/training/exams/{id}/attempts",
        "kefu.training.v1.TrainingService/StartAttempt",
        Body::None,
        [("id", "exam_id")],
        None,
        None,
        "Start an attempt: a paper drawn at random"
    ),
    r!(
        "GET",
        "/api/v1/training/attempts/{id}",
        "kefu.training.v1.TrainingService/GetAttempt",
        Body::None,
        [("id", "id")],
        None,
        None,
        "An attempt (answers once submitted)"
    ),
    r!(
        "POST",
        "/api/v1/training/attempts/{id}/submit",
        "kefu.training.v1.TrainingService/SubmitAttempt",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Submit the answers, once, before the deadline"
    ),
    r!(
        "POST",
        "/api/v1/training/attempts/{id}/marks",
        "kefu.training.v1.TrainingService/MarkAnswer",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Mark a short answer"
    ),
    r!(
        "GET",
        "/api/v1/training/exams/{id}/item-analysis",
        "kefu.training.v1.TrainingService/GetItemAnalysis",
        Body::None,
        [("id", "exam_id")],
        None,
        None,
        "Each question's difficulty and discrimination"
    ),
    r!(
        "POST",
        "/api/v1/training/reactions",
        "kefu.training.v1.TrainingService/SubmitReaction",
        Body::All,
        [],
        None,
        None,
        "Give one's reaction to a completed session"
    ),
    r!(
        "POST",
        "/api/v1/training/observations",
        "kefu.training.v1.TrainingService/RecordObservation",
        Body::All,
        [],
        None,
        None,
        "Record a supervisor's observation 30–90 days after a completion"
    ),
    r!(
        "GET",
        "/api/v1/training/courses/{id}/report",
        "kefu.training.v1.TrainingService/GetCourseReport",
        Body::None,
        [("id", "course_id")],
        None,
        None,
        "A course's effect on the four Kirkpatrick levels"
    ),
    r!(
        "POST",
        "/api/v1/training/levels",
        "kefu.training.v1.TrainingService/DefineLevel",
        Body::All,
        [],
        None,
        None,
        "Define a level of a career path and what promotion to it asks"
    ),
    r!(
        "GET",
        "/api/v1/training/levels",
        "kefu.training.v1.TrainingService/ListLevels",
        Body::None,
        [],
        None,
        None,
        "A career path's levels in order"
    ),
    r!(
        "PUT",
        "/api/v1/training/staff/{staff}/level",
        "kefu.training.v1.TrainingService/SetStaffLevel",
        Body::All,
        [("staff", "staff_id")],
        None,
        None,
        "Set a person's level from a date"
    ),
    r!(
        "GET",
        "/api/v1/training/career",
        "kefu.training.v1.TrainingService/GetCareerProgress",
        Body::None,
        [],
        None,
        None,
        "Where a person stands on their career path (computed)"
    ),
    r!(
        "GET",
        "/api/v1/training/eligible",
        "kefu.training.v1.TrainingService/ListEligible",
        Body::None,
        [],
        None,
        None,
        "Everyone eligible for promotion now"
    ),
    r!(
        "GET",
        "/api/v1/training/exams/{id}/attempts",
        "kefu.training.v1.TrainingService/ListAttempts",
        Body::None,
        [("id", "exam_id")],
        None,
        None,
        "An exam's attempts (one's own, or everyone's for markers)"
    ),
];
