//! The `kefu.training.v1.TrainingService` gRPC API: thin handlers, one
//! module per resource, that parse requests into domain values, run the
//! rule, read and write through `store` in one transaction, and convert back.
mod access;
mod careers;
mod certificates;
mod courses;
mod effect;
mod enrolments;
mod exams;
mod plans;
mod sessions;

use std::sync::Arc;

pub use access::ACCESS;
use chrono::{NaiveDate, TimeZone};
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    db,
    rpc::{Res, answer, call},
};
use kefu_proto::training::v1::{self as pb, training_service_server::TrainingService};
use sqlx::AnyPool;
use tonic::Request;

/// People who manage training: supervisors (their teams), HR (everyone), admins.
const MANAGES: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin];
/// Who reads everyone's training records.
const READS_ALL: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor, Role::Service];

/// The services training reads trainees' figures from, and its own token.
pub struct Peers {
    pub tickets: tonic::transport::Channel,
    pub complaints: tonic::transport::Channel,
    /// The staff directory: trainers, people enrolled or certified by others.
    pub directory: kefu_kit::directory::Directory,
    pub token: kefu_kit::module::ServiceTokens,
}

pub struct TrainingApi {
    pub(crate) pool: AnyPool,
    pub(crate) reads: AnyPool,
    /// The firm's time zone (dates, quarters and years count there).
    zone: chrono_tz::Tz,
    clock: Arc<dyn kefu_sla::Clock>,
    pub(crate) peers: Peers,
}

impl TrainingApi {
    pub fn new(pool: AnyPool, clock: Arc<dyn kefu_sla::Clock>, peers: Peers) -> Self {
        Self { reads: db::readers(&pool), pool, zone: chrono_tz::Asia::Shanghai, clock, peers }
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The date of an instant in the firm's zone.
    pub(crate) fn date_of(&self, ms: i64) -> NaiveDate {
        self.zone.timestamp_millis_opt(ms).single().map_or_else(|| chrono::Utc::now().date_naive(), |t| t.date_naive())
    }

    pub(crate) fn today(&self) -> NaiveDate {
        self.date_of(self.now())
    }

    /// Midnight starting `d` in the firm's zone.
    pub(crate) fn start_of(&self, d: NaiveDate) -> i64 {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.zone.from_local_datetime(&midnight).earliest().map_or(0, |t| t.timestamp_millis())
    }
}

/// The staff member a request is about: the caller when empty; another
/// person only for those who read everyone's records.
fn staff_for(p: &Principal, field: &str, raw: &str, others: &[Role]) -> Result<String, Error> {
    let s = kefu_kit::parse::line(field, raw, 64)?;
    if s.is_empty() || s == p.subject {
        return Ok(p.subject.clone());
    }
    if !p.has_any(others) {
        return Err(Error::PermissionDenied(format!("{field}: you see only your own training records")));
    }
    Ok(s)
}

use kefu_kit::money::yuan;

#[tonic::async_trait]
impl TrainingService for TrainingApi {
    async fn create_course(&self, req: Request<pb::CreateCourseRequest>) -> Res<pb::Course> {
        let c = call(req)?;
        answer(courses::create(self, &c.p, c.r).await)
    }

    async fn get_course(&self, req: Request<pb::GetCourseRequest>) -> Res<pb::Course> {
        let c = call(req)?;
        answer(courses::get(self, c.r).await)
    }

    async fn list_courses(&self, req: Request<pb::ListCoursesRequest>) -> Res<pb::ListCoursesResponse> {
        let c = call(req)?;
        answer(courses::list(self, c.r).await)
    }

    async fn schedule_session(&self, req: Request<pb::ScheduleSessionRequest>) -> Res<pb::Session> {
        let c = call(req)?;
        answer(sessions::schedule(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn get_session(&self, req: Request<pb::GetSessionRequest>) -> Res<pb::Session> {
        let c = call(req)?;
        answer(sessions::get(self, c.r).await)
    }

    async fn list_sessions(&self, req: Request<pb::ListSessionsRequest>) -> Res<pb::ListSessionsResponse> {
        let c = call(req)?;
        answer(sessions::list(self, c.r).await)
    }

    async fn cancel_session(&self, req: Request<pb::CancelSessionRequest>) -> Res<pb::Session> {
        let c = call(req)?;
        answer(sessions::cancel(self, c.r).await)
    }

    async fn complete_session(&self, req: Request<pb::CompleteSessionRequest>) -> Res<pb::Session> {
        let c = call(req)?;
        answer(sessions::complete(self, &c.p, c.r).await)
    }

    async fn enrol(&self, req: Request<pb::EnrolRequest>) -> Res<pb::Enrolment> {
        let c = call(req)?;
        answer(enrolments::enrol(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn approve_enrolment(&self, req: Request<pb::ApproveEnrolmentRequest>) -> Res<pb::Enrolment> {
        let c = call(req)?;
        answer(enrolments::approve(self, &c.p, c.r).await)
    }

    async fn withdraw_enrolment(&self, req: Request<pb::WithdrawEnrolmentRequest>) -> Res<pb::Enrolment> {
        let c = call(req)?;
        answer(enrolments::withdraw(self, &c.p, c.r).await)
    }

    async fn check_in(&self, req: Request<pb::CheckInRequest>) -> Res<pb::Enrolment> {
        let c = call(req)?;
        answer(enrolments::check_in(self, &c.p, c.r).await)
    }

    async fn list_enrolments(&self, req: Request<pb::ListEnrolmentsRequest>) -> Res<pb::ListEnrolmentsResponse> {
        let c = call(req)?;
        answer(enrolments::list(self, &c.p, c.r).await)
    }

    async fn create_plan(&self, req: Request<pb::CreatePlanRequest>) -> Res<pb::Plan> {
        let c = call(req)?;
        answer(plans::create(self, &c.p, c.r).await)
    }

    async fn approve_plan(&self, req: Request<pb::ApprovePlanRequest>) -> Res<pb::Plan> {
        let c = call(req)?;
        answer(plans::approve(self, &c.p, c.r).await)
    }

    async fn get_plan(&self, req: Request<pb::GetPlanRequest>) -> Res<pb::Plan> {
        let c = call(req)?;
        answer(plans::get(self, c.r).await)
    }

    async fn list_plans(&self, req: Request<pb::ListPlansRequest>) -> Res<pb::ListPlansResponse> {
        let c = call(req)?;
        answer(plans::list(self, c.r).await)
    }

    async fn record_certificate(&self, req: Request<pb::RecordCertificateRequest>) -> Res<pb::Certificate> {
        let c = call(req)?;
        answer(certificates::record(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn list_certificates(&self, req: Request<pb::ListCertificatesRequest>) -> Res<pb::ListCertificatesResponse> {
        let c = call(req)?;
        answer(certificates::list(self, &c.p, c.r).await)
    }

    async fn list_due_reminders(&self, req: Request<pb::ListDueRemindersRequest>) -> Res<pb::ListDueRemindersResponse> {
        let c = call(req)?;
        answer(certificates::due(self, &c.p, c.r).await)
    }

    async fn get_staff_training_stats(
        &self,
        req: Request<pb::GetStaffTrainingStatsRequest>,
    ) -> Res<pb::StaffTrainingStats> {
        let c = call(req)?;
        answer(certificates::staff_stats(self, c.r).await)
    }

    async fn add_question(&self, req: Request<pb::AddQuestionRequest>) -> Res<pb::Question> {
        let c = call(req)?;
        answer(exams::add_question(self, &c.p, c.r).await)
    }

    async fn list_questions(&self, req: Request<pb::ListQuestionsRequest>) -> Res<pb::ListQuestionsResponse> {
        let c = call(req)?;
        answer(exams::list_questions(self, c.r).await)
    }

    async fn create_exam(&self, req: Request<pb::CreateExamRequest>) -> Res<pb::Exam> {
        let c = call(req)?;
        answer(exams::create_exam(self, &c.p, c.r).await)
    }

    async fn list_exams(&self, req: Request<pb::ListExamsRequest>) -> Res<pb::ListExamsResponse> {
        let c = call(req)?;
        answer(exams::list_exams(self, c.r).await)
    }

    async fn start_attempt(&self, req: Request<pb::StartAttemptRequest>) -> Res<pb::Attempt> {
        let c = call(req)?;
        answer(exams::start(self, &c.p, c.r).await)
    }

    async fn get_attempt(&self, req: Request<pb::GetAttemptRequest>) -> Res<pb::Attempt> {
        let c = call(req)?;
        answer(exams::get(self, &c.p, c.r).await)
    }

    async fn list_attempts(&self, req: Request<pb::ListAttemptsRequest>) -> Res<pb::ListAttemptsResponse> {
        let c = call(req)?;
        answer(exams::list_attempts(self, &c.p, c.r).await)
    }

    async fn submit_attempt(&self, req: Request<pb::SubmitAttemptRequest>) -> Res<pb::Attempt> {
        let c = call(req)?;
        answer(exams::submit(self, &c.p, c.r).await)
    }

    async fn mark_answer(&self, req: Request<pb::MarkAnswerRequest>) -> Res<pb::Attempt> {
        let c = call(req)?;
        answer(exams::mark(self, &c.p, c.r).await)
    }

    async fn get_item_analysis(&self, req: Request<pb::GetItemAnalysisRequest>) -> Res<pb::ItemAnalysis> {
        let c = call(req)?;
        answer(exams::item_analysis(self, c.r).await)
    }

    async fn submit_reaction(&self, req: Request<pb::SubmitReactionRequest>) -> Res<pb::Reaction> {
        let c = call(req)?;
        answer(effect::submit_reaction(self, &c.p, c.r).await)
    }

    async fn record_observation(&self, req: Request<pb::RecordObservationRequest>) -> Res<pb::Observation> {
        let c = call(req)?;
        answer(effect::record_observation(self, &c.p, c.r).await)
    }

    async fn get_course_report(&self, req: Request<pb::GetCourseReportRequest>) -> Res<pb::CourseReport> {
        let c = call(req)?;
        answer(effect::course_report(self, &c.p, c.r).await)
    }

    async fn define_level(&self, req: Request<pb::DefineLevelRequest>) -> Res<pb::Level> {
        let c = call(req)?;
        answer(careers::define(self, &c.p, c.r).await)
    }

    async fn list_levels(&self, req: Request<pb::ListLevelsRequest>) -> Res<pb::ListLevelsResponse> {
        let c = call(req)?;
        answer(careers::list(self, c.r).await)
    }

    async fn set_staff_level(&self, req: Request<pb::SetStaffLevelRequest>) -> Res<pb::CareerProgress> {
        let c = call(req)?;
        answer(careers::set_staff_level(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn get_career_progress(&self, req: Request<pb::GetCareerProgressRequest>) -> Res<pb::CareerProgress> {
        let c = call(req)?;
        answer(careers::get_progress(self, &c.p, c.r).await)
    }

    async fn list_eligible(&self, req: Request<pb::ListEligibleRequest>) -> Res<pb::ListEligibleResponse> {
        let c = call(req)?;
        answer(careers::eligible(self, c.r).await)
    }
}
