//! Calls to the services performance reads: the staff directory (who is
//! evaluated, by whom), tickets, complaints and training (their figures),
//! training's career paths (promotion). Each call carries the service's
//! own token and a deadline; a service that does not answer is
//! UNAVAILABLE naming it.
use std::collections::BTreeMap;

use kefu_kit::{
    Error,
    client::{CallContext, PEER_DEADLINE, within},
};
use kefu_proto::{
    complaints::v1::{self as cpb, complaint_service_client::ComplaintServiceClient},
    performance::v1::Source,
    staff::v1::{self as spb, staff_service_client::StaffServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
    training::v1::{self as lpb, training_service_client::TrainingServiceClient},
};
use tonic::transport::Channel;

use crate::domain::Snapshot;

/// The services performance reads, and its own token.
pub struct Peers {
    pub staff: Channel,
    pub tickets: Channel,
    pub complaints: Channel,
    pub training: Channel,
    pub token: kefu_kit::module::ServiceTokens,
}

impl Peers {
    fn ctx(&self) -> Result<CallContext, Error> {
        let token = (self.token)().map_err(Error::Internal)?;
        Ok(CallContext::new(Some(&token))?)
    }

    pub async fn team(&self, code: &str) -> Result<spb::Team, Error> {
        let mut c = StaffServiceClient::with_interceptor(self.staff.clone(), self.ctx()?);
        within(PEER_DEADLINE, c.get_team(spb::GetTeamRequest { code: code.to_owned() }))
            .await
            .map_err(|s| Error::from_peer("staff", &s))
    }

    /// A person of the directory, or `None` when it does not know them.
    pub async fn person(&self, id: &str) -> Result<Option<spb::Person>, Error> {
        let mut c = StaffServiceClient::with_interceptor(self.staff.clone(), self.ctx()?);
        match within(PEER_DEADLINE, c.get_person(spb::GetPersonRequest { staff_id: id.to_owned() })).await {
            Ok(p) => Ok(Some(p)),
            Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => Ok(None),
            Err(s) => Err(Error::from_peer("staff", &s)),
        }
    }

    /// One person's figures for a period from the services `needed` names.
    pub async fn figures(
        &self,
        staff: &str,
        from: &str,
        to: &str,
        needed: &[&str],
        now: i64,
    ) -> Result<Snapshot, Error> {
        let ctx = self.ctx()?;
        let mut f: BTreeMap<i32, f64> = BTreeMap::new();
        let mut basis: BTreeMap<String, f64> = BTreeMap::new();
        let pct = |x: f64| crate::domain::round2(x * 100.0);
        if needed.contains(&"tickets") {
            let mut c = TicketServiceClient::with_interceptor(self.tickets.clone(), ctx.clone());
            let call = c.get_agent_stats(tpb::GetAgentStatsRequest {
                agent: staff.to_owned(),
                from_date: from.to_owned(),
                to_date: to.to_owned(),
            });
            let t = within(PEER_DEADLINE, call).await.map_err(|s| Error::from_peer("tickets", &s))?;
            let (met, missed) = t.targets.iter().fold((0, 0), |(a, b), m| (a + m.met, b + m.missed));
            let sla = if met + missed == 0 { 0.0 } else { met as f64 / (met + missed) as f64 };
            f.insert(Source::TicketsSlaMet as i32, pct(sla));
            f.insert(Source::TicketsResolutionRate as i32, pct(t.resolution_rate));
            f.insert(Source::TicketsReopenRate as i32, pct(t.reopen_rate));
            f.insert(Source::TicketsCsat as i32, crate::domain::round2(t.csat));
            f.insert(Source::TicketsFirstContactResolution as i32, pct(t.first_contact_resolution_rate));
            f.insert(Source::TicketsAnswerServiceLevel as i32, pct(t.answer_service_level));
            for (k, v) in [
                ("tickets_handled", t.tickets_handled),
                ("tickets_solved", t.tickets_solved),
                ("sla_targets_met", met),
                ("sla_targets_missed", missed),
                ("ratings", t.ratings),
                ("calls_offered", t.calls_offered),
                ("calls_answered", t.calls_answered),
            ] {
                basis.insert(k.to_owned(), v as f64);
            }
        }
        if needed.contains(&"complaints") {
            let mut c = ComplaintServiceClient::with_interceptor(self.complaints.clone(), ctx.clone());
            let call = c.get_staff_complaint_stats(cpb::GetStaffComplaintStatsRequest {
                staff: staff.to_owned(),
                from_date: from.to_owned(),
                to_date: to.to_owned(),
            });
            let s = within(PEER_DEADLINE, call).await.map_err(|s| Error::from_peer("complaints", &s))?;
            f.insert(Source::ComplaintsReceived as i32, s.received as f64);
            f.insert(Source::ComplaintsUpheld as i32, s.upheld as f64);
            f.insert(Source::ComplaintsAttitude as i32, s.about_attitude as f64);
        }
        if needed.contains(&"training") {
            let mut c = TrainingServiceClient::with_interceptor(self.training.clone(), ctx);
            let call = c.get_staff_training_stats(lpb::GetStaffTrainingStatsRequest {
                staff_id: staff.to_owned(),
                from_date: from.to_owned(),
                to_date: to.to_owned(),
            });
            let s = within(PEER_DEADLINE, call).await.map_err(|s| Error::from_peer("training", &s))?;
            f.insert(Source::TrainingHours as i32, crate::domain::round2(s.hours));
            f.insert(Source::TrainingExamAverage as i32, crate::domain::round2(s.average_exam_score));
            f.insert(Source::TrainingCertificates as i32, f64::from(s.certificates_held));
            basis.insert("courses_completed".into(), f64::from(s.courses_completed));
            basis.insert("exams_taken".into(), f64::from(s.exams_taken));
        }
        Ok(Snapshot { figures: f, basis, taken_at: now })
    }

    pub async fn career(&self, staff: &str) -> Result<lpb::CareerProgress, Error> {
        let mut c = TrainingServiceClient::with_interceptor(self.training.clone(), self.ctx()?);
        within(PEER_DEADLINE, c.get_career_progress(lpb::GetCareerProgressRequest { staff_id: staff.to_owned() }))
            .await
            .map_err(|s| Error::from_peer("training", &s))
    }
}
