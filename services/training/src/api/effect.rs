//! The training's effect, on the four Kirkpatrick levels: reactions and
//! observations people record, exam scores, and the trainees' service
//! figures read from tickets and complaints (with the training service's own
//! token) for a window before and after each completion.
use std::collections::BTreeMap;

use chrono::Duration;
use kefu_kit::{
    Error,
    auth::Principal,
    client::{CallContext, PEER_DEADLINE, within},
    error::Violations,
    parse::{self, ts},
};
use kefu_proto::{
    complaints::v1::{self as cpb, complaint_service_client::ComplaintServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
    training::v1::{self as pb, EnrolmentState as E},
};

use super::{MANAGES, TrainingApi};
use crate::{
    domain,
    store::{self, ObservationRow, ReactionRow},
};

fn rating(v: &mut Violations, field: &str, n: i32) -> i64 {
    if !(1..=5).contains(&n) {
        v.add(field, "must be 1 to 5");
    }
    i64::from(n)
}

pub(super) async fn submit_reaction(
    api: &TrainingApi,
    p: &Principal,
    r: pb::SubmitReactionRequest,
) -> Result<pb::Reaction, Error> {
    let x = r.reaction.unwrap_or_default();
    let mut v = Violations::new();
    let id = v.check(parse::id("reaction.enrolment_id", &x.enrolment_id)).unwrap_or_default();
    let row = ReactionRow {
        enrolment_id: id.clone(),
        relevance: rating(&mut v, "reaction.relevance", x.relevance),
        trainer: rating(&mut v, "reaction.trainer", x.trainer),
        materials: rating(&mut v, "reaction.materials", x.materials),
        overall: rating(&mut v, "reaction.overall", x.overall),
        comment: v.check(parse::text("reaction.comment", &x.comment, 2000)).unwrap_or_default(),
        submitted_at: api.now(),
    };
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let e = store::enrolment(&mut tx, &id).await?.filter(|e| e.staff_id == p.subject);
    let e = e.ok_or_else(|| Error::NotFound(format!("enrolment {id} of yours")))?;
    if e.state != i64::from(E::Completed as i32) {
        return Err(Error::FailedPrecondition("a reaction follows a session you completed".into()));
    }
    if !store::insert_reaction(&mut tx, &row).await? {
        return Err(Error::FailedPrecondition("you gave your reaction to this session already".into()));
    }
    tx.commit().await?;
    Ok(pb::Reaction {
        enrolment_id: row.enrolment_id,
        session_id: e.session_id,
        staff_id: e.staff_id,
        relevance: x.relevance,
        trainer: x.trainer,
        materials: x.materials,
        overall: x.overall,
        comment: row.comment,
        submit_time: ts(row.submitted_at),
    })
}

pub(super) async fn record_observation(
    api: &TrainingApi,
    p: &Principal,
    r: pb::RecordObservationRequest,
) -> Result<pb::Observation, Error> {
    let o = r.observation.unwrap_or_default();
    let mut v = Violations::new();
    let id = v.check(parse::id("observation.enrolment_id", &o.enrolment_id)).unwrap_or_default();
    let on = v.check(parse::date("observation.observed_on", &o.observed_on));
    let rating = rating(&mut v, "observation.rating", o.rating);
    let notes = v.check(parse::required_text("observation.notes", &o.notes, 2000)).unwrap_or_default();
    v.finish()?;
    let Some(on) = on else { return Err(Error::invalid("observation.observed_on", "is required")) };
    if on > api.today() {
        return Err(Error::invalid("observation.observed_on", "is in the future"));
    }
    let mut tx = api.pool.begin().await?;
    let e = store::enrolment(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("enrolment {id}")))?;
    if e.staff_id == p.subject || !p.has_any(MANAGES) {
        return Err(Error::PermissionDenied("a supervisor observes others' work, not their own".into()));
    }
    let Some(done) = e.complete_at.filter(|_| e.state == i64::from(E::Completed as i32)) else {
        return Err(Error::FailedPrecondition("the trainee has not completed this session".into()));
    };
    let days = (on - api.date_of(done)).num_days();
    if !(30..=90).contains(&days) {
        return Err(Error::invalid(
            "observation.observed_on",
            format!("is {days} days after the completion; observe 30 to 90 days after it"),
        ));
    }
    let row = ObservationRow {
        enrolment_id: e.id.clone(),
        observer: p.subject.clone(),
        observed_on: parse::format_date(on),
        days_after: days,
        rating,
        notes,
        recorded_at: api.now(),
    };
    if !store::insert_observation(&mut tx, &row).await? {
        let first = store::observation(&mut tx, &e.id).await?;
        return Err(Error::FailedPrecondition(format!(
            "this completion was observed already (by {})",
            first.map(|o| o.observer).unwrap_or_default()
        )));
    }
    tx.commit().await?;
    Ok(pb::Observation {
        enrolment_id: row.enrolment_id,
        staff_id: e.staff_id,
        observer: row.observer,
        observed_on: row.observed_on,
        days_after: i32::try_from(days).unwrap_or(i32::MAX),
        rating: o.rating,
        notes: row.notes,
    })
}

/// Service figures summed over people and windows.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    handled: i64,
    solved: i64,
    reopened_share_sum: f64,
    people: i64,
    met: i64,
    missed: i64,
    good_ratings: f64,
    ratings: i64,
    complaints: i64,
}

impl Sums {
    fn add(&mut self, t: &tpb::AgentStats, complaints: i64) {
        self.handled += t.tickets_handled;
        self.solved += t.tickets_solved;
        self.reopened_share_sum += t.reopen_rate;
        self.people += 1;
        for m in &t.targets {
            self.met += m.met;
            self.missed += m.missed;
        }
        self.good_ratings += t.csat / 100.0 * t.ratings as f64;
        self.ratings += t.ratings;
        self.complaints += complaints;
    }

    fn ratio(a: f64, b: f64) -> f64 {
        if b > 0.0 { a / b } else { 0.0 }
    }

    /// The figures of everyone together (`per_person`: of the average person).
    fn figures(&self, per_person: bool) -> pb::TicketFigures {
        let n = if per_person && self.people > 0 { self.people } else { 1 };
        pb::TicketFigures {
            tickets_handled: self.handled / n,
            tickets_solved: self.solved / n,
            resolution_rate: Self::ratio(self.solved as f64, self.handled as f64),
            reopen_rate: Self::ratio(self.reopened_share_sum, self.people as f64),
            sla_share_met: Self::ratio(self.met as f64, (self.met + self.missed) as f64),
            csat: Self::ratio(self.good_ratings, self.ratings as f64) * 100.0,
            ratings: self.ratings / n,
            complaints_received: self.complaints / n,
            complaints_per_100_tickets: Self::ratio(self.complaints as f64 * 100.0, self.handled as f64),
        }
    }
}

impl TrainingApi {
    /// One person's ticket figures and complaints received in a window,
    /// from the tickets and complaints services.
    async fn service_figures(
        &self,
        staff: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<(tpb::AgentStats, i64), Error> {
        let token = (self.peers.token)().map_err(Error::Internal)?;
        let ctx = CallContext::new(Some(&token))?;
        let (from, to) = (parse::format_date(from), parse::format_date(to));
        let mut tickets = TicketServiceClient::with_interceptor(self.peers.tickets.clone(), ctx.clone());
        let call = tickets.get_agent_stats(tpb::GetAgentStatsRequest {
            agent: staff.to_owned(),
            from_date: from.clone(),
            to_date: to.clone(),
        });
        let t = within(PEER_DEADLINE, call).await.map_err(|s| Error::from_peer("tickets", &s))?;
        let mut complaints = ComplaintServiceClient::with_interceptor(self.peers.complaints.clone(), ctx);
        let call = complaints.get_staff_complaint_stats(cpb::GetStaffComplaintStatsRequest {
            staff: staff.to_owned(),
            from_date: from,
            to_date: to,
        });
        let c = within(PEER_DEADLINE, call).await.map_err(|s| Error::from_peer("complaints", &s))?;
        Ok((t, c.received))
    }
}

/// Trainees whose figures a report reads at most.
const REPORT_TRAINEES: usize = 500;
/// Fewest trainees whose figures are shown to someone who does not read
/// people's ticket figures (an auditor): fewer would show one person's.
const ANONYMOUS_FROM: usize = 3;
/// Roles that read a person's ticket figures themselves (tickets' GetAgentStats).
const READS_FIGURES: &[kefu_kit::auth::Role] = &[
    kefu_kit::auth::Role::Supervisor,
    kefu_kit::auth::Role::Hr,
    kefu_kit::auth::Role::Admin,
    kefu_kit::auth::Role::Service,
];

pub(super) async fn course_report(
    api: &TrainingApi,
    p: &Principal,
    r: pb::GetCourseReportRequest,
) -> Result<pb::CourseReport, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::required_line("course_id", &r.course_id, 64)).unwrap_or_default();
    let window = if r.window_days == 0 { 30 } else { r.window_days };
    if !(7..=180).contains(&window) {
        v.add("window_days", "must be 7 to 180 days (0: 30)");
    }
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let course = store::course(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("course {id}")))?;

    // Level 1: reaction.
    let reactions = store::reactions_of_course(&mut conn, &course.id).await?;
    let avg = |f: fn(&ReactionRow) -> i64| {
        if reactions.is_empty() { 0.0 } else { reactions.iter().map(f).sum::<i64>() as f64 / reactions.len() as f64 }
    };
    let reaction = pb::ReactionLevel {
        responses: i32::try_from(reactions.len()).unwrap_or(i32::MAX),
        average_relevance: avg(|r| r.relevance),
        average_trainer: avg(|r| r.trainer),
        average_materials: avg(|r| r.materials),
        average_overall: avg(|r| r.overall),
    };

    // Level 2: learning, each person's best pre-test and final score.
    let finished = [i64::from(pb::AttemptState::Scored as i32), i64::from(pb::AttemptState::Expired as i32)];
    let mut pre: BTreeMap<String, f64> = BTreeMap::new();
    let mut fin: BTreeMap<String, (f64, bool)> = BTreeMap::new();
    for (who, is_pre, awarded, total, pass_mark) in store::course_attempts(&mut conn, &course.id, &finished).await? {
        let score = domain::percent(awarded, total);
        if is_pre {
            // The first pre-test is what they knew before.
            pre.entry(who).or_insert(score);
        } else {
            let passed = domain::passed(awarded, total, pass_mark);
            let best = fin.entry(who).or_insert((score, passed));
            if score > best.0 {
                *best = (score, passed || best.1);
            } else {
                best.1 |= passed;
            }
        }
    }
    let compared: Vec<(f64, f64)> = fin.iter().filter_map(|(w, (f, _))| pre.get(w).map(|p| (*p, *f))).collect();
    let mean = |xs: &mut dyn Iterator<Item = f64>, n: usize| if n == 0 { 0.0 } else { xs.sum::<f64>() / n as f64 };
    let learning = pb::LearningLevel {
        people_compared: i32::try_from(compared.len()).unwrap_or(i32::MAX),
        pre_test_average: mean(&mut compared.iter().map(|c| c.0), compared.len()),
        final_average: mean(&mut compared.iter().map(|c| c.1), compared.len()),
        gain: mean(&mut compared.iter().map(|c| c.1 - c.0), compared.len()),
        pass_rate: 0.0,
    };

    // Levels 3 and 4: observations, and the trainees' service figures in
    // the window before and after each completion (each person once: their
    // first completion of the course).
    let observations = store::observations_of_course(&mut conn, &course.id).await?;
    let completions = store::course_completions(&mut conn, &course.id, i64::from(E::Completed as i32)).await?;
    drop(conn);
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    for (who, at) in &completions {
        first.entry(who.clone()).or_insert(*at);
    }
    let mut learning = learning;
    learning.pass_rate = if first.is_empty() {
        0.0
    } else {
        first.keys().filter(|w| fin.get(*w).is_some_and(|f| f.1)).count() as f64 / first.len() as f64
    };
    // Compared: trainees whose window after completing has passed.
    let days = Duration::days(i64::from(window));
    let today = api.today();
    let compared: Vec<(String, chrono::NaiveDate)> = first
        .iter()
        .map(|(w, at)| (w.clone(), api.date_of(*at)))
        .filter(|(_, day)| *day + days < today)
        .take(REPORT_TRAINEES)
        .collect();
    let (mut before, mut after) = (Sums::default(), Sums::default());
    let mut figures_unavailable = String::new();
    if compared.len() < ANONYMOUS_FROM && !compared.is_empty() && !p.has_any(READS_FIGURES) {
        figures_unavailable = format!(
            "fewer than {ANONYMOUS_FROM} trainees compared: their figures would be single people's, \
             which your role does not read"
        );
    } else {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let figures = stream::iter(compared.clone())
            .map(|(who, day)| async move {
                let b = api.service_figures(&who, day - days, day - Duration::days(1)).await?;
                let a = api.service_figures(&who, day + Duration::days(1), day + days).await?;
                Ok::<_, Error>((b, a))
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await;
        match figures {
            Ok(all) => {
                for ((bt, bc), (at, ac)) in &all {
                    before.add(bt, *bc);
                    after.add(at, *ac);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a course report's ticket figures could not be read");
                figures_unavailable = format!("the service figures could not be read: {e}");
            }
        }
    }
    let shown = figures_unavailable.is_empty();
    let behaviour = pb::BehaviourLevel {
        observations: i32::try_from(observations.len()).unwrap_or(i32::MAX),
        average_rating: if observations.is_empty() {
            0.0
        } else {
            observations.iter().map(|o| o.rating).sum::<i64>() as f64 / observations.len() as f64
        },
        trainees: if shown { i32::try_from(compared.len()).unwrap_or(i32::MAX) } else { 0 },
        before: shown.then(|| before.figures(true)),
        after: shown.then(|| after.figures(true)),
    };
    let results =
        pb::ResultsLevel { before: shown.then(|| before.figures(false)), after: shown.then(|| after.figures(false)) };
    Ok(pb::CourseReport {
        course_id: course.id,
        code: course.code,
        title: course.title,
        window_days: window,
        completions: i32::try_from(completions.len()).unwrap_or(i32::MAX),
        reaction: Some(reaction),
        learning: Some(learning),
        behaviour: Some(behaviour),
        results: Some(results),
        figures_unavailable,
    })
}
