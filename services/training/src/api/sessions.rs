//! Sessions of a course: scheduled (charged to a plan within its budget),
//! cancelled, completed (attendees credited, the others absent).
use chrono::Datelike;
use kefu_kit::{
    Error,
    auth::Principal,
    db,
    error::Violations,
    page,
    parse::{self, ts},
};
use kefu_proto::training::v1::{self as pb, EnrolmentState as E, SessionState};

use super::{MANAGES, TrainingApi, yuan};
use crate::{
    domain,
    store::{self, SessionRow},
};

const LIST: &str = "sessions";
const SCOPE: &str = "training.session";

pub(super) async fn session_pb(conn: &mut sqlx::AnyConnection, s: &SessionRow) -> Result<pb::Session, Error> {
    let course = store::course(conn, &s.course_id).await?;
    let seated: Vec<i64> = domain::SEATED.iter().map(|e| i64::from(*e as i32)).collect();
    let (enrolled, waitlisted) = store::seat_counts(conn, &s.id, &seated, i64::from(E::Waitlisted as i32)).await?;
    Ok(pb::Session {
        id: s.id.clone(),
        course_id: s.course_id.clone(),
        course_code: course.as_ref().map(|c| c.code.clone()).unwrap_or_default(),
        course_title: course.map(|c| c.title).unwrap_or_default(),
        start_time: ts(s.start_at),
        end_time: ts(s.end_at),
        location: s.location.clone(),
        trainer: s.trainer.clone(),
        capacity: i32::try_from(s.capacity).unwrap_or(i32::MAX),
        waitlist_capacity: i32::try_from(s.waitlist_capacity).unwrap_or(i32::MAX),
        enrolled: i32::try_from(enrolled).unwrap_or(i32::MAX),
        waitlisted: i32::try_from(waitlisted).unwrap_or(i32::MAX),
        cost_fen: s.cost_fen,
        plan_id: s.plan_id.clone(),
        state: s.state as i32,
        cancel_reason: s.cancel_reason.clone(),
        scheduled_by: s.scheduled_by.clone(),
        create_time: ts(s.created_at),
    })
}

pub(super) fn state_of(s: &SessionRow) -> SessionState {
    SessionState::try_from(s.state as i32).unwrap_or(SessionState::Unspecified)
}

pub(super) async fn schedule(
    api: &TrainingApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::ScheduleSessionRequest,
) -> Result<pb::Session, Error> {
    let s = r.session.clone().unwrap_or_default();
    let now = api.now();
    let mut v = Violations::new();
    let course_id = v.check(parse::required_line("session.course_id", &s.course_id, 64));
    let start = v.check(parse::required_timestamp("session.start_time", s.start_time.as_ref()));
    let end = v.check(parse::required_timestamp("session.end_time", s.end_time.as_ref()));
    if let (Some(a), Some(b)) = (start, end) {
        if b <= a {
            v.add("session.end_time", "is not after the start");
        } else if b - a > domain::SESSION_MAX_MS {
            v.add("session.end_time", "a session lasts at most 14 days");
        }
    }
    if start.is_some_and(|a| a < now) {
        v.add("session.start_time", "is in the past");
    }
    let location = v.check(parse::required_line("session.location", &s.location, 300));
    let trainer = v.check(parse::required_line("session.trainer", &s.trainer, 64));
    if !(1..=500).contains(&s.capacity) {
        v.add("session.capacity", "must be 1 to 500 seats");
    }
    if !(0..=500).contains(&s.waitlist_capacity) {
        v.add("session.waitlist_capacity", "must be 0 to 500 places");
    }
    if !(0..=1_000_000_000).contains(&s.cost_fen) {
        v.add("session.cost_fen", "must be 0 to 10,000,000 yuan in fen");
    }
    let plan_id = v.check(parse::line("session.plan_id", &s.plan_id, 64)).unwrap_or_default();
    let request_id = v.check(parse::line("request_id", &r.request_id, 128)).unwrap_or_default();
    v.finish()?;
    let (Some(course_id), Some(start), Some(end), Some(location), Some(trainer)) =
        (course_id, start, end, location, trainer)
    else {
        return Err(Error::invalid("session", "is not valid"));
    };
    api.peers.directory.check(token, &[("session.trainer", &trainer, kefu_kit::directory::Accept::Person)]).await?;
    let mut tx = api.pool.begin().await?;
    let course = store::course(&mut tx, &course_id)
        .await?
        .ok_or_else(|| Error::invalid("session.course_id", format!("no course {course_id:?}")))?;
    let row = SessionRow {
        id: uuid::Uuid::now_v7().to_string(),
        course_id: course.id.clone(),
        start_at: start,
        end_at: end,
        location,
        trainer,
        capacity: i64::from(s.capacity),
        waitlist_capacity: i64::from(s.waitlist_capacity),
        cost_fen: s.cost_fen,
        plan_id: plan_id.clone(),
        state: i64::from(SessionState::Scheduled as i32),
        cancel_reason: String::new(),
        scheduled_by: p.subject.clone(),
        created_at: now,
        version: 0,
    };
    if !request_id.is_empty() {
        let fingerprint = db::fingerprint_of(&pb::ScheduleSessionRequest { request_id: String::new(), ..r.clone() });
        if let db::Claim::Existing(first) =
            db::claim_request_id(&mut tx, &format!("{SCOPE}:{}", p.subject), &request_id, &row.id, &fingerprint).await?
        {
            let first = store::session(&mut tx, &first).await?.ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("session {first} of a claimed request id is missing"))
            })?;
            return session_pb(&mut tx, &first).await;
        }
    }
    if !plan_id.is_empty() {
        // Charges to one plan queue on its row: the budget holds under concurrency.
        let plan = store::lock_plan(&mut tx, &plan_id)
            .await?
            .ok_or_else(|| Error::invalid("session.plan_id", format!("no plan {plan_id:?}")))?;
        if plan.state != i64::from(pb::PlanState::Approved as i32) {
            return Err(Error::FailedPrecondition(format!(
                "plan {} {} is not approved yet; a plan pays once approved",
                plan.year, plan.team
            )));
        }
        if i64::from(api.date_of(start).year()) != plan.year {
            return Err(Error::invalid(
                "session.plan_id",
                format!("the plan is for {}; the session starts in {}", plan.year, api.date_of(start).year()),
            ));
        }
        let spent = store::plan_spent(&mut tx, &plan.id, i64::from(SessionState::Cancelled as i32)).await?;
        if spent + row.cost_fen > plan.budget_fen {
            return Err(Error::FailedPrecondition(format!(
                "plan {} {} has {} of its budget left; this session costs {}",
                plan.year,
                plan.team,
                yuan(plan.budget_fen - spent),
                yuan(row.cost_fen)
            )));
        }
    }
    store::insert_session(&mut tx, &row).await?;
    let out = session_pb(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn get(api: &TrainingApi, r: pb::GetSessionRequest) -> Result<pb::Session, Error> {
    let id = parse::id("id", &r.id)?;
    let mut conn = api.reads.acquire().await?;
    let s = store::session(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    session_pb(&mut conn, &s).await
}

pub(super) async fn list(api: &TrainingApi, r: pb::ListSessionsRequest) -> Result<pb::ListSessionsResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 200)).unwrap_or(50);
    let after = v.check(page::time_and_id(LIST, &r.page_token)).flatten();
    let from = v.check(parse::opt_timestamp("from_time", r.from_time.as_ref())).flatten();
    let to = v.check(parse::opt_timestamp("to_time", r.to_time.as_ref())).flatten();
    let course_id = v.check(parse::line("course_id", &r.course_id, 64)).unwrap_or_default();
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let course_id = if course_id.is_empty() {
        None
    } else {
        Some(
            store::course(&mut conn, &course_id)
                .await?
                .ok_or_else(|| Error::invalid("course_id", format!("no course {course_id:?}")))?
                .id,
        )
    };
    let filter = store::SessionFilter { from, to, course_id, after };
    let rows = store::sessions(&mut conn, &filter, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next_time_and_id(LIST, &rows, more, |s| (s.start_at, s.id.as_str()));
    let mut sessions = Vec::with_capacity(rows.len());
    for s in &rows {
        sessions.push(session_pb(&mut conn, s).await?);
    }
    Ok(pb::ListSessionsResponse { sessions, next_page_token })
}

pub(super) async fn cancel(api: &TrainingApi, r: pb::CancelSessionRequest) -> Result<pb::Session, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::id("id", &r.id)).unwrap_or_default();
    let reason = v.check(parse::required_line("reason", &r.reason, 500)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let s = store::lock_session(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    if state_of(&s) != SessionState::Scheduled {
        return Err(Error::FailedPrecondition("only a scheduled session can be cancelled".into()));
    }
    if api.now() >= s.start_at {
        return Err(Error::FailedPrecondition(
            "the session has started; one that took place is completed, not cancelled".into(),
        ));
    }
    store::set_session_state(&mut tx, &s.id, i64::from(SessionState::Cancelled as i32), &reason).await?;
    for mut e in store::enrolments_of_session(&mut tx, &s.id).await? {
        let state = E::try_from(e.state as i32).unwrap_or(E::Unspecified);
        if matches!(state, E::PendingApproval | E::Enrolled | E::Waitlisted | E::Attended) {
            e.state = i64::from(E::Cancelled as i32);
            store::save_enrolment(&mut tx, &e).await?;
        }
    }
    let s = store::session(&mut tx, &s.id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    let out = session_pb(&mut tx, &s).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn complete(
    api: &TrainingApi,
    p: &Principal,
    r: pb::CompleteSessionRequest,
) -> Result<pb::Session, Error> {
    let id = parse::id("id", &r.id)?;
    let now = api.now();
    let mut tx = api.pool.begin().await?;
    let s = store::lock_session(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    if !(p.has_any(MANAGES) || s.trainer == p.subject) {
        return Err(Error::PermissionDenied("a session is completed by its trainer or a manager".into()));
    }
    if state_of(&s) != SessionState::Scheduled {
        return Err(Error::FailedPrecondition("only a scheduled session can be completed".into()));
    }
    if now < s.end_at {
        return Err(Error::FailedPrecondition(
            "the session has not ended yet (attendance is checked in until its end)".into(),
        ));
    }
    let course = store::course(&mut tx, &s.course_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("course {} of session {} is missing", s.course_id, s.id)))?;
    for mut e in store::enrolments_of_session(&mut tx, &s.id).await? {
        let next = match E::try_from(e.state as i32).unwrap_or(E::Unspecified) {
            E::Attended => {
                e.complete_at = Some(now);
                e.hours_x2 = course.hours_x2;
                E::Completed
            }
            E::Enrolled => E::Absent,
            E::PendingApproval | E::Waitlisted => E::Cancelled,
            _ => continue,
        };
        e.state = i64::from(next as i32);
        store::save_enrolment(&mut tx, &e).await?;
    }
    store::set_session_state(&mut tx, &s.id, i64::from(SessionState::Completed as i32), "").await?;
    let s = store::session(&mut tx, &s.id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    let out = session_pb(&mut tx, &s).await?;
    tx.commit().await?;
    Ok(out)
}
